//! `platform: OS/ARCH[/VARIANT]` (SYNC.md §7): which child of an index a mapping takes.

use super::config::Platform;
use crate::oci::Descriptor;

/// The child of an index that `wanted` names: `os` and `architecture` must match, and the
/// variant when `wanted` gives one; without a variant, a child that has none is preferred,
/// then the first match in index order. `None` when no child matches.
pub fn choose_child<'a>(children: &'a [Descriptor], wanted: &Platform) -> Option<&'a Descriptor> {
    let matching = || {
        children.iter().filter(|c| {
            c.platform.as_ref().is_some_and(|p| {
                p.os == wanted.os
                    && p.architecture == wanted.architecture
                    && (wanted.variant.is_none() || p.variant == wanted.variant)
            })
        })
    };
    let without_variant = matching().find(|c| c.platform.as_ref().is_some_and(|p| p.variant.is_none()));
    match &wanted.variant {
        Some(_) => matching().next(),
        None => without_variant.or_else(|| matching().next()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(n: u8, platform: Option<(&str, &str, Option<&str>)>) -> Descriptor {
        let mut json = serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{}", format!("{n:02x}").repeat(32)),
            "size": 1,
        });
        if let Some((os, architecture, variant)) = platform {
            json["platform"] = serde_json::json!({"os": os, "architecture": architecture});
            if let Some(v) = variant {
                json["platform"]["variant"] = v.into();
            }
        }
        serde_json::from_value(json).unwrap()
    }

    fn chosen(children: &[Descriptor], wanted: &str) -> Option<usize> {
        let wanted: Platform = wanted.parse().unwrap();
        let c = choose_child(children, &wanted)?;
        children.iter().position(|d| std::ptr::eq(d, c))
    }

    #[test]
    fn os_and_architecture_must_match_and_the_variant_when_given() {
        let children = [
            child(1, Some(("linux", "amd64", None))),
            child(2, Some(("linux", "arm", Some("v6")))),
            child(3, Some(("linux", "arm", Some("v7")))),
            child(4, None),
            child(5, Some(("windows", "amd64", None))),
        ];
        assert_eq!(chosen(&children, "linux/amd64"), Some(0));
        assert_eq!(chosen(&children, "linux/arm/v7"), Some(2));
        assert_eq!(chosen(&children, "linux/arm/v6"), Some(1));
        assert_eq!(chosen(&children, "linux/arm/v8"), None);
        assert_eq!(chosen(&children, "windows/amd64"), Some(4));
        assert_eq!(chosen(&children, "linux/arm64"), None);
        assert_eq!(
            chosen(&children, "linux/amd64/v2"),
            None,
            "a variant asked for must be there"
        );
    }

    #[test]
    fn without_a_variant_one_without_is_preferred_then_index_order() {
        let children = [
            child(1, Some(("linux", "arm64", Some("v8")))),
            child(2, Some(("linux", "arm64", None))),
        ];
        assert_eq!(chosen(&children, "linux/arm64"), Some(1));
        let only_variants = [
            child(1, Some(("linux", "arm", Some("v7")))),
            child(2, Some(("linux", "arm", Some("v6")))),
        ];
        assert_eq!(chosen(&only_variants, "linux/arm"), Some(0));
    }
}
