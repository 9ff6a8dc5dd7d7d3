//! The library's error type, and which exit code each kind means.

use std::path::PathBuf;

use crate::bundle::BundleError;
use crate::engine::CopyReport;
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
}

/// Why the mapping file cannot be written where it was asked for.
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
            Error::Relocation(_) | Error::WriteMapping { .. } => 1,
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
