//! An HTTP proxy in front of a real registry that logs every request and injects faults a
//! real registry cannot be made to show: 5xx/429 bursts, connections dropped mid-body,
//! corrupted bytes. It forwards the client's `Host`, so the registry's upload `Location`s
//! point back at the proxy.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = BoxBody<Bytes, BoxError>;

#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status (and `Retry-After` seconds, if given) instead of forwarding.
    Status(u16, Option<u64>),
    /// Forward, but cut the response body after this many bytes (the connection dies).
    DropAfter(usize),
    /// Forward, flipping one byte of the response body.
    Corrupt,
    /// Forward, pointing the response's `Location` at this origin (`http://host:port`) instead.
    RewriteLocation(String),
    /// Forward, making the response's `Location` relative to the request's URL.
    RelativeLocation,
    /// Answer 307, redirecting to the same path on this origin.
    RedirectTo(String),
    /// Forward, announcing this token realm in `WWW-Authenticate` instead of the real one.
    RewriteRealm(String),
    /// Forward, then answer with this status instead of the registry's (a lost answer).
    LoseAnswer(u16),
    /// Never answer.
    Stall,
    /// Answer 201 (mounted) naming this digest, without forwarding.
    MountedAs(String),
    /// Forward, reading the request body at this many bytes per second.
    Throttle(u64),
    /// Answer with this status and a body that never ends.
    Endless(u16),
    /// Forward, leaving this header out of the response.
    StripResponseHeader(&'static str),
    /// Forward, leaving this header out of the request (a server that ignores `Range`).
    StripRequestHeader(&'static str),
    /// Forward without the query string (turns a mount request into a plain upload start,
    /// as a registry that will not mount answers it).
    StripQuery,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub method: &'static str,
    /// Matches when the path (with query) contains this.
    pub path_contains: String,
    pub fault: Fault,
    /// How many matching requests get the fault.
    pub times: usize,
}

impl Rule {
    /// `fault` for every request of `method` whose path contains `path_contains`.
    pub fn always(method: &'static str, path_contains: &str, fault: Fault) -> Rule {
        Rule {
            method,
            path_contains: path_contains.into(),
            fault,
            times: usize::MAX,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub faulted: bool,
    /// The request's `Range` header, if it had one.
    pub range: Option<String>,
}

/// Every request after the first `after` gets 503 for `length`.
#[derive(Debug, Clone, Copy)]
struct Outage {
    after: usize,
    length: std::time::Duration,
    started: Option<std::time::Instant>,
}

pub struct Proxy {
    pub port: u16,
    log: Arc<Mutex<Vec<Logged>>>,
    rules: Arc<Mutex<Vec<Rule>>>,
    outage: Arc<Mutex<Option<Outage>>>,
    busy_above: Arc<std::sync::atomic::AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

struct State {
    upstream: String,
    client: reqwest::Client,
    log: Arc<Mutex<Vec<Logged>>>,
    rules: Arc<Mutex<Vec<Rule>>>,
    outage: Arc<Mutex<Option<Outage>>>,
    /// Above this many requests in flight, answer 429 with `Retry-After: 1`.
    busy_above: Arc<std::sync::atomic::AtomicUsize>,
    in_flight: std::sync::atomic::AtomicUsize,
}

impl Proxy {
    /// A proxy to `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> Proxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let rules = Arc::new(Mutex::new(Vec::new()));
        let outage = Arc::new(Mutex::new(None));
        let busy_above = Arc::new(std::sync::atomic::AtomicUsize::new(usize::MAX));
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            log: log.clone(),
            rules: rules.clone(),
            outage: outage.clone(),
            busy_above: busy_above.clone(),
            in_flight: std::sync::atomic::AtomicUsize::new(0),
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
        Proxy {
            port,
            log,
            rules,
            outage,
            busy_above,
            _runtime: runtime,
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn add(&self, rule: Rule) {
        self.rules.lock().unwrap().push(rule);
    }

    /// Every cross-repository mount is refused: the registry answers with a plain upload
    /// session, as registries that do not mount do.
    /// Answers 429 with `Retry-After: 1` whenever more than `n` requests are in flight.
    pub fn busy_above(&self, n: usize) {
        self.busy_above.store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// After `after` requests, answers every request with 503 for `length`.
    pub fn outage_after(&self, after: usize, length: std::time::Duration) {
        *self.outage.lock().unwrap() = Some(Outage {
            after,
            length,
            started: None,
        });
    }

    pub fn refuse_mounts(&self) {
        self.add(Rule {
            method: "POST",
            path_contains: "mount=".into(),
            fault: Fault::StripQuery,
            times: usize::MAX,
        });
    }

    pub fn log(&self) -> Vec<Logged> {
        self.log.lock().unwrap().clone()
    }

    pub fn count(&self, method: &str, path_contains: &str) -> usize {
        self.log()
            .iter()
            .filter(|l| l.method == method && l.path.contains(path_contains))
            .count()
    }

    pub fn clear_log(&self) {
        self.log.lock().unwrap().clear();
    }
}

async fn handle(req: Request<Incoming>, st: Arc<State>) -> Result<Response<Body>, Infallible> {
    use std::sync::atomic::Ordering;
    let now = st.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let busy = now > st.busy_above.load(Ordering::SeqCst);
    let response = if busy {
        st.log.lock().unwrap().push(Logged {
            method: req.method().to_string(),
            path: req.uri().to_string(),
            status: 429,
            faulted: true,
            range: None,
        });
        let body = r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"too many requests in flight"}]}"#;
        Ok(Response::builder()
            .status(429)
            .header("retry-after", "1")
            .body(full(body.to_string()))
            .unwrap())
    } else {
        forward(req, st.clone()).await
    };
    st.in_flight.fetch_sub(1, Ordering::SeqCst);
    response
}

async fn forward(req: Request<Incoming>, st: Arc<State>) -> Result<Response<Body>, Infallible> {
    let method = req.method().to_string();
    let path = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
    let in_outage = {
        let seen = st.log.lock().unwrap().len();
        let mut outage = st.outage.lock().unwrap();
        match outage.as_mut() {
            Some(o) if seen >= o.after => {
                let started = *o.started.get_or_insert_with(std::time::Instant::now);
                started.elapsed() < o.length
            }
            _ => false,
        }
    };
    let fault = if in_outage {
        Some(Fault::Status(503, None))
    } else {
        let mut rules = st.rules.lock().unwrap();
        rules
            .iter_mut()
            .find(|r| r.times > 0 && r.method == method && path.contains(&r.path_contains))
            .map(|r| {
                r.times -= 1;
                r.fault.clone()
            })
    };
    let range = req
        .headers()
        .get("range")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let record = |status: u16, faulted: bool| {
        st.log.lock().unwrap().push(Logged {
            method: method.clone(),
            path: path.clone(),
            status,
            faulted,
            range: range.clone(),
        })
    };
    if let Some(Fault::Status(code, retry_after)) = &fault {
        record(*code, true);
        let mut resp = Response::builder()
            .status(*code)
            .header("content-type", "application/json");
        if let Some(s) = retry_after {
            resp = resp.header("retry-after", s.to_string());
        }
        let body = format!(r#"{{"errors":[{{"code":"UNAVAILABLE","message":"injected fault {code}"}}]}}"#);
        return Ok(resp.body(full(body)).unwrap());
    }
    if let Some(Fault::Endless(code)) = &fault {
        record(*code, true);
        let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
        let endless = futures_util::stream::repeat(chunk).map(|c| Ok::<_, BoxError>(Frame::data(c)));
        let resp = Response::builder()
            .status(*code)
            .header("content-type", "application/vnd.oci.image.manifest.v1+json");
        return Ok(resp.body(BodyExt::boxed(StreamBody::new(endless))).unwrap());
    }
    if let Some(Fault::MountedAs(digest)) = &fault {
        record(201, true);
        let resp = Response::builder()
            .status(201)
            .header("docker-content-digest", digest.as_str());
        return Ok(resp.body(full(String::new())).unwrap());
    }
    if let Some(Fault::Stall) = &fault {
        record(0, true);
        std::future::pending::<()>().await;
    }
    if let Some(Fault::RedirectTo(origin)) = &fault {
        record(307, true);
        let resp = Response::builder()
            .status(307)
            .header("location", format!("{origin}{path}"));
        return Ok(resp.body(full(String::new())).unwrap());
    }
    let forward_path = match fault {
        Some(Fault::StripQuery) => req.uri().path().to_string(),
        _ => path.clone(),
    };
    let mut upstream = st
        .client
        .request(req.method().clone(), format!("{}{forward_path}", st.upstream));
    for (k, v) in req.headers() {
        if matches!(&fault, Some(Fault::StripRequestHeader(h)) if k.as_str().eq_ignore_ascii_case(h)) {
            continue;
        }
        upstream = upstream.header(k, v);
    }
    let throttle = match &fault {
        Some(Fault::Throttle(rate)) => Some(*rate),
        _ => None,
    };
    let started = std::time::Instant::now();
    let mut read = 0u64;
    let body_stream = req.into_body().into_data_stream().then(move |chunk| {
        if let Ok(c) = &chunk {
            read += c.len() as u64;
        }
        let due = throttle.map(|rate| started + std::time::Duration::from_secs_f64(read as f64 / rate as f64));
        async move {
            if let Some(due) = due {
                tokio::time::sleep_until(due.into()).await;
            }
            chunk
        }
    });
    let resp = match upstream.body(reqwest::Body::wrap_stream(body_stream)).send().await {
        Ok(r) => r,
        Err(e) => {
            record(502, false);
            return Ok(Response::builder().status(502).body(full(e.to_string())).unwrap());
        }
    };
    let status = match &fault {
        Some(Fault::LoseAnswer(code)) => *code,
        _ => resp.status().as_u16(),
    };
    record(status, fault.is_some());
    let mut builder = Response::builder().status(status);
    for (k, v) in resp.headers() {
        if matches!(&fault, Some(Fault::StripResponseHeader(h)) if k.as_str().eq_ignore_ascii_case(h)) {
            continue;
        }
        let value = v.to_str().unwrap_or_default();
        let rewritten = match &fault {
            Some(Fault::RewriteLocation(origin)) if k == "location" => Some(match value.find("/v2/") {
                Some(i) => format!("{origin}{}", &value[i..]),
                None => value.to_string(),
            }),
            Some(Fault::RelativeLocation) if k == "location" => {
                // relative to the request's path, which ends in "/uploads/" for a new session
                value.split_once("/uploads/").map(|(_, rest)| rest.to_string())
            }
            Some(Fault::RewriteRealm(realm)) if k == "www-authenticate" => {
                value.split_once("realm=\"").and_then(|(head, rest)| {
                    rest.split_once('"')
                        .map(|(_, tail)| format!("{head}realm=\"{realm}\"{tail}"))
                })
            }
            _ => None,
        };
        match rewritten {
            Some(r) => builder = builder.header(k, r),
            None => builder = builder.header(k, v),
        }
    }
    let stream = resp.bytes_stream().map_err(|e| Box::new(e) as BoxError);
    let body: Body = match fault {
        Some(Fault::DropAfter(limit)) => {
            let mut sent = 0usize;
            let s = stream.map(move |chunk| {
                let chunk = chunk?;
                if sent + chunk.len() > limit {
                    return Err::<Bytes, BoxError>("connection dropped by the test proxy".into());
                }
                sent += chunk.len();
                Ok(chunk)
            });
            BodyExt::boxed(StreamBody::new(s.map_ok(Frame::data)))
        }
        Some(Fault::Corrupt) => {
            let mut first = true;
            let s = stream.map_ok(move |chunk| {
                if first && !chunk.is_empty() {
                    first = false;
                    let mut v = chunk.to_vec();
                    v[0] ^= 0xff;
                    return Bytes::from(v);
                }
                chunk
            });
            BodyExt::boxed(StreamBody::new(s.map_ok(Frame::data)))
        }
        _ => BodyExt::boxed(StreamBody::new(stream.map_ok(Frame::data))),
    };
    Ok(builder.body(body).unwrap())
}

fn full(s: String) -> Body {
    Full::new(Bytes::from(s)).map_err(|never| match never {}).boxed()
}
