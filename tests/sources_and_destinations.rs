//! One suite every [`Source`] and every [`Destination`] passes, as go-containerregistry's
//! `validate` does for its images: run here against a real registry as a source, a thick
//! bundle's archive as a source, and a real registry as the destination.

mod support;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cnab_relocate::archive::ThickArchive;
use cnab_relocate::engine::{
    ArchiveSource, BlobBody, BlobRead, Destination, ImageJob, ManifestRead, Mount, RegistryDestination, RegistrySource,
    Source,
};
use cnab_relocate::oci::{cosign_tag, Manifest, ManifestRef, ReferrerKind, OCI_MANIFEST};
use cnab_relocate::reference::{Digest, ManifestSelector, Reference};
use cnab_relocate::registry::{Registries, RegistryOptions};
use futures_util::StreamExt;
use support::fixtures::{noise, sha256_hex, skopeo_copy};
use support::registry::{Mode, TestRegistry};
use support::thick::Pack;
use support::{build_layout, bundle_json, LayoutImages};

const KIB: usize = 1024;

fn job(reference: &str, pinned: &str) -> ImageJob {
    let source = Reference::parse_normalized(reference).unwrap();
    ImageJob {
        label: reference.to_string(),
        destination: source.clone(),
        source,
        pinned: Some(pinned.parse().unwrap()),
    }
}

/// What every source must do: resolve each job to its whole tree (children before their
/// index, each blob once), refuse what it does not hold, give the bytes of every manifest of a
/// tree again, and offer each blob asked for once, with exactly its bytes.
async fn validate_source<S: Source>(source: &S, jobs: &[ImageJob], images: &LayoutImages) {
    let multi = source.resolve(&jobs[0]).await.unwrap();
    assert_eq!(multi.top.digest.to_string(), images.multi);
    let children: Vec<String> = multi.children.iter().map(|c| c.digest.to_string()).collect();
    assert_eq!(children, [images.amd64.clone(), images.arm64.clone()]);
    let amd = source.resolve(&jobs[1]).await.unwrap();
    assert_eq!(amd.top.digest.to_string(), images.amd64);
    let mut blobs: Vec<String> = multi.blobs.iter().map(|b| b.digest.to_string()).collect();
    let count = blobs.len();
    blobs.dedup();
    assert_eq!(blobs.len(), count, "each blob once");
    assert!(blobs.contains(&images.base_layer));

    let absent = job(&format!("{}x", jobs[0].source), &format!("sha256:{}", "0".repeat(64)));
    assert!(source.resolve(&absent).await.is_err(), "an image it lacks is an error");

    let read = |m: &ManifestRef| ManifestRead {
        manifest: m.clone(),
        origin: jobs[0].source.clone(),
    };
    let wanted: Vec<ManifestRead> = multi.manifests().map(read).collect();
    let manifests = source.read_manifests(wanted).await.unwrap();
    let got: Vec<ManifestRef> = manifests.iter().map(ManifestRef::from).collect();
    let want: Vec<ManifestRef> = multi.manifests().cloned().collect();
    assert_eq!(got, want, "every manifest of the tree, byte for byte");
    let unknown = ManifestRef {
        digest: format!("sha256:{}", "0".repeat(64)).parse().unwrap(),
        ..multi.top.clone()
    };
    assert!(
        source.read_manifests(vec![read(&unknown)]).await.is_err(),
        "a manifest it lacks is an error"
    );

    let sig = cosign_tag(&multi.top.digest, "sig");
    let found = source.referrers(&jobs[0].source, &multi.top.digest).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].tag.as_deref(),
        Some(sig.as_str()),
        "cosign's tag, copied as a tag"
    );
    assert_eq!(found[0].kind, ReferrerKind::Signature);
    let amd_digest = amd.top.digest.clone();
    let none = source.referrers(&jobs[1].source, &amd_digest).await.unwrap();
    assert!(none.is_empty(), "nothing refers to it: {none:?}");

    let offered = Arc::new(Mutex::new(Vec::new()));
    let reads: Vec<BlobRead> = multi
        .blobs
        .iter()
        .map(|d| BlobRead {
            descriptor: d.clone(),
            origin: jobs[0].source.clone(),
        })
        .collect();
    let failures = source
        .stream_blobs(reads, |read: BlobRead, mut body: BlobBody| {
            let offered = offered.clone();
            async move {
                let mut bytes = Vec::new();
                while let Some(chunk) = body.next().await {
                    bytes.extend_from_slice(&chunk.unwrap());
                }
                offered.lock().unwrap().push((read.descriptor.clone(), bytes));
                Ok(())
            }
        })
        .await;
    assert!(failures.is_empty(), "{failures:?}");
    let offered = offered.lock().unwrap();
    assert_eq!(offered.len(), count, "each blob offered once");
    for (d, bytes) in offered.iter() {
        assert_eq!(bytes.len() as u64, d.size);
        assert_eq!(format!("sha256:{}", sha256_hex(bytes)), d.digest.to_string());
    }
}

