//! `cnab-relocate BUNDLE -p PREFIX -m FILE`: plan the bundle's images under the prefix, copy
//! them with the engine (from their registries, or from the thick bundle's archive), then
//! write the relocation mapping, only when every image is in place.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::plan::Plan;
use crate::bundle::{self, BundleError, BundleFormat, OpenedBundle};
use crate::engine::{
    copy_images, ArchiveSource, CopyOptions, CopyReport, Event, RegistryDestination, RegistrySource, Reporter,
};
use crate::error::{Error, MappingFileProblem};
use crate::mapping::RepositoryPrefix;
use crate::registry::{Registries, RegistryOptions};
use crate::relmap::RelocationMapping;

/// How long an interrupted run spends cancelling its open upload sessions.
const CANCEL_GRACE: Duration = Duration::from_secs(2);

/// How to reach registries and how hard to work.
#[derive(Debug, Clone, Default)]
pub struct RelocateOptions {
    /// TLS, plain-HTTP hosts and retries.
    pub registry: RegistryOptions,
    /// Transfers in flight, retries of failed blobs.
    pub copy: CopyOptions,
}

/// A relocation to set up: the bundle, the prefix, and where the mapping goes.
///
/// ```no_run
/// # async fn demo() -> Result<(), cnab_relocate::Error> {
/// use cnab_relocate::Relocation;
/// let report = Relocation::new("forge.json")
///     .prefix("registry.internal.acme.com/smith")
///     .mapping_file("relmap.json")
///     .run()
///     .await?;
/// assert!(report.succeeded());
/// # Ok(()) }
/// ```
pub struct Relocation {
    bundle: PathBuf,
    prefix: String,
    mapping_file: Option<PathBuf>,
    options: RelocateOptions,
    reporter: Reporter,
}

impl Relocation {
    /// A relocation of the bundle at `bundle` (thin `bundle.json` or thick `.tgz`).
    pub fn new(bundle: impl Into<PathBuf>) -> Self {
        Relocation {
            bundle: bundle.into(),
            prefix: String::new(),
            mapping_file: None,
            options: RelocateOptions::default(),
            reporter: Arc::new(|_: &Event| {}),
        }
    }

    /// The repository prefix the images go under, e.g. `registry.internal.acme.com/smith`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Where [`PlannedRelocation::run`] writes the mapping once every image is copied.
    /// Without it, nothing is written and the mapping is only returned by
    /// [`PlannedRelocation::mapping`].
    pub fn mapping_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.mapping_file = Some(path.into());
        self
    }

    /// Registry and copy settings.
    pub fn options(mut self, options: RelocateOptions) -> Self {
        self.options = options;
        self
    }

    /// Receives every event of the copy (progress, per-image outcomes).
    pub fn on_event(mut self, reporter: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.reporter = Arc::new(reporter);
        self
    }

    /// Opens the bundle, selects its images and maps each under the prefix. Contacts no
    /// registry and writes nothing.
    pub fn plan(self) -> Result<PlannedRelocation, Error> {
        let prefix: RepositoryPrefix = self.prefix.parse()?;
        let opened = bundle::open_bundle(&self.bundle)?;
        let images = bundle::select_images(&opened.bundle)?;
        let plan = Plan::new(prefix, images)?;
        Ok(PlannedRelocation {
            opened,
            plan,
            settings: self,
        })
    }

    /// [`plan`](Self::plan), then [`PlannedRelocation::run`].
    pub async fn run(self) -> Result<CopyReport, Error> {
        self.plan()?.run().await
    }
}

/// A bundle opened and mapped: what a dry run shows, ready to copy.
pub struct PlannedRelocation {
    opened: OpenedBundle,
    plan: Plan,
    settings: Relocation,
}

impl PlannedRelocation {
    /// Every image and where it goes.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The relocation mapping the copy will write.
    pub fn mapping(&self) -> RelocationMapping {
        self.plan.mapping()
    }

