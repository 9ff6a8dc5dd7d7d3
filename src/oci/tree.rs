//! An image's whole tree: the top manifest, every child of an index, and every blob.

use std::collections::HashSet;
use std::future::Future;

use super::descriptor::Descriptor;
use super::manifest::{Manifest, ManifestContent, ManifestError};
use crate::reference::Digest;

/// Indexes inside indexes deeper than this are refused (real ones nest once at most).
const MAX_INDEX_DEPTH: usize = 4;

/// Why a tree could not be walked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError<E> {
    /// A manifest of the tree cannot be parsed.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// Fetching a child manifest failed.
    #[error(transparent)]
    Fetch(E),
    /// The child's bytes are not the size its descriptor states.
    #[error("child manifest {digest} is {actual} bytes but its descriptor says {declared}")]
    ChildSize {
        /// The child's digest.
        digest: Digest,
        /// Size in the descriptor.
        declared: u64,
        /// Size of the bytes fetched.
        actual: u64,
    },
    /// Indexes nest deeper than any real image does.
    #[error("index {0} nests indexes more than {MAX_INDEX_DEPTH} deep")]
    TooDeep(Digest),
}

/// An image's manifests and blobs, as the source holds them.
#[derive(Debug, Clone)]
pub struct ImageTree {
    /// The manifest or index the reference names.
    pub top: Manifest,
    /// Child manifests of an index (recursively), children before their parents, each once.
    pub children: Vec<Manifest>,
    /// Config and layer blobs of every manifest in the tree, each once; non-distributable
    /// ("foreign") layers are left out, as go-containerregistry does.
    pub blobs: Vec<Descriptor>,
}

impl ImageTree {
    /// Walks `top` and, for an index, every child (fetched with `child`), checking each
    /// child's size against its descriptor (`child` checks the digest).
    pub async fn build<F, Fut, E>(top: Manifest, child: F) -> Result<ImageTree, TreeError<E>>
    where
        F: Fn(Descriptor) -> Fut,
        Fut: Future<Output = Result<Manifest, E>>,
    {
        let mut tree = ImageTree {
            top: top.clone(),
            children: Vec::new(),
            blobs: Vec::new(),
        };
        let mut seen_blobs = HashSet::new();
        let mut seen_manifests = HashSet::new();
        // (manifest, depth, children already pushed onto the stack)
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
                        return Err(TreeError::TooDeep(manifest.digest));
                    }
                    stack.push((manifest, depth, true));
                    let mut fetched = Vec::new();
                    for d in manifests {
                        if !seen_manifests.insert(d.digest.clone()) {
                            continue; // repeated descriptors are copied once
                        }
                        let (digest, declared) = (d.digest.clone(), d.size);
                        let m = child(d).await.map_err(TreeError::Fetch)?;
                        let actual = m.bytes.len() as u64;
                        if actual != declared {
                            return Err(TreeError::ChildSize {
                                digest,
                                declared,
                                actual,
                            });
                        }
                        fetched.push((m, depth + 1, false));
                    }
                    // reversed onto the stack, so they pop in descriptor order, before the index
                    stack.extend(fetched.into_iter().rev());
                }
            }
        }
        Ok(tree)
    }

    /// The size of every blob, summed (what a full copy moves).
    pub fn total_blob_bytes(&self) -> u64 {
        self.blobs.iter().map(|b| b.size).sum()
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
            async move { found.ok_or("missing") }
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
