//! End-to-end: the built Worker in workerd, config pushed with the CLI, driven over HTTP.
//! Run by `make test` (which builds the Worker and the CLI first). One file per capability; the
//! helpers several of them use are here, the harness that runs the Worker is in `support/`.

mod support;

mod admin;
mod alerts;
mod bad_requests;
mod clients;
mod config;
mod conversions;
mod feeds;
mod networks;
mod platform;
mod redirect;
mod report;
mod rules;
mod signing;
mod spoof;
mod trackers;

use std::time::{SystemTime, UNIX_EPOCH};

use clickgate_core::token::{ClickToken, TokenKey};
use support::{root, Worker};

fn demo() -> std::path::PathBuf {
    root().join("demo/config.json")
}

fn started_with_demo(vars: &[(&str, &str)]) -> Worker {
    let w = Worker::start(vars);
    support::stdout_of(w.push(&demo()));
    w
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn open_token(tid: &str) -> ClickToken {
    let key = TokenKey::new(support::SECRET.as_bytes()).unwrap();
    ClickToken::open(tid, &key).unwrap_or_else(|e| panic!("{tid}: {e}"))
}

/// The demo config as `edit` leaves it, written to `name` in the Worker's scratch dir.
fn demo_edited(
    w: &Worker,
    name: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> std::path::PathBuf {
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(demo()).unwrap()).unwrap();
    edit(&mut doc);
    let path = w.state.0.join(name);
    std::fs::write(&path, doc.to_string()).unwrap();
    path
}

/// The demo config with `rules` and extra `lists` entries, written to the Worker's scratch dir.
fn demo_with(
    w: &Worker,
    name: &str,
    rules: serde_json::Value,
    lists: serde_json::Value,
) -> std::path::PathBuf {
    demo_edited(w, name, |doc| {
        doc["rules"] = rules;
        for (k, v) in lists.as_object().unwrap() {
            doc["lists"][k] = v.clone();
        }
    })
}

fn push_ok(w: &Worker, file: &std::path::Path) {
    support::stdout_of(w.push(file));
}

/// A policy to sign links with `sign_link`, which reads only its form: canonical, as the networks
/// these tests push verify it.
fn canonical_signing() -> clickgate_core::config::networks::Policy {
    use clickgate_core::config::networks::{Form, Mode, Policy, ReplayCheck};
    Policy {
        mode: Mode::Enforce,
        form: Form::Canonical,
        keys: vec![],
        max_age_s: 600,
        on_replay_fault: clickgate_core::verdict::FaultMode::Closed,
        replay_check: ReplayCheck::BeforeRedirect,
        breaker: None,
        flood_exempt: true,
    }
}

/// The path of a click on offer 1001 through `network`, signed with `key` in canonical form,
/// carrying `click_id` and valid for five minutes: a fresh link as a network's tracker sends it.
fn signed_click(
    w: &Worker,
    network: &str,
    key: &clickgate_core::config::networks::SigningKey,
    click_id: &str,
) -> String {
    let unsigned = format!("{}/c?offer_id=1001&aff_id={network}", w.base);
    let expires = now_ms() / 1000 + 300;
    let link = clickgate_core::signing::sign_link(
        &canonical_signing(),
        key,
        &unsigned,
        expires,
        Some(click_id),
    );
    link[w.base.len()..].to_owned()
}

/// Pushes the demo config with `networks` as its `networks[]`, written to `name` in the Worker's
/// state folder, and returns that file's path.
fn push_demo_networks(w: &Worker, name: &str, networks: serde_json::Value) -> std::path::PathBuf {
    let file = demo_edited(w, name, |doc| doc["networks"] = networks);
    push_ok(w, &file);
    file
}

const BROWSER: &str =
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 \
                       (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
