//! Repository names: where a `sync` mapping sends each source repository (SYNC.md §5), and
//! where `--mapping-rules` place a bundle's images (§10).
//!
//! Both use dregsy's `from`/`to` forms: `from` is a name or `regex:EXPR` (matching the whole
//! subject), `to` is absent, a path, or `regex:R,S` (every match of R replaced by S, S in Go's
//! `Regexp.Expand` syntax, reproduced here exactly: [`go_replace_all`]).

use std::collections::BTreeMap;

use regex::{Captures, Regex};

use crate::mapping::{map_reference, MappingError, RepositoryPrefix};
use crate::reference::{validate_path_component, Reference, NAME_TOTAL_LENGTH_MAX};

/// The prefix of a regular expression in `from` and `to`.
pub const REGEX_PREFIX: &str = "regex:";

/// Compiles `expr` to match a whole subject, as dregsy means `from` (`^(?:EXPR)$`).
pub(crate) fn whole_match(expr: &str) -> Result<Regex, String> {
    Regex::new(&format!("^(?:{expr})$")).map_err(|e| format!("invalid regular expression {expr:?}: {e}"))
}

/// Go's `Regexp.ReplaceAllString`: every non-overlapping match of `re` in `src` replaced by
/// `template` expanded as Go expands it (see [`go_expand`]). An empty match right after a
/// previous match is skipped, as Go skips it.
pub fn go_replace_all(re: &Regex, src: &str, template: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut last = 0;
    let mut last_match_end = None;
    for caps in re.captures_iter(src) {
        let m = caps.get(0).expect("group 0 always takes part");
        out.push_str(&src[last..m.start()]);
        if !(m.is_empty() && last_match_end == Some(m.start()) && m.start() != 0) {
            go_expand(&caps, template, &mut out);
        }
        last = m.end();
        last_match_end = Some(m.end());
    }
    out.push_str(&src[last..]);
    out
}

/// Go's `Regexp.Expand`: `$$` is a `$`; `$name` and `${name}` name a group, where a name is
/// the longest run of letters, digits and `_` (so `$1x` is the group named `1x`, and
/// `${1}x` is group 1 then `x`); a name of digits without a leading zero (or `0`) is a group
/// number. A group that does not exist or did not take part gives nothing. A `$` not followed
/// by a valid reference (`$`, `$-`, `${`, `${1`, `${a b}`) is kept as a literal `$`.
///
/// This is where the `regex` crate's own expansion differs: it reads `$01` as group 1 (Go:
/// the group named `01`, which cannot exist, so nothing) and accepts any text in `${…}`.
pub fn go_expand(caps: &Captures<'_>, template: &str, out: &mut String) {
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
            continue;
        }
        match go_extract(rest) {
            None => out.push('$'),
            Some((name, after)) => {
                rest = after;
                let group = match go_group_number(name) {
                    Some(n) => caps.get(n),
                    None => caps.name(name),
                };
                if let Some(m) = group {
                    out.push_str(m.as_str());
                }
            }
        }
    }
    out.push_str(rest);
}

/// Go's `extract`: the name after a `$` (braced or not) and the text after it.
fn go_extract(s: &str) -> Option<(&str, &str)> {
    let (braced, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let end = body
        .char_indices()
        .find(|(_, c)| !(c.is_alphabetic() || c.is_numeric() || *c == '_'))
        .map_or(body.len(), |(i, _)| i);
    if end == 0 {
        return None;
    }
    let name = &body[..end];
    if braced {
        let after = body[end..].strip_prefix('}')?;
        return Some((name, after));
    }
    Some((name, &body[end..]))
}

/// A group number as Go reads one: ASCII digits, no leading zero, below 10^8.
fn go_group_number(name: &str) -> Option<usize> {
    if !name.bytes().all(|b| b.is_ascii_digit()) || (name.len() > 1 && name.starts_with('0')) {
        return None;
    }
    name.parse::<usize>().ok().filter(|n| *n < 100_000_000)
}

/// `regex:R,S` split at the first comma (R cannot hold a comma; S may).
fn parse_replace(expr: &str) -> Result<To, String> {
    let Some((r, s)) = expr.split_once(',') else {
        return Err(format!(
            "\"regex:{expr}\" has no comma: write regex:EXPRESSION,REPLACEMENT"
        ));
    };
    let regex = Regex::new(r).map_err(|e| format!("invalid regular expression {r:?}: {e}"))?;
    Ok(To::Replace {
        expr: r.to_string(),
        regex,
        replacement: s.to_string(),
    })
}

/// Checks a repository path: lower-case components joined by single `/`.
fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("the path is empty".into());
    }
    for component in path.split('/') {
        validate_path_component(component)?;
    }
    Ok(())
}

