//! Manifests as raw bytes plus media type and digest. Bytes are never re-serialised: parsing
//! (with oci-spec) only finds the descriptors a manifest points at.

use bytes::Bytes;
use oci_spec::image::{ImageIndex, ImageManifest};

use crate::reference::{Digest, Hasher};

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Always sent when reading manifests: without it a registry may answer 404 for OCI content
/// or convert a Docker schema 2 manifest to schema 1 (a different digest).
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// Largest manifest accepted (distribution's own limit).
pub const MAX_MANIFEST_SIZE: usize = 4 * 1024 * 1024;

const FOREIGN_LAYER_TYPES: &[&str] = &[
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest digest mismatch: expected {expected}, the bytes hash to {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("manifest media type {0} cannot be relocated (only Docker schema 2 and OCI manifests and indexes keep their digest)")]
    Unsupported(String),
    #[error("manifest {digest} is not valid JSON for its media type {media_type}: {reason}")]
    Invalid {
        digest: Digest,
        media_type: String,
        reason: String,
    },
    #[error("manifest is {0} bytes; over {MAX_MANIFEST_SIZE} bytes is refused")]
    TooLarge(usize),
}

/// What a manifest points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub urls: Vec<String>,
    /// `os/architecture[/variant]`, for index entries that say so.
    pub platform: Option<String>,
}

impl Descriptor {
    /// Non-distributable ("foreign") layers are not copied, as go-containerregistry does.
    pub fn is_foreign(&self) -> bool {
        FOREIGN_LAYER_TYPES.contains(&self.media_type.as_str())
    }

    pub fn is_index(&self) -> bool {
        is_index_type(&self.media_type)
    }
}

fn is_index_type(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// A manifest or index exactly as stored: its bytes, media type and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub bytes: Bytes,
    pub media_type: String,
    pub digest: Digest,
}

/// The references of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestContent {
    Image {
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
    Index {
        manifests: Vec<Descriptor>,
    },
}

impl Manifest {
    /// Checks `bytes` against `expected` (when known) and settles the media type: a known
    /// manifest type given by the registry or layout, else the document's own `mediaType`,
    /// else its shape (OCI manifests may lack the field).
    pub fn new(
        bytes: Bytes,
        declared_type: Option<&str>,
        expected: Option<&Digest>,
    ) -> Result<Manifest, ManifestError> {
        if bytes.len() > MAX_MANIFEST_SIZE {
            return Err(ManifestError::TooLarge(bytes.len()));
        }
        let digest = match expected {
            Some(want) => {
                let mut h = want.hasher();
                h.update(&bytes);
                let got = h.finish();
                if &got != want {
                    return Err(ManifestError::DigestMismatch {
                        expected: want.clone(),
                        actual: got,
                    });
                }
                got
            }
            None => Digest::sha256_of(&bytes),
        };
        let declared = declared_type
            .map(|t| t.split(';').next().unwrap_or_default().trim())
            .filter(|t| !t.is_empty());
        let media_type = match declared {
            Some(t) if [DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX].contains(&t) => t.to_string(),
            Some(t) if t.starts_with("application/vnd.docker.distribution.manifest.v1") => {
                return Err(ManifestError::Unsupported(t.to_string()))
            }
            _ => sniff_media_type(&bytes).ok_or_else(|| {
                ManifestError::Unsupported(declared.unwrap_or("(none, and the document names none)").to_string())
            })?,
        };
        Ok(Manifest {
            bytes,
            media_type,
            digest,
        })
    }

    pub fn is_index(&self) -> bool {
        is_index_type(&self.media_type)
    }

    /// Parses the descriptors this manifest points at.
    pub fn content(&self) -> Result<ManifestContent, ManifestError> {
        let invalid = |reason: String| ManifestError::Invalid {
            digest: self.digest.clone(),
            media_type: self.media_type.clone(),
            reason,
        };
        if self.is_index() {
            let index: ImageIndex = serde_json::from_slice(&self.bytes).map_err(|e| invalid(e.to_string()))?;
            let manifests = index
                .manifests()
                .iter()
                .map(convert)
                .collect::<Result<_, _>>()
                .map_err(invalid)?;
            Ok(ManifestContent::Index { manifests })
        } else {
            let m: ImageManifest = serde_json::from_slice(&self.bytes).map_err(|e| invalid(e.to_string()))?;
            Ok(ManifestContent::Image {
                config: convert(m.config()).map_err(invalid)?,
                layers: m
                    .layers()
                    .iter()
                    .map(convert)
                    .collect::<Result<_, _>>()
                    .map_err(invalid)?,
            })
        }
    }
}

