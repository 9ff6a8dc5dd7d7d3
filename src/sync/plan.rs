//! A task's plan (SYNC.md §8): the pairs *source reference → target reference* its mappings
//! give over what was listed, identical pairs merged, and the task refused when two pairs would
//! write the same target tag differently or a mapped path is invalid.
//!
//! Pure: the caller lists the source's catalog (when [`needs_catalog`]) and the tags of
//! [`repositories_to_list`], then calls [`plan_task`]. A listing that fails refuses the task
//! there, before this is called.

use std::collections::BTreeMap;
use std::fmt;

use super::config::{Notice, NoticeLevel, Platform, Task};
use super::tags::{select_tags, Selected};
use crate::reference::ManifestSelector;

/// Whether the task has a regex `from`, so the source's catalog must be listed.
pub fn needs_catalog(task: &Task) -> bool {
    task.mappings.iter().any(|m| m.repositories.needs_catalog())
}

/// `lister.maxItems`: the first `max_items` catalog entries, and how many there were when the
/// cap cut (for the warning).
pub fn cap_catalog(mut catalog: Vec<String>, max_items: Option<usize>) -> (Vec<String>, Option<usize>) {
    match max_items {
        Some(n) if catalog.len() > n => {
            let total = catalog.len();
            catalog.truncate(n);
            (catalog, Some(total))
        }
        _ => (catalog, None),
    }
}

/// The source repositories whose tags must be listed, in first-use order: those a mapping
/// takes whose `tags` need a listing. `catalog` is needed when [`needs_catalog`].
pub fn repositories_to_list(task: &Task, catalog: Option<&[String]>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in &task.mappings {
        if !m.tags.needs_listing() {
            continue;
        }
        for repo in m.repositories.select(catalog.unwrap_or_default()) {
            if !out.iter().any(|r| r == repo) {
                out.push(repo.to_string());
            }
        }
    }
    out
}

/// What was listed for a task: the catalog (when needed) and each repository's tags.
#[derive(Debug, Clone, Default)]
pub struct Listings {
    /// The source's catalog entries, already capped by `lister.maxItems`.
    pub catalog: Option<Vec<String>>,
    /// Tags of each repository of [`repositories_to_list`].
    pub tags: BTreeMap<String, Vec<String>>,
}

/// One copy: a source manifest to a target repository and tag (or digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// Source repository path, e.g. `apps/web`.
    pub source_repository: String,
    /// What is read: a tag, or the digest of a pin.
    pub source: ManifestSelector,
    /// Target repository path.
    pub target_repository: String,
    /// What is written: a tag, or the digest of a digest-only pin.
    pub target: ManifestSelector,
    /// The mapping's `platform` (`None`: the whole image, index included).
    pub platform: Option<Platform>,
    /// The mappings (indexes) that produced this pair.
    pub mappings: Vec<usize>,
    /// `<source registry>/<repository>:<tag>` or `…@<digest>`, registry as written.
    pub source_reference: String,
    /// `<target registry>/<path>:<tag>` or `…@<digest>`.
    pub target_reference: String,
}

impl Pair {
    /// The `--dry-run` line: `TASK: SOURCE -> TARGET`.
    pub fn dry_run_line(&self, task: &str) -> String {
        format!("{task}: {} -> {}", self.source_reference, self.target_reference)
    }

    fn same_copy(&self, other: &Pair) -> bool {
        self.source_repository == other.source_repository
            && self.source == other.source
            && self.target_repository == other.target_repository
            && self.target == other.target
            && self.platform == other.platform
    }
}

/// Why a task is refused before it copies anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// A mapping produced a target path that is not valid (§5.2).
    #[error("task '{task}': mapping {mapping} (line {line}): {reason}")]
    InvalidTarget {
        /// The task's name.
        task: String,
        /// The mapping's index in the task.
        mapping: usize,
        /// Its line in the file.
        line: usize,
        /// Which repository and why (names the mapped path).
        reason: String,
    },
    /// Two pairs would write the same target tag from different sources or platforms.
    #[error("task '{task}': {first} and {second} would both be written to {target}")]
    Collision {
        /// The task's name.
        task: String,
        /// The target reference.
        target: String,
        /// One source (with its platform, if any).
        first: String,
        /// The other.
        second: String,
    },
    /// The caller did not supply a listing the task needs.
    #[error("task '{task}': {what} was not listed")]
    MissingListing {
        /// The task's name.
        task: String,
        /// The catalog, or a repository's tags.
        what: String,
    },
}

