//! The copy: every image of the plan from its source to the target registry, digests kept.
//!
//! Phases, so a bad bundle pushes nothing and every blob crosses the wire once:
//! 1. resolve every image (manifests only); skip those the target already holds; an image whose
//!    source does not match its pinned digest fails here, before anything is pushed;
//! 2. blobs: each distinct blob is checked (HEAD) in every target repository that needs it,
//!    mounted where the target registry already has it, else streamed once with its digest
//!    checked before the upload is committed, then mounted into the other repositories;
//! 3. manifests, children before their index, by tag or by digest; then the target is asked
//!    for each pushed reference to confirm the digest.

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::stream::{self, Stream, StreamExt};
use reqwest::Url;
use serde::Serialize;

use super::plan::{ManifestSelector, Plan, PlannedImage};
use super::source::{ImageSource, ImageTree, WantedBlob};
use crate::reference::Digest;
use crate::registry::manifest::Verifier;
use crate::registry::{ManifestError, MountOutcome, Registries, Registry, RegistryError};

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{0}")]
    Source(String),
    #[error("blob {digest}: {detail}")]
    Corrupt { digest: Digest, detail: String },
    #[error("the bundle pins {expected}, but the source's manifest is {actual}; the source does not match the bundle")]
    PinMismatch { expected: Digest, actual: Digest },
    #[error("after the push the target answers {found} for {reference}, not {expected}")]
    NotVerified {
        reference: String,
        expected: Digest,
        found: String,
    },
}

impl CopyError {
    /// Whether the whole transfer may succeed when tried again.
    pub fn is_retryable(&self) -> bool {
        matches!(self, CopyError::Registry(e) if e.is_retryable())
    }
}

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

/// Target repositories that still need a blob's bytes, each with the upload session a refused
/// mount opened, if any.
pub type MissingRepositories = Vec<(String, Option<Url>)>;

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

/// Places blobs in target repositories: HEAD, mount, or verified streaming upload.
pub struct BlobSink {
    target: Arc<Registry>,
    reporter: Reporter,
    state: Mutex<SinkState>,
}

#[derive(Default)]
struct SinkState {
    /// Target repositories known to hold each blob.
    holders: HashMap<Digest, Vec<String>>,
    /// (repository, blob) pairs a HEAD found missing.
    absent: HashSet<(String, Digest)>,
    outcomes: HashMap<(String, Digest), BlobOutcome>,
}

impl BlobSink {
    pub fn new(target: Arc<Registry>, reporter: Reporter) -> Self {
        BlobSink {
            target,
            reporter,
            state: Mutex::new(SinkState::default()),
        }
    }

    fn record(&self, repository: &str, digest: &Digest, outcome: BlobOutcome) {
        let mut state = self.state.lock().expect("sink lock");
        state
            .holders
            .entry(digest.clone())
            .or_default()
            .push(repository.to_string());
        state.absent.remove(&(repository.to_string(), digest.clone()));
        state
            .outcomes
            .insert((repository.to_string(), digest.clone()), outcome.clone());
        drop(state);
        (self.reporter)(&Event::BlobDone {
            digest: digest.to_string(),
            repository: repository.to_string(),
            outcome,
        });
    }

