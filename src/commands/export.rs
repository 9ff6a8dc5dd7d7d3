//! `cnab-relocate export BUNDLE.json -o OUT.tgz`: pull every image of a thin bundle into a
//! thick bundle, the first half of the air-gap workflow.
//!
//! The archive is written metadata first — `bundle.json`, `oci-layout`, `index.json`, every
//! manifest and config, then the layers — so an importer learns everything it needs before
//! the first layer. Every image is resolved and checked against its pins before a byte is
//! written; every blob is checked against its digest as it streams in. The archive grows in a
//! temporary file beside OUT and becomes OUT only when complete.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use tokio::sync::mpsc;

use super::output_file::{check_output_file, OutputFile};
use super::relocate::RelocateOptions;
use crate::archive::{ArchiveError, ThickWriter, LAYOUT_DIR, REF_NAME_ANNOTATION};
use crate::bundle::{self, BundleFormat, BundleImageRef, OpenedBundle};
use crate::engine::{
    push_batches, read_batch, referrer_trees, BlobBody, BlobProblem, BlobRead, CopyError, ImageError, ImageJob,
    ReferrerTree, RegistrySource, Source,
};
use crate::error::Error;
use crate::limits::MANIFEST_BATCH_BUDGET;
use crate::oci::{ImageTree, ReferrerKind, Verifier};
use crate::reference::{Algorithm, Digest};
use crate::registry::Registries;

/// An export to set up: the thin bundle and the archive to write.
///
/// ```no_run
/// # async fn demo() -> Result<(), cnab_relocate::Error> {
/// use cnab_relocate::Export;
/// let report = Export::new("forge.json", "forge.tgz").plan()?.run().await?;
/// println!("{} images, {} blobs", report.images.len(), report.blobs);
/// # Ok(()) }
/// ```
pub struct Export {
    bundle: PathBuf,
    output: PathBuf,
    replace: bool,
    options: RelocateOptions,
}

impl Export {
    /// An export of the thin bundle `bundle` into the thick bundle `output`.
    pub fn new(bundle: impl Into<PathBuf>, output: impl Into<PathBuf>) -> Self {
        Export {
            bundle: bundle.into(),
            output: output.into(),
            replace: false,
            options: RelocateOptions::default(),
        }
    }

    /// Replace `output` if it exists (otherwise an existing file is an error).
    pub fn replace_existing(mut self, replace: bool) -> Self {
        self.replace = replace;
        self
    }

    /// Registry settings and concurrency, as for relocation.
    pub fn options(mut self, options: RelocateOptions) -> Self {
        self.options = options;
        self
    }

    /// Opens the bundle, checks its images' references and the output path. Contacts no
    /// registry and writes nothing.
    pub fn plan(self) -> Result<PlannedExport, Error> {
        let opened = bundle::open_bundle(&self.bundle)?;
        if opened.format == BundleFormat::Thick {
            return Err(Error::AlreadyThick {
                path: self.bundle.clone(),
            });
        }
        let images = bundle::select_images(&opened.bundle)?;
        check_output_file(&OutputFile {
            path: &self.output,
            bundle: &opened.path,
            replace: self.replace,
        })
        .map_err(|problem| Error::OutputFile {
            path: self.output.clone(),
            problem,
        })?;
        Ok(PlannedExport {
            opened,
            images,
            settings: self,
        })
    }
}

/// An export whose bundle and output were checked, ready to run.
pub struct PlannedExport {
    opened: OpenedBundle,
    images: Vec<BundleImageRef>,
    settings: Export,
}

/// One image written into the archive.
#[derive(Debug, Clone)]
pub struct ExportedImage {
    /// The bundle's image string.
    pub image: String,
    /// The name `index.json` gives it (`org.opencontainers.image.ref.name`).
    pub ref_name: String,
    /// Its manifest (or index) digest.
    pub digest: Digest,
}

/// A referrer (signature, attestation, SBOM) written with an image.
#[derive(Debug, Clone)]
pub struct ExportedReferrer {
    /// The bundle's image string it travels with.
    pub image: String,
    /// What it is.
    pub kind: ReferrerKind,
    /// Its digest.
    pub digest: Digest,
    /// The manifest it refers to.
    pub subject: Digest,
}

