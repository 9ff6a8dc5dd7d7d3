//! The copy: every job from its source to the destination, digests kept.
//!
//! Phases, so a bad bundle pushes nothing and every blob crosses the wire once:
//! 1. resolve every image (manifests only); skip those the destination already holds; an image
//!    whose source does not match its pinned digest, or two images claiming one tag with
//!    different content, fail here, before anything is pushed; then find and resolve what
//!    refers to each manifest ([`super::referrers`]), copied below like more images;
//! 2. blobs: every distinct blob placed in every repository that needs it ([`super::blobs`]);
//! 3. manifests, children before their index, each (repository, tag or digest) once; then the
//!    destination is asked for each pushed reference to confirm the digest; referrers that
//!    name a subject are listed under its fallback tag where the destination has no
//!    referrers API.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use futures_util::stream::{self, StreamExt};

use super::blob_ledger::BlobLedger;
use super::blobs::place_blobs;
use super::destination::Destination;
use super::error::{CopyError, ImageError};
use super::fallback_index::index_referrers;
use super::groups::{group, present, resolve, Group, Outcome, Resolved};
use super::job::ImageJob;
use super::manifests::{push_batches, read_batch, ManifestPushes};
use super::placement::{BlobPlacements, Totals, WantedBlob};
use super::referrers::{discover_referrers, referrer_events};
use super::report::{BlobOutcome, CopiedImage, CopyReport, Event, ImageResult, ImageStats, Reporter};
use super::source::Source;
use crate::limits::MANIFEST_BATCH_BUDGET;
use crate::oci::{ImageTree, Manifest, ManifestRef};
use crate::reference::{Digest, ManifestSelector, Reference};
use crate::registry::RetryPolicy;

/// Manifest lookups (resolving images, finding their referrers) in flight at least, whatever
/// `--concurrency` allows for transfers; each registry still bounds its own requests.
const MANIFEST_LOOKUPS: usize = 32;

/// How the engine copies.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Transfers (and manifest reads) in flight.
    pub concurrency: usize,
    /// How often a failed blob transfer is tried in all.
    pub retry: RetryPolicy,
    /// Manifest bytes read from the source for one batch of pushes.
    pub manifest_batch_budget: usize,
    /// Whether what refers to each copied manifest (signatures, attestations, SBOMs) is
    /// copied with it.
    pub referrers: bool,
    /// Whether one image that cannot be resolved stops every other (a bundle: its images go
    /// together); off, each image is copied or fails on its own (sync's pairs).
    pub all_or_nothing: bool,
    /// Blobs placed by earlier copies of the same run, which this copy mounts from, and where
    /// it records its own (sync's tasks, one after another).
    pub ledger: Option<Arc<BlobLedger>>,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            concurrency: 8,
            retry: RetryPolicy::default(),
            manifest_batch_budget: MANIFEST_BATCH_BUDGET,
            referrers: true,
            all_or_nothing: true,
            ledger: None,
        }
    }
}

