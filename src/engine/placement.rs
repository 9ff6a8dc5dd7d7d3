//! The placement state machine: where each blob stands in each destination repository, and
//! the only code that moves it forward. A (repository, blob) pair goes from unknown to
//! absent or present (HEAD), from absent to mounted (from a repository that holds it) or to
//! needing bytes, and from needing bytes to uploaded (a verified stream, committed only when
//! digest and size match). Nothing else writes blobs, so thin and thick copies, and every
//! image sharing a blob, place it the same way and once.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::future::join_all;
use futures_util::stream::StreamExt;
use tokio::sync::mpsc;

use super::destination::{Destination, Mount};
use super::error::{BlobProblem, CopyError};
use super::report::{BlobOutcome, Event, Reporter};
use super::source::BlobBody;
use crate::oci::{Descriptor, Verifier};
use crate::reference::{Digest, Reference};

/// One distinct blob the run must place in one or more destination repositories.
#[derive(Debug, Clone)]
pub(crate) struct WantedBlob {
    pub descriptor: Descriptor,
    /// Destination repositories that need it.
    pub repositories: Vec<String>,
    /// Source references of the images that use it (a registry source reads from the first).
    pub origins: Vec<Reference>,
    /// Repositories of the destination registry that hold it already (a source on the same
    /// registry): mounted from, never uploaded.
    pub mount_from: Vec<String>,
}

impl WantedBlob {
    pub fn digest(&self) -> &Digest {
        &self.descriptor.digest
    }
}

/// A repository that needs the blob's bytes, with the upload session a refused mount opened.
pub(crate) struct NeedsBytes<U> {
    pub repository: String,
    pub session: Option<U>,
}

#[derive(Debug, Clone)]
enum BlobState {
    Absent { mount_refused: bool },
    Placed(BlobOutcome),
}

#[derive(Default)]
struct Table {
    states: HashMap<(String, Digest), BlobState>,
    /// Repositories where each blob is placed: where mounts come from.
    holders: HashMap<Digest, Vec<String>>,
}

/// Every (repository, blob) pair of a run and how to move it forward.
pub(crate) struct BlobPlacements<D: Destination> {
    destination: Arc<D>,
    reporter: Reporter,
    table: Mutex<Table>,
}

impl<D: Destination> BlobPlacements<D> {
    pub fn new(destination: Arc<D>, reporter: Reporter) -> Self {
        BlobPlacements {
            destination,
            reporter,
            table: Mutex::new(Table::default()),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().expect("placement table lock")
    }

    fn state(&self, repository: &str, digest: &Digest) -> Option<BlobState> {
        self.table()
            .states
            .get(&(repository.to_string(), digest.clone()))
            .cloned()
    }

    fn set_absent(&self, repository: &str, digest: &Digest, mount_refused: bool) {
        self.table().states.insert(
            (repository.to_string(), digest.clone()),
            BlobState::Absent { mount_refused },
        );
    }

    fn place(&self, repository: &str, digest: &Digest, outcome: BlobOutcome, report: bool) {
        let mut table = self.table();
        let key = (repository.to_string(), digest.clone());
        if matches!(table.states.get(&key), Some(BlobState::Placed(_))) {
            return;
        }
        table.states.insert(key, BlobState::Placed(outcome.clone()));
        table
            .holders
            .entry(digest.clone())
            .or_default()
            .push(repository.to_string());
        drop(table);
        if report {
            (self.reporter)(&Event::BlobDone {
                digest: digest.to_string(),
                repository: repository.to_string(),
                outcome,
            });
        }
    }

    /// Records blobs a repository is known to hold (an image the destination already has).
    pub fn note_present<'a>(&self, repository: &str, digests: impl IntoIterator<Item = &'a Digest>) {
        for digest in digests {
            self.place(repository, digest, BlobOutcome::Present, false);
        }
    }

    /// A repository other than `except` that holds the blob, or that the source says has it.
    fn mount_origin(&self, blob: &WantedBlob, except: &str) -> Option<String> {
        let table = self.table();
        table
            .holders
            .get(blob.digest())
            .and_then(|h| h.iter().find(|r| *r != except).cloned())
            .or_else(|| blob.mount_from.iter().find(|r| *r != except).cloned())
    }

