//! Registry credentials from Docker's `config.json` (`auths`, `credsStore`, `credHelpers`),
//! read through the `docker_credential` crate. A missing file or an unknown server means
//! anonymous. Secrets never reach `Debug`, logs or errors.

use std::fmt;
use std::path::PathBuf;

use docker_credential::{CredentialRetrievalError, DockerCredential};

/// Where Docker keeps Docker Hub credentials.
pub(crate) const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

/// Credentials for one registry; `Debug` redacts the secrets.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Credential {
    /// A user name and password (`auth`, or a credential helper's answer).
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken`), exchanged at the token endpoint.
    IdentityToken(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credential::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

/// The key a registry domain's credentials are stored under.
pub(crate) fn server_key(domain: &str) -> &str {
    match domain {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_SERVER,
        other => other,
    }
}

/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub(crate) fn config_path() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => Some(PathBuf::from(dir).join("config.json")),
        None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json")),
    }
}

/// Credentials for `domain`, or `None` for anonymous access. Problems are logged as warnings
/// (without secrets) and mean anonymous: the registry's own 401 then says what is missing.
/// Blocking: may run a credential helper.
pub(crate) fn lookup(domain: &str) -> Option<Credential> {
    let path = config_path()?;
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!("cannot read {}: {e}; continuing without credentials", path.display());
            return None;
        }
    };
    let server = server_key(domain);
    match docker_credential::get_credential_from_reader(bytes.as_slice(), server) {
        Ok(DockerCredential::UsernamePassword(username, password)) => Some(Credential::Basic { username, password }),
        Ok(DockerCredential::IdentityToken(token)) => Some(Credential::IdentityToken(token)),
        Err(CredentialRetrievalError::NoCredentialConfigured) => None,
        Err(CredentialRetrievalError::HelperFailure { helper, stdout, .. }) => {
            // helpers answer "credentials not found" for unknown servers
            if !stdout.to_ascii_lowercase().contains("credentials not found") {
                tracing::warn!(
                    "credential helper {helper} failed for {server}; continuing without credentials \
                     (try `echo {server} | {helper} get`)"
                );
            }
            None
        }
        Err(CredentialRetrievalError::HelperCommunicationError) => {
            tracing::warn!(
                "cannot run the credential helper configured in {} for {server} (is docker-credential-* on PATH?); \
                 continuing without credentials",
                path.display()
            );
            None
        }
        Err(e @ CredentialRetrievalError::ConfigReadError) => {
            tracing::warn!(
                "{}: {e} (invalid JSON?); continuing without credentials",
                path.display()
            );
            None
        }
        Err(e) => {
            tracing::warn!(
                "{}: entry for {server}: {e}; continuing without credentials",
                path.display()
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let c = Credential::Basic {
            username: "u".into(),
            password: "s3cret".into(),
        };
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(!format!("{:?}", Credential::IdentityToken("tok3n".into())).contains("tok3n"));
    }

    #[test]
    fn docker_hub_key() {
        assert_eq!(server_key("docker.io"), DOCKER_HUB_SERVER);
        assert_eq!(server_key("127.0.0.1:5000"), "127.0.0.1:5000");
    }
}
