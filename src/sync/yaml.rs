//! The YAML of dregsy configurations and mapping-rule files, read the way dregsy's
//! `gopkg.in/yaml.v2` reads it, into a small tree of nodes that remember their line.
//!
//! Why events from `saphyr-parser` rather than a serde data format:
//!
//! * **Scalars keep their text.** Every scalar arrives as the characters written, with its style
//!   (plain or quoted). Nothing is resolved to a number on the way, so `tags: [1.0, 1.10]` are
//!   the tags `1.0` and `1.10` and `010` stays `010`; yaml.v2 does the same when it decodes into
//!   Go strings. The few typed keys (`skip-tls-verify`, `interval`, …) are resolved here with
//!   YAML 1.1's rules (`yes`/`on`/`y` are booleans, `0x1f` and `017` are integers), which a
//!   YAML 1.2 library would not do.
//! * **Every node has a line and column**, so any error, not only a syntax error, can say
//!   where it is (`unknown field 'tagz' at line 12 column 5`).
//! * **Soundness and upkeep.** `saphyr-parser` is pure safe Rust, maintained (the successor of
//!   yaml-rust/yaml-rust2, passing the YAML test suite), with one small dependency. `serde_yaml`
//!   is archived; its forks `serde_yaml_ng` and `serde_norway` sit on `unsafe-libyaml`, a
//!   machine translation of libyaml's C; `serde_yml` has a RustSec unsoundness advisory
//!   (RUSTSEC-2025-0068). A config file is small, so a hand-walked tree costs nothing.
//!
//! Anchors and aliases are expanded (an alias is a copy of the anchored node, positions
//! included); merge keys (`<<: *base`, `<<: [*a, *b]`) are applied as yaml.v2 applies them:
//! keys written in the mapping win, then the merged mappings in order. Only the first document
//! of a stream is a configuration; a second one is an error rather than silently ignored.

use std::collections::HashMap;
use std::fmt;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};

/// Nodes an alias-heavy file may expand to ("billion laughs" stops here, not in memory).
const MAX_NODES: usize = 1_000_000;

/// Where a node starts: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {} column {}", self.line, self.column)
    }
}

impl Pos {
    fn of(span: &Span) -> Pos {
        Pos {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

/// A YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub kind: Kind,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// A scalar's text as written; `plain` when unquoted, not a block scalar and untagged (the
    /// only scalars YAML resolves to null, booleans or numbers).
    Scalar {
        text: String,
        plain: bool,
        tag: Option<String>,
    },
    Seq(Vec<Node>),
    /// Entries in file order, merge keys already applied.
    Map(Vec<(Node, Node)>),
}

/// A file that is not YAML, or not one document of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct YamlError {
    pub message: String,
    pub pos: Pos,
}

impl Node {
    /// What a node is, for messages: "a list", "a mapping", "the text \"x\"".
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Scalar { .. } if self.is_null() => "empty".into(),
            Kind::Scalar { text, .. } => format!("the text {text:?}"),
            Kind::Seq(_) => "a list".into(),
            Kind::Map(_) => "a mapping".into(),
        }
    }

    /// YAML null: `~`, `null`, `Null`, `NULL` or nothing, unquoted (or tagged `!!null`).
    pub fn is_null(&self) -> bool {
        match &self.kind {
            Kind::Scalar { text, plain, tag } => {
                (*plain && matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
                    || tag.as_deref() == Some("!!null")
            }
            _ => false,
        }
    }

    /// The text of a scalar that is not null.
    pub fn text(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { text, .. } if !self.is_null() => Some(text),
            _ => None,
        }
    }

    /// A YAML 1.1 boolean as yaml.v2 resolves it: `true/false`, `yes/no`, `on/off`, `y/n`, in
    /// lower, Capitalised or UPPER case; unquoted (or tagged `!!bool`).
    pub fn as_bool(&self) -> Option<bool> {
        let Kind::Scalar { text, plain, tag } = &self.kind else {
            return None;
        };
        if !*plain && tag.as_deref() != Some("!!bool") {
            return None;
        }
        match text.as_str() {
            "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Some(true),
            "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Some(false),
            _ => None,
        }
    }

    /// A YAML 1.1 integer as yaml.v2 resolves it (Go's `ParseInt(s, 0, 64)` after removing
    /// `_`): decimal, `0x` hex, `0o` or leading-`0` octal, `0b` binary, with a sign; unquoted
    /// (or tagged `!!int`).
    pub fn as_int(&self) -> Option<i64> {
        let Kind::Scalar { text, plain, tag } = &self.kind else {
            return None;
        };
        if !*plain && tag.as_deref() != Some("!!int") {
            return None;
        }
        parse_yaml11_int(text)
    }

    /// Entries of a mapping.
    pub fn entries(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            Kind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// Items of a list.
    pub fn items(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Seq(items) => Some(items),
            _ => None,
        }
    }
}

