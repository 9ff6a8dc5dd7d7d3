//! What refers to the copied manifests (signatures, attestations, SBOMs) travels with them:
//! found at the source level by level (a signature on an SBOM too) and copied as more groups
//! of the same copy; [`super::fallback_index`] lists them where the destination has no
//! referrers API of its own.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use futures_util::stream::{self, StreamExt};

use super::destination::Destination;
use super::error::{CopyError, ImageError};
use super::groups::{resolve, Group, Outcome, ReferrerOf, Resolved};
use super::job::ImageJob;
use super::report::{CopiedReferrer, Event, Reporter};
use super::source::{FoundReferrer, Source};
use crate::oci::{ImageTree, ManifestContent, ReferrerKind};
use crate::reference::{Digest, ManifestSelector};
use crate::registry::RegistryError;

/// Levels of referrers followed (a signature on an attestation on an image is two).
const MAX_LEVELS: usize = 8;

/// Referrer groups found for the bundle's images, resolved; and the images whose referrers
/// could not be found or read.
pub(super) struct Discovered {
    pub groups: Vec<Group>,
    pub resolved: Vec<Result<Resolved, ImageError>>,
    pub failures: Vec<(usize, ImageError)>,
}

/// A manifest whose referrers are looked up: the root group it belongs to, and its digest.
struct Subject {
    root: usize,
    digest: Digest,
}

/// Finds, level by level, what refers to every manifest of `groups` (the bundle's images),
/// and resolves each referrer like an image.
pub(super) async fn discover_referrers<S: Source, D: Destination>(
    source: &S,
    destination: &D,
    groups: &[Group],
    resolved: &[Result<Resolved, ImageError>],
    concurrency: usize,
) -> Discovered {
    let mut failures = Vec::new();
    let mut subjects = Vec::new();
    let listed: Vec<_> = stream::iter(groups.iter().zip(resolved))
        .map(|(g, r)| subjects_of(destination, g, r))
        .buffered(concurrency)
        .collect()
        .await;
    for (root, listed) in listed.into_iter().enumerate() {
        match listed {
            Ok(digests) => subjects.extend(digests.into_iter().map(|digest| Subject { root, digest })),
            Err(error) => failures.push((root, error)),
        }
    }
    let roots: Vec<&ImageJob> = groups.iter().map(Group::job).collect();
    let seen = groups.iter().map(|g| (g.repository.clone(), g.push.clone())).collect();
    let resolver = AgainstDestination { source, destination };
    let mut found = discover_levels(source, &roots, subjects, seen, &resolver, concurrency).await;
    failures.append(&mut found.failures);
    found.failures = failures;
    found
}

/// What refers to the images `roots` (job and tree, as read from `source`), level by level,
/// each referrer with its tree; or the first image whose referrers could not be read.
pub async fn referrer_trees<S: Source>(
    source: &S,
    roots: &[(&ImageJob, &ImageTree)],
    concurrency: usize,
) -> Result<Vec<ReferrerTree>, (String, ImageError)> {
    let subjects = roots
        .iter()
        .enumerate()
        .flat_map(|(root, (_, tree))| {
            tree.manifests().map(move |m| Subject {
                root,
                digest: m.digest.clone(),
            })
        })
        .collect();
    let jobs: Vec<&ImageJob> = roots.iter().map(|(job, _)| *job).collect();
    let seen = jobs
        .iter()
        .map(|j| (j.destination_repository().to_string(), j.push_selector()))
        .collect();
    let found = discover_levels(source, &jobs, subjects, seen, &AtSource(source), concurrency).await;
    if let Some((root, error)) = found.failures.into_iter().next() {
        return Err((jobs[root].label.clone(), error));
    }
    Ok(found
        .groups
        .into_iter()
        .zip(found.resolved)
        .filter_map(|(g, r)| {
            let of = g.referrer.expect("a referrer group");
            let Ok(Resolved::Copy(tree)) = r else { return None };
            Some(ReferrerTree {
                root: of.root,
                subject: of.subject,
                kind: of.kind,
                job: g.members.into_iter().next().expect("one member"),
                tree,
            })
        })
        .collect())
}

/// A referrer of an image, with its tree.
#[derive(Debug, Clone)]
pub struct ReferrerTree {
    /// Which of the images it travels with (an index into the roots asked about).
    pub root: usize,
    /// The manifest it refers to.
    pub subject: Digest,
    /// What it is.
    pub kind: ReferrerKind,
    /// Where it is read from and goes: by cosign's tag, or by digest.
    pub job: ImageJob,
    /// Its manifests and blobs.
    pub tree: ImageTree,
}

/// How a found referrer is resolved.
trait Resolver {
    fn resolve<'g>(&'g self, group: &'g Group) -> impl Future<Output = Result<Resolved, ImageError>> + 'g;
}

