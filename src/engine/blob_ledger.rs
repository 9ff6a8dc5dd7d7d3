//! Blobs placed by the earlier copies of one run (sync's tasks run one after another): a later
//! copy into the same registry mounts them instead of sending them again.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::reference::Digest;

/// Per destination registry, a repository holding each blob placed so far.
#[derive(Debug, Default)]
pub struct BlobLedger {
    held: Mutex<HashMap<String, HashMap<Digest, String>>>,
}

impl BlobLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// A repository of `registry` that holds `digest`, placed by an earlier copy.
    pub fn holder(&self, registry: &str, digest: &Digest) -> Option<String> {
        let held = self.held.lock().expect("ledger lock");
        held.get(registry)?.get(digest).cloned()
    }

    /// Notes that `repository` of `registry` now holds `digest` (the first holder is kept).
    pub fn record(&self, registry: &str, repository: &str, digest: &Digest) {
        let mut held = self.held.lock().expect("ledger lock");
        held.entry(registry.to_string())
            .or_default()
            .entry(digest.clone())
            .or_insert_with(|| repository.to_string());
    }
}
