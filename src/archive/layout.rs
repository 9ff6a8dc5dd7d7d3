//! The OCI image layout inside a thick bundle, learnt in one streaming pass: `bundle.json`,
//! `index.json`, the list of blobs with their sizes, and the manifests, kept in memory. Configs
//! and layers are not kept; they are streamed later.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;

use super::error::ArchiveError;
use super::tar_stream::{scan_archive, ArchiveIndex};
use crate::limits::{MAX_BUNDLE_JSON, MAX_MANIFEST_SIZE};
use crate::oci::Manifest;
use crate::reference::{Digest, Reference};

const LAYOUT_DIR: &str = "artifacts/layout/";
/// The annotation that names an image in `index.json`.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// Manifests up to this size are kept from the first pass.
const KEEP_MANIFESTS_UP_TO: u64 = 256 * 1024;
/// Memory for kept manifests; any beyond it are read in a later, targeted pass.
const KEPT_MANIFESTS_BUDGET: usize = 32 * 1024 * 1024;

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
    /// Manifests kept from the first pass or read later (unverified until used).
    manifests_in_memory: Mutex<HashMap<Digest, Bytes>>,
}

/// What the first pass over the archive keeps.
struct FirstPass {
    listing: ArchiveIndex,
    /// `bundle.json`, `index.json`, `oci-layout`, Porter's mapping: entry name → bytes.
    metadata: HashMap<String, Vec<u8>>,
    /// Layout blobs that look like manifests and fit the budget: entry name → bytes.
    manifests: HashMap<String, Bytes>,
}

/// Whether an entry is one of the few small files that describe the bundle and its layout.
fn is_metadata(name: &str) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name);
    let depth = name.split('/').count();
    matches!(base, "bundle.json" | "relocation-mapping.json") && depth <= 2
        || name.ends_with("artifacts/layout/index.json")
        || name.ends_with("artifacts/layout/oci-layout")
}

