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