fn sniff_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Shape {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde::de::IgnoredAny>,
        config: Option<serde::de::IgnoredAny>,
        #[serde(rename = "schemaVersion")]
        schema_version: Option<u32>,
    }
    let shape: Shape = serde_json::from_slice(bytes).ok()?;
    if shape.schema_version != Some(2) {
        return None;
    }
    match shape.media_type {
        Some(t) => [DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX]
            .contains(&t.as_str())
            .then_some(t),
        None if shape.manifests.is_some() => Some(OCI_INDEX.to_string()),
        None if shape.config.is_some() => Some(OCI_MANIFEST.to_string()),
        None => None,
    }
}

fn convert(d: &oci_spec::image::Descriptor) -> Result<Descriptor, String> {
    let digest: Digest = d
        .digest()
        .to_string()
        .parse()
        .map_err(|e: crate::reference::ReferenceError| e.to_string())?;
    let platform = d.platform().as_ref().map(|p| {
        let mut s = format!("{}/{}", p.os(), p.architecture());
        if let Some(v) = p.variant() {
            s.push('/');
            s.push_str(v);
        }
        s
    });
    Ok(Descriptor {
        media_type: d.media_type().to_string(),
        digest,
        size: d.size(),
        urls: d.urls().clone().unwrap_or_default(),
        platform,
    })
}

/// Hashes streamed content and checks it against a descriptor's digest and size.
pub struct Verifier {
    hasher: Hasher,
    seen: u64,
}

impl Verifier {
    pub fn new(expected: &Digest) -> Self {
        Verifier {
            hasher: expected.hasher(),
            seen: 0,
        }
    }

    pub fn update(&mut self, chunk: &[u8]) {
        self.hasher.update(chunk);
        self.seen += chunk.len() as u64;
    }

    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// The digest of what was seen so far (the hasher keeps running).
    pub fn digest_so_far(&self) -> Digest {
        self.hasher.clone().finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OCI_NO_TYPE: &str = r#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:a0f3dbd6a37cf0064a77811210652cfdb1f135cb7b7bc788891e71f0868506f9","size":384},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:39e75cbcdb7e602ab96e8413c3df96f8da5ae0687199d1ecdfaa9d2523f8d2b4","size":97},{"mediaType":"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip","digest":"sha256:39e75cbcdb7e602ab96e8413c3df96f8da5ae0687199d1ecdfaa9d2523f8d2b4","size":97,"urls":["https://example.com/l"]}]}"#;

    #[test]
    fn oci_manifest_without_media_type_is_recognised_and_parsed() {
        let m = Manifest::new(
            Bytes::from_static(OCI_NO_TYPE.as_bytes()),
            Some("application/json"),
            None,
        )
        .unwrap();
        assert_eq!(m.media_type, OCI_MANIFEST);
        assert_eq!(m.digest, Digest::sha256_of(OCI_NO_TYPE.as_bytes()));
        let ManifestContent::Image { config, layers } = m.content().unwrap() else {
            panic!("an image")
        };
        assert_eq!(config.size, 384);
        assert_eq!(layers.len(), 2);
        assert!(!layers[0].is_foreign());
        assert!(layers[1].is_foreign());
        assert_eq!(layers[1].urls, ["https://example.com/l"]);
    }

    #[test]
    fn digest_is_checked() {
        let wrong: Digest = format!("sha256:{}", "0".repeat(64)).parse().unwrap();
        let e = Manifest::new(Bytes::from_static(OCI_NO_TYPE.as_bytes()), None, Some(&wrong)).unwrap_err();
        assert!(matches!(e, ManifestError::DigestMismatch { .. }));
    }

    #[test]
    fn header_type_wins_and_parameters_are_dropped() {
        let list = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"sha256:054803f7f77d4007681e60f866c9eaf3794d24c8e7deddcea25039caaeb4f907","size":412,"platform":{"architecture":"arm64","os":"linux","variant":"v8"}}]}"#;
        let m = Manifest::new(
            Bytes::from_static(list.as_bytes()),
            Some("application/vnd.docker.distribution.manifest.list.v2+json; charset=utf-8"),
            None,
        )
        .unwrap();
        assert!(m.is_index());
        let ManifestContent::Index { manifests } = m.content().unwrap() else {
            panic!("an index")
        };
        assert_eq!(manifests[0].platform.as_deref(), Some("linux/arm64/v8"));
    }

    #[test]
    fn schema1_and_unknown_documents_are_refused() {
        let e = Manifest::new(
            Bytes::from_static(b"{}"),
            Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
            None,
        )
        .unwrap_err();
        assert!(matches!(e, ManifestError::Unsupported(_)));
        assert!(Manifest::new(Bytes::from_static(b"{\"a\":1}"), None, None).is_err());
    }
}