/// Streams the archive once, keeping metadata and the manifests that fit in memory.
fn first_pass(path: &Path) -> Result<FirstPass, ArchiveError> {
    let mut metadata = HashMap::new();
    let mut oversized = None;
    let mut manifests = HashMap::new();
    let mut kept = 0usize;
    let listing = scan_archive(path, |name, size, content| {
        if is_metadata(name) {
            if size > MAX_BUNDLE_JSON {
                oversized.get_or_insert((name.to_string(), size));
                return Ok(());
            }
            let mut buf = Vec::with_capacity(size as usize);
            content.read_to_end(&mut buf)?;
            metadata.insert(name.to_string(), buf);
        } else if name.contains("artifacts/layout/blobs/")
            && size <= KEEP_MANIFESTS_UP_TO
            && kept + size as usize <= KEPT_MANIFESTS_BUDGET
        {
            let mut buf = Vec::with_capacity(size as usize);
            content.read_to_end(&mut buf)?;
            if looks_like_manifest(&buf) {
                kept += buf.len();
                manifests.insert(name.to_string(), Bytes::from(buf));
            }
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
            manifests_in_memory: Mutex::new(manifests),
        })
    }

    /// The archive entry of a layout blob and its size.
    pub fn blob_entry(&self, digest: &Digest) -> Option<&(String, u64)> {
        self.blobs.get(digest)
    }

    /// Finds the image's top-level descriptor: by the reference's digest, then by
    /// `contentDigest`, then (through Porter's `relocation-mapping.json` when present) by the
    /// `org.opencontainers.image.ref.name` annotation compared after normalisation.
    ///
    /// `raw` is the bundle's image string (Porter's mapping is keyed by it), `pinned` the
    /// digest the bundle pins besides the reference's own (`contentDigest`).
    pub fn find_image(
        &self,
        raw: &str,
        reference: &Reference,
        pinned: Option<&Digest>,
    ) -> Result<IndexEntry, ArchiveError> {
        let mut searched = Vec::new();
        for digest in reference.digest().into_iter().chain(pinned) {
            if let Some(e) = self.index.iter().find(|e| &e.digest == digest) {
                return Ok(e.clone());
            }
            let s = format!("a descriptor with digest {digest}");
            if !searched.contains(&s) {
                searched.push(s);
            }
        }
        let mut names = vec![reference.clone()];
        if let Some(location) = self.published.get(raw) {
            match Reference::parse_normalized(location) {
                Ok(r) => names.insert(0, r),
                Err(e) => tracing::warn!("relocation-mapping.json: {location}: {e}"),
            }
        }
        let matches: Vec<&IndexEntry> = self
            .index
            .iter()
            .filter(|e| {
                e.ref_name()
                    .is_some_and(|n| names.iter().any(|want| ref_name_matches(n, want)))
            })
            .collect();
        for n in &names {
            searched.push(format!("{REF_NAME_ANNOTATION} = {n} (normalised)"));
        }
        match matches.as_slice() {
            [] => Err(ArchiveError::ImageNotFound {
                image: raw.to_string(),
                searched: searched.join(", "),
            }),
            [first, rest @ ..] if rest.iter().all(|e| e.digest == first.digest) => Ok((*first).clone()),
            many => Err(ArchiveError::AmbiguousImage {
                image: raw.to_string(),
                candidates: many.iter().map(|e| e.digest.to_string()).collect::<Vec<_>>().join(", "),
            }),
        }
    }

    /// A manifest from the layout, checked against `digest` and `size`.
    pub fn manifest(&self, digest: &Digest, size: u64, media_type: Option<&str>) -> Result<Manifest, ArchiveError> {
        let bytes = self.blob_bytes(digest, size)?;
        Manifest::new(bytes, media_type, Some(digest)).map_err(|e| ArchiveError::Layout {
            path: self.path.clone(),
            detail: format!("manifest {digest}: {e}"),
        })
    }

    fn blob_bytes(&self, digest: &Digest, size: u64) -> Result<Bytes, ArchiveError> {
        let missing = || ArchiveError::Layout {
            path: self.path.clone(),
            detail: format!("blob {digest} is not in {}{LAYOUT_DIR}blobs/", self.root),
        };
        let (_, archived_size) = self.blobs.get(digest).ok_or_else(missing)?;
        if *archived_size != size {
            return Err(ArchiveError::Layout {
                path: self.path.clone(),
                detail: format!("blob {digest} is {archived_size} bytes in the archive but its descriptor says {size}"),
            });
        }
        if size > MAX_MANIFEST_SIZE as u64 {
            return Err(ArchiveError::Layout {
                path: self.path.clone(),
                detail: format!("manifest {digest} is {size} bytes; over {MAX_MANIFEST_SIZE} is refused"),
            });
        }
        if let Some(b) = self
            .manifests_in_memory
            .lock()
            .expect("manifest cache lock")
            .get(digest)
        {
            return Ok(b.clone());
        }
        // not kept by the first pass (large, or over the budget): read just this one
        let (name, _) = self.blobs.get(digest).ok_or_else(missing)?;
        let mut found = None;
        scan_archive(&self.path, |entry, _, content| {
            if entry == name {
                let mut buf = Vec::new();
                content.read_to_end(&mut buf)?;
                found = Some(Bytes::from(buf));
            }
            Ok(())
        })?;
        let bytes = found.ok_or_else(missing)?;
        self.manifests_in_memory
            .lock()
            .expect("manifest cache lock")
            .insert(digest.clone(), bytes.clone());
        Ok(bytes)
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

/// `annotation` names `want`: full references compare normalised (name and tag equal, digests
/// equal when both have one); a bare tag (other producers) compares with the tag alone.
fn ref_name_matches(annotation: &str, want: &Reference) -> bool {
    if !annotation.contains(['/', ':', '@']) {
        return want.tag().unwrap_or("latest") == annotation;
    }
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
    fn annotations_compare_after_normalisation() {
        let d = "sha256:f54a58bc1aac5ea1a25d796ae155dc228b3f0e11d046ae276b39c4bf2f13d8c4";
        assert!(ref_name_matches(
            &format!("docker.io/library/hello-world@{d}"),
            &r(&format!("hello-world@{d}"))
        ));
        assert!(ref_name_matches(
            "docker.io/library/hello-world:latest",
            &r("hello-world:latest")
        ));
        assert!(ref_name_matches(
            "index.docker.io/library/hello-world:latest",
            &r("hello-world:latest")
        ));
        assert!(!ref_name_matches(
            "docker.io/library/hello-world:latest",
            &r("hello-world:1")
        ));
        assert!(!ref_name_matches(
            "docker.io/library/other:latest",
            &r("hello-world:latest")
        ));
        assert!(ref_name_matches(
            &format!("hello-world:latest@{d}"),
            &r("hello-world:latest")
        ));
        // bare tags, as umoci and `oras` write them
        assert!(ref_name_matches("v1", &r("example.com/app:v1")));
        assert!(ref_name_matches("latest", &r("example.com/app")));
        assert!(!ref_name_matches("v2", &r("example.com/app:v1")));
    }
}
