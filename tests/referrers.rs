//! Issue 12: signatures, attestations and SBOMs travel with their images. Real registries
//! (Debian's docker-registry 2.8, which has no referrers API) as source and target, a front
//! giving one the referrers API (`support::referrers_front`), referrers written as cosign,
//! skopeo and oras write them (`support::referrers`); the target's state is checked strictly,
//! the CLI's output loosely.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

use serde_json::Value;
use support::fixtures::{self, skopeo_copy};
use support::referrers::{
    self as refs, attach, attached_as_oras, attestation_as_cosign, cosign_tag, fallback_entries, fallback_tag,
    get_blob, get_manifest, is_fallback_tag, populate_referrers, push, sbom_as_cosign, sbom_as_oras,
    signature_as_cosign, snapshot, subject_of, tags, verify_signature, Artifact, Referred, MULTI_REPO, OCI_MANIFEST,
    SIGNED_REPO,
};
use support::referrers_front::ReferrersFront;
use support::registry::{Mode, TestRegistry};
use support::thick::Pack;
use support::{bundle_json, mapped, relocate, repository_of, run_with, write_bundle, Run};

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// `host:port/path` → `path`
fn path_of(repository: &str) -> &str {
    repository.split_once('/').unwrap().1
}

/// The target repository (without host) `image` goes to under `prefix`, as `map` says.
fn relocated_repo(prefix: &str, image: &str) -> String {
    let cfg = tempfile::tempdir().unwrap();
    let run = run_with(&["map", "-p", prefix, image], cfg.path(), &[]);
    run.assert_ok();
    path_of(repository_of(run.stdout.trim())).to_string()
}

