//! The OCI image layout inside a thick bundle, learnt in one streaming pass: `bundle.json`,
//! `index.json`, the list of blobs with their sizes, and the manifests that fit a memory
//! budget. The other manifests are read in later passes, many per pass; configs and layers are
//! never kept, they are streamed when uploaded.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;

use super::error::ArchiveError;
use super::first_pass::{first_pass, FirstPass, PausedScan, Resume, Scanned};
use super::tar_stream::scan_archive;
use crate::limits::MAX_MANIFEST_SIZE;
use crate::oci::{parse_cosign_tag, Manifest, ManifestOutline, PointsAt, ReferrerKind};
use crate::reference::{Digest, Reference};

/// Where the layout sits in a thick bundle, as duffle and Porter write it.
pub const LAYOUT_DIR: &str = "artifacts/layout/";
/// The annotation that names an image in `index.json`.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// containerd's annotation with the image's full reference (`ctr image export`).
pub const CONTAINERD_NAME_ANNOTATION: &str = "io.containerd.image.name";

/// A top-level descriptor of `index.json`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct IndexEntry {
    /// The descriptor's `mediaType`, when given.
    #[serde(rename = "mediaType", default)]
    pub media_type: Option<String>,
    /// The digest of the manifest or index it points to.
    pub digest: Digest,
    /// That document's size in bytes.
    pub size: u64,
    /// The descriptor's annotations, such as [`REF_NAME_ANNOTATION`].
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

impl IndexEntry {
    fn ref_name(&self) -> Option<&str> {
        self.annotations.get(REF_NAME_ANNOTATION).map(String::as_str)
    }

    /// Full references the entry is annotated with (a bare tag is not one).
    fn full_names(&self) -> impl Iterator<Item = &str> {
        [REF_NAME_ANNOTATION, CONTAINERD_NAME_ANNOTATION]
            .into_iter()
            .filter_map(|key| self.annotations.get(key).map(String::as_str))
            .filter(|n| !is_bare_tag(n))
    }
}

/// What a bundle image is looked up by in a thick bundle's layout.
#[derive(Debug, Clone)]
pub struct ImageLookup<'a> {
    /// The bundle's image string (Porter's mapping is keyed by it).
    pub raw: &'a str,
    /// The image string, parsed.
    pub reference: &'a Reference,
    /// The digest the bundle pins besides the reference's own (`contentDigest`).
    pub pinned: Option<&'a Digest>,
    /// Whether a bare-tag `ref.name` may identify the image: only when no other image of the
    /// bundle, from another repository, has the same tag.
    pub bare_tag_allowed: bool,
}

#[derive(serde::Deserialize)]
struct IndexJson {
    manifests: Vec<IndexEntry>,
}

/// What the first pass over a thick bundle learnt.
pub struct ThickArchive {
    /// The archive, as messages name it.
    pub path: PathBuf,
    /// The file read (a bundle from a pipe is read from a spooled copy).
    file: PathBuf,
    /// That spooled copy, removed when the archive goes.
    _spool: Option<tempfile::TempPath>,
    /// The raw bytes of its `bundle.json`.
    pub bundle_json: Vec<u8>,
    /// "" or "dir/": where `bundle.json` and `artifacts/` are.
    root: String,
    index: Vec<IndexEntry>,
    /// Porter's `relocation-mapping.json`: bundle image → where it was published.
    published: BTreeMap<String, String>,
    /// Layout blobs in the archive: digest → (entry name, size).
    blobs: HashMap<Digest, (String, u64)>,
    /// Manifests and configs kept from the first pass, within [`KEPT_MANIFESTS_BUDGET`]
    /// (unverified until used).
    kept_manifests: HashMap<Digest, Bytes>,
    /// Manifests that name a `subject`: subject → (referrer, kind).
    referrers: HashMap<Digest, Vec<(Digest, ReferrerKind)>>,
    /// Whether `blobs` lists every blob of the archive.
    complete: bool,
    /// A first pass that stopped at the first layer (a metadata-first archive).
    paused: Mutex<Option<PausedScan>>,
}

