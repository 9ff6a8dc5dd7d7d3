//! Thin bundles relocated between real registries (Debian's docker-registry on 127.0.0.1),
//! results checked with skopeo.

mod support;

use support::fixtures::{skopeo_digest, skopeo_raw};
use support::proxy::{Fault, Proxy, Rule};
use support::registry::{Mode, TestRegistry, PASSWORD, USER};
use support::{docker_config, docker_config_for, mapped, populate, relocate, repository_of, run_with, write_bundle};

const KIB: usize = 1024;

#[test]
fn relocates_every_manifest_kind_keeping_digests_and_reruns_send_nothing() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 512 * KIB);
    let work = tempfile::tempdir().unwrap();
    let (plain_ref, plain_digest) = &images.oci_plain;
    let pinned = format!("{}@{plain_digest}", repository_of(plain_ref));
    let bundle = write_bundle(
        work.path(),
        &[&images.multi.0],
        &[
            ("plain", serde_json::json!({"image": plain_ref})),
            (
                "docker",
                serde_json::json!({"image": images.docker.0, "imageType": "docker"}),
            ),
            (
                "list",
                serde_json::json!({"image": images.docker_list.0, "contentDigest": images.docker_list.1}),
            ),
            ("deep", serde_json::json!({"image": images.deep.0})),
            ("pinned", serde_json::json!({"image": pinned})),
        ],
    );
    let bundle_before = std::fs::read(&bundle).unwrap();
    let relmap = work.path().join("relmap.json");
    let prefix = format!("{}/reloc/team", target.host());
    let empty_config = tempfile::tempdir().unwrap();
    let args = [bundle.to_str().unwrap(), "-p", &prefix, "-m", relmap.to_str().unwrap()];
    let first = run_with(&args, empty_config.path(), &[]);
    first.assert_ok();
    assert!(first.stdout.contains("copied"), "{}", first.stdout);

    // the mapping is exactly what --dry-run predicts
    let dry = run_with(
        &[bundle.to_str().unwrap(), "-p", &prefix, "--dry-run"],
        empty_config.path(),
        &[],
    );
    assert_eq!(std::fs::read(&relmap).unwrap(), dry.stdout.as_bytes());
    let map = mapped(&relmap);
    assert_eq!(map.len(), 6);

    // every relocated reference serves the source's exact manifest bytes
    let opts = target.skopeo_opts("src");
    let src_opts = source.skopeo_opts("src");
    for (original, digest) in images.all() {
        let relocated = map[&original].as_str().unwrap();
        assert!(relocated.starts_with(&prefix), "{relocated}");
        assert_eq!(&skopeo_digest(relocated, &opts), &digest, "{original} → {relocated}");
        assert_eq!(skopeo_raw(relocated, &opts), skopeo_raw(&original, &src_opts));
    }
    let pinned_relocated = map[&pinned].as_str().unwrap();
    assert!(pinned_relocated.ends_with(&format!("@{plain_digest}")));
    assert_eq!(&skopeo_digest(pinned_relocated, &opts), plain_digest);
    // the index's children are there by digest
    for child in ["amd64", "arm64"] {
        let d = images.layout.descriptor(child).digest;
        let repo = repository_of(map[&images.multi.0].as_str().unwrap());
        assert_eq!(skopeo_digest(&format!("{repo}@{d}"), &opts), d);
    }
    assert_eq!(std::fs::read(&bundle).unwrap(), bundle_before, "bundle untouched");

    // a second run finds everything in place and sends no blob
    let again = run_with(&[&args[..], &["--json"]].concat(), empty_config.path(), &[]);
    again.assert_ok();
    assert_eq!(again.count_events("image_already_present"), 6, "{}", again.stdout);
    assert_eq!(again.count_events("blob_started"), 0);
    assert_eq!(again.count_events("blob_done"), 0);
    let summary = again.events().pop().unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["success"], true);
    assert_eq!(summary["bytes_sent"], 0);
}

#[test]
fn a_shared_base_layer_crosses_the_wire_once_and_is_mounted_elsewhere() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 1024 * KIB);
    let work = tempfile::tempdir().unwrap();
    let refs: Vec<String> = images.all().into_iter().map(|(r, _)| r).collect();
    let bundle = write_bundle(
        work.path(),
        &[&refs[0]],
        &refs[1..]
            .iter()
            .enumerate()
            .map(|(i, r)| (["b", "c", "d", "e"][i], serde_json::json!({"image": r})))
            .collect::<Vec<_>>(),
    );
    let relmap = work.path().join("relmap.json");
    let prefix = format!("{}/mirror", target.host());
    let run = relocate(&bundle, &prefix, &relmap, &["--json"]);
    run.assert_ok();
    let outcomes = run.blob_outcomes(&images.base_layer);
    assert_eq!(outcomes.len(), 5, "one per target repository: {outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| *o == "uploaded").count(), 1, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| *o == "mounted").count(), 4, "{outcomes:?}");
    let summary = run.events().pop().unwrap();
    let sent = summary["bytes_sent"].as_u64().unwrap();
    assert!(sent < 2 * 1024 * 1024, "the 1 MiB base layer was sent once: {sent}");
    for e in run.events().iter().filter(|e| e["event"] == "image_copied") {
        assert!(
            e["blobs_uploaded"].as_u64().is_some() && e["bytes_sent"].as_u64().is_some(),
            "{e}"
        );
    }
}

#[test]
fn relocating_within_one_registry_mounts_from_the_source() {
    let registry = TestRegistry::start(Mode::Plain);
    let images = populate(&registry, 256 * KIB);
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(
        work.path(),
        &[&images.multi.0],
        &[("x", serde_json::json!({"image": images.docker.0}))],
    );
    let relmap = work.path().join("relmap.json");
    let prefix = format!("{}/relocated", registry.host());
    let run = relocate(&bundle, &prefix, &relmap, &["--json"]);
    run.assert_ok();
    assert_eq!(run.count_events("blob_started"), 0, "nothing uploaded: {}", run.stdout);
    assert!(run.events().iter().any(|e| e["event"] == "blob_done"
        && e["outcome"]["how"] == "mounted"
        && e["outcome"]["from"] == "team/multi"));
    let map = mapped(&relmap);
    assert_eq!(
        skopeo_digest(map[&images.multi.0].as_str().unwrap(), &registry.skopeo_opts("src")),
        images.multi.1
    );
}

