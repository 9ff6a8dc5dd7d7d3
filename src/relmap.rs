//! The relocation mapping file (e.g. `relmap.json`): exactly Go's `json.Marshal(map[string]string)`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::atomic_file::write_file_atomically;

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
