//! The command line without a registry: dry-run, `map`, input errors and exit codes.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::archive::{tgz, Entry};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cnab-relocate"))
}

fn testdata(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(p)
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const DUFFLE_BUNDLE: &str = "conformance/duffle-relocate/bundle.json";
const THICK: &str = "conformance/thick-hello-world.tgz";
const HELLO_BUNDLE_JSON: &str = r#"{"name":"h","version":"1","invocationImages":[{"image":"hello-world:latest","imageType":"docker","contentDigest":"sha256:f54a58bc1aac5ea1a25d796ae155dc228b3f0e11d046ae276b39c4bf2f13d8c4"}]}"#;

#[test]
fn dry_run_prints_duffles_exact_bytes() {
    let o = run(&[
        testdata(DUFFLE_BUNDLE).to_str().unwrap(),
        "-p",
        "example.com/user",
        "--dry-run",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let want = std::fs::read(testdata("conformance/duffle-relocate/relmap.json")).unwrap();
    assert_eq!(o.stdout, want);
    assert!(
        stderr(&o).contains("cannot list the signatures, attestations and SBOMs"),
        "a dry run says what it cannot see: {}",
        stderr(&o)
    );
    let quiet = run(&[
        testdata(DUFFLE_BUNDLE).to_str().unwrap(),
        "-p",
        "example.com/user",
        "--dry-run",
        "--no-referrers",
    ]);
    assert_eq!(stderr(&quiet), "", "nothing to say without referrers");
}

#[test]
fn dry_run_leaves_the_bundle_untouched_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle.json");
    std::fs::copy(testdata(DUFFLE_BUNDLE), &bundle).unwrap();
    let before = std::fs::metadata(&bundle).unwrap().modified().unwrap();
    let o = bin()
        .current_dir(dir.path())
        .env("TMPDIR", dir.path())
        .args([
            "bundle.json",
            "-p",
            "example.com/user",
            "--dry-run",
            "-m",
            "relmap.json",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no file written");
    assert_eq!(std::fs::metadata(&bundle).unwrap().modified().unwrap(), before);
}

#[test]
fn thick_conformance_bundle_dry_runs_without_extracting() {
    let tmp = tempfile::tempdir().unwrap();
    let o = bin()
        .current_dir(tmp.path())
        .env("TMPDIR", tmp.path())
        .args([testdata(THICK).to_str().unwrap(), "-p", "example.com/user", "--dry-run"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        r#"{"docker.io/library/hello-world:latest":"example.com/user/library-hello-world-45c97d7ccdb3ca616c0753994b235672:latest","hello-world@sha256:f54a58bc1aac5ea1a25d796ae155dc228b3f0e11d046ae276b39c4bf2f13d8c4":"example.com/user/library-hello-world-45c97d7ccdb3ca616c0753994b235672@sha256:f54a58bc1aac5ea1a25d796ae155dc228b3f0e11d046ae276b39c4bf2f13d8c4"}"#
    );
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0, "nothing extracted");
}

fn expect_input_error(args: &[&str], needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let relmap = dir.path().join("relmap.json");
    let mut full: Vec<&str> = args.to_vec();
    full.extend(["-m", relmap.to_str().unwrap()]);
    let o = run(&full);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: expected {n:?} in {err}");
    }
    assert!(o.stdout.is_empty());
    assert!(!relmap.exists(), "no mapping written");
}

#[test]
fn unsupported_image_type_exits_2_naming_image_and_type() {
    let b = testdata("conformance/duffle-relocate/bundle-with-unsupported-image-type.json");
    expect_input_error(
        &[b.to_str().unwrap(), "-p", "example.com/user"],
        &["images.c", "\"c\"", "imageType"],
    );
}

#[test]
fn the_mapping_may_not_overwrite_the_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle.json");
    std::fs::copy(testdata(DUFFLE_BUNDLE), &bundle).unwrap();
    let before = std::fs::read(&bundle).unwrap();
    let o = bin()
        .current_dir(dir.path())
        .args(["bundle.json", "-p", "example.com/user", "-m", "./bundle.json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("the bundle itself"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&bundle).unwrap(), before);
}

#[test]
fn truncated_json_exits_2_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::read_to_string(testdata(DUFFLE_BUNDLE)).unwrap();
    let b = dir.path().join("truncated.json");
    std::fs::write(&b, &full[..full.len() / 2]).unwrap();
    expect_input_error(
        &[b.to_str().unwrap(), "-p", "example.com/user"],
        &["EOF", "line", "column"],
    );
}

#[test]
fn invalid_prefixes_exit_2_naming_the_problem() {
    let b = testdata(DUFFLE_BUNDLE);
    let b = b.to_str().unwrap();
    for (prefix, why) in [
        ("example.com/user/", "end with '/'"),
        ("example.com//user", "\"//\""),
        ("example.com/user:1", "':'"),
        ("example.com/user@x", "'@'"),
        ("example.com/us\"er", "'\"'"),
        ("example.com/us er", "' '"),
        ("exa_mple.com/user", "host"),
        ("example.com:0/user", "1..65535"),
        ("example.com:70000/user", "1..65535"),
        ("example.com/User", "lower case"),
    ] {
        expect_input_error(&[b, "-p", prefix], &[prefix, why]);
    }
}

#[test]
fn missing_bundle_and_non_json_exit_2() {
    expect_input_error(
        &["/nonexistent/bundle.json", "-p", "example.com/u"],
        &["/nonexistent/bundle.json"],
    );
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path().join("b.json");
    std::fs::write(&b, b"\x00\x01binary").unwrap();
    expect_input_error(&[b.to_str().unwrap(), "-p", "example.com/u"], &["neither"]);
    std::fs::write(&b, br#"{"name":"x","invocationImages":[]}"#).unwrap();
    expect_input_error(&[b.to_str().unwrap(), "-p", "example.com/u"], &["no invocation image"]);
    std::fs::write(&b, br#"{"invocationImages":[{"image":"Bad/Upper"}]}"#).unwrap();
    expect_input_error(
        &[b.to_str().unwrap(), "-p", "example.com/u"],
        &["invocationImages[0]", "Bad/Upper", "lower case"],
    );
    std::fs::write(
        &b,
        br#"{"invocationImages":[{"image":"a","contentDigest":"sha256:12"}]}"#,
    )
    .unwrap();
    expect_input_error(
        &[b.to_str().unwrap(), "-p", "example.com/u"],
        &["contentDigest", "64 hex"],
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&[]).status.code(), Some(2));
    assert_eq!(run(&["bundle.json"]).status.code(), Some(2), "prefix is required");
    assert_eq!(
        run(&["bundle.json", "-p", "example.com/u"]).status.code(),
        Some(2),
        "mapping is required without --dry-run"
    );
    assert_eq!(
        run(&["b.json", "-p", "x.com/u", "-m", "m", "--concurrency", "0"])
            .status
            .code(),
        Some(2)
    );
    let help = run(&["--help"]);
    assert!(help.status.success());
    let text = String::from_utf8(help.stdout).unwrap();
    for flag in [
        "--repository-prefix",
        "--relocation-mapping",
        "--dry-run",
        "--ca-cert-path",
        "--skip-tls-verify",
        "--insecure-registry",
        "--concurrency",
        "--json",
        "--quiet",
        "--verbose",
        "Exit status",
    ] {
        assert!(text.contains(flag), "help mentions {flag}");
    }
}

#[test]
fn map_prints_one_reference_per_line() {
    let o = run(&[
        "map",
        "-p",
        "example.com/user",
        "technosophos/helloworld:0.1.0",
        "istio/proxyv2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        "example.com/user/technosophos-helloworld-6731e0d41b7fd5a24e14c853af93bd81:0.1.0\n\
         example.com/user/istio-proxyv2-f93a2cacc6cafa0474a2d6990a4dd1a0\n"
    );
}

#[test]
fn map_rejects_bad_reference_or_prefix_with_exit_2() {
    let o = run(&["map", "-p", "example.com/user", "ok/image", "Not/Valid"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty(), "nothing printed when any input is invalid");
    assert!(stderr(&o).contains("Not/Valid"));
    let o = run(&["map", "-p", "example.com/user/", "ubuntu"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("example.com/user/"));
}

/// Writes `bytes` under a name that says nothing about the format.
fn write_temp(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn dry_run(path: &Path) -> Output {
    run(&[path.to_str().unwrap(), "-p", "example.com/user", "--dry-run"])
}

/// The ggcr hello-world layout's files under `prefix` (e.g. "./artifacts/layout/").
fn hello_layout(prefix: &str) -> Vec<Entry> {
    let root = testdata("conformance/ggcr-hello-world-layout");
    let mut entries = Vec::new();
    for rel in ["oci-layout", "index.json"] {
        entries.push(Entry::File(
            leak(format!("{prefix}{rel}")),
            std::fs::read(root.join(rel)).unwrap(),
        ));
    }
    for blob in std::fs::read_dir(root.join("blobs/sha256")).unwrap() {
        let blob = blob.unwrap();
        entries.push(Entry::File(
            leak(format!("{prefix}blobs/sha256/{}", blob.file_name().to_str().unwrap())),
            std::fs::read(blob.path()).unwrap(),
        ));
    }
    entries
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

#[test]
fn thick_bundle_json_is_found_in_every_layout_seen_in_the_wild() {
    let dir = tempfile::tempdir().unwrap();
    let json = HELLO_BUNDLE_JSON.as_bytes().to_vec();
    let with = |mut first: Vec<Entry>, layout_prefix: &str| {
        first.extend(hello_layout(layout_prefix));
        first
    };
    let layouts: Vec<(&str, Vec<Entry>)> = vec![
        (
            "root",
            with(vec![Entry::File("bundle.json", json.clone())], "artifacts/layout/"),
        ),
        (
            "dot",
            with(
                vec![Entry::Dir("./"), Entry::File("./bundle.json", json.clone())],
                "./artifacts/layout/",
            ),
        ),
        (
            "topdir",
            with(
                vec![
                    Entry::Dir("hello-1.0/"),
                    Entry::File("hello-1.0/bundle.json", json.clone()),
                ],
                "hello-1.0/artifacts/layout/",
            ),
        ),
        (
            "dot-topdir-bundle-last",
            with(vec![Entry::Dir("./hello/")], "./hello/artifacts/layout/")
                .into_iter()
                .chain([Entry::File("./hello/bundle.json", json.clone())])
                .collect(),
        ),
    ];
    for (name, entries) in layouts {
        // the name says .json: content decides
        let p = write_temp(dir.path(), &format!("{name}.json"), &tgz(&entries));
        let o = dry_run(&p);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        assert!(
            String::from_utf8(o.stdout).unwrap().contains("library-hello-world-"),
            "{name}"
        );
    }
    // and a JSON file named .tgz is read as JSON
    let p = write_temp(dir.path(), "thin.tgz", &json);
    assert!(dry_run(&p).status.success());
}

#[test]
fn thick_bundle_without_bundle_json_at_the_root_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let json = HELLO_BUNDLE_JSON.as_bytes().to_vec();
    for (name, entries) in [
        ("none", vec![Entry::File("other.json", json.clone())]),
        (
            "two-topdirs",
            vec![Entry::File("a/bundle.json", json.clone()), Entry::File("b/x", vec![])],
        ),
        ("too-deep", vec![Entry::File("a/b/bundle.json", json.clone())]),
    ] {
        let p = write_temp(dir.path(), &format!("{name}.tgz"), &tgz(&entries));
        let o = dry_run(&p);
        assert_eq!(o.status.code(), Some(2), "{name}");
        assert!(stderr(&o).contains("no bundle.json"), "{name}: {}", stderr(&o));
    }
}

#[test]
fn hostile_archives_are_refused_and_nothing_is_written() {
    let json = HELLO_BUNDLE_JSON.as_bytes().to_vec();
    let cases: Vec<(&str, Vec<Entry>, &str)> = vec![
        (
            "dotdot",
            vec![
                Entry::File("bundle.json", json.clone()),
                Entry::File("../evil", b"x".to_vec()),
            ],
            "'..'",
        ),
        (
            "absolute",
            vec![
                Entry::File("bundle.json", json.clone()),
                Entry::File("/tmp/evil", b"x".to_vec()),
            ],
            "absolute",
        ),
        ("symlink", vec![Entry::Symlink("bundle.json", "/etc/passwd")], "links"),
        (
            "hardlink",
            vec![
                Entry::File("bundle.json", json.clone()),
                Entry::Hardlink("x", "/etc/shadow"),
            ],
            "links",
        ),
        (
            "device",
            vec![Entry::File("bundle.json", json.clone()), Entry::CharDevice("dev/null")],
            "device",
        ),
        (
            "fifo",
            vec![Entry::File("bundle.json", json.clone()), Entry::Fifo("pipe")],
            "FIFO",
        ),
        (
            "duplicate",
            vec![
                Entry::File("bundle.json", json.clone()),
                Entry::File("./bundle.json", json.clone()),
            ],
            "more than once",
        ),
        (
            "huge-bundle-json",
            vec![Entry::File("bundle.json", vec![b' '; 16 * 1024 * 1024 + 1])],
            "over 16777216 bytes",
        ),
    ];
    for (name, entries, needle) in cases {
        let dir = tempfile::tempdir().unwrap();
        let p = write_temp(dir.path(), "b.tgz", &tgz(&entries));
        let o = bin()
            .current_dir(dir.path())
            .env("TMPDIR", dir.path())
            .args([p.to_str().unwrap(), "-p", "example.com/u", "-m", "relmap.json"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{name}: {}", stderr(&o));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "{name}: nothing written"
        );
    }
}

#[test]
fn truncated_archives_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..200_000u32)
        .flat_map(|i| i.wrapping_mul(2654435761).to_le_bytes())
        .collect();
    let full = tgz(&[
        Entry::File("bundle.json", HELLO_BUNDLE_JSON.as_bytes().to_vec()),
        Entry::File("artifacts/layout/blobs/sha256/aa", big),
    ]);
    // a complete gzip stream whose tar loses data in its last entry
    let mut short = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(4096);
    h.set_cksum();
    short.append_data(&mut h, "bundle.json", &[b' '; 4096][..]).unwrap();
    let mut tar_bytes = short.into_inner().unwrap();
    tar_bytes.truncate(512 + 1024); // header + two of its eight data blocks
    let p = write_temp(dir.path(), "short.tgz", &gzip(&tar_bytes));
    let o = dry_run(&p);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot read thick bundle"), "{}", stderr(&o));

    for cut in [full.len() / 2, full.len() - 4, full.len() - 1] {
        let p = write_temp(dir.path(), "cut.tgz", &full[..cut]);
        let o = dry_run(&p);
        assert_eq!(o.status.code(), Some(2), "cut at {cut}: {}", stderr(&o));
        assert!(stderr(&o).contains("cannot read thick bundle"), "{}", stderr(&o));
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, bytes).unwrap();
    gz.finish().unwrap()
}

/// The conformance thick bundle's tar, decompressed.
fn hello_tar() -> Vec<u8> {
    let mut tar = Vec::new();
    let tgz = std::fs::read(testdata(THICK)).unwrap();
    std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&tgz[..]), &mut tar).unwrap();
    tar
}

#[test]
fn archives_as_producers_write_them_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let tar = hello_tar();
    let expected = dry_run(&testdata(THICK));
    assert_eq!(expected.status.code(), Some(0), "{}", stderr(&expected));
    // the tar's own end: the last non-zero 512-byte block, then its zero blocks
    let end = tar.chunks(512).rposition(|b| b.iter().any(|x| *x != 0)).unwrap() * 512 + 512;
    let half = tar.len() / 2 / 512 * 512;
    let variants = [
        ("no end-of-archive blocks", gzip(&tar[..end])),
        (
            "extra end-of-archive blocks",
            gzip(&[&tar[..], &[0u8; 8192][..]].concat()),
        ),
        (
            "zero padding after the gzip stream",
            [gzip(&tar), vec![0u8; 4096]].concat(),
        ),
        ("two gzip members", [gzip(&tar[..half]), gzip(&tar[half..])].concat()),
    ];
    for (what, bytes) in variants {
        let p = write_temp(dir.path(), "variant.tgz", &bytes);
        let o = dry_run(&p);
        assert_eq!(o.status.code(), Some(0), "{what}: {}", stderr(&o));
        assert_eq!(o.stdout, expected.stdout, "{what}");
    }
    let p = write_temp(dir.path(), "garbage.tgz", &[gzip(&tar), b"garbage".to_vec()].concat());
    let o = dry_run(&p);
    assert_eq!(o.status.code(), Some(2), "data after the gzip stream: {}", stderr(&o));
    assert!(stderr(&o).contains("after the gzip stream"), "{}", stderr(&o));
}

#[test]
fn thousands_of_decoy_metadata_files_cost_no_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("decoys.tgz");
    let gz = flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    let mut append = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        builder.append_data(&mut h, name, data).unwrap();
    };
    append("bundle.json", HELLO_BUNDLE_JSON.as_bytes());
    for entry in hello_layout("artifacts/layout/") {
        if let Entry::File(name, data) = entry {
            append(name, &data);
        }
    }
    // 2,000 candidates of 256 KiB (500 MiB) where metadata could be, were the bundle nested
    let decoy = vec![b' '; 256 * 1024];
    for i in 0..1000 {
        append(&format!("decoy{i}/bundle.json"), &decoy);
        append(&format!("decoy{i}/artifacts/layout/index.json"), &decoy);
    }
    builder.into_inner().unwrap().finish().unwrap();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(env!("CARGO_BIN_EXE_cnab-relocate"))
        .args([path.to_str().unwrap(), "-p", "example.com/user", "--dry-run"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let peak_kib: u64 = err.trim().lines().last().unwrap().parse().unwrap();
    assert!(peak_kib < 150 * 1024, "peak RSS {peak_kib} KiB");
}

#[test]
fn a_bundle_json_from_a_pipe_is_held_to_the_same_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("bundle.json");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut pipe = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            let chunk = vec![b' '; 1 << 20];
            // 64 MiB of JSON whitespace, far over the 16 MiB limit; stops when the reader leaves
            for _ in 0..64 {
                if pipe.write_all(&chunk).is_err() {
                    break;
                }
            }
        })
    };
    let o = dry_run(&fifo);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("16777216"), "{}", stderr(&o));
    writer.join().unwrap();
}