#[test]
fn htpasswd_registries_use_docker_config_and_never_print_secrets() {
    let source = TestRegistry::start(Mode::Htpasswd);
    let target = TestRegistry::start(Mode::Htpasswd);
    let images = populate(&source, 128 * KIB);
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(
        work.path(),
        &[&images.multi.0],
        &[("d", serde_json::json!({"image": images.docker_list.0}))],
    );
    let relmap = work.path().join("relmap.json");
    let prefix = format!("{}/secure", target.host());
    let args = [bundle.to_str().unwrap(), "-p", &prefix, "-m", relmap.to_str().unwrap()];

    // no credentials: a clear authentication error, nothing written
    let empty = tempfile::tempdir().unwrap();
    let run = run_with(&args, empty.path(), &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("docker login"), "{}", run.stderr);
    assert!(!relmap.exists());

    // wrong password: refused, named, no secret shown
    let wrong = docker_config(serde_json::json!({
        source.host(): {"auth": support::basic_auth(USER, "wrong-password")},
        target.host(): {"auth": support::basic_auth(USER, "wrong-password")},
    }));
    let run = run_with(&[&args[..], &["-vv"]].concat(), wrong.path(), &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&source.host()) && run.stderr.contains("401"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("wrong-password") && !run.stdout.contains("wrong-password"));
    assert!(!relmap.exists());

    // right credentials (username/password fields for one, auth for the other)
    let good = docker_config(serde_json::json!({
        source.host(): {"username": USER, "password": PASSWORD},
        format!("https://{}", target.host()): {"auth": support::basic_auth(USER, PASSWORD)},
    }));
    let run = run_with(&[&args[..], &["-vv", "--json"]].concat(), good.path(), &[]);
    run.assert_ok();
    let all_output = format!("{}{}", run.stdout, run.stderr);
    for secret in [PASSWORD.to_string(), support::basic_auth(USER, PASSWORD)] {
        assert!(!all_output.contains(&secret), "secret leaked: {all_output}");
    }
    let map = mapped(&relmap);
    assert_eq!(
        skopeo_digest(map[&images.docker_list.0].as_str().unwrap(), &target.skopeo_opts("src")),
        images.docker_list.1
    );
}

#[test]
fn credentials_from_a_credential_helper() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Htpasswd);
    let images = populate(&source, 64 * KIB);
    let work = tempfile::tempdir().unwrap();
    let bin_dir = work.path().join("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    let helper = bin_dir.join("docker-credential-cnabtest");
    let asked = work.path().join("asked");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread server\necho \"$server\" >> {}\nif [ \"$server\" = \"{}\" ]; then echo '{{\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}'; else echo 'credentials not found in native keychain'; exit 1; fi\n",
            asked.display(),
            target.host()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let bundle = write_bundle(work.path(), &[&images.oci_plain.0], &[]);
    let relmap = work.path().join("relmap.json");
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let prefix = format!("{}/helped", target.host());
    // per-registry helper (credHelpers), then the default store (credsStore)
    for config in [
        serde_json::json!({"credHelpers": {target.host(): "cnabtest"}}),
        serde_json::json!({"credsStore": "cnabtest", "auths": {target.host(): {}}}),
    ] {
        let _ = std::fs::remove_file(&asked);
        let _ = std::fs::remove_file(&relmap);
        let cfg = tempfile::tempdir().unwrap();
        std::fs::write(cfg.path().join("config.json"), config.to_string()).unwrap();
        let run = run_with(
            &[
                bundle.to_str().unwrap(),
                "-p",
                &prefix,
                "-m",
                relmap.to_str().unwrap(),
                "-q",
            ],
            cfg.path(),
            &[("PATH", &path)],
        );
        run.assert_ok();
        assert!(
            std::fs::read_to_string(&asked).unwrap().contains(&target.host()),
            "{config}"
        );
        assert!(
            run.stdout.is_empty() && run.stderr.is_empty(),
            "-q prints nothing on success: {}{}",
            run.stdout,
            run.stderr
        );
        assert!(relmap.exists());
    }
}

#[test]
fn a_registry_that_will_not_mount_gets_the_upload_instead() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 256 * KIB);
    let proxy = Proxy::start(&format!("http://{}", target.host()));
    proxy.refuse_mounts();
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(
        work.path(),
        &[&images.oci_plain.0],
        &[("d", serde_json::json!({"image": images.deep.0}))],
    );
    let relmap = work.path().join("relmap.json");
    let prefix = format!("{}/nomount", proxy.host());
    let run = relocate(&bundle, &prefix, &relmap, &["--json"]);
    run.assert_ok();
    assert!(proxy.count("POST", "mount=") >= 1, "a mount was asked for");
    assert_eq!(
        run.blob_outcomes(&images.base_layer),
        ["uploaded", "uploaded"],
        "{}",
        run.stdout
    );
    assert_relocated(&relmap, [&images.oci_plain, &images.deep]);
}

#[test]
fn tls_registries_with_own_ca_or_skip_verify() {
    let source = TestRegistry::start(Mode::Tls);
    let target = TestRegistry::start(Mode::Tls);
    let images = populate(&source, 64 * KIB);
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(work.path(), &[&images.multi.0], &[]);
    let relmap = work.path().join("relmap.json");
    let cfg = tempfile::tempdir().unwrap();
    let prefix = format!("{}/tls", target.host());
    let base = [bundle.to_str().unwrap(), "-p", &prefix, "-m", relmap.to_str().unwrap()];

    let untrusted = run_with(&base, cfg.path(), &[]);
    assert_eq!(untrusted.code, 1, "{}", untrusted.stderr);
    assert!(untrusted.stderr.contains("--ca-cert-path"), "{}", untrusted.stderr);
    assert!(!relmap.exists());

    // both registries' CAs (each test registry has its own)
    let ca = [source.ca_path(), target.ca_path()];
    let trusted = run_with(
        &[
            &base[..],
            &[
                "--ca-cert-path",
                ca[0].to_str().unwrap(),
                "--ca-cert-path",
                ca[1].to_str().unwrap(),
            ],
        ]
        .concat(),
        cfg.path(),
        &[],
    );
    trusted.assert_ok();
    assert_eq!(
        skopeo_digest(
            mapped(&relmap)[&images.multi.0].as_str().unwrap(),
            &target.skopeo_opts("src")
        ),
        images.multi.1
    );

    std::fs::remove_file(&relmap).unwrap();
    let skip = run_with(&[&base[..], &["--skip-tls-verify"]].concat(), cfg.path(), &[]);
    skip.assert_ok();
    assert!(relmap.exists());

    let bad_ca = work.path().join("not-a-cert.pem");
    std::fs::write(&bad_ca, "hello").unwrap();
    let bad = run_with(
        &[&base[..], &["--ca-cert-path", bad_ca.to_str().unwrap()]].concat(),
        cfg.path(),
        &[],
    );
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("not-a-cert.pem"), "{}", bad.stderr);
}

