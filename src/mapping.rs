//! Path mapping of image-relocation's `FlattenRepoPathPreserveTagDigest`: every image
//! lands in one flat repository `PREFIX/<path joined by '-'>-<md5 of the original name>`.

use std::fmt;
use std::str::FromStr;

use md5::{Digest as _, Md5};

use crate::reference::{
    hex_string, looks_like_domain, validate_domain, validate_path_component, Reference, NAME_TOTAL_LENGTH_MAX,
};

/// A repository prefix that passed validation, e.g. `registry.internal.acme.com/smith`: a
/// registry host (optionally with a port), a repository path, or both; never a tag or digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryPrefix(String);

/// Why a repository prefix is rejected, or an image cannot be mapped under it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MappingError {
    /// The prefix is not a valid registry host and repository path.
    #[error("invalid repository prefix \"{prefix}\": {reason}")]
    InvalidPrefix {
        /// The prefix as given.
        prefix: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The name the mapping produces is not a valid reference, e.g. longer than 255 characters.
    #[error("repository prefix \"{prefix}\" cannot hold image \"{image}\": the relocated name \"{mapped}\" is not a valid reference ({reason})")]
    Unmappable {
        /// The prefix.
        prefix: String,
        /// The original image, normalised.
        image: String,
        /// The name the mapping produced.
        mapped: String,
        /// Why that name is not a valid reference.
        reason: String,
    },
}

impl RepositoryPrefix {
    /// The prefix exactly as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the prefix starts with a registry host; one without (`smith/apps`) means
    /// Docker Hub, as in duffle.
    pub fn names_registry(&self) -> bool {
        looks_like_domain(self.0.split('/').next().unwrap_or_default())
    }

    /// The prefix as the front of a name: `docker.io/` added when it has no host
    /// (`smith/apps` → `docker.io/smith/apps`), `library/` when it is only `docker.io`.
    pub fn normalized(&self) -> String {
        match Reference::parse_normalized(&format!("{}/x", self.0)) {
            Ok(r) => {
                let name = r.name();
                name[..name.len() - 2].to_string()
            }
            Err(_) => self.0.clone(),
        }
    }

    /// The registry the images go to, as references name it (`docker.io` for a prefix
    /// without a host).
    pub fn registry(&self) -> String {
        match Reference::parse_normalized(&format!("{}/x", self.0)) {
            Ok(r) => r.domain().to_string(),
            Err(_) => self.0.split('/').next().unwrap_or_default().to_string(),
        }
    }

    /// Length of the prefix once normalised as the front of a name.
    fn normalized_len(&self) -> usize {
        self.normalized().len()
    }
}

impl fmt::Display for RepositoryPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for RepositoryPrefix {
    type Err = MappingError;

    fn from_str(prefix: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| MappingError::InvalidPrefix {
            prefix: prefix.to_string(),
            reason,
        };
        if prefix.is_empty() {
            return Err(bad(
                "it is empty; give a registry host and path such as registry.example.com/team".into(),
            ));
        }
        if prefix.ends_with('/') {
            return Err(bad("it must not end with '/'".into()));
        }
        if prefix.starts_with('/') {
            return Err(bad("it must start with a registry host or a path, not '/'".into()));
        }
        if let Some((scheme, _)) = prefix.split_once("://") {
            let rest = &prefix[scheme.len() + 3..];
            let example = if rest.is_empty() {
                "registry.example.com/team"
            } else {
                rest
            };
            return Err(bad(format!(
                "drop the scheme \"{scheme}://\": a prefix is a registry host and path, such as {example}"
            )));
        }
        if prefix.contains("//") {
            return Err(bad("it must not contain \"//\"".into()));
        }
        let (host, path) = match prefix.split_once('/') {
            Some((first, rest)) if looks_like_domain(first) => (Some(first), rest),
            None if looks_like_domain(prefix) => (Some(prefix), ""),
            _ => (None, prefix),
        };
        if let Some(host) = host {
            validate_domain(host).map_err(bad)?;
            if let Some((_, port)) = host.split_once(':') {
                match port.parse::<u32>() {
                    Ok(1..=65535) => {}
                    _ => return Err(bad(format!("port \"{port}\" is not in 1..65535"))),
                }
            }
        }
        if let Some(c) = path.chars().find(|c| matches!(c, ':' | '@' | '"') || c.is_whitespace()) {
            return Err(bad(format!(
                "the repository path \"{path}\" after the host contains {c:?}; tags and digests come from the bundle, not the prefix"
            )));
        }
        if !path.is_empty() {
            for component in path.split('/') {
                validate_path_component(component).map_err(bad)?;
            }
        }
        Ok(RepositoryPrefix(prefix.to_string()))
    }
}

