//! `cnab-relocate`: copy the images of a CNAB bundle into a private registry under a repository
//! prefix, keeping every digest, and write the relocation mapping (`relmap.json`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), cnab_relocate::Error> {
//! let report = cnab_relocate::Relocation::new("forge.json")
//!     .prefix("registry.internal.acme.com/smith")
//!     .mapping_file("relmap.json")
//!     .run()
//!     .await?;
//! println!("{} bytes sent", report.bytes_sent);
//! # Ok(()) }
//! ```
//!
//! Layers, each importing only those listed before it:
//! [`limits`], files written atomically, and [`reference`](mod@reference) (names, digests) → [`oci`] (manifests on raw bytes) and
//! [`mapping`], [`relmap`] → [`registry`] (the client) and [`archive`] (thick bundles) →
//! [`bundle`] (`bundle.json`, opening BUNDLE) → [`engine`] (sources × destinations, one
//! placement state machine) → [`commands`] (relocate, export, map) → this facade and the binary.
#![deny(missing_docs)]

pub mod archive;
mod atomic_file;
pub mod bundle;
pub mod commands;
pub mod engine;
mod error;
pub mod limits;
pub mod mapping;
pub mod oci;
pub mod reference;
pub mod registry;
pub mod relmap;
pub mod sync;

pub use commands::{
    map_references, map_references_with, Export, PairOutcome, PlannedExport, PlannedRelocation, PlannedSync,
    RelocateOptions, Relocation, SyncEvent, SyncReport, SyncRun,
};
pub use engine::{CopyReport, Event};
pub use error::{Error, MappingFileProblem};
