//! Thick bundles relocated from the archive alone into a real registry, checked with skopeo.

mod support;

use std::net::TcpListener;
use std::path::Path;

use support::fixtures::skopeo_digest;
use support::proxy::{Fault, Proxy, Rule};
use support::registry::{Mode, TestRegistry};
use support::thick::{containerd_index, renamed_index, Pack};
use support::{build_layout, bundle_json, mapped, relocate, repository_of, run_with, Run};

const KIB: usize = 1024;
const HELLO: &str = "sha256:f54a58bc1aac5ea1a25d796ae155dc228b3f0e11d046ae276b39c4bf2f13d8c4";

/// Runs cnab-relocate where any host but 127.0.0.1 would be reached through `trap` (a
/// listener that must see no connection), with an empty TMPDIR that must stay empty.
fn relocate_offline(bundle: &Path, prefix: &str, relmap: &Path, extra: &[&str]) -> (Run, usize) {
    let trap = TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let proxy = format!("http://{}", trap.local_addr().unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let mut args = vec![bundle.to_str().unwrap(), "-p", prefix, "-m", relmap.to_str().unwrap()];
    args.extend_from_slice(extra);
    let run = run_with(
        &args,
        cfg.path(),
        &[
            ("HTTPS_PROXY", &proxy),
            ("HTTP_PROXY", &proxy),
            ("https_proxy", &proxy),
            ("http_proxy", &proxy),
            ("NO_PROXY", "127.0.0.1"),
            ("no_proxy", "127.0.0.1"),
            ("TMPDIR", tmp.path().to_str().unwrap()),
        ],
    );
    let contacted = std::iter::from_fn(|| trap.accept().ok()).count();
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "nothing extracted to TMPDIR"
    );
    (run, contacted)
}

#[test]
fn the_conformance_thick_bundle_keeps_its_digest_and_never_contacts_docker_io() {
    let target = TestRegistry::start(Mode::Plain);
    let work = tempfile::tempdir().unwrap();
    let bundle = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/conformance/thick-hello-world.tgz");
    let before = std::fs::read(&bundle).unwrap();
    let relmap = work.path().join("relmap.json");
    let prefix = format!("{}/griphook", target.host());
    let (run, contacted) = relocate_offline(&bundle, &prefix, &relmap, &["--json"]);
    run.assert_ok();
    assert_eq!(contacted, 0, "no host but the target was contacted");
    let map = mapped(&relmap);
    assert_eq!(map.len(), 2);
    for relocated in map.values() {
        assert_eq!(
            skopeo_digest(relocated.as_str().unwrap(), &target.skopeo_opts("src")),
            HELLO
        );
    }
    assert_eq!(std::fs::read(&bundle).unwrap(), before, "the bundle is untouched");

    let (again, _) = relocate_offline(&bundle, &prefix, &relmap, &["--json", "-v"]);
    again.assert_ok();
    assert_eq!(again.count_events("image_already_present"), 2);
    assert_eq!(again.count_events("blob_started"), 0);
    assert!(
        !again.stderr.contains("reading"),
        "the archive's blobs are not read again: {}",
        again.stderr
    );
}

