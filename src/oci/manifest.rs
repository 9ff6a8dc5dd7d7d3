//! Manifests and indexes as raw bytes plus media type and digest. The bytes are never
//! re-serialised (that would change the digest): parsing only finds the descriptors a manifest
//! points at, with a few serde structs that ignore every other field.

use bytes::Bytes;
use serde::Deserialize;

use super::descriptor::Descriptor;
use super::media_types::{is_index_type, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};
use crate::limits::MAX_MANIFEST_SIZE;
use crate::reference::Digest;

/// Why a manifest cannot be relocated as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The bytes do not hash to the digest they were asked for or announced with.
    #[error("manifest digest mismatch: expected {expected}, the bytes hash to {actual}")]
    DigestMismatch {
        /// The digest the manifest should have.
        expected: Digest,
        /// What its bytes hash to.
        actual: Digest,
    },
    /// Docker schema 1: signed and rewritten by registries, so its digest cannot be kept.
    #[error("Docker schema 1 manifests ({0}) are not supported: registries rewrite them, so their digest cannot be kept; convert the image to schema 2 first, e.g. `skopeo copy --format v2s2 docker://REF docker://NEW-REF`, and name the converted image in the bundle")]
    Schema1(String),
    /// The document's own `mediaType` says otherwise than its descriptor or `Content-Type`.
    #[error("manifest {digest} is served as {declared} but its mediaType field says {document}; it is refused rather than pushed under either")]
    MediaTypeConflict {
        /// The manifest's digest.
        digest: Digest,
        /// The type given by the registry or the layout.
        declared: String,
        /// The type the document names.
        document: String,
    },
    /// A document of no known manifest type.
    #[error("manifest media type {0} cannot be relocated (only Docker schema 2 and OCI manifests and indexes keep their digest)")]
    Unsupported(String),
    /// The document is not the JSON its media type promises.
    #[error("manifest {digest} is not valid JSON for its media type {media_type}: {reason}")]
    Invalid {
        /// The manifest's digest.
        digest: Digest,
        /// Its media type.
        media_type: String,
        /// What the parser said.
        reason: String,
    },
    /// Larger than any registry accepts.
    #[error("manifest is {0} bytes; over {MAX_MANIFEST_SIZE} bytes is refused")]
    TooLarge(usize),
}

/// A manifest or index exactly as stored: its bytes, media type and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The document, byte for byte.
    pub bytes: Bytes,
    /// One of the four manifest media types (parameters such as `charset` dropped).
    pub media_type: String,
    /// The digest of `bytes`.
    pub digest: Digest,
}

/// What a manifest points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestContent {
    /// An image manifest: one config and its layers.
    Image {
        /// The image configuration blob.
        config: Descriptor,
        /// Layer blobs, in order.
        layers: Vec<Descriptor>,
    },
    /// An index (manifest list): child manifests.
    Index {
        /// Child manifests, in order.
        manifests: Vec<Descriptor>,
    },
}

#[derive(Deserialize)]
struct ImageJson {
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct IndexJson {
    manifests: Vec<Descriptor>,
}

impl Manifest {
    /// Checks `bytes` against `expected` (when known) and settles the media type: a known
    /// manifest type given by the registry or layout, else the document's own `mediaType`,
    /// else its shape (OCI manifests may lack the field).
    ///
    /// ```
    /// use cnab_relocate::oci::{Manifest, OCI_MANIFEST};
    /// let json = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
    /// let m = Manifest::new(json.to_vec().into(), Some("application/json"), None).unwrap();
    /// assert_eq!(m.media_type, OCI_MANIFEST);
    /// ```
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
                return Err(ManifestError::Schema1(t.to_string()))
            }
            _ if schema_version(&bytes) == Some(1) => {
                return Err(ManifestError::Schema1(
                    declared.unwrap_or("schemaVersion 1").to_string(),
                ))
            }
            _ => sniff_media_type(&bytes).ok_or_else(|| {
                ManifestError::Unsupported(declared.unwrap_or("(none, and the document names none)").to_string())
            })?,
        };
        if let Some(document) = document_media_type(&bytes).filter(|t| *t != media_type) {
            return Err(ManifestError::MediaTypeConflict {
                digest,
                declared: media_type,
                document,
            });
        }
        Ok(Manifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// Whether this is an index (OCI index or Docker manifest list).
    pub fn is_index(&self) -> bool {
        is_index_type(&self.media_type)
    }

    /// Parses the descriptors this manifest points at.
    pub fn content(&self) -> Result<ManifestContent, ManifestError> {
        let invalid = |e: serde_json::Error| ManifestError::Invalid {
            digest: self.digest.clone(),
            media_type: self.media_type.clone(),
            reason: e.to_string(),
        };
        if self.is_index() {
            let index: IndexJson = serde_json::from_slice(&self.bytes).map_err(invalid)?;
            Ok(ManifestContent::Index {
                manifests: index.manifests,
            })
        } else {
            let m: ImageJson = serde_json::from_slice(&self.bytes).map_err(invalid)?;
            Ok(ManifestContent::Image {
                config: m.config,
                layers: m.layers,
            })
        }
    }
}

/// The document's own `mediaType`, when it names one of the manifest types.
fn document_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Typed {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    let t = serde_json::from_slice::<Typed>(bytes).ok()?.media_type?;
    [DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX]
        .contains(&t.as_str())
        .then_some(t)
}

fn schema_version(bytes: &[u8]) -> Option<u32> {
    #[derive(Deserialize)]
    struct Version {
        #[serde(rename = "schemaVersion")]
        schema_version: Option<u32>,
    }
    serde_json::from_slice::<Version>(bytes).ok()?.schema_version
}

fn sniff_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
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
        assert_eq!(manifests[0].platform.as_ref().unwrap().to_string(), "linux/arm64/v8");
    }

    #[test]
    fn a_media_type_field_contradicting_the_declared_type_is_refused() {
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        let e = Manifest::new(Bytes::from_static(index), Some(OCI_MANIFEST), None).unwrap_err();
        assert!(matches!(e, ManifestError::MediaTypeConflict { .. }), "{e}");
        assert!(Manifest::new(Bytes::from_static(index), Some(OCI_INDEX), None).is_ok());
        assert!(Manifest::new(Bytes::from_static(index), Some("application/json"), None).is_ok());
    }

    #[test]
    fn schema1_and_unknown_documents_are_refused() {
        let e = Manifest::new(
            Bytes::from_static(b"{}"),
            Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
            None,
        )
        .unwrap_err();
        assert!(matches!(e, ManifestError::Schema1(_)));
        assert!(e.to_string().contains("schema 1") && e.to_string().contains("skopeo copy --format v2s2"));
        let signed = br#"{"schemaVersion":1,"name":"a","tag":"1","fsLayers":[],"signatures":[]}"#;
        let e = Manifest::new(Bytes::from_static(signed), Some("application/json"), None).unwrap_err();
        assert!(
            matches!(e, ManifestError::Schema1(_)),
            "recognised by its schemaVersion: {e}"
        );
        assert!(Manifest::new(Bytes::from_static(b"{\"a\":1}"), None, None).is_err());
    }
}
