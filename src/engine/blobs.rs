//! Getting every wanted blob into every repository that needs it, in rounds. Each round
//! first places what needs no bytes (present, mountable), then asks the source for the bytes
//! of the rest, in the order the source prefers. A blob no repository holds yet goes to one
//! repository first and is mounted into the others; a repository that refuses the mount gets
//! the bytes in the next round, together with every other such repository (one more read of
//! the blob, whatever their number). Failures that may heal are tried again in later rounds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::stream::{self, StreamExt};

use super::destination::Destination;
use super::error::CopyError;
use super::placement::{BlobPlacements, WantedBlob};
use super::source::{BlobBody, BlobRead, Source};
use crate::reference::Digest;
use crate::registry::RetryPolicy;

/// Per blob of a round: the blob and the repositories its bytes go to.
type Batch = HashMap<Digest, (WantedBlob, Vec<String>)>;

/// Places every blob of `wanted`; returns those that could not be placed, and why.
pub(crate) async fn place_blobs<S: Source, D: Destination>(
    source: &S,
    placements: &Arc<BlobPlacements<D>>,
    wanted: Vec<WantedBlob>,
    concurrency: usize,
    retry: &RetryPolicy,
) -> HashMap<Digest, Arc<CopyError>> {
    let mut failed = HashMap::new();
    let mut attempts: HashMap<Digest, u32> = HashMap::new();
    let mut pending = wanted;
    while !pending.is_empty() {
        let mut next = Vec::new();
        let mut wait_for: Option<u32> = None;
        let mut fail = |blob: WantedBlob, e: CopyError, next: &mut Vec<WantedBlob>| {
            let n = attempts.entry(blob.digest().clone()).or_default();
            *n += 1;
            if e.is_retryable() && *n < retry.max_attempts {
                tracing::warn!("blob {}: {e}; trying again", blob.digest());
                wait_for = wait_for.max(Some(*n));
                next.push(blob);
            } else {
                failed.insert(blob.digest().clone(), Arc::new(e));
            }
        };
        let (batch, errors) = without_bytes(placements, pending, concurrency).await;
        for (blob, e) in errors {
            fail(blob, e, &mut next);
        }
        if !batch.is_empty() {
            let blobs: Vec<WantedBlob> = batch.values().map(|(b, _)| b.clone()).collect();
            let reads = blobs
                .iter()
                .map(|b| BlobRead {
                    descriptor: b.descriptor.clone(),
                    origin: b.origins[0].clone(),
                })
                .collect();
            let batch = Arc::new(Mutex::new(batch));
            let failures = source
                .stream_blobs(reads, |read, body| {
                    deliver(placements.clone(), batch.clone(), read, body)
                })
                .await;
            let mut failed_now: HashMap<Digest, CopyError> = failures.into_iter().collect();
            for (digest, _) in batch.lock().expect("batch lock").drain() {
                failed_now
                    .entry(digest.clone())
                    .or_insert(CopyError::BlobNotOffered(digest));
            }
            for blob in blobs {
                match failed_now.remove(blob.digest()) {
                    Some(e) => fail(blob, e, &mut next),
                    // placed in some repositories; the next round finds any still lacking it
                    None => next.push(blob),
                }
            }
        }
        if let Some(attempt) = wait_for {
            tokio::time::sleep(retry.delay(attempt - 1, None)).await;
        }
        pending = next;
    }
    failed
}

/// Places each blob where no bytes are needed; returns the repositories needing bytes, per
/// blob, and the blobs that failed.
async fn without_bytes<D: Destination>(
    placements: &Arc<BlobPlacements<D>>,
    blobs: Vec<WantedBlob>,
    concurrency: usize,
) -> (Batch, Vec<(WantedBlob, CopyError)>) {
    let checked: Vec<_> = stream::iter(blobs)
        .map(|blob| async move {
            let r = placements.place_without_bytes(&blob).await;
            (blob, r)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut batch = HashMap::new();
    let mut errors = Vec::new();
    for (blob, result) in checked {
        match result {
            Ok(needs) if needs.is_empty() => {}
            Ok(mut needs) => {
                if !placements.is_held(&blob) {
                    // no one holds it: send it once, then mount it into the rest
                    needs.truncate(1);
                }
                batch.insert(blob.digest().clone(), (blob, needs));
            }
            Err(e) => errors.push((blob, e)),
        }
    }
    (batch, errors)
}

/// Sends one blob's bytes to the repositories waiting for them, then mounts it into the rest;
/// repositories that refuse get the bytes in the next round.
fn deliver<D: Destination>(
    placements: Arc<BlobPlacements<D>>,
    batch: Arc<Mutex<Batch>>,
    read: BlobRead,
    body: BlobBody,
) -> impl std::future::Future<Output = Result<(), CopyError>> + Send + 'static {
    let taken = batch.lock().expect("batch lock").remove(&read.descriptor.digest);
    async move {
        let Some((blob, targets)) = taken else {
            return Ok(()); // offered twice; the first delivery placed it
        };
        placements.send(&blob, targets, body).await?;
        placements.place_without_bytes(&blob).await?;
        Ok(())
    }
}