#[test]
fn token_auth_with_multi_scope_mounts_and_identity_tokens() {
    let source = TestRegistry::start(Mode::Token);
    let target = TestRegistry::start(Mode::Token);
    let images = populate(&source, 512 * KIB);
    let work = tempfile::tempdir().unwrap();
    let refs: Vec<String> = images.all().into_iter().map(|(r, _)| r).collect();
    let bundle = write_bundle(
        work.path(),
        &[&refs[0]],
        &[
            ("a", serde_json::json!({"image": refs[1]})),
            ("b", serde_json::json!({"image": refs[4]})),
        ],
    );
    let relmap = work.path().join("relmap.json");
    let prefix = format!("{}/tok", target.host());
    // source by user/password (Basic at the token service), target by identity token
    let cfg = docker_config(serde_json::json!({
        source.host(): {"auth": support::basic_auth(USER, PASSWORD)},
        target.host(): {"identitytoken": support::token_server::REFRESH_TOKEN},
    }));
    let run = run_with(
        &[
            bundle.to_str().unwrap(),
            "-p",
            &prefix,
            "-m",
            relmap.to_str().unwrap(),
            "--json",
            "-vv",
        ],
        cfg.path(),
        &[],
    );
    run.assert_ok();
    let outcomes = run.blob_outcomes(&images.base_layer);
    assert_eq!(outcomes.iter().filter(|o| *o == "uploaded").count(), 1, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| *o == "mounted").count(), 2, "{outcomes:?}");
    let target_requests = target.token.as_ref().unwrap().requests();
    assert!(target_requests
        .iter()
        .all(|r| r.grant_type.as_deref() == Some("refresh_token")));
    assert!(
        target_requests.iter().any(|r| r.scopes.len() >= 2
            && r.scopes
                .iter()
                .filter(|s| s.ends_with(":pull,push") || s.ends_with(":pull"))
                .count()
                >= 2),
        "a mount token carries the target and the origin (tokens are shared across repositories): {target_requests:?}"
    );
    assert!(source
        .token
        .as_ref()
        .unwrap()
        .requests()
        .iter()
        .all(|r| r.user.as_deref() == Some(USER)));
    let output = format!("{}{}", run.stdout, run.stderr);
    for token in target.token.as_ref().unwrap().issued_tokens() {
        assert!(!output.contains(&token[..40]), "token leaked");
    }
    assert!(!output.contains(support::token_server::REFRESH_TOKEN));
    for (original, digest) in [&images.multi, &images.oci_plain, &images.deep] {
        let relocated = mapped(&relmap)[original].as_str().unwrap().to_string();
        assert_eq!(&skopeo_digest(&relocated, &target.skopeo_opts("src")), digest);
    }
}

#[test]
fn a_source_that_does_not_match_the_pinned_digest_fails_before_any_push() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 64 * KIB);
    let work = tempfile::tempdir().unwrap();
    let (bundle, wrong) = support::bundle_with_wrong_pin(work.path(), &images);
    let relmap = work.path().join("relmap.json");
    std::fs::write(&relmap, "previous mapping").unwrap();
    let run = relocate(&bundle, &format!("{}/x", target.host()), &relmap, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&images.docker.0) && run.stderr.contains(&wrong),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("MANIFEST_UNKNOWN"), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("team/docker@{wrong}")),
        "repo@digest: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("check the reference"),
        "says what to do: {}",
        run.stderr
    );
    assert_eq!(std::fs::read_to_string(&relmap).unwrap(), "previous mapping");
    assert!(target.catalog().is_empty(), "nothing pushed: {:?}", target.catalog());
}

#[test]
fn an_unreachable_target_fails_naming_it_and_keeps_the_old_mapping() {
    let source = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 64 * KIB);
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(work.path(), &[&images.oci_plain.0], &[]);
    let relmap = work.path().join("relmap.json");
    std::fs::write(&relmap, "old").unwrap();
    let run = relocate(&bundle, &format!("127.0.0.1:{closed_port}/x"), &relmap, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("127.0.0.1:{closed_port}")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.to_lowercase().contains("connect"), "{}", run.stderr);
    assert!(
        run.stderr.contains("checking the target") && !run.stderr.contains("reading the source"),
        "a target failure is labelled as one: {}",
        run.stderr
    );
    assert_eq!(std::fs::read_to_string(&relmap).unwrap(), "old");
    let leftovers: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 2, "no temporary files left: {leftovers:?}");
}

#[test]
fn bursts_of_5xx_and_429_are_retried() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 256 * KIB);
    let proxy = Proxy::start(&format!("http://{}", target.host()));
    for (method, path, fault, times) in [
        ("HEAD", "/blobs/", Fault::Status(503, None), 2),
        ("POST", "/blobs/uploads/", Fault::Status(429, Some(1)), 1),
        ("PUT", "/manifests/", Fault::Status(502, None), 2),
        ("PUT", "digest=", Fault::Status(500, None), 1),
    ] {
        proxy.add(Rule {
            method,
            path_contains: path.into(),
            fault,
            times,
        });
    }
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(
        work.path(),
        &[&images.multi.0],
        &[("d", serde_json::json!({"image": images.docker.0}))],
    );
    let relmap = work.path().join("relmap.json");
    let prefix = format!("{}/retry", proxy.host());
    let run = relocate(&bundle, &prefix, &relmap, &[]);
    run.assert_ok();
    let faulted = proxy.log().iter().filter(|l| l.faulted).count();
    assert_eq!(faulted, 6, "every injected fault was hit and survived");
    let map = mapped(&relmap);
    for (original, digest) in [&images.multi, &images.docker] {
        let relocated = map[original].as_str().unwrap();
        assert_eq!(&skopeo_digest(relocated, &proxy_opts()), digest);
    }
}

/// A bundle whose first reference is the invocation image and the rest keyed images.
fn bundle_of(dir: &std::path::Path, references: &[String]) -> std::path::PathBuf {
    let keyed: Vec<(String, serde_json::Value)> = references[1..]
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("i{i}"), serde_json::json!({"image": r})))
        .collect();
    let keyed: Vec<(&str, serde_json::Value)> = keyed.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    write_bundle(dir, &[&references[0]], &keyed)
}

