//! Manifest pushes, once per (repository, tag or digest): every image that needs a manifest
//! in a repository waits for the one push of it, so two indexes sharing a child, or one image
//! named twice, never race. Their bytes are read from the source in batches within a memory
//! budget, so a bundle of huge manifests never holds them all.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use super::destination::Destination;
use super::error::CopyError;
use super::source::{ManifestRead, Source};
use crate::oci::{ImageTree, Manifest};
use crate::reference::{Digest, ManifestSelector, Reference};

/// Splits images (`None`: nothing to push) into consecutive batches whose distinct manifests
/// add up to at most `budget` bytes; an image larger than the budget is a batch of its own.
pub(crate) fn push_batches(trees: &[Option<&ImageTree>], budget: u64) -> Vec<Range<usize>> {
    let mut batches = Vec::new();
    let (mut start, mut used) = (0, 0u64);
    let mut seen: HashSet<&Digest> = HashSet::new();
    for (i, tree) in trees.iter().enumerate() {
        let Some(tree) = tree else { continue };
        let size = |seen: &HashSet<&Digest>| {
            tree.manifests()
                .filter(|m| !seen.contains(&m.digest))
                .map(|m| m.size)
                .sum::<u64>()
        };
        if used > 0 && used + size(&seen) > budget {
            batches.push(start..i);
            (start, used) = (i, 0);
            seen.clear();
        }
        used += size(&seen);
        seen.extend(tree.manifests().map(|m| &m.digest));
    }
    if start < trees.len() {
        batches.push(start..trees.len());
    }
    batches
}

/// The bytes of every manifest of `images` (tree, source reference), each read once.
pub(crate) async fn read_batch<'a, S: Source>(
    source: &S,
    images: impl Iterator<Item = (&'a ImageTree, &'a Reference)>,
) -> Result<HashMap<Digest, Manifest>, Arc<CopyError>> {
    let mut seen = HashSet::new();
    let mut wanted = Vec::new();
    for (tree, origin) in images {
        for m in tree.manifests() {
            if seen.insert(&m.digest) {
                wanted.push(ManifestRead {
                    manifest: m.clone(),
                    origin: origin.clone(),
                });
            }
        }
    }
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let read = source.read_manifests(wanted).await.map_err(Arc::new)?;
    Ok(read.into_iter().map(|m| (m.digest.clone(), m)).collect())
}

/// A push's outcome: the digest the destination confirmed storing, when it said.
type Cell = Arc<OnceCell<Result<Option<Digest>, Arc<CopyError>>>>;

/// Pushes manifests, each (repository, selector) once.
pub(crate) struct ManifestPushes<D: Destination> {
    destination: Arc<D>,
    cells: Mutex<HashMap<(String, ManifestSelector), Cell>>,
}

impl<D: Destination> ManifestPushes<D> {
    pub fn new(destination: Arc<D>) -> Self {
        ManifestPushes {
            destination,
            cells: Mutex::new(HashMap::new()),
        }
    }

    /// Pushes `manifest` under `selector`, or waits for the push already under way. Returns
    /// the digest the destination confirmed storing, when it said.
    pub async fn push(
        &self,
        repository: &str,
        selector: &ManifestSelector,
        manifest: &Manifest,
    ) -> Result<Option<Digest>, Arc<CopyError>> {
        let cell = self
            .cells
            .lock()
            .expect("manifest push lock")
            .entry((repository.to_string(), selector.clone()))
            .or_default()
            .clone();
        cell.get_or_init(|| async {
            self.destination
                .put_manifest(repository, selector, manifest)
                .await
                .map_err(Arc::new)
        })
        .await
        .clone()
    }

    /// Pushes the children by digest, then the top manifest under `selector`; checks that the
    /// destination names the top manifest for `selector`: by its answer to the push, else by
    /// asking it. Returns the number of manifests in the image.
    pub async fn push_image(
        &self,
        repository: &str,
        selector: &ManifestSelector,
        top: &Manifest,
        children: &[Manifest],
    ) -> Result<usize, Arc<CopyError>> {
        for child in children {
            self.push(repository, &ManifestSelector::Digest(child.digest.clone()), child)
                .await?;
        }
        let confirmed = self.push(repository, selector, top).await?;
        if confirmed.as_ref() == Some(&top.digest) {
            // a registry's own answer names what it stored; asking again costs it a manifest
            // parse, which for huge manifests dominates the whole copy
            return Ok(children.len() + 1);
        }
        let found = self
            .destination
            .manifest_digest(repository, selector)
            .await
            .map_err(Arc::new)?;
        if found.as_ref() != Some(&top.digest) {
            return Err(Arc::new(CopyError::NotVerified {
                reference: format!("{}/{}", self.destination.name(), selector.in_repository(repository)),
                expected: top.digest.clone(),
                found,
            }));
        }
        Ok(children.len() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::ManifestRef;

    fn tree(manifests: &[(u8, u64)]) -> ImageTree {
        let r = |(n, size): (u8, u64)| ManifestRef {
            digest: format!("sha256:{}", format!("{n:02x}").repeat(32)).parse().unwrap(),
            media_type: crate::oci::OCI_MANIFEST.to_string(),
            size,
        };
        let (top, children) = manifests.split_last().unwrap();
        ImageTree {
            top: r(*top),
            children: children.iter().copied().map(r).collect(),
            blobs: Vec::new(),
            configs: HashSet::new(),
        }
    }

    #[test]
    fn batches_fit_the_budget_counting_shared_manifests_once() {
        let (a, b, c, d) = (
            tree(&[(1, 40)]),
            tree(&[(1, 40), (2, 50)]),
            tree(&[(3, 70)]),
            tree(&[(4, 300)]),
        );
        let trees = [Some(&a), None, Some(&b), Some(&c), Some(&d), Some(&a)];
        // a + b = 90 (the shared child once); c would make 160; d alone is over the budget
        assert_eq!(push_batches(&trees, 100), [0..3, 3..4, 4..5, 5..6]);
        assert_eq!(push_batches(&trees, 10_000), [Range { start: 0, end: 6 }]);
        assert_eq!(push_batches(&[], 100), Vec::<Range<usize>>::new());
    }
}
