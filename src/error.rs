//! The library's error type and its mapping to exit codes (SPEC §2).

use crate::bundle::BundleError;
use crate::reference::ReferenceError;
use crate::relocate::MappingError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Mapping(#[from] MappingError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// Relocation failed after the input was accepted.
    #[error("{0}")]
    Relocation(String),
}

impl Error {
    /// 2 for usage or input errors (nothing was attempted), 1 when relocation failed.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Bundle(_) | Error::Mapping(_) | Error::Reference(_) => 2,
            Error::Relocation(_) => 1,
        }
    }
}
