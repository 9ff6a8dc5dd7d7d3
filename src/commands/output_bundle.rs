//! `--output-bundle FILE`: a copy of `bundle.json` whose relocated images name their new
//! place (`image` is the relocation mapping's value, `contentDigest` the digest copied), every
//! other key and value as it was, written in the canonical form CNAB signs.
//!
//! That form is what cnab-go's `Bundle.WriteTo` writes: `MarshalCanonical` of
//! `github.com/docker/go/canonical/json` (read in its `encode.go` and `encode_test.go`):
//!
//! * no whitespace between tokens, no trailing newline; object keys sorted by Go's string
//!   order, i.e. byte-wise on UTF-8 (this writer sorts them itself, whatever order the
//!   `serde_json` map keeps);
//! * strings: its canonical mode escapes only `"` and `\` (as `\"` and `\\`) and copies every
//!   other byte as it is: `<`, `>`, `&`, `/`, U+2028, U+2029 and all non-ASCII text stay
//!   literal (the `\u003c`-style and U+2028/U+2029 escapes belong to its non-canonical mode
//!   only). It copies control characters (U+0000–U+001F) raw as well, which is not JSON: Go's
//!   own decoder rejects such a string. Here they are escaped, as JSON requires, in the forms
//!   the same encoder uses outside canonical mode: `\n`, `\r`, `\t`, else `\u00xx` (lowercase
//!   hex). A bundle without control characters in its strings is written byte for byte as Go
//!   writes it;
//! * numbers: integers in decimal; a float with no fractional part is written as an integer
//!   (`1.0` → `1`, `1e3` → `1000`); a float with a fractional part makes canonical mode fail,
//!   so Go cannot write such a bundle at all. Here it keeps its shortest round-trip form
//!   (`0.5`) rather than failing a relocation whose images are already copied. Go reads every
//!   number of an untyped value as `float64` (so it rounds integers beyond 2^53 and wraps those
//!   beyond `int64`); here integers that fit 64 bits are kept exactly, larger ones are read as
//!   `f64` by `serde_json` and come back rounded.
//!
//! The test `byte_for_byte_what_docker_go_marshal_canonical_writes` holds what that package,
//! built with Go 1.19, wrote for a document with each of these cases.

use std::collections::BTreeMap;

use serde_json::{Number, Value};

/// Where one image of the bundle went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelocatedImage {
    /// The relocated reference: the relocation mapping's value for the image.
    pub reference: String,
    /// The digest of the manifest (or index) copied, e.g. `sha256:…`.
    pub digest: String,
}

/// The relocated `bundle.json` from the original's bytes and, keyed by each image's raw
/// `image` string, where it went. Only `invocationImages[].image` and `images.<key>.image`
/// found in `relocated` change (with their `contentDigest`, added or replaced); everything
/// else keeps its value (a leading byte order mark is dropped). Fails only when `original` is
/// not JSON `serde_json` can hold.
pub fn relocated_bundle_json(
    original: &[u8],
    relocated: &BTreeMap<String, RelocatedImage>,
) -> Result<Vec<u8>, serde_json::Error> {
    let mut bundle: Value = serde_json::from_slice(crate::bundle::without_bom(original))?;
    if let Value::Object(top) = &mut bundle {
        if let Some(Value::Array(invocation)) = top.get_mut("invocationImages") {
            invocation.iter_mut().for_each(|entry| relocate_entry(entry, relocated));
        }
        if let Some(Value::Object(images)) = top.get_mut("images") {
            images.values_mut().for_each(|entry| relocate_entry(entry, relocated));
        }
    }
    let mut out = Vec::with_capacity(original.len());
    write_canonical(&mut out, &bundle);
    Ok(out)
}

fn relocate_entry(entry: &mut Value, relocated: &BTreeMap<String, RelocatedImage>) {
    let Value::Object(fields) = entry else {
        return;
    };
    let Some(target) = fields
        .get("image")
        .and_then(Value::as_str)
        .and_then(|raw| relocated.get(raw))
    else {
        return;
    };
    let (reference, digest) = (target.reference.clone(), target.digest.clone());
    fields.insert("image".to_string(), Value::String(reference));
    fields.insert("contentDigest".to_string(), Value::String(digest));
}

