//! The copy: every image of the plan from its source to the target registry, digests kept.
//!
//! Phases, so a bad bundle pushes nothing and every blob crosses the wire once:
//! 1. resolve every image (manifests only); skip those the target already holds; an image whose
//!    source does not match its pinned digest fails here, before anything is pushed;
//! 2. blobs: each distinct blob is checked (HEAD) in every target repository that needs it,
//!    mounted where the target registry already has it, else streamed once with its digest
//!    checked before the upload is committed, then mounted into the other repositories;
//! 3. manifests, children before their index, by tag or by digest; then the target is asked
//!    for each pushed reference to confirm the digest.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::stream::{self, StreamExt};

use super::plan::{ManifestSelector, Plan, PlannedImage};
use super::remote::tree_in_registry;
use super::report::{BlobOutcome, CopiedImage, CopyReport, Event, ImageResult, ImageStats, Reporter};
use super::sink::BlobSink;
use super::source::{ImageSource, ImageTree, WantedBlob};
use crate::reference::Digest;
use crate::registry::{ManifestError, Registries, Registry, RegistryError};

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{0}")]
    Source(String),
    #[error("blob {digest}: {detail}")]
    Corrupt { digest: Digest, detail: String },
    #[error("the bundle pins {expected}, but the source's manifest is {actual}; the source does not match the bundle")]
    PinMismatch { expected: Digest, actual: Digest },
    #[error("after the push the target answers {found} for {reference}, not {expected}")]
    NotVerified {
        reference: String,
        expected: Digest,
        found: String,
    },
}

impl CopyError {
    /// Whether the whole transfer may succeed when tried again.
    pub fn is_retryable(&self) -> bool {
        matches!(self, CopyError::Registry(e) if e.is_retryable())
    }
}

/// Images that go to the same place the same way are copied once.
struct Group<'p> {
    members: Vec<&'p PlannedImage>,
    repository: String,
    push: ManifestSelector,
}

impl Group<'_> {
    fn image(&self) -> &PlannedImage {
        self.members[0]
    }
}

fn push_selector(image: &PlannedImage) -> ManifestSelector {
    match (image.push_tag(), &image.expected_digest) {
        (Some(tag), _) => ManifestSelector::Tag(tag.to_string()),
        (None, Some(d)) => ManifestSelector::Digest(d.clone()),
        (None, None) => unreachable!("an untagged image always has a digest"),
    }
}

enum Resolved {
    /// The target holds it; its tree, when known, tells which blobs its repository has.
    Present(Digest, Option<ImageTree>),
    Copy(ImageTree),
}

