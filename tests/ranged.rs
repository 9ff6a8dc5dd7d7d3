//! Big blobs pulled as several `Range` requests (issue 13), against a real registry: parts in
//! order, a size that is not a multiple of the part size with a 1-byte tail, a server that
//! ignores `Range`, a part cut mid-stream and fetched again, a corrupted part failing the blob.

mod support;

use support::fixtures::{noise, skopeo_digest};
use support::proxy::{Fault, Proxy, Rule};
use support::referrers::{push_blob, push_manifest};
use support::registry::{Mode, TestRegistry};
use support::{mapped, relocate, write_bundle};

const MIB: usize = 1024 * 1024;

/// An image whose one layer is exactly `size` bytes; its reference and the layer's digest.
fn image_with_layer(registry: &TestRegistry, size: usize) -> (String, String) {
    let host = registry.host();
    let layer = noise(7, size);
    let layer_digest = push_blob(&host, "big/app", &layer);
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = push_blob(&host, "big/app", config);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": size}],
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    push_manifest(
        &host,
        "big/app",
        "1",
        "application/vnd.oci.image.manifest.v1+json",
        &bytes,
    );
    (format!("{host}/big/app:1"), layer_digest)
}

/// Relocates `reference` (read through `proxy`) into a fresh target; the run's result and the
/// ranges the proxy saw asked for the layer.
fn relocate_through(
    proxy: &Proxy,
    source: &TestRegistry,
    reference: &str,
    layer: &str,
) -> (support::Run, Vec<Option<String>>, String) {
    let target = TestRegistry::start(Mode::Plain);
    let work = tempfile::tempdir().unwrap();
    let through = reference.replacen(&source.host(), &proxy.host(), 1);
    let bundle = write_bundle(work.path(), &[&through], &[]);
    let relmap = work.path().join("relmap.json");
    let run = relocate(&bundle, &format!("{}/x", target.host()), &relmap, &["--no-referrers"]);
    let ranges = proxy
        .log()
        .into_iter()
        .filter(|l| l.method == "GET" && l.path.contains(layer))
        .map(|l| l.range)
        .collect();
    let digest = match run.code {
        0 => {
            let relocated = mapped(&relmap)[&through].as_str().unwrap().to_string();
            skopeo_digest(&relocated, &target.skopeo_opts("src"))
        }
        _ => String::new(),
    };
    (run, ranges, digest)
}

#[test]
fn a_big_blob_is_fetched_in_parts_in_order_to_its_one_byte_tail() {
    let source = TestRegistry::start(Mode::Plain);
    // two whole 8 MiB parts and a 1-byte tail
    let (reference, layer) = image_with_layer(&source, 16 * MIB + 1);
    let proxy = Proxy::start(&format!("http://{}", source.host()));
    let (run, ranges, digest) = relocate_through(&proxy, &source, &reference, &layer);
    run.assert_ok();
    let mut ranges: Vec<String> = ranges.into_iter().map(|r| r.expect("every GET ranged")).collect();
    ranges.sort();
    assert_eq!(
        ranges,
        ["bytes=0-8388607", "bytes=16777216-16777216", "bytes=8388608-16777215"],
        "three parts, the last one byte"
    );
    let manifest = skopeo_digest(&reference, &source.skopeo_opts("src"));
    assert_eq!(digest, manifest, "the same image in the target");
}

#[test]
fn a_server_that_ignores_range_sends_the_blob_once_and_it_is_read_whole() {
    let source = TestRegistry::start(Mode::Plain);
    let (reference, layer) = image_with_layer(&source, 20 * MIB);
    let proxy = Proxy::start(&format!("http://{}", source.host()));
    proxy.add(Rule::always("GET", &layer, Fault::StripRequestHeader("range")));
    let (run, ranges, digest) = relocate_through(&proxy, &source, &reference, &layer);
    run.assert_ok();
    assert_eq!(
        ranges.len(),
        1,
        "the ranged first request, answered whole, is read whole: {ranges:?}"
    );
    assert_eq!(digest, skopeo_digest(&reference, &source.skopeo_opts("src")));
}

#[test]
fn a_part_cut_mid_stream_is_fetched_again_alone_and_a_corrupt_one_fails_the_blob() {
    let source = TestRegistry::start(Mode::Plain);
    let (reference, layer) = image_with_layer(&source, 20 * MIB);
    let proxy = Proxy::start(&format!("http://{}", source.host()));
    // the first part passes (a rule that changes nothing here: the path has no query); the
    // next answer, for one of the two later parts, dies after 1 MiB
    proxy.add(Rule {
        method: "GET",
        path_contains: layer.clone(),
        fault: Fault::StripQuery,
        times: 1,
    });
    proxy.add(Rule {
        method: "GET",
        path_contains: layer.clone(),
        fault: Fault::DropAfter(MIB),
        times: 1,
    });
    let (run, ranges, digest) = relocate_through(&proxy, &source, &reference, &layer);
    run.assert_ok();
    let mut asked: Vec<String> = ranges.into_iter().flatten().collect();
    assert_eq!(asked.len(), 4, "three parts, the cut one twice: {asked:?}");
    asked.sort();
    asked.dedup();
    assert_eq!(asked.len(), 3, "only the cut part again, alone: {asked:?}");
    assert_eq!(digest, skopeo_digest(&reference, &source.skopeo_opts("src")));

    let corrupt = Proxy::start(&format!("http://{}", source.host()));
    corrupt.add(Rule::always("GET", &layer, Fault::Corrupt));
    let (run, _, _) = relocate_through(&corrupt, &source, &reference, &layer);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains(&layer), "{}", run.stderr);
}
