//! Images read from the registries their references name (thin bundles).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};

use futures_util::stream::{self, StreamExt, TryStreamExt};
use tokio::sync::OnceCell;

use super::error::CopyError;
use super::job::ImageJob;
use super::kept_manifests::KeptManifests;
use super::registry_tree::tree_in_registry;
use super::source::{BlobBody, BlobRead, FoundReferrer, ManifestRead, Source};
use crate::limits::KEPT_MANIFESTS_BUDGET;
use crate::oci::{cosign_tag, fallback_tag, referrers_in, ImageTree, Manifest, ReferrerEntry, COSIGN_SUFFIXES};
use crate::reference::{Digest, ManifestSelector, Reference};
use crate::registry::{Registries, Registry, RegistryError};

/// A repository's tags, listed at most once.
type TagList = OnceCell<Arc<HashSet<String>>>;

/// Reads each image from the registry of its source reference.
pub struct RegistrySource {
    registries: Arc<Registries>,
    concurrency: usize,
    /// Manifests read while resolving, so pushing them mostly needs no second request.
    kept: KeptManifests,
    /// Each repository's tags, listed once (referrers are found among them).
    tags: Mutex<HashMap<String, Arc<TagList>>>,
    /// Registries known to lack the referrers API (they answered 404 once).
    without_referrers_api: Mutex<HashSet<String>>,
}

impl RegistrySource {
    /// A source reading through `registries`, with at most `concurrency` blobs in flight.
    pub fn new(registries: Arc<Registries>, concurrency: usize) -> Self {
        RegistrySource {
            registries,
            concurrency: concurrency.max(1),
            kept: KeptManifests::new(KEPT_MANIFESTS_BUDGET),
            tags: Mutex::new(HashMap::new()),
            without_referrers_api: Mutex::new(HashSet::new()),
        }
    }

    /// The repository's tags, listed once per run; `None` when the registry refuses to list
    /// them (then tags are asked for one by one).
    async fn tags_of(&self, registry: &Registry, repository: &str) -> Option<Arc<HashSet<String>>> {
        let cell = {
            let mut tags = self.tags.lock().expect("tag cache lock");
            let key = format!("{}/{repository}", registry.domain());
            tags.entry(key).or_default().clone()
        };
        cell.get_or_try_init(|| async {
            let listed = registry.list_tags(repository).await.inspect_err(|e| {
                tracing::debug!(
                    "{}: listing the tags of {repository}: {e}; asking tag by tag",
                    registry.domain()
                );
            })?;
            Ok::<_, RegistryError>(Arc::new(listed.into_iter().collect()))
        })
        .await
        .ok()
        .cloned()
    }

    async fn has_tag(&self, registry: &Registry, repository: &str, tag: &str) -> Result<bool, CopyError> {
        match self.tags_of(registry, repository).await {
            Some(tags) => Ok(tags.contains(tag)),
            None => Ok(registry
                .head_manifest(repository, &ManifestSelector::Tag(tag.to_string()))
                .await?
                .is_some()),
        }
    }

    /// The referrers the registry lists for `subject`: by its referrers API, else under the
    /// fallback tag (`None` when it has neither).
    async fn subject_referrers(
        &self,
        registry: &Registry,
        repository: &str,
        subject: &Digest,
    ) -> Result<Option<Vec<ReferrerEntry>>, CopyError> {
        let no_api = || {
            self.without_referrers_api
                .lock()
                .expect("referrers API lock")
                .contains(registry.domain())
        };
        if !no_api() {
            if let Some(entries) = registry.referrers(repository, subject).await? {
                return Ok(Some(entries));
            }
            let mut without = self.without_referrers_api.lock().expect("referrers API lock");
            without.insert(registry.domain().to_string());
        }
        let tag = fallback_tag(subject);
        if !self.has_tag(registry, repository, &tag).await? {
            return Ok(None);
        }
        match registry.find_manifest(repository, &ManifestSelector::Tag(tag)).await? {
            Some(index) => Ok(Some(referrers_in(&index)?)),
            None => Ok(None),
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

    async fn referrers(&self, origin: &Reference, subject: &Digest) -> Result<Vec<FoundReferrer>, CopyError> {
        let registry = self.registries.get(origin.domain());
        let repository = origin.path();
        let mut found = Vec::new();
        if let Some(entries) = self.subject_referrers(&registry, repository, subject).await? {
            for entry in entries {
                found.push(FoundReferrer {
                    tag: None,
                    kind: entry.kind(),
                    digest: Some(entry.digest),
                    names_subject: true,
                });
            }
        }
        for (suffix, kind) in COSIGN_SUFFIXES {
            let tag = cosign_tag(subject, suffix);
            if self.has_tag(&registry, repository, &tag).await? {
                found.push(FoundReferrer {
                    tag: Some(tag),
                    digest: None,
                    kind,
                    names_subject: false,
                });
            }
        }
        Ok(found)
    }

    fn repository_on(&self, job: &ImageJob, registry: &str) -> Option<String> {
        (job.source.domain() == registry).then(|| job.source.path().to_string())
    }
}
