//! The source registry of the `sync` tests, built once per test binary: several namespaces
//! (`apps/web`, `apps/api`, `tools/cli`, `tools/lint`, `library/base`), the tags of SYNC.md §6's
//! example, a multi-arch index with a `linux/arm/v7` child, and 100 `filler/rNNN` repositories,
//! so that `/v2/_catalog` pages (distribution 2.8 sends 100 per page when `n` is absent).
//! Images are built with umoci and pushed with skopeo; the fillers are cross-repository mounts
//! and a manifest PUT each, on the real registry. Also: plain-HTTP views of any registry
//! (catalog, tags, manifest digests) and dregsy configuration text.

use std::collections::BTreeMap;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use futures_util::StreamExt;

use super::fixtures::{noise, run, skopeo_copy, Layout};
use super::registry::{Mode, TestRegistry, PASSWORD, USER};

/// Tags of `apps/web`, SYNC.md §6's example repository.
pub const WEB_TAGS: [&str; 6] = ["1.0", "1.1", "2.0", "latest", "v1.5.0", "2.0.0-rc1"];
/// Tags of `apps/api`.
pub const API_TAGS: [&str; 3] = ["1.0", "2.0", "latest"];
/// Tags of `tools/cli`.
pub const CLI_TAGS: [&str; 2] = ["1.0", "latest"];
/// Tags of `tools/lint`.
pub const LINT_TAGS: [&str; 1] = ["1.0"];
/// How many `filler/rNNN` repositories (tag `1.0`) there are.
pub const FILLERS: usize = 100;

/// The platforms of the multi-arch index `library/base:latest`, in index order.
pub const PLATFORMS: [(&str, &str, Option<&str>); 3] = [
    ("linux", "amd64", None),
    ("linux", "arm64", None),
    ("linux", "arm", Some("v7")),
];

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// The shared source: a plain registry holding the images above.
pub struct SyncSource {
    host: String,
    /// `repository:tag` → manifest digest, for every tag of every repository.
    pub digests: BTreeMap<String, String>,
    /// The index `library/base:latest` (also in `digests`).
    pub index: String,
    /// Its children's digests, in [`PLATFORMS`] order.
    pub children: Vec<String>,
    _registry: SharedRegistry,
    _dir: tempfile::TempDir,
}

impl SyncSource {
    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        self.host.clone()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.host)
    }

    /// The digest `repository:tag` has at the source.
    pub fn digest(&self, repo_tag: &str) -> String {
        self.digests
            .get(repo_tag)
            .unwrap_or_else(|| panic!("{repo_tag} is not in the source"))
            .clone()
    }

    pub fn peek(&self) -> Peek {
        Peek::plain(&self.host)
    }
}

/// The source, built on first use; it lives as long as the test binary.
pub fn source() -> &'static SyncSource {
    static SOURCE: OnceLock<SyncSource> = OnceLock::new();
    SOURCE.get_or_init(build_source)
}

/// A plain registry whose life is tied to this process: it is started by a shell that waits
/// for end of file on a pipe from us and then stops it, so it goes away with the test binary
/// however that ends (a static is never dropped).
struct SharedRegistry {
    port: u16,
    _dir: tempfile::TempDir,
    _child: Child,
    _stdin: ChildStdin,
}

impl SharedRegistry {
    fn start() -> SharedRegistry {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("data")).unwrap();
        let config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:0\n  secret: test-only-secret\n",
            d.join("data").display()
        );
        std::fs::write(d.join("config.yml"), config).unwrap();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"docker-registry serve "$1" 2>&1 & pid=$!; read -r _; kill "$pid"; wait "$pid""#)
            .arg("sh")
            .arg(d.join("config.yml"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh and docker-registry are installed");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let rx = super::registry::log_until_listening(stdout, d.join("registry.log"));
        let port = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| {
            panic!(
                "shared registry did not start: {}",
                std::fs::read_to_string(d.join("registry.log")).unwrap_or_default()
            )
        });
        SharedRegistry {
            port,
            _dir: dir,
            _child: child,
            _stdin: stdin,
        }
    }
}

/// An image of its own (a distinct config, `id` as a label) on the shared base layer, tagged
/// `tag` in the layout.
fn distinct_image(layout: &Layout, tag: &str, arch: &str, id: &str) {
    run(Command::new("umoci").args([
        "config",
        "--image",
        &format!("{}:base", layout.path.display()),
        "--tag",
        tag,
        "--architecture",
        arch,
        "--os",
        "linux",
        "--config.label",
        &format!("org.example.sync-test={id}"),
    ]));
}