impl ThickArchive {
    /// One streaming pass over the whole archive; nothing is written anywhere.
    pub fn scan(path: &Path) -> Result<ThickArchive, ArchiveError> {
        Self::scan_as(path, path, false)
    }

    /// Like [`scan`](Self::scan), but an archive written metadata first (every manifest and
    /// config before the first layer) is read only up to its first layer: the blob pass then
    /// goes on from there ([`take_paused`](Self::take_paused)), so the archive is read once.
    /// Layers are then not listed yet: a missing one is found only when its turn comes.
    pub fn scan_once(path: &Path) -> Result<ThickArchive, ArchiveError> {
        Self::scan_as(path, path, true)
    }

    /// [`scan`](Self::scan) (or, `once`, [`scan_once`](Self::scan_once)) of the archive in
    /// `file`, named `shown` in every message (a bundle from a pipe, spooled to a file no
    /// message should name).
    pub fn scan_as(file: &Path, shown: &Path, once: bool) -> Result<ThickArchive, ArchiveError> {
        let named = |e: ArchiveError| e.naming(file, shown);
        let built = match first_pass(file, once).map_err(named)? {
            Scanned::Complete(pass) => Self::from_first_pass(shown, pass),
            Scanned::Paused(snapshot, paused) => match Self::from_first_pass(shown, snapshot) {
                Ok(archive) if archive.metadata_complete() => {
                    tracing::info!("{}: metadata first; reading the archive once", shown.display());
                    Ok(ThickArchive {
                        complete: false,
                        paused: Mutex::new(Some(paused)),
                        ..archive
                    })
                }
                // not metadata first after all: the rest of the archive decides
                _ => Self::from_first_pass(shown, paused.finish(Resume::Continue).map_err(named)?),
            },
        };
        built.map(|archive| ThickArchive {
            file: file.to_path_buf(),
            ..archive
        })
    }

