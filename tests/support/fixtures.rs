//! Test images built with umoci (OCI layouts), Docker-typed variants written as skopeo `dir:`
//! layouts, pushed with skopeo and checked with `skopeo inspect --raw`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::Digest as _;

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Deterministic incompressible bytes.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// An OCI image layout managed with umoci.
pub struct Layout {
    pub path: PathBuf,
    scratch: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Desc {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

impl Layout {
    pub fn init(dir: &Path) -> Layout {
        let path = dir.join("layout");
        let scratch = dir.join("scratch");
        std::fs::create_dir_all(&scratch).unwrap();
        run(Command::new("umoci").args(["init", "--layout"]).arg(&path));
        Layout { path, scratch }
    }

    fn image(&self, tag: &str) -> String {
        format!("{}:{tag}", self.path.display())
    }

    pub fn new_image(&self, tag: &str) {
        run(Command::new("umoci").args(["new", "--image", &self.image(tag)]));
    }

    /// Adds a layer holding `bytes` at `dest` (each insert is one layer).
    pub fn insert(&self, tag: &str, bytes: &[u8], dest: &str) {
        let src = self.scratch.join(format!("f{}", sha256_hex(bytes)));
        std::fs::write(&src, bytes).unwrap();
        // a fixed mtime keeps identical content in identical layers
        run(Command::new("touch").args(["-d", "@1000000000"]).arg(&src));
        run(Command::new("umoci")
            .args(["insert", "--image", &self.image(tag)])
            .arg(&src)
            .arg(dest));
    }

    /// Writes `from`'s image with a new config under `to` (layers shared).
    pub fn derive(&self, from: &str, to: &str, arch: &str) {
        run(Command::new("umoci").args([
            "config",
            "--image",
            &self.image(from),
            "--tag",
            to,
            "--architecture",
            arch,
            "--os",
            "linux",
            "--config.cmd",
            "/bin/sh",
        ]));
    }

    pub fn index_json(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.path.join("index.json")).unwrap()).unwrap()
    }

