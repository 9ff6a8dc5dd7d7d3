//! `-` as BUNDLE: a thin or thick bundle piped in, as scripts pass it (`curl … | cnab-relocate -`).

mod support;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use support::fixtures::skopeo_digest;
use support::registry::{Mode, TestRegistry};
use support::thick::Pack;
use support::{build_layout, bundle_json, mapped, populate, write_bundle, Run};

const KIB: usize = 1024;

/// Runs cnab-relocate with `input` on its standard input and an empty `TMPDIR` of its own;
/// returns the run and what was left in that `TMPDIR`.
fn piped(args: &[&str], input: Vec<u8>) -> (Run, usize) {
    let config = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut child = support::command(config.path())
        .args(args)
        .env("TMPDIR", tmp.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // written from another thread, as a pipe from curl would be, while the tool reads
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let left = std::fs::read_dir(tmp.path()).unwrap().count();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    (run, left)
}

#[test]
fn a_thin_bundle_piped_in_is_relocated() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 64 * KIB);
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(work.path(), &[&images.oci_plain.0], &[]);
    let relmap = work.path().join("relmap.json");
    let prefix = format!("{}/piped", target.host());
    let args = ["-", "-p", &prefix, "-m", relmap.to_str().unwrap()];
    let (run, left) = piped(&args, std::fs::read(&bundle).unwrap());
    run.assert_ok();
    assert_eq!(left, 0);
    let relocated = mapped(&relmap)[&images.oci_plain.0].as_str().unwrap().to_string();
    assert_eq!(
        skopeo_digest(&relocated, &target.skopeo_opts("src")),
        images.oci_plain.1
    );
}

fn thick_bundle(images: &support::LayoutImages) -> Vec<u8> {
    let image = serde_json::json!({"image": "example.com/app/multi:1.0", "contentDigest": images.multi});
    let bundle = bundle_json(image, &[]);
    Pack::new(&images.layout.path, bundle).tgz()
}

#[test]
fn a_thick_bundle_piped_in_is_relocated_and_its_spooled_copy_removed() {
    let target = TestRegistry::start(Mode::Plain);
    let images = build_layout(256 * KIB);
    let work = tempfile::tempdir().unwrap();
    let relmap = work.path().join("relmap.json");
    let prefix = format!("{}/piped", target.host());
    let args = ["-", "-p", &prefix, "-m", relmap.to_str().unwrap()];
    let (run, left) = piped(&args, thick_bundle(&images));
    run.assert_ok();
    assert_eq!(left, 0, "the spooled copy is gone");
    let relocated = mapped(&relmap)["example.com/app/multi:1.0"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(skopeo_digest(&relocated, &target.skopeo_opts("src")), images.multi);
}

#[test]
fn a_broken_pipe_names_standard_input_never_a_temporary_file() {
    let images = build_layout(256 * KIB);
    let mut tgz = thick_bundle(&images);
    tgz.truncate(tgz.len() / 2);
    let work = tempfile::tempdir().unwrap();
    let relmap = work.path().join("relmap.json");
    let args = ["-", "-p", "127.0.0.1:1/x", "-m", relmap.to_str().unwrap()];
    let (run, left) = piped(&args, tgz);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("thick bundle -"), "{}", run.stderr);
    assert!(!run.stderr.contains("cnab-relocate-stdin"), "{}", run.stderr);
    assert!(!run.stderr.to_lowercase().contains("tmp"), "{}", run.stderr);
    assert_eq!(left, 0);
    assert!(!Path::new(&relmap).exists());
}

#[test]
fn standard_input_carries_the_bundle_or_a_password_not_both() {
    let work = tempfile::tempdir().unwrap();
    let relmap = work.path().join("relmap.json");
    let args = [
        "-",
        "-p",
        "127.0.0.1:1/x",
        "-m",
        relmap.to_str().unwrap(),
        "--dest-creds",
        "user",
        "--password-stdin",
    ];
    let (run, _) = piped(&args, b"secret\n".to_vec());
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--password-stdin"), "{}", run.stderr);
    assert!(!run.stderr.contains("secret"), "{}", run.stderr);
}

#[test]
fn a_signal_while_standard_input_is_spooled_leaves_nothing_in_tmpdir() {
    let config = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let relmap = work.path().join("relmap.json");
    let mut child = support::command(config.path())
        .args(["-", "-p", "127.0.0.1:1/x", "-m", relmap.to_str().unwrap()])
        .env("TMPDIR", tmp.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // the start of a gzip stream, and then the pipe stays open: the tool is spooling
    stdin.write_all(&[0x1f, 0x8b, 8, 0]).unwrap();
    stdin.write_all(&vec![0u8; 64 * KIB]).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_dir(tmp.path()).unwrap().count() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1, "spooling");
    std::thread::sleep(std::time::Duration::from_millis(200));
    support::fixtures::run(std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]));
    let status = child.wait().unwrap();
    drop(stdin);
    assert_eq!(status.code(), Some(143));
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "the spooled copy is removed"
    );
}
