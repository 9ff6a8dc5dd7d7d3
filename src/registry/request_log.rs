//! What `-v` and `-vv` show of the requests: one line per request (method, host:port, path,
//! status, duration), and with `-vv` its headers, credentials and tokens redacted. Never a
//! query string: a presigned blob URL carries its signature there.

use std::time::Instant;

use reqwest::header::HeaderMap;
use reqwest::{Method, Response, Url};

/// A request being sent, to be logged once it is answered or has failed.
pub(super) struct Logged {
    line: String,
    headers: Option<String>,
    started: Instant,
}

impl Logged {
    pub(super) fn new(method: &Method, url: &Url, headers: Option<&HeaderMap>) -> Logged {
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().map(|p| format!(":{p}")).unwrap_or_default();
        let detailed = tracing::enabled!(tracing::Level::DEBUG);
        Logged {
            line: format!("{method} {host}{port} {}", url.path()),
            headers: detailed.then(|| shown(">", headers.into_iter().flatten())),
            started: Instant::now(),
        }
    }

    pub(super) fn answered(self, response: &Response) {
        let status = response.status().as_u16();
        // -vv names the protocol spoken (HTTP/1.1 or HTTP/2.0)
        self.log(&status.to_string(), || {
            format!("\n  < {:?}{}", response.version(), shown("<", response.headers()))
        });
    }

    pub(super) fn failed(self, why: &str) {
        self.log(&format!("failed ({why})"), String::new);
    }

    fn log(self, outcome: &str, response_headers: impl FnOnce() -> String) {
        let ms = self.started.elapsed().as_millis();
        match self.headers {
            Some(sent) => tracing::debug!("{} {outcome} {ms} ms{sent}{}", self.line, response_headers()),
            None => tracing::info!("{} {outcome} {ms} ms", self.line),
        }
    }
}

/// Headers as `\n  > name: value` lines, secrets redacted.
fn shown<'a>(
    arrow: &str,
    headers: impl IntoIterator<Item = (&'a reqwest::header::HeaderName, &'a reqwest::header::HeaderValue)>,
) -> String {
    headers
        .into_iter()
        .map(|(name, value)| {
            format!(
                "\n  {arrow} {name}: {}",
                redacted(name.as_str(), value.to_str().unwrap_or("<binary>"))
            )
        })
        .collect()
}

/// What of a header may be shown: the scheme of a credential, a URL without its query, any
/// other header as it is.
fn redacted(name: &str, value: &str) -> String {
    let name = name.to_ascii_lowercase();
    if name == "authorization" || name == "proxy-authorization" {
        let scheme = value.split_whitespace().next().unwrap_or_default();
        return format!("{scheme} <redacted>");
    }
    if name == "www-authenticate" {
        return value.to_string();
    }
    if ["cookie", "auth", "token", "secret", "key", "signature"]
        .iter()
        .any(|s| name.contains(s))
    {
        return "<redacted>".to_string();
    }
    if name == "location" || name == "link" {
        return match value.split_once('?') {
            Some((before, _)) => format!("{before}?<redacted>"),
            None => value.to_string(),
        };
    }
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn secrets_are_never_shown() {
        assert_eq!(redacted("Authorization", "Bearer eyJhbGciOi.x.y"), "Bearer <redacted>");
        assert_eq!(redacted("authorization", "Basic dTpw"), "Basic <redacted>");
        assert_eq!(redacted("Set-Cookie", "session=abc"), "<redacted>");
        assert_eq!(redacted("X-Auth-Token", "abc"), "<redacted>");
        assert_eq!(
            redacted("Location", "https://s3.example/b?X-Amz-Signature=abc"),
            "https://s3.example/b?<redacted>"
        );
        assert_eq!(
            redacted("WWW-Authenticate", r#"Bearer realm="https://a/token""#),
            r#"Bearer realm="https://a/token""#
        );
        assert_eq!(redacted("Content-Type", "application/json"), "application/json");
    }
}
