//! `export`: thin bundles pulled from real registries into thick bundles, read back by our own
//! relocation and by skopeo.

mod support;

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use support::fixtures::{skopeo_copy, skopeo_digest};
use support::proxy::{Fault, Proxy, Rule};
use support::registry::{Mode, TestRegistry};
use support::{mapped, populate, relocate, run_with, write_bundle, Run};

const KIB: usize = 1024;

fn export(bundle: &Path, out: &Path, extra: &[&str]) -> Run {
    let config = tempfile::tempdir().unwrap();
    let mut args = vec!["export", bundle.to_str().unwrap(), "-o", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    run_with(&args, config.path(), &[])
}

/// The archive's entries in order: (name, content) for files, directories left out.
fn entries(tgz: &Path) -> Vec<(String, Vec<u8>)> {
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(tgz).unwrap());
    let mut archive = tar::Archive::new(gz);
    let mut out = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        if e.header().entry_type().is_dir() {
            continue;
        }
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push((name, data));
    }
    out
}

/// Nothing but the files the test put in `dir` (no output, no temporary file).
fn assert_only(dir: &Path, expected: &[&str]) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, expected, "files left in {}", dir.display());
}

#[test]
fn a_round_trip_through_an_export_relocates_exactly_as_the_thin_bundle() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 256 * KIB);
    let tagless = format!("{}/team/tagless", source.host());
    skopeo_copy(
        &format!("docker://{}", images.oci_plain.0),
        &format!("docker://{tagless}:latest"),
        &[source.skopeo_opts("src"), source.skopeo_opts("dest")].concat(),
    );
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(
        work.path(),
        &[&images.multi.0],
        &[
            (
                "list",
                serde_json::json!({"image": images.docker_list.0, "contentDigest": images.docker_list.1}),
            ),
            ("docker", serde_json::json!({"image": images.docker.0})),
            ("plain", serde_json::json!({"image": images.oci_plain.0})),
            ("tagless", serde_json::json!({"image": tagless})),
        ],
    );
    let bundle_bytes = std::fs::read(&bundle).unwrap();
    let out = work.path().join("bundle.tgz");
    let run = export(&bundle, &out, &[]);
    run.assert_ok();
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);

    // metadata first: bundle.json, oci-layout, index.json, then every manifest and config,
    // then the layers; each blob once
    let entries = entries(&out);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names[..3],
        [
            "bundle.json",
            "artifacts/layout/oci-layout",
            "artifacts/layout/index.json"
        ]
    );
    assert_eq!(entries[0].1, bundle_bytes, "bundle.json byte-identical");
    let mut seen = std::collections::HashSet::new();
    let mut layers_started = false;
    for (name, data) in &entries[3..] {
        assert!(seen.insert(name.clone()), "{name} twice");
        let hex = name.strip_prefix("artifacts/layout/blobs/sha256/").unwrap();
        assert_eq!(
            support::fixtures::sha256_hex(data),
            hex,
            "{name} holds its digest's bytes"
        );
        let metadata = data.first() == Some(&b'{');
        assert!(!(metadata && layers_started), "{name}: metadata after a layer");
        layers_started |= !metadata;
    }
    assert!(layers_started);
    let index: serde_json::Value = serde_json::from_slice(&entries[2].1).unwrap();
    let mut names: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap())
        .collect();
    names.sort();
    let mut expected = [
        images.multi.0.as_str(),
        &images.docker_list.0,
        &images.docker.0,
        &images.oci_plain.0,
        &tagless,
    ];
    expected.sort();
    assert_eq!(
        names, expected,
        "full references, a tagless one without a tag, as duffle writes"
    );

    // the thin bundle relocated, then the export relocated with the source gone
    let prefix = format!("{}/air", target.host());
    let thin_map = work.path().join("thin.json");
    relocate(&bundle, &prefix, &thin_map, &[]).assert_ok();
    drop(source);
    let thick_map = work.path().join("thick.json");
    let relocated_bundle = work.path().join("relocated-bundle.json");
    let thick = relocate(
        &out,
        &prefix,
        &thick_map,
        &["--output-bundle", relocated_bundle.to_str().unwrap()],
    );
    thick.assert_ok();
    // the bundle to install from inside the air gap names the relocated images
    let relocated: serde_json::Value = serde_json::from_slice(&std::fs::read(&relocated_bundle).unwrap()).unwrap();
    let thick_mapping = mapped(&thick_map);
    assert_eq!(
        relocated["invocationImages"][0]["image"],
        thick_mapping[images.multi.0.as_str()]
    );
    assert_eq!(
        relocated["invocationImages"][0]["contentDigest"].as_str(),
        Some(images.multi.1.as_str())
    );
    assert_eq!(relocated["images"]["tagless"]["image"], thick_mapping[tagless.as_str()]);
    assert_eq!(
        std::fs::read(&thick_map).unwrap(),
        std::fs::read(&thin_map).unwrap(),
        "the same relocation mapping, byte for byte"
    );
    let opts = target.skopeo_opts("src");
    for (image, digest) in [&images.multi, &images.docker_list, &images.docker, &images.oci_plain] {
        assert_eq!(
            &skopeo_digest(mapped(&thick_map)[image].as_str().unwrap(), &opts),
            digest
        );
    }

    // into an empty registry, the archive is read once: layers stream as the first pass
    // reaches them
    let fresh = TestRegistry::start(Mode::Plain);
    let once = relocate(
        &out,
        &format!("{}/once", fresh.host()),
        &work.path().join("once.json"),
        &["-v"],
    );
    once.assert_ok();
    assert!(
        once.stderr.contains("(pass 1: the rest of the first pass") && !once.stderr.contains("(pass 2"),
        "{}",
        once.stderr
    );

    // the layout, unpacked, is an OCI layout skopeo reads
    let unpacked = work.path().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    support::fixtures::run(
        std::process::Command::new("tar")
            .arg("-C")
            .arg(&unpacked)
            .arg("-xzf")
            .arg(&out),
    );
    let layout = unpacked.join("artifacts/layout");
    let raw = support::fixtures::run(std::process::Command::new("skopeo").args([
        "inspect",
        "--raw",
        &format!("oci:{}:{}", layout.display(), images.oci_plain.0),
    ]))
    .stdout;
    assert_eq!(
        format!("sha256:{}", support::fixtures::sha256_hex(&raw)),
        images.oci_plain.1
    );
    // and umoci, by the same full reference
    support::fixtures::run(std::process::Command::new("umoci").args([
        "stat",
        "--image",
        &format!("{}:{}", layout.display(), images.oci_plain.0),
    ]));
}

