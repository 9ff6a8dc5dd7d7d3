//! Size limits shared by every layer: what is refused before it is read into memory.

/// Largest `bundle.json` accepted; real bundles are a few KiB.
pub const MAX_BUNDLE_JSON: u64 = 16 * 1024 * 1024;

/// Largest manifest accepted (distribution's own limit).
pub const MAX_MANIFEST_SIZE: usize = 4 * 1024 * 1024;