/// Copies every job from `source` to `destination`. Never fails as a whole: the report says
/// what happened to each image.
pub async fn copy_images<S: Source, D: Destination>(
    source: &S,
    destination: Arc<D>,
    jobs: &[ImageJob],
    options: &CopyOptions,
    reporter: &Reporter,
) -> CopyReport {
    let concurrency = options.concurrency.max(1);
    // manifest round trips are small: many at once, so every image's start together
    let lookups = concurrency.max(MANIFEST_LOOKUPS);
    let mut groups = group(jobs);
    let resolving = stream::iter(&groups)
        .map(|g| resolve(source, destination.as_ref(), g))
        .buffered(lookups)
        .collect::<Vec<Result<Resolved, ImageError>>>();
    let origins: Vec<&Reference> = groups.iter().map(|g| &g.job().source).collect();
    let preparing = async {
        if options.referrers {
            source.prepare_referrers(&origins).await
        }
    };
    let (mut resolved, ()) = futures_util::join!(resolving, preparing);
    let mut outcomes = report_resolved(&groups, &resolved, reporter);
    let any_failed = |outcomes: &[Outcome]| outcomes.iter().any(|o| matches!(o, Some(Err(_))));
    if options.referrers && !(options.all_or_nothing && any_failed(&outcomes)) {
        let found = discover_referrers(source, destination.as_ref(), &groups, &resolved, lookups).await;
        for (root, error) in found.failures {
            outcomes[root] = Some(Err(error));
        }
        outcomes.extend(found.resolved.iter().map(|r| match r {
            Ok(Resolved::Present(digest, _)) => Some(Ok(present(digest))),
            _ => None,
        }));
        groups.extend(found.groups);
        resolved.extend(found.resolved);
    }
    if options.all_or_nothing && any_failed(&outcomes) {
        // nothing is pushed for a bundle whose images do not all resolve
        for o in outcomes.iter_mut().filter(|o| o.is_none()) {
            *o = Some(Err(ImageError::NotAttempted));
        }
        return finish(&groups, outcomes, Totals::default(), reporter);
    }

    // an image that failed already (or whose root did) is not copied: its blobs neither
    let failed = |i: usize| {
        let root = groups[i].referrer.as_ref().map_or(i, |of| of.root);
        matches!(outcomes[i], Some(Err(_))) || matches!(outcomes[root], Some(Err(_)))
    };
    let copying: Vec<bool> = (0..groups.len()).map(|i| !failed(i)).collect();
    let placements = Arc::new(BlobPlacements::new(destination.clone(), reporter.clone()));
    lend_present_blobs(destination.as_ref(), &placements, &groups, &resolved).await;
    let wanted = wanted_blobs(source, destination.registry_domain(), &groups, &resolved, &copying);
    let ledger = options.ledger.as_deref().zip(destination.registry_domain());
    if let Some((ledger, registry)) = ledger {
        for w in &wanted {
            if let Some(holder) = ledger.holder(registry, w.digest()) {
                placements.note_present(&holder, [w.digest()]);
            }
        }
    }
    let placed: Vec<(Digest, Vec<String>)> = match ledger {
        Some(_) => wanted
            .iter()
            .map(|w| (w.digest().clone(), w.repositories.clone()))
            .collect(),
        None => Vec::new(),
    };
    let failed_blobs = place_blobs(source, &placements, wanted, concurrency, &options.retry).await;
    if let Some((ledger, registry)) = ledger {
        for (digest, repositories) in placed.iter().filter(|(d, _)| !failed_blobs.contains_key(d)) {
            for repository in repositories {
                ledger.record(registry, repository, digest);
            }
        }
    }
    if let Err(e) = source.finish_reading().await {
        // what the source holds beyond what was seen may belong to any image
        let e = Arc::new(e);
        for o in outcomes.iter_mut() {
            *o = Some(Err(ImageError::Source(e.clone())));
        }
        return finish(&groups, outcomes, placements.totals(), reporter);
    }

    let pushes = ManifestPushes::new(destination.clone());
    let to_push: Vec<Option<&ImageTree>> = resolved
        .iter()
        .zip(&copying)
        .map(|(r, copying)| match r {
            Ok(Resolved::Copy(tree))
                if *copying && !tree.blobs.iter().any(|b| failed_blobs.contains_key(&b.digest)) =>
            {
                Some(tree)
            }
            _ => None,
        })
        .collect();
    let read = |batch: Option<&Range<usize>>| {
        let images = batch.map_or(&groups[..0], |b| &groups[b.clone()]).iter();
        let trees = batch.map_or(&to_push[..0], |b| &to_push[b.clone()]);
        let images = images.zip(trees).filter_map(|(g, t)| Some(((*t)?, &g.job().source)));
        read_batch(source, images)
    };
    // one batch is pushed while the next is read, so the destination never waits on a read;
    // referrers come in batches of their own, after the images they refer to
    let roots = groups.iter().take_while(|g| g.referrer.is_none()).count();
    let budget = options.manifest_batch_budget as u64;
    let mut batches = push_batches(&to_push[..roots], budget);
    let referrer_batches = push_batches(&to_push[roots..], budget);
    batches.extend(referrer_batches.into_iter().map(|b| b.start + roots..b.end + roots));
    let mut pushed: Vec<Outcome> = Vec::with_capacity(groups.len());
    let mut manifests = read(batches.first()).await;
    for (k, batch) in batches.iter().enumerate() {
        let push = stream::iter(batch.clone())
            .map(|i| {
                let r = if copying[i] {
                    &resolved[i]
                } else {
                    &Err(ImageError::NotAttempted)
                };
                push_group(destination.name(), &pushes, &failed_blobs, &manifests, &groups[i], r)
            })
            .buffered(concurrency)
            .collect::<Vec<Outcome>>();
        let (batch_pushed, next) = futures_util::join!(push, read(batches.get(k + 1)));
        pushed.extend(batch_pushed);
        manifests = next;
    }
    for (o, p) in outcomes.iter_mut().zip(pushed) {
        if p.is_some() {
            *o = p;
        }
    }
    for (root, error) in index_referrers(destination.as_ref(), &groups, &outcomes, concurrency).await {
        outcomes[root] = Some(Err(error));
    }
    charge_blobs(&placements, &groups, &resolved, &mut outcomes);
    let totals = placements.totals();
    finish(&groups, outcomes, totals, reporter)
}

