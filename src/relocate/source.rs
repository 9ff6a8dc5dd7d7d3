//! Where images are read from. The copier sees only [`ImageSource`]: a remote registry (thin
//! bundles) and an OCI layout inside an archive (thick bundles) both implement it.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use super::copy::CopyError;
use super::plan::PlannedImage;
use super::sink::BlobSink;
use crate::reference::{Digest, Reference};
use crate::registry::{Descriptor, Manifest, ManifestContent};

/// Indexes inside indexes deeper than this are refused (real ones nest once at most).
const MAX_INDEX_DEPTH: usize = 4;

/// An image's manifests and blobs, as the source holds them.
#[derive(Debug, Clone)]
pub struct ImageTree {
    pub top: Manifest,
    /// Child manifests of an index (recursively), children before their parents, each once.
    pub children: Vec<Manifest>,
    /// Config and layer blobs of every manifest in the tree, each once; non-distributable
    /// ("foreign") layers are left out, as go-containerregistry does.
    pub blobs: Vec<Descriptor>,
}

impl ImageTree {
    /// Walks `top` and, for an index, every child (fetched with `child`), checking each
    /// child's digest and size against its descriptor.
    pub async fn build<F, Fut>(top: Manifest, child: F) -> Result<ImageTree, CopyError>
    where
        F: Fn(Descriptor) -> Fut,
        Fut: Future<Output = Result<Manifest, CopyError>>,
    {
        let mut tree = ImageTree {
            top: top.clone(),
            children: Vec::new(),
            blobs: Vec::new(),
        };
        let mut seen_blobs = HashSet::new();
        let mut seen_manifests = HashSet::new();
        // (manifest, depth, children already expanded)
        let mut stack = vec![(top, 0usize, false)];
        while let Some((manifest, depth, expanded)) = stack.pop() {
            match manifest.content()? {
                ManifestContent::Image { config, layers } => {
                    for d in std::iter::once(config).chain(layers) {
                        if !d.is_foreign() && seen_blobs.insert(d.digest.clone()) {
                            tree.blobs.push(d);
                        }
                    }
                    if depth > 0 {
                        tree.children.push(manifest);
                    }
                }
                ManifestContent::Index { .. } if expanded => {
                    if depth > 0 {
                        tree.children.push(manifest);
                    }
                }
                ManifestContent::Index { manifests } => {
                    if depth >= MAX_INDEX_DEPTH {
                        return Err(CopyError::Source(format!(
                            "index {} nests indexes more than {MAX_INDEX_DEPTH} deep",
                            manifest.digest
                        )));
                    }
                    stack.push((manifest, depth, true));
                    let mut fetched = Vec::new();
                    for d in manifests {
                        if !seen_manifests.insert(d.digest.clone()) {
                            continue; // repeated descriptors are copied once
                        }
                        let (digest, size) = (d.digest.clone(), d.size);
                        let m = child(d).await?;
                        if m.bytes.len() as u64 != size {
                            return Err(CopyError::Source(format!(
                                "child manifest {digest} is {} bytes but its descriptor says {size}",
                                m.bytes.len()
                            )));
                        }
                        fetched.push((m, depth + 1, false));
                    }
                    // reversed onto the stack, so they pop in descriptor order
                    stack.extend(fetched.into_iter().rev());
                }
            }
        }
        // the stack pops an index's children in descriptor order, before the index itself
        Ok(tree)
    }

    /// Every blob and manifest size summed (what a full copy moves).
    pub fn total_blob_bytes(&self) -> u64 {
        self.blobs.iter().map(|b| b.size).sum()
    }
}

/// One distinct blob the run must place in one or more target repositories.
#[derive(Debug, Clone)]
pub struct WantedBlob {
    pub descriptor: Descriptor,
    /// Target repositories (paths on the target registry) that need it.
    pub target_repositories: Vec<String>,
    /// Original references of the images that use it (a remote source reads from the first).
    pub origins: Vec<Reference>,
    /// Repositories of the target registry that already hold it (a source on the same
    /// registry): mounted from, never uploaded.
    pub mount_from: Vec<String>,
}

impl WantedBlob {
    pub fn digest(&self) -> &Digest {
        &self.descriptor.digest
    }
}

/// A place images are read from.
pub trait ImageSource: Send + Sync + 'static {
    /// Reads the image's top manifest (by pinned digest, else by tag) and every child manifest.
    fn resolve(&self, image: &PlannedImage) -> impl Future<Output = Result<ImageTree, CopyError>> + Send;

    /// Delivers every blob of `wanted` through `sink` (which checks the target, mounts, and
    /// uploads with verification), in whatever order suits the source. Returns the blobs that
    /// could not be delivered.
    fn send_blobs(
        &self,
        wanted: Vec<WantedBlob>,
        sink: Arc<BlobSink>,
    ) -> impl Future<Output = Vec<(Digest, CopyError)>> + Send;

    /// A repository of `target_domain` holding the image's blobs already, if the image lives
    /// on that registry (so blobs can be mounted instead of sent).
    fn repository_on(&self, image: &PlannedImage, target_domain: &str) -> Option<String>;

    /// Whether [`resolve`](Self::resolve) costs nothing (no network). Then even images the
    /// target already holds are resolved, so their blobs can be mounted into other images.
    fn resolves_locally(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn manifest(json: String) -> Manifest {
        Manifest::new(Bytes::from(json), None, None).unwrap()
    }

    fn d(n: u8) -> String {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
    }

    #[tokio::test]
    async fn walks_indexes_children_first_skipping_foreign_layers_and_repeats() {
        let image = |cfg: u8, foreign: bool| {
            let foreign_layer = if foreign {
                format!(
                    r#",{{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"{}","size":9,"urls":["https://x"]}}"#,
                    d(99)
                )
            } else {
                String::new()
            };
            manifest(format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{}","size":1}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{}","size":2}}{foreign_layer}]}}"#,
                d(cfg),
                d(50)
            ))
        };
        let (a, b) = (image(1, true), image(2, false));
        let entry = |m: &Manifest| {
            format!(
                r#"{{"mediaType":"{}","digest":"{}","size":{}}}"#,
                m.media_type,
                m.digest,
                m.bytes.len()
            )
        };
        let index = manifest(format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{},{},{}]}}"#,
            entry(&a),
            entry(&b),
            entry(&a)
        ));
        let children = [a.clone(), b.clone()];
        let tree = ImageTree::build(index.clone(), |desc| {
            let found = children.iter().find(|c| c.digest == desc.digest).cloned();
            async move { found.ok_or_else(|| CopyError::Source("missing".into())) }
        })
        .await
        .unwrap();
        assert_eq!(tree.top, index);
        assert_eq!(tree.children, [a, b], "children in order, once each");
        let blobs: Vec<String> = tree.blobs.iter().map(|b| b.digest.to_string()).collect();
        assert_eq!(
            blobs,
            [d(1), d(50), d(2)],
            "config and layers once; the foreign layer left out"
        );
    }
}
