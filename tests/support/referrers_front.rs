//! An HTTP front before a real registry (Debian's docker-registry 2.8 has no referrers API)
//! that gives it the OCI 1.1 referrers API:
//!
//! * `GET`/`HEAD /v2/<name>/referrers/<digest>` answers 200 with an OCI index of what refers to
//!   `<digest>` in `<name>`: what the test told it (`add_referrer`) and every manifest with a
//!   `subject` that was PUT through it; `?artifactType=` filters (and says so in
//!   `OCI-Filters-Applied`), as the distribution spec asks;
//! * its answer to a manifest PUT whose body has a `subject` carries `OCI-Subject: <digest>`
//!   (so clients create no referrers tag schema fallback);
//! * every request is recorded, so a test can assert that no `sha256-<hex>` tag was PUT.
//!
//! Everything else is forwarded as is, with the client's `Host` (upload `Location`s point back
//! at the front), like `proxy.rs`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = BoxBody<Bytes, BoxError>;

/// (repository, subject digest) → referrer descriptors
type Referrers = BTreeMap<(String, String), Vec<serde_json::Value>>;

#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub path: String,
    pub status: u16,
}

pub struct ReferrersFront {
    pub port: u16,
    log: Arc<Mutex<Vec<Seen>>>,
    referrers: Arc<Mutex<Referrers>>,
    _runtime: tokio::runtime::Runtime,
}

struct State {
    upstream: String,
    client: reqwest::Client,
    log: Arc<Mutex<Vec<Seen>>>,
    referrers: Arc<Mutex<Referrers>>,
}

impl ReferrersFront {
    /// A front to `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> ReferrersFront {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let referrers = Arc::new(Mutex::new(BTreeMap::new()));
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            log: log.clone(),
            referrers: referrers.clone(),
        });
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let state = state.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(req, state.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        ReferrersFront {
            port,
            log,
            referrers,
            _runtime: runtime,
        }
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Lists `descriptor` among the referrers of `subject` in `repo`.
    pub fn add_referrer(&self, repo: &str, subject: &str, descriptor: serde_json::Value) {
        add(&self.referrers, repo, subject, descriptor);
    }

    /// What the referrers API lists for `subject` in `repo`.
    pub fn referrers(&self, repo: &str, subject: &str) -> Vec<serde_json::Value> {
        self.referrers
            .lock()
            .unwrap()
            .get(&(repo.to_string(), subject.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    pub fn clear_log(&self) {
        self.log.lock().unwrap().clear();
    }

    /// Paths of the manifest PUTs whose reference is a tag.
    pub fn tags_put(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "PUT")
            .filter_map(|r| {
                let (_, reference) = r.path.split_once("/manifests/")?;
                (!reference.starts_with("sha256:")).then(|| reference.to_string())
            })
            .collect()
    }

    /// The referrers tag schema tags (`sha256-<64 hex>`) PUT through the front.
    pub fn fallback_tags_put(&self) -> Vec<String> {
        self.tags_put()
            .into_iter()
            .filter(|t| super::referrers::is_fallback_tag(t))
            .collect()
    }

    /// How many requests of `method` had a path containing `part`.
    pub fn count(&self, method: &str, part: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.path.contains(part))
            .count()
    }
}

fn add(referrers: &Mutex<Referrers>, repo: &str, subject: &str, descriptor: serde_json::Value) {
    let mut all = referrers.lock().unwrap();
    let list = all.entry((repo.to_string(), subject.to_string())).or_default();
    if !list.iter().any(|d| d["digest"] == descriptor["digest"]) {
        list.push(descriptor);
    }
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

/// `/v2/<name>/<kind>/<rest>` → (name, rest)
fn split<'a>(path: &'a str, kind: &str) -> Option<(&'a str, &'a str)> {
    let p = path.split('?').next()?.strip_prefix("/v2/")?;
    let i = p.rfind(&format!("/{kind}/"))?;
    Some((&p[..i], &p[i + kind.len() + 2..]))
}

async fn handle(req: Request<Incoming>, st: Arc<State>) -> Result<Response<Body>, Infallible> {
    let method = req.method().to_string();
    let path = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
    let record = |status: u16| {
        st.log.lock().unwrap().push(Seen {
            method: method.clone(),
            path: path.clone(),
            status,
        })
    };

    if method == "GET" || method == "HEAD" {
        if let Some((repo, subject)) = split(&path, "referrers") {
            let filter = req.uri().query().and_then(|q| {
                q.split('&').find_map(|kv| kv.strip_prefix("artifactType=")).map(|v| {
                    v.replace("%2B", "+")
                        .replace("%2b", "+")
                        .replace("%2F", "/")
                        .replace("%2f", "/")
                })
            });
            let mut list = st
                .referrers
                .lock()
                .unwrap()
                .get(&(repo.to_string(), subject.to_string()))
                .cloned()
                .unwrap_or_default();
            if let Some(f) = &filter {
                list.retain(|d| d["artifactType"] == f.as_str());
            }
            let body = serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": list
            }))
            .unwrap();
            record(200);
            let mut resp = Response::builder()
                .status(200)
                .header("content-type", "application/vnd.oci.image.index.v1+json")
                .header("content-length", body.len())
                .header("docker-distribution-api-version", "registry/2.0");
            if filter.is_some() {
                resp = resp.header("oci-filters-applied", "artifactType");
            }
            let body = if method == "HEAD" { Vec::new() } else { body };
            return Ok(resp.body(full(body)).unwrap());
        }
    }

    let manifest_put = if method == "PUT" {
        split(&path, "manifests").map(|(repo, _)| repo.to_string())
    } else {
        None
    };
    let mut upstream = st
        .client
        .request(req.method().clone(), format!("{}{path}", st.upstream));
    for (k, v) in req.headers() {
        upstream = upstream.header(k, v);
    }
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    // a manifest PUT is read whole (to look for its subject); anything else streams through
    let mut subject = None;
    let upstream = match &manifest_put {
        Some(repo) => {
            let body = match req.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => {
                    record(400);
                    return Ok(Response::builder().status(400).body(full(e.to_string())).unwrap());
                }
            };
            if let Ok(m) = serde_json::from_slice::<serde_json::Value>(&body) {
                if let Some(s) = m["subject"]["digest"].as_str() {
                    let media_type = m["mediaType"].as_str().unwrap_or(&content_type).to_string();
                    let descriptor = super::referrers::referrer_descriptor(&media_type, &body);
                    subject = Some((repo.clone(), s.to_string(), descriptor));
                }
            }
            upstream.body(body)
        }
        None => upstream.body(reqwest::Body::wrap_stream(req.into_body().into_data_stream())),
    };
    let resp = match upstream.send().await {
        Ok(r) => r,
        Err(e) => {
            record(502);
            return Ok(Response::builder().status(502).body(full(e.to_string())).unwrap());
        }
    };
    let status = resp.status().as_u16();
    record(status);
    let mut builder = Response::builder().status(status);
    for (k, v) in resp.headers() {
        builder = builder.header(k, v);
    }
    if let Some((repo, s, descriptor)) = subject {
        if status == 201 {
            add(&st.referrers, &repo, &s, descriptor);
            builder = builder.header("oci-subject", s);
        }
    }
    let stream = resp.bytes_stream().map_err(|e| Box::new(e) as BoxError);
    Ok(builder
        .body(BodyExt::boxed(StreamBody::new(stream.map_ok(Frame::data))))
        .unwrap())
}
