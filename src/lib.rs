//! `cnab-relocate`: copy the images of a CNAB bundle into a private registry under a repository
//! prefix, keeping every digest, and write the relocation mapping (`relmap.json`).
//!
//! Data flows one way: [`bundle::open_bundle`] → [`bundle::select_images`] →
//! [`relocate::Plan`] (original → relocated reference) → copy → [`relocate::RelocationMapping`].

pub mod bundle;
mod error;
pub mod reference;
pub mod relocate;
pub mod thick;

use std::path::Path;

pub use error::Error;

use bundle::OpenedBundle;
use reference::Reference;
use relocate::{Plan, RepositoryPrefix};

/// Opens BUNDLE, selects its images and maps each under `prefix`. Touches no network and
/// writes nothing: this is all `--dry-run` does.
pub fn plan_bundle(bundle_path: &Path, prefix: &str) -> Result<(OpenedBundle, Plan), Error> {
    let prefix: RepositoryPrefix = prefix.parse()?;
    let opened = bundle::open_bundle(bundle_path)?;
    let images = bundle::select_images(&opened.bundle)?;
    let plan = Plan::new(prefix, images)?;
    Ok((opened, plan))
}

/// Maps each reference as the relocation mapping would (`cnab-relocate map`).
pub fn map_references<S: AsRef<str>>(
    prefix: &str,
    references: &[S],
) -> Result<Vec<String>, Vec<Error>> {
    let prefix: RepositoryPrefix = prefix.parse().map_err(|e| vec![Error::from(e)])?;
    let mut mapped = Vec::new();
    let mut errors = Vec::new();
    for r in references {
        match Reference::parse_normalized(r.as_ref())
            .map_err(Error::from)
            .and_then(|r| relocate::map_reference(&prefix, &r).map_err(Error::from))
        {
            Ok(m) => mapped.push(m.to_string()),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(mapped)
    } else {
        Err(errors)
    }
}