/// Reports what resolving found and turns failures (and tag collisions) into outcomes.
fn report_resolved(groups: &[Group], resolved: &[Result<Resolved, ImageError>], reporter: &Reporter) -> Vec<Outcome> {
    let mut outcomes: Vec<Outcome> = vec![None; groups.len()];
    for ((g, r), outcome) in groups.iter().zip(resolved).zip(outcomes.iter_mut()) {
        match r {
            Ok(Resolved::Present(digest, _)) => {
                *outcome = Some(Ok(present(digest)));
                for m in &g.members {
                    reporter(&Event::ImageAlreadyPresent {
                        image: m.label.clone(),
                        relocated: m.destination.to_string(),
                        digest: digest.to_string(),
                    });
                }
            }
            Ok(Resolved::Copy(tree)) => {
                for m in &g.members {
                    reporter(&Event::ImageResolved {
                        image: m.label.clone(),
                        relocated: m.destination.to_string(),
                        digest: tree.top.digest.to_string(),
                        blobs: tree.blobs.len(),
                        bytes: tree.total_blob_bytes(),
                    });
                }
            }
            Err(e) => *outcome = Some(Err(e.clone())),
        }
    }
    for (i, e) in tag_collisions(groups, resolved) {
        outcomes[i] = Some(Err(ImageError::Conflict(e)));
    }
    outcomes
}

/// Groups that would push different manifests under one (repository, tag).
fn tag_collisions(groups: &[Group], resolved: &[Result<Resolved, ImageError>]) -> Vec<(usize, Arc<CopyError>)> {
    let digest_of = |r: &Result<Resolved, ImageError>| match r {
        Ok(Resolved::Present(d, _)) => Some(d.clone()),
        Ok(Resolved::Copy(t)) => Some(t.top.digest.clone()),
        Err(_) => None,
    };
    let mut first: HashMap<(&str, &ManifestSelector), (usize, Digest)> = HashMap::new();
    let mut collisions = Vec::new();
    for (i, (g, r)) in groups.iter().zip(resolved).enumerate() {
        let (ManifestSelector::Tag(_), Some(digest)) = (&g.push, digest_of(r)) else {
            continue;
        };
        match first.get(&(g.repository.as_str(), &g.push)) {
            Some((j, other)) if *other != digest => {
                let e = Arc::new(CopyError::TagCollision {
                    reference: format!(
                        "{}/{}",
                        g.job().destination.domain(),
                        g.push.in_repository(&g.repository)
                    ),
                    first: other.clone(),
                    second: digest.clone(),
                });
                collisions.push((*j, e.clone()));
                collisions.push((i, e));
            }
            Some(_) => {}
            None => {
                first.insert((g.repository.as_str(), &g.push), (i, digest));
            }
        }
    }
    collisions
}

/// Images the destination already holds lend their blobs to the others (by mount). Their
/// trees are read from the destination only when something is to be copied at all.
async fn lend_present_blobs<D: Destination>(
    destination: &D,
    placements: &BlobPlacements<D>,
    groups: &[Group],
    resolved: &[Result<Resolved, ImageError>],
) {
    let anything_to_copy = resolved.iter().any(|r| matches!(r, Ok(Resolved::Copy(_))));
    for (g, r) in groups.iter().zip(resolved) {
        let tree = match r {
            Ok(Resolved::Present(_, Some(tree))) => Some(tree.clone()),
            Ok(Resolved::Present(digest, None)) if anything_to_copy => {
                // best effort: without the tree its blobs are simply not offered for mounting
                let selector = ManifestSelector::Digest(digest.clone());
                destination.read_tree(&g.repository, &selector).await.ok()
            }
            _ => None,
        };
        if let Some(tree) = tree {
            placements.note_present(&g.repository, tree.blobs.iter().map(|b| &b.digest));
        }
    }
}

/// Each distinct blob of the images to copy, with every repository that needs it.
fn wanted_blobs<S: Source>(
    source: &S,
    registry: Option<&str>,
    groups: &[Group],
    resolved: &[Result<Resolved, ImageError>],
    copying: &[bool],
) -> Vec<WantedBlob> {
    let mut wanted: Vec<WantedBlob> = Vec::new();
    let mut index: HashMap<Digest, usize> = HashMap::new();
    for ((g, r), _) in groups
        .iter()
        .zip(resolved)
        .zip(copying)
        .filter(|(_, copying)| **copying)
    {
        let Ok(Resolved::Copy(tree)) = r else {
            continue;
        };
        let lender = registry.and_then(|domain| source.repository_on(g.job(), domain));
        for d in &tree.blobs {
            let i = *index.entry(d.digest.clone()).or_insert_with(|| {
                wanted.push(WantedBlob {
                    descriptor: d.clone(),
                    repositories: Vec::new(),
                    origins: Vec::new(),
                    mount_from: Vec::new(),
                });
                wanted.len() - 1
            });
            let w = &mut wanted[i];
            if !w.repositories.contains(&g.repository) {
                w.repositories.push(g.repository.clone());
            }
            w.origins.push(g.job().source.clone());
            if let Some(r) = &lender {
                if !w.mount_from.contains(r) {
                    w.mount_from.push(r.clone());
                }
            }
        }
    }
    wanted
}

