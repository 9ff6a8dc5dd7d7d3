//! What refers to a manifest: OCI 1.1 referrers (manifests with a `subject`, listed by the
//! referrers API or the fallback tag `<alg>-<hex>`) and cosign's tags `<alg>-<hex>.sig|.att|.sbom`.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::manifest::{Manifest, ManifestError};
use super::media_types::OCI_INDEX;
use crate::reference::Digest;

/// What a referrer is, for people reading the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferrerKind {
    /// A signature (cosign `.sig`, notation, a cosign signature artifact).
    Signature,
    /// An attestation (cosign `.att`, in-toto).
    Attestation,
    /// A software bill of materials (cosign `.sbom`, SPDX, CycloneDX).
    Sbom,
    /// Anything else that names the manifest as its `subject`.
    Referrer,
}

impl ReferrerKind {
    /// The word used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            ReferrerKind::Signature => "signature",
            ReferrerKind::Attestation => "attestation",
            ReferrerKind::Sbom => "sbom",
            ReferrerKind::Referrer => "referrer",
        }
    }

    /// The kind an `artifactType` suggests.
    pub fn of_artifact_type(artifact_type: Option<&str>) -> ReferrerKind {
        let Some(t) = artifact_type else {
            return ReferrerKind::Referrer;
        };
        if t.contains("spdx") || t.contains("cyclonedx") || t.contains("sbom") {
            ReferrerKind::Sbom
        } else if t.contains("in-toto") || t.contains("dsse") || t.contains("attestation") {
            ReferrerKind::Attestation
        } else if t.contains("signature") || t.contains("cosign.artifact.sig") {
            ReferrerKind::Signature
        } else {
            ReferrerKind::Referrer
        }
    }
}

/// cosign's tag suffixes and what they hold.
pub const COSIGN_SUFFIXES: [(&str, ReferrerKind); 3] = [
    ("sig", ReferrerKind::Signature),
    ("att", ReferrerKind::Attestation),
    ("sbom", ReferrerKind::Sbom),
];

/// The referrers tag schema's tag for `subject`: `sha256-<hex>`.
pub fn fallback_tag(subject: &Digest) -> String {
    format!("{}-{}", subject.algorithm().name(), subject.hex())
}

/// cosign's tag for `subject` with `suffix`: `sha256-<hex>.sig`.
pub fn cosign_tag(subject: &Digest, suffix: &str) -> String {
    format!("{}.{suffix}", fallback_tag(subject))
}

/// The subject digest and kind a cosign tag names (`sha256-<hex>.sig` → signature).
pub fn parse_cosign_tag(tag: &str) -> Option<(Digest, ReferrerKind)> {
    let (base, suffix) = tag.rsplit_once('.')?;
    let kind = COSIGN_SUFFIXES.iter().find(|(s, _)| *s == suffix)?.1;
    Some((parse_fallback_tag(base)?, kind))
}

/// The subject digest a fallback tag names (`sha256-<hex>`).
pub fn parse_fallback_tag(tag: &str) -> Option<Digest> {
    let (algorithm, hex) = tag.split_once('-')?;
    format!("{algorithm}:{hex}").parse().ok()
}

/// One entry of a referrers index: the referrer's descriptor with its `artifactType` and
/// annotations, as the distribution spec asks.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferrerEntry {
    /// The referrer manifest's media type.
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// What kind of artifact it is.
    #[serde(default)]
    pub artifact_type: Option<String>,
    /// Its annotations, as the manifest has them.
    #[serde(default)]
    pub annotations: Option<Map<String, Value>>,
}