/// Which source repositories a `sync` mapping takes.
#[derive(Debug, Clone)]
pub enum From {
    /// Exactly this repository (one leading `/` of the text dropped), e.g. `apps/web`.
    Repository(String),
    /// The catalog entries the expression matches as a whole.
    Regex {
        /// The expression as written after `regex:`.
        expr: String,
        /// `^(?:EXPR)$`.
        regex: Regex,
    },
}

/// Where a `sync` mapping or a mapping rule sends a repository.
#[derive(Debug, Clone)]
pub enum To {
    /// The same path.
    Same,
    /// A path as written: a rename under a plain `from`, a prefix under a regex `from`.
    Path(String),
    /// `regex:R,S`: every match of R replaced by S.
    Replace {
        /// R as written.
        expr: String,
        /// R, not anchored.
        regex: Regex,
        /// S, in Go's expansion syntax.
        replacement: String,
    },
}

impl To {
    /// Parses a `to` value; absent or empty means [`To::Same`].
    pub fn parse(to: Option<&str>) -> Result<To, String> {
        match to {
            None | Some("") => Ok(To::Same),
            Some(t) => match t.strip_prefix(REGEX_PREFIX) {
                Some(expr) => parse_replace(expr),
                None => Ok(To::Path(t.to_string())),
            },
        }
    }
}

/// `T` joined to `rest` with one `/`: the trailing `/` of T dropped, then every leading `/`
/// of the whole.
fn join(t: &str, rest: &str) -> String {
    let t = t.strip_suffix('/').unwrap_or(t);
    format!("{t}/{}", rest.trim_start_matches('/'))
        .trim_start_matches('/')
        .to_string()
}

/// A mapped name that is not a valid repository path, or too long.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("repository \"{repository}\" maps to \"{mapped}\", which is not a valid repository path: {reason}")]
pub struct InvalidTargetPath {
    /// The source repository.
    pub repository: String,
    /// The path the mapping produced.
    pub mapped: String,
    /// Why it is refused.
    pub reason: String,
}

/// One `sync` mapping's `from` and `to` (SYNC.md §5).
#[derive(Debug, Clone)]
pub struct RepositoryMapping {
    from: From,
    to: To,
}

impl RepositoryMapping {
    /// Parses `from` (required; a repository path or `regex:EXPR`) and `to` (optional; a
    /// path or `regex:R,S`). The error says which of the two is wrong: `Err((false, why))`
    /// for `from`, `Err((true, why))` for `to`.
    pub fn parse(from: &str, to: Option<&str>) -> Result<RepositoryMapping, (bool, String)> {
        let from = match from.strip_prefix(REGEX_PREFIX) {
            Some(expr) => From::Regex {
                expr: expr.to_string(),
                regex: whole_match(expr).map_err(|e| (false, e))?,
            },
            None => {
                let path = from.strip_prefix('/').unwrap_or(from);
                check_path(path).map_err(|e| (false, format!("\"{from}\" is not a repository path: {e}")))?;
                From::Repository(path.to_string())
            }
        };
        let to = To::parse(to).map_err(|e| (true, e))?;
        Ok(RepositoryMapping { from, to })
    }

    /// The `from` side.
    pub fn from(&self) -> &From {
        &self.from
    }

    /// The `to` side.
    pub fn to(&self) -> &To {
        &self.to
    }

    /// Whether the source's catalog must be listed (a regex `from`).
    pub fn needs_catalog(&self) -> bool {
        matches!(self.from, From::Regex { .. })
    }

    /// The repositories this mapping takes: the plain `from`, or the catalog entries the
    /// regex matches as a whole, in catalog order.
    pub fn select<'a>(&'a self, catalog: &'a [String]) -> Vec<&'a str> {
        match &self.from {
            From::Repository(r) => vec![r.as_str()],
            From::Regex { regex, .. } => catalog
                .iter()
                .map(String::as_str)
                .filter(|entry| regex.is_match(entry))
                .collect(),
        }
    }

