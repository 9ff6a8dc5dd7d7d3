//! The commands: each builds a plan and hands it to the engine.

mod map;
mod plan;
mod relocate;

pub use map::map_references;
pub use plan::{Plan, PlannedImage};
pub use relocate::{PlannedRelocation, RelocateOptions, Relocation};