#[test]
fn control_characters_from_a_bundle_never_reach_the_terminal_raw() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = r#"{"name":"x","version":"1","invocationImages":[{"image":"evil\u001b[2J\u0007\rname:1"}]}"#;
    let p = write_temp(dir.path(), "bundle.json", bundle.as_bytes());
    let o = dry_run(&p);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(!err.contains(['\x1b', '\x07', '\r']), "{err:?}");
    assert!(err.contains("\\u{1b}[2J"), "shown escaped: {err}");
}

#[test]
fn help_into_a_pipe_carries_no_escape_sequences() {
    let o = run(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&o.stdout).contains('\x1b'));
}

#[test]
fn no_colours_on_a_terminal_when_no_color_is_set_nor_in_logs() {
    // `script` gives the program a terminal; its output is what the terminal was sent
    let bin = env!("CARGO_BIN_EXE_cnab-relocate");
    let o = Command::new("script")
        .args([
            "-qec",
            &format!("{bin} --help; {bin} /nonexistent.json -p example.com/x -m /tmp/x.json -vv"),
            "/dev/null",
        ])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let seen = String::from_utf8_lossy(&o.stdout);
    assert!(seen.contains("Usage") && seen.contains("cannot read bundle"), "{seen}");
    assert!(
        !seen.contains('\x1b'),
        "no escape sequence at all before any transfer: {seen:?}"
    );
}

