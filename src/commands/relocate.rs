//! `cnab-relocate BUNDLE -p PREFIX -m FILE`: plan the bundle's images under the prefix, copy
//! them with the engine (from their registries, or from the thick bundle's archive), then
//! write the relocation mapping (and the relocated bundle, `--output-bundle`), only when every
//! image is in place.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::output_bundle::{relocated_bundle_json, RelocatedImage};
use super::output_file::{check_output_file, OutputFile};
use super::plan::Plan;
use crate::atomic_file::{parent_dir, write_file_atomically};
use crate::bundle::{self, BundleError, BundleFormat, OpenedBundle};
use crate::engine::{
    copy_images, ArchiveSource, CopyOptions, CopyReport, Event, RegistryDestination, RegistrySource, Reporter,
};
use crate::error::{Error, MappingFileProblem};
use crate::mapping::RepositoryPrefix;
use crate::registry::{Registries, RegistryOptions};
use crate::relmap::RelocationMapping;
use crate::sync::config::read_mapping_rules;

/// How long an interrupted run spends cancelling its open upload sessions.
pub(super) const CANCEL_GRACE: Duration = Duration::from_secs(2);

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
    output_bundle: Option<PathBuf>,
    mapping_rules: Option<PathBuf>,
    read_once: bool,
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
            output_bundle: None,
            mapping_rules: None,
            read_once: true,
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

    /// Where [`PlannedRelocation::run`] writes, once every image is copied and verified, a
    /// copy of `bundle.json` in which each image's `image` is its relocated reference (the
    /// mapping's value) and `contentDigest` the digest copied, every other key and value
    /// unchanged, in canonical JSON (sorted keys, no whitespace: the form CNAB signs). Written
    /// atomically, like the mapping; the bundle itself is never changed. For a thick bundle it
    /// is its `bundle.json`, which then names images in the target registry.
    pub fn output_bundle(mut self, path: impl Into<PathBuf>) -> Self {
        self.output_bundle = Some(path.into());
        self
    }

    /// Whether a thick bundle written metadata first (as `export` writes it) is read once, its
    /// layers streamed as the first pass reaches them (the default). Its layers are then
    /// checked only as they stream: a missing one fails the run before any manifest is
    /// pushed, but after other blobs were. Off, every entry is listed and checked first, as a
    /// dry run does.
    pub fn read_archive_once(mut self, once: bool) -> Self {
        self.read_once = once;
        self
    }

    /// Places images by the rules of a `--mapping-rules` file (dregsy's `from`/`to`, first
    /// match wins; duffle's mapping for the rest).
    pub fn mapping_rules(mut self, path: impl Into<PathBuf>) -> Self {
        self.mapping_rules = Some(path.into());
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
        let rules = match &self.mapping_rules {
            Some(path) => Some(read_mapping_rules(path).map_err(Error::MappingRules)?),
            None => None,
        };
        let opened = match self.read_once {
            true => bundle::open_bundle_once(&self.bundle)?,
            false => bundle::open_bundle(&self.bundle)?,
        };
        let images = bundle::select_images(&opened.bundle)?;
        let plan = match &rules {
            Some(rules) => Plan::with_rules(prefix, images, rules).map_err(|e| Error::MappingRules(e.to_string()))?,
            None => Plan::new(prefix, images)?,
        };
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
    /// mapping (atomically) if a mapping file was set, then the output bundle if one was set.
    pub async fn run(&self) -> Result<CopyReport, Error> {
        self.run_until(std::future::pending()).await
    }

    /// [`run`](Self::run), stopped when `interrupt` yields a signal number: work stops, every
    /// upload session still open is cancelled, no mapping (and no output bundle) is written,
    /// and the result is [`Error::Interrupted`].
    pub async fn run_until(&self, interrupt: impl Future<Output = i32>) -> Result<CopyReport, Error> {
        let settings = &self.settings;
        if let Some(path) = &settings.mapping_file {
            check_mapping_file(path, &self.opened.path)?;
        }
        if let Some(path) = &settings.output_bundle {
            check_output_file(&OutputFile {
                path,
                bundle: &self.opened.path,
                replace: true,
            })
            .map_err(|problem| Error::OutputFile {
                path: path.clone(),
                problem,
            })?;
            if settings
                .mapping_file
                .as_ref()
                .is_some_and(|mapping| same_file(path, mapping))
            {
                return Err(Error::OutputFile {
                    path: path.clone(),
                    problem: MappingFileProblem::IsTheMappingFile,
                });
            }
            // what cannot be written afterwards fails now, before anything is copied
            self.output_bundle_json(&BTreeMap::new())?;
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
        let output_bundle = match &settings.output_bundle {
            Some(path) => Some((path, self.output_bundle_json(&self.relocated_images(&report))?)),
            None => None,
        };
        if let Some(path) = &settings.mapping_file {
            self.mapping()
                .write_atomically(path)
                .map_err(|source| Error::WriteMapping {
                    path: path.clone(),
                    source,
                })?;
        }
        if let Some((path, json)) = output_bundle {
            write_file_atomically(path, &json, ".bundle-").map_err(|source| Error::WriteOutputBundle {
                path: path.clone(),
                source,
            })?;
        }
        Ok(report)
    }

    /// Each image copied, by its raw string: the mapping's value and the digest copied.
    fn relocated_images(&self, report: &CopyReport) -> BTreeMap<String, RelocatedImage> {
        self.plan
            .images
            .iter()
            .filter_map(|planned| {
                let copied = report
                    .images
                    .iter()
                    .find(|result| result.image == planned.raw)?
                    .outcome
                    .as_ref()
                    .ok()?;
                let relocated = RelocatedImage {
                    reference: planned.relocated.to_string(),
                    digest: copied.digest.to_string(),
                };
                Some((planned.raw.clone(), relocated))
            })
            .collect()
    }

    /// The bundle's own `bundle.json` bytes with `images` relocated, in canonical form.
    fn output_bundle_json(&self, images: &BTreeMap<String, RelocatedImage>) -> Result<Vec<u8>, Error> {
        relocated_bundle_json(&self.opened.json, images).map_err(|source| {
            Error::Bundle(BundleError::Json {
                path: self.opened.path.clone(),
                source,
            })
        })
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
    check_output_file(&OutputFile {
        path,
        bundle,
        replace: true,
    })
    .map_err(|problem| Error::MappingFile {
        path: path.to_path_buf(),
        problem,
    })
}

/// Whether two paths name one file, existing or not (`a.json`, `./a.json`, a symlink to it).
fn same_file(a: &Path, b: &Path) -> bool {
    fn resolved(path: &Path) -> Option<PathBuf> {
        path.canonicalize()
            .ok()
            .or_else(|| Some(parent_dir(path).canonicalize().ok()?.join(path.file_name()?)))
    }
    a == b || matches!((resolved(a), resolved(b)), (Some(x), Some(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUNDLE: &str = r#"{"invocationImages":[{"image":"tech/inv:1"}],"custom":{"n":1e400}}"#;

    /// A relocation to a port nothing listens on: each case fails before any connection.
    async fn refused(bundle: &Path, set_up: impl FnOnce(Relocation) -> Relocation) -> Error {
        let relocation = Relocation::new(bundle).prefix("127.0.0.1:1/x");
        set_up(relocation).plan().unwrap().run().await.unwrap_err()
    }

    fn problem_of(e: Error) -> MappingFileProblem {
        match e {
            Error::OutputFile { problem, .. } => problem,
            other => panic!("{other}"),
        }
    }

    #[tokio::test]
    async fn an_output_bundle_that_could_not_be_written_fails_before_copying() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("bundle.json");
        std::fs::write(&bundle, r#"{"invocationImages":[{"image":"tech/inv:1"}]}"#).unwrap();
        let mapping = dir.path().join("relmap.json");

        let e = refused(&bundle, |r| r.output_bundle(&bundle)).await;
        assert_eq!(e.exit_code(), 2);
        assert!(matches!(problem_of(e), MappingFileProblem::IsTheBundle));

        let e = refused(&bundle, |r| r.output_bundle(dir.path())).await;
        assert!(matches!(problem_of(e), MappingFileProblem::IsDirectory));

        let also_mapping = dir.path().join(".").join("relmap.json");
        let e = refused(&bundle, |r| r.mapping_file(&mapping).output_bundle(&also_mapping)).await;
        assert!(e.to_string().contains("also the relocation mapping"), "{e}");
        assert!(matches!(problem_of(e), MappingFileProblem::IsTheMappingFile));

        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "nothing written, no probe left"
        );
    }

    #[tokio::test]
    async fn a_bundle_the_output_cannot_be_written_from_fails_before_copying() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("bundle.json");
        std::fs::write(&bundle, BUNDLE).unwrap();
        let e = refused(&bundle, |r| r.output_bundle(dir.path().join("out.json"))).await;
        assert!(matches!(e, Error::Bundle(BundleError::Json { .. })), "{e}");
        assert_eq!(e.exit_code(), 2);
        assert!(!dir.path().join("out.json").exists());
    }

    #[test]
    fn same_file_sees_through_spellings_and_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.json");
        assert!(same_file(&a, &dir.path().join(".").join("a.json")), "not yet there");
        std::fs::write(&a, "x").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&a, &link).unwrap();
        assert!(same_file(&a, &link));
        assert!(!same_file(&a, &dir.path().join("b.json")));
    }
}
