//! The copy engine: images from a [`Source`] to a [`Destination`], digests kept.
//!
//! A [`Source`] reads manifests and streams blobs ([`RegistrySource`] for registries,
//! [`ArchiveSource`] for the OCI layout inside a thick bundle); a [`Destination`] checks,
//! mounts and stores them ([`RegistryDestination`]). [`copy_images`] plans the work for a list
//! of [`ImageJob`]s and drives one placement state machine per (destination repository,
//! blob), and one push per (repository, manifest), whatever the source and destination.

mod archive_source;
mod blob_ledger;
mod blobs;
mod copy;
mod destination;
mod error;
mod fallback_index;
mod groups;
mod job;
mod kept_manifests;
mod manifests;
mod placement;
mod ranged_fetch;
mod referrers;
mod registry_destination;
mod registry_source;
mod registry_tree;
mod report;
mod source;

pub use archive_source::ArchiveSource;
pub use blob_ledger::BlobLedger;
pub use copy::{copy_images, CopyOptions};
pub use destination::{Destination, Mount};
pub use error::{BlobProblem, CopyError, ImageError};
pub use job::ImageJob;
pub(crate) use manifests::{push_batches, read_batch};
pub use referrers::{referrer_trees, ReferrerTree};
pub use registry_destination::RegistryDestination;
pub use registry_source::RegistrySource;
pub use report::{BlobOutcome, CopiedImage, CopiedReferrer, CopyReport, Event, ImageResult, ImageStats, Reporter};
pub use source::{BlobBody, BlobRead, FoundReferrer, ManifestRead, Source};

#[cfg(test)]
mod tests;