#[test]
fn nothing_is_written_when_a_pin_does_not_match_or_the_source_is_gone() {
    let source = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 64 * KIB);
    let work = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("out.tgz");
    let (bundle, wrong) = support::bundle_with_wrong_pin(work.path(), &images);
    let run = export(&bundle, &out, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&wrong) && run.stderr.contains(&images.docker.0),
        "{}",
        run.stderr
    );
    assert_only(out_dir.path(), &[]);

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let bundle = write_bundle(work.path(), &[&format!("127.0.0.1:{port}/gone/app:1")], &[]);
    let started = Instant::now();
    let run = export(&bundle, &out, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    assert_only(out_dir.path(), &[]);
}

#[test]
fn a_blob_that_does_not_match_its_digest_or_an_interrupt_leaves_nothing() {
    let source = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 2048 * KIB);
    let work = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("out.tgz");

    let proxy = Proxy::start(&format!("http://{}", source.host()));
    proxy.add(Rule::always("GET", &images.base_layer, Fault::Corrupt));
    let through = |r: &str| r.replacen(&source.host(), &proxy.host(), 1);
    let bundle = write_bundle(work.path(), &[&through(&images.multi.0)], &[]);
    let run = export(&bundle, &out, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains(&images.base_layer), "{}", run.stderr);
    assert_only(out_dir.path(), &[]);

    let stalled = Proxy::start(&format!("http://{}", source.host()));
    stalled.add(Rule::always("GET", &images.base_layer, Fault::Stall));
    let through = |r: &str| r.replacen(&source.host(), &stalled.host(), 1);
    let bundle = write_bundle(work.path(), &[&through(&images.multi.0)], &[]);
    let config = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(support::bin())
        .args(["export", bundle.to_str().unwrap(), "-o", out.to_str().unwrap()])
        .env("DOCKER_CONFIG", config.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // wait until the archive is being written and the layer stalls, then interrupt
    let deadline = Instant::now() + Duration::from_secs(20);
    while stalled.count("GET", &images.base_layer) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        std::fs::read_dir(out_dir.path()).unwrap().count(),
        1,
        "a temporary file"
    );
    let sent = Instant::now();
    support::fixtures::run(std::process::Command::new("kill").args(["-INT", &child.id().to_string()]));
    let status = child.wait().unwrap();
    assert!(sent.elapsed() < Duration::from_secs(3), "{:?}", sent.elapsed());
    assert_eq!(status.code(), Some(130));
    assert_only(out_dir.path(), &[]);
}