/// Each original's relocated reference (through the proxy) serves exactly its digest.
fn assert_relocated<'a>(relmap: &std::path::Path, images: impl IntoIterator<Item = &'a (String, String)>) {
    let map = mapped(relmap);
    for (original, digest) in images {
        assert_eq!(
            &skopeo_digest(map[original].as_str().unwrap(), &proxy_opts()),
            digest,
            "{original}"
        );
    }
}

fn proxy_opts() -> Vec<String> {
    vec!["--src-tls-verify=false".to_string()]
}

#[test]
fn persistent_server_errors_fail_with_the_registrys_message() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 64 * KIB);
    let proxy = Proxy::start(&format!("http://{}", target.host()));
    proxy.add(Rule::always("PUT", "/manifests/", Fault::Status(503, None)));
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(work.path(), &[&images.oci_plain.0], &[]);
    let relmap = work.path().join("relmap.json");
    let run = relocate(
        &bundle,
        &format!("{}/x", proxy.host()),
        &relmap,
        &["--retry-times", "4"],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("HTTP 503") && run.stderr.contains("injected fault 503"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&images.oci_plain.0),
        "names the image: {}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches("injected fault 503").count(),
        1,
        "said once: {}",
        run.stderr
    );
    assert!(!relmap.exists());
    assert_eq!(
        proxy.count("PUT", "/manifests/"),
        5,
        "--retry-times 4: five attempts, not nested"
    );
}

#[test]
fn a_connection_dropped_mid_blob_is_retried_and_nothing_is_lost() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 2048 * KIB);
    let proxy = Proxy::start(&format!("http://{}", source.host()));
    proxy.add(Rule {
        method: "GET",
        path_contains: images.base_layer.clone(),
        fault: Fault::DropAfter(300 * KIB),
        times: 2,
    });
    let work = tempfile::tempdir().unwrap();
    let via_proxy = images.oci_plain.0.replace(&source.host(), &proxy.host());
    let bundle = write_bundle(work.path(), &[&via_proxy], &[]);
    let relmap = work.path().join("relmap.json");
    let run = relocate(&bundle, &format!("{}/x", target.host()), &relmap, &[]);
    run.assert_ok();
    assert_eq!(proxy.count("GET", &images.base_layer), 3, "two dropped, one complete");
    let relocated = mapped(&relmap)[&via_proxy].as_str().unwrap().to_string();
    assert_eq!(
        skopeo_digest(&relocated, &target.skopeo_opts("src")),
        images.oci_plain.1
    );
}

#[test]
fn corrupted_blob_bytes_are_never_committed() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 128 * KIB);
    let proxy = Proxy::start(&format!("http://{}", source.host()));
    proxy.add(Rule {
        method: "GET",
        path_contains: images.base_layer.clone(),
        fault: Fault::Corrupt,
        times: usize::MAX,
    });
    let work = tempfile::tempdir().unwrap();
    let via_proxy = images.deep.0.replace(&source.host(), &proxy.host());
    let bundle = write_bundle(work.path(), &[&via_proxy], &[]);
    let relmap = work.path().join("relmap.json");
    let run = relocate(&bundle, &format!("{}/x", target.host()), &relmap, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&images.base_layer) && run.stderr.contains("not committed"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(&via_proxy), "names the image: {}", run.stderr);
    assert_eq!(
        proxy.count("GET", &images.base_layer),
        1,
        "a digest mismatch is not retried"
    );
    assert!(!relmap.exists());
    // the corrupt blob is not in the target
    let repo = run
        .stderr
        .split(&format!("{}/", target.host()))
        .nth(1)
        .unwrap()
        .split([':', ' '])
        .next()
        .unwrap();
    let status = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-I"])
        .arg(format!(
            "http://{}/v2/{repo}/blobs/{}",
            target.host(),
            images.base_layer
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&status.stdout), "404");
}

#[test]
fn a_partial_rerun_mounts_shared_layers_from_images_already_there() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 512 * KIB);
    let work = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let pinned = format!("{}@{}", repository_of(&images.oci_plain.0), images.oci_plain.1);
    let prefix = format!("{}/partial", target.host());
    let first = write_bundle(work.path(), &[&pinned], &[]);
    let relmap = work.path().join("relmap.json");
    run_with(
        &[first.to_str().unwrap(), "-p", &prefix, "-m", relmap.to_str().unwrap()],
        cfg.path(),
        &[],
    )
    .assert_ok();

    // the pinned image is skipped without reading the source; the new image, which shares
    // its base layer, gets that layer mounted from it
    let second = write_bundle(
        work.path(),
        &[&pinned],
        &[("deep", serde_json::json!({"image": images.deep.0}))],
    );
    let run = run_with(
        &[
            second.to_str().unwrap(),
            "-p",
            &prefix,
            "-m",
            relmap.to_str().unwrap(),
            "--json",
        ],
        cfg.path(),
        &[],
    );
    run.assert_ok();
    assert_eq!(run.count_events("image_already_present"), 1, "{}", run.stdout);
    assert_eq!(run.blob_outcomes(&images.base_layer), ["mounted"], "{}", run.stdout);
    let relocated = mapped(&relmap)[&images.deep.0].as_str().unwrap().to_string();
    assert_eq!(skopeo_digest(&relocated, &target.skopeo_opts("src")), images.deep.1);
}

#[test]
fn one_index_named_twice_is_pushed_once_without_races_and_counted_once() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 256 * KIB);
    let (multi, digest) = &images.multi;
    let by_digest = format!("{}@{digest}", repository_of(multi));
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(
        work.path(),
        &[multi],
        &[("again", serde_json::json!({"image": by_digest}))],
    );
    let relmap = work.path().join("relmap.json");
    let summary = |run: &support::Run| run.events().into_iter().find(|e| e["event"] == "summary").unwrap();
    // The old build failed 10-22% of such runs; 40 runs all pass with a 10% failure rate
    // only with probability 0.9^40 ≈ 1.5%.
    const RUNS: usize = 40;
    for i in 0..RUNS {
        let prefix = format!("{}/run{i}", target.host());
        let run = relocate(&bundle, &prefix, &relmap, &["--json"]);
        run.assert_ok();
        if i > 0 {
            continue;
        }
        let total = summary(&run);
        let per_image: u64 = run
            .events()
            .iter()
            .filter(|e| e["event"] == "image_copied")
            .map(|e| e["bytes_sent"].as_u64().unwrap())
            .sum();
        assert_eq!(
            per_image,
            total["bytes_sent"].as_u64().unwrap(),
            "each upload charged once"
        );
        let uploads = run
            .events()
            .iter()
            .filter(|e| e["event"] == "blob_done" && e["outcome"]["how"] == "uploaded")
            .count();
        assert_eq!(total["blobs_uploaded"].as_u64().unwrap() as usize, uploads);
        let again = relocate(&bundle, &prefix, &relmap, &["--json"]);
        again.assert_ok();
        let total = summary(&again);
        for key in ["bytes_sent", "blobs_uploaded", "blobs_mounted"] {
            assert_eq!(total[key], 0, "a second run sends nothing: {key}");
        }
    }
}

