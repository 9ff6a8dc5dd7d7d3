//! Thick bundles: a gzipped tar holding `bundle.json` and an OCI image layout at
//! `artifacts/layout/`. The archive is only ever streamed; nothing is extracted to disk.
//! Read by relocation, written by export.

mod error;
mod first_pass;
mod layout;
mod tar_stream;
mod writer;

pub use error::ArchiveError;
pub use first_pass::{EntrySink, PausedScan};
pub use layout::{ImageLookup, IndexEntry, ThickArchive, CONTAINERD_NAME_ANNOTATION, LAYOUT_DIR, REF_NAME_ANNOTATION};
pub(crate) use tar_stream::{read_up_to, scan_archive};
pub use writer::ThickWriter;
