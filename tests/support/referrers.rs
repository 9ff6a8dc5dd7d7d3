//! Referrers of images in real registries: signatures, attestations and SBOMs, written the way
//! their producers write them, and plain-HTTP helpers to push them and to read a repository
//! whole (`snapshot`).
//!
//! Producers, and why some are made by hand:
//! * images: umoci builds them, skopeo pushes them (real producers);
//! * cosign-style signatures (`sha256-<hex>.sig`): Debian's skopeo 1.9.3 has sigstore signing
//!   *and* verification patched out ("Debian-local change: sigstore disabled"), and no cosign is
//!   packaged, so they are made here byte for byte as containers/image (what `skopeo copy
//!   --sign-by-sigstore-private-key` runs) or cosign (go-containerregistry) write them, signed
//!   for real by `openssl` with the test key in `tests/fixtures/sigstore/`;
//! * the cosign attestation (`.att`): a DSSE envelope layer with cosign's annotations;
//! * SBOMs with `subject`: as `oras attach` writes them (oras-go 2, image-spec 1.1), including
//!   the referrers tag schema fallback (`sha256-<hex>` index) on registries without the
//!   referrers API, merged as oras-go merges it.
//!
//! JSON is written with its keys in the order Go's `encoding/json` writes those structs (the
//! bytes, hence the digests, look like the real producers').

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use base64::Engine;
use serde_json::Value;

use super::fixtures::{self, sha256_hex, skopeo_copy, Layout};
use super::registry::TestRegistry;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// sha256 of `{}`, the image-spec 1.1 empty descriptor.
pub const EMPTY_DIGEST: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const DSSE: &str = "application/vnd.dsse.envelope.v1+json";
pub const SPDX_JSON: &str = "application/spdx+json";
pub const CYCLONEDX_JSON: &str = "application/vnd.cyclonedx+json";
/// cosign's annotation holding the base64 signature (empty on attestations).
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
pub const CREATED: &str = "org.opencontainers.image.created";
pub const TITLE: &str = "org.opencontainers.image.title";
pub const SLSA_PROVENANCE: &str = "https://slsa.dev/provenance/v0.2";

const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

// ---------------------------------------------------------------------------------------------
// the test key

pub fn sigstore_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sigstore")
}

/// The test public key (PEM `PUBLIC KEY`), as `cosign verify --key` takes it.
pub fn public_key() -> PathBuf {
    sigstore_dir().join("cosign.pub")
}

/// An ECDSA P-256 / SHA-256 signature (ASN.1 DER, as cosign stores it) of `data`, made by
/// openssl with the test key.
pub fn sign(data: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("data");
    std::fs::write(&input, data).unwrap();
    let keys = sigstore_dir();
    fixtures::run(
        Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(keys.join("cosign.openssl.pem"))
            .arg("-passin")
            .arg(format!("file:{}", keys.join("passphrase").display()))
            .arg(&input),
    )
    .stdout
}

/// Whether openssl accepts `signature` (DER) of `data` under the test public key.
pub fn openssl_verifies(data: &[u8], signature: &[u8]) -> bool {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data"), data).unwrap();
    std::fs::write(dir.path().join("sig"), signature).unwrap();
    Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(public_key())
        .arg("-signature")
        .arg(dir.path().join("sig"))
        .arg(dir.path().join("data"))
        .output()
        .unwrap()
        .status
        .success()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(text).unwrap()
}

// ---------------------------------------------------------------------------------------------
// JSON as Go writes it

/// A JSON string.
fn s(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

/// A JSON object with its keys in the order given (as Go writes a struct); values are JSON
/// text.
fn obj(fields: &[(&str, String)]) -> String {
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("{}:{v}", s(k))).collect();
    format!("{{{}}}", body.join(","))
}

/// A Go map: keys sorted.
fn map(entries: &BTreeMap<String, String>) -> String {
    serde_json::to_string(entries).unwrap()
}

pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").expect("a sha256 digest")
}

