//! An image's manifests as a registry holds them: read by sources and destinations alike.

use super::error::CopyError;
use crate::oci::{ImageTree, Manifest, ManifestOutline};
use crate::reference::ManifestSelector;
use crate::registry::Registry;

/// The top manifest the selector names, then every child by digest; `keep` sees every
/// manifest read.
pub(crate) async fn tree_in_registry(
    registry: &Registry,
    repository: &str,
    selector: &ManifestSelector,
    keep: impl Fn(&Manifest),
) -> Result<ImageTree, CopyError> {
    let top = registry.get_manifest(repository, selector).await?;
    keep(&top);
    let keep = &keep;
    let tree = ImageTree::build(ManifestOutline::of(&top)?, |d| async move {
        let child = registry
            .get_manifest(repository, &ManifestSelector::Digest(d.digest))
            .await?;
        keep(&child);
        Ok::<_, CopyError>(ManifestOutline::of(&child)?)
    })
    .await?;
    Ok(tree)
}
