//! OCI and Docker content on raw bytes: media types, descriptors, manifests and indexes, and
//! the tree of an image. Nothing here re-serialises a manifest, so digests always hold.

mod descriptor;
mod manifest;
mod media_types;
mod referrers;
mod tree;
mod verifier;

pub use descriptor::{Descriptor, Platform};
pub use manifest::{Manifest, ManifestContent, ManifestError};
pub use media_types::{
    is_index_type, ACCEPT_MANIFESTS, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST,
};
pub use referrers::{
    cosign_tag, fallback_tag, merged_fallback_index, parse_cosign_tag, parse_fallback_tag, pruned_fallback_index,
    referrers_in, subject_of, ReferrerEntry, ReferrerKind, COSIGN_SUFFIXES,
};
pub use tree::{ImageTree, ManifestOutline, ManifestRef, PointsAt, TreeError};
pub use verifier::Verifier;
