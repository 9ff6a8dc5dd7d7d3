//! Why a bundle cannot be relocated.

use std::path::PathBuf;

use crate::archive::ArchiveError;
use crate::limits::MAX_BUNDLE_JSON;
use crate::reference::ReferenceError;

/// An unreadable or invalid bundle, or images it declares that cannot be relocated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// BUNDLE cannot be opened or read.
    #[error("cannot read bundle {path}: {source}")]
    Read {
        /// The bundle's path.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A `bundle.json` larger than [`MAX_BUNDLE_JSON`].
    #[error("bundle {path} {}; a bundle.json over {max} bytes is refused", size.map_or(format!("has more than {MAX_BUNDLE_JSON} bytes"), |s| format!("is {s} bytes")), max = MAX_BUNDLE_JSON)]
    TooLarge {
        /// The bundle's path.
        path: PathBuf,
        /// Its size in bytes, when known (a pipe's is not).
        size: Option<u64>,
    },
    /// Neither gzip nor JSON: the first non-whitespace byte is not printable ASCII.
    #[error("bundle {path} is neither a gzipped thick bundle nor JSON (its first byte is {first:#04x})")]
    NotJson {
        /// The bundle's path.
        path: PathBuf,
        /// That byte.
        first: u8,
    },
    /// Not valid JSON for a CNAB bundle.
    #[error("bundle {path} is not valid JSON for a CNAB bundle: {source}")]
    Json {
        /// The bundle's path.
        path: PathBuf,
        /// The parser's error, with line and column.
        source: serde_json::Error,
    },
    /// The thick bundle cannot be read or lacks what relocation needs.
    #[error(transparent)]
    Thick(#[from] ArchiveError),
    /// Several images of the bundle are wrong: each is named (all are found before anything
    /// is done).
    #[error("{} problems in the bundle; nothing was copied:{}", .0.len(), .0.iter().map(|e| format!("\n  {e}")).collect::<String>())]
    Several(Vec<BundleError>),
    /// `invocationImages` is missing or empty.
    #[error("the bundle has no invocation image (invocationImages is missing or empty)")]
    NoInvocationImage,
    /// An image whose `imageType` is neither `oci` nor `docker`.
    #[error("{at}: image \"{image}\" has imageType \"{image_type}\"; only oci and docker images can be relocated, so nothing was copied")]
    UnsupportedImageType {
        /// Where the bundle declares it, e.g. `images.web`.
        at: String,
        /// The image string.
        image: String,
        /// Its `imageType`.
        image_type: String,
    },
    /// An image string that is not a valid reference.
    #[error("{at}: {source}")]
    InvalidImage {
        /// Where the bundle declares it, e.g. `invocationImages[0]`.
        at: String,
        /// Why the reference is invalid.
        source: ReferenceError,
    },
    /// A `contentDigest` that is not a valid digest.
    #[error("{at}: contentDigest: {source}")]
    InvalidContentDigest {
        /// Where the bundle declares it, e.g. `images.web`.
        at: String,
        /// Why the digest is invalid.
        source: ReferenceError,
    },
    /// One image string declared twice with different digests.
    #[error("image \"{image}\" is declared twice with different digests: {first} and {second}")]
    ConflictingDigests {
        /// The image string.
        image: String,
        /// The first declaration and its digest.
        first: String,
        /// The conflicting declaration and its digest.
        second: String,
    },
}
