//! The parts of a CNAB `bundle.json` relocation needs. Unknown fields are tolerated and the
//! bundle is only ever read: nothing here is serialised back.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Bundle {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(rename = "invocationImages", default)]
    pub invocation_images: Option<Vec<BundleImage>>,
    /// Keyed images; a `BTreeMap` gives the deterministic (byte-wise sorted) order of SPEC §5.
    #[serde(default)]
    pub images: Option<BTreeMap<String, BundleImage>>,
}

/// One entry of `invocationImages` or `images`.
#[derive(Debug, Clone, Deserialize)]
pub struct BundleImage {
    pub image: String,
    #[serde(rename = "imageType", default)]
    pub image_type: Option<String>,
    #[serde(rename = "contentDigest", default)]
    pub content_digest: Option<String>,
    #[serde(rename = "mediaType", default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub size: Option<u64>,
}