fn build_source() -> SyncSource {
    let registry = SharedRegistry::start();
    let host = format!("127.0.0.1:{}", registry.port);
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::init(dir.path());
    layout.new_image("base");
    layout.insert("base", &noise(4242, 16 * 1024), "/base.bin");

    let mut named: Vec<(String, String)> = Vec::new(); // (layout tag, repository:tag)
    for (repo, tags) in [
        ("apps/web", &WEB_TAGS[..]),
        ("apps/api", &API_TAGS[..]),
        ("tools/cli", &CLI_TAGS[..]),
        ("tools/lint", &LINT_TAGS[..]),
    ] {
        for tag in tags {
            let repo_tag = format!("{repo}:{tag}");
            let layout_tag = repo_tag.replace(['/', ':'], "-");
            distinct_image(&layout, &layout_tag, "amd64", &repo_tag);
            named.push((layout_tag, repo_tag));
        }
    }
    // library/base:1.0, a single image; library/base:latest, an index of three platforms
    distinct_image(&layout, "library-base-1.0", "amd64", "library/base:1.0");
    named.push(("library-base-1.0".into(), "library/base:1.0".into()));
    let mut entries = Vec::new();
    let mut children = Vec::new();
    for (os, arch, variant) in PLATFORMS {
        let tag = format!("child-{arch}{}", variant.unwrap_or(""));
        distinct_image(&layout, &tag, arch, &tag);
        let d = layout.descriptor(&tag);
        let mut platform = serde_json::json!({"architecture": arch, "os": os});
        if let Some(v) = variant {
            platform["variant"] = v.into();
        }
        entries.push(
            serde_json::json!({"mediaType": d.media_type, "digest": d.digest, "size": d.size, "platform": platform}),
        );
        children.push(d.digest);
    }
    let index_bytes =
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}))
            .unwrap();
    let index = layout.put_blob(&index_bytes);
    layout.add_ref("library-base-latest", OCI_INDEX, &index, index_bytes.len() as u64);
    named.push(("library-base-latest".into(), "library/base:latest".into()));
    distinct_image(&layout, "filler", "amd64", "filler");

    let opts = vec!["--dest-tls-verify=false".to_string()];
    let oci = |tag: &str| format!("oci:{}:{tag}", layout.path.display());
    let mut digests = BTreeMap::new();
    for (layout_tag, repo_tag) in &named {
        skopeo_copy(&oci(layout_tag), &format!("docker://{host}/{repo_tag}"), &opts);
        digests.insert(repo_tag.clone(), layout.descriptor(layout_tag).digest);
    }
    // the fillers: the first pushed by skopeo, the rest mounted from it
    skopeo_copy(&oci("filler"), &format!("docker://{host}/filler/r000:1.0"), &opts);
    let filler = layout.descriptor("filler");
    let manifest = layout.blob(&filler.digest);
    let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let blobs: Vec<String> = std::iter::once(&m["config"])
        .chain(m["layers"].as_array().unwrap())
        .map(|b| b["digest"].as_str().unwrap().to_string())
        .collect();
    mount_fillers(&host, &blobs, &manifest, &filler.media_type);
    for i in 0..FILLERS {
        digests.insert(format!("{}:1.0", filler_repo(i)), filler.digest.clone());
    }

    // what the registry serves is what was built
    let peek = Peek::plain(&host);
    for (repo_tag, digest) in &digests {
        let (repo, tag) = repo_tag.rsplit_once(':').unwrap();
        assert_eq!(
            peek.digest(repo, tag).as_deref(),
            Some(digest.as_str()),
            "fixture {repo_tag}"
        );
    }
    SyncSource {
        host,
        digests,
        index,
        children,
        _registry: registry,
        _dir: dir,
    }
}

pub fn filler_repo(i: usize) -> String {
    format!("filler/r{i:03}")
}

