//! A dregsy configuration file, read and validated (SYNC.md §3, §4), and a `--mapping-rules`
//! file (§10).
//!
//! The YAML is read by `sync::yaml` (why `saphyr-parser`: see there) as dregsy's yaml.v2
//! reads it: scalars keep their text, YAML 1.1 booleans, anchors, aliases and merge keys. Unlike
//! yaml.v2, an unknown key is an error naming the key and its line. Every other error names the
//! key's path (`tasks[0].source.auth`), the task's name when it has one, and the line.
//!
//! Keys dregsy accepts that mean nothing for a one-shot copy with our own client are accepted
//! and reported as [`Notice`]s (the command prints warnings, and the rest at `-v`).

use std::fmt;

use base64::Engine as _;

use super::mapping::{MappingRule, MappingRules, RepositoryMapping, REGEX_PREFIX};
use super::tags::TagSelectors;
use super::yaml::{self, Kind, Node, Pos};
use crate::reference::validate_domain;

/// Largest configuration or rules file read (real ones are a few KiB).
pub const MAX_CONFIG_FILE_SIZE: u64 = 4 * 1024 * 1024;

/// The names of Docker Hub's registry (SYNC.md §4); all reach [`DOCKER_HUB_API_HOST`].
pub const DOCKER_HUB_NAMES: [&str; 4] = [
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
];

/// The host Docker Hub's registry API answers on.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";

/// A configuration that cannot be used (exit 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The key's path, e.g. `tasks[0].mappings[1]`; empty for the file as a whole.
    pub path: String,
    /// The name of the task the key is in, when it has one.
    pub task: Option<String>,
    /// What is wrong.
    pub message: String,
    /// Line and column (1-based), when known.
    pub location: Option<(usize, usize)>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            f.write_str(&self.path)?;
            if let Some(task) = &self.task {
                write!(f, " (task '{task}')")?;
            }
            f.write_str(": ")?;
        }
        f.write_str(&self.message)?;
        if let Some((line, column)) = self.location {
            write!(f, " at line {line} column {column}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// How loudly the command reports a [`Notice`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeLevel {
    /// Always, on stderr.
    Warning,
    /// At `-v`.
    Verbose,
}

/// Something about the configuration worth saying that does not stop the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Warning, or only at `-v`.
    pub level: NoticeLevel,
    /// The text, naming the key.
    pub message: String,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// Tasks in file order.
    pub tasks: Vec<Task>,
    /// `lister.maxItems` when it caps listings (N > 0); `None` means no cap.
    pub max_items: Option<usize>,
    /// `skopeo.certs-dir` as written, when given (else `/etc/skopeo/certs.d` if it exists).
    pub certs_dir: Option<String>,
    /// Warnings and `-v` notes about keys that are accepted but do nothing here.
    pub notices: Vec<Notice>,
}

/// One task: a source, a target and mappings.
#[derive(Debug, Clone)]
pub struct Task {
    /// Position in `tasks`, from 0.
    pub index: usize,
    /// Its `name`, non-empty (names may repeat).
    pub name: String,
    /// Line of the task in the file.
    pub line: usize,
    /// `interval` when given (ignored: every task runs once).
    pub interval: Option<u64>,
    /// Where images come from.
    pub source: Location,
    /// Where they go.
    pub target: Location,
    /// Mappings in file order; may be empty (nothing to do, with a warning).
    pub mappings: Vec<Mapping>,
}

/// A `source` or `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// `HOST[:PORT]` as written.
    pub registry: String,
    /// Credentials.
    pub auth: Auth,
    /// `skip-tls-verify`: any certificate accepted, plain HTTP allowed.
    pub skip_tls_verify: bool,
}

impl Location {
    /// Whether the registry is one of Docker Hub's names.
    pub fn is_docker_hub(&self) -> bool {
        DOCKER_HUB_NAMES.iter().any(|n| n.eq_ignore_ascii_case(&self.registry))
    }

    /// The host to send registry API requests to: `registry-1.docker.io` for Docker Hub's
    /// names, else the registry as written.
    pub fn api_host(&self) -> &str {
        if self.is_docker_hub() {
            DOCKER_HUB_API_HOST
        } else {
            &self.registry
        }
    }
}

/// Where a location's credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// No `auth`: Docker's config.json as for bundle relocation, or else anonymous.
    DockerConfig,
    /// `auth: none`: anonymous; Docker's config is not consulted.
    Anonymous,
    /// `auth` decoded.
    Basic(Credentials),
}

/// A user name and password from `auth`. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    password: String,
}

impl Credentials {
    /// The password.
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// One mapping of a task.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// Position in the task's `mappings`, from 0.
    pub index: usize,
    /// Line of the mapping in the file.
    pub line: usize,
    /// `from` and `to`, parsed.
    pub repositories: RepositoryMapping,
    /// `tags`, parsed.
    pub tags: TagSelectors,
    /// `platform`: `None` for absent or `all` (an index is copied whole).
    pub platform: Option<Platform>,
}

/// `OS/ARCH[/VARIANT]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    /// e.g. `linux`.
    pub os: String,
    /// e.g. `arm64`.
    pub architecture: String,
    /// e.g. `v8`.
    pub variant: Option<String>,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Platform {
    type Err = String;

    fn from_str(s: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(|p| ok(p)) {
            return Err(format!(
                "{s:?} is not a platform: write all, or OS/ARCH[/VARIANT] in lower case, e.g. linux/arm64/v8"
            ));
        }
        Ok(Platform {
            os: parts[0].to_string(),
            architecture: parts[1].to_string(),
            variant: parts.get(2).map(|v| v.to_string()),
        })
    }
}

/// Where an error is: a key path and the task it is in.
#[derive(Clone)]
struct Ctx {
    path: String,
    task: Option<String>,
}

impl Ctx {
    fn root() -> Ctx {
        Ctx {
            path: String::new(),
            task: None,
        }
    }

    fn key(&self, key: &str) -> Ctx {
        Ctx {
            path: if self.path.is_empty() {
                key.to_string()
            } else {
                format!("{}.{key}", self.path)
            },
            task: self.task.clone(),
        }
    }

    fn index(&self, i: usize) -> Ctx {
        Ctx {
            path: format!("{}[{i}]", self.path),
            task: self.task.clone(),
        }
    }

    fn err(&self, message: impl Into<String>, pos: Option<Pos>) -> ConfigError {
        ConfigError {
            path: self.path.clone(),
            task: self.task.clone(),
            message: message.into(),
            location: pos.map(|p| (p.line, p.column)),
        }
    }
}

fn yaml_error(e: yaml::YamlError) -> ConfigError {
    ConfigError {
        path: String::new(),
        task: None,
        message: format!("not valid YAML: {}", e.message),
        location: Some((e.pos.line, e.pos.column)),
    }
}

/// A mapping's keys, checked against the allowed ones.
struct Fields<'a> {
    entries: Vec<(&'a str, &'a Node, &'a Node)>,
    pos: Pos,
}

impl<'a> Fields<'a> {
    /// `node` must be a mapping whose keys are all in `allowed`, each once.
    fn of(node: &'a Node, ctx: &Ctx, allowed: &[&str]) -> Result<Fields<'a>, ConfigError> {
        let Some(pairs) = node.entries() else {
            return Err(ctx.err(
                format!("expected a mapping of keys, found {}", node.describe()),
                Some(node.pos),
            ));
        };
        let mut entries: Vec<(&str, &Node, &Node)> = Vec::new();
        for (key, value) in pairs {
            let Some(name) = key.text().filter(|_| matches!(key.kind, Kind::Scalar { .. })) else {
                return Err(ctx.err(format!("a key must be a name, found {}", key.describe()), Some(key.pos)));
            };
            if !allowed.contains(&name) {
                let hint = if name == "<<" {
                    " (a merge key needs a mapping or a list of mappings)".to_string()
                } else {
                    format!("; expected one of: {}", allowed.join(", "))
                };
                return Err(ctx.err(format!("unknown field '{name}'{hint}"), Some(key.pos)));
            }
            if let Some((_, first, _)) = entries.iter().find(|(n, _, _)| *n == name) {
                return Err(ctx.err(
                    format!("duplicate field '{name}' (first at line {})", first.pos.line),
                    Some(key.pos),
                ));
            }
            entries.push((name, key, value));
        }
        Ok(Fields { entries, pos: node.pos })
    }

    /// The value of `key`, unless absent or null.
    fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(n, _, v)| *n == key && !v.is_null())
            .map(|(_, _, v)| *v)
    }

    /// Whether `key` is written, even as null.
    fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|(n, _, _)| *n == key)
    }

    /// The scalar text of `key` (null and absent are `None`).
    fn text(&self, key: &str, ctx: &Ctx) -> Result<Option<&'a str>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match &v.kind {
                Kind::Scalar { .. } => Ok(v.text()),
                _ => Err(ctx
                    .key(key)
                    .err(format!("expected a text value, found {}", v.describe()), Some(v.pos))),
            },
        }
    }

    /// The non-empty text of a required `key`.
    fn required(&self, key: &str, ctx: &Ctx) -> Result<&'a str, ConfigError> {
        match self.text(key, ctx)? {
            Some(t) if !t.trim().is_empty() => Ok(t),
            _ => Err(ctx.err(format!("'{key}' is required"), Some(self.value_pos(key)))),
        }
    }

    fn bool(&self, key: &str, ctx: &Ctx) -> Result<Option<bool>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_bool().map(Some).ok_or_else(|| {
                ctx.key(key)
                    .err(format!("expected true or false, found {}", v.describe()), Some(v.pos))
            }),
        }
    }

    fn int(&self, key: &str, ctx: &Ctx) -> Result<Option<i64>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_int().map(Some).ok_or_else(|| {
                ctx.key(key)
                    .err(format!("expected an integer, found {}", v.describe()), Some(v.pos))
            }),
        }
    }

    /// Where `key`'s value is, or the key, or the mapping.
    fn value_pos(&self, key: &str) -> Pos {
        self.entries
            .iter()
            .find(|(n, _, _)| *n == key)
            .map_or(self.pos, |(_, k, v)| if v.is_null() { k.pos } else { v.pos })
    }
}

