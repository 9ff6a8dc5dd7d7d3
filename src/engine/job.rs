//! What the engine is asked to copy: one image from a source to a destination repository.

use crate::reference::{Digest, ManifestSelector, Reference};

/// One image to copy. The engine copies identical jobs once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageJob {
    /// What the user calls the image (a bundle's image string): labels events and results.
    pub label: String,
    /// Where the image is read from: a registry reference, or the name an archive knows it by.
    pub source: Reference,
    /// The digest the copied manifest must have, when one is pinned.
    pub pinned: Option<Digest>,
    /// Where it goes: registry, repository, and the source's tag and digest.
    pub destination: Reference,
}

impl ImageJob {
    /// The destination repository's path (without the registry).
    pub fn destination_repository(&self) -> &str {
        self.destination.path()
    }

    /// How the image is pushed: by its tag (`latest` for a reference with neither tag nor
    /// digest, which is what pulling the relocated reference resolves to), else by digest.
    pub fn push_selector(&self) -> ManifestSelector {
        match (self.destination.tag(), self.destination.digest()) {
            (Some(tag), _) => ManifestSelector::Tag(tag.to_string()),
            (None, Some(d)) => ManifestSelector::Digest(d.clone()),
            (None, None) => ManifestSelector::Tag("latest".to_string()),
        }
    }

    /// What to read from the source: the pinned digest, else the tag (`latest` when none).
    pub fn source_selector(&self) -> ManifestSelector {
        match &self.pinned {
            Some(d) => ManifestSelector::Digest(d.clone()),
            None => ManifestSelector::Tag(self.source.tag().unwrap_or("latest").to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(source: &str, pinned: Option<&str>) -> ImageJob {
        let source = Reference::parse_normalized(source).unwrap();
        let destination = Reference::parse_normalized("example.com/x/app")
            .unwrap()
            .with_tag_and_digest(source.tag(), source.digest());
        ImageJob {
            label: source.to_string(),
            source,
            pinned: pinned.map(|d| d.parse().unwrap()),
            destination,
        }
    }

    #[test]
    fn pushes_by_tag_else_by_digest_else_latest() {
        let d = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(job("a:1", None).push_selector(), ManifestSelector::Tag("1".into()));
        assert_eq!(
            job(&format!("a:1@{d}"), Some(&d)).push_selector(),
            ManifestSelector::Tag("1".into())
        );
        assert_eq!(
            job(&format!("a@{d}"), Some(&d)).push_selector(),
            ManifestSelector::Digest(d.parse().unwrap())
        );
        assert_eq!(job("a", None).push_selector(), ManifestSelector::Tag("latest".into()));
        assert_eq!(
            job("a", Some(&d)).push_selector(),
            ManifestSelector::Tag("latest".into()),
            "contentDigest alone keeps the implied tag"
        );
        assert_eq!(
            job("a", Some(&d)).source_selector(),
            ManifestSelector::Digest(d.parse().unwrap())
        );
        assert_eq!(job("a:2", None).source_selector(), ManifestSelector::Tag("2".into()));
    }
}
