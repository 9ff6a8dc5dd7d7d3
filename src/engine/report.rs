//! What a copy reports: events for progress and `--json`, and the per-image results.

use std::sync::Arc;

use serde::Serialize;

use super::error::ImageError;
use crate::oci::ReferrerKind;
use crate::reference::Digest;

/// Progress of a run, for people (progress bars, lines) and machines (`--json`).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// The image's manifests were read.
    ImageResolved {
        /// The image as the user named it.
        image: String,
        /// Where it goes.
        relocated: String,
        /// Its manifest (or index) digest.
        digest: String,
        /// How many distinct blobs it has.
        blobs: usize,
        /// The size of all its blobs.
        bytes: u64,
    },
    /// The destination already holds the image under the pushed reference: nothing to send.
    ImageAlreadyPresent {
        /// The image as the user named it.
        image: String,
        /// Where it is.
        relocated: String,
        /// Its digest.
        digest: String,
    },
    /// A blob upload started.
    BlobStarted {
        /// The blob.
        digest: String,
        /// The destination repository.
        repository: String,
        /// Its size.
        size: u64,
    },
    /// `bytes` more of a blob were sent.
    BlobProgress {
        /// The blob.
        digest: String,
        /// Bytes since the last event.
        bytes: u64,
    },
    /// A blob is in a destination repository.
    BlobDone {
        /// The blob.
        digest: String,
        /// The destination repository.
        repository: String,
        /// How it got there.
        outcome: BlobOutcome,
    },
    /// An image was copied and verified.
    ImageCopied {
        /// The image as the user named it.
        image: String,
        /// Where it went.
        relocated: String,
        /// Its digest.
        digest: String,
        /// What it cost.
        #[serde(flatten)]
        stats: ImageStats,
    },
    /// Something that refers to a copied image (a signature, an attestation, an SBOM) was
    /// copied with it.
    ReferrerCopied {
        /// The bundle image it travels with.
        image: String,
        /// The manifest it refers to.
        subject: String,
        /// What it is.
        kind: ReferrerKind,
        /// Its digest.
        digest: String,
        /// Where it went.
        relocated: String,
    },
    /// Something that refers to a copied image was in the destination already.
    ReferrerPresent {
        /// The bundle image it travels with.
        image: String,
        /// The manifest it refers to.
        subject: String,
        /// What it is.
        kind: ReferrerKind,
        /// Its digest.
        digest: String,
        /// Where it is.
        relocated: String,
    },
    /// An image could not be copied.
    ImageFailed {
        /// The image as the user named it.
        image: String,
        /// Where it was going.
        relocated: String,
        /// Why.
        #[serde(serialize_with = "display")]
        error: ImageError,
    },
}

fn display<S: serde::Serializer>(e: &ImageError, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(e)
}

/// How a blob reached a destination repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "how", rename_all = "snake_case")]
pub enum BlobOutcome {
    /// It was there already.
    Present,
    /// Mounted from another repository of the same registry.
    Mounted {
        /// The repository it was mounted from.
        from: String,
    },
    /// Its bytes were sent.
    Uploaded {
        /// How many.
        bytes: u64,
    },
}

/// What copying one image cost.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImageStats {
    /// Blob bytes uploaded for this image's repository.
    pub bytes_sent: u64,
    /// Blobs uploaded.
    pub blobs_uploaded: usize,
    /// Blobs mounted from another repository.
    pub blobs_mounted: usize,
    /// Blobs the repository already had.
    pub blobs_present: usize,
    /// Blobs an earlier image of the run placed in the same repository (charged to it).
    pub blobs_shared: usize,
    /// Manifests pushed (children and the image itself).
    pub manifests_pushed: usize,
}

/// Receives every [`Event`] of a run, from any task.
pub type Reporter = Arc<dyn Fn(&Event) + Send + Sync>;

/// What happened to one image.
#[derive(Debug, Clone)]
pub struct ImageResult {
    /// The image as the user named it.
    pub image: String,
    /// Where it goes.
    pub relocated: String,
    /// Copied (or found present), or why not.
    pub outcome: Result<CopiedImage, ImageError>,
}

impl std::fmt::Display for ImageResult {
    /// `image → relocated: what happened`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.outcome {
            Ok(c) if c.already_present => {
                write!(f, "{} → {}: already present ({})", self.image, self.relocated, c.digest)
            }
            Ok(c) => write!(f, "{} → {}: copied ({})", self.image, self.relocated, c.digest),
            Err(e) => write!(f, "{} → {}: {e}", self.image, self.relocated),
        }
    }
}

/// An image that is in the destination.
#[derive(Debug, Clone)]
pub struct CopiedImage {
    /// Its manifest (or index) digest.
    pub digest: Digest,
    /// Whether it was there before the run.
    pub already_present: bool,
    /// What copying it cost.
    pub stats: ImageStats,
    /// What refers to it (signatures, attestations, SBOMs), in the destination with it.
    pub referrers: Vec<CopiedReferrer>,
}

/// A referrer that travelled with an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopiedReferrer {
    /// What it is.
    pub kind: ReferrerKind,
    /// Its digest.
    pub digest: Digest,
    /// Where it is in the destination.
    pub relocated: String,
    /// Whether it was there before the run.
    pub already_present: bool,
}

/// The result of a whole copy.
#[derive(Debug, Clone, Default)]
pub struct CopyReport {
    /// One result per job, in job order.
    pub images: Vec<ImageResult>,
    /// Blob bytes the destination received, each upload counted once.
    pub bytes_sent: u64,
    /// Blob uploads the destination received.
    pub blobs_uploaded: usize,
    /// Blobs the destination mounted.
    pub blobs_mounted: usize,
}

impl CopyReport {
    /// Whether the run failed only because images claim one tag with different content
    /// (an input error: nothing was pushed).
    pub fn failed_on_conflicts(&self) -> bool {
        use super::error::ImageError::{Conflict, NotAttempted};
        let failures: Vec<&ImageError> = self.failures().filter_map(|f| f.outcome.as_ref().err()).collect();
        failures.iter().any(|e| matches!(e, Conflict(_)))
            && failures.iter().all(|e| matches!(e, Conflict(_) | NotAttempted))
    }

    /// Whether every image is in the destination.
    pub fn succeeded(&self) -> bool {
        self.images.iter().all(|i| i.outcome.is_ok())
    }

    /// The results of the images that failed.
    pub fn failures(&self) -> impl Iterator<Item = &ImageResult> {
        self.images.iter().filter(|i| i.outcome.is_err())
    }
}
