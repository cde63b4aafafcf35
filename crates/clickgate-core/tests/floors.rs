//! The core's modules stand on floors: each imports only modules on its own floor or below, and no
//! two modules import each other, however indirectly (nor two files of one folder). This test
//! reads every `crate::` path in the core's sources (their test modules and comments left out), so
//! a change that makes a lower module reach up, or closes a loop, fails here with the import that
//! did it:
//!
//! ```text
//! cargo test -p clickgate-core --test floors
//! ```
//!
//! `lib.rs` documents the same floors; the last test checks it names every module.
//!
//! Native only: the sources are read from disk.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Ground first. A folder (`config/`) is one module.
const FLOORS: &[(&str, &[&str])] = &[
    (
        "the ground: words every floor uses",
        &["time", "verdict", "fault", "log", "hll", "ua", "ip"],
    ),
    ("the request", &["click", "template", "token", "flood"]),
    ("a rule's filters, one file each", &["filters"]),
    ("the config document, compiled", &["config"]),
    ("the judges", &["rules", "signing", "conversion"]),
    ("the decision", &["decide"]),
    ("the fraud report's rows", &["report"]),
    ("state shared through the network's object", &["network"]),
    ("the operator's API", &["admin"]),
    ("answers over HTTP", &["http"]),
    (
        "the whole click, and tools over it",
        &["isolate", "whatif", "fuzz"],
    ),
];

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module a file belongs to: its first path component under src/, without `.rs`.
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(src()).expect("under src");
    let first = rel.components().next().expect("a component");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_owned()
}

/// The text a module runs with: up to its `#[cfg(test)] mod …`, without comment lines.
fn code_of(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]")
            && lines.peek().is_some_and(|next| {
                let n = next.trim_start();
                n.starts_with("mod ")
                    || n.starts_with("pub(crate) mod ")
                    || n.starts_with("pub mod ")
            })
        {
            break;
        }
        if !t.starts_with("//") {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Every module named after `crate::`, including inside `use crate::{a::X, b}` groups.
fn imports_of(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let word = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find("};").unwrap_or(group.len());
            // Top-level names of the group: each item starts after a comma at depth 0.
            let mut depth = 0;
            let mut start = 0;
            for (j, c) in group[..end].char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.insert(word(group[start..j].trim()));
                        start = j + 1;
                    }
                    _ => {}
                }
            }
            found.insert(word(group[start..end].trim()));
        } else {
            found.insert(word(rest));
        }
    }
    found.retain(|m| !m.is_empty());
    found
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let module = module_of(file);
        if module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("source is readable");
        let imports = imports_of(&code_of(&text));
        graph
            .entry(module.clone())
            .or_default()
            .extend(imports.into_iter().filter(|m| *m != module));
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for imports in graph.values_mut() {
        imports.retain(|m| modules.contains(m));
    }
    graph
}

fn floor_of(module: &str) -> Option<usize> {
    FLOORS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

#[test]
fn every_module_stands_on_a_floor_and_imports_nothing_above_it() {
    let graph = graph();
    let mut wrong = Vec::new();
    for (module, imports) in &graph {
        let Some(floor) = floor_of(module) else {
            wrong.push(format!(
                "`{module}` is on no floor: add it to FLOORS and lib.rs"
            ));
            continue;
        };
        for import in imports {
            match floor_of(import) {
                Some(f) if f <= floor => {}
                Some(f) => wrong.push(format!(
                    "`{module}` ({}) imports `{import}` from above ({})",
                    FLOORS[floor].0, FLOORS[f].0
                )),
                None => {}
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Depth-first search; a module met again while still on the path closes a loop.
fn visit<'g>(
    m: &'g str,
    graph: &'g BTreeMap<String, BTreeSet<String>>,
    path: &mut Vec<&'g str>,
    done: &mut BTreeSet<&'g str>,
) -> Option<Vec<String>> {
    if let Some(i) = path.iter().position(|p| *p == m) {
        let mut cycle: Vec<String> = path[i..].iter().map(|s| s.to_string()).collect();
        cycle.push(m.to_owned());
        return Some(cycle);
    }
    if done.contains(m) {
        return None;
    }
    path.push(m);
    for next in graph.get(m).into_iter().flatten() {
        if let Some(cycle) = visit(next, graph, path, done) {
            return Some(cycle);
        }
    }
    path.pop();
    done.insert(m);
    None
}

#[test]
fn no_modules_import_each_other_in_a_loop() {
    let graph = graph();
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        let cycle = visit(module, &graph, &mut Vec::new(), &mut done);
        assert!(cycle.is_none(), "a loop: {}", cycle.unwrap().join(" -> "));
    }
}

/// Inside a folder, the same rule between its files: `crate::{folder}::file`, `super::file` and
/// `self::file` (from `mod.rs`) name a file of the folder; `mod.rs` itself counts as `mod`.
fn folder_graph(folder: &str) -> BTreeMap<String, BTreeSet<String>> {
    let dir = src().join(folder);
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    let stem = |p: &Path| p.file_stem().unwrap().to_string_lossy().into_owned();
    let names: BTreeSet<String> = files.iter().map(|p| stem(p)).collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let me = stem(file);
        let code = code_of(&std::fs::read_to_string(file).expect("source is readable"));
        let mut found = BTreeSet::new();
        for prefix in [
            format!("crate::{folder}::"),
            "super::".to_owned(),
            "self::".to_owned(),
        ] {
            let mut rest = code.as_str();
            while let Some(i) = rest.find(&prefix) {
                rest = &rest[i + prefix.len()..];
                let word: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                // `super::` from mod.rs leaves the folder; a name that is no file is an item of mod.rs.
                if me == "mod" && prefix == "super::" {
                    continue;
                }
                found.insert(if names.contains(&word) {
                    word
                } else {
                    "mod".to_owned()
                });
            }
        }
        found.remove(&me);
        graph.insert(me, found);
    }
    graph
}

#[test]
fn no_files_of_a_folder_import_each_other_in_a_loop() {
    for folder in ["config", "network", "filters"] {
        let graph = folder_graph(folder);
        assert!(graph.len() > 2, "{folder}/ has its files");
        let mut done = BTreeSet::new();
        for file in graph.keys() {
            let mut path = Vec::new();
            let cycle = visit(file, &graph, &mut path, &mut done);
            assert!(
                cycle.is_none(),
                "a loop in {folder}/: {}",
                cycle.unwrap().join(" -> ")
            );
        }
    }
}

#[test]
fn lib_rs_names_every_module() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("lib.rs is readable");
    for module in graph().keys() {
        assert!(
            lib.contains(&format!("`{module}`")),
            "lib.rs's module list does not name `{module}`"
        );
    }
}

#[test]
fn the_reader_finds_grouped_and_inline_imports() {
    let code = "use crate::{a::X, b::{c, d}, e};\nfn f() { crate::g::h(); }\n";
    let found: Vec<String> = imports_of(code).into_iter().collect();
    assert_eq!(found, ["a", "b", "e", "g"]);
    let tested = "use crate::a;\n#[cfg(test)]\nmod tests {\n    use crate::z;\n}\n";
    assert_eq!(
        imports_of(&code_of(tested)).into_iter().collect::<Vec<_>>(),
        ["a"]
    );
}
