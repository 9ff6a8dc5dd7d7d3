//! Test support: real registries, the project's token server, fixtures, a fault proxy.
#![allow(dead_code)]

pub mod archive;
pub mod fixtures;
pub mod proxy;
pub mod recorder;
pub mod referrers;
pub mod referrers_front;
pub mod registry;
pub mod sync_fixtures;
pub mod thick;
pub mod token_server;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use fixtures::{skopeo_copy, skopeo_digest, Layout};
use registry::TestRegistry;

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
            .collect()
    }

    /// `BlobDone` outcomes (`present`, `mounted`, `uploaded`) for `digest`.
    pub fn blob_outcomes(&self, digest: &str) -> Vec<String> {
        self.events()
            .iter()
            .filter(|e| e["event"] == "blob_done" && e["digest"] == digest)
            .map(|e| e["outcome"]["how"].as_str().unwrap().to_string())
            .collect()
    }

    pub fn count_events(&self, kind: &str) -> usize {
        self.events().iter().filter(|e| e["event"] == kind).count()
    }

    pub fn assert_ok(&self) -> &Self {
        assert_eq!(self.code, 0, "stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_cnab-relocate")
}

/// A cnab-relocate command that reads credentials only from `docker_config` (as
/// `DOCKER_CONFIG`): the machine's own auth files (`$XDG_RUNTIME_DIR/containers`,
/// `~/.config/containers`, `REGISTRY_AUTH_FILE`) and certificate folders stay out of tests.
pub fn command(docker_config: &Path) -> Command {
    let mut cmd = Command::new(bin());
    cmd.env("DOCKER_CONFIG", docker_config)
        .env("XDG_RUNTIME_DIR", docker_config)
        .env("XDG_CONFIG_HOME", docker_config)
        .env("CNAB_RELOCATE_CERTS_D", "")
        .env_remove("REGISTRY_AUTH_FILE");
    cmd
}