/// A planned task: its pairs in mapping, repository and tag order, and warnings.
#[derive(Debug, Clone, Default)]
pub struct TaskPlan {
    /// The copies, identical ones merged.
    pub pairs: Vec<Pair>,
    /// E.g. "matches nothing", for stderr.
    pub notices: Vec<Notice>,
}

fn describe_source(p: &Pair) -> String {
    match &p.platform {
        Some(platform) => format!("{} (platform {platform})", p.source_reference),
        None => p.source_reference.clone(),
    }
}

impl fmt::Display for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.source_reference, self.target_reference)
    }
}

/// Plans `task` over `listings` (SYNC.md §8).
pub fn plan_task(task: &Task, listings: &Listings) -> Result<TaskPlan, PlanError> {
    let missing = |what: String| PlanError::MissingListing {
        task: task.name.clone(),
        what,
    };
    let catalog: &[String] = match (&listings.catalog, needs_catalog(task)) {
        (Some(c), _) => c,
        (None, false) => &[],
        (None, true) => return Err(missing(format!("the catalog of {}", task.source.registry))),
    };
    let mut pairs: Vec<Pair> = Vec::new();
    let mut notices = Vec::new();
    for m in &task.mappings {
        let repositories = m.repositories.select(catalog);
        if repositories.is_empty() {
            notices.push(Notice {
                level: NoticeLevel::Verbose,
                message: format!(
                    "task '{}': mapping {} (line {}) matches no repository of {}",
                    task.name, m.index, m.line, task.source.registry
                ),
            });
        }
        for repo in repositories {
            let target_path =
                m.repositories
                    .map(&task.target.registry, repo)
                    .map_err(|e| PlanError::InvalidTarget {
                        task: task.name.clone(),
                        mapping: m.index,
                        line: m.line,
                        reason: e.to_string(),
                    })?;
            let listed = listings.tags.get(repo).map(Vec::as_slice);
            let selected = select_tags(&m.tags, listed)
                .map_err(|_| missing(format!("the tags of {}/{repo}", task.source.registry)))?;
            for s in selected {
                let pair = pair(task, repo, &target_path, &s, m.platform.clone(), m.index);
                match pairs.iter_mut().find(|p| p.same_copy(&pair)) {
                    Some(existing) => {
                        if !existing.mappings.contains(&m.index) {
                            existing.mappings.push(m.index);
                        }
                    }
                    None => pairs.push(pair),
                }
            }
        }
    }
    let mut by_target: BTreeMap<&str, &Pair> = BTreeMap::new();
    for p in &pairs {
        if matches!(p.target, ManifestSelector::Digest(_)) {
            continue;
        }
        if let Some(first) = by_target.insert(&p.target_reference, p) {
            return Err(PlanError::Collision {
                task: task.name.clone(),
                target: p.target_reference.clone(),
                first: describe_source(first),
                second: describe_source(p),
            });
        }
    }
    if pairs.is_empty() {
        notices.push(Notice {
            level: NoticeLevel::Warning,
            message: format!("task '{}': its mappings match nothing; nothing to copy", task.name),
        });
    }
    Ok(TaskPlan { pairs, notices })
}

