//! Registry authentication: anonymous, Basic, and Bearer tokens from the realm the registry
//! names in `WWW-Authenticate` (several scopes in one token, so cross-repository mounts work;
//! identity tokens exchanged with `grant_type=refresh_token`). A token asked for the scopes of
//! several repositories serves them all; each scope set gets its own once that is refused.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, StatusCode};
use tokio::sync::{Mutex, RwLock};

use super::credentials::{Credential, RegistryCredentials};
use super::error::RegistryError;
use super::request_log::Logged;
use super::response::{error_chain, error_message, is_retryable_error, read_at_most};

/// Largest token answer read (real ones are a few KiB).
const MAX_TOKEN_RESPONSE: usize = 1024 * 1024;
use super::retry::{is_retryable_status, retry_after, RetryPolicy};

/// What the registry asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// No authorization: `/v2/` answered without asking for credentials.
    Anonymous,
    /// HTTP Basic with the configured user name and password.
    Basic,
    /// A Bearer token from the token service at `realm`.
    Bearer {
        /// The token service's URL.
        realm: String,
        /// The `service` to ask the token service for.
        service: Option<String>,
        /// A scope the registry says the request needs (e.g. on `insufficient_scope`).
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parses `WWW-Authenticate` (`Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`).
    pub(crate) fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(char::is_whitespace).unwrap_or((header, ""));
        let params = parse_params(rest);
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => Some(Challenge::Basic),
            "bearer" => Some(Challenge::Bearer {
                realm: params.get("realm")?.clone(),
                service: params.get("service").cloned(),
                scope: params.get("scope").cloned(),
            }),
            _ => None,
        }
    }

    /// The challenge of a response's `WWW-Authenticate` headers, preferring Bearer over Basic.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Option<Challenge> {
        headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(Challenge::parse)
            // prefer Bearer when a registry offers both
            .max_by_key(|c| matches!(c, Challenge::Bearer { .. }))
    }
}

/// `key=value` and `key="quoted, with commas"` pairs, comma separated.
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.is_empty() {
            break;
        }
        if chars.next() != Some('=') {
            continue;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value.extend(std::iter::from_fn(|| chars.next_if(|c| *c != ',')));
        }
        out.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    out
}

/// The scope of access to one repository, e.g. `repository:team/app:pull,push`.
pub(crate) fn repository_scope(repository: &str, push: bool) -> String {
    format!("repository:{repository}:{}", if push { "pull,push" } else { "pull" })
}

/// A Bearer token and when to stop using it.
struct CachedToken {
    token: String,
    expires: Instant,
}

/// Where a registry's credentials may go to fetch a token.
pub(crate) struct TokenRealmPolicy {
    /// The registry's host name (without port).
    pub registry_host: String,
    /// Whether plain HTTP is allowed for the registry (loopback, `--insecure-registry`).
    pub plain_http_allowed: bool,
}

impl TokenRealmPolicy {
    /// Credentials go only over HTTPS, or over plain HTTP to the registry's own host name when
    /// plain HTTP is allowed for it.
    fn allows(&self, realm: &str) -> bool {
        match reqwest::Url::parse(realm) {
            Ok(url) if url.scheme() == "https" => true,
            Ok(url) if url.scheme() == "http" => {
                self.plain_http_allowed
                    && url
                        .host_str()
                        .is_some_and(|h| h.trim_matches(['[', ']']).eq_ignore_ascii_case(&self.registry_host))
            }
            _ => false,
        }
    }
}

