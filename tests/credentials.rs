//! Credentials the way people keep them, against real htpasswd registries: containers auth
//! files in skopeo's order, `--dest-creds`/`--src-creds`, `--password-stdin`; never printed.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use support::registry::{Mode, TestRegistry, PASSWORD, USER};
use support::{basic_auth, command, docker_config, mapped, populate, run_with, write_bundle, Run};

const KIB: usize = 1024;

/// An `auths` file (containers-auth.json or Docker's config.json) at `path`.
fn write_auths(path: &Path, auths: serde_json::Value) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::json!({ "auths": auths }).to_string()).unwrap();
}

fn entry(password: &str) -> serde_json::Value {
    serde_json::json!({"auth": basic_auth(USER, password)})
}

/// Runs with `stdin` piped in.
fn run_with_stdin(args: &[&str], docker_config: &Path, stdin: &[u8]) -> Run {
    let mut child = command(docker_config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn assert_no_secret(run: &Run) {
    let all = format!("{}{}", run.stdout, run.stderr);
    for secret in [PASSWORD.to_string(), basic_auth(USER, PASSWORD)] {
        assert!(!all.contains(&secret), "secret printed: {all}");
    }
}

#[test]
fn auth_files_are_read_in_skopeos_order() {
    let source = TestRegistry::start(Mode::Plain);
    let target = TestRegistry::start(Mode::Htpasswd);
    let images = populate(&source, 64 * KIB);
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(work.path(), &[&images.oci_plain.0], &[]);
    let host = target.host();
    // every run has a Docker config with a wrong password: what is found before it wins
    let home = tempfile::tempdir().unwrap();
    write_auths(
        &home.path().join("config.json"),
        serde_json::json!({ &host: entry("wrong") }),
    );
    let runtime = home.path().join("runtime/containers/auth.json");
    let config_home = home.path().join("config/containers/auth.json");
    let explicit = home.path().join("explicit.json");
    let env_runtime = ("XDG_RUNTIME_DIR", home.path().join("runtime"));
    let env_config = ("XDG_CONFIG_HOME", home.path().join("config"));
    let relocate = |n: usize, extra: &[&str], env: &[(&str, &Path)]| {
        let relmap = work.path().join(format!("relmap-{n}.json"));
        let prefix = format!("{host}/case{n}");
        let mut args = vec![
            bundle.to_str().unwrap(),
            "-p",
            &prefix,
            "-m",
            relmap.to_str().unwrap(),
            "-v",
        ];
        args.extend_from_slice(extra);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.to_str().unwrap())).collect();
        let run = run_with(&args, home.path(), &env);
        assert_no_secret(&run);
        (run, relmap)
    };
    let succeeds = |n: usize, extra: &[&str], env: &[(&str, &Path)], why: &str| {
        let (run, relmap) = relocate(n, extra, env);
        assert_eq!(run.code, 0, "{why}: {}", run.stderr);
        assert!(mapped(&relmap).contains_key(&images.oci_plain.0), "{why}");
    };
    let refused = |n: usize, extra: &[&str], env: &[(&str, &Path)], why: &str| {
        let (run, relmap) = relocate(n, extra, env);
        assert_eq!(run.code, 1, "{why}: {}", run.stderr);
        assert!(run.stderr.contains("401"), "{why}: {}", run.stderr);
        assert!(!relmap.exists(), "{why}");
    };

    refused(0, &[], &[], "only the Docker config, with the wrong password");
    // ~/.config/containers/auth.json before Docker's config
    write_auths(&config_home, serde_json::json!({ &host: entry(PASSWORD) }));
    succeeds(1, &[], &[(env_config.0, &env_config.1)], "config home");
    // $XDG_RUNTIME_DIR/containers/auth.json before that
    write_auths(&config_home, serde_json::json!({ &host: entry("wrong") }));
    write_auths(&runtime, serde_json::json!({ &host: entry(PASSWORD) }));
    let both: &[(&str, &Path)] = &[(env_runtime.0, &env_runtime.1), (env_config.0, &env_config.1)];
    succeeds(2, &[], both, "runtime dir");
    // an auth file given explicitly is the only file read: the good ones are ignored
    write_auths(&explicit, serde_json::json!({ &host: entry("wrong") }));
    refused(3, &["--authfile", explicit.to_str().unwrap()], both, "--authfile");
    refused(
        4,
        &[],
        &[both[0], both[1], ("REGISTRY_AUTH_FILE", &explicit)],
        "REGISTRY_AUTH_FILE",
    );
    // and wins when it holds the right password, over wrong ones everywhere else
    write_auths(&runtime, serde_json::json!({ &host: entry("wrong") }));
    write_auths(&explicit, serde_json::json!({ &host: entry(PASSWORD) }));
    succeeds(5, &["--authfile", explicit.to_str().unwrap()], both, "--authfile");
    succeeds(
        6,
        &[],
        &[both[0], both[1], ("REGISTRY_AUTH_FILE", &explicit)],
        "REGISTRY_AUTH_FILE",
    );
    // keys with a repository path: the most specific one for the repository written to
    write_auths(
        &explicit,
        serde_json::json!({ &host: entry("wrong"), format!("{host}/case7"): entry(PASSWORD) }),
    );
    succeeds(7, &["--authfile", explicit.to_str().unwrap()], &[], "namespace key");
    // a named auth file that does not exist is an error, as in skopeo
    let (run, _) = relocate(8, &["--authfile", "/nonexistent/auth.json"], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("/nonexistent/auth.json"), "{}", run.stderr);
}

