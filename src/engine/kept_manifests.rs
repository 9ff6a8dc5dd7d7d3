//! Manifests a source keeps from resolving, within a byte budget: pushing them needs no
//! second read, and a bundle of huge manifests still costs bounded memory.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::oci::Manifest;
use crate::reference::Digest;

/// Manifests kept in memory until `budget` bytes are held; later ones are not kept.
pub(crate) struct KeptManifests {
    budget: usize,
    kept: Mutex<(usize, HashMap<Digest, Manifest>)>,
}

impl KeptManifests {
    pub fn new(budget: usize) -> Self {
        KeptManifests {
            budget,
            kept: Mutex::new((0, HashMap::new())),
        }
    }

    /// Keeps `manifest` if it fits what is left of the budget.
    pub fn offer(&self, manifest: &Manifest) {
        let mut kept = self.kept.lock().expect("kept manifests lock");
        let (used, map) = &mut *kept;
        if map.contains_key(&manifest.digest) || *used + manifest.bytes.len() > self.budget {
            return;
        }
        *used += manifest.bytes.len();
        map.insert(manifest.digest.clone(), manifest.clone());
    }

    pub fn get(&self, digest: &Digest) -> Option<Manifest> {
        self.kept.lock().expect("kept manifests lock").1.get(digest).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(n: usize) -> Manifest {
        let json = format!(r#"{{"schemaVersion":2,"manifests":[],"pad":"{}"}}"#, "x".repeat(n));
        Manifest::new(json.into(), None, None).unwrap()
    }

    #[test]
    fn keeps_until_the_budget_is_spent() {
        let kept = KeptManifests::new(250);
        let (a, b, c) = (manifest(100), manifest(101), manifest(10));
        kept.offer(&a);
        kept.offer(&a);
        kept.offer(&b);
        kept.offer(&c);
        assert_eq!(kept.get(&a.digest), Some(a), "kept once, counted once");
        assert_eq!(kept.get(&b.digest), None, "over the budget");
        assert_eq!(kept.get(&c.digest), Some(c), "a smaller one still fits");
    }
}
