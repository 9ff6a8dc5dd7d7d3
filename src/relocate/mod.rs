//! From bundle images to relocated references and copies: path mapping, the plan, the copy
//! (through an [`ImageSource`]), and the mapping file.

pub mod copy;
pub mod mapping;
pub mod plan;
pub mod relmap;
pub mod remote;
pub mod report;
pub mod sink;
pub mod source;

pub use copy::{copy_images, CopyError};
pub use mapping::{map_reference, MappingError, RepositoryPrefix};
pub use plan::{ManifestSelector, Plan, PlannedImage};
pub use relmap::RelocationMapping;
pub use remote::RemoteSource;
pub use report::{BlobOutcome, CopyReport, Event, ImageResult, ImageStats, Reporter};
pub use sink::BlobSink;
pub use source::{ImageSource, ImageTree, WantedBlob};