#[test]
fn explicit_credentials_win_come_from_stdin_and_are_never_printed() {
    let source = TestRegistry::start(Mode::Htpasswd);
    let target = TestRegistry::start(Mode::Htpasswd);
    let images = populate(&source, 64 * KIB);
    let work = tempfile::tempdir().unwrap();
    let bundle = write_bundle(work.path(), &[&images.oci_plain.0], &[]);
    // the files say wrong passwords for both registries
    let wrong = docker_config(serde_json::json!({
        source.host(): entry("wrong"),
        target.host(): entry("wrong"),
    }));
    let creds = format!("{USER}:{PASSWORD}");
    let relmap = work.path().join("relmap.json");
    let base = |prefix: &str| {
        vec![
            bundle.to_str().unwrap().to_string(),
            "-p".into(),
            format!("{}/{prefix}", target.host()),
            "-m".into(),
            relmap.to_str().unwrap().to_string(),
            "-vv".into(),
        ]
    };
    let run = |args: Vec<String>, stdin: &[u8]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = run_with_stdin(&args, wrong.path(), stdin);
        assert_no_secret(&run);
        run
    };

    // files only: refused
    let r = run(base("a"), b"");
    assert_eq!(r.code, 1, "{}", r.stderr);
    // --src-creds alone: the source is read, the target still refuses the file's password
    let r = run([base("a"), vec!["--src-creds".into(), creds.clone()]].concat(), b"");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains(&target.host()), "{}", r.stderr);
    // both given on the command line
    let r = run(
        [
            base("b"),
            vec![
                "--src-creds".into(),
                creds.clone(),
                "--dest-creds".into(),
                creds.clone(),
            ],
        ]
        .concat(),
        b"",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(mapped(&relmap).contains_key(&images.oci_plain.0));
    std::fs::remove_file(&relmap).unwrap();
    // the target's password from standard input, as CI secrets are passed
    let r = run(
        [
            base("c"),
            vec![
                "--src-creds".into(),
                creds.clone(),
                "--dest-creds".into(),
                USER.into(),
                "--password-stdin".into(),
                "--json".into(),
            ],
        ]
        .concat(),
        format!("{PASSWORD}\n").as_bytes(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(mapped(&relmap).contains_key(&images.oci_plain.0));
    // a user without a password and no --password-stdin: said before anything is contacted
    let r = run([base("d"), vec!["--dest-creds".into(), USER.into()]].concat(), b"");
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--password-stdin"), "{}", r.stderr);
}

#[test]
fn source_credentials_go_to_one_registry_and_export_takes_them_too() {
    let source = TestRegistry::start(Mode::Htpasswd);
    let other = TestRegistry::start(Mode::Plain);
    let images = populate(&source, 64 * KIB);
    let work = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let creds = format!("{USER}:{PASSWORD}");

    let bundle = write_bundle(work.path(), &[&images.oci_plain.0], &[]);
    let out = work.path().join("out.tgz");
    let run = run_with_stdin(
        &[
            "export",
            bundle.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--src-creds",
            USER,
            "--password-stdin",
        ],
        empty.path(),
        format!("{PASSWORD}\r\n").as_bytes(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_no_secret(&run);
    assert!(out.exists());

    // images from two registries: whose would the credentials be? Refused before any contact
    let elsewhere = images.oci_plain.0.replace(&source.host(), &other.host());
    let two = write_bundle(work.path(), &[&images.oci_plain.0, &elsewhere], &[]);
    let relmap = work.path().join("relmap.json");
    let prefix = "127.0.0.1:1/never-contacted";
    let run = run_with(
        &[
            two.to_str().unwrap(),
            "-p",
            prefix,
            "-m",
            relmap.to_str().unwrap(),
            "--src-creds",
            &creds,
        ],
        empty.path(),
        &[],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--authfile"), "{}", run.stderr);
    assert_no_secret(&run);
    let run = run_with(
        &[
            "export",
            two.to_str().unwrap(),
            "-o",
            work.path().join("two.tgz").to_str().unwrap(),
            "--src-creds",
            &creds,
        ],
        empty.path(),
        &[],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(!work.path().join("two.tgz").exists());
}