fn parse_yaml11_int(text: &str) -> Option<i64> {
    let s: String = text.chars().filter(|c| *c != '_').collect();
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, &s[..]),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(rest) = lower.strip_prefix("0x") {
        (16, rest)
    } else if let Some(rest) = lower.strip_prefix("0o") {
        (8, rest)
    } else if let Some(rest) = lower.strip_prefix("0b") {
        (2, rest)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, &lower[..])
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i128::from_str_radix(body, radix).ok()?;
    let value = if negative { -magnitude } else { magnitude };
    i64::try_from(value).ok()
}

fn tag_name(tag: &Tag) -> String {
    if tag.is_yaml_core_schema() || tag.handle == "!!" {
        format!("!!{}", tag.suffix)
    } else {
        tag.to_string()
    }
}

enum Frame {
    Seq {
        items: Vec<Node>,
        pos: Pos,
        anchor: usize,
    },
    Map {
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        pos: Pos,
        anchor: usize,
    },
}

/// Reads the first (only) document of `text`; `None` when the file holds no document (empty,
/// or only comments).
pub(crate) fn load(text: &str) -> Result<Option<Node>, YamlError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut root: Option<Node> = None;
    let mut documents = 0;
    let mut nodes = 0usize;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| YamlError {
            message: e.info().to_string(),
            pos: Pos {
                line: e.marker().line(),
                column: e.marker().col() + 1,
            },
        })?;
        let pos = Pos::of(&span);
        let done = match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(YamlError {
                        message:
                            "a second YAML document (after \"---\") is not supported: a configuration is one document"
                                .into(),
                        pos,
                    });
                }
                None
            }
            Event::Scalar(value, style, anchor, tag) => {
                let tag = tag.map(|t| tag_name(&t));
                let node = Node {
                    kind: Kind::Scalar {
                        text: value.into_owned(),
                        plain: style == ScalarStyle::Plain && tag.is_none(),
                        tag,
                    },
                    pos,
                };
                Some((node, anchor))
            }
            Event::Alias(id) => {
                let node = anchors.get(&id).cloned().ok_or_else(|| YamlError {
                    message: "alias to an unknown anchor".into(),
                    pos,
                })?;
                nodes += count(&node);
                Some((node, 0))
            }
            Event::SequenceStart(anchor, _) => {
                stack.push(Frame::Seq {
                    items: Vec::new(),
                    pos,
                    anchor,
                });
                None
            }
            Event::MappingStart(anchor, _) => {
                stack.push(Frame::Map {
                    entries: Vec::new(),
                    key: None,
                    pos,
                    anchor,
                });
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq { items, pos, anchor }) => Some((
                    Node {
                        kind: Kind::Seq(items),
                        pos,
                    },
                    anchor,
                )),
                _ => unreachable!("the parser pairs sequence events"),
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map {
                    entries, pos, anchor, ..
                }) => Some((
                    Node {
                        kind: Kind::Map(merge(entries)?),
                        pos,
                    },
                    anchor,
                )),
                _ => unreachable!("the parser pairs mapping events"),
            },
            _ => None,
        };
        let Some((node, anchor)) = done else {
            continue;
        };
        nodes += 1;
        if nodes > MAX_NODES {
            return Err(YamlError {
                message: format!("the document expands to more than {MAX_NODES} nodes (aliases of aliases?)"),
                pos,
            });
        }
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
        }
    }
    Ok(root)
}

fn count(node: &Node) -> usize {
    match &node.kind {
        Kind::Scalar { .. } => 1,
        Kind::Seq(items) => 1 + items.iter().map(count).sum::<usize>(),
        Kind::Map(entries) => 1 + entries.iter().map(|(k, v)| count(k) + count(v)).sum::<usize>(),
    }
}

fn is_merge_key(node: &Node) -> bool {
    matches!(&node.kind, Kind::Scalar { text, plain: true, .. } if text == "<<")
}

/// Applies merge keys: the mapping's own keys first, then those of each merged mapping not
/// already present, in order.
fn merge(entries: Vec<(Node, Node)>) -> Result<Vec<(Node, Node)>, YamlError> {
    if !entries.iter().any(|(k, _)| is_merge_key(k)) {
        return Ok(entries);
    }
    let mut own = Vec::new();
    let mut merged = Vec::new();
    for (key, value) in entries {
        if !is_merge_key(&key) {
            own.push((key, value));
            continue;
        }
        let sources = match value.kind {
            Kind::Map(_) => vec![value],
            Kind::Seq(items) if items.iter().all(|i| matches!(i.kind, Kind::Map(_))) => items,
            _ => {
                return Err(YamlError {
                    message: "a merge key (<<) takes a mapping or a list of mappings".into(),
                    pos: key.pos,
                })
            }
        };
        for source in sources {
            if let Kind::Map(inner) = source.kind {
                merged.extend(inner);
            }
        }
    }
    let mut out = own;
    for (key, value) in merged {
        let present = out.iter().any(|(k, _)| same_key(k, &key));
        if !present {
            out.push((key, value));
        }
    }
    Ok(out)
}

