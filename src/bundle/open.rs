//! Opening BUNDLE: a `bundle.json`, or a gzipped tar recognised by its magic bytes, never by
//! its name.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::BundleError;
use super::model::Bundle;
use crate::archive::{read_up_to, ThickArchive};
use crate::limits::MAX_BUNDLE_JSON;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// How the bundle is packaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleFormat {
    /// A `bundle.json`: images come from their registries.
    Thin,
    /// A gzipped tar with `bundle.json` and an OCI layout: images come only from the archive.
    Thick,
}

/// BUNDLE `-`: the bundle is read from standard input.
pub const STDIN: &str = "-";

/// Whether BUNDLE names standard input.
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == STDIN
}

/// A parsed bundle and where it came from.
#[derive(Debug, Clone)]
pub struct OpenedBundle {
    /// The path BUNDLE was opened from.
    pub path: PathBuf,
    /// Thin or thick.
    pub format: BundleFormat,
    /// The parsed `bundle.json`.
    pub bundle: Bundle,
    /// `bundle.json` byte for byte (what an export copies).
    pub json: Vec<u8>,
    /// For a thick bundle: its layout, learnt in one streaming pass.
    pub thick: Option<Arc<ThickArchive>>,
}

/// Opens BUNDLE read-only, sniffing gzip magic to tell thick from thin. A thick bundle is
/// read whole, every entry listed and checked.
pub fn open_bundle(path: &Path) -> Result<OpenedBundle, BundleError> {
    open(path, false)
}

/// [`open_bundle`], except that a thick bundle written metadata first is read only up to its
/// first layer, to be read on from there when its blobs are copied (one pass in all; its
/// layers are found missing only then).
pub fn open_bundle_once(path: &Path) -> Result<OpenedBundle, BundleError> {
    open(path, true)
}

fn open(path: &Path, once: bool) -> Result<OpenedBundle, BundleError> {
    let read_err = |source| BundleError::Read {
        path: path.to_path_buf(),
        source,
    };
    let stdin = is_stdin(path);
    let mut file: Box<dyn Read> = match stdin {
        true => Box::new(io::stdin().lock()),
        false => Box::new(File::open(path).map_err(read_err)?),
    };
    let mut magic = [0u8; 2];
    let n = read_up_to(&mut file, &mut magic).map_err(read_err)?;
    let mut thick = None;
    let (format, json) = if n == 2 && magic == GZIP_MAGIC {
        let archive = match stdin {
            // an archive is read in passes over a file: one from a pipe is spooled first
            true => {
                let spool = spool_archive(&magic, &mut file).map_err(read_err)?;
                drop(file);
                ThickArchive::scan_as(&spool, path, once)?.spooled(spool)
            }
            false => {
                drop(file);
                ThickArchive::scan_as(path, path, once)?
            }
        };
        let json = archive.bundle_json.clone();
        thick = Some(Arc::new(archive));
        (BundleFormat::Thick, json)
    } else {
        let size = match stdin {
            true => 0,
            false => std::fs::metadata(path).map_err(read_err)?.len(),
        };
        if size > MAX_BUNDLE_JSON {
            return Err(BundleError::TooLarge {
                path: path.to_path_buf(),
                size: Some(size),
            });
        }
        let mut json = magic[..n].to_vec();
        // a pipe or device reports no size: the limit holds while reading too
        (&mut file)
            .take(MAX_BUNDLE_JSON + 1 - n as u64)
            .read_to_end(&mut json)
            .map_err(read_err)?;
        if json.len() as u64 > MAX_BUNDLE_JSON {
            return Err(BundleError::TooLarge {
                path: path.to_path_buf(),
                size: None,
            });
        }
        (BundleFormat::Thin, json)
    };
    let bundle = parse_bundle_json(path, &json)?;
    Ok(OpenedBundle {
        path: path.to_path_buf(),
        format,
        bundle,
        json,
        thick,
    })
}

/// Spooled copies of standard input not yet removed: a run stopped by a signal, whose
/// destructors may not run, removes them with [`remove_spooled_input`].
static SPOOLED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Removes every copy of standard input this process spooled (at exit, and when a signal
/// stops the run).
pub fn remove_spooled_input() {
    let mut spooled = SPOOLED.lock().unwrap_or_else(|e| e.into_inner());
    for path in spooled.drain(..) {
        let _ = std::fs::remove_file(path);
    }
}

/// Copies a thick bundle arriving on a pipe into a temporary file (in `TMPDIR`), removed when
/// dropped.
fn spool_archive(magic: &[u8], rest: &mut dyn Read) -> io::Result<tempfile::TempPath> {
    // tempfile's own message names the file, which no message should
    let mut file = tempfile::Builder::new()
        .prefix("cnab-relocate-stdin-")
        .tempfile()
        .map_err(|e| io::Error::new(e.kind(), format!("no temporary file for it in TMPDIR ({})", e.kind())))?;
    SPOOLED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(file.path().to_path_buf());
    file.write_all(magic)?;
    io::copy(rest, &mut file)?;
    file.flush()?;
    Ok(file.into_temp_path())
}

/// `json` without a leading UTF-8 byte order mark (editors on Windows write one; JSON
/// parsers refuse it).
pub fn without_bom(json: &[u8]) -> &[u8] {
    json.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(json)
}

/// Parses `bundle.json` bytes (a leading UTF-8 byte order mark is skipped); errors carry line
/// and column.
pub fn parse_bundle_json(path: &Path, json: &[u8]) -> Result<Bundle, BundleError> {
    let json = without_bom(json);
    let first = json.iter().copied().find(|b| !b.is_ascii_whitespace());
    if let Some(first) = first.filter(|b| *b != b'{' && !b.is_ascii_graphic()) {
        return Err(BundleError::NotJson {
            path: path.to_path_buf(),
            first,
        });
    }
    serde_json::from_slice(json).map_err(|source| BundleError::Json {
        path: path.to_path_buf(),
        source,
    })
}
