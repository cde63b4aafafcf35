//! The core's modules stand on floors: each imports only modules on its own floor or below, and no
//! two modules import each other, however indirectly (nor two files of one folder, its `mod.rs`
//! among them). This test reads every path in the core's sources that can name one of its modules
//! (`crate::`, `super::`, `self::`, a child module's name, a name a `use` brought in; in a `use`
//! tree with groups nested at any depth, or in an expression or a type) and resolves it from the
//! module it is written in, test modules, comments and literals left out. So a change that makes a
//! lower module reach up, or closes a loop, fails here with the import that did it:
//!
//! ```text
//! cargo test -p clickgate-core --test floors
//! ```
//!
//! `lib.rs` documents the same floors; one test checks it names every module.
//!
//! The same sources are held to a size: no file has more than 900 lines before its tests.
//!
//! Native only: the sources are read from disk.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Ground first. A folder (`config/`) is one module.
const FLOORS: &[(&str, &[&str])] = &[
    (
        "the ground: words every floor uses",
        &[
            "time", "verdict", "fault", "log", "hll", "ua", "ip", "alerts",
        ],
    ),
    (
        "the request",
        &["click", "template", "token", "flood", "stored"],
    ),
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
        &["isolate", "operator", "whatif", "fuzz"],
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

/// A source file: its path under src/ and its text.
type Source = (PathBuf, String);

fn sources() -> Vec<Source> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("source is readable");
            let rel = path.strip_prefix(src()).expect("under src").to_path_buf();
            (rel, text)
        })
        .collect()
}

/// The module a file defines: `network/home.rs` is `network::home`, `network/mod.rs` is `network`,
/// `lib.rs` the crate's root (no words).
fn module_path(rel: &Path) -> Vec<String> {
    let mut words: Vec<String> = rel
        .components()
        .map(|c| {
            c.as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_owned()
        })
        .collect();
    if matches!(words.last().map(String::as_str), Some("mod")) {
        words.pop();
    }
    if words == ["lib"] {
        words.clear();
    }
    words
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    /// `::`
    Sep,
    Open,
    Close,
    Punct(char),
}

fn word(w: &str) -> Tok {
    Tok::Word(w.to_owned())
}