#[test]
fn a_mount_refused_with_any_client_error_falls_back_to_an_upload() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 64 * KIB);
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(
        work.path(),
        &[&images.oci_plain.0],
        &[("d", serde_json::json!({"image": images.deep.0}))],
    );
    for status in [401, 403, 404, 405] {
        let proxy = Proxy::start(&format!("http://{}", target.host()));
        proxy.add(Rule::always("POST", "mount=", Fault::Status(status, None)));
        let relmap = work.path().join(format!("relmap-{status}.json"));
        let run = relocate(
            &bundle,
            &format!("{}/refused{status}", proxy.host()),
            &relmap,
            &["--json"],
        );
        run.assert_ok();
        assert!(proxy.count("POST", "mount=") >= 1, "{status}: a mount was asked for");
        assert_eq!(
            run.blob_outcomes(&images.base_layer),
            ["uploaded", "uploaded"],
            "{status}"
        );
        assert_relocated(&relmap, [&images.oci_plain, &images.deep]);
    }
}

#[test]
fn a_manifest_head_without_its_digest_header_is_read_instead() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 64 * KIB);
    let proxy = Proxy::start(&format!("http://{}", target.host()));
    proxy.add(Rule::always(
        "HEAD",
        "/manifests/",
        Fault::StripResponseHeader("docker-content-digest"),
    ));
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(work.path(), &[&images.multi.0], &[]);
    let relmap = work.path().join("relmap.json");
    let prefix = format!("{}/nodigest", proxy.host());
    relocate(&bundle, &prefix, &relmap, &[]).assert_ok();
    assert!(proxy.count("HEAD", "/manifests/") >= 1);
    let relocated = mapped(&relmap)[&images.multi.0].as_str().unwrap().to_string();
    assert_eq!(skopeo_digest(&relocated, &proxy_opts()), images.multi.1);
    let again = relocate(&bundle, &prefix, &relmap, &["--json"]);
    again.assert_ok();
    assert_eq!(again.count_events("image_already_present"), 1, "{}", again.stdout);
}

#[test]
fn an_unreachable_target_fails_fast_for_any_number_of_images_without_colours() {
    let source = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 64 * KIB);
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let work = tempfile::tempdir().unwrap();
    let all = images.all();
    let pinned: Vec<String> = all.iter().chain(all.iter()).map(|(r, d)| format!("{r}@{d}")).collect();
    let bundle = bundle_of(work.path(), &[vec![all[0].0.clone()], pinned].concat());
    let started = std::time::Instant::now();
    let run = relocate(
        &bundle,
        &format!("127.0.0.1:{closed_port}/x"),
        &work.path().join("relmap.json"),
        &["-vv"],
    );
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(took < std::time::Duration::from_secs(15), "{took:?} for 11 images");
    assert!(
        !run.stderr.contains('\x1b'),
        "no escape sequences into a pipe: {:?}",
        run.stderr
    );
}

#[test]
fn a_registry_that_answers_503_to_its_ping_is_reported_as_such() {
    let target = TestRegistry::start(Mode::Plain);
    let proxy = Proxy::start(&format!("http://{}", target.host()));
    proxy.add(Rule::always("GET", "/v2/", Fault::Status(503, None)));
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(
        work.path(),
        &["example.com/never/read@sha256:4d41eeb38fb14266b7c0461ef1ef0b2f8c05f41cd544987a259a9d92cdad2540"],
        &[],
    );
    let relmap = work.path().join("relmap.json");
    let run = relocate(
        &bundle,
        &format!("{}/x", proxy.host()),
        &relmap,
        &["--retry-times", "2"],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("503") && !run.stderr.contains("TLS"),
        "{}",
        run.stderr
    );
}

#[test]
fn endless_bodies_from_a_registry_are_not_read_to_their_end() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 64 * KIB);
    let work = tempfile::tempdir().unwrap();
    for (status, needle) in [(200, "larger than"), (404, "xxxx")] {
        let proxy = Proxy::start(&format!("http://{}", source.host()));
        proxy.add(Rule::always("GET", "/manifests/", Fault::Endless(status)));
        let reference = images.oci_plain.0.replace(&source.host(), &proxy.host());
        let bundle = write_bundle(work.path(), &[&reference], &[]);
        let relmap = work.path().join("relmap.json");
        let prefix = format!("{}/x", target.host());
        let args = [bundle.to_str().unwrap(), "-p", &prefix, "-m", relmap.to_str().unwrap()];
        let (run, peak_kib) = support::run_measured(&args, work.path());
        assert_eq!(run.code, 1, "{status}: {}", run.stderr);
        assert!(run.stderr.contains(needle), "{status}: {}", run.stderr);
        assert!(peak_kib < 100 * 1024, "{status}: peak RSS {peak_kib} KiB");
    }
}

#[test]
fn a_thirty_second_outage_of_the_target_mid_run_is_ridden_out() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 256 * KIB);
    let proxy = Proxy::start(&format!("http://{}", target.host()));
    // every request after the 12th gets 503 for 30 s: pings, HEADs, POSTs, PATCHes, PUTs
    proxy.outage_after(12, std::time::Duration::from_secs(30));
    let work = tempfile::tempdir().unwrap();
    let all = images.all();
    let references: Vec<String> = all.iter().map(|(r, _)| r.clone()).collect();
    let bundle = bundle_of(work.path(), &references);
    let relmap = work.path().join("relmap.json");
    let run = relocate(&bundle, &format!("{}/outage", proxy.host()), &relmap, &[]);
    run.assert_ok();
    assert!(
        proxy.log().iter().filter(|l| l.faulted).count() > 1,
        "the outage happened"
    );
    assert_relocated(&relmap, &all);
}