#[test]
fn layouts_as_the_producers_in_the_wild_write_them() {
    let target = TestRegistry::start(Mode::Plain);
    let images = build_layout(256 * KIB);
    let layout = &images.layout.path;
    // bundle images: pinned by digest, by contentDigest, and by tag (annotation)
    let bundle = bundle_json(
        serde_json::json!({"image": format!("example.com/app/multi@{}", images.multi)}),
        &[
            (
                "amd64",
                serde_json::json!({"image": "example.com/app/amd64:1.0", "contentDigest": images.amd64}),
            ),
            ("arm64", serde_json::json!({"image": "example.com/app/arm64:1.0"})),
            (
                "dlist",
                serde_json::json!({"image": "example.com/app/dlist:2", "imageType": "docker"}),
            ),
        ],
    );
    let full_name = |tag: &str| match tag {
        "arm64" => Some("example.com/app/arm64:1.0".to_string()),
        "dlist" => Some("example.com/app/dlist:2".to_string()),
        "multi" => Some(format!("example.com/app/multi@{}", images.multi)),
        _ => None,
    };
    let duffle_index = renamed_index(layout, full_name);
    let bare_index = renamed_index(layout, |tag| match tag {
        "arm64" => Some("1.0".into()),
        "dlist" => Some("2".into()),
        _ => None,
    });
    let porter_index = renamed_index(layout, |tag| match tag {
        "arm64" => Some("registry.published.example/org/arm64:1.0".into()),
        "dlist" => Some("registry.published.example/org/dlist:2".into()),
        _ => None,
    });
    let porter_mapping = serde_json::to_vec(&serde_json::json!({
        "example.com/app/arm64:1.0": "registry.published.example/org/arm64:1.0",
        "example.com/app/dlist:2": "registry.published.example/org/dlist:2",
    }))
    .unwrap();

    // containerd: the tag "1.0" also names another image, so only the full name finds arm64
    let containerd = containerd_index(
        layout,
        |tag| match tag {
            "amd64" => Some("example.com/app/amd64:1.0".into()),
            "arm64" => Some("example.com/app/arm64:1.0".into()),
            "dlist" => Some("example.com/app/dlist:2".into()),
            "multi" => Some("example.com/app/multi:latest".into()),
            _ => None,
        },
        &[("example.com/other/arm64:1.0", &images.amd64)],
    );

    let mut variants: Vec<(&str, Pack)> = Vec::new();
    let mut duffle = Pack::new(layout, bundle.clone());
    duffle.index_json = Some(duffle_index.clone());
    variants.push(("duffle-export", duffle));
    let mut by_hand = Pack::new(layout, bundle.clone());
    by_hand.blobs_first = true;
    by_hand.index_json = Some(duffle_index.clone());
    variants.push(("tar-by-hand-blobs-first", by_hand));
    let mut bare = Pack::new(layout, bundle.clone());
    bare.prefix = "";
    bare.directories = false;
    bare.index_json = Some(bare_index);
    variants.push(("root-no-dot-bare-tags", bare));
    let mut topdir = Pack::new(layout, bundle.clone());
    topdir.prefix = "thick-1.0/";
    topdir.index_json = Some(duffle_index);
    variants.push(("single-top-directory", topdir));
    let mut porter = Pack::new(layout, bundle.clone());
    porter.index_json = Some(porter_index);
    porter.extra.push(("relocation-mapping.json".into(), porter_mapping));
    porter.blobs_first = true;
    variants.push(("porter-archive", porter));
    let mut ctr = Pack::new(layout, bundle.clone());
    ctr.index_json = Some(containerd);
    ctr.directories = false;
    variants.push(("ctr-image-export", ctr));

    let work = tempfile::tempdir().unwrap();
    for (name, pack) in variants {
        let tgz = work.path().join(format!("{name}.tgz"));
        std::fs::write(&tgz, pack.tgz()).unwrap();
        let relmap = work.path().join(format!("{name}.json"));
        let prefix = format!("{}/{name}", target.host());
        let (run, contacted) = relocate_offline(&tgz, &prefix, &relmap, &["--json"]);
        run.assert_ok();
        assert_eq!(contacted, 0, "{name}");
        let map = mapped(&relmap);
        let opts = target.skopeo_opts("src");
        for (image, digest) in [
            (format!("example.com/app/multi@{}", images.multi), &images.multi),
            ("example.com/app/amd64:1.0".to_string(), &images.amd64),
            ("example.com/app/arm64:1.0".to_string(), &images.arm64),
            ("example.com/app/dlist:2".to_string(), &images.dlist),
        ] {
            let relocated = map[&image].as_str().unwrap();
            assert_eq!(&skopeo_digest(relocated, &opts), digest, "{name}: {image}");
        }
        // indexes and Docker lists are copied whole: every child is there by digest
        let repo = |image: &str| repository_of(map[image].as_str().unwrap()).to_string();
        for child in [&images.amd64, &images.arm64] {
            let r = repo(&format!("example.com/app/multi@{}", images.multi));
            assert_eq!(&skopeo_digest(&format!("{r}@{child}"), &opts), child, "{name}");
        }
        for child in &images.dlist_children {
            let r = repo("example.com/app/dlist:2");
            assert_eq!(&skopeo_digest(&format!("{r}@{child}"), &opts), child, "{name}");
        }
        // the shared base layer was read and sent once, then mounted
        let outcomes = run.blob_outcomes(&images.base_layer);
        assert_eq!(
            outcomes.iter().filter(|o| *o == "uploaded").count(),
            1,
            "{name}: {outcomes:?}"
        );
    }

    // and a tarball made with tar(1) from an unpacked bundle
    let unpacked = work.path().join("unpacked");
    std::fs::create_dir_all(unpacked.join("artifacts")).unwrap();
    std::fs::write(unpacked.join("bundle.json"), &bundle).unwrap();
    support::fixtures::run(
        std::process::Command::new("cp")
            .arg("-r")
            .arg(layout)
            .arg(unpacked.join("artifacts/layout")),
    );
    std::fs::write(
        unpacked.join("artifacts/layout/index.json"),
        renamed_index(layout, full_name),
    )
    .unwrap();
    let tgz = work.path().join("tar.tgz");
    support::fixtures::run(
        std::process::Command::new("tar")
            .arg("-C")
            .arg(&unpacked)
            .arg("-czf")
            .arg(&tgz)
            .arg("."),
    );
    let relmap = work.path().join("tar.json");
    let (run, _) = relocate_offline(&tgz, &format!("{}/by-tar", target.host()), &relmap, &[]);
    run.assert_ok();
    let relocated = mapped(&relmap)["example.com/app/dlist:2"].as_str().unwrap().to_string();
    assert_eq!(skopeo_digest(&relocated, &target.skopeo_opts("src")), images.dlist);
}

