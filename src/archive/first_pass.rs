//! The first pass over a thick bundle: the metadata files, the listing of every entry, and the
//! small JSON blobs (manifests, configs) that fit a memory budget.
//!
//! An archive written metadata first (bundle.json and index.json before any layer, as
//! `cnab-relocate export` writes it) can be read in one pass: the scan pauses at the first
//! layer, hands over what it learnt, and later goes on from there, delivering the layers to
//! whoever resumes it.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use bytes::Bytes;

use super::error::ArchiveError;
use super::tar_stream::{read_up_to, scan_archive, ArchiveIndex};
use crate::limits::{KEPT_MANIFESTS_BUDGET, MAX_BUNDLE_JSON, MAX_MANIFEST_SIZE};
use crate::oci::{subject_of, Manifest, ReferrerEntry, ReferrerKind};
use crate::reference::Digest;

/// What the first pass over the archive keeps.
pub(super) struct FirstPass {
    pub listing: ArchiveIndex,
    /// `bundle.json`, `index.json`, `oci-layout`, Porter's mapping: entry name → bytes.
    pub metadata: HashMap<String, Vec<u8>>,
    /// Layout blobs that are JSON objects (manifests, configs) and fit the budget: entry name
    /// → bytes.
    pub json_blobs: HashMap<String, Bytes>,
    /// Layout blobs that name a `subject` (kept or not): entry name → subject and kind.
    pub referrers: HashMap<String, (Digest, ReferrerKind)>,
}

/// The subject a JSON layout blob names, and what kind of referrer it is.
fn referrer_in(bytes: &[u8]) -> Option<(Digest, ReferrerKind)> {
    if !bytes.windows(9).any(|w| w == b"\"subject\"") {
        return None; // most JSON blobs: no copy, no parse
    }
    let manifest = Manifest::new(Bytes::copy_from_slice(bytes), None, None).ok()?;
    let subject = subject_of(&manifest).ok()??;
    let kind = ReferrerEntry::of(&manifest).ok()?.kind();
    Some((subject, kind))
}

/// The files that describe a bundle and its layout, relative to the bundle's root.
const METADATA: [&str; 4] = [
    "bundle.json",
    "relocation-mapping.json",
    "artifacts/layout/index.json",
    "artifacts/layout/oci-layout",
];

/// Whether an entry may be one of the [`METADATA`] files: at the archive root, or in a
/// top-level directory (the bundle's root when it is the only one). `Some(directory)` for the
/// latter.
fn metadata_position(name: &str) -> Option<Option<&str>> {
    if METADATA.contains(&name) {
        return Some(None);
    }
    let (top, rest) = name.split_once('/')?;
    METADATA.contains(&rest).then_some(Some(top))
}

/// Called with each remaining entry (name, size, content) once a paused scan is resumed.
pub type EntrySink = Box<dyn FnMut(&str, u64, &mut dyn Read) -> io::Result<()> + Send>;

/// How a paused scan goes on.
pub(super) enum Resume {
    /// The archive was not metadata first after all: finish as a plain first pass.
    Continue,
    /// Hand every remaining entry, the one the scan stopped at included, to the sink.
    Deliver(EntrySink),
}

/// The link between a paused scan and whoever resumes it.
struct Pause {
    snapshot: mpsc::Sender<FirstPass>,
    resume: mpsc::Receiver<Resume>,
}

/// A first pass stopped at the archive's first layer, waiting to be resumed.
pub struct PausedScan {
    resume: mpsc::Sender<Resume>,
    scan: JoinHandle<Result<FirstPass, ArchiveError>>,
    path: PathBuf,
}

impl PausedScan {
    /// Goes on from the first layer to the end of the archive, handing every entry to `sink`.
    pub fn deliver(self, sink: EntrySink) -> Result<(), ArchiveError> {
        self.finish(Resume::Deliver(sink)).map(drop)
    }

    pub(super) fn finish(self, how: Resume) -> Result<FirstPass, ArchiveError> {
        let path = self.path;
        let gone = || ArchiveError::Io {
            path: path.clone(),
            source: io::Error::other("the archive reader stopped"),
        };
        self.resume.send(how).map_err(|_| gone())?;
        self.scan.join().map_err(|_| gone())?
    }
}

/// How the first pass ended: complete, or paused at the first layer of a metadata-first
/// archive.
pub(super) enum Scanned {
    Complete(FirstPass),
    Paused(FirstPass, PausedScan),
}

/// The first pass; with `may_pause`, it runs on its own thread and pauses at the first layer
/// when bundle.json and index.json came before it.
pub(super) fn first_pass(path: &Path, may_pause: bool) -> Result<Scanned, ArchiveError> {
    if !may_pause {
        return first_pass_on(path, None).map(Scanned::Complete);
    }
    let (snapshot_tx, snapshot_rx) = mpsc::channel();
    let (resume_tx, resume_rx) = mpsc::channel();
    let owned = path.to_path_buf();
    let scan = std::thread::spawn(move || {
        first_pass_on(
            &owned,
            Some(Pause {
                snapshot: snapshot_tx,
                resume: resume_rx,
            }),
        )
    });
    let gone = || ArchiveError::Io {
        path: path.to_path_buf(),
        source: io::Error::other("the archive reader stopped"),
    };
    match snapshot_rx.recv() {
        Ok(snapshot) => Ok(Scanned::Paused(
            snapshot,
            PausedScan {
                resume: resume_tx,
                scan,
                path: path.to_path_buf(),
            },
        )),
        // the scan ended without pausing
        Err(_) => scan.join().map_err(|_| gone())?.map(Scanned::Complete),
    }
}

