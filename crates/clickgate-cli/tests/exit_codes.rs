//! The exit codes the built command line ends with, as a script sees them: 1 for a document that
//! is invalid, 3 for a file that cannot be read or written (or a click file read only in part).

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

#[test]
fn a_replay_that_dropped_lines_exits_with_three_and_names_them() {
    // A replay skipped unreadable rows and still ended with 0, so a script took a partial report
    // for the whole file.
    let config = scratch(
        "dropped.json",
        br#"{"version": 1, "offers": [{"id": "1", "landing_url": "https://x.example/"}]}"#,
    );
    let clicks = scratch(
        "dropped.csv",
        b"ts,offer_id,aff_id\n2026-11-23T10:00:00Z,1,a\nlast tuesday,1,a\n",
    );
    let (c, k) = (config.to_str().unwrap(), clicks.to_str().unwrap());
    let run = clickgate(&["replay", "--config", c, "--clicks", k]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
    );
    assert_eq!(run.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!("dropped {k}:3: `last tuesday` is not a time")),
        "{stderr}"
    );
    assert!(
        stdout.contains("lines dropped (could not be read, not replayed): 1"),
        "{stdout}"
    );
    assert!(stdout.contains("clicks replayed: 1"), "{stdout}");
    let allowed = clickgate(&["replay", "--config", c, "--clicks", k, "--allow-dropped"]);
    assert_eq!(allowed.status.code(), Some(0));
    for f in [config, clicks] {
        let _ = std::fs::remove_file(f);
    }
}

#[test]
fn a_named_secret_is_taken_as_set_by_validate_and_read_from_the_environment_by_sign() {
    let config = scratch(
        "named-secret.json",
        br#"{"version": 1, "offers": [{"id": "1", "landing_url": "https://x.example/"}],
            "networks": [{"id": "net-7", "signing": {"keys": [{"id": "k", "secret": {"secret": "CG_TEST_NET7_KEY"}}]}}]}"#,
    );
    let c = config.to_str().unwrap();
    let checked = clickgate(&["config", "validate", c]);
    let stdout = String::from_utf8_lossy(&checked.stdout);
    assert_eq!(checked.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("names Worker secrets CG_TEST_NET7_KEY (taken as set here"),
        "{stdout}"
    );
    let sign = |value: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_clickgate"));
        cmd.args(["sign", "--config", c, "--network", "net-7"])
            .args(["--url", "https://t.example/c?offer_id=1&aff_id=net-7"])
            .env_remove("CG_TEST_NET7_KEY");
        if let Some(v) = value {
            cmd.env("CG_TEST_NET7_KEY", v);
        }
        cmd.output().unwrap()
    };
    let unset = sign(None);
    let stderr = String::from_utf8_lossy(&unset.stderr);
    assert_eq!(unset.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("networks[0].signing.keys[0].secret: names the Worker secret `CG_TEST_NET7_KEY`, which is not set"),
        "{stderr}"
    );
    assert!(stderr.contains("from the environment variable"), "{stderr}");
    let signed = sign(Some("network-7-signing-secret-0001"));
    assert_eq!(signed.status.code(), Some(0));
    let link = String::from_utf8_lossy(&signed.stdout).trim().to_owned();
    // Signed with the value itself: the same link a document holding it verifies.
    let plain = scratch(
        "plain-secret.json",
        br#"{"version": 1, "offers": [{"id": "1", "landing_url": "https://x.example/"}],
            "networks": [{"id": "net-7", "signing": {"keys": [{"id": "k", "secret": "network-7-signing-secret-0001"}]}}]}"#,
    );
    let verified = clickgate(&["verify", "--config", plain.to_str().unwrap(), &link]);
    assert_eq!(
        verified.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    for f in [config, plain] {
        let _ = std::fs::remove_file(f);
    }
}
