//! `cnab-relocate sync CONFIG.yaml` (SYNC.md) against real registries on 127.0.0.1: a shared
//! source with several namespaces, SYNC.md §6's tags, a multi-arch index and a paged catalog
//! (tests/support/sync_fixtures.rs); fresh targets per test, plain, htpasswd and self-signed
//! TLS. What a run left behind is read back over HTTP (catalog, tags/list, manifest digests);
//! what it sent is counted by the fault proxy put in front of a registry.
//!
//! The values checked here are SYNC.md's (copied, not read at run time).

mod support;

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use support::proxy::Proxy;
use support::registry::{Mode, TestRegistry, PASSWORD, USER};
use support::sync_fixtures::{filler_repo, source, write_config, writes, Peek, FILLERS, PLATFORMS};
use support::{run_with, Run};

/// Runs `cnab-relocate sync ARGS…` with no credentials from the machine: empty
/// `DOCKER_CONFIG`, `XDG_RUNTIME_DIR`, `XDG_CONFIG_HOME` and `HOME`.
fn sync(args: &[&str]) -> Run {
    let home = tempfile::tempdir().unwrap();
    let home_str = home.path().to_str().unwrap();
    run_with(&[&["sync"], args].concat(), home.path(), &[("HOME", home_str)])
}

fn proxy_to(reg: &TestRegistry) -> Proxy {
    let scheme = if reg.tls() { "https" } else { "http" };
    Proxy::start(&format!("{scheme}://{}", reg.host()))
}

/// stdout's lines, sorted, each checked to be there once.
fn sorted_lines(run: &Run) -> Vec<String> {
    let mut lines: Vec<String> = run.stdout.lines().map(str::to_string).collect();
    lines.sort();
    let distinct: BTreeSet<&String> = lines.iter().collect();
    assert_eq!(distinct.len(), lines.len(), "a pair printed twice:\n{}", run.stdout);
    lines
}

fn sorted(v: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = v.into_iter().collect();
    v.sort();
    v
}

/// The `--dry-run` line of a pair: `TASK: SOURCE -> TARGET` (SYNC.md §2).
fn line(task: &str, source: &str, target: &str) -> String {
    format!("{task}: {source} -> {target}")
}

fn summary(run: &Run) -> serde_json::Value {
    let events = run.events();
    let last = events
        .last()
        .unwrap_or_else(|| panic!("no events: {}", run.stderr))
        .clone();
    assert_eq!(last["event"], "summary", "the last line is the summary: {}", run.stdout);
    last
}

