//! Round trips per blob and per image (issue 13), counted from `-v`'s one line per request
//! against real registries on 127.0.0.1.

mod support;

use support::fixtures::{noise, skopeo_digest};
use support::proxy::{Fault, Proxy, Rule};
use support::referrers::{digest_of, get_blob, get_manifest, push_blob, push_manifest};
use support::registry::{Mode, TestRegistry};
use support::{mapped, relocate, write_bundle};

/// `images` images in repositories `app0`…, each one shared layer (`shared` bytes), one layer
/// of its own (`own` bytes) and a config; their references.
fn images(registry: &TestRegistry, count: usize, shared: usize, own: usize) -> Vec<String> {
    let host = registry.host();
    let base = noise(1, shared);
    (0..count)
        .map(|i| {
            let repo = format!("rt/app{i}");
            let base_digest = push_blob(&host, &repo, &base);
            let layer = noise(100 + i as u64, own);
            let layer_digest = push_blob(&host, &repo, &layer);
            let config = format!(r#"{{"architecture":"amd64","os":"linux","n":{i},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#);
            let config_digest = push_blob(&host, &repo, config.as_bytes());
            let manifest = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
                "layers": [
                    {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": base_digest, "size": shared},
                    {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": own},
                ],
            });
            push_manifest(
                &host,
                &repo,
                "1",
                "application/vnd.oci.image.manifest.v1+json",
                &serde_json::to_vec(&manifest).unwrap(),
            );
            format!("{host}/{repo}:1")
        })
        .collect()
}

/// Each relocated image has its original's digest (read by skopeo on both sides).
fn assert_same_digests(relocated: &[String], target: &TestRegistry, refs: &[String], source: &TestRegistry) {
    assert_eq!(relocated.len(), refs.len());
    for (r, original) in relocated.iter().zip(refs) {
        assert_eq!(
            skopeo_digest(r, &target.skopeo_opts("src")),
            skopeo_digest(original, &source.skopeo_opts("src")),
            "{r}"
        );
    }
}

/// `-v` request lines to `host`: (method, path, status).
fn requests(stderr: &str, host: &str) -> Vec<(String, String, String)> {
    stderr
        .lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "INFO")?;
            let w = &words[at + 1..];
            (w.len() >= 4 && w[1] == host).then(|| (w[0].to_string(), w[2].to_string(), w[3].to_string()))
        })
        .collect()
}

/// A bundle of `refs` (the first as invocation image).
fn bundle_of(dir: &std::path::Path, refs: &[String]) -> std::path::PathBuf {
    let images: Vec<(String, serde_json::Value)> = refs[1..]
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("i{i}"), serde_json::json!({"image": r, "imageType": "oci"})))
        .collect();
    let images: Vec<(&str, serde_json::Value)> = images.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    write_bundle(dir, &[&refs[0]], &images)
}

/// Relocates `refs` under `prefix` with `-v`; the run and the relocated references.
fn relocate_v(refs: &[String], prefix: &str, extra: &[&str]) -> (support::Run, Vec<String>) {
    let work = tempfile::tempdir().unwrap();
    let bundle = bundle_of(work.path(), refs);
    let relmap = work.path().join("relmap.json");
    let mut args = vec!["-v", "--no-referrers"];
    args.extend_from_slice(extra);
    let run = relocate(&bundle, prefix, &relmap, &args);
    let relocated = match run.code {
        0 => {
            let map = mapped(&relmap);
            refs.iter().map(|r| map[r].as_str().unwrap().to_string()).collect()
        }
        _ => Vec::new(),
    };
    (run, relocated)
}

/// Blob requests per (method, digest) other than uploads' own session URLs.
fn blob_requests<'a>(requests: &'a [(String, String, String)], method: &str) -> Vec<&'a str> {
    requests
        .iter()
        .filter(|(m, p, _)| m == method && p.contains("/blobs/sha256:"))
        .map(|(_, p, _)| p.as_str())
        .collect()
}

