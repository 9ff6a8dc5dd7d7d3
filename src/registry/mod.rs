//! The registry client, on reqwest + rustls: transport and TLS (with per-registry
//! certificates), auth (Basic, Bearer tokens with
//! several scopes, identity tokens), retries, manifests as raw bytes, blobs, cross-repo mount.

mod auth;
mod client;
mod credentials;
mod error;
mod limiter;
mod listing;
mod request_log;
mod response;
mod retry;
mod tls;
mod transport;

pub use client::{BlobRange, MountOutcome, Registries, Registry};
pub use credentials::{CredentialOptions, Login};
pub use error::RegistryError;
pub use retry::RetryPolicy;
pub use transport::RegistryOptions;