/// Copies every image of `plan` from `source` to the registry of the plan's prefix.
pub async fn copy_images<S: ImageSource>(
    source: Arc<S>,
    registries: &Registries,
    plan: &Plan,
    concurrency: usize,
    reporter: Reporter,
) -> CopyReport {
    let mut groups: Vec<Group> = Vec::new();
    for image in &plan.images {
        let repository = image.relocated.path().to_string();
        let push = push_selector(image);
        match groups.iter_mut().find(|g| {
            g.repository == repository && g.push == push && g.image().source_selector() == image.source_selector()
        }) {
            Some(g) => g.members.push(image),
            None => groups.push(Group {
                members: vec![image],
                repository,
                push,
            }),
        }
    }
    let target_domain = plan.images[0].relocated.domain().to_string();
    let target = registries.get(&target_domain);

    // Phase 1: resolve.
    let resolved: Vec<Result<Resolved, CopyError>> = stream::iter(groups.iter())
        .map(|g| resolve(source.as_ref(), &target, g))
        .buffered(concurrency)
        .collect()
        .await;
    let mut outcome: Vec<Option<Result<CopiedImage, String>>> = vec![None; groups.len()];
    let mut any_failed = false;
    for (i, r) in resolved.iter().enumerate() {
        let g = &groups[i];
        match r {
            Ok(Resolved::Present(digest, _)) => {
                outcome[i] = Some(Ok(CopiedImage {
                    digest: digest.clone(),
                    already_present: true,
                    stats: ImageStats::default(),
                }));
                for m in &g.members {
                    reporter(&Event::ImageAlreadyPresent {
                        image: m.raw.clone(),
                        relocated: m.relocated.to_string(),
                        digest: digest.to_string(),
                    });
                }
            }
            Ok(Resolved::Copy(tree)) => {
                for m in &g.members {
                    reporter(&Event::ImageResolved {
                        image: m.raw.clone(),
                        relocated: m.relocated.to_string(),
                        digest: tree.top.digest.to_string(),
                        blobs: tree.blobs.len(),
                        bytes: tree.total_blob_bytes(),
                    });
                }
            }
            Err(e) => {
                any_failed = true;
                outcome[i] = Some(Err(describe_failure(g.image(), "reading the source", e)));
            }
        }
    }
    if any_failed {
        // nothing is pushed for a bundle whose images do not all resolve
        for o in outcome.iter_mut().filter(|o| o.is_none()) {
            *o = Some(Err(
                "not copied: another image of the bundle failed before any push".to_string()
            ));
        }
        return finish(&groups, outcome, 0, &reporter);
    }

    // Phase 2: blobs. What images already in the target hold can be mounted from them.
    let sink = Arc::new(BlobSink::new(target.clone(), reporter.clone()));
    let anything_to_copy = resolved.iter().any(|r| matches!(r, Ok(Resolved::Copy(_))));
    let target_ref: &Registry = &target;
    let present: Vec<(&Group, Option<ImageTree>)> = stream::iter(groups.iter().zip(&resolved))
        .filter_map(|(g, r)| async move {
            match r {
                Ok(Resolved::Present(_, Some(tree))) => Some((g, Some(tree.clone()))),
                // skipped without reading its manifests: read them from the target, where they
                // are, but only when their blobs can save an upload
                Ok(Resolved::Present(digest, None)) if anything_to_copy => {
                    let selector = ManifestSelector::Digest(digest.clone());
                    // best effort: without the tree its blobs are simply not offered for mounting
                    Some((g, tree_in_registry(target_ref, &g.repository, &selector).await.ok()))
                }
                _ => None,
            }
        })
        .collect()
        .await;
    for (g, tree) in present {
        if let Some(tree) = tree {
            sink.note_present(&g.repository, tree.blobs.iter().map(|b| &b.digest));
        }
    }
    let mut wanted: Vec<WantedBlob> = Vec::new();
    let mut index: HashMap<Digest, usize> = HashMap::new();
    for (g, r) in groups.iter().zip(&resolved) {
        let Ok(Resolved::Copy(tree)) = r else {
            continue;
        };
        let mount_from = source.repository_on(g.image(), &target_domain);
        for d in &tree.blobs {
            let i = *index.entry(d.digest.clone()).or_insert_with(|| {
                wanted.push(WantedBlob {
                    descriptor: d.clone(),
                    target_repositories: Vec::new(),
                    origins: Vec::new(),
                    mount_from: Vec::new(),
                });
                wanted.len() - 1
            });
            let w = &mut wanted[i];
            if !w.target_repositories.contains(&g.repository) {
                w.target_repositories.push(g.repository.clone());
            }
            w.origins.push(g.image().original.clone());
            if let Some(r) = &mount_from {
                if !w.mount_from.contains(r) {
                    w.mount_from.push(r.clone());
                }
            }
        }
    }
    let failed_blobs: HashMap<Digest, String> = source
        .send_blobs(wanted, sink.clone())
        .await
        .into_iter()
        .map(|(d, e)| (d, e.to_string()))
        .collect();

    // Phase 3: manifests.
    let pushes: Vec<Option<Result<CopiedImage, String>>> = stream::iter(groups.iter().zip(&resolved))
        .map(|(g, r)| {
            let target = target.clone();
            let sink = sink.clone();
            let failed_blobs = &failed_blobs;
            async move {
                let Ok(Resolved::Copy(tree)) = r else {
                    return None;
                };
                if let Some((d, e)) = tree
                    .blobs
                    .iter()
                    .find_map(|b| failed_blobs.get(&b.digest).map(|e| (&b.digest, e)))
                {
                    return Some(Err(format!(
                        "{} → {}: blob {d} could not be copied to {}: {e}",
                        g.image().raw,
                        g.image().relocated,
                        target.domain()
                    )));
                }
                Some(
                    push_manifests(&target, g, tree)
                        .await
                        .map(|manifests_pushed| CopiedImage {
                            digest: tree.top.digest.clone(),
                            already_present: false,
                            stats: stats_for(&sink, &g.repository, tree, manifests_pushed),
                        })
                        .map_err(|e| describe_failure(g.image(), &format!("pushing to {}", target.domain()), &e)),
                )
            }
        })
        .buffered(concurrency)
        .collect()
        .await;
    for (o, p) in outcome.iter_mut().zip(pushes) {
        if let Some(p) = p {
            *o = Some(p);
        }
    }
    finish(&groups, outcome, sink.bytes_uploaded(), &reporter)
}