#[test]
fn a_bundle_json_with_a_byte_order_mark_is_read_thin_and_thick() {
    let dir = tempfile::tempdir().unwrap();
    let mut json = b"\xEF\xBB\xBF".to_vec();
    json.extend_from_slice(HELLO_BUNDLE_JSON.as_bytes());
    let thin = write_temp(dir.path(), "thin.json", &json);
    let mut entries = vec![Entry::File("bundle.json", json.clone())];
    entries.extend(hello_layout("artifacts/layout/"));
    let thick = write_temp(dir.path(), "thick.tgz", &tgz(&entries));
    for p in [&thin, &thick] {
        let o = dry_run(p);
        assert!(o.status.success(), "{}: {}", p.display(), stderr(&o));
        assert!(String::from_utf8(o.stdout).unwrap().contains("library-hello-world-"));
    }
}

#[test]
fn duffles_bundle_is_file_flag_is_accepted() {
    let b = testdata(DUFFLE_BUNDLE);
    let want = std::fs::read(testdata("conformance/duffle-relocate/relmap.json")).unwrap();
    for flag in ["-f", "--bundle-is-file"] {
        let o = run(&[b.to_str().unwrap(), flag, "-p", "example.com/user", "--dry-run"]);
        assert!(o.status.success(), "{flag}: {}", stderr(&o));
        assert_eq!(o.stdout, want, "{flag}");
    }
}

