//! Thick bundles as an [`ImageSource`]: images come only from the archive. Every image is
//! found and checked (manifests verified, every blob present with the right size) before the
//! copy starts; blob bytes are then streamed from the archive in archive order, straight into
//! verified uploads, and only for blobs the target does not already have.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use tokio::sync::mpsc;

use super::archive::scan_archive;
use super::layout::ThickArchive;
use super::ThickError;
use crate::reference::Digest;
use crate::relocate::copy::CopyError;
use crate::relocate::sink::{BlobSink, NextUpload};
use crate::relocate::{ImageSource, ImageTree, Plan, PlannedImage, WantedBlob};

/// Passes over the archive for blobs whose upload failed in a way that may heal.
const MAX_PASSES: usize = 3;
const CHUNK: usize = 256 * 1024;

pub struct ThickSource {
    archive: Arc<ThickArchive>,
    trees: HashMap<String, ImageTree>,
    concurrency: usize,
}

impl ThickSource {
    /// Finds every image of `plan` in the archive's layout and checks it is complete. Nothing
    /// is read from any network and nothing is pushed before this succeeds.
    pub fn new(archive: Arc<ThickArchive>, plan: &Plan, concurrency: usize) -> Result<ThickSource, ThickError> {
        let mut trees = HashMap::new();
        for image in &plan.images {
            let entry = archive.find_image(image)?;
            if let Some(expected) = &image.expected_digest {
                if *expected != entry.digest {
                    return Err(ThickError::PinMismatch {
                        image: image.raw.clone(),
                        expected: expected.to_string(),
                        actual: entry.digest.to_string(),
                    });
                }
            }
            let in_image = |e: String| ThickError::Layout {
                path: archive.path.clone(),
                detail: format!("image \"{}\": {e}", image.raw),
            };
            let top = archive
                .manifest(&entry.digest, entry.size, entry.media_type.as_deref())
                .map_err(|e| in_image(e.to_string()))?;
            let tree = ready(ImageTree::build(top, |d| {
                std::future::ready(
                    archive
                        .manifest(&d.digest, d.size, Some(&d.media_type))
                        .map_err(|e| CopyError::Source(e.to_string())),
                )
            }))
            .map_err(|e| in_image(e.to_string()))?;
            for blob in &tree.blobs {
                match archive.blob_entry(&blob.digest) {
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
            trees.insert(image.raw.clone(), tree);
        }
        Ok(ThickSource {
            archive,
            trees,
            concurrency: concurrency.max(1),
        })
    }

    /// One pass over the archive, uploading each blob of `pending` as its entry streams by.
    /// Returns, per blob, the next repository that still lacks it, or why it failed.
    async fn stream_pass(
        &self,
        pending: &HashMap<Digest, (WantedBlob, String)>,
        sink: &Arc<BlobSink>,
    ) -> (Vec<(Digest, Result<Option<String>, CopyError>)>, Option<String>) {
        let by_entry: HashMap<String, Digest> = pending
            .keys()
            .filter_map(|d| self.archive.blob_entry(d).map(|(name, _)| (name.clone(), d.clone())))
            .collect();
        let (blobs_tx, mut blobs_rx) = mpsc::channel::<(Digest, mpsc::Receiver<io::Result<Bytes>>)>(1);
        let path = self.archive.path.clone();
        let reader = tokio::task::spawn_blocking(move || {
            scan_archive(&path, |name, _, content| {
                let Some(digest) = by_entry.get(name) else {
                    return Ok(());
                };
                let (tx, rx) = mpsc::channel(8);
                if blobs_tx.blocking_send((digest.clone(), rx)).is_err() {
                    return Ok(());
                }
                let mut buf = vec![0u8; CHUNK];
                loop {
                    match content.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            if tx.blocking_send(Ok(Bytes::copy_from_slice(&buf[..n]))).is_err() {
                                break; // the upload gave up; the scan drains the entry
                            }
                        }
                        Err(e) => {
                            let _ = tx.blocking_send(Err(io::Error::new(e.kind(), e.to_string())));
                            return Err(e);
                        }
                    }
                }
                Ok(())
            })
        });
        let mut uploads = Vec::new();
        while let Some((digest, body_rx)) = blobs_rx.recv().await {
            let (blob, repository) = pending[&digest].clone();
            let sink = sink.clone();
            uploads.push(tokio::spawn(async move {
                let body = stream::unfold(body_rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
                let result = match sink.upload(&blob, &repository, None, body).await {
                    // mount it into the other repositories that need it
                    Ok(()) => match sink.settle(&blob).await {
                        Ok(next) => Ok(sink.defer(next).await),
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                };
                (digest, result)
            }));
        }
        let mut results = Vec::new();
        for u in uploads {
            match u.await {
                Ok(r) => results.push(r),
                Err(e) => tracing::error!("upload task failed: {e}"),
            }
        }
        let archive_error = match reader.await {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(format!("archive reader failed: {e}")),
        };
        (results, archive_error)
    }
}

/// Runs a future that never waits (every inner future is already ready).
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("the layout is in memory; nothing waits"),
    }
}

