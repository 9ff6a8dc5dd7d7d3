//! The OCI image layout inside a thick bundle, learnt in one streaming pass: `bundle.json`,
//! `index.json`, the list of blobs with their sizes, and the manifests that fit a memory
//! budget. The other manifests are read in later passes, many per pass; configs and layers are
//! never kept, they are streamed when uploaded.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::error::ArchiveError;
use super::tar_stream::{read_up_to, scan_archive, ArchiveIndex};
use crate::limits::{KEPT_MANIFESTS_BUDGET, MAX_BUNDLE_JSON, MAX_MANIFEST_SIZE};
use crate::reference::{Digest, Reference};

const LAYOUT_DIR: &str = "artifacts/layout/";
/// The annotation that names an image in `index.json`.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// containerd's annotation with the image's full reference (`ctr image export`).
pub const CONTAINERD_NAME_ANNOTATION: &str = "io.containerd.image.name";
/// Manifests up to this size (every manifest a registry accepts) are kept from the first pass.
const KEEP_MANIFESTS_UP_TO: u64 = MAX_MANIFEST_SIZE as u64;

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
    /// The archive file.
    pub path: PathBuf,
    /// The raw bytes of its `bundle.json`.
    pub bundle_json: Vec<u8>,
    /// "" or "dir/": where `bundle.json` and `artifacts/` are.
    root: String,
    index: Vec<IndexEntry>,
    /// Porter's `relocation-mapping.json`: bundle image → where it was published.
    published: BTreeMap<String, String>,
    /// Layout blobs in the archive: digest → (entry name, size).
    blobs: HashMap<Digest, (String, u64)>,
    /// Manifests kept from the first pass, within [`KEPT_MANIFESTS_BUDGET`] (unverified until
    /// used).
    kept_manifests: HashMap<Digest, Bytes>,
}

/// What the first pass over the archive keeps.
struct FirstPass {
    listing: ArchiveIndex,
    /// `bundle.json`, `index.json`, `oci-layout`, Porter's mapping: entry name → bytes.
    metadata: HashMap<String, Vec<u8>>,
    /// Layout blobs that look like manifests and fit the budget: entry name → bytes.
    manifests: HashMap<String, Bytes>,
}

/// The files that describe a bundle and its layout, relative to the bundle's root.
const METADATA: [&str; 4] = [
    "bundle.json",
    "relocation-mapping.json",
    "artifacts/layout/index.json",
    "artifacts/layout/oci-layout",
];

/// Whether an entry may be one of the [`METADATA`] files: at the archive root, or in a
/// top-level directory (the bundle's root when it is the only one). `Some(directory)` for the
/// latter.
fn metadata_position(name: &str) -> Option<Option<&str>> {
    if METADATA.contains(&name) {
        return Some(None);
    }
    let (top, rest) = name.split_once('/')?;
    METADATA.contains(&rest).then_some(Some(top))
}

/// Streams the archive once, keeping metadata and the manifests that fit in memory. Only
/// files that can be the bundle's metadata are kept, so an archive full of decoys costs no
/// memory: nested candidates are dropped as soon as a second top-level name shows the bundle
/// cannot be inside one directory.
fn first_pass(path: &Path) -> Result<FirstPass, ArchiveError> {
    let mut metadata: HashMap<String, Vec<u8>> = HashMap::new();
    let mut oversized = None;
    let mut manifests = HashMap::new();
    let mut kept = 0usize;
    let mut only_top: Option<String> = None;
    let mut single_top = true;
    let listing = scan_archive(path, |name, size, content| {
        let top = name.split('/').next().unwrap_or(name);
        match &only_top {
            None => only_top = Some(top.to_string()),
            Some(t) if single_top && t != top => {
                single_top = false;
                metadata.retain(|n, _| metadata_position(n) == Some(None));
            }
            _ => {}
        }
        match metadata_position(name) {
            Some(Some(_)) if !single_top => {}
            Some(_) => {
                if size > MAX_BUNDLE_JSON {
                    oversized.get_or_insert((name.to_string(), size));
                    return Ok(());
                }
                let mut buf = Vec::with_capacity(size as usize);
                content.read_to_end(&mut buf)?;
                metadata.insert(name.to_string(), buf);
            }
            None if name.contains("artifacts/layout/blobs/")
                && size <= KEEP_MANIFESTS_UP_TO
                && kept + size as usize <= KEPT_MANIFESTS_BUDGET =>
            {
                // layers and most configs are told apart by their first bytes, unread
                let mut head = [0u8; 64];
                let n = read_up_to(content, &mut head)?;
                if head[..n].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
                    let mut buf = Vec::with_capacity(size as usize);
                    buf.extend_from_slice(&head[..n]);
                    content.read_to_end(&mut buf)?;
                    if looks_like_manifest(&buf) {
                        kept += buf.len();
                        manifests.insert(name.to_string(), Bytes::from(buf));
                    }
                }
            }
            None => {}
        }
        Ok(())
    })?;
    if let Some((entry, size)) = oversized {
        return Err(ArchiveError::MetadataTooLarge {
            path: path.to_path_buf(),
            entry,
            size,
        });
    }
    Ok(FirstPass {
        listing,
        metadata,
        manifests,
    })
}

impl ThickArchive {
    /// One streaming pass over the archive; nothing is written anywhere.
    pub fn scan(path: &Path) -> Result<ThickArchive, ArchiveError> {
        let FirstPass {
            listing,
            mut metadata,
            manifests,
        } = first_pass(path)?;
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
        Ok(ThickArchive {
            path: path.to_path_buf(),
            bundle_json,
            root,
            index: index.manifests,
            published,
            blobs,
            kept_manifests: manifests,
        })
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

    /// A manifest's bytes if the first pass kept them (unverified: the caller checks them
    /// against `digest`).
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
        scan_archive(&self.path, |entry, size, content| {
            if let Some(digest) = by_entry.get(entry).filter(|_| size <= MAX_MANIFEST_SIZE as u64) {
                let mut buf = Vec::with_capacity(size as usize);
                content.read_to_end(&mut buf)?;
                each(digest, Bytes::from(buf));
            }
            Ok(())
        })?;
        Ok(())
    }
}

/// Manifests and indexes are JSON objects with `schemaVersion`; configs and layers are not,
/// and they are streamed again when uploaded anyway, so only manifests are kept.
fn looks_like_manifest(bytes: &[u8]) -> bool {
    bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
        && bytes
            .windows(b"\"schemaVersion\"".len())
            .any(|w| w == b"\"schemaVersion\"")
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
    fn only_manifests_are_kept() {
        assert!(looks_like_manifest(br#" {"schemaVersion":2,"config":{}}"#));
        assert!(
            !looks_like_manifest(br#"{"architecture":"amd64","rootfs":{}}"#),
            "a config"
        );
        assert!(!looks_like_manifest(b"\x1f\x8b\x08 schemaVersion"), "a layer");
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
            bundle_json: Vec::new(),
            root: String::new(),
            index,
            published: BTreeMap::new(),
            blobs: HashMap::new(),
            kept_manifests: HashMap::new(),
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
