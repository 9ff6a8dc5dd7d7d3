//! Which tags a mapping takes (SYNC.md §6): dregsy's `tags` list of `semver:` and `regex:`
//! filters, `keep:` prune filters, a `keep: latest N` count limit, and verbatim tags, digests
//! and `tag@sha256:` pins.
//!
//! Versions follow blang/semver v4.0.0, the library dregsy uses, ported here rather than taken
//! from the `semver` crate: blang reads tags tolerantly (`v1.5.0`, `1.0`, `2`), compares with
//! full SemVer precedence **pre-releases included** (`>=1.31.0 <1.31.9` selects `1.31.1-musl`),
//! ignores build metadata, and has its own range grammar (`||`, blank-separated AND, `1.2.x`
//! wildcards). The `semver` crate parses strictly, orders build metadata, and its `VersionReq`
//! follows npm/Cargo rules that leave pre-releases out, so it would select other tags.
//!
//! Where blang's range parser silently does something other than its documentation says, the
//! range is refused instead (a configuration error), so no file selects different tags here
//! than in dregsy without saying so: a one-character word (blang drops it: `! 1.0.0` would mean
//! `=1.0.0`, `1.0.0 - 2.0.0` would mean `=1.0.0 =2.0.0`), an empty `||` alternative (blang
//! panics when matching), and `!=` with a wildcard (blang expands `!=1.2.x` to
//! `<1.2.0 >=1.3.0`, which nothing satisfies). `1.x.x` is read as SYNC.md says, `>=1.0.0 <2.0.0`;
//! blang reads it as `>=1.0.0 <1.1.0`.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;

use crate::reference::{Algorithm, Digest, ManifestSelector};

/// The longest tag a registry accepts (distribution's grammar).
const TAG_LENGTH_MAX: usize = 128;

/// A version as blang/semver reads it: `MAJOR.MINOR.PATCH[-PRE][+BUILD]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre: Vec<Identifier>,
    build: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Identifier {
    Numeric(u64),
    Alphanumeric(String),
}

impl Identifier {
    fn cmp(&self, other: &Identifier) -> Ordering {
        match (self, other) {
            (Identifier::Numeric(a), Identifier::Numeric(b)) => a.cmp(b),
            (Identifier::Numeric(_), Identifier::Alphanumeric(_)) => Ordering::Less,
            (Identifier::Alphanumeric(_), Identifier::Numeric(_)) => Ordering::Greater,
            (Identifier::Alphanumeric(a), Identifier::Alphanumeric(b)) => a.cmp(b),
        }
    }
}

fn is_alphanumeric_identifier(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// blang's number check: digits only, no leading zero, fits in 64 bits.
fn number(s: &str, what: &str) -> Result<u64, String> {
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid character(s) in {what} number {s:?}"));
    }
    if s.len() > 1 && s.starts_with('0') {
        return Err(format!("{what} number {s:?} has a leading zero"));
    }
    s.parse()
        .map_err(|_| format!("{what} number {s:?} is empty or too large"))
}

impl Version {
    /// Strict SemVer 2.0.0 (blang's `Parse`).
    pub fn parse(s: &str) -> Result<Version, String> {
        if s.is_empty() {
            return Err("the version is empty".into());
        }
        let parts: Vec<&str> = s.splitn(3, '.').collect();
        if parts.len() != 3 {
            return Err(format!("{s:?} is not MAJOR.MINOR.PATCH"));
        }
        let major = number(parts[0], "major")?;
        let minor = number(parts[1], "minor")?;
        let mut patch = parts[2];
        let mut build = Vec::new();
        if let Some(i) = patch.find('+') {
            for b in patch[i + 1..].split('.') {
                if b.is_empty() || !is_alphanumeric_identifier(b) {
                    return Err(format!("invalid build metadata {b:?}"));
                }
                build.push(b.to_string());
            }
            patch = &patch[..i];
        }
        let mut pre = Vec::new();
        if let Some(i) = patch.find('-') {
            for p in patch[i + 1..].split('.') {
                if p.is_empty() {
                    return Err("empty pre-release identifier".into());
                }
                if p.bytes().all(|b| b.is_ascii_digit()) {
                    pre.push(Identifier::Numeric(number(p, "pre-release")?));
                } else if is_alphanumeric_identifier(p) {
                    pre.push(Identifier::Alphanumeric(p.to_string()));
                } else {
                    return Err(format!("invalid character(s) in pre-release {p:?}"));
                }
            }
            patch = &patch[..i];
        }
        let patch = number(patch, "patch")?;
        Ok(Version {
            major,
            minor,
            patch,
            pre,
            build,
        })
    }