#[test]
fn an_image_missing_from_the_archive_fails_before_anything_is_pushed() {
    let target = TestRegistry::start(Mode::Plain);
    let images = build_layout(64 * KIB);
    let bundle = bundle_json(
        serde_json::json!({"image": "example.com/app/amd64:1.0", "contentDigest": images.amd64}),
        &[
            ("gone", serde_json::json!({"image": "example.com/app/gone:3"})),
            ("lost", serde_json::json!({"image": "example.com/app/lost:4"})),
        ],
    );
    let work = tempfile::tempdir().unwrap();
    let tgz = work.path().join("b.tgz");
    std::fs::write(&tgz, Pack::new(&images.layout.path, bundle).tgz()).unwrap();
    let relmap = work.path().join("relmap.json");
    for extra in [&["--dry-run"][..], &[][..]] {
        let (run, _) = relocate_offline(&tgz, &format!("{}/x", target.host()), &relmap, extra);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(
            run.stderr.contains("example.com/app/gone:3")
                && run.stderr.contains("io.containerd.image.name = example.com/app/gone:3"),
            "names the image and what was searched: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("example.com/app/lost:4"),
            "names both: {}",
            run.stderr
        );
        assert!(!relmap.exists());
    }
    assert!(target.catalog().is_empty(), "nothing pushed");

    // a pinned digest the archive does not hold under that name is refused the same way
    let wrong = format!("sha256:{}", "cd".repeat(32));
    let bundle = bundle_json(
        serde_json::json!({"image": "example.com/app/amd64:1.0", "contentDigest": wrong}),
        &[],
    );
    std::fs::write(&tgz, Pack::new(&images.layout.path, bundle).tgz()).unwrap();
    let (run, _) = relocate_offline(&tgz, &format!("{}/x", target.host()), &relmap, &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains(&format!("digest {wrong}")), "{}", run.stderr);
    assert!(target.catalog().is_empty());
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_not_committed_and_its_image_not_tagged() {
    let target = TestRegistry::start(Mode::Plain);
    let images = build_layout(128 * KIB);
    let unique_arm64 = images.layout.manifest("arm64")["layers"][1]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let original = images.layout.blob(&unique_arm64);
    let mut damaged = original.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 0x55;
    let bundle = bundle_json(
        serde_json::json!({"image": "example.com/app/amd64:1.0", "contentDigest": images.amd64}),
        &[(
            "arm",
            serde_json::json!({"image": "example.com/app/arm64:1.0", "contentDigest": images.arm64}),
        )],
    );
    let work = tempfile::tempdir().unwrap();
    let tgz = work.path().join("b.tgz");
    let mut pack = Pack::new(&images.layout.path, bundle.clone());
    pack.replace_blob = Some((unique_arm64.clone(), damaged));
    std::fs::write(&tgz, pack.tgz()).unwrap();
    let relmap = work.path().join("relmap.json");
    let prefix = format!("{}/x", target.host());
    let (run, _) = relocate_offline(&tgz, &prefix, &relmap, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains(&unique_arm64), "names the blob: {}", run.stderr);
    assert!(
        run.stderr.contains("example.com/app/arm64:1.0"),
        "names the image: {}",
        run.stderr
    );
    assert!(run.stderr.contains("not committed"), "{}", run.stderr);
    assert!(!relmap.exists());
    let map = support::run_with(
        &["map", "-p", &prefix, "example.com/app/arm64:1.0"],
        tempfile::tempdir().unwrap().path(),
        &[],
    );
    let arm_target = map.stdout.trim().to_string();
    let inspect = std::process::Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{arm_target}"))
        .output()
        .unwrap();
    assert!(!inspect.status.success(), "the damaged image was not tagged");

    // a blob whose size differs from its descriptor is caught before anything is pushed
    let other = TestRegistry::start(Mode::Plain);
    let mut pack = Pack::new(&images.layout.path, bundle);
    pack.replace_blob = Some((unique_arm64.clone(), original[..original.len() - 1].to_vec()));
    std::fs::write(&tgz, pack.tgz()).unwrap();
    let (run, _) = relocate_offline(&tgz, &format!("{}/x", other.host()), &relmap, &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(&unique_arm64) && run.stderr.contains("example.com/app/arm64:1.0"),
        "{}",
        run.stderr
    );
    assert!(other.catalog().is_empty());
}

#[test]
fn blobs_already_in_the_target_are_not_sent_again() {
    let target = TestRegistry::start(Mode::Plain);
    let images = build_layout(512 * KIB);
    let work = tempfile::tempdir().unwrap();
    let prefix = format!("{}/x", target.host());
    let amd = serde_json::json!({"image": "example.com/app/amd64:1.0", "contentDigest": images.amd64});
    let first = work.path().join("first.tgz");
    std::fs::write(
        &first,
        Pack::new(&images.layout.path, bundle_json(amd.clone(), &[])).tgz(),
    )
    .unwrap();
    let (run, _) = relocate_offline(&first, &prefix, &work.path().join("1.json"), &[]);
    run.assert_ok();

    let both = work.path().join("both.tgz");
    let arm = serde_json::json!({"image": "example.com/app/arm64:1.0", "contentDigest": images.arm64});
    std::fs::write(
        &both,
        Pack::new(&images.layout.path, bundle_json(amd, &[("arm", arm)])).tgz(),
    )
    .unwrap();
    let (run, _) = relocate_offline(&both, &prefix, &work.path().join("2.json"), &["--json"]);
    run.assert_ok();
    assert_eq!(run.count_events("image_already_present"), 1);
    assert_eq!(run.blob_outcomes(&images.base_layer), ["mounted"], "{}", run.stdout);
    let uploaded: u64 = run
        .events()
        .iter()
        .filter(|e| e["event"] == "blob_done" && e["outcome"]["how"] == "uploaded")
        .map(|e| e["outcome"]["bytes"].as_u64().unwrap())
        .sum();
    assert!(
        uploaded < 100 * KIB as u64,
        "only arm64's own blobs were sent: {uploaded}"
    );
}

#[test]
fn an_upload_that_fails_midway_is_read_again_from_the_archive() {
    let target = TestRegistry::start(Mode::Plain);
    let proxy = Proxy::start(&format!("http://{}", target.host()));
    proxy.add(Rule {
        method: "PATCH",
        path_contains: "/blobs/uploads/".into(),
        fault: Fault::Status(503, None),
        // the base layer, big enough to be streamed (smaller blobs are sent from memory with
        // the PUT that commits them, and retried as such), fails once: a second pass reads it
        times: 1,
    });
    let images = build_layout(2048 * KIB);
    let work = tempfile::tempdir().unwrap();
    let tgz = work.path().join("b.tgz");
    let bundle = bundle_json(
        serde_json::json!({"image": format!("example.com/app/multi@{}", images.multi)}),
        &[],
    );
    let mut pack = Pack::new(&images.layout.path, bundle);
    pack.index_json = Some(renamed_index(&images.layout.path, |t| {
        (t == "multi").then(|| format!("example.com/app/multi@{}", images.multi))
    }));
    std::fs::write(&tgz, pack.tgz()).unwrap();
    let relmap = work.path().join("relmap.json");
    let run = relocate(&tgz, &format!("{}/x", proxy.host()), &relmap, &["-v"]);
    run.assert_ok();
    assert!(
        run.stderr.contains("pass 2"),
        "a second pass re-read the failed blob: {}",
        run.stderr
    );
    let relocated = mapped(&relmap)[&format!("example.com/app/multi@{}", images.multi)]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        skopeo_digest(&relocated, &["--src-tls-verify=false".to_string()]),
        images.multi
    );
}

