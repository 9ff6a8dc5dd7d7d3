//! Images read from the registries their references name (thin bundles).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};
use tokio::sync::OnceCell;

use super::error::CopyError;
use super::job::ImageJob;
use super::kept_manifests::KeptManifests;
use super::ranged_fetch::{first_part, ranged_body, FirstPart, RANGED_ABOVE};
use super::registry_tree::tree_in_registry;
use super::source::{BlobBody, BlobRead, FoundReferrer, ManifestRead, Source};
use crate::limits::KEPT_MANIFESTS_BUDGET;
use crate::oci::{cosign_tag, fallback_tag, referrers_in, ImageTree, Manifest, ReferrerEntry, COSIGN_SUFFIXES};
use crate::reference::{Digest, ManifestSelector, Reference};
use crate::registry::{Registries, Registry};

/// A repository's tags, listed at most once (`None`: the registry would not list them).
type TagList = OnceCell<Option<Arc<HashSet<String>>>>;

/// Reads each image from the registry of its source reference.
pub struct RegistrySource {
    registries: Arc<Registries>,
    concurrency: usize,
    /// Manifests read while resolving, so pushing them mostly needs no second request.
    kept: KeptManifests,
    /// Each repository's tags, listed once (referrers are found among them).
    tags: Mutex<HashMap<String, Arc<TagList>>>,
    /// Registries known to lack the referrers API (probed, or a lookup answered that way).
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

    /// Tags of a repository of `domain` listed already (sync lists them to plan its pairs):
    /// lookups of cosign's tags read these instead of listing them again.
    pub fn know_tags(&self, domain: &str, repository: &str, tags: &[String]) {
        let listed = Arc::new(tags.iter().cloned().collect());
        let mut known = self.tags.lock().expect("tag cache lock");
        known.insert(
            format!("{domain}/{repository}"),
            Arc::new(OnceCell::new_with(Some(Some(listed)))),
        );
    }

    /// The repository's tags, listed once per run; `None` when the registry refuses to list
    /// them (then tags are asked for one by one).
    async fn tags_of(&self, registry: &Registry, repository: &str) -> Option<Arc<HashSet<String>>> {
        let cell = {
            let mut tags = self.tags.lock().expect("tag cache lock");
            let key = format!("{}/{repository}", registry.domain());
            tags.entry(key).or_default().clone()
        };
        cell.get_or_init(|| async {
            match registry.list_tags(repository).await {
                Ok(listed) => Some(Arc::new(listed.into_iter().collect())),
                Err(e) => {
                    tracing::debug!(
                        "{}: listing the tags of {repository}: {e}; asking tag by tag",
                        registry.domain()
                    );
                    None
                }
            }
        })
        .await
        .clone()
    }