/// The thin bundle of the fixture's two images.
fn bundle_of(dir: &Path, r: &Referred) -> std::path::PathBuf {
    write_bundle(
        dir,
        &[&r.signed.0],
        &[("multi", serde_json::json!({"image": r.multi.0}))],
    )
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `repo` on `host` serves exactly `expected` under `reference` (a tag or digest).
fn assert_serves(host: &str, repo: &str, reference: &str, expected: &[u8]) {
    let got = get_manifest(host, repo, reference);
    assert!(
        got.as_deref() == Some(expected),
        "{host}/{repo}:{reference}: expected\n{}\ngot\n{}",
        lossy(expected),
        got.map(|g| lossy(&g)).unwrap_or_else(|| "nothing (404)".into())
    );
}

/// `repo` on `host` has `blob`.
fn assert_blob(host: &str, repo: &str, blob: &[u8]) {
    let d = refs::digest_of(blob);
    assert!(
        get_blob(host, repo, &d).as_deref() == Some(blob),
        "blob {d} in {host}/{repo}"
    );
}

/// The digests `referrer_copied` events name.
fn referrers_copied(run: &Run) -> BTreeSet<String> {
    run.events()
        .iter()
        .filter(|e| e["event"] == "referrer_copied")
        .map(|e| e["digest"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Digest → how often a referrers index lists it.
fn counts(entries: &[Value]) -> BTreeMap<String, usize> {
    let mut c = BTreeMap::new();
    for e in entries {
        *c.entry(e["digest"].as_str().unwrap().to_string()).or_default() += 1;
    }
    c
}

/// `entries` lists `expected` (a referrer descriptor) once, with its media type, size,
/// `artifactType` and annotations.
fn assert_lists(entries: &[Value], expected: &Value, what: &str) {
    let found: Vec<&Value> = entries.iter().filter(|e| e["digest"] == expected["digest"]).collect();
    assert_eq!(
        found.len(),
        1,
        "{what}: {} listed once in {entries:?}",
        expected["digest"]
    );
    for key in ["mediaType", "size", "artifactType", "annotations"] {
        assert_eq!(
            found[0].get(key),
            expected.get(key),
            "{what}: {key} of {}",
            expected["digest"]
        );
    }
}

/// Every tag of `source` (a snapshot of the source repository) is in `dst_repo` on `target`
/// with the same bytes, except the referrers tag schema indexes, which the target must have
/// too, listing each of the source's entries once, as the source lists it; every manifest such
/// an index names is in the target byte for byte.
fn assert_carried(source: &BTreeMap<String, Vec<u8>>, source_host: &str, src_repo: &str, target: &str, dst_repo: &str) {
    let dst = snapshot(target, dst_repo);
    for (tag, bytes) in source {
        if is_fallback_tag(tag) {
            let subject = format!("sha256:{}", tag.strip_prefix("sha256-").unwrap());
            let theirs: Value = serde_json::from_slice(bytes).unwrap();
            let ours = fallback_entries(target, dst_repo, &subject)
                .unwrap_or_else(|| panic!("{dst_repo}:{tag} (fallback index) missing in the target"));
            for e in theirs["manifests"].as_array().unwrap() {
                assert_lists(&ours, e, &format!("{dst_repo}:{tag}"));
                let d = e["digest"].as_str().unwrap();
                let theirs = get_manifest(source_host, src_repo, d).unwrap();
                assert_serves(target, dst_repo, d, &theirs);
            }
            assert!(counts(&ours).values().all(|n| *n == 1), "no duplicates: {ours:?}");
        } else {
            assert_eq!(
                dst.get(tag).map(|b| lossy(b)),
                Some(lossy(bytes)),
                "{src_repo}:{tag} byte-identical in {dst_repo}"
            );
        }
    }
}

/// Like `assert_carried`, with manifests named by fallback indexes checked against `by_digest`
/// (for when the source is gone).
fn assert_carried_offline(source: &BTreeMap<String, Vec<u8>>, by_digest: &[&Artifact], target: &str, dst_repo: &str) {
    let dst = snapshot(target, dst_repo);
    for (tag, bytes) in source {
        if is_fallback_tag(tag) {
            let subject = format!("sha256:{}", tag.strip_prefix("sha256-").unwrap());
            let theirs: Value = serde_json::from_slice(bytes).unwrap();
            let ours = fallback_entries(target, dst_repo, &subject)
                .unwrap_or_else(|| panic!("{dst_repo}:{tag} (fallback index) missing in the target"));
            for e in theirs["manifests"].as_array().unwrap() {
                assert_lists(&ours, e, &format!("{dst_repo}:{tag}"));
            }
        } else {
            assert_eq!(
                dst.get(tag).map(|b| lossy(b)),
                Some(lossy(bytes)),
                "{tag} byte-identical in {dst_repo}"
            );
        }
    }
    for a in by_digest {
        assert_serves(target, dst_repo, &a.digest(), &a.manifest);
    }
}

/// The source side of the fixture, exactly.
fn assert_fixture(r: &Referred) {
    let host = &r.host;
    let (image, child, sbom) = (&r.signed.1, &r.child, r.sbom.digest());
    let mut expected = vec![
        "v1".to_string(),
        cosign_tag(image, "sig"),
        cosign_tag(image, "att"),
        fallback_tag(image),
        cosign_tag(&sbom, "sig"),
    ];
    expected.sort();
    assert_eq!(tags(host, SIGNED_REPO), expected);
    let mut expected = vec!["v1".to_string(), cosign_tag(child, "sig")];
    expected.sort();
    assert_eq!(tags(host, MULTI_REPO), expected);
    // each referrer is served byte for byte as made
    for (reference, a) in [
        (cosign_tag(image, "sig"), &r.image_sig),
        (cosign_tag(image, "att"), &r.image_att),
        (sbom.clone(), &r.sbom),
        (cosign_tag(&sbom, "sig"), &r.sbom_sig),
    ] {
        assert_serves(host, SIGNED_REPO, &reference, &a.manifest);
    }
    assert_serves(host, MULTI_REPO, &cosign_tag(child, "sig"), &r.child_sig.manifest);
    // the SBOM as oras writes it, and its fallback index as oras-go writes it
    let m = r.sbom.json();
    assert_eq!(m["artifactType"], refs::SPDX_JSON);
    assert_eq!(m["config"]["mediaType"], refs::EMPTY);
    assert_eq!(m["config"]["digest"], refs::EMPTY_DIGEST);
    assert_eq!(m["subject"]["digest"], image.as_str());
    assert_serves(
        host,
        SIGNED_REPO,
        &fallback_tag(image),
        &refs::referrers_index(&[r.sbom.referrer_descriptor()]),
    );
    let entry = r.sbom.referrer_descriptor();
    assert_eq!(entry["artifactType"], refs::SPDX_JSON);
    assert_eq!(entry["annotations"][refs::CREATED], "2024-01-01T00:00:00Z");
    // the .att: a DSSE envelope with cosign's annotations
    let att = r.image_att.json();
    assert_eq!(att["layers"][0]["mediaType"], refs::DSSE);
    assert_eq!(att["layers"][0]["annotations"][refs::SIGNATURE_ANNOTATION], "");
    assert_eq!(att["layers"][0]["annotations"]["predicateType"], refs::SLSA_PROVENANCE);
    // every signature verifies at the source
    let signed_repo = format!("{host}/{SIGNED_REPO}");
    verify_signature(host, SIGNED_REPO, image, &signed_repo).unwrap();
    verify_signature(host, SIGNED_REPO, &sbom, &signed_repo).unwrap();
    verify_signature(host, MULTI_REPO, child, &format!("{host}/{MULTI_REPO}")).unwrap();
}

#[test]
fn the_fixtures_are_what_their_producers_write_and_the_signature_check_is_real() {
    let source = TestRegistry::start(Mode::Plain);
    let r = populate_referrers(&source);
    assert_fixture(&r);
    let host = source.host();

    // the committed key pair: cosign's encrypted format, and the same key as openssl's PEM
    let keys = refs::sigstore_dir();
    let key = std::fs::read_to_string(keys.join("cosign.key")).unwrap();
    let body: String = key
        .strip_prefix("-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n")
        .and_then(|k| k.strip_suffix("-----END ENCRYPTED COSIGN PRIVATE KEY-----\n"))
        .expect("cosign's PEM block")
        .lines()
        .collect();
    let json: Value = serde_json::from_slice(&base64_decode(&body)).unwrap();
    assert_eq!(json["kdf"]["name"], "scrypt");
    assert_eq!(json["kdf"]["params"], serde_json::json!({"N": 32768, "r": 8, "p": 1}));
    assert_eq!(base64_decode(json["kdf"]["salt"].as_str().unwrap()).len(), 32);
    assert_eq!(json["cipher"]["name"], "nacl/secretbox");
    assert_eq!(base64_decode(json["cipher"]["nonce"].as_str().unwrap()).len(), 24);
    // PKCS#8 of a P-256 key (138 bytes) and secretbox's 16-byte tag
    assert_eq!(base64_decode(json["ciphertext"].as_str().unwrap()).len(), 138 + 16);
    let public = fixtures::run(
        std::process::Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(keys.join("cosign.openssl.pem"))
            .arg("-passin")
            .arg(format!("file:{}", keys.join("passphrase").display())),
    )
    .stdout;
    assert_eq!(public, std::fs::read(refs::public_key()).unwrap());

    // the check fails where there is no signature
    let copy = "team/unsigned";
    skopeo_copy(
        &format!("docker://{}", r.signed.0),
        &format!("docker://{host}/{copy}:v1"),
        &[source.skopeo_opts("src"), source.skopeo_opts("dest")].concat(),
    );
    let signed_repo = format!("{host}/{SIGNED_REPO}");
    let err = verify_signature(&host, copy, &r.signed.1, &signed_repo).unwrap_err();
    assert!(err.contains("no "), "{err}");
    // ... where the signature is not the key's
    let mut forged = r.image_sig.json();
    forged["layers"][0]["annotations"][refs::SIGNATURE_ANNOTATION] =
        base64_encode(&refs::sign(b"some other payload")).into();
    let forged = Artifact {
        media_type: OCI_MANIFEST.into(),
        manifest: serde_json::to_vec(&forged).unwrap(),
        blobs: r.image_sig.blobs.clone(),
    };
    push(&host, copy, &cosign_tag(&r.signed.1, "sig"), &forged);
    let err = verify_signature(&host, copy, &r.signed.1, &signed_repo).unwrap_err();
    assert!(err.contains("refused by openssl"), "{err}");
    // ... where it signs another image
    push(&host, copy, &cosign_tag(&r.signed.1, "sig"), &r.sbom_sig);
    let err = verify_signature(&host, copy, &r.signed.1, &signed_repo).unwrap_err();
    assert!(err.contains("payload names"), "{err}");
    // ... and under another identity
    let elsewhere = signature_as_cosign(&r.signed.1, "example.com/someone/else");
    push(&host, copy, &cosign_tag(&r.signed.1, "sig"), &elsewhere);
    let err = verify_signature(&host, copy, &r.signed.1, &signed_repo).unwrap_err();
    assert!(err.contains("signed identity"), "{err}");
    verify_signature(&host, copy, &r.signed.1, "example.com/someone/else").unwrap();
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).unwrap()
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn signatures_attestations_and_sboms_travel_with_their_images() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let r = populate_referrers(&source);
    assert_fixture(&r);
    let work = tempfile::tempdir().unwrap();
    let bundle = bundle_of(work.path(), &r);
    let relmap = work.path().join("relmap.json");
    let prefix = format!("{}/x", target.host());
    let dst_signed = relocated_repo(&prefix, &r.signed.0);
    let dst_multi = relocated_repo(&prefix, &r.multi.0);
    let signed_repo = format!("{}/{SIGNED_REPO}", r.host);
    assert!(
        verify_signature(&target.host(), &dst_signed, &r.signed.1, &signed_repo).is_err(),
        "nothing in the target yet"
    );

    let run = relocate(&bundle, &prefix, &relmap, &["--json"]);
    run.assert_ok();

    // the mapping names the bundle's images only
    let map = mapped(&relmap);
    let keys: BTreeSet<&str> = map.keys().map(String::as_str).collect();
    assert_eq!(keys, BTreeSet::from([r.signed.0.as_str(), r.multi.0.as_str()]));
    assert_eq!(path_of(repository_of(map[&r.signed.0].as_str().unwrap())), dst_signed);

    // every tag (images, cosign tags) byte-identical; fallback indexes list the same referrers
    for (src_repo, dst_repo) in [(SIGNED_REPO, &dst_signed), (MULTI_REPO, &dst_multi)] {
        assert_carried(
            &snapshot(&r.host, src_repo),
            &r.host,
            src_repo,
            &target.host(),
            dst_repo,
        );
    }
    let t = target.host();
    // the multi-arch index whole, and the child's signature beside it
    for child in [r.layout.descriptor("amd64").digest, r.child.clone()] {
        assert!(get_manifest(&t, &dst_multi, &child).is_some(), "{child}");
    }
    assert_serves(&t, &dst_multi, &cosign_tag(&r.child, "sig"), &r.child_sig.manifest);
    // the SBOM by digest with its blobs, listed in the target's own fallback index
    assert_serves(&t, &dst_signed, &r.sbom.digest(), &r.sbom.manifest);
    for blob in &r.sbom.blobs {
        assert_blob(&t, &dst_signed, blob);
    }
    let entries = fallback_entries(&t, &dst_signed, &r.signed.1).expect("a fallback index in the target");
    assert_lists(&entries, &r.sbom.referrer_descriptor(), "target fallback index");
    assert_eq!(entries.len(), 1, "{entries:?}");
    // no fallback index for what has no referrer with a subject
    assert_eq!(tags(&t, &dst_multi), [cosign_tag(&r.child, "sig"), "v1".to_string()]);
    // the signatures verify in the target (the identity is the one signed at the source)
    verify_signature(&t, &dst_signed, &r.signed.1, &signed_repo).unwrap();
    verify_signature(&t, &dst_signed, &r.sbom.digest(), &signed_repo).unwrap();
    verify_signature(&t, &dst_multi, &r.child, &format!("{}/{MULTI_REPO}", r.host)).unwrap();

    // output, loosely: one event per referrer copied, naming it, for a bundle image
    let copied = referrers_copied(&run);
    for d in r.referrer_digests() {
        assert!(copied.contains(&d), "referrer_copied for {d}: {}", run.stdout);
    }
    for e in run.events().iter().filter(|e| e["event"] == "referrer_copied") {
        let image = e["image"].as_str().unwrap_or_default();
        assert!(map.contains_key(image), "{e}");
        assert!(e["relocated"].as_str().unwrap_or_default().starts_with(&prefix), "{e}");
        assert!(
            ["signature", "attestation", "sbom", "referrer"].contains(&e["kind"].as_str().unwrap_or_default()),
            "{e}"
        );
    }
    for (artifact, kind) in [(&r.image_sig, "signature"), (&r.image_att, "attestation")] {
        let e = run
            .events()
            .into_iter()
            .find(|e| e["event"] == "referrer_copied" && e["digest"] == artifact.digest())
            .unwrap();
        assert_eq!(e["kind"], kind, "{e}");
        assert_eq!(e["subject"], r.signed.1.as_str(), "{e}");
    }
}

#[test]
fn no_referrers_copies_none() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let r = populate_referrers(&source);
    assert_fixture(&r);
    let work = tempfile::tempdir().unwrap();
    let bundle = bundle_of(work.path(), &r);
    let relmap = work.path().join("relmap.json");
    let prefix = format!("{}/x", target.host());
    let run = relocate(&bundle, &prefix, &relmap, &["--no-referrers", "--json"]);
    run.assert_ok();
    assert_eq!(run.count_events("referrer_copied"), 0, "{}", run.stdout);
    let t = target.host();
    let dst_signed = relocated_repo(&prefix, &r.signed.0);
    let dst_multi = relocated_repo(&prefix, &r.multi.0);
    // the images, whole, and nothing else: no cosign tag, no fallback tag, no referrer
    assert_eq!(tags(&t, &dst_signed), ["v1"]);
    assert_eq!(tags(&t, &dst_multi), ["v1"]);
    assert!(get_manifest(&t, &dst_multi, &r.child).is_some());
    for d in r.referrer_digests() {
        for repo in [&dst_signed, &dst_multi] {
            assert!(get_manifest(&t, repo, &d).is_none(), "{repo}@{d} must not be there");
        }
    }
    let err = verify_signature(&t, &dst_signed, &r.signed.1, &format!("{}/{SIGNED_REPO}", r.host)).unwrap_err();
    assert!(err.contains("no "), "{err}");
    assert_eq!(mapped(&relmap).len(), 2);
}

#[test]
fn a_fallback_index_in_the_target_is_merged_never_replaced_nor_duplicated() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let r = populate_referrers(&source);
    let work = tempfile::tempdir().unwrap();
    let bundle = bundle_of(work.path(), &r);
    let relmap = work.path().join("relmap.json");
    let prefix = format!("{}/x", target.host());
    let t = target.host();
    let dst_signed = relocated_repo(&prefix, &r.signed.0);

    // someone attached a vulnerability report in the target already (as oras does)
    let report = attached_as_oras(
        &r.signed_subject(),
        "application/vnd.example.vulnerability-report+json",
        "report.json",
        "application/json",
        br#"{"vulnerabilities":[]}"#.to_vec(),
        "2023-06-01T00:00:00Z",
    );
    attach(&t, &dst_signed, &r.signed.1, &report);
    let before = fallback_entries(&t, &dst_signed, &r.signed.1).unwrap();
    assert_eq!(before, [report.referrer_descriptor()]);

    for pass in ["first", "second"] {
        let run = relocate(&bundle, &prefix, &relmap, &["--json"]);
        run.assert_ok();
        let entries = fallback_entries(&t, &dst_signed, &r.signed.1).unwrap();
        assert_eq!(entries.len(), 2, "{pass} run: {entries:?}");
        assert_lists(&entries, &report.referrer_descriptor(), pass);
        assert_lists(&entries, &r.sbom.referrer_descriptor(), pass);
        assert_serves(&t, &dst_signed, &report.digest(), &report.manifest);
        assert_serves(&t, &dst_signed, &r.sbom.digest(), &r.sbom.manifest);
    }
}

#[test]
fn a_rerun_copies_referrers_added_since_although_the_image_is_there() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let r = populate_referrers(&source);
    let work = tempfile::tempdir().unwrap();
    let bundle = bundle_of(work.path(), &r);
    let relmap = work.path().join("relmap.json");
    let prefix = format!("{}/x", target.host());
    relocate(&bundle, &prefix, &relmap, &[]).assert_ok();
    let t = target.host();
    let dst_signed = relocated_repo(&prefix, &r.signed.0);
    let dst_multi = relocated_repo(&prefix, &r.multi.0);

    // later, at the source: a CycloneDX SBOM attached with oras (the fallback index now lists
    // two), an SBOM attached with cosign to the image and one to the index's child
    let cdx = attached_as_oras(
        &r.signed_subject(),
        refs::CYCLONEDX_JSON,
        "sbom.cdx.json",
        refs::CYCLONEDX_JSON,
        refs::cyclonedx_document("team-signed"),
        "2024-02-02T00:00:00Z",
    );
    attach(&r.host, SIGNED_REPO, &r.signed.1, &cdx);
    assert_eq!(fallback_entries(&r.host, SIGNED_REPO, &r.signed.1).unwrap().len(), 2);
    let image_sbom = sbom_as_cosign(refs::spdx_document("team-signed-cosign"));
    push(&r.host, SIGNED_REPO, &cosign_tag(&r.signed.1, "sbom"), &image_sbom);
    let child_sbom = sbom_as_cosign(refs::spdx_document("team-multi-arm64"));
    push(&r.host, MULTI_REPO, &cosign_tag(&r.child, "sbom"), &child_sbom);

    let run = relocate(&bundle, &prefix, &relmap, &["--json"]);
    run.assert_ok();
    assert_serves(&t, &dst_signed, &cdx.digest(), &cdx.manifest);
    assert_serves(&t, &dst_signed, &cosign_tag(&r.signed.1, "sbom"), &image_sbom.manifest);
    assert_serves(&t, &dst_multi, &cosign_tag(&r.child, "sbom"), &child_sbom.manifest);
    let entries = fallback_entries(&t, &dst_signed, &r.signed.1).unwrap();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_lists(&entries, &r.sbom.referrer_descriptor(), "rerun");
    assert_lists(&entries, &cdx.referrer_descriptor(), "rerun");
    for (src_repo, dst_repo) in [(SIGNED_REPO, &dst_signed), (MULTI_REPO, &dst_multi)] {
        assert_carried(&snapshot(&r.host, src_repo), &r.host, src_repo, &t, dst_repo);
    }

    // output, loosely: the images were there, the new referrers were copied
    assert_eq!(run.count_events("image_already_present"), 2, "{}", run.stdout);
    let copied = referrers_copied(&run);
    for a in [&cdx, &image_sbom, &child_sbom] {
        assert!(copied.contains(&a.digest()), "{}: {}", a.digest(), run.stdout);
    }

    // a third run has nothing new: the index stays as it is
    let index = get_manifest(&t, &dst_signed, &fallback_tag(&r.signed.1));
    let again = relocate(&bundle, &prefix, &relmap, &["--json"]);
    again.assert_ok();
    assert_eq!(
        get_manifest(&t, &dst_signed, &fallback_tag(&r.signed.1)).map(|b| lossy(&b)),
        index.map(|b| lossy(&b)),
        "a run with nothing new leaves the fallback index as it is"
    );
}

