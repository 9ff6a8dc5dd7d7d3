//! `cnab-relocate sync CONFIG.yaml` and `--mapping-rules` (SYNC.md): the pure parts. A dregsy
//! configuration read and validated ([`config`]), repository names mapped ([`mapping`]), tags
//! selected from a listing ([`tags`]), and a task's pairs planned from what was listed
//! ([`plan`]). Nothing here touches the network; listing catalogs and tags and copying the
//! pairs belong to the layers above.

pub mod config;
pub mod mapping;
pub mod plan;
pub mod platform;
pub mod tags;
mod yaml;

pub use mapping::{MappingRules, RuleError};
