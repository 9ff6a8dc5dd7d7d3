//! The library's error type, and which exit code each kind means.

use std::path::PathBuf;
use std::sync::Arc;

use crate::bundle::BundleError;
use crate::engine::{CopyError, CopyReport, ImageError};
use crate::mapping::MappingError;
use crate::reference::ReferenceError;
use crate::registry::RegistryError;

/// Everything a relocation can fail with. Input errors are found before anything is copied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bundle is unreadable or invalid.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The prefix is invalid, or an image cannot be mapped under it.
    #[error(transparent)]
    Mapping(#[from] MappingError),
    /// The `--mapping-rules` file is invalid, or places an image where it cannot go.
    #[error("{0}")]
    MappingRules(String),
    /// The `sync` configuration is unreadable or invalid, or `--task` selects nothing.
    #[error("{0}")]
    SyncConfig(String),
    /// A reference is invalid.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// The registry settings cannot work (an unreadable CA file).
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The mapping file could not be written once the images were copied.
    #[error("cannot write the relocation mapping {path}: {problem}")]
    MappingFile {
        /// The mapping file.
        path: PathBuf,
        /// Why not.
        problem: MappingFileProblem,
    },
    /// Some images could not be copied; no mapping was written.
    #[error("{}", failure_summary(.0))]
    Relocation(CopyReport),
    /// A signal stopped the run; open uploads were cancelled and no mapping was written.
    #[error("interrupted by signal {signal}; open uploads were cancelled and no relocation mapping was written")]
    Interrupted {
        /// The signal number (2 for SIGINT, 15 for SIGTERM).
        signal: i32,
    },
    /// Every image was copied, but writing the mapping failed.
    #[error("every image was copied, but the relocation mapping {path} could not be written: {source}")]
    WriteMapping {
        /// The mapping file.
        path: PathBuf,
        /// The write error.
        source: std::io::Error,
    },
    /// A file the command writes cannot be written where it was asked for.
    #[error("cannot write {}: {problem}", path.display())]
    OutputFile {
        /// The file.
        path: PathBuf,
        /// Why not.
        problem: MappingFileProblem,
    },
    /// `export` was given a thick bundle.
    #[error("{} is a thick bundle already; export reads a thin bundle.json and pulls its images", path.display())]
    AlreadyThick {
        /// The bundle.
        path: PathBuf,
    },
    /// Images could not be read for export, or do not match their pins; nothing was written.
    #[error("{}", export_failures(.0))]
    ExportImages(Vec<(String, ImageError)>),
    /// The export failed while writing the archive; no output file was left.
    #[error("exporting to {} failed, nothing was written: {error}", path.display())]
    Export {
        /// The archive that was being written.
        path: PathBuf,
        /// Why.
        error: Arc<CopyError>,
    },
    /// Options that do not fit the bundle, found once it was read (such as source credentials
    /// for a bundle whose images come from several registries); nothing was contacted.
    #[error("{0}")]
    Usage(String),
    /// Every image was copied (and the mapping written, if asked for), but writing the output
    /// bundle failed.
    #[error("every image was copied, but the output bundle {path} could not be written: {source}")]
    WriteOutputBundle {
        /// The output bundle file.
        path: PathBuf,
        /// The write error.
        source: std::io::Error,
    },
}

/// Why the mapping file (or the output bundle) cannot be written where it was asked for.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MappingFileProblem {
    /// The path is a directory.
    #[error("it is a directory")]
    IsDirectory,
    /// The path is a FIFO, a device (such as `/dev/null`) or a socket, which renaming a
    /// file over would replace.
    #[error("it is not a regular file (a FIFO, device or socket); give the path of a file")]
    NotARegularFile,
    /// The path is the bundle.
    #[error("that is the bundle itself, which is never changed")]
    IsTheBundle,
    /// The file exists and was not to be replaced.
    #[error("it exists; give --force to replace it")]
    Exists,
    /// The output bundle and the relocation mapping were given the same path.
    #[error("that is also the relocation mapping file")]
    IsTheMappingFile,
    /// Its directory cannot take a new file.
    #[error("{} is not a writable directory ({source})", dir.display())]
    DirectoryNotWritable {
        /// The directory.
        dir: PathBuf,
        /// What creating a file there said.
        source: std::io::Error,
    },
}

impl Error {
    /// 2 for usage or input errors (nothing was pushed: images claiming one tag with
    /// different content count as input), 1 when relocation failed, 128 + the signal when a
    /// signal stopped it (130 for SIGINT, 143 for SIGTERM).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Interrupted { signal } => (128 + signal).clamp(0, 255) as u8,
            Error::Relocation(report) if report.failed_on_conflicts() => 2,
            Error::Relocation(_) | Error::WriteMapping { .. } | Error::WriteOutputBundle { .. } => 1,
            Error::ExportImages(_) | Error::Export { .. } => 1,
            _ => 2,
        }
    }
}

fn failure_summary(report: &CopyReport) -> String {
    let failed: Vec<String> = report.failures().map(|f| f.to_string()).collect();
    let mut s = format!(
        "{} of {} images could not be relocated; no relocation mapping was written",
        failed.len(),
        report.images.len()
    );
    for f in failed {
        s.push_str("\n  ");
        s.push_str(&f);
    }
    s
}

fn export_failures(failures: &[(String, ImageError)]) -> String {
    let mut s = format!(
        "{} image(s) of the bundle could not be exported; nothing was written",
        failures.len()
    );
    for (image, e) in failures {
        s.push_str(&format!("\n  {image}: {e}"));
    }
    s
}
