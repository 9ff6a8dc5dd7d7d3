//! From bundle images to relocated references: path mapping, the plan, the mapping file.

pub mod mapping;
pub mod plan;
pub mod relmap;

pub use mapping::{map_reference, MappingError, RepositoryPrefix};
pub use plan::{ManifestSelector, Plan, PlannedImage};
pub use relmap::RelocationMapping;
