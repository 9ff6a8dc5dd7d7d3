//! What the engine copies: jobs grouped so each (source manifest, destination place) is
//! copied once, bundle images and the referrers that travel with them alike, and how each
//! group resolves against its source and the destination.

use std::sync::Arc;

use super::destination::Destination;
use super::error::{CopyError, ImageError};
use super::job::ImageJob;
use super::report::{CopiedImage, ImageStats};
use super::source::Source;
use crate::oci::{ImageTree, ReferrerKind};
use crate::reference::{Algorithm, Digest, ManifestSelector};

/// Jobs that read the same manifest and push it to the same place are copied once.
pub(super) struct Group {
    pub members: Vec<ImageJob>,
    pub repository: String,
    pub push: ManifestSelector,
    /// Set for a referrer: what it travels with.
    pub referrer: Option<ReferrerOf>,
}

/// What a referrer group refers to.
pub(super) struct ReferrerOf {
    /// The bundle image's group it travels with.
    pub root: usize,
    /// The manifest it refers to.
    pub subject: Digest,
    /// What it is.
    pub kind: ReferrerKind,
    /// Whether it names `subject` as its own (then it belongs in a fallback tag's index).
    pub names_subject: bool,
}

impl Group {
    pub fn job(&self) -> &ImageJob {
        &self.members[0]
    }
}

pub(super) fn group(jobs: &[ImageJob]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for job in jobs {
        let repository = job.destination_repository().to_string();
        let push = job.push_selector();
        let same = |g: &&mut Group| {
            g.repository == repository
                && g.push == push
                && g.job().source.name() == job.source.name()
                && g.job().source_selector() == job.source_selector()
        };
        match groups.iter_mut().find(|g| same(g)) {
            Some(g) => g.members.push(job.clone()),
            None => groups.push(Group {
                members: vec![job.clone()],
                repository,
                push,
                referrer: None,
            }),
        }
    }
    groups
}

/// What resolving a group found.
pub(super) enum Resolved {
    /// The destination holds it; its tree, when known, tells which blobs its repository has.
    Present(Digest, Option<ImageTree>),
    Copy(ImageTree),
}

/// A group's result once known (`None`: not yet).
pub(super) type Outcome = Option<Result<CopiedImage, ImageError>>;

/// Reads the group's tree from the source (unless the destination holds its pinned digest
/// already), checks its pin and digests, and asks the destination whether it holds it.
pub(super) async fn resolve<S: Source, D: Destination>(
    source: &S,
    destination: &D,
    group: &Group,
) -> Result<Resolved, ImageError> {
    let job = group.job();
    let held = || async {
        destination
            .manifest_digest(&group.repository, &group.push)
            .await
            .map_err(|e| ImageError::Target {
                destination: destination.name().to_string(),
                error: Arc::new(e),
            })
    };
    // A pinned image the destination holds needs no source at all (a thin re-run reads nothing).
    let mut known = None;
    if let (Some(pinned), false) = (&job.pinned, source.resolves_locally()) {
        let held = held().await?;
        if held.as_ref() == Some(pinned) {
            return Ok(Resolved::Present(pinned.clone(), None));
        }
        known = Some(held);
    }
    // otherwise the destination is asked while the source is read, not after: a round trip
    // less per image, and both registries are pinged and authenticated at once
    let asked = async {
        match known {
            Some(held) => Ok(held),
            None => held().await,
        }
    };
    let (tree, held) = futures_util::join!(source.resolve(job), asked);
    let from_source = |e: CopyError| ImageError::Source(Arc::new(e));
    let tree = tree.map_err(from_source)?;
    if let Some(d) = unsupported_digest(&tree) {
        return Err(from_source(CopyError::UnsupportedDigest(d.clone())));
    }
    if let Some(pinned) = &job.pinned {
        if *pinned != tree.top.digest {
            return Err(from_source(CopyError::PinMismatch {
                expected: pinned.clone(),
                actual: tree.top.digest.clone(),
            }));
        }
    }
    let held = held?;
    if held.as_ref() == Some(&tree.top.digest) {
        return Ok(Resolved::Present(tree.top.digest.clone(), Some(tree)));
    }
    Ok(Resolved::Copy(tree))
}

/// A digest other than sha256 in the tree: registries store such content inconsistently, so
/// it is refused before anything is pushed rather than half copied.
fn unsupported_digest(tree: &ImageTree) -> Option<&Digest> {
    std::iter::once(&tree.top.digest)
        .chain(tree.children.iter().map(|c| &c.digest))
        .chain(tree.blobs.iter().map(|b| &b.digest))
        .find(|d| d.algorithm() != Algorithm::Sha256)
}

pub(super) fn present(digest: &Digest) -> CopiedImage {
    CopiedImage {
        digest: digest.clone(),
        already_present: true,
        stats: ImageStats::default(),
        referrers: Vec::new(),
    }
}
