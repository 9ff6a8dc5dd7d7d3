//! Checks on a file a command will write (the relocation mapping, an export's archive),
//! made before any work starts so a run never fails at its very end for a wrong path.

use std::path::Path;

use crate::atomic_file::{parent_dir, without_temporary_path};
use crate::error::MappingFileProblem;

/// A file a command is going to write.
pub(crate) struct OutputFile<'a> {
    pub path: &'a Path,
    /// The bundle read, which is never overwritten.
    pub bundle: &'a Path,
    /// Whether an existing file may be replaced.
    pub replace: bool,
}

/// Fails when `file` could not be written at the end: a directory or a device in its place,
/// an existing file not to be replaced, the bundle itself, or a directory that takes no new
/// files.
pub(crate) fn check_output_file(file: &OutputFile<'_>) -> Result<(), MappingFileProblem> {
    let path = file.path;
    let dir = parent_dir(path);
    if let Ok(existing) = std::fs::metadata(path) {
        if existing.is_dir() {
            return Err(MappingFileProblem::IsDirectory);
        }
        if !existing.is_file() {
            return Err(MappingFileProblem::NotARegularFile);
        }
        if let (Ok(a), Ok(b)) = (path.canonicalize(), file.bundle.canonicalize()) {
            if a == b {
                return Err(MappingFileProblem::IsTheBundle);
            }
        }
        if !file.replace {
            return Err(MappingFileProblem::Exists);
        }
    }
    tempfile::Builder::new()
        .prefix(".cnab-relocate-check-")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|source| MappingFileProblem::DirectoryNotWritable {
            dir: dir.to_path_buf(),
            source: without_temporary_path(source),
        })
}