    /// blang's `ParseTolerant`, how dregsy reads a tag: trimmed, one leading `v` dropped,
    /// leading zeros of each of the first three dot-separated parts stripped, and a short
    /// version without `-`/`+` in its last part padded with `.0`. `None` when the tag is not
    /// a version (`latest`, `1.31-musl`).
    pub fn parse_tolerant(tag: &str) -> Option<Version> {
        let s = tag.trim();
        let s = s.strip_prefix('v').unwrap_or(s);
        let mut parts: Vec<String> = s
            .splitn(3, '.')
            .map(|p| {
                if p.len() > 1 {
                    let t = p.trim_start_matches('0');
                    if t.is_empty() || !t.as_bytes()[0].is_ascii_digit() {
                        return format!("0{t}");
                    }
                    return t.to_string();
                }
                p.to_string()
            })
            .collect();
        if parts.len() < 3 {
            if parts.last().is_some_and(|p| p.contains(['+', '-'])) {
                return None;
            }
            parts.resize(3, "0".to_string());
        }
        Version::parse(&parts.join(".")).ok()
    }

    /// SemVer precedence: build metadata ignored, a pre-release below its release.
    pub fn precedence(&self, other: &Version) -> Ordering {
        let core = (self.major, self.minor, self.patch).cmp(&(other.major, other.minor, other.patch));
        if core != Ordering::Equal {
            return core;
        }
        match (self.pre.is_empty(), other.pre.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Greater,
            (false, true) => return Ordering::Less,
            _ => {}
        }
        for (a, b) in self.pre.iter().zip(&other.pre) {
            let c = a.cmp(b);
            if c != Ordering::Equal {
                return c;
            }
        }
        self.pre.len().cmp(&other.pre.len())
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        for (i, p) in self.pre.iter().enumerate() {
            f.write_str(if i == 0 { "-" } else { "." })?;
            match p {
                Identifier::Numeric(n) => write!(f, "{n}")?,
                Identifier::Alphanumeric(s) => f.write_str(s)?,
            }
        }
        if !self.build.is_empty() {
            write!(f, "+{}", self.build.join("."))?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Comparison {
    op: Op,
    version: Version,
}

impl Comparison {
    fn holds(&self, v: &Version) -> bool {
        let c = v.precedence(&self.version);
        match self.op {
            Op::Eq => c == Ordering::Equal,
            Op::Ne => c != Ordering::Equal,
            Op::Gt => c == Ordering::Greater,
            Op::Ge => c != Ordering::Less,
            Op::Lt => c == Ordering::Less,
            Op::Le => c != Ordering::Greater,
        }
    }
}

/// A blang/semver range (`ParseRange`): alternatives separated by `||`, each a list of
/// blank-separated comparisons that must all hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRange {
    alternatives: Vec<Vec<Comparison>>,
}

/// blang's `splitAndTrim`: split at spaces, except a space that follows an operator character
/// (so `>= 1.0.0` is one word), then remove the spaces inside each word.
fn range_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut last = None;
    for c in s.chars() {
        if c == ' ' {
            if !matches!(last, Some('>' | '<' | '=')) && !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
        } else {
            current.push(c);
            last = Some(c);
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

fn parse_op(op: &str) -> Result<Op, String> {
    Ok(match op {
        "" | "=" | "==" => Op::Eq,
        "!" | "!=" => Op::Ne,
        ">" => Op::Gt,
        ">=" => Op::Ge,
        "<" => Op::Lt,
        "<=" => Op::Le,
        "v" | "=v" | ">v" | ">=v" | "<v" | "<=v" | "!=v" | "!v" => {
            return Err("versions in a range have no 'v' prefix".into())
        }
        other => return Err(format!("unknown operator {other:?}")),
    })
}

fn version(major: u64, minor: u64) -> Version {
    Version {
        major,
        minor,
        patch: 0,
        pre: Vec::new(),
        build: Vec::new(),
    }
}

/// `N.x`, `N.x.x` → (N, None); `N.M.x` → (N, Some(M)).
fn wildcard(v: &str) -> Result<Option<(u64, Option<u64>)>, String> {
    let parts: Vec<&str> = v.split('.').collect();
    match parts.as_slice() {
        [major, "x"] | [major, "x", "x"] => Ok(Some((number(major, "major")?, None))),
        [major, minor, "x"] => Ok(Some((number(major, "major")?, Some(number(minor, "minor")?)))),
        _ => Ok(None),
    }
}

fn comparisons(word: &str) -> Result<Vec<Comparison>, String> {
    let Some(at) = word.find(|c: char| c.is_ascii_digit()) else {
        return Err(format!("{word:?} has no version"));
    };
    let op = parse_op(&word[..at])?;
    let text = &word[at..];
    let Some((major, minor)) = wildcard(text)? else {
        let version = Version::parse(text).map_err(|e| format!("{word:?}: {e} (a range needs full versions)"))?;
        return Ok(vec![Comparison { op, version }]);
    };
    let overflow = || format!("{word:?}: the version is too large");
    let low = version(major, minor.unwrap_or(0));
    let high = match minor {
        Some(m) => version(major, m.checked_add(1).ok_or_else(overflow)?),
        None => version(major.checked_add(1).ok_or_else(overflow)?, 0),
    };
    let c = |op, version| Comparison { op, version };
    Ok(match op {
        Op::Eq => vec![c(Op::Ge, low), c(Op::Lt, high)],
        Op::Gt => vec![c(Op::Ge, high)],
        Op::Ge => vec![c(Op::Ge, low)],
        Op::Lt => vec![c(Op::Lt, low)],
        Op::Le => vec![c(Op::Lt, high)],
        Op::Ne => {
            return Err(format!(
                "{word:?}: '!=' with a wildcard is not supported (blang/semver expands it to a range nothing satisfies)"
            ))
        }
    })
}

impl VersionRange {
    /// Parses a range such as `>=1.0.0 <2.0.0 || 3.1.x`.
    pub fn parse(s: &str) -> Result<VersionRange, String> {
        let words = range_words(s);
        if words.is_empty() {
            return Err("the range is empty".into());
        }
        let mut alternatives = vec![Vec::new()];
        for word in &words {
            if word == "||" {
                if alternatives.last().is_some_and(Vec::is_empty) {
                    return Err("'||' needs a comparison on both sides".into());
                }
                alternatives.push(Vec::new());
                continue;
            }
            if word.chars().count() == 1 {
                return Err(format!(
                    "{word:?} stands alone; write an operator against its version (\"!=1.0.0\", \">=1.0.0\")"
                ));
            }
            alternatives.last_mut().unwrap().extend(comparisons(word)?);
        }
        if alternatives.last().is_some_and(Vec::is_empty) {
            return Err("'||' needs a comparison on both sides".into());
        }
        Ok(VersionRange { alternatives })
    }

    /// Whether `v` satisfies one of the alternatives.
    pub fn matches(&self, v: &Version) -> bool {
        self.alternatives.iter().any(|all| all.iter().all(|c| c.holds(v)))
    }
}

/// A `regex:` or `keep:` filter: a Go RE2 expression that must match the whole tag, inverted
/// by a leading `!`.
#[derive(Debug, Clone)]
pub struct TagRegex {
    regex: Regex,
    inverted: bool,
}

impl TagRegex {
    /// Parses the text after `regex:` or `keep:`.
    pub fn parse(expr: &str) -> Result<TagRegex, String> {
        let expr = expr.trim();
        let (inverted, expr) = match expr.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, expr),
        };
        let regex =
            Regex::new(&format!("^(?:{expr})$")).map_err(|e| format!("invalid regular expression {expr:?}: {e}"))?;
        Ok(TagRegex { regex, inverted })
    }

    /// Whether the filter lets `tag` through.
    pub fn passes(&self, tag: &str) -> bool {
        self.regex.is_match(tag) != self.inverted
    }
}

/// A tag or digest to copy: what is read from the source and written to the target.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Selected {
    /// A tag: read and written by tag.
    Tag(String),
    /// A `sha256:` digest pin: read and written by digest.
    Digest(Digest),
    /// A `tag@sha256:` pin: read by digest, written under the tag.
    TagAtDigest {
        /// The tag written in the target.
        tag: String,
        /// The digest read from the source.
        digest: Digest,
    },
}

impl Selected {
    /// What is read from the source: the tag, or the digest of a pin.
    pub fn source(&self) -> ManifestSelector {
        match self {
            Selected::Tag(t) => ManifestSelector::Tag(t.clone()),
            Selected::Digest(d) | Selected::TagAtDigest { digest: d, .. } => ManifestSelector::Digest(d.clone()),
        }
    }

