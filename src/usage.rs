//! Plain messages for the usage mistakes clap words in its own terms: a mistyped subcommand
//! (taken for BUNDLE, since the relocation itself needs no subcommand) and a second BUNDLE.

use std::ffi::OsString;
use std::path::Path;

/// What went wrong with the words of a command line, said plainly.
#[derive(Debug, PartialEq, Eq)]
pub enum Mistake {
    /// The first word is no file but close to a subcommand's name.
    Subcommand { typed: String, meant: String },
    /// More than one BUNDLE.
    Bundles(Vec<String>),
    /// A word after `--dest-creds USER` or `--src-creds USER`, most likely the password
    /// meant to be `USER:PASSWORD`: never repeated.
    SpacedCredentials(String),
}

impl std::fmt::Display for Mistake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mistake::Subcommand { typed, meant } => write!(
                f,
                "unknown command '{typed}' (and no bundle file of that name); did you mean '{meant}'?"
            ),
            Mistake::Bundles(bundles) => write!(
                f,
                "one bundle at a time: got {} ({}); run cnab-relocate once per bundle",
                bundles.len(),
                bundles.join(", ")
            ),
            Mistake::SpacedCredentials(flag) => write!(
                f,
                "{flag} takes USER:PASSWORD as one word (or USER with --password-stdin); the word after it \
                 was taken for a second bundle (not shown here)"
            ),
        }
    }
}

/// The mistake in `args` (without the program name), given the top-level command's
/// definition, when it is one of those said plainly here. `None` leaves the error to clap.
pub fn mistake(command: &clap::Command, args: &[OsString]) -> Option<Mistake> {
    let mut command = command.clone();
    command.build();
    // after an unknown option, a word may be its value (a password, say): such words are never
    // repeated here; clap's own message names only the option
    let Words {
        words,
        unknown_after,
        after_credentials,
    } = positionals(&command, args);
    if let Some(flag) = after_credentials.filter(|_| words.len() > 1) {
        return Some(Mistake::SpacedCredentials(flag));
    }
    let first = words.first().filter(|_| unknown_after != Some(0))?;
    let subcommands: Vec<&str> = command.get_subcommands().map(|s| s.get_name()).collect();
    if subcommands.contains(&first.as_str()) {
        return None;
    }
    if !Path::new(first).exists() {
        if let Some(meant) = closest(first, &subcommands) {
            return Some(Mistake::Subcommand {
                typed: first.clone(),
                meant: meant.to_string(),
            });
        }
    }
    (words.len() > 1 && unknown_after.is_none()).then_some(Mistake::Bundles(words))
}

/// What a command line holds besides options.
struct Words {
    /// The words that are neither options nor their values.
    words: Vec<String>,
    /// How many of them came before the first unknown option (a subcommand's, or a typo).
    unknown_after: Option<usize>,
    /// The credential option (`--dest-creds`) whose value a word directly follows.
    after_credentials: Option<String>,
}