#[test]
fn a_first_run_heads_each_blob_once_per_repository_then_mounts_without_asking_again() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let refs = images(&source, 3, 300_000, 5000);
    let (run, relocated) = relocate_v(&refs, &format!("{}/x", target.host()), &[]);
    run.assert_ok();
    let seen = requests(&run.stderr, &target.host());
    // 7 distinct blobs (a shared layer, 3 own layers, 3 configs) in 3 repositories: one HEAD
    // per (repository, blob), all at once; the shared layer is sent to one repository and
    // mounted into the other two, with no second HEAD there
    let heads = blob_requests(&seen, "HEAD");
    assert_eq!(heads.len(), 9, "{heads:#?}");
    let mut distinct = heads.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 9, "no (repository, blob) asked twice: {heads:#?}");
    let mounts: Vec<_> = seen
        .iter()
        .filter(|(m, p, _)| m == "POST" && p.ends_with("/blobs/uploads/"))
        .collect();
    assert_eq!(mounts.iter().filter(|(_, _, s)| s == "201").count(), 2, "{seen:#?}");
    for r in &relocated {
        assert!(r.contains(&target.host()));
    }
    assert_same_digests(&relocated, &target, &refs, &source);
}

#[test]
fn blobs_on_the_same_registry_are_mounted_without_a_head_first() {
    let registry = TestRegistry::start(Mode::Plain);
    let refs = images(&registry, 2, 300_000, 5000);
    let (run, relocated) = relocate_v(&refs, &format!("{}/copy", registry.host()), &[]);
    run.assert_ok();
    let seen = requests(&run.stderr, &registry.host());
    let heads = blob_requests(&seen, "HEAD");
    assert!(heads.is_empty(), "a mount answers for itself: {heads:#?}");
    assert!(!seen
        .iter()
        .any(|(m, p, _)| (m == "PATCH" || m == "PUT") && p.contains("/blobs/")));
    let mounted = seen
        .iter()
        .filter(|(m, p, s)| m == "POST" && p.ends_with("/blobs/uploads/") && s == "201")
        .count();
    // 2 images x (shared layer, own layer, config)
    assert_eq!(mounted, 6, "{seen:#?}");
    assert_same_digests(&relocated, &registry, &refs, &registry);
}

#[test]
fn a_small_blob_is_sent_with_the_put_that_commits_it() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    // 3 images: a shared 300 kB layer, a 2 MiB layer each (sent streamed), a config each
    let refs = images(&source, 3, 300_000, 2 * 1024 * 1024);
    let (run, relocated) = relocate_v(&refs, &format!("{}/x", target.host()), &[]);
    run.assert_ok();
    let seen = requests(&run.stderr, &target.host());
    let starts = seen
        .iter()
        .filter(|(m, p, s)| m == "POST" && p.ends_with("/blobs/uploads/") && s == "202")
        .count();
    let patches = seen.iter().filter(|(m, _, _)| m == "PATCH").count();
    let puts: Vec<_> = seen
        .iter()
        .filter(|(m, p, _)| m == "PUT" && p.contains("/blobs/uploads/"))
        .collect();
    // 7 uploads (the shared layer once, 3 big layers, 3 configs); only the big ones PATCH
    assert_eq!(starts, 7, "{seen:#?}");
    assert_eq!(patches, 3, "{seen:#?}");
    assert_eq!(puts.len(), 7, "{seen:#?}");
    assert!(puts.iter().all(|(_, _, s)| s == "201"), "{puts:#?}");
    // stored for real: every blob of every image is there, and each image reads back whole
    for (r, original) in relocated.iter().zip(&refs) {
        let repo = r.split_once('/').unwrap().1.rsplit_once(':').unwrap().0;
        let manifest = get_manifest(&target.host(), repo, "1").unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
        let mut digests = vec![manifest["config"]["digest"].as_str().unwrap().to_string()];
        digests.extend(
            manifest["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["digest"].as_str().unwrap().to_string()),
        );
        for d in digests {
            let blob = get_blob(&target.host(), repo, &d).expect("stored");
            assert_eq!(digest_of(&blob), d);
        }
        assert_eq!(
            skopeo_digest(r, &target.skopeo_opts("src")),
            skopeo_digest(original, &source.skopeo_opts("src"))
        );
    }
}

