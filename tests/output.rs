//! What the user sees: `--json` for every outcome (exit 0, 1 and 2), and nothing before an
//! input error.

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use support::registry::{Mode, TestRegistry};
use support::{run_with, Run};

fn testdata(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(p)
}

const THICK: &str = "conformance/thick-hello-world.tgz";
const THIN: &str = "conformance/duffle-relocate/bundle.json";

fn run(args: &[&str]) -> Run {
    let config = tempfile::tempdir().unwrap();
    run_with(args, config.path(), &[])
}

/// A port on 127.0.0.1 that refuses connections.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Every line of standard output is one JSON object; the last is the summary.
fn json_lines(run: &Run) -> (Vec<serde_json::Value>, serde_json::Value) {
    let lines: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}\n{}", run.stdout)))
        .collect();
    assert!(
        lines.iter().all(|l| l.is_object() && l["event"].is_string()),
        "{}",
        run.stdout
    );
    let summary = lines
        .last()
        .cloned()
        .unwrap_or_else(|| panic!("no output: {}", run.stderr));
    assert_eq!(
        summary["event"], "summary",
        "the last line is the summary: {}",
        run.stdout
    );
    assert_eq!(
        lines.iter().filter(|l| l["event"] == "summary").count(),
        1,
        "{}",
        run.stdout
    );
    (lines, summary)
}

