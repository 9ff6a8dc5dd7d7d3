//! Images read only from a thick bundle's archive. Every image is found and checked
//! (manifests verified, every blob present with the right size) before the copy starts; blob
//! bytes are then streamed in archive order, one pass per round, straight into the engine.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_util::stream;
use tokio::sync::mpsc;

use super::error::CopyError;
use super::job::ImageJob;
use super::source::{BlobBody, BlobRead, FoundReferrer, ManifestRead, Source};
use crate::archive::{scan_archive, ArchiveError, EntrySink, ImageLookup, IndexEntry, ThickArchive};
use crate::oci::{ImageTree, Manifest, ManifestError, ManifestOutline, TreeError};
use crate::reference::{Digest, Reference};

/// Size of the chunks blob bytes are handed on in.
const CHUNK: usize = 256 * 1024;

/// The OCI layout of a thick bundle as a [`Source`].
pub struct ArchiveSource {
    archive: Arc<ThickArchive>,
    /// The tree of each job, by label.
    trees: HashMap<String, ImageTree>,
    passes: AtomicUsize,
}

/// Rounds of reading manifests the first pass did not keep: one per level of index nesting.
const MAX_LOAD_ROUNDS: usize = 8;

/// Outlines of the manifests checked so far, or why one cannot be used.
type Outlines = HashMap<Digest, Result<ManifestOutline, ManifestError>>;

impl ArchiveSource {
    /// Finds every job's image in the archive's layout and checks it is complete. Nothing is
    /// read from any network, and nothing can be pushed before this succeeds. Manifests are
    /// checked and reduced to outlines as they are read.
    pub fn new(archive: Arc<ThickArchive>, jobs: &[ImageJob]) -> Result<ArchiveSource, ArchiveError> {
        let mut errors = Vec::new();
        let mut pending = Vec::new();
        for job in jobs {
            match find(&archive, job, jobs) {
                Ok(entry) => pending.push((job, entry)),
                Err(e) => errors.push(e),
            }
        }
        let (trees, more) = build_trees(&archive, pending)?;
        errors.extend(more);
        match errors.len() {
            0 => {}
            1 => return Err(errors.remove(0)),
            _ => return Err(ArchiveError::Images(errors)),
        }
        Ok(ArchiveSource {
            archive,
            trees,
            passes: AtomicUsize::new(0),
        })
    }
}

/// The trees of `pending` (job, top descriptor): manifests the first pass did not keep are
/// read in one pass per level of nesting, never one each, and never all held at once.
/// Returns the trees by label and the images that could not be built.
fn build_trees(
    archive: &ThickArchive,
    mut pending: Vec<(&ImageJob, IndexEntry)>,
) -> Result<(HashMap<String, ImageTree>, Vec<ArchiveError>), ArchiveError> {
    let mut trees = HashMap::new();
    let mut errors = Vec::new();
    let outlines = RefCell::new(Outlines::new());
    for _ in 0..MAX_LOAD_ROUNDS {
        let mut missing = HashMap::new();
        pending.retain(|(job, entry)| match tree_of(archive, &outlines, job, entry) {
            Ok(tree) => {
                trees.insert(job.label.clone(), tree);
                false
            }
            Err(Built::Missing(d, media_type)) => {
                missing.entry(d).or_insert(media_type);
                true
            }
            Err(Built::Invalid(e)) => {
                errors.push(e);
                false
            }
        });
        if missing.is_empty() {
            break;
        }
        let digests = missing.keys().cloned().collect();
        let mut outlines = outlines.borrow_mut();
        archive.read_manifests(&digests, |digest, bytes| {
            let outline =
                Manifest::new(bytes, missing[digest].as_deref(), Some(digest)).and_then(|m| ManifestOutline::of(&m));
            outlines.insert(digest.clone(), outline);
        })?;
    }
    for (job, _) in pending {
        errors.push(ArchiveError::Layout {
            path: archive.path.clone(),
            detail: format!("image \"{}\": its indexes nest too deeply", job.label),
        });
    }
    Ok((trees, errors))
}

/// A bare tag may name the job's image only when no image from another repository competes
/// for the tag: one that has the same tag and is not found elsewhere in the layout by its pin.
fn bare_tag_allowed(archive: &ThickArchive, job: &ImageJob, jobs: &[ImageJob]) -> bool {
    let tag = |j: &ImageJob| j.source.tag().unwrap_or("latest").to_string();
    let carriers = archive.bare_tagged(&tag(job));
    jobs.iter()
        .filter(|other| other.source.name() != job.source.name() && tag(other) == tag(job))
        .all(|other| {
            other
                .pinned
                .as_ref()
                .is_some_and(|pin| archive.has_top_level(pin) && !carriers.contains(&pin))
        })
}

