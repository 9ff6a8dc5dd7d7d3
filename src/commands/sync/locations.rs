//! The registries of a sync run, set up per location (SYNC.md §4): each `source` or `target`
//! brings its own credentials (`auth`), `skip-tls-verify` and per-host CA folder, so one
//! location's settings never reach another's requests. Locations written alike share one
//! set-up (connections, tokens) across tasks.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::registry::{Login, Registries, RegistryError, RegistryOptions};
use crate::sync::config::{Auth, Location};

/// Where skopeo (dregsy's relay) looks for per-host CA folders by default.
const SKOPEO_CERTS_DIR: &str = "/etc/skopeo/certs.d";

/// Every location's registries, created on first use.
pub(super) struct Locations {
    base: RegistryOptions,
    certs_dir: Option<PathBuf>,
    set_up: Mutex<Vec<(Location, Arc<Registries>)>>,
}

impl Locations {
    /// `base` holds the command line's registry options; `certs_dir` is `skopeo.certs-dir`.
    pub fn new(base: RegistryOptions, certs_dir: Option<&str>) -> Locations {
        let certs_dir = match certs_dir {
            Some(dir) => Some(PathBuf::from(dir)),
            None => Some(PathBuf::from(SKOPEO_CERTS_DIR)).filter(|d| d.is_dir()),
        };
        Locations {
            base,
            certs_dir,
            set_up: Mutex::new(Vec::new()),
        }
    }

    /// The registries to reach `location` with, and the warnings setting them up gave.
    pub fn registries(&self, location: &Location) -> Result<(Arc<Registries>, Vec<String>), RegistryError> {
        let mut set_up = self.set_up.lock().expect("locations lock");
        if let Some((_, r)) = set_up.iter().find(|(l, _)| l == location) {
            return Ok((r.clone(), Vec::new()));
        }
        let mut options = self.base.clone();
        options.skip_tls_verify |= location.skip_tls_verify;
        match &location.auth {
            Auth::DockerConfig => {}
            Auth::Anonymous => options.credentials.anonymous = true,
            Auth::Basic(c) => {
                // the only registry these are used for: explicit, so no file is read for it
                options.credentials.sources = Some(Login {
                    username: c.username.clone(),
                    password: c.password().to_string(),
                });
                options.credentials.destination = None;
                options.credentials.explicit_origin = Some("the location's auth in the sync configuration");
            }
        }
        let mut warnings = Vec::new();
        if let Some(dir) = &self.certs_dir {
            let (certs, ignored) = host_certificates(dir, &location.registry)?;
            options.ca_cert_paths.extend(certs);
            warnings.extend(ignored.iter().map(|f| {
                format!(
                    "{}: client certificate {} is not used (not supported)",
                    location.registry,
                    f.display()
                )
            }));
        }
        let registries = Arc::new(Registries::new(options)?);
        set_up.push((location.clone(), registries.clone()));
        Ok((registries, warnings))
    }
}

impl Locations {
    /// Cancels every upload session still open at any location (an interrupted run).
    pub async fn cancel_open_uploads(&self) {
        let all: Vec<Arc<Registries>> = {
            let set_up = self.set_up.lock().expect("locations lock");
            set_up.iter().map(|(_, r)| r.clone()).collect()
        };
        futures_util::future::join_all(all.iter().map(|r| r.cancel_open_uploads())).await;
    }
}

/// The domain references name a location's registry by: Docker Hub's names are one registry.
pub(super) fn domain_of(location: &Location) -> &str {
    if location.is_docker_hub() {
        "docker.io"
    } else {
        &location.registry
    }
}

/// The `*.crt` files of `DIR/<host without port>/` (dregsy's skopeo relay drops the port),
/// and the client certificate files (`*.cert`, `*.key`) found there, which are not used.
fn host_certificates(dir: &Path, registry: &str) -> Result<(Vec<PathBuf>, Vec<PathBuf>), RegistryError> {
    let host = match registry.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => registry,
    };
    let folder = dir.join(host);
    if !folder.is_dir() {
        return Ok((Vec::new(), Vec::new()));
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .map_err(|e| RegistryError::Config {
            detail: format!("cannot read {}: {e}", folder.display()),
        })?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let with = |ext: &'static str| move |p: &&PathBuf| p.extension().is_some_and(|e| e == ext);
    let certs = files.iter().filter(with("crt")).cloned().collect();
    let client = files.iter().filter(with("cert")).cloned().collect();
    Ok((certs, client))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_files_come_from_the_host_folder_without_the_port() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("registry.example");
        std::fs::create_dir(&host).unwrap();
        for f in ["b.crt", "a.crt", "client.cert", "client.key", "notes.txt"] {
            std::fs::write(host.join(f), "x").unwrap();
        }
        let (certs, client) = host_certificates(dir.path(), "registry.example:5000").unwrap();
        assert_eq!(certs, vec![host.join("a.crt"), host.join("b.crt")]);
        assert_eq!(client, vec![host.join("client.cert")]);
        let (certs, _) = host_certificates(dir.path(), "other.example").unwrap();
        assert!(certs.is_empty());
    }
}
