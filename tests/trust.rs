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

/// Relocates a bundle of `image` under `prefix`, with credentials for `credentialed` in the
/// Docker config; returns the run and the mapping file.
fn relocate_one(image: &str, prefix: &str, credentialed: &str, extra: &[&str]) -> (support::Run, tempfile::TempDir) {
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(work.path(), &[image], &[]);
    let relmap = work.path().join("relmap.json");
    let config = docker_config_for(&[credentialed.to_string()]);
    let args = [bundle.to_str().unwrap(), "-p", prefix, "-m", relmap.to_str().unwrap()];
    (run_with(&[&args[..], extra].concat(), config.path(), &[]), work)
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
    let prefix = format!("{}/x", proxy.host());
    let (run, _work) = relocate_one(&images.oci_plain.0, &prefix, &proxy.host(), &["--retry-times", "1"]);
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
    let prefix = format!("{}/x", proxy.host());
    let (run, work) = relocate_one(&images.oci_plain.0, &prefix, &proxy.host(), &[]);
    run.assert_ok();
    assert!(mapped(&work.path().join("relmap.json")).contains_key(&images.oci_plain.0));
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
    let prefix = format!("{}/x", target.host());
    let (run, _work) = relocate_one(&reference, &prefix, &proxy.host(), &["--retry-times", "1"]);
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
    let never_read = "example.com/never/read@sha256:4d41eeb38fb14266b7c0461ef1ef0b2f8c05f41cd544987a259a9d92cdad2540";
    let (run, _work) = relocate_one(never_read, &format!("{}/x", proxy.host()), &proxy.host(), &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains(&realm), "names the realm: {}", run.stderr);
    assert!(recorder.requests().is_empty(), "{:?}", recorder.requests());
}

#[test]
fn a_401_from_where_a_redirect_led_does_not_redirect_the_credentials() {
    let source = TestRegistry::start(Mode::Htpasswd);
    let target = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 64 * KIB);
    let token_trap = Recorder::start();
    let challenge = format!(
        "HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Bearer realm=\"https://localhost:{}/token\"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        token_trap.port
    );
    let cdn = Recorder::answering(challenge);
    let proxy = Proxy::start(&format!("http://{}", source.host()));
    proxy.add(rule("GET", "/blobs/sha256:", Fault::RedirectTo(cdn.origin())));
    let reference = images.oci_plain.0.replace(&source.host(), &proxy.host());
    let prefix = format!("{}/x", target.host());
    let (run, _work) = relocate_one(&reference, &prefix, &proxy.host(), &["--retry-times", "1"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(!cdn.requests().is_empty(), "the redirect was followed");
    assert_eq!(cdn.authorized(), 0);
    assert!(token_trap.requests().is_empty(), "{:?}", token_trap.requests());
}

/// A server that answers every request 200 with `body` and a `Link` to the same path.
fn looping_server(body: &'static str) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { break };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut stream = stream;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                    while let Ok(n) = reader.read_line(&mut line) {
                        if n <= 2 {
                            break;
                        }
                    }
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.index.v1+json\r\nLink: <{path}>; rel=\"next\"\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    host
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listing_that_links_back_to_itself_ends_as_an_error() {
    use cnab_relocate::registry::{Registries, RegistryOptions};
    let host = looping_server(
        r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[],"tags":["a"]}"#,
    );
    let registries = Registries::new(RegistryOptions::default()).unwrap();
    let registry = registries.get(&host);
    let subject = format!("sha256:{}", "1".repeat(64)).parse().unwrap();
    let listed = tokio::time::timeout(std::time::Duration::from_secs(20), registry.referrers("a/b", &subject))
        .await
        .expect("ends");
    let e = listed.expect_err("a loop is an error").to_string();
    assert!(e.contains("links back"), "{e}");
    let tags = tokio::time::timeout(std::time::Duration::from_secs(20), registry.list_tags("a/b"))
        .await
        .expect("ends");
    assert!(tags.expect_err("a loop is an error").to_string().contains("links back"));
}