#[test]
fn a_registry_that_never_answers_fails_within_the_timeout() {
    let source = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 64 * KIB);
    // accepts every connection and never says a word
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = silent.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming() {
            held.push(stream);
        }
    });
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(work.path(), &[&images.oci_plain.0], &[]);
    let relmap = work.path().join("relmap.json");
    let started = std::time::Instant::now();
    let run = relocate(&bundle, &format!("{host}/x"), &relmap, &["--timeout", "2"]);
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(took < std::time::Duration::from_secs(60), "{took:?}");
    assert!(run.stderr.contains(&host), "{}", run.stderr);
    assert!(!relmap.exists());
}

#[test]
fn a_commit_whose_answer_is_lost_is_checked_not_sent_again() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 64 * KIB);
    let proxy = Proxy::start(&format!("http://{}", target.host()));
    proxy.add(Rule::always("PUT", "digest=", Fault::LoseAnswer(500)));
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(work.path(), &[&images.oci_plain.0], &[]);
    let relmap = work.path().join("relmap.json");
    let run = relocate(
        &bundle,
        &format!("{}/lost", proxy.host()),
        &relmap,
        &["--retry-times", "0", "--json"],
    );
    run.assert_ok();
    let commits: Vec<String> = proxy
        .log()
        .into_iter()
        .filter(|l| l.method == "PUT" && l.path.contains("digest="))
        .map(|l| l.path.split("digest=").nth(1).unwrap().to_string())
        .collect();
    assert!(commits.len() >= 2, "every commit answered 500");
    // a small blob travels in the PUT that commits it, a bigger one in a PATCH before it
    let distinct: std::collections::HashSet<&String> = commits.iter().collect();
    assert_eq!(distinct.len(), commits.len(), "no blob sent twice: {commits:?}");
    assert!(proxy.count("PATCH", "/blobs/uploads/") <= commits.len());
    let relocated = mapped(&relmap)[&images.oci_plain.0].as_str().unwrap().to_string();
    assert_eq!(skopeo_digest(&relocated, &proxy_opts()), images.oci_plain.1);
}

#[test]
fn sigint_and_sigterm_cancel_open_uploads_and_write_no_mapping() {
    use std::io::BufRead;
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    // a base layer big enough to be streamed (PATCH), so that its upload can stall
    let images = populate(&source, 2048 * KIB);
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(work.path(), &[&images.oci_plain.0], &[]);
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let proxy = Proxy::start(&format!("http://{}", target.host()));
        proxy.add(Rule::always("PATCH", "/blobs/uploads/", Fault::Stall));
        let relmap = work.path().join("relmap.json");
        let mut child = std::process::Command::new(support::bin())
            .args([bundle.to_str().unwrap(), "-p", &format!("{}/sig", proxy.host())])
            .args(["-m", relmap.to_str().unwrap(), "--json"])
            .env("DOCKER_CONFIG", work.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        // uploads are under way (and stalled) once a blob has started
        assert!(lines.any(|l| l.unwrap().contains("\"blob_started\"")));
        std::thread::sleep(std::time::Duration::from_millis(300));
        let sent = std::time::Instant::now();
        support::fixtures::run(
            std::process::Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]),
        );
        let status = child.wait().unwrap();
        assert!(
            sent.elapsed() < std::time::Duration::from_secs(3),
            "{signal}: {:?}",
            sent.elapsed()
        );
        assert_eq!(status.code(), Some(code), "{signal}");
        assert!(!relmap.exists());
        assert!(
            proxy.count("DELETE", "/blobs/uploads/") >= 1,
            "{signal}: open sessions cancelled"
        );
    }
}

#[test]
fn a_registry_that_wants_fewer_requests_gets_fewer() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 128 * KIB);
    let proxy = Proxy::start(&format!("http://{}", target.host()));
    proxy.busy_above(1);
    let work = tempfile::tempdir().unwrap();
    let all = images.all();
    // each image by tag and by digest: twice the repositories, every blob checked in each
    let references: Vec<String> = all
        .iter()
        .map(|(r, _)| r.clone())
        .chain(all.iter().map(|(r, d)| format!("{}@{d}", repository_of(r))))
        .collect();
    let bundle = bundle_of(work.path(), &references);
    let relmap = work.path().join("relmap.json");
    // the default --concurrency 8 against a registry that takes one request at a time
    let run = relocate(&bundle, &format!("{}/busy", proxy.host()), &relmap, &[]);
    run.assert_ok();
    // measured: about 30 answers of 429 with the limit lowered, over 50 without it
    let pushed_back = proxy.log().iter().filter(|l| l.status == 429).count();
    assert!(pushed_back >= 1, "the registry pushed back");
    assert!(
        pushed_back < 40,
        "the requests in flight came down: {pushed_back} answers of 429"
    );
    assert_relocated(&relmap, &all);
}

#[test]
fn an_upload_slower_than_the_timeout_that_keeps_moving_is_never_cut() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 16 * 1024 * KIB);
    let proxy = Proxy::start(&format!("http://{}", target.host()));
    // the 16 MiB base layer takes 4 s to cross at 4 MiB/s; nothing stalls for 3 s
    proxy.add(Rule::always(
        "PATCH",
        "/blobs/uploads/",
        Fault::Throttle(4 * 1024 * 1024),
    ));
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(work.path(), &[&images.oci_plain.0], &[]);
    let relmap = work.path().join("relmap.json");
    let run = relocate(
        &bundle,
        &format!("{}/slow", proxy.host()),
        &relmap,
        &["--timeout", "3", "--retry-times", "0"],
    );
    run.assert_ok();
    let relocated = mapped(&relmap)[&images.oci_plain.0].as_str().unwrap().to_string();
    assert_eq!(skopeo_digest(&relocated, &proxy_opts()), images.oci_plain.1);
}

#[test]
fn a_mount_answered_for_another_digest_is_not_trusted() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 64 * KIB);
    let proxy = Proxy::start(&format!("http://{}", target.host()));
    let other = format!("sha256:{}", "0".repeat(64));
    proxy.add(Rule::always("POST", "mount=", Fault::MountedAs(other)));
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(
        work.path(),
        &[&images.oci_plain.0],
        &[("d", serde_json::json!({"image": images.deep.0}))],
    );
    let relmap = work.path().join("relmap.json");
    let run = relocate(&bundle, &format!("{}/lying", proxy.host()), &relmap, &["--json"]);
    run.assert_ok();
    assert!(proxy.count("POST", "mount=") >= 1);
    assert_eq!(run.blob_outcomes(&images.base_layer), ["uploaded", "uploaded"]);
    assert_relocated(&relmap, [&images.oci_plain, &images.deep]);
}

