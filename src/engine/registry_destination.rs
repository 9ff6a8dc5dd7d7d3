//! A registry as the destination of a copy.

use std::sync::Arc;

use bytes::Bytes;
use reqwest::Url;

use super::destination::{Destination, Mount};
use super::error::CopyError;
use super::registry_tree::tree_in_registry;
use super::source::BlobBody;
use crate::oci::{ImageTree, Manifest};
use crate::reference::{Digest, ManifestSelector};
use crate::registry::{MountOutcome, Registry};

/// Writes into one registry.
pub struct RegistryDestination {
    registry: Arc<Registry>,
}

impl RegistryDestination {
    /// The destination `registry`.
    pub fn new(registry: Arc<Registry>) -> Self {
        RegistryDestination { registry }
    }
}

impl Destination for RegistryDestination {
    /// The upload session's URL (its next `Location`).
    type Upload = Url;

    fn name(&self) -> &str {
        self.registry.domain()
    }

    fn registry_domain(&self) -> Option<&str> {
        Some(self.registry.domain())
    }

    async fn has_blob(&self, repository: &str, digest: &Digest) -> Result<bool, CopyError> {
        // with push scope: the same token then serves the upload that usually follows
        Ok(self.registry.blob_exists(repository, digest, true).await?)
    }

    async fn mount_blob(&self, repository: &str, digest: &Digest, from: &str) -> Result<Mount<Url>, CopyError> {
        Ok(match self.registry.mount_blob(repository, digest, from).await? {
            MountOutcome::Mounted => Mount::Mounted,
            MountOutcome::Refused => Mount::Refused(None),
            MountOutcome::Upload(session) => {
                tracing::debug!("{}: mount of {digest} from {from} refused; uploading", self.name());
                Mount::Refused(Some(session))
            }
        })
    }

    async fn start_upload(&self, repository: &str) -> Result<Url, CopyError> {
        Ok(self.registry.start_upload(repository).await?)
    }

    async fn write_blob(&self, repository: &str, upload: Url, body: BlobBody, size: u64) -> Result<Url, CopyError> {
        let sent = self
            .registry
            .upload_chunk(repository, upload.clone(), body, Some(size))
            .await;
        if sent.is_err() {
            self.registry.cancel_upload(repository, upload).await;
        }
        Ok(sent?)
    }

    async fn commit_blob(&self, repository: &str, upload: Url, digest: &Digest) -> Result<(), CopyError> {
        Ok(self.registry.commit_upload(repository, upload, digest).await?)
    }

    async fn put_blob(&self, repository: &str, upload: Url, bytes: Bytes, digest: &Digest) -> Result<(), CopyError> {
        Ok(self.registry.put_blob(repository, upload, bytes, digest).await?)
    }

    async fn abort_blob(&self, repository: &str, upload: Url) {
        self.registry.cancel_upload(repository, upload).await
    }

    async fn manifest_digest(
        &self,
        repository: &str,
        selector: &ManifestSelector,
    ) -> Result<Option<Digest>, CopyError> {
        // with push scope: a repository asked for here is usually written to next
        Ok(self.registry.head_manifest(repository, selector, true).await?)
    }

    async fn put_manifest(
        &self,
        repository: &str,
        selector: &ManifestSelector,
        manifest: &Manifest,
    ) -> Result<Option<Digest>, CopyError> {
        Ok(self.registry.put_manifest(repository, selector, manifest).await?)
    }

    async fn find_manifest(
        &self,
        repository: &str,
        selector: &ManifestSelector,
    ) -> Result<Option<Manifest>, CopyError> {
        Ok(self.registry.find_manifest(repository, selector).await?)
    }

    async fn lists_referrers(&self, repository: &str, subject: &Digest) -> Result<bool, CopyError> {
        // its answers to our pushes tell; else ask the API itself
        if let Some(known) = self.registry.lists_referrers() {
            return Ok(known);
        }
        // an answer that is not an index of referrers means no API: the fallback tag is safe
        Ok(matches!(
            self.registry.referrers(repository, subject).await,
            Ok(Some(_))
        ))
    }

    async fn read_tree(&self, repository: &str, selector: &ManifestSelector) -> Result<ImageTree, CopyError> {
        tree_in_registry(&self.registry, repository, selector, |_| {}).await
    }
}