    /// The target path for `repository` as the table of SYNC.md §5.2 gives it, from
    /// P = `/` + repository, with every leading `/` removed; not yet checked.
    pub fn target_path(&self, repository: &str) -> String {
        let p = format!("/{repository}");
        let raw = match (&self.to, &self.from) {
            (To::Same, _) => p,
            (To::Path(t), From::Repository(_)) => t.strip_suffix('/').unwrap_or(t).to_string(),
            (To::Path(t), From::Regex { .. }) => join(t, &p),
            (To::Replace { regex, replacement, .. }, _) => go_replace_all(regex, &p, replacement),
        };
        raw.trim_start_matches('/').to_string()
    }

    /// The checked target path for `repository` in `target_registry` (as written in the
    /// configuration): valid lower-case components, and `registry/path` at most 255
    /// characters.
    pub fn map(&self, target_registry: &str, repository: &str) -> Result<String, InvalidTargetPath> {
        let mapped = self.target_path(repository);
        let bad = |reason: String| InvalidTargetPath {
            repository: repository.to_string(),
            mapped: mapped.clone(),
            reason,
        };
        check_path(&mapped).map_err(bad)?;
        let total = target_registry.len() + 1 + mapped.len();
        if total > NAME_TOTAL_LENGTH_MAX {
            return Err(bad(format!(
                "\"{target_registry}/{mapped}\" is {total} characters long; at most {NAME_TOTAL_LENGTH_MAX} are allowed"
            )));
        }
        Ok(mapped)
    }
}

/// Which images a mapping rule takes.
#[derive(Debug, Clone)]
enum RuleFrom {
    /// A normalised name N, e.g. `docker.io/library/nginx`.
    Name(String),
    /// An expression that must match all of N.
    Regex(Regex),
}

/// One `--mapping-rules` rule (SYNC.md §10).
#[derive(Debug, Clone)]
pub struct MappingRule {
    from: RuleFrom,
    to: To,
}

impl MappingRule {
    /// Parses a rule's `from` (a name, normalised like a reference, or `regex:EXPR`) and `to`.
    /// The error says which is wrong: `Err((false, why))` for `from`, `Err((true, why))` for
    /// `to`.
    pub fn parse(from: &str, to: Option<&str>) -> Result<MappingRule, (bool, String)> {
        let from = match from.strip_prefix(REGEX_PREFIX) {
            Some(expr) => RuleFrom::Regex(whole_match(expr).map_err(|e| (false, e))?),
            None => {
                let r = Reference::parse_normalized(from).map_err(|e| (false, e.to_string()))?;
                if r.tag().is_some() || r.digest().is_some() {
                    return Err((
                        false,
                        format!("\"{from}\" names a tag or digest; a rule's from is a repository name (the bundle gives the tag)"),
                    ));
                }
                RuleFrom::Name(r.name())
            }
        };
        let to = To::parse(to).map_err(|e| (true, e))?;
        Ok(MappingRule { from, to })
    }

    fn matches(&self, name: &str) -> bool {
        match &self.from {
            RuleFrom::Name(n) => n == name,
            RuleFrom::Regex(r) => r.is_match(name),
        }
    }
}

/// Why bundle images cannot be placed with the mapping rules. All are configuration errors
/// (exit 2), found before any registry is contacted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// A rule produced a name that is not a valid reference (bad path, over 255 characters).
    #[error("mapping rule {rule} places image \"{image}\" at \"{mapped}\", which is not valid: {reason}")]
    InvalidResult {
        /// Index of the rule in the file, from 0.
        rule: usize,
        /// The bundle image.
        image: String,
        /// What the rule produced (R, or PREFIX/R).
        mapped: String,
        /// Why it is refused.
        reason: String,
    },
    /// The rule's `from` took the image, but its `to` expression does not match the name.
    #[error("mapping rule {rule} takes image \"{image}\", but its to expression \"{expr}\" does not match \"{name}\"")]
    ToDoesNotMatch {
        /// Index of the rule, from 0.
        rule: usize,
        /// The bundle image.
        image: String,
        /// The `to` expression.
        expr: String,
        /// The normalised name N it was applied to.
        name: String,
    },
    /// Two images of different names would land on the same repository and tag.
    #[error("images \"{first}\" and \"{second}\" would both be relocated to \"{relocated}\"")]
    Collision {
        /// One image, as the bundle writes it.
        first: String,
        /// The other.
        second: String,
        /// The repository and tag both map to.
        relocated: String,
    },
    /// The default (duffle) mapping failed for an image no rule takes.
    #[error(transparent)]
    Default(#[from] MappingError),
}

