//! `cnab-relocate sync CONFIG.yaml` (SYNC.md): every selected task of a dregsy configuration,
//! in file order. A task's source is listed and its pairs planned (`crate::sync`); then the
//! pairs are copied by the same engine as bundle relocation: digests kept, indexes whole,
//! blobs sent once per target registry and mounted everywhere else, verified. A task that
//! cannot be planned, or a pair that fails, does not stop the others.

mod listing;
mod locations;
mod report;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use futures_util::future::Either;
use futures_util::stream::{self, StreamExt};

use self::listing::list_task;
use self::locations::{domain_of, Locations};
pub use self::report::{PairOutcome, PairReport, SyncEvent, SyncReport, TaskReport};
use super::relocate::{RelocateOptions, CANCEL_GRACE};
use crate::engine::{copy_images, BlobLedger, CopyReport, Event, ImageJob, RegistryDestination, RegistrySource};
use crate::error::Error;
use crate::oci::ManifestContent;
use crate::reference::{Digest, ManifestSelector, Reference};
use crate::registry::{Registries, Registry};
use crate::sync::config::{read_config, select_tasks, Notice, NoticeLevel, SyncConfig, Task};
use crate::sync::plan::{plan_task, Listings, Pair};
use crate::sync::platform::choose_child;

/// Receives every [`SyncEvent`] of a run.
pub type SyncReporter = Arc<dyn Fn(&SyncEvent) + Send + Sync>;

/// A sync run to set up: the configuration, which tasks, and how.
pub struct SyncRun {
    config: std::path::PathBuf,
    tasks: Vec<String>,
    dry_run: bool,
    options: RelocateOptions,
    reporter: SyncReporter,
}

impl SyncRun {
    /// A run of the dregsy configuration at `config`.
    pub fn new(config: impl Into<std::path::PathBuf>) -> SyncRun {
        SyncRun {
            config: config.into(),
            tasks: Vec::new(),
            dry_run: false,
            options: RelocateOptions::default(),
            reporter: Arc::new(|_: &SyncEvent| {}),
        }
    }

    /// Runs only the tasks whose name one of `exprs` matches as a whole (dregsy's `-run`).
    pub fn tasks(mut self, exprs: Vec<String>) -> SyncRun {
        self.tasks = exprs;
        self
    }

    /// Plans only: sources are read (catalog, tags), nothing is written anywhere.
    pub fn dry_run(mut self, dry_run: bool) -> SyncRun {
        self.dry_run = dry_run;
        self
    }

    /// Registry and copy settings for every registry of the run (each location adds its own).
    pub fn options(mut self, options: RelocateOptions) -> SyncRun {
        self.options = options;
        self
    }

    /// Receives every event of the run.
    pub fn on_event(mut self, reporter: impl Fn(&SyncEvent) + Send + Sync + 'static) -> SyncRun {
        self.reporter = Arc::new(reporter);
        self
    }

    /// Reads and validates the whole configuration and selects the tasks; contacts nothing.
    pub fn plan(self) -> Result<PlannedSync, Error> {
        let config = read_config(&self.config).map_err(Error::SyncConfig)?;
        // the command line's CA files are checked once, before any task
        self.options.registry.trust()?;
        let selected = select_tasks(&config, &self.tasks)
            .map_err(|e| Error::SyncConfig(e.to_string()))?
            .into_iter()
            .map(|t| t.index)
            .collect();
        Ok(PlannedSync {
            config,
            selected,
            settings: self,
        })
    }
}

/// A configuration read and its tasks selected, ready to run.
pub struct PlannedSync {
    config: SyncConfig,
    selected: Vec<usize>,
    settings: SyncRun,
}

impl PlannedSync {
    /// The configuration.
    pub fn config(&self) -> &SyncConfig {
        &self.config
    }

    /// The tasks that run, in file order.
    pub fn tasks(&self) -> impl Iterator<Item = &Task> {
        self.selected.iter().map(|&i| &self.config.tasks[i])
    }

    /// Runs every selected task once, in file order. Never fails as a whole: the report says
    /// what happened to each task and pair.
    pub async fn run(&self) -> SyncReport {
        let locations = self.locations();
        self.run_with(&locations).await
    }

