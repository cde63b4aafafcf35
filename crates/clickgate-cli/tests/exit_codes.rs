//! The exit codes the built command line ends with, as a script sees them: 1 for a document that
//! is invalid, 3 for a file that cannot be read or written.

use std::path::PathBuf;
use std::process::{Command, Output};

fn clickgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clickgate"))
        .args(args)
        .output()
        .unwrap()
}

/// A file of its own in the temporary directory, named for the test and this process.
fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("clickgate-exit-{}-{name}", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn a_file_that_is_not_utf8_is_an_invalid_document_not_an_unreadable_file() {
    // `config validate` of a Latin-1 file ended with 3, as if the file could not be read, so a
    // script took a broken document for a broken disk.
    let config = scratch("latin1.json", b"{\"version\": 1, \"name\": \"caf\xe9\"}");
    let list = scratch("latin1.txt", b"192.0.2.1 # caf\xe9\n");
    let out = scratch("latin1.bin", b"");
    for (args, file) in [
        (
            vec!["config", "validate", config.to_str().unwrap()],
            &config,
        ),
        (
            vec![
                "list",
                "compile",
                list.to_str().unwrap(),
                out.to_str().unwrap(),
            ],
            &list,
        ),
    ] {
        let run = clickgate(&args);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("{}: not UTF-8", file.display())),
            "{args:?}: {stderr}"
        );
    }
    let missing = clickgate(&["config", "validate", "/nonexistent/clickgate.json"]);
    assert_eq!(missing.status.code(), Some(3));
    for f in [config, list, out] {
        let _ = std::fs::remove_file(f);
    }
}