#[test]
fn with_the_referrers_api_referrers_are_found_by_it_and_no_fallback_tag_is_written() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let src_front = ReferrersFront::start(&format!("http://{}", source.host()));
    let dst_front = ReferrersFront::start(&format!("http://{}", target.host()));
    let dir = tempfile::tempdir().unwrap();
    let layout = refs::small_layout(dir.path(), 70);
    let repo = "team/api";
    skopeo_copy(
        &format!("oci:{}:app", layout.path.display()),
        &format!("docker://{}/{repo}:v1", source.host()),
        &source.skopeo_opts("dest"),
    );
    let app = layout.descriptor("app");
    let subject = subject_of(OCI_MANIFEST, &app.digest, app.size);

    // two referrers, pushed through the front as oras pushes them: the answer names the
    // subject, so no fallback tag is written and only the referrers API finds them
    let sbom = sbom_as_oras(&subject, "team-api");
    let notation = attached_as_oras(
        &subject,
        "application/vnd.cncf.notary.signature",
        "signature.jws",
        "application/jose+json",
        br#"{"payload":"e30","protected":"e30","signature":"c2ln"}"#.to_vec(),
        "2024-03-03T00:00:00Z",
    );
    for a in [&sbom, &notation] {
        let answer = attach(&src_front.host(), repo, &app.digest, a);
        assert_eq!(answer.header("oci-subject").as_deref(), Some(app.digest.as_str()));
    }
    assert_eq!(tags(&source.host(), repo), ["v1"], "no fallback tag at the source");
    let listed = refs::http(
        "GET",
        &format!("http://{}/v2/{repo}/referrers/{}", src_front.host(), app.digest),
        &[],
        None,
    );
    assert_eq!(listed.status, 200);
    assert_eq!(
        listed.header("content-type").as_deref(),
        Some("application/vnd.oci.image.index.v1+json")
    );
    let index: Value = serde_json::from_slice(&listed.body).unwrap();
    let entries = index["manifests"].as_array().unwrap();
    assert_lists(entries, &sbom.referrer_descriptor(), "source referrers API");
    assert_lists(entries, &notation.referrer_descriptor(), "source referrers API");
    let filtered = refs::http(
        "GET",
        &format!(
            "http://{}/v2/{repo}/referrers/{}?artifactType=application%2Fspdx%2Bjson",
            src_front.host(),
            app.digest
        ),
        &[],
        None,
    );
    assert_eq!(filtered.header("oci-filters-applied").as_deref(), Some("artifactType"));
    let only: Value = serde_json::from_slice(&filtered.body).unwrap();
    assert_eq!(only["manifests"].as_array().unwrap().len(), 1);

    let work = tempfile::tempdir().unwrap();
    let image = format!("{}/{repo}:v1", src_front.host());
    let bundle = write_bundle(work.path(), &[&image], &[]);
    let relmap = work.path().join("relmap.json");
    let prefix = format!("{}/x", dst_front.host());
    src_front.clear_log();
    dst_front.clear_log();
    let run = relocate(&bundle, &prefix, &relmap, &["--json"]);
    run.assert_ok();
    assert!(
        src_front.count("GET", "/referrers/") >= 1,
        "the source's referrers API was asked"
    );

    let dst_repo = path_of(repository_of(mapped(&relmap)[&image].as_str().unwrap())).to_string();
    let t = target.host();
    for a in [&sbom, &notation] {
        assert_serves(&t, &dst_repo, &a.digest(), &a.manifest);
        for blob in &a.blobs {
            assert_blob(&t, &dst_repo, blob);
        }
    }
    // the target answered OCI-Subject: no fallback tag was written
    assert_eq!(
        dst_front.fallback_tags_put(),
        Vec::<String>::new(),
        "{:?}",
        dst_front.requests()
    );
    assert_eq!(tags(&t, &dst_repo), ["v1"]);
    let listed = dst_front.referrers(&dst_repo, &app.digest);
    assert_lists(&listed, &sbom.referrer_descriptor(), "target referrers API");
    assert_lists(&listed, &notation.referrer_descriptor(), "target referrers API");
    let copied = referrers_copied(&run);
    assert!(
        copied.contains(&sbom.digest()) && copied.contains(&notation.digest()),
        "{}",
        run.stdout
    );
}