#[test]
fn a_hostile_archive_is_refused_before_the_target_is_touched() {
    let target = TestRegistry::start(Mode::Plain);
    // the conformance bundle, entry for entry, plus a symlink among the blobs
    let conformance =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/conformance/thick-hello-world.tgz"))
            .unwrap();
    let mut original = tar::Archive::new(flate2::read::GzDecoder::new(conformance.as_slice()));
    let mut hostile = tar::Builder::new(Vec::new());
    for entry in original.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        hostile.append(&header, data.as_slice()).unwrap();
    }
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    link.set_link_name("/etc/passwd").unwrap();
    hostile
        .append_data(&mut link, "./artifacts/layout/blobs/sha256/evil", &[][..])
        .unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &hostile.into_inner().unwrap()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let tgz = work.path().join("hostile.tgz");
    std::fs::write(&tgz, gz.finish().unwrap()).unwrap();
    let relmap = work.path().join("relmap.json");
    let (run, contacted) = relocate_offline(&tgz, &format!("{}/x", target.host()), &relmap, &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("evil") && run.stderr.contains("links are not allowed"),
        "{}",
        run.stderr
    );
    assert_eq!(contacted, 0);
    assert!(!relmap.exists());
    assert!(target.catalog().is_empty(), "the target was not touched");
    let leftovers: Vec<_> = std::fs::read_dir(work.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "nothing written next to the bundle");
}

