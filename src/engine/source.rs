//! Where images are read from. The engine sees only [`Source`]: a registry (thin bundles,
//! export, sync) and an OCI layout inside an archive (thick bundles) both implement it.

use std::future::Future;
use std::io;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;

use super::error::CopyError;
use super::job::ImageJob;
use crate::oci::{Descriptor, ImageTree, Manifest, ManifestRef, ReferrerKind};
use crate::reference::{Digest, Reference};

/// A blob's bytes as they arrive, unverified (the engine checks digest and size).
pub type BlobBody = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// A blob the engine needs the bytes of.
#[derive(Debug, Clone)]
pub struct BlobRead {
    /// The blob.
    pub descriptor: Descriptor,
    /// The source reference of an image that holds it (where a registry source reads it).
    pub origin: Reference,
}

/// A manifest the engine needs the bytes of again, to push it.
#[derive(Debug, Clone)]
pub struct ManifestRead {
    /// The manifest, as a resolved tree names it.
    pub manifest: ManifestRef,
    /// The source reference of an image whose tree holds it.
    pub origin: Reference,
}

/// Something that refers to a manifest, as a source lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundReferrer {
    /// The tag it is found under (cosign's `sha256-<hex>.sig`), copied as a tag.
    pub tag: Option<String>,
    /// Its digest, when the listing says.
    pub digest: Option<Digest>,
    /// What it is.
    pub kind: ReferrerKind,
    /// Whether it names the manifest as its `subject` (then a destination without the
    /// referrers API lists it under the fallback tag).
    pub names_subject: bool,
}

/// A place images are read from.
pub trait Source: Send + Sync {
    /// Reads the image's top manifest (by pinned digest, else by tag) and every child manifest.
    fn resolve(&self, job: &ImageJob) -> impl Future<Output = Result<ImageTree, CopyError>> + Send;

    /// The bytes of manifests of resolved trees, each checked against its digest. The engine
    /// asks in batches that fit [`MANIFEST_BATCH_BUDGET`](crate::limits::MANIFEST_BATCH_BUDGET),
    /// so manifests never all sit in memory at once; a source reads each batch in one go
    /// (an archive: one pass).
    fn read_manifests(
        &self,
        wanted: Vec<ManifestRead>,
    ) -> impl Future<Output = Result<Vec<Manifest>, CopyError>> + Send;

    /// Calls `deliver` with the bytes of every blob of `blobs`, in the order and with the
    /// concurrency that suit the source (a registry: biggest first, several at once; an
    /// archive: archive order, one pass). Returns every blob that failed, whether reading it
    /// or delivering it.
    fn stream_blobs<F, Fut>(
        &self,
        blobs: Vec<BlobRead>,
        deliver: F,
    ) -> impl Future<Output = Vec<(Digest, CopyError)>> + Send
    where
        F: Fn(BlobRead, BlobBody) -> Fut + Send + Sync,
        Fut: Future<Output = Result<(), CopyError>> + Send + 'static;

    /// Called while the images of `origins` resolve, before any [`referrers`](Self::referrers)
    /// lookup: a source may learn now what every lookup needs (a registry: whether it has the
    /// referrers API, each repository's tags), so the lookups wait on nothing more later.
    fn prepare_referrers(&self, origins: &[&Reference]) -> impl Future<Output = ()> + Send {
        let _ = origins;
        async {}
    }

    /// What refers to `subject` in the repository of `origin`: manifests naming it as their
    /// `subject`, and cosign's tags for it.
    fn referrers(
        &self,
        origin: &Reference,
        subject: &Digest,
    ) -> impl Future<Output = Result<Vec<FoundReferrer>, CopyError>> + Send;

    /// Called once every blob is placed, before any manifest is pushed: a source that has
    /// not read all of itself yet (an archive read once, whose blobs were all in the
    /// destination already) reads the rest now, so nothing it holds goes unseen.
    fn finish_reading(&self) -> impl Future<Output = Result<(), CopyError>> + Send {
        async { Ok(()) }
    }

    /// A repository of `registry` holding the job's blobs already, when the image lives on
    /// that registry (so its blobs can be mounted instead of sent).
    fn repository_on(&self, job: &ImageJob, registry: &str) -> Option<String>;

    /// Whether [`resolve`](Self::resolve) costs nothing (no network). Then even images the
    /// destination already holds are resolved, so their blobs can lend themselves to others.
    fn resolves_locally(&self) -> bool {
        false
    }
}
