//! Where images are written. The engine sees only [`Destination`]: a registry today; an
//! archive writer (export) implements the same operations.

use std::future::Future;

use bytes::Bytes;

use super::error::CopyError;
use super::source::BlobBody;
use crate::oci::{ImageTree, Manifest};
use crate::reference::{Digest, ManifestSelector};

/// The answer to a request to mount a blob from another repository.
pub enum Mount<U> {
    /// The blob is now in the repository.
    Mounted,
    /// The destination did not mount; it may have opened an upload session instead.
    Refused(Option<U>),
}

/// A place images are written to, repository by repository.
pub trait Destination: Send + Sync + 'static {
    /// An open blob upload.
    type Upload: Send + 'static;

    /// How messages name the destination (a registry's host).
    fn name(&self) -> &str;

    /// The registry domain, when the destination is one: images already on it can lend
    /// their blobs by mount.
    fn registry_domain(&self) -> Option<&str>;

    /// Whether the repository holds the blob.
    fn has_blob(&self, repository: &str, digest: &Digest) -> impl Future<Output = Result<bool, CopyError>> + Send;

    /// Asks for the blob to be linked from repository `from` without sending bytes.
    fn mount_blob(
        &self,
        repository: &str,
        digest: &Digest,
        from: &str,
    ) -> impl Future<Output = Result<Mount<Self::Upload>, CopyError>> + Send;

    /// Opens an upload.
    fn start_upload(&self, repository: &str) -> impl Future<Output = Result<Self::Upload, CopyError>> + Send;

    /// Sends `body` (`size` bytes) into the upload. On failure the upload is closed.
    fn write_blob(
        &self,
        repository: &str,
        upload: Self::Upload,
        body: BlobBody,
        size: u64,
    ) -> impl Future<Output = Result<Self::Upload, CopyError>> + Send;

    /// Makes the uploaded bytes the blob `digest`.
    fn commit_blob(
        &self,
        repository: &str,
        upload: Self::Upload,
        digest: &Digest,
    ) -> impl Future<Output = Result<(), CopyError>> + Send;

    /// Sends a small blob's bytes, already checked against `digest`, into the upload and
    /// makes them the blob `digest`; by default a write, then a commit.
    fn put_blob(
        &self,
        repository: &str,
        upload: Self::Upload,
        bytes: Bytes,
        digest: &Digest,
    ) -> impl Future<Output = Result<(), CopyError>> + Send {
        async move {
            let size = bytes.len() as u64;
            let body: BlobBody = Box::pin(futures_util::stream::once(async move { Ok(bytes) }));
            let upload = self.write_blob(repository, upload, body, size).await?;
            self.commit_blob(repository, upload, digest).await
        }
    }

    /// Drops an upload (best effort).
    fn abort_blob(&self, repository: &str, upload: Self::Upload) -> impl Future<Output = ()> + Send;

    /// The digest of the manifest the selector names, or `None` when there is none.
    fn manifest_digest(
        &self,
        repository: &str,
        selector: &ManifestSelector,
    ) -> impl Future<Output = Result<Option<Digest>, CopyError>> + Send;

    /// Stores the manifest's exact bytes under the selector. Returns the digest the
    /// destination says it stored, when it says (a registry's `Docker-Content-Digest`); a
    /// destination that names another digest fails instead.
    fn put_manifest(
        &self,
        repository: &str,
        selector: &ManifestSelector,
        manifest: &Manifest,
    ) -> impl Future<Output = Result<Option<Digest>, CopyError>> + Send;

    /// The manifest the selector names, or `None` when there is none.
    fn find_manifest(
        &self,
        repository: &str,
        selector: &ManifestSelector,
    ) -> impl Future<Output = Result<Option<Manifest>, CopyError>> + Send;

    /// Whether the destination lists the referrers of `subject` itself (the OCI 1.1
    /// referrers API), so that no fallback tag is to be written for them.
    fn lists_referrers(
        &self,
        repository: &str,
        subject: &Digest,
    ) -> impl Future<Output = Result<bool, CopyError>> + Send;

    /// The tree of an image the destination holds (to learn which blobs it can lend).
    fn read_tree(
        &self,
        repository: &str,
        selector: &ManifestSelector,
    ) -> impl Future<Output = Result<ImageTree, CopyError>> + Send;
}