/// The job's top-level descriptor, checked against its pin.
fn find(archive: &ThickArchive, job: &ImageJob, jobs: &[ImageJob]) -> Result<IndexEntry, ArchiveError> {
    let entry = archive.find_image(&ImageLookup {
        raw: &job.label,
        reference: &job.source,
        pinned: job.pinned.as_ref(),
        bare_tag_allowed: bare_tag_allowed(archive, job, jobs),
    })?;
    match &job.pinned {
        Some(pinned) if *pinned != entry.digest => Err(ArchiveError::PinMismatch {
            image: job.label.clone(),
            expected: pinned.to_string(),
            actual: entry.digest.to_string(),
        }),
        _ => Ok(entry),
    }
}

/// Why a tree could not be built yet.
#[derive(Debug)]
enum Built {
    /// A manifest of it (digest, media type of the descriptor naming it) is not read yet.
    Missing(Digest, Option<String>),
    Invalid(ArchiveError),
}

impl std::fmt::Display for Built {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Built::Missing(d, _) => write!(f, "manifest {d} is not read yet"),
            Built::Invalid(e) => write!(f, "{e}"),
        }
    }
}

/// The image's tree from the manifests read so far; `Missing` names one that is not.
fn tree_of(
    archive: &ThickArchive,
    outlines: &RefCell<Outlines>,
    job: &ImageJob,
    entry: &IndexEntry,
) -> Result<ImageTree, Built> {
    let in_image = |detail: String| {
        Built::Invalid(ArchiveError::Layout {
            path: archive.path.clone(),
            detail: format!("image \"{}\": {detail}", job.label),
        })
    };
    let outline = |digest: &Digest, size, media_type: Option<&str>| {
        let invalid = |e: ArchiveError| {
            Built::Invalid(ArchiveError::InImage {
                image: job.label.clone(),
                source: Box::new(e),
            })
        };
        archive.check_manifest_entry(digest, size).map_err(invalid)?;
        let known = outlines.borrow().get(digest).cloned();
        let read = match known {
            Some(read) => read,
            None => {
                let bytes = archive
                    .kept_manifest(digest)
                    .ok_or_else(|| Built::Missing(digest.clone(), media_type.map(str::to_string)))?;
                let read = Manifest::new(bytes, media_type, Some(digest)).and_then(|m| ManifestOutline::of(&m));
                outlines.borrow_mut().insert(digest.clone(), read.clone());
                read
            }
        };
        read.map_err(|e| {
            invalid(ArchiveError::Layout {
                path: archive.path.clone(),
                detail: format!("manifest {digest}: {e}"),
            })
        })
    };
    let top = outline(&entry.digest, entry.size, entry.media_type.as_deref())?;
    let tree = run_without_waiting(ImageTree::build(top, |d| {
        std::future::ready(outline(&d.digest, d.size, Some(&d.media_type)))
    }))
    .map_err(|e| match e {
        TreeError::Fetch(built) => built,
        other => in_image(other.to_string()),
    })?;
    for blob in &tree.blobs {
        match archive.blob_entry(&blob.digest) {
            // a metadata-first archive read once lists its layers only as they stream
            None if !archive.listing_complete() && !tree.configs.contains(&blob.digest) => {}
            None => return Err(in_image(format!("blob {} is missing from the archive", blob.digest))),
            Some((_, size)) if *size != blob.size => {
                return Err(in_image(format!(
                    "blob {} is {size} bytes in the archive but {} in its descriptor",
                    blob.digest, blob.size
                )))
            }
            Some(_) => {}
        }
    }
    Ok(tree)
}

/// Runs a future that never waits (the layout is in memory, so every inner future is ready).
fn run_without_waiting<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("the layout is in memory; nothing waits"),
    }
}

impl ArchiveSource {
    /// The tree of a manifest found by digest (a referrer), built now.
    async fn tree_by_digest(&self, job: &ImageJob, digest: &Digest) -> Result<ImageTree, CopyError> {
        let entry = self
            .archive
            .describe(digest)
            .ok_or_else(|| CopyError::UnknownImage(job.label.clone()))?;
        let (archive, job) = (self.archive.clone(), job.clone());
        let built = tokio::task::spawn_blocking(move || build_trees(&archive, vec![(&job, entry)]))
            .await
            .map_err(|e| ArchiveError::Io {
                path: self.archive.path.clone(),
                source: io::Error::other(e),
            })??;
        match built {
            (mut trees, _) if trees.len() == 1 => Ok(trees.drain().next().expect("one tree").1),
            (_, mut errors) => Err(errors
                .pop()
                .map_or_else(|| CopyError::UnknownImage(digest.to_string()), CopyError::from)),
        }
    }
}