    fn from_first_pass(path: &Path, pass: FirstPass) -> Result<ThickArchive, ArchiveError> {
        let FirstPass {
            listing,
            mut metadata,
            json_blobs: manifests,
            referrers: referrer_entries,
        } = pass;
        let no_bundle = || ArchiveError::NoBundleJson {
            path: path.to_path_buf(),
        };
        let root = listing.root().ok_or_else(no_bundle)?;
        let mut take = |rel: &str| metadata.remove(&format!("{root}{rel}"));
        let bundle_json = take("bundle.json").ok_or_else(no_bundle)?;
        let index_json = take(&format!("{LAYOUT_DIR}index.json"));
        let has_oci_layout = take(&format!("{LAYOUT_DIR}oci-layout")).is_some();
        let porter_mapping = take("relocation-mapping.json");
        let layout_err = |detail: String| ArchiveError::Layout {
            path: path.to_path_buf(),
            detail,
        };
        let index_json = index_json
            .ok_or_else(|| layout_err(format!("no OCI image layout: {root}{LAYOUT_DIR}index.json is missing")))?;
        if !has_oci_layout {
            tracing::warn!(
                "{}: {root}{LAYOUT_DIR}oci-layout is missing; reading index.json anyway",
                path.display()
            );
        }
        let index: IndexJson = serde_json::from_slice(&index_json)
            .map_err(|e| layout_err(format!("{root}{LAYOUT_DIR}index.json is not a valid OCI index: {e}")))?;
        let published = match porter_mapping {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                layout_err(format!(
                    "{root}relocation-mapping.json is not a JSON object of strings: {e}"
                ))
            })?,
            None => BTreeMap::new(),
        };
        let blob_dir = format!("{root}{LAYOUT_DIR}blobs/");
        let blobs = listing
            .files
            .iter()
            .filter_map(|(name, size)| Some((blob_digest(name, &blob_dir)?, (name.clone(), *size))))
            .collect();
        let manifests = manifests
            .into_iter()
            .filter_map(|(name, bytes)| Some((blob_digest(&name, &blob_dir)?, bytes)))
            .collect();
        let mut referrers: HashMap<Digest, Vec<(Digest, ReferrerKind)>> = HashMap::new();
        for (name, (subject, kind)) in referrer_entries {
            if let Some(digest) = blob_digest(&name, &blob_dir) {
                referrers.entry(subject).or_default().push((digest, kind));
            }
        }
        for list in referrers.values_mut() {
            list.sort_by(|a, b| a.0.cmp(&b.0));
        }
        Ok(ThickArchive {
            path: path.to_path_buf(),
            file: path.to_path_buf(),
            _spool: None,
            bundle_json,
            root,
            index: index.manifests,
            published,
            blobs,
            kept_manifests: manifests,
            referrers,
            complete: true,
            paused: Mutex::new(None),
        })
    }

    /// Whether every manifest and config that `index.json` reaches was kept by the first
    /// pass (which then saw them all before the first layer).
    fn metadata_complete(&self) -> bool {
        let mut pending: Vec<(Digest, Option<String>, usize)> = self
            .index
            .iter()
            .map(|e| (e.digest.clone(), e.media_type.clone(), 0))
            .collect();
        let mut checked = HashSet::new();
        while let Some((digest, media_type, depth)) = pending.pop() {
            if depth > 8 || !checked.insert(digest.clone()) {
                continue;
            }
            let Some(bytes) = self.kept_manifests.get(&digest) else {
                return false;
            };
            let Ok(outline) = Manifest::new(bytes.clone(), media_type.as_deref(), Some(&digest))
                .and_then(|m| ManifestOutline::of(&m))
            else {
                return false;
            };
            match outline.points_at {
                PointsAt::Children(children) => {
                    pending.extend(children.into_iter().map(|c| (c.digest, Some(c.media_type), depth + 1)))
                }
                PointsAt::Blobs(blobs) => {
                    if blobs
                        .first()
                        .is_some_and(|config| !self.kept_manifests.contains_key(&config.digest))
                    {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// Whether every entry of the archive is listed (false while a paused first pass waits).
    pub fn listing_complete(&self) -> bool {
        self.complete
    }

    /// The first pass paused at the first layer of a metadata-first archive, if it is still
    /// waiting; whoever takes it reads the rest of the archive.
    pub fn take_paused(&self) -> Option<PausedScan> {
        self.paused.lock().expect("paused scan lock").take()
    }

    /// The entry name a layout blob has (or would have) in this archive.
    pub fn blob_entry_name(&self, digest: &Digest) -> String {
        format!(
            "{}{LAYOUT_DIR}blobs/{}/{}",
            self.root,
            digest.algorithm().name(),
            digest.hex()
        )
    }

    /// The archive entry of a layout blob and its size.
    pub fn blob_entry(&self, digest: &Digest) -> Option<&(String, u64)> {
        self.blobs.get(digest)
    }

    /// Finds the image's top-level descriptor in `index.json`, in this order: by a pinned
    /// digest (the reference's, then `contentDigest`); by a full reference, normalised, in
    /// `org.opencontainers.image.ref.name` or containerd's `io.containerd.image.name` (through
    /// Porter's `relocation-mapping.json` when present); by a bare tag, only when the lookup
    /// allows it and exactly one descriptor carries the tag. A pin that an annotation naming
    /// the same reference contradicts is an error, never a silent choice.
    pub fn find_image(&self, lookup: &ImageLookup<'_>) -> Result<IndexEntry, ArchiveError> {
        let image = || lookup.raw.to_string();
        let mut names = vec![lookup.reference.clone()];
        if let Some(location) = self.published.get(lookup.raw) {
            match Reference::parse_normalized(location) {
                Ok(r) => names.insert(0, r),
                Err(e) => tracing::warn!("relocation-mapping.json: {location}: {e}"),
            }
        }
        let named: Vec<&IndexEntry> = self
            .index
            .iter()
            .filter(|e| {
                e.full_names()
                    .any(|n| names.iter().any(|want| full_name_matches(n, want)))
            })
            .collect();
        let pins: Vec<&Digest> = lookup.reference.digest().into_iter().chain(lookup.pinned).collect();
        for pin in &pins {
            if let Some(found) = self.index.iter().find(|e| &e.digest == *pin) {
                if let Some(other) = named.iter().find(|e| &e.digest != *pin) {
                    return Err(ArchiveError::PinContradicted {
                        image: image(),
                        pin: (*pin).clone(),
                        annotated: other.digest.clone(),
                    });
                }
                return Ok(found.clone());
            }
        }
        if !named.is_empty() {
            return one_digest(&named).ok_or_else(|| ArchiveError::AmbiguousImage {
                image: image(),
                candidates: digests(&named),
            });
        }
        let tag = lookup.reference.tag().unwrap_or("latest");
        let tagged: Vec<&IndexEntry> = self
            .index
            .iter()
            .filter(|e| e.ref_name().is_some_and(|n| is_bare_tag(n) && n == tag))
            .collect();
        if !tagged.is_empty() && lookup.reference.digest().is_none() {
            if !lookup.bare_tag_allowed {
                return Err(ArchiveError::BareTagShared {
                    image: image(),
                    tag: tag.to_string(),
                });
            }
            return match tagged.as_slice() {
                [only] => Ok((*only).clone()),
                many => Err(ArchiveError::AmbiguousImage {
                    image: image(),
                    candidates: digests(many),
                }),
            };
        }
        let mut searched: Vec<String> = pins.iter().map(|d| format!("a descriptor with digest {d}")).collect();
        searched.dedup();
        for n in &names {
            searched.push(format!(
                "{REF_NAME_ANNOTATION} or {CONTAINERD_NAME_ANNOTATION} = {n} (normalised)"
            ));
        }
        searched.push(format!("{REF_NAME_ANNOTATION} = {tag}"));
        Err(ArchiveError::ImageNotFound {
            image: image(),
            searched: searched.join(", "),
        })
    }

    /// The archive, read from the temporary file `spool`, which is removed when the archive
    /// goes.
    pub fn spooled(mut self, spool: tempfile::TempPath) -> ThickArchive {
        self._spool = Some(spool);
        self
    }

    /// The file to read the archive from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// `e` naming the archive as messages do.
    pub fn naming(&self, e: ArchiveError) -> ArchiveError {
        e.naming(&self.file, &self.path)
    }

    /// Layout manifests that name `subject` as theirs: digest and kind.
    pub fn referrers_of(&self, subject: &Digest) -> &[(Digest, ReferrerKind)] {
        self.referrers.get(subject).map_or(&[], Vec::as_slice)
    }

    /// `index.json` descriptors tagged with one of cosign's tags for `subject`
    /// (`sha256-<hex>.sig`), as a bare tag or a full reference into `repository` (a name as
    /// [`Reference::name`] gives it): tag, digest, kind.
    pub fn cosign_tagged(&self, subject: &Digest, repository: &str) -> Vec<(String, Digest, ReferrerKind)> {
        let mut found: Vec<(String, Digest, ReferrerKind)> = Vec::new();
        for e in &self.index {
            for name in [
                e.ref_name(),
                e.annotations.get(CONTAINERD_NAME_ANNOTATION).map(String::as_str),
            ]
            .into_iter()
            .flatten()
            {
                let tag = if is_bare_tag(name) {
                    Some(name.to_string())
                } else {
                    Reference::parse_normalized(name)
                        .ok()
                        .filter(|r| r.name() == repository)
                        .and_then(|r| r.tag().map(str::to_string))
                };
                let Some(tag) = tag else { continue };
                let Some((_, kind)) = parse_cosign_tag(&tag).filter(|(d, _)| d == subject) else {
                    continue;
                };
                if !found.iter().any(|(t, _, _)| *t == tag) {
                    found.push((tag, e.digest.clone(), kind));
                }
            }
        }
        found
    }

    /// The layout blob `digest` as an `index.json` would describe it (its media type left to
    /// the document), when the archive has it.
    pub fn describe(&self, digest: &Digest) -> Option<IndexEntry> {
        let (_, size) = self.blobs.get(digest)?;
        Some(IndexEntry {
            media_type: None,
            digest: digest.clone(),
            size: *size,
            annotations: BTreeMap::new(),
        })
    }

    /// Whether `index.json` has a descriptor with this digest.
    pub fn has_top_level(&self, digest: &Digest) -> bool {
        self.index.iter().any(|e| &e.digest == digest)
    }

    /// The digests of the descriptors whose `ref.name` is exactly the bare tag `tag`.
    pub fn bare_tagged(&self, tag: &str) -> Vec<&Digest> {
        self.index
            .iter()
            .filter(|e| e.ref_name().is_some_and(|n| is_bare_tag(n) && n == tag))
            .map(|e| &e.digest)
            .collect()
    }

    /// Checks that the layout holds `digest` with `size` bytes, small enough for a manifest.
    pub fn check_manifest_entry(&self, digest: &Digest, size: u64) -> Result<(), ArchiveError> {
        let layout_err = |detail: String| ArchiveError::Layout {
            path: self.path.clone(),
            detail,
        };
        let (_, archived_size) = self
            .blobs
            .get(digest)
            .ok_or_else(|| layout_err(format!("blob {digest} is not in {}{LAYOUT_DIR}blobs/", self.root)))?;
        if *archived_size != size {
            return Err(layout_err(format!(
                "blob {digest} is {archived_size} bytes in the archive but its descriptor says {size}"
            )));
        }
        if size > MAX_MANIFEST_SIZE as u64 {
            return Err(layout_err(format!(
                "manifest {digest} is {size} bytes; over {MAX_MANIFEST_SIZE} is refused"
            )));
        }
        Ok(())
    }

    /// A manifest's or config's bytes if the first pass kept them (unverified: the caller
    /// checks them against `digest`).
    pub fn kept_manifest(&self, digest: &Digest) -> Option<Bytes> {
        self.kept_manifests.get(digest).cloned()
    }

    /// Reads the layout blobs `digests` in one pass over the archive, however many they are,
    /// handing each to `each` as it is read (unverified); nothing is kept.
    pub fn read_manifests(
        &self,
        digests: &HashSet<Digest>,
        mut each: impl FnMut(&Digest, Bytes),
    ) -> Result<(), ArchiveError> {
        let by_entry: HashMap<&str, &Digest> = digests
            .iter()
            .filter_map(|d| self.blobs.get(d).map(|(name, _)| (name.as_str(), d)))
            .collect();
        tracing::info!(
            "reading {} manifest(s) from {} in one pass",
            by_entry.len(),
            self.path.display()
        );
        scan_archive(&self.file, |entry, size, content| {
            if let Some(digest) = by_entry.get(entry).filter(|_| size <= MAX_MANIFEST_SIZE as u64) {
                let mut buf = Vec::with_capacity(size as usize);
                content.read_to_end(&mut buf)?;
                each(digest, Bytes::from(buf));
            }
            Ok(())
        })
        .map_err(|e| self.naming(e))?;
        Ok(())
    }
}

/// `blobs/<alg>/<hex>` under the layout → the blob's digest.
fn blob_digest(name: &str, blob_dir: &str) -> Option<Digest> {
    let (alg, hex) = name.strip_prefix(blob_dir)?.split_once('/')?;
    format!("{alg}:{hex}").parse().ok()
}

/// A full reference annotation names `want`: name and tag equal after normalisation,
/// digests equal when both have one.
fn full_name_matches(annotation: &str, want: &Reference) -> bool {
    match Reference::parse_normalized(annotation) {
        Ok(r) => {
            r.name() == want.name()
                && r.tag() == want.tag()
                && match (r.digest(), want.digest()) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                }
        }
        Err(_) => false,
    }
}

/// A `ref.name` that is only a tag (as umoci, skopeo and oras write it), not a reference.
fn is_bare_tag(name: &str) -> bool {
    !name.contains(['/', ':', '@'])
}

/// The one digest all entries share, if they do.
fn one_digest(entries: &[&IndexEntry]) -> Option<IndexEntry> {
    let first = entries.first()?;
    entries
        .iter()
        .all(|e| e.digest == first.digest)
        .then(|| (*first).clone())
}

fn digests(entries: &[&IndexEntry]) -> String {
    let mut all: Vec<String> = entries.iter().map(|e| e.digest.to_string()).collect();
    all.dedup();
    all.join(", ")
}

impl std::fmt::Debug for ThickArchive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThickArchive")
            .field("path", &self.path)
            .field("root", &self.root)
            .field("images", &self.index.len())
            .field("blobs", &self.blobs.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Reference {
        Reference::parse_normalized(s).unwrap()
    }

    #[test]
    fn full_references_compare_after_normalisation() {
        let d = "sha256:f54a58bc1aac5ea1a25d796ae155dc228b3f0e11d046ae276b39c4bf2f13d8c4";
        let m = full_name_matches;
        assert!(m(
            &format!("docker.io/library/hello-world@{d}"),
            &r(&format!("hello-world@{d}"))
        ));
        assert!(m("docker.io/library/hello-world:latest", &r("hello-world:latest")));
        assert!(m(
            "index.docker.io/library/hello-world:latest",
            &r("hello-world:latest")
        ));
        assert!(!m("docker.io/library/hello-world:latest", &r("hello-world:1")));
        assert!(!m("docker.io/library/other:latest", &r("hello-world:latest")));
        assert!(m(&format!("hello-world:latest@{d}"), &r("hello-world:latest")));
        assert!(is_bare_tag("v1") && !is_bare_tag("app:v1"));
    }

    fn entry(n: u8, annotations: &[(&str, &str)]) -> IndexEntry {
        IndexEntry {
            media_type: None,
            digest: format!("sha256:{}", format!("{n:02x}").repeat(32)).parse().unwrap(),
            size: 1,
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn archive(index: Vec<IndexEntry>) -> ThickArchive {
        ThickArchive {
            path: "b.tgz".into(),
            file: "b.tgz".into(),
            _spool: None,
            bundle_json: Vec::new(),
            root: String::new(),
            index,
            published: BTreeMap::new(),
            blobs: HashMap::new(),
            kept_manifests: HashMap::new(),
            referrers: HashMap::new(),
            complete: true,
            paused: Mutex::new(None),
        }
    }

    fn find(a: &ThickArchive, image: &str, pinned: Option<u8>, bare_tag_allowed: bool) -> Result<u8, String> {
        let reference = r(image);
        let pin: Option<Digest> = pinned.map(|n| entry(n, &[]).digest);
        a.find_image(&ImageLookup {
            raw: image,
            reference: &reference,
            pinned: pin.as_ref(),
            bare_tag_allowed,
        })
        .map(|e| u8::from_str_radix(&e.digest.hex()[..2], 16).unwrap())
        .map_err(|e| e.to_string())
    }

    #[test]
    fn lookups_that_cannot_pick_the_wrong_image() {
        let a = archive(vec![
            entry(1, &[(REF_NAME_ANNOTATION, "1.0")]),
            entry(2, &[(REF_NAME_ANNOTATION, "example.com/b/two:1.0")]),
            entry(3, &[(CONTAINERD_NAME_ANNOTATION, "docker.io/library/alpine:3.18")]),
            entry(4, &[(REF_NAME_ANNOTATION, "latest")]),
            entry(5, &[(REF_NAME_ANNOTATION, "dup")]),
            entry(6, &[(REF_NAME_ANNOTATION, "dup")]),
        ]);
        assert_eq!(find(&a, "example.com/b/two:1.0", None, true), Ok(2), "full reference");
        assert_eq!(find(&a, "alpine:3.18", None, true), Ok(3), "containerd's annotation");
        assert_eq!(
            find(&a, "example.com/a/one:1.0", None, true),
            Ok(1),
            "a bare tag no one else has"
        );
        assert_eq!(find(&a, "example.com/a/one", None, true), Ok(4), "no tag is latest");
        let shared = find(&a, "example.com/a/one:1.0", None, false).unwrap_err();
        assert!(
            shared.contains("bare tag") && shared.contains("skopeo copy"),
            "{shared}"
        );
        assert!(find(&a, "example.com/x:dup", None, true)
            .unwrap_err()
            .contains("several"));
        assert_eq!(
            find(&a, "example.com/a/one:1.0", Some(6), false),
            Ok(6),
            "a pin wins over shared tags"
        );
        let contradicted = find(&a, "example.com/b/two:1.0", Some(1), true).unwrap_err();
        assert!(contradicted.contains("contradicts"), "{contradicted}");
        let missing = find(&a, "example.com/c/three:2", None, true).unwrap_err();
        assert!(
            missing.contains("not in the thick bundle") && missing.contains("skopeo copy"),
            "{missing}"
        );
    }
}