#[test]
fn the_target_is_asked_while_the_source_is_still_read() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let refs = images(&source, 2, 1000, 1000);
    // the source's first manifest answer comes a second late
    let proxy = Proxy::start(&format!("http://{}", source.host()));
    proxy.add(Rule {
        method: "GET",
        path_contains: "/manifests/".into(),
        fault: Fault::Status(503, Some(1)),
        times: 1,
    });
    let through: Vec<String> = refs
        .iter()
        .map(|r| r.replacen(&source.host(), &proxy.host(), 1))
        .collect();
    let (run, _) = relocate_v(&through, &format!("{}/x", target.host()), &[]);
    run.assert_ok();
    let lines: Vec<&str> = run.stderr.lines().collect();
    let at = |what: &dyn Fn(&str) -> bool| {
        lines
            .iter()
            .position(|l| what(l))
            .unwrap_or_else(|| panic!("{}", run.stderr))
    };
    let late_manifest = at(&|l: &str| {
        l.contains(&proxy.host()) && l.contains("/manifests/1 200") && {
            // the manifest that was answered 503 first
            let path = l.split_whitespace().find(|w| w.contains("/manifests/")).unwrap();
            lines.iter().any(|o| o.contains(path) && o.contains(" 503 "))
        }
    });
    let target_ping = at(&|l: &str| l.contains(&target.host()) && l.contains(" /v2/ 200"));
    assert!(target_ping < late_manifest, "{}", run.stderr);
    let target_heads = lines[..late_manifest]
        .iter()
        .filter(|l| l.contains(&target.host()) && l.contains("HEAD") && l.contains("/manifests/1 404"))
        .count();
    assert_eq!(
        target_heads, 2,
        "both images asked for at the target first: {}",
        run.stderr
    );
}

#[test]
fn one_token_serves_many_repositories() {
    let source = TestRegistry::start(Mode::Token);
    let target = TestRegistry::start(Mode::Token);
    let cfg = support::docker_config_for(&[source.host(), target.host()]);
    // the fixtures are pushed around the token server, straight into the storage
    let plain = TestRegistry::start(Mode::Plain);
    let refs = images(&plain, 4, 300_000, 5000);
    for r in &refs {
        let to = r.replacen(&plain.host(), &source.host(), 1);
        support::fixtures::skopeo_copy(
            &format!("docker://{r}"),
            &format!("docker://{to}"),
            &[
                "--src-tls-verify=false".into(),
                "--dest-tls-verify=false".into(),
                format!(
                    "--dest-creds={}:{}",
                    support::registry::USER,
                    support::registry::PASSWORD
                ),
            ],
        );
    }
    let refs: Vec<String> = refs
        .iter()
        .map(|r| r.replacen(&plain.host(), &source.host(), 1))
        .collect();
    source.token.as_ref().unwrap().requests.lock().unwrap().clear();
    let work = tempfile::tempdir().unwrap();
    let bundle = bundle_of(work.path(), &refs);
    let relmap = work.path().join("relmap.json");
    let prefix = format!("{}/x", target.host());
    let run = support::run_with(
        &[
            bundle.to_str().unwrap(),
            "-p",
            &prefix,
            "-m",
            relmap.to_str().unwrap(),
            "--no-referrers",
        ],
        cfg.path(),
        &[],
    );
    run.assert_ok();
    let to_target = target.token.as_ref().unwrap().requests();
    let to_source = source.token.as_ref().unwrap().requests();
    eprintln!("token requests: target {}, source {}", to_target.len(), to_source.len());
    // before tokens were shared: 11 requests at the target and 4 at the source (one per
    // repository and scope set)
    assert!(to_target.len() <= 3, "{to_target:#?}");
    assert!(to_source.len() <= 2, "{to_source:#?}");
    assert!(to_target.iter().chain(&to_source).all(|r| r.granted));
    assert!(to_target.iter().any(|r| r.scopes.len() >= 4), "{to_target:#?}");
    let map = mapped(&relmap);
    for original in &refs {
        let relocated = map[original].as_str().unwrap();
        assert_eq!(
            skopeo_digest(relocated, &target.skopeo_opts("src")),
            skopeo_digest(original, &source.skopeo_opts("src"))
        );
    }
}

