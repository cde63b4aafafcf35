//! Bot detection measured against labelled corpora installed from npm by `make setup`:
//! `crawler-user-agents` (crawler patterns, each with real user agents seen from it) and
//! `user-agents` (user agents of real browsers, desktop and mobile).
//!
//! A link-preview fetcher counts as caught: it is recognised and not counted as a click.
//! Goal: no browser flagged, at least 99% of crawler instances caught.
//!
//! Native only: the corpora are read from disk.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::BTreeSet;
use std::path::PathBuf;

use clickgate_core::ua::{bot_signature, is_link_preview};

fn node_modules(file: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../node_modules")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run `make setup` to install the corpora",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

/// In-app browsers of social apps: the crawler list names them, but behind them are people tapping
/// links inside Instagram or Facebook, a large share of affiliate traffic. clickgate lets them
/// through, so they are left out of the crawler side of the measurement.
const PEOPLE_IN_APPS: &[&str] = &["Instagram", "MetaIAB", "FBAN/", "FB_IAB", "FBAV/"];

fn caught(ua: &str) -> bool {
    bot_signature(Some(ua)).is_some() || is_link_preview(Some(ua))
}

#[test]
fn no_browser_is_flagged() {
    let corpus = node_modules("user-agents/dist/user-agents.json");
    let browsers: BTreeSet<&str> = corpus
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["userAgent"].as_str())
        .collect();
    assert!(browsers.len() > 500, "corpus too small: {}", browsers.len());
    let flagged: Vec<(&str, String)> = browsers
        .iter()
        .filter_map(|ua| bot_signature(Some(ua)).map(|why| (*ua, why)))
        .collect();
    println!(
        "browsers: {} distinct, {} flagged",
        browsers.len(),
        flagged.len()
    );
    assert!(flagged.is_empty(), "browsers flagged as bots: {flagged:#?}");
}

#[test]
fn crawler_recall_is_at_least_99_percent() {
    let corpus = node_modules("crawler-user-agents/crawler-user-agents.json");
    let instances: Vec<&str> = corpus
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["instances"].as_array().into_iter().flatten())
        .filter_map(|i| i.as_str())
        .filter(|ua| !PEOPLE_IN_APPS.iter().any(|p| ua.contains(p)))
        .collect();
    assert!(
        instances.len() > 1000,
        "corpus too small: {}",
        instances.len()
    );
    let missed: Vec<&str> = instances.iter().copied().filter(|ua| !caught(ua)).collect();
    let recall = 1.0 - missed.len() as f64 / instances.len() as f64;
    println!(
        "crawler instances: {}, caught {:.2}%, missed {}",
        instances.len(),
        recall * 100.0,
        missed.len()
    );
    for ua in missed.iter().take(80) {
        println!("  missed: {ua}");
    }
    assert!(recall >= 0.99, "recall {:.2}% is under 99%", recall * 100.0);
}