#[test]
fn a_blob_needed_by_many_repositories_of_a_target_that_will_not_mount_is_read_twice_at_most() {
    let target = TestRegistry::start(Mode::Plain);
    let proxy = Proxy::start(&format!("http://{}", target.host()));
    proxy.refuse_mounts();
    let images = build_layout(256 * KIB);
    let image =
        |name: &str| serde_json::json!({"image": format!("example.com/app/{name}:1.0"), "contentDigest": images.amd64});
    let names = ["two", "three", "four", "five"];
    let others: Vec<(&str, serde_json::Value)> = names.iter().map(|n| (*n, image(n))).collect();
    let work = tempfile::tempdir().unwrap();
    let tgz = work.path().join("b.tgz");
    std::fs::write(
        &tgz,
        Pack::new(&images.layout.path, bundle_json(image("one"), &others)).tgz(),
    )
    .unwrap();
    let relmap = work.path().join("relmap.json");
    let run = relocate(&tgz, &format!("{}/x", proxy.host()), &relmap, &["--json", "-v"]);
    run.assert_ok();
    assert!(proxy.count("POST", "mount=") >= 1, "mounts were asked for");
    assert_eq!(
        run.blob_outcomes(&images.base_layer),
        ["uploaded"; 5],
        "every repository got the bytes: {}",
        run.stdout
    );
    assert!(
        run.stderr.contains("pass 2") && !run.stderr.contains("pass 3"),
        "one pass for the first repository, one for all the others: {}",
        run.stderr
    );
    for relocated in mapped(&relmap).values() {
        assert_eq!(
            skopeo_digest(relocated.as_str().unwrap(), &["--src-tls-verify=false".to_string()]),
            images.amd64
        );
    }
}