/// The tokens paths are made of. Comments and the insides of string and character literals are
/// dropped, so neither a path in a comment nor a brace in a literal counts.
fn tokens(code: &str) -> Vec<Tok> {
    let c: Vec<char> = code.chars().collect();
    let at = |i: usize| c.get(i).copied();
    // The index after a literal's closing quote; a raw string has no escapes and ends in `"##…`.
    let after_string = |mut i: usize, raw: Option<usize>| -> usize {
        while i < c.len() {
            match (c[i], raw) {
                ('\\', None) => i += 2,
                ('"', None) => return i + 1,
                ('"', Some(hashes))
                    if c[i + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|h| **h == '#')
                        .count()
                        == hashes =>
                {
                    return i + 1 + hashes
                }
                _ => i += 1,
            }
        }
        i
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == Some('*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == Some('/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if ch == '"' {
            i = after_string(i + 1, None);
        } else if ch == '\'' {
            // '\n' and '\u{7b}' escape; 'x' closes after one character; 'a alone is a lifetime.
            if at(i + 1) == Some('\\') {
                i += 3;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == Some('\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let w: String = c[start..i].iter().collect();
            let hashes = c[i..].iter().take_while(|h| **h == '#').count();
            if matches!(w.as_str(), "r" | "br" | "cr") && at(i + hashes) == Some('"') {
                i = after_string(i + hashes + 1, Some(hashes));
            } else if matches!(w.as_str(), "b" | "c") && at(i) == Some('"') {
                i = after_string(i + 1, None);
            } else if w == "b" && at(i) == Some('\'') {
                // b'x': the literal is skipped on the next turn.
            } else if w == "r" && hashes == 1 {
                i += 1; // r#match: the raw identifier is read on the next turn.
            } else {
                out.push(Tok::Word(w));
            }
        } else if ch.is_ascii_digit() {
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
        } else if ch == ':' && at(i + 1) == Some(':') {
            out.push(Tok::Sep);
            i += 2;
        } else {
            out.push(match ch {
                '{' => Tok::Open,
                '}' => Tok::Close,
                _ => Tok::Punct(ch),
            });
            i += 1;
        }
    }
    out
}

/// The index after the bracket that closes the one at `i`.
fn after_brackets(toks: &[Tok], mut i: usize, open: &Tok, close: &Tok) -> usize {
    let mut depth = 0;
    while i < toks.len() {
        if toks[i] == *open {
            depth += 1;
        } else if toks[i] == *close {
            depth -= 1;
            if depth == 0 {
                return i + 1;
            }
        }
        i += 1;
    }
    i
}

/// The tokens without `#[cfg(test)]` modules: tests may reach anywhere.
fn without_tests(toks: &[Tok]) -> Vec<Tok> {
    let attribute = [
        Tok::Punct('#'),
        Tok::Punct('['),
        word("cfg"),
        Tok::Punct('('),
        word("test"),
        Tok::Punct(')'),
        Tok::Punct(']'),
    ];
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if toks[i..].starts_with(&attribute) {
            let mut j = i + attribute.len();
            if toks.get(j) == Some(&word("pub")) {
                j += 1;
                if toks.get(j) == Some(&Tok::Punct('(')) {
                    j = after_brackets(toks, j, &Tok::Punct('('), &Tok::Punct(')'));
                }
            }
            if toks.get(j) == Some(&word("mod"))
                && matches!(toks.get(j + 1), Some(Tok::Word(_)))
                && toks.get(j + 2) == Some(&Tok::Open)
            {
                i = after_brackets(toks, j + 2, &Tok::Open, &Tok::Close);
                continue;
            }
        }
        out.push(toks[i].clone());
        i += 1;
    }
    out
}

/// A path as written: its words (`::` first for an external crate's), the module it is written
/// in, whether it ends in `*`, and the name a `use` binds it to.
#[derive(Debug)]
struct Written {
    words: Vec<String>,
    here: Vec<String>,
    glob: bool,
    binds: Option<String>,
}

/// Every path of a file that defines module `file`, inline `mod name { … }` blocks included.
fn written(code: &str, file: &[String]) -> Vec<Written> {
    let toks = without_tests(&tokens(code));
    let mut out = Vec::new();
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let mut opens_module = None;
    let mut i = 0;
    while i < toks.len() {
        let here = || -> Vec<String> {
            let mut here = file.to_vec();
            here.extend(inline.iter().map(|(name, _)| name.clone()));
            here
        };
        let after_sep = i > 0 && toks[i - 1] == Tok::Sep;
        match &toks[i] {
            Tok::Open => {
                depth += 1;
                if let Some(name) = opens_module.take() {
                    inline.push((name, depth));
                }
                i += 1;
            }
            Tok::Close => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth -= 1;
                i += 1;
            }
            Tok::Word(w) if w == "mod" => {
                if let (Some(Tok::Word(name)), Some(Tok::Open)) = (toks.get(i + 1), toks.get(i + 2))
                {
                    opens_module = Some(name.clone());
                }
                i += 1;
            }
            // pub(crate), pub(super), pub(in crate::a) restrict who sees an item; they import nothing.
            Tok::Word(w) if w == "pub" && toks.get(i + 1) == Some(&Tok::Punct('(')) => {
                i = after_brackets(&toks, i + 1, &Tok::Punct('('), &Tok::Punct(')'));
            }
            Tok::Word(w) if w == "use" && !after_sep => {
                i += 1;
                use_tree(&toks, &mut i, Vec::new(), &here(), &mut out);
            }
            Tok::Word(first) if !after_sep && toks.get(i + 1) == Some(&Tok::Sep) => {
                let mut words = vec![first.clone()];
                i += 2;
                while let Some(Tok::Word(next)) = toks.get(i) {
                    words.push(next.clone());
                    i += 1;
                    if toks.get(i) != Some(&Tok::Sep) {
                        break;
                    }
                    i += 1;
                }
                out.push(Written {
                    words,
                    here: here(),
                    glob: false,
                    binds: None,
                });
            }
            Tok::Sep
                if !matches!(
                    toks.get(i.wrapping_sub(1)),
                    Some(Tok::Word(_)) | Some(Tok::Punct('>'))
                ) =>
            {
                // ::std::x, an external crate's path: skip its words.
                i += 1;
                while matches!(toks.get(i), Some(Tok::Word(_)) | Some(Tok::Sep)) {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// One `use` tree, `a::b::{c, d::{self, e as f}, g::*}`, every leaf with the prefix it is under.
fn use_tree(
    toks: &[Tok],
    i: &mut usize,
    mut prefix: Vec<String>,
    here: &[String],
    out: &mut Vec<Written>,
) {
    loop {
        match toks.get(*i) {
            Some(Tok::Sep) => {
                if prefix.is_empty() {
                    prefix.push("::".to_owned());
                }
                *i += 1;
            }
            Some(Tok::Word(w)) => {
                prefix.push(w.clone());
                *i += 1;
                if toks.get(*i) == Some(&Tok::Sep) {
                    *i += 1;
                    continue;
                }
                let mut binds = Some(w.clone());
                if toks.get(*i) == Some(&word("as")) {
                    binds = match toks.get(*i + 1) {
                        Some(Tok::Word(alias)) if alias != "_" => Some(alias.clone()),
                        _ => None,
                    };
                    *i += 2;
                }
                if w == "self" {
                    prefix.pop();
                    if binds.as_deref() == Some("self") {
                        binds = prefix.last().cloned();
                    }
                }
                out.push(Written {
                    words: prefix,
                    here: here.to_vec(),
                    glob: false,
                    binds,
                });
                return;
            }
            Some(Tok::Punct('*')) => {
                *i += 1;
                out.push(Written {
                    words: prefix,
                    here: here.to_vec(),
                    glob: true,
                    binds: None,
                });
                return;
            }
            Some(Tok::Open) => {
                *i += 1;
                loop {
                    match toks.get(*i) {
                        Some(Tok::Close) => {
                            *i += 1;
                            return;
                        }
                        None => return,
                        _ => {}
                    }
                    use_tree(toks, i, prefix.clone(), here, out);
                    match toks.get(*i) {
                        Some(Tok::Punct(',')) => *i += 1,
                        Some(Tok::Close) => {}
                        _ => return,
                    }
                }
            }
            _ => return,
        }
    }
}

/// Where a written path leads, as words from the crate's root; None when it leaves the crate or
/// names nothing this test knows (a local item, the prelude).
fn resolve(
    path: &Written,
    modules: &BTreeSet<Vec<String>>,
    bound: &BTreeMap<String, Vec<String>>,
    root_glob: bool,
) -> Option<Vec<String>> {
    let (first, rest) = path.words.split_first()?;
    let mut at = match first.as_str() {
        "crate" => Vec::new(),
        "self" => path.here.clone(),
        "super" => {
            let mut up = path.here.clone();
            up.pop()?;
            up
        }
        "::" => return None,
        name => {
            let mut child = path.here.clone();
            child.push(name.to_owned());
            if modules.contains(&child) {
                child
            } else if let Some(target) = bound.get(name) {
                target.clone()
            } else if root_glob && modules.contains(&vec![name.to_owned()]) {
                vec![name.to_owned()]
            } else {
                return None;
            }
        }
    };
    for w in rest {
        match w.as_str() {
            "super" => {
                at.pop()?;
            }
            "self" => {}
            _ => at.push(w.clone()),
        }
    }
    Some(at)
}

/// Each file's module and every path it names, resolved from where it is written.
fn named_by(sources: &[Source]) -> Vec<(Vec<String>, BTreeSet<Vec<String>>)> {
    let modules: BTreeSet<Vec<String>> = sources.iter().map(|(rel, _)| module_path(rel)).collect();
    sources
        .iter()
        .map(|(rel, text)| {
            let file = module_path(rel);
            let paths = written(text, &file);
            // What the file's `use`s bind, read twice so one `use` may build on another above or below it.
            let mut bound = BTreeMap::new();
            let mut root_glob = false;
            for _ in 0..2 {
                for path in paths.iter().filter(|p| p.binds.is_some() || p.glob) {
                    let Some(target) = resolve(path, &modules, &bound, root_glob) else {
                        continue;
                    };
                    if path.glob {
                        root_glob |= target.is_empty();
                    } else if let Some(name) = &path.binds {
                        bound.insert(name.clone(), target);
                    }
                }
            }
            let named = paths
                .iter()
                .filter_map(|path| resolve(path, &modules, &bound, root_glob))
                .collect();
            (file, named)
        })
        .collect()
}

/// Module to the modules it names: a folder (`config/`) is one module; the crate's root is left out.
fn graph(sources: &[Source]) -> BTreeMap<String, BTreeSet<String>> {
    let tops: BTreeSet<String> = sources
        .iter()
        .filter_map(|(rel, _)| module_path(rel).first().cloned())
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, named) in named_by(sources) {
        let Some(module) = file.first() else {
            continue;
        };
        graph.entry(module.clone()).or_default().extend(
            named
                .iter()
                .filter_map(|path| path.first())
                .filter(|m| tops.contains(*m) && *m != module)
                .cloned(),
        );
    }
    graph
}

/// The folders whose `mod.rs` holds the words its files share, and is left out of the loop rule:
/// `filters/mod.rs` names every filter in its `filters!` list, and each filter judges through the
/// `Judge` and `Settings` it declares. Every other folder keeps its shared words in files of
/// their own (`config/fields.rs`, `config/error.rs`).
const SHARED_MOD_RS: &[&str] = &["filters"];

/// Inside a folder, file to the other files it names. `mod.rs` is one of them, named `mod`: a path
/// to the folder's own items (`crate::config::Config`) names it. It declares the others and may
/// name them all, so a file that names it back closes a loop; in a folder of [`SHARED_MOD_RS`] it
/// is left out, and the rule holds between the other files.
fn folder_graph(sources: &[Source], folder: &str) -> BTreeMap<String, BTreeSet<String>> {
    let shared = SHARED_MOD_RS.contains(&folder);
    let file_of = |path: &[String]| -> Option<String> {
        if path.first().map(String::as_str) != Some(folder) {
            return None;
        }
        let file = path.get(1).filter(|name| {
            sources
                .iter()
                .any(|(rel, _)| module_path(rel) == [folder.to_owned(), (*name).clone()])
        });
        match file {
            Some(name) => Some(name.clone()),
            None if shared => None,
            None => Some("mod".to_owned()),
        }
    };
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, named) in named_by(sources) {
        let Some(me) = file_of(&file) else {
            continue;
        };
        let entry = graph.entry(me.clone()).or_default();
        entry.extend(named.iter().filter_map(|path| file_of(path)));
        entry.remove(&me);
    }
    graph
}

fn floor_of(module: &str) -> Option<usize> {
    FLOORS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

/// Every module on no floor, and every import from a floor above.
fn floor_faults(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut wrong = Vec::new();
    for (module, imports) in graph {
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
    wrong
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

fn first_loop(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|m| visit(m, graph, &mut Vec::new(), &mut done))
}

#[test]
fn every_module_stands_on_a_floor_and_imports_nothing_above_it() {
    let wrong = floor_faults(&graph(&sources()));
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn no_modules_import_each_other_in_a_loop() {
    let cycle = first_loop(&graph(&sources()));
    assert!(cycle.is_none(), "a loop: {}", cycle.unwrap().join(" -> "));
}

#[test]
fn no_files_of_a_folder_import_each_other_in_a_loop() {
    let sources = sources();
    let folders: BTreeSet<String> = sources
        .iter()
        .filter(|(rel, _)| rel.components().count() > 1)
        .filter_map(|(rel, _)| module_path(rel).first().cloned())
        .collect();
    assert!(["config", "network", "isolate"]
        .iter()
        .all(|f| folders.contains(*f)));
    for folder in &folders {
        let graph = folder_graph(&sources, folder);
        assert!(graph.len() >= 2, "{folder}/ has its files");
        let cycle = first_loop(&graph);
        assert!(
            cycle.is_none(),
            "a loop in {folder}/: {}",
            cycle.unwrap().join(" -> ")
        );
    }
}

#[test]
fn lib_rs_names_every_module() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("lib.rs is readable");
    for module in graph(&sources()).keys() {
        assert!(
            lib.contains(&format!("`{module}`")),
            "lib.rs's module list does not name `{module}`"
        );
    }
}

fn synthetic(files: &[(&str, &str)]) -> Vec<Source> {
    files
        .iter()
        .map(|(rel, text)| (PathBuf::from(rel), text.to_string()))
        .collect()
}

#[test]
fn the_reader_catches_every_path_form_that_reaches_up() {
    let sources = synthetic(&[
        ("lib.rs", ""),
        // In a comment, a literal or a test module a path imports nothing; in an expression it does.
        (
            "time.rs",
            "// use crate::admin;\n/* crate::admin::x() */\nconst A: &str = \"crate::admin\";\n\
             const B: &str = r#\"super::admin\"#;\nconst C: char = '{';\n\
             fn f() -> u32 { crate::report::rows() }\n\
             #[cfg(test)]\nmod tests {\n    use crate::isolate;\n}\n",
        ),
        (
            "verdict.rs",
            "use crate::{time, config::{rules::{Rule, Filter}, networks}};\n",
        ),
        ("rules.rs", "use super::decide::Decision;\n"),
        // super:: inside an inline module climbs from that module; a path may span lines.
        (
            "click.rs",
            "pub(crate) use {self::inner::X, super :: whatif\n    :: Y};\n\
             mod inner {\n    pub fn g() { super::super::http::answer() }\n}\n",
        ),
        ("token.rs", "use super::*;\nfn f() { admin::check() }\n"),
        (
            "flood.rs",
            "use crate::signing as s;\nfn f() { s::verify() }\n",
        ),
        ("config/mod.rs", ""),
        (
            "config/rules.rs",
            "use super::super::network::home::Space;\n",
        ),
        ("network/mod.rs", ""),
        ("network/home.rs", "use super::super::admin::Key;\n"),
        ("decide.rs", ""),
        ("report.rs", ""),
        ("signing.rs", ""),
        ("whatif.rs", ""),
        ("http.rs", ""),
        ("admin.rs", ""),
        ("isolate.rs", ""),
    ]);
    let above = |module: &str, floor: &str, import: &str, its: &str| {
        format!("`{module}` ({floor}) imports `{import}` from above ({its})")
    };
    let (ground, request, config, judges) = (
        "the ground: words every floor uses",
        "the request",
        "the config document, compiled",
        "the judges",
    );
    let network = "state shared through the network's object";
    assert_eq!(
        floor_faults(&graph(&sources)),
        [
            above("click", request, "http", "answers over HTTP"),
            above(
                "click",
                request,
                "whatif",
                "the whole click, and tools over it"
            ),
            above("config", config, "network", network),
            above("flood", request, "signing", judges),
            above("network", network, "admin", "the operator's API"),
            above("rules", judges, "decide", "the decision"),
            above("time", ground, "report", "the fraud report's rows"),
            above("token", request, "admin", "the operator's API"),
            above("verdict", ground, "config", config),
        ]
    );
}

#[test]
fn the_reader_follows_a_folder_s_files_through_every_path_form() {
    let sources = synthetic(&[
        ("lib.rs", ""),
        (
            "network/mod.rs",
            "pub struct Thing;\nfn f() { home::g() }\n",
        ),
        // A nested group whose `self` names the file.
        ("network/keys.rs", "use super::{wire::{self, Batch}};\n"),
        ("network/wire.rs", "use crate::network::home::Space;\n"),
        ("network/home.rs", "fn f() { super::keys::g() }\n"),
        // mod.rs's own items are mod.rs's; another folder's file is none of the folder's files.
        (
            "network/store.rs",
            "use crate::network::Thing;\nuse super::super::config::rules;\n",
        ),
        ("config/mod.rs", ""),
        ("config/rules.rs", ""),
    ]);
    let graph = folder_graph(&sources, "network");
    let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        graph,
        BTreeMap::from([
            ("home".to_owned(), names(&["keys"])),
            ("keys".to_owned(), names(&["wire"])),
            ("mod".to_owned(), names(&["home"])),
            ("store".to_owned(), names(&["mod"])),
            ("wire".to_owned(), names(&["home"])),
        ])
    );
    assert_eq!(
        first_loop(&graph),
        Some(["home", "keys", "wire", "home"].map(String::from).to_vec())
    );
    // A child named from mod.rs without a prefix is the child.
    let (_, from_mod) = &named_by(&sources)[1];
    assert!(from_mod.contains(&["network", "home", "g"].map(String::from).to_vec()));
}

// No file holds more than MAX_LINES lines before its tests: past that a file has grown more than
// one seam, and is split along them into a folder whose `mod.rs` re-exports what the file made
// public, so no path changes (`isolate/`, `network/local/`). A file is counted up to its test
// module, the first `#[cfg(test)]` at the start of a line, or whole when it has none; an indented
// `#[cfg(test)]` (a test-only method) is code like the lines around it.

const MAX_LINES: usize = 900;

/// The lines of a file before its test module.
fn lines_before_tests(text: &str) -> usize {
    text.lines()
        .take_while(|line| !line.starts_with("#[cfg(test)]"))
        .count()
}

/// Each file over the cap, as `path: count`, in path order.
fn over_the_cap(files: &[Source]) -> Vec<String> {
    let mut over: Vec<String> = files
        .iter()
        .map(|(path, text)| (path, lines_before_tests(text)))
        .filter(|(_, lines)| *lines > MAX_LINES)
        .map(|(path, lines)| format!("{}: {lines} lines before its tests", path.display()))
        .collect();
    over.sort();
    over
}

#[test]
fn no_source_file_holds_more_than_the_cap_before_its_tests() {
    let files = sources();
    assert!(files.len() > 50, "{} files read", files.len());
    let over = over_the_cap(&files);
    assert!(
        over.is_empty(),
        "over {MAX_LINES} lines: split each along its seams\n{}",
        over.join("\n")
    );
}

#[test]
fn a_file_is_counted_up_to_its_test_module_or_whole() {
    let code = |n: usize| "fn f() {}\n".repeat(n);
    let tests = "#[cfg(test)]\nmod tests {\n    fn g() {}\n}\n";
    // A test-only method inside the code does not end it.
    let method = "impl A {\n    #[cfg(test)]\n    fn g() {}\n}\n";
    let files = [
        ("at.rs", format!("{}{tests}", code(MAX_LINES))),
        ("over.rs", format!("{}{tests}", code(MAX_LINES + 1))),
        ("untested.rs", code(MAX_LINES + 2)),
        (
            "method.rs",
            format!("{method}{}{tests}", code(MAX_LINES - 3)),
        ),
        ("long_tests.rs", format!("{tests}{}", code(5 * MAX_LINES))),
    ]
    .map(|(path, text)| (PathBuf::from(path), text));
    assert_eq!(
        over_the_cap(&files),
        [
            "method.rs: 901 lines before its tests",
            "over.rs: 901 lines before its tests",
            "untested.rs: 902 lines before its tests",
        ]
    );
}