    /// Whether a mount of the blob was possible and was tried (some repository holds it, or
    /// the source's repository may lend it, or a repository refused it): then every
    /// repository still needing bytes gets them at once rather than one first.
    pub fn mounts_already_tried(&self, blob: &WantedBlob) -> bool {
        let table = self.table();
        table.holders.contains_key(blob.digest())
            || !blob.mount_from.is_empty()
            || blob.repositories.iter().any(|r| {
                matches!(
                    table.states.get(&(r.clone(), blob.digest().clone())),
                    Some(BlobState::Absent { mount_refused: true })
                )
            })
    }

    /// Places the blob without its bytes wherever possible: checks each repository not yet
    /// known to hold it, and mounts it from a repository that does. Returns the repositories
    /// that need the bytes.
    pub async fn place_without_bytes(&self, blob: &WantedBlob) -> Result<Vec<NeedsBytes<D::Upload>>, CopyError> {
        let mut needs = Vec::new();
        for repository in &blob.repositories {
            match self.advance(blob, repository).await {
                Ok(None) => {}
                Ok(Some(n)) => needs.push(n),
                Err(e) => {
                    self.abort_all(needs).await;
                    return Err(e);
                }
            }
        }
        Ok(needs)
    }

    /// One repository's step without bytes; `Some` when it needs them.
    async fn advance(&self, blob: &WantedBlob, repository: &str) -> Result<Option<NeedsBytes<D::Upload>>, CopyError> {
        let digest = blob.digest();
        let mount_refused = match self.state(repository, digest) {
            Some(BlobState::Placed(_)) => return Ok(None),
            Some(BlobState::Absent { mount_refused }) => mount_refused,
            None => {
                if self.destination.has_blob(repository, digest).await? {
                    self.place(repository, digest, BlobOutcome::Present, true);
                    return Ok(None);
                }
                self.set_absent(repository, digest, false);
                false
            }
        };
        let needs = |session| {
            Ok(Some(NeedsBytes {
                repository: repository.to_string(),
                session,
            }))
        };
        if mount_refused {
            return needs(None);
        }
        let Some(from) = self.mount_origin(blob, repository) else {
            return needs(None);
        };
        match self.destination.mount_blob(repository, digest, &from).await? {
            Mount::Mounted => {
                self.place(repository, digest, BlobOutcome::Mounted { from }, true);
                Ok(None)
            }
            Mount::Refused(session) => {
                self.set_absent(repository, digest, true);
                needs(session)
            }
        }
    }

    /// Closes the upload sessions of `needs` that will not be used now.
    pub async fn abort_all(&self, needs: Vec<NeedsBytes<D::Upload>>) {
        for n in needs {
            if let Some(session) = n.session {
                self.destination.abort_blob(&n.repository, session).await;
            }
        }
    }

    /// Streams `body` into every repository of `targets` at once, hashing it as it passes;
    /// each upload is committed only when digest and size match the descriptor.
    pub async fn send(
        &self,
        blob: &WantedBlob,
        targets: Vec<NeedsBytes<D::Upload>>,
        body: BlobBody,
    ) -> Result<(), CopyError> {
        let digest = blob.digest().clone();
        let size = blob.descriptor.size;
        let uploads = self.open_uploads(&digest, size, targets).await?;
        let verifier = Arc::new(Mutex::new(Verifier::new(&digest)));
        let body = self.verified(body, &verifier, &digest, size, uploads.len() as u64);
        let written: Vec<(String, Result<D::Upload, CopyError>)> = if uploads.len() == 1 {
            let (repository, session) = uploads.into_iter().next().expect("one upload");
            let r = self.destination.write_blob(&repository, session, body, size).await;
            vec![(repository, r)]
        } else {
            self.write_to_all(uploads, body, size).await
        };
        let (seen, got) = {
            let v = verifier.lock().expect("verifier lock");
            (v.seen(), v.digest_so_far())
        };
        let problem = if seen > size {
            Some(BlobProblem::TooLong { size })
        } else if written.iter().any(|(_, r)| r.is_err()) {
            None // the write error says more than the bytes seen so far
        } else if seen != size {
            Some(BlobProblem::TooShort { seen, size })
        } else if got != digest {
            Some(BlobProblem::Digest(got))
        } else {
            None
        };
        let results = join_all(written.into_iter().map(|(repository, r)| {
            let (problem, digest) = (problem.clone(), digest.clone());
            async move {
                let upload = r?;
                if let Some(problem) = problem {
                    self.destination.abort_blob(&repository, upload).await;
                    return Err(CopyError::BlobMismatch { digest, problem });
                }
                self.destination.commit_blob(&repository, upload, &digest).await?;
                self.place(&repository, &digest, BlobOutcome::Uploaded { bytes: size }, true);
                Ok(())
            }
        }))
        .await;
        results.into_iter().find(Result::is_err).unwrap_or(Ok(()))
    }