fn same_key(a: &Node, b: &Node) -> bool {
    match (&a.kind, &b.kind) {
        (Kind::Scalar { text: x, .. }, Kind::Scalar { text: y, .. }) => x == y,
        _ => a.kind == b.kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Node {
        load(text)
            .unwrap_or_else(|e| panic!("{text}: {e:?}"))
            .expect("a document")
    }

    fn get<'a>(node: &'a Node, key: &str) -> &'a Node {
        node.entries()
            .unwrap()
            .iter()
            .find(|(k, _)| k.text() == Some(key))
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no {key}"))
    }

    #[test]
    fn scalars_keep_their_text() {
        let d = doc("tags: [1.0, 1.10, 010, latest, '1.0', \"x\", 1e3, 0x1f, ~]\n");
        let texts: Vec<Option<&str>> = get(&d, "tags").items().unwrap().iter().map(Node::text).collect();
        assert_eq!(
            texts,
            [
                Some("1.0"),
                Some("1.10"),
                Some("010"),
                Some("latest"),
                Some("1.0"),
                Some("x"),
                Some("1e3"),
                Some("0x1f"),
                None
            ]
        );
    }

    #[test]
    fn yaml_1_1_booleans_and_integers() {
        for (text, want) in [
            ("true", Some(true)),
            ("Yes", Some(true)),
            ("ON", Some(true)),
            ("y", Some(true)),
            ("off", Some(false)),
            ("N", Some(false)),
            ("FALSE", Some(false)),
            ("'true'", None),
            ("1", None),
            ("tRue", None),
        ] {
            assert_eq!(get(&doc(&format!("k: {text}")), "k").as_bool(), want, "{text}");
        }
        for (text, want) in [
            ("60", Some(60)),
            ("-10", Some(-10)),
            ("+3", Some(3)),
            ("0x1F", Some(31)),
            ("017", Some(15)),
            ("0o17", Some(15)),
            ("0b101", Some(5)),
            ("1_000", Some(1000)),
            ("0", Some(0)),
            ("'60'", None),
            ("6.0", None),
            ("08", None),
            ("99999999999999999999", None),
            ("1h", None),
        ] {
            assert_eq!(get(&doc(&format!("k: {text}")), "k").as_int(), want, "{text}");
        }
    }

    #[test]
    fn nulls() {
        let d = doc("a:\nb: ~\nc: null\nd: 'null'\ne: \"\"\nf: NULL\n");
        for (k, null) in [
            ("a", true),
            ("b", true),
            ("c", true),
            ("d", false),
            ("e", false),
            ("f", true),
        ] {
            assert_eq!(get(&d, k).is_null(), null, "{k}");
        }
        assert_eq!(get(&d, "e").text(), Some(""));
    }

    #[test]
    fn positions_are_one_based() {
        let d = doc("tasks:\n- name: a\n  mappings:\n  - from: x\n    tagz: [1]\n");
        let task = &get(&d, "tasks").items().unwrap()[0];
        let mapping = &get(task, "mappings").items().unwrap()[0];
        let (key, _) = &mapping.entries().unwrap()[1];
        assert_eq!(key.text(), Some("tagz"));
        assert_eq!(key.pos, Pos { line: 5, column: 5 });
        assert_eq!(key.pos.to_string(), "line 5 column 5");
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let d = doc("base: &src {registry: a.io, auth: none}\n\
             one: *src\n\
             two:\n  <<: *src\n  auth: x\n\
             three:\n  <<: [{k: 1}, {k: 2, j: 3}]\n");
        assert_eq!(get(&d, "one"), get(&d, "base"));
        let two = get(&d, "two");
        assert_eq!(get(two, "auth").text(), Some("x"));
        assert_eq!(get(two, "registry").text(), Some("a.io"));
        assert_eq!(two.entries().unwrap().len(), 2);
        let three = get(&d, "three");
        assert_eq!(get(three, "k").text(), Some("1"));
        assert_eq!(get(three, "j").text(), Some("3"));
        // a quoted "<<" is an ordinary key
        let q = doc("x:\n  '<<': 1\n");
        assert_eq!(get(get(&q, "x"), "<<").text(), Some("1"));
        let e = load("x:\n  <<: 1\n").unwrap_err();
        assert!(e.message.contains("merge key"), "{e:?}");
    }

    #[test]
    fn no_interpolation_and_bom() {
        let d = doc("\u{feff}name: ${TASK}\n");
        assert_eq!(get(&d, "name").text(), Some("${TASK}"));
    }

    #[test]
    fn empty_files_and_errors() {
        assert_eq!(load("").unwrap(), None);
        assert_eq!(load("# nothing\n").unwrap(), None);
        let e = load("a: [1, 2\n").unwrap_err();
        assert!(e.pos.line >= 1, "{e:?}");
        let e = load("a: 1\n---\nb: 2\n").unwrap_err();
        assert!(e.message.contains("second YAML document"), "{e:?}");
        assert_eq!(e.pos.line, 2);
        let e = load("a: *nope\n").unwrap_err();
        assert!(!e.message.is_empty());
    }

    #[test]
    fn alias_bombs_stop() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = load(&text).unwrap_err();
        assert!(e.message.contains("more than"), "{e:?}");
    }
}