/// Authentication state for one registry.
pub(crate) struct Authenticator {
    registry: String,
    realms: TokenRealmPolicy,
    credentials: RegistryCredentials,
    challenge: RwLock<Challenge>,
    /// One slot per scope set, each with its own lock: concurrent requests for one scope set
    /// share one token fetch, and different scope sets do not wait for each other.
    tokens: std::sync::Mutex<HashMap<String, Arc<Mutex<Option<CachedToken>>>>>,
    /// Tokens asked for the scopes of several requests at once, and the scope sets requests
    /// are waiting on a token for.
    shared: std::sync::Mutex<Shared>,
    /// One shared token fetch at a time: requests that come meanwhile ride on the next one.
    fetching: Mutex<()>,
    /// Whether tokens are shared; cleared for good once the token service refused a request
    /// for several scopes or the registry refused a shared token: then each scope set gets
    /// its own token, as a token service that grants per repository needs.
    sharing: AtomicBool,
    http: reqwest::Client,
    retry: RetryPolicy,
}

/// Scopes asked for in one token request at most (the request's URL stays short).
const MAX_SCOPES_PER_TOKEN: usize = 16;

#[derive(Default)]
struct Shared {
    tokens: Vec<SharedToken>,
    waiting: Vec<Vec<String>>,
    /// Every scope asked for so far, with its credential: a new token carries them too, so
    /// that one token serves requests that combine them (a mount's two repositories).
    known: Vec<(usize, String)>,
}

/// A token with the scopes it was asked for, and whose credential fetched it.
struct SharedToken {
    scopes: Vec<String>,
    credential: usize,
    token: CachedToken,
}

/// Which credential a token request uses (its address: the same entry of the same source).
fn credential_id(credential: Option<&Credential>) -> usize {
    credential.map_or(0, |c| c as *const Credential as usize)
}

/// Whether a token asked for `granted` serves a request needing `needed`: every needed scope
/// is there with at least its actions (`pull,push` serves `pull`).
fn covers(granted: &[String], needed: &[String]) -> bool {
    needed.iter().all(|n| {
        granted.iter().any(|g| {
            g == n
                || match (g.rsplit_once(':'), n.rsplit_once(':')) {
                    (Some((gr, ga)), Some((nr, na))) => {
                        gr == nr && na.split(',').all(|a| ga.split(',').any(|b| b == a))
                    }
                    _ => false,
                }
        })
    })
}

/// Token endpoint answer (`token` and `access_token` are synonyms).
#[derive(serde::Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

impl Authenticator {
    /// Starts from the challenge learnt from `/v2/`, with no token fetched yet.
    pub(crate) fn new(
        registry: String,
        realms: TokenRealmPolicy,
        credentials: RegistryCredentials,
        challenge: Challenge,
        http: reqwest::Client,
        retry: RetryPolicy,
    ) -> Self {
        Authenticator {
            registry,
            realms,
            credentials,
            challenge: RwLock::new(challenge),
            tokens: std::sync::Mutex::new(HashMap::new()),
            shared: std::sync::Mutex::new(Shared::default()),
            fetching: Mutex::new(()),
            sharing: AtomicBool::new(true),
            http,
            retry,
        }
    }

    /// The credential for a request with `scopes`: that of the first scope's repository (the
    /// one written to, when there are several), as an auth file may hold credentials per
    /// repository or namespace.
    fn credential(&self, scopes: &[String]) -> Option<&Credential> {
        let repository = scopes
            .first()
            .and_then(|s| s.strip_prefix("repository:"))
            .and_then(|s| s.rsplit_once(':'))
            .map_or("", |(name, _)| name);
        self.credentials.for_repository(repository)
    }

    /// Adds the `Authorization` the registry wants for `scopes` to `request`.
    pub(crate) async fn authorize(
        &self,
        request: RequestBuilder,
        scopes: &[String],
    ) -> Result<RequestBuilder, RegistryError> {
        let challenge = self.challenge.read().await.clone();
        Ok(match challenge {
            Challenge::Anonymous => request,
            Challenge::Basic => match self.credential(scopes) {
                Some(Credential::Basic { username, password }) => request.basic_auth(username, Some(password)),
                _ => request,
            },
            Challenge::Bearer { realm, service, .. } => {
                let token = self.token(&realm, service.as_deref(), scopes, None).await?;
                request.bearer_auth(token)
            }
        })
    }

