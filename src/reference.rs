//! Image references and digests: the docker/distribution v2.7 `reference` grammar and
//! `ParseNormalizedNamed` normalisation, hand-written so every error can say
//! exactly which part of the input is wrong.

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;

/// Registry host that names without a domain resolve to.
pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// Longest allowed normalised name (domain + "/" + path), as in distribution.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;
const TAG_LENGTH_MAX: usize = 128;

/// Why a reference or digest was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceError {
    /// An image reference that does not follow the grammar.
    #[error("invalid image reference \"{input}\": {reason}")]
    Invalid {
        /// The reference as given.
        input: String,
        /// Which part is wrong, and why.
        reason: String,
    },
    /// A digest that is not `ALGORITHM:HEX` with a supported algorithm and lower-case hex of
    /// the right length.
    #[error("invalid digest \"{input}\": {reason}")]
    InvalidDigest {
        /// The digest as given.
        input: String,
        /// Why it is rejected.
        reason: String,
    },
}

fn invalid(input: &str, reason: impl Into<String>) -> ReferenceError {
    ReferenceError::Invalid {
        input: input.to_string(),
        reason: reason.into(),
    }
}

/// Content digest algorithms a registry accepts (go-digest's registered set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256 (`sha256`).
    Sha256,
    /// SHA-384 (`sha384`).
    Sha384,
    /// SHA-512 (`sha512`).
    Sha512,
}

impl Algorithm {
    /// The name written before the `:` of a digest (`sha256`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha384 => "sha384",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha384 => 96,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A validated content digest such as `sha256:4d41…` (lower-case hex of the right length).
///
/// ```
/// use cnab_relocate::reference::Digest;
///
/// let d = Digest::sha256_of(b"");
/// assert_eq!(d.to_string(), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
/// assert_eq!(d.to_string().parse::<Digest>(), Ok(d));
/// assert!("sha256:E3B0".parse::<Digest>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    /// The hash algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lower-case hex after the `:`.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The sha256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        Digest {
            algorithm: Algorithm::Sha256,
            hex: hex_string(&sha2::Sha256::digest(bytes)),
        }
    }

    /// A fresh incremental hasher of this digest's algorithm, to check streamed content.
    pub fn hasher(&self) -> Hasher {
        Hasher::new(self.algorithm)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

impl FromStr for Digest {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| ReferenceError::InvalidDigest {
            input: s.to_string(),
            reason: reason.to_string(),
        };
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| bad("expected ALGORITHM:HEX, e.g. sha256:<64 hex characters>"))?;
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha384" => Algorithm::Sha384,
            "sha512" => Algorithm::Sha512,
            _ => return Err(bad("unsupported algorithm (sha256, sha384 or sha512)")),
        };
        if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad("the hex part must be lower-case hexadecimal"));
        }
        if hex.len() != algorithm.hex_len() {
            return Err(bad(&format!(
                "{} needs {} hex characters, found {}",
                algorithm.name(),
                algorithm.hex_len(),
                hex.len()
            )));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Incremental hasher for any supported digest algorithm.
#[derive(Clone)]
pub enum Hasher {
    /// A SHA-256 hasher.
    Sha256(sha2::Sha256),
    /// A SHA-384 hasher.
    Sha384(sha2::Sha384),
    /// A SHA-512 hasher.
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// A fresh hasher for `algorithm`.
    pub fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    /// Feeds `data` to the hasher.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> Digest {
        let (algorithm, hex) = match self {
            Hasher::Sha256(h) => (Algorithm::Sha256, hex_string(&h.finalize())),
            Hasher::Sha384(h) => (Algorithm::Sha384, hex_string(&h.finalize())),
            Hasher::Sha512(h) => (Algorithm::Sha512, hex_string(&h.finalize())),
        };
        Digest { algorithm, hex }
    }
}

pub(crate) fn hex_string(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0xf) as usize] as char);
    }
    s
}

/// A manifest in a repository, named by tag or by digest (`repo:tag` / `repo@digest`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ManifestSelector {
    /// A tag, such as `1.0`.
    Tag(String),
    /// A content digest.
    Digest(Digest),
}

