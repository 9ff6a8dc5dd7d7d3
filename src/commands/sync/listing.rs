//! What a task's plan needs from its source (SYNC.md §5.1, §6): the catalog when a mapping
//! has a regex `from`, and the tags of each repository whose selectors need a listing.

use futures_util::stream::{self, StreamExt, TryStreamExt};

use crate::registry::Registry;
use crate::sync::config::Task;
use crate::sync::plan::{cap_catalog, needs_catalog, repositories_to_list, Listings};

/// Lists what `task` needs from `source`, `concurrency` tag lists at once. The warnings say
/// where `lister.maxItems` cut the catalog. An error names the listing and its cause.
pub(super) async fn list_task(
    task: &Task,
    source: &Registry,
    max_items: Option<usize>,
    concurrency: usize,
) -> Result<(Listings, Vec<String>), String> {
    let mut warnings = Vec::new();
    let catalog = match needs_catalog(task) {
        false => None,
        true => {
            let listed = source
                .list_catalog()
                .await
                .map_err(|e| format!("listing the repositories of {}: {e}", task.source.registry))?;
            let (kept, cut) = cap_catalog(listed, max_items);
            if let Some(total) = cut {
                warnings.push(format!(
                    "task '{}': lister.maxItems keeps the first {} of the {total} repositories of {}",
                    task.name,
                    kept.len(),
                    task.source.registry
                ));
            }
            Some(kept)
        }
    };
    let plain: Vec<&str> = task
        .mappings
        .iter()
        .filter(|m| !m.repositories.needs_catalog())
        .flat_map(|m| m.repositories.select(&[]))
        .collect();
    let repositories = repositories_to_list(task, catalog.as_deref());
    let tags = stream::iter(repositories)
        .map(|repository| async {
            let listed = source
                .existing_tags(&repository)
                .await
                .map_err(|e| format!("listing the tags of {}/{repository}: {e}", task.source.registry))?;
            match listed {
                Some(tags) => Ok((repository, tags)),
                // a repository named outright must be there; one from the catalog may be gone
                None if plain.contains(&repository.as_str()) => {
                    Err(format!("{}/{repository}: no such repository", task.source.registry))
                }
                None => Ok((repository, Vec::new())),
            }
        })
        .buffered(concurrency.max(1))
        .try_collect()
        .await?;
    Ok((Listings { catalog, tags }, warnings))
}
