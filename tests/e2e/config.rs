//! The config's life: pushed with the CLI (which refuses what is invalid), a broken document
//! in KV, and no config at all.

use std::time::Duration;

use crate::{demo, started_with_demo, support::Worker};

#[test]
fn a_broken_config_in_kv_leaves_the_last_good_one_in_force() {
    let w = started_with_demo(&[("CONFIG_REFRESH_SECONDS", "1")]);
    assert_eq!(w.get("/c?offer_id=1001&aff_id=net-7", &[]).status, 302);
    let good = w.get("/healthz", &[]).json()["config"]
        .as_str()
        .unwrap()
        .to_owned();

    w.put_raw("{\"version\": 1, \"offers\": [{\"id\": \"1001\"}");
    let kept = w.wait_for(Duration::from_secs(15), || {
        let r = w.get("/c?offer_id=1001&aff_id=net-7", &[]);
        assert_eq!(
            r.status, 302,
            "a broken document must not break clicks: {}",
            r.body
        );
        w.events("config")
            .into_iter()
            .find(|e| e["status"] == "kept_last_good")
    });
    let kept = kept.expect("the Worker logged that it kept the last good config");
    assert_eq!(kept["config"], good.as_str());
    assert!(
        kept["problem"].as_str().unwrap().contains("not valid JSON"),
        "{kept}"
    );
    assert_eq!(w.get("/healthz", &[]).json()["config"], good.as_str());

    // And it does pick up the next valid document: the refresh was really running.
    let next = w.state.0.join("next.json");
    let text = std::fs::read_to_string(demo())
        .unwrap()
        .replace("\"id\": \"1002\"", "\"id\": \"1003\"");
    std::fs::write(&next, text).unwrap();
    assert!(w.push(&next).status.success());
    let switched = w.wait_for(Duration::from_secs(15), || {
        (w.get("/c?offer_id=1003&aff_id=net-7", &[]).status == 302).then_some(())
    });
    assert!(switched.is_some(), "the new config was not picked up");
    assert_eq!(w.get("/c?offer_id=1002&aff_id=net-7", &[]).status, 404);
}

#[test]
fn without_any_config_clicks_get_503_until_one_is_pushed() {
    let w = Worker::start(&[]);
    let r = w.get("/c?offer_id=1001&aff_id=net-7", &[]);
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["code"], "unavailable");
    assert!(w.push(&demo()).status.success());
    assert_eq!(w.get("/c?offer_id=1001&aff_id=net-7", &[]).status, 302);
}

#[test]
fn cli_refuses_an_invalid_document_and_leaves_kv_alone() {
    let w = started_with_demo(&[]);
    let bad = w.state.0.join("bad.json");
    std::fs::write(
        &bad,
        r#"{"version": 1, "offers": [{"id": "1001", "landing_url": "ftp://nope"}], "extra": 1}"#,
    )
    .unwrap();
    let out = w.push(&bad);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("offers[0].landing_url: must start with https://"),
        "{stderr}"
    );
    assert!(stderr.contains("extra: is not a known field"), "{stderr}");
    assert!(
        stderr.contains("2 problems; nothing was pushed"),
        "{stderr}"
    );
    assert_eq!(w.get("/c?offer_id=1001&aff_id=net-7", &[]).status, 302);
}

#[test]
fn cli_refuses_a_key_given_twice_and_a_number_out_of_range() {
    let w = started_with_demo(&[]);
    let bad = w.state.0.join("twice.json");
    // `status` twice: the last one used to win without a word. `max` 2^32 used to wrap to 0, and
    // the filter fired on every click.
    std::fs::write(
        &bad,
        r#"{"version": 1,
            "offers": [{"id": "1001", "landing_url": "https://x.example/", "status": "paused", "status": "active"}],
            "rules": [{"id": "r", "created_at": "2026-11-01", "scope": {"offers": ["1001"]},
                       "strategy": {"filters": [{"type": "duplicate_ip", "max": 4294967296}]}}]}"#,
    )
    .unwrap();
    let out = w.push(&bad);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("offers[0].status: is given more than once"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "rules[0].strategy.filters[0].max: must be a whole number from 1 to 1000000, found 4294967296"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("2 problems; nothing was pushed"),
        "{stderr}"
    );
    assert_eq!(w.get("/c?offer_id=1001&aff_id=net-7", &[]).status, 302);
}
