//! What a copy reports: events for progress and `--json`, and the per-image results.

use serde::Serialize;
use std::sync::Arc;

use crate::reference::Digest;

/// Progress of a run, for people (progress bars, lines) and machines (`--json`).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The image's manifests were read; `bytes` is the size of all its blobs.
    ImageResolved {
        image: String,
        relocated: String,
        digest: String,
        blobs: usize,
        bytes: u64,
    },
    /// The target already holds the image under the pushed reference: nothing to send.
    ImageAlreadyPresent {
        image: String,
        relocated: String,
        digest: String,
    },
    BlobStarted {
        digest: String,
        repository: String,
        size: u64,
    },
    /// `bytes` more of a blob were sent.
    BlobProgress { digest: String, bytes: u64 },
    BlobDone {
        digest: String,
        repository: String,
        outcome: BlobOutcome,
    },
    ImageCopied {
        image: String,
        relocated: String,
        digest: String,
        #[serde(flatten)]
        stats: ImageStats,
    },
    ImageFailed {
        image: String,
        relocated: String,
        error: String,
    },
}

/// How a blob reached a target repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "how", rename_all = "snake_case")]
pub enum BlobOutcome {
    /// It was there already.
    Present,
    Mounted {
        from: String,
    },
    Uploaded {
        bytes: u64,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImageStats {
    pub bytes_sent: u64,
    pub blobs_uploaded: usize,
    pub blobs_mounted: usize,
    pub blobs_present: usize,
    pub manifests_pushed: usize,
}

pub type Reporter = Arc<dyn Fn(&Event) + Send + Sync>;

/// What happened to one image of the bundle.
#[derive(Debug, Clone)]
pub struct ImageResult {
    pub image: String,
    pub relocated: String,
    pub outcome: Result<CopiedImage, String>,
}

#[derive(Debug, Clone)]
pub struct CopiedImage {
    pub digest: Digest,
    pub already_present: bool,
    pub stats: ImageStats,
}

#[derive(Debug, Clone, Default)]
pub struct CopyReport {
    pub images: Vec<ImageResult>,
    /// Blob bytes actually sent, each upload counted once (images sharing a repository share
    /// uploads, so the per-image figures can overlap).
    pub bytes_sent: u64,
}

impl CopyReport {
    pub fn succeeded(&self) -> bool {
        self.images.iter().all(|i| i.outcome.is_ok())
    }

    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent
    }
}
