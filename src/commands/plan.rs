//! The relocation plan: every bundle image with its relocated reference, computed (and
//! validated) before anything is copied.

use crate::bundle::BundleImageRef;
use crate::engine::ImageJob;
use crate::mapping::{map_reference, MappingError, RepositoryPrefix};
use crate::reference::{Digest, Reference};
use crate::relmap::RelocationMapping;
use crate::sync::{MappingRules, RuleError};

/// One bundle image and where it goes.
#[derive(Debug, Clone)]
pub struct PlannedImage {
    /// The bundle's image string (the key in the relocation mapping).
    pub raw: String,
    /// The image string, parsed and normalised.
    pub original: Reference,
    /// Where it goes, with the original's tag and digest (the value in the mapping).
    pub relocated: Reference,
    /// The digest the copied manifest must have, when the bundle pins one.
    pub expected_digest: Option<Digest>,
    /// Where the bundle declares it, e.g. `invocationImages[0]`.
    pub declared_by: Vec<String>,
}

impl PlannedImage {
    /// The engine's job for this image.
    pub fn job(&self) -> ImageJob {
        ImageJob {
            label: self.raw.clone(),
            source: self.original.clone(),
            pinned: self.expected_digest.clone(),
            destination: self.relocated.clone(),
        }
    }
}

/// Every image of a bundle mapped under one prefix.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Where the images go.
    pub prefix: RepositoryPrefix,
    /// The images, in bundle order (invocation images, then `images` by key).
    pub images: Vec<PlannedImage>,
}

impl Plan {
    /// Maps each image under `prefix` by the first of `rules` that matches its name, else by
    /// duffle's rule; every result is checked, and two images landing on one repository and
    /// tag are refused.
    pub fn with_rules(
        prefix: RepositoryPrefix,
        images: Vec<BundleImageRef>,
        rules: &MappingRules,
    ) -> Result<Plan, RuleError> {
        let mut relocated = rules.relocate_all(&prefix, images.iter().map(|i| (i.raw.as_str(), &i.reference)))?;
        let images = images
            .into_iter()
            .map(|img| PlannedImage {
                relocated: relocated.remove(&img.raw).expect("every image relocated"),
                raw: img.raw,
                original: img.reference,
                expected_digest: img.expected_digest,
                declared_by: img.declared_by,
            })
            .collect();
        Ok(Plan { prefix, images })
    }

    /// Maps each image under `prefix`; fails on the first image whose name cannot be mapped.
    pub fn new(prefix: RepositoryPrefix, images: Vec<BundleImageRef>) -> Result<Plan, MappingError> {
        let images = images
            .into_iter()
            .map(|img| {
                let relocated = map_reference(&prefix, &img.reference)?;
                Ok(PlannedImage {
                    raw: img.raw,
                    original: img.reference,
                    relocated,
                    expected_digest: img.expected_digest,
                    declared_by: img.declared_by,
                })
            })
            .collect::<Result<_, MappingError>>()?;
        Ok(Plan { prefix, images })
    }

    /// The relocation mapping this plan produces once every image is copied.
    pub fn mapping(&self) -> RelocationMapping {
        self.images
            .iter()
            .map(|i| (i.raw.clone(), i.relocated.to_string()))
            .collect()
    }

    /// The engine's jobs, one per image.
    pub fn jobs(&self) -> Vec<ImageJob> {
        self.images.iter().map(PlannedImage::job).collect()
    }
}