/// cosign's tag for what refers to `digest`: `sha256-<hex>.<suffix>` (`sig`, `att`, `sbom`).
pub fn cosign_tag(digest: &str, suffix: &str) -> String {
    format!("sha256-{}.{suffix}", hex(digest))
}

/// The referrers tag schema's tag for `digest`: `sha256-<hex>`.
pub fn fallback_tag(digest: &str) -> String {
    format!("sha256-{}", hex(digest))
}

/// Whether `tag` is a referrers tag schema tag (`sha256-` and 64 hex digits, nothing more).
pub fn is_fallback_tag(tag: &str) -> bool {
    tag.strip_prefix("sha256-")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

// ---------------------------------------------------------------------------------------------
// artifacts (a manifest and its blobs)

/// A manifest and the blobs it names (config first), ready to push or to put in a layout.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub media_type: String,
    pub manifest: Vec<u8>,
    pub blobs: Vec<Vec<u8>>,
}

impl Artifact {
    pub fn digest(&self) -> String {
        digest_of(&self.manifest)
    }

    pub fn size(&self) -> u64 {
        self.manifest.len() as u64
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.manifest).unwrap()
    }

    /// What the referrers API and the referrers tag schema list for it (as oras-go builds it:
    /// the manifest's `artifactType`, else its config's media type, and its annotations).
    pub fn referrer_descriptor(&self) -> Value {
        referrer_descriptor(&self.media_type, &self.manifest)
    }

    /// The index.json descriptor of an OCI layout for it (no name).
    pub fn layout_descriptor(&self) -> Value {
        serde_json::json!({"mediaType": self.media_type, "digest": self.digest(), "size": self.size()})
    }

    /// Stores the manifest and its blobs in `layout`.
    pub fn store(&self, layout: &Layout) -> String {
        for b in &self.blobs {
            layout.put_blob(b);
        }
        layout.put_blob(&self.manifest)
    }
}

/// The referrers descriptor of a manifest, built as oras-go's `indexReferrersForPush` does.
pub fn referrer_descriptor(media_type: &str, manifest: &[u8]) -> Value {
    let m: Value = serde_json::from_slice(manifest).unwrap();
    let mut d = serde_json::json!({"mediaType": media_type, "digest": digest_of(manifest), "size": manifest.len()});
    let artifact_type = m["artifactType"].as_str().or(m["config"]["mediaType"].as_str());
    if let Some(a) = artifact_type {
        d["artifactType"] = a.into();
    }
    if let Some(a) = m.get("annotations") {
        d["annotations"] = a.clone();
    }
    d
}

/// A descriptor as Go's image-spec `Descriptor` writes it (mediaType, digest, size,
/// annotations, data).
fn descriptor(media_type: &str, bytes: &[u8], annotations: Option<&BTreeMap<String, String>>, data: bool) -> String {
    let mut f = vec![
        ("mediaType", s(media_type)),
        ("digest", s(&digest_of(bytes))),
        ("size", bytes.len().to_string()),
    ];
    if let Some(a) = annotations {
        f.push(("annotations", map(a)));
    }
    if data {
        f.push(("data", s(&b64(bytes))));
    }
    obj(&f)
}

/// A descriptor as go-containerregistry writes it (mediaType, size, digest, annotations).
fn ggcr_descriptor(media_type: &str, bytes: &[u8], annotations: Option<&BTreeMap<String, String>>) -> String {
    let mut f = vec![
        ("mediaType", s(media_type)),
        ("size", bytes.len().to_string()),
        ("digest", s(&digest_of(bytes))),
    ];
    if let Some(a) = annotations {
        f.push(("annotations", map(a)));
    }
    obj(&f)
}

/// The subject descriptor of a manifest as oras resolves it: mediaType, digest, size.
pub fn subject_of(media_type: &str, digest: &str, size: u64) -> String {
    obj(&[
        ("mediaType", s(media_type)),
        ("digest", s(digest)),
        ("size", size.to_string()),
    ])
}

fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// The simple-signing payload containers/image writes (`critical`, `optional` with creator
/// and timestamp; Go maps, keys sorted).
pub fn payload_containers_image(image_digest: &str, docker_reference: &str) -> Vec<u8> {
    let critical = obj(&[
        ("identity", obj(&[("docker-reference", s(docker_reference))])),
        ("image", obj(&[("docker-manifest-digest", s(image_digest))])),
        ("type", s("cosign container image signature")),
    ]);
    let optional = obj(&[
        ("creator", s("containers/image 5.23.1")),
        ("timestamp", "1700000000".into()),
    ]);
    obj(&[("critical", critical), ("optional", optional)]).into_bytes()
}

/// The simple-signing payload cosign writes (`optional: null`).
pub fn payload_cosign(image_digest: &str, docker_reference: &str) -> Vec<u8> {
    let critical = obj(&[
        ("identity", obj(&[("docker-reference", s(docker_reference))])),
        ("image", obj(&[("docker-manifest-digest", s(image_digest))])),
        ("type", s("cosign container image signature")),
    ]);
    obj(&[("critical", critical), ("optional", "null".into())]).into_bytes()
}

/// The `.sig` manifest `skopeo copy --sign-by-sigstore-private-key` (containers/image 5.23)
/// writes for `image_digest` pushed as `docker_reference`: an OCI manifest, config
/// `{"architecture":"","os":"","config":{},"rootfs":…}`, one simple-signing layer carrying the
/// signature in `dev.cosignproject.cosign/signature`.
pub fn signature_as_skopeo(image_digest: &str, docker_reference: &str) -> Artifact {
    let payload = payload_containers_image(image_digest, docker_reference);
    let sig = b64(&sign(&payload));
    let config = obj(&[
        ("architecture", s("")),
        ("os", s("")),
        ("config", "{}".into()),
        (
            "rootfs",
            obj(&[
                ("type", s("layers")),
                ("diff_ids", format!("[{}]", s(&digest_of(&payload)))),
            ]),
        ),
    ])
    .into_bytes();
    let layer = descriptor(
        SIMPLE_SIGNING,
        &payload,
        Some(&annotations(&[(SIGNATURE_ANNOTATION, &sig)])),
        false,
    );
    let manifest = obj(&[
        ("schemaVersion", "2".into()),
        ("mediaType", s(OCI_MANIFEST)),
        ("config", descriptor(OCI_CONFIG, &config, None, false)),
        ("layers", format!("[{layer}]")),
    ]);
    Artifact {
        media_type: OCI_MANIFEST.into(),
        manifest: manifest.into_bytes(),
        blobs: vec![config, payload],
    }
}

/// go-containerregistry's config for cosign's images of one layer each.
fn ggcr_config(layer: &[u8]) -> Vec<u8> {
    obj(&[
        ("architecture", s("")),
        ("created", s("0001-01-01T00:00:00Z")),
        (
            "history",
            format!("[{}]", obj(&[("created", s("0001-01-01T00:00:00Z"))])),
        ),
        ("os", s("")),
        (
            "rootfs",
            obj(&[
                ("type", s("layers")),
                ("diff_ids", format!("[{}]", s(&digest_of(layer)))),
            ]),
        ),
        ("config", "{}".into()),
    ])
    .into_bytes()
}

/// A cosign image of one layer (`.sig`, `.att`, `.sbom`), as go-containerregistry writes it.
fn cosign_image(layer_type: &str, layer: Vec<u8>, layer_annotations: Option<&BTreeMap<String, String>>) -> Artifact {
    let config = ggcr_config(&layer);
    let manifest = obj(&[
        ("schemaVersion", "2".into()),
        ("mediaType", s(OCI_MANIFEST)),
        ("config", ggcr_descriptor(OCI_CONFIG, &config, None)),
        (
            "layers",
            format!("[{}]", ggcr_descriptor(layer_type, &layer, layer_annotations)),
        ),
    ]);
    Artifact {
        media_type: OCI_MANIFEST.into(),
        manifest: manifest.into_bytes(),
        blobs: vec![config, layer],
    }
}

