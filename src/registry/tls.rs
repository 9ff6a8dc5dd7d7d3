//! TLS for registries: rustls with the system's roots, every `--ca-cert-path` certificate and
//! a registry's own `certs.d/HOST:PORT/*.crt`, as skopeo reads them.
//!
//! One case webpki refuses and curl, Go and skopeo accept: a self-signed certificate made with
//! `openssl req -x509` (it carries `basicConstraints CA:TRUE`) presented by the server itself.
//! webpki fails it with `CaUsedAsEndEntity` whatever the trust anchors. The verifier here
//! accepts it only when the server's certificate is, byte for byte, one the user configured
//! (a `--ca-cert-path` file, or the registry's `certs.d` folder): the configuration is the
//! trust. Its validity period and the server's name are still checked; the handshake
//! signature is checked by rustls as for any certificate. Any other certificate, and any
//! other error, is left to webpki unchanged.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::error::RegistryError;

/// The certificates of a run: the system's roots, and those the user configured.
#[derive(Clone)]
pub(crate) struct Trust {
    provider: Arc<CryptoProvider>,
    /// `--ca-cert-path` certificates and a registry's `certs.d` ones.
    configured: Vec<CertificateDer<'static>>,
    skip_verify: bool,
    /// The checks every client of this trust shares, built at the first certificate to check.
    checks: Arc<OnFirstUse>,
}

/// The system's root certificates, read from disk once per process: the system's bundle file
/// when it has one (every distribution's CA tools write every root there; the hashed folder
/// beside it holds the same certificates, one file each, and reading those costs a process
/// ~10 ms), else what rustls-native-certs finds, also when `SSL_CERT_FILE` or `SSL_CERT_DIR`
/// say where to look.
fn system_roots() -> Arc<Vec<CertificateDer<'static>>> {
    static ROOTS: OnceLock<Arc<Vec<CertificateDer<'static>>>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let bundle = (!openssl_probe::has_ssl_cert_env_vars())
                .then(|| openssl_probe::probe().cert_file)
                .flatten()
                .and_then(|file| CertificateDer::pem_file_iter(&file).ok())
                .map(|certs| certs.filter_map(Result::ok).collect::<Vec<_>>())
                .filter(|certs| !certs.is_empty());
            Arc::new(bundle.unwrap_or_else(|| {
                let native = rustls_native_certs::load_native_certs();
                if native.certs.is_empty() {
                    tracing::debug!("no system root certificates found: {:?}", native.errors);
                }
                native.certs
            }))
        })
        .clone()
}

