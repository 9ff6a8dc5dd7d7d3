//! A Docker registry token server for tests (the project's own): Bearer JWTs signed RS256 with
//! a key whose certificate is the registry's `rootcertbundle`. `testuser`/`testpass` get every
//! action asked for, anonymous callers only `pull`; the refresh token `test-refresh-token`
//! (identity-token flow) is `testuser`. Every request is recorded for assertions.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;

pub const REFRESH_TOKEN: &str = "test-refresh-token";

/// One token request as the server saw it.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub method: String,
    pub user: Option<String>,
    pub grant_type: Option<String>,
    pub scopes: Vec<String>,
    pub granted: bool,
}

pub struct TokenServer {
    pub port: u16,
    pub cert_path: PathBuf,
    pub requests: Arc<Mutex<Vec<TokenRequest>>>,
    pub issued: Arc<Mutex<Vec<String>>>,
    /// Requests for more scopes than this are refused (403), as some token services do.
    pub max_scopes: Arc<std::sync::atomic::AtomicUsize>,
}

impl TokenServer {
    pub fn start(dir: &Path) -> TokenServer {
        let key = dir.join("token-key.pem");
        let cert = dir.join("token-cert.pem");
        let out = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=test token signer",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let kid = libtrust_key_id(&key);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let issued = Arc::new(Mutex::new(Vec::new()));
        let (req_log, issued_log) = (requests.clone(), issued.clone());
        let max_scopes = Arc::new(std::sync::atomic::AtomicUsize::new(usize::MAX));
        let limit = max_scopes.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let (key, kid, req_log, issued_log) = (key.clone(), kid.clone(), req_log.clone(), issued_log.clone());
                let limit = limit.load(std::sync::atomic::Ordering::Relaxed);
                std::thread::spawn(move || {
                    let _ = serve(stream, &key, &kid, &req_log, &issued_log, limit);
                });
            }
        });
        TokenServer {
            port,
            cert_path: cert,
            requests,
            issued,
            max_scopes,
        }
    }

    pub fn requests(&self) -> Vec<TokenRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// Every token handed out (to check none leaks into the tool's output).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.issued.lock().unwrap().clone()
    }
}

fn serve(
    stream: std::net::TcpStream,
    key: &Path,
    kid: &str,
    req_log: &Mutex<Vec<TokenRequest>>,
    issued: &Mutex<Vec<String>>,
    max_scopes: usize,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut body = vec![0; headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0)];
    reader.read_exact(&mut body)?;
    let params = if method == "POST" {
        parse_form(&String::from_utf8_lossy(&body))
    } else {
        parse_form(query)
    };
    let get_all = |k: &str| {
        params
            .iter()
            .filter(|(pk, _)| pk == k)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    let get = |k: &str| get_all(k).into_iter().next();

    let mut record = TokenRequest {
        method: method.clone(),
        user: None,
        grant_type: get("grant_type"),
        scopes: Vec::new(),
        granted: false,
    };
    let reply = |mut stream: &std::net::TcpStream, code: u16, body: String| {
        let reason = if code == 200 { "OK" } else { "Unauthorized" };
        write!(
            stream,
            "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    if path != "/token" {
        return reply(&stream, 404, "{}".into());
    }
    let user = if method == "POST" {
        record.scopes = get("scope")
            .map(|s| s.split(' ').map(str::to_string).collect())
            .unwrap_or_default();
        match get("grant_type").as_deref() {
            Some("password")
                if get("username").as_deref() == Some("testuser") && get("password").as_deref() == Some("testpass") =>
            {
                Some("testuser".to_string())
            }
            Some("refresh_token") if get("refresh_token").as_deref() == Some(REFRESH_TOKEN) => {
                Some("testuser".to_string())
            }
            _ => {
                req_log.lock().unwrap().push(record);
                return reply(&stream, 401, r#"{"error":"invalid_grant"}"#.into());
            }
        }
    } else {
        record.scopes = get_all("scope");
        match headers.get("authorization").and_then(|h| h.strip_prefix("Basic ")) {
            Some(b64) => {
                let decoded = String::from_utf8(STANDARD.decode(b64).unwrap_or_default()).unwrap_or_default();
                if decoded != "testuser:testpass" {
                    req_log.lock().unwrap().push(record);
                    return reply(
                        &stream,
                        401,
                        r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#.into(),
                    );
                }
                Some("testuser".to_string())
            }
            None => None,
        }
    };
    if record.scopes.len() > max_scopes {
        req_log.lock().unwrap().push(record);
        return reply(
            &stream,
            403,
            r#"{"errors":[{"code":"DENIED","message":"too many scopes"}]}"#.into(),
        );
    }
    record.user = user.clone();
    record.granted = true;
    let access: Vec<serde_json::Value> = record
        .scopes
        .iter()
        .filter_map(|s| {
            let (typ, rest) = s.split_once(':')?;
            let (name, actions) = rest.rsplit_once(':')?;
            let granted: Vec<&str> = actions.split(',').filter(|a| user.is_some() || *a == "pull").collect();
            Some(serde_json::json!({"type": typ, "name": name, "actions": granted}))
        })
        .collect();
    req_log.lock().unwrap().push(record);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "iss": "test-issuer", "sub": user.clone().unwrap_or_default(), "aud": get("service").unwrap_or("test-registry".into()),
        "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", rand_suffix()), "access": access,
    });
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "kid": kid});
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = openssl_sign(key, signing_input.as_bytes());
    let token = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature));
    issued.lock().unwrap().push(token.clone());
    let mut body = serde_json::json!({"token": token, "access_token": token, "expires_in": 300});
    if get("access_type").as_deref() == Some("offline") {
        body["refresh_token"] = REFRESH_TOKEN.into();
    }
    reply(&stream, 200, body.to_string())
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (url_decode(k), url_decode(v))
        })
        .collect()
}

fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn openssl_sign(key: &Path, input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

/// libtrust's key ID, which distribution uses to find the signing key: base32 of the first
/// 30 bytes of sha256(DER SubjectPublicKeyInfo), in 12 groups of 4 joined by ':'.
fn libtrust_key_id(key: &Path) -> String {
    use sha2::Digest as _;
    let out = Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(key)
        .output()
        .unwrap();
    assert!(out.status.success());
    let hash = sha2::Sha256::digest(&out.stdout);
    let b32 = base32(&hash[..30]);
    b32.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(":")
}

fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in data {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            out.push(ALPHABET[((buffer >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}