/// What an export wrote.
#[derive(Debug, Clone, Default)]
pub struct ExportReport {
    /// Every image, in bundle order.
    pub images: Vec<ExportedImage>,
    /// What refers to them, written with them.
    pub referrers: Vec<ExportedReferrer>,
    /// Layout blobs written (manifests, configs, layers), each once.
    pub blobs: usize,
    /// Bytes of those blobs.
    pub bytes: u64,
}

impl PlannedExport {
    /// The bundle's images, in bundle order.
    pub fn images(&self) -> &[BundleImageRef] {
        &self.images
    }

    /// Why duffle would not read the archive: it imports a thick bundle only when the file
    /// name ends in `.tgz` and `schemaVersion` is a semantic version (both checked against
    /// duffle cf7397b).
    pub fn duffle_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let output = &self.settings.output;
        if output.extension().and_then(|e| e.to_str()) != Some("tgz") {
            warnings.push(format!(
                "duffle reads a thick bundle only from a file whose name ends in .tgz; {} would be read as a bundle.json",
                output.display()
            ));
        }
        match serde_json::from_slice::<serde_json::Value>(&self.opened.json)
            .ok()
            .and_then(|v| v.get("schemaVersion").and_then(|s| s.as_str().map(str::to_string)))
        {
            Some(v) if is_lenient_semver(&v) => {}
            found => warnings.push(format!(
                "duffle refuses a bundle whose schemaVersion is not a semantic version (found {}); e.g. \"v1.0.0\"",
                found.map_or("none".to_string(), |v| format!("{v:?}"))
            )),
        }
        warnings
    }

    /// [`run_until`](Self::run_until) that is never interrupted.
    pub async fn run(&self) -> Result<ExportReport, Error> {
        self.run_until(std::future::pending()).await
    }

    /// Pulls every image into the archive. Stopped when `interrupt` yields a signal number,
    /// or on any failure, it leaves no output and no temporary file.
    pub async fn run_until(&self, interrupt: impl Future<Output = i32>) -> Result<ExportReport, Error> {
        let settings = &self.settings;
        let registries = Arc::new(Registries::new(settings.options.registry.clone())?);
        let writer = ThickWriter::create(&settings.output).map_err(|e| self.failed(e.into()))?;
        let (ops, received) = mpsc::channel(1);
        let replace = settings.replace;
        let writing = tokio::task::spawn_blocking(move || write_archive(writer, received, replace));
        let outcome = {
            let work = std::pin::pin!(self.export(&registries, ops));
            let interrupt = std::pin::pin!(interrupt);
            match futures_util::future::select(work, interrupt).await {
                futures_util::future::Either::Left((outcome, _)) => outcome,
                futures_util::future::Either::Right((signal, _)) => Err(Error::Interrupted { signal }),
            }
        };
        // the work, and with it the sender, is gone: the writer finishes or abandons the file
        let written = writing.await.unwrap_or_else(|e| {
            Err(ArchiveError::Write {
                path: settings.output.clone(),
                source: io::Error::other(e),
            })
        });
        match (outcome, written) {
            (Ok(report), Ok(true)) => Ok(report),
            // only the writer knows why it stopped taking entries
            (Ok(_), Ok(false)) => Err(self.failed(writer_gone())),
            (Ok(_), Err(e)) => Err(self.failed(e.into())),
            (Err(e), Err(w)) if is_writer_gone(&e) => Err(self.failed(w.into())),
            (Err(e), _) => Err(e),
        }
    }

    fn failed(&self, error: CopyError) -> Error {
        self.failed_shared(Arc::new(error))
    }

    fn failed_shared(&self, error: Arc<CopyError>) -> Error {
        Error::Export {
            path: self.settings.output.clone(),
            error,
        }
    }

    /// The archive it writes.
    pub fn output(&self) -> &Path {
        &self.settings.output
    }

    async fn export(&self, registries: &Arc<Registries>, ops: mpsc::Sender<WriteOp>) -> Result<ExportReport, Error> {
        let concurrency = self.settings.options.copy.concurrency.max(1);
        let source = RegistrySource::new(registries.clone(), concurrency);
        let jobs = self.jobs();
        let resolved: Vec<Result<ImageTree, CopyError>> = stream::iter(&jobs)
            .map(|job| resolve(&source, job))
            .buffered(concurrency)
            .collect()
            .await;
        let mut trees = Vec::new();
        let mut failures = Vec::new();
        for (job, r) in jobs.iter().zip(resolved) {
            match r {
                Ok(tree) => trees.push((job, tree)),
                Err(e) => failures.push((job.label.clone(), ImageError::Source(Arc::new(e)))),
            }
        }
        if !failures.is_empty() {
            return Err(Error::ExportImages(failures));
        }
        let referrers = match self.settings.options.copy.referrers {
            true => {
                let roots: Vec<(&ImageJob, &ImageTree)> = trees.iter().map(|(j, t)| (*j, t)).collect();
                referrer_trees(&source, &roots, concurrency)
                    .await
                    .map_err(|failure| Error::ExportImages(vec![failure]))?
            }
            false => Vec::new(),
        };
        for r in &referrers {
            if let Some(d) = unsupported_digest(&r.tree) {
                return Err(Error::ExportImages(vec![(
                    r.job.label.clone(),
                    ImageError::Source(Arc::new(CopyError::UnsupportedDigest(d.clone()))),
                )]));
            }
        }

        let send = |op: WriteOp| {
            let ops = ops.clone();
            async move { ops.send(op).await.map_err(|_| self.failed(writer_gone())) }
        };
        let (index, images) = self.index_json(&trees, &referrers);
        trees.extend(referrers.iter().map(|r| (&r.job, r.tree.clone())));
        send(WriteOp::File("bundle.json".into(), self.opened.json.clone())).await?;
        send(WriteOp::File(
            format!("{LAYOUT_DIR}oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ))
        .await?;
        send(WriteOp::File(format!("{LAYOUT_DIR}index.json"), index)).await?;

        let mut written = HashSet::new();
        let mut bytes = 0u64;
        let only_trees: Vec<Option<&ImageTree>> = trees.iter().map(|(_, t)| Some(t)).collect();
        for batch in push_batches(&only_trees, MANIFEST_BATCH_BUDGET as u64) {
            let manifests = read_batch(&source, trees[batch].iter().map(|(job, t)| (t, &job.source)))
                .await
                .map_err(|e| self.failed_shared(e))?;
            for m in manifests.into_values() {
                if written.insert(m.digest.clone()) {
                    bytes += m.bytes.len() as u64;
                    send(WriteOp::Bytes(m.digest, m.bytes)).await?;
                }
            }
        }

        // configs before layers; each blob once, read one at a time (the archive is written
        // in order, so more reads at once would only leave connections idle)
        let mut configs = Vec::new();
        let mut layers = Vec::new();
        for (job, tree) in &trees {
            for b in &tree.blobs {
                if written.insert(b.digest.clone()) {
                    let read = BlobRead {
                        descriptor: b.clone(),
                        origin: job.source.clone(),
                    };
                    match tree.configs.contains(&b.digest) {
                        true => configs.push(read),
                        false => layers.push(read),
                    }
                }
            }
        }
        bytes += configs.iter().chain(&layers).map(|b| b.descriptor.size).sum::<u64>();
        let sequential = RegistrySource::new(registries.clone(), 1);
        for blobs in [configs, layers] {
            let failures = sequential
                .stream_blobs(blobs, |read, body| stream_into_archive(ops.clone(), read, body))
                .await;
            if let Some((_, e)) = failures.into_iter().next() {
                return Err(self.failed(e));
            }
        }
        send(WriteOp::Finish).await?;
        Ok(ExportReport {
            images,
            referrers: referrers
                .into_iter()
                .map(|r| ExportedReferrer {
                    image: jobs[r.root].label.clone(),
                    kind: r.kind,
                    digest: r.tree.top.digest,
                    subject: r.subject,
                })
                .collect(),
            blobs: written.len(),
            bytes,
        })
    }

    /// One job per distinct image string.
    fn jobs(&self) -> Vec<ImageJob> {
        let mut seen = HashSet::new();
        self.images
            .iter()
            .filter(|i| seen.insert(i.raw.clone()))
            .map(|i| ImageJob {
                label: i.raw.clone(),
                source: i.reference.clone(),
                pinned: i.expected_digest.clone(),
                destination: i.reference.clone(),
            })
            .collect()
    }

    /// `index.json`: one descriptor per distinct (name, digest), named by the full normalised
    /// reference as duffle writes it; and the images as reported. Referrers are listed too,
    /// so that tools reading the layout keep them: cosign's tags by full reference, referrers
    /// that name a subject untagged (as oras writes an OCI layout).
    fn index_json(
        &self,
        trees: &[(&ImageJob, ImageTree)],
        referrers: &[ReferrerTree],
    ) -> (Vec<u8>, Vec<ExportedImage>) {
        let by_label: HashMap<&str, &ImageTree> = trees.iter().map(|(j, t)| (j.label.as_str(), t)).collect();
        let mut descriptors = Vec::new();
        let mut seen = HashSet::new();
        let mut images = Vec::new();
        for image in &self.images {
            let tree = by_label[image.raw.as_str()];
            let ref_name = image.reference.to_string();
            images.push(ExportedImage {
                image: image.raw.clone(),
                ref_name: ref_name.clone(),
                digest: tree.top.digest.clone(),
            });
            if seen.insert((ref_name.clone(), tree.top.digest.clone())) {
                descriptors.push(serde_json::json!({
                    "mediaType": tree.top.media_type,
                    "digest": tree.top.digest.to_string(),
                    "size": tree.top.size,
                    "annotations": {REF_NAME_ANNOTATION: ref_name},
                }));
            }
        }
        for r in referrers {
            let top = &r.tree.top;
            let mut descriptor = serde_json::json!({
                "mediaType": top.media_type,
                "digest": top.digest.to_string(),
                "size": top.size,
            });
            let ref_name = r
                .job
                .source
                .tag()
                .map(|_| r.job.source.with_tag_and_digest(r.job.source.tag(), None).to_string());
            if let Some(name) = &ref_name {
                descriptor["annotations"] = serde_json::json!({ REF_NAME_ANNOTATION: name });
            }
            if seen.insert((ref_name.unwrap_or_default(), top.digest.clone())) {
                descriptors.push(descriptor);
            }
        }
        let index = serde_json::json!({"schemaVersion": 2, "manifests": descriptors});
        (serde_json::to_vec(&index).expect("JSON values serialise"), images)
    }
}

/// A digest other than sha256 in the tree (refused: registries store such content
/// inconsistently).
fn unsupported_digest(tree: &ImageTree) -> Option<&Digest> {
    let mut digests = tree
        .manifests()
        .map(|m| &m.digest)
        .chain(tree.blobs.iter().map(|b| &b.digest));
    digests.find(|d| d.algorithm() != Algorithm::Sha256)
}

/// The image's tree, checked: sha256 only, and the digest the bundle pins.
async fn resolve(source: &RegistrySource, job: &ImageJob) -> Result<ImageTree, CopyError> {
    let tree = source.resolve(job).await?;
    if let Some(d) = unsupported_digest(&tree) {
        return Err(CopyError::UnsupportedDigest(d.clone()));
    }
    match &job.pinned {
        Some(pinned) if *pinned != tree.top.digest => Err(CopyError::PinMismatch {
            expected: pinned.clone(),
            actual: tree.top.digest.clone(),
        }),
        _ => Ok(tree),
    }
}

fn writer_gone() -> CopyError {
    CopyError::WriterStopped
}

/// Whether the work failed only because the writer had stopped (its own error says why).
fn is_writer_gone(e: &Error) -> bool {
    matches!(e, Error::Export { error, .. } if matches!(**error, CopyError::WriterStopped))
}

/// What the async side asks of the thread that writes the archive.
enum WriteOp {
    /// A metadata file: name in the archive, content.
    File(String, Vec<u8>),
    /// A blob held in memory (a manifest), already verified.
    Bytes(Digest, Bytes),
    /// A streamed blob: its digest, size, and its chunks (an `Err` chunk aborts it).
    Stream(Digest, u64, mpsc::Receiver<io::Result<Bytes>>),
    /// Everything is written: finish and move the archive into place.
    Finish,
}

/// Runs on a blocking thread: writes what it is sent, in order. Returns whether the archive
/// was finished; when the sender goes away first, the temporary file is dropped with the
/// writer.
fn write_archive(
    mut writer: ThickWriter,
    mut ops: mpsc::Receiver<WriteOp>,
    replace: bool,
) -> Result<bool, ArchiveError> {
    while let Some(op) = ops.blocking_recv() {
        match op {
            WriteOp::File(name, bytes) => writer.add_file(&name, &bytes)?,
            WriteOp::Bytes(digest, bytes) => writer.add_blob(&digest, bytes.len() as u64, &mut &bytes[..])?,
            WriteOp::Stream(digest, size, chunks) => writer.add_blob(&digest, size, &mut ChunkReader::new(chunks))?,
            WriteOp::Finish => {
                writer.finish(replace)?;
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Hands a blob's bytes to the writer, checking size and digest as they pass. A mismatch is
/// sent down as an error, so the entry (and the archive) is never completed with bad bytes.
async fn stream_into_archive(ops: mpsc::Sender<WriteOp>, read: BlobRead, mut body: BlobBody) -> Result<(), CopyError> {
    let d = read.descriptor;
    let (chunks, received) = mpsc::channel(8);
    ops.send(WriteOp::Stream(d.digest.clone(), d.size, received))
        .await
        .map_err(|_| writer_gone())?;
    let mut verifier = Verifier::new(&d.digest);
    let problem = loop {
        match body.next().await {
            Some(Ok(chunk)) => {
                verifier.update(&chunk);
                if verifier.seen() > d.size {
                    break Some(BlobProblem::TooLong { size: d.size });
                }
                if !chunk.is_empty() {
                    chunks.send(Ok(chunk)).await.map_err(|_| writer_gone())?;
                }
            }
            Some(Err(e)) => {
                let _ = chunks.send(Err(io::Error::new(e.kind(), e.to_string()))).await;
                return Err(CopyError::BlobRead {
                    digest: d.digest,
                    source: e,
                });
            }
            None if verifier.seen() < d.size => {
                break Some(BlobProblem::TooShort {
                    seen: verifier.seen(),
                    size: d.size,
                })
            }
            None => match verifier.digest_so_far() {
                actual if actual == d.digest => break None,
                actual => break Some(BlobProblem::Digest(actual)),
            },
        }
    };
    match problem {
        // the empty chunk says "verified": a channel closed without it is an error
        None => chunks.send(Ok(Bytes::new())).await.map_err(|_| writer_gone()),
        Some(problem) => {
            let _ = chunks
                .send(Err(io::Error::new(io::ErrorKind::InvalidData, problem.to_string())))
                .await;
            Err(CopyError::BlobMismatch {
                digest: d.digest,
                problem,
            })
        }
    }
}

/// The chunks of a streamed blob as a `Read`, for the writer thread. The blob ends with an
/// empty chunk, sent once its digest was checked; a channel that closes before it means the
/// blob was never verified.
struct ChunkReader {
    chunks: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
    verified: bool,
}

impl ChunkReader {
    fn new(chunks: mpsc::Receiver<io::Result<Bytes>>) -> Self {
        ChunkReader {
            chunks,
            current: Bytes::new(),
            verified: false,
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            if self.verified {
                return Ok(0);
            }
            match self.chunks.blocking_recv() {
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the blob stopped before its digest was checked",
                    ))
                }
                Some(Ok(chunk)) if chunk.is_empty() => self.verified = true,
                Some(chunk) => self.current = chunk?,
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// A version duffle's semver library accepts: `v`, then 1 to 3 numbers, then optional
/// pre-release and build parts.
fn is_lenient_semver(v: &str) -> bool {
    let v = v.strip_prefix('v').unwrap_or(v);
    let (core, _build) = v.split_once('+').unwrap_or((v, ""));
    let (core, pre) = core.split_once('-').map_or((core, None), |(c, p)| (c, Some(p)));
    let numbers: Vec<&str> = core.split('.').collect();
    (1..=3).contains(&numbers.len())
        && numbers
            .iter()
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        && pre.is_none_or(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duffle_accepts_these_versions() {
        for ok in ["v1.0.0", "1.0.0", "1", "v1.2", "1.0.0-rc.1", "1.0.0+build"] {
            assert!(is_lenient_semver(ok), "{ok}");
        }
        for bad in ["", "v", "one", "1.0.0.0", "1..0", "1.0.0-"] {
            assert!(!is_lenient_semver(bad), "{bad}");
        }
    }
}