impl Trust {
    /// The system's roots (read when first needed) and the certificates in `ca_files`.
    pub(crate) fn new(ca_files: &[PathBuf], skip_verify: bool) -> Result<Trust, RegistryError> {
        let mut configured = Vec::new();
        for path in ca_files {
            let certs = read_pem_certificates(path)?;
            if certs.is_empty() {
                return Err(config_error(format!("{} holds no PEM certificate", path.display())));
            }
            configured.extend(certs);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Trust::over(provider, configured, skip_verify)
    }

    /// A trust over `configured`, each of which is checked to be usable now, so a bad
    /// `--ca-cert-path` fails before anything is contacted.
    fn over(
        provider: Arc<CryptoProvider>,
        configured: Vec<CertificateDer<'static>>,
        skip_verify: bool,
    ) -> Result<Trust, RegistryError> {
        let mut usable = RootCertStore::empty();
        for cert in &configured {
            usable
                .add(cert.clone())
                .map_err(|e| config_error(format!("a configured CA certificate is not usable: {e}")))?;
        }
        let checks = Arc::new(OnFirstUse {
            provider: provider.clone(),
            configured: configured.clone(),
            built: OnceLock::new(),
        });
        Ok(Trust {
            provider,
            configured,
            skip_verify,
            checks,
        })
    }

    /// This trust and `more` configured certificates (a registry's `certs.d`).
    pub(crate) fn with(&self, more: Vec<CertificateDer<'static>>) -> Result<Trust, RegistryError> {
        let mut configured = self.configured.clone();
        configured.extend(more);
        Trust::over(self.provider.clone(), configured, self.skip_verify)
    }

    /// A rustls configuration with this trust, offering HTTP/2 (ALPN `h2`) before HTTP/1.1
    /// when `h2`, else HTTP/1.1 alone.
    pub(crate) fn client_config(&self, h2: bool) -> Result<rustls::ClientConfig, RegistryError> {
        let verifier: Arc<dyn ServerCertVerifier> = match self.skip_verify {
            true => Arc::new(AnyCertificate(self.provider.clone())),
            false => self.checks.clone(),
        };
        let mut config = rustls::ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_error(format!("cannot set up TLS: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        config.alpn_protocols = match h2 {
            true => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            false => vec![b"http/1.1".to_vec()],
        };
        Ok(config)
    }
}

/// Certificate checks (webpki with the system's roots and the configured certificates, and
/// the configured self-signed case) built when the first certificate is to be checked: a run
/// that meets none (registries over plain HTTP, whose TLS attempt fails before any
/// certificate) never reads the system's roots. Signatures are checked with the provider's
/// algorithms, as webpki checks them, with no roots needed.
struct OnFirstUse {
    provider: Arc<CryptoProvider>,
    configured: Vec<CertificateDer<'static>>,
    built: OnceLock<Arc<PinnedOrWebPki>>,
}

impl OnFirstUse {
    fn verifier(&self) -> Result<Arc<PinnedOrWebPki>, rustls::Error> {
        if let Some(built) = self.built.get() {
            return Ok(built.clone());
        }
        let mut roots = RootCertStore::empty();
        // system stores often hold a few certificates webpki cannot parse: skipped, as
        // reqwest does
        let (_, unparsable) = roots.add_parsable_certificates(system_roots().iter().cloned());
        if unparsable > 0 {
            tracing::debug!("{unparsable} system root certificate(s) could not be parsed");
        }
        for cert in &self.configured {
            roots.add(cert.clone())?;
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
            .build()
            .map_err(|e| rustls::Error::General(format!("cannot set up certificate checks: {e}")))?;
        let built = Arc::new(PinnedOrWebPki {
            webpki,
            configured: self.configured.clone(),
        });
        Ok(self.built.get_or_init(|| built).clone())
    }
}

impl fmt::Debug for OnFirstUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnFirstUse")
            .field("configured", &self.configured.len())
            .field("built", &self.built.get().is_some())
            .finish()
    }
}

impl ServerCertVerifier for OnFirstUse {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verifier()?
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

fn config_error(detail: String) -> RegistryError {
    RegistryError::Config { detail }
}

/// Every PEM certificate in the file at `path`.
fn read_pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, RegistryError> {
    let pem = std::fs::read(path)
        .map_err(|e| config_error(format!("cannot read CA certificate file {}: {e}", path.display())))?;
    CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| config_error(format!("{} holds no usable PEM certificate: {e}", path.display())))
}

/// skopeo's per-registry folders, searched in this order; the first holding a folder named
/// after the registry (`HOST` or `HOST:PORT`) is used.
pub(crate) fn standard_certs_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        dirs.push(PathBuf::from(home).join(".config/containers/certs.d"));
    }
    dirs.push(PathBuf::from("/etc/containers/certs.d"));
    dirs.push(PathBuf::from("/etc/docker/certs.d"));
    dirs
}

/// The CA certificates of `registry` (as references name it) from the first of `dirs` with a
/// folder for it: every `*.crt` file there, as skopeo and Docker read them. Client
/// certificates (`*.cert` with `*.key`) are not used; a warning says so.
pub(crate) fn registry_certificates(
    dirs: &[PathBuf],
    registry: &str,
) -> Result<Vec<CertificateDer<'static>>, RegistryError> {
    let Some(dir) = dirs.iter().map(|d| d.join(registry)).find(|d| d.is_dir()) else {
        return Ok(Vec::new());
    };
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| config_error(format!("cannot read {}: {e}", dir.display())))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    names.sort();
    let mut certs = Vec::new();
    for path in names {
        match path.extension().and_then(|e| e.to_str()) {
            Some("crt") => {
                certs.extend(read_pem_certificates(&path)?);
                tracing::debug!("{registry}: trusting the certificates in {}", path.display());
            }
            Some("cert") => tracing::warn!(
                "{registry}: client certificate {} is not used (not supported)",
                path.display()
            ),
            _ => {}
        }
    }
    Ok(certs)
}