#[test]
fn a_token_service_that_refuses_several_scopes_gets_one_repository_at_a_time() {
    let registry = TestRegistry::start(Mode::Token);
    let cfg = support::docker_config_for(&[registry.host()]);
    let plain = TestRegistry::start(Mode::Plain);
    let refs = images(&plain, 3, 300_000, 5000);
    let work = tempfile::tempdir().unwrap();
    let bundle = bundle_of(work.path(), &refs);
    let relmap = work.path().join("relmap.json");
    let token = registry.token.as_ref().unwrap();
    // a mount's token carries two repositories: that much is allowed
    token.max_scopes.store(2, std::sync::atomic::Ordering::Relaxed);
    let prefix = format!("{}/x", registry.host());
    let run = support::run_with(
        &[
            bundle.to_str().unwrap(),
            "-p",
            &prefix,
            "-m",
            relmap.to_str().unwrap(),
            "--no-referrers",
        ],
        cfg.path(),
        &[],
    );
    run.assert_ok();
    let requests = token.requests();
    assert!(
        requests.iter().any(|r| !r.granted && r.scopes.len() > 2),
        "{requests:#?}"
    );
    assert!(
        requests.iter().filter(|r| !r.granted).count() <= 1,
        "refused once, then asked alone: {requests:#?}"
    );
    let map = mapped(&relmap);
    for original in &refs {
        assert_eq!(
            skopeo_digest(map[original].as_str().unwrap(), &registry.skopeo_opts("src")),
            skopeo_digest(original, &plain.skopeo_opts("src"))
        );
    }
}

/// For each `-vv` request line to `host`: (method, path, protocol of the answer).
fn protocols(stderr: &str, host: &str) -> Vec<(String, String, String)> {
    let lines: Vec<&str> = stderr.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let words: Vec<&str> = l.split_whitespace().collect();
        let Some(at) = words.iter().position(|w| *w == "DEBUG") else {
            continue;
        };
        let w = &words[at + 1..];
        if w.len() < 4 || w[1] != host {
            continue;
        }
        let version = lines[i + 1..]
            .iter()
            .take_while(|n| n.starts_with("  "))
            .find_map(|n| n.trim().strip_prefix("< HTTP/"))
            .unwrap_or("?");
        out.push((w[0].to_string(), w[2].to_string(), version.to_string()));
    }
    out
}

#[test]
fn metadata_goes_over_http2_where_tls_offers_it_and_blob_bytes_over_http1() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Tls);
    let refs = images(&source, 2, 2 * 1024 * 1024, 5000);
    let ca = target.ca_path();
    let (run, relocated) = relocate_v(
        &refs,
        &format!("{}/x", target.host()),
        &["-vv", "--ca-cert-path", ca.to_str().unwrap()],
    );
    run.assert_ok();
    let seen = protocols(&run.stderr, &target.host());
    let version = |method: &str, part: &str| -> Vec<&str> {
        seen.iter()
            .filter(|(m, p, _)| m == method && p.contains(part))
            .map(|(_, _, v)| v.as_str())
            .collect()
    };
    let manifests = version("PUT", "/manifests/");
    assert!(
        !manifests.is_empty() && manifests.iter().all(|v| *v == "2.0"),
        "{seen:#?}"
    );
    let heads = version("HEAD", "/blobs/");
    assert!(!heads.is_empty() && heads.iter().all(|v| *v == "2.0"), "{seen:#?}");
    // the shared 2 MiB layer is streamed on a connection of its own
    let patches = version("PATCH", "/blobs/uploads/");
    assert!(!patches.is_empty() && patches.iter().all(|v| *v == "1.1"), "{seen:#?}");
    // plain HTTP stays HTTP/1.1 (after the TLS attempt that found none)
    let plain: Vec<_> = protocols(&run.stderr, &source.host())
        .into_iter()
        .filter(|(_, _, v)| v != "?")
        .collect();
    assert!(
        !plain.is_empty() && plain.iter().all(|(_, _, v)| v == "1.1"),
        "{plain:#?}"
    );
    assert_same_digests(&relocated, &target, &refs, &source);
}

#[test]
fn a_small_blob_sent_whole_is_given_the_time_a_slow_link_needs() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    // a 900 kB layer goes whole with the PUT that commits it: 3 s at 300 kB/s
    let refs = images(&source, 1, 900_000, 5000);
    let front = Proxy::start(&format!("http://{}", target.host()));
    front.add(Rule::always("PUT", "/blobs/uploads/", Fault::Throttle(300_000)));
    let (run, relocated) = relocate_v(&refs, &format!("{}/x", front.host()), &["--timeout", "1"]);
    run.assert_ok();
    assert_eq!(
        skopeo_digest(
            &relocated[0].replace(&front.host(), &target.host()),
            &target.skopeo_opts("src")
        ),
        skopeo_digest(&refs[0], &source.skopeo_opts("src"))
    );
}