fn assert_summary(run: &Run, success: bool, tasks: u64, pairs: u64, copied: u64, present: u64, failed: u64) {
    let s = summary(run);
    let got = (
        s["success"].as_bool(),
        s["tasks"].as_u64(),
        s["pairs"].as_u64(),
        s["copied"].as_u64(),
        s["already_present"].as_u64(),
        s["failed"].as_u64(),
    );
    assert_eq!(
        got,
        (
            Some(success),
            Some(tasks),
            Some(pairs),
            Some(copied),
            Some(present),
            Some(failed)
        ),
        "summary (success, tasks, pairs, copied, already_present, failed): {s}\nstderr: {}",
        run.stderr
    );
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// The source, the catalog paging as the tests need it: 105 repositories, distribution's
/// first page of 100 with a `Link`, `tools/*` only on the second.
#[test]
fn the_source_catalog_pages() {
    let src = source();
    let (page, link) = src.peek().catalog_first_page();
    assert_eq!(page.len(), 100, "{page:?}");
    assert!(link.is_some_and(|l| l.contains("rel=\"next\"")));
    assert!(!page
        .iter()
        .any(|r| r.starts_with("tools/") || r.starts_with("library/")));
    let all = src.peek().catalog();
    assert_eq!(all.len(), FILLERS + 5, "{all:?}");
}

/// SYNC.md §5: a regex `from` over the paged catalog with a plain `to` (prefix), a regex `to`,
/// a plain rename, a plain `from` with a regex `to`, no `to`; §2 dry run (exactly the pairs,
/// nothing written anywhere), `--json` (sync_planned, relocation events with `task`, summary),
/// the exact target afterwards with the source's digests, and a second run that writes
/// nothing.
#[test]
fn mappings_copy_exactly_the_mapped_tags_keeping_digests_and_a_second_run_writes_nothing() {
    let src = source();
    let target = TestRegistry::start(Mode::Plain);
    let sp = Proxy::start(&src.url());
    let tp = proxy_to(&target);
    let (s, t) = (sp.host(), tp.host());
    let work = tempfile::tempdir().unwrap();
    let config = write_config(
        work.path(),
        "sync.yaml",
        &format!(
            r#"relay: skopeo
tasks:
- name: mirror
  interval: 60
  source:
    registry: {s}
  target:
    registry: {t}
  mappings:
  - from: 'regex:(apps|tools)/.*'
    to: mirror
    tags: ['regex: 1\.0', 'regex: latest']
  - from: 'regex:tools/.*'
    to: 'regex:^/tools/(.*),ext/$1-tool'
    tags: [1.0]
  - from: apps/web
    to: web-copy
    tags: [v1.5.0]
  - from: /apps/api
    to: 'regex:api,service'
    tags: ['semver: >=2.0.0']
  - from: 'regex:library/.*'
    tags: [latest]
  - from: apps/web
    to: web-copy
    tags: ['regex: v.*']
"#
        ),
    );
    // target repository:tag → source repository:tag
    let expected: BTreeMap<&str, &str> = [
        ("mirror/apps/api:1.0", "apps/api:1.0"),
        ("mirror/apps/api:latest", "apps/api:latest"),
        ("mirror/apps/web:1.0", "apps/web:1.0"),
        ("mirror/apps/web:latest", "apps/web:latest"),
        ("mirror/tools/cli:1.0", "tools/cli:1.0"),
        ("mirror/tools/cli:latest", "tools/cli:latest"),
        ("mirror/tools/lint:1.0", "tools/lint:1.0"),
        ("ext/cli-tool:1.0", "tools/cli:1.0"),
        ("ext/lint-tool:1.0", "tools/lint:1.0"),
        ("web-copy:v1.5.0", "apps/web:v1.5.0"),
        ("apps/service:2.0", "apps/api:2.0"),
        ("library/base:latest", "library/base:latest"),
    ]
    .into_iter()
    .collect();
    let pairs: Vec<(String, String)> = expected
        .iter()
        .map(|(to, from)| (format!("{s}/{from}"), format!("{t}/{to}")))
        .collect();
    let lines = sorted(pairs.iter().map(|(a, b)| line("mirror", a, b)));

    // a dry run prints exactly the pairs and writes nothing anywhere
    let dry = sync(&[&config, "--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert_eq!(sorted_lines(&dry), lines, "stderr: {}", dry.stderr);
    assert!(sp.count("GET", "/v2/_catalog") > 0, "the dry run listed the source");
    assert_eq!(writes(&sp.log()), Vec::<String>::new(), "dry run wrote to the source");
    assert_eq!(writes(&tp.log()), Vec::<String>::new(), "dry run wrote to the target");
    assert!(target.catalog().is_empty());

    // the real run, as JSON
    let run = sync(&[&config, "--json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let events = run.events();
    let planned: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["event"] == "sync_planned")
        .map(|e| {
            assert_eq!(e["task"], "mirror", "{e}");
            (
                e["source"].as_str().unwrap().to_string(),
                e["target"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut planned_sorted = planned.clone();
    planned_sorted.sort();
    let mut pairs_sorted = pairs.clone();
    pairs_sorted.sort();
    assert_eq!(planned_sorted, pairs_sorted, "one sync_planned per pair");
    let first_planned = events.iter().position(|e| e["event"] == "sync_planned").unwrap();
    let mut copied = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let kind = e["event"].as_str().unwrap_or_default();
        if kind.starts_with("image_") || kind.starts_with("blob_") {
            assert_eq!(e["task"], "mirror", "relocation events carry the task: {e}");
            assert!(i > first_planned, "planned before copied");
        }
        if kind == "image_copied" {
            copied.push((
                e["image"].as_str().unwrap().to_string(),
                e["relocated"].as_str().unwrap().to_string(),
            ));
        }
    }
    copied.sort();
    assert_eq!(copied, pairs_sorted, "image_copied: image = source, relocated = target");
    assert_summary(&run, true, 1, 12, 12, 0, 0);

    // nine target repositories share the base layer: each distinct blob is uploaded once, the
    // rest mounted (SYNC.md §1.4), even with the pairs copied concurrently
    let mut uploads: BTreeMap<String, usize> = BTreeMap::new();
    let mut mounts = 0;
    for l in tp.log() {
        if !l.path.contains("/blobs/uploads") {
            continue;
        }
        if l.method == "POST" && l.path.contains("mount=") && l.status == 201 {
            mounts += 1;
        }
        if matches!(l.method.as_str(), "PUT" | "POST") && l.status == 201 && !l.path.contains("mount=") {
            if let Some(q) = l.path.split("digest=").nth(1) {
                let d = q.split('&').next().unwrap();
                *uploads.entry(d[d.len().saturating_sub(64)..].to_string()).or_default() += 1;
            }
        }
    }
    assert!(!uploads.is_empty(), "{:?}", tp.log());
    let twice: Vec<&String> = uploads.iter().filter(|(_, n)| **n > 1).map(|(d, _)| d).collect();
    assert!(twice.is_empty(), "uploaded more than once: {twice:?}");
    assert!(
        mounts >= 8,
        "the shared base mounted into the other repositories: {mounts} mounts"
    );

    // exactly the mapped tags, with the source's digests; the index whole, children included
    let peek = Peek::of(&target);
    let want: BTreeMap<String, String> = expected
        .iter()
        .map(|(to, from)| (to.to_string(), src.digest(from)))
        .collect();
    assert_eq!(peek.inventory(), want);
    assert_eq!(want["library/base:latest"], src.index);
    for child in &src.children {
        assert_eq!(peek.digest("library/base", child).as_ref(), Some(child));
    }

    // a second run finds every tag in place: no upload, no mount, no manifest PUT
    tp.clear_log();
    let again = sync(&[&config, "--json"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(!tp.log().is_empty(), "the second run looked at the target");
    assert_eq!(writes(&tp.log()), Vec::<String>::new(), "the second run wrote");
    assert_summary(&again, true, 1, 12, 0, 12, 0);
    assert_eq!(again.count_events("image_already_present"), 12);
    assert_eq!(peek.inventory(), want);

    // text: a line per pair naming its task, source and target, and its result (SYNC.md §2)
    let text = sync(&[&config]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    for (a, b) in &pairs {
        let head = line("mirror", a, b);
        assert!(
            text.stdout
                .lines()
                .any(|l| l.starts_with(&head) && l.contains("already present")),
            "{head}: already present\n{}",
            text.stdout
        );
    }
}

/// SYNC.md §6's example table, one task per row over `apps/web` (tags 1.0 1.1 2.0 latest
/// v1.5.0 2.0.0-rc1), planned in one dry run; then the pins and `keep: latest 2` for real, and
/// a verbatim tag the source lacks.
#[test]
fn tag_selectors_select_what_sync_md_says() {
    let src = source();
    let target = TestRegistry::start(Mode::Plain);
    let sp = Proxy::start(&src.url());
    let tp = proxy_to(&target);
    let (s, t) = (sp.host(), tp.host());
    let d11 = src.digest("apps/web:1.1");
    let d20 = src.digest("apps/web:2.0");
    let absent = format!("sha256:{}", "ab".repeat(32));
    let rows: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "all",
            String::new(),
            vec!["1.0", "1.1", "2.0", "latest", "v1.5.0", "2.0.0-rc1"],
        ),
        (
            "empty",
            "tags: []".into(),
            vec!["1.0", "1.1", "2.0", "latest", "v1.5.0", "2.0.0-rc1"],
        ),
        ("verbatim", "tags: [1.0, latest]".into(), vec!["1.0", "latest"]),
        // YAML 1.1 scalars keep their text: 1.10 is not 1.1 (planned without a listing)
        ("text", "tags: [1.0, 1.10]".into(), vec!["1.0", "1.10"]),
        (
            "semver",
            "tags: ['semver: >=1.1.0 <2.0.0']".into(),
            vec!["1.1", "v1.5.0", "2.0.0-rc1"],
        ),
        ("regex", r"tags: ['regex: 1\..*']".into(), vec!["1.0", "1.1"]),
        ("not", r"tags: ['regex: !.*\..*']".into(), vec!["latest"]),
        (
            "keep",
            r"tags: ['semver: >=1.0.0', 'keep: .*\.0', latest]".into(),
            vec!["1.0", "2.0", "v1.5.0", "latest"],
        ),
        (
            "latest2",
            "tags: ['semver: >=0.0.0', 'keep: latest 2', latest]".into(),
            vec!["2.0", "2.0.0-rc1", "latest"],
        ),
        ("pins", format!("tags: ['stable@{d11}', '{d20}']"), vec![]),
    ];
    let mut config = String::from("tasks:\n");
    let mut expected = Vec::new();
    for (name, tags, selected) in &rows {
        config.push_str(&format!(
            "- name: {name}\n  source: {{registry: '{s}'}}\n  target: {{registry: '{t}'}}\n  mappings:\n  - from: apps/web\n    to: sel/{name}\n    {tags}\n"
        ));
        for tag in selected {
            expected.push(line(
                name,
                &format!("{s}/apps/web:{tag}"),
                &format!("{t}/sel/{name}:{tag}"),
            ));
        }
    }
    config.push_str(&format!(
        "- name: missing\n  source: {{registry: '{s}'}}\n  target: {{registry: '{t}'}}\n  mappings:\n  - from: apps/web\n    to: sel/missing\n    tags: [1.0, 9.9, '{absent}']\n"
    ));
    // pins: read by digest; `tag@digest` written under the tag, a bare digest by digest
    expected.push(line(
        "pins",
        &format!("{s}/apps/web@{d11}"),
        &format!("{t}/sel/pins:stable"),
    ));
    expected.push(line(
        "pins",
        &format!("{s}/apps/web@{d20}"),
        &format!("{t}/sel/pins@{d20}"),
    ));
    // a verbatim tag or pin is planned without being checked against the listing
    for tag in ["1.0", "9.9"] {
        expected.push(line(
            "missing",
            &format!("{s}/apps/web:{tag}"),
            &format!("{t}/sel/missing:{tag}"),
        ));
    }
    expected.push(line(
        "missing",
        &format!("{s}/apps/web@{absent}"),
        &format!("{t}/sel/missing@{absent}"),
    ));
    expected.sort();
    let work = tempfile::tempdir().unwrap();
    let config = write_config(work.path(), "tags.yaml", &config);

    let dry = sync(&[&config, "--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert_eq!(sorted_lines(&dry), expected, "stderr: {}", dry.stderr);
    assert_eq!(writes(&sp.log()), Vec::<String>::new());
    assert_eq!(writes(&tp.log()), Vec::<String>::new());

    let run = sync(&[&config, "--task", "pins", "--task", "latest2"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let peek = Peek::of(&target);
    let want: BTreeMap<String, String> = [
        ("sel/pins:stable".to_string(), d11.clone()),
        ("sel/latest2:2.0".to_string(), d20.clone()),
        ("sel/latest2:2.0.0-rc1".to_string(), src.digest("apps/web:2.0.0-rc1")),
        ("sel/latest2:latest".to_string(), src.digest("apps/web:latest")),
    ]
    .into_iter()
    .collect();
    assert_eq!(peek.inventory(), want);
    assert_eq!(peek.digest("sel/pins", &d20), Some(d20.clone()), "pushed by digest");
    assert_eq!(peek.tags("sel/pins"), vec!["stable".to_string()], "no invented tag");

    // a verbatim tag the source lacks fails its pair (exit 1); the other pair is copied
    let run = sync(&[&config, "--task", "missing"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("apps/web:9.9"),
        "the failed pair is named: {}",
        run.stderr
    );
    assert!(run.stderr.contains(&absent), "the failed pin is named: {}", run.stderr);
    assert_eq!(
        peek.digest("sel/missing", "1.0"),
        Some(src.digest("apps/web:1.0")),
        "a failed pair does not stop the others"
    );
    assert_eq!(peek.tags("sel/missing"), vec!["1.0".to_string()]);
}

/// SYNC.md §7: an index is copied whole with its digest (`platform` absent or `all`);
/// `platform: OS/ARCH[/VARIANT]` puts the matching child's digest under the tag; a source that
/// is not an index is copied as it is; `sync_planned` carries the platform.
#[test]
fn an_index_is_copied_whole_unless_a_platform_picks_one_child() {
    let src = source();
    let target = TestRegistry::start(Mode::Plain);
    let sp = Proxy::start(&src.url());
    let (s, t) = (sp.host(), target.host());
    let work = tempfile::tempdir().unwrap();
    let config = write_config(
        work.path(),
        "platforms.yaml",
        &format!(
            r#"tasks:
- name: platforms
  source: &src
    registry: {s}
  target:
    registry: {t}
  mappings:
  - {{from: library/base, to: whole, tags: [latest]}}
  - {{from: library/base, to: all, tags: [latest], platform: all}}
  - {{from: library/base, to: armv7, tags: [latest], platform: linux/arm/v7}}
  - {{from: library/base, to: arm64, tags: [latest], platform: linux/arm64}}
  - {{from: library/base, to: single, tags: ['1.0'], platform: linux/arm64}}
"#
        ),
    );
    let dry = sync(&[&config, "--dry-run", "--json"]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    let planned: BTreeMap<String, Option<String>> = dry
        .events()
        .iter()
        .filter(|e| e["event"] == "sync_planned")
        .map(|e| {
            (
                e["target"].as_str().unwrap().to_string(),
                e["platform"].as_str().map(str::to_string),
            )
        })
        .collect();
    assert_eq!(planned.len(), 5, "{}", dry.stdout);
    let others: Vec<String> = dry
        .events()
        .iter()
        .map(|e| e["event"].as_str().unwrap_or_default().to_string())
        .filter(|k| k.starts_with("image_") || k.starts_with("blob_"))
        .collect();
    assert_eq!(
        others,
        Vec::<String>::new(),
        "a dry run's only per-pair events are sync_planned"
    );
    assert_eq!(planned[&format!("{t}/armv7:latest")].as_deref(), Some("linux/arm/v7"));
    assert_eq!(planned[&format!("{t}/arm64:latest")].as_deref(), Some("linux/arm64"));
    assert_eq!(planned[&format!("{t}/single:1.0")].as_deref(), Some("linux/arm64"));
    assert_eq!(writes(&sp.log()), Vec::<String>::new());

    let run = sync(&[&config]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let peek = Peek::of(&target);
    let arm64 = PLATFORMS.iter().position(|p| p.1 == "arm64").unwrap();
    let armv7 = PLATFORMS.iter().position(|p| p.2 == Some("v7")).unwrap();
    let want: BTreeMap<String, String> = [
        ("whole:latest", src.index.clone()),
        ("all:latest", src.index.clone()),
        ("armv7:latest", src.children[armv7].clone()),
        ("arm64:latest", src.children[arm64].clone()),
        ("single:1.0", src.digest("library/base:1.0")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(peek.inventory(), want);
    for repo in ["whole", "all"] {
        for child in &src.children {
            assert_eq!(peek.digest(repo, child).as_ref(), Some(child), "{repo}: every child");
        }
    }
}

/// SYNC.md §2 `--task EXPR`: a whole-name regular expression, repeatable (union), `--run` an
/// alias; no match is exit 2 naming the tasks, with no registry contacted. A regex `from` sees
/// every page of the catalog.
#[test]
fn task_selects_whole_names() {
    let src = source();
    let target = TestRegistry::start(Mode::Plain);
    let sp = Proxy::start(&src.url());
    let tp = proxy_to(&target);
    let (s, t) = (sp.host(), tp.host());
    let task = |name: &str, from: &str, to: &str| {
        format!("- name: {name}\n  source: {{registry: '{s}'}}\n  target: {{registry: '{t}'}}\n  mappings:\n  - {{from: '{from}', to: '{to}', tags: [1.0]}}\n")
    };
    let work = tempfile::tempdir().unwrap();
    let config = write_config(
        work.path(),
        "tasks.yaml",
        &format!(
            "tasks:\n{}{}{}{}{}",
            task("a", "apps/web", "sel-a"),
            task("ab", "apps/api", "sel-ab"),
            task("b", "tools/cli", "sel-b"),
            task("fillers", "regex:filler/.*", "copies"),
            task("none", "regex:nothing/.*", "void"),
        ),
    );
    let a = line("a", &format!("{s}/apps/web:1.0"), &format!("{t}/sel-a:1.0"));
    let ab = line("ab", &format!("{s}/apps/api:1.0"), &format!("{t}/sel-ab:1.0"));
    let b = line("b", &format!("{s}/tools/cli:1.0"), &format!("{t}/sel-b:1.0"));

    let run = sync(&[&config, "--dry-run", "--task", "a"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(sorted_lines(&run), vec![a.clone()], "--task a does not select ab");
    let run = sync(&[&config, "--dry-run", "--task", "a", "--run", "b"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(sorted_lines(&run), sorted([a.clone(), b.clone()]));
    let run = sync(&[&config, "--dry-run", "--task", "a.*"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(sorted_lines(&run), sorted([a.clone(), ab.clone()]));

    // all 100 fillers, across both catalog pages
    let run = sync(&[&config, "--dry-run", "--task", "fillers"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let want = sorted((0..FILLERS).map(|i| {
        let r = filler_repo(i);
        line("fillers", &format!("{s}/{r}:1.0"), &format!("{t}/copies/{r}:1.0"))
    }));
    assert_eq!(sorted_lines(&run), want);
    assert_eq!(writes(&sp.log()), Vec::<String>::new());
    assert_eq!(writes(&tp.log()), Vec::<String>::new());

    // a task whose mappings match nothing succeeds (with a warning) and plans no pair
    let run = sync(&[&config, "--dry-run", "--task", "none"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "", "{}", run.stderr);
    let run = sync(&[&config, "--task", "none"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.is_empty(), "a warning says it matched nothing");

    // nothing matches: exit 2, the names listed, no registry contacted
    sp.clear_log();
    tp.clear_log();
    let run = sync(&[&config, "--task", "nope"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    for name in ["ab", "fillers"] {
        assert!(run.stderr.contains(name), "task names listed: {}", run.stderr);
    }
    assert!(sp.log().is_empty() && tp.log().is_empty(), "a registry was contacted");
    // a real run of one task copies only it
    let run = sync(&[&config, "--task", "b"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        Peek::of(&target).inventory().keys().cloned().collect::<Vec<_>>(),
        vec!["sel-b:1.0".to_string()]
    );
}

/// SYNC.md §2/§3: an invalid configuration is exit 2 before any registry is contacted (not
/// even a GET), dry run or not, whichever tasks `--task` selects.
#[test]
fn bad_configurations_exit_2_without_contacting_any_registry() {
    let src = source();
    let sp = Proxy::start(&src.url());
    let tp = Proxy::start(&src.url());
    let (s, t) = (sp.host(), tp.host());
    let head =
        format!("tasks:\n- name: one\n  source:\n    registry: {s}\n  target:\n    registry: {t}\n  mappings:\n");
    let work = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, String)> = vec![
        (
            "unknown key",
            format!("{head}  - from: apps/web\n    tags: [1.0]\n  - from: apps/api\n    tagz: [1.0]\n"),
        ),
        ("bad regex", format!("{head}  - from: 'regex:apps/(web'\n    tags: [1.0]\n")),
        (
            "bad semver range",
            format!("{head}  - from: apps/web\n    tags: ['semver: >=1.0.0 <banana']\n"),
        ),
        (
            "task without target",
            format!("tasks:\n- name: one\n  source:\n    registry: {s}\n  mappings:\n  - from: apps/web\n"),
        ),
        (
            "a bad task beside a selected good one",
            format!("{head}  - from: apps/web\n    tags: [1.0]\n- name: two\n  source:\n    registry: {s}\n  target:\n    registry: {t}\n  mappings:\n  - from: 'regex:(('\n"),
        ),
    ];
    for (what, text) in &cases {
        let config = write_config(work.path(), "bad.yaml", text);
        for extra in [&[][..], &["--dry-run"][..], &["--json"][..], &["--task", "one"][..]] {
            let run = sync(&[&[config.as_str()], extra].concat());
            assert_eq!(run.code, 2, "{what} {extra:?}: {}\n{}", run.stdout, run.stderr);
            assert!(
                sp.log().is_empty() && tp.log().is_empty(),
                "{what} {extra:?}: a registry was contacted: {:?} {:?}",
                sp.log(),
                tp.log()
            );
            if extra.is_empty() && *what == "unknown key" {
                let n = text.lines().position(|l| l.contains("tagz")).unwrap() + 1;
                assert!(
                    run.stderr.contains("tagz") && run.stderr.contains(&format!("line {n}")),
                    "the key and its line ({n}): {}",
                    run.stderr
                );
            }
        }
    }
}

/// SYNC.md §4: `auth` in the config, base64 of dregsy's JSON (with the newline `echo | base64`
/// leaves) and of `user:password`, with no Docker config anywhere; a wrong password is exit 1
/// naming the refusal and never printing the password.
#[test]
fn an_htpasswd_target_is_reached_with_auth_from_the_config() {
    let src = source();
    let target = TestRegistry::start(Mode::Htpasswd);
    let s = src.host();
    let t = target.host();
    let json_auth = b64(&format!("{{\"username\": \"{USER}\", \"password\": \"{PASSWORD}\"}}\n"));
    let colon_auth = b64(&format!("{USER}:{PASSWORD}"));
    let work = tempfile::tempdir().unwrap();
    let config = write_config(
        work.path(),
        "auth.yaml",
        &format!(
            r#"tasks:
- name: json-auth
  source: {{registry: '{s}'}}
  target: {{registry: '{t}', auth: {json_auth}}}
  mappings:
  - {{from: apps/web, to: auth/json, tags: [1.0]}}
- name: colon-auth
  source: {{registry: '{s}'}}
  target:
    registry: '{t}'
    auth: {colon_auth}
  mappings:
  - {{from: apps/api, to: auth/colon, tags: [1.0]}}
- name: listed-with-auth
  source: {{registry: '{t}', auth: {colon_auth}}}
  target: {{registry: '{t}', auth: {json_auth}}}
  mappings:
  - {{from: 'regex:auth/.*', to: again}}
"#
        ),
    );
    let run = sync(&[&config]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let want: BTreeMap<String, String> = [
        ("auth/json:1.0".to_string(), src.digest("apps/web:1.0")),
        ("auth/colon:1.0".to_string(), src.digest("apps/api:1.0")),
        // the catalog and tag lists of an htpasswd source, read with the source's `auth`
        ("again/auth/json:1.0".to_string(), src.digest("apps/web:1.0")),
        ("again/auth/colon:1.0".to_string(), src.digest("apps/api:1.0")),
    ]
    .into_iter()
    .collect();
    assert_eq!(Peek::of(&target).inventory(), want);

    let wrong = "Wr0ng-s3cret-Pa55";
    let wrong_auth = b64(&format!("{{\"username\":\"{USER}\",\"password\":\"{wrong}\"}}"));
    let config = write_config(
        work.path(),
        "wrong.yaml",
        &format!(
            "tasks:\n- name: wrong\n  source: {{registry: '{s}'}}\n  target: {{registry: '{t}', auth: {wrong_auth}}}\n  mappings:\n  - {{from: apps/web, to: auth/wrong, tags: [1.0]}}\n"
        ),
    );
    for extra in [&[][..], &["--json"][..], &["-v"][..]] {
        let run = sync(&[&[config.as_str()], extra].concat());
        assert_eq!(run.code, 1, "{extra:?}: {}\n{}", run.stdout, run.stderr);
        let all = format!("{}{}", run.stdout, run.stderr);
        let lower = all.to_lowercase();
        assert!(
            lower.contains("unauthorized") || lower.contains("authentication"),
            "{extra:?}: the refusal is named: {all}"
        );
        for secret in [wrong, wrong_auth.as_str(), PASSWORD] {
            assert!(!all.contains(secret), "{extra:?}: a credential was printed: {all}");
        }
    }
    assert!(Peek::of(&target).tags("auth/wrong").is_empty());
}

/// SYNC.md §4: `skip-tls-verify: true` on the target reaches a self-signed TLS registry;
/// without it, exit 1 naming the certificate.
#[test]
fn a_self_signed_tls_target_needs_skip_tls_verify() {
    let src = source();
    let target = TestRegistry::start(Mode::SelfSigned);
    let s = src.host();
    let t = target.host();
    let work = tempfile::tempdir().unwrap();
    let config = |name: &str, skip: &str| {
        write_config(
            work.path(),
            &format!("{name}.yaml"),
            &format!(
                "tasks:\n- name: {name}\n  source: {{registry: '{s}'}}\n  target:\n    registry: '{t}'\n{skip}  mappings:\n  - {{from: tools/cli, to: tls/{name}, tags: [latest]}}\n"
            ),
        )
    };
    let run = sync(&[&config("skip", "    skip-tls-verify: true\n")]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let peek = Peek::of(&target);
    assert_eq!(peek.digest("tls/skip", "latest"), Some(src.digest("tools/cli:latest")));

    let run = sync(&[&config("verify", "")]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let lower = run.stderr.to_lowercase();
    assert!(
        lower.contains("certificate") || lower.contains("tls"),
        "TLS failure named: {}",
        run.stderr
    );
    assert!(peek.tags("tls/verify").is_empty());
    assert_eq!(peek.catalog(), vec!["tls/skip".to_string()]);
}

/// SYNC.md §8: two pairs writing one target tag from different sources refuse their task
/// (nothing of it copied, both sources and the target named); the next task still runs; a
/// repository the source lacks fails too (§5.1); exit 1.
#[test]
fn a_collision_refuses_its_task_and_the_others_still_run() {
    let src = source();
    let target = TestRegistry::start(Mode::Plain);
    let (s, t) = (src.host(), target.host());
    let work = tempfile::tempdir().unwrap();
    let config = write_config(
        work.path(),
        "clash.yaml",
        &format!(
            r#"tasks:
- name: clash
  source: &src {{registry: '{s}'}}
  target: &dst {{registry: '{t}'}}
  mappings:
  - {{from: tools/lint, to: ok, tags: [1.0]}}
  - {{from: apps/web, to: same, tags: [1.0]}}
  - {{from: apps/api, to: same, tags: [1.0]}}
- name: fine
  source: *src
  target: *dst
  mappings:
  - {{from: tools/cli, to: fine/cli, tags: [1.0]}}
- name: ghost
  source: *src
  target: *dst
  mappings:
  - {{from: no/such, to: ghost}}
"#
        ),
    );
    let run = sync(&[&config]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    for named in [
        format!("{s}/apps/web:1.0"),
        format!("{s}/apps/api:1.0"),
        format!("{t}/same:1.0"),
        "no/such".to_string(),
    ] {
        assert!(run.stderr.contains(&named), "{named} named: {}", run.stderr);
    }
    let want: BTreeMap<String, String> = [("fine/cli:1.0".to_string(), src.digest("tools/cli:1.0"))]
        .into_iter()
        .collect();
    let peek = Peek::of(&target);
    assert_eq!(peek.inventory(), want, "nothing of the refused task, all of the other");

    // a dry run runs the same checks: exit 1, and only the planned task's pair printed
    let dry = sync(&[&config, "--dry-run"]);
    assert_eq!(dry.code, 1, "{}\n{}", dry.stdout, dry.stderr);
    assert_eq!(
        sorted_lines(&dry),
        vec![line(
            "fine",
            &format!("{s}/tools/cli:1.0"),
            &format!("{t}/fine/cli:1.0")
        )]
    );
    assert!(dry.stderr.contains(&format!("{t}/same:1.0")), "{}", dry.stderr);

    let run = sync(&[&config, "--json"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let events = run.events();
    let failed: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "task_failed" && e["task"] == "clash")
        .collect();
    assert_eq!(failed.len(), 1, "{}", run.stdout);
    assert_eq!(failed[0]["task"], "clash");
    let error = failed[0]["error"].to_string();
    assert!(
        error.contains("apps/web:1.0") && error.contains("apps/api:1.0"),
        "{error}"
    );
    assert!(
        !events
            .iter()
            .any(|e| e["event"] == "sync_planned" && e["task"] == "clash"),
        "a refused task plans no pair: {}",
        run.stdout
    );
    let s = summary(&run);
    assert_eq!(s["success"], false, "{s}");
    assert_eq!(s["already_present"], 1, "{s}");
    assert_eq!(s["copied"], 0, "{s}");
    assert_eq!(peek.inventory(), want);
}

/// SYNC.md §1: tasks run one after another in file order, so a later task reads what an
/// earlier one wrote; with source = target, blobs are mounted from the source repository.
#[test]
fn tasks_run_in_file_order_and_a_later_task_reads_what_an_earlier_one_wrote() {
    let src = source();
    let mid = TestRegistry::start(Mode::Plain);
    let mp = proxy_to(&mid);
    let (s, m) = (src.host(), mp.host());
    let work = tempfile::tempdir().unwrap();
    let config = write_config(
        work.path(),
        "chain.yaml",
        &format!(
            r#"tasks:
- name: stage
  source: {{registry: '{s}'}}
  target: {{registry: '{m}'}}
  mappings:
  - {{from: apps/web, to: stage/web, tags: [1.0, 1.1]}}
- name: promote
  source: {{registry: '{m}'}}
  target: {{registry: '{m}'}}
  mappings:
  - {{from: 'regex:stage/.*', to: final}}
"#
        ),
    );
    let run = sync(&[&config, "--json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let (d10, d11) = (src.digest("apps/web:1.0"), src.digest("apps/web:1.1"));
    let want: BTreeMap<String, String> = [
        ("stage/web:1.0", &d10),
        ("stage/web:1.1", &d11),
        ("final/stage/web:1.0", &d10),
        ("final/stage/web:1.1", &d11),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.clone()))
    .collect();
    assert_eq!(Peek::of(&mid).inventory(), want);
    assert_summary(&run, true, 2, 4, 4, 0, 0);
    let uploads: Vec<String> = mp
        .log()
        .iter()
        .filter(|l| l.path.starts_with("/v2/final/") && l.path.contains("/blobs/uploads"))
        .filter(|l| matches!(l.method.as_str(), "PATCH" | "PUT") || (l.method == "POST" && !l.path.contains("mount=")))
        .map(|l| format!("{} {}", l.method, l.path))
        .collect();
    assert_eq!(uploads, Vec::<String>::new(), "blobs mounted, not uploaded again");
}

/// SYNC.md §3.2: top-level `lister.maxItems` N caps the catalog at its first N repositories
/// (lexical order), `-1` means no cap; §5.2: `from: /apps/web` and `to: web-mirror/` are
/// normalised.
#[test]
fn lister_max_items_caps_the_catalog_and_paths_are_normalised() {
    let src = source();
    let sp = Proxy::start(&src.url());
    let s = sp.host();
    let t = "127.0.0.1:9"; // a dry run writes nothing: the target need not exist
    let work = tempfile::tempdir().unwrap();
    let tasks = format!(
        r#"tasks:
- name: capped
  source: {{registry: '{s}'}}
  target: {{registry: '{t}'}}
  mappings:
  - {{from: 'regex:.*', to: all, tags: [1.0]}}
- name: alt
  source: {{registry: '{s}'}}
  target: {{registry: '{t}'}}
  mappings:
  - {{from: 'regex:apps/web|tools/cli', to: alt, tags: [1.0]}}
- name: slash
  source: {{registry: '{s}'}}
  target: {{registry: '{t}'}}
  mappings:
  - {{from: /apps/web, to: 'web-mirror/', tags: [1.0]}}
"#
    );
    let capped = write_config(
        work.path(),
        "capped.yaml",
        &format!("lister:\n  maxItems: 3\n  cacheDuration: 30m\n{tasks}"),
    );
    let run = sync(&[&capped, "--dry-run", "--task", "capped|slash"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut want: Vec<String> = ["apps/api", "apps/web", "filler/r000"]
        .iter()
        .map(|r| line("capped", &format!("{s}/{r}:1.0"), &format!("{t}/all/{r}:1.0")))
        .collect();
    want.push(line(
        "slash",
        &format!("{s}/apps/web:1.0"),
        &format!("{t}/web-mirror:1.0"),
    ));
    want.sort();
    assert_eq!(sorted_lines(&run), want);
    assert!(!run.stderr.is_empty(), "a warning says the cap cut the listing");

    let uncapped = write_config(
        work.path(),
        "uncapped.yaml",
        &format!("lister:\n  maxItems: -1\n{tasks}"),
    );
    let run = sync(&[&uncapped, "--dry-run", "--task", "capped"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), FILLERS + 5, "{}", run.stdout);
    // the whole name must match, alternation included (SYNC.md §9: `^(?:EXPR)$`)
    let run = sync(&[&uncapped, "--dry-run", "--task", "alt"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let want = sorted(
        ["apps/web", "tools/cli"]
            .iter()
            .map(|r| line("alt", &format!("{s}/{r}:1.0"), &format!("{t}/alt/{r}:1.0"))),
    );
    assert_eq!(sorted_lines(&run), want);
    assert_eq!(writes(&sp.log()), Vec::<String>::new());
}