/// Streams the archive, keeping metadata and the JSON blobs that fit in memory. Only files
/// that can be the bundle's metadata are kept, so an archive full of decoys costs no memory:
/// nested candidates are dropped as soon as a second top-level name shows the bundle cannot
/// be inside one directory.
fn first_pass_on(path: &Path, mut pause: Option<Pause>) -> Result<FirstPass, ArchiveError> {
    let mut metadata: HashMap<String, Vec<u8>> = HashMap::new();
    let mut oversized = None;
    let mut json_blobs = HashMap::new();
    let mut kept = 0usize;
    let mut only_top: Option<String> = None;
    let mut single_top = true;
    let mut seen = ArchiveIndex::default();
    let mut sink: Option<EntrySink> = None;
    let mut json_dropped = false;
    let mut referrers = HashMap::new();
    let listing = scan_archive(path, |name, size, content| {
        if let Some(sink) = sink.as_mut() {
            if metadata_position(name) == Some(None) {
                // a whole pass would read it; one that stopped early must not miss it
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{name} comes after the first layer of an archive read as metadata first"),
                ));
            }
            if name.contains("artifacts/layout/blobs/") && size <= MAX_MANIFEST_SIZE as u64 {
                let mut head = [0u8; 64];
                let n = read_up_to(content, &mut head)?;
                if head[..n].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
                    let mut buf = head[..n].to_vec();
                    content.read_to_end(&mut buf)?;
                    if referrer_in(&buf).is_some() {
                        // its subject's copy would go without it
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!(
                                "{name} refers to another manifest but comes after the first layer of an archive read as metadata first"
                            ),
                        ));
                    }
                    return sink(name, size, &mut &buf[..]);
                }
                return sink(name, size, &mut (&head[..n]).chain(content));
            }
            return sink(name, size, content);
        }
        let top = name.split('/').next().unwrap_or(name);
        match &only_top {
            None => only_top = Some(top.to_string()),
            Some(t) if single_top && t != top => {
                single_top = false;
                metadata.retain(|n, _| metadata_position(n) == Some(None));
            }
            _ => {}
        }
        seen.top_level.insert(top.to_string());
        match metadata_position(name) {
            Some(Some(_)) if !single_top => {}
            Some(_) => {
                if size > MAX_BUNDLE_JSON {
                    oversized.get_or_insert((name.to_string(), size));
                } else {
                    let mut buf = Vec::with_capacity(size as usize);
                    content.read_to_end(&mut buf)?;
                    metadata.insert(name.to_string(), buf);
                }
            }
            None if name.contains("artifacts/layout/blobs/") => {
                // layers and JSON documents are told apart by their first bytes
                let mut head = [0u8; 64];
                let n = read_up_to(content, &mut head)?;
                let json = head[..n].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
                let metadata_seen =
                    metadata.contains_key("bundle.json") && metadata.contains_key("artifacts/layout/index.json");
                // a JSON blob not kept (over the budget) would need a second pass
                if !json && metadata_seen && oversized.is_none() && !json_dropped {
                    if let Some(p) = pause.take() {
                        let snapshot = FirstPass {
                            listing: ArchiveIndex {
                                files: seen.files.clone(),
                                top_level: seen.top_level.clone(),
                            },
                            metadata: metadata.clone(),
                            json_blobs: json_blobs.clone(),
                            referrers: referrers.clone(),
                        };
                        let abandoned = || io::Error::other("the archive is no longer read");
                        p.snapshot.send(snapshot).map_err(|_| abandoned())?;
                        match p.resume.recv().map_err(|_| abandoned())? {
                            Resume::Continue => {}
                            Resume::Deliver(mut deliver) => {
                                let r = deliver(name, size, &mut (&head[..n]).chain(content));
                                sink = Some(deliver);
                                return r;
                            }
                        }
                    }
                }
                if json && size <= MAX_MANIFEST_SIZE as u64 && kept + size as usize <= KEPT_MANIFESTS_BUDGET {
                    let mut buf = Vec::with_capacity(size as usize);
                    buf.extend_from_slice(&head[..n]);
                    content.read_to_end(&mut buf)?;
                    kept += buf.len();
                    if let Some(r) = referrer_in(&buf) {
                        referrers.insert(name.to_string(), r);
                    }
                    json_blobs.insert(name.to_string(), Bytes::from(buf));
                } else if json {
                    json_dropped = true;
                    if size <= MAX_MANIFEST_SIZE as u64 {
                        // not kept, but what it refers to must be known
                        let mut buf = head[..n].to_vec();
                        content.read_to_end(&mut buf)?;
                        if let Some(r) = referrer_in(&buf) {
                            referrers.insert(name.to_string(), r);
                        }
                    }
                }
            }
            None => {}
        }
        seen.files.push((name.to_string(), size));
        Ok(())
    })?;
    if let Some((entry, size)) = oversized {
        return Err(ArchiveError::MetadataTooLarge {
            path: path.to_path_buf(),
            entry,
            size,
        });
    }
    Ok(FirstPass {
        listing,
        metadata,
        json_blobs,
        referrers,
    })
}