fn pair(task: &Task, repo: &str, target_path: &str, s: &Selected, platform: Option<Platform>, mapping: usize) -> Pair {
    let source = s.source();
    let target = s.target();
    let source_reference = source.in_repository(&format!("{}/{repo}", task.source.registry));
    let target_reference = target.in_repository(&format!("{}/{target_path}", task.target.registry));
    Pair {
        source_repository: repo.to_string(),
        source,
        target_repository: target_path.to_string(),
        target,
        platform,
        mappings: vec![mapping],
        source_reference,
        target_reference,
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::parse_config;
    use super::*;

    fn task(mappings: &str) -> Task {
        let text = format!(
            "tasks:\n- name: t\n  source: {{registry: src.io:5000}}\n  target: {{registry: dst.io}}\n  mappings:\n{mappings}"
        );
        let mut c = parse_config(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        c.tasks.remove(0)
    }

    fn listings(catalog: Option<&[&str]>, tags: &[(&str, &[&str])]) -> Listings {
        Listings {
            catalog: catalog.map(|c| c.iter().map(|s| s.to_string()).collect()),
            tags: tags
                .iter()
                .map(|(r, t)| (r.to_string(), t.iter().map(|s| s.to_string()).collect()))
                .collect(),
        }
    }

    fn lines(plan: &TaskPlan) -> Vec<String> {
        plan.pairs.iter().map(|p| p.dry_run_line("t")).collect()
    }

    /// SYNC.md §5.2's worked examples as one task, with tags.
    #[test]
    fn sync_md_worked_examples() {
        let t = task(
            "  - {from: 'regex:apps/.*', to: mirror, tags: [v1]}\n  - {from: 'regex:tools/.*', to: 'regex:^/tools/(.*),ext/$1-tool', tags: [v1]}\n  - {from: apps/web, to: web-copy, tags: [v1]}\n  - {from: apps/web, tags: [v1]}\n  - {from: apps/web, to: 'regex:web,site', tags: [v1]}\n",
        );
        assert!(needs_catalog(&t));
        assert!(
            repositories_to_list(&t, Some(&["apps/api".to_string()])).is_empty(),
            "verbatim tags only"
        );
        let plan = plan_task(&t, &listings(Some(&["apps/api", "apps/web", "tools/cli"]), &[])).unwrap();
        assert_eq!(
            lines(&plan),
            [
                "t: src.io:5000/apps/api:v1 -> dst.io/mirror/apps/api:v1",
                "t: src.io:5000/apps/web:v1 -> dst.io/mirror/apps/web:v1",
                "t: src.io:5000/tools/cli:v1 -> dst.io/ext/cli-tool:v1",
                "t: src.io:5000/apps/web:v1 -> dst.io/web-copy:v1",
                "t: src.io:5000/apps/web:v1 -> dst.io/apps/web:v1",
                "t: src.io:5000/apps/web:v1 -> dst.io/apps/site:v1",
            ]
        );
        assert!(plan.notices.is_empty());
    }

    #[test]
    fn listings_needed_and_tags_selected() {
        let t = task("  - {from: 'regex:apps/.*', tags: ['semver: >=1.0.0']}\n  - {from: tools/cli}\n  - {from: apps/web, tags: [latest]}\n");
        let catalog = vec!["apps/api".to_string(), "apps/web".to_string(), "x/y".to_string()];
        assert_eq!(
            repositories_to_list(&t, Some(&catalog)),
            ["apps/api", "apps/web", "tools/cli"]
        );
        let l = listings(
            Some(&["apps/api", "apps/web", "x/y"]),
            &[
                ("apps/api", &["0.9", "1.0", "latest"]),
                ("apps/web", &["2.0"]),
                ("tools/cli", &["a", "b"]),
            ],
        );
        let plan = plan_task(&t, &l).unwrap();
        assert_eq!(
            lines(&plan),
            [
                "t: src.io:5000/apps/api:1.0 -> dst.io/apps/api:1.0",
                "t: src.io:5000/apps/web:2.0 -> dst.io/apps/web:2.0",
                "t: src.io:5000/tools/cli:a -> dst.io/tools/cli:a",
                "t: src.io:5000/tools/cli:b -> dst.io/tools/cli:b",
                "t: src.io:5000/apps/web:latest -> dst.io/apps/web:latest",
            ]
        );
        // a listing the plan needs but was not given
        let e = plan_task(&t, &listings(Some(&["apps/api"]), &[])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "task 't': the tags of src.io:5000/apps/api was not listed"
        );
        let e = plan_task(&t, &Listings::default()).unwrap_err();
        assert!(matches!(e, PlanError::MissingListing { .. }), "{e}");
    }

    #[test]
    fn identical_pairs_are_merged() {
        let t = task("  - {from: 'regex:apps/.*', tags: [latest]}\n  - {from: apps/web, tags: [latest, latest]}\n  - {from: apps/web, to: apps/web/, tags: ['regex: lat.*']}\n");
        let plan = plan_task(&t, &listings(Some(&["apps/web"]), &[("apps/web", &["latest", "1.0"])])).unwrap();
        assert_eq!(
            lines(&plan),
            ["t: src.io:5000/apps/web:latest -> dst.io/apps/web:latest"]
        );
        assert_eq!(plan.pairs[0].mappings, [0, 1, 2]);
    }

    #[test]
    fn collisions_refuse_the_task() {
        // two sources to one target tag
        let t = task("  - {from: apps/a, to: same, tags: [v1]}\n  - {from: apps/b, to: same, tags: [v1]}\n");
        let e = plan_task(&t, &Listings::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "task 't': src.io:5000/apps/a:v1 and src.io:5000/apps/b:v1 would both be written to dst.io/same:v1"
        );
        // one source, two platforms, one target (dregsy would let one overwrite the other)
        let t = task("  - {from: library/busybox, to: bb, tags: [latest], platform: linux/arm64/v8}\n  - {from: library/busybox, to: bb, tags: [latest], platform: linux/amd64}\n");
        let e = plan_task(&t, &Listings::default()).unwrap_err();
        assert!(
            e.to_string()
                .contains("(platform linux/arm64/v8) and src.io:5000/library/busybox:latest (platform linux/amd64)"),
            "{e}"
        );
        // dregsy's platform fixture maps them to different targets: fine
        let t = task("  - {from: library/busybox, to: bb-arm64, tags: [latest], platform: linux/arm64/v8}\n  - {from: library/busybox, to: bb-amd64, tags: [latest], platform: linux/amd64}\n");
        let plan = plan_task(&t, &Listings::default()).unwrap();
        assert_eq!(plan.pairs.len(), 2);
        assert_eq!(plan.pairs[0].platform.as_ref().unwrap().to_string(), "linux/arm64/v8");
        // a tag pin and a tag to the same target tag are different sources
        let d = format!("sha256:{}", "a".repeat(64));
        let t = task(&format!("  - {{from: apps/a, tags: ['v1@{d}', v1]}}\n"));
        assert!(matches!(
            plan_task(&t, &Listings::default()),
            Err(PlanError::Collision { .. })
        ));
        // digest-only targets never collide
        let t = task(&format!(
            "  - {{from: apps/a, to: same, tags: ['{d}']}}\n  - {{from: apps/b, to: same, tags: ['{d}']}}\n"
        ));
        let plan = plan_task(&t, &Listings::default()).unwrap();
        assert_eq!(
            lines(&plan),
            [
                format!("t: src.io:5000/apps/a@{d} -> dst.io/same@{d}"),
                format!("t: src.io:5000/apps/b@{d} -> dst.io/same@{d}"),
            ]
        );
    }

    /// SYNC.md §6's digest pin example: `stable@sha256:…` is read by digest, written as :stable.
    #[test]
    fn pins_read_by_digest() {
        let d1 = format!("sha256:{}", "1".repeat(64));
        let d2 = format!("sha256:{}", "2".repeat(64));
        let t = task(&format!("  - {{from: apps/web, tags: ['stable@{d1}', '{d2}']}}\n"));
        let plan = plan_task(&t, &Listings::default()).unwrap();
        assert_eq!(
            lines(&plan),
            [
                format!("t: src.io:5000/apps/web@{d2} -> dst.io/apps/web@{d2}"),
                format!("t: src.io:5000/apps/web@{d1} -> dst.io/apps/web:stable"),
            ]
        );
        assert_eq!(plan.pairs[1].source, ManifestSelector::Digest(d1.parse().unwrap()));
        assert_eq!(plan.pairs[1].target, ManifestSelector::Tag("stable".into()));
    }

    #[test]
    fn invalid_targets_refuse_the_task() {
        let t = task("  - {from: 'regex:apps/.*', to: 'regex:^/apps/(.*),Apps/$1'}\n");
        let e = plan_task(&t, &listings(Some(&["apps/web"]), &[("apps/web", &["1"])])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "task 't': mapping 0 (line 6): repository \"apps/web\" maps to \"Apps/web\", which is not a valid repository path: path component \"Apps\" must be lower case"
        );
    }

    #[test]
    fn nothing_to_do_is_a_warning() {
        let t = task("  - {from: 'regex:nope/.*'}\n");
        let plan = plan_task(&t, &listings(Some(&["apps/web"]), &[])).unwrap();
        assert!(plan.pairs.is_empty());
        let levels: Vec<NoticeLevel> = plan.notices.iter().map(|n| n.level).collect();
        assert_eq!(levels, [NoticeLevel::Verbose, NoticeLevel::Warning]);
        assert!(plan.notices[1].message.contains("match nothing"));
        // a repository without tags
        let t = task("  - {from: apps/web}\n");
        let plan = plan_task(&t, &listings(None, &[("apps/web", &[])])).unwrap();
        assert!(plan.pairs.is_empty() && plan.notices.len() == 1);
    }

    #[test]
    fn catalog_cap() {
        let c: Vec<String> = (0..5).map(|i| format!("r{i}")).collect();
        assert_eq!(cap_catalog(c.clone(), None), (c.clone(), None));
        assert_eq!(cap_catalog(c.clone(), Some(5)), (c.clone(), None));
        assert_eq!(cap_catalog(c.clone(), Some(2)), (c[..2].to_vec(), Some(5)));
    }
}