#[test]
fn an_existing_output_is_replaced_only_with_force_and_a_thick_bundle_is_refused() {
    let source = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 64 * KIB);
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(work.path(), &[&images.oci_plain.0], &[]);
    let out = work.path().join("out.tar.gz");
    std::fs::write(&out, b"precious").unwrap();
    let run = export(&bundle, &out, &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--force"), "{}", run.stderr);
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");

    let run = export(&bundle, &out, &["--force"]);
    run.assert_ok();
    assert!(
        run.stderr
            .contains("warning: duffle reads a thick bundle only from a file whose name ends in .tgz"),
        "{}",
        run.stderr
    );
    assert_ne!(std::fs::read(&out).unwrap(), b"precious");

    let again = export(&out, &work.path().join("x.tgz"), &[]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(again.stderr.contains("thick bundle already"), "{}", again.stderr);
}

/// `tgz` rewritten without the entry whose name ends in `drop` (order kept), with `append`
/// (name, content) added at the end.
fn rewritten(tgz: &Path, drop: &str, append: Option<(&str, &[u8])>, out: &Path) {
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(tgz).unwrap());
    let mut archive = tar::Archive::new(gz);
    let writer = flate2::write::GzEncoder::new(std::fs::File::create(out).unwrap(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(writer);
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        if name.ends_with(drop) {
            continue;
        }
        let mut header = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        builder.append_data(&mut header, &name, &data[..]).unwrap();
    }
    if let Some((name, data)) = append {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, name, data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap();
}

#[test]
fn a_layer_missing_from_a_metadata_first_archive_fails_before_any_manifest_is_pushed() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 128 * KIB);
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(work.path(), &[&images.multi.0], &[]);
    let out = work.path().join("bundle.tgz");
    export(&bundle, &out, &[]).assert_ok();
    let hex = images.base_layer.strip_prefix("sha256:").unwrap();
    let broken = work.path().join("broken.tgz");
    rewritten(&out, hex, None, &broken);

    let prefix = format!("{}/broken", target.host());
    let config = tempfile::tempdir().unwrap();
    let dry = run_with(
        &[broken.to_str().unwrap(), "-p", &prefix, "--dry-run"],
        config.path(),
        &[],
    );
    assert_eq!(dry.code, 2, "a dry run lists every entry: {}", dry.stderr);
    assert!(dry.stderr.contains(&images.base_layer), "{}", dry.stderr);

    let relmap = work.path().join("relmap.json");
    let run = relocate(&broken, &prefix, &relmap, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains(&images.base_layer), "{}", run.stderr);
    assert!(!relmap.exists());
    let relocated = mapped_reference(&bundle, &prefix);
    let inspect = std::process::Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{relocated}"),
        ])
        .output()
        .unwrap();
    assert!(!inspect.status.success(), "no manifest pushed under {relocated}");
}

/// Where the bundle's only image goes under `prefix` (from a dry run).
fn mapped_reference(bundle: &Path, prefix: &str) -> String {
    let config = tempfile::tempdir().unwrap();
    let dry = run_with(
        &[bundle.to_str().unwrap(), "-p", prefix, "--dry-run"],
        config.path(),
        &[],
    );
    dry.assert_ok();
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&dry.stdout).unwrap();
    map.values().next().unwrap().as_str().unwrap().to_string()
}

