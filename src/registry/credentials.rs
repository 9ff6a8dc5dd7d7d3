//! Registry credentials, where skopeo looks for them and in its order: credentials given
//! explicitly (`--dest-creds`, `--src-creds`), then an auth file given explicitly (`--authfile`
//! or `REGISTRY_AUTH_FILE`; then no other file is read), else
//! `$XDG_RUNTIME_DIR/containers/auth.json` (`/run/containers/$UID/auth.json` without it),
//! `$XDG_CONFIG_HOME/containers/auth.json` (`~/.config/…`), and Docker's `config.json`.
//!
//! Every file is read in the containers-auth.json(5) way: a `credHelpers` entry for the
//! registry first, then `auths` keys from the most specific (`host/namespace/repository`) to
//! the registry (`host`), then keys naming the registry as a URL (`https://host/v1/`). Docker's
//! `config.json` is also read the way Docker reads it (`credsStore` too) through the
//! `docker_credential` crate. The first file with an answer wins. A missing file or an unknown
//! registry means anonymous. Secrets never reach `Debug`, logs or errors.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine;
use docker_credential::{CredentialRetrievalError, DockerCredential};

/// Where Docker keeps Docker Hub credentials.
pub(crate) const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

/// Largest auth file read.
const MAX_AUTH_FILE: u64 = 4 * 1024 * 1024;

/// A user name and password given explicitly; `Debug` shows no password.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    /// The user name.
    pub username: String,
    /// The password (or a token used as one).
    pub password: String,
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Login({}, <redacted>)", self.username)
    }
}

/// Where credentials come from (the CLI's credential flags). The default reads the standard
/// files only.
#[derive(Debug, Clone, Default)]
pub struct CredentialOptions {
    /// An auth file given explicitly (`--authfile`, `REGISTRY_AUTH_FILE`): the only file read.
    pub auth_file: Option<PathBuf>,
    /// The registry written to, as references name it (`docker.io`,
    /// `registry.example.com:5000`); `None` when nothing is written (export).
    pub destination: Option<String>,
    /// Credentials for the destination (`--dest-creds`).
    pub destination_login: Option<Login>,
    /// Credentials for every other registry (`--src-creds`): those images are read from. The
    /// caller makes sure there is only one such registry.
    pub sources: Option<Login>,
    /// No credentials at all, from anywhere (sync's `auth: none`).
    pub anonymous: bool,
    /// Where the explicit credentials come from, as `-v` says it, when not from a flag
    /// (sync's `auth`).
    pub explicit_origin: Option<&'static str>,
}

impl CredentialOptions {
    /// The credentials given explicitly for `domain`.
    fn explicit(&self, domain: &str) -> Option<(&'static str, &Login)> {
        let (flag, login) = match &self.destination {
            Some(target) if same_registry(target, domain) => ("--dest-creds", self.destination_login.as_ref()?),
            _ => ("--src-creds", self.sources.as_ref()?),
        };
        Some((self.explicit_origin.unwrap_or(flag), login))
    }

    /// The files searched, in order, and whether each is Docker's `config.json`.
    fn files(&self) -> Vec<(PathBuf, bool)> {
        if let Some(path) = &self.auth_file {
            return vec![(path.clone(), false)];
        }
        let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let home = env("HOME");
        let mut files = Vec::new();
        match env("XDG_RUNTIME_DIR") {
            Some(dir) => files.push((dir.join("containers/auth.json"), false)),
            None => {
                if let Some(uid) = current_uid() {
                    files.push((PathBuf::from(format!("/run/containers/{uid}/auth.json")), false));
                }
            }
        }
        if let Some(config) = env("XDG_CONFIG_HOME").or_else(|| home.as_ref().map(|h| h.join(".config"))) {
            files.push((config.join("containers/auth.json"), false));
        }
        if let Some(path) = docker_config_path() {
            files.push((path, true));
        }
        files
    }
}

/// The user id of this process (owner of `/proc/self`).
fn current_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// Two registry names for one registry (Docker Hub has several).
fn same_registry(a: &str, b: &str) -> bool {
    normalize_registry(a).eq_ignore_ascii_case(normalize_registry(b))
}