impl ImageSource for ThickSource {
    async fn resolve(&self, image: &PlannedImage) -> Result<ImageTree, CopyError> {
        self.trees
            .get(&image.raw)
            .cloned()
            .ok_or_else(|| CopyError::Source(format!("image {} was not prepared from the archive", image.raw)))
    }

    async fn send_blobs(&self, wanted: Vec<WantedBlob>, sink: Arc<BlobSink>) -> Vec<(Digest, CopyError)> {
        let mut failures = Vec::new();
        // Place what the target can get without our bytes (HEAD, mount) before reading anything.
        let settled: Vec<(WantedBlob, Result<NextUpload, CopyError>)> = stream::iter(wanted)
            .map(|blob| {
                let sink = sink.clone();
                async move {
                    let r = sink.settle(&blob).await;
                    (blob, r)
                }
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut pending: HashMap<Digest, (WantedBlob, String)> = HashMap::new();
        for (blob, result) in settled {
            match result {
                Err(e) => failures.push((blob.digest().clone(), e)),
                Ok(next) => {
                    if let Some(repository) = sink.defer(next).await {
                        pending.insert(blob.digest().clone(), (blob, repository));
                    }
                }
            }
        }
        for pass in 1..=MAX_PASSES {
            if pending.is_empty() {
                break;
            }
            tracing::info!(
                "reading {} blob(s) from {} (pass {pass})",
                pending.len(),
                self.archive.path.display()
            );
            let (results, archive_error) = self.stream_pass(&pending, &sink).await;
            let mut next = HashMap::new();
            for (digest, result) in results {
                let (blob, repository) = pending.remove(&digest).expect("a pending blob");
                match result {
                    Ok(Some(repository)) => {
                        next.insert(digest, (blob, repository));
                    }
                    Ok(None) => {}
                    Err(e) if e.is_retryable() && pass < MAX_PASSES => {
                        tracing::warn!("blob {digest}: {e}; it will be read again");
                        next.insert(digest, (blob, repository));
                    }
                    Err(e) => failures.push((digest, e)),
                }
            }
            if let Some(e) = archive_error {
                for (digest, _) in pending.drain().chain(next.drain()) {
                    failures.push((digest, CopyError::Source(format!("reading the archive: {e}"))));
                }
                return failures;
            }
            // blobs the pass never reached (should not happen: they were all found before)
            for (digest, _) in pending.drain() {
                failures.push((
                    digest,
                    CopyError::Source("not found in the archive on a later pass".into()),
                ));
            }
            pending = next;
        }
        for (digest, _) in pending {
            failures.push((
                digest,
                CopyError::Source("could not be placed after several passes".into()),
            ));
        }
        failures
    }

    fn repository_on(&self, _image: &PlannedImage, _target_domain: &str) -> Option<String> {
        None
    }

    fn resolves_locally(&self) -> bool {
        true
    }
}
