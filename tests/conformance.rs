//! Every row of the conformance tables (copied into testdata/conformance) is a test.

use cnab_relocate::mapping::{map_reference, RepositoryPrefix};
use cnab_relocate::reference::Reference;

fn rows(file: &str) -> Vec<Vec<String>> {
    let path = format!("{}/testdata/conformance/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let rows: Vec<Vec<String>> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect();
    assert!(!rows.is_empty(), "{path} has rows");
    rows
}

#[test]
fn names_tsv() {
    let rows = rows("names.tsv");
    for row in &rows {
        let (input, normalised) = (&row[0], &row[1]);
        let parsed = Reference::parse_normalized(input);
        if normalised == "ERROR" {
            assert!(parsed.is_err(), "{input:?} must be rejected");
            continue;
        }
        let r = parsed.unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(&r.to_string(), normalised, "{input}");
        assert_eq!(&r.name(), &row[2], "{input}");
        assert_eq!(r.tag().unwrap_or(""), row[3], "{input}");
        assert_eq!(r.digest().map(|d| d.to_string()).unwrap_or_default(), row[4], "{input}");
    }
    assert_eq!(rows.len(), 6);
}

#[test]
fn path_mapping_tsv() {
    let rows = rows("path-mapping.tsv");
    for row in &rows {
        let (prefix, image, expected) = (&row[0], &row[1], &row[2]);
        let result = prefix
            .parse::<RepositoryPrefix>()
            .map_err(|e| e.to_string())
            .and_then(|p| {
                let r = Reference::parse_normalized(image).map_err(|e| e.to_string())?;
                map_reference(&p, &r).map_err(|e| e.to_string())
            });
        if expected == "ERROR" {
            assert!(result.is_err(), "{prefix} {image} must be rejected");
        } else {
            let mapped = result.unwrap_or_else(|e| panic!("{prefix} {image}: {e}"));
            assert_eq!(&mapped.to_string(), expected, "{prefix} {image}");
        }
    }
    assert_eq!(rows.len(), 17);
}