#[test]
fn two_images_claiming_one_tag_with_different_content_push_nothing() {
    let target = TestRegistry::start(Mode::Plain);
    let images = build_layout(64 * KIB);
    let work = tempfile::tempdir().unwrap();
    let tgz = work.path().join("b.tgz");
    let amd = serde_json::json!({"image": "example.com/app/same:1.0", "contentDigest": images.amd64});
    let arm = serde_json::json!({"image": format!("example.com/app/same:1.0@{}", images.arm64)});
    std::fs::write(
        &tgz,
        Pack::new(&images.layout.path, bundle_json(amd, &[("arm", arm)])).tgz(),
    )
    .unwrap();
    let relmap = work.path().join("relmap.json");
    let (run, _) = relocate_offline(&tgz, &format!("{}/x", target.host()), &relmap, &[]);
    assert_eq!(run.code, 2, "an input error: {}", run.stderr);
    assert!(
        run.stderr.contains("claim the same tag") && run.stderr.contains(":1.0"),
        "{}",
        run.stderr
    );
    assert!(!relmap.exists());
    assert_eq!(target.catalog(), Vec::<String>::new(), "nothing was pushed");
}

/// Copies each reference into an OCI layout with skopeo, under the name `name(reference)`.
fn skopeo_layout(source: &TestRegistry, references: &[&str], name: impl Fn(&str) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    for reference in references {
        support::fixtures::skopeo_copy(
            &format!("docker://{reference}"),
            &format!("oci:{}:{}", layout.display(), name(reference)),
            &source.skopeo_opts("src"),
        );
    }
    dir
}

#[test]
fn a_layout_skopeo_wrote_with_one_bare_tag_for_two_images_is_refused_before_any_push() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let images = support::populate(&source, 64 * KIB);
    let (one, two) = (&images.oci_plain.0, &images.deep.0);
    let layout = skopeo_layout(&source, &[one, two], |_| "v1".to_string());
    let work = tempfile::tempdir().unwrap();
    let tgz = work.path().join("b.tgz");
    let bundle = bundle_json(
        serde_json::json!({"image": one}),
        &[("deep", serde_json::json!({"image": two}))],
    );
    std::fs::write(&tgz, Pack::new(&layout.path().join("layout"), bundle).tgz()).unwrap();
    let relmap = work.path().join("relmap.json");
    let (run, _) = relocate_offline(&tgz, &format!("{}/x", target.host()), &relmap, &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    for image in [one, two] {
        assert!(run.stderr.contains(image.as_str()), "names {image}: {}", run.stderr);
    }
    assert!(
        run.stderr.contains("skopeo copy --all --preserve-digests"),
        "{}",
        run.stderr
    );
    assert_eq!(target.catalog(), Vec::<String>::new(), "nothing was pushed");
}

#[test]
fn a_layout_skopeo_wrote_with_full_references_relocates_each_image() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let images = support::populate(&source, 64 * KIB);
    let (one, two) = (&images.oci_plain, &images.deep);
    let layout = skopeo_layout(&source, &[&one.0, &two.0], str::to_string);
    let work = tempfile::tempdir().unwrap();
    let tgz = work.path().join("b.tgz");
    let bundle = bundle_json(
        serde_json::json!({"image": one.0}),
        &[("deep", serde_json::json!({"image": two.0}))],
    );
    std::fs::write(&tgz, Pack::new(&layout.path().join("layout"), bundle).tgz()).unwrap();
    let relmap = work.path().join("relmap.json");
    let (run, contacted) = relocate_offline(&tgz, &format!("{}/x", target.host()), &relmap, &[]);
    run.assert_ok();
    assert_eq!(contacted, 0);
    let map = mapped(&relmap);
    for (original, digest) in [one, two] {
        let relocated = map[original.as_str()].as_str().unwrap();
        assert_eq!(
            &skopeo_digest(relocated, &target.skopeo_opts("src")),
            digest,
            "{original}"
        );
    }
}

