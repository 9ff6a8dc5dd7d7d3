//! One registry host: endpoint discovery (`/v2/` ping), authenticated requests with retries,
//! and the manifest and blob operations of the distribution API.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use tokio::sync::OnceCell;

use super::auth::{repository_scope, Authenticator, Challenge, TokenRealmPolicy};
use super::credentials;
use super::error::RegistryError;
use super::limiter::Limiter;
use super::request_log::Logged;
use super::response::{error_chain, error_message, header_str, is_retryable_error, read_at_most};
use super::retry::{is_retryable_status, retry_after, RetryPolicy};
use super::tls::Trust;
use super::transport::{api_host, host_without_port, RegistryOptions, SchemePolicy};
use crate::limits::MAX_MANIFEST_SIZE;
use crate::oci::{Manifest, ACCEPT_MANIFESTS};
use crate::reference::{Digest, ManifestSelector};

/// Every registry a run talks to, each set up once (ping, credentials, tokens).
pub struct Registries {
    options: RegistryOptions,
    credentials: Arc<credentials::CredentialOptions>,
    /// The system's roots and the `--ca-cert-path` certificates.
    trust: Trust,
    http: reqwest::Client,
    blob_http: reqwest::Client,
    upload_http: reqwest::Client,
    hosts: std::sync::Mutex<HashMap<String, Arc<Registry>>>,
}