    /// What is written to the target: the tag, or the digest of a digest-only pin.
    pub fn target(&self) -> ManifestSelector {
        match self {
            Selected::Tag(t) | Selected::TagAtDigest { tag: t, .. } => ManifestSelector::Tag(t.clone()),
            Selected::Digest(d) => ManifestSelector::Digest(d.clone()),
        }
    }
}

/// The entry as written in `tags`.
impl fmt::Display for Selected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selected::Tag(t) => f.write_str(t),
            Selected::Digest(d) => write!(f, "{d}"),
            Selected::TagAtDigest { tag, digest } => write!(f, "{tag}@{digest}"),
        }
    }
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
fn check_tag(tag: &str) -> Result<(), String> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    if bytes.is_empty() {
        return Err("the tag is empty".into());
    }
    if bytes.len() > TAG_LENGTH_MAX {
        return Err(format!("a tag has at most {TAG_LENGTH_MAX} characters"));
    }
    if !word(bytes[0]) {
        return Err("a tag starts with a letter, digit or '_'".into());
    }
    if let Some(c) = tag
        .chars()
        .find(|c| !(c.is_ascii() && (word(*c as u8) || *c == '.' || *c == '-')))
    {
        return Err(format!("a tag has only letters, digits, '_', '.' and '-', not {c:?}"));
    }
    Ok(())
}

fn sha256(text: &str) -> Result<Digest, String> {
    match text.parse::<Digest>() {
        Ok(d) if d.algorithm() == Algorithm::Sha256 => Ok(d),
        _ => Err(format!("{text:?} is not sha256: and 64 lower-case hexadecimal digits")),
    }
}