/// Stores `value` as a blob of the layout; its descriptor with `media_type`.
fn put_json(layout: &support::fixtures::Layout, media_type: &str, value: serde_json::Value) -> serde_json::Value {
    let bytes = serde_json::to_vec(&value).unwrap();
    let digest = layout.put_blob(&bytes);
    serde_json::json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
}

#[test]
fn children_of_any_kind_are_copied_byte_exact_and_schema_1_is_refused_by_name() {
    const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    let target = TestRegistry::start(Mode::Plain);
    let images = build_layout(64 * KIB);
    let layout = &images.layout;
    let empty = put_json(layout, "application/vnd.oci.empty.v1+json", serde_json::json!({}));
    let statement = put_json(
        layout,
        "application/vnd.in-toto+json",
        serde_json::json!({"_type": "statement"}),
    );
    let mut attestation = put_json(
        layout,
        OCI_MANIFEST,
        serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": empty, "layers": [statement]}),
    );
    attestation["platform"] = serde_json::json!({"architecture": "unknown", "os": "unknown"});
    attestation["annotations"] = serde_json::json!({"vnd.docker.reference.type": "attestation-manifest"});
    let artifact = put_json(
        layout,
        OCI_MANIFEST,
        serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.sbom",
            "config": empty, "layers": [statement]}),
    );
    let arm = layout.descriptor("arm64");
    let nested = put_json(
        layout,
        OCI_INDEX,
        serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": arm.media_type, "digest": arm.digest, "size": arm.size}]}),
    );
    let amd = layout.descriptor("amd64");
    let odd = put_json(
        layout,
        OCI_INDEX,
        serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": amd.media_type, "digest": amd.digest, "size": amd.size},
            attestation, artifact, nested]}),
    );
    let odd_digest = odd["digest"].as_str().unwrap().to_string();
    layout.add_ref("odd", OCI_INDEX, &odd_digest, odd["size"].as_u64().unwrap());
    let signed = br#"{"schemaVersion":1,"name":"app/old","tag":"1","architecture":"amd64","fsLayers":[],"history":[],"signatures":[]}"#;
    let old = layout.put_blob(signed);
    layout.add_ref(
        "old",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        &old,
        signed.len() as u64,
    );

    let work = tempfile::tempdir().unwrap();
    let prefix = format!("{}/x", target.host());
    let tgz = work.path().join("odd.tgz");
    let bundle = bundle_json(
        serde_json::json!({"image": format!("example.com/app/odd@{odd_digest}")}),
        &[],
    );
    std::fs::write(&tgz, Pack::new(&layout.path, bundle).tgz()).unwrap();
    let relmap = work.path().join("relmap.json");
    let (run, _) = relocate_offline(&tgz, &prefix, &relmap, &[]);
    run.assert_ok();
    let relocated = mapped(&relmap)[&format!("example.com/app/odd@{odd_digest}")]
        .as_str()
        .unwrap()
        .to_string();
    let opts = target.skopeo_opts("src");
    assert_eq!(skopeo_digest(&relocated, &opts), odd_digest);
    let repository = repository_of(&relocated);
    for child in [&attestation, &artifact, &nested] {
        let digest = child["digest"].as_str().unwrap();
        let raw = support::fixtures::skopeo_raw(&format!("{repository}@{digest}"), &opts);
        assert_eq!(raw, layout.blob(digest), "child {digest} byte-exact");
    }

    let tgz = work.path().join("old.tgz");
    let bundle = bundle_json(serde_json::json!({"image": format!("example.com/app/old@{old}")}), &[]);
    std::fs::write(&tgz, Pack::new(&layout.path, bundle).tgz()).unwrap();
    let (run, _) = relocate_offline(&tgz, &prefix, &work.path().join("old.json"), &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("example.com/app/old@") && run.stderr.contains("schema 1"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_mapping_file_gets_the_umask_keeps_its_mode_and_is_never_a_device() {
    use std::os::unix::fs::PermissionsExt;
    let target = TestRegistry::start(Mode::Plain);
    let bundle = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/conformance/thick-hello-world.tgz");
    let work = tempfile::tempdir().unwrap();
    let prefix = format!("{}/modes", target.host());
    let relocate_with_umask = |umask: &str, relmap: &Path| {
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("umask {umask}; exec \"$0\" \"$1\" -p \"$2\" -m \"$3\" -q",))
            .args([
                support::bin(),
                bundle.to_str().unwrap(),
                &prefix,
                relmap.to_str().unwrap(),
            ])
            .env("DOCKER_CONFIG", work.path())
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::metadata(relmap).unwrap().permissions().mode() & 0o777
    };
    assert_eq!(relocate_with_umask("077", &work.path().join("private.json")), 0o600);
    assert_eq!(relocate_with_umask("022", &work.path().join("shared.json")), 0o644);
    let existing = work.path().join("existing.json");
    std::fs::write(&existing, "old").unwrap();
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(
        relocate_with_umask("022", &existing),
        0o640,
        "a replaced file keeps its mode"
    );
    let leftovers: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 3, "no temporary files: {leftovers:?}");

    let fifo = work.path().join("fifo");
    support::fixtures::run(std::process::Command::new("mkfifo").arg(&fifo));
    let unreachable = "127.0.0.1:1/x";
    for special in [Path::new("/dev/null"), fifo.as_path()] {
        let (run, _) = relocate_offline(&bundle, unreachable, special, &[]);
        assert_eq!(run.code, 2, "{}: {}", special.display(), run.stderr);
        assert!(run.stderr.contains("not a regular file"), "{}", run.stderr);
    }
    use std::os::unix::fs::FileTypeExt;
    assert!(
        Path::new("/dev/null").metadata().unwrap().file_type().is_char_device(),
        "/dev/null untouched"
    );
}

