//! No source file of the core holds more than [`MAX_LINES`] lines before its tests. Past that a
//! file has grown more than one seam, and is split along them: a folder whose `mod.rs` re-exports
//! what the file made public, so no path changes (`isolate/`, `network/local/`). A file is counted
//! up to its test module, the first `#[cfg(test)]` at the start of a line, or whole when it has
//! none; an indented `#[cfg(test)]` (a test-only method) is code like the lines around it.
//!
//! ```text
//! cargo test -p clickgate-core --test file_lengths
//! ```
//!
//! Native only: the sources are read from disk.
#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};

const MAX_LINES: usize = 900;

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

/// The lines of a file before its test module.
fn lines_before_tests(text: &str) -> usize {
    text.lines()
        .take_while(|line| !line.starts_with("#[cfg(test)]"))
        .count()
}

/// Each file over the cap, as `path: count`, in path order.
fn over_the_cap(files: &[(String, String)]) -> Vec<String> {
    let mut over: Vec<String> = files
        .iter()
        .map(|(path, text)| (path, lines_before_tests(text)))
        .filter(|(_, lines)| *lines > MAX_LINES)
        .map(|(path, lines)| format!("{path}: {lines} lines before its tests"))
        .collect();
    over.sort();
    over
}

#[test]
fn no_source_file_holds_more_than_the_cap_before_its_tests() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    rust_files(&src, &mut paths);
    let files: Vec<(String, String)> = paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).expect("source is readable");
            let rel = path.strip_prefix(&src).expect("under src");
            (rel.display().to_string(), text)
        })
        .collect();
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
    .map(|(path, text)| (path.to_owned(), text));
    assert_eq!(
        over_the_cap(&files),
        [
            "method.rs: 901 lines before its tests",
            "over.rs: 901 lines before its tests",
            "untested.rs: 902 lines before its tests",
        ]
    );
}
