//! Places blobs in target repositories: HEAD, cross-repository mount, or a streamed upload
//! that is hashed on the way and committed only when digest and size match.

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::stream::{Stream, StreamExt};
use reqwest::Url;

use super::copy::CopyError;
use super::report::{BlobOutcome, Event, Reporter};
use super::source::WantedBlob;
use crate::reference::Digest;
use crate::registry::manifest::Verifier;
use crate::registry::{MountOutcome, Registry};

/// The next target repository that needs a blob's bytes, with the upload session a refused
/// mount opened, if any; `None` when every repository has the blob.
pub type NextUpload = Option<(String, Option<Url>)>;

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

    /// Makes the blob present, without sending its bytes, in the target repositories where
    /// that is possible, up to the first that needs the bytes (after its upload, settling
    /// again mounts the blob from it into the rest).
    pub async fn settle(&self, blob: &WantedBlob) -> Result<NextUpload, CopyError> {
        let digest = blob.digest();
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
                return Ok(Some((repository.clone(), None)));
            };
            match self.target.mount_blob(repository, digest, &from).await? {
                MountOutcome::Mounted => self.record(repository, digest, BlobOutcome::Mounted { from }),
                MountOutcome::Upload(session) => {
                    tracing::debug!(
                        "{}: mount of {digest} from {from} refused; uploading",
                        self.target.domain()
                    );
                    return Ok(Some((repository.clone(), Some(session))));
                }
            }
        }
        Ok(None)
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

    /// The repository of `next`, for bytes that come later (a thick bundle's next pass): the
    /// upload session a refused mount opened is closed rather than held.
    pub async fn defer(&self, next: NextUpload) -> Option<String> {
        let (repository, session) = next?;
        if let Some(session) = session {
            self.target.cancel_upload(&repository, session).await;
        }
        Some(repository)
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

    pub(crate) fn outcome(&self, repository: &str, digest: &Digest) -> Option<BlobOutcome> {
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
                let Some((repository, session)) = sink.settle(blob).await? else {
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
