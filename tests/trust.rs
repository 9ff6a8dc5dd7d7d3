//! Credentials stay with their origin: a fake in front of a real registry points uploads,
//! redirects and token realms elsewhere, and a recorder there must receive no credentials.

mod support;

use support::proxy::{Fault, Proxy, Rule};
use support::recorder::Recorder;
use support::registry::{Mode, TestRegistry};
use support::{docker_config_for, mapped, populate, run_with, write_bundle};

const KIB: usize = 1024;

fn rule(method: &'static str, path_contains: &str, fault: Fault) -> Rule {
    Rule {
        method,
        path_contains: path_contains.into(),
        fault,
        times: usize::MAX,
    }
}

#[test]
fn an_upload_location_on_another_origin_gets_no_credentials() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Htpasswd);
    let images = populate(&source, 64 * KIB);
    let recorder = Recorder::start();
    let proxy = Proxy::start(&format!("http://{}", target.host()));
    proxy.add(rule(
        "POST",
        "/blobs/uploads/",
        Fault::RewriteLocation(recorder.origin()),
    ));
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(work.path(), &[&images.oci_plain.0], &[]);
    let relmap = work.path().join("relmap.json");
    let config = docker_config_for(&[proxy.host()]);
    let args = [
        bundle.to_str().unwrap(),
        "-p",
        &format!("{}/x", proxy.host()),
        "-m",
        relmap.to_str().unwrap(),
    ];
    let run = run_with(&[&args[..], &["--retry-times", "1"]].concat(), config.path(), &[]);
    assert_eq!(run.code, 1, "the recorder is no registry: {}", run.stderr);
    assert!(!recorder.requests().is_empty(), "the upload went where Location said");
    assert_eq!(recorder.authorized(), 0, "{:?}", recorder.requests());
}

#[test]
fn a_relative_upload_location_resolves_against_the_request() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Htpasswd);
    let images = populate(&source, 64 * KIB);
    let proxy = Proxy::start(&format!("http://{}", target.host()));
    proxy.add(rule("POST", "/blobs/uploads/", Fault::RelativeLocation));
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(work.path(), &[&images.oci_plain.0], &[]);
    let relmap = work.path().join("relmap.json");
    let config = docker_config_for(&[proxy.host()]);
    let args = [
        bundle.to_str().unwrap(),
        "-p",
        &format!("{}/x", proxy.host()),
        "-m",
        relmap.to_str().unwrap(),
    ];
    run_with(&args, config.path(), &[]).assert_ok();
    assert!(mapped(&relmap).contains_key(&images.oci_plain.0));
}

#[test]
fn a_blob_redirected_to_another_origin_is_fetched_without_credentials() {
    let source = TestRegistry::start(Mode::Htpasswd);
    let target = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 64 * KIB);
    let recorder = Recorder::start();
    let proxy = Proxy::start(&format!("http://{}", source.host()));
    proxy.add(rule("GET", "/blobs/sha256:", Fault::RedirectTo(recorder.origin())));
    let reference = images.oci_plain.0.replace(&source.host(), &proxy.host());
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(work.path(), &[&reference], &[]);
    let relmap = work.path().join("relmap.json");
    let config = docker_config_for(&[proxy.host()]);
    let args = [
        bundle.to_str().unwrap(),
        "-p",
        &format!("{}/x", target.host()),
        "-m",
        relmap.to_str().unwrap(),
    ];
    let run = run_with(&[&args[..], &["--retry-times", "1"]].concat(), config.path(), &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(!recorder.requests().is_empty(), "the redirect was followed");
    assert_eq!(recorder.authorized(), 0, "{:?}", recorder.requests());
}

#[test]
fn credentials_never_go_to_a_token_realm_on_another_host_over_plain_http() {
    let target = TestRegistry::start(Mode::Token);
    let recorder = Recorder::start();
    let realm = format!("{}/token", recorder.origin());
    let proxy = Proxy::start(&format!("http://{}", target.host()));
    proxy.add(rule("GET", "/v2/", Fault::RewriteRealm(realm.clone())));
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(
        work.path(),
        &["example.com/never/read@sha256:4d41eeb38fb14266b7c0461ef1ef0b2f8c05f41cd544987a259a9d92cdad2540"],
        &[],
    );
    let relmap = work.path().join("relmap.json");
    let config = docker_config_for(&[proxy.host()]);
    let args = [
        bundle.to_str().unwrap(),
        "-p",
        &format!("{}/x", proxy.host()),
        "-m",
        relmap.to_str().unwrap(),
    ];
    let run = run_with(&args, config.path(), &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains(&realm), "names the realm: {}", run.stderr);
    assert!(recorder.requests().is_empty(), "{:?}", recorder.requests());
}