#[test]
fn a_thick_bundle_carries_its_signatures_and_sboms() {
    let target = TestRegistry::start(Mode::Plain);
    let dir = tempfile::tempdir().unwrap();
    let layout = refs::small_layout(dir.path(), 80);
    let app = layout.descriptor("app");
    let name = "example.com/team/app";
    let sig = signature_as_cosign(&app.digest, name);
    let att = attestation_as_cosign(&app.digest, name);
    let subject = subject_of(OCI_MANIFEST, &app.digest, app.size);
    let sbom = sbom_as_oras(&subject, "thick-app");
    // a second SBOM, named only by a referrers index tagged `sha256-<app>` in the layout
    let cdx = attached_as_oras(
        &subject,
        refs::CYCLONEDX_JSON,
        "sbom.cdx.json",
        refs::CYCLONEDX_JSON,
        refs::cyclonedx_document("thick-app"),
        "2024-04-04T00:00:00Z",
    );
    for a in [&sig, &att, &sbom, &cdx] {
        a.store(&layout);
    }
    let referrers = Artifact {
        media_type: refs::OCI_INDEX.into(),
        manifest: refs::referrers_index(&[cdx.referrer_descriptor()]),
        blobs: Vec::new(),
    };
    referrers.store(&layout);
    // index.json: the image by full reference (as duffle writes it), the .sig by its bare tag,
    // the .att by full reference, the SBOM untagged, the referrers index by its bare tag
    let named = |a: &Artifact, n: String| {
        let mut d = a.layout_descriptor();
        d["annotations"] = serde_json::json!({ REF_NAME: n });
        d
    };
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [
        {"mediaType": app.media_type, "digest": app.digest, "size": app.size,
         "annotations": {REF_NAME: format!("{name}:v1")}},
        named(&sig, cosign_tag(&app.digest, "sig")),
        named(&att, format!("{name}:{}", cosign_tag(&app.digest, "att"))),
        sbom.layout_descriptor(),
        named(&referrers, fallback_tag(&app.digest)),
    ]});
    let mut pack = Pack::new(
        &layout.path,
        bundle_json(
            serde_json::json!({"image": format!("{name}:v1"), "imageType": "oci"}),
            &[],
        ),
    );
    pack.index_json = Some(serde_json::to_vec(&index).unwrap());
    let work = tempfile::tempdir().unwrap();
    let tgz = work.path().join("thick.tgz");
    std::fs::write(&tgz, pack.tgz()).unwrap();

    let relmap = work.path().join("relmap.json");
    let prefix = format!("{}/x", target.host());
    let run = relocate(&tgz, &prefix, &relmap, &["--json"]);
    run.assert_ok();
    let map = mapped(&relmap);
    assert_eq!(map.len(), 1);
    let dst = path_of(repository_of(map[&format!("{name}:v1")].as_str().unwrap())).to_string();
    let t = target.host();
    assert_serves(&t, &dst, &cosign_tag(&app.digest, "sig"), &sig.manifest);
    assert_serves(&t, &dst, &cosign_tag(&app.digest, "att"), &att.manifest);
    assert_serves(&t, &dst, &sbom.digest(), &sbom.manifest);
    assert_serves(&t, &dst, &cdx.digest(), &cdx.manifest);
    let entries = fallback_entries(&t, &dst, &app.digest).expect("a fallback index in the target");
    assert_lists(&entries, &sbom.referrer_descriptor(), "thick");
    assert_lists(&entries, &cdx.referrer_descriptor(), "thick");
    assert_eq!(entries.len(), 2, "{entries:?}");
    verify_signature(&t, &dst, &app.digest, name).unwrap();
    let copied = referrers_copied(&run);
    for a in [&sig, &att, &sbom, &cdx] {
        assert!(copied.contains(&a.digest()), "{}: {}", a.digest(), run.stdout);
    }
}