/// A verbatim entry: a tag, `sha256:<hex>` or `<tag>@sha256:<hex>`.
fn parse_verbatim(entry: &str) -> Result<Selected, String> {
    if entry.starts_with("sha256:") {
        return Ok(Selected::Digest(sha256(entry)?));
    }
    if let Some((tag, digest)) = entry.split_once('@') {
        check_tag(tag)?;
        return Ok(Selected::TagAtDigest {
            tag: tag.to_string(),
            digest: sha256(digest)?,
        });
    }
    check_tag(entry)?;
    Ok(Selected::Tag(entry.to_string()))
}

/// One entry of `tags` that is neither a filter nor a valid tag or pin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tags[{index}] \"{entry}\": {reason}")]
pub struct TagSelectorError {
    /// Position of the entry in the list.
    pub index: usize,
    /// The entry, trimmed.
    pub entry: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A mapping's `tags`, parsed.
#[derive(Debug, Clone, Default)]
pub struct TagSelectors {
    semver: Vec<VersionRange>,
    regex: Vec<TagRegex>,
    keep: Vec<TagRegex>,
    keep_latest: Option<usize>,
    verbatim: Vec<Selected>,
}

/// `keep:` + blanks + `latest` + blanks + digits, the whole entry.
fn keep_latest(entry: &str) -> Option<&str> {
    let rest = entry.strip_prefix("keep:")?;
    let after_keep = rest.trim_start();
    if after_keep.len() == rest.len() {
        return None;
    }
    let after_latest = after_keep.strip_prefix("latest")?;
    let digits = after_latest.trim_start();
    if digits.len() == after_latest.len() || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits)
}

impl TagSelectors {
    /// Classifies each entry (trimmed) in SYNC.md's order: `semver:`, `regex:`,
    /// `keep: latest N`, `keep:`, verbatim.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<TagSelectors, TagSelectorError> {
        let mut out = TagSelectors::default();
        for (index, entry) in entries.iter().enumerate() {
            let entry = entry.as_ref().trim();
            let bad = |reason: String| TagSelectorError {
                index,
                entry: entry.to_string(),
                reason,
            };
            if let Some(range) = entry.strip_prefix("semver:") {
                out.semver
                    .push(VersionRange::parse(range).map_err(|e| bad(format!("invalid semver range: {e}")))?);
            } else if let Some(expr) = entry.strip_prefix("regex:") {
                out.regex.push(TagRegex::parse(expr).map_err(bad)?);
            } else if let Some(digits) = keep_latest(entry) {
                let n = digits
                    .parse::<usize>()
                    .map_err(|_| bad(format!("the count {digits} is too large")))?;
                // dregsy: a count of 0 means no limit
                out.keep_latest = (n > 0).then_some(n);
            } else if let Some(expr) = entry.strip_prefix("keep:") {
                out.keep.push(TagRegex::parse(expr).map_err(bad)?);
            } else {
                let v = parse_verbatim(entry).map_err(|e| {
                    bad(format!(
                        "{e}; an entry is semver:RANGE, regex:EXPR, keep:EXPR, keep: latest N, a tag, sha256:DIGEST or TAG@sha256:DIGEST"
                    ))
                })?;
                out.verbatim.push(v);
            }
        }
        Ok(out)
    }

    /// Whether the repository's tags must be listed: unless the list holds only verbatim
    /// entries (and `keep:` filters, which never prune verbatim entries).
    pub fn needs_listing(&self) -> bool {
        !self.semver.is_empty() || !self.regex.is_empty() || self.verbatim.is_empty()
    }

    /// The count limit of `keep: latest N` (the last one written).
    pub fn keep_latest(&self) -> Option<usize> {
        self.keep_latest
    }

    /// Whether nothing restricts the tags (no entry, or only `keep:` ones).
    pub fn takes_all_tags(&self) -> bool {
        self.semver.is_empty() && self.regex.is_empty() && self.verbatim.is_empty()
    }
}

/// `select_tags` was not given the tag listing its filters need.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the tag filters need the repository's tag list")]
pub struct ListingRequired;

