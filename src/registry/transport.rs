//! HTTP transport settings: TLS roots, certificate checks, and which schemes a registry is
//! spoken to with.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::credentials::CredentialOptions;
use super::error::RegistryError;
use super::retry::RetryPolicy;
use super::tls::{registry_certificates, standard_certs_dirs, Trust};
use rustls::pki_types::CertificateDer;

/// How registries are reached (the CLI's registry flags).
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Extra PEM files of CA certificates to trust, besides the system's.
    pub ca_cert_paths: Vec<PathBuf>,
    /// Accept any certificate, and allow plain HTTP when HTTPS fails.
    pub skip_tls_verify: bool,
    /// `HOST` or `HOST:PORT` that may be spoken to over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// How long an attempt may make no progress (no connection, no byte received) before it
    /// fails as a transient fault; `None` for 60 s.
    pub timeout: Option<Duration>,
    /// Retries of requests that fail in ways that may heal.
    pub retry: RetryPolicy,
    /// Credentials given explicitly and the auth file to read.
    pub credentials: CredentialOptions,
    /// Folders of per-registry CA certificates (`DIR/HOST:PORT/*.crt`), the first holding a
    /// registry's folder used; `None` for skopeo's: `~/.config/containers/certs.d`,
    /// `/etc/containers/certs.d`, `/etc/docker/certs.d`.
    pub certs_dirs: Option<Vec<PathBuf>>,
}

/// Schemes to try, in order, for one registry host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SchemePolicy {
    /// HTTPS only.
    HttpsOnly,
    /// HTTPS first; plain HTTP when HTTPS cannot be spoken (Docker's rule for insecure
    /// registries and loopback hosts).
    HttpsThenHttp,
}

impl RegistryOptions {
    /// The no-progress timeout of an attempt.
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(Duration::from_secs(60))
    }

    /// Schemes for `host` (`HOST` or `HOST:PORT`): HTTPS then HTTP for listed insecure
    /// registries, loopback hosts, or any host when TLS verification is skipped; else HTTPS.
    pub(crate) fn scheme_policy(&self, host: &str) -> SchemePolicy {
        let bare = host_without_port(host);
        let listed = self
            .insecure_registries
            .iter()
            .any(|r| r.eq_ignore_ascii_case(host) || r.eq_ignore_ascii_case(bare));
        if listed || self.skip_tls_verify || is_loopback(bare) {
            SchemePolicy::HttpsThenHttp
        } else {
            SchemePolicy::HttpsOnly
        }
    }

    /// The system's roots and the `--ca-cert-path` certificates, read once.
    pub(crate) fn trust(&self) -> Result<Trust, RegistryError> {
        Trust::new(&self.ca_cert_paths, self.skip_tls_verify)
    }

    /// The CA certificates of `registry`'s own `certs.d` folder, if it has one.
    pub(crate) fn registry_certificates(&self, registry: &str) -> Result<Vec<CertificateDer<'static>>, RegistryError> {
        match &self.certs_dirs {
            Some(dirs) => registry_certificates(dirs, registry),
            None => registry_certificates(&standard_certs_dirs(), registry),
        }
    }

    /// The client for metadata (pings, tokens, manifests, HEADs, mounts, small blobs): HTTP/2
    /// where the registry offers it over TLS (one connection carries them all, no handshake
    /// per request), else HTTP/1.1; plain HTTP stays HTTP/1.1. Reads that make no progress
    /// for the timeout fail.
    pub(crate) fn http_client(&self, trust: &Trust) -> Result<reqwest::Client, RegistryError> {
        self.client_builder(trust, true, true)
    }

    /// The client for blob bytes read: HTTP/1.1, a connection per transfer, so that big
    /// blobs and the ranged parts of one do not share one connection's window and speed.
    pub(crate) fn blob_client(&self, trust: &Trust) -> Result<reqwest::Client, RegistryError> {
        self.client_builder(trust, true, false)
    }

    /// The client for streamed uploads (HTTP/1.1, a connection each): reqwest's read timeout
    /// would also run while the body is sent and cut any upload longer than it, so uploads
    /// are watched by their progress instead (see `Registry::upload_chunk`).
    pub(crate) fn upload_client(&self, trust: &Trust) -> Result<reqwest::Client, RegistryError> {
        self.client_builder(trust, false, false)
    }

    fn client_builder(&self, trust: &Trust, read_timeout: bool, h2: bool) -> Result<reqwest::Client, RegistryError> {
        let mut builder = reqwest::Client::builder()
            .use_preconfigured_tls(trust.client_config(h2)?)
            .user_agent(concat!("cnab-relocate/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(self.timeout())
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(60))
            // followed by the client itself, which attaches credentials per origin
            .redirect(reqwest::redirect::Policy::none());
        if !h2 {
            builder = builder.http1_only();
        }
        if read_timeout {
            builder = builder.read_timeout(self.timeout());
        }
        builder.build().map_err(|e| RegistryError::Config {
            detail: format!("cannot set up HTTPS: {e}"),
        })
    }
}

/// `host` without its `:PORT`, and without the brackets of an IPv6 literal.
/// `host:port` → `host` (brackets of an IPv6 literal dropped).
pub(crate) fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// localhost, 127.0.0.0/8 and ::1.
pub(crate) fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false)
}

/// The API host of a registry domain: Docker Hub's API is not at docker.io.
pub(crate) fn api_host(domain: &str) -> &str {
    match domain {
        "docker.io" | "index.docker.io" => "registry-1.docker.io",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_policy() {
        let opts = RegistryOptions {
            insecure_registries: vec!["lab.example.com:5000".into(), "other.example".into()],
            ..Default::default()
        };
        assert_eq!(opts.scheme_policy("registry.example.com"), SchemePolicy::HttpsOnly);
        assert_eq!(opts.scheme_policy("lab.example.com:5000"), SchemePolicy::HttpsThenHttp);
        assert_eq!(opts.scheme_policy("lab.example.com:5001"), SchemePolicy::HttpsOnly);
        assert_eq!(opts.scheme_policy("other.example:443"), SchemePolicy::HttpsThenHttp);
        for loopback in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:1234",
            "127.9.9.9",
            "[::1]:5000",
        ] {
            assert_eq!(opts.scheme_policy(loopback), SchemePolicy::HttpsThenHttp, "{loopback}");
        }
        assert_eq!(opts.scheme_policy("128.0.0.1"), SchemePolicy::HttpsOnly);
        let skip = RegistryOptions {
            skip_tls_verify: true,
            ..Default::default()
        };
        assert_eq!(skip.scheme_policy("registry.example.com"), SchemePolicy::HttpsThenHttp);
    }

    #[test]
    fn docker_hub_api_host() {
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("127.0.0.1:5000"), "127.0.0.1:5000");
    }
}
