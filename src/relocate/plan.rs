//! The relocation plan: every bundle image with its relocated reference, computed (and
//! validated) before anything is copied.

use super::mapping::{map_reference, MappingError, RepositoryPrefix};
use super::relmap::RelocationMapping;
use crate::bundle::BundleImageRef;
use crate::reference::{Digest, Reference};

/// A manifest in a repository, by tag or by digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ManifestSelector {
    Tag(String),
    Digest(Digest),
}

impl ManifestSelector {
    /// `repository:tag` or `repository@digest`.
    pub fn in_repository(&self, repository: &str) -> String {
        match self {
            ManifestSelector::Tag(t) => format!("{repository}:{t}"),
            ManifestSelector::Digest(d) => format!("{repository}@{d}"),
        }
    }
}

impl std::fmt::Display for ManifestSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ManifestSelector::Tag(t) => f.write_str(t),
            ManifestSelector::Digest(d) => write!(f, "{d}"),
        }
    }
}

/// One image to copy.
#[derive(Debug, Clone)]
pub struct PlannedImage {
    /// The bundle's image string (the key in the relocation mapping).
    pub raw: String,
    pub original: Reference,
    /// Where it goes, with the original's tag and digest (the value in the mapping).
    pub relocated: Reference,
    /// The digest the copied manifest must have, when the bundle pins one.
    pub expected_digest: Option<Digest>,
    pub declared_by: Vec<String>,
}

impl PlannedImage {
    /// The tag to push under, if any: the original's tag, or `latest` for a reference with
    /// neither tag nor digest (that is what the mapped reference resolves to when pulled).
    pub fn push_tag(&self) -> Option<&str> {
        match (self.original.tag(), self.original.digest()) {
            (Some(tag), _) => Some(tag),
            (None, None) => Some("latest"),
            (None, Some(_)) => None,
        }
    }

    /// What to read from the source: the pinned digest (SPEC §5: the reference's digest, else
    /// `contentDigest`), else the tag (`latest` when there is none).
    pub fn source_selector(&self) -> ManifestSelector {
        match &self.expected_digest {
            Some(d) => ManifestSelector::Digest(d.clone()),
            None => ManifestSelector::Tag(self.original.tag().unwrap_or("latest").to_string()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub prefix: RepositoryPrefix,
    pub images: Vec<PlannedImage>,
}

impl Plan {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_name_a_manifest_in_a_repository() {
        let d: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        assert_eq!(
            ManifestSelector::Tag("v1".into()).in_repository("team/app"),
            "team/app:v1"
        );
        assert_eq!(
            ManifestSelector::Digest(d.clone()).in_repository("team/app"),
            format!("team/app@{d}")
        );
    }
}
