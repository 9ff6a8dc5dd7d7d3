//! Checks on a file a command will write (the relocation mapping, an export's archive),
//! made before any work starts so a run never fails at its very end for a wrong path.

use std::path::Path;

use crate::error::{Error, MappingFileProblem};

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
pub(crate) fn check_output_file(file: &OutputFile<'_>) -> Result<(), Error> {
    let path = file.path;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let fail = |problem| Error::OutputFile {
        path: path.to_path_buf(),
        problem,
    };
    if let Ok(existing) = std::fs::metadata(path) {
        if existing.is_dir() {
            return Err(fail(MappingFileProblem::IsDirectory));
        }
        if !existing.is_file() {
            return Err(fail(MappingFileProblem::NotARegularFile));
        }
        if let (Ok(a), Ok(b)) = (path.canonicalize(), file.bundle.canonicalize()) {
            if a == b {
                return Err(fail(MappingFileProblem::IsTheBundle));
            }
        }
        if !file.replace {
            return Err(fail(MappingFileProblem::Exists));
        }
    }
    tempfile::Builder::new()
        .prefix(".cnab-relocate-check-")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|source| {
            fail(MappingFileProblem::DirectoryNotWritable {
                dir: dir.to_path_buf(),
                source,
            })
        })
}
