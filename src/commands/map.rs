//! `cnab-relocate map -p PREFIX REFERENCE...`: the mapping of single references.

use crate::error::Error;
use crate::mapping::{map_reference, RepositoryPrefix};
use crate::reference::Reference;
use crate::sync::MappingRules;

/// Maps each reference as the relocation mapping would; every invalid one is reported.
///
/// ```
/// let mapped = cnab_relocate::map_references("example.com/user", &["technosophos/helloworld:0.1.0"]).unwrap();
/// assert_eq!(mapped, ["example.com/user/technosophos-helloworld-6731e0d41b7fd5a24e14c853af93bd81:0.1.0"]);
/// ```
pub fn map_references<S: AsRef<str>>(prefix: &str, references: &[S]) -> Result<Vec<String>, Vec<Error>> {
    map_references_with(prefix, references, None)
}

/// [`map_references`], placing by `rules` first (SYNC.md §10) when given.
pub fn map_references_with<S: AsRef<str>>(
    prefix: &str,
    references: &[S],
    rules: Option<&MappingRules>,
) -> Result<Vec<String>, Vec<Error>> {
    let prefix: RepositoryPrefix = prefix.parse().map_err(|e| vec![Error::from(e)])?;
    let mut mapped = Vec::new();
    let mut errors = Vec::new();
    for r in references {
        let raw = r.as_ref();
        match Reference::parse_normalized(raw)
            .map_err(Error::from)
            .and_then(|r| match rules {
                Some(rules) => rules
                    .relocate(&prefix, raw, &r)
                    .map_err(|e| Error::MappingRules(e.to_string())),
                None => map_reference(&prefix, &r).map_err(Error::from),
            }) {
            Ok(m) => mapped.push(m.to_string()),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(mapped)
    } else {
        Err(errors)
    }
}