/// What every destination must do: say which blobs a repository holds, take verified
/// uploads, refuse a commit under the wrong digest, mount or refuse plainly, and store
/// manifests byte for byte under tags and digests.
async fn validate_destination<D: Destination>(d: &D) {
    let content = Bytes::from(noise(3, 64 * KIB));
    let digest: Digest = format!("sha256:{}", sha256_hex(&content)).parse().unwrap();
    let body = |b: &Bytes| -> BlobBody { Box::pin(futures_util::stream::iter([Ok(b.clone())])) };
    assert!(!d.has_blob("v/one", &digest).await.unwrap());

    let wrong: Digest = format!("sha256:{}", "1".repeat(64)).parse().unwrap();
    let upload = d.start_upload("v/one").await.unwrap();
    let upload = d
        .write_blob("v/one", upload, body(&content), content.len() as u64)
        .await
        .unwrap();
    assert!(
        d.commit_blob("v/one", upload, &wrong).await.is_err(),
        "the digest is checked"
    );
    assert!(!d.has_blob("v/one", &wrong).await.unwrap());

    let upload = d.start_upload("v/one").await.unwrap();
    let upload = d
        .write_blob("v/one", upload, body(&content), content.len() as u64)
        .await
        .unwrap();
    d.commit_blob("v/one", upload, &digest).await.unwrap();
    assert!(d.has_blob("v/one", &digest).await.unwrap());

    match d.mount_blob("v/two", &digest, "v/one").await.unwrap() {
        Mount::Mounted => assert!(d.has_blob("v/two", &digest).await.unwrap()),
        Mount::Refused(Some(upload)) => d.abort_blob("v/two", upload).await,
        Mount::Refused(None) => {}
    }

    let json = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{digest}","size":{}}},"layers":[]}}"#,
        content.len()
    );
    let manifest = Manifest::new(Bytes::from(json), None, None).unwrap();
    let tag = ManifestSelector::Tag("1.0".into());
    assert_eq!(d.manifest_digest("v/one", &tag).await.unwrap(), None);
    d.put_manifest("v/one", &tag, &manifest).await.unwrap();
    assert_eq!(
        d.manifest_digest("v/one", &tag).await.unwrap(),
        Some(manifest.digest.clone())
    );
    let found = d.find_manifest("v/one", &tag).await.unwrap();
    assert_eq!(found.map(|m| m.bytes), Some(manifest.bytes.clone()));
    let absent = ManifestSelector::Tag("absent".into());
    assert_eq!(d.find_manifest("v/one", &absent).await.unwrap(), None);
    assert!(
        !d.lists_referrers("v/one", &manifest.digest).await.unwrap(),
        "a destination without the referrers API says so"
    );
    let by_digest = ManifestSelector::Digest(manifest.digest.clone());
    let tree = d.read_tree("v/one", &by_digest).await.unwrap();
    assert_eq!(tree.top, ManifestRef::from(&manifest), "stored byte for byte");
    assert_eq!(tree.blobs.len(), 1);
}

fn registries() -> Arc<Registries> {
    Arc::new(Registries::new(RegistryOptions::default()).unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_is_a_valid_source() {
    let registry = TestRegistry::start(Mode::Plain);
    let images = build_layout(128 * KIB);
    let opts = ["--dest-tls-verify=false".to_string()];
    let oci = |tag: &str| format!("oci:{}:{tag}", images.layout.path.display());
    skopeo_copy(
        &oci("multi"),
        &format!("docker://{}/app/multi:1.0", registry.host()),
        &opts,
    );
    skopeo_copy(
        &oci("amd64"),
        &format!("docker://{}/app/amd64:1.0", registry.host()),
        &opts,
    );
    // the amd64 image stands in for a signature of the index (its content does not matter)
    let sig = cosign_tag(&images.multi.parse().unwrap(), "sig");
    skopeo_copy(
        &oci("amd64"),
        &format!("docker://{}/app/multi:{sig}", registry.host()),
        &opts,
    );
    let jobs = [
        job(&format!("{}/app/multi:1.0", registry.host()), &images.multi),
        job(&format!("{}/app/amd64:1.0", registry.host()), &images.amd64),
    ];
    validate_source(&RegistrySource::new(registries(), 4), &jobs, &images).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thick_bundle_is_a_valid_source() {
    let images = build_layout(128 * KIB);
    let work = tempfile::tempdir().unwrap();
    let tgz = work.path().join("b.tgz");
    // the amd64 image stands in for a signature of the index, by cosign's tag
    let index_path = images.layout.path.join("index.json");
    let mut index: serde_json::Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let amd = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["digest"] == images.amd64.as_str())
        .unwrap()
        .clone();
    let mut sig = amd.clone();
    let sig_tag = cosign_tag(&images.multi.parse().unwrap(), "sig");
    sig["annotations"] =
        serde_json::json!({"org.opencontainers.image.ref.name": format!("example.com/app/multi:{sig_tag}")});
    index["manifests"].as_array_mut().unwrap().push(sig);
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    let bundle = bundle_json(serde_json::json!({"image": "example.com/app/multi:1.0"}), &[]);
    std::fs::write(&tgz, Pack::new(&images.layout.path, bundle).tgz()).unwrap();
    let archive = Arc::new(ThickArchive::scan(&tgz).unwrap());
    let jobs = [
        job("example.com/app/multi:1.0", &images.multi),
        job("example.com/app/amd64:1.0", &images.amd64),
    ];
    let source = ArchiveSource::new(archive.clone(), &jobs).unwrap();
    validate_source(&source, &jobs, &images).await;
    let absent = job("example.com/app/gone:1", &format!("sha256:{}", "0".repeat(64)));
    assert!(
        ArchiveSource::new(archive, &[absent]).is_err(),
        "checked before any copy"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_is_a_valid_destination() {
    let registry = TestRegistry::start(Mode::Plain);
    let destination = RegistryDestination::new(registries().get(&registry.host()));
    validate_destination(&destination).await;
}