/// The `.sig` manifest `cosign sign --key` writes (no transparency log) for `digest` named
/// `docker_reference` (cosign signs the repository, without tag).
pub fn signature_as_cosign(digest: &str, docker_reference: &str) -> Artifact {
    let payload = payload_cosign(digest, docker_reference);
    let sig = b64(&sign(&payload));
    cosign_image(
        SIMPLE_SIGNING,
        payload,
        Some(&annotations(&[(SIGNATURE_ANNOTATION, &sig)])),
    )
}

/// DSSE's pre-authentication encoding.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut v = format!("DSSEv1 {} {payload_type} {} ", payload_type.len(), payload.len()).into_bytes();
    v.extend_from_slice(payload);
    v
}

/// The `.att` manifest `cosign attest --key --type slsaprovenance` writes: one DSSE envelope
/// layer (an in-toto statement about `digest`, signed), annotated with an empty
/// `dev.cosignproject.cosign/signature` and its `predicateType`.
pub fn attestation_as_cosign(digest: &str, repository: &str) -> Artifact {
    let statement = obj(&[
        ("_type", s("https://in-toto.io/Statement/v0.1")),
        ("predicateType", s(SLSA_PROVENANCE)),
        (
            "subject",
            format!(
                "[{}]",
                obj(&[("name", s(repository)), ("digest", obj(&[("sha256", s(hex(digest)))]))])
            ),
        ),
        (
            "predicate",
            obj(&[
                ("builder", obj(&[("id", s("https://example.com/cnab-relocate-tests"))])),
                ("buildType", s("https://example.com/test-build@v1")),
            ]),
        ),
    ])
    .into_bytes();
    let payload_type = "application/vnd.in-toto+json";
    let sig = sign(&pae(payload_type, &statement));
    let envelope = obj(&[
        ("payloadType", s(payload_type)),
        ("payload", s(&b64(&statement))),
        (
            "signatures",
            format!("[{}]", obj(&[("keyid", s("")), ("sig", s(&b64(&sig)))])),
        ),
    ])
    .into_bytes();
    cosign_image(
        DSSE,
        envelope,
        Some(&annotations(&[
            (SIGNATURE_ANNOTATION, ""),
            ("predicateType", SLSA_PROVENANCE),
        ])),
    )
}

/// The `.sbom` manifest `cosign attach sbom --type spdx` writes: one `text/spdx+json` layer.
pub fn sbom_as_cosign(document: Vec<u8>) -> Artifact {
    cosign_image("text/spdx+json", document, None)
}

/// A small SPDX 2.3 JSON document about `name`.
pub fn spdx_document(name: &str) -> Vec<u8> {
    serde_json::to_vec_pretty(&serde_json::json!({
        "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
        "name": name, "documentNamespace": format!("https://example.com/spdx/{name}"),
        "creationInfo": {"created": "2024-01-01T00:00:00Z", "creators": ["Tool: cnab-relocate-tests"]},
        "packages": [{"name": "base.bin", "SPDXID": "SPDXRef-Package-base", "downloadLocation": "NOASSERTION"}]
    }))
    .unwrap()
}

/// A small CycloneDX 1.5 JSON document about `name`.
pub fn cyclonedx_document(name: &str) -> Vec<u8> {
    serde_json::to_vec_pretty(&serde_json::json!({
        "bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
        "metadata": {"component": {"type": "container", "name": name}}, "components": []
    }))
    .unwrap()
}

