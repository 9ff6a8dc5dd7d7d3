//! Thick bundles: a gzipped tar holding `bundle.json` and an OCI image layout at
//! `artifacts/layout/`. The archive is only ever streamed; nothing is extracted to disk.

mod archive;
mod layout;
mod source;

use std::path::PathBuf;

pub use archive::{scan_archive, ArchiveIndex};
pub use layout::{IndexEntry, ThickArchive};
pub use source::ThickSource;

#[derive(Debug, thiserror::Error)]
pub enum ThickError {
    #[error("cannot read thick bundle {path}: {source} (is the archive complete?)")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("thick bundle {path}: refusing entry \"{entry}\": {reason}")]
    UnsafeEntry {
        path: PathBuf,
        entry: String,
        reason: String,
    },
    #[error("thick bundle {path}: entry \"{entry}\" appears more than once")]
    DuplicateEntry { path: PathBuf, entry: String },
    #[error("thick bundle {path} has no bundle.json at its root (nor in a single top-level directory)")]
    NoBundleJson { path: PathBuf },
    #[error("thick bundle {path}: {entry} is {size} bytes; over {max} bytes is refused", max = crate::bundle::MAX_BUNDLE_JSON)]
    BundleJsonTooLarge { path: PathBuf, entry: String, size: u64 },
    #[error("thick bundle {path}: {detail}")]
    Layout { path: PathBuf, detail: String },
    #[error("image \"{image}\" is not in the thick bundle's OCI layout; searched index.json for {searched}")]
    ImageNotFound { image: String, searched: String },
    #[error("image \"{image}\" matches several different manifests in the thick bundle's index.json: {candidates}")]
    AmbiguousImage { image: String, candidates: String },
    #[error("image \"{image}\": the bundle pins {expected} but the archive holds {actual} for it")]
    PinMismatch {
        image: String,
        expected: String,
        actual: String,
    },
}