    async fn has_tag(&self, registry: &Registry, repository: &str, tag: &str) -> Result<bool, CopyError> {
        match self.tags_of(registry, repository).await {
            Some(tags) => Ok(tags.contains(tag)),
            None => Ok(registry
                .head_manifest(repository, &ManifestSelector::Tag(tag.to_string()), false)
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
            // the tags are needed for cosign's tags anyway: listed while the API is asked
            let (api, _) = tokio::join!(
                registry.referrers(repository, subject),
                self.tags_of(registry, repository)
            );
            if let Some(entries) = api? {
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
                let size = blob.descriptor.size;
                let registry = self.registries.get(blob.origin.domain());
                let repository = blob.origin.path().to_string();
                let at = (repository.clone(), digest.clone(), size);
                if size >= RANGED_ABOVE {
                    // a first part that fails is no reason not to try the blob whole
                    let body = match first_part(&registry, &repository, &digest, size).await {
                        Ok(FirstPart::Part(first)) => {
                            Some(ranged_body(registry.clone(), repository, digest.clone(), size, first))
                        }
                        Ok(FirstPart::Whole(response)) => Some(resuming_body(registry.clone(), at.clone(), response)),
                        Err(_) => None,
                    };
                    if let Some(body) = body {
                        return deliver(blob, body).await.err().map(|e| (digest, e));
                    }
                }
                let opened = registry.get_blob(&at.0, &digest).await;
                let result = match opened {
                    Ok(response) => {
                        let body = resuming_body(registry, at, response);
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

    async fn prepare_referrers(&self, origins: &[&Reference]) {
        let mut registries: Vec<(String, String)> = Vec::new();
        let mut repositories: Vec<(String, String)> = Vec::new();
        for o in origins {
            let place = (o.domain().to_string(), o.path().to_string());
            if !registries.iter().any(|(d, _)| d == o.domain()) {
                registries.push(place.clone());
            }
            if !repositories.contains(&place) {
                repositories.push(place);
            }
        }
        // a registry with the API answers any digest (an empty list); one without, 404
        let probes = registries.into_iter().map(|(domain, repository)| async move {
            let nothing: Digest = format!("sha256:{}", "0".repeat(64)).parse().expect("a valid digest");
            let registry = self.registries.get(&domain);
            // anything but an index of referrers means no API: the tag schema is used then
            if !matches!(registry.referrers(&repository, &nothing).await, Ok(Some(_))) {
                self.without_referrers_api
                    .lock()
                    .expect("referrers API lock")
                    .insert(domain);
            }
        });
        let listings = repositories.into_iter().map(|(domain, repository)| async move {
            let registry = self.registries.get(&domain);
            self.tags_of(&registry, &repository).await;
        });
        let probes = stream::iter(probes)
            .buffer_unordered(self.concurrency)
            .collect::<Vec<()>>();
        let listings = stream::iter(listings)
            .buffer_unordered(self.concurrency)
            .collect::<Vec<()>>();
        futures_util::join!(probes, listings);
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

/// Times a broken blob body is asked for again before it fails (then the engine may try the
/// whole transfer again, as for any failed transfer: the two budgets multiply, so this one
/// stays small).
const MAX_RESUMES: u32 = 3;

/// Where a resuming body is.
struct Resume {
    registry: Arc<Registry>,
    repository: String,
    digest: Digest,
    /// The blob's size: a body that broke after its last byte needs nothing more.
    size: u64,
    body: Option<BoxStream<'static, reqwest::Result<Bytes>>>,
    /// Bytes handed on so far.
    received: u64,
    /// Bytes still to drop from the current body (a re-read that started at 0).
    skip: u64,
    /// Re-reads made so far.
    resumed: u32,
}

/// A blob's body that, when its connection breaks, is asked for again from the byte it
/// reached (`Range`), up to [`MAX_RESUMES`] times: a long transfer is not started over for
/// one broken connection. The engine still checks size and digest over the whole.
fn resuming_body(registry: Arc<Registry>, at: (String, Digest, u64), first: reqwest::Response) -> BlobBody {
    let (repository, digest, size) = at;
    let state = Resume {
        registry,
        repository,
        digest,
        size,
        body: Some(first.bytes_stream().boxed()),
        received: 0,
        skip: 0,
        resumed: 0,
    };
    Box::pin(stream::unfold(state, |mut st| async move {
        loop {
            let next = st.body.as_mut()?.next().await;
            match next {
                Some(Ok(mut chunk)) => {
                    let dropped = st.skip.min(chunk.len() as u64);
                    st.skip -= dropped;
                    let _ = chunk.split_to(dropped as usize);
                    if chunk.is_empty() {
                        continue;
                    }
                    st.received += chunk.len() as u64;
                    return Some((Ok(chunk), st));
                }
                None => return None,
                // everything arrived; only the end of the message was lost
                Some(Err(_)) if st.received == st.size => return None,
                Some(Err(e)) if st.resumed < MAX_RESUMES => {
                    let policy = st.registry.retry_policy();
                    tracing::info!(
                        "{}: blob {} broke off after {} bytes ({e}); asking for the rest",
                        st.registry.domain(),
                        st.digest,
                        st.received
                    );
                    tokio::time::sleep(policy.delay(st.resumed, None)).await;
                    st.resumed += 1;
                    match st.registry.get_blob_from(&st.repository, &st.digest, st.received).await {
                        Ok((response, ranged)) => {
                            st.skip = if ranged { 0 } else { st.received };
                            st.body = Some(response.bytes_stream().boxed());
                        }
                        Err(e) => {
                            st.body = None;
                            return Some((Err(io::Error::other(e)), st));
                        }
                    }
                }
                Some(Err(e)) => {
                    st.body = None;
                    return Some((Err(io::Error::other(e)), st));
                }
            }
        }
    }))
}