#[test]
fn json_at_exit_0_ends_with_a_successful_summary() {
    let target = TestRegistry::start(Mode::Plain);
    let work = tempfile::tempdir().unwrap();
    let relmap = work.path().join("relmap.json");
    let prefix = format!("{}/json", target.host());
    let bundle = testdata(THICK);
    let run = run(&[
        bundle.to_str().unwrap(),
        "-p",
        &prefix,
        "-m",
        relmap.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (events, summary) = json_lines(&run);
    assert!(events.iter().any(|e| e["event"] == "image_copied"), "{}", run.stdout);
    assert_eq!(summary["command"], "relocate");
    assert_eq!(summary["outcome"], "relocated");
    assert_eq!(summary["success"], true);
    assert_eq!(summary["exit_code"], 0);
    assert_eq!(summary["errors"], serde_json::json!([]));
    assert_eq!(summary["error"], serde_json::Value::Null);
    assert_eq!(summary["images"], 2);
    assert!(summary["bytes_sent"].as_u64().unwrap() > 0);
    assert_eq!(summary["relocation_mapping"], relmap.to_str().unwrap());
    assert!(relmap.exists());

    // again: nothing to send, still a summary
    let again = self::run(&[
        bundle.to_str().unwrap(),
        "-p",
        &prefix,
        "-m",
        relmap.to_str().unwrap(),
        "--json",
    ]);
    let (_, summary) = json_lines(&again);
    assert_eq!(summary["outcome"], "relocated");
    assert_eq!(summary["already_present"], 2);
    assert_eq!(summary["bytes_sent"], 0);
}

#[test]
fn json_at_exit_1_lists_every_failed_image() {
    let work = tempfile::tempdir().unwrap();
    let relmap = work.path().join("relmap.json");
    let prefix = format!("127.0.0.1:{}/json", closed_port());
    let bundle = testdata(THICK);
    let run = run(&[
        bundle.to_str().unwrap(),
        "-p",
        &prefix,
        "-m",
        relmap.to_str().unwrap(),
        "--json",
        "--retry-times",
        "0",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let (_, summary) = json_lines(&run);
    assert_eq!(summary["outcome"], "failed");
    assert_eq!(summary["success"], false);
    assert_eq!(summary["exit_code"], 1);
    let errors = summary["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "one per image: {summary}");
    for e in errors {
        assert!(e["image"].is_string() && e["relocated"].is_string(), "{e}");
        assert!(e["message"].as_str().unwrap().contains("127.0.0.1"), "{e}");
    }
    assert!(summary["error"].as_str().unwrap().contains("could not be relocated"));
    assert!(!relmap.exists());
}

#[test]
fn json_at_exit_2_is_one_summary_for_every_input_error() {
    let work = tempfile::tempdir().unwrap();
    let relmap = work.path().join("relmap.json");
    let relmap = relmap.to_str().unwrap();
    let thin = testdata(THIN);
    let thin = thin.to_str().unwrap();
    let thick = testdata(THICK);
    let thick = thick.to_str().unwrap();
    let invalid = work.path().join("invalid.json");
    std::fs::write(&invalid, br#"{"invocationImages":[{"image":"Bad/Upper"}]}"#).unwrap();
    let invalid = invalid.to_str().unwrap();
    let target = format!("127.0.0.1:{}/x", closed_port());
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (vec![invalid, "-p", &target, "-m", relmap], "relocate", "Bad/Upper"),
        (
            vec!["/nonexistent/b.json", "-p", &target, "-m", relmap],
            "relocate",
            "cannot read bundle",
        ),
        (
            vec![thin, "-p", "https://example.com/x", "-m", relmap],
            "relocate",
            "drop the scheme",
        ),
        (
            vec![thin, "-p", &target, "-m", relmap, "--bogus"],
            "relocate",
            "--bogus",
        ),
        (vec![thin, "-p", &target], "relocate", "--relocation-mapping"),
        (
            vec![thin, thin, "-p", &target, "-m", relmap],
            "relocate",
            "one bundle at a time",
        ),
        (
            vec![thin, "-p", &target, "-m", relmap, "--password-stdin"],
            "relocate",
            "--password-stdin",
        ),
        // found once the bundle is read, when the run would start
        (
            vec![thick, "-p", &target, "-m", "/nonexistent/relmap.json"],
            "relocate",
            "/nonexistent",
        ),
        (vec!["export", thick, "-o", relmap], "export", "thick bundle already"),
        (
            vec!["export", thin, "-o", relmap, "--concurrency", "0"],
            "export",
            "--concurrency",
        ),
    ];
    for (mut args, command, needle) in cases {
        args.push("--json");
        let run = run(&args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        let (lines, summary) = json_lines(&run);
        assert_eq!(lines.len(), 1, "{args:?}: only the summary: {}", run.stdout);
        assert_eq!(summary["command"], command, "{args:?}");
        assert_eq!(summary["outcome"], "input_error", "{args:?}");
        assert_eq!(summary["success"], false);
        assert_eq!(summary["exit_code"], 2);
        let errors = summary["errors"].as_array().unwrap();
        assert!(!errors.is_empty(), "{args:?}");
        assert!(
            errors.iter().any(|e| e["message"].as_str().unwrap().contains(needle)),
            "{args:?}: {needle} in {summary}"
        );
        assert!(!run.stdout.contains(".cnab-relocate-check"), "{}", run.stdout);
    }
}

#[test]
fn an_input_error_found_at_the_start_of_the_run_is_all_there_is_to_read() {
    let thick = testdata(THICK);
    let target = format!("127.0.0.1:{}/x", closed_port());
    let run = run(&[thick.to_str().unwrap(), "-p", &target, "-m", "/nonexistent/relmap.json"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.stdout, "", "no banner before an input error");
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    assert!(run.stderr.contains("/nonexistent"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("at path") && !run.stderr.contains(".cnab-relocate-check"),
        "no temporary file named: {}",
        run.stderr
    );
}

/// Relocates the conformance thick bundle into `target` under `path` with `extra` flags.
fn relocate_hello(target: &TestRegistry, path: &str, extra: &[&str]) -> (Run, tempfile::TempDir) {
    let work = tempfile::tempdir().unwrap();
    let relmap = work.path().join("relmap.json");
    let prefix = format!("{}/{path}", target.host());
    let bundle = testdata(THICK);
    let mut args = vec![bundle.to_str().unwrap(), "-p", &prefix, "-m", relmap.to_str().unwrap()];
    args.extend_from_slice(extra);
    (run(&args), work)
}

/// What a terminal is sent when cnab-relocate runs in one (`script` gives it a pseudo-terminal
/// of 40 rows and `cols` columns), with `env` set.
fn on_a_terminal(cols: u16, args: &[&str], env: &[(&str, &str)]) -> String {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let config = tempfile::tempdir().unwrap();
    let out = support::command(config.path()).get_program().to_owned();
    let inner = format!(
        "stty rows 40 cols {cols}; {} {}",
        out.to_str().unwrap(),
        quoted.join(" ")
    );
    let o = std::process::Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .env("DOCKER_CONFIG", config.path())
        .env("XDG_RUNTIME_DIR", config.path())
        .env("XDG_CONFIG_HOME", config.path())
        .env("CNAB_RELOCATE_CERTS_D", "")
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .env_remove("REGISTRY_AUTH_FILE")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn has_long_hex(text: &str) -> bool {
    text.split(|c: char| !c.is_ascii_hexdigit()).any(|run| run.len() >= 32)
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let args = ["/nonexistent/bundle.json", "-p", "example.com/x", "-m", "relmap.json"];
    let coloured = on_a_terminal(100, &args, &[]);
    assert!(
        coloured.contains("\x1b[1;31merror:\x1b[0m"),
        "red on a terminal: {coloured:?}"
    );
    let plain = on_a_terminal(100, &args, &[("NO_COLOR", "1")]);
    assert!(plain.contains("error: cannot read bundle"), "{plain:?}");
    assert!(
        !plain.contains('\x1b'),
        "NO_COLOR: no escape sequence at all: {plain:?}"
    );
    let piped = run(&args);
    assert!(
        piped.stderr.starts_with("error: ") && !piped.stderr.contains('\x1b'),
        "{:?}",
        piped.stderr
    );
}

#[test]
fn progress_on_a_terminal_is_redrawn_in_place_and_names_images() {
    let target = TestRegistry::start(Mode::Plain);
    let work = tempfile::tempdir().unwrap();
    // one image with an 8 MiB layer, named by a bare tag in the layout
    let layout = support::fixtures::Layout::init(work.path());
    layout.new_image("big");
    layout.insert("big", &support::fixtures::noise(3, 8 << 20), "/big.bin");
    let bundle_json = support::bundle_json(
        serde_json::json!({"image": "registry.example.com/some-team/a-rather-long-application-name:big", "imageType": "oci"}),
        &[],
    );
    let tgz = work.path().join("big.tgz");
    std::fs::write(&tgz, support::thick::Pack::new(&layout.path, bundle_json).tgz()).unwrap();
    let relmap = work.path().join("relmap.json");
    let prefix = format!("{}/terminal", target.host());
    let seen = on_a_terminal(
        72,
        &[tgz.to_str().unwrap(), "-p", &prefix, "-m", relmap.to_str().unwrap()],
        &[],
    );
    assert!(relmap.exists(), "{seen}");
    assert!(
        seen.contains("\x1b[2K") || seen.contains("\x1b[1A"),
        "bars redrawn in place: {seen:?}"
    );
    assert!(
        seen.contains("some-team/a-ra") && seen.contains("tion-name:big "),
        "bars name the image by repository:tag: {seen:?}"
    );
    assert!(!has_long_hex(&seen), "hex only as a short suffix: {seen:?}");
    assert!(seen.contains("relocated 1 image(s)"), "{seen:?}");
    // the lines that stay, one per image and the summary, fit the terminal (each is printed
    // after a cleared line, and a bar, starting with '[', is drawn again after it)
    let kept: Vec<&str> = seen
        .split("\x1b[2K")
        .filter(|s| s.starts_with("copied ") || s.starts_with("relocated "))
        .map(|s| s.split(['[', '\r', '\n']).next().unwrap())
        .collect();
    assert_eq!(kept.len(), 2, "{seen:?}");
    for line in kept {
        assert!(line.chars().count() <= 72, "{line:?} is wider than 72");
    }
}

#[test]
fn plain_lines_into_a_pipe_end_with_a_summary_line() {
    let target = TestRegistry::start(Mode::Plain);
    let (run, _work) = relocate_hello(&target, "summary", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stdout.contains('\x1b') && !run.stderr.contains('\x1b'));
    let last = run.stdout.lines().last().unwrap();
    for part in [
        "relocated 2 image(s) (2 copied, 0 already there)",
        "2 blob(s) sent, 0 mounted, 0 present",
        "3.9 KiB in ",
        "/s)",
        "mapping written to",
    ] {
        assert!(last.contains(part), "{part:?} in {last:?}");
    }
    // the per-image lines stay whole into a pipe
    assert!(run
        .stdout
        .contains("sha256:f54a58bc1aac5ea1a25d796ae155dc228b3f0e11d046ae276b39c4bf2f13d8c4: "));
}

#[test]
fn verbose_shows_each_request_and_very_verbose_its_headers_without_secrets() {
    let target = TestRegistry::start(Mode::Htpasswd);
    let creds = format!("{}:{}", support::registry::USER, support::registry::PASSWORD);
    let (run, _work) = relocate_hello(&target, "verbose", &["-v", "--dest-creds", &creds]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let port = target.host().rsplit(':').next().unwrap().to_string();
    let requests: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains(&format!(" 127.0.0.1:{port} /v2/")))
        .collect();
    let well_formed = |l: &&str| {
        let words: Vec<&str> = l.split_whitespace().collect();
        // INFO METHOD HOST:PORT PATH STATUS N ms
        words.len() == 7
            && ["GET", "HEAD", "POST", "PUT", "PATCH"].contains(&words[1])
            && words[4].len() == 3
            && words[4].parse::<u16>().is_ok()
            && words[5].parse::<u64>().is_ok()
            && words[6] == "ms"
    };
    assert!(
        requests.iter().filter(|l| well_formed(l)).count() >= 6,
        "{}",
        run.stderr
    );
    assert!(
        requests
            .iter()
            .any(|l| l.contains("PUT") && l.contains("/manifests/latest 201")),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("  > "), "no headers at -v");

    let (run, _work) = relocate_hello(&target, "very-verbose", &["-vv", "--dest-creds", &creds]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("  > authorization: Basic <redacted>"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("  < docker-distribution-api-version: registry/2.0"),
        "{}",
        run.stderr
    );
    let basic = support::basic_auth(support::registry::USER, support::registry::PASSWORD);
    for secret in [support::registry::PASSWORD, basic.as_str()] {
        assert!(
            !run.stderr.contains(secret) && !run.stdout.contains(secret),
            "{secret} leaked"
        );
    }
}

#[test]
fn quiet_prints_nothing_on_success() {
    let target = TestRegistry::start(Mode::Plain);
    for _ in 0..2 {
        let (run, _work) = relocate_hello(&target, "quiet", &["-q"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""));
    }
    // an export whose name duffle would not import warns, but not to the quiet
    let work = tempfile::tempdir().unwrap();
    let image = format!(
        "{}/quiet/library-hello-world-45c97d7ccdb3ca616c0753994b235672:latest",
        target.host()
    );
    let thin = work.path().join("bundle.json");
    std::fs::write(&thin, support::bundle_json(serde_json::json!({"image": image}), &[])).unwrap();
    let thin = thin.to_str().unwrap();
    let out = work.path().join("out.tar.gz");
    let out = out.to_str().unwrap();
    let loud = run(&["export", thin, "-o", out]);
    assert_eq!(loud.code, 0, "{}", loud.stderr);
    assert!(loud.stderr.contains("warning:"), "{}", loud.stderr);
    let quiet = run(&["export", thin, "-o", out, "--force", "-q"]);
    assert_eq!(quiet.code, 0, "{}", quiet.stderr);
    assert_eq!((quiet.stdout.as_str(), quiet.stderr.as_str()), ("", ""));
}

#[test]
fn token_requests_are_shown_at_v_and_their_tokens_never() {
    let target = TestRegistry::start(Mode::Token);
    let creds = format!("{}:{}", support::registry::USER, support::registry::PASSWORD);
    let (run, _work) = relocate_hello(&target, "token-verbose", &["-vv", "--dest-creds", &creds]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .lines()
            .any(|l| l.contains("GET 127.0.0.1:") && l.contains("/token 200")),
        "a line for the token request: {}",
        run.stderr
    );
    let basic = support::basic_auth(support::registry::USER, support::registry::PASSWORD);
    for secret in [support::registry::PASSWORD, basic.as_str(), "Bearer ey"] {
        assert!(!run.stderr.contains(secret), "{secret} leaked: {}", run.stderr);
    }
}
