//! A real registry (Debian's `docker-registry`, the CNCF distribution 2.8) on 127.0.0.1 with
//! a port the kernel picks, in plain, htpasswd, TLS or token-auth mode. Stopped on drop.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::token_server::TokenServer;

pub const USER: &str = "testuser";
pub const PASSWORD: &str = "testpass";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Plain,
    Htpasswd,
    /// A certificate for 127.0.0.1 signed by the registry's own CA (`ca_path`).
    Tls,
    /// One self-signed certificate for 127.0.0.1, as `openssl req -x509` makes it (it carries
    /// CA:TRUE), which is also `ca_path`.
    SelfSigned,
    Token,
}

pub struct TestRegistry {
    pub port: u16,
    pub mode: Mode,
    pub dir: tempfile::TempDir,
    child: Child,
    pub token: Option<TokenServer>,
}

impl TestRegistry {
    pub fn start(mode: Mode) -> TestRegistry {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("data")).unwrap();
        let mut extra = String::new();
        if matches!(mode, Mode::Tls | Mode::SelfSigned) {
            if mode == Mode::Tls {
                make_tls_certs(d);
            } else {
                make_self_signed_cert(d);
            }
            extra.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                d.join("cert.pem").display(),
                d.join("key.pem").display()
            ));
        }
        let mut auth = String::new();
        if mode == Mode::Htpasswd {
            let out = Command::new("htpasswd")
                .args(["-Bbn", USER, PASSWORD])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "htpasswd: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::write(d.join("htpasswd"), out.stdout).unwrap();
            auth = format!(
                "auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n",
                d.join("htpasswd").display()
            );
        }
        let token = (mode == Mode::Token).then(|| TokenServer::start(d));
        if let Some(t) = &token {
            auth = format!(
                "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: {}\n",
                t.port,
                t.cert_path.display()
            );
        }
        let config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:0\n  secret: test-only-secret\n{extra}{auth}",
            data = d.join("data").display()
        );
        std::fs::write(d.join("config.yml"), config).unwrap();
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(d.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker-registry is installed (scripts/test installs it)");
        let stderr = child.stderr.take().unwrap();
        let rx = log_until_listening(stderr, d.join("registry.log"));
        let port = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(p) => p,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "registry did not start: {}",
                    std::fs::read_to_string(d.join("registry.log")).unwrap_or_default()
                );
            }
        };
        TestRegistry {
            port,
            mode,
            dir,
            child,
            token,
        }
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A folder with the CA as `ca.crt`, for skopeo's `--*-cert-dir`.
    pub fn cert_dir(&self) -> PathBuf {
        self.dir.path().join("certs.d")
    }

    pub fn tls(&self) -> bool {
        matches!(self.mode, Mode::Tls | Mode::SelfSigned)
    }

    pub fn needs_credentials(&self) -> bool {
        matches!(self.mode, Mode::Htpasswd | Mode::Token)
    }

    /// skopeo options to reach this registry as source (`src`) or destination (`dest`).
    pub fn skopeo_opts(&self, side: &str) -> Vec<String> {
        let mut o = Vec::new();
        if self.tls() {
            o.push(format!("--{side}-cert-dir={}", self.cert_dir().display()));
        } else {
            o.push(format!("--{side}-tls-verify=false"));
        }
        if self.needs_credentials() {
            o.push(format!("--{side}-creds={USER}:{PASSWORD}"));
        }
        o
    }

    /// The registry's repositories (`/v2/_catalog`), read with skopeo's credentials rules.
    pub fn catalog(&self) -> Vec<String> {
        let scheme = if self.tls() { "https" } else { "http" };
        let mut cmd = Command::new("curl");
        cmd.args(["-sf", &format!("{scheme}://{}/v2/_catalog", self.host())]);
        if self.tls() {
            cmd.arg("--cacert").arg(self.ca_path());
        }
        if self.mode == Mode::Htpasswd {
            cmd.args(["-u", &format!("{USER}:{PASSWORD}")]);
        }
        assert!(self.mode != Mode::Token, "catalog needs a registry:catalog:* token");
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "catalog of {}", self.host());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA and a leaf for 127.0.0.1 signed by it (rustls refuses a CA certificate as server
/// certificate).
fn make_tls_certs(d: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl").current_dir(d).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=cnab-relocate test CA",
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "key.pem",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        d.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca-key.pem",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "cert.pem",
    ]);
    std::fs::create_dir_all(d.join("certs.d")).unwrap();
    std::fs::copy(d.join("ca.pem"), d.join("certs.d/ca.crt")).unwrap();
}

/// One self-signed certificate for 127.0.0.1 (`openssl req -x509` marks it CA:TRUE), used as
/// the server's certificate and as the CA to trust.
fn make_self_signed_cert(d: &Path) {
    let out = Command::new("openssl")
        .current_dir(d)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::copy(d.join("cert.pem"), d.join("ca.pem")).unwrap();
    std::fs::create_dir_all(d.join("certs.d")).unwrap();
    std::fs::copy(d.join("cert.pem"), d.join("certs.d/ca.crt")).unwrap();
}

/// Copies a registry's log lines from `output` to `log_path` for as long as it runs (or it
/// blocks on a full pipe), and sends the port it says it listens on.
pub fn log_until_listening(output: impl std::io::Read + Send + 'static, log_path: PathBuf) -> mpsc::Receiver<u16> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        use std::io::Write;
        let mut log = std::fs::File::create(log_path).unwrap();
        let mut tx = Some(tx);
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            let _ = writeln!(log, "{line}");
            if let Some(port) = line
                .split("listening on 127.0.0.1:")
                .nth(1)
                .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|p| p.parse::<u16>().ok())
            {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(port);
                }
            }
        }
    });
    rx
}
