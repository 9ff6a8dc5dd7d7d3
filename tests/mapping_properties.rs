//! Properties of the path mapping (SPEC §4) over generated references and prefixes.

use cnab_relocate::mapping::{map_reference, RepositoryPrefix};
use cnab_relocate::reference::Reference;
use proptest::prelude::*;

fn component() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9]{1,12}",
        "[a-z0-9]{1,6}(\\.|_|__|-{1,3})[a-z0-9]{1,6}",
        "[a-z0-9]{40,70}",
    ]
}

fn domain() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("docker.io".to_string()),
        Just("localhost:5000".to_string()),
        "[a-z][a-z0-9-]{0,10}[a-z0-9]\\.(com|io|internal)",
        "[a-z]{1,8}\\.[a-z]{2,5}:[1-9][0-9]{0,3}",
    ]
}

prop_compose! {
    fn name()(domain in domain(), path in prop::collection::vec(component(), 1..8)) -> String {
        format!("{domain}/{}", path.join("/"))
    }
}

fn prefix() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("example.com/user".to_string()),
        Just("myuser".to_string()),
        Just("registry.internal.acme.com:5443/a/b".to_string()),
        (domain(), prop::collection::vec(component(), 0..5)).prop_map(|(d, p)| {
            if p.is_empty() {
                d
            } else {
                format!("{d}/{}", p.join("/"))
            }
        }),
    ]
}

const DIGEST: &str = "sha256:4d41eeb38fb14266b7c0461ef1ef0b2f8c05f41cd544987a259a9d92cdad2540";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn hash_ignores_tag_and_digest(name in name(), prefix in prefix(), tag in "[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}") {
        let Ok(bare) = Reference::parse_normalized(&name) else { return Ok(()) };
        let prefix: RepositoryPrefix = prefix.parse().unwrap();
        let Ok(mapped) = map_reference(&prefix, &bare) else { return Ok(()) };
        for variant in [format!("{name}:{tag}"), format!("{name}@{DIGEST}"), format!("{name}:{tag}@{DIGEST}")] {
            let original = Reference::parse_normalized(&variant).unwrap();
            let m = map_reference(&prefix, &original).unwrap();
            prop_assert_eq!(m.name(), mapped.name());
            prop_assert_eq!(m.tag(), original.tag());
            prop_assert_eq!(m.digest(), original.digest());
        }
    }

    #[test]
    fn mapped_references_reparse_and_fit(name in name(), prefix in prefix()) {
        let Ok(original) = Reference::parse_normalized(&name) else { return Ok(()) };
        let prefix_s = prefix.clone();
        let prefix: RepositoryPrefix = prefix.parse().unwrap();
        match map_reference(&prefix, &original) {
            Ok(mapped) => {
                let s = mapped.to_string();
                let again = Reference::parse_normalized(&s).unwrap();
                prop_assert_eq!(again.to_string(), s.clone());
                prop_assert!(mapped.name().len() <= 255, "{}", s);
                prop_assert!(mapped.path().ends_with(&md5_hex(&original.name())));
            }
            Err(e) => {
                // only a prefix too long for any name may fail, and the error names it
                let msg = e.to_string();
                prop_assert!(msg.contains(&prefix_s), "{}", msg);
                // (a prefix too long to parse at all is longer than any budget)
                let normalized_prefix = Reference::parse_normalized(&format!("{prefix_s}/x"))
                    .map_or(prefix_s.len(), |r| r.name().len() - 2);
                prop_assert!(normalized_prefix + 34 > 255, "unexpected failure: {}", msg);
            }
        }
    }

    #[test]
    fn long_prefixes_fail_clearly_or_fit(n in 180usize..260, name in name(), hub in any::<bool>()) {
        let prefix_s = if hub { "p".repeat(n) } else { format!("example.com/{}", "p".repeat(n)) };
        let prefix: RepositoryPrefix = prefix_s.parse().unwrap();
        let Ok(original) = Reference::parse_normalized(&name) else { return Ok(()) };
        match map_reference(&prefix, &original) {
            Ok(m) => prop_assert!(m.name().len() <= 255),
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.contains(&prefix_s) && msg.contains("255"), "{}", msg);
            }
        }
    }
}

fn md5_hex(s: &str) -> String {
    use md5::Digest as _;
    md5::Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
