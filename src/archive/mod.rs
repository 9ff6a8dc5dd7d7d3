//! Thick bundles: a gzipped tar holding `bundle.json` and an OCI image layout at
//! `artifacts/layout/`. The archive is only ever streamed; nothing is extracted to disk.

mod error;
mod layout;
mod tar_stream;

pub use error::ArchiveError;
pub use layout::{ImageLookup, IndexEntry, ThickArchive, CONTAINERD_NAME_ANNOTATION, REF_NAME_ANNOTATION};
pub(crate) use tar_stream::{read_up_to, scan_archive};
