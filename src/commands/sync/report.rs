//! What a sync run did, task by task and pair by pair, and what it says as it goes.

use crate::engine::{Event, ImageStats};
use crate::reference::Digest;
use crate::sync::config::Notice;
use crate::sync::plan::Pair;

/// Something a sync run says as it goes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SyncEvent {
    /// About the configuration or a task (keys that do nothing here, a capped catalog, a
    /// mapping matching nothing): a warning, or a note for `-v`.
    Notice(Notice),
    /// A pair of a task, planned (before the task copies anything).
    Planned {
        /// The task's name.
        task: String,
        /// The pair.
        pair: Pair,
    },
    /// A task could not be planned (its listing failed, or its plan was refused): none of
    /// its pairs is copied.
    TaskFailed {
        /// The task's name.
        task: String,
        /// Why.
        error: String,
    },
    /// A pair failed before its copy began (its source has no image for its platform, say).
    PairFailed {
        /// The task's name.
        task: String,
        /// The pair.
        pair: Pair,
        /// Why.
        error: String,
    },
    /// An event of the copy of a task's pairs: `image` is a pair's source reference and
    /// `relocated` its target reference.
    Copy {
        /// The task's name.
        task: String,
        /// The engine's event.
        event: Event,
    },
}

/// What became of one pair.
#[derive(Debug, Clone)]
pub enum PairOutcome {
    /// Planned only (`--dry-run`).
    Planned,
    /// Copied and verified.
    Copied {
        /// The digest the target now holds.
        digest: Digest,
        /// What it cost.
        stats: ImageStats,
    },
    /// The target held it already: nothing was written.
    Present {
        /// Its digest.
        digest: Digest,
    },
    /// It could not be copied.
    Failed(String),
}

/// One pair and what became of it.
#[derive(Debug, Clone)]
pub struct PairReport {
    /// The pair as planned.
    pub pair: Pair,
    /// Its outcome.
    pub outcome: PairOutcome,
}

/// One task of the run.
#[derive(Debug, Clone)]
pub struct TaskReport {
    /// Its name.
    pub name: String,
    /// Why it could not be planned, when it could not (then it has no pairs).
    pub failure: Option<String>,
    /// Its pairs.
    pub pairs: Vec<PairReport>,
}

/// The whole run: every selected task, in file order.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    /// The tasks.
    pub tasks: Vec<TaskReport>,
    /// Blob bytes sent, each upload counted once.
    pub bytes_sent: u64,
    /// Blobs uploaded.
    pub blobs_uploaded: usize,
    /// Blobs mounted.
    pub blobs_mounted: usize,
}

impl SyncReport {
    /// Whether every task planned and every pair is in its target (or, in a dry run, was
    /// planned).
    pub fn succeeded(&self) -> bool {
        self.failures().next().is_none()
    }

    fn pairs(&self) -> impl Iterator<Item = &PairReport> {
        self.tasks.iter().flat_map(|t| &t.pairs)
    }

    /// Pairs planned in all.
    pub fn pair_count(&self) -> usize {
        self.pairs().count()
    }

    /// Pairs copied.
    pub fn copied(&self) -> usize {
        self.pairs()
            .filter(|p| matches!(p.outcome, PairOutcome::Copied { .. }))
            .count()
    }

    /// Pairs the target held already.
    pub fn already_present(&self) -> usize {
        self.pairs()
            .filter(|p| matches!(p.outcome, PairOutcome::Present { .. }))
            .count()
    }

    /// Every failure: each task that did not plan, then each pair that failed, with its task.
    pub fn failures(&self) -> impl Iterator<Item = (&str, Option<&Pair>, &str)> {
        let tasks = self
            .tasks
            .iter()
            .filter_map(|t| Some((t.name.as_str(), None, t.failure.as_deref()?)));
        let pairs = self.tasks.iter().flat_map(|t| {
            t.pairs.iter().filter_map(move |p| match &p.outcome {
                PairOutcome::Failed(e) => Some((t.name.as_str(), Some(&p.pair), e.as_str())),
                _ => None,
            })
        });
        tasks.chain(pairs)
    }
}
