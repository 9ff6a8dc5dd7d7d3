//! Thin bundles: images are read from the registries their references name.

use std::io;
use std::sync::Arc;

use futures_util::stream::{self, StreamExt, TryStreamExt};

use super::copy::CopyError;
use super::plan::{ManifestSelector, PlannedImage};
use super::sink::{deliver_reopenable, BlobSink};
use super::source::{ImageSource, ImageTree, WantedBlob};
use crate::reference::Digest;
use crate::registry::{Registries, Registry, RetryPolicy};

pub struct RemoteSource {
    registries: Arc<Registries>,
    concurrency: usize,
    retry: RetryPolicy,
}

impl RemoteSource {
    pub fn new(registries: Arc<Registries>, concurrency: usize, retry: RetryPolicy) -> Self {
        RemoteSource {
            registries,
            concurrency,
            retry,
        }
    }
}

/// An image's manifests as a registry holds them: the top one, then every child by digest.
pub async fn tree_in_registry(
    registry: &Registry,
    repository: &str,
    selector: &ManifestSelector,
) -> Result<ImageTree, CopyError> {
    let top = registry.get_manifest(repository, selector).await?;
    ImageTree::build(top, |d| async move {
        Ok(registry
            .get_manifest(repository, &ManifestSelector::Digest(d.digest))
            .await?)
    })
    .await
}

impl ImageSource for RemoteSource {
    async fn resolve(&self, image: &PlannedImage) -> Result<ImageTree, CopyError> {
        let registry = self.registries.get(image.original.domain());
        tree_in_registry(&registry, image.original.path(), &image.source_selector()).await
    }

    async fn send_blobs(&self, mut wanted: Vec<WantedBlob>, sink: Arc<BlobSink>) -> Vec<(Digest, CopyError)> {
        // largest first, so the long transfers do not start last
        wanted.sort_by_key(|b| std::cmp::Reverse(b.descriptor.size));
        stream::iter(wanted)
            .map(|blob| {
                let sink = sink.clone();
                async move {
                    let origin = blob.origins[0].clone();
                    let registry = self.registries.get(origin.domain());
                    let result = deliver_reopenable(&sink, &blob, &self.retry, || {
                        let registry = registry.clone();
                        let origin = origin.clone();
                        let digest = blob.digest().clone();
                        async move {
                            let response = registry.get_blob(origin.path(), &digest).await?;
                            Ok(response.bytes_stream().map_err(io::Error::other))
                        }
                    })
                    .await;
                    result.err().map(|e| (blob.digest().clone(), e))
                }
            })
            .buffer_unordered(self.concurrency)
            .filter_map(|failure| async move { failure })
            .collect()
            .await
    }

    fn repository_on(&self, image: &PlannedImage, target_domain: &str) -> Option<String> {
        (image.original.domain() == target_domain).then(|| image.original.path().to_string())
    }
}
