//! Manifest pushes, once per (repository, tag or digest): every image that needs a manifest
//! in a repository waits for the one push of it, so two indexes sharing a child, or one image
//! named twice, never race.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use super::destination::Destination;
use super::error::CopyError;
use crate::oci::Manifest;
use crate::reference::ManifestSelector;

type Cell = Arc<OnceCell<Result<(), Arc<CopyError>>>>;

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

    /// Pushes `manifest` under `selector`, or waits for the push already under way.
    pub async fn push(
        &self,
        repository: &str,
        selector: &ManifestSelector,
        manifest: &Manifest,
    ) -> Result<(), Arc<CopyError>> {
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

    /// Pushes the children by digest, then the top manifest under `selector`, then asks the
    /// destination for `selector` and checks it names the top manifest. Returns the number of
    /// manifests in the image.
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
        self.push(repository, selector, top).await?;
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