/// `value` in canonical form (see the module's documentation).
fn write_canonical(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(out, item);
            }
            out.push(b']');
        }
        Value::Object(fields) => {
            let mut fields: Vec<(&String, &Value)> = fields.iter().collect();
            // `str`'s order is byte-wise, as Go's
            fields.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, value)) in fields.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(out, key);
                out.push(b':');
                write_canonical(out, value);
            }
            out.push(b'}');
        }
    }
}

fn write_number(out: &mut Vec<u8>, n: &Number) {
    match n.as_f64() {
        // integers exactly as read
        _ if n.is_i64() || n.is_u64() => out.extend_from_slice(n.to_string().as_bytes()),
        // Go: int64(f); `-0.0` becomes 0 as there
        Some(f) if f.fract() == 0.0 && f.abs() < 9_223_372_036_854_775_808.0 => {
            out.extend_from_slice((f as i64).to_string().as_bytes())
        }
        // beyond i64 Go's conversion overflows; Rust's `Display` gives the value's digits
        Some(f) if f.fract() == 0.0 => out.extend_from_slice(f.to_string().as_bytes()),
        // a fraction: no canonical form exists; serde_json's shortest round-trip form
        _ => out.extend_from_slice(n.to_string().as_bytes()),
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn write_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if short.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(short);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const D9: &str = "sha256:9999999999999999999999999999999999999999999999999999999999999999";

    fn canonical(json: &str) -> String {
        String::from_utf8(relocated_bundle_json(json.as_bytes(), &BTreeMap::new()).unwrap()).unwrap()
    }

    fn moved(pairs: &[(&str, &str, &str)]) -> BTreeMap<String, RelocatedImage> {
        pairs
            .iter()
            .map(|(raw, reference, digest)| {
                (
                    raw.to_string(),
                    RelocatedImage {
                        reference: reference.to_string(),
                        digest: digest.to_string(),
                    },
                )
            })
            .collect()
    }

    fn relocate(json: &str, pairs: &[(&str, &str, &str)]) -> Value {
        let out = relocated_bundle_json(json.as_bytes(), &moved(pairs)).unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn keys_sorted_byte_wise_at_every_level_and_no_whitespace() {
        let json = r#"{
            "z": 1, "a": {"y": [ {"b": 2, "a": 1} ], "B": null, "é": true, "e": false},
            "Z": "x", "_": [], "aa": {}, "a b": 0
        }"#;
        assert_eq!(
            canonical(json),
            r#"{"Z":"x","_":[],"a":{"B":null,"e":false,"y":[{"a":1,"b":2}],"é":true},"a b":0,"aa":{},"z":1}"#
        );
    }

    #[test]
    fn strings_escape_only_quote_backslash_and_control_characters() {
        // `<`, `>`, `&`, `/`, U+2028, U+2029, DEL and non-ASCII stay literal; `\/` and `\u0041`
        // in the input are only other spellings of `/` and `A`
        let json = r#"{"s":"<a href=\"x\">&amp;</a> \/ \u0041 \u2028\u2029 é 😀 \u007f \\ end"}"#;
        assert_eq!(
            canonical(json),
            "{\"s\":\"<a href=\\\"x\\\">&amp;</a> / A \u{2028}\u{2029} é 😀 \u{7f} \\\\ end\"}"
        );
        // control characters: the short forms Go uses, else \u00xx in lowercase hex
        let json = r#"{"c":"\n\r\t\b\f\u0000\u0001\u001f\u001B"}"#;
        assert_eq!(canonical(json), r#"{"c":"\n\r\t\u0008\u000c\u0000\u0001\u001f\u001b"}"#);
        // keys are strings too
        assert_eq!(canonical(r#"{"a\"b\n<":1}"#), r#"{"a\"b\n<":1}"#);
    }

    #[test]
    fn numbers_as_go_canonical_writes_them() {
        let json = r#"{"a":[0,-5,18446744073709551615,-9223372036854775808,1.0,-2.0,1e3,1E2,-0,-0.0,
                      100000000000000000000.0,0.5,-1.25,1e-7]}"#;
        assert_eq!(
            canonical(json),
            r#"{"a":[0,-5,18446744073709551615,-9223372036854775808,1,-2,1000,100,0,0,100000000000000000000,0.5,-1.25,1e-7]}"#
        );
    }

    #[test]
    fn canonical_output_is_a_fixed_point_and_parses_to_the_same_value() {
        let json = r#"{"b":[1,{"d":"\u0007<x>","c":[true,null]}],"a":"é\n"}"#;
        let once = canonical(json);
        assert_eq!(canonical(&once), once);
        assert_eq!(
            serde_json::from_str::<Value>(&once).unwrap(),
            serde_json::from_str::<Value>(json).unwrap()
        );
    }

    const BUNDLE: &str = r#"{
        "schemaVersion": "v1.0.0", "name": "app", "version": "1.0.0",
        "description": "a <b>bundle</b> & more",
        "invocationImages": [
            {"image": "tech/inv:1", "imageType": "docker", "size": 1234, "labels": {"k": "v"}},
            {"image": "other/inv:2", "contentDigest": "sha256:2222222222222222222222222222222222222222222222222222222222222222"}
        ],
        "images": {
            "web": {"image": "web:1", "contentDigest": "sha256:9999999999999999999999999999999999999999999999999999999999999999",
                    "description": "front", "mediaType": "application/vnd.oci.image.index.v1+json"},
            "again": {"image": "tech/inv:1"},
            "kept": {"image": "not/relocated:3", "contentDigest": "sha256:9999999999999999999999999999999999999999999999999999999999999999"}
        },
        "parameters": {"port": {"definition": "port", "destination": {"env": "PORT"}, "default": 8080}},
        "definitions": {"port": {"type": "integer", "minimum": 1, "maximum": 65535, "multipleOf": 0.5}},
        "credentials": {"kube": {"path": "/root/.kube/config"}},
        "custom": {"io.example": {"image": "tech/inv:1", "nested": {"images": {"x": {"image": "web:1"}}}}}
    }"#;

    #[test]
    fn relocated_images_get_their_reference_and_digest() {
        let out = relocate(
            BUNDLE,
            &[
                ("tech/inv:1", "reg/p/tech-inv-1a:1", D1),
                ("other/inv:2", "reg/p/other-inv-2b:2", D2),
                ("web:1", "reg/p/web-3c:1", D2),
            ],
        );
        let inv = &out["invocationImages"];
        assert_eq!(inv[0]["image"], "reg/p/tech-inv-1a:1");
        assert_eq!(inv[0]["contentDigest"], D1, "added where absent");
        assert_eq!(inv[1]["image"], "reg/p/other-inv-2b:2");
        assert_eq!(inv[1]["contentDigest"], D2);
        assert_eq!(out["images"]["web"]["image"], "reg/p/web-3c:1");
        assert_eq!(out["images"]["web"]["contentDigest"], D2, "replaced where present");
        assert_eq!(
            out["images"]["again"],
            serde_json::json!({"image": "reg/p/tech-inv-1a:1", "contentDigest": D1}),
            "every declaration of one image string"
        );
        // the rest of each entry is unchanged
        assert_eq!(inv[0]["imageType"], "docker");
        assert_eq!(inv[0]["size"], 1234);
        assert_eq!(inv[0]["labels"], serde_json::json!({"k": "v"}));
        assert_eq!(out["images"]["web"]["description"], "front");
        assert_eq!(
            out["images"]["web"]["mediaType"],
            "application/vnd.oci.image.index.v1+json"
        );
    }

    #[test]
    fn a_byte_order_mark_is_dropped() {
        let with_bom = format!("\u{feff}{BUNDLE}");
        let out = relocate(&with_bom, &[("web:1", "reg/p/w:1", D2)]);
        assert_eq!(out["images"]["web"]["image"], "reg/p/w:1");
    }

    #[test]
    fn images_not_in_the_map_and_unrelated_keys_are_untouched() {
        let original: Value = serde_json::from_str(BUNDLE).unwrap();
        let out = relocate(BUNDLE, &[("tech/inv:1", "reg/p/x:1", D1), ("web:1", "reg/p/w:1", D2)]);
        assert_eq!(out["invocationImages"][1], original["invocationImages"][1]);
        assert_eq!(out["images"]["kept"], original["images"]["kept"]);
        assert_eq!(out["images"]["kept"]["contentDigest"], D9);
        // `image` keys elsewhere (here under `custom`) are not bundle images
        for key in [
            "schemaVersion",
            "name",
            "version",
            "description",
            "parameters",
            "definitions",
            "credentials",
            "custom",
        ] {
            assert_eq!(out[key], original[key], "{key}");
        }
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&out), keys(&original), "no key added or lost");
    }

    #[test]
    fn the_whole_output_is_canonical() {
        let out = relocated_bundle_json(BUNDLE.as_bytes(), &moved(&[("web:1", "reg/p/w:1", D1)])).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.starts_with(r#"{"credentials":{"kube":{"path":"/root/.kube/config"}},"custom":{"#),
            "{out}"
        );
        assert!(
            out.contains(r#""definitions":{"port":{"maximum":65535,"minimum":1,"multipleOf":0.5,"type":"integer"}}"#),
            "{out}"
        );
        assert!(out.contains(r#""description":"a <b>bundle</b> & more""#), "{out}");
        assert!(
            out.contains(&format!(
                r#""web":{{"contentDigest":"{D1}","description":"front","image":"reg/p/w:1","mediaType""#
            )),
            "{out}"
        );
        assert!(out.ends_with(r#""version":"1.0.0"}"#), "{out}");
        assert_eq!(canonical(&out), out);
    }

    #[test]
    fn exact_bytes_of_a_small_bundle() {
        let json = "{\n  \"version\": \"0.1.0\",\n  \"invocationImages\": [\n    {\n      \"imageType\": \"oci\",\n      \"image\": \"a/b:1\"\n    }\n  ],\n  \"name\": \"x y\"\n}\n";
        let out = relocated_bundle_json(json.as_bytes(), &moved(&[("a/b:1", "r.io/p/a-b-0f:1", D1)])).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!(
                r#"{{"invocationImages":[{{"contentDigest":"{D1}","image":"r.io/p/a-b-0f:1","imageType":"oci"}}],"name":"x y","version":"0.1.0"}}"#
            )
        );
    }

    #[test]
    fn an_empty_map_only_canonicalises() {
        let original: Value = serde_json::from_str(BUNDLE).unwrap();
        let out: Value =
            serde_json::from_slice(&relocated_bundle_json(BUNDLE.as_bytes(), &BTreeMap::new()).unwrap()).unwrap();
        assert_eq!(out, original);
    }

    #[test]
    fn what_serde_json_cannot_hold_is_an_error() {
        assert!(relocated_bundle_json(br#"{"n":1e400}"#, &BTreeMap::new()).is_err());
        assert!(relocated_bundle_json(b"{", &BTreeMap::new()).is_err());
    }

    /// Go 1.19 decoding `input` into `interface{}` and writing it with `MarshalCanonical` of
    /// github.com/docker/go/canonical/json (as cnab-go does) wrote exactly `go`.
    #[test]
    fn byte_for_byte_what_docker_go_marshal_canonical_writes() {
        let input = r#"{"s":"<a>&\u2028\u2029 é 😀 \/ \\ \" \u007f ~ \u00a0 \ud83d\ude00","n":[1.0,1e3,-0,5,-7,9007199254740992,1E2],"B":{"z":1,"a":2,"é":3,"Z":4,"":5,"a\"":6,"a\\":7,"ä":8,"ｚ":9,"😀":10,"\uffff":11}}"#;
        let go = "{\"B\":{\"\":5,\"Z\":4,\"a\":2,\"a\\\"\":6,\"a\\\\\":7,\"z\":1,\"ä\":8,\"é\":3,\"ｚ\":9,\"\u{ffff}\":11,\"😀\":10},\"n\":[1,1000,0,5,-7,9007199254740992,100],\"s\":\"<a>&\u{2028}\u{2029} é 😀 / \\\\ \\\" \u{7f} ~ \u{a0} 😀\"}";
        assert_eq!(canonical(input), go);
    }
}