/// What `oras attach --artifact-type ARTIFACT_TYPE SUBJECT FILE:LAYER_TYPE` pushes (oras 1.x,
/// image-spec 1.1 manifest): `artifactType`, the empty config (with its `data`), one layer
/// titled `file`, the `subject`, and the `org.opencontainers.image.created` annotation.
pub fn attached_as_oras(
    subject: &str,
    artifact_type: &str,
    file: &str,
    layer_type: &str,
    content: Vec<u8>,
    created: &str,
) -> Artifact {
    let empty = b"{}".to_vec();
    let manifest = obj(&[
        ("schemaVersion", "2".into()),
        ("mediaType", s(OCI_MANIFEST)),
        ("artifactType", s(artifact_type)),
        ("config", descriptor(EMPTY, &empty, None, true)),
        (
            "layers",
            format!(
                "[{}]",
                descriptor(layer_type, &content, Some(&annotations(&[(TITLE, file)])), false)
            ),
        ),
        ("subject", subject.to_string()),
        ("annotations", map(&annotations(&[(CREATED, created)]))),
    ]);
    Artifact {
        media_type: OCI_MANIFEST.into(),
        manifest: manifest.into_bytes(),
        blobs: vec![empty, content],
    }
}

/// An SPDX SBOM attached to `subject` (a subject descriptor, see `subject_of`) as oras does.
pub fn sbom_as_oras(subject: &str, name: &str) -> Artifact {
    attached_as_oras(
        subject,
        SPDX_JSON,
        "sbom.spdx.json",
        SPDX_JSON,
        spdx_document(name),
        "2024-01-01T00:00:00Z",
    )
}

/// A referrers index (referrers tag schema) listing `entries`, as oras-go's `generateIndex`.
pub fn referrers_index(entries: &[Value]) -> Vec<u8> {
    let manifests: Vec<String> = entries.iter().map(go_descriptor).collect();
    obj(&[
        ("schemaVersion", "2".into()),
        ("mediaType", s(OCI_INDEX)),
        ("manifests", format!("[{}]", manifests.join(","))),
    ])
    .into_bytes()
}

/// A descriptor value written in image-spec 1.1's field order (mediaType, digest, size,
/// annotations, artifactType).
fn go_descriptor(d: &Value) -> String {
    let mut f = vec![
        ("mediaType", s(d["mediaType"].as_str().unwrap())),
        ("digest", s(d["digest"].as_str().unwrap())),
        ("size", d["size"].to_string()),
    ];
    if let Some(a) = d.get("annotations") {
        f.push(("annotations", serde_json::to_string(a).unwrap()));
    }
    if let Some(a) = d.get("artifactType") {
        f.push(("artifactType", a.to_string()));
    }
    obj(&f)
}

// ---------------------------------------------------------------------------------------------
// plain HTTP against a registry (or a front)

pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap().to_string())
    }
}

fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// One request to `url` (plain HTTP, no proxy, no redirect followed).
pub fn http(method: &str, url: &str, headers: &[(&str, &str)], body: Option<Vec<u8>>) -> Answer {
    block(async {
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut req = client.request(method.parse().unwrap(), url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        Answer {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            body: resp.bytes().await.unwrap().to_vec(),
        }
    })
}

/// Puts `bytes` as a blob of `repo` on `host` (POST, then PUT with the digest), unless there.
pub fn push_blob(host: &str, repo: &str, bytes: &[u8]) -> String {
    let digest = digest_of(bytes);
    if http("HEAD", &format!("http://{host}/v2/{repo}/blobs/{digest}"), &[], None).status == 200 {
        return digest;
    }
    let start = http("POST", &format!("http://{host}/v2/{repo}/blobs/uploads/"), &[], None);
    assert_eq!(
        start.status,
        202,
        "{host}/{repo}: {}",
        String::from_utf8_lossy(&start.body)
    );
    let location = start.header("location").unwrap();
    let location = if location.starts_with('/') {
        format!("http://{host}{location}")
    } else {
        location
    };
    let sep = if location.contains('?') { '&' } else { '?' };
    let put = http(
        "PUT",
        &format!("{location}{sep}digest={digest}"),
        &[("content-type", "application/octet-stream")],
        Some(bytes.to_vec()),
    );
    assert_eq!(put.status, 201, "{host}/{repo}: {}", String::from_utf8_lossy(&put.body));
    digest
}

/// PUTs a manifest under `reference` (tag or digest); asserts 201.
pub fn push_manifest(host: &str, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) -> Answer {
    let a = http(
        "PUT",
        &format!("http://{host}/v2/{repo}/manifests/{reference}"),
        &[("content-type", media_type)],
        Some(bytes.to_vec()),
    );
    assert_eq!(
        a.status,
        201,
        "PUT {host}/{repo}:{reference}: {}",
        String::from_utf8_lossy(&a.body)
    );
    a
}

/// Pushes `artifact`'s blobs, then its manifest under `reference`.
pub fn push(host: &str, repo: &str, reference: &str, artifact: &Artifact) -> Answer {
    for b in &artifact.blobs {
        push_blob(host, repo, b);
    }
    push_manifest(host, repo, reference, &artifact.media_type, &artifact.manifest)
}

/// The manifest bytes `repo` serves for `reference`, or `None` on 404.
pub fn get_manifest(host: &str, repo: &str, reference: &str) -> Option<Vec<u8>> {
    let a = http(
        "GET",
        &format!("http://{host}/v2/{repo}/manifests/{reference}"),
        &[("accept", ACCEPT)],
        None,
    );
    match a.status {
        200 => Some(a.body),
        404 => None,
        s => panic!(
            "GET {host}/{repo}:{reference}: {s} {}",
            String::from_utf8_lossy(&a.body)
        ),
    }
}

/// A blob of `repo`, or `None` on 404.
pub fn get_blob(host: &str, repo: &str, digest: &str) -> Option<Vec<u8>> {
    let a = http("GET", &format!("http://{host}/v2/{repo}/blobs/{digest}"), &[], None);
    match a.status {
        200 => Some(a.body),
        404 => None,
        s => panic!("GET blob {host}/{repo}@{digest}: {s}"),
    }
}

/// The tags of `repo` (empty when the repository does not exist).
pub fn tags(host: &str, repo: &str) -> Vec<String> {
    let a = http("GET", &format!("http://{host}/v2/{repo}/tags/list?n=1000"), &[], None);
    if a.status == 404 {
        return Vec::new();
    }
    assert_eq!(a.status, 200, "tags of {host}/{repo}");
    let v: Value = serde_json::from_slice(&a.body).unwrap();
    let mut t: Vec<String> = v["tags"]
        .as_array()
        .map(|a| a.iter().map(|t| t.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    t.sort();
    t
}

/// Every tag of `repo` → the manifest bytes it serves.
pub fn snapshot(host: &str, repo: &str) -> BTreeMap<String, Vec<u8>> {
    tags(host, repo)
        .into_iter()
        .map(|t| {
            let m = get_manifest(host, repo, &t).unwrap_or_else(|| panic!("{repo}:{t} listed but not served"));
            (t, m)
        })
        .collect()
}

/// The entries of the referrers index under `fallback_tag(subject)`, if there is one.
pub fn fallback_entries(host: &str, repo: &str, subject: &str) -> Option<Vec<Value>> {
    get_manifest(host, repo, &fallback_tag(subject)).map(|b| {
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["mediaType"], OCI_INDEX, "a referrers index is an OCI index: {v}");
        v["manifests"].as_array().unwrap().clone()
    })
}

/// What `oras attach` does after pushing a manifest with `subject` by digest: when the
/// registry's answer has no `OCI-Subject` (no referrers API), the `sha256-<subject>` index is
/// read, the new descriptor added unless there, and the index pushed again.
pub fn attach(host: &str, repo: &str, subject: &str, artifact: &Artifact) -> Answer {
    let answer = push(host, repo, &artifact.digest(), artifact);
    if answer.header("oci-subject").is_none() {
        let mut entries = fallback_entries(host, repo, subject).unwrap_or_default();
        let new = artifact.referrer_descriptor();
        if !entries.iter().any(|e| e["digest"] == new["digest"]) {
            entries.push(new);
        }
        let index = referrers_index(&entries);
        push_manifest(host, repo, &fallback_tag(subject), OCI_INDEX, &index);
    }
    answer
}

/// `host/path` of `host/path[:tag][@digest]`.
fn repository_part(reference: &str) -> &str {
    let r = reference.split('@').next().unwrap();
    match r.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => r,
    }
}

/// Checks a cosign signature as `cosign verify --key cosign.pub` does without a transparency
/// log: the `sha256-<hex>.sig` tag of `image_digest` in `repo` holds a simple-signing layer
/// whose blob matches its digest, whose payload names `image_digest` with the type cosign
/// writes and the identity `docker_reference` (before any tag), and whose
/// `dev.cosignproject.cosign/signature` openssl verifies with the test public key.
pub fn verify_signature(host: &str, repo: &str, image_digest: &str, docker_reference: &str) -> Result<(), String> {
    let tag = cosign_tag(image_digest, "sig");
    let manifest = get_manifest(host, repo, &tag).ok_or_else(|| format!("no {repo}:{tag} on {host}"))?;
    let m: Value = serde_json::from_slice(&manifest).map_err(|e| e.to_string())?;
    let mut why = Vec::new();
    for layer in m["layers"].as_array().into_iter().flatten() {
        if layer["mediaType"] != SIMPLE_SIGNING {
            continue;
        }
        let d = layer["digest"].as_str().unwrap_or_default();
        let Some(payload) = get_blob(host, repo, d) else {
            why.push(format!("payload {d} missing"));
            continue;
        };
        if digest_of(&payload) != d {
            why.push(format!("payload {d} does not match its digest"));
            continue;
        }
        let p: Value = serde_json::from_slice(&payload).map_err(|e| e.to_string())?;
        let named = &p["critical"]["image"]["docker-manifest-digest"];
        let identity = p["critical"]["identity"]["docker-reference"]
            .as_str()
            .unwrap_or_default();
        if p["critical"]["type"] != "cosign container image signature" || named != image_digest {
            why.push(format!("payload names {named}"));
            continue;
        }
        if repository_part(identity) != docker_reference {
            why.push(format!("signed identity {identity}"));
            continue;
        }
        let sig = unb64(layer["annotations"][SIGNATURE_ANNOTATION].as_str().unwrap_or_default());
        if openssl_verifies(&payload, &sig) {
            return Ok(());
        }
        why.push(format!("signature of {d} refused by openssl"));
    }
    Err(format!("{repo}:{tag}: no valid signature: {why:?}"))
}

// ---------------------------------------------------------------------------------------------
// the source registry with referrers

/// Images with every kind of referrer, in a real registry:
///
/// * `team/signed:v1`, one OCI image (umoci, pushed by skopeo), with
///   * `sha256-<signed>.sig`: its signature as skopeo writes it (identity `HOST/team/signed:v1`),
///   * `sha256-<signed>.att`: a cosign SLSA provenance attestation (DSSE),
///   * `sbom`: an SPDX SBOM attached by digest as oras does (`subject` = the image), listed in
///     the fallback index `sha256-<signed>` (artifactType, annotations),
///   * `sha256-<sbom>.sig`: a cosign signature of the SBOM (identity `HOST/team/signed`);
/// * `team/multi:v1`, an OCI index of amd64 and arm64, whose arm64 child has its own
///   `sha256-<child>.sig` (cosign, identity `HOST/team/multi`).
pub struct Referred {
    pub host: String,
    /// (reference, digest)
    pub signed: (String, String),
    pub signed_size: u64,
    pub multi: (String, String),
    /// The signed child of `multi` (arm64).
    pub child: String,
    pub image_sig: Artifact,
    pub image_att: Artifact,
    pub sbom: Artifact,
    pub sbom_sig: Artifact,
    pub child_sig: Artifact,
    pub layout: Layout,
    _dir: tempfile::TempDir,
}

pub const SIGNED_REPO: &str = "team/signed";
pub const MULTI_REPO: &str = "team/multi";

impl Referred {
    /// The subject descriptor of `team/signed:v1`.
    pub fn signed_subject(&self) -> String {
        subject_of(OCI_MANIFEST, &self.signed.1, self.signed_size)
    }

    /// Every referrer manifest (digest) the fixture holds.
    pub fn referrer_digests(&self) -> Vec<String> {
        [
            &self.image_sig,
            &self.image_att,
            &self.sbom,
            &self.sbom_sig,
            &self.child_sig,
        ]
        .iter()
        .map(|a| a.digest())
        .collect()
    }

    /// (source repository, the bundle image it holds)
    pub fn repos(&self) -> [(&'static str, &str); 2] {
        [(SIGNED_REPO, &self.signed.0), (MULTI_REPO, &self.multi.0)]
    }
}

/// A small umoci layout: `app` (single image) and `amd64`, `arm64` and their index `multi`, all
/// on one base layer.
pub fn small_layout(dir: &std::path::Path, seed: u64) -> Layout {
    let layout = Layout::init(dir);
    layout.new_image("base");
    layout.insert("base", &fixtures::noise(seed, 24 * 1024), "/base.bin");
    for (i, arch) in ["app", "amd64", "arm64"].iter().enumerate() {
        let a = if *arch == "app" { "amd64" } else { arch };
        layout.derive("base", arch, a);
        layout.insert(arch, &fixtures::noise(seed + 1 + i as u64, 8 * 1024), "/app.bin");
    }
    layout.add_index("multi", &[("amd64", "amd64"), ("arm64", "arm64")]);
    layout
}

pub fn populate_referrers(reg: &TestRegistry) -> Referred {
    let dir = tempfile::tempdir().unwrap();
    let layout = small_layout(dir.path(), 40);
    let host = reg.host();
    let opts = reg.skopeo_opts("dest");
    let oci = |tag: &str| format!("oci:{}:{tag}", layout.path.display());
    skopeo_copy(&oci("app"), &format!("docker://{host}/{SIGNED_REPO}:v1"), &opts);
    skopeo_copy(&oci("multi"), &format!("docker://{host}/{MULTI_REPO}:v1"), &opts);
    let app = layout.descriptor("app");
    let multi = layout.descriptor("multi").digest;
    let child = layout.descriptor("arm64").digest;
    let signed_ref = format!("{host}/{SIGNED_REPO}:v1");

    let image_sig = signature_as_skopeo(&app.digest, &signed_ref);
    push(&host, SIGNED_REPO, &cosign_tag(&app.digest, "sig"), &image_sig);
    let image_att = attestation_as_cosign(&app.digest, &format!("{host}/{SIGNED_REPO}"));
    push(&host, SIGNED_REPO, &cosign_tag(&app.digest, "att"), &image_att);
    let sbom = sbom_as_oras(&subject_of(OCI_MANIFEST, &app.digest, app.size), "team-signed");
    let answer = attach(&host, SIGNED_REPO, &app.digest, &sbom);
    assert!(
        answer.header("oci-subject").is_none(),
        "docker-registry 2.8 has no referrers API"
    );
    let sbom_sig = signature_as_cosign(&sbom.digest(), &format!("{host}/{SIGNED_REPO}"));
    push(&host, SIGNED_REPO, &cosign_tag(&sbom.digest(), "sig"), &sbom_sig);
    let child_sig = signature_as_cosign(&child, &format!("{host}/{MULTI_REPO}"));
    push(&host, MULTI_REPO, &cosign_tag(&child, "sig"), &child_sig);

    Referred {
        signed: (signed_ref, app.digest.clone()),
        signed_size: app.size,
        multi: (format!("{host}/{MULTI_REPO}:v1"), multi),
        child,
        host,
        image_sig,
        image_att,
        sbom,
        sbom_sig,
        child_sig,
        layout,
        _dir: dir,
    }
}
