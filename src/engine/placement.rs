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
use crate::registry::RegistryError;

/// Blobs smaller than this are read into memory and sent with the request that commits them.
pub(crate) const WHOLE_BELOW: u64 = 1024 * 1024;

/// How the bytes seen differ from the descriptor, if they do.
fn mismatch(seen: u64, got: Digest, digest: &Digest, size: u64) -> Option<BlobProblem> {
    if seen > size {
        Some(BlobProblem::TooLong { size })
    } else if seen != size {
        Some(BlobProblem::TooShort { seen, size })
    } else if got != *digest {
        Some(BlobProblem::Digest(got))
    } else {
        None
    }
}

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

#[derive(Debug, Clone)]
enum BlobState {
    /// Checked and missing; mounts from these repositories were refused.
    Absent {
        refused_from: Vec<String>,
    },
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

/// What a run placed: blobs uploaded (and their bytes) and blobs mounted.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Totals {
    pub uploaded: usize,
    pub mounted: usize,
    pub bytes_uploaded: u64,
}

/// How a verified send went for one repository.
type Written<U> = (String, Result<U, CopyError>);

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

    fn set_absent(&self, repository: &str, digest: &Digest, refused_from: Vec<String>) {
        self.table().states.insert(
            (repository.to_string(), digest.clone()),
            BlobState::Absent { refused_from },
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

    /// Whether some repository of the destination holds the blob.
    pub fn is_held(&self, blob: &WantedBlob) -> bool {
        self.table().holders.contains_key(blob.digest())
    }

    /// A repository to mount from into `repository`: one that holds the blob, or that the
    /// source says has it, and has not refused before.
    fn mount_origin(&self, blob: &WantedBlob, repository: &str, refused: &[String]) -> Option<String> {
        let table = self.table();
        let usable = |r: &&String| *r != repository && !refused.contains(r);
        table
            .holders
            .get(blob.digest())
            .and_then(|h| h.iter().find(usable).cloned())
            .or_else(|| blob.mount_from.iter().find(usable).cloned())
    }

    /// Places the blob without its bytes wherever possible, and returns the repositories that
    /// need the bytes. While no repository is known to hold it, the repositories not yet
    /// checked are asked (HEAD, all at once) whether they have it; once one holds it, the
    /// others get a mount each, all at once, with no HEAD first: a mount answers for a blob
    /// that is there already too, so a HEAD before it would only add a round trip.
    pub async fn place_without_bytes(&self, blob: &WantedBlob) -> Result<Vec<String>, CopyError> {
        let digest = blob.digest();
        let open: Vec<&String> = blob
            .repositories
            .iter()
            .filter(|r| !matches!(self.state(r, digest), Some(BlobState::Placed(_))))
            .collect();
        if open.is_empty() {
            return Ok(Vec::new());
        }
        if !self.has_origin(blob) {
            // every repository not checked yet is asked at once (one round trip): one that
            // holds the blob already lends it to the others, and nothing is sent again
            let unchecked: Vec<&String> = open
                .iter()
                .copied()
                .filter(|r| self.state(r, digest).is_none())
                .collect();
            let held = join_all(unchecked.iter().map(|r| self.destination.has_blob(r, digest))).await;
            for (repository, held) in unchecked.into_iter().zip(held) {
                if held? {
                    self.place(repository, digest, BlobOutcome::Present, true);
                } else {
                    self.set_absent(repository, digest, Vec::new());
                }
            }
            if !self.has_origin(blob) {
                // the first gets the bytes; the rest are mounted from it afterwards
                return Ok(open.into_iter().cloned().collect());
            }
        }
        let placed = join_all(open.iter().map(|r| self.advance(blob, r))).await;
        let mut needs = Vec::new();
        for (repository, placed) in open.into_iter().zip(placed) {
            if !placed? {
                needs.push(repository.clone());
            }
        }
        Ok(needs)
    }

    /// Whether some repository holds the blob or the source says one has it.
    fn has_origin(&self, blob: &WantedBlob) -> bool {
        !blob.mount_from.is_empty() || self.is_held(blob)
    }

    /// One repository's steps without bytes; whether the blob is placed there now. Mounts
    /// come first; a repository not checked yet is asked (HEAD) only when no mount worked.
    async fn advance(&self, blob: &WantedBlob, repository: &str) -> Result<bool, CopyError> {
        let digest = blob.digest();
        let (mut refused_from, checked) = match self.state(repository, digest) {
            Some(BlobState::Placed(_)) => return Ok(true),
            Some(BlobState::Absent { refused_from }) => (refused_from, true),
            None => (Vec::new(), false),
        };
        while let Some(from) = self.mount_origin(blob, repository, &refused_from) {
            match self.destination.mount_blob(repository, digest, &from).await? {
                Mount::Mounted => {
                    self.place(repository, digest, BlobOutcome::Mounted { from }, true);
                    return Ok(true);
                }
                Mount::Refused(session) => {
                    tracing::debug!("{}: mount of {digest} from {from} refused", self.destination.name());
                    // not held open: the bytes may come much later (another round)
                    if let Some(session) = session {
                        self.destination.abort_blob(repository, session).await;
                    }
                    refused_from.push(from);
                }
            }
        }
        if !checked && self.destination.has_blob(repository, digest).await? {
            self.place(repository, digest, BlobOutcome::Present, true);
            return Ok(true);
        }
        self.set_absent(repository, digest, refused_from);
        Ok(false)
    }

    /// Streams `body` into every repository of `targets` at once, hashing it as it passes;
    /// each upload is committed only when digest and size match the descriptor.
    pub async fn send(&self, blob: &WantedBlob, targets: Vec<String>, body: BlobBody) -> Result<(), CopyError> {
        let digest = blob.digest().clone();
        let size = blob.descriptor.size;
        let uploads = self.open_uploads(&digest, size, targets).await?;
        let verifier = Arc::new(Mutex::new(Verifier::new(&digest)));
        let body = self.verified(body, &verifier, &digest, size, uploads.len() as u64);
        if size < WHOLE_BELOW {
            return self.send_whole(uploads, body, &verifier, digest, size).await;
        }
        let written: Vec<Written<D::Upload>> = if uploads.len() == 1 {
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
        let problem = mismatch(seen, got, &digest, size);
        let results = join_all(written.into_iter().map(|(repository, r)| {
            let (problem, digest) = (problem.clone(), digest.clone());
            async move { self.finish_upload(&repository, r, problem, digest, size).await }
        }))
        .await;
        results.into_iter().find(Result::is_err).unwrap_or(Ok(()))
    }

    /// A small blob: read into memory and checked first, then sent whole into each upload
    /// with the request that commits it (one PUT instead of PATCH + PUT).
    async fn send_whole(
        &self,
        uploads: Vec<(String, D::Upload)>,
        mut body: BlobBody,
        verifier: &Arc<Mutex<Verifier>>,
        digest: Digest,
        size: u64,
    ) -> Result<(), CopyError> {
        let mut bytes = bytes::BytesMut::with_capacity(size as usize);
        let mut read = Ok(());
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(e) => {
                    read = Err(e);
                    break;
                }
            }
        }
        let problem = {
            let v = verifier.lock().expect("verifier lock");
            mismatch(v.seen(), v.digest_so_far(), &digest, size)
        };
        let failed = match (read, problem) {
            (_, Some(problem @ BlobProblem::TooLong { .. })) | (Ok(()), Some(problem)) => {
                Some(CopyError::BlobMismatch {
                    digest: digest.clone(),
                    problem,
                })
            }
            // as a streamed upload whose body broke off reports it: worth another try
            (Err(e), _) => Some(CopyError::Registry(RegistryError::Transport {
                registry: self.destination.name().to_string(),
                operation: format!("upload of {digest}"),
                detail: e.to_string(),
                retryable: true,
            })),
            (Ok(()), None) => None,
        };
        if let Some(e) = failed {
            join_all(
                uploads
                    .into_iter()
                    .map(|(repository, upload)| async move { self.destination.abort_blob(&repository, upload).await }),
            )
            .await;
            return Err(e);
        }
        let bytes = bytes.freeze();
        let results = join_all(uploads.into_iter().map(|(repository, upload)| {
            let (bytes, digest) = (bytes.clone(), digest.clone());
            async move {
                let put = self.destination.put_blob(&repository, upload, bytes, &digest).await;
                self.committed(&repository, put, digest, size).await
            }
        }))
        .await;
        results.into_iter().find(Result::is_err).unwrap_or(Ok(()))
    }

    /// Commits an upload whose bytes matched, or drops it and says why not.
    async fn finish_upload(
        &self,
        repository: &str,
        written: Result<D::Upload, CopyError>,
        problem: Option<BlobProblem>,
        digest: Digest,
        size: u64,
    ) -> Result<(), CopyError> {
        let upload = match (written, problem) {
            (Ok(upload), None) => upload,
            (Ok(upload), Some(problem)) => {
                self.destination.abort_blob(repository, upload).await;
                return Err(CopyError::BlobMismatch { digest, problem });
            }
            // too many bytes end the write with an error; that is the source's fault
            (Err(_), Some(problem @ BlobProblem::TooLong { .. })) => {
                return Err(CopyError::BlobMismatch { digest, problem })
            }
            (Err(e), _) => return Err(e),
        };
        let commit = self.destination.commit_blob(repository, upload, &digest).await;
        self.committed(repository, commit, digest, size).await
    }

    /// Records a committed upload; a commit that failed may have stored the blob all the same.
    async fn committed(
        &self,
        repository: &str,
        commit: Result<(), CopyError>,
        digest: Digest,
        size: u64,
    ) -> Result<(), CopyError> {
        if let Err(e) = commit {
            // the answer may be what was lost: a blob that is there is not sent again
            if !matches!(self.destination.has_blob(repository, &digest).await, Ok(true)) {
                return Err(e);
            }
            tracing::debug!(
                "{}: commit of {digest} answered {e}, but the blob is there",
                self.destination.name()
            );
        }
        self.place(repository, &digest, BlobOutcome::Uploaded { bytes: size }, true);
        Ok(())
    }

    async fn open_uploads(
        &self,
        digest: &Digest,
        size: u64,
        targets: Vec<String>,
    ) -> Result<Vec<(String, D::Upload)>, CopyError> {
        let mut uploads: Vec<(String, D::Upload)> = Vec::new();
        for repository in targets {
            match self.destination.start_upload(&repository).await {
                Ok(session) => uploads.push((repository, session)),
                Err(e) => {
                    for (repository, session) in uploads {
                        self.destination.abort_blob(&repository, session).await;
                    }
                    return Err(e);
                }
            }
        }
        for (repository, _) in &uploads {
            (self.reporter)(&Event::BlobStarted {
                digest: digest.to_string(),
                repository: repository.clone(),
                size,
            });
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
    ) -> Vec<Written<D::Upload>> {
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
                // nothing more to read when every upload has given up
                if failed || senders.iter().all(|tx| tx.is_closed()) {
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

    /// What the destination received in all.
    pub fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for state in self.table().states.values() {
            match state {
                BlobState::Placed(BlobOutcome::Uploaded { bytes }) => {
                    totals.uploaded += 1;
                    totals.bytes_uploaded += bytes;
                }
                BlobState::Placed(BlobOutcome::Mounted { .. }) => totals.mounted += 1,
                _ => {}
            }
        }
        totals
    }
}
