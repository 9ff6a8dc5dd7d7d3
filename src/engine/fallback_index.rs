//! The referrers tag schema on a destination without the referrers API: the copied
//! referrers of each subject are listed in the index under its tag `sha256-<hex>`, merged
//! with what the tag lists already (entries kept, ours added once, each with its
//! `artifactType` and annotations), and written only if nobody changed the tag meanwhile.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use futures_util::stream::{self, StreamExt};

use super::destination::Destination;
use super::error::{CopyError, ImageError};
use super::groups::{Group, Outcome};
use crate::oci::{fallback_tag, merged_fallback_index, referrers_in, subject_of, Manifest, ReferrerEntry};
use crate::reference::{Digest, ManifestSelector};
use crate::registry::RegistryError;

/// Times the index is read and written again when another writer changed it meanwhile.
const MERGE_ATTEMPTS: usize = 4;

/// Lists the copied referrers that name a subject under the destination's fallback tag for
/// it, where the destination has no referrers API; subjects whose image failed are left
/// alone. Returns the bundle images whose referrers could not be listed.
pub(super) async fn index_referrers<D: Destination>(
    destination: &D,
    groups: &[Group],
    outcomes: &[Outcome],
    concurrency: usize,
) -> Vec<(usize, ImageError)> {
    // (repository, subject) → (root, referrer digests)
    let mut wanted: BTreeMap<(String, Digest), (usize, Vec<Digest>)> = BTreeMap::new();
    for (g, o) in groups.iter().zip(outcomes) {
        let (Some(of), Some(Ok(copied))) = (&g.referrer, o) else {
            continue;
        };
        if of.names_subject && matches!(outcomes[of.root], Some(Ok(_))) {
            let entry = wanted
                .entry((g.repository.clone(), of.subject.clone()))
                .or_insert_with(|| (of.root, Vec::new()));
            entry.1.push(copied.digest.clone());
        }
    }
    stream::iter(wanted)
        .map(|((repository, subject), (root, digests))| async move {
            let merged = merge(destination, &repository, &subject, &digests).await;
            merged.err().map(|e| {
                let error = ImageError::Push {
                    destination: destination.name().to_string(),
                    error: Arc::new(e),
                };
                let what = format!(
                    "listing the referrers of {subject} under tag {}",
                    fallback_tag(&subject)
                );
                (
                    root,
                    ImageError::Referrer {
                        what,
                        error: Box::new(error),
                    },
                )
            })
        })
        .buffer_unordered(concurrency)
        .filter_map(|failure| async move { failure })
        .collect()
        .await
}

/// Adds `digests` to the fallback index of `subject`, unless the destination lists referrers
/// itself or the index has them all. The tag is asked for again just before the write: if
/// another writer moved it since it was read, it is read and merged again.
async fn merge<D: Destination>(
    destination: &D,
    repository: &str,
    subject: &Digest,
    digests: &[Digest],
) -> Result<(), CopyError> {
    if destination.lists_referrers(repository, subject).await? {
        return Ok(());
    }
    let tag = ManifestSelector::Tag(fallback_tag(subject));
    let mut ours: Vec<ReferrerEntry> = Vec::new();
    for _ in 0..MERGE_ATTEMPTS {
        let existing = destination.find_manifest(repository, &tag).await?;
        let listed = listed_in(existing.as_ref())?;
        if digests.iter().all(|d| listed.contains(d)) {
            return Ok(());
        }
        for d in digests.iter().filter(|d| !listed.contains(*d)) {
            if !ours.iter().any(|e| e.digest == *d) {
                ours.push(entry_for(destination, repository, subject, d).await?);
            }
        }
        let Some(merged) = merged_fallback_index(existing.as_ref(), &ours)? else {
            continue;
        };
        let read = existing.as_ref().map(|m| &m.digest);
        if destination.manifest_digest(repository, &tag).await?.as_ref() != read {
            continue; // changed under us: read it again
        }
        match destination.put_manifest(repository, &tag, &merged).await {
            Ok(_) => {}
            // an entry already listed names a manifest the repository no longer holds
            Err(e) if names_unknown_manifest(&e) => {
                let pruned = without_missing(destination, repository, existing.as_ref()).await?;
                let merged = merged_fallback_index(Some(&pruned), &ours)?.unwrap_or(pruned);
                destination.put_manifest(repository, &tag, &merged).await?;
            }
            Err(e) => return Err(e),
        }
    }
    let listed = listed_in(destination.find_manifest(repository, &tag).await?.as_ref())?;
    match digests.iter().find(|d| !listed.contains(*d)) {
        None => Ok(()),
        Some(d) => Err(CopyError::ManifestNotOffered(d.clone())),
    }
}

fn listed_in(index: Option<&Manifest>) -> Result<HashSet<Digest>, CopyError> {
    Ok(match index {
        Some(index) => referrers_in(index)?.into_iter().map(|e| e.digest).collect(),
        None => HashSet::new(),
    })
}

/// The entry for a referrer the destination holds, read back from it; one that does not
/// name `subject` is not listed under its tag.
async fn entry_for<D: Destination>(
    destination: &D,
    repository: &str,
    subject: &Digest,
    digest: &Digest,
) -> Result<ReferrerEntry, CopyError> {
    let selector = ManifestSelector::Digest(digest.clone());
    let manifest = destination
        .find_manifest(repository, &selector)
        .await?
        .ok_or_else(|| CopyError::ManifestNotOffered(digest.clone()))?;
    if subject_of(&manifest)?.as_ref() != Some(subject) {
        return Err(CopyError::NotAReferrer {
            digest: digest.clone(),
            subject: subject.clone(),
        });
    }
    Ok(ReferrerEntry::of(&manifest)?)
}

/// A registry refusing an index that lists a manifest it does not hold.
fn names_unknown_manifest(e: &CopyError) -> bool {
    matches!(e, CopyError::Registry(RegistryError::Status { status: 400, message, .. })
        if message.contains("MANIFEST_BLOB_UNKNOWN") || message.contains("MANIFEST_UNKNOWN") || message.contains("blob unknown"))
}

/// `index` without the entries whose manifests the repository no longer holds.
async fn without_missing<D: Destination>(
    destination: &D,
    repository: &str,
    index: Option<&Manifest>,
) -> Result<Manifest, CopyError> {
    let mut gone = Vec::new();
    for e in index.map(referrers_in).transpose()?.unwrap_or_default() {
        let selector = ManifestSelector::Digest(e.digest.clone());
        if destination.manifest_digest(repository, &selector).await?.is_none() {
            tracing::warn!(
                "{repository}: the fallback index lists {}, which is gone; dropping it",
                e.digest
            );
            gone.push(e.digest);
        }
    }
    crate::oci::pruned_fallback_index(index, &gone).map_err(CopyError::from)
}