impl ReferrerEntry {
    /// The entry for a referrer manifest: `artifactType` from the manifest, else its config's
    /// media type (the spec's rule for image manifests); annotations copied.
    pub fn of(manifest: &Manifest) -> Result<ReferrerEntry, ManifestError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Fields {
            artifact_type: Option<String>,
            config: Option<MediaTyped>,
            annotations: Option<Map<String, Value>>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct MediaTyped {
            media_type: Option<String>,
        }
        let f: Fields = serde_json::from_slice(&manifest.bytes).map_err(|e| invalid(manifest, e))?;
        Ok(ReferrerEntry {
            media_type: manifest.media_type.clone(),
            digest: manifest.digest.clone(),
            size: manifest.bytes.len() as u64,
            artifact_type: f.artifact_type.or_else(|| f.config.and_then(|c| c.media_type)),
            annotations: f.annotations,
        })
    }

    /// The kind its `artifactType` suggests.
    pub fn kind(&self) -> ReferrerKind {
        ReferrerKind::of_artifact_type(self.artifact_type.as_deref())
    }

    fn to_json(&self) -> Value {
        let mut d = json!({
            "mediaType": self.media_type,
            "digest": self.digest.to_string(),
            "size": self.size,
        });
        if let Some(t) = &self.artifact_type {
            d["artifactType"] = json!(t);
        }
        if let Some(a) = &self.annotations {
            d["annotations"] = Value::Object(a.clone());
        }
        d
    }
}

fn invalid(manifest: &Manifest, e: serde_json::Error) -> ManifestError {
    ManifestError::Invalid {
        digest: manifest.digest.clone(),
        media_type: manifest.media_type.clone(),
        reason: e.to_string(),
    }
}

/// The `subject` digest of a manifest, when it names one; most do not, so the bytes are
/// parsed only when they hold the key.
pub fn subject_of(manifest: &Manifest) -> Result<Option<Digest>, ManifestError> {
    if !manifest.bytes.windows(9).any(|w| w == b"\"subject\"") {
        return Ok(None);
    }
    #[derive(Deserialize)]
    struct WithSubject {
        subject: Option<SubjectDigest>,
    }
    #[derive(Deserialize)]
    struct SubjectDigest {
        digest: Digest,
    }
    let s: WithSubject = serde_json::from_slice(&manifest.bytes).map_err(|e| invalid(manifest, e))?;
    Ok(s.subject.map(|s| s.digest))
}

/// The entries of a referrers index (the API's answer or a fallback tag's index).
pub fn referrers_in(index: &Manifest) -> Result<Vec<ReferrerEntry>, ManifestError> {
    #[derive(Deserialize)]
    struct Index {
        #[serde(default)]
        manifests: Vec<ReferrerEntry>,
    }
    let i: Index = serde_json::from_slice(&index.bytes).map_err(|e| invalid(index, e))?;
    Ok(i.manifests)
}

/// The fallback tag's index with `entries` added to `existing` (its entries and fields kept
/// as they are; an entry already listed is not added again), or `None` when it holds them
/// all already.
pub fn merged_fallback_index(
    existing: Option<&Manifest>,
    entries: &[ReferrerEntry],
) -> Result<Option<Manifest>, ManifestError> {
    let mut document = match existing {
        Some(m) => serde_json::from_slice::<Value>(&m.bytes).map_err(|e| invalid(m, e))?,
        None => json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [] }),
    };
    let Some(list) = document.get_mut("manifests").and_then(Value::as_array_mut) else {
        let m = existing.expect("a new index has a list");
        return Err(invalid(m, serde::de::Error::custom("the index has no manifests list")));
    };
    let listed = |list: &Vec<Value>, d: &Digest| {
        let d = d.to_string();
        list.iter()
            .any(|e| e.get("digest").and_then(Value::as_str) == Some(d.as_str()))
    };
    let mut added = false;
    for e in entries {
        if !listed(list, &e.digest) {
            list.push(e.to_json());
            added = true;
        }
    }
    if !added {
        return Ok(None);
    }
    let bytes = serde_json::to_vec(&document).expect("JSON values serialise");
    Manifest::new(bytes.into(), Some(OCI_INDEX), None).map(Some)
}