#[test]
fn manifests_beyond_the_memory_budget_are_relocated_without_holding_them_all() {
    const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    const IMAGES: usize = 48;
    let target = TestRegistry::start(Mode::Plain);
    let images = build_layout(16 * KIB);
    let layout = &images.layout;
    let amd = layout.manifest("amd64");
    // 48 manifests of 3.5 MiB (168 MiB of metadata), each padded by an annotation
    let mut digests = Vec::new();
    for i in 0..IMAGES {
        let mut m = amd.clone();
        m["annotations"] = serde_json::json!({"pad": format!("{i}").repeat(3_500_000 / 2)});
        let d = put_json(layout, OCI_MANIFEST, m);
        let digest = d["digest"].as_str().unwrap().to_string();
        layout.add_ref(&format!("heavy{i}"), OCI_MANIFEST, &digest, d["size"].as_u64().unwrap());
        digests.push(digest);
    }
    let refs: Vec<String> = digests
        .iter()
        .enumerate()
        .map(|(i, d)| format!("example.com/app/heavy{i}@{d}"))
        .collect();
    let others: Vec<(String, serde_json::Value)> = refs[1..]
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("i{i}"), serde_json::json!({"image": r})))
        .collect();
    let others: Vec<(&str, serde_json::Value)> = others.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let work = tempfile::tempdir().unwrap();
    let tgz = work.path().join("heavy.tgz");
    let bundle = bundle_json(serde_json::json!({"image": refs[0]}), &others);
    std::fs::write(&tgz, Pack::new(&layout.path, bundle).tgz()).unwrap();
    let relmap = work.path().join("relmap.json");
    let prefix = format!("{}/heavy", target.host());
    let cfg = tempfile::tempdir().unwrap();
    let args = [tgz.to_str().unwrap(), "-p", &prefix, "-m", relmap.to_str().unwrap()];
    let (run, peak_kib) = support::run_measured(&args, cfg.path());
    run.assert_ok();
    assert!(
        peak_kib < 130 * 1024,
        "peak RSS {peak_kib} KiB for 168 MiB of manifests"
    );
    let map = mapped(&relmap);
    let opts = target.skopeo_opts("src");
    for i in [0, IMAGES / 2, IMAGES - 1] {
        let relocated = map[&refs[i]].as_str().unwrap();
        assert_eq!(skopeo_digest(relocated, &opts), digests[i]);
    }
}