#[test]
fn a_prefix_with_a_scheme_is_refused_saying_to_drop_it() {
    let b = testdata(DUFFLE_BUNDLE);
    expect_input_error(
        &[b.to_str().unwrap(), "-p", "https://registry.example.com/x"],
        &["drop the scheme", "registry.example.com/x"],
    );
    let o = run(&["map", "-p", "http://localhost:5000/x", "ubuntu"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("drop the scheme"), "{}", stderr(&o));
}

#[test]
fn a_prefix_without_a_host_means_docker_hub_and_says_so() {
    let b = testdata(DUFFLE_BUNDLE);
    let o = run(&[b.to_str().unwrap(), "-p", "smith/apps", "--dry-run"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("\"docker.io/smith/apps/"),
        "duffle's meaning is kept"
    );
    assert!(stderr(&o).contains("warning:"), "{}", stderr(&o));
    assert!(stderr(&o).contains("docker.io/smith/apps"), "{}", stderr(&o));
    let o = run(&["map", "-p", "smith/apps", "ubuntu"]);
    assert!(o.status.success());
    assert!(stderr(&o).contains("docker.io/smith/apps"), "{}", stderr(&o));
    let o = run(&[b.to_str().unwrap(), "-p", "registry.example.com/smith", "--dry-run"]);
    assert!(
        !stderr(&o).contains("warning") && !stderr(&o).contains("docker.io"),
        "no warning with a host: {}",
        stderr(&o)
    );
}

#[test]
fn a_mistyped_subcommand_gets_a_suggestion_and_two_bundles_a_plain_message() {
    for (args, want) in [
        (
            &["exprot", "forge.json", "-o", "forge.tgz"][..],
            "did you mean 'export'?",
        ),
        (&["mapp", "-p", "example.com/u", "ubuntu"][..], "did you mean 'map'?"),
        (&["exprot"][..], "did you mean 'export'?"),
        (
            &["a.json", "-p", "example.com/u", "b.json", "-m", "r.json"][..],
            "one bundle at a time: got 2 (a.json, b.json)",
        ),
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = stderr(&o);
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("cannot be used with"), "no clap internals: {err}");
        assert!(err.contains("Usage:"), "{err}");
    }
    // a bundle file that happens to be named like a typo is a bundle
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(testdata(DUFFLE_BUNDLE), dir.path().join("mapp")).unwrap();
    let o = bin()
        .current_dir(dir.path())
        .args(["mapp", "-p", "example.com/u", "--dry-run"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn usage_errors_never_repeat_a_password() {
    let b = testdata(DUFFLE_BUNDLE);
    let b = b.to_str().unwrap();
    for args in [
        &[b, "-p", "example.com/u", "-m", "r.json", "--dest-creds", ":s3cret-pw"][..],
        &[
            b,
            "-p",
            "example.com/u",
            "-m",
            "r.json",
            "--dest-cred",
            "user:s3cret-pw",
        ][..],
        &[
            b,
            "-p",
            "example.com/u",
            "-m",
            "r.json",
            "--src-creds",
            "user:s3cret-pw",
            "--dest-creds",
        ][..],
        &["export", b, "-o", "x.tgz", "--src-creds", ":s3cret-pw"][..],
        &[
            b,
            "-p",
            "example.com/u",
            "-m",
            "r.json",
            "--dest-creds",
            "user",
            "s3cret-pw",
        ][..],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("s3cret-pw"), "{args:?}: {}", stderr(&o));
        assert!(!String::from_utf8_lossy(&o.stdout).contains("s3cret-pw"));
    }
}

#[test]
fn every_problem_of_a_bundle_is_reported_at_once() {
    // three invalid references and an unsupported imageType
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle.json");
    std::fs::write(
        &bundle,
        r#"{"name":"b","version":"1","invocationImages":[{"image":"UPPER/case:1"}],
            "images":{"a":{"image":"bad image"},"b":{"image":"ok/img:1","imageType":"vm"},
                      "c":{"image":"x:1:2"},"d":{"image":"fine/one:2"}}}"#,
    )
    .unwrap();
    let relmap = dir.path().join("relmap.json");
    let args = [
        bundle.to_str().unwrap(),
        "-p",
        "127.0.0.1:1/x",
        "-m",
        relmap.to_str().unwrap(),
    ];
    let o = run(&args);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    for at in ["invocationImages[0]", "images.a", "images.b", "images.c"] {
        assert!(err.contains(at), "{at} is named: {err}");
    }
    assert!(err.contains("4 problems"), "{err}");
    assert!(!err.contains("images.d"), "{err}");
    assert!(!relmap.exists());
    let json = run(&[&args[..], &["--json"]].concat());
    let last = String::from_utf8_lossy(&json.stdout)
        .lines()
        .last()
        .unwrap()
        .to_string();
    let summary: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(summary["errors"].as_array().unwrap().len(), 4, "{summary}");
}

const RULES: &str = r#"- from: regex:docker\.io/library/.*
  to: regex:^docker\.io/library/,hub/        # docker.io/library/nginx -> hub/nginx
- from: ghcr.io/acme/tool
  to: tools/acme-tool                         # exact rename
- from: regex:registry\.example\.com/apps/.*
  to: apps-mirror                             # prefix: apps-mirror/apps/web
"#;

#[test]
fn mapping_rules_place_bundle_images_first_match_wins_duffle_for_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, RULES).unwrap();
    let bundle = dir.path().join("bundle.json");
    std::fs::write(
        &bundle,
        r#"{"name":"b","version":"1","invocationImages":[{"image":"nginx:1.25"}],
            "images":{"a":{"image":"ghcr.io/acme/tool:2"},"b":{"image":"registry.example.com/apps/web:1"},
                      "c":{"image":"technosophos/helloworld:0.1.0"}}}"#,
    )
    .unwrap();
    let o = run(&[
        bundle.to_str().unwrap(),
        "-p",
        "reg.acme.com/mirror",
        "--dry-run",
        "--no-referrers",
        "--mapping-rules",
        rules.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let map: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        map,
        serde_json::json!({
            "nginx:1.25": "reg.acme.com/mirror/hub/nginx:1.25",
            "ghcr.io/acme/tool:2": "reg.acme.com/mirror/tools/acme-tool:2",
            "registry.example.com/apps/web:1": "reg.acme.com/mirror/apps-mirror/apps/web:1",
            "technosophos/helloworld:0.1.0": "reg.acme.com/mirror/technosophos-helloworld-6731e0d41b7fd5a24e14c853af93bd81:0.1.0",
        })
    );
    let mapped = run(&[
        "map",
        "-p",
        "reg.acme.com/mirror",
        "--mapping-rules",
        rules.to_str().unwrap(),
        "nginx:1.25",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&mapped.stdout),
        "reg.acme.com/mirror/hub/nginx:1.25\n"
    );
}

#[test]
fn bad_mapping_rules_are_exit_2_before_any_registry() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle.json");
    std::fs::write(
        &bundle,
        r#"{"name":"b","version":"1","invocationImages":[{"image":"a/one:1"}],"images":{"x":{"image":"b/one:1"}}}"#,
    )
    .unwrap();
    let relmap = dir.path().join("relmap.json");
    for (rules, says) in [
        ("- from: a/one\n  tags: ['1']\n", "tags"),
        ("- from: regex:.*\n  to: regex:^nomatch,x\n", "does not match"),
        (
            "- from: regex:docker\\.io/./one\n  to: regex:^.*$,same\n",
            "would both be relocated",
        ),
        ("- from: regex:.*\n  to: UPPER\n", "not valid"),
    ] {
        let path = dir.path().join("rules.yaml");
        std::fs::write(&path, rules).unwrap();
        // a prefix no one listens on: nothing may be contacted
        let o = run(&[
            bundle.to_str().unwrap(),
            "-p",
            "127.0.0.1:1/x",
            "-m",
            relmap.to_str().unwrap(),
            "--mapping-rules",
            path.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2), "{rules}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{rules}: {}", stderr(&o));
        assert!(!relmap.exists());
    }
}