#[test]
fn metadata_after_the_first_layer_of_an_archive_read_once_fails_the_run() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 64 * KIB);
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(work.path(), &[&images.oci_plain.0], &[]);
    let out = work.path().join("bundle.tgz");
    export(&bundle, &out, &[]).assert_ok();
    // a whole pass would read this Porter mapping; the one pass must not silently miss it
    let late = work.path().join("late.tgz");
    rewritten(
        &out,
        "no-such-entry",
        Some(("relocation-mapping.json", br#"{"a":"b"}"#)),
        &late,
    );
    let relmap = work.path().join("relmap.json");
    let run = relocate(&late, &format!("{}/late", target.host()), &relmap, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("relocation-mapping.json comes after the first layer"),
        "{}",
        run.stderr
    );
    assert!(!relmap.exists());
}

#[test]
fn a_connection_broken_mid_layer_is_resumed_from_where_it_broke() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 2048 * KIB);
    let proxy = Proxy::start(&format!("http://{}", source.host()));
    proxy.add(Rule {
        method: "GET",
        path_contains: images.base_layer.clone(),
        fault: Fault::DropAfter(1200 * KIB),
        times: 1,
    });
    let work = tempfile::tempdir().unwrap();
    let through = images.oci_plain.0.replacen(&source.host(), &proxy.host(), 1);
    let bundle = write_bundle(work.path(), &[&through], &[]);
    let out = work.path().join("out.tgz");
    let run = export(&bundle, &out, &["-v"]);
    run.assert_ok();
    // the first answer broke off; the second asked for the rest only
    let gets: Vec<_> = proxy
        .log()
        .into_iter()
        .filter(|l| l.method == "GET" && l.path.contains(&images.base_layer))
        .collect();
    assert_eq!(gets.len(), 2, "{}", run.stderr);
    assert_eq!(gets[0].range, None);
    let from: u64 = gets[1]
        .range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a ranged request: {:?}", gets[1].range));
    assert!(from > 0 && from <= 1200 * KIB as u64, "{from}");
    let layer = format!(
        "artifacts/layout/blobs/sha256/{}",
        images.base_layer.trim_start_matches("sha256:")
    );
    let (_, bytes) = entries(&out).into_iter().find(|(n, _)| *n == layer).unwrap();
    assert_eq!(
        format!("sha256:{}", support::fixtures::sha256_hex(&bytes)),
        images.base_layer
    );
    let relmap = work.path().join("relmap.json");
    relocate(&out, &format!("{}/x", target.host()), &relmap, &[]).assert_ok();
}

#[test]
fn a_server_that_ignores_range_sends_the_whole_blob_again_and_the_start_is_skipped() {
    let source = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 2048 * KIB);
    let proxy = Proxy::start(&format!("http://{}", source.host()));
    proxy.add(Rule {
        method: "GET",
        path_contains: images.base_layer.clone(),
        fault: Fault::DropAfter(1200 * KIB),
        times: 1,
    });
    proxy.add(Rule::always(
        "GET",
        &images.base_layer,
        Fault::StripRequestHeader("range"),
    ));
    let work = tempfile::tempdir().unwrap();
    let through = images.oci_plain.0.replacen(&source.host(), &proxy.host(), 1);
    let bundle = write_bundle(work.path(), &[&through], &[]);
    let out = work.path().join("out.tgz");
    export(&bundle, &out, &[]).assert_ok();
    assert_eq!(proxy.count("GET", &images.base_layer), 2);
    let layer = format!(
        "artifacts/layout/blobs/sha256/{}",
        images.base_layer.trim_start_matches("sha256:")
    );
    let (_, bytes) = entries(&out).into_iter().find(|(n, _)| *n == layer).unwrap();
    assert_eq!(
        format!("sha256:{}", support::fixtures::sha256_hex(&bytes)),
        images.base_layer
    );
}

#[test]
fn a_referrer_after_the_first_layer_of_an_archive_read_once_is_never_silently_left_behind() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 64 * KIB);
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(work.path(), &[&images.oci_plain.0], &[]);
    let out = work.path().join("bundle.tgz");
    export(&bundle, &out, &[]).assert_ok();
    let prefix = format!("{}/late", target.host());
    let relmap = work.path().join("relmap.json");
    // every blob is in the target already: the one pass has no layer to read for the copy
    relocate(&out, &prefix, &relmap, &[]).assert_ok();
    let (digest, size) = (&images.oci_plain.1, 0);
    let referrer = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/spdx+json","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}},"layers":[],"subject":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{digest}","size":{size}}}}}"#
    );
    let name = format!(
        "artifacts/layout/blobs/sha256/{}",
        support::fixtures::sha256_hex(referrer.as_bytes())
    );
    let late = work.path().join("late.tgz");
    rewritten(&out, "no-such-entry", Some((&name, referrer.as_bytes())), &late);
    let again = work.path().join("again.json");
    let run = relocate(&late, &prefix, &again, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("comes after the first layer"), "{}", run.stderr);
    assert!(!again.exists());
}