/// The tags a mapping copies from a repository whose tags are `available` (SYNC.md §6):
/// candidates (all tags, or those passing at least one `semver:`/`regex:` filter, or none
/// when only verbatim entries are given), pruned by every `keep:` filter, plus the verbatim
/// entries, cut to the `keep: latest N` highest versions (non-versions all kept), without
/// duplicates, in ascending order of their text.
///
/// `available` may be `None` only when [`TagSelectors::needs_listing`] is false.
pub fn select_tags(selectors: &TagSelectors, available: Option<&[String]>) -> Result<Vec<Selected>, ListingRequired> {
    let mut chosen: BTreeMap<String, Selected> = BTreeMap::new();
    if selectors.needs_listing() {
        let tags = available.ok_or(ListingRequired)?;
        let filtered = !selectors.semver.is_empty() || !selectors.regex.is_empty();
        for tag in tags {
            let candidate = !filtered
                || selectors.regex.iter().any(|r| r.passes(tag))
                || (!selectors.semver.is_empty()
                    && Version::parse_tolerant(tag).is_some_and(|v| selectors.semver.iter().any(|r| r.matches(&v))));
            if candidate && selectors.keep.iter().all(|k| k.passes(tag)) {
                chosen.insert(tag.clone(), Selected::Tag(tag.clone()));
            }
        }
    }
    for v in &selectors.verbatim {
        chosen.insert(v.to_string(), v.clone());
    }
    if let Some(n) = selectors.keep_latest {
        limit(&mut chosen, n);
    }
    Ok(chosen.into_values().collect())
}