impl ManifestSelector {
    /// `repository:tag` or `repository@digest`.
    pub fn in_repository(&self, repository: &str) -> String {
        match self {
            ManifestSelector::Tag(t) => format!("{repository}:{t}"),
            ManifestSelector::Digest(d) => format!("{repository}@{d}"),
        }
    }
}

/// The tag or the digest alone: the last segment of a `/v2/<name>/manifests/<selector>` URL.
impl fmt::Display for ManifestSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestSelector::Tag(t) => f.write_str(t),
            ManifestSelector::Digest(d) => write!(f, "{d}"),
        }
    }
}

/// A normalised image reference: `domain/path[:tag][@digest]`.
///
/// `Display` prints the normalised form (`ubuntu` → `docker.io/library/ubuntu`); no tag is
/// added when none is given.
///
/// ```
/// use cnab_relocate::reference::{ManifestSelector, Reference};
///
/// let r = Reference::parse_normalized("ubuntu:18.10")?;
/// assert_eq!(r.to_string(), "docker.io/library/ubuntu:18.10");
/// assert_eq!((r.domain(), r.path(), r.tag()), ("docker.io", "library/ubuntu", Some("18.10")));
/// assert_eq!(Reference::parse_normalized("ubuntu")?.to_string(), "docker.io/library/ubuntu");
///
/// let selector = ManifestSelector::Tag("1.0".into());
/// assert_eq!(selector.in_repository("team/app"), "team/app:1.0");
///
/// assert!(Reference::parse_normalized("Ubuntu").is_err(), "repository names are lower case");
/// # Ok::<(), cnab_relocate::reference::ReferenceError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalises like docker/distribution's `ParseNormalizedNamed`.
    pub fn parse_normalized(input: &str) -> Result<Reference, ReferenceError> {
        if input.is_empty() {
            return Err(invalid(input, "it is empty"));
        }
        if input.len() == 64 && input.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(invalid(
                input,
                "a 64-character hexadecimal string is an image ID, not a repository name",
            ));
        }
        let (domain, remainder) = split_docker_domain(input);
        let remote_name = remainder.split(':').next().unwrap_or_default();
        if remote_name.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(invalid(input, "the repository name must be lower case"));
        }
        Self::parse_parts(input, domain, &remainder)
    }

    /// A reference on the registry `domain` as written, its `remainder` (`path[:tag][@digest]`)
    /// taken verbatim: no `library/` is added (sync's locations name repositories exactly).
    pub fn in_registry(domain: &str, remainder: &str) -> Result<Reference, ReferenceError> {
        Self::parse_parts(&format!("{domain}/{remainder}"), domain, remainder)
    }

    /// Validates `domain` and `remainder` (`path[:tag][@digest]`), the two halves of a
    /// normalised reference.
    fn parse_parts(input: &str, domain: &str, remainder: &str) -> Result<Reference, ReferenceError> {
        validate_domain(domain).map_err(|why| invalid(input, why))?;
        let (rest, digest) = match remainder.split_once('@') {
            Some((rest, d)) => {
                let digest = d.parse::<Digest>().map_err(|e| match e {
                    ReferenceError::InvalidDigest { reason, .. } => {
                        invalid(input, format!("bad digest \"{d}\": {reason}"))
                    }
                    other => other,
                })?;
                (rest, Some(digest))
            }
            None => (remainder, None),
        };
        let (path, tag) = match rest.split_once(':') {
            Some((p, t)) => (p, Some(t)),
            None => (rest, None),
        };
        if path.is_empty() {
            return Err(invalid(input, "the repository path is empty"));
        }
        for component in path.split('/') {
            validate_path_component(component).map_err(|why| invalid(input, why))?;
        }
        if let Some(tag) = tag {
            validate_tag(tag).map_err(|why| invalid(input, why))?;
        }
        let name_len = domain.len() + 1 + path.len();
        if name_len > NAME_TOTAL_LENGTH_MAX {
            return Err(invalid(
                input,
                format!(
                    "the repository name is {name_len} characters long; at most {NAME_TOTAL_LENGTH_MAX} are allowed"
                ),
            ));
        }
        Ok(Reference {
            domain: domain.to_string(),
            path: path.to_string(),
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// Registry host, possibly with port (`docker.io`, `localhost:5000`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Repository path within the registry (`library/ubuntu`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag, if any (`18.10`).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The normalised name without tag or digest (`docker.io/library/ubuntu`).
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The same reference with the given tag and digest.
    pub fn with_tag_and_digest(&self, tag: Option<&str>, digest: Option<&Digest>) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: tag.map(str::to_string),
            digest: digest.cloned(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse_normalized(s)
    }
}

/// distribution's `splitDockerDomain`: the first element is a domain only when it looks like
/// one (has `.` or `:`, or is `localhost`); Docker Hub names get `library/` when single.
fn split_docker_domain(name: &str) -> (&str, String) {
    let (mut domain, remainder) = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (first, rest),
        _ => (DEFAULT_DOMAIN, name),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN;
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        return (domain, format!("{OFFICIAL_REPO_PREFIX}{remainder}"));
    }
    (domain, remainder.to_string())
}

/// True when `host` could be the domain part of a name (see [`split_docker_domain`]).
pub(crate) fn looks_like_domain(first_element: &str) -> bool {
    first_element.contains(['.', ':']) || first_element == "localhost"
}

/// `domain-component ("." domain-component)* [":" port-number]`; IPv6 literals do not match.
pub(crate) fn validate_domain(domain: &str) -> Result<(), String> {
    let (host, port) = match domain.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (domain, None),
    };
    if domain.starts_with('[') {
        return Err(format!(
            "registry host \"{domain}\": IPv6 address literals are not supported"
        ));
    }
    let component_ok = |c: &str| {
        let b = c.as_bytes();
        !b.is_empty()
            && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
    };
    if !host.split('.').all(component_ok) {
        return Err(format!(
            "registry host \"{domain}\" is not a valid host name (letters, digits, '-' and '.')"
        ));
    }
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "registry host \"{domain}\" has an invalid port \"{port}\" (digits only)"
            ));
        }
    }
    Ok(())
}

