//! An image's manifests as a registry holds them: read by sources and destinations alike.

use super::error::CopyError;
use crate::oci::ImageTree;
use crate::reference::ManifestSelector;
use crate::registry::Registry;

/// The top manifest the selector names, then every child by digest.
pub(crate) async fn tree_in_registry(
    registry: &Registry,
    repository: &str,
    selector: &ManifestSelector,
) -> Result<ImageTree, CopyError> {
    let top = registry.get_manifest(repository, selector).await?;
    let tree = ImageTree::build(top, |d| async move {
        Ok::<_, CopyError>(
            registry
                .get_manifest(repository, &ManifestSelector::Digest(d.digest))
                .await?,
        )
    })
    .await?;
    Ok(tree)
}
