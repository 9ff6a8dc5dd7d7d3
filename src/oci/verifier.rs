//! Checks streamed content against a descriptor's digest and size as it passes.

use crate::reference::{Digest, Hasher};

/// Hashes streamed content and counts its bytes.
pub struct Verifier {
    hasher: Hasher,
    seen: u64,
}

impl Verifier {
    /// A verifier using `expected`'s algorithm.
    pub fn new(expected: &Digest) -> Self {
        Verifier {
            hasher: expected.hasher(),
            seen: 0,
        }
    }

    /// Feeds the next chunk.
    pub fn update(&mut self, chunk: &[u8]) {
        self.hasher.update(chunk);
        self.seen += chunk.len() as u64;
    }

    /// Bytes seen so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// The digest of what was seen so far (the hasher keeps running).
    pub fn digest_so_far(&self) -> Digest {
        self.hasher.clone().finish()
    }
}