/// `[a-z0-9]+ ( ( "." | "_" | "__" | "-"* ) [a-z0-9]+ )*`
pub(crate) fn validate_path_component(component: &str) -> Result<(), String> {
    let why = |what: &str| format!("path component \"{component}\" {what}");
    if component.is_empty() {
        return Err("the repository path has an empty component (\"//\" or a trailing \"/\")".into());
    }
    let bytes = component.as_bytes();
    if let Some(bad) = bytes
        .iter()
        .find(|b| !matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
    {
        let c = *bad as char;
        if c.is_ascii_uppercase() {
            return Err(why("must be lower case"));
        }
        return Err(why(&format!(
            "contains '{}'; only a-z, 0-9 and the separators '.', '_', '__', '-' are allowed",
            c.escape_default()
        )));
    }
    let is_alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !is_alnum(&bytes[0]) || !is_alnum(&bytes[bytes.len() - 1]) {
        return Err(why("must start and end with a letter or digit"));
    }
    for sep in component.split(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        let ok = sep.is_empty() || sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return Err(why(&format!("has the invalid separator \"{sep}\"")));
        }
    }
    Ok(())
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
fn validate_tag(tag: &str) -> Result<(), String> {
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    let bytes = tag.as_bytes();
    if bytes.is_empty() {
        return Err("the tag after ':' is empty".into());
    }
    if bytes.len() > TAG_LENGTH_MAX {
        return Err(format!(
            "the tag is {} characters long; at most {TAG_LENGTH_MAX} are allowed",
            bytes.len()
        ));
    }
    if !word(&bytes[0]) {
        return Err(format!("tag \"{tag}\" must start with a letter, digit or '_'"));
    }
    if let Some(bad) = bytes.iter().find(|b| !(word(b) || **b == b'.' || **b == b'-')) {
        return Err(format!(
            "tag \"{tag}\" contains '{}'; only letters, digits, '_', '.' and '-' are allowed",
            (*bad as char).escape_default()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Reference {
        Reference::parse_normalized(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> String {
        match Reference::parse_normalized(s) {
            Ok(r) => panic!("{s} should be rejected, got {r}"),
            Err(e) => e.to_string(),
        }
    }

    /// (input, normalised, name, tag, digest) — conformance/names.tsv plus further examples.
    const NAMES: &[(&str, &str, &str, &str, &str)] = &[
        ("ubuntu", "docker.io/library/ubuntu", "docker.io/library/ubuntu", "", ""),
        (
            "ubuntu:18.10",
            "docker.io/library/ubuntu:18.10",
            "docker.io/library/ubuntu",
            "18.10",
            "",
        ),
        (
            "library/ubuntu",
            "docker.io/library/ubuntu",
            "docker.io/library/ubuntu",
            "",
            "",
        ),
        (
            "docker.io/library/ubuntu",
            "docker.io/library/ubuntu",
            "docker.io/library/ubuntu",
            "",
            "",
        ),
        (
            "index.docker.io/library/ubuntu",
            "docker.io/library/ubuntu",
            "docker.io/library/ubuntu",
            "",
            "",
        ),
        (
            "istio/proxyv2",
            "docker.io/istio/proxyv2",
            "docker.io/istio/proxyv2",
            "",
            "",
        ),
        ("localhost/foo", "localhost/foo", "localhost/foo", "", ""),
        (
            "foo:5000",
            "docker.io/library/foo:5000",
            "docker.io/library/foo",
            "5000",
            "",
        ),
        ("foo:5000/bar", "foo:5000/bar", "foo:5000/bar", "", ""),
        (
            "localhost:5000/a/b:v1",
            "localhost:5000/a/b:v1",
            "localhost:5000/a/b",
            "v1",
            "",
        ),
        (
            "index.docker.io/ubuntu",
            "docker.io/library/ubuntu",
            "docker.io/library/ubuntu",
            "",
            "",
        ),
        ("Example.COM/foo", "Example.COM/foo", "Example.COM/foo", "", ""),
        ("127.0.0.1:5000/x/y", "127.0.0.1:5000/x/y", "127.0.0.1:5000/x/y", "", ""),
        (
            "a/b:UPPER_tag",
            "docker.io/a/b:UPPER_tag",
            "docker.io/a/b",
            "UPPER_tag",
            "",
        ),
        (
            "a__b/c-d.e_f/g---h",
            "docker.io/a__b/c-d.e_f/g---h",
            "docker.io/a__b/c-d.e_f/g---h",
            "",
            "",
        ),
        (
            "deislabs/duffle@sha256:4d41eeb38fb14266b7c0461ef1ef0b2f8c05f41cd544987a259a9d92cdad2540",
            "docker.io/deislabs/duffle@sha256:4d41eeb38fb14266b7c0461ef1ef0b2f8c05f41cd544987a259a9d92cdad2540",
            "docker.io/deislabs/duffle",
            "",
            "sha256:4d41eeb38fb14266b7c0461ef1ef0b2f8c05f41cd544987a259a9d92cdad2540",
        ),
        (
            "r.io/p:t@sha256:4d41eeb38fb14266b7c0461ef1ef0b2f8c05f41cd544987a259a9d92cdad2540",
            "r.io/p:t@sha256:4d41eeb38fb14266b7c0461ef1ef0b2f8c05f41cd544987a259a9d92cdad2540",
            "r.io/p",
            "t",
            "sha256:4d41eeb38fb14266b7c0461ef1ef0b2f8c05f41cd544987a259a9d92cdad2540",
        ),
    ];

    #[test]
    fn normalises_conformance_names() {
        for (input, norm, name, tag, digest) in NAMES {
            let r = ok(input);
            assert_eq!(r.to_string(), *norm, "{input}");
            assert_eq!(r.name(), *name, "{input}");
            assert_eq!(r.tag().unwrap_or(""), *tag, "{input}");
            assert_eq!(
                r.digest().map(|d| d.to_string()).unwrap_or_default(),
                *digest,
                "{input}"
            );
            // the normalised form is a fixed point
            assert_eq!(ok(norm).to_string(), *norm);
        }
    }

    #[test]
    fn rejects_invalid_references_with_reasons() {
        assert!(err("").contains("empty"));
        assert!(err(&"a".repeat(64)).contains("image ID"));
        assert!(err("example.com/Foo").contains("lower case"));
        assert!(err("UPPER").contains("lower case"));
        assert!(
            err("Localhost/foo").contains("lower case"),
            "only exact localhost is a domain"
        );
        assert!(err("[::1]:5000/foo").contains("IPv6"));
        assert!(err("[fe80::1]/foo").contains("IPv6"));
        assert!(err("foo:5000:6000/bar").contains("port"));
        assert!(err("example.com:/foo").contains("port"));
        assert!(err("-bad.com/foo").contains("host"));
        assert!(err("bad_host.com/foo").contains("host"));
        assert!(err("foo//bar").contains("empty component"));
        assert!(err("foo/").contains("empty component"));
        assert!(err("foo/-bar").contains("start and end"));
        assert!(err("foo/a..b").contains("separator"));
        assert!(err("foo/a___b").contains("separator"));
        assert!(err("foo/a b").contains("' '"));
        assert!(err("foo:").contains("tag"));
        assert!(err("foo:.tag").contains("must start"));
        assert!(
            err("foo:a/b").contains("invalid port"),
            "first element with ':' is a domain"
        );
        assert!(err("foo@sha256:abc").contains("64 hex"));
        assert!(err("foo@md5:d41d8cd98f00b204e9800998ecf8427e").contains("unsupported"));
        assert!(err(&format!("foo@sha256:{}", "A".repeat(64))).contains("lower-case"));
        assert!(err("foo@").contains("digest"));
    }

    #[test]
    fn tag_length_limit_is_128() {
        let t128 = "t".repeat(128);
        assert_eq!(ok(&format!("foo:{t128}")).tag(), Some(t128.as_str()));
        assert!(err(&format!("foo:{}", "t".repeat(129))).contains("at most 128"));
    }

    #[test]
    fn name_length_limit_is_255_including_domain() {
        // "example.com/" is 12 characters
        let path243 = "a".repeat(243);
        assert_eq!(ok(&format!("example.com/{path243}")).name().len(), 255);
        let e = err(&format!("example.com/{}", "a".repeat(244)));
        assert!(e.contains("256 characters") && e.contains("at most 255"), "{e}");
        // the default domain counts too: docker.io/library/ + 237 = 255
        assert_eq!(ok(&"b".repeat(237)).name().len(), 255);
        assert!(err(&"b".repeat(238)).contains("at most 255"));
        // tags and digests do not count
        ok(&format!("example.com/{path243}:{}", "t".repeat(128)));
    }

    #[test]
    fn ports_and_localhost() {
        assert_eq!(ok("localhost:5000/foo").domain(), "localhost:5000");
        assert_eq!(ok("localhost/foo:1").domain(), "localhost");
        assert_eq!(ok("localhost").to_string(), "docker.io/library/localhost");
        assert_eq!(ok("localhost:5000").to_string(), "docker.io/library/localhost:5000");
        assert_eq!(ok("myhost:443/a").domain(), "myhost:443");
    }

    #[test]
    fn digest_parsing_and_hashing() {
        let d = Digest::sha256_of(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        for (alg, n) in [("sha256", 64), ("sha384", 96), ("sha512", 128)] {
            let s = format!("{alg}:{}", "0".repeat(n));
            assert_eq!(s.parse::<Digest>().unwrap().to_string(), s);
            assert!(format!("{alg}:{}", "0".repeat(n + 1)).parse::<Digest>().is_err());
        }
        let mut h = d.hasher();
        h.update(b"abc");
        assert_eq!(h.finish(), Digest::sha256_of(b"abc"));
        let mut h = Hasher::new(Algorithm::Sha512);
        h.update(b"");
        assert!(h.finish().to_string().starts_with("sha512:cf83e135"));
    }
}
