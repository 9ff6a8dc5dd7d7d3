//! Shell integration: completion scripts that shells really load, and a manual page that
//! `man` really renders, both listing what `--help` lists.

use std::collections::BTreeSet;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_cnab-relocate");

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `script` in bash after sourcing the bash completion script.
fn bash_with_completions(script: &str) -> Output {
    Command::new("bash")
        .args([
            "--norc",
            "--noprofile",
            "-c",
            &format!("source <(\"$BIN\" completions bash) || exit 9\n{script}"),
        ])
        .env("BIN", BIN)
        .output()
        .unwrap()
}

/// What bash completes for `words`, the last being the word under the cursor, as a person
/// pressing TAB would get it: the function `complete -p` names, called as bash calls it.
fn complete(words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let script = format!(
        r#"f=$(complete -p cnab-relocate | sed -n 's/.* -F \([^ ]*\) .*/\1/p')
COMP_WORDS=({words})
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
COMP_LINE="${{COMP_WORDS[*]}}"
COMP_POINT=${{#COMP_LINE}}
"$f" cnab-relocate "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}""#,
        words = quoted.join(" ")
    );
    let o = bash_with_completions(&script);
    assert!(o.status.success(), "{}", text(&o.stderr));
    text(&o.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_sources_the_completions_and_completes_options_of_every_command() {
    let o = bash_with_completions("complete -p cnab-relocate");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let registered = text(&o.stdout);
    assert!(
        registered.starts_with("complete ")
            && registered.contains(" -F ")
            && registered.trim_end().ends_with(" cnab-relocate"),
        "{registered}"
    );
    assert!(o.stderr.is_empty(), "sourcing is silent: {}", text(&o.stderr));

    assert_eq!(complete(&["cnab-relocate", "--repo"]), ["--repository-prefix"]);
    assert_eq!(complete(&["cnab-relocate", "exp"]), ["export"]);
    // a subcommand's own options (clap_complete alone gets none for a hyphenated name)
    assert_eq!(complete(&["cnab-relocate", "export", "--for"]), ["--force"]);
    assert_eq!(complete(&["cnab-relocate", "map", "--repo"]), ["--repository-prefix"]);
    let shells = complete(&["cnab-relocate", "completions", ""]);
    for shell in ["bash", "elvish", "fish", "powershell", "zsh"] {
        assert!(shells.iter().any(|s| s == shell), "{shells:?}");
    }
}

#[test]
fn every_shell_gets_a_script_naming_the_options() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let o = run(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}: {}", text(&o.stderr));
        let script = text(&o.stdout);
        for word in ["repository-prefix", "relocation-mapping", "export", "password-stdin"] {
            assert!(script.contains(word), "{shell} script names {word}");
        }
        // shells that are installed check the syntax
        let check = match shell {
            "zsh" => Some(("zsh", "-n")),
            "fish" => Some(("fish", "--no-execute")),
            _ => None,
        };
        if let Some((program, flag)) = check {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("script");
            std::fs::write(&file, &o.stdout).unwrap();
            if let Ok(checked) = Command::new(program).arg(flag).arg(&file).output() {
                assert!(checked.status.success(), "{shell}: {}", text(&checked.stderr));
            }
        }
    }
    let o = run(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("bash"),
        "the shells are listed: {}",
        text(&o.stderr)
    );
}

/// The long options `--help` of `args` lists.
fn long_options(help: &str) -> BTreeSet<String> {
    help.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']' || c == '=')
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| w.trim_end_matches(['.', ';', ':', ')']).to_string())
        .filter(|w| w[2..].chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        .collect()
}

/// The subcommands `--help` lists under "Commands:".
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        // a name stands two spaces in; a wrapped description further
        .filter(|l| l.starts_with("  ") && !l[2..].starts_with(' '))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn the_man_page_renders_and_lists_every_option_and_subcommand() {
    let o = run(&["man"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("cnab-relocate.1");
    std::fs::write(&page, &o.stdout).unwrap();
    assert!(text(&o.stdout).starts_with(".ie") || text(&o.stdout).starts_with(".TH"));

    let rendered = Command::new("man")
        .args(["--warnings", "-P", "cat", "-l"])
        .arg(&page)
        .env("MANWIDTH", "400")
        .env("LC_ALL", "C")
        .env_remove("MANPAGER")
        .env_remove("PAGER")
        .output()
        .expect("man (man-db) is installed: scripts/test installs it");
    assert!(rendered.status.success(), "{}", text(&rendered.stderr));
    assert!(
        rendered.stderr.is_empty(),
        "no roff warnings: {}",
        text(&rendered.stderr)
    );
    let shown = text(&rendered.stdout);
    for section in [
        "NAME",
        "SYNOPSIS",
        "OPTIONS",
        "COMMANDS",
        "EXIT STATUS",
        "ENVIRONMENT",
        "EXAMPLES",
    ] {
        assert!(shown.lines().any(|l| l == section), "section {section}:\n{shown}");
    }

    let top = text(&run(&["--help"]).stdout);
    let names = subcommands(&top);
    assert!(names.len() >= 4, "{names:?}");
    let mut wanted = long_options(&top);
    for name in &names {
        assert!(
            shown.contains(&format!("cnab-relocate {name}\n")),
            "subcommand {name} has its part:\n{shown}"
        );
        wanted.extend(long_options(&text(&run(&[name, "--help"]).stdout)));
    }
    assert!(
        wanted.contains("--password-stdin") && wanted.contains("--output"),
        "{wanted:?}"
    );
    for option in &wanted {
        assert!(shown.contains(option.as_str()), "{option} is on the page");
    }
}