/// webpki's verdict, except for a configured certificate presented as the server's own.
#[derive(Debug)]
struct PinnedOrWebPki {
    webpki: Arc<WebPkiServerVerifier>,
    configured: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for PinnedOrWebPki {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(e) if is_ca_used_as_end_entity(&e) && self.configured.iter().any(|c| c == end_entity) => {
                verify_configured(end_entity, server_name, now)
            }
            verdict => verdict,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// webpki refused a CA certificate in the server's place.
fn is_ca_used_as_end_entity(error: &rustls::Error) -> bool {
    match error {
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => matches!(
            other.0.downcast_ref::<webpki::Error>(),
            Some(webpki::Error::CaUsedAsEndEntity)
        ),
        _ => false,
    }
}

/// The checks left for a certificate trusted because it is configured: its validity period
/// and the server's name.
fn verify_configured(
    cert: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<ServerCertVerified, rustls::Error> {
    let (not_before, not_after) = validity(cert.as_ref()).ok_or(CertificateError::BadEncoding)?;
    let since_epoch = |secs: u64| UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs));
    if now.as_secs() < not_before {
        return Err(CertificateError::NotValidYetContext {
            time: now,
            not_before: since_epoch(not_before),
        }
        .into());
    }
    if now.as_secs() > not_after {
        return Err(CertificateError::ExpiredContext {
            time: now,
            not_after: since_epoch(not_after),
        }
        .into());
    }
    webpki::EndEntityCert::try_from(cert)
        .map_err(|_| CertificateError::BadEncoding)?
        .verify_is_valid_for_subject_name(server_name)
        .map_err(|_| CertificateError::NotValidForName)?;
    Ok(ServerCertVerified::assertion())
}

/// `notBefore` and `notAfter` of a DER certificate, in seconds since the epoch:
/// `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber,
/// signature, issuer, validity SEQUENCE { notBefore, notAfter }, … }, … }`.
fn validity(der: &[u8]) -> Option<(u64, u64)> {
    let (certificate, _) = element(der, 0x30)?;
    let (tbs, _) = element(certificate, 0x30)?;
    let mut rest = tbs;
    if rest.first() == Some(&0xa0) {
        rest = element(rest, 0xa0)?.1;
    }
    for tag in [0x02, 0x30, 0x30] {
        rest = element(rest, tag)?.1; // serial number, signature algorithm, issuer
    }
    let (validity, _) = element(rest, 0x30)?;
    let (not_before, rest) = time(validity)?;
    let (not_after, _) = time(rest)?;
    Some((not_before, not_after))
}

/// The contents of the DER element with `tag` at the start of `input`, and what follows it.
fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&len, mut rest) = rest.split_first()?;
    let len = if len < 0x80 {
        usize::from(len)
    } else {
        let n = usize::from(len & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, after) = rest.split_at(n);
        rest = after;
        bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// A UTCTime (`YYMMDDHHMMSSZ`, years 1950–2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`), in
/// seconds since the epoch, and what follows it.
fn time(input: &[u8]) -> Option<(u64, &[u8])> {
    let (text, rest, year) = match input.first()? {
        0x17 => {
            let (text, rest) = element(input, 0x17)?;
            let yy = digits(text.get(..2)?)?;
            (text.get(2..)?, rest, if yy >= 50 { 1900 + yy } else { 2000 + yy })
        }
        0x18 => {
            let (text, rest) = element(input, 0x18)?;
            (text.get(4..)?, rest, digits(text.get(..4)?)?)
        }
        _ => return None,
    };
    if year == 0 || text.len() != 11 || text[10] != b'Z' {
        return None;
    }
    let field = |i: usize| digits(&text[i..i + 2]);
    let (month, day, hour, minute, second) = (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + (hour * 3_600 + minute * 60 + second) as i64;
    // before 1970: as early as a Unix time goes
    Some((seconds.max(0) as u64, rest))
}

fn digits(text: &[u8]) -> Option<u64> {
    text.iter().try_fold(0u64, |acc, b| {
        b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
    })
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar, years 1 to 9999
/// (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: u64, month: u64, day: u64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year } as i64;
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `--skip-tls-verify`: any certificate is accepted; the handshake's signatures are still
/// checked against the certificate presented.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `openssl req -x509 -days 30 -subj /CN=registry.test -addext
    /// subjectAltName=DNS:registry.test,IP:127.0.0.1` (CA:TRUE), valid from 1796274194 to
    /// 1798866194.
    const SELF_SIGNED: &str = "-----BEGIN CERTIFICATE-----
MIIBpTCCAUugAwIBAgIUAQIIwag3+L/zLN2P12Gzoix9jH4wCgYIKoZIzj0EAwIw
GDEWMBQGA1UEAwwNcmVnaXN0cnkudGVzdDAeFw0yNjEyMDMwNTAzMTRaFw0yNzAx
MDIwNTAzMTRaMBgxFjAUBgNVBAMMDXJlZ2lzdHJ5LnRlc3QwWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAAS8KrKBye3vEk6QNuxw4Kvs1M9o+UzJldrz9jNbEoNpx+23
cK8i1en+iFReCNA/FgoFqIY7z1tSMaf/b4NMEp+xo3MwcTAdBgNVHQ4EFgQUVm/L
rGfxQr8zpjATlhX8xnv6G8EwHwYDVR0jBBgwFoAUVm/LrGfxQr8zpjATlhX8xnv6
G8EwDwYDVR0TAQH/BAUwAwEB/zAeBgNVHREEFzAVgg1yZWdpc3RyeS50ZXN0hwR/
AAABMAoGCCqGSM49BAMCA0gAMEUCIQCwVeSsPYPMkpA6rtBqWUdlVKz3Gh3EGNV5
+isLgPTEDwIgDWZKjiijDfLiB1UWWXSktraRjbegaOYPuiAzKzT0Kv4=
-----END CERTIFICATE-----";
    const NOT_BEFORE: u64 = 1_796_274_194;
    const NOT_AFTER: u64 = 1_798_866_194;

    fn self_signed() -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(SELF_SIGNED.as_bytes()).unwrap()
    }

    fn at(secs: u64) -> UnixTime {
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs))
    }

    fn name(s: &str) -> ServerName<'static> {
        ServerName::try_from(s.to_string()).unwrap()
    }

    #[test]
    fn the_validity_of_a_real_certificate_is_read() {
        assert_eq!(validity(self_signed().as_ref()), Some((NOT_BEFORE, NOT_AFTER)));
        assert_eq!(validity(&self_signed().as_ref()[..100]), None, "cut short");
    }

    #[test]
    fn webpki_refuses_it_as_ca_used_as_end_entity() {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots.add(self_signed()).unwrap();
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
        let e = webpki
            .verify_server_cert(&self_signed(), &[], &name("registry.test"), &[], at(NOT_BEFORE + 10))
            .unwrap_err();
        assert!(is_ca_used_as_end_entity(&e), "{e:?}");
        let pinned = PinnedOrWebPki {
            webpki,
            configured: vec![self_signed()],
        };
        let verify =
            |server: &str, now: u64| pinned.verify_server_cert(&self_signed(), &[], &name(server), &[], at(now));
        assert!(verify("registry.test", NOT_BEFORE + 10).is_ok());
        assert!(verify("127.0.0.1", NOT_BEFORE + 10).is_ok());
        assert_eq!(
            verify("other.test", NOT_BEFORE + 10).unwrap_err(),
            CertificateError::NotValidForName.into()
        );
        let expired = CertificateError::ExpiredContext {
            time: at(NOT_AFTER + 1),
            not_after: at(NOT_AFTER),
        };
        let early = CertificateError::NotValidYetContext {
            time: at(NOT_BEFORE - 1),
            not_before: at(NOT_BEFORE),
        };
        assert_eq!(
            verify("registry.test", NOT_AFTER + 1).unwrap_err(),
            expired.clone().into()
        );
        assert_eq!(
            verify("registry.test", NOT_BEFORE - 1).unwrap_err(),
            early.clone().into()
        );
        // webpki checks the dates before it finds a CA; the checks of our own hold too
        let ours = |server: &str, now: u64| verify_configured(&self_signed(), &name(server), at(now));
        assert!(ours("registry.test", NOT_BEFORE).is_ok());
        assert_eq!(ours("registry.test", NOT_AFTER + 1).unwrap_err(), expired.into());
        assert_eq!(ours("registry.test", NOT_BEFORE - 1).unwrap_err(), early.into());
        assert_eq!(
            ours("other.test", NOT_BEFORE).unwrap_err(),
            CertificateError::NotValidForName.into()
        );
        // not configured: webpki's verdict stands
        let unpinned = PinnedOrWebPki {
            webpki: pinned.webpki.clone(),
            configured: Vec::new(),
        };
        assert!(unpinned
            .verify_server_cert(&self_signed(), &[], &name("registry.test"), &[], at(NOT_BEFORE + 10))
            .is_err());
    }

    #[test]
    fn dates_count_from_the_epoch() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }

    #[test]
    fn both_time_forms_are_read() {
        let utc = [&[0x17, 13][..], b"491231235959Z"].concat();
        assert_eq!(time(&utc).map(|t| t.0), Some(2_524_607_999), "49 is 2049");
        let utc = [&[0x17, 13][..], b"500101000000Z"].concat();
        assert_eq!(time(&utc).map(|t| t.0), Some(0), "1950, before the epoch");
        let generalized = [&[0x18, 15][..], b"20240229120000Z"].concat();
        assert_eq!(time(&generalized).map(|t| t.0), Some(19_782 * 86_400 + 12 * 3_600));
        let local = [&[0x18, 15][..], b"20240229120000+"].concat();
        assert_eq!(time(&local), None, "only Z, as RFC 5280 requires");
    }
}
