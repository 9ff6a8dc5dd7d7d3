//! Which images a bundle relocates, and in which order.

use super::error::BundleError;
use super::model::{Bundle, BundleImage};
use crate::reference::{Digest, Reference};

/// Image types that are relocated; an absent `imageType` means `oci`.
const RELOCATABLE_TYPES: &[&str] = &["oci", "docker"];

/// One distinct image string of the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleImageRef {
    /// The bundle's raw `image` string: the key of the relocation mapping.
    pub raw: String,
    /// `raw` parsed and normalised.
    pub reference: Reference,
    /// The digest the copied manifest must have: the reference's digest, else `contentDigest`.
    pub expected_digest: Option<Digest>,
    /// Where the bundle declares it, e.g. `invocationImages[0]`, `images.web`.
    pub declared_by: Vec<String>,
}

/// Invocation images in array order, then `images` sorted by key; equal strings once.
pub fn select_images(bundle: &Bundle) -> Result<Vec<BundleImageRef>, BundleError> {
    let invocation = bundle.invocation_images.as_deref().unwrap_or_default();
    if invocation.is_empty() {
        return Err(BundleError::NoInvocationImage);
    }
    let declared: Vec<(String, &BundleImage)> = invocation
        .iter()
        .enumerate()
        .map(|(i, img)| (format!("invocationImages[{i}]"), img))
        .chain(
            bundle
                .images
                .iter()
                .flatten()
                .map(|(key, img)| (format!("images.{key}"), img)),
        )
        .collect();

    // every image is checked, and every problem reported, before anything happens
    let mut problems = Vec::new();
    let mut out: Vec<BundleImageRef> = Vec::new();
    for (at, img) in declared {
        let ty = img.image_type.as_deref().unwrap_or("oci");
        if !RELOCATABLE_TYPES.contains(&ty) {
            problems.push(BundleError::UnsupportedImageType {
                at: at.clone(),
                image: img.image.clone(),
                image_type: ty.to_string(),
            });
            continue;
        }
        match checked(&at, img) {
            Ok(image) => {
                if let Err(e) = add(&mut out, image) {
                    problems.push(e);
                }
            }
            Err(e) => problems.push(e),
        }
    }
    match problems.len() {
        0 => {}
        1 => return Err(problems.remove(0)),
        _ => return Err(BundleError::Several(problems)),
    }
    Ok(out)
}

/// One declared image, its reference and pins checked.
fn checked(at: &str, img: &BundleImage) -> Result<BundleImageRef, BundleError> {
    let reference = Reference::parse_normalized(&img.image).map_err(|source| BundleError::InvalidImage {
        at: at.to_string(),
        source,
    })?;
    let content_digest = match img.content_digest.as_deref() {
        None | Some("") => None,
        Some(d) => Some(
            d.parse::<Digest>()
                .map_err(|source| BundleError::InvalidContentDigest {
                    at: at.to_string(),
                    source,
                })?,
        ),
    };
    if let (Some(in_ref), Some(declared)) = (reference.digest(), &content_digest) {
        if in_ref != declared {
            tracing::warn!(
                "{at}: image {} pins {in_ref} but contentDigest is {declared}; the reference's digest is used",
                img.image
            );
        }
    }
    Ok(BundleImageRef {
        raw: img.image.clone(),
        expected_digest: reference.digest().cloned().or(content_digest),
        reference,
        declared_by: vec![at.to_string()],
    })
}

/// Adds `image` to `out`, or merges it with the same image string declared earlier; two
/// declarations pinning different digests are an error.
fn add(out: &mut Vec<BundleImageRef>, image: BundleImageRef) -> Result<(), BundleError> {
    let Some(seen) = out.iter_mut().find(|e| e.raw == image.raw) else {
        out.push(image);
        return Ok(());
    };
    match (&seen.expected_digest, &image.expected_digest) {
        (Some(a), Some(b)) if a != b => {
            return Err(BundleError::ConflictingDigests {
                image: image.raw.clone(),
                first: format!("{} ({a})", seen.declared_by[0]),
                second: format!("{} ({b})", image.declared_by[0]),
            })
        }
        (None, Some(_)) => seen.expected_digest = image.expected_digest,
        _ => {}
    }
    seen.declared_by.extend(image.declared_by);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(json: &str) -> Bundle {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn invocation_images_first_then_images_by_key_and_equal_strings_once() {
        let b = bundle(
            r#"{"invocationImages":[{"image":"z/inv:1"},{"image":"a/inv:2"}],
                "images":{"b":{"image":"shared:1","imageType":"docker"},"a":{"image":"x/a"},
                          "c":{"image":"shared:1","contentDigest":"sha256:4d41eeb38fb14266b7c0461ef1ef0b2f8c05f41cd544987a259a9d92cdad2540"},
                          "d":{"image":"docker.io/library/shared:1"}},
                "unknownField":{"kept":"ignored"}}"#,
        );
        let imgs = select_images(&b).unwrap();
        let raws: Vec<&str> = imgs.iter().map(|i| i.raw.as_str()).collect();
        assert_eq!(
            raws,
            ["z/inv:1", "a/inv:2", "x/a", "shared:1", "docker.io/library/shared:1"]
        );
        assert_eq!(imgs[3].declared_by, ["images.b", "images.c"]);
        assert!(
            imgs[3].expected_digest.is_some(),
            "contentDigest of a later declaration is kept"
        );
        assert_eq!(imgs[3].reference, imgs[4].reference, "separate keys, equivalent values");
    }

    #[test]
    fn reference_digest_wins_over_content_digest() {
        let d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
        let d2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
        let b = bundle(&format!(
            r#"{{"invocationImages":[{{"image":"a@{d1}","contentDigest":"{d2}"}}]}}"#
        ));
        assert_eq!(
            select_images(&b).unwrap()[0]
                .expected_digest
                .as_ref()
                .unwrap()
                .to_string(),
            d1
        );
    }

    #[test]
    fn conflicting_content_digests_for_one_string_are_an_error() {
        let b = bundle(
            r#"{"invocationImages":[{"image":"a:1","contentDigest":"sha256:1111111111111111111111111111111111111111111111111111111111111111"}],
                "images":{"x":{"image":"a:1","contentDigest":"sha256:2222222222222222222222222222222222222222222222222222222222222222"}}}"#,
        );
        let e = select_images(&b).unwrap_err().to_string();
        assert!(e.contains("invocationImages[0]") && e.contains("images.x"), "{e}");
    }

    #[test]
    fn unsupported_type_is_found_before_bad_references() {
        let b =
            bundle(r#"{"invocationImages":[{"image":"NOT VALID"}],"images":{"w":{"image":"w","imageType":"wasm"}}}"#);
        let e = select_images(&b).unwrap_err().to_string();
        assert!(e.contains("images.w") && e.contains("\"wasm\""), "{e}");
    }
}