/// Credentials for one registry; `Debug` redacts the secrets.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Credential {
    /// A user name and password (`auth`, or a credential helper's answer).
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken`), exchanged at the token endpoint.
    IdentityToken(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credential::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

impl From<&Login> for Credential {
    fn from(login: &Login) -> Self {
        Credential::Basic {
            username: login.username.clone(),
            password: login.password.clone(),
        }
    }
}

/// The key a registry domain's credentials are stored under in Docker's `config.json`.
pub(crate) fn server_key(domain: &str) -> &str {
    match domain {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_SERVER,
        other => other,
    }
}

/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub(crate) fn docker_config_path() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => Some(PathBuf::from(dir).join("config.json")),
        None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json")),
    }
}

/// What one file says for a registry. `None` inside means the file has an entry that gives
/// nothing (an empty `{}`, a helper without an answer): the search goes on in the next file.
#[derive(Debug, Clone, Default)]
struct FileCredentials {
    /// The answer of the file's credential helper for the registry, when it names one.
    helper: Option<Option<Credential>>,
    /// `auths` keys below the registry: namespace path (`team/app`) → credential.
    namespaced: Vec<(String, Option<Credential>)>,
    /// The registry's own entry (`host`, a URL naming it, or Docker's own lookup).
    registry: Option<Option<Credential>>,
}

/// The credentials of one registry, from every source, ready to be chosen per repository.
#[derive(Debug, Clone, Default)]
pub(crate) struct RegistryCredentials {
    explicit: Option<Credential>,
    files: Vec<FileCredentials>,
}

impl RegistryCredentials {
    /// The credential for `repository` (a path within the registry, e.g. `team/app`; empty for
    /// the registry as a whole), or `None` for anonymous access.
    pub(crate) fn for_repository(&self, repository: &str) -> Option<&Credential> {
        if let Some(c) = &self.explicit {
            return Some(c);
        }
        for file in &self.files {
            let found = match &file.helper {
                Some(answer) => answer.as_ref(),
                None => match file
                    .namespaced
                    .iter()
                    .filter(|(ns, _)| {
                        repository == ns || repository.strip_prefix(ns.as_str()).is_some_and(|r| r.starts_with('/'))
                    })
                    .max_by_key(|(ns, _)| ns.len())
                {
                    Some((_, c)) => c.as_ref(),
                    None => file.registry.as_ref().and_then(Option::as_ref),
                },
            };
            if found.is_some() {
                return found;
            }
        }
        None
    }
}

/// Everything the configured sources say about `domain` (as references name it). Problems
/// are logged as warnings (without secrets) and mean no credentials from that file: the
/// registry's own 401 then says what is missing. Blocking: may run a credential helper.
pub(crate) fn for_registry(options: &CredentialOptions, domain: &str) -> RegistryCredentials {
    if options.anonymous {
        return RegistryCredentials::default();
    }
    if let Some((flag, login)) = options.explicit(domain) {
        tracing::info!("{domain}: credentials from {flag}");
        return RegistryCredentials {
            explicit: Some(login.into()),
            files: Vec::new(),
        };
    }
    let mut files = Vec::new();
    for (path, docker) in options.files() {
        if let Some(found) = read_file(&path, docker, domain) {
            if found.helper.is_some() || !found.namespaced.is_empty() || found.registry.is_some() {
                tracing::info!("{domain}: credentials from {}", path.display());
                files.push(found);
            }
        }
    }
    RegistryCredentials { explicit: None, files }
}

/// The parts of an auth file read here.
#[derive(serde::Deserialize, Default)]
struct AuthFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
}

#[derive(serde::Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// What the file at `path` says for `domain`; `None` when it does not exist or cannot be read.
fn read_file(path: &Path, docker: bool, domain: &str) -> Option<FileCredentials> {
    use std::io::Read;
    let mut bytes = Vec::new();
    let read = std::fs::File::open(path).and_then(|f| f.take(MAX_AUTH_FILE).read_to_end(&mut bytes));
    match read {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(
                "cannot read {}: {e}; continuing without its credentials",
                path.display()
            );
            return None;
        }
    }
    let file: AuthFile = match serde_json::from_slice(&bytes) {
        Ok(f) => f,
        Err(e) => {
            // serde_json's message names line and column, never the text
            tracing::warn!(
                "{}: {e} (invalid JSON?); continuing without its credentials",
                path.display()
            );
            return None;
        }
    };
    let mut found = FileCredentials::default();
    let helper_key = [domain, normalize_registry(domain), server_key(domain)]
        .into_iter()
        .find(|k| file.cred_helpers.contains_key(*k));
    if let Some(key) = helper_key {
        found.helper = Some(from_docker_credential(&bytes, key, path));
        return Some(found);
    }
    for (key, entry) in &file.auths {
        let Some(rest) = key.strip_prefix(domain) else {
            continue;
        };
        if let Some(ns) = rest.strip_prefix('/').filter(|ns| !ns.is_empty()) {
            found.namespaced.push((ns.to_string(), decode_entry(entry, key, path)));
        } else if rest.is_empty() {
            found.registry = Some(decode_entry(entry, key, path));
        }
    }
    if found.registry.is_none() {
        // keys written as URLs (`https://host/v1/`) or under another of Docker Hub's names
        let wanted = normalize_registry(domain);
        let mut keys: Vec<&String> = file
            .auths
            .keys()
            .filter(|k| normalize_key(k).eq_ignore_ascii_case(wanted))
            .collect();
        keys.sort();
        if let Some(key) = keys.first() {
            found.registry = Some(decode_entry(&file.auths[*key], key, path));
        }
    }
    if docker && !matches!(found.registry, Some(Some(_))) {
        // Docker's own rules: `credsStore`, `username`/`password` entries
        let answer = from_docker_credential(&bytes, server_key(domain), path);
        if answer.is_some() {
            found.registry = Some(answer);
        }
    }
    Some(found)
}

