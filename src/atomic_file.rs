//! Files that appear whole or not at all: written to a temporary file beside their path,
//! flushed to disk, then renamed over it. Used for the relocation mapping, the output bundle
//! and export archives.

use std::io::{self, Write};
use std::path::Path;

use tempfile::NamedTempFile;

/// The directory a file is created in (`.` for a bare name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A temporary file in `path`'s directory, named `prefix…`, to be [`persist`]ed as `path`.
pub(crate) fn create_beside(path: &Path, prefix: &str) -> io::Result<NamedTempFile> {
    tempfile::Builder::new()
        .prefix(prefix)
        .suffix(".tmp")
        .tempfile_in(parent_dir(path))
        .map_err(without_temporary_path)
}

/// `e` without the temporary file's name that `tempfile` adds to it ("… at path
/// \"/dir/.x1Yz.tmp\""): a name that no longer exists says nothing to the user, who is told
/// about the file asked for.
pub(crate) fn without_temporary_path(e: io::Error) -> io::Error {
    let message = e.to_string();
    let Some((cause, _)) = message.rsplit_once(" at path \"") else {
        return e;
    };
    let os_error = cause
        .strip_suffix(')')
        .and_then(|c| c.rsplit_once("(os error "))
        .and_then(|(_, code)| code.parse::<i32>().ok());
    match os_error {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), cause.to_string()),
    }
}

/// Moves `tmp` to `path` once it is on disk, replacing an existing file only when `replace`
/// is set. A file it replaces keeps its mode; a new one gets what the umask allows, as any
/// file a program creates (temporary files are created `0600`).
pub(crate) fn persist(tmp: NamedTempFile, path: &Path, replace: bool) -> io::Result<()> {
    let dir = parent_dir(path);
    let permissions = match std::fs::metadata(path) {
        Ok(existing) => existing.permissions(),
        Err(_) => new_file_permissions(dir)?,
    };
    tmp.as_file().set_permissions(permissions)?;
    tmp.as_file().sync_all()?;
    match replace {
        true => tmp.persist(path).map(drop),
        false => tmp.persist_noclobber(path).map(drop),
    }
    .map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Writes `bytes` to `path` through a temporary file named `prefix…`, replacing it.
pub(crate) fn write_file_atomically(path: &Path, bytes: &[u8], prefix: &str) -> io::Result<()> {
    let mut tmp = create_beside(path, prefix)?;
    tmp.write_all(bytes)?;
    persist(tmp, path, true)
}

/// The permissions a file newly created in `dir` gets (`0666` less the umask): learnt from a
/// probe file, since the umask cannot be read without changing it.
fn new_file_permissions(dir: &Path) -> io::Result<std::fs::Permissions> {
    let probe = tempfile::Builder::new()
        .prefix(".mode-probe-")
        .make_in(dir, |p| {
            std::fs::OpenOptions::new().write(true).create_new(true).open(p)
        })
        .map_err(without_temporary_path)?;
    probe.as_file().metadata().map(|m| m.permissions())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("gone").join("relmap.json");
        let e = create_beside(&missing, ".relmap-").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(!e.to_string().contains("gone"), "{e}");
        assert!(!e.to_string().contains(".tmp"), "{e}");
        assert_eq!(e.raw_os_error(), Some(2), "{e}");
    }
}