/// Go's `time.ParseDuration` grammar: `0`, or a sign and one or more `NUMBER UNIT` with
/// units ns, us, µs, μs, ms, s, m, h.
fn is_go_duration(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    if s == "0" {
        return true;
    }
    if s.is_empty() {
        return false;
    }
    let mut rest = s;
    while !rest.is_empty() {
        let int = rest.bytes().take_while(u8::is_ascii_digit).count();
        rest = &rest[int..];
        let mut frac = 0;
        if let Some(r) = rest.strip_prefix('.') {
            frac = r.bytes().take_while(u8::is_ascii_digit).count();
            rest = &r[frac..];
        }
        if int == 0 && frac == 0 {
            return false;
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        if !matches!(&rest[..unit_len], "ns" | "us" | "µs" | "μs" | "ms" | "s" | "m" | "h") {
            return false;
        }
        rest = &rest[unit_len..];
    }
    true
}

/// A Go duration value (text such as `10h`, or an integer of nanoseconds), checked only.
fn check_duration(fields: &Fields<'_>, key: &str, ctx: &Ctx) -> Result<bool, ConfigError> {
    let Some(v) = fields.get(key) else {
        return Ok(false);
    };
    if v.as_int().is_some() || v.text().is_some_and(is_go_duration) {
        return Ok(true);
    }
    Err(ctx.key(key).err(
        format!("expected a duration such as 30m or 10h, found {}", v.describe()),
        Some(v.pos),
    ))
}

/// `HOST[:PORT]`: no scheme, no path, and no `user:password@`, which is refused without
/// being repeated.
fn check_registry(registry: &str) -> Result<(), String> {
    if let Some((_, host)) = registry.rsplit_once('@') {
        return Err(format!(
            "\"…@{host}\": credentials go in auth, not in the registry (not shown here); a registry is HOST[:PORT]"
        ));
    }
    if let Some((scheme, _)) = registry.split_once("://") {
        return Err(format!(
            "\"{registry}\": drop the scheme \"{scheme}://\"; a registry is HOST[:PORT]"
        ));
    }
    if registry.contains('/') {
        return Err(format!(
            "\"{registry}\" has a path; a registry is HOST[:PORT], and paths go in from and to"
        ));
    }
    validate_domain(registry)?;
    if let Some((_, port)) = registry.split_once(':') {
        match port.parse::<u32>() {
            Ok(1..=65535) => {}
            _ => return Err(format!("\"{registry}\": port \"{port}\" is not in 1..65535")),
        }
    }
    Ok(())
}

/// The AWS ECR hosts dregsy allows `auth-refresh` for: `ACCOUNT.dkr.ecr.REGION.amazonaws.com`
/// (`.cn` too) and `public.ecr.aws`.
pub fn is_ecr(registry: &str) -> bool {
    if registry == "public.ecr.aws" {
        return true;
    }
    let parts: Vec<&str> = registry.split('.').collect();
    (parts.len() == 6 || (parts.len() == 7 && parts[6] == "cn"))
        && parts[1] == "dkr"
        && parts[2] == "ecr"
        && parts[4] == "amazonaws"
        && parts[5] == "com"
}

/// dregsy's `auth`: standard base64 of `{"username": …, "password": …}`, or failing JSON, of
/// `user:password`. `Err` never holds the value.
fn decode_auth(value: &str) -> Result<Auth, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(Auth::DockerConfig);
    }
    if value == "none" {
        return Ok(Auth::Anonymous);
    }
    // Go's base64 decoder skips line breaks anywhere
    let compact: String = value.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| "is not standard base64 (of {\"username\": …, \"password\": …} or user:password)".to_string())?;
    let text = String::from_utf8(bytes).map_err(|_| "does not decode to text".to_string())?;
    let (username, password) = match json_credentials(&text) {
        Some(pair) => pair,
        None => match text.split_once(':') {
            Some((u, p)) => (u.to_string(), p.to_string()),
            None => (text, String::new()),
        },
    };
    if username.is_empty() && password.is_empty() {
        // dregsy sends no credentials then, and its copier falls back to its auth files
        return Ok(Auth::DockerConfig);
    }
    Ok(Auth::Basic(Credentials { username, password }))
}

/// Go's `json.Unmarshal` into `{username, password}`: an object (or null); keys matched
/// exactly, else case-insensitively; a value that is not a string (or null) fails.
fn json_credentials(text: &str) -> Option<(String, String)> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let map = match value {
        serde_json::Value::Object(map) => map,
        serde_json::Value::Null => return Some((String::new(), String::new())),
        _ => return None,
    };
    let field = |name: &str| -> Option<String> {
        let v = map
            .get(name)
            .or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v));
        match v {
            None | Some(serde_json::Value::Null) => Some(String::new()),
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(_) => None,
        }
    };
    Some((field("username")?, field("password")?))
}

struct Reader {
    notices: Vec<Notice>,
}

impl Reader {
    fn note(&mut self, level: NoticeLevel, message: String) {
        self.notices.push(Notice { level, message });
    }

    fn ignored(&mut self, ctx: &Ctx, why: &str) {
        let task = ctx.task.as_ref().map(|t| format!(" (task '{t}')")).unwrap_or_default();
        self.note(NoticeLevel::Verbose, format!("{}{task}: ignored, {why}", ctx.path));
    }

    fn config(&mut self, root: &Node) -> Result<SyncConfig, ConfigError> {
        let ctx = Ctx::root();
        let f = Fields::of(
            root,
            &ctx,
            &[
                "relay",
                "skopeo",
                "docker",
                "dockerhost",
                "api-version",
                "lister",
                "watch",
                "tasks",
            ],
        )?;
        const NO_RELAY: &str = "copies go through cnab-relocate's own client, not skopeo or Docker";
        match f.text("relay", &ctx)? {
            None | Some("") => {}
            Some("skopeo" | "docker") => self.ignored(&ctx.key("relay"), NO_RELAY),
            Some(other) => {
                return Err(ctx.key("relay").err(
                    format!("invalid relay '{other}': must be either 'docker' or 'skopeo'"),
                    Some(f.value_pos("relay")),
                ))
            }
        }
        let mut certs_dir = None;
        if let Some(skopeo) = f.get("skopeo") {
            let c = ctx.key("skopeo");
            let s = Fields::of(skopeo, &c, &["binary", "certs-dir"])?;
            if s.text("binary", &c)?.is_some() {
                self.ignored(&c.key("binary"), NO_RELAY);
            }
            certs_dir = s.text("certs-dir", &c)?.map(str::to_string);
        }
        if let Some(docker) = f.get("docker") {
            let c = ctx.key("docker");
            let d = Fields::of(docker, &c, &["dockerhost", "api-version"])?;
            for key in ["dockerhost", "api-version"] {
                if d.text(key, &c)?.is_some() {
                    self.ignored(&c.key(key), NO_RELAY);
                }
            }
        }
        for key in ["dockerhost", "api-version"] {
            if f.text(key, &ctx)?.is_some() {
                self.ignored(&ctx.key(key), &format!("(deprecated in dregsy) {NO_RELAY}"));
            }
        }
        let mut max_items = None;
        if let Some(lister) = f.get("lister") {
            let c = ctx.key("lister");
            let l = Fields::of(lister, &c, &["maxItems", "cacheDuration"])?;
            if let Some(n) = l.int("maxItems", &c)? {
                max_items = usize::try_from(n).ok().filter(|n| *n > 0);
            }
            if check_duration(&l, "cacheDuration", &c)? {
                self.ignored(&c.key("cacheDuration"), "a run lists each source once");
            }
        }
        if f.bool("watch", &ctx)?.is_some() {
            self.ignored(&ctx.key("watch"), "a one-shot run has nothing to restart");
        }
        if !f.has("tasks") {
            return Err(ctx.err("'tasks' is required (a list of tasks; it may be empty)", Some(root.pos)));
        }
        let mut tasks = Vec::new();
        if let Some(list) = f.get("tasks") {
            let c = ctx.key("tasks");
            let items = list.items().ok_or_else(|| {
                c.err(
                    format!("expected a list of tasks, found {}", list.describe()),
                    Some(list.pos),
                )
            })?;
            for (i, node) in items.iter().enumerate() {
                tasks.push(self.task(i, node, &c.index(i))?);
            }
        }
        let periodic: Vec<String> = tasks
            .iter()
            .filter(|t| t.interval.is_some_and(|i| i > 0))
            .map(|t| format!("'{}'", t.name))
            .collect();
        if !periodic.is_empty() {
            self.note(
                NoticeLevel::Warning,
                format!(
                    "interval is ignored: every task runs once per invocation (tasks {}); schedule periodic runs with cron, a systemd timer or a Kubernetes CronJob",
                    periodic.join(", ")
                ),
            );
        }
        Ok(SyncConfig {
            tasks,
            max_items,
            certs_dir,
            notices: std::mem::take(&mut self.notices),
        })
    }