    pub fn descriptor(&self, tag: &str) -> Desc {
        let idx = self.index_json();
        let d = idx["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .unwrap_or_else(|| panic!("tag {tag} in layout"));
        Desc {
            media_type: d["mediaType"].as_str().unwrap().to_string(),
            digest: d["digest"].as_str().unwrap().to_string(),
            size: d["size"].as_u64().unwrap(),
        }
    }

    pub fn blob(&self, digest: &str) -> Vec<u8> {
        let hex = digest.strip_prefix("sha256:").unwrap();
        std::fs::read(self.path.join("blobs/sha256").join(hex)).unwrap()
    }

    pub fn manifest(&self, tag: &str) -> serde_json::Value {
        serde_json::from_slice(&self.blob(&self.descriptor(tag).digest)).unwrap()
    }

    /// Stores `bytes` as a blob; returns its digest.
    pub fn put_blob(&self, bytes: &[u8]) -> String {
        let hex = sha256_hex(bytes);
        std::fs::write(self.path.join("blobs/sha256").join(&hex), bytes).unwrap();
        format!("sha256:{hex}")
    }

    /// Adds a top-level descriptor to index.json.
    pub fn add_ref(&self, tag: &str, media_type: &str, digest: &str, size: u64) {
        let mut idx = self.index_json();
        idx["manifests"].as_array_mut().unwrap().push(serde_json::json!({
            "mediaType": media_type, "digest": digest, "size": size,
            "annotations": {"org.opencontainers.image.ref.name": tag}
        }));
        std::fs::write(self.path.join("index.json"), serde_json::to_vec(&idx).unwrap()).unwrap();
    }

    /// A multi-arch OCI index of `children` (tag, architecture), tagged `tag`; its digest.
    pub fn add_index(&self, tag: &str, children: &[(&str, &str)]) -> Desc {
        let manifests: Vec<serde_json::Value> = children
            .iter()
            .map(|(t, arch)| {
                let d = self.descriptor(t);
                serde_json::json!({"mediaType": d.media_type, "digest": d.digest, "size": d.size,
                    "platform": {"architecture": arch, "os": "linux"}})
            })
            .collect();
        let index = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
        let bytes = serde_json::to_vec(&index).unwrap();
        let digest = self.put_blob(&bytes);
        self.add_ref(
            tag,
            "application/vnd.oci.image.index.v1+json",
            &digest,
            bytes.len() as u64,
        );
        self.descriptor(tag)
    }

    /// The Docker schema 2 form of image `tag` (same blobs, Docker media types).
    pub fn docker_manifest(&self, tag: &str) -> Vec<u8> {
        let m = self.manifest(tag);
        let mut config = m["config"].clone();
        config["mediaType"] = "application/vnd.docker.container.image.v1+json".into();
        let layers: Vec<serde_json::Value> = m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let mut l = l.clone();
                l["mediaType"] = "application/vnd.docker.image.rootfs.diff.tar.gzip".into();
                l
            })
            .collect();
        serde_json::to_vec_pretty(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": config, "layers": layers
        }))
        .unwrap()
    }

    /// A skopeo `dir:` directory holding the Docker schema 2 form of `tag`.
    pub fn docker_dir(&self, tag: &str, out: &Path) -> String {
        let manifest = self.docker_manifest(tag);
        self.write_dir(out, &manifest, &[tag], &[])
    }

    /// A skopeo `dir:` directory holding a Docker manifest list of the Docker forms of
    /// `children` (tag, architecture).
    pub fn docker_list_dir(&self, children: &[(&str, &str)], out: &Path) -> String {
        let mut entries = Vec::new();
        let mut child_manifests = Vec::new();
        for (t, arch) in children {
            let m = self.docker_manifest(t);
            entries.push(serde_json::json!({
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "digest": format!("sha256:{}", sha256_hex(&m)), "size": m.len(),
                "platform": {"architecture": arch, "os": "linux"}
            }));
            child_manifests.push(m);
        }
        let list = serde_json::to_vec_pretty(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
            "manifests": entries
        }))
        .unwrap();
        let tags: Vec<&str> = children.iter().map(|(t, _)| *t).collect();
        self.write_dir(out, &list, &tags, &child_manifests)
    }

    fn write_dir(&self, out: &Path, manifest: &[u8], tags: &[&str], children: &[Vec<u8>]) -> String {
        std::fs::create_dir_all(out).unwrap();
        std::fs::write(out.join("version"), "Directory Transport Version: 1.1\n").unwrap();
        std::fs::write(out.join("manifest.json"), manifest).unwrap();
        for c in children {
            std::fs::write(out.join(format!("{}.manifest.json", sha256_hex(c))), c).unwrap();
        }
        for t in tags {
            let m = self.manifest(t);
            let blobs = std::iter::once(&m["config"]).chain(m["layers"].as_array().unwrap());
            for b in blobs {
                let d = b["digest"].as_str().unwrap();
                std::fs::write(out.join(d.strip_prefix("sha256:").unwrap()), self.blob(d)).unwrap();
            }
        }
        format!("sha256:{}", sha256_hex(manifest))
    }
}

/// `skopeo copy --all --preserve-digests SRC DST` with extra options.
pub fn skopeo_copy(src: &str, dst: &str, opts: &[String]) {
    run(Command::new("skopeo")
        .args(["copy", "-q", "--all", "--preserve-digests"])
        .args(opts)
        .args([src, dst]));
}

/// sha256 of the manifest bytes a registry serves for `reference` (`host/repo:tag`).
pub fn skopeo_digest(reference: &str, opts: &[String]) -> String {
    format!("sha256:{}", sha256_hex(&skopeo_raw(reference, opts)))
}

/// The raw manifest bytes a registry serves for `reference`. `opts` are source-side copy
/// options (`--src-…`); inspect takes them without the prefix.
pub fn skopeo_raw(reference: &str, opts: &[String]) -> Vec<u8> {
    let opts: Vec<String> = opts.iter().map(|o| o.replacen("--src-", "--", 1)).collect();
    run(Command::new("skopeo")
        .args(["inspect", "--raw"])
        .args(&opts)
        .arg(format!("docker://{reference}")))
    .stdout
}
