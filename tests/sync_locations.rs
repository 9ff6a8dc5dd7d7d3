//! `sync` against real registries: what each location brings (a CA folder, `auth: none`), and
//! blobs placed once per target registry across tasks and from a source on the same registry.

mod support;

use std::path::Path;

use support::fixtures::skopeo_digest;
use support::registry::{Mode, TestRegistry, PASSWORD, USER};
use support::{basic_auth, docker_config, populate, run_with, Run};

const KIB: usize = 1024;

fn sync(config: &str, dir: &Path, docker_config: &Path, extra: &[&str]) -> Run {
    let path = dir.join("sync.yaml");
    std::fs::write(&path, config).unwrap();
    let mut args = vec!["sync", path.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    run_with(&args, docker_config, &[])
}

/// `blob_done` outcomes of `digest` in the events of `task`.
fn outcomes_in_task(run: &Run, task: &str, digest: &str) -> Vec<String> {
    run.events()
        .iter()
        .filter(|e| e["event"] == "blob_done" && e["task"] == task && e["digest"] == digest)
        .map(|e| e["outcome"]["how"].as_str().unwrap().to_string())
        .collect()
}

fn summary(run: &Run) -> serde_json::Value {
    run.events().pop().unwrap()
}

#[test]
fn a_ca_in_the_certs_dir_is_trusted_for_its_host() {
    let src = TestRegistry::start(Mode::Plain);
    let images = populate(&src, 16 * KIB);
    let dst = TestRegistry::start(Mode::Tls);
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs.d");
    std::fs::create_dir_all(certs.join("127.0.0.1")).unwrap();
    std::fs::copy(dst.ca_path(), certs.join("127.0.0.1/ca.crt")).unwrap();
    let task = format!(
        "tasks:\n- name: t\n  source: {{registry: {}}}\n  target: {{registry: {}}}\n  mappings:\n  - from: team/oci-plain\n    tags: [v1]\n",
        src.host(),
        dst.host()
    );
    let empty = tempfile::tempdir().unwrap();

    let refused = sync(&task, dir.path(), empty.path(), &[]);
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    assert!(refused.stderr.contains("certificate"), "{}", refused.stderr);

    let with_folder = format!("skopeo:\n  certs-dir: {}\n{task}", certs.display());
    let run = sync(&with_folder, dir.path(), empty.path(), &[]);
    run.assert_ok();
    let copied = format!("{}/team/oci-plain:v1", dst.host());
    assert_eq!(skopeo_digest(&copied, &dst.skopeo_opts("src")), images.oci_plain.1);
}

#[test]
fn auth_none_sends_no_credentials_and_no_auth_reads_dockers_config() {
    let src = TestRegistry::start(Mode::Htpasswd);
    let images = populate(&src, 16 * KIB);
    let dst = TestRegistry::start(Mode::Plain);
    let dir = tempfile::tempdir().unwrap();
    let config = docker_config(serde_json::json!({ src.host(): {"auth": basic_auth(USER, PASSWORD)} }));
    let task = |auth: &str| {
        format!(
            "tasks:\n- name: t\n  source: {{registry: {}{auth}}}\n  target: {{registry: {}}}\n  mappings:\n  - from: team/oci-plain\n    tags: [v1]\n",
            src.host(),
            dst.host()
        )
    };
    let anonymous = sync(&task(", auth: none"), dir.path(), config.path(), &[]);
    assert_eq!(anonymous.code, 1, "{}", anonymous.stdout);
    assert!(
        anonymous.stderr.contains("unauthorized") || anonymous.stderr.contains("authentication"),
        "{}",
        anonymous.stderr
    );
    assert!(!anonymous.stdout.contains(PASSWORD) && !anonymous.stderr.contains(PASSWORD));

    sync(&task(""), dir.path(), config.path(), &[]).assert_ok();
    let copied = format!("{}/team/oci-plain:v1", dst.host());
    assert_eq!(skopeo_digest(&copied, &dst.skopeo_opts("src")), images.oci_plain.1);
}

#[test]
fn a_blob_is_sent_once_per_target_registry_across_tasks_and_mounted_from_a_source_there() {
    let src = TestRegistry::start(Mode::Plain);
    let images = populate(&src, 64 * KIB);
    let dst = TestRegistry::start(Mode::Plain);
    let dir = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let (s, d) = (src.host(), dst.host());
    let config = format!(
        "tasks:
- name: first
  source: {{registry: {s}}}
  target: {{registry: {d}}}
  mappings:
  - from: team/oci-plain
    to: one/app
    tags: [v1]
- name: second
  source: {{registry: {s}}}
  target: {{registry: {d}}}
  mappings:
  - from: team/docker
    to: two/app
    tags: [v1]
- name: inside
  source: {{registry: {s}}}
  target: {{registry: {s}}}
  mappings:
  - from: team/docker
    to: mirror/docker
    tags: [v1]
"
    );
    let run = sync(&config, dir.path(), empty.path(), &[]);
    run.assert_ok();
    let base = &images.base_layer;
    assert_eq!(outcomes_in_task(&run, "first", base), ["uploaded"]);
    assert_eq!(
        outcomes_in_task(&run, "second", base),
        ["mounted"],
        "placed by the first task in the same registry"
    );
    let inside: Vec<serde_json::Value> = run
        .events()
        .into_iter()
        .filter(|e| e["event"] == "blob_done" && e["task"] == "inside")
        .collect();
    assert!(!inside.is_empty());
    assert!(
        inside.iter().all(|e| e["outcome"]["how"] == "mounted"),
        "from the source repository: {inside:?}"
    );
    assert_eq!(summary(&run)["pairs"], 3);
    for (reference, digest, opts) in [
        (format!("{d}/one/app:v1"), &images.oci_plain.1, dst.skopeo_opts("src")),
        (format!("{d}/two/app:v1"), &images.docker.1, dst.skopeo_opts("src")),
        (
            format!("{s}/mirror/docker:v1"),
            &images.docker.1,
            src.skopeo_opts("src"),
        ),
    ] {
        assert_eq!(&skopeo_digest(&reference, &opts), digest, "{reference}");
    }

    let again = sync(&config, dir.path(), empty.path(), &[]);
    again.assert_ok();
    assert_eq!(summary(&again)["already_present"], 3);
    assert_eq!(summary(&again)["blobs_uploaded"], 0);
    assert_eq!(summary(&again)["blobs_mounted"], 0);
}

#[test]
fn a_token_registry_lists_its_catalog_with_the_locations_auth() {
    let src = TestRegistry::start(Mode::Token);
    let images = populate(&src, 16 * KIB);
    let dst = TestRegistry::start(Mode::Plain);
    let dir = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let auth = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{{\"username\":\"{USER}\",\"password\":\"{PASSWORD}\"}}\n"),
    );
    let config = format!(
        "tasks:\n- name: t\n  source: {{registry: {}, auth: {auth}}}\n  target: {{registry: {}}}\n  mappings:\n  - from: regex:team/oci-.*\n    to: mirror\n",
        src.host(),
        dst.host()
    );
    let run = sync(&config, dir.path(), empty.path(), &["-v"]);
    run.assert_ok();
    assert!(
        run.stderr
            .contains("credentials from the location's auth in the sync configuration"),
        "{}",
        run.stderr
    );
    let planned: Vec<String> = run
        .events()
        .iter()
        .filter(|e| e["event"] == "sync_planned")
        .map(|e| e["target"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(planned, [format!("{}/mirror/team/oci-plain:v1", dst.host())]);
    let token = src.token.as_ref().unwrap();
    let requests = token.requests.lock().unwrap();
    assert!(
        requests
            .iter()
            .any(|r| r.user.as_deref() == Some(USER) && r.scopes.iter().any(|s| s == "registry:catalog:*")),
        "the catalog token is asked for with the location's credentials"
    );
    drop(requests);
    let copied = format!("{}/mirror/team/oci-plain:v1", dst.host());
    assert_eq!(skopeo_digest(&copied, &dst.skopeo_opts("src")), images.oci_plain.1);
    assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD));
}

#[test]
fn each_repository_of_a_task_is_listed_once() {
    let src = TestRegistry::start(Mode::Plain);
    populate(&src, 16 * KIB);
    let front = support::proxy::Proxy::start(&format!("http://{}", src.host()));
    let dst = TestRegistry::start(Mode::Plain);
    let dir = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let config = format!(
        "tasks:\n- name: t\n  source: {{registry: {}}}\n  target: {{registry: {}}}\n  mappings:\n  - from: regex:team/.*\n    to: mirror\n",
        front.host(),
        dst.host()
    );
    for _ in 0..2 {
        front.clear_log();
        sync(&config, dir.path(), empty.path(), &[]).assert_ok();
        let catalog = front.count("GET", "/v2/_catalog");
        let tag_lists = front.count("GET", "/tags/list");
        assert_eq!(
            (catalog, tag_lists),
            (1, 4),
            "the planner's listing serves the referrers lookups"
        );
    }
}

#[test]
fn a_cosign_signature_travels_with_its_image() {
    use support::referrers::{cosign_tag, push, signature_as_skopeo};
    let src = TestRegistry::start(Mode::Plain);
    let images = populate(&src, 16 * KIB);
    let digest = &images.oci_plain.1;
    let signature = signature_as_skopeo(digest, &images.oci_plain.0);
    let tag = cosign_tag(digest, "sig");
    push(&src.host(), "team/oci-plain", &tag, &signature);
    let dst = TestRegistry::start(Mode::Plain);
    let dir = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let config = format!(
        "tasks:\n- name: t\n  source: {{registry: {}}}\n  target: {{registry: {}}}\n  mappings:\n  - from: team/oci-plain\n    to: mirror/app\n    tags: [v1]\n",
        src.host(),
        dst.host()
    );
    let run = sync(&config, dir.path(), empty.path(), &[]);
    run.assert_ok();
    assert_eq!(run.count_events("referrer_copied"), 1, "{}", run.stdout);
    let copied = format!("{}/mirror/app:{tag}", dst.host());
    assert_eq!(skopeo_digest(&copied, &dst.skopeo_opts("src")), signature.digest());

    let none = format!(
        "tasks:\n- name: t\n  source: {{registry: {}}}\n  target: {{registry: {}}}\n  mappings:\n  - from: team/oci-plain\n    to: bare/app\n    tags: [v1]\n",
        src.host(),
        dst.host()
    );
    sync(&none, dir.path(), empty.path(), &["--no-referrers"]).assert_ok();
    let tags = support::registry::TestRegistry::catalog(&dst);
    assert!(tags.contains(&"bare/app".to_string()));
    let listed = support::fixtures::run(
        std::process::Command::new("skopeo")
            .args(["list-tags", "--tls-verify=false"])
            .arg(format!("docker://{}/bare/app", dst.host())),
    )
    .stdout;
    assert!(!String::from_utf8_lossy(&listed).contains(".sig"));
}

#[test]
fn a_repository_that_holds_a_blob_already_lends_it_instead_of_a_new_upload() {
    let src = TestRegistry::start(Mode::Plain);
    populate(&src, 64 * KIB);
    let dst = TestRegistry::start(Mode::Plain);
    support::fixtures::skopeo_copy(
        &format!("docker://{}/team/oci-plain:v1", src.host()),
        &format!("docker://{}/t/b:old", dst.host()),
        &[src.skopeo_opts("src"), dst.skopeo_opts("dest")].concat(),
    );
    let dir = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let (s, d) = (src.host(), dst.host());
    let config = format!(
        "tasks:
- name: t
  source: {{registry: {s}}}
  target: {{registry: {d}}}
  mappings:
  - from: team/oci-plain
    to: t/a
    tags: [v1]
  - from: team/oci-plain
    to: t/b
    tags: [v1]
"
    );
    let run = sync(&config, dir.path(), empty.path(), &[]);
    run.assert_ok();
    assert_eq!(summary(&run)["copied"], 2);
    assert_eq!(
        summary(&run)["blobs_uploaded"],
        0,
        "t/b holds every blob: t/a mounts them from there\n{}",
        run.stdout
    );
}

#[test]
fn bad_registry_flags_exit_2_before_any_registry_is_contacted() {
    let src = TestRegistry::start(Mode::Plain);
    let front = support::proxy::Proxy::start(&format!("http://{}", src.host()));
    let dir = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let config = format!(
        "tasks:\n- name: t\n  source: {{registry: {}}}\n  target: {{registry: {}}}\n  mappings:\n  - from: regex:.*\n",
        front.host(),
        front.host()
    );
    let missing = dir.path().join("missing");
    let missing = missing.to_str().unwrap();
    for flags in [["--ca-cert-path", missing], ["--authfile", missing]] {
        for dry in [false, true] {
            let mut extra = flags.to_vec();
            if dry {
                extra.push("--dry-run");
            }
            let run = sync(&config, dir.path(), empty.path(), &extra);
            assert_eq!(run.code, 2, "{extra:?}\n{}", run.stderr);
            assert!(run.stderr.contains(missing), "{}", run.stderr);
            assert_eq!(summary(&run)["outcome"], "input_error");
        }
    }
    assert!(front.log().is_empty(), "no registry contacted");
}
