//! The library's layers import only downward, and no two source files import each other,
//! directly or through others. Read from the sources themselves, so a new import that breaks
//! the shape fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level modules from the bottom up; a module may import only those before it (or
/// itself). `error` is the library's own error, rendered by the commands above it.
const LAYERS: &[&[&str]] = &[
    &["limits", "atomic_file"],
    &["reference", "relmap"],
    &["oci", "mapping"],
    // `cnab-relocate sync`'s pure parts: its configuration, name mapping, tag selection and
    // planning, over names and listings the layers above fetch
    &["sync"],
    &["registry", "archive"],
    &["bundle"],
    &["engine"],
    &["error"],
    &["commands"],
    &["lib"],
];

fn rank(top: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| l.contains(&top))
        .unwrap_or_else(|| panic!("module {top} is in no layer; add it to LAYERS"))
}

/// Module path of a library source file: `src/engine/copy.rs` → `engine::copy`.
fn module_of(path: &Path) -> Vec<String> {
    let rel = path.strip_prefix("src").unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.last().map(String::as_str) == Some("mod") {
        parts.pop();
    }
    if parts == ["lib"] {
        parts.clear();
    }
    parts
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `crate::`/`super::` path a file names outside its tests, resolved to the longest
/// module it reaches.
fn imports(module: &[String], text: &str, modules: &BTreeSet<Vec<String>>) -> BTreeSet<Vec<String>> {
    let code = text.split("#[cfg(test)]").next().unwrap();
    let mut found = BTreeSet::new();
    let mut add = |path: Vec<String>| {
        for n in (1..=path.len()).rev() {
            if modules.contains(&path[..n]) {
                if path[..n] != *module {
                    found.insert(path[..n].to_vec());
                }
                return;
            }
        }
    };
    for (i, _) in code.match_indices("crate::") {
        if code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        add(path_after(&code[i + "crate::".len()..]));
    }
    for line in code.lines().map(str::trim_start) {
        let line = line.trim_start_matches("pub(crate) ").trim_start_matches("pub ");
        let Some(rest) = line.strip_prefix("use super::") else {
            continue;
        };
        let mut base = module.to_vec();
        base.pop();
        let mut rest = rest;
        while let Some(r) = rest.strip_prefix("super::") {
            base.pop();
            rest = r;
        }
        if let Some(group) = rest.strip_prefix('{') {
            for item in group.split([',', '}', ';']) {
                let item = item.trim();
                if !item.is_empty() {
                    add(base.iter().cloned().chain(path_after(item)).collect());
                }
            }
        } else {
            add(base.iter().cloned().chain(path_after(rest)).collect());
        }
    }
    found
}

fn path_after(s: &str) -> Vec<String> {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(s.len());
    s[..end]
        .split("::")
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

fn graph() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::env::set_current_dir(root).unwrap();
    let mut files = Vec::new();
    sources(Path::new("src"), &mut files);
    files.retain(|f| !["src/main.rs", "src/output.rs"].contains(&f.to_str().unwrap()));
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(f)).collect();
    files
        .iter()
        .map(|f| {
            let module = module_of(f);
            let deps = imports(&module, &std::fs::read_to_string(f).unwrap(), &modules);
            (module, deps)
        })
        .collect()
}

fn top(module: &[String]) -> &str {
    module.first().map_or("lib", String::as_str)
}

#[test]
fn layers_import_only_downward() {
    for (module, deps) in graph() {
        for dep in deps {
            if top(&module) != top(&dep) {
                assert!(
                    rank(top(&dep)) < rank(top(&module)),
                    "{} imports {}, a layer above or beside it",
                    module.join("::"),
                    dep.join("::")
                );
            }
        }
    }
}

#[test]
fn no_two_files_import_each_other_even_through_others() {
    let graph = graph();
    // depth-first search for a back edge
    fn visit<'a>(
        m: &'a Vec<String>,
        graph: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        path: &mut Vec<&'a Vec<String>>,
        done: &mut BTreeSet<&'a Vec<String>>,
    ) {
        if let Some(i) = path.iter().position(|p| *p == m) {
            let cycle: Vec<String> = path[i..].iter().map(|p| p.join("::")).collect();
            panic!("import cycle: {} → {}", cycle.join(" → "), m.join("::"));
        }
        if !done.insert(m) {
            return;
        }
        path.push(m);
        for d in graph.get(m).into_iter().flatten() {
            visit(d, graph, path, done);
        }
        path.pop();
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        visit(m, &graph, &mut Vec::new(), &mut done);
    }
}
