//! Reading what a registry answered: its error text, headers, and whether a transport error
//! may heal on a new attempt. Shared by the client and the token fetcher.

use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::Response;

/// A header's value, when present and readable as visible ASCII.
/// Largest error body read; the rest is not read at all.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// A body read up to `limit` bytes: `Ok(None)` when it is longer (reading stops there, so an
/// endless body costs `limit` bytes of memory at most).
pub(crate) async fn read_at_most(mut response: Response, limit: usize) -> Result<Option<Bytes>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(Bytes::from(body)))
}

/// The first `limit` bytes of a body, however long it is.
async fn read_head(mut response: Response, limit: usize) -> Bytes {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk[..chunk.len().min(limit - body.len())]),
            _ => break,
        }
    }
    Bytes::from(body)
}

pub(crate) fn header_str(headers: &HeaderMap, name: impl reqwest::header::AsHeaderName) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// Connection-level failures that a new attempt may not hit; TLS certificate problems will.
pub(crate) fn is_retryable_error(e: &reqwest::Error) -> bool {
    if is_tls_error(e) {
        return false;
    }
    e.is_connect() || e.is_timeout() || e.is_request() || e.is_body() || e.is_decode()
}

/// Whether a rustls error is anywhere in the chain of `e`.
fn is_tls_error(e: &reqwest::Error) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if err.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        // io::Error::source() skips the error it wraps, so descend into it by hand
        next = match err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    false
}

/// "error sending request: connection refused" rather than only the outermost message; URLs
/// are left out (upload URLs carry opaque state).
pub(crate) fn error_chain(e: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        let text = if let Some(re) = s.downcast_ref::<reqwest::Error>() {
            let mut re_text = re.to_string();
            if let Some(url) = re.url() {
                re_text = re_text.replace(&format!(" for url ({url})"), "");
            }
            re_text
        } else {
            s.to_string()
        };
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    let mut out = parts.join(": ");
    if is_tls_error(e) {
        out.push_str(
            " (TLS: trust the registry's CA with --ca-cert-path, or use --skip-tls-verify; in a sync \
             configuration: a CA folder in skopeo.certs-dir, or skip-tls-verify: true)",
        );
    }
    out
}

/// The registry's own error text: `CODE: message` entries of a distribution error body.
pub(crate) async fn error_message(response: Response) -> String {
    #[derive(serde::Deserialize)]
    struct Body {
        errors: Option<Vec<Entry>>,
        error: Option<String>,
        details: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        code: Option<String>,
        message: Option<String>,
        detail: Option<serde_json::Value>,
    }
    let bytes = read_head(response, MAX_ERROR_BODY).await;
    let bytes = &bytes[..];
    if let Ok(body) = serde_json::from_slice::<Body>(bytes) {
        if let Some(errors) = body.errors.filter(|e| !e.is_empty()) {
            return errors
                .iter()
                .map(|e| {
                    let mut s = [e.code.as_deref(), e.message.as_deref()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(": ");
                    if let Some(detail) = e.detail.as_ref().filter(|d| !d.is_null()) {
                        s.push_str(&format!(" ({detail})"));
                    }
                    s
                })
                .collect::<Vec<_>>()
                .join("; ");
        }
        if let Some(e) = body.error.or(body.details) {
            return e;
        }
    }
    let text = String::from_utf8_lossy(bytes).trim().to_string();
    if text.is_empty() {
        "(no message)".to_string()
    } else {
        text.chars().take(500).collect()
    }
}