async fn resolve<S: ImageSource>(source: &S, target: &Registry, group: &Group<'_>) -> Result<Resolved, CopyError> {
    let image = group.image();
    // A pinned image the target holds needs no source at all (a thin re-run reads nothing).
    if let (Some(expected), false) = (&image.expected_digest, source.resolves_locally()) {
        if target.head_manifest(&group.repository, &group.push).await?.as_ref() == Some(expected) {
            return Ok(Resolved::Present(expected.clone(), None));
        }
    }
    let tree = source.resolve(image).await?;
    if let Some(expected) = &image.expected_digest {
        if *expected != tree.top.digest {
            return Err(CopyError::PinMismatch {
                expected: expected.clone(),
                actual: tree.top.digest.clone(),
            });
        }
    }
    if target.head_manifest(&group.repository, &group.push).await?.as_ref() == Some(&tree.top.digest) {
        return Ok(Resolved::Present(tree.top.digest.clone(), Some(tree)));
    }
    Ok(Resolved::Copy(tree))
}

async fn push_manifests(target: &Registry, group: &Group<'_>, tree: &ImageTree) -> Result<usize, CopyError> {
    for child in &tree.children {
        target
            .put_manifest(
                &group.repository,
                &ManifestSelector::Digest(child.digest.clone()),
                child,
            )
            .await?;
    }
    target.put_manifest(&group.repository, &group.push, &tree.top).await?;
    let found = target.head_manifest(&group.repository, &group.push).await?;
    if found.as_ref() != Some(&tree.top.digest) {
        return Err(CopyError::NotVerified {
            reference: format!("{}/{}", target.domain(), group.push.in_repository(&group.repository)),
            expected: tree.top.digest.clone(),
            found: found.map_or("nothing".to_string(), |d| d.to_string()),
        });
    }
    Ok(tree.children.len() + 1)
}

fn stats_for(sink: &BlobSink, repository: &str, tree: &ImageTree, manifests_pushed: usize) -> ImageStats {
    let mut stats = ImageStats {
        manifests_pushed,
        ..Default::default()
    };
    for b in &tree.blobs {
        match sink.outcome(repository, &b.digest) {
            Some(BlobOutcome::Uploaded { bytes }) => {
                stats.blobs_uploaded += 1;
                stats.bytes_sent += bytes;
            }
            Some(BlobOutcome::Mounted { .. }) => stats.blobs_mounted += 1,
            Some(BlobOutcome::Present) | None => stats.blobs_present += 1,
        }
    }
    stats
}

fn describe_failure(image: &PlannedImage, stage: &str, e: &CopyError) -> String {
    format!("{} → {}: {stage}: {e}", image.raw, image.relocated)
}

fn finish(
    groups: &[Group],
    outcome: Vec<Option<Result<CopiedImage, String>>>,
    bytes_sent: u64,
    reporter: &Reporter,
) -> CopyReport {
    let mut images = Vec::new();
    for (g, o) in groups.iter().zip(outcome) {
        let o = o.unwrap_or_else(|| Err("not copied".to_string()));
        for m in &g.members {
            match &o {
                Ok(c) if !c.already_present => reporter(&Event::ImageCopied {
                    image: m.raw.clone(),
                    relocated: m.relocated.to_string(),
                    digest: c.digest.to_string(),
                    stats: c.stats.clone(),
                }),
                Ok(_) => {}
                Err(e) => reporter(&Event::ImageFailed {
                    image: m.raw.clone(),
                    relocated: m.relocated.to_string(),
                    error: e.clone(),
                }),
            }
            images.push(ImageResult {
                image: m.raw.clone(),
                relocated: m.relocated.to_string(),
                outcome: o.clone(),
            });
        }
    }
    CopyReport { images, bytes_sent }
}