#[test]
fn a_retry_after_longer_than_five_minutes_fails_instead_of_hammering() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 64 * KIB);
    let proxy = Proxy::start(&format!("http://{}", target.host()));
    proxy.add(Rule::always("PUT", "/manifests/", Fault::Status(503, Some(600))));
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(work.path(), &[&images.oci_plain.0], &[]);
    let relmap = work.path().join("relmap.json");
    let started = std::time::Instant::now();
    let run = relocate(&bundle, &format!("{}/later", proxy.host()), &relmap, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert_eq!(proxy.count("PUT", "/manifests/"), 1, "asked once, not hammered");
    assert!(run.stderr.contains("503"), "{}", run.stderr);
}

#[test]
fn an_endless_token_answer_is_not_read_to_its_end() {
    let target = TestRegistry::start(Mode::Token);
    let endless = Proxy::start("http://127.0.0.1:1");
    endless.add(Rule {
        method: "GET",
        path_contains: "/token".into(),
        fault: Fault::Endless(200),
        times: usize::MAX,
    });
    let proxy = Proxy::start(&format!("http://{}", target.host()));
    proxy.add(Rule::always(
        "GET",
        "/v2/",
        Fault::RewriteRealm(format!("http://127.0.0.1:{}/token", endless.port)),
    ));
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(
        work.path(),
        &["example.com/never/read@sha256:4d41eeb38fb14266b7c0461ef1ef0b2f8c05f41cd544987a259a9d92cdad2540"],
        &[],
    );
    let prefix = format!("{}/x", proxy.host());
    let relmap = work.path().join("relmap.json");
    let args = [bundle.to_str().unwrap(), "-p", &prefix, "-m", relmap.to_str().unwrap()];
    let config = docker_config_for(&[proxy.host()]);
    let (run, peak_kib) = support::run_measured(&args, config.path());
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("more than 1048576 bytes"), "{}", run.stderr);
    assert!(peak_kib < 100 * 1024, "peak RSS {peak_kib} KiB");
}

#[test]
fn a_long_retry_after_is_shown_to_the_user() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 64 * KIB);
    let proxy = Proxy::start(&format!("http://{}", target.host()));
    proxy.add(Rule {
        method: "PUT",
        path_contains: "/manifests/".into(),
        fault: Fault::Status(503, Some(6)),
        times: 1,
    });
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(work.path(), &[&images.oci_plain.0], &[]);
    let run = relocate(
        &bundle,
        &format!("{}/wait", proxy.host()),
        &work.path().join("relmap.json"),
        &[],
    );
    run.assert_ok();
    assert!(run.stderr.contains("asks to wait 6 s"), "{}", run.stderr);
}

#[test]
fn a_registry_answering_a_byte_every_five_seconds_fails_within_the_timeout() {
    use std::io::Write;
    let source = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 64 * KIB);
    let trickle = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = trickle.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in trickle.incoming() {
            let Ok(mut stream) = stream else { break };
            std::thread::spawn(move || {
                for byte in b"HTTP/1.1 200 OK\r\n".iter().cycle() {
                    if stream.write_all(&[*byte]).is_err() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_secs(5));
                }
            });
        }
    });
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(work.path(), &[&images.oci_plain.0], &[]);
    let started = std::time::Instant::now();
    let run = relocate(
        &bundle,
        &format!("{host}/x"),
        &work.path().join("relmap.json"),
        &["--timeout", "2"],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    assert!(run.stderr.contains(&host), "{}", run.stderr);
}

#[test]
fn a_401_later_in_the_run_authenticates_again() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Htpasswd);
    let images = populate(&source, 64 * KIB);
    let proxy = Proxy::start(&format!("http://{}", target.host()));
    proxy.add(Rule {
        method: "PUT",
        path_contains: "/manifests/".into(),
        fault: Fault::Status(401, None),
        times: 1,
    });
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(work.path(), &[&images.oci_plain.0], &[]);
    let relmap = work.path().join("relmap.json");
    let config = docker_config_for(&[proxy.host()]);
    let args = [
        bundle.to_str().unwrap(),
        "-p",
        &format!("{}/again", proxy.host()),
        "-m",
        relmap.to_str().unwrap(),
    ];
    run_with(&args, config.path(), &[]).assert_ok();
    assert_eq!(
        proxy.count("PUT", "/manifests/"),
        2,
        "the refused push was sent once more"
    );
}

/// Relocates `bundle` with the library, the mapping into `relmap` and the output bundle into
/// `output` (an empty Docker config is not needed: the registries are anonymous).
fn relocate_with_output_bundle(
    bundle: &std::path::Path,
    prefix: &str,
    relmap: &std::path::Path,
    output: &std::path::Path,
) -> Result<cnab_relocate::CopyReport, cnab_relocate::Error> {
    let relocation = cnab_relocate::Relocation::new(bundle)
        .prefix(prefix)
        .mapping_file(relmap)
        .output_bundle(output);
    tokio::runtime::Runtime::new().unwrap().block_on(relocation.run())
}