    /// [`run`](Self::run), stopped when `interrupt` yields a signal number: work stops and
    /// every upload session still open is cancelled; the result is [`Error::Interrupted`].
    pub async fn run_until(&self, interrupt: impl Future<Output = i32>) -> Result<SyncReport, Error> {
        let locations = self.locations();
        let run = std::pin::pin!(self.run_with(&locations));
        let interrupt = std::pin::pin!(interrupt);
        match futures_util::future::select(run, interrupt).await {
            Either::Left((report, _)) => Ok(report),
            Either::Right((signal, _)) => {
                // the run is dropped first: nothing new starts while sessions close
                let _ = tokio::time::timeout(CANCEL_GRACE, locations.cancel_open_uploads()).await;
                Err(Error::Interrupted { signal })
            }
        }
    }

    fn locations(&self) -> Locations {
        Locations::new(self.settings.options.registry.clone(), self.config.certs_dir.as_deref())
    }

    async fn run_with(&self, locations: &Locations) -> SyncReport {
        let settings = &self.settings;
        let say = |e: SyncEvent| (settings.reporter)(&e);
        for notice in &self.config.notices {
            say(SyncEvent::Notice(notice.clone()));
        }
        let ledger = Arc::new(BlobLedger::new());
        let mut report = SyncReport::default();
        for task in self.tasks() {
            let (task_report, copied) = self.run_task(task, locations, &ledger).await;
            if let Some(copied) = copied {
                report.bytes_sent += copied.bytes_sent;
                report.blobs_uploaded += copied.blobs_uploaded;
                report.blobs_mounted += copied.blobs_mounted;
            }
            report.tasks.push(task_report);
        }
        report
    }

    async fn run_task(
        &self,
        task: &Task,
        locations: &Locations,
        ledger: &Arc<BlobLedger>,
    ) -> (TaskReport, Option<CopyReport>) {
        let settings = &self.settings;
        let say = |e: SyncEvent| (settings.reporter)(&e);
        let warn = |message: String| {
            say(SyncEvent::Notice(Notice {
                level: NoticeLevel::Warning,
                message,
            }))
        };
        let failed = |error: String| {
            say(SyncEvent::TaskFailed {
                task: task.name.clone(),
                error: error.clone(),
            });
            let report = TaskReport {
                name: task.name.clone(),
                failure: Some(error),
                pairs: Vec::new(),
            };
            (report, None)
        };
        if task.mappings.is_empty() {
            warn(format!("task '{}' has no mappings: nothing to do", task.name));
        }
        let mut registries = Vec::new();
        for location in [&task.source, &task.target] {
            match locations.registries(location) {
                Ok((r, warnings)) => {
                    warnings.into_iter().for_each(warn);
                    registries.push(r);
                }
                Err(e) => return failed(e.to_string()),
            }
        }
        let (source_registries, target_registries) = (registries[0].clone(), registries[1].clone());
        let source = source_registries.get(domain_of(&task.source));
        let concurrency = settings.options.copy.concurrency;
        let listings = match list_task(task, &source, self.config.max_items, concurrency).await {
            Ok((listings, warnings)) => {
                warnings.into_iter().for_each(warn);
                listings
            }
            Err(e) => return failed(e),
        };
        let plan = match plan_task(task, &listings) {
            Ok(plan) => plan,
            Err(e) => return failed(e.to_string()),
        };
        for notice in plan.notices {
            say(SyncEvent::Notice(notice));
        }
        if plan.pairs.is_empty() && !task.mappings.is_empty() {
            warn(format!("task '{}': its mappings match nothing", task.name));
        }
        for pair in &plan.pairs {
            say(SyncEvent::Planned {
                task: task.name.clone(),
                pair: pair.clone(),
            });
        }
        let mut pairs: Vec<PairReport> = plan
            .pairs
            .into_iter()
            .map(|pair| PairReport {
                pair,
                outcome: PairOutcome::Planned,
            })
            .collect();
        if settings.dry_run || pairs.is_empty() {
            return (
                TaskReport {
                    name: task.name.clone(),
                    failure: None,
                    pairs,
                },
                None,
            );
        }

        let target = target_registries.get(domain_of(&task.target));
        let copied = self
            .copy_pairs(task, &mut pairs, source_registries, target, &listings, ledger)
            .await;
        (
            TaskReport {
                name: task.name.clone(),
                failure: None,
                pairs,
            },
            Some(copied),
        )
    }
    /// Copies a planned task's pairs with the engine and sets each pair's outcome. A pair
    /// whose job cannot be made (its platform's child not found) fails alone, before the copy.
    async fn copy_pairs(
        &self,
        task: &Task,
        pairs: &mut [PairReport],
        source_registries: Arc<Registries>,
        target: Arc<Registry>,
        listings: &Listings,
        ledger: &Arc<BlobLedger>,
    ) -> CopyReport {
        let settings = &self.settings;
        let say = |e: SyncEvent| (settings.reporter)(&e);
        let concurrency = settings.options.copy.concurrency;
        let source = source_registries.get(domain_of(&task.source));
        // a platform pair reads the matching child of its source's index, by digest
        let jobs: Vec<Result<ImageJob, String>> = stream::iter(pairs.iter())
            .map(|p| job_for(task, &p.pair, &source))
            .buffered(concurrency.max(1))
            .collect()
            .await;
        let mut copying = Vec::new();
        for (p, job) in pairs.iter_mut().zip(&jobs) {
            match job {
                Ok(job) => copying.push(job.clone()),
                Err(e) => {
                    p.outcome = PairOutcome::Failed(e.clone());
                    say(SyncEvent::PairFailed {
                        task: task.name.clone(),
                        pair: p.pair.clone(),
                        error: e.clone(),
                    });
                }
            }
        }
        let destination = Arc::new(RegistryDestination::new(target));
        let reader = RegistrySource::new(source_registries, concurrency);
        for (repository, tags) in &listings.tags {
            reader.know_tags(source.domain(), repository, tags);
        }
        let mut options = settings.options.copy.clone();
        options.all_or_nothing = false;
        options.ledger = Some(ledger.clone());
        let name = task.name.clone();
        let reporter = settings.reporter.clone();
        let copy_reporter: crate::engine::Reporter = Arc::new(move |event: &Event| {
            reporter(&SyncEvent::Copy {
                task: name.clone(),
                event: event.clone(),
            })
        });
        let copied = copy_images(&reader, destination, &copying, &options, &copy_reporter).await;
        let mut outcomes = outcomes(&copied);
        for (p, job) in pairs.iter_mut().zip(&jobs) {
            let Ok(job) = job else { continue };
            let key = (job.label.clone(), job.destination.to_string());
            p.outcome = outcomes
                .remove(&key)
                .unwrap_or_else(|| PairOutcome::Failed("not attempted".to_string()));
        }
        copied
    }
}