fn positionals(command: &clap::Command, args: &[OsString]) -> Words {
    let takes_value = |arg: &clap::Arg| arg.get_action().takes_values();
    let long_takes_value = |name: &str| {
        command
            .get_arguments()
            .any(|a| a.get_long() == Some(name) && takes_value(a))
    };
    let short_takes_value = |c: char| {
        command
            .get_arguments()
            .any(|a| a.get_short() == Some(c) && takes_value(a))
    };
    let known_long = |name: &str| command.get_arguments().any(|a| a.get_long() == Some(name));
    let known_short = |c: char| command.get_arguments().any(|a| a.get_short() == Some(c));
    let mut out = Vec::new();
    let mut unknown = None;
    let mut after_credentials = None;
    // the credential option whose value the previous word was
    let mut credentials_value: Option<String> = None;
    let mut args = args.iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = args.next() {
        let follows_credentials = credentials_value.take();
        if arg == "--" {
            out.extend(args.by_ref());
        } else if let Some(long) = arg.strip_prefix("--") {
            let name = long.split('=').next().unwrap_or(long);
            if !known_long(name) {
                unknown.get_or_insert(out.len());
                continue;
            }
            let value = match long.split_once('=') {
                Some((_, value)) => Some(value.to_string()),
                None if long_takes_value(long) => args.next(),
                None => None,
            };
            // `--dest-creds USER PASSWORD`: the password taken for a bundle
            if name.ends_with("-creds") && value.is_some_and(|v| !v.contains(':')) {
                credentials_value = Some(format!("--{name}"));
            }
        } else if let Some(shorts) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
            // a cluster such as -qv or -pVALUE: the first flag taking a value ends it
            for (i, c) in shorts.char_indices() {
                if !known_short(c) {
                    unknown.get_or_insert(out.len());
                    break;
                }
                if short_takes_value(c) {
                    if i + c.len_utf8() == shorts.len() {
                        args.next();
                    }
                    break;
                }
            }
        } else {
            if let Some(flag) = follows_credentials {
                after_credentials.get_or_insert(flag);
            }
            out.push(arg);
        }
    }
    Words {
        words: out,
        unknown_after: unknown,
        after_credentials,
    }
}

/// The candidate within two edits of `word` (the closest, the first on a tie).
fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, _)| *d <= 2 && *d < word.chars().count())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance, with a swap of neighbours counted as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli() -> clap::Command {
        clap::Command::new("t")
            .arg(clap::Arg::new("bundle"))
            .arg(clap::Arg::new("p").short('p').long("repository-prefix"))
            .arg(clap::Arg::new("dest").long("dest-creds"))
            .arg(clap::Arg::new("q").short('q').action(clap::ArgAction::SetTrue))
            .subcommand(clap::Command::new("export"))
    }

    fn said(args: &[&str]) -> Option<String> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        mistake(&cli(), &args).map(|m| m.to_string())
    }

    #[test]
    fn mistakes_said_plainly_and_passwords_never_repeated() {
        assert_eq!(said(&["b.json", "-p", "x", "--dest-creds", "u:pw"]), None);
        assert_eq!(said(&["--dest-creds", "u:pw", "b.json", "-qp", "x"]), None);
        assert_eq!(said(&["export", "b.json", "-o", "x"]), None);
        let two = said(&["a.json", "-p", "x", "b.json"]).unwrap();
        assert!(two.contains("got 2 (a.json, b.json)"), "{two}");
        let two = said(&["--dest-creds", "u:pw", "a.json", "b.json"]).unwrap();
        assert!(two.contains("got 2 (a.json, b.json)"), "{two}");
        for args in [
            &["b.json", "--dest-creds", "user", "s3cret"][..],
            &["--dest-creds=user", "s3cret", "b.json"][..],
            &["b.json", "--dest-crds", "user:s3cret", "c.json"][..],
        ] {
            let m = said(args);
            assert!(m.as_ref().is_none_or(|m| !m.contains("s3cret")), "{args:?}: {m:?}");
        }
        assert!(said(&["b.json", "--dest-creds", "user", "s3cret"])
            .unwrap()
            .contains("USER:PASSWORD as one word"));
        assert!(said(&["exprot", "-o", "x"]).unwrap().contains("did you mean 'export'"));
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("exprot", "export"), 1);
        assert_eq!(edit_distance("mapp", "map"), 1);
        assert_eq!(edit_distance("bundle.json", "map"), 11);
        assert_eq!(closest("exprot", &["map", "export"]), Some("export"));
        assert_eq!(closest("mp", &["map", "export"]), Some("map"));
        assert_eq!(closest("a.json", &["map", "export"]), None);
        assert_eq!(
            closest("x", &["map", "help"]),
            None,
            "one letter is no typo of anything"
        );
        assert_eq!(closest("a", &["map"]), None);
    }
}