async fn push_group<D: Destination>(
    destination_name: &str,
    pushes: &ManifestPushes<D>,
    failed_blobs: &HashMap<Digest, Arc<CopyError>>,
    manifests: &Result<HashMap<Digest, Manifest>, Arc<CopyError>>,
    g: &Group,
    r: &Result<Resolved, ImageError>,
) -> Outcome {
    let Ok(Resolved::Copy(tree)) = r else {
        return None;
    };
    if let Some((digest, error)) = tree
        .blobs
        .iter()
        .find_map(|b| failed_blobs.get(&b.digest).map(|e| (&b.digest, e)))
    {
        return Some(Err(ImageError::Blob {
            digest: digest.clone(),
            destination: destination_name.to_string(),
            error: error.clone(),
        }));
    }
    let bytes_of = |m: &ManifestRef| match manifests {
        Ok(read) => read
            .get(&m.digest)
            .cloned()
            .ok_or_else(|| Arc::new(CopyError::ManifestNotOffered(m.digest.clone()))),
        Err(e) => Err(e.clone()),
    };
    let read = bytes_of(&tree.top).and_then(|top| {
        let children = tree.children.iter().map(bytes_of).collect::<Result<Vec<_>, _>>()?;
        Ok((top, children))
    });
    let (top, children) = match read {
        Ok(read) => read,
        Err(e) => return Some(Err(ImageError::Source(e))),
    };
    Some(
        pushes
            .push_image(&g.repository, &g.push, &top, &children)
            .await
            .map(|manifests_pushed| CopiedImage {
                digest: tree.top.digest.clone(),
                already_present: false,
                stats: ImageStats {
                    manifests_pushed,
                    ..Default::default()
                },
                referrers: Vec::new(),
            })
            .map_err(|error| ImageError::Push {
                destination: destination_name.to_string(),
                error,
            }),
    )
}

/// What each copied image cost: a blob placed in a repository is charged to the first image
/// that needed it there; later ones count it as shared.
fn charge_blobs<D: Destination>(
    placements: &BlobPlacements<D>,
    groups: &[Group],
    resolved: &[Result<Resolved, ImageError>],
    outcomes: &mut [Outcome],
) {
    let mut charged: HashSet<(&str, &Digest)> = HashSet::new();
    for ((g, r), outcome) in groups.iter().zip(resolved).zip(outcomes.iter_mut()) {
        let (Ok(Resolved::Copy(tree)), Some(Ok(copied))) = (r, outcome) else {
            continue;
        };
        let stats = &mut copied.stats;
        for b in &tree.blobs {
            if !charged.insert((g.repository.as_str(), &b.digest)) {
                stats.blobs_shared += 1;
                continue;
            }
            match placements.outcome(&g.repository, &b.digest) {
                Some(BlobOutcome::Uploaded { bytes }) => {
                    stats.blobs_uploaded += 1;
                    stats.bytes_sent += bytes;
                }
                Some(BlobOutcome::Mounted { .. }) => stats.blobs_mounted += 1,
                Some(BlobOutcome::Present) | None => stats.blobs_present += 1,
            }
        }
    }
}

fn finish(groups: &[Group], mut outcomes: Vec<Outcome>, totals: Totals, reporter: &Reporter) -> CopyReport {
    referrer_events(groups, &mut outcomes, reporter);
    let mut images = Vec::new();
    for (g, o) in groups.iter().zip(outcomes) {
        if g.referrer.is_some() {
            continue;
        }
        let o = o.unwrap_or(Err(ImageError::NotAttempted));
        for m in &g.members {
            let relocated = m.destination.to_string();
            match &o {
                Ok(c) if !c.already_present => reporter(&Event::ImageCopied {
                    image: m.label.clone(),
                    relocated: relocated.clone(),
                    digest: c.digest.to_string(),
                    stats: c.stats.clone(),
                }),
                Ok(_) => {}
                Err(e) => reporter(&Event::ImageFailed {
                    image: m.label.clone(),
                    relocated: relocated.clone(),
                    error: e.clone(),
                }),
            }
            images.push(ImageResult {
                image: m.label.clone(),
                relocated,
                outcome: o.clone(),
            });
        }
    }
    CopyReport {
        images,
        bytes_sent: totals.bytes_uploaded,
        blobs_uploaded: totals.uploaded,
        blobs_mounted: totals.mounted,
    }
}