/// Maps `original` under `prefix`, keeping its tag and digest.
///
/// ```
/// use cnab_relocate::mapping::{map_reference, RepositoryPrefix};
/// use cnab_relocate::reference::Reference;
///
/// let prefix: RepositoryPrefix = "example.com/user".parse()?;
/// let original = Reference::parse_normalized("technosophos/helloworld:0.1.0")?;
/// assert_eq!(
///     map_reference(&prefix, &original)?.to_string(),
///     "example.com/user/technosophos-helloworld-6731e0d41b7fd5a24e14c853af93bd81:0.1.0"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn map_reference(prefix: &RepositoryPrefix, original: &Reference) -> Result<Reference, MappingError> {
    let name = original.name();
    let hash = hex_string(&Md5::digest(name.as_bytes()));
    // 34 = "/" + "-" + 32 hex; negative when the prefix alone is too long. Duffle's mapping rule
    // uses the length of the prefix as given; we use its normalised length (`myuser` → `docker.io/myuser`), which gives
    // the same result whenever duffle succeeds and fits names duffle would fail on.
    let available = NAME_TOTAL_LENGTH_MAX as isize - prefix.normalized_len() as isize - 34;
    let prefix = prefix.as_str();
    let components: Vec<&str> = original.path().split('/').collect();
    let parts = crunch(&components, available);
    let mapped = if parts.is_empty() {
        format!("{prefix}/{hash}")
    } else {
        format!("{prefix}/{}-{hash}", parts.join("-"))
    };
    let unmappable = |reason: String| MappingError::Unmappable {
        prefix: prefix.to_string(),
        image: original.to_string(),
        mapped: mapped.clone(),
        reason,
    };
    let named = Reference::parse_normalized(&mapped).map_err(|e| match e {
        crate::reference::ReferenceError::Invalid { reason, .. } => unmappable(reason),
        other => unmappable(other.to_string()),
    })?;
    if named.tag().is_some() || named.digest().is_some() {
        return Err(unmappable("the prefix must not carry a tag or digest".into()));
    }
    Ok(named.with_tag_and_digest(original.tag(), original.digest()))
}

/// Drops middle path components until the joined path fits in `size` characters.
fn crunch<'a>(components: &[&'a str], size: isize) -> Vec<&'a str> {
    let fits = |c: &[&str]| (c.join("-").len() as isize) <= size;
    for n in (1..=components.len()).rev() {
        let reduced = reduce(components, n);
        if fits(&reduced) {
            return reduced;
        }
    }
    match components.first() {
        Some(first) if first.len() as isize <= size => vec![first],
        _ => Vec::new(),
    }
}