/// containers/image's key normalisation: a URL key names its host; Docker Hub's hosts are one.
fn normalize_key(key: &str) -> &str {
    let stripped = key.strip_prefix("http://").or_else(|| key.strip_prefix("https://"));
    match stripped {
        Some(rest) => normalize_registry(rest.split('/').next().unwrap_or(rest)),
        None => normalize_registry(key),
    }
}

fn normalize_registry(registry: &str) -> &str {
    match registry {
        "registry-1.docker.io" | "docker.io" => "index.docker.io",
        other => other,
    }
}

/// An `auths` entry: `identitytoken`, else `auth` (base64 of `user:password`). An entry
/// without either (Docker writes `{}` when a helper keeps the secret) gives nothing.
fn decode_entry(entry: &AuthEntry, key: &str, path: &Path) -> Option<Credential> {
    if let Some(token) = entry.identitytoken.as_ref().filter(|t| !t.is_empty()) {
        return Some(Credential::IdentityToken(token.clone()));
    }
    let auth = entry.auth.as_deref().filter(|a| !a.is_empty())?;
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let decoded = engine.decode(auth.trim()).ok().and_then(|d| String::from_utf8(d).ok());
    match decoded.as_deref().and_then(|d| d.split_once(':')) {
        Some((username, password)) => Some(Credential::Basic {
            username: username.to_string(),
            password: password.trim_matches('\0').to_string(),
        }),
        None => {
            // the text itself may be a secret: never shown
            tracing::warn!(
                "{}: the \"auth\" of {key:?} is not base64 of user:password; ignored",
                path.display()
            );
            None
        }
    }
}