/// Runs cnab-relocate with `DOCKER_CONFIG` pointing at `docker_config` (an empty folder keeps
/// the machine's own credentials out of tests).
pub fn run_with(args: &[&str], docker_config: &Path, extra_env: &[(&str, &str)]) -> Run {
    let out = command(docker_config)
        .args(args)
        .envs(extra_env.iter().copied())
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs cnab-relocate under GNU time; the run (its stderr without time's line) and the peak
/// RSS in KiB.
pub fn run_measured(args: &[&str], docker_config: &Path) -> (Run, u64) {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(bin())
        .args(args)
        .env("DOCKER_CONFIG", docker_config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let (rest, peak) = stderr.trim_end().rsplit_once('\n').unwrap_or(("", stderr.trim()));
    let peak_kib = peak
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no peak RSS in {stderr}"));
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: rest.to_string(),
    };
    (run, peak_kib)
}

/// A folder with a Docker `config.json` holding `auths`.
pub fn docker_config(auths: serde_json::Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        serde_json::json!({ "auths": auths }).to_string(),
    )
    .unwrap();
    dir
}

pub fn basic_auth(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// A Docker config with the test user for each of `hosts`.
pub fn docker_config_for(hosts: &[String]) -> tempfile::TempDir {
    let auths: serde_json::Map<String, serde_json::Value> = hosts
        .iter()
        .map(|h| {
            (
                h.clone(),
                serde_json::json!({"auth": basic_auth(registry::USER, registry::PASSWORD)}),
            )
        })
        .collect();
    docker_config(serde_json::Value::Object(auths))
}

/// Relocates `bundle` under `prefix` into `relmap`, with an empty Docker config.
pub fn relocate(bundle: &Path, prefix: &str, relmap: &Path, extra: &[&str]) -> Run {
    let config = tempfile::tempdir().unwrap();
    let mut args = vec![bundle.to_str().unwrap(), "-p", prefix, "-m", relmap.to_str().unwrap()];
    args.extend_from_slice(extra);
    run_with(&args, config.path(), &[])
}

/// The relocation mapping written to `relmap`.
pub fn mapped(relmap: &Path) -> serde_json::Map<String, serde_json::Value> {
    serde_json::from_slice::<serde_json::Value>(&std::fs::read(relmap).unwrap())
        .unwrap()
        .as_object()
        .unwrap()
        .clone()
}

/// `host:port/path:tag` or `host:port/path@digest` → `host:port/path`
pub fn repository_of(reference: &str) -> &str {
    let slash = reference.rfind('/').unwrap();
    match reference[slash..].find([':', '@']) {
        Some(i) => &reference[..slash + i],
        None => reference,
    }
}

/// A bundle of `images.multi` and `images.docker`, the latter pinned by a `contentDigest` the
/// source does not have; returns the bundle and that digest.
pub fn bundle_with_wrong_pin(dir: &Path, images: &SourceImages) -> (PathBuf, String) {
    let wrong = format!("sha256:{}", "ab".repeat(32));
    let bundle = write_bundle(
        dir,
        &[&images.multi.0],
        &[(
            "pinned",
            serde_json::json!({"image": images.docker.0, "contentDigest": wrong}),
        )],
    );
    (bundle, wrong)
}

pub fn write_bundle(dir: &Path, invocation: &[&str], images: &[(&str, serde_json::Value)]) -> PathBuf {
    let images: serde_json::Map<String, serde_json::Value> =
        images.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    let bundle = serde_json::json!({
        "schemaVersion": "v1.0.0", "name": "test", "version": "0.1.0",
        "invocationImages": invocation.iter().map(|i| serde_json::json!({"image": i, "imageType": "oci"})).collect::<Vec<_>>(),
        "images": images,
    });
    let p = dir.join("bundle.json");
    std::fs::write(&p, serde_json::to_vec_pretty(&bundle).unwrap()).unwrap();
    p
}

/// The standard source images, all sharing one base layer.
pub struct SourceImages {
    pub layout: Layout,
    /// (reference on the source registry, manifest digest)
    pub multi: (String, String),
    pub oci_plain: (String, String),
    pub docker: (String, String),
    pub docker_list: (String, String),
    pub deep: (String, String),
    pub base_layer: String,
    _dir: tempfile::TempDir,
}

impl SourceImages {
    pub fn all(&self) -> Vec<(String, String)> {
        vec![
            self.multi.clone(),
            self.oci_plain.clone(),
            self.docker.clone(),
            self.docker_list.clone(),
            self.deep.clone(),
        ]
    }
}

/// Builds the images with umoci and pushes them to `reg` with skopeo:
/// an OCI index (amd64 + arm64), an OCI manifest without `mediaType`, a Docker schema 2
/// manifest, a Docker manifest list and an image in a deep repository path.
pub fn populate(reg: &TestRegistry, base_size: usize) -> SourceImages {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::init(dir.path());
    layout.new_image("base");
    layout.insert("base", &fixtures::noise(1, base_size), "/base.bin");
    for (i, arch) in ["amd64", "arm64"].iter().enumerate() {
        layout.derive("base", arch, arch);
        layout.insert(arch, &fixtures::noise(10 + i as u64, 96 * 1024), "/app.bin");
    }
    let index = layout.add_index("multi", &[("amd64", "amd64"), ("arm64", "arm64")]);
    let base_layer = layout.manifest("amd64")["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let docker_digest = layout.docker_dir("arm64", &dir.path().join("docker"));
    let list_digest = layout.docker_list_dir(&[("amd64", "amd64"), ("arm64", "arm64")], &dir.path().join("list"));
    let host = reg.host();
    let opts = reg.skopeo_opts("dest");
    let oci = |tag: &str| format!("oci:{}:{tag}", layout.path.display());
    let push = |src: String, repo: &str| {
        let reference = format!("{host}/{repo}");
        skopeo_copy(&src, &format!("docker://{reference}"), &opts);
        reference
    };
    let multi = (push(oci("multi"), "team/multi:v1"), index.digest);
    let oci_plain = (
        push(oci("amd64"), "team/oci-plain:v1"),
        layout.descriptor("amd64").digest,
    );
    let docker = (
        push(format!("dir:{}", dir.path().join("docker").display()), "team/docker:v1"),
        docker_digest,
    );
    let docker_list = (
        push(
            format!("dir:{}", dir.path().join("list").display()),
            "team/docker-list:v1",
        ),
        list_digest,
    );
    let deep = (
        push(oci("arm64"), "a/b/c/d/e/deep:v1"),
        layout.descriptor("arm64").digest,
    );
    let src_opts = reg.skopeo_opts("src");
    for (reference, digest) in [&multi, &oci_plain, &docker, &docker_list, &deep] {
        assert_eq!(
            &skopeo_digest(reference, &src_opts),
            digest,
            "fixture {reference} pushed as built"
        );
    }
    assert!(
        !String::from_utf8(layout.blob(&layout.descriptor("amd64").digest))
            .unwrap()
            .contains("mediaType\":\"application/vnd.oci.image.manifest"),
        "umoci writes OCI manifests without a mediaType field"
    );
    SourceImages {
        layout,
        multi,
        oci_plain,
        docker,
        docker_list,
        deep,
        base_layer,
        _dir: dir,
    }
}

/// An OCI layout (umoci) for thick bundles: `amd64` and `arm64` images sharing one base layer,
/// an OCI index `multi` of both, and `dlist`, a Docker manifest list of their Docker schema 2
/// forms (all stored in the layout).
pub struct LayoutImages {
    pub layout: Layout,
    pub amd64: String,
    pub arm64: String,
    pub multi: String,
    pub dlist: String,
    /// Digests of the Docker schema 2 children of `dlist`.
    pub dlist_children: Vec<String>,
    pub base_layer: String,
    pub dir: tempfile::TempDir,
}

pub fn build_layout(base_size: usize) -> LayoutImages {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::init(dir.path());
    layout.new_image("base");
    layout.insert("base", &fixtures::noise(7, base_size), "/base.bin");
    for (i, arch) in ["amd64", "arm64"].iter().enumerate() {
        layout.derive("base", arch, arch);
        layout.insert(arch, &fixtures::noise(20 + i as u64, 64 * 1024), "/app.bin");
    }
    let multi = layout
        .add_index("multi", &[("amd64", "amd64"), ("arm64", "arm64")])
        .digest;
    let mut entries = Vec::new();
    let mut dlist_children = Vec::new();
    for arch in ["amd64", "arm64"] {
        let m = layout.docker_manifest(arch);
        let d = layout.put_blob(&m);
        entries.push(
            serde_json::json!({"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "digest": d, "size": m.len(), "platform": {"architecture": arch, "os": "linux"}}),
        );
        dlist_children.push(d);
    }
    let list = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json", "manifests": entries}))
    .unwrap();
    let dlist = layout.put_blob(&list);
    layout.add_ref(
        "dlist",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        &dlist,
        list.len() as u64,
    );
    let base_layer = layout.manifest("amd64")["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    LayoutImages {
        amd64: layout.descriptor("amd64").digest,
        arm64: layout.descriptor("arm64").digest,
        multi,
        dlist,
        dlist_children,
        base_layer,
        layout,
        dir,
    }
}

/// A thick bundle's `bundle.json` declaring `images` (name → image entry).
pub fn bundle_json(invocation: serde_json::Value, images: &[(&str, serde_json::Value)]) -> Vec<u8> {
    let images: serde_json::Map<String, serde_json::Value> =
        images.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    serde_json::to_vec_pretty(&serde_json::json!({
        "schemaVersion": "v1.0.0", "name": "thick", "version": "1.0.0",
        "invocationImages": [invocation], "images": images,
    }))
    .unwrap()
}