fn mount_fillers(host: &str, blobs: &[String], manifest: &[u8], media_type: &str) {
    let rt = runtime();
    let client = reqwest::Client::new();
    rt.block_on(async {
        let results: Vec<Result<(), String>> = futures_util::stream::iter(1..FILLERS)
            .map(|i| {
                let client = client.clone();
                async move {
                    let repo = filler_repo(i);
                    for b in blobs {
                        let url = format!("http://{host}/v2/{repo}/blobs/uploads/?mount={b}&from=filler/r000");
                        let r = client.post(url).send().await.map_err(|e| e.to_string())?;
                        if r.status().as_u16() != 201 {
                            return Err(format!("mount {b} into {repo}: {}", r.status()));
                        }
                    }
                    let r = client
                        .put(format!("http://{host}/v2/{repo}/manifests/1.0"))
                        .header("content-type", media_type)
                        .body(manifest.to_vec())
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    if r.status().as_u16() != 201 {
                        return Err(format!("manifest of {repo}: {}", r.status()));
                    }
                    Ok(())
                }
            })
            .buffer_unordered(8)
            .collect()
            .await;
        for r in results {
            r.unwrap();
        }
    });
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A read-only view of a registry over HTTP(S), for checking what a run left behind.
pub struct Peek {
    base: String,
    creds: Option<(String, String)>,
    client: reqwest::Client,
}

impl Peek {
    pub fn plain(host: &str) -> Peek {
        Peek {
            base: format!("http://{host}"),
            creds: None,
            client: client(false),
        }
    }

    /// Any [`TestRegistry`] but a token one; TLS is read without verification (what is
    /// checked here is content, not the certificate).
    pub fn of(reg: &TestRegistry) -> Peek {
        assert!(reg.mode != Mode::Token);
        let scheme = if reg.tls() { "https" } else { "http" };
        Peek {
            base: format!("{scheme}://{}", reg.host()),
            creds: reg
                .needs_credentials()
                .then(|| (USER.to_string(), PASSWORD.to_string())),
            client: client(reg.tls()),
        }
    }

    fn get(&self, method: reqwest::Method, path_or_url: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_string()
        } else {
            format!("{}{path_or_url}", self.base)
        };
        runtime().block_on(async {
            let mut req = self.client.request(method, &url).header("accept", ACCEPT);
            if let Some((u, p)) = &self.creds {
                req = req.basic_auth(u, Some(p));
            }
            let r = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            let body = r.bytes().await.unwrap().to_vec();
            (status, headers, body)
        })
    }

    /// The first page of `/v2/_catalog` as the registry sends it without `n`, and its `Link`.
    pub fn catalog_first_page(&self) -> (Vec<String>, Option<String>) {
        let (status, headers, body) = self.get(reqwest::Method::GET, "/v2/_catalog");
        assert_eq!(status, 200);
        let link = headers.get("link").map(|l| l.to_str().unwrap().to_string());
        (names(&body, "repositories"), link)
    }

    /// Every repository, following `Link` pages.
    pub fn catalog(&self) -> Vec<String> {
        self.paged("/v2/_catalog?n=1000", "repositories")
    }

    /// Every tag of `repo` (none if the repository does not exist).
    pub fn tags(&self, repo: &str) -> Vec<String> {
        self.paged(&format!("/v2/{repo}/tags/list"), "tags")
    }

    fn paged(&self, first: &str, key: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut next = Some(first.to_string());
        while let Some(path) = next.take() {
            let (status, headers, body) = self.get(reqwest::Method::GET, &path);
            if status == 404 {
                break;
            }
            assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
            out.extend(names(&body, key));
            next = headers
                .get("link")
                .and_then(|l| l.to_str().ok())
                .and_then(|l| l.split_once('<'))
                .and_then(|(_, rest)| rest.split_once('>'))
                .map(|(url, _)| url.to_string());
        }
        out
    }

    /// The digest the registry serves `repo:reference` (a tag or a digest) under, if any.
    pub fn digest(&self, repo: &str, reference: &str) -> Option<String> {
        let (status, headers, _) = self.get(reqwest::Method::HEAD, &format!("/v2/{repo}/manifests/{reference}"));
        match status {
            200 => Some(headers["docker-content-digest"].to_str().unwrap().to_string()),
            404 => None,
            other => panic!("HEAD {repo}:{reference}: {other}"),
        }
    }

    /// `repository:tag` → digest, for every tag of every repository.
    pub fn inventory(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for repo in self.catalog() {
            for tag in self.tags(&repo) {
                let d = self
                    .digest(&repo, &tag)
                    .unwrap_or_else(|| panic!("{repo}:{tag} listed but not served"));
                out.insert(format!("{repo}:{tag}"), d);
            }
        }
        out
    }
}

/// A client for one-request runtimes: no pooled connection outlives the runtime it was made on.
fn client(tls: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .danger_accept_invalid_certs(tls)
        .build()
        .unwrap()
}

fn names(body: &[u8], key: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    v[key]
        .as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// Writes `text` to `dir/name` and returns the path as a string.
pub fn write_config(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// Requests that change a registry (none may come from a dry run or a repeated run).
pub fn writes(log: &[super::proxy::Logged]) -> Vec<String> {
    log.iter()
        .filter(|l| matches!(l.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE"))
        .map(|l| format!("{} {} -> {}", l.method, l.path, l.status))
        .collect()
}
