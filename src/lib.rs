//! `cnab-relocate`: copy the images of a CNAB bundle into a private registry under a repository
//! prefix, keeping every digest, and write the relocation mapping (`relmap.json`).
//!
//! Data flows one way: [`bundle::open_bundle`] → [`bundle::select_images`] →
//! [`relocate::Plan`] (original → relocated reference) → copy → [`relocate::RelocationMapping`].

pub mod bundle;
mod error;
pub mod reference;
pub mod registry;
pub mod relocate;
pub mod thick;

use std::path::Path;
use std::sync::Arc;

pub use error::Error;

use bundle::{BundleError, BundleFormat, OpenedBundle};
use reference::Reference;
use registry::{Registries, RegistryOptions};
use relocate::{CopyReport, Plan, RemoteSource, Reporter, RepositoryPrefix};
use thick::ThickSource;

/// How to copy.
#[derive(Debug, Clone)]
pub struct RelocateOptions {
    pub registry: RegistryOptions,
    /// Transfers in flight.
    pub concurrency: usize,
}

impl Default for RelocateOptions {
    fn default() -> Self {
        RelocateOptions {
            registry: RegistryOptions::default(),
            concurrency: 8,
        }
    }
}

/// Opens BUNDLE, selects its images and maps each under `prefix`. Touches no network and
/// writes nothing: this is all `--dry-run` does.
pub fn plan_bundle(bundle_path: &Path, prefix: &str) -> Result<(OpenedBundle, Plan), Error> {
    let prefix: RepositoryPrefix = prefix.parse()?;
    let opened = bundle::open_bundle(bundle_path)?;
    let images = bundle::select_images(&opened.bundle)?;
    let plan = Plan::new(prefix, images)?;
    Ok((opened, plan))
}

/// Checks, without any network, what can be checked of the images' sources: for a thick
/// bundle, that every image is in the archive with all its manifests and blobs (what
/// `--dry-run` validates besides the mapping).
pub fn verify_sources(opened: &OpenedBundle, plan: &Plan) -> Result<(), Error> {
    if let Some(archive) = &opened.thick {
        ThickSource::new(archive.clone(), plan, 1).map_err(|e| Error::Bundle(BundleError::Thick(e)))?;
    }
    Ok(())
}

/// Maps each reference as the relocation mapping would (`cnab-relocate map`).
pub fn map_references<S: AsRef<str>>(prefix: &str, references: &[S]) -> Result<Vec<String>, Vec<Error>> {
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

/// Copies every image of `plan` to its relocated reference and, only when all of them were
/// copied and verified, writes the relocation mapping to `mapping_path` (atomically).
pub async fn relocate(
    opened: &OpenedBundle,
    plan: &Plan,
    mapping_path: &Path,
    options: &RelocateOptions,
    reporter: Reporter,
) -> Result<CopyReport, Error> {
    check_mapping_destination(mapping_path, &opened.path)?;
    let registries = Arc::new(Registries::new(options.registry.clone()).map_err(|e| Error::Config(e.to_string()))?);
    let concurrency = options.concurrency.max(1);
    let report = match opened.format {
        BundleFormat::Thin => {
            let source = Arc::new(RemoteSource::new(
                registries.clone(),
                concurrency,
                options.registry.retry.clone(),
            ));
            relocate::copy_images(source, &registries, plan, concurrency, reporter).await
        }
        BundleFormat::Thick => {
            let archive = opened.thick.clone().expect("a thick bundle has its archive");
            let source = Arc::new(
                ThickSource::new(archive, plan, concurrency).map_err(|e| Error::Bundle(BundleError::Thick(e)))?,
            );
            relocate::copy_images(source, &registries, plan, concurrency, reporter).await
        }
    };
    if !report.succeeded() {
        return Err(Error::Relocation(report));
    }
    plan.mapping()
        .write_atomically(mapping_path)
        .map_err(|source| Error::WriteMapping {
            path: mapping_path.to_path_buf(),
            source,
        })?;
    Ok(report)
}

/// Fails before anything is copied when the mapping could not be written afterwards.
fn check_mapping_destination(path: &Path, bundle: &Path) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let fail = |why: String| Error::Config(format!("cannot write the relocation mapping {}: {why}", path.display()));
    if path.is_dir() {
        return Err(fail("it is a directory".into()));
    }
    if let (Ok(a), Ok(b)) = (path.canonicalize(), bundle.canonicalize()) {
        if a == b {
            return Err(fail("that is the bundle itself, which is never changed".into()));
        }
    }
    tempfile::Builder::new()
        .prefix(".relmap-check-")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| fail(format!("{} is not a writable directory ({e})", dir.display())))
}
