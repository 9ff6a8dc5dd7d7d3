//! Images read from the registries their references name (thin bundles).

use std::future::Future;
use std::io;
use std::sync::Arc;

use futures_util::stream::{self, StreamExt, TryStreamExt};

use super::error::CopyError;
use super::job::ImageJob;
use super::kept_manifests::KeptManifests;
use super::registry_tree::tree_in_registry;
use super::source::{BlobBody, BlobRead, ManifestRead, Source};
use crate::limits::KEPT_MANIFESTS_BUDGET;
use crate::oci::{ImageTree, Manifest};
use crate::reference::{Digest, ManifestSelector};
use crate::registry::Registries;

/// Reads each image from the registry of its source reference.
pub struct RegistrySource {
    registries: Arc<Registries>,
    concurrency: usize,
    /// Manifests read while resolving, so pushing them mostly needs no second request.
    kept: KeptManifests,
}

impl RegistrySource {
    /// A source reading through `registries`, with at most `concurrency` blobs in flight.
    pub fn new(registries: Arc<Registries>, concurrency: usize) -> Self {
        RegistrySource {
            registries,
            concurrency: concurrency.max(1),
            kept: KeptManifests::new(KEPT_MANIFESTS_BUDGET),
        }
    }
}

impl Source for RegistrySource {
    async fn resolve(&self, job: &ImageJob) -> Result<ImageTree, CopyError> {
        let registry = self.registries.get(job.source.domain());
        tree_in_registry(&registry, job.source.path(), &job.source_selector(), |m| {
            self.kept.offer(m)
        })
        .await
    }

    async fn read_manifests(&self, wanted: Vec<ManifestRead>) -> Result<Vec<Manifest>, CopyError> {
        stream::iter(wanted)
            .map(|read| async move {
                if let Some(m) = self.kept.get(&read.manifest.digest) {
                    return Ok(m);
                }
                let registry = self.registries.get(read.origin.domain());
                let selector = ManifestSelector::Digest(read.manifest.digest);
                Ok(registry.get_manifest(read.origin.path(), &selector).await?)
            })
            .buffered(self.concurrency)
            .try_collect()
            .await
    }

    async fn stream_blobs<F, Fut>(&self, mut blobs: Vec<BlobRead>, deliver: F) -> Vec<(Digest, CopyError)>
    where
        F: Fn(BlobRead, BlobBody) -> Fut + Send + Sync,
        Fut: Future<Output = Result<(), CopyError>> + Send + 'static,
    {
        // biggest first, so the long transfers do not start last
        blobs.sort_by_key(|b| std::cmp::Reverse(b.descriptor.size));
        let deliver = &deliver;
        stream::iter(blobs)
            .map(|blob| async move {
                let digest = blob.descriptor.digest.clone();
                let registry = self.registries.get(blob.origin.domain());
                let opened = registry.get_blob(blob.origin.path(), &digest).await;
                let result = match opened {
                    Ok(response) => {
                        let body: BlobBody = Box::pin(response.bytes_stream().map_err(io::Error::other));
                        deliver(blob, body).await
                    }
                    Err(e) => Err(e.into()),
                };
                result.err().map(|e| (digest, e))
            })
            .buffer_unordered(self.concurrency)
            .filter_map(|failure| async move { failure })
            .collect()
            .await
    }

    fn repository_on(&self, job: &ImageJob, registry: &str) -> Option<String> {
        (job.source.domain() == registry).then(|| job.source.path().to_string())
    }
}
