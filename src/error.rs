//! The library's error type and its mapping to exit codes (SPEC §2).

use std::path::PathBuf;

use crate::bundle::BundleError;
use crate::reference::ReferenceError;
use crate::relocate::{CopyReport, MappingError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Mapping(#[from] MappingError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// Settings that cannot work (an unreadable CA file, an unwritable mapping directory).
    #[error("{0}")]
    Config(String),
    /// Some images could not be copied; no mapping was written.
    #[error("{}", failure_summary(.0))]
    Relocation(CopyReport),
    #[error("every image was copied, but the relocation mapping {path} could not be written: {source}")]
    WriteMapping { path: PathBuf, source: std::io::Error },
}

impl Error {
    /// 2 for usage or input errors (nothing was attempted), 1 when relocation failed.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Bundle(_) | Error::Mapping(_) | Error::Reference(_) | Error::Config(_) => 2,
            Error::Relocation(_) | Error::WriteMapping { .. } => 1,
        }
    }
}

fn failure_summary(report: &CopyReport) -> String {
    let failed: Vec<&str> = report
        .images
        .iter()
        .filter_map(|i| i.outcome.as_ref().err().map(String::as_str))
        .collect();
    let mut s = format!(
        "{} of {} images could not be relocated; no relocation mapping was written",
        failed.len(),
        report.images.len()
    );
    for f in failed {
        s.push_str("\n  ");
        s.push_str(f);
    }
    s
}
