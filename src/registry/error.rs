//! The registry client's error type.

use crate::oci::ManifestError;

/// A failed registry operation. Messages name the registry and the operation and carry the
/// registry's own error text; they never carry credentials or tokens.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The request could not be sent or its answer not read (connection, TLS, timeout).
    #[error("{registry}: {operation}: {detail}")]
    Transport {
        /// The registry's domain.
        registry: String,
        /// What was being done, e.g. `GET manifest team/app:1.0`.
        operation: String,
        /// The chain of error messages, without URLs.
        detail: String,
        /// Whether a new attempt may succeed.
        retryable: bool,
    },
    /// The registry answered with an HTTP status the operation does not accept.
    #[error("{registry}: {operation}: HTTP {status}: {message}")]
    Status {
        /// The registry's domain.
        registry: String,
        /// What was being done.
        operation: String,
        /// The HTTP status code.
        status: u16,
        /// The registry's error text, with a hint when there is one.
        message: String,
        /// Whether trying the whole transfer again may heal it: only for answers to requests
        /// that were not already retried (a streamed upload).
        retryable: bool,
    },
    /// The registry wants Basic credentials and none are configured, or getting a token failed.
    #[error("{registry}: authentication failed: {detail}")]
    Auth {
        /// The registry's domain.
        registry: String,
        /// What failed.
        detail: String,
    },
    /// An answer that breaks the distribution API (a missing or bad header, an oversized or
    /// altered manifest), or a URL that cannot be built.
    #[error("{registry}: {detail}")]
    Protocol {
        /// The registry's domain.
        registry: String,
        /// What is wrong.
        detail: String,
    },
    /// A manifest the registry sent is unusable: wrong digest, unsupported type, invalid or too large.
    #[error("{registry}: {operation}: {source}")]
    Manifest {
        /// The registry's domain.
        registry: String,
        /// What was being done.
        operation: String,
        /// What is wrong with the manifest.
        source: Box<ManifestError>,
    },
    /// The HTTP client cannot be set up (CA certificate files, TLS).
    #[error("{detail}")]
    Config {
        /// What is wrong.
        detail: String,
    },
}

impl RegistryError {
    /// The same error from a request whose own retries are spent.
    pub(crate) fn attempts_spent(mut self) -> Self {
        if let RegistryError::Transport { retryable, .. } = &mut self {
            *retryable = false;
        }
        self
    }

    /// The same error from a request tried once (a streamed body cannot be replayed): a
    /// status that may heal makes the whole transfer worth trying again.
    pub(crate) fn tried_once(mut self) -> Self {
        if let RegistryError::Status { status, retryable, .. } = &mut self {
            *retryable = *status == 408 || *status == 429 || *status >= 500;
        }
        self
    }

    /// Whether trying the whole operation again may succeed (the request-level retries are
    /// already spent when this is asked).
    pub fn is_retryable(&self) -> bool {
        match self {
            RegistryError::Transport { retryable, .. } => *retryable,
            RegistryError::Status { retryable, .. } => *retryable,
            _ => false,
        }
    }
}
