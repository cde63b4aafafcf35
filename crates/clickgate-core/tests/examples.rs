//! The configs in `examples/` (one per tracker clickgate can stand in front of, each shown in
//! `docs/trackers.md`) compile, and each reads its tracker's own link and sends an unlisted
//! offer's click to the tracker with clickgate's transaction id.
//!
//! Native only: the examples are read from disk.
#![cfg(not(target_arch = "wasm32"))]

use std::path::PathBuf;

use clickgate_core::click::ClientInfo;
use clickgate_core::config::Config;
use clickgate_core::decide::{decide, Observed};
use clickgate_core::token::{TokenKey, NONCE_LEN};
use clickgate_core::verdict::Decision;

fn examples() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut found: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("examples/")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).expect("readable"))
        })
        .collect();
    found.sort();
    found
}

/// A link in each tracker's own format, as its preset reads it.
fn link_of(tracker: &str) -> &'static str {
    match tracker {
        "everflow" => "https://track.example.com/?oid=12&affid=7&sub1=a&gclid=G",
        "cake" => "https://track.example.com/?a=7&c=55&s1=a&gclid=G",
        "affise" => "https://track.example.com/click?pid=7&offer_id=12&sub1=a&gclid=G",
        "hasoffers" => "https://track.example.com/aff_c?offer_id=12&aff_id=7&aff_sub=a&gclid=G",
        "voluum" => {
            "https://track.example.com/9b2a1c3d-0000-4e5f-8a7b-123456789abc?zoneid=a&gclid=G"
        }
        other => panic!("examples/{other}.json has no link in this test: add one"),
    }
}

#[test]
fn every_example_compiles_and_sends_its_trackers_link_on() {
    let found = examples();
    assert!(found.len() >= 5, "{found:?}");
    let key = TokenKey::new(&[9u8; 32]).expect("a key");
    for (name, text) in found {
        let config =
            Config::compile(&text).unwrap_or_else(|e| panic!("examples/{name}.json: {e:?}"));
        let click = config
            .links
            .route("GET", link_of(&name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let client = ClientInfo {
            user_agent: Some("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1".into()),
            ..Default::default()
        };
        let outcome = decide(
            &config,
            &key,
            click,
            client,
            Observed::default(),
            0,
            [1; NONCE_LEN],
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let Decision::Redirect { location } = &outcome.decision else {
            panic!("{name}: {:?}", outcome.decision)
        };
        assert!(
            location.contains(&outcome.transaction_id) && location.contains("gclid=G"),
            "{name}: {location}"
        );
        assert!(
            !location.starts_with("https://track.example.com"),
            "{name}: {location}"
        );
    }
}
