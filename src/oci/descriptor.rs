//! Content descriptors: what a manifest or index entry points at.

use serde::Deserialize;

use super::media_types::{is_index_type, FOREIGN_LAYER_TYPES};
use crate::reference::Digest;

/// What a manifest points at: media type, digest and size (plus the fields relocation uses).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the content.
    pub media_type: String,
    /// Digest of the content.
    pub digest: Digest,
    /// Size of the content in bytes.
    pub size: u64,
    /// Where a foreign layer can be downloaded.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub urls: Vec<String>,
    /// Platform of an index entry, when it says.
    #[serde(default)]
    pub platform: Option<Platform>,
}

/// The platform an index entry is for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Platform {
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// CPU architecture, e.g. `arm64`.
    pub architecture: String,
    /// CPU variant, e.g. `v8`.
    #[serde(default)]
    pub variant: Option<String>,
}

impl std::fmt::Display for Platform {
    /// `os/architecture[/variant]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(v) => write!(f, "/{v}"),
            None => Ok(()),
        }
    }
}

impl Descriptor {
    /// Non-distributable ("foreign") layers are not copied, as go-containerregistry does.
    pub fn is_foreign(&self) -> bool {
        FOREIGN_LAYER_TYPES.contains(&self.media_type.as_str())
    }

    /// Whether it points at an index.
    pub fn is_index(&self) -> bool {
        is_index_type(&self.media_type)
    }
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}
