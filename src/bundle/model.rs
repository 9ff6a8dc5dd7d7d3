//! The parts of a CNAB `bundle.json` relocation needs. Unknown fields are tolerated and the
//! bundle is only ever read: nothing here is serialised back.

use std::collections::BTreeMap;

use serde::Deserialize;

/// A CNAB `bundle.json`, reduced to the fields relocation reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Bundle {
    /// The bundle's `name`.
    #[serde(default)]
    pub name: Option<String>,
    /// The bundle's `version`.
    #[serde(default)]
    pub version: Option<String>,
    /// `invocationImages`, in array order.
    #[serde(rename = "invocationImages", default)]
    pub invocation_images: Option<Vec<BundleImage>>,
    /// Keyed images (`images`); a `BTreeMap` iterates them in byte-wise sorted key order,
    /// which is the order they are relocated in.
    #[serde(default)]
    pub images: Option<BTreeMap<String, BundleImage>>,
}

/// One entry of `invocationImages` or `images`.
#[derive(Debug, Clone, Deserialize)]
pub struct BundleImage {
    /// The image reference, as written in the bundle.
    pub image: String,
    /// `imageType`; absent means `oci`.
    #[serde(rename = "imageType", default)]
    pub image_type: Option<String>,
    /// `contentDigest`: the digest the image's manifest must have, when given.
    #[serde(rename = "contentDigest", default)]
    pub content_digest: Option<String>,
    /// `mediaType`, as declared.
    #[serde(rename = "mediaType", default)]
    pub media_type: Option<String>,
    /// `size` in bytes, as declared.
    #[serde(default)]
    pub size: Option<u64>,
}