/// The rules of a `--mapping-rules` file, in file order.
#[derive(Debug, Clone, Default)]
pub struct MappingRules {
    rules: Vec<MappingRule>,
}

impl MappingRules {
    /// Rules in the order they are tried.
    pub fn new(rules: Vec<MappingRule>) -> MappingRules {
        MappingRules { rules }
    }

    /// How many rules there are.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there is no rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The first rule whose `from` matches the normalised name, and its index.
    pub fn rule_for(&self, name: &str) -> Option<(usize, &MappingRule)> {
        self.rules.iter().enumerate().find(|(_, r)| r.matches(name))
    }

    /// Where `image` goes under `prefix`: by the first rule that matches its normalised name
    /// N, or else by the default duffle mapping, unchanged. `raw` is the image as the bundle
    /// writes it, for messages.
    pub fn relocate(&self, prefix: &RepositoryPrefix, raw: &str, image: &Reference) -> Result<Reference, RuleError> {
        let name = image.name();
        let Some((index, rule)) = self.rule_for(&name) else {
            return Ok(map_reference(prefix, image)?);
        };
        let path = image.path();
        let r = match (&rule.to, &rule.from) {
            (To::Same, _) => path.to_string(),
            (To::Path(t), RuleFrom::Name(_)) => t.strip_suffix('/').unwrap_or(t).to_string(),
            (To::Path(t), RuleFrom::Regex(_)) => join(t, path),
            (
                To::Replace {
                    expr,
                    regex,
                    replacement,
                },
                _,
            ) => {
                if !regex.is_match(&name) {
                    return Err(RuleError::ToDoesNotMatch {
                        rule: index,
                        image: raw.to_string(),
                        expr: expr.clone(),
                        name,
                    });
                }
                go_replace_all(regex, &name, replacement)
            }
        };
        let r = r.trim_start_matches('/').to_string();
        let invalid = |mapped: String, reason: String| RuleError::InvalidResult {
            rule: index,
            image: raw.to_string(),
            mapped,
            reason,
        };
        check_path(&r).map_err(|e| invalid(r.clone(), e))?;
        let full = format!("{prefix}/{r}");
        let relocated = Reference::parse_normalized(&full).map_err(|e| {
            let reason = match e {
                crate::reference::ReferenceError::Invalid { reason, .. } => reason,
                other => other.to_string(),
            };
            invalid(full.clone(), reason)
        })?;
        Ok(relocated.with_tag_and_digest(image.tag(), image.digest()))
    }

