//! An image's whole tree: the top manifest, every child of an index, and every blob.
//!
//! Trees hold outlines, not bytes: a manifest of several MiB listing one layer thousands of
//! times outlines to a few descriptors, so many images' trees fit in little memory. Whoever
//! pushes the manifests reads their bytes again, by digest.

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

/// A manifest or index without its bytes: what finding it again takes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ManifestRef {
    /// Digest of its bytes.
    pub digest: Digest,
    /// Its media type, as [`Manifest::new`] settled it.
    pub media_type: String,
    /// Size of its bytes.
    pub size: u64,
}

impl From<&Manifest> for ManifestRef {
    fn from(m: &Manifest) -> Self {
        ManifestRef {
            digest: m.digest.clone(),
            media_type: m.media_type.clone(),
            size: m.bytes.len() as u64,
        }
    }
}

/// What a manifest points at, each target once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PointsAt {
    /// An image manifest's config, then its layers; non-distributable ("foreign") layers are
    /// left out, as go-containerregistry does.
    Blobs(Vec<Descriptor>),
    /// An index's child manifests, in order.
    Children(Vec<Descriptor>),
}

/// A manifest reduced to what walking a tree needs; small however large the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestOutline {
    /// The manifest.
    pub manifest: ManifestRef,
    /// What it points at.
    pub points_at: PointsAt,
}

impl ManifestOutline {
    /// Parses `manifest` and keeps what it points at, each descriptor once.
    pub fn of(manifest: &Manifest) -> Result<ManifestOutline, ManifestError> {
        let mut seen = HashSet::new();
        let mut once = |d: &Descriptor| seen.insert(d.digest.clone());
        let points_at = match manifest.content()? {
            ManifestContent::Image { config, layers } => PointsAt::Blobs(
                std::iter::once(config)
                    .chain(layers)
                    .filter(|d| !d.is_foreign() && once(d))
                    .collect(),
            ),
            ManifestContent::Index { manifests } => {
                PointsAt::Children(manifests.into_iter().filter(|d| once(d)).collect())
            }
        };
        Ok(ManifestOutline {
            manifest: ManifestRef::from(manifest),
            points_at,
        })
    }
}

/// An image's manifests and blobs, as the source holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageTree {
    /// The manifest or index the reference names.
    pub top: ManifestRef,
    /// Child manifests of an index (recursively), children before their parents, each once.
    pub children: Vec<ManifestRef>,
    /// Config and layer blobs of every manifest in the tree, each once, foreign layers left
    /// out.
    pub blobs: Vec<Descriptor>,
    /// Which of `blobs` are configs (what an archive writes before any layer).
    pub configs: HashSet<Digest>,
}

impl ImageTree {
    /// Walks `top` and, for an index, every child (outlined by `child`), checking each
    /// child's size against its descriptor (`child` checks the digest).
    pub async fn build<F, Fut, E>(top: ManifestOutline, child: F) -> Result<ImageTree, TreeError<E>>
    where
        F: Fn(Descriptor) -> Fut,
        Fut: Future<Output = Result<ManifestOutline, E>>,
    {
        let mut tree = ImageTree {
            top: top.manifest.clone(),
            children: Vec::new(),
            blobs: Vec::new(),
            configs: HashSet::new(),
        };
        let mut seen_blobs = HashSet::new();
        let mut seen_manifests = HashSet::new();
        // (manifest, depth, children already pushed onto the stack)
        let mut stack = vec![(top, 0usize, false)];
        while let Some((ManifestOutline { manifest, points_at }, depth, expanded)) = stack.pop() {
            match points_at {
                PointsAt::Blobs(blobs) => {
                    // an outline lists the config first
                    tree.configs.extend(blobs.first().map(|c| c.digest.clone()));
                    for d in blobs {
                        if seen_blobs.insert(d.digest.clone()) {
                            tree.blobs.push(d);
                        }
                    }
                    if depth > 0 {
                        tree.children.push(manifest);
                    }
                }
                PointsAt::Children(_) if expanded => {
                    if depth > 0 {
                        tree.children.push(manifest);
                    }
                }
                PointsAt::Children(manifests) => {
                    if depth >= MAX_INDEX_DEPTH {
                        return Err(TreeError::TooDeep(manifest.digest));
                    }
                    let mut fetched = Vec::new();
                    for d in manifests.iter().cloned() {
                        if !seen_manifests.insert(d.digest.clone()) {
                            continue; // a child under two indexes is copied once
                        }
                        let (digest, declared) = (d.digest.clone(), d.size);
                        let c = child(d).await.map_err(TreeError::Fetch)?;
                        let actual = c.manifest.size;
                        if actual != declared {
                            return Err(TreeError::ChildSize {
                                digest,
                                declared,
                                actual,
                            });
                        }
                        fetched.push((c, depth + 1, false));
                    }
                    let expanded = ManifestOutline {
                        manifest,
                        points_at: PointsAt::Children(manifests),
                    };
                    stack.push((expanded, depth, true));
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

    /// Every manifest of the tree: children first, then the top.
    pub fn manifests(&self) -> impl Iterator<Item = &ManifestRef> {
        self.children.iter().chain(std::iter::once(&self.top))
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
        let outline = |m: &Manifest| ManifestOutline::of(m).unwrap();
        let tree = ImageTree::build(outline(&index), |desc| {
            let found = children.iter().find(|c| c.digest == desc.digest).map(outline);
            async move { found.ok_or("missing") }
        })
        .await
        .unwrap();
        assert_eq!(tree.top, ManifestRef::from(&index));
        assert_eq!(
            tree.children,
            [ManifestRef::from(&a), ManifestRef::from(&b)],
            "children in order, once each"
        );
        let blobs: Vec<String> = tree.blobs.iter().map(|b| b.digest.to_string()).collect();
        assert_eq!(
            blobs,
            [d(1), d(50), d(2)],
            "config and layers once; the foreign layer left out"
        );
        let configs: HashSet<Digest> = [d(1), d(2)].iter().map(|d| d.parse().unwrap()).collect();
        assert_eq!(tree.configs, configs);
    }

    #[test]
    fn an_outline_keeps_each_blob_once_however_often_listed() {
        let layer = format!(
            r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:{}","size":3}}"#,
            "cd".repeat(32)
        );
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{}","size":2}},"layers":[{}]}}"#,
            "ab".repeat(32),
            vec![layer; 5000].join(",")
        );
        let m = Manifest::new(bytes::Bytes::from(json), None, None).unwrap();
        let outline = ManifestOutline::of(&m).unwrap();
        assert_eq!(outline.manifest.size, m.bytes.len() as u64);
        match outline.points_at {
            PointsAt::Blobs(blobs) => assert_eq!(blobs.len(), 2, "config and the one layer"),
            other => panic!("an image outlined as {other:?}"),
        }
    }
}
