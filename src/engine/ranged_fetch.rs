//! A big blob from a registry fetched as several `Range` requests on separate connections, as
//! containerd 2.1's multipart layer fetch does: one TCP stream over a long link carries far less
//! than the link. The parts are handed on in order as one body, so the engine still streams
//! it into one upload and checks the digest over the whole.

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};

use super::source::BlobBody;
use crate::reference::Digest;
use crate::registry::{BlobRange, Registry};

/// Blobs at least this big are fetched in parts.
pub(super) const RANGED_ABOVE: u64 = 16 * 1024 * 1024;
/// The size of a part.
const PART: u64 = 8 * 1024 * 1024;
/// Parts fetched at once; with [`PART`], what one blob may hold in memory.
const PARTS_IN_FLIGHT: usize = 4;
/// Times a failed part is fetched again, alone.
const PART_ATTEMPTS: u32 = 3;

/// How the first ranged request went.
pub(super) enum FirstPart {
    /// The first part: the rest is fetched in parts too.
    Part(Bytes),
    /// The server ignored `Range` and is sending the whole blob: read it as it comes.
    Whole(reqwest::Response),
}

/// The first part of the blob, by `Range`.
pub(super) async fn first_part(
    registry: &Registry,
    repository: &str,
    digest: &Digest,
    size: u64,
) -> Result<FirstPart, io::Error> {
    let end = PART.min(size) - 1;
    match registry.get_blob_range(repository, digest, 0, end).await {
        Ok(BlobRange::Part(response)) => Ok(FirstPart::Part(read_part(response, end + 1).await?)),
        Ok(BlobRange::Whole(response)) => Ok(FirstPart::Whole(response)),
        Err(e) => Err(io::Error::other(e)),
    }
}

/// The blob as one body: `first` (its first part), then every further part, fetched
/// [`PARTS_IN_FLIGHT`] at a time and handed on in order; a part that fails is fetched again
/// alone.
pub(super) fn ranged_body(
    registry: Arc<Registry>,
    repository: String,
    digest: Digest,
    size: u64,
    first: Bytes,
) -> BlobBody {
    let ranges: Vec<(u64, u64)> = (1..size.div_ceil(PART))
        .map(|i| (i * PART, ((i + 1) * PART).min(size) - 1))
        .collect();
    let rest = stream::iter(ranges)
        .map(move |(start, end)| {
            let (registry, repository, digest) = (registry.clone(), repository.clone(), digest.clone());
            async move { fetch_part(&registry, &repository, &digest, start, end).await }
        })
        .buffered(PARTS_IN_FLIGHT);
    Box::pin(stream::once(async move { Ok(first) }).chain(rest))
}

async fn fetch_part(registry: &Registry, repository: &str, digest: &Digest, start: u64, end: u64) -> io::Result<Bytes> {
    let mut attempt = 0;
    loop {
        let fetched = match registry.get_blob_range(repository, digest, start, end).await {
            Ok(BlobRange::Part(response)) => read_part(response, end - start + 1).await,
            Ok(BlobRange::Whole(_)) => Err(io::Error::other(format!(
                "the registry stopped honouring Range for {digest} at byte {start}"
            ))),
            Err(e) => Err(io::Error::other(e)),
        };
        match fetched {
            Ok(bytes) => return Ok(bytes),
            Err(e) if attempt + 1 < PART_ATTEMPTS => {
                tracing::info!(
                    "{}: part {start}-{end} of {digest}: {e}; fetching it again",
                    registry.domain()
                );
                tokio::time::sleep(registry.retry_policy().delay(attempt, None)).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// A part's bytes, exactly `len` of them.
async fn read_part(response: reqwest::Response, len: u64) -> io::Result<Bytes> {
    let mut part = Vec::with_capacity(len as usize);
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(io::Error::other)?;
        if part.len() as u64 + chunk.len() as u64 > len {
            return Err(io::Error::other("a part longer than its range"));
        }
        part.extend_from_slice(&chunk);
    }
    if part.len() as u64 != len {
        return Err(io::Error::other(format!(
            "a part ended after {} of {len} bytes",
            part.len()
        )));
    }
    Ok(Bytes::from(part))
}
