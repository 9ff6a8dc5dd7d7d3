//! Certificates as people make them, against real TLS registries: a single self-signed
//! certificate (`openssl req -x509`, CA:TRUE) given with `--ca-cert-path`, and per-registry
//! `certs.d/HOST:PORT/*.crt` folders as skopeo reads them.

mod support;

use std::path::Path;

use support::fixtures::skopeo_digest;
use support::registry::{Mode, TestRegistry};
use support::{mapped, populate, run_with, write_bundle, Run};

const KIB: usize = 1024;

/// Relocates `image` under `prefix` into a fresh mapping file; the run and whether a mapping
/// was written.
fn relocate(image: &str, prefix: &str, extra: &[&str], env: &[(&str, &str)]) -> (Run, Option<serde_json::Value>) {
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(work.path(), &[image], &[]);
    let relmap = work.path().join("relmap.json");
    let config = tempfile::tempdir().unwrap();
    let args = [bundle.to_str().unwrap(), "-p", prefix, "-m", relmap.to_str().unwrap()];
    let run = run_with(&[&args[..], extra].concat(), config.path(), env);
    let map = relmap.exists().then(|| serde_json::Value::Object(mapped(&relmap)));
    (run, map)
}

/// A `certs.d` tree under `root` with `cert` as `HOST/ca.crt`.
fn certs_d(root: &Path, host: &str, cert: &Path) {
    std::fs::create_dir_all(root.join(host)).unwrap();
    std::fs::copy(cert, root.join(host).join("ca.crt")).unwrap();
}

#[test]
fn a_self_signed_certificate_is_trusted_as_curl_and_skopeo_trust_it() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::SelfSigned);
    let other = TestRegistry::start(Mode::SelfSigned);
    let images = populate(&source, 64 * KIB);
    // curl accepts it (and skopeo, reading the pushed image below)
    assert!(target.catalog().is_empty());
    let image = &images.oci_plain.0;
    let prefix = format!("{}/pinned", target.host());
    let ca = target.ca_path();

    let (run, map) = relocate(image, &prefix, &[], &[]);
    assert_eq!(run.code, 1, "not trusted without it: {}", run.stderr);
    assert!(run.stderr.contains("certificate"), "{}", run.stderr);
    assert!(map.is_none());

    let (run, map) = relocate(image, &prefix, &["--ca-cert-path", ca.to_str().unwrap()], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let relocated = map.unwrap()[image].as_str().unwrap().to_string();
    assert_eq!(
        skopeo_digest(&relocated, &target.skopeo_opts("src")),
        images.oci_plain.1
    );

    // only that very certificate: another self-signed one is no authority over it
    let (run, map) = relocate(
        image,
        &format!("{}/other", target.host()),
        &["--ca-cert-path", other.ca_path().to_str().unwrap()],
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(map.is_none());

    // and the name is still checked: the certificate is for 127.0.0.1, not localhost
    let (run, map) = relocate(
        image,
        &format!("localhost:{}/by-name", target.port),
        &["--ca-cert-path", ca.to_str().unwrap()],
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("NotValidForName"), "{}", run.stderr);
    assert!(map.is_none());
}

#[test]
fn per_registry_certificates_come_from_certs_d_folders() {
    let source = TestRegistry::start(Mode::Plain);
    let self_signed = TestRegistry::start(Mode::SelfSigned);
    let ca_signed = TestRegistry::start(Mode::Tls);
    let images = populate(&source, 64 * KIB);
    let image = &images.oci_plain.0;
    let dirs = tempfile::tempdir().unwrap();
    let (first, second) = (dirs.path().join("containers"), dirs.path().join("docker"));
    // the self-signed registry's certificate in the second folder, the other registry's CA in
    // the first
    certs_d(&second, &self_signed.host(), &self_signed.ca_path());
    certs_d(&first, &ca_signed.host(), &ca_signed.ca_path());
    let both = format!("{}:{}", first.display(), second.display());
    let env = [("CNAB_RELOCATE_CERTS_D", both.as_str())];

    for target in [&self_signed, &ca_signed] {
        let prefix = format!("{}/certs-d", target.host());
        let (run, map) = relocate(image, &prefix, &[], &env);
        assert_eq!(run.code, 0, "{:?}: {}", target.mode, run.stderr);
        assert!(map.unwrap().get(image).is_some());
        // without the folders: untrusted
        let (run, _) = relocate(image, &format!("{}/none", target.host()), &[], &[]);
        assert_eq!(run.code, 1, "{:?}: {}", target.mode, run.stderr);
    }

    // a folder is for its HOST:PORT only
    let elsewhere = dirs.path().join("elsewhere");
    certs_d(&elsewhere, "127.0.0.1:1", &self_signed.ca_path());
    certs_d(&elsewhere, "127.0.0.1", &self_signed.ca_path());
    let env = [("CNAB_RELOCATE_CERTS_D", elsewhere.to_str().unwrap())];
    let (run, _) = relocate(image, &format!("{}/wrong-port", self_signed.host()), &[], &env);
    assert_eq!(run.code, 1, "{}", run.stderr);

    // the first folder naming the registry is the one read, as in skopeo
    let shadowing = dirs.path().join("shadowing");
    certs_d(&shadowing, &self_signed.host(), &ca_signed.ca_path());
    let order = format!("{}:{}", shadowing.display(), second.display());
    let env = [("CNAB_RELOCATE_CERTS_D", order.as_str())];
    let (run, _) = relocate(image, &format!("{}/shadowed", self_signed.host()), &[], &env);
    assert_eq!(run.code, 1, "{}", run.stderr);
}