    fn task(&mut self, index: usize, node: &Node, ctx: &Ctx) -> Result<Task, ConfigError> {
        // the name first, so that every other error can name the task
        let mut ctx = ctx.clone();
        if let Some(name) = node
            .entries()
            .and_then(|e| e.iter().find(|(k, _)| k.text() == Some("name")))
            .and_then(|(_, v)| v.text())
            .filter(|n| !n.is_empty())
        {
            ctx.task = Some(name.to_string());
        }
        let f = Fields::of(
            node,
            &ctx,
            &["name", "interval", "verbose", "source", "target", "mappings"],
        )?;
        let name = match f.text("name", &ctx)? {
            Some(n) if !n.trim().is_empty() => n.to_string(),
            _ => return Err(ctx.err("a task requires a 'name'", Some(f.value_pos("name")))),
        };
        let interval = match f.int("interval", &ctx)? {
            None => None,
            Some(i) => Some(u64::try_from(i).map_err(|_| {
                ctx.key("interval").err(
                    "must be 0 or a positive integer (seconds)",
                    Some(f.value_pos("interval")),
                )
            })?),
        };
        if f.bool("verbose", &ctx)?.is_some() {
            self.ignored(&ctx.key("verbose"), "use -v");
        }
        let source = self.location(&f, "source", &ctx)?;
        let target = self.location(&f, "target", &ctx)?;
        let mut mappings = Vec::new();
        if let Some(list) = f.get("mappings") {
            let c = ctx.key("mappings");
            let items = list.items().ok_or_else(|| {
                c.err(
                    format!("expected a list of mappings, found {}", list.describe()),
                    Some(list.pos),
                )
            })?;
            for (i, m) in items.iter().enumerate() {
                mappings.push(self.mapping(i, m, &c.index(i), &source)?);
            }
        }
        if mappings.is_empty() {
            self.note(
                NoticeLevel::Warning,
                format!("task '{name}' has no mappings: nothing to do"),
            );
        }
        Ok(Task {
            index,
            name,
            line: node.pos.line,
            interval,
            source,
            target,
            mappings,
        })
    }

    fn location(&mut self, task: &Fields<'_>, key: &str, ctx: &Ctx) -> Result<Location, ConfigError> {
        let c = ctx.key(key);
        let Some(node) = task.get(key) else {
            return Err(ctx.err(format!("'{key}' is required"), Some(task.value_pos(key))));
        };
        let f = Fields::of(
            node,
            &c,
            &["registry", "auth", "skip-tls-verify", "auth-refresh", "lister"],
        )?;
        let registry = f.required("registry", &c)?.trim().to_string();
        check_registry(&registry).map_err(|e| c.key("registry").err(e, Some(f.value_pos("registry"))))?;
        let auth = match f.text("auth", &c)? {
            None => Auth::DockerConfig,
            Some(value) => decode_auth(value).map_err(|why| {
                c.key("auth")
                    .err(format!("the {key} auth {why}"), Some(f.value_pos("auth")))
            })?,
        };
        let skip_tls_verify = f.bool("skip-tls-verify", &c)?.unwrap_or(false);
        if check_duration(&f, "auth-refresh", &c)? {
            if !is_ecr(&registry) {
                return Err(c.key("auth-refresh").err(
                    format!("'{registry}' wants authentication refresh, but is not an AWS ECR registry"),
                    Some(f.value_pos("auth-refresh")),
                ));
            }
            let task = c.task.as_deref().unwrap_or_default();
            self.note(
                NoticeLevel::Warning,
                format!(
                    "task '{task}': auth-refresh is not supported for {registry}: credentials come from auth or Docker's config (e.g. the docker-credential-ecr-login helper)"
                ),
            );
        }
        if let Some(lister) = f.get("lister") {
            let lc = c.key("lister");
            let l = Fields::of(lister, &lc, &["type", "search"])?;
            let kind = l
                .text("type", &lc)?
                .ok_or_else(|| lc.err("no lister type set ('type' is required)", Some(lister.pos)))?;
            let type_pos = Some(l.value_pos("type"));
            match (key, kind) {
                ("source", "catalog") => {
                    if l.text("search", &lc)?.is_some() {
                        self.ignored(&lc.key("search"), "it only applies to the index lister");
                    }
                }
                ("source", "dockerhub" | "index") => {
                    return Err(lc.key("type").err(
                        format!(
                            "lister type '{kind}' is not supported (it needs Docker Hub's web APIs); list the repositories as plain from entries instead"
                        ),
                        type_pos,
                    ))
                }
                ("target", "catalog" | "dockerhub" | "index") => {
                    l.text("search", &lc)?;
                    self.ignored(&lc, "a target is never listed");
                }
                _ => {
                    return Err(lc.key("type").err(
                        format!("invalid lister type '{kind}': the source lister is 'catalog'"),
                        type_pos,
                    ))
                }
            }
        }
        Ok(Location {
            registry,
            auth,
            skip_tls_verify,
        })
    }

    fn mapping(&mut self, index: usize, node: &Node, ctx: &Ctx, source: &Location) -> Result<Mapping, ConfigError> {
        let f = Fields::of(node, ctx, &["from", "to", "tags", "platform"])?;
        let from = match f.text("from", ctx)? {
            Some(t) if !t.trim().is_empty() => t,
            _ => return Err(ctx.err("a mapping requires 'from'", Some(f.value_pos("from")))),
        };
        let to = f.text("to", ctx)?;
        let repositories = RepositoryMapping::parse(from, to).map_err(|(is_to, why)| {
            let key = if is_to { "to" } else { "from" };
            ctx.key(key).err(why, Some(f.value_pos(key)))
        })?;
        if from.starts_with(REGEX_PREFIX) && source.is_docker_hub() {
            return Err(ctx.key("from").err(
                format!(
                    "a regex from cannot list {}: Docker Hub serves no catalog; list the repositories as plain from entries",
                    source.registry
                ),
                Some(f.value_pos("from")),
            ));
        }
        let mut entries: Vec<&str> = Vec::new();
        let mut positions = Vec::new();
        if let Some(list) = f.get("tags") {
            let c = ctx.key("tags");
            let items = list.items().ok_or_else(|| {
                c.err(
                    format!("expected a list of tags, found {}", list.describe()),
                    Some(list.pos),
                )
            })?;
            for (i, item) in items.iter().enumerate() {
                match (&item.kind, item.text()) {
                    (Kind::Scalar { .. }, Some(t)) => entries.push(t),
                    _ => {
                        return Err(c.index(i).err(
                            format!("expected a tag or filter, found {}", item.describe()),
                            Some(item.pos),
                        ))
                    }
                }
                positions.push(item.pos);
            }
        }
        let tags = TagSelectors::parse(&entries).map_err(|e| {
            ctx.key("tags")
                .index(e.index)
                .err(format!("\"{}\": {}", e.entry, e.reason), Some(positions[e.index]))
        })?;
        let platform = match f.text("platform", ctx)?.map(str::trim) {
            None | Some("") | Some("all") => None,
            Some(p) => Some(
                p.parse::<Platform>()
                    .map_err(|e| ctx.key("platform").err(e, Some(f.value_pos("platform"))))?,
            ),
        };
        Ok(Mapping {
            index,
            line: node.pos.line,
            repositories,
            tags,
            platform,
        })
    }
}

/// Reads and validates a dregsy configuration (SYNC.md §3).
pub fn parse_config(text: &str) -> Result<SyncConfig, ConfigError> {
    let root = yaml::load(text).map_err(yaml_error)?.ok_or_else(|| ConfigError {
        path: String::new(),
        task: None,
        message: "the file holds no configuration ('tasks' is required)".into(),
        location: None,
    })?;
    Reader { notices: Vec::new() }.config(&root)
}