/// The fallback index `index` without the entries `gone` (their manifests were deleted).
pub fn pruned_fallback_index(index: Option<&Manifest>, gone: &[Digest]) -> Result<Manifest, ManifestError> {
    let mut document = match index {
        Some(m) => serde_json::from_slice::<Value>(&m.bytes).map_err(|e| invalid(m, e))?,
        None => json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [] }),
    };
    if let Some(list) = document.get_mut("manifests").and_then(Value::as_array_mut) {
        let gone: Vec<String> = gone.iter().map(Digest::to_string).collect();
        list.retain(|e| {
            !e.get("digest")
                .and_then(Value::as_str)
                .is_some_and(|d| gone.iter().any(|g| g == d))
        });
    }
    let bytes = serde_json::to_vec(&document).expect("JSON values serialise");
    Manifest::new(bytes.into(), Some(OCI_INDEX), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> Digest {
        format!("sha256:{}", c.to_string().repeat(64)).parse().unwrap()
    }

    fn referrer(artifact_type: &str, subject: &Digest) -> Manifest {
        let json = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": artifact_type,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": d('e').to_string(), "size": 2},
            "layers": [],
            "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject.to_string(), "size": 7},
            "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"}
        });
        Manifest::new(serde_json::to_vec(&json).unwrap().into(), None, None).unwrap()
    }

    #[test]
    fn tags_name_their_subject() {
        let s = d('a');
        assert_eq!(fallback_tag(&s), format!("sha256-{}", "a".repeat(64)));
        assert_eq!(
            parse_cosign_tag(&cosign_tag(&s, "att")),
            Some((s.clone(), ReferrerKind::Attestation))
        );
        assert_eq!(parse_fallback_tag(&fallback_tag(&s)), Some(s.clone()));
        assert_eq!(parse_cosign_tag("v1.2.sig"), None);
        assert_eq!(parse_cosign_tag(&format!("{}.txt", fallback_tag(&s))), None);
        assert_eq!(parse_fallback_tag("latest"), None);
    }

    #[test]
    fn an_entry_carries_artifact_type_and_annotations() {
        let subject = d('a');
        let m = referrer("application/spdx+json", &subject);
        assert_eq!(subject_of(&m).unwrap(), Some(subject));
        let e = ReferrerEntry::of(&m).unwrap();
        assert_eq!(e.artifact_type.as_deref(), Some("application/spdx+json"));
        assert_eq!(e.kind(), ReferrerKind::Sbom);
        assert!(e.annotations.unwrap().contains_key("org.opencontainers.image.created"));
    }

    #[test]
    fn without_artifact_type_the_config_media_type_stands_in() {
        let json = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.dev.cosign.artifact.sig.v1+json","digest":"sha256:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee","size":2},"layers":[]}"#;
        let m = Manifest::new(json.to_vec().into(), None, None).unwrap();
        let e = ReferrerEntry::of(&m).unwrap();
        assert_eq!(e.kind(), ReferrerKind::Signature);
        assert_eq!(subject_of(&m).unwrap(), None);
    }

    #[test]
    fn merging_keeps_what_is_there_and_adds_each_entry_once() {
        let subject = d('a');
        let sbom = ReferrerEntry::of(&referrer("application/spdx+json", &subject)).unwrap();
        let other = ReferrerEntry::of(&referrer("application/vnd.example+json", &subject)).unwrap();
        let first = merged_fallback_index(None, std::slice::from_ref(&other))
            .unwrap()
            .unwrap();
        let merged = merged_fallback_index(Some(&first), &[sbom.clone(), other.clone()])
            .unwrap()
            .unwrap();
        let listed = referrers_in(&merged).unwrap();
        assert_eq!(listed, vec![other.clone(), sbom.clone()]);
        assert_eq!(merged_fallback_index(Some(&merged), &[sbom, other]).unwrap(), None);
    }
}