/// As a bundle image is: against the destination too, which may hold it already.
struct AgainstDestination<'a, S, D> {
    source: &'a S,
    destination: &'a D,
}

impl<S: Source, D: Destination> Resolver for AgainstDestination<'_, S, D> {
    fn resolve<'g>(&'g self, group: &'g Group) -> impl Future<Output = Result<Resolved, ImageError>> + 'g {
        resolve(self.source, self.destination, group)
    }
}

/// From the source alone (an export writes everything).
struct AtSource<'a, S>(&'a S);

impl<S: Source> Resolver for AtSource<'_, S> {
    async fn resolve<'g>(&'g self, group: &'g Group) -> Result<Resolved, ImageError> {
        let tree = self
            .0
            .resolve(group.job())
            .await
            .map_err(|e| ImageError::Source(Arc::new(e)))?;
        Ok(Resolved::Copy(tree))
    }
}

/// The level-by-level search: the referrers of `subjects`, resolved by `resolver`, then
/// theirs, each (repository, tag or digest) once and never one of `seen`.
async fn discover_levels<S: Source, R: Resolver>(
    source: &S,
    roots: &[&ImageJob],
    mut subjects: Vec<Subject>,
    mut seen: HashSet<(String, ManifestSelector)>,
    resolver: &R,
    concurrency: usize,
) -> Discovered {
    let mut found = Discovered {
        groups: Vec::new(),
        resolved: Vec::new(),
        failures: Vec::new(),
    };
    for _ in 0..MAX_LEVELS {
        if subjects.is_empty() {
            break;
        }
        let lookups: Vec<_> = stream::iter(&subjects)
            .map(|s| async move { (s, source.referrers(&roots[s.root].source, &s.digest).await) })
            .buffered(concurrency)
            .collect()
            .await;
        let mut level = Vec::new();
        for (subject, listed) in lookups {
            match listed {
                Ok(referrers) => {
                    for r in referrers {
                        let g = referrer_group(roots[subject.root], subject, r);
                        if seen.insert((g.repository.clone(), g.push.clone())) {
                            level.push(g);
                        }
                    }
                }
                Err(e) => found.failures.push((
                    subject.root,
                    ImageError::Referrer {
                        what: format!("finding what refers to {}", subject.digest),
                        error: Box::new(ImageError::Source(Arc::new(e))),
                    },
                )),
            }
        }
        let level_resolved: Vec<Result<Resolved, ImageError>> = stream::iter(&level)
            .map(|g| resolver.resolve(g))
            .buffered(concurrency)
            .collect()
            .await;
        subjects = Vec::new();
        let mut kept = Vec::new();
        for (g, r) in level.into_iter().zip(level_resolved) {
            let of = g.referrer.as_ref().expect("a referrer group");
            if let (Err(e), None) = (&r, &g.job().source.tag()) {
                if is_gone(e) {
                    // listed by digest, but deleted since: stale lists are common
                    tracing::warn!("{} is listed as a referrer but is gone; skipping it", g.job().source);
                    continue;
                }
            }
            match &r {
                Ok(Resolved::Copy(tree)) | Ok(Resolved::Present(_, Some(tree))) => {
                    subjects.extend(tree.manifests().map(|m| Subject {
                        root: of.root,
                        digest: m.digest.clone(),
                    }))
                }
                Ok(Resolved::Present(digest, None)) => subjects.push(Subject {
                    root: of.root,
                    digest: digest.clone(),
                }),
                Err(e) => found.failures.push((of.root, referrer_failure(&g, e.clone()))),
            }
            kept.push((g, r));
        }
        for (g, r) in kept {
            found.groups.push(g);
            found.resolved.push(r);
        }
    }
    if !subjects.is_empty() {
        tracing::warn!(
            "referrers are followed {MAX_LEVELS} levels deep; {} manifest(s) deeper down were not looked at",
            subjects.len()
        );
    }
    found
}

/// Whether resolving failed because the source does not hold the manifest at all.
fn is_gone(e: &ImageError) -> bool {
    let ImageError::Source(e) = e else { return false };
    matches!(
        &**e,
        CopyError::Registry(RegistryError::Status { status: 404, .. }) | CopyError::UnknownImage(_)
    )
}