/// `original` with every image entry (`invocationImages[]`, `images.*`) named by its relocated
/// reference from `relmap` and given the digest the target serves for it.
fn expected_output_bundle(
    original: &serde_json::Value,
    relmap: &std::path::Path,
    opts: &[String],
) -> serde_json::Value {
    let map = mapped(relmap);
    let mut expected = original.clone();
    let relocate = |entry: &mut serde_json::Value| {
        let relocated = map[entry["image"].as_str().unwrap()].as_str().unwrap().to_string();
        entry["contentDigest"] = skopeo_digest(&relocated, opts).into();
        entry["image"] = relocated.into();
    };
    expected["invocationImages"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .for_each(relocate);
    expected["images"]
        .as_object_mut()
        .unwrap()
        .values_mut()
        .for_each(relocate);
    expected
}

#[test]
fn the_output_bundle_names_each_relocated_image_and_its_digest_and_nothing_else_changes() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 64 * KIB);
    let work = tempfile::tempdir().unwrap();
    let (plain_ref, plain_digest) = &images.oci_plain;
    let pinned = format!("{}@{plain_digest}", repository_of(plain_ref));
    let stale = format!("sha256:{}", "ab".repeat(32));
    let original = serde_json::json!({
        "schemaVersion": "v1.0.0", "name": "out", "version": "1.0.0",
        "description": "<b>relocated</b> & signed: \"ünïcode\" \\ /",
        "maintainers": [{"name": "Ann", "email": "ann@example.com"}],
        "invocationImages": [
            {"image": images.multi.0, "imageType": "oci", "labels": {"role": "installer"}, "size": 1234}
        ],
        "images": {
            // contentDigest present and right: replaced by the same digest
            "docker": {"image": images.docker.0, "imageType": "docker", "description": "d",
                       "contentDigest": images.docker.1},
            // the reference's digest wins over a stale contentDigest (a warning): replaced
            "pinned": {"image": pinned, "contentDigest": stale},
            // no contentDigest: added
            "deep": {"image": images.deep.0, "mediaType": "application/vnd.oci.image.manifest.v1+json"},
            // one image string declared twice
            "again": {"image": images.multi.0}
        },
        "parameters": {"port": {"definition": "port", "destination": {"env": "PORT"}, "default": 8080}},
        "definitions": {"port": {"type": "integer", "minimum": 1, "maximum": 65535}},
        "credentials": {"kube": {"path": "/root/.kube/config", "required": true}},
        "custom": {"io.example": {"image": images.deep.0, "nested": [1, {"b": null, "a": [false]}]}},
        "requiredExtensions": ["io.example"]
    });
    let bundle = work.path().join("bundle.json");
    std::fs::write(&bundle, serde_json::to_vec_pretty(&original).unwrap()).unwrap();
    let bundle_before = std::fs::read(&bundle).unwrap();
    let relmap = work.path().join("relmap.json");
    let output = work.path().join("relocated-bundle.json");
    let prefix = format!("{}/out/team", target.host());

    let report = relocate_with_output_bundle(&bundle, &prefix, &relmap, &output).unwrap();
    assert!(report.succeeded());
    assert_eq!(report.images.len(), 4, "one per distinct image string");

    let written = std::fs::read(&output).unwrap();
    let relocated: serde_json::Value = serde_json::from_slice(&written).unwrap();
    let opts = target.skopeo_opts("src");
    // field by field: each image's `image` is the mapping's value and `contentDigest` what
    // the target serves under it; every other key and value as in the original
    assert_eq!(relocated, expected_output_bundle(&original, &relmap, &opts));
    let map = mapped(&relmap);
    for (key, digest) in [
        ("docker", &images.docker.1),
        ("pinned", plain_digest),
        ("deep", &images.deep.1),
    ] {
        let entry = &relocated["images"][key];
        let raw = original["images"][key]["image"].as_str().unwrap();
        assert_eq!(entry["image"], map[raw], "{key}");
        assert!(entry["image"].as_str().unwrap().starts_with(&prefix), "{key}");
        assert_eq!(entry["contentDigest"], digest.as_str(), "{key}: the source's digest");
    }
    assert_eq!(
        relocated["invocationImages"][0]["contentDigest"],
        images.multi.1.as_str()
    );
    assert_eq!(
        relocated["images"]["again"]["image"],
        relocated["invocationImages"][0]["image"]
    );
    assert_eq!(
        relocated["custom"]["io.example"]["image"],
        images.deep.0.as_str(),
        "an `image` key outside the bundle's images is not an image"
    );
    // canonical: compact, keys sorted, nothing escaped but `"` and `\` (serde_json writes such
    // a document, without control characters or fractions, the same way)
    assert_eq!(written, serde_json::to_vec(&relocated).unwrap());
    assert!(
        String::from_utf8(written.clone())
            .unwrap()
            .contains(r#""description":"<b>relocated</b> & signed: \"ünïcode\" \\ /""#),
        "{}",
        String::from_utf8_lossy(&written)
    );
    assert_eq!(std::fs::read(&bundle).unwrap(), bundle_before, "bundle untouched");
    let files: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files.len(), 3, "no temporary files left: {files:?}");

    // a second run finds everything in place and writes the same bytes
    std::fs::write(&output, "stale").unwrap();
    relocate_with_output_bundle(&bundle, &prefix, &relmap, &output).unwrap();
    assert_eq!(std::fs::read(&output).unwrap(), written);
}

#[test]
fn a_failed_relocation_writes_no_output_bundle() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 64 * KIB);
    let work = tempfile::tempdir().unwrap();
    let (bundle, _) = support::bundle_with_wrong_pin(work.path(), &images);
    let bundle_before = std::fs::read(&bundle).unwrap();
    let relmap = work.path().join("relmap.json");
    let output = work.path().join("out.json");
    let kept = work.path().join("kept.json");
    std::fs::write(&kept, "previous output").unwrap();
    let prefix = format!("{}/x", target.host());
    for path in [&output, &kept] {
        let e = relocate_with_output_bundle(&bundle, &prefix, &relmap, path).unwrap_err();
        assert!(matches!(e, cnab_relocate::Error::Relocation(_)), "{e}");
        assert_eq!(e.exit_code(), 1);
    }
    assert!(!output.exists(), "no output bundle");
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "previous output");
    assert!(!relmap.exists(), "no mapping");
    assert_eq!(std::fs::read(&bundle).unwrap(), bundle_before);
    let files: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files.len(), 2, "no temporary files left: {files:?}");
}

#[test]
fn a_thick_bundles_output_bundle_is_its_bundle_json_relocated() {
    let target = TestRegistry::start(Mode::Plain);
    let images = support::build_layout(64 * KIB);
    let json = support::bundle_json(
        serde_json::json!({"image": format!("example.com/app/multi@{}", images.multi)}),
        &[(
            "amd64",
            serde_json::json!({"image": "example.com/app/amd64:1.0", "contentDigest": images.amd64}),
        )],
    );
    let original: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("app.tgz");
    std::fs::write(&bundle, support::thick::Pack::new(&images.layout.path, json).tgz()).unwrap();
    let relmap = work.path().join("relmap.json");
    let output = work.path().join("bundle.json");
    let prefix = format!("{}/thick", target.host());
    relocate_with_output_bundle(&bundle, &prefix, &relmap, &output).unwrap();
    let relocated: serde_json::Value = serde_json::from_slice(&std::fs::read(&output).unwrap()).unwrap();
    let opts = target.skopeo_opts("src");
    assert_eq!(relocated, expected_output_bundle(&original, &relmap, &opts));
    assert_eq!(relocated["images"]["amd64"]["contentDigest"], images.amd64.as_str());
    assert_eq!(relocated["invocationImages"][0]["contentDigest"], images.multi.as_str());
}