/// Keeps the first `n - 1` components and the last one, marking the gap with "-".
fn reduce<'a>(components: &[&'a str], n: usize) -> Vec<&'a str> {
    if components.len() < 2 || components.len() <= n {
        return components.to_vec();
    }
    let last = components[components.len() - 1];
    if n < 2 {
        return vec![last];
    }
    let mut out = components[..n - 1].to_vec();
    out.push("-");
    out.push(last);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(s: &str) -> RepositoryPrefix {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn map(p: &str, r: &str) -> String {
        map_reference(&prefix(p), &Reference::parse_normalized(r).unwrap())
            .unwrap()
            .to_string()
    }

    #[test]
    fn accepts_valid_prefixes() {
        for p in [
            "example.com/user",
            "registry.internal.acme.com/smith",
            "my-registry-1:5000",
            "localhost",
            "localhost:5000/a/b",
            "myuser",
            "docker.io",
            "127.0.0.1:65535/x",
            "Registry.Example.com/team",
        ] {
            prefix(p);
        }
    }

    #[test]
    fn rejects_invalid_prefixes_naming_the_problem() {
        let cases = [
            ("", "empty"),
            ("example.com/user/", "end with '/'"),
            ("/user", "start"),
            ("example.com//user", "//"),
            ("example.com/user:tag", "':'"),
            ("example.com/user@sha256", "'@'"),
            ("example.com/us\"er", "'\"'"),
            ("example.com/us er", "' '"),
            ("example.com:0/user", "1..65535"),
            ("example.com:65536/user", "1..65535"),
            ("example.com:99999999999/user", "1..65535"),
            ("example.com:/user", "port"),
            ("exa_mple.com/user", "host"),
            ("-example.com/user", "host"),
            ("[::1]:5000/user", "IPv6"),
            ("example.com/User", "lower case"),
            ("example.com/a..b", "separator"),
            ("https://registry.example.com/x", "drop the scheme \"https://\""),
            ("http://localhost:5000", "such as localhost:5000"),
        ];
        for (p, needle) in cases {
            let e = p.parse::<RepositoryPrefix>().expect_err(p).to_string();
            assert!(e.contains(needle), "{p:?}: {e}");
            assert!(e.contains(&format!("\"{p}\"")), "names the prefix: {e}");
        }
    }

    #[test]
    fn prefix_without_domain_lands_on_docker_hub() {
        assert_eq!(
            map("myuser", "istio/proxyv2"),
            "docker.io/myuser/istio-proxyv2-f93a2cacc6cafa0474a2d6990a4dd1a0"
        );
        assert_eq!(
            map("docker.io", "istio/proxyv2"),
            "docker.io/library/istio-proxyv2-f93a2cacc6cafa0474a2d6990a4dd1a0"
        );
    }

    #[test]
    fn the_registry_a_prefix_names() {
        for (p, names, registry, normalized) in [
            ("smith/apps", false, "docker.io", "docker.io/smith/apps"),
            ("myuser", false, "docker.io", "docker.io/myuser"),
            ("docker.io", true, "docker.io", "docker.io/library"),
            ("localhost:5000/a", true, "localhost:5000", "localhost:5000/a"),
            ("example.com", true, "example.com", "example.com"),
            (
                "Registry.Example.com/team",
                true,
                "Registry.Example.com",
                "Registry.Example.com/team",
            ),
        ] {
            let p = prefix(p);
            assert_eq!(p.names_registry(), names, "{p}");
            assert_eq!(p.registry(), registry, "{p}");
            assert_eq!(p.normalized(), normalized, "{p}");
        }
    }

    #[test]
    fn readme_example_hash() {
        // conformance README: image-relocation's README shows c74d62dc… for this name; the real hash is a4d329c8…
        let d = "sha256:deadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeef";
        let m = map(
            "example.com/u",
            &format!("gcr.io/cf-elafros/knative-releases/github.com/knative/serving/cmd/autoscaler@{d}"),
        );
        assert_eq!(
            m,
            format!("example.com/u/cf-elafros-knative-releases-github.com-knative-serving-cmd-autoscaler-a4d329c86bb7cfab702ceb547f8aa927@{d}")
        );
    }

    #[test]
    fn too_long_prefix_fails_naming_prefix() {
        let long = format!("example.com/{}", "a".repeat(240));
        let p = prefix(&long);
        let r = Reference::parse_normalized("busybox").unwrap();
        let e = map_reference(&p, &r).unwrap_err().to_string();
        assert!(e.contains(&long) && e.contains("at most 255"), "{e}");
    }

    #[test]
    fn hub_prefix_length_counts_the_added_domain() {
        // 66 + 1 + 66 + 1 + 66 = 199 path characters; "myuser" (6) would leave 215 for them
        // but "docker.io/myuser" (16) leaves 205: the full path fits either way.
        let path = ["a".repeat(66), "b".repeat(66), "c".repeat(66)].join("/");
        let m = map("myuser", &format!("example.com/{path}"));
        assert!(m.starts_with("docker.io/myuser/aaa"), "{m}");
        // 212 path characters: fits "myuser"'s budget (215) but not the normalised one (205);
        // duffle maps to 262 characters and fails, we drop the middle component instead.
        let path = ["a".repeat(100), "b".repeat(10), "c".repeat(100)].join("/");
        let m = map("myuser", &format!("example.com/{path}"));
        assert!(m.len() <= 255 && m.contains("a---c") && !m.contains("bbb"), "{m}");
    }

    #[test]
    fn reduce_marks_the_gap() {
        assert_eq!(reduce(&["a", "b", "c", "d"], 3), vec!["a", "b", "-", "d"]);
        assert_eq!(reduce(&["a", "b", "c", "d"], 1), vec!["d"]);
        assert_eq!(reduce(&["a", "b"], 2), vec!["a", "b"]);
        assert_eq!(crunch(&["abc", "def"], 3), vec!["def"]);
        assert_eq!(crunch(&["abcd", "efgh"], 3), Vec::<&str>::new());
        assert_eq!(crunch(&["abc"], 3), vec!["abc"]);
        assert_eq!(crunch(&["abc", "d"], -5), Vec::<&str>::new());
    }
}