    /// Thin or thick.
    pub fn format(&self) -> BundleFormat {
        self.opened.format
    }

    /// Checks, without any network, what can be checked of the images' sources: for a thick
    /// bundle, that every image is in the archive with all its manifests and blobs.
    pub fn check_sources(&self) -> Result<(), Error> {
        if let Some(archive) = &self.opened.thick {
            ArchiveSource::new(archive.clone(), &self.plan.jobs()).map_err(BundleError::from)?;
        }
        Ok(())
    }

    /// Copies every image and, only when all of them were copied and verified, writes the
    /// mapping (atomically) if a mapping file was set.
    pub async fn run(&self) -> Result<CopyReport, Error> {
        self.run_until(std::future::pending()).await
    }

    /// [`run`](Self::run), stopped when `interrupt` yields a signal number: work stops, every
    /// upload session still open is cancelled, no mapping is written, and the result is
    /// [`Error::Interrupted`].
    pub async fn run_until(&self, interrupt: impl Future<Output = i32>) -> Result<CopyReport, Error> {
        let settings = &self.settings;
        if let Some(path) = &settings.mapping_file {
            check_mapping_file(path, &self.opened.path)?;
        }
        let registries = Arc::new(Registries::new(settings.options.registry.clone())?);
        let copied = {
            let copy = std::pin::pin!(self.copy(&registries));
            let interrupt = std::pin::pin!(interrupt);
            match futures_util::future::select(copy, interrupt).await {
                futures_util::future::Either::Left((copied, _)) => copied,
                futures_util::future::Either::Right((signal, _)) => {
                    // the copy is dropped first: nothing new starts while sessions close
                    Err(Error::Interrupted { signal })
                }
            }
        };
        if let Err(Error::Interrupted { .. }) = &copied {
            let _ = tokio::time::timeout(CANCEL_GRACE, registries.cancel_open_uploads()).await;
        }
        let report = copied?;
        if !report.succeeded() {
            return Err(Error::Relocation(report));
        }
        if let Some(path) = &settings.mapping_file {
            self.mapping()
                .write_atomically(path)
                .map_err(|source| Error::WriteMapping {
                    path: path.clone(),
                    source,
                })?;
        }
        Ok(report)
    }

    async fn copy(&self, registries: &Arc<Registries>) -> Result<CopyReport, Error> {
        let jobs = self.plan.jobs();
        let Some(first) = jobs.first() else {
            return Ok(CopyReport::default());
        };
        let destination = Arc::new(RegistryDestination::new(registries.get(first.destination.domain())));
        let options = &self.settings.options.copy;
        let reporter = &self.settings.reporter;
        Ok(match &self.opened.thick {
            None => {
                let source = RegistrySource::new(registries.clone(), options.concurrency);
                copy_images(&source, destination, &jobs, options, reporter).await
            }
            Some(archive) => {
                let source = ArchiveSource::new(archive.clone(), &jobs).map_err(BundleError::from)?;
                copy_images(&source, destination, &jobs, options, reporter).await
            }
        })
    }
}

/// Fails before anything is copied when the mapping could not be written afterwards.
fn check_mapping_file(path: &Path, bundle: &Path) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let fail = |problem| Error::MappingFile {
        path: path.to_path_buf(),
        problem,
    };
    if let Ok(existing) = std::fs::metadata(path) {
        if existing.is_dir() {
            return Err(fail(MappingFileProblem::IsDirectory));
        }
        if !existing.is_file() {
            return Err(fail(MappingFileProblem::NotARegularFile));
        }
    }
    if let (Ok(a), Ok(b)) = (path.canonicalize(), bundle.canonicalize()) {
        if a == b {
            return Err(fail(MappingFileProblem::IsTheBundle));
        }
    }
    tempfile::Builder::new()
        .prefix(".relmap-check-")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|source| {
            fail(MappingFileProblem::DirectoryNotWritable {
                dir: dir.to_path_buf(),
                source,
            })
        })
}