/// Reads the `sync` configuration at `path` (at most [`MAX_CONFIG_FILE_SIZE`] bytes); an
/// error names the file.
pub fn read_config(path: &std::path::Path) -> Result<SyncConfig, String> {
    let text = read_text(path, "the configuration")?;
    parse_config(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads the `--mapping-rules` file at `path` (at most [`MAX_CONFIG_FILE_SIZE`] bytes); an
/// error names the file.
pub fn read_mapping_rules(path: &std::path::Path) -> Result<MappingRules, String> {
    let text = read_text(path, "the mapping rules")?;
    parse_mapping_rules(&text).map_err(|e| format!("mapping rules {}: {e}", path.display()))
}

/// The text of a small YAML file; `what` names it in errors.
fn read_text(path: &std::path::Path, what: &str) -> Result<String, String> {
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read {what} {shown}: {e}"))?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_CONFIG_FILE_SIZE + 1), &mut text)
        .map_err(|e| format!("cannot read {what} {shown}: {e}"))?;
    if text.len() as u64 > MAX_CONFIG_FILE_SIZE {
        return Err(format!("{what} {shown} is over {MAX_CONFIG_FILE_SIZE} bytes"));
    }
    Ok(text)
}

/// Reads a `--mapping-rules` file (SYNC.md §10): a list of rules, or a mapping whose only key
/// is `mappings`, holding that list. A rule has `from` and optionally `to`, nothing else.
pub fn parse_mapping_rules(text: &str) -> Result<MappingRules, ConfigError> {
    let root = yaml::load(text).map_err(yaml_error)?.ok_or_else(|| ConfigError {
        path: String::new(),
        task: None,
        message: "the file holds no mapping rules".into(),
        location: None,
    })?;
    let (list, ctx) = match &root.kind {
        Kind::Seq(_) => (&root, Ctx::root()),
        Kind::Map(_) => {
            let ctx = Ctx::root();
            let f = Fields::of(&root, &ctx, &["mappings"])?;
            let c = ctx.key("mappings");
            let list = f
                .get("mappings")
                .ok_or_else(|| ctx.err("'mappings' is required", Some(root.pos)))?;
            (list, c)
        }
        Kind::Scalar { .. } => (&root, Ctx::root()),
    };
    let items = list.items().ok_or_else(|| {
        ctx.err(
            format!("expected a list of rules (from/to), found {}", list.describe()),
            Some(list.pos),
        )
    })?;
    let mut rules = Vec::new();
    for (i, node) in items.iter().enumerate() {
        let c = if ctx.path.is_empty() {
            Ctx {
                path: format!("[{i}]"),
                task: None,
            }
        } else {
            ctx.index(i)
        };
        let f = Fields::of(node, &c, &["from", "to"])?;
        let from = match f.text("from", &c)? {
            Some(t) if !t.trim().is_empty() => t,
            _ => return Err(c.err("a rule requires 'from'", Some(f.value_pos("from")))),
        };
        let to = f.text("to", &c)?;
        let rule = MappingRule::parse(from, to).map_err(|(is_to, why)| {
            let key = if is_to { "to" } else { "from" };
            c.key(key).err(why, Some(f.value_pos(key)))
        })?;
        rules.push(rule);
    }
    Ok(MappingRules::new(rules))
}

/// `--task EXPR` (dregsy's `-run`) selects no task, or EXPR is not a regular expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TaskSelectionError {
    /// Not a regular expression.
    #[error("--task \"{expr}\": {reason}")]
    InvalidExpression {
        /// The expression.
        expr: String,
        /// Why it does not compile.
        reason: String,
    },
    /// Nothing matched.
    #[error("--task {exprs} matches no task; the tasks are: {names}")]
    NoMatch {
        /// The expressions given, quoted and joined.
        exprs: String,
        /// The configuration's task names, quoted and joined (or "none").
        names: String,
    },
}

/// The tasks `--task` selects, in file order: those whose name one of `exprs` matches as a
/// whole. No expression selects every task.
pub fn select_tasks<'a, S: AsRef<str>>(
    config: &'a SyncConfig,
    exprs: &[S],
) -> Result<Vec<&'a Task>, TaskSelectionError> {
    if exprs.is_empty() {
        return Ok(config.tasks.iter().collect());
    }
    let mut regexes = Vec::new();
    for e in exprs {
        let e = e.as_ref();
        regexes.push(
            super::mapping::whole_match(e).map_err(|reason| TaskSelectionError::InvalidExpression {
                expr: e.to_string(),
                reason,
            })?,
        );
    }
    let chosen: Vec<&Task> = config
        .tasks
        .iter()
        .filter(|t| regexes.iter().any(|r| r.is_match(&t.name)))
        .collect();
    if chosen.is_empty() {
        let quote = |s: &str| format!("'{s}'");
        let names: Vec<String> = config.tasks.iter().map(|t| quote(&t.name)).collect();
        return Err(TaskSelectionError::NoMatch {
            exprs: exprs.iter().map(|e| quote(e.as_ref())).collect::<Vec<_>>().join(", "),
            names: if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            },
        });
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::super::mapping::From;
    use super::super::tags::{select_tags, Selected};
    use super::*;

    /// base64 of `{"username": "anonymous", "password": "anonymous"}` and a newline, as in
    /// dregsy's fixtures ({{ .LocalAuth }}).
    const LOCAL_AUTH: &str = "eyJ1c2VybmFtZSI6ICJhbm9ueW1vdXMiLCAicGFzc3dvcmQiOiAiYW5vbnltb3VzIn0K";
    /// base64 of `{"username": "alex", "password": "secret"}` and a newline (dregsy's README);
    /// stands for {{ .DockerhubAuth }}.
    const HUB_AUTH: &str = "eyJ1c2VybmFtZSI6ICJhbGV4IiwgInBhc3N3b3JkIjogInNlY3JldCJ9Cg==";

    fn fill(text: &str) -> String {
        text.replace("{{ .LocalAuth }}", LOCAL_AUTH)
            .replace("{{ .DockerhubAuth }}", HUB_AUTH)
            .replace("{{ .ECRRegistry }}", "123456789012.dkr.ecr.eu-central-1.amazonaws.com")
    }

    fn ok(text: &str) -> SyncConfig {
        parse_config(&fill(text)).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    fn err(text: &str) -> ConfigError {
        match parse_config(&fill(text)) {
            Ok(c) => panic!("accepted: {c:?}\n{text}"),
            Err(e) => e,
        }
    }

    fn warnings(c: &SyncConfig) -> Vec<&str> {
        c.notices
            .iter()
            .filter(|n| n.level == NoticeLevel::Warning)
            .map(|n| n.message.as_str())
            .collect()
    }

    fn alex() -> Auth {
        Auth::Basic(Credentials {
            username: "alex".into(),
            password: "secret".into(),
        })
    }

    /// dregsy's README, the Kubernetes example.
    const README_KUBERNETES: &str = "\
relay: skopeo
tasks:
  - name: task1
    interval: 60
    source:
      registry: registry.acme.com
      auth: eyJ1c2VybmFtZSI6ICJhbGV4IiwgInBhc3N3b3JkIjogInNlY3JldCJ9Cg==
    target:
      registry: registry.my-cluster
      auth: eyJ1c2VybmFtZSI6ICJhbGV4IiwgInBhc3N3b3JkIjogImFsc29zZWNyZXQifQo=
    mappings:
      - from: test/image
        to: archive/test/image
      - from: test/another-image
";

    #[test]
    fn readme_kubernetes_example() {
        let c = ok(README_KUBERNETES);
        assert_eq!(c.tasks.len(), 1);
        let t = &c.tasks[0];
        assert_eq!(
            (t.name.as_str(), t.index, t.line, t.interval),
            ("task1", 0, 3, Some(60))
        );
        assert_eq!(t.source.registry, "registry.acme.com");
        assert_eq!(t.source.auth, alex());
        assert_eq!(
            t.target.auth,
            Auth::Basic(Credentials {
                username: "alex".into(),
                password: "alsosecret".into()
            })
        );
        assert_eq!(t.target.registry, "registry.my-cluster");
        assert!(!t.source.skip_tls_verify);
        assert_eq!(t.mappings.len(), 2);
        assert_eq!(
            t.mappings[0]
                .repositories
                .map("registry.my-cluster", "test/image")
                .unwrap(),
            "archive/test/image"
        );
        assert_eq!(
            t.mappings[1].repositories.target_path("test/another-image"),
            "test/another-image"
        );
        assert!(t
            .mappings
            .iter()
            .all(|m| m.tags.takes_all_tags() && m.platform.is_none()));
        assert_eq!(c.max_items, None);
        assert_eq!(
            warnings(&c),
            ["interval is ignored: every task runs once per invocation (tasks 'task1'); schedule periodic runs with cron, a systemd timer or a Kubernetes CronJob"]
        );
        assert!(c
            .notices
            .iter()
            .any(|n| n.level == NoticeLevel::Verbose && n.message.starts_with("relay: ignored")));
    }

    /// dregsy's README, the full configuration example.
    #[test]
    fn readme_full_example() {
        let c = ok("\
# relay type, either 'skopeo' or 'docker'
relay: skopeo
watch: true
skopeo:
  binary: skopeo
  certs-dir: /etc/skopeo/certs.d
docker:
  dockerhost: unix:///var/run/docker.sock
  api-version: 1.41
lister:
  maxItems: 100
  cacheDuration: 1h
tasks:
  - name: task1 # required
    interval: 60
    verbose: true
    source:
      registry: source-registry.acme.com
      auth: eyJ1c2VybmFtZSI6ICJhbGV4IiwgInBhc3N3b3JkIjogInNlY3JldCJ9Cg==
    target:
      registry: dest-registry.acme.com
      auth: eyJ1c2VybmFtZSI6ICJhbGV4IiwgInBhc3N3b3JkIjogImFsc29zZWNyZXQifQo=
      skip-tls-verify: true
    mappings:
      - from: test/image
        to: archive/test/image
        tags: ['0.1.0', '0.1.1']
      - from: test/another-image
        platform: linux/arm64/v8
");
        assert_eq!(c.max_items, Some(100));
        assert_eq!(c.certs_dir.as_deref(), Some("/etc/skopeo/certs.d"));
        let t = &c.tasks[0];
        assert!(t.target.skip_tls_verify);
        let tags = select_tags(&t.mappings[0].tags, None).unwrap();
        assert_eq!(tags, [Selected::Tag("0.1.0".into()), Selected::Tag("0.1.1".into())]);
        assert_eq!(t.mappings[1].platform.as_ref().unwrap().to_string(), "linux/arm64/v8");
        let verbose: Vec<&str> = c
            .notices
            .iter()
            .filter(|n| n.level == NoticeLevel::Verbose)
            .map(|n| n.message.split(':').next().unwrap())
            .collect();
        assert_eq!(
            verbose,
            [
                "relay",
                "skopeo.binary",
                "docker.dockerhost",
                "docker.api-version",
                "lister.cacheDuration",
                "watch",
                "tasks[0].verbose (task 'task1')"
            ]
        );
    }

    /// dregsy's test/fixtures/config/skopeo-valid.yaml.
    #[test]
    fn skopeo_valid() {
        let c = ok("\
relay: skopeo

lister:
  maxItems: 50
  cacheDuration: 30m

tasks:
- name: test-skopeo
  interval: 30
  verbose: true
  source:
    registry: registry.hub.docker.com
  target:
    registry: 127.0.0.1:5000
    auth: eyJ1c2VybmFtZSI6ICJhbm9ueW1vdXMiLCAicGFzc3dvcmQiOiAiYW5vbnltb3VzIn0K
    skip-tls-verify: true
  mappings:
  - from: library/busybox
    to: skopeo/library/busybox
    tags: ['1.29.2', '1.29.3', 'latest']
    platform: linux/arm/v6
");
        assert_eq!(c.max_items, Some(50));
        let t = &c.tasks[0];
        assert!(t.source.is_docker_hub());
        assert_eq!(t.source.api_host(), "registry-1.docker.io");
        assert_eq!(t.source.auth, Auth::DockerConfig);
        assert_eq!(
            t.target.auth,
            Auth::Basic(Credentials {
                username: "anonymous".into(),
                password: "anonymous".into()
            })
        );
        assert_eq!(t.target.api_host(), "127.0.0.1:5000");
        let m = &t.mappings[0];
        assert!(matches!(m.repositories.from(), From::Repository(r) if r == "library/busybox"));
        assert_eq!(
            m.platform,
            Some(Platform {
                os: "linux".into(),
                architecture: "arm".into(),
                variant: Some("v6".into())
            })
        );
        assert_eq!(select_tags(&m.tags, None).unwrap().len(), 3);
    }

    /// dregsy's test/fixtures/config/docker-valid.yaml: the Docker relay is ignored too.
    #[test]
    fn docker_valid() {
        let c = ok("\
relay: docker

docker:
  dockerhost: unix:///var/run/docker.sock
  api-version: 1.24

lister:
  maxItems: 50
  cacheDuration: 30m

tasks:
- name: test-docker
  interval: 30
  verbose: true
  source:
    registry: registry.hub.docker.com
  target:
    registry: 127.0.0.1:5000
    auth: eyJ1c2VybmFtZSI6ICJhbm9ueW1vdXMiLCAicGFzc3dvcmQiOiAiYW5vbnltb3VzIn0K
    # not actually supported for Docker relay, but need this for validation
    skip-tls-verify: true
  mappings:
  - from: library/busybox
    to: docker/library/busybox
    tags: ['1.29.2', '1.29.3', 'latest']
");
        assert_eq!(
            c.tasks[0].mappings[0].repositories.target_path("library/busybox"),
            "docker/library/busybox"
        );
    }

    /// dregsy's test/fixtures/e2e/mapping/skopeo-local.yaml: regex from and to, one registry.
    #[test]
    fn skopeo_local_mapping() {
        let c = ok("\
relay: skopeo

tasks:
- name: test-local # depends on results of skopeo-dockerhub test
  verbose: true
  source:
    registry: 127.0.0.1:5000
    skip-tls-verify: true
  target:
    registry: 127.0.0.1:5000
    auth: {{ .LocalAuth }}
    skip-tls-verify: true
  mappings:
  - from: regex:mapping-skopeo/dh/xelalex/dregsy-dummy.*
    to: regex:mapping-skopeo/dh/,mapping-skopeo/dh-copy/
");
        let t = &c.tasks[0];
        assert_eq!(t.interval, None);
        assert!(t.source.skip_tls_verify && t.target.skip_tls_verify);
        let m = &t.mappings[0];
        assert!(m.repositories.needs_catalog());
        let catalog = vec![
            "mapping-skopeo/dh/xelalex/dregsy-dummy-public".to_string(),
            "other/repo".to_string(),
        ];
        let selected = m.repositories.select(&catalog);
        assert_eq!(selected, ["mapping-skopeo/dh/xelalex/dregsy-dummy-public"]);
        assert_eq!(
            m.repositories.map("127.0.0.1:5000", selected[0]).unwrap(),
            "mapping-skopeo/dh-copy/xelalex/dregsy-dummy-public"
        );
        assert!(warnings(&c).is_empty(), "{:?}", c.notices);
    }

    /// dregsy's test/fixtures/e2e/tagsets/skopeo-{range,prune,regex,limit}.yaml.
    #[test]
    fn skopeo_tag_sets() {
        let head = "\
relay: skopeo

tasks:
- name: test-skopeo-x
  verbose: true
  source:
    registry: registry.hub.docker.com
    auth: {{ .DockerhubAuth }}
  target:
    registry: 127.0.0.1:5000
    auth: {{ .LocalAuth }}
    skip-tls-verify: true
  mappings:
  - from: library/busybox
    to: tagsets-skopeo/x/busybox
    tags:
";
        for tags in [
            "    - 'semver: >=1.31.0 <1.31.9'\n    - 'latest'\n",
            "    - 'semver: >=1.31.0 <1.31.9'\n    - 'keep: .+(glibc|musl)'\n",
            "    - 'regex: 1\\.26\\.1-(glibc|uclibc|musl)'\n",
            "    - 'glibc'\n    - 'semver: >=1.33.0 <=1.36.0'\n    - 'keep: latest 5'\n",
            "    - 'sha256:1d8a02c7a89283870e8dd6bb93dc66bc258e294491a6bbeb193a044ed88773ea' # 1.36.0-musl\n    - '1.35.0-uclibc@sha256:ff4a7f382ff23a8f716741b6e60ef70a4986af3aff22d26e1f0e0cb4fde29289'\n    - 'keep: all.+'\n",
        ] {
            let c = ok(&format!("{head}{tags}"));
            assert_eq!(c.tasks[0].source.auth, alex());
        }
        let c = ok(&format!(
            "{head}    - 'glibc'\n    - 'semver: >=1.33.0 <=1.36.0'\n    - 'keep: latest 5'\n"
        ));
        assert_eq!(c.tasks[0].mappings[0].tags.keep_latest(), Some(5));
        // the regex file: two tasks, the second reads what the first wrote
        let c = ok("\
relay: skopeo

tasks:

- name: test-skopeo-regex
  verbose: true
  source:
    registry: registry.hub.docker.com
    auth: {{ .DockerhubAuth }}
  target:
    registry: 127.0.0.1:5000
    auth: {{ .LocalAuth }}
    skip-tls-verify: true
  mappings:
  - from: library/busybox
    to: tagsets-skopeo/regex/busybox
    tags:
    - 'regex: 1\\.26\\.1-(glibc|uclibc|musl)'

- name: test-skopeo-regex-inverted # depends on results of the task above
  verbose: true
  source:
    registry: 127.0.0.1:5000
    skip-tls-verify: true
  target:
    registry: 127.0.0.1:5000
    auth: {{ .LocalAuth }}
    skip-tls-verify: true
  mappings:
  - from: tagsets-skopeo/regex/busybox
    to: tagsets-skopeo/regexinv/busybox
    tags:
    - 'regex: !.+(glibc|musl)'
");
        let names: Vec<&str> = c.tasks.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["test-skopeo-regex", "test-skopeo-regex-inverted"]);
        assert_eq!(c.tasks[1].index, 1);
    }

    /// dregsy's test/fixtures/e2e/base/skopeo-platform.yaml and -platform-all.yaml.
    #[test]
    fn skopeo_platforms() {
        let c = ok("\
relay: skopeo

tasks:
- name: test-platform
  interval: 30
  verbose: true
  source:
    registry: registry.hub.docker.com
    auth: {{ .DockerhubAuth }}
  target:
    registry: 127.0.0.1:5000
    auth: {{ .LocalAuth }}
    skip-tls-verify: true
  mappings:
  - from: library/busybox
    to: base-skopeo/library/busybox-arm64
    tags: ['latest']
    platform: linux/arm64/v8
  - from: library/busybox
    to: base-skopeo/library/busybox-amd64
    tags: ['latest']
    platform: linux/amd64
");
        let p: Vec<String> = c.tasks[0]
            .mappings
            .iter()
            .map(|m| m.platform.as_ref().unwrap().to_string())
            .collect();
        assert_eq!(p, ["linux/arm64/v8", "linux/amd64"]);
        let c = ok("\
relay: skopeo

tasks:
- name: test-platform-all
  interval: 30
  verbose: true
  source:
    registry: registry.hub.docker.com
    auth: {{ .DockerhubAuth }}
  target:
    registry: 127.0.0.1:5000
    auth: {{ .LocalAuth }}
    skip-tls-verify: true
  mappings:
  - from: library/busybox
    to: base-skopeo/library/busybox-all
    tags: ['latest']
    platform: all
");
        assert_eq!(c.tasks[0].mappings[0].platform, None);
    }

    /// doc/design-image-matching.md, the ECR and GCR examples.
    #[test]
    fn design_doc_ecr_and_gcr() {
        let c = ok("\
tasks:
- name: ecr
  verbose: true
  source:
    registry: 123456789012.dkr.ecr.eu-central-1.amazonaws.com
    auth-refresh: 10h
    lister:
      type: catalog # default, can be omitted
  target:
    registry: 127.0.0.1:5000
    auth: eyJ1c2VybmFtZSI6ICJhbm9ueW1vdXMiLCAicGFzc3dvcmQiOiAiYW5vbnltb3VzIn0K
    skip-tls-verify: true
  mappings:
  - from: regex:myproject/.*
    to: ecr
");
        assert_eq!(
            warnings(&c),
            ["task 'ecr': auth-refresh is not supported for 123456789012.dkr.ecr.eu-central-1.amazonaws.com: credentials come from auth or Docker's config (e.g. the docker-credential-ecr-login helper)"]
        );
        let m = &c.tasks[0].mappings[0].repositories;
        assert_eq!(m.target_path("myproject/webui"), "ecr/myproject/webui");
        let c = ok("\
tasks:
- name: gcr
  verbose: true
  source:
    registry: eu.gcr.io
  target:
    registry: 127.0.0.1:5000
    auth: eyJ1c2VybmFtZSI6ICJhbm9ueW1vdXMiLCAicGFzc3dvcmQiOiAiYW5vbnltb3VzIn0K
    skip-tls-verify: true
  mappings:
  - from: regex:kubika/.*
    to: gcr
");
        assert_eq!(
            c.tasks[0].mappings[0].repositories.target_path("kubika/x"),
            "gcr/kubika/x"
        );
        // the ECR mapping fixture, and ECR public
        ok("\
lister:
  maxItems: 100
  cacheDuration: 24h
tasks:
- name: test-ecr
  source:
    registry: {{ .ECRRegistry }}
    auth-refresh: 10h
    lister:
      type: catalog
  target:
    registry: public.ecr.aws
    auth-refresh: 10h
  mappings:
  - from: regex:kubika/brucket.*
    to: mapping-skopeo/ecr
");
    }

    fn assert_err(e: &ConfigError, path: &str, needle: &str, line: Option<usize>) {
        let shown = e.to_string();
        assert_eq!(e.path, path, "{shown}");
        assert!(shown.contains(needle), "{shown}");
        assert_eq!(e.location.map(|l| l.0), line, "{shown}");
    }

    /// dregsy's fixtures that dregsy refuses: refused here too (exit 2).
    #[test]
    fn dregsy_invalid_fixtures() {
        // mapping/skopeo-dockerhub.yaml
        let e = err("\
relay: skopeo

lister:
  maxItems: -1
  cacheDuration: -1

tasks:
- name: test-dockerhub
  verbose: true
  source:
    registry: registry.hub.docker.com
    auth: {{ .DockerhubAuth }}
    lister:
      type: dockerhub # for including private repos
  target:
    registry: 127.0.0.1:5000
    auth: {{ .LocalAuth }}
    skip-tls-verify: true
  mappings:
  - from: regex:xelalex/dregsy-dummy-.*
    to: mapping-skopeo/dh
    tags: [\"latest\"]
");
        assert_err(&e, "tasks[0].source.lister.type", "plain from", Some(14));
        assert_eq!(e.task.as_deref(), Some("test-dockerhub"));
        // mapping/skopeo-dh-search.yaml
        let e = err("\
relay: skopeo

lister:
  maxItems: 50
  cacheDuration: 5m

tasks:
- name: test-search
  verbose: true
  source:
    registry: registry.hub.docker.com
    auth: {{ .DockerhubAuth }}
    lister:
      type: index # for searching all of DockerHub
      search: jenkins
  target:
    registry: 127.0.0.1:5000
    auth: {{ .LocalAuth }}
    skip-tls-verify: true
  mappings:
  - from: regex:jenkins/jnlp-s.*
    to: regex:jenkins/,mapping-skopeo/dh/other-jenkins/
    tags: [\"latest\"]
");
        assert_err(
            &e,
            "tasks[0].source.lister.type",
            "lister type 'index' is not supported",
            Some(14),
        );
        // config/task-no-name.yaml
        let e = err("relay: skopeo\ntasks:\n- interval: 60\n");
        assert_err(&e, "tasks[0]", "requires a 'name'", Some(3));
        assert_eq!(e.task, None);
        // config/task-no-target.yaml
        let e = err("\
relay: skopeo
tasks:
- name: test
  interval: 60
  source:
    registry: registry.hub.docker.com
");
        assert_err(&e, "tasks[0]", "'target' is required", Some(3));
        assert_eq!(
            e.to_string(),
            "tasks[0] (task 'test'): 'target' is required at line 3 column 3"
        );
        // config/task-bad-interval.yaml
        let e = err("relay: skopeo\ntasks:\n- name: test\n  interval: -10\n");
        assert_err(&e, "tasks[0].interval", "0 or a positive integer", Some(4));
        // config/invalid-relay.yaml
        let e = err("relay: splunge\n");
        assert_err(&e, "relay", "invalid relay 'splunge'", Some(1));
        // config/source-not-ecr.yaml
        let e = err("\
relay: skopeo
tasks:
- name: test
  interval: 60
  source:
    registry: registry.hub.docker.com
    auth-refresh: 10h
");
        assert_err(&e, "tasks[0].source.auth-refresh", "not an AWS ECR registry", Some(7));
        // config/mapping-no-from.yaml
        let e = err("\
relay: skopeo
tasks:
- name: test
  interval: 60
  source:
    registry: registry.hub.docker.com
  target:
    registry: localhost:5000
  mappings:
  - from:
");
        assert_err(&e, "tasks[0].mappings[0]", "requires 'from'", Some(10));
        // config/task-no-source.yaml and source-no-registry.yaml
        let e = err("relay: skopeo\ntasks:\n- name: test\n  interval: 60\n  source:\n");
        assert_err(&e, "tasks[0]", "'source' is required", Some(5));
        let e = err("relay: skopeo\ntasks:\n- name: test\n  interval: 60\n  source:\n    registry:\n");
        assert_err(&e, "tasks[0].source", "'registry' is required", Some(6));
    }

    #[test]
    fn unknown_keys_name_the_key_and_line() {
        let text = "\
relay: skopeo
tasks:
- name: mirror
  source:
    registry: a.io
  target:
    registry: b.io
  mappings:
  - from: x/y
  - from: apps/web
    to: mirror/web
    tagz: [1.0]
";
        let e = err(text);
        assert_eq!(
            e.to_string(),
            "tasks[0].mappings[1] (task 'mirror'): unknown field 'tagz'; expected one of: from, to, tags, platform at line 12 column 5"
        );
        for (text, path, key, line) in [
            ("tasks: []\nrelays: skopeo\n", "", "relays", 2),
            ("tasks:\n- name: a\n  schedule: 1\n", "tasks[0]", "schedule", 3),
            ("tasks:\n- name: a\n  source: {registry: a.io, tls: no}\n", "tasks[0].source", "tls", 3),
            ("lister: {maxitems: 5}\ntasks: []\n", "lister", "maxitems", 1),
            ("skopeo: {certsdir: /x}\ntasks: []\n", "skopeo", "certsdir", 1),
            // keys of an unmerged dregsy pull request
            (
                "tasks:\n- name: a\n  source: {registry: a.io}\n  target: {registry: b.io}\n  mappings:\n  - from: a/b\n    digests: [x]\n",
                "tasks[0].mappings[0]",
                "digests",
                7,
            ),
            (
                "tasks:\n- name: a\n  source: {registry: a.io}\n  target: {registry: b.io}\n  mappings:\n  - from: a/b\n    preserve-digests: true\n",
                "tasks[0].mappings[0]",
                "preserve-digests",
                7,
            ),
        ] {
            let e = err(text);
            assert_err(&e, path, &format!("unknown field '{key}'"), Some(line));
        }
        let e = err("tasks: []\ntasks: []\n");
        assert_err(&e, "", "duplicate field 'tasks' (first at line 1)", Some(2));
    }

    /// dregsy's README, "Keeping the Config Dry & Secure".
    #[test]
    fn readme_anchors_and_aliases() {
        let c = ok("\
tasks:
- name: one
  source: &source
    registry: source.reg
  target:
    registry: foo
  mappings: &mappings
  - from: library/busybox
    to: base/library/busybox
    tags: ['a', 'b', 'c']
- name: two
  source: *source
  target:
    registry: bar
  mappings: *mappings
");
        let (one, two) = (&c.tasks[0], &c.tasks[1]);
        assert_eq!(one.source, two.source);
        assert_eq!(two.source.registry, "source.reg");
        assert_eq!(two.target.registry, "bar");
        assert_eq!(two.mappings.len(), 1);
        assert_eq!(
            two.mappings[0].repositories.target_path("library/busybox"),
            "base/library/busybox"
        );
        assert_eq!(select_tags(&two.mappings[0].tags, None).unwrap().len(), 3);
    }

    fn one_task(extra_location: &str, mapping: &str) -> String {
        format!(
            "tasks:\n- name: t\n  source:\n    registry: src.io\n{extra_location}  target:\n    registry: dst.io\n  mappings:\n  - from: apps/web\n{mapping}"
        )
    }

    #[test]
    fn yaml_1_1_scalars_merge_keys_and_no_substitution() {
        // tags keep their text: 1.0 and 1.10 are not numbers, 010 is not 8, latest stays
        let e = err(&one_task("", "    tags:\n    - ${TAG}\n"));
        assert_err(&e, "tasks[0].mappings[0].tags[0]", "\"${TAG}\"", Some(10));
        let c = ok(&one_task("", "    tags: [1.0, 1.10, 010, latest]\n"));
        let tags: Vec<String> = select_tags(&c.tasks[0].mappings[0].tags, None)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(tags, ["010", "1.0", "1.10", "latest"]);
        // names and registries are text too; ${…} stays literal
        let c = ok("tasks:\n- name: 2.0\n  source: {registry: 127.0.0.1:5000}\n  target: {registry: b.io}\n- name: ${NAME}\n  source: {registry: a.io}\n  target: {registry: b.io}\n");
        assert_eq!(c.tasks[0].name, "2.0");
        assert_eq!(c.tasks[1].name, "${NAME}");
        // YAML 1.1 booleans
        for (word, want) in [
            ("yes", true),
            ("On", true),
            ("Y", true),
            ("TRUE", true),
            ("no", false),
            ("off", false),
            ("False", false),
        ] {
            let c = ok(&one_task(&format!("    skip-tls-verify: {word}\n"), ""));
            assert_eq!(c.tasks[0].source.skip_tls_verify, want, "{word}");
        }
        for word in ["'true'", "1", "maybe"] {
            let e = err(&one_task(&format!("    skip-tls-verify: {word}\n"), ""));
            assert_err(&e, "tasks[0].source.skip-tls-verify", "expected true or false", Some(5));
        }
        // merge keys: written keys win
        let c = ok("\
tasks:
- name: a
  source: &base {registry: a.io, auth: none, skip-tls-verify: true}
  target:
    <<: *base
    registry: b.io
");
        let t = &c.tasks[0].target;
        assert_eq!(
            (t.registry.as_str(), &t.auth, t.skip_tls_verify),
            ("b.io", &Auth::Anonymous, true)
        );
        // a merge key whose value is not a mapping is refused, never dropped
        let e = err("tasks:\n- name: a\n  source:\n    <<: 1\n    registry: a.io\n");
        assert!(e.message.contains("merge key"), "{e}");
    }

    #[test]
    fn auth_forms() {
        use base64::engine::general_purpose::STANDARD;
        let b64 = |s: &str| STANDARD.encode(s);
        let basic = |u: &str, p: &str| {
            Auth::Basic(Credentials {
                username: u.into(),
                password: p.into(),
            })
        };
        for (value, want) in [
            (HUB_AUTH.to_string(), alex()),
            (format!("  {HUB_AUTH}  "), alex()),
            (b64("{\"username\":\"u\",\"password\":\"p\"}"), basic("u", "p")),
            (b64("{\"Username\":\"u\",\"PASSWORD\":\"p\"}"), basic("u", "p")),
            (b64("bob:pa:ss"), basic("bob", "pa:ss")),
            (b64("bob"), basic("bob", "")),
            (b64("[1]"), basic("[1]", "")),
            (
                b64("{\"username\":1,\"password\":\"p\"}"),
                basic("{\"username\"", "1,\"password\":\"p\"}"),
            ),
            (b64(":"), Auth::DockerConfig),
            ("none".into(), Auth::Anonymous),
            ("''".into(), Auth::DockerConfig),
            ("~".into(), Auth::DockerConfig),
        ] {
            let c = ok(&one_task(&format!("    auth: {value}\n"), ""));
            assert_eq!(c.tasks[0].source.auth, want, "{value}");
        }
        let secret = "not*base64";
        let e = err(&one_task(&format!("    auth: {secret}\n"), ""));
        assert_err(
            &e,
            "tasks[0].source.auth",
            "the source auth is not standard base64",
            Some(5),
        );
        assert!(!e.to_string().contains(secret), "the value is never shown: {e}");
        assert!(!format!("{:?}", alex()).contains("secret"), "Debug hides the password");
    }

    #[test]
    fn registries() {
        for good in [
            "a.io",
            "localhost:5000",
            "127.0.0.1:5000",
            "Registry.Example.com",
            "my-registry",
        ] {
            let c = ok(&format!(
                "tasks:\n- name: t\n  source: {{registry: {good}}}\n  target: {{registry: b.io}}\n"
            ));
            assert_eq!(c.tasks[0].source.registry, good);
        }
        for (bad, needle) in [
            ("https://a.io", "drop the scheme \"https://\""),
            ("user:secret@a.io", "credentials go in auth"),
            ("a.io/team", "has a path"),
            ("a.io:0", "1..65535"),
            ("a.io:x", "invalid port"),
            ("a_b.io", "not a valid host name"),
            ("'[::1]:5000'", "IPv6"),
        ] {
            let e = err(&format!(
                "tasks:\n- name: t\n  source: {{registry: {bad}}}\n  target: {{registry: b.io}}\n"
            ));
            assert_err(&e, "tasks[0].source.registry", needle, Some(3));
            assert!(!e.to_string().contains("secret"), "{e}");
        }
        for hub in DOCKER_HUB_NAMES {
            let e = err(&format!(
                "tasks:\n- name: t\n  source: {{registry: {hub}}}\n  target: {{registry: b.io}}\n  mappings:\n  - from: regex:library/.*\n"
            ));
            assert_err(&e, "tasks[0].mappings[0].from", "Docker Hub serves no catalog", Some(6));
            // plain from is fine, and paths are verbatim: no library/ added
            let c = ok(&format!(
                "tasks:\n- name: t\n  source: {{registry: {hub}}}\n  target: {{registry: b.io}}\n  mappings:\n  - from: busybox\n"
            ));
            assert_eq!(c.tasks[0].mappings[0].repositories.target_path("busybox"), "busybox");
            assert_eq!(c.tasks[0].source.api_host(), DOCKER_HUB_API_HOST);
        }
        assert!(is_ecr("123456789012.dkr.ecr.eu-central-1.amazonaws.com"));
        assert!(is_ecr("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"));
        assert!(is_ecr("public.ecr.aws"));
        assert!(!is_ecr("dkr.ecr.eu-central-1.amazonaws.com"));
        assert!(!is_ecr("registry.hub.docker.com"));
    }

    #[test]
    fn listers() {
        // the source catalog lister, search ignored; a target lister is parsed and ignored
        let c = ok(&one_task("    lister: {type: catalog, search: x}\n", ""));
        assert!(c.notices.iter().any(|n| n
            .message
            .starts_with("tasks[0].source.lister.search (task 't'): ignored")));
        let c = ok(
            "tasks:\n- name: t\n  source: {registry: a.io}\n  target: {registry: b.io, lister: {type: dockerhub}}\n",
        );
        assert!(c
            .notices
            .iter()
            .any(|n| n.message.starts_with("tasks[0].target.lister (task 't'): ignored")));
        for (lister, needle) in [
            ("{search: x}", "no lister type set"),
            ("{type: hub}", "invalid lister type 'hub'"),
            (
                "{type: index, search: x}",
                "list the repositories as plain from entries",
            ),
            ("{type: catalog, page: 1}", "unknown field 'page'"),
        ] {
            let e = err(&one_task(&format!("    lister: {lister}\n"), ""));
            assert!(e.path.starts_with("tasks[0].source.lister"), "{e}");
            assert!(e.to_string().contains(needle), "{e}");
        }
        let e = err("tasks:\n- name: t\n  source: {registry: a.io}\n  target: {registry: b.io, lister: {type: x}}\n");
        assert!(e.to_string().contains("invalid lister type 'x'"), "{e}");
        // lister.maxItems: N > 0 caps; 0 and -1 do not; absent does not
        for (value, want) in [("50", Some(50)), ("0", None), ("-1", None)] {
            let c = ok(&format!("lister: {{maxItems: {value}}}\ntasks: []\n"));
            assert_eq!(c.max_items, want, "{value}");
        }
        let e = err("lister: {maxItems: many}\ntasks: []\n");
        assert_err(&e, "lister.maxItems", "expected an integer", Some(1));
        // cacheDuration and auth-refresh are Go durations (or integers)
        for d in ["30m", "1h30m", "-1", "0", "1.5h", "300ms", "2us"] {
            ok(&format!("lister: {{cacheDuration: {d}}}\ntasks: []\n"));
        }
        for d in ["30 minutes", "1d", "h", "''"] {
            let e = err(&format!("lister: {{cacheDuration: {d}}}\ntasks: []\n"));
            assert_err(&e, "lister.cacheDuration", "expected a duration", Some(1));
        }
    }

    #[test]
    fn tasks_and_mappings() {
        // tasks: [] and tasks: ~ are nothing to do; no tasks key is an error
        assert!(ok("tasks: []\n").tasks.is_empty());
        assert!(ok("tasks:\n").tasks.is_empty());
        let e = err("relay: skopeo\n");
        assert_err(&e, "", "'tasks' is required", Some(1));
        let e = parse_config("").unwrap_err();
        assert!(e.to_string().contains("'tasks' is required"), "{e}");
        let e = err("tasks: {name: a}\n");
        assert_err(&e, "tasks", "expected a list of tasks", Some(1));
        // duplicate names are allowed
        let c = ok("tasks:\n- name: a\n  source: {registry: a.io}\n  target: {registry: b.io}\n- name: a\n  source: {registry: a.io}\n  target: {registry: b.io}\n");
        assert_eq!(c.tasks.len(), 2);
        // no mappings: a warning per task
        assert_eq!(
            warnings(&c),
            [
                "task 'a' has no mappings: nothing to do",
                "task 'a' has no mappings: nothing to do"
            ]
        );
        // interval: an integer ≥ 0, only > 0 is worth a warning
        let c = ok(&one_task("", "").replace("  source:", "  interval: 0\n  source:"));
        assert_eq!((c.tasks[0].interval, warnings(&c).len()), (Some(0), 0));
        let c = ok(&one_task("", "").replace("  source:", "  interval: 10\n  source:"));
        assert_eq!(c.tasks[0].interval, Some(10));
        let e = err(&one_task("", "").replace("  source:", "  interval: 1m\n  source:"));
        assert_err(&e, "tasks[0].interval", "expected an integer", Some(3));
        // the name is required and non-empty; errors name the task when it has one
        let e = err("tasks:\n- name: ''\n  source: {registry: a.io}\n");
        assert_err(&e, "tasks[0]", "requires a 'name'", Some(2));
        let e = err("tasks:\n- name: [a]\n");
        assert_err(&e, "tasks[0].name", "expected a text value, found a list", Some(2));
        // mappings
        let e = err(&one_task("", "    to: regex:apps\n"));
        assert_err(&e, "tasks[0].mappings[0].to", "no comma", Some(9));
        let e = err(&one_task("", "").replace("from: apps/web", "from: regex:(apps"));
        assert_err(&e, "tasks[0].mappings[0].from", "invalid regular expression", Some(8));
        let e = err(&one_task("", "").replace("from: apps/web", "from: Apps/Web"));
        assert_err(&e, "tasks[0].mappings[0].from", "lower case", Some(8));
        let e = err(&one_task("", "    tags: latest\n"));
        assert_err(&e, "tasks[0].mappings[0].tags", "expected a list of tags", Some(9));
        let e = err(&one_task("", "    tags:\n    - latest\n    - 'semver: >=1.0'\n"));
        assert_err(&e, "tasks[0].mappings[0].tags[1]", "invalid semver range", Some(11));
        let e = err(&one_task("", "    tags: [latest, ~]\n"));
        assert_err(
            &e,
            "tasks[0].mappings[0].tags[1]",
            "expected a tag or filter, found empty",
            Some(9),
        );
        let e = err(&one_task("", "    tags: ['sha256:abc']\n"));
        assert_err(&e, "tasks[0].mappings[0].tags[0]", "64 lower-case", Some(9));
        for bad in ["linux", "linux/", "Linux/amd64", "linux/arm/v7/x", "all/"] {
            let e = err(&one_task("", &format!("    platform: {bad}\n")));
            assert_err(&e, "tasks[0].mappings[0].platform", "is not a platform", Some(9));
        }
        let e =
            err("tasks:\n- name: t\n  source: {registry: a.io}\n  target: {registry: b.io}\n  mappings: {from: a}\n");
        assert_err(&e, "tasks[0].mappings", "expected a list of mappings", Some(5));
    }

    #[test]
    fn task_selection() {
        let c = ok("tasks:\n- name: a\n  source: {registry: a.io}\n  target: {registry: b.io}\n- name: ab\n  source: {registry: a.io}\n  target: {registry: b.io}\n- name: a\n  source: {registry: a.io}\n  target: {registry: c.io}\n");
        let names = |exprs: &[&str]| -> Vec<(String, usize)> {
            select_tasks(&c, exprs)
                .unwrap()
                .iter()
                .map(|t| (t.name.clone(), t.index))
                .collect()
        };
        assert_eq!(names(&[]).len(), 3);
        // a whole-name match; duplicates all selected; union in file order
        assert_eq!(names(&["a"]), [("a".into(), 0), ("a".into(), 2)]);
        assert_eq!(
            names(&["ab", "a"]),
            [("a".into(), 0), ("ab".into(), 1), ("a".into(), 2)]
        );
        assert_eq!(names(&["a.*"]).len(), 3);
        let e = select_tasks(&c, &["b"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--task 'b' matches no task; the tasks are: 'a', 'ab', 'a'"
        );
        let e = select_tasks(&c, &["("]).unwrap_err();
        assert!(matches!(e, TaskSelectionError::InvalidExpression { .. }), "{e}");
    }

    /// SYNC.md §10's example rules file, as a list and under `mappings:`.
    #[test]
    fn mapping_rules_files() {
        use crate::mapping::RepositoryPrefix;
        use crate::reference::Reference;
        let list = "\
- from: regex:docker\\.io/library/.*
  to: regex:^docker\\.io/library/,hub/        # docker.io/library/nginx -> hub/nginx
- from: ghcr.io/acme/tool
  to: tools/acme-tool                         # exact rename
- from: regex:registry\\.example\\.com/apps/.*
  to: apps-mirror                             # prefix: apps-mirror/apps/web
- from: regex:gcr\\.io/.*                      # no to: distroless/static
";
        let indented: String = list.lines().map(|l| format!("  {l}\n")).collect();
        let prefix: RepositoryPrefix = "reg.acme.com/mirror".parse().unwrap();
        for text in [list.to_string(), format!("mappings:\n{indented}")] {
            let rules = parse_mapping_rules(&text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(rules.len(), 4);
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
                let r = Reference::parse_normalized(image).unwrap();
                assert_eq!(rules.relocate(&prefix, image, &r).unwrap().to_string(), want);
            }
        }
        // a dregsy task's mappings pasted in: tags and platform are refused
        let e = parse_mapping_rules("mappings:\n- from: nginx\n  tags: [latest]\n").unwrap_err();
        assert_err(
            &e,
            "mappings[0]",
            "unknown field 'tags'; expected one of: from, to",
            Some(3),
        );
        let e = parse_mapping_rules("- from: nginx\n- to: x\n").unwrap_err();
        assert_err(&e, "[1]", "requires 'from'", Some(2));
        let e = parse_mapping_rules("- from: nginx:1.25\n").unwrap_err();
        assert_err(&e, "[0].from", "tag or digest", Some(1));
        let e = parse_mapping_rules("- {from: nginx, to: 'regex:x'}\n").unwrap_err();
        assert_err(&e, "[0].to", "no comma", Some(1));
        let e = parse_mapping_rules("mappings: []\nextra: 1\n").unwrap_err();
        assert_err(&e, "", "unknown field 'extra'", Some(2));
        let e = parse_mapping_rules("nginx\n").unwrap_err();
        assert!(e.to_string().contains("expected a list of rules"), "{e}");
        assert!(parse_mapping_rules("").is_err());
        assert!(parse_mapping_rules("[]\n").unwrap().is_empty());
        let e = parse_mapping_rules("- from: [\n").unwrap_err();
        assert!(e.to_string().starts_with("not valid YAML"), "{e}");
    }
}