impl Registries {
    /// Builds the shared HTTP client; no registry is contacted until it is first used.
    pub fn new(options: RegistryOptions) -> Result<Self, RegistryError> {
        let trust = options.trust()?;
        let http = options.http_client(&trust)?;
        let blob_http = options.blob_client(&trust)?;
        let upload_http = options.upload_client(&trust)?;
        Ok(Registries {
            trust,
            credentials: Arc::new(options.credentials.clone()),
            options,
            http,
            blob_http,
            upload_http,
            hosts: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// Cancels every upload session still open on any registry (an interrupted run).
    pub async fn cancel_open_uploads(&self) {
        let hosts: Vec<Arc<Registry>> = self
            .hosts
            .lock()
            .expect("registry map lock")
            .values()
            .cloned()
            .collect();
        futures_util::future::join_all(hosts.iter().map(|r| r.cancel_open_uploads())).await;
    }

    /// The registry of a reference's domain (`docker.io`, `127.0.0.1:5000`).
    pub fn get(&self, domain: &str) -> Arc<Registry> {
        let mut hosts = self.hosts.lock().expect("registry map lock");
        hosts
            .entry(domain.to_string())
            .or_insert_with(|| {
                // a registry with its own certs.d folder gets clients trusting those too; one
                // whose certificates cannot be read fails when first used
                let shared = || (self.http.clone(), self.blob_http.clone(), self.upload_http.clone());
                let ((http, blob_http, upload_http), endpoint) = match self.clients_for(domain) {
                    Ok(Some(clients)) => (clients, OnceCell::new()),
                    Ok(None) => (shared(), OnceCell::new()),
                    Err(e) => (shared(), OnceCell::new_with(Some(Err(e)))),
                };
                Arc::new(Registry {
                    domain: domain.to_string(),
                    host: api_host(domain).to_string(),
                    policy: self.options.scheme_policy(api_host(domain)),
                    credentials: self.credentials.clone(),
                    http,
                    blob_http,
                    upload_http,
                    timeout: self.options.timeout(),
                    retry: self.options.retry.clone(),
                    endpoint,
                    open_uploads: std::sync::Mutex::new(HashMap::new()),
                    limiter: Limiter::new(MAX_IN_FLIGHT),
                    lists_referrers: AtomicU8::new(0),
                })
            })
            .clone()
    }

    /// Clients for `domain` when its `certs.d` folder holds certificates.
    fn clients_for(&self, domain: &str) -> Result<Option<Clients>, RegistryError> {
        if self.options.skip_tls_verify {
            return Ok(None);
        }
        let certs = self.options.registry_certificates(domain)?;
        if certs.is_empty() {
            return Ok(None);
        }
        let trust = self.trust.with(certs)?;
        Ok(Some((
            self.options.http_client(&trust)?,
            self.options.blob_client(&trust)?,
            self.options.upload_client(&trust)?,
        )))
    }
}

/// The metadata, blob-read and upload clients of a registry.
type Clients = (reqwest::Client, reqwest::Client, reqwest::Client);

/// Where a registry's API is and how to authenticate there, learnt from the `/v2/` ping.
struct Endpoint {
    base: Url,
    auth: Authenticator,
}

/// One registry host.
pub struct Registry {
    domain: String,
    host: String,
    policy: SchemePolicy,
    /// Where this registry's credentials are looked up (once, at first contact).
    credentials: Arc<credentials::CredentialOptions>,
    /// Metadata: HTTP/2 where offered over TLS.
    http: reqwest::Client,
    /// Blob bytes read: HTTP/1.1, a connection per transfer.
    blob_http: reqwest::Client,
    /// For streamed uploads, which are watched by their progress rather than a read timeout.
    upload_http: reqwest::Client,
    /// How long a request may make no progress.
    timeout: Duration,
    retry: RetryPolicy,
    endpoint: OnceCell<Result<Endpoint, RegistryError>>,
    /// Upload sessions opened and not yet committed or cancelled: session URL → repository.
    open_uploads: std::sync::Mutex<HashMap<Url, String>>,
    /// Requests in flight to this registry, lowered while it answers 429.
    limiter: Limiter,
    /// Whether it keeps a referrers list itself, as its answers to manifests with a
    /// `subject` told: 0 not known yet, 1 yes (`OCI-Subject`), 2 no.
    lists_referrers: AtomicU8,
}

/// When a streamed upload last moved a byte.
struct Progress {
    last: std::sync::Mutex<tokio::time::Instant>,
}

impl Progress {
    fn new() -> Self {
        Progress {
            last: std::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    fn moved(&self) {
        *self.last.lock().expect("progress lock") = tokio::time::Instant::now();
    }

    /// Resolves once nothing has moved for `timeout` (after the last byte: no answer).
    async fn stalled(&self, timeout: Duration) {
        loop {
            let last = *self.last.lock().expect("progress lock");
            if last.elapsed() >= timeout {
                return;
            }
            tokio::time::sleep_until(last + timeout).await;
        }
    }
}

/// Requests in flight to one registry before it asks for fewer.
const MAX_IN_FLIGHT: usize = 64;

/// A request body in memory at least this large is sent on the upload client (HTTP/1.1, no
/// read timeout); smaller ones (most manifests) go with the metadata (HTTP/2 where offered).
const LARGE_BODY: usize = 64 * 1024;

/// The slowest upload rate a request body held in memory is given time for (8 KiB/s, about
/// 64 kbit/s): a 1 MiB blob sent whole, or a 1 MiB manifest, may take two minutes beyond
/// `--timeout`.
const SLOWEST_LINK_BYTES_PER_SEC: f64 = 8.0 * 1024.0;

/// Redirects followed for one request.
const MAX_REDIRECTS: usize = 10;

/// Why a request got no answer: the transport failed, or it was not sent.
enum Sent {
    Transport(reqwest::Error),
    /// No answer within the timeout (a hung connection or TLS handshake).
    Silent,
    Refused(RegistryError),
}

/// Same scheme, host and port.
fn same_origin(a: &Url, b: &Url) -> bool {
    a.origin() == b.origin()
}

/// The answer to a ranged blob GET.
pub enum BlobRange {
    /// Exactly the bytes asked for (206).
    Part(Response),
    /// The whole blob: the server ignored `Range` (200).
    Whole(Response),
}

/// Result of asking the registry to mount a blob from another repository.
pub enum MountOutcome {
    /// The registry reports the blob mounted into the repository.
    Mounted,
    /// The registry did not mount and opened an upload session instead.
    Upload(Url),
    /// The registry refused the mount (401, 403, 404, 405, or a 201 for another digest).
    Refused,
}

impl Registry {
    /// The registry's domain as references name it (`docker.io`, not its API host).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Pings `/v2/` once per run to learn the scheme and the auth challenge. A registry that
    /// cannot be reached is not tried again for every request: its failure is kept too.
    async fn endpoint(&self) -> Result<&Endpoint, RegistryError> {
        self.endpoint
            .get_or_init(|| self.discover())
            .await
            .as_ref()
            .map_err(Clone::clone)
    }

    async fn discover(&self) -> Result<Endpoint, RegistryError> {
        let domain = self.domain.clone();
        let options = self.credentials.clone();
        let credential = tokio::task::spawn_blocking(move || credentials::for_registry(&options, &domain))
            .await
            .unwrap_or_default();
        let https =
            Url::parse(&format!("https://{}/v2/", self.host)).map_err(|e| self.protocol(format!("bad host: {e}")))?;
        let https_error = match self.ping(&https).await {
            Ok(challenge) => return Ok(self.make_endpoint(https, credential, challenge)),
            Err(e) => e,
        };
        if self.policy == SchemePolicy::HttpsThenHttp && !matches!(https_error, RegistryError::Status { .. }) {
            let http = Url::parse(&format!("http://{}/v2/", self.host)).map_err(|e| self.protocol(e.to_string()))?;
            match self.ping(&http).await {
                Ok(challenge) => {
                    tracing::debug!("{}: HTTPS failed ({https_error}); using plain HTTP", self.domain);
                    return Ok(self.make_endpoint(http, credential, challenge));
                }
                // a failing server answering over HTTP says more than the failed TLS handshake
                // before it (a 503 is no TLS error); a 400 is an HTTPS server refusing HTTP
                Err(e @ RegistryError::Status { status, .. }) if status >= 500 || status == 429 => return Err(e),
                Err(e) => tracing::debug!("{}: plain HTTP failed too: {e}", self.domain),
            }
        }
        Err(https_error)
    }

    fn make_endpoint(
        &self,
        ping_url: Url,
        credential: credentials::RegistryCredentials,
        challenge: Challenge,
    ) -> Endpoint {
        let mut base = ping_url;
        base.set_path("/");
        Endpoint {
            auth: Authenticator::new(
                self.domain.clone(),
                TokenRealmPolicy {
                    registry_host: host_without_port(&self.host).to_string(),
                    plain_http_allowed: self.policy == SchemePolicy::HttpsThenHttp,
                },
                credential,
                challenge,
                self.http.clone(),
                self.retry.clone(),
            ),
            base,
        }
    }

    async fn ping(&self, url: &Url) -> Result<Challenge, RegistryError> {
        let mut attempt = 0;
        loop {
            let last = attempt + 1 >= self.retry.max_attempts;
            let last_contact_try = attempt + 1 >= self.retry.first_contact_attempts;
            let logged = Logged::new(&Method::GET, url, None);
            let answered = match tokio::time::timeout(self.timeout, self.http.get(url.clone()).send()).await {
                Ok(answered) => {
                    match &answered {
                        Ok(r) => logged.answered(r),
                        Err(e) => logged.failed(&error_chain(e)),
                    }
                    answered
                }
                // never answered (a hung connection or TLS handshake): as good as unreachable
                Err(_) if last || last_contact_try => return Err(self.silent(&format!("GET {url}"))),
                Err(_) => {
                    tokio::time::sleep(self.retry.delay(attempt, None)).await;
                    attempt += 1;
                    continue;
                }
            };
            match answered {
                Ok(r) if r.status() == StatusCode::UNAUTHORIZED => {
                    return Challenge::from_headers(r.headers()).ok_or_else(|| {
                        self.protocol("answered 401 without a usable WWW-Authenticate challenge".into())
                    })
                }
                Ok(r) if r.status().is_success() => return Ok(Challenge::Anonymous),
                Ok(r) if is_retryable_status(r.status()) && !last && !self.retry.too_long(retry_after(r.headers())) => {
                    tokio::time::sleep(self.retry.delay(attempt, retry_after(r.headers()))).await;
                }
                Ok(r) => {
                    let status = r.status();
                    let message = error_message(r).await;
                    return Err(RegistryError::Status {
                        registry: self.domain.clone(),
                        operation: format!("GET {url} (is this a registry?)"),
                        status: status.as_u16(),
                        message,
                        retryable: false,
                    });
                }
                // never connected, or never answered in HTTP: a registry that is down, absent,
                // hung or not speaking HTTP fails the run quickly
                Err(e) if last_contact_try => return Err(self.transport(&format!("GET {url}"), &e)),
                Err(e) if !last && is_retryable_error(&e) => {
                    tokio::time::sleep(self.retry.delay(attempt, None)).await;
                }
                Err(e) => return Err(self.transport(&format!("GET {url}"), &e)),
            }
            attempt += 1;
        }
    }

    /// Sends a request built by `build` (called again for every attempt) with authorization,
    /// re-authenticating once on 401 and retrying what may heal.
    pub(super) async fn send(
        &self,
        operation: &str,
        scopes: &[String],
        build: impl Fn(&reqwest::Client, &Url) -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let endpoint = self.endpoint().await?;
        let mut attempt = 0;
        let mut reauthenticated = false;
        loop {
            let last = attempt + 1 >= self.retry.max_attempts;
            let request = build(&self.http, &endpoint.base)
                .build()
                .map_err(|e| self.transport(operation, &e))?;
            let response = match self.execute(endpoint, request, scopes).await {
                Ok(r) => r,
                Err(Sent::Transport(e)) if !last && is_retryable_error(&e) => {
                    tracing::debug!("{}: {operation}: {} (retrying)", self.domain, error_chain(&e));
                    tokio::time::sleep(self.retry.delay(attempt, None)).await;
                    attempt += 1;
                    continue;
                }
                Err(Sent::Silent) if !last => {
                    tracing::debug!("{}: {operation}: no answer within the timeout (retrying)", self.domain);
                    tokio::time::sleep(self.retry.delay(attempt, None)).await;
                    attempt += 1;
                    continue;
                }
                // this request's attempts are spent: trying the transfer again would multiply them
                Err(Sent::Transport(e)) => return Err(self.transport(operation, &e).attempts_spent()),
                Err(Sent::Silent) => return Err(self.silent(operation).attempts_spent()),
                Err(Sent::Refused(e)) => return Err(e),
            };
            let status = response.status();
            // only the registry itself may ask for other credentials (not a CDN it redirected to)
            if status == StatusCode::UNAUTHORIZED && !reauthenticated && same_origin(response.url(), &endpoint.base) {
                endpoint.auth.unauthorized(response.headers(), scopes).await?;
                reauthenticated = true;
                continue;
            }
            let asked = retry_after(response.headers());
            let too_long = self.retry.too_long(asked);
            if is_retryable_status(status) && !last && !too_long {
                let wait = self.retry.delay(attempt, asked);
                tracing::debug!("{}: {operation}: {status} (retrying in {wait:?})", self.domain);
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }
            return Ok(response);
        }
    }

    /// Sends a request whose body cannot be replayed (a streamed blob): no retry; the caller
    /// retries the whole transfer.
    async fn send_once(
        &self,
        operation: &str,
        scopes: &[String],
        request: RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let endpoint = self.endpoint().await?;
        let request = request.build().map_err(|e| self.transport(operation, &e))?;
        match self.execute(endpoint, request, scopes).await {
            Ok(r) => Ok(r),
            Err(Sent::Transport(e)) => Err(self.transport(operation, &e)),
            Err(Sent::Silent) => Err(self.silent(operation)),
            Err(Sent::Refused(e)) => Err(e),
        }
    }

    /// Sends `request`, with the registry's authorization only when it goes to the registry's
    /// own origin (scheme, host and port): an upload `Location` elsewhere, or any step from
    /// HTTPS to HTTP, gets none. Redirects of GET and HEAD are followed here, each hop
    /// authorized by its own origin (reqwest would carry the header across hops).
    async fn execute(
        &self,
        endpoint: &Endpoint,
        request: reqwest::Request,
        scopes: &[String],
    ) -> Result<Response, Sent> {
        let mut request = request;
        // blob bytes travel on connections of their own (also after a redirect to storage)
        let blob_read = *request.method() == Method::GET && request.url().path().contains("/blobs/sha256:");
        for _ in 0..=MAX_REDIRECTS {
            let follow = matches!(*request.method(), Method::GET | Method::HEAD)
                .then(|| request.try_clone())
                .flatten();
            let own_origin = same_origin(request.url(), &endpoint.base);
            // a streamed body may wait on other uploads of the same bytes, and a cancel must
            // not wait behind work it ends: neither takes a place under the limit
            let streamed = request.body().is_some_and(|b| b.as_bytes().is_none());
            let limited = !streamed && *request.method() != Method::DELETE;
            let permit = match limited {
                true => Some(self.limiter.acquire().await),
                false => None,
            };
            // a large body in memory (a small blob sent whole, a large manifest) goes like a
            // streamed one, on a client without a read timeout: the registry answers only once
            // all of it arrived, which on a slow link may take longer than the timeout
            let large_body = request
                .body()
                .and_then(|b| b.as_bytes())
                .is_some_and(|b| b.len() >= LARGE_BODY);
            let client = match (streamed || large_body, blob_read) {
                (true, _) => &self.upload_http,
                (false, true) => &self.blob_http,
                (false, false) => &self.http,
            };
            let mut builder = RequestBuilder::from_parts(client.clone(), request);
            if own_origin {
                builder = endpoint.auth.authorize(builder, scopes).await.map_err(Sent::Refused)?;
            }
            let (client, built) = builder.build_split();
            let built = built.map_err(Sent::Transport)?;
            let logged = Logged::new(built.method(), built.url(), Some(built.headers()));
            // a streamed upload is watched by its progress; anything else must be answered in
            // time, a body in memory given the time to send it at a slow link's pace on top
            let body_len = built.body().and_then(|b| b.as_bytes()).map_or(0, <[u8]>::len);
            let deadline = self.timeout + Duration::from_secs_f64(body_len as f64 / SLOWEST_LINK_BYTES_PER_SEC);
            let sent = match streamed {
                true => Ok(client.execute(built).await),
                false => tokio::time::timeout(deadline, client.execute(built)).await,
            };
            let response = match sent {
                Ok(Ok(response)) => {
                    logged.answered(&response);
                    response
                }
                Ok(Err(e)) => {
                    logged.failed(&error_chain(&e));
                    return Err(Sent::Transport(e));
                }
                Err(_) => {
                    logged.failed("no answer in time");
                    return Err(Sent::Silent);
                }
            };
            drop(permit);
            if response.status() == StatusCode::TOO_MANY_REQUESTS {
                self.limiter.too_many();
            } else if response.status().is_success() {
                self.limiter.succeeded();
            }
            let location = header_str(response.headers(), LOCATION);
            let (true, Some(mut next), Some(location)) = (response.status().is_redirection(), follow, location) else {
                return Ok(response);
            };
            let to = response
                .url()
                .join(&location)
                .map_err(|e| Sent::Refused(self.protocol(format!("redirect to {location}: {e}"))))?;
            if !same_origin(&to, &endpoint.base) {
                tracing::debug!(
                    "{}: following a redirect to {} without credentials",
                    self.domain,
                    to.origin().ascii_serialization()
                );
            }
            *next.url_mut() = to;
            request = next;
        }
        Err(Sent::Refused(
            self.protocol(format!("more than {MAX_REDIRECTS} redirects")),
        ))
    }

    /// GET a manifest, checking its bytes against the digest asked for (or the one the
    /// registry reports when asked by tag).
    pub async fn get_manifest(&self, repository: &str, selector: &ManifestSelector) -> Result<Manifest, RegistryError> {
        let read = self.read_manifest(repository, selector, false).await?;
        Ok(read.expect("a missing manifest is an error here"))
    }

    /// The manifest the selector names, or `None` when the repository has none such.
    pub async fn find_manifest(
        &self,
        repository: &str,
        selector: &ManifestSelector,
    ) -> Result<Option<Manifest>, RegistryError> {
        self.read_manifest(repository, selector, true).await
    }

    async fn read_manifest(
        &self,
        repository: &str,
        selector: &ManifestSelector,
        missing_is_none: bool,
    ) -> Result<Option<Manifest>, RegistryError> {
        let op = format!("GET manifest {}", selector.in_repository(repository));
        let path = format!("v2/{repository}/manifests/{selector}");
        let scopes = [repository_scope(repository, false)];
        let response = self
            .send(&op, &scopes, |http, base| {
                http.get(base.join(&path).expect("valid path"))
                    .header(ACCEPT, ACCEPT_MANIFESTS)
            })
            .await?;
        if missing_is_none && response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = self.expect_success(&op, response, &[StatusCode::OK]).await?;
        let content_type = header_str(response.headers(), CONTENT_TYPE);
        let reported = header_str(response.headers(), "docker-content-digest").and_then(|d| d.parse::<Digest>().ok());
        if response.content_length().is_some_and(|n| n > MAX_MANIFEST_SIZE as u64) {
            return Err(self.protocol(format!("{op}: manifest larger than {MAX_MANIFEST_SIZE} bytes")));
        }
        let bytes = read_at_most(response, MAX_MANIFEST_SIZE)
            .await
            .map_err(|e| self.transport(&op, &e))?
            .ok_or_else(|| self.protocol(format!("{op}: manifest larger than {MAX_MANIFEST_SIZE} bytes")))?;
        let expected = match selector {
            ManifestSelector::Digest(d) => Some(d.clone()),
            ManifestSelector::Tag(_) => reported,
        };
        Manifest::new(bytes, content_type.as_deref(), expected.as_ref())
            .map(Some)
            .map_err(|e| RegistryError::Manifest {
                registry: self.domain.clone(),
                operation: op,
                source: Box::new(e),
            })
    }

    /// The digest a manifest has in the repository, or `None` when it is not there. With
    /// `push_scope` (a repository about to be written to) its token serves the pushes too.
    pub async fn head_manifest(
        &self,
        repository: &str,
        selector: &ManifestSelector,
        push_scope: bool,
    ) -> Result<Option<Digest>, RegistryError> {
        let op = format!("HEAD manifest {}", selector.in_repository(repository));
        let path = format!("v2/{repository}/manifests/{selector}");
        let scopes = [repository_scope(repository, push_scope)];
        let response = self
            .send(&op, &scopes, |http, base| {
                http.head(base.join(&path).expect("valid path"))
                    .header(ACCEPT, ACCEPT_MANIFESTS)
            })
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = self.expect_success(&op, response, &[StatusCode::OK]).await?;
        match header_str(response.headers(), "docker-content-digest") {
            Some(d) => d
                .parse()
                .map(Some)
                .map_err(|e| self.protocol(format!("{op}: bad Docker-Content-Digest: {e}"))),
            // the header is optional: the manifest itself says what it is
            None => Ok(Some(self.get_manifest(repository, selector).await?.digest)),
        }
    }

    /// PUT a manifest's raw bytes with its own media type, by tag or by digest.
    pub async fn put_manifest(
        &self,
        repository: &str,
        selector: &ManifestSelector,
        manifest: &Manifest,
    ) -> Result<Option<Digest>, RegistryError> {
        let op = format!("PUT manifest {}", selector.in_repository(repository));
        let path = format!("v2/{repository}/manifests/{selector}");
        let scopes = [repository_scope(repository, true)];
        let response = self
            .send(&op, &scopes, |http, base| {
                http.put(base.join(&path).expect("valid path"))
                    .header(CONTENT_TYPE, &manifest.media_type)
                    .body(manifest.bytes.clone())
            })
            .await?;
        let response = self
            .expect_success(&op, response, &[StatusCode::CREATED, StatusCode::OK])
            .await?;
        if response.headers().contains_key("oci-subject") {
            self.lists_referrers.store(1, Ordering::Relaxed);
        } else if has_subject(manifest) {
            let _ = self
                .lists_referrers
                .compare_exchange(0, 2, Ordering::Relaxed, Ordering::Relaxed);
        }
        match header_str(response.headers(), "docker-content-digest") {
            Some(d) if d == manifest.digest.to_string() => Ok(Some(manifest.digest.clone())),
            Some(d) => Err(self.protocol(format!(
                "{op}: the registry stored it as {d}, not {}; it changed the manifest",
                manifest.digest
            ))),
            None => Ok(None),
        }
    }

    /// Whether the registry keeps referrers lists itself (the OCI 1.1 API), as far as its
    /// answers to manifests with a `subject` told; `None` before any such answer.
    pub fn lists_referrers(&self) -> Option<bool> {
        match self.lists_referrers.load(Ordering::Relaxed) {
            1 => Some(true),
            2 => Some(false),
            _ => None,
        }
    }

    /// Whether the repository holds the blob.
    pub async fn blob_exists(
        &self,
        repository: &str,
        digest: &Digest,
        push_scope: bool,
    ) -> Result<bool, RegistryError> {
        let op = format!("HEAD blob {repository}@{digest}");
        let path = format!("v2/{repository}/blobs/{digest}");
        let scopes = [repository_scope(repository, push_scope)];
        let response = self
            .send(&op, &scopes, |http, base| {
                http.head(base.join(&path).expect("valid path"))
            })
            .await?;
        match response.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => self.expect_success(&op, response, &[]).await.map(|_| false),
        }
    }

    /// GET a blob; the caller streams and verifies the body.
    pub async fn get_blob(&self, repository: &str, digest: &Digest) -> Result<Response, RegistryError> {
        let op = format!("GET blob {repository}@{digest}");
        let path = format!("v2/{repository}/blobs/{digest}");
        let scopes = [repository_scope(repository, false)];
        let response = self
            .send(&op, &scopes, |http, base| {
                http.get(base.join(&path).expect("valid path"))
            })
            .await?;
        self.expect_success(&op, response, &[StatusCode::OK]).await
    }

    /// GET a blob from byte `offset` on (`Range`), to go on after a broken body. Returns the
    /// response and whether it starts at `offset` (206); a registry or storage that ignores
    /// `Range` answers 200 with the whole blob.
    pub async fn get_blob_from(
        &self,
        repository: &str,
        digest: &Digest,
        offset: u64,
    ) -> Result<(Response, bool), RegistryError> {
        let op = format!("GET blob {repository}@{digest} from byte {offset}");
        let path = format!("v2/{repository}/blobs/{digest}");
        let scopes = [repository_scope(repository, false)];
        let response = self
            .send(&op, &scopes, |http, base| {
                http.get(base.join(&path).expect("valid path"))
                    .header(RANGE, format!("bytes={offset}-"))
            })
            .await?;
        let response = self
            .expect_success(&op, response, &[StatusCode::OK, StatusCode::PARTIAL_CONTENT])
            .await?;
        let ranged = response.status() == StatusCode::PARTIAL_CONTENT;
        if ranged
            && !header_str(response.headers(), CONTENT_RANGE)
                .is_some_and(|r| r.starts_with(&format!("bytes {offset}-")))
        {
            return Err(self.protocol(format!("{op}: the answer covers another range")));
        }
        Ok((response, ranged))
    }

    /// GET bytes `start..=end` of a blob (`Range`). A registry (or the storage it redirects
    /// to) that ignores `Range` answers 200 with the whole blob, which is handed back as such;
    /// a 206 must cover exactly the range asked for.
    pub async fn get_blob_range(
        &self,
        repository: &str,
        digest: &Digest,
        start: u64,
        end: u64,
    ) -> Result<BlobRange, RegistryError> {
        let op = format!("GET blob {repository}@{digest} bytes {start}-{end}");
        let path = format!("v2/{repository}/blobs/{digest}");
        let scopes = [repository_scope(repository, false)];
        let response = self
            .send(&op, &scopes, |http, base| {
                http.get(base.join(&path).expect("valid path"))
                    .header(RANGE, format!("bytes={start}-{end}"))
            })
            .await?;
        let response = self
            .expect_success(&op, response, &[StatusCode::OK, StatusCode::PARTIAL_CONTENT])
            .await?;
        if response.status() == StatusCode::OK {
            return Ok(BlobRange::Whole(response));
        }
        let covered = header_str(response.headers(), CONTENT_RANGE)
            .is_some_and(|r| r.starts_with(&format!("bytes {start}-{end}/")));
        if !covered || response.content_length().is_some_and(|n| n != end - start + 1) {
            return Err(self.protocol(format!("{op}: the answer covers another range")));
        }
        Ok(BlobRange::Part(response))
    }

    /// How requests to this registry are tried again.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Asks the registry to mount `digest` from `from` into `repository`; one token carries
    /// both scopes, or a token registry silently refuses the mount.
    pub async fn mount_blob(
        &self,
        repository: &str,
        digest: &Digest,
        from: &str,
    ) -> Result<MountOutcome, RegistryError> {
        let op = format!("mount blob {digest} from {from} into {repository}");
        let path = format!("v2/{repository}/blobs/uploads/");
        let scopes = [repository_scope(repository, true), repository_scope(from, false)];
        let digest_s = digest.to_string();
        let sent = self
            .send(&op, &scopes, |http, base| {
                http.post(base.join(&path).expect("valid path"))
                    .query(&[("mount", digest_s.as_str()), ("from", from)])
                    .header(CONTENT_LENGTH, 0)
            })
            .await;
        let response = match sent {
            Ok(r) => r,
            // no access to the origin repository: the upload asks for what it needs itself
            Err(e @ RegistryError::Auth { .. }) => {
                tracing::debug!("{}: {op}: {e}; uploading instead", self.domain);
                return Ok(MountOutcome::Refused);
            }
            Err(e) => return Err(e),
        };
        match response.status() {
            // trusted only for the digest asked for
            StatusCode::CREATED => match header_str(response.headers(), "docker-content-digest") {
                Some(d) if d != digest_s => {
                    tracing::warn!("{}: {op}: answered 201 for {d}; uploading instead", self.domain);
                    Ok(MountOutcome::Refused)
                }
                _ => Ok(MountOutcome::Mounted),
            },
            StatusCode::ACCEPTED => {
                let session = self.location(&op, &response).await?;
                self.opened(&session, repository);
                Ok(MountOutcome::Upload(session))
            }
            // a mount is only an optimisation: any refusal means the bytes are sent instead
            s if s.is_client_error() => {
                tracing::debug!("{}: {op}: refused with {s}; uploading instead", self.domain);
                Ok(MountOutcome::Refused)
            }
            _ => self
                .expect_success(&op, response, &[StatusCode::CREATED, StatusCode::ACCEPTED])
                .await
                .map(|_| MountOutcome::Refused),
        }
    }

    /// Opens an upload session.
    pub async fn start_upload(&self, repository: &str) -> Result<Url, RegistryError> {
        let op = format!("start upload to {repository}");
        let path = format!("v2/{repository}/blobs/uploads/");
        let scopes = [repository_scope(repository, true)];
        let response = self
            .send(&op, &scopes, |http, base| {
                http.post(base.join(&path).expect("valid path"))
                    .header(CONTENT_LENGTH, 0)
            })
            .await?;
        let response = self.expect_success(&op, response, &[StatusCode::ACCEPTED]).await?;
        let session = self.location(&op, &response).await?;
        self.opened(&session, repository);
        Ok(session)
    }

    fn opened(&self, session: &Url, repository: &str) {
        self.open_uploads
            .lock()
            .expect("open uploads lock")
            .insert(session.clone(), repository.to_string());
    }

    fn closed(&self, session: &Url) {
        self.open_uploads.lock().expect("open uploads lock").remove(session);
    }

    /// Cancels (DELETE) every upload session this run opened here and did not finish.
    pub async fn cancel_open_uploads(&self) {
        let open: Vec<(Url, String)> = self.open_uploads.lock().expect("open uploads lock").drain().collect();
        futures_util::future::join_all(
            open.into_iter()
                .map(|(session, repository)| async move { self.cancel_upload(&repository, session).await }),
        )
        .await;
    }

    /// Streams `body` into an upload session (PATCH); returns the session's next location.
    pub async fn upload_chunk<S>(
        &self,
        repository: &str,
        session: Url,
        body: S,
        length: Option<u64>,
    ) -> Result<Url, RegistryError>
    where
        S: futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    {
        let op = format!("upload to {repository}");
        let scopes = [repository_scope(repository, true)];
        let session_was = session.clone();
        let progress = Arc::new(Progress::new());
        let body = {
            let progress = progress.clone();
            futures_util::StreamExt::inspect(body, move |_| progress.moved())
        };
        let mut request = self
            .upload_http
            .request(Method::PATCH, session)
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(reqwest::Body::wrap_stream(body));
        if let Some(n) = length {
            request = request.header(CONTENT_LENGTH, n);
        }
        let sent = std::pin::pin!(self.send_once(&op, &scopes, request));
        let stalled = std::pin::pin!(progress.stalled(self.timeout));
        let response = match futures_util::future::select(sent, stalled).await {
            futures_util::future::Either::Left((response, _)) => response?,
            futures_util::future::Either::Right(_) => {
                return Err(RegistryError::Transport {
                    registry: self.domain.clone(),
                    operation: format!("upload to {repository}"),
                    detail: format!("no progress for {} s", self.timeout.as_secs()),
                    retryable: true,
                })
            }
        };
        let response = self
            .expect_success(
                &op,
                response,
                &[StatusCode::ACCEPTED, StatusCode::NO_CONTENT, StatusCode::CREATED],
            )
            .await
            .map_err(RegistryError::tried_once)?;
        let next = self.location(&op, &response).await?;
        self.closed(&session_was);
        self.opened(&next, repository);
        Ok(next)
    }

    /// Commits an upload session under `digest` (the registry checks it too).
    pub async fn commit_upload(&self, repository: &str, session: Url, digest: &Digest) -> Result<(), RegistryError> {
        let op = format!("commit blob {digest} in {repository}");
        let scopes = [repository_scope(repository, true)];
        let mut url = session.clone();
        url.query_pairs_mut().append_pair("digest", &digest.to_string());
        // the session ends with the commit, answered or not
        self.closed(&session);
        let response = self
            .send(&op, &scopes, |http, _| http.put(url.clone()).header(CONTENT_LENGTH, 0))
            .await?;
        self.expect_success(
            &op,
            response,
            &[StatusCode::CREATED, StatusCode::NO_CONTENT, StatusCode::OK],
        )
        .await?;
        Ok(())
    }

    /// Sends a whole blob into an upload session and commits it under `digest` with the same
    /// request (PUT with the body): the spec's monolithic upload, which distribution 2.8 keeps.
    pub async fn put_blob(
        &self,
        repository: &str,
        session: Url,
        bytes: Bytes,
        digest: &Digest,
    ) -> Result<(), RegistryError> {
        let op = format!("upload blob {digest} to {repository}");
        let scopes = [repository_scope(repository, true)];
        let mut url = session.clone();
        url.query_pairs_mut().append_pair("digest", &digest.to_string());
        // the session ends with this request, answered or not
        self.closed(&session);
        let response = self
            .send(&op, &scopes, |http, _| {
                http.put(url.clone())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .body(bytes.clone())
            })
            .await?;
        self.expect_success(&op, response, &[StatusCode::CREATED, StatusCode::NO_CONTENT])
            .await?;
        Ok(())
    }

    /// Abandons an upload session (best effort: the registry purges stale ones anyway).
    pub async fn cancel_upload(&self, repository: &str, session: Url) {
        let scopes = [repository_scope(repository, true)];
        self.closed(&session);
        let request = self.http.delete(session);
        let _ = self.send_once("cancel upload", &scopes, request).await;
    }

    /// The upload session a response names, resolved against the URL that answered (RFC 3986).
    async fn location(&self, op: &str, response: &Response) -> Result<Url, RegistryError> {
        let location = header_str(response.headers(), LOCATION)
            .ok_or_else(|| self.protocol(format!("{op}: the registry sent no Location for the upload")))?;
        response
            .url()
            .join(&location)
            .map_err(|e| self.protocol(format!("{op}: bad Location {location}: {e}")))
    }

    pub(super) async fn expect_success(
        &self,
        op: &str,
        response: Response,
        ok: &[StatusCode],
    ) -> Result<Response, RegistryError> {
        let status = response.status();
        if ok.contains(&status) || (ok.is_empty() && status.is_success()) {
            return Ok(response);
        }
        let mut message = error_message(response).await;
        if let Some(hint) = hint(status, op, &self.domain) {
            message.push_str(&format!(" ({hint})"));
        }
        Err(RegistryError::Status {
            registry: self.domain.clone(),
            operation: op.to_string(),
            status: status.as_u16(),
            message,
            // answers to requests `send` already retried; `upload_chunk` says otherwise
            retryable: false,
        })
    }

    pub(super) fn transport(&self, op: &str, e: &reqwest::Error) -> RegistryError {
        RegistryError::Transport {
            registry: self.domain.clone(),
            operation: op.to_string(),
            detail: error_chain(e),
            retryable: is_retryable_error(e),
        }
    }

    fn silent(&self, op: &str) -> RegistryError {
        RegistryError::Transport {
            registry: self.domain.clone(),
            operation: op.to_string(),
            detail: format!("no answer within {} s (--timeout)", self.timeout.as_secs()),
            retryable: true,
        }
    }

    pub(super) fn protocol(&self, detail: String) -> RegistryError {
        RegistryError::Protocol {
            registry: self.domain.clone(),
            detail,
        }
    }
}

/// Whether a manifest names a `subject`.
fn has_subject(manifest: &Manifest) -> bool {
    crate::oci::subject_of(manifest).is_ok_and(|s| s.is_some())
}

/// What the user can do about a status the registry answered.
fn hint(status: StatusCode, operation: &str, registry: &str) -> Option<String> {
    Some(match status.as_u16() {
        401 => format!(
            "unauthorized: credentials are missing or refused: give --dest-creds or --src-creds (sync: the location's auth), an --authfile, or run `docker login {registry}`"
        ),
        403 => "the credentials lack permission for this repository".to_string(),
        404 if operation.starts_with("GET manifest") => {
            "the source has no such image: check the reference and any pinned digest".to_string()
        }
        404 if operation.contains("blob") => "the registry lacks a blob the image's manifest names".to_string(),
        413 => "the registry refused the size of the request".to_string(),
        _ => return None,
    })
}