    async fn open_uploads(
        &self,
        digest: &Digest,
        size: u64,
        targets: Vec<NeedsBytes<D::Upload>>,
    ) -> Result<Vec<(String, D::Upload)>, CopyError> {
        let mut uploads: Vec<(String, D::Upload)> = Vec::new();
        let mut targets = targets.into_iter();
        while let Some(t) = targets.next() {
            let session = match t.session {
                Some(s) => s,
                None => match self.destination.start_upload(&t.repository).await {
                    Ok(s) => s,
                    Err(e) => {
                        for (repository, session) in uploads {
                            self.destination.abort_blob(&repository, session).await;
                        }
                        self.abort_all(targets.collect()).await;
                        return Err(e);
                    }
                },
            };
            (self.reporter)(&Event::BlobStarted {
                digest: digest.to_string(),
                repository: t.repository.clone(),
                size,
            });
            uploads.push((t.repository, session));
        }
        Ok(uploads)
    }

    /// The body, hashed and counted as it passes; more bytes than `size` end it with an error.
    fn verified(
        &self,
        body: BlobBody,
        verifier: &Arc<Mutex<Verifier>>,
        digest: &Digest,
        size: u64,
        copies: u64,
    ) -> BlobBody {
        let verifier = verifier.clone();
        let reporter = self.reporter.clone();
        let digest = digest.to_string();
        Box::pin(body.map(move |chunk| {
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
                digest: digest.clone(),
                bytes: chunk.len() as u64 * copies,
            });
            Ok(chunk)
        }))
    }

    /// Tees one stream into several uploads that run side by side.
    async fn write_to_all(
        &self,
        uploads: Vec<(String, D::Upload)>,
        mut body: BlobBody,
        size: u64,
    ) -> Vec<(String, Result<D::Upload, CopyError>)> {
        let mut senders = Vec::new();
        let mut writes = Vec::new();
        for (repository, session) in uploads {
            let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(4);
            senders.push(tx);
            let copy: BlobBody = Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|item| (item, rx))
            }));
            writes.push(async move {
                let r = self.destination.write_blob(&repository, session, copy, size).await;
                (repository, r)
            });
        }
        let feed = async move {
            while let Some(item) = body.next().await {
                let failed = item.is_err();
                for tx in &senders {
                    let copy = match &item {
                        Ok(bytes) => Ok(bytes.clone()),
                        Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                    };
                    // an upload that gave up has dropped its receiver; the others go on
                    let _ = tx.send(copy).await;
                }
                if failed {
                    break;
                }
            }
        };
        let (_, written) = futures_util::future::join(feed, join_all(writes)).await;
        written
    }

    /// How the blob reached `repository`, if it did.
    pub fn outcome(&self, repository: &str, digest: &Digest) -> Option<BlobOutcome> {
        match self.state(repository, digest) {
            Some(BlobState::Placed(o)) => Some(o),
            _ => None,
        }
    }

    /// Bytes of every committed upload.
    pub fn bytes_uploaded(&self) -> u64 {
        self.table()
            .states
            .values()
            .map(|s| match s {
                BlobState::Placed(BlobOutcome::Uploaded { bytes }) => *bytes,
                _ => 0,
            })
            .sum()
    }
}
