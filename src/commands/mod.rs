//! The commands: each builds a plan and hands it to the engine.

mod export;
mod map;
mod output_bundle;
mod output_file;
mod plan;
mod relocate;
mod sync;

pub use export::{Export, ExportReport, ExportedImage, ExportedReferrer, PlannedExport};
pub use map::{map_references, map_references_with};
pub use plan::{Plan, PlannedImage};
pub use relocate::{PlannedRelocation, RelocateOptions, Relocation};
pub use sync::{PairOutcome, PairReport, PlannedSync, SyncEvent, SyncReport, SyncReporter, SyncRun, TaskReport};
