//! Why a thick bundle cannot be read.

use std::path::PathBuf;

use crate::limits::MAX_BUNDLE_JSON;
use crate::reference::Digest;

/// How to write a layout that names every image unambiguously.
const FULL_REFERENCES: &str =
    "write the layout with full references, e.g. `skopeo copy --all --preserve-digests docker://REF oci:LAYOUT:REF`";

/// A thick bundle that is unreadable, unsafe, or lacks what relocation needs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// Opening, decompressing or reading the archive failed, including a truncated archive.
    #[error("cannot read thick bundle {path}: {source} (is the archive complete?)")]
    Io {
        /// The thick bundle's path.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// Writing a thick bundle (an export) failed.
    #[error("cannot write thick bundle {path}: {source}")]
    Write {
        /// The thick bundle being written.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// An entry that could point outside the archive or is not a plain file or directory
    /// (absolute path, `..`, link, device, non-UTF-8 name).
    #[error("thick bundle {path}: refusing entry \"{entry}\": {reason}")]
    UnsafeEntry {
        /// The thick bundle's path.
        path: PathBuf,
        /// The entry's name as stored in the archive.
        entry: String,
        /// Why it is refused.
        reason: String,
    },
    /// Two regular files with the same normalised name.
    #[error("thick bundle {path}: entry \"{entry}\" appears more than once")]
    DuplicateEntry {
        /// The thick bundle's path.
        path: PathBuf,
        /// The normalised entry name.
        entry: String,
    },
    /// No `bundle.json` at the root of the archive nor in its single top-level directory.
    #[error("thick bundle {path} has no bundle.json at its root (nor in a single top-level directory)")]
    NoBundleJson {
        /// The thick bundle's path.
        path: PathBuf,
    },
    /// A metadata entry (`bundle.json`, `relocation-mapping.json`, the layout's `index.json` or
    /// `oci-layout`) larger than [`MAX_BUNDLE_JSON`].
    #[error("thick bundle {path}: {entry} is {size} bytes; over {max} bytes is refused", max = MAX_BUNDLE_JSON)]
    MetadataTooLarge {
        /// The thick bundle's path.
        path: PathBuf,
        /// The entry's name.
        entry: String,
        /// Its size in bytes.
        size: u64,
    },
    /// The OCI image layout is missing, malformed, or disagrees with itself (a missing blob,
    /// a size mismatch, an invalid manifest).
    #[error("thick bundle {path}: {detail}")]
    Layout {
        /// The thick bundle's path.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// No top-level descriptor of `index.json` matches the image.
    #[error("image \"{image}\" is not in the thick bundle's OCI layout; searched index.json for {searched}; {FULL_REFERENCES}")]
    ImageNotFound {
        /// The bundle's image string.
        image: String,
        /// What was looked for, as a readable list.
        searched: String,
    },
    /// Descriptors of `index.json` with different digests all match the image.
    #[error("image \"{image}\" matches several different manifests in the thick bundle's index.json: {candidates}; {FULL_REFERENCES}")]
    AmbiguousImage {
        /// The bundle's image string.
        image: String,
        /// The matching digests, comma-separated.
        candidates: String,
    },
    /// The layout names the image only by a tag another image of the bundle also has.
    #[error("image \"{image}\" is found in the thick bundle's index.json only by the bare tag \"{tag}\", which another image of the bundle, from another repository, also has: the tag cannot tell them apart; {FULL_REFERENCES}")]
    BareTagShared {
        /// The bundle's image string.
        image: String,
        /// The tag.
        tag: String,
    },
    /// The pinned digest is in the layout, but an annotation naming the image points elsewhere.
    #[error("image \"{image}\": the bundle pins {pin}, but index.json annotates {annotated} with the same reference; the layout contradicts the bundle")]
    PinContradicted {
        /// The bundle's image string.
        image: String,
        /// The pinned digest.
        pin: Digest,
        /// The digest the annotation names.
        annotated: Digest,
    },
    /// Something of one image's tree is wrong in the layout.
    #[error("image \"{image}\": {source}")]
    InImage {
        /// The bundle's image string.
        image: String,
        /// What is wrong.
        source: Box<ArchiveError>,
    },
    /// Several images of the bundle cannot be relocated from the archive.
    #[error("{} images of the bundle cannot be relocated from the thick bundle:{}", .0.len(), .0.iter().map(|e| format!("\n  {e}")).collect::<String>())]
    Images(Vec<ArchiveError>),
    /// The manifest the archive holds for an image is not the one the bundle pins.
    #[error("image \"{image}\": the bundle pins {expected} but the archive holds {actual} for it")]
    PinMismatch {
        /// The bundle's image string.
        image: String,
        /// The digest the bundle pins.
        expected: String,
        /// The digest of the descriptor found in the archive.
        actual: String,
    },
}

impl ArchiveError {
    /// The same error naming the archive `shown` where it names the file `read` (a bundle
    /// read from a pipe is spooled to a file no message should name).
    pub fn naming(self, read: &std::path::Path, shown: &std::path::Path) -> ArchiveError {
        let name = |path: PathBuf| if path == read { shown.to_path_buf() } else { path };
        match self {
            ArchiveError::Io { path, source } => ArchiveError::Io {
                path: name(path),
                source,
            },
            ArchiveError::Write { path, source } => ArchiveError::Write {
                path: name(path),
                source,
            },
            ArchiveError::UnsafeEntry { path, entry, reason } => ArchiveError::UnsafeEntry {
                path: name(path),
                entry,
                reason,
            },
            ArchiveError::DuplicateEntry { path, entry } => ArchiveError::DuplicateEntry {
                path: name(path),
                entry,
            },
            ArchiveError::NoBundleJson { path } => ArchiveError::NoBundleJson { path: name(path) },
            ArchiveError::MetadataTooLarge { path, entry, size } => ArchiveError::MetadataTooLarge {
                path: name(path),
                entry,
                size,
            },
            ArchiveError::Layout { path, detail } => ArchiveError::Layout {
                path: name(path),
                detail,
            },
            ArchiveError::InImage { image, source } => ArchiveError::InImage {
                image,
                source: Box::new(source.naming(read, shown)),
            },
            ArchiveError::Images(all) => ArchiveError::Images(all.into_iter().map(|e| e.naming(read, shown)).collect()),
            other => other,
        }
    }
}