/// Docker's lookup of `server` in a config file's bytes (helpers, `credsStore`, `auths`).
fn from_docker_credential(bytes: &[u8], server: &str, path: &Path) -> Option<Credential> {
    match docker_credential::get_credential_from_reader(bytes, server) {
        Ok(DockerCredential::UsernamePassword(username, password)) => Some(Credential::Basic { username, password }),
        Ok(DockerCredential::IdentityToken(token)) => Some(Credential::IdentityToken(token)),
        Err(CredentialRetrievalError::NoCredentialConfigured) => None,
        Err(CredentialRetrievalError::HelperFailure { helper, stdout, .. }) => {
            // helpers answer "credentials not found" for unknown servers
            if !stdout.to_ascii_lowercase().contains("credentials not found") {
                tracing::warn!(
                    "credential helper {helper} failed for {server}; continuing without its credentials \
                     (try `echo {server} | {helper} get`)"
                );
            }
            None
        }
        Err(CredentialRetrievalError::HelperCommunicationError) => {
            tracing::warn!(
                "cannot run the credential helper configured in {} for {server} (is docker-credential-* on PATH?); \
                 continuing without its credentials",
                path.display()
            );
            None
        }
        Err(e) => {
            tracing::warn!(
                "{}: entry for {server}: {e}; continuing without its credentials",
                path.display()
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> Credential {
        Credential::Basic {
            username: user.into(),
            password: password.into(),
        }
    }

    fn auth(user: &str, password: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    }

    /// Writes each `(name, json)` into a fresh folder; the options read exactly those files.
    fn files(contents: &[(&str, serde_json::Value)]) -> (tempfile::TempDir, Vec<(PathBuf, bool)>) {
        let dir = tempfile::tempdir().unwrap();
        let paths = contents
            .iter()
            .map(|(name, json)| {
                let p = dir.path().join(name);
                std::fs::write(&p, json.to_string()).unwrap();
                (p, *name == "config.json")
            })
            .collect();
        (dir, paths)
    }

    fn resolve(paths: &[(PathBuf, bool)], domain: &str) -> RegistryCredentials {
        RegistryCredentials {
            explicit: None,
            files: paths.iter().filter_map(|(p, d)| read_file(p, *d, domain)).collect(),
        }
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = basic("u", "s3cret");
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(!format!("{:?}", Credential::IdentityToken("tok3n".into())).contains("tok3n"));
        let options = CredentialOptions {
            destination_login: Some(Login {
                username: "u".into(),
                password: "s3cret".into(),
            }),
            ..Default::default()
        };
        assert!(!format!("{options:?}").contains("s3cret"));
        let (_dir, paths) = files(&[(
            "auth.json",
            serde_json::json!({"auths": {"r": {"auth": auth("u", "s3cret")}}}),
        )]);
        assert!(!format!("{:?}", resolve(&paths, "r")).contains("s3cret"));
    }

    #[test]
    fn docker_hub_key() {
        assert_eq!(server_key("docker.io"), DOCKER_HUB_SERVER);
        assert_eq!(server_key("127.0.0.1:5000"), "127.0.0.1:5000");
    }

    #[test]
    fn the_most_specific_key_of_a_file_wins() {
        let (_dir, paths) = files(&[(
            "auth.json",
            serde_json::json!({"auths": {
                "reg.example:5000": {"auth": auth("registry", "p0")},
                "reg.example:5000/team": {"auth": auth("team", "p1")},
                "reg.example:5000/team/app": {"auth": auth("app", "p2")},
                "reg.example:5000/teammate": {"auth": auth("mate", "p3")},
                "reg.example": {"auth": auth("other-port", "p4")},
            }}),
        )]);
        let creds = resolve(&paths, "reg.example:5000");
        assert_eq!(creds.for_repository("team/app"), Some(&basic("app", "p2")));
        assert_eq!(creds.for_repository("team/app/sub"), Some(&basic("app", "p2")));
        assert_eq!(creds.for_repository("team/other"), Some(&basic("team", "p1")));
        assert_eq!(creds.for_repository("team"), Some(&basic("team", "p1")));
        assert_eq!(creds.for_repository("teammate/x"), Some(&basic("mate", "p3")));
        assert_eq!(creds.for_repository("team-app"), Some(&basic("registry", "p0")));
        assert_eq!(creds.for_repository(""), Some(&basic("registry", "p0")));
        assert_eq!(
            resolve(&paths, "reg.example").for_repository("team/app"),
            Some(&basic("other-port", "p4"))
        );
        assert_eq!(resolve(&paths, "elsewhere.example").for_repository("x"), None);
    }

    #[test]
    fn the_first_file_with_an_answer_wins() {
        let (_dir, paths) = files(&[
            (
                "runtime.json",
                serde_json::json!({"auths": {"reg.example/ns": {"auth": auth("runtime", "a")}}}),
            ),
            (
                "config-home.json",
                serde_json::json!({"auths": {"reg.example": {"auth": auth("home", "b")}}}),
            ),
            (
                "config.json",
                serde_json::json!({"auths": {"reg.example/ns/app": {"auth": auth("docker", "c")}}}),
            ),
        ]);
        let creds = resolve(&paths, "reg.example");
        // within the first file only its own keys count, however specific a later file's are
        assert_eq!(creds.for_repository("ns/app"), Some(&basic("runtime", "a")));
        assert_eq!(creds.for_repository("other"), Some(&basic("home", "b")));
    }

    #[test]
    fn empty_entries_and_bad_files_give_nothing_and_the_search_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, b"{not json").unwrap();
        let (_d, mut paths) = files(&[
            ("a.json", serde_json::json!({"auths": {"reg.example": {}}})),
            (
                "b.json",
                serde_json::json!({"auths": {"reg.example": {"auth": "bm90LWEtcGFpcg=="}}}),
            ),
            (
                "c.json",
                serde_json::json!({"auths": {"reg.example": {"auth": auth("found", "x")}}}),
            ),
        ]);
        paths.insert(0, (bad, false));
        paths.insert(0, (dir.path().join("missing.json"), false));
        assert_eq!(
            resolve(&paths, "reg.example").for_repository("a"),
            Some(&basic("found", "x"))
        );
    }

    #[test]
    fn url_keys_docker_hub_names_and_identity_tokens() {
        let (_dir, paths) = files(&[(
            "auth.json",
            serde_json::json!({"auths": {
                "https://index.docker.io/v1/": {"auth": auth("hub", "h")},
                "https://reg.example:5000/v2/": {"auth": auth("url", "u")},
                "token.example": {"auth": auth("ignored", "x"), "identitytoken": "refresh"},
                "docker.io/library/ubuntu": {"auth": auth("ubuntu", "n")},
            }}),
        )]);
        assert_eq!(
            resolve(&paths, "docker.io").for_repository("team/x"),
            Some(&basic("hub", "h"))
        );
        assert_eq!(
            resolve(&paths, "docker.io").for_repository("library/ubuntu"),
            Some(&basic("ubuntu", "n"))
        );
        assert_eq!(
            resolve(&paths, "reg.example:5000").for_repository("x"),
            Some(&basic("url", "u"))
        );
        assert_eq!(
            resolve(&paths, "token.example").for_repository("x"),
            Some(&Credential::IdentityToken("refresh".into()))
        );
    }

    #[test]
    fn docker_config_keeps_dockers_own_rules() {
        let (_dir, paths) = files(&[(
            "config.json",
            serde_json::json!({"auths": {"reg.example": {"username": "plain", "password": "fields"}}}),
        )]);
        assert_eq!(
            resolve(&paths, "reg.example").for_repository("x"),
            Some(&basic("plain", "fields"))
        );
    }

    #[test]
    fn explicit_credentials_win_and_go_only_where_they_belong() {
        let login = |u: &str| Login {
            username: u.into(),
            password: "p".into(),
        };
        let options = CredentialOptions {
            destination: Some("docker.io".into()),
            destination_login: Some(login("target")),
            sources: Some(login("source")),
            auth_file: Some(PathBuf::from("/nonexistent/auth.json")),
            anonymous: false,
            explicit_origin: None,
        };
        assert_eq!(
            for_registry(&options, "docker.io").for_repository("x"),
            Some(&basic("target", "p"))
        );
        assert_eq!(
            for_registry(&options, "registry-1.docker.io").for_repository("x"),
            Some(&basic("target", "p"))
        );
        assert_eq!(
            for_registry(&options, "quay.io").for_repository("x"),
            Some(&basic("source", "p"))
        );
        let only_target = CredentialOptions {
            sources: None,
            ..options.clone()
        };
        assert_eq!(for_registry(&only_target, "quay.io").for_repository("x"), None);
        let only_sources = CredentialOptions {
            destination_login: None,
            ..options
        };
        assert_eq!(
            for_registry(&only_sources, "docker.io").for_repository("x"),
            None,
            "source credentials never go to the target"
        );
    }

    #[test]
    fn anonymous_reads_no_file_and_ignores_explicit_credentials() {
        let (_dir, paths) = files(&[(
            "config.json",
            serde_json::json!({"auths": {"reg.example": {"auth": "dTpw"}}}),
        )]);
        let mut options = CredentialOptions {
            auth_file: Some(paths[0].0.clone()),
            sources: Some(Login {
                username: "u".into(),
                password: "p".into(),
            }),
            ..Default::default()
        };
        assert!(for_registry(&options, "reg.example").for_repository("x").is_some());
        options.anonymous = true;
        assert_eq!(for_registry(&options, "reg.example").for_repository("x"), None);
    }

    #[test]
    fn an_explicit_auth_file_is_the_only_file_read() {
        let options = CredentialOptions {
            auth_file: Some(PathBuf::from("/x/auth.json")),
            ..Default::default()
        };
        assert_eq!(options.files(), vec![(PathBuf::from("/x/auth.json"), false)]);
    }
}
