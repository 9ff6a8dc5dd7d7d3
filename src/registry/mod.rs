//! The registry client, on reqwest + rustls: transport and TLS, auth (Basic, Bearer tokens with
//! several scopes, identity tokens), retries, manifests as raw bytes, blobs, cross-repo mount.

pub mod auth;
mod client;
pub mod credentials;
pub mod manifest;
pub mod retry;
pub mod transport;

pub use client::{MountOutcome, Registries, Registry};
pub use manifest::{Descriptor, Manifest, ManifestContent, ManifestError, MAX_MANIFEST_SIZE};
pub use retry::RetryPolicy;
pub use transport::RegistryOptions;

/// A failed registry operation. Messages name the registry and the operation and carry the
/// registry's own error text; they never carry credentials or tokens.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{registry}: {operation}: {detail}")]
    Transport {
        registry: String,
        operation: String,
        detail: String,
        retryable: bool,
    },
    #[error("{registry}: {operation}: HTTP {status}: {message}")]
    Status {
        registry: String,
        operation: String,
        status: u16,
        message: String,
    },
    #[error("{registry}: authentication failed: {detail}")]
    Auth { registry: String, detail: String },
    #[error("{registry}: {detail}")]
    Protocol { registry: String, detail: String },
    #[error("{registry}: {operation}: {source}")]
    Manifest {
        registry: String,
        operation: String,
        source: Box<ManifestError>,
    },
    #[error("{detail}")]
    Config { detail: String },
}

impl RegistryError {
    /// Whether trying the whole operation again may succeed (the request-level retries are
    /// already spent when this is asked).
    pub fn is_retryable(&self) -> bool {
        match self {
            RegistryError::Transport { retryable, .. } => *retryable,
            RegistryError::Status { status, .. } => *status == 408 || *status == 429 || *status >= 500,
            _ => false,
        }
    }
}
