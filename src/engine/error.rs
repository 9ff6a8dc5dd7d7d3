//! What can go wrong while copying, typed, with the cause chain of the layer below.

use std::sync::Arc;

use crate::archive::ArchiveError;
use crate::oci::{ManifestError, TreeError};
use crate::reference::Digest;
use crate::registry::RegistryError;

/// A failed step of a copy: reading the source, placing a blob, pushing a manifest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CopyError {
    /// The registry (source or destination) failed or refused.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A manifest cannot be relocated as it is.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A manifest listed as a referrer of `subject` does not name it as its subject.
    #[error("{digest} is listed as a referrer of {subject} but does not name it as its subject")]
    NotAReferrer {
        /// The manifest listed.
        digest: Digest,
        /// The subject it was listed for.
        subject: Digest,
    },
    /// The thick bundle could not be read.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The thick bundle broke while its blobs were read.
    #[error("reading the archive: {0}")]
    ArchiveRead(Arc<ArchiveError>),
    /// A child manifest's size differs from its descriptor's.
    #[error("child manifest {digest} is {actual} bytes but its descriptor says {declared}")]
    ChildSize {
        /// The child's digest.
        digest: Digest,
        /// Size in the descriptor.
        declared: u64,
        /// Size of the bytes read.
        actual: u64,
    },
    /// Indexes nest deeper than any real image does.
    #[error("index {0} nests indexes too deeply")]
    TooDeep(Digest),
    /// Blob bytes that do not match their descriptor; the upload was not committed.
    #[error("blob {digest}: {problem}; the upload was not committed")]
    BlobMismatch {
        /// The blob's digest.
        digest: Digest,
        /// How the bytes differ.
        problem: BlobProblem,
    },
    /// The source holds different content than the bundle pins.
    #[error("the bundle pins {expected}, but the source's manifest is {actual}; the source does not match the bundle")]
    PinMismatch {
        /// The pinned digest.
        expected: Digest,
        /// The digest the source has.
        actual: Digest,
    },
    /// Two images would write different manifests under one tag of one repository.
    #[error("{reference} would receive both {first} and {second}; two images of the bundle claim the same tag")]
    TagCollision {
        /// `registry/repository:tag`.
        reference: String,
        /// One manifest digest.
        first: Digest,
        /// The other.
        second: Digest,
    },
    /// After the push the destination names another manifest (or none) for the reference.
    #[error("after the push the target answers {} for {reference}, not {expected}", found.as_ref().map_or("nothing".to_string(), |d| d.to_string()))]
    NotVerified {
        /// The pushed reference.
        reference: String,
        /// The digest pushed.
        expected: Digest,
        /// The digest the destination reports.
        found: Option<Digest>,
    },
    /// The archive being written stopped taking entries (its own error says why).
    #[error("the archive writer stopped")]
    WriterStopped,
    /// The source broke off while a blob's bytes were read.
    #[error("reading blob {digest}: {source}")]
    BlobRead {
        /// The blob.
        digest: Digest,
        /// Why.
        source: std::io::Error,
    },
    /// The source never offered the blob's bytes (an archive pass that did not reach it).
    #[error("blob {0} was not found in the source when its bytes were needed")]
    BlobNotOffered(Digest),
    /// The task delivering the blob ended without an answer (it panicked).
    #[error("blob {0}: its delivery ended unexpectedly")]
    DeliveryFailed(Digest),
    /// Content addressed by a digest other than sha256.
    #[error("{0} is not a sha256 digest; only sha256 content is relocated (nothing was pushed)")]
    UnsupportedDigest(Digest),
    /// The source did not return a manifest of a resolved tree when it was read again.
    #[error("manifest {0} was not found in the source when its bytes were needed")]
    ManifestNotOffered(Digest),
    /// The image was not prepared by the source (an internal inconsistency).
    #[error("image {0} is not known to the source")]
    UnknownImage(String),
}

/// How streamed blob bytes differ from their descriptor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlobProblem {
    /// More bytes than the descriptor's size arrived.
    #[error("the source sent more than the descriptor's {size} bytes")]
    TooLong {
        /// The descriptor's size.
        size: u64,
    },
    /// Fewer bytes arrived.
    #[error("{seen} bytes arrived but the descriptor says {size}")]
    TooShort {
        /// Bytes that arrived.
        seen: u64,
        /// The descriptor's size.
        size: u64,
    },
    /// The bytes hash to another digest.
    #[error("the content hashes to {0}")]
    Digest(Digest),
}

impl CopyError {
    /// Whether the whole transfer may succeed when tried again (the request-level retries of
    /// the registry client are already spent when this is asked).
    pub fn is_retryable(&self) -> bool {
        matches!(self, CopyError::Registry(e) if e.is_retryable())
    }
}

impl From<TreeError<CopyError>> for CopyError {
    fn from(e: TreeError<CopyError>) -> Self {
        match e {
            TreeError::Manifest(e) => CopyError::Manifest(e),
            TreeError::Fetch(e) => e,
            TreeError::ChildSize {
                digest,
                declared,
                actual,
            } => CopyError::ChildSize {
                digest,
                declared,
                actual,
            },
            TreeError::TooDeep(d) => CopyError::TooDeep(d),
            // TreeError is non_exhaustive only towards other crates
        }
    }
}

/// Why one image was not copied. Each names the step; the image itself is named by the
/// [`ImageResult`](super::ImageResult) that carries this.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// Its manifests could not be read, or do not match what the bundle pins.
    #[error("reading the source: {0}")]
    Source(Arc<CopyError>),
    /// The destination could not be asked whether it holds the image already.
    #[error("checking the target {destination}: {error}")]
    Target {
        /// The destination's name.
        destination: String,
        /// Why.
        error: Arc<CopyError>,
    },
    /// Another image of the run would put different content under the same tag.
    #[error("{0}")]
    Conflict(Arc<CopyError>),
    /// One of its blobs could not be placed.
    #[error("blob {digest} could not be copied to {destination}: {error}")]
    Blob {
        /// The blob.
        digest: Digest,
        /// The destination's name.
        destination: String,
        /// Why.
        error: Arc<CopyError>,
    },
    /// Pushing or verifying its manifests failed.
    #[error("pushing to {destination}: {error}")]
    Push {
        /// The destination's name.
        destination: String,
        /// Why.
        error: Arc<CopyError>,
    },
    /// What refers to it (a signature, an attestation, an SBOM) could not be found or
    /// copied: the image would arrive without it.
    #[error("{what}: {error}")]
    Referrer {
        /// Which referrer, or the lookup.
        what: String,
        /// Why.
        error: Box<ImageError>,
    },
    /// Another image failed before anything was pushed, so nothing was.
    #[error("not copied: another image of the bundle failed before any push")]
    NotAttempted,
}