    /// Makes the blob present, without sending its bytes, in every target repository where
    /// that is possible. Returns the repositories that still need its bytes, each with the
    /// upload session a refused mount opened, if any.
    pub async fn settle(&self, blob: &WantedBlob) -> Result<MissingRepositories, CopyError> {
        let digest = blob.digest();
        let mut missing = Vec::new();
        for repository in &blob.target_repositories {
            let (known, checked_absent) = {
                let state = self.state.lock().expect("sink lock");
                let key = (repository.clone(), digest.clone());
                (state.outcomes.contains_key(&key), state.absent.contains(&key))
            };
            if known {
                continue;
            }
            if !checked_absent {
                if self.target.blob_exists(repository, digest, true).await? {
                    self.record(repository, digest, BlobOutcome::Present);
                    continue;
                }
                self.state
                    .lock()
                    .expect("sink lock")
                    .absent
                    .insert((repository.clone(), digest.clone()));
            }
            let origin = {
                let state = self.state.lock().expect("sink lock");
                state
                    .holders
                    .get(digest)
                    .and_then(|h| h.iter().find(|r| *r != repository).cloned())
                    .or_else(|| blob.mount_from.iter().find(|r| *r != repository).cloned())
            };
            let Some(from) = origin else {
                missing.push((repository.clone(), None));
                continue;
            };
            match self.target.mount_blob(repository, digest, &from).await? {
                MountOutcome::Mounted => self.record(repository, digest, BlobOutcome::Mounted { from }),
                MountOutcome::Upload(session) => {
                    tracing::debug!(
                        "{}: mount of {digest} from {from} refused; uploading",
                        self.target.domain()
                    );
                    missing.push((repository.clone(), Some(session)));
                }
            }
        }
        Ok(missing)
    }

    /// Streams `body` into `repository`, hashing as it goes; the upload is committed only when
    /// digest and size match the descriptor.
    pub async fn upload<S>(
        &self,
        blob: &WantedBlob,
        repository: &str,
        session: Option<Url>,
        body: S,
    ) -> Result<(), CopyError>
    where
        S: Stream<Item = io::Result<Bytes>> + Send + 'static,
    {
        let digest = blob.digest().clone();
        let size = blob.descriptor.size;
        let session = match session {
            Some(s) => s,
            None => self.target.start_upload(repository).await?,
        };
        (self.reporter)(&Event::BlobStarted {
            digest: digest.to_string(),
            repository: repository.to_string(),
            size,
        });
        let verifier = Arc::new(Mutex::new(Verifier::new(&digest)));
        let hashing = {
            let verifier = verifier.clone();
            let reporter = self.reporter.clone();
            let digest_s = digest.to_string();
            body.map(move |chunk| {
                let chunk = chunk?;
                let mut v = verifier.lock().expect("verifier lock");
                v.update(&chunk);
                if v.seen() > size {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("more than the descriptor's {size} bytes"),
                    ));
                }
                drop(v);
                reporter(&Event::BlobProgress {
                    digest: digest_s.clone(),
                    bytes: chunk.len() as u64,
                });
                Ok::<_, io::Error>(chunk)
            })
        };
        let sent = self
            .target
            .upload_chunk(
                repository,
                session.clone(),
                reqwest::Body::wrap_stream(hashing),
                Some(size),
            )
            .await;
        let (got, seen) = {
            let v = verifier.lock().expect("verifier lock");
            (v.digest_so_far(), v.seen())
        };
        let next = match sent {
            Ok(next) => next,
            Err(e) => {
                self.target.cancel_upload(repository, session).await;
                if seen > size {
                    return Err(CopyError::Corrupt {
                        digest,
                        detail: format!("the source sent more than the descriptor's {size} bytes"),
                    });
                }
                return Err(e.into());
            }
        };
        let mismatch = if seen != size {
            Some(format!("{seen} bytes arrived but the descriptor says {size}"))
        } else if got != digest {
            Some(format!("the content hashes to {got}"))
        } else {
            None
        };
        if let Some(detail) = mismatch {
            self.target.cancel_upload(repository, next).await;
            return Err(CopyError::Corrupt {
                digest,
                detail: format!("{detail}; the upload was not committed"),
            });
        }
        self.target.commit_upload(repository, next, &digest).await?;
        self.record(repository, &digest, BlobOutcome::Uploaded { bytes: size });
        Ok(())
    }

    /// Records blobs a repository is known to hold (an image the target already has).
    pub fn note_present<'a>(&self, repository: &str, digests: impl IntoIterator<Item = &'a Digest>) {
        let mut state = self.state.lock().expect("sink lock");
        for digest in digests {
            let key = (repository.to_string(), digest.clone());
            if state.outcomes.insert(key, BlobOutcome::Present).is_none() {
                state
                    .holders
                    .entry(digest.clone())
                    .or_default()
                    .push(repository.to_string());
            }
        }
    }

    /// Abandons an upload session a refused mount opened.
    pub async fn cancel(&self, repository: &str, session: Url) {
        self.target.cancel_upload(repository, session).await;
    }

    /// Bytes of every committed upload.
    pub fn bytes_uploaded(&self) -> u64 {
        let state = self.state.lock().expect("sink lock");
        state
            .outcomes
            .values()
            .map(|o| match o {
                BlobOutcome::Uploaded { bytes } => *bytes,
                _ => 0,
            })
            .sum()
    }

    fn outcome(&self, repository: &str, digest: &Digest) -> Option<BlobOutcome> {
        let state = self.state.lock().expect("sink lock");
        state.outcomes.get(&(repository.to_string(), digest.clone())).cloned()
    }
}