impl Source for ArchiveSource {
    async fn resolve(&self, job: &ImageJob) -> Result<ImageTree, CopyError> {
        match (self.trees.get(&job.label), &job.pinned) {
            (Some(tree), None) => Ok(tree.clone()),
            (Some(tree), Some(pin)) if tree.top.digest == *pin => Ok(tree.clone()),
            (_, Some(pin)) => self.tree_by_digest(job, pin).await,
            (None, None) => Err(CopyError::UnknownImage(job.label.clone())),
        }
    }

    async fn referrers(&self, origin: &Reference, subject: &Digest) -> Result<Vec<FoundReferrer>, CopyError> {
        let mut found: Vec<FoundReferrer> = self
            .archive
            .referrers_of(subject)
            .iter()
            .map(|(digest, kind)| FoundReferrer {
                tag: None,
                digest: Some(digest.clone()),
                kind: *kind,
                names_subject: true,
            })
            .collect();
        for (tag, digest, kind) in self.archive.cosign_tagged(subject, &origin.name()) {
            found.push(FoundReferrer {
                tag: Some(tag),
                digest: Some(digest),
                kind,
                names_subject: false,
            });
        }
        Ok(found)
    }

    async fn read_manifests(&self, wanted: Vec<ManifestRead>) -> Result<Vec<Manifest>, CopyError> {
        let wanted_digests: Vec<Digest> = wanted.iter().map(|w| w.manifest.digest.clone()).collect();
        let mut found = Vec::with_capacity(wanted.len());
        let mut missing = HashMap::new();
        for read in wanted {
            let m = read.manifest;
            match self.archive.kept_manifest(&m.digest) {
                Some(bytes) => found.push(Manifest::new(bytes, Some(&m.media_type), Some(&m.digest))?),
                None => {
                    missing.insert(m.digest.clone(), m);
                }
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let archive = self.archive.clone();
        let read = tokio::task::spawn_blocking(move || {
            let digests = missing.keys().cloned().collect();
            let mut read = Vec::new();
            archive.read_manifests(&digests, |digest, bytes| {
                read.push(Manifest::new(bytes, Some(&missing[digest].media_type), Some(digest)))
            })?;
            Ok::<_, ArchiveError>(read)
        })
        .await
        .map_err(|e| ArchiveError::Io {
            path: self.archive.path.clone(),
            source: io::Error::other(e),
        })??;
        for m in read {
            found.push(m?);
        }
        match missing_after(&found, wanted_digests) {
            Some(d) => Err(CopyError::ManifestNotOffered(d)),
            None => Ok(found),
        }
    }

    async fn stream_blobs<F, Fut>(&self, blobs: Vec<BlobRead>, deliver: F) -> Vec<(Digest, CopyError)>
    where
        F: Fn(BlobRead, BlobBody) -> Fut + Send + Sync,
        Fut: Future<Output = Result<(), CopyError>> + Send + 'static,
    {
        let digests: Vec<Digest> = blobs.iter().map(|b| b.descriptor.digest.clone()).collect();
        // a JoinSet: dropped with the copy (an interrupt), it aborts the deliveries it holds
        let mut deliveries = tokio::task::JoinSet::new();
        let mut tasks = HashMap::new();
        let mut by_entry: HashMap<String, BlobRead> = HashMap::new();
        for blob in blobs {
            match self.archive.kept_manifest(&blob.descriptor.digest) {
                // configs the first pass kept need no pass at all
                Some(bytes) => {
                    let digest = blob.descriptor.digest.clone();
                    let delivery = deliver(blob, Box::pin(stream::iter([Ok(bytes)])));
                    let task = deliveries.spawn({
                        let digest = digest.clone();
                        async move { (digest, delivery.await) }
                    });
                    tasks.insert(task.id(), digest);
                }
                None => {
                    by_entry.insert(self.archive.blob_entry_name(&blob.descriptor.digest), blob);
                }
            }
        }
        let (entries_tx, mut entries_rx) = mpsc::channel::<(BlobRead, mpsc::Receiver<io::Result<Bytes>>)>(1);
        let (path, file) = (self.archive.path.clone(), self.archive.file().to_path_buf());
        let wanted = by_entry.len();
        let sink = move |name: &str, _: u64, content: &mut dyn io::Read| match by_entry.remove(name) {
            Some(read) => stream_entry(read, content, &entries_tx),
            None => Ok(()),
        };
        let paused = if wanted > 0 { self.archive.take_paused() } else { None };
        let reader = match (wanted, paused) {
            (0, _) => {
                drop(sink); // closes the channel of entries: nothing to wait for
                tokio::task::spawn_blocking(|| Ok(()))
            }
            (_, Some(paused)) => {
                let pass = self.passes.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::info!(
                    "reading {wanted} blob(s) from {} (pass {pass}: the rest of the first pass, the archive being metadata first)",
                    path.display()
                );
                tokio::task::spawn_blocking(move || paused.deliver(Box::new(sink)))
            }
            (_, None) => {
                let pass = self.passes.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::info!("reading {wanted} blob(s) from {} (pass {pass})", path.display());
                tokio::task::spawn_blocking(move || scan_archive(&file, sink).map(drop))
            }
        };
        while let Some((read, chunks)) = entries_rx.recv().await {
            let digest = read.descriptor.digest.clone();
            let body: BlobBody = Box::pin(stream::unfold(chunks, |mut rx| async move {
                rx.recv().await.map(|item| (item, rx))
            }));
            let delivery = deliver(read, body);
            let task = deliveries.spawn({
                let digest = digest.clone();
                async move { (digest, delivery.await) }
            });
            tasks.insert(task.id(), digest);
        }
        let mut failures = Vec::new();
        let mut delivered = HashSet::new();
        while let Some(joined) = deliveries.join_next().await {
            match joined {
                Ok((digest, Ok(()))) => {
                    delivered.insert(digest);
                }
                Ok((digest, Err(e))) => failures.push((digest, e)),
                Err(e) => {
                    let digest = tasks[&e.id()].clone();
                    failures.push((digest.clone(), CopyError::DeliveryFailed(digest)));
                }
            }
        }
        let read_error = match reader.await {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(self.archive.naming(e)),
            Err(e) => Some(ArchiveError::Io {
                path: self.archive.path.clone(),
                source: io::Error::other(e),
            }),
        };
        if let Some(e) = read_error {
            // blobs placed before the archive broke stay placed; the rest fail with it. When
            // every blob was placed, the broken tail (read nowhere else when the archive is
            // read once) fails them all.
            let e = Arc::new(e);
            let failed: HashSet<Digest> = failures.iter().map(|(d, _)| d.clone()).collect();
            let all_delivered = digests.iter().all(|d| delivered.contains(d));
            for d in digests {
                if (all_delivered || !delivered.contains(&d)) && !failed.contains(&d) {
                    failures.push((d, CopyError::ArchiveRead(e.clone())));
                }
            }
        }
        failures
    }

    async fn finish_reading(&self) -> Result<(), CopyError> {
        let Some(paused) = self.archive.take_paused() else {
            return Ok(());
        };
        // the rest of the archive is checked (a manifest naming a subject there is refused)
        let skip: EntrySink = Box::new(|_: &str, _: u64, _: &mut dyn io::Read| Ok(()));
        let read = tokio::task::spawn_blocking(move || paused.deliver(skip)).await;
        match read {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(CopyError::ArchiveRead(Arc::new(self.archive.naming(e)))),
            Err(e) => Err(CopyError::ArchiveRead(Arc::new(ArchiveError::Io {
                path: self.archive.path.clone(),
                source: io::Error::other(e),
            }))),
        }
    }

    fn repository_on(&self, _job: &ImageJob, _registry: &str) -> Option<String> {
        None
    }

    fn resolves_locally(&self) -> bool {
        true
    }
}

/// The first of `wanted` that is not among `found`.
fn missing_after(found: &[Manifest], wanted: Vec<Digest>) -> Option<Digest> {
    let found: HashSet<&Digest> = found.iter().map(|m| &m.digest).collect();
    wanted.into_iter().find(|d| !found.contains(d))
}

/// Hands one archive entry's bytes to the engine, chunk by chunk.
fn stream_entry(
    read: BlobRead,
    content: &mut dyn io::Read,
    entries: &mpsc::Sender<(BlobRead, mpsc::Receiver<io::Result<Bytes>>)>,
) -> io::Result<()> {
    let (tx, rx) = mpsc::channel(8);
    if entries.blocking_send((read, rx)).is_err() {
        return Ok(());
    }
    let mut buf = vec![0u8; CHUNK];
    loop {
        match content.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                if tx.blocking_send(Ok(Bytes::copy_from_slice(&buf[..n]))).is_err() {
                    return Ok(()); // the upload gave up; the scan drains the entry
                }
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(io::Error::new(e.kind(), e.to_string())));
                return Err(e);
            }
        }
    }
}