/// The manifests of a resolved bundle image. One the destination holds and the source was
/// not asked for is read from the destination (its top manifest and an index's children).
async fn subjects_of<D: Destination>(
    destination: &D,
    group: &Group,
    resolved: &Result<Resolved, ImageError>,
) -> Result<Vec<Digest>, ImageError> {
    match resolved {
        Ok(Resolved::Copy(tree)) | Ok(Resolved::Present(_, Some(tree))) => {
            Ok(tree.manifests().map(|m| m.digest.clone()).collect())
        }
        Ok(Resolved::Present(digest, None)) => {
            let target = |e: CopyError| ImageError::Target {
                destination: destination.name().to_string(),
                error: Arc::new(e),
            };
            let selector = ManifestSelector::Digest(digest.clone());
            let top = destination
                .find_manifest(&group.repository, &selector)
                .await
                .map_err(target)?;
            let mut digests = vec![digest.clone()];
            if let Some(ManifestContent::Index { manifests }) =
                top.map(|m| m.content()).transpose().map_err(|e| target(e.into()))?
            {
                digests.extend(manifests.into_iter().map(|d| d.digest));
            }
            Ok(digests)
        }
        Err(_) => Ok(Vec::new()),
    }
}

/// The group that copies `found` into the repository of the image `root`.
fn referrer_group(root: &ImageJob, subject: &Subject, found: FoundReferrer) -> Group {
    let (tag, digest) = (found.tag.as_deref(), found.digest.as_ref());
    let source = root.source.with_tag_and_digest(tag, digest);
    let job = ImageJob {
        label: source.to_string(),
        pinned: found.digest.clone(),
        destination: root.destination.with_tag_and_digest(tag, digest),
        source,
    };
    Group {
        repository: job.destination_repository().to_string(),
        push: job.push_selector(),
        members: vec![job],
        referrer: Some(ReferrerOf {
            root: subject.root,
            subject: subject.digest.clone(),
            kind: found.kind,
            names_subject: found.names_subject,
        }),
    }
}

fn referrer_failure(g: &Group, error: ImageError) -> ImageError {
    let of = g.referrer.as_ref().expect("a referrer group");
    ImageError::Referrer {
        what: format!("its {} {}", of.kind.as_str(), g.job().source),
        error: Box::new(error),
    }
}

/// Reports each referrer and hands it to its bundle image's result; an image whose referrer
/// failed fails with it.
pub(super) fn referrer_events(groups: &[Group], outcomes: &mut [Outcome], reporter: &Reporter) {
    let twins = twins(groups, outcomes);
    for (i, g) in groups.iter().enumerate() {
        let Some(of) = &g.referrer else { continue };
        let relocated = g.job().destination.to_string();
        let result = outcomes[i].clone();
        // found once, a referrer belongs to every image that is its root's manifest in the
        // same repository (one image under several tags)
        let roots = &twins[of.root];
        match result {
            Some(Ok(copied)) => {
                for m in roots.iter().flat_map(|&r| &groups[r].members) {
                    let (image, subject) = (m.label.clone(), of.subject.to_string());
                    let (kind, digest, relocated) = (of.kind, copied.digest.to_string(), relocated.clone());
                    reporter(&if copied.already_present {
                        Event::ReferrerPresent {
                            image,
                            subject,
                            kind,
                            digest,
                            relocated,
                        }
                    } else {
                        Event::ReferrerCopied {
                            image,
                            subject,
                            kind,
                            digest,
                            relocated,
                        }
                    });
                }
                for &r in roots {
                    if let Some(Ok(root)) = &mut outcomes[r] {
                        root.referrers.push(CopiedReferrer {
                            kind: of.kind,
                            digest: copied.digest.clone(),
                            relocated: relocated.clone(),
                            already_present: copied.already_present,
                        });
                    }
                }
            }
            Some(Err(e)) => {
                for &r in roots {
                    if matches!(outcomes[r], Some(Ok(_))) {
                        outcomes[r] = Some(Err(referrer_failure(g, e.clone())));
                    }
                }
            }
            None => {}
        }
    }
}

/// For each image group, the image groups (itself first) that put the same manifest into the
/// same repository, as far as their outcomes say; empty for a referrer's group.
fn twins(groups: &[Group], outcomes: &[Outcome]) -> Vec<Vec<usize>> {
    let mut alike: HashMap<(&str, &Digest), Vec<usize>> = HashMap::new();
    for (i, g) in groups.iter().enumerate().filter(|(_, g)| g.referrer.is_none()) {
        if let Some(Ok(c)) = &outcomes[i] {
            alike.entry((g.repository.as_str(), &c.digest)).or_default().push(i);
        }
    }
    (0..groups.len())
        .map(|i| match (&groups[i].referrer, &outcomes[i]) {
            (Some(_), _) => Vec::new(),
            (None, Some(Ok(c))) => {
                let mut same = vec![i];
                same.extend(
                    alike[&(groups[i].repository.as_str(), &c.digest)]
                        .iter()
                        .filter(|&&j| j != i),
                );
                same
            }
            (None, _) => vec![i],
        })
        .collect()
}