/// `keep: latest N`: of the entries that read as versions, the N highest (ties broken by
/// the text, descending); every other entry stays. Without any version: the last N in
/// ascending text order.
fn limit(chosen: &mut BTreeMap<String, Selected>, n: usize) {
    let mut versions: Vec<(Version, String)> = chosen
        .keys()
        .filter_map(|text| Version::parse_tolerant(text).map(|v| (v, text.clone())))
        .collect();
    if versions.is_empty() {
        let drop: Vec<String> = chosen.keys().rev().skip(n).cloned().collect();
        for text in drop {
            chosen.remove(&text);
        }
        return;
    }
    versions.sort_by(|(a, at), (b, bt)| b.precedence(a).then_with(|| bt.cmp(at)));
    for (_, text) in versions.into_iter().skip(n) {
        chosen.remove(&text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1d8a02c7a89283870e8dd6bb93dc66bc258e294491a6bbeb193a044ed88773ea";
    const D2: &str = "sha256:ff4a7f382ff23a8f716741b6e60ef70a4986af3aff22d26e1f0e0cb4fde29289";

    fn selectors(entries: &[&str]) -> TagSelectors {
        TagSelectors::parse(entries).unwrap_or_else(|e| panic!("{entries:?}: {e}"))
    }

    fn select(entries: &[&str], available: &[&str]) -> Vec<String> {
        let available: Vec<String> = available.iter().map(|s| s.to_string()).collect();
        select_tags(&selectors(entries), Some(&available))
            .unwrap()
            .iter()
            .map(Selected::to_string)
            .collect()
    }

    fn sorted(mut v: Vec<&str>) -> Vec<String> {
        v.sort();
        v.into_iter().map(str::to_string).collect()
    }

    /// SYNC.md §6's example repository.
    const REPO: &[&str] = &["1.0", "1.1", "2.0", "latest", "v1.5.0", "2.0.0-rc1"];

    #[test]
    fn sync_md_examples() {
        let cases: &[(&[&str], &[&str])] = &[
            (&[], REPO),
            (&["1.0", "latest"], &["1.0", "latest"]),
            (&["semver: >=1.1.0 <2.0.0"], &["1.1", "v1.5.0", "2.0.0-rc1"]),
            (&[r"regex: 1\..*"], &["1.0", "1.1"]),
            (&[r"regex: !.*\..*"], &["latest"]),
            (
                &["semver: >=1.0.0", r"keep: .*\.0", "latest"],
                &["1.0", "2.0", "v1.5.0", "latest"],
            ),
            (
                &["semver: >=0.0.0", "keep: latest 2", "latest"],
                &["2.0", "2.0.0-rc1", "latest"],
            ),
        ];
        for (entries, want) in cases {
            assert_eq!(select(entries, REPO), sorted(want.to_vec()), "{entries:?}");
        }
    }

    #[test]
    fn sync_md_digest_pins() {
        let d_of_1_1 = format!("sha256:{}", "1".repeat(64));
        let d_of_2_0 = format!("sha256:{}", "2".repeat(64));
        let s = selectors(&[&format!("stable@{d_of_1_1}"), &d_of_2_0]);
        assert!(!s.needs_listing(), "pins alone need no listing");
        let got = select_tags(&s, None).unwrap();
        let d1: Digest = d_of_1_1.parse().unwrap();
        let d2: Digest = d_of_2_0.parse().unwrap();
        assert_eq!(
            got,
            vec![
                Selected::Digest(d2.clone()),
                Selected::TagAtDigest {
                    tag: "stable".into(),
                    digest: d1.clone()
                },
            ]
        );
        // read by digest, written under the tag when there is one
        assert_eq!(got[1].source(), ManifestSelector::Digest(d1));
        assert_eq!(got[1].target(), ManifestSelector::Tag("stable".into()));
        assert_eq!(got[0].source(), ManifestSelector::Digest(d2.clone()));
        assert_eq!(got[0].target(), ManifestSelector::Digest(d2));
    }

    /// A busybox-like tag list for dregsy's e2e tag-set fixtures and their expectations
    /// (cmd/dregsy/main_test.go).
    const BUSYBOX: &[&str] = &[
        "1.26.1-glibc",
        "1.26.1-musl",
        "1.26.1-uclibc",
        "1.26.2",
        "1.29.2",
        "1.29.3",
        "1.30.1",
        "1.30.1-glibc",
        "1.31",
        "1.31-musl",
        "1.31.0",
        "1.31.1",
        "1.31.1-glibc",
        "1.31.1-musl",
        "1.31.1-uclibc",
        "1.32.0",
        "1.33.0",
        "1.33.1",
        "1.34.1",
        "1.35.0",
        "1.35.0-uclibc",
        "1.36",
        "1.36.0",
        "1.36.0-glibc",
        "1.36.0-musl",
        "1.36.0-uclibc",
        "1.36.1",
        "glibc",
        "latest",
        "musl",
        "stable",
        "uclibc",
    ];

    #[test]
    fn dregsy_e2e_tag_sets() {
        // tagsets/*-range.yaml
        assert_eq!(
            select(&["semver: >=1.31.0 <1.31.9", "latest"], BUSYBOX),
            sorted(vec![
                "latest",
                "1.31",
                "1.31.0",
                "1.31.1-musl",
                "1.31.1",
                "1.31.1-uclibc",
                "1.31.1-glibc"
            ])
        );
        // tagsets/*-prune.yaml
        assert_eq!(
            select(&["semver: >=1.31.0 <1.31.9", "keep: .+(glibc|musl)"], BUSYBOX),
            sorted(vec!["1.31.1-musl", "1.31.1-glibc"])
        );
        // tagsets/*-regex.yaml: the second task reads what the first wrote
        let first = select(&[r"regex: 1\.26\.1-(glibc|uclibc|musl)"], BUSYBOX);
        assert_eq!(first, sorted(vec!["1.26.1-musl", "1.26.1-glibc", "1.26.1-uclibc"]));
        let written: Vec<&str> = first.iter().map(String::as_str).collect();
        assert_eq!(
            select(&["regex: !.+(glibc|musl)"], &written),
            sorted(vec!["1.26.1-uclibc"])
        );
        // tagsets/*-limit.yaml
        assert_eq!(
            select(&["glibc", "semver: >=1.33.0 <=1.36.0", "keep: latest 5"], BUSYBOX),
            sorted(vec![
                "1.36",
                "1.36.0",
                "1.36.0-glibc",
                "1.36.0-musl",
                "1.36.0-uclibc",
                "glibc"
            ])
        );
        // tagsets/*-digest.yaml: verbatim pins survive a prune filter that matches none of them
        let pin = format!("1.35.0-uclibc@{D2}");
        let s = selectors(&[D1, &pin, "keep: all.+"]);
        assert!(!s.needs_listing());
        let got: Vec<String> = select_tags(&s, None).unwrap().iter().map(Selected::to_string).collect();
        assert_eq!(got, sorted(vec![D1, &pin]));
    }

    #[test]
    fn readme_examples() {
        let tags = [
            "1.26.1-glibc",
            "1.26.3-musl",
            "1.26.3-alpine",
            "1.29.4",
            "1.31.0",
            "1.31.9",
            "latest",
            "2.1.4-buster",
            "2.1.4-alpine",
            "2.1.4-stretch",
            "1.9.0-buster",
            "2.0.0",
        ];
        assert_eq!(
            select(
                &[
                    "semver: >=1.31.0 <1.31.9",
                    r"regex: 1\.26\.[0-9]-(glibc|uclibc|musl)",
                    "1.29.4",
                    "latest"
                ],
                &tags
            ),
            sorted(vec!["1.26.1-glibc", "1.26.3-musl", "1.29.4", "1.31.0", "latest"])
        );
        assert_eq!(
            select(&["latest", "semver: >=2.0.0", "keep: .+-(alpine|buster)"], &tags),
            sorted(vec!["2.1.4-buster", "2.1.4-alpine", "latest"])
        );
    }

    #[test]
    fn candidates_listing_and_verbatim() {
        let s = selectors(&["latest", "1.0"]);
        assert!(!s.needs_listing());
        assert_eq!(select_tags(&s, None).unwrap().len(), 2);
        // a verbatim tag the source lacks is still selected (its pair fails later)
        assert_eq!(select(&["nope"], REPO), ["nope"]);
        // only keep: entries → all tags, pruned
        let s = selectors(&["keep: 1.*"]);
        assert!(s.needs_listing() && s.takes_all_tags());
        assert_eq!(select_tags(&s, None), Err(ListingRequired));
        assert_eq!(select(&["keep: 1.*"], REPO), ["1.0", "1.1"]);
        // keep: never removes verbatim entries; a tag both verbatim and selected comes once
        assert_eq!(select(&["regex: 1\\..*", "keep: !1\\.0", "1.0"], REPO), ["1.0", "1.1"]);
        // filters are ORed
        assert_eq!(select(&["semver: >=2.0.0", "regex: lat.*"], REPO), ["2.0", "latest"]);
        // several prune filters: a tag must pass all of them
        assert_eq!(
            select(&["keep: .*\\..*", "keep: !v.*", "keep: !.*-.*"], REPO),
            ["1.0", "1.1", "2.0"]
        );
        // whole-tag match: regex: 1\..* does not take v1.5.0
        assert!(!select(&[r"regex: 1\..*"], REPO).contains(&"v1.5.0".to_string()));
        // duplicates in the listing or among verbatim entries come once
        assert_eq!(select(&["latest", "latest"], &["latest", "latest"]), ["latest"]);
    }

    #[test]
    fn count_limit() {
        // equal precedence: the string order decides, descending (1.36.0 before 1.36)
        assert_eq!(select(&["keep: latest 1"], &["1.36", "1.36.0", "1.35.0"]), ["1.36.0"]);
        assert_eq!(
            select(&["keep: latest 2"], &["1.36", "1.36.0", "1.35.0"]),
            ["1.36", "1.36.0"]
        );
        // no versions at all: the last N in ascending string order
        assert_eq!(select(&["keep: latest 2"], &["a", "c", "b", "latest"]), ["c", "latest"]);
        // non-versions are all kept
        assert_eq!(
            select(&["keep: latest 1"], &["x", "y", "1.0", "2.0"]),
            ["2.0", "x", "y"]
        );
        // the last count limit wins; whitespace between the words
        assert_eq!(select(&["keep: latest 1", "keep:\tlatest   3"], REPO).len(), 4);
        // 0 means no limit (as in dregsy)
        assert_eq!(select(&["keep: latest 0"], REPO).len(), 6);
        // verbatim entries take part; pins never read as versions
        let pin = format!("9.9.9@{D1}");
        assert_eq!(
            select(&["keep: latest 1", "3.0", &pin], REPO),
            sorted(vec!["3.0", &pin])
        );
        assert_eq!(
            select(&["keep: latest 1", "regex: .*", "3.0", &pin], REPO),
            sorted(vec!["3.0", "latest", &pin])
        );
        // "keep:latest 5" (no blank after keep:) is a prune filter for the tag "latest 5"
        assert_eq!(select(&["keep:latest 5"], REPO), Vec::<String>::new());
        // build metadata has no precedence
        assert_eq!(select(&["keep: latest 1"], &["1.0.0+b", "1.0.0+a"]), ["1.0.0+b"]);
    }

    #[test]
    fn tolerant_versions() {
        for (tag, want) in [
            ("1.0", Some("1.0.0")),
            ("2", Some("2.0.0")),
            ("v1.5.0", Some("1.5.0")),
            ("1.31.1-musl", Some("1.31.1-musl")),
            (" 01.002.0003 ", Some("1.2.3")),
            ("1.36.0-glibc", Some("1.36.0-glibc")),
            ("1.0.0+build.1", Some("1.0.0+build.1")),
            ("00", Some("0.0.0")),
            ("1.31-musl", None),
            ("1-rc", None),
            ("latest", None),
            ("stable", None),
            ("vv1.0", None),
            ("1.2.3.4", None),
            ("1.2.3-01", None),
            ("1.2.3-", None),
            ("", None),
            ("18446744073709551616", None),
        ] {
            assert_eq!(
                Version::parse_tolerant(tag).map(|v| v.to_string()),
                want.map(str::to_string),
                "{tag:?}"
            );
        }
    }

    #[test]
    fn precedence_is_semver_2() {
        let order = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.1.0",
            "2.0.0",
        ];
        for w in order.windows(2) {
            let (a, b) = (Version::parse(w[0]).unwrap(), Version::parse(w[1]).unwrap());
            assert_eq!(a.precedence(&b), Ordering::Less, "{} < {}", w[0], w[1]);
        }
    }

    fn matches(range: &str, version: &str) -> bool {
        let r = VersionRange::parse(range).unwrap_or_else(|e| panic!("{range}: {e}"));
        r.matches(&Version::parse(version).unwrap())
    }

    #[test]
    fn ranges() {
        // (range, versions in, versions out) — blang/semver's range tests and SYNC.md's rules
        let cases: &[(&str, &[&str], &[&str])] = &[
            (
                ">=1.31.0 <1.31.9",
                &["1.31.0", "1.31.1", "1.31.1-musl", "1.31.8"],
                &["1.31.9", "1.31.0-rc1", "1.30.9"],
            ),
            ("1.0.0", &["1.0.0", "1.0.0+b"], &["1.0.1", "1.0.0-rc"]),
            ("=1.0.0", &["1.0.0"], &["1.0.1"]),
            ("==1.0.0", &["1.0.0"], &["1.0.1"]),
            ("!1.0.0", &["1.0.1"], &["1.0.0"]),
            ("!=1.0.0", &["1.0.1"], &["1.0.0"]),
            (">1.0.0", &["1.0.1", "1.1.0-rc"], &["1.0.0", "0.9.0"]),
            ("<1.0.0", &["0.9.9", "1.0.0-rc"], &["1.0.0"]),
            ("<=1.0.0", &["1.0.0", "0.1.0"], &["1.0.1"]),
            (">= 1.0.0", &["1.0.0"], &["0.9.0"]),
            (">=  1.0.0   <  2.0.0", &["1.5.0"], &["2.0.0"]),
            (
                ">1.0.0 <3.0.0 !2.0.3-beta.2",
                &["2.0.3", "2.0.3-beta.1"],
                &["2.0.3-beta.2", "3.0.0"],
            ),
            ("<2.0.0 || >=3.0.0", &["1.9.9", "3.1.1"], &["2.0.0", "2.9.9"]),
            (
                ">1.0.0 <2.0.0 || >3.0.0 !4.2.1",
                &["1.2.3", "1.9.9", "3.1.1"],
                &["4.2.1", "2.1.1"],
            ),
            ("1.2.x", &["1.2.0", "1.2.9"], &["1.3.0", "1.1.9", "1.2.0-rc"]),
            ("1.x", &["1.0.0", "1.9.9"], &["2.0.0", "0.9.0"]),
            ("1.x.x", &["1.0.0", "1.9.9"], &["2.0.0"]),
            (">1.2.x", &["1.3.0"], &["1.2.9"]),
            (">1.x", &["2.0.0"], &["1.9.9"]),
            ("<=1.2.x", &["1.2.9"], &["1.3.0"]),
            ("<=1.x", &["1.9.9"], &["2.0.0"]),
            (">=1.2.x", &["1.2.0"], &["1.1.9"]),
            ("<1.2.x", &["1.1.9"], &["1.2.0"]),
            ("1.x || >=2.0.x <2.2.x", &["1.5.0", "2.1.9"], &["2.2.0", "0.1.0"]),
            (">=1.0.0-x", &["1.0.0-y", "1.0.0"], &["1.0.0-a"]),
        ];
        for (range, yes, no) in cases {
            for v in *yes {
                assert!(matches(range, v), "{range} should take {v}");
            }
            for v in *no {
                assert!(!matches(range, v), "{range} should not take {v}");
            }
        }
    }

    #[test]
    fn invalid_ranges() {
        for (range, needle) in [
            ("", "empty"),
            ("   ", "empty"),
            ("|| >1.0.0", "both sides"),
            (">1.0.0 ||", "both sides"),
            (">1.0.0 || || <0.1.0", "both sides"),
            (">=1.0", "full versions"),
            (">=v1.0.0", "'v' prefix"),
            ("~1.0.0", "unknown operator"),
            ("^1.0.0", "unknown operator"),
            (">=1.0.0-beta <", "stands alone"),
            ("! 1.0.0", "stands alone"),
            ("1.0.0 - 2.0.0", "stands alone"),
            ("!=1.2.x", "wildcard"),
            ("!1.x", "wildcard"),
            (">=1.0.0\t<2.0.0", "full versions"),
            (">=1.0.0||<0.5.0", "patch number"),
            ("x", "stands alone"),
            (">x", "no version"),
            ("latest", "no version"),
            ("01.0.0", "leading zero"),
            ("18446744073709551615.x", "too large"),
        ] {
            let e = VersionRange::parse(range).expect_err(range);
            assert!(e.contains(needle), "{range:?}: {e}");
        }
    }

    #[test]
    fn invalid_selectors_name_the_entry() {
        for (entries, index, needle) in [
            (vec!["latest", "semver: >=1.0"], 1, "invalid semver range"),
            (vec!["regex: ("], 0, "invalid regular expression"),
            (vec!["keep: ["], 0, "invalid regular expression"),
            (vec!["keep: latest 99999999999999999999999"], 0, "too large"),
            (vec!["sha256:abc"], 0, "64 lower-case"),
            (vec![&format!("sha256:{}", "A".repeat(64))], 0, "64 lower-case"),
            (vec!["sha512:abc"], 0, "a tag has only"),
            (vec!["1.0@sha256:abc"], 0, "64 lower-case"),
            (vec!["bad tag"], 0, "a tag has only"),
            (vec![".hidden"], 0, "starts with"),
            (vec![""], 0, "empty"),
            (vec!["Semver: >=1.0.0"], 0, "a tag has only"),
            (vec![&"a".repeat(129)], 0, "at most 128"),
        ] {
            let e = TagSelectors::parse(&entries).expect_err(&format!("{entries:?}"));
            assert_eq!(e.index, index, "{e}");
            assert!(e.to_string().contains(needle), "{entries:?}: {e}");
            assert!(e.to_string().starts_with(&format!("tags[{index}]")), "{e}");
        }
        // entries are trimmed before they are classified
        assert!(TagSelectors::parse(&["  semver: >=1.0.0  ", " latest "]).is_ok());
        assert!(TagSelectors::parse(&[format!("v1@{D1}"), "Latest_1.0-x".into()]).is_ok());
    }
}
