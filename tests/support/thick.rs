//! A thick-bundle producer of the project's own: packs `bundle.json` and an OCI layout into a
//! gzipped tar the way the producers in the wild do (entry order, `./` prefixes, one top-level
//! directory, Porter's `relocation-mapping.json`), or with deliberate damage.

use std::io::Write;
use std::path::Path;

use flate2::write::GzEncoder;
use flate2::Compression;

pub struct Pack<'a> {
    pub layout: &'a Path,
    pub bundle_json: Vec<u8>,
    /// Put before every name: "", "./" or "top/".
    pub prefix: &'a str,
    /// `tar` by hand puts `blobs/` before `index.json`; duffle writes `bundle.json` first.
    pub blobs_first: bool,
    /// Write directory entries too (`tar -C dir -czf x.tgz .` does).
    pub directories: bool,
    /// Replaces `index.json` (e.g. annotations rewritten as duffle writes them).
    pub index_json: Option<Vec<u8>>,
    /// Extra files at the bundle root, e.g. Porter's `relocation-mapping.json`.
    pub extra: Vec<(String, Vec<u8>)>,
    /// Replaces the content of a blob (digest) while keeping its name.
    pub replace_blob: Option<(String, Vec<u8>)>,
}

impl<'a> Pack<'a> {
    pub fn new(layout: &'a Path, bundle_json: Vec<u8>) -> Pack<'a> {
        Pack {
            layout,
            bundle_json,
            prefix: "./",
            blobs_first: false,
            directories: true,
            index_json: None,
            extra: Vec::new(),
            replace_blob: None,
        }
    }

    pub fn tgz(&self) -> Vec<u8> {
        let p = self.prefix;
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let mut dirs = vec![
            format!("{p}artifacts/"),
            format!("{p}artifacts/layout/"),
            format!("{p}artifacts/layout/blobs/"),
            format!("{p}artifacts/layout/blobs/sha256/"),
        ];
        if !p.is_empty() && p != "./" {
            dirs.insert(0, p.to_string());
        }
        let meta = vec![
            (format!("{p}bundle.json"), self.bundle_json.clone()),
            (
                format!("{p}artifacts/layout/oci-layout"),
                std::fs::read(self.layout.join("oci-layout")).unwrap(),
            ),
            (
                format!("{p}artifacts/layout/index.json"),
                self.index_json
                    .clone()
                    .unwrap_or_else(|| std::fs::read(self.layout.join("index.json")).unwrap()),
            ),
        ];
        let mut blobs: Vec<(String, Vec<u8>)> = std::fs::read_dir(self.layout.join("blobs/sha256"))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let hex = e.file_name().to_str().unwrap().to_string();
                let mut content = std::fs::read(e.path()).unwrap();
                if let Some((d, replacement)) = &self.replace_blob {
                    if d.strip_prefix("sha256:") == Some(hex.as_str()) {
                        content = replacement.clone();
                    }
                }
                (format!("{p}artifacts/layout/blobs/sha256/{hex}"), content)
            })
            .collect();
        blobs.sort();
        let extra: Vec<(String, Vec<u8>)> = self.extra.iter().map(|(n, c)| (format!("{p}{n}"), c.clone())).collect();
        if self.blobs_first {
            files.extend(blobs);
            files.extend(meta.into_iter().rev());
        } else {
            files.extend(meta);
            files.extend(blobs);
        }
        files.extend(extra);

        let mut builder = tar::Builder::new(Vec::new());
        let header = |size: u64, kind: tar::EntryType| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(if kind == tar::EntryType::Directory {
                0o755
            } else {
                0o644
            });
            h.set_mtime(0);
            h.set_uid(0);
            h.set_gid(0);
            h.set_size(size);
            h
        };
        if self.directories {
            if p == "./" {
                builder
                    .append_data(&mut header(0, tar::EntryType::Directory), "./", &[][..])
                    .unwrap();
            }
            for d in &dirs {
                builder
                    .append_data(&mut header(0, tar::EntryType::Directory), d, &[][..])
                    .unwrap();
            }
        }
        for (name, content) in &files {
            builder
                .append_data(
                    &mut header(content.len() as u64, tar::EntryType::Regular),
                    name,
                    content.as_slice(),
                )
                .unwrap();
        }
        let tar = builder.into_inner().unwrap();
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(&tar).unwrap();
        gz.finish().unwrap()
    }
}

/// `index.json` of `layout` with each `org.opencontainers.image.ref.name` replaced through
/// `rename` (umoci writes bare tags; duffle and ggcr write full references).
pub fn renamed_index(layout: &Path, rename: impl Fn(&str) -> Option<String>) -> Vec<u8> {
    let mut idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    for d in idx["manifests"].as_array_mut().unwrap() {
        let key = "org.opencontainers.image.ref.name";
        if let Some(name) = d["annotations"][key].as_str().map(str::to_string) {
            match rename(&name) {
                Some(new) => d["annotations"][key] = new.into(),
                None => {
                    d["annotations"].as_object_mut().unwrap().remove(key);
                }
            }
        }
    }
    serde_json::to_vec(&idx).unwrap()
}

/// `index.json` of `layout` as `ctr image export` writes it: `io.containerd.image.name` the full
/// reference (through `name`), `org.opencontainers.image.ref.name` only its tag; `extra`
/// descriptors (full reference, digest) are added for other images of the same tags.
pub fn containerd_index(layout: &Path, name: impl Fn(&str) -> Option<String>, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let annotations = |full: &str| {
        let tag = full.rsplit_once(':').unwrap().1;
        serde_json::json!({"io.containerd.image.name": full, "org.opencontainers.image.ref.name": tag})
    };
    let manifests = idx["manifests"].as_array_mut().unwrap();
    let copies: Vec<serde_json::Value> = extra
        .iter()
        .map(|(full, digest)| {
            let mut d = manifests.iter().find(|d| d["digest"] == *digest).unwrap().clone();
            d["annotations"] = annotations(full);
            d
        })
        .collect();
    manifests.retain_mut(|d| {
        let tag = d["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .unwrap_or_default();
        match name(tag) {
            Some(full) => {
                d["annotations"] = annotations(&full);
                true
            }
            None => false,
        }
    });
    manifests.extend(copies);
    serde_json::to_vec(&idx).unwrap()
}
