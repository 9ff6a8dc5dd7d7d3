//! The relocation mapping file (e.g. `relmap.json`): exactly Go's `json.Marshal(map[string]string)`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// Original image string → relocated reference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelocationMapping(BTreeMap<String, String>);

impl RelocationMapping {
    /// Records that `original` was relocated to `relocated`, replacing any earlier entry for it.
    pub fn insert(&mut self, original: String, relocated: String) {
        self.0.insert(original, relocated);
    }

    /// Compact JSON, keys sorted byte-wise, no trailing newline. Go would also escape `<`, `>`,
    /// `&`, U+2028 and U+2029, but keys and values are valid references, which cannot hold them.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.0).expect("a map of strings always serialises")
    }

    /// Writes the mapping atomically: a temporary file in the same directory, synced, then
    /// renamed over `path`, and the directory synced, so readers see the old file or the new
    /// one, never a part. A file it replaces keeps its mode; a new one gets what the umask
    /// allows, as any file created by a program.
    pub fn write_atomically(&self, path: &Path) -> std::io::Result<()> {
        write_file_atomically(path, &self.to_json(), ".relmap-")
    }
}

/// Writes `bytes` to `path` the way [`RelocationMapping::write_atomically`] does, through a
/// temporary file named `temp_prefix…` (shared with the output bundle).
pub(crate) fn write_file_atomically(path: &Path, bytes: &[u8], temp_prefix: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let permissions = match std::fs::metadata(path) {
        Ok(existing) => existing.permissions(),
        Err(_) => new_file_permissions(dir)?,
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(temp_prefix)
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().set_permissions(permissions)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

/// The permissions a file newly created in `dir` gets (`0666` less the umask): learnt from a
/// probe file, since the umask cannot be read without changing it.
fn new_file_permissions(dir: &Path) -> std::io::Result<std::fs::Permissions> {
    let probe = tempfile::Builder::new().prefix(".relmap-mode-").make_in(dir, |p| {
        std::fs::OpenOptions::new().write(true).create_new(true).open(p)
    })?;
    probe.as_file().metadata().map(|m| m.permissions())
}

impl FromIterator<(String, String)> for RelocationMapping {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        RelocationMapping(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_sorted_without_newline() {
        let m: RelocationMapping = [("b".to_string(), "y".to_string()), ("a".to_string(), "x".to_string())]
            .into_iter()
            .collect();
        assert_eq!(m.to_json(), br#"{"a":"x","b":"y"}"#);
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("relmap.json");
        std::fs::write(&p, "old").unwrap();
        let m: RelocationMapping = [("k".to_string(), "v".to_string())].into_iter().collect();
        m.write_atomically(&p).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), br#"{"k":"v"}"#);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