    /// Called on a 401: learns the challenge of the response and drops the token it refused,
    /// so the next [`authorize`](Self::authorize) fetches a fresh one (once; a second 401 is final).
    pub(crate) async fn unauthorized(&self, headers: &HeaderMap, scopes: &[String]) -> Result<(), RegistryError> {
        let challenge = Challenge::from_headers(headers).unwrap_or(Challenge::Basic);
        if matches!(challenge, Challenge::Basic) && !matches!(self.credential(scopes), Some(Credential::Basic { .. })) {
            return Err(RegistryError::Auth {
                registry: self.registry.clone(),
                detail: format!(
                    "the registry requires a user name and password and none is configured for it \
                     (give --dest-creds or --src-creds, an --authfile, or run `docker login {}`)",
                    self.registry
                ),
            });
        }
        if let Challenge::Bearer { realm, service, scope } = &challenge {
            // a shared token may carry less than it was asked for: from now on, one per scope set
            self.sharing.store(false, Ordering::Relaxed);
            *self.slot(scopes).lock().await = None;
            // fetch now, with the scope the registry asked for as well
            self.token(realm, service.as_deref(), scopes, scope.as_deref()).await?;
        }
        *self.challenge.write().await = challenge;
        Ok(())
    }

    /// A cached token for `scopes`, or a new one (asking for `extra_scope` as well). While
    /// tokens are shared, one token request carries the scopes of every request waiting for a
    /// token (up to [`MAX_SCOPES_PER_TOKEN`]), and any token asked for a superset serves.
    async fn token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        extra_scope: Option<&str>,
    ) -> Result<String, RegistryError> {
        if extra_scope.is_some() || !self.sharing.load(Ordering::Relaxed) {
            return self.own_token(realm, service, scopes, extra_scope).await;
        }
        let needed: Vec<String> = scopes
            .iter()
            .cloned()
            .collect::<BTreeSet<String>>()
            .into_iter()
            .collect();
        let credential = credential_id(self.credential(scopes));
        if let Some(token) = self.shared_covering(&needed, credential) {
            return Ok(token);
        }
        self.shared().waiting.push(needed.clone());
        let fetched = self.shared_token(realm, service, scopes, &needed, credential).await;
        {
            let mut shared = self.shared();
            if let Some(i) = shared.waiting.iter().position(|w| *w == needed) {
                shared.waiting.swap_remove(i);
            }
        }
        match fetched {
            Ok(token) => Ok(token),
            // the token service refused several scopes at once: each scope set on its own
            Err(_) if !self.sharing.load(Ordering::Relaxed) => {
                self.own_token(realm, service, scopes, extra_scope).await
            }
            Err(e) => Err(e),
        }
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().expect("shared token lock")
    }

    /// A valid shared token fetched with the same credential for a superset of `needed`.
    fn shared_covering(&self, needed: &[String], credential: usize) -> Option<String> {
        let mut shared = self.shared();
        let now = Instant::now();
        shared.tokens.retain(|t| t.token.expires > now);
        shared
            .tokens
            .iter()
            .find(|t| t.credential == credential && covers(&t.scopes, needed))
            .map(|t| t.token.token.clone())
    }

    /// Waits for its turn, then fetches one token for `needed` and for what other requests
    /// with the same credential wait for, unless a fetch meanwhile covered `needed`.
    async fn shared_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        needed: &[String],
        credential: usize,
    ) -> Result<String, RegistryError> {
        let _turn = self.fetching.lock().await;
        if let Some(token) = self.shared_covering(needed, credential) {
            return Ok(token);
        }
        let mut asked: Vec<String> = needed.to_vec();
        let waiting = self.shared().waiting.clone();
        for other in waiting {
            let same_credential = other
                .first()
                .map(|s| credential_id(self.credential(std::slice::from_ref(s))) == credential)
                .unwrap_or(false);
            if !same_credential || covers(&asked, &other) {
                continue;
            }
            let more: Vec<String> = other
                .into_iter()
                .filter(|s| !covers(&asked, std::slice::from_ref(s)))
                .collect();
            if asked.len() + more.len() > MAX_SCOPES_PER_TOKEN {
                continue;
            }
            asked.extend(more);
        }
        let known = self.shared().known.clone();
        for (_, scope) in known.into_iter().filter(|(c, _)| *c == credential) {
            if asked.len() >= MAX_SCOPES_PER_TOKEN {
                break;
            }
            if !covers(&asked, std::slice::from_ref(&scope)) {
                asked.push(scope);
            }
        }
        let refs: Vec<&str> = asked.iter().map(String::as_str).collect();
        let (token, lifetime) = match self.fetch_token(realm, service, &refs, self.credential(scopes)).await {
            Ok(fetched) => fetched,
            Err(e) => {
                if asked.len() > needed.len() {
                    tracing::debug!(
                        "{}: a token for {} scopes at once was refused: {e}",
                        self.registry,
                        asked.len()
                    );
                    self.sharing.store(false, Ordering::Relaxed);
                }
                return Err(e);
            }
        };
        let margin = Duration::from_secs(10).min(lifetime / 2);
        let mut shared = self.shared();
        for scope in &asked {
            if !shared.known.iter().any(|(c, s)| *c == credential && s == scope) {
                shared.known.push((credential, scope.clone()));
            }
        }
        shared.tokens.push(SharedToken {
            scopes: asked,
            credential,
            token: CachedToken {
                token: token.clone(),
                expires: Instant::now() + lifetime - margin,
            },
        });
        Ok(token)
    }

    /// The token of `scopes`' own cache slot, or a new one for exactly them (and
    /// `extra_scope`).
    async fn own_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        extra_scope: Option<&str>,
    ) -> Result<String, RegistryError> {
        let slot = self.slot(scopes);
        let mut cached = slot.lock().await;
        if let Some(t) = cached.as_ref().filter(|t| t.expires > Instant::now()) {
            return Ok(t.token.clone());
        }
        let mut all: BTreeSet<&str> = scopes.iter().map(String::as_str).collect();
        all.extend(extra_scope);
        let (token, lifetime) = self
            .fetch_token(
                realm,
                service,
                &all.into_iter().collect::<Vec<_>>(),
                self.credential(scopes),
            )
            .await?;
        // renew a little early so a token does not expire in flight
        let margin = Duration::from_secs(10).min(lifetime / 2);
        *cached = Some(CachedToken {
            token: token.clone(),
            expires: Instant::now() + lifetime - margin,
        });
        Ok(token)
    }

    /// The cache slot of a scope set.
    fn slot(&self, scopes: &[String]) -> Arc<Mutex<Option<CachedToken>>> {
        self.tokens
            .lock()
            .expect("token map lock")
            .entry(scope_key(scopes))
            .or_default()
            .clone()
    }

    /// Asks the token service for a token and its lifetime with `credential`, retrying what
    /// may heal.
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[&str],
        credential: Option<&Credential>,
    ) -> Result<(String, Duration), RegistryError> {
        let auth_err = |detail: String| RegistryError::Auth {
            registry: self.registry.clone(),
            detail,
        };
        if credential.is_some() && !self.realms.allows(realm) {
            return Err(auth_err(format!(
                "refusing to send the credentials for {} to the token service {realm}: credentials go only over \
                 HTTPS, or over plain HTTP to the registry's own host when it may be spoken to so",
                self.registry
            )));
        }
        let mut attempt = 0;
        loop {
            let request = match credential {
                Some(Credential::IdentityToken(refresh)) => {
                    let mut form: Vec<(&str, &str)> = vec![
                        ("grant_type", "refresh_token"),
                        ("refresh_token", refresh),
                        ("client_id", "cnab-relocate"),
                    ];
                    form.extend(service.map(|s| ("service", s)));
                    let joined = scopes.join(" ");
                    if !joined.is_empty() {
                        form.push(("scope", &joined));
                    }
                    self.http.post(realm).form(&form)
                }
                other => {
                    let mut query: Vec<(&str, &str)> = service.map(|s| ("service", s)).into_iter().collect();
                    query.extend(scopes.iter().map(|s| ("scope", *s)));
                    let request = self.http.get(realm).query(&query);
                    match other {
                        Some(Credential::Basic { username, password }) => request.basic_auth(username, Some(password)),
                        _ => request,
                    }
                }
            };
            let last = attempt + 1 >= self.retry.max_attempts;
            let (client, built) = request.build_split();
            let built = built.map_err(|e| auth_err(format!("cannot ask the token service {realm}: {e}")))?;
            // -v shows token requests like any other (credentials and tokens redacted)
            let logged = Logged::new(built.method(), built.url(), Some(built.headers()));
            let sent = client.execute(built).await;
            match &sent {
                Ok(r) => logged.answered(r),
                Err(e) => logged.failed(&error_chain(e)),
            }
            let response = match sent {
                Ok(r) => r,
                Err(e) if !last && is_retryable_error(&e) => {
                    tokio::time::sleep(self.retry.delay(attempt, None)).await;
                    attempt += 1;
                    continue;
                }
                Err(e) => {
                    return Err(auth_err(format!(
                        "cannot reach the token service {realm}: {}",
                        error_chain(&e)
                    )))
                }
            };
            let status = response.status();
            if is_retryable_status(status) && !last && !self.retry.too_long(retry_after(response.headers())) {
                tokio::time::sleep(self.retry.delay(attempt, retry_after(response.headers()))).await;
                attempt += 1;
                continue;
            }
            if !status.is_success() {
                let body = error_message(response).await;
                let hint = match (status, credential) {
                    (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, None) => {
                        " (no credentials are configured for this registry: give --dest-creds or --src-creds, an \
                         --authfile, or run `docker login`)"
                    }
                    (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, Some(_)) => {
                        " (the configured credentials were refused; check them, or run `docker login` again)"
                    }
                    _ => "",
                };
                return Err(auth_err(format!(
                    "token service {realm} answered {status}: {body}{hint}"
                )));
            }
            let body = read_at_most(response, MAX_TOKEN_RESPONSE)
                .await
                .map_err(|e| auth_err(format!("token service {realm}: {}", error_chain(&e))))?
                .ok_or_else(|| {
                    auth_err(format!(
                        "token service {realm} sent more than {MAX_TOKEN_RESPONSE} bytes"
                    ))
                })?;
            let parsed: TokenResponse = serde_json::from_slice(&body)
                .map_err(|e| auth_err(format!("token service {realm} sent an unreadable answer: {e}")))?;
            let token = parsed
                .token
                .or(parsed.access_token)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| auth_err(format!("token service {realm} sent no token")))?;
            // the Docker token spec's default lifetime is 60 s
            let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(60).max(1));
            return Ok((token, lifetime));
        }
    }
}

/// The cache key of a scope set: sorted, without duplicates, space-separated.
fn scope_key(scopes: &[String]) -> String {
    let mut sorted: Vec<&str> = scopes.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    sorted.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenges_with_commas_in_quotes() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull,push",error="insufficient_scope""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/ubuntu:pull,push".into()),
            }
        );
        assert_eq!(Challenge::parse(r#"Basic realm="test-realm""#), Some(Challenge::Basic));
        assert_eq!(
            Challenge::parse("bearer realm=http://127.0.0.1:1/token"),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:1/token".into(),
                service: None,
                scope: None
            })
        );
        assert_eq!(Challenge::parse("Negotiate abc"), None);
        assert_eq!(Challenge::parse("Bearer service=x"), None, "realm is required");
    }

    #[test]
    fn scope_keys_ignore_order_and_duplicates() {
        let a = scope_key(&["b".into(), "a".into(), "a".into()]);
        assert_eq!(a, "a b");
        assert_eq!(repository_scope("t/app", true), "repository:t/app:pull,push");
    }
}
