//! Size limits shared by every layer: what is refused before it is read into memory.

/// Largest `bundle.json` accepted; real bundles are a few KiB.
pub const MAX_BUNDLE_JSON: u64 = 16 * 1024 * 1024;

/// Largest manifest accepted (distribution's own limit).
pub const MAX_MANIFEST_SIZE: usize = 4 * 1024 * 1024;

/// Manifest bytes a source keeps in memory after resolving (the rest are read again, by
/// digest, when pushed).
pub const KEPT_MANIFESTS_BUDGET: usize = 32 * 1024 * 1024;

/// Manifest bytes read again for one batch of pushes (one batch is pushed while the next is
/// read). With [`KEPT_MANIFESTS_BUDGET`], what manifests may cost in memory however many
/// there are: 32 + 2 × 24 MiB.
pub const MANIFEST_BATCH_BUDGET: usize = 24 * 1024 * 1024;