/// The archive's `index.json`.
fn archive_index(tgz: &Path) -> Value {
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(tgz).unwrap());
    let mut archive = tar::Archive::new(gz);
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_string_lossy().trim_start_matches("./") == "artifacts/layout/index.json" {
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            return serde_json::from_slice(&data).unwrap();
        }
    }
    panic!("no index.json in {}", tgz.display());
}

#[test]
fn an_export_carries_the_referrers_across_the_air_gap() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let r = populate_referrers(&source);
    let work = tempfile::tempdir().unwrap();
    let bundle = bundle_of(work.path(), &r);
    let out = work.path().join("bundle.tgz");
    let cfg = tempfile::tempdir().unwrap();
    let run = run_with(
        &["export", bundle.to_str().unwrap(), "-o", out.to_str().unwrap()],
        cfg.path(),
        &[],
    );
    run.assert_ok();

    // the layout lists the cosign tags by full reference and the SBOM by digest
    let index = archive_index(&out);
    let listed = index["manifests"].as_array().unwrap();
    let names: BTreeSet<&str> = listed
        .iter()
        .filter_map(|d| d["annotations"][REF_NAME].as_str())
        .collect();
    for (repo, digest, suffix) in [
        (SIGNED_REPO, &r.signed.1, "sig"),
        (SIGNED_REPO, &r.signed.1, "att"),
        (SIGNED_REPO, &r.sbom.digest(), "sig"),
        (MULTI_REPO, &r.child, "sig"),
    ] {
        let full = format!("{}/{repo}:{}", r.host, cosign_tag(digest, suffix));
        assert!(names.contains(full.as_str()), "{full} in {names:?}");
    }
    assert!(
        listed.iter().any(|d| d["digest"] == r.sbom.digest()),
        "the SBOM is listed: {index}"
    );

    // relocated with the source gone
    let snapshots: Vec<BTreeMap<String, Vec<u8>>> = [SIGNED_REPO, MULTI_REPO]
        .iter()
        .map(|repo| snapshot(&r.host, repo))
        .collect();
    let (signed, multi) = (r.signed.0.clone(), r.multi.0.clone());
    drop(source);
    let relmap = work.path().join("relmap.json");
    let prefix = format!("{}/x", target.host());
    relocate(&out, &prefix, &relmap, &["--json"]).assert_ok();
    let map = mapped(&relmap);
    assert_eq!(map.len(), 2);
    let t = target.host();
    let dst_signed = path_of(repository_of(map[&signed].as_str().unwrap())).to_string();
    let dst_multi = path_of(repository_of(map[&multi].as_str().unwrap())).to_string();
    assert_carried_offline(&snapshots[0], &[&r.sbom], &t, &dst_signed);
    assert_carried_offline(&snapshots[1], &[], &t, &dst_multi);
    verify_signature(&t, &dst_signed, &r.signed.1, &format!("{}/{SIGNED_REPO}", r.host)).unwrap();
    verify_signature(&t, &dst_multi, &r.child, &format!("{}/{MULTI_REPO}", r.host)).unwrap();
}