/// Drives one blob to every target repository with a source that can open it any number of
/// times (`open` is called per upload attempt), retrying what may heal.
pub async fn deliver_reopenable<F, Fut, S>(
    sink: &BlobSink,
    blob: &WantedBlob,
    retry: &crate::registry::RetryPolicy,
    open: F,
) -> Result<(), CopyError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<S, CopyError>>,
    S: Stream<Item = io::Result<Bytes>> + Send + 'static,
{
    let mut attempt = 0;
    loop {
        let result: Result<(), CopyError> = async {
            loop {
                let missing = sink.settle(blob).await?;
                let Some((repository, session)) = missing.into_iter().next() else {
                    return Ok(());
                };
                let body = open().await?;
                sink.upload(blob, &repository, session, body).await?;
            }
        }
        .await;
        match result {
            Err(e) if e.is_retryable() && attempt + 1 < retry.max_attempts => {
                tracing::warn!("blob {}: {e}; trying again", blob.digest());
                tokio::time::sleep(retry.delay(attempt, None)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Images that go to the same place the same way are copied once.
struct Group<'p> {
    members: Vec<&'p PlannedImage>,
    repository: String,
    push: ManifestSelector,
}

impl Group<'_> {
    fn image(&self) -> &PlannedImage {
        self.members[0]
    }
}

fn push_selector(image: &PlannedImage) -> ManifestSelector {
    match (image.push_tag(), &image.expected_digest) {
        (Some(tag), _) => ManifestSelector::Tag(tag.to_string()),
        (None, Some(d)) => ManifestSelector::Digest(d.clone()),
        (None, None) => unreachable!("an untagged image always has a digest"),
    }
}

enum Resolved {
    /// The target holds it; its tree, when known, tells which blobs its repository has.
    Present(Digest, Option<ImageTree>),
    Copy(ImageTree),
}

/// Copies every image of `plan` from `source` to the registry of the plan's prefix.
pub async fn copy_images<S: ImageSource>(
    source: Arc<S>,
    registries: &Registries,
    plan: &Plan,
    concurrency: usize,
    reporter: Reporter,
) -> CopyReport {
    let mut groups: Vec<Group> = Vec::new();
    for image in &plan.images {
        let repository = image.relocated.path().to_string();
        let push = push_selector(image);
        match groups.iter_mut().find(|g| {
            g.repository == repository && g.push == push && g.image().source_selector() == image.source_selector()
        }) {
            Some(g) => g.members.push(image),
            None => groups.push(Group {
                members: vec![image],
                repository,
                push,
            }),
        }
    }
    let target_domain = plan.images[0].relocated.domain().to_string();
    let target = registries.get(&target_domain);

    // Phase 1: resolve.
    let resolved: Vec<Result<Resolved, CopyError>> = stream::iter(groups.iter())
        .map(|g| resolve(source.as_ref(), &target, g))
        .buffered(concurrency)
        .collect()
        .await;
    let mut outcome: Vec<Option<Result<CopiedImage, String>>> = vec![None; groups.len()];
    let mut any_failed = false;
    for (i, r) in resolved.iter().enumerate() {
        let g = &groups[i];
        match r {
            Ok(Resolved::Present(digest, _)) => {
                outcome[i] = Some(Ok(CopiedImage {
                    digest: digest.clone(),
                    already_present: true,
                    stats: ImageStats::default(),
                }));
                for m in &g.members {
                    reporter(&Event::ImageAlreadyPresent {
                        image: m.raw.clone(),
                        relocated: m.relocated.to_string(),
                        digest: digest.to_string(),
                    });
                }
            }
            Ok(Resolved::Copy(tree)) => {
                for m in &g.members {
                    reporter(&Event::ImageResolved {
                        image: m.raw.clone(),
                        relocated: m.relocated.to_string(),
                        digest: tree.top.digest.to_string(),
                        blobs: tree.blobs.len(),
                        bytes: tree.total_blob_bytes(),
                    });
                }
            }
            Err(e) => {
                any_failed = true;
                outcome[i] = Some(Err(describe_failure(g.image(), "reading the source", e)));
            }
        }
    }
    if any_failed {
        // nothing is pushed for a bundle whose images do not all resolve
        for o in outcome.iter_mut().filter(|o| o.is_none()) {
            *o = Some(Err(
                "not copied: another image of the bundle failed before any push".to_string()
            ));
        }
        return finish(&groups, outcome, 0, &reporter);
    }

    // Phase 2: blobs. What images already in the target hold can be mounted from them.
    let sink = Arc::new(BlobSink::new(target.clone(), reporter.clone()));
    for (g, r) in groups.iter().zip(&resolved) {
        if let Ok(Resolved::Present(_, Some(tree))) = r {
            sink.note_present(&g.repository, tree.blobs.iter().map(|b| &b.digest));
        }
    }
    let mut wanted: Vec<WantedBlob> = Vec::new();
    let mut index: HashMap<Digest, usize> = HashMap::new();
    for (g, r) in groups.iter().zip(&resolved) {
        let Ok(Resolved::Copy(tree)) = r else {
            continue;
        };
        let mount_from = source.repository_on(g.image(), &target_domain);
        for d in &tree.blobs {
            let i = *index.entry(d.digest.clone()).or_insert_with(|| {
                wanted.push(WantedBlob {
                    descriptor: d.clone(),
                    target_repositories: Vec::new(),
                    origins: Vec::new(),
                    mount_from: Vec::new(),
                });
                wanted.len() - 1
            });
            let w = &mut wanted[i];
            if !w.target_repositories.contains(&g.repository) {
                w.target_repositories.push(g.repository.clone());
            }
            w.origins.push(g.image().original.clone());
            if let Some(r) = &mount_from {
                if !w.mount_from.contains(r) {
                    w.mount_from.push(r.clone());
                }
            }
        }
    }
    let failed_blobs: HashMap<Digest, String> = source
        .send_blobs(wanted, sink.clone())
        .await
        .into_iter()
        .map(|(d, e)| (d, e.to_string()))
        .collect();

    // Phase 3: manifests.
    let pushes: Vec<Option<Result<CopiedImage, String>>> = stream::iter(groups.iter().zip(&resolved))
        .map(|(g, r)| {
            let target = target.clone();
            let sink = sink.clone();
            let failed_blobs = &failed_blobs;
            async move {
                let Ok(Resolved::Copy(tree)) = r else {
                    return None;
                };
                if let Some((d, e)) = tree
                    .blobs
                    .iter()
                    .find_map(|b| failed_blobs.get(&b.digest).map(|e| (&b.digest, e)))
                {
                    return Some(Err(format!(
                        "{} → {}: blob {d} could not be copied to {}: {e}",
                        g.image().raw,
                        g.image().relocated,
                        target.domain()
                    )));
                }
                Some(
                    push_manifests(&target, g, tree)
                        .await
                        .map(|manifests_pushed| CopiedImage {
                            digest: tree.top.digest.clone(),
                            already_present: false,
                            stats: stats_for(&sink, &g.repository, tree, manifests_pushed),
                        })
                        .map_err(|e| describe_failure(g.image(), &format!("pushing to {}", target.domain()), &e)),
                )
            }
        })
        .buffered(concurrency)
        .collect()
        .await;
    for (o, p) in outcome.iter_mut().zip(pushes) {
        if let Some(p) = p {
            *o = Some(p);
        }
    }
    finish(&groups, outcome, sink.bytes_uploaded(), &reporter)
}

async fn resolve<S: ImageSource>(source: &S, target: &Registry, group: &Group<'_>) -> Result<Resolved, CopyError> {
    let image = group.image();
    // A pinned image the target holds needs no source at all (a thin re-run reads nothing).
    if let (Some(expected), false) = (&image.expected_digest, source.resolves_locally()) {
        if target.head_manifest(&group.repository, &group.push).await?.as_ref() == Some(expected) {
            return Ok(Resolved::Present(expected.clone(), None));
        }
    }
    let tree = source.resolve(image).await?;
    if let Some(expected) = &image.expected_digest {
        if *expected != tree.top.digest {
            return Err(CopyError::PinMismatch {
                expected: expected.clone(),
                actual: tree.top.digest.clone(),
            });
        }
    }
    if target.head_manifest(&group.repository, &group.push).await?.as_ref() == Some(&tree.top.digest) {
        return Ok(Resolved::Present(tree.top.digest.clone(), Some(tree)));
    }
    Ok(Resolved::Copy(tree))
}

async fn push_manifests(target: &Registry, group: &Group<'_>, tree: &ImageTree) -> Result<usize, CopyError> {
    for child in &tree.children {
        target
            .put_manifest(
                &group.repository,
                &ManifestSelector::Digest(child.digest.clone()),
                child,
            )
            .await?;
    }
    target.put_manifest(&group.repository, &group.push, &tree.top).await?;
    let found = target.head_manifest(&group.repository, &group.push).await?;
    if found.as_ref() != Some(&tree.top.digest) {
        return Err(CopyError::NotVerified {
            reference: format!("{}/{}:{}", target.domain(), group.repository, group.push),
            expected: tree.top.digest.clone(),
            found: found.map_or("nothing".to_string(), |d| d.to_string()),
        });
    }
    Ok(tree.children.len() + 1)
}

fn stats_for(sink: &BlobSink, repository: &str, tree: &ImageTree, manifests_pushed: usize) -> ImageStats {
    let mut stats = ImageStats {
        manifests_pushed,
        ..Default::default()
    };
    for b in &tree.blobs {
        match sink.outcome(repository, &b.digest) {
            Some(BlobOutcome::Uploaded { bytes }) => {
                stats.blobs_uploaded += 1;
                stats.bytes_sent += bytes;
            }
            Some(BlobOutcome::Mounted { .. }) => stats.blobs_mounted += 1,
            Some(BlobOutcome::Present) | None => stats.blobs_present += 1,
        }
    }
    stats
}

fn describe_failure(image: &PlannedImage, stage: &str, e: &CopyError) -> String {
    format!("{} → {}: {stage}: {e}", image.raw, image.relocated)
}

fn finish(
    groups: &[Group],
    outcome: Vec<Option<Result<CopiedImage, String>>>,
    bytes_sent: u64,
    reporter: &Reporter,
) -> CopyReport {
    let mut images = Vec::new();
    for (g, o) in groups.iter().zip(outcome) {
        let o = o.unwrap_or_else(|| Err("not copied".to_string()));
        for m in &g.members {
            match &o {
                Ok(c) if !c.already_present => reporter(&Event::ImageCopied {
                    image: m.raw.clone(),
                    relocated: m.relocated.to_string(),
                    digest: c.digest.to_string(),
                    stats: c.stats.clone(),
                }),
                Ok(_) => {}
                Err(e) => reporter(&Event::ImageFailed {
                    image: m.raw.clone(),
                    relocated: m.relocated.to_string(),
                    error: e.clone(),
                }),
            }
            images.push(ImageResult {
                image: m.raw.clone(),
                relocated: m.relocated.to_string(),
                outcome: o.clone(),
            });
        }
    }
    CopyReport { images, bytes_sent }
}