/// What the copy did with each job, by (label, destination): a pair's source and target.
fn outcomes(report: &CopyReport) -> HashMap<(String, String), PairOutcome> {
    report
        .images
        .iter()
        .map(|r| {
            let outcome = match &r.outcome {
                Ok(c) if c.already_present => PairOutcome::Present {
                    digest: c.digest.clone(),
                },
                Ok(c) => PairOutcome::Copied {
                    digest: c.digest.clone(),
                    stats: c.stats.clone(),
                },
                Err(e) => PairOutcome::Failed(e.to_string()),
            };
            ((r.image.clone(), r.relocated.clone()), outcome)
        })
        .collect()
}

/// The engine's job for a pair: read from the source by tag or pinned digest (for a
/// `platform`, the matching child of the source's index, by its digest), written under the
/// target tag, or by digest for a digest-only pin.
async fn job_for(task: &Task, pair: &Pair, source: &Registry) -> Result<ImageJob, String> {
    let reference =
        |domain: &str, remainder: String| Reference::in_registry(domain, &remainder).map_err(|e| e.to_string());
    let source_domain = domain_of(&task.source);
    let mut read = pair.source.clone();
    if let Some(platform) = &pair.platform {
        let manifest = source
            .find_manifest(&pair.source_repository, &pair.source)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{}: not found", pair.source_reference))?;
        if let ManifestContent::Index { manifests } = manifest.content().map_err(|e| e.to_string())? {
            let child = choose_child(&manifests, platform)
                .ok_or_else(|| format!("{}: the index has no {platform} image", pair.source_reference))?;
            read = ManifestSelector::Digest(child.digest.clone());
        } else {
            // not an index: copied as it is, by the digest just read
            read = ManifestSelector::Digest(manifest.digest.clone());
        }
    }
    let pinned: Option<Digest> = match &read {
        ManifestSelector::Digest(d) => Some(d.clone()),
        ManifestSelector::Tag(_) => None,
    };
    Ok(ImageJob {
        label: pair.source_reference.clone(),
        source: reference(source_domain, read.in_repository(&pair.source_repository))?,
        pinned,
        destination: reference(
            domain_of(&task.target),
            pair.target.in_repository(&pair.target_repository),
        )?,
    })
}