    /// Relocates every image (`raw` as the bundle writes it → parsed reference) and refuses two
    /// images of different normalised names that land on the same repository and tag. The
    /// result is keyed by the raw strings, as the relmap is.
    pub fn relocate_all<'a>(
        &self,
        prefix: &RepositoryPrefix,
        images: impl IntoIterator<Item = (&'a str, &'a Reference)>,
    ) -> Result<BTreeMap<String, Reference>, RuleError> {
        let mut out = BTreeMap::new();
        let mut seen: BTreeMap<(String, String), (String, String)> = BTreeMap::new();
        for (raw, image) in images {
            let relocated = self.relocate(prefix, raw, image)?;
            if let Some(tag) = relocated.tag() {
                let key = (relocated.name(), tag.to_string());
                match seen.get(&key) {
                    Some((first_raw, first_name)) if *first_name != image.name() => {
                        return Err(RuleError::Collision {
                            first: first_raw.clone(),
                            second: raw.to_string(),
                            relocated: format!("{}:{}", key.0, key.1),
                        });
                    }
                    Some(_) => {}
                    None => {
                        seen.insert(key, (raw.to_string(), image.name()));
                    }
                }
            }
            out.insert(raw.to_string(), relocated);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(from: &str, to: Option<&str>) -> RepositoryMapping {
        RepositoryMapping::parse(from, to).unwrap_or_else(|e| panic!("{from} {to:?}: {e:?}"))
    }

    fn catalog(entries: &[&str]) -> Vec<String> {
        entries.iter().map(|s| s.to_string()).collect()
    }

    /// SYNC.md §5.2, worked examples over the catalog `apps/api apps/web tools/cli`.
    #[test]
    fn sync_md_worked_examples() {
        let cat = catalog(&["apps/api", "apps/web", "tools/cli"]);
        type Case<'a> = (&'a str, Option<&'a str>, &'a [(&'a str, &'a str)]);
        let cases: &[Case] = &[
            (
                "regex:apps/.*",
                Some("mirror"),
                &[("apps/api", "mirror/apps/api"), ("apps/web", "mirror/apps/web")],
            ),
            (
                "regex:tools/.*",
                Some("regex:^/tools/(.*),ext/$1-tool"),
                &[("tools/cli", "ext/cli-tool")],
            ),
            ("apps/web", Some("web-copy"), &[("apps/web", "web-copy")]),
            ("apps/web", None, &[("apps/web", "apps/web")]),
            ("apps/web", Some("regex:web,site"), &[("apps/web", "apps/site")]),
        ];
        for (from, to, pairs) in cases {
            let m = mapping(from, *to);
            let got: Vec<(String, String)> = m
                .select(&cat)
                .into_iter()
                .map(|r| (r.to_string(), m.map("127.0.0.1:5000", r).unwrap()))
                .collect();
            let want: Vec<(String, String)> = pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
            assert_eq!(got, want, "from {from} to {to:?}");
        }
    }

    /// SYNC.md §5.2's table: the six `from` × `to` cases, and the normalisation.
    #[test]
    fn the_six_cases_and_normalisation() {
        let cases = [
            ("apps/web", None, "apps/web", "apps/web"),
            ("/apps/web", None, "apps/web", "apps/web"),
            ("apps/web", Some("mirror/"), "apps/web", "mirror"),
            ("apps/web", Some("/renamed/x"), "apps/web", "renamed/x"),
            ("apps/web", Some("regex:^/apps,mirror"), "apps/web", "mirror/web"),
            ("regex:apps/.*", None, "apps/web", "apps/web"),
            ("regex:apps/.*", Some("mirror"), "apps/web", "mirror/apps/web"),
            ("regex:apps/.*", Some("mirror/"), "apps/web", "mirror/apps/web"),
            ("regex:apps/.*", Some("/mirror/"), "apps/web", "mirror/apps/web"),
            ("regex:apps/.*", Some("regex:^/apps/,x/"), "apps/web", "x/web"),
            (
                "regex:tools/.*",
                Some("regex:^/tools/(.*),ext/$1"),
                "tools/cli",
                "ext/cli",
            ),
            // $1x is the group named "1x" (none here); ${1}x is group 1 then x
            (
                "regex:tools/.*",
                Some("regex:^/tools/(.*),ext/$1x"),
                "tools/cli",
                "ext/",
            ),
            (
                "regex:tools/.*",
                Some("regex:^/tools/(.*),ext/${1}x"),
                "tools/cli",
                "ext/clix",
            ),
            // R is applied to P with its leading "/": an R anchored without it never matches
            (
                "regex:tools/.*",
                Some("regex:^tools/(.*),ext/$1"),
                "tools/cli",
                "tools/cli",
            ),
            // a result without a leading "/" joins the registry cleanly
            ("regex:apps/.*", Some("regex:^/,"), "apps/web", "apps/web"),
            // R is not anchored: every match is replaced
            ("a/a", Some("regex:a,b"), "a/a", "b/b"),
            // doc/design-image-matching.md
            (
                "regex:myproject/.*",
                Some("regex:my(.+)/,from-dh/your$1/"),
                "myproject/webui",
                "from-dh/yourproject/webui",
            ),
            // dregsy's e2e mapping fixtures
            (
                "regex:mapping-skopeo/dh/xelalex/dregsy-dummy.*",
                Some("regex:mapping-skopeo/dh/,mapping-skopeo/dh-copy/"),
                "mapping-skopeo/dh/xelalex/dregsy-dummy-public",
                "mapping-skopeo/dh-copy/xelalex/dregsy-dummy-public",
            ),
            (
                "regex:jenkins/jnlp-s.*",
                Some("regex:jenkins/,dh/other-jenkins/"),
                "jenkins/jnlp-slave",
                "dh/other-jenkins/jnlp-slave",
            ),
            ("regex:kubika/.*", Some("gcr"), "kubika/brucket", "gcr/kubika/brucket"),
            (
                "library/busybox",
                Some("skopeo/library/busybox"),
                "library/busybox",
                "skopeo/library/busybox",
            ),
            // S may hold commas; R may not
            ("a/b", Some("regex:b,c,d"), "a/b", "a/c,d"),
        ];
        for (from, to, repo, want) in cases {
            let m = mapping(from, to);
            assert_eq!(m.target_path(repo), want, "from {from} to {to:?}");
        }
        // "a,d" is not a valid path: the check refuses it
        let e = mapping("a/b", Some("regex:b,c,d")).map("r.io", "a/b").unwrap_err();
        assert!(e.to_string().contains("\"a/c,d\""), "{e}");
    }

    #[test]
    fn regex_from_matches_whole_names() {
        let cat = catalog(&["apps/web", "apps/web-old", "xapps/web", "b", "ab", "a"]);
        assert_eq!(mapping("regex:apps/web", None).select(&cat), ["apps/web"]);
        assert_eq!(
            mapping("regex:apps/.*", None).select(&cat),
            ["apps/web", "apps/web-old"]
        );
        // a top-level alternation applies to the whole name (dregsy would take "ab" too)
        assert_eq!(mapping("regex:a|b", None).select(&cat), ["b", "a"]);
        assert!(mapping("regex:a|b", None).needs_catalog());
        assert!(!mapping("apps/web", None).needs_catalog());
        assert_eq!(mapping("/apps/web", None).select(&cat), ["apps/web"]);
    }

    #[test]
    fn invalid_mappings() {
        for (from, to, is_to, needle) in [
            ("regex:(", None, false, "invalid regular expression"),
            ("Apps/web", None, false, "lower case"),
            ("apps//web", None, false, "empty component"),
            ("", None, false, "empty"),
            ("//apps", None, false, "empty component"),
            ("apps/web:1.0", None, false, "':'"),
            ("apps/web", Some("regex:web"), true, "no comma"),
            ("apps/web", Some("regex:(,x"), true, "invalid regular expression"),
        ] {
            let (which, why) = RepositoryMapping::parse(from, to).expect_err(from);
            assert_eq!(which, is_to, "{from} {to:?}: {why}");
            assert!(why.contains(needle), "{from} {to:?}: {why}");
        }
    }

    #[test]
    fn target_paths_are_checked() {
        let m = mapping("regex:.*", Some("Mirror"));
        let e = m.map("r.io", "apps/web").unwrap_err();
        assert!(
            e.to_string().contains("lower case") && e.to_string().contains("\"apps/web\""),
            "{e}"
        );
        let m = mapping("regex:.*", Some("regex:^/.*,"));
        assert!(m.map("r.io", "apps/web").unwrap_err().reason.contains("empty"));
        // registry + "/" + path: 255 fits, 256 does not
        let registry = "r.io";
        let ok = "a".repeat(255 - registry.len() - 1);
        assert!(mapping(&ok, None).map(registry, &ok).is_ok());
        let long = "a".repeat(256 - registry.len() - 1);
        let e = mapping(&long, None).map(registry, &long).unwrap_err();
        assert!(e.reason.contains("256 characters"), "{e}");
    }

    fn expand(pattern: &str, src: &str, template: &str) -> String {
        go_replace_all(&Regex::new(pattern).unwrap(), src, template)
    }

    /// Go's `ReplaceAllString`, expected values from Go's regexp tests and documentation.
    #[test]
    fn go_replacement_syntax() {
        let cases = [
            // (pattern, src, template, Go's result)
            ("a(x*)b", "-ab-axxb-", "T", "-T-T-"),
            ("a(x*)b", "-ab-axxb-", "$1", "--xx-"),
            ("a(x*)b", "-ab-axxb-", "$1W", "---"),
            ("a(x*)b", "-ab-axxb-", "${1}W", "-W-xxW-"),
            ("a(?P<x>x*)b", "-ab-axxb-", "${x}W", "-W-xxW-"),
            ("a(?P<x>x*)b", "-ab-axxb-", "$xW", "---"),
            ("a(x*)b", "-ab-axxb-", "$$1", "-$1-$1-"),
            ("a(x*)b", "-ab-axxb-", "$", "-$-$-"),
            ("a(x*)b", "-ab-axxb-", "$-", "-$--$--"),
            ("a(x*)b", "-ab-axxb-", "${", "-${-${-"),
            ("a(x*)b", "-ab-axxb-", "${1", "-${1-${1-"),
            ("a(x*)b", "-ab-axxb-", "${1 }", "-${1 }-${1 }-"),
            ("a(x*)b", "-ab-axxb-", "$01", "---"),
            ("a(x*)b", "-ab-axxb-", "${01}", "---"),
            ("a(x*)b", "-ab-axxb-", "$2", "---"),
            ("a(x*)b", "-ab-axxb-", "$0", "-ab-axxb-"),
            ("a(x*)b", "-ab-axxb-", "${0}${0}", "-abab-axxbaxxb-"),
            ("(a)|(b)", "ab", "[$1$2]", "[a][b]"),
            // empty matches, and one right after a match, as Go
            ("a*", "baaac", "-", "-b-c-"),
            ("x*", "abc", "-", "-a-b-c-"),
            ("", "ab", "-", "-a-b-"),
            ("^/tools/(.*)", "/tools/cli", "ext/$1-tool", "ext/cli-tool"),
            ("^/tools/(.*)", "/tools/cli", "ext/$1x", "ext/"),
            ("^/tools/(.*)", "/tools/cli", "ext/${1}x", "ext/clix"),
        ];
        for (pattern, src, template, want) in cases {
            assert_eq!(
                expand(pattern, src, template),
                want,
                "{pattern} on {src} with {template}"
            );
        }
    }

    const PREFIX: &str = "reg.acme.com/mirror";

    fn rules(list: &[(&str, Option<&str>)]) -> MappingRules {
        MappingRules::new(
            list.iter()
                .map(|(f, t)| MappingRule::parse(f, *t).unwrap_or_else(|e| panic!("{f}: {e:?}")))
                .collect(),
        )
    }

    fn sync_md_rules() -> MappingRules {
        rules(&[
            (r"regex:docker\.io/library/.*", Some(r"regex:^docker\.io/library/,hub/")),
            ("ghcr.io/acme/tool", Some("tools/acme-tool")),
            (r"regex:registry\.example\.com/apps/.*", Some("apps-mirror")),
            (r"regex:gcr\.io/.*", None),
        ])
    }

    fn relocate(rules: &MappingRules, image: &str) -> Result<String, RuleError> {
        let prefix: RepositoryPrefix = PREFIX.parse().unwrap();
        let r = Reference::parse_normalized(image).unwrap();
        rules.relocate(&prefix, image, &r).map(|r| r.to_string())
    }

    /// SYNC.md §10's examples.
    #[test]
    fn sync_md_mapping_rules_examples() {
        let r = sync_md_rules();
        for (image, want) in [
            ("nginx:1.25", "reg.acme.com/mirror/hub/nginx:1.25"),
            ("ghcr.io/acme/tool:1", "reg.acme.com/mirror/tools/acme-tool:1"),
            (
                "registry.example.com/apps/web:1.0",
                "reg.acme.com/mirror/apps-mirror/apps/web:1.0",
            ),
            (
                "gcr.io/distroless/static:nonroot",
                "reg.acme.com/mirror/distroless/static:nonroot",
            ),
        ] {
            assert_eq!(relocate(&r, image).unwrap(), want, "{image}");
        }
        // no rule: the duffle default, unchanged
        let etcd = relocate(&r, "quay.io/coreos/etcd:v3.5.0").unwrap();
        let prefix: RepositoryPrefix = PREFIX.parse().unwrap();
        let default = map_reference(
            &prefix,
            &Reference::parse_normalized("quay.io/coreos/etcd:v3.5.0").unwrap(),
        )
        .unwrap();
        assert_eq!(etcd, default.to_string());
        assert!(
            etcd.starts_with("reg.acme.com/mirror/coreos-etcd-") && etcd.ends_with(":v3.5.0"),
            "{etcd}"
        );
    }

    #[test]
    fn rules_subject_first_match_and_tags() {
        // the subject is N: host and path, no tag or digest, no leading "/"
        let d = format!("sha256:{}", "a".repeat(64));
        // (a plain to is a prefix under a regex from, a rename under a plain one)
        let r = rules(&[(r"regex:127\.0\.0\.1:5000/apps/web", Some("web"))]);
        assert_eq!(
            relocate(&r, &format!("127.0.0.1:5000/apps/web:1@{d}")).unwrap(),
            format!("reg.acme.com/mirror/web/apps/web:1@{d}")
        );
        let r = rules(&[("127.0.0.1:5000/apps/web", Some("web"))]);
        assert_eq!(
            relocate(&r, &format!("127.0.0.1:5000/apps/web@{d}")).unwrap(),
            format!("reg.acme.com/mirror/web@{d}")
        );
        // a regex from matches all of N, not a part of it
        let r = rules(&[("regex:nginx", Some("x"))]);
        assert!(relocate(&r, "nginx:1").unwrap().contains("nginx-"), "duffle default");
        // the first rule that matches wins
        let r = rules(&[("regex:docker.io/.*", Some("first")), ("nginx", Some("second"))]);
        assert_eq!(
            relocate(&r, "nginx:1").unwrap(),
            "reg.acme.com/mirror/first/library/nginx:1"
        );
        // a plain from is normalised like a reference
        let r = rules(&[("nginx", Some("web/")), ("docker.io/library/redis", None)]);
        assert_eq!(
            relocate(&r, "docker.io/library/nginx:1").unwrap(),
            "reg.acme.com/mirror/web:1"
        );
        assert_eq!(relocate(&r, "redis:7").unwrap(), "reg.acme.com/mirror/library/redis:7");
        // a prefix without a host means Docker Hub, as for the default mapping
        let prefix: RepositoryPrefix = "myuser".parse().unwrap();
        let img = Reference::parse_normalized("nginx:1").unwrap();
        assert_eq!(
            r.relocate(&prefix, "nginx:1", &img).unwrap().to_string(),
            "docker.io/myuser/web:1"
        );
    }

    #[test]
    fn rule_errors() {
        for (from, to, is_to, needle) in [
            ("nginx:1.25", None, false, "tag or digest"),
            (
                &*format!("nginx@sha256:{}", "a".repeat(64)),
                None,
                false,
                "tag or digest",
            ),
            ("Nginx", None, false, "lower case"),
            ("regex:(", None, false, "invalid regular expression"),
            ("nginx", Some("regex:x"), true, "no comma"),
        ] {
            let (which, why) = MappingRule::parse(from, to).expect_err(from);
            assert_eq!(which, is_to, "{from}: {why}");
            assert!(why.contains(needle), "{from}: {why}");
        }
        // a to expression that does not match N
        let r = rules(&[("regex:.*nginx", Some("regex:^quay\\.io/,x/"))]);
        let e = relocate(&r, "nginx:1").unwrap_err();
        assert!(
            matches!(&e, RuleError::ToDoesNotMatch { rule: 0, name, .. } if name == "docker.io/library/nginx"),
            "{e}"
        );
        // invalid results
        let r = rules(&[("nginx", Some("Web"))]);
        assert!(matches!(
            relocate(&r, "nginx:1").unwrap_err(),
            RuleError::InvalidResult { .. }
        ));
        let r = rules(&[("nginx", Some(&*"a".repeat(240)))]);
        let e = relocate(&r, "nginx:1").unwrap_err();
        assert!(e.to_string().contains("at most 255"), "{e}");
        let r = rules(&[("nginx", Some("regex:.*,"))]);
        assert!(relocate(&r, "nginx:1").unwrap_err().to_string().contains("empty"));
    }

    #[test]
    fn collisions() {
        let prefix: RepositoryPrefix = PREFIX.parse().unwrap();
        let r = rules(&[("regex:.*/(web|site)", Some("regex:.*/,same/"))]);
        let parse = |s: &str| (s.to_string(), Reference::parse_normalized(s).unwrap());
        let imgs = [parse("a.io/x/web:1"), parse("b.io/y/web:1")];
        let e = r
            .relocate_all(&prefix, imgs.iter().map(|(s, r)| (s.as_str(), r)))
            .unwrap_err();
        assert_eq!(
            e,
            RuleError::Collision {
                first: "a.io/x/web:1".into(),
                second: "b.io/y/web:1".into(),
                relocated: "reg.acme.com/mirror/same/web:1".into(),
            }
        );
        // the same name and tag twice is the same image; other tags and digest-only results
        // do not collide
        let d = format!("sha256:{}", "a".repeat(64));
        let imgs = [
            parse("a.io/x/web:1"),
            parse(&format!("a.io/x/web:1@{d}")),
            parse("b.io/y/web:2"),
            parse(&format!("b.io/y/web@{d}")),
            parse(&format!("c.io/z/web@{d}")),
            parse("quay.io/coreos/etcd:v3.5.0"),
        ];
        let out = r
            .relocate_all(&prefix, imgs.iter().map(|(s, r)| (s.as_str(), r)))
            .unwrap();
        assert_eq!(out.len(), 6);
        assert_eq!(out["b.io/y/web:2"].to_string(), "reg.acme.com/mirror/same/web:2");
    }
}
