//! Conversions: postbacks judged against their clicks, and what a clicker cannot make of them.

use std::time::Duration;

use clickgate_core::token::TokenKey;

use crate::{
    demo, demo_with, open_token, push_ok,
    support::{self, tid_of, Worker},
    BROWSER,
};

#[test]
fn postbacks_are_judged_against_their_clicks() {
    let w = Worker::start(&[("CONFIG_REFRESH_SECONDS", "1")]);
    let rules = serde_json::json!([{
        "id": "ctit", "created_at": "2026-11-01T00:00:00Z", "scope": {"offers": ["1001"]}, "level": "conversion",
        "strategy": {"filters": [{"type": "min_click_to_conversion", "seconds": 2},
                                 {"type": "max_click_to_conversion", "seconds": 4}]}
    }]);
    push_ok(
        &w,
        &demo_with(&w, "ctit.json", rules, serde_json::json!({})),
    );
    let click = |ip: &str| {
        let r = w.get(
            "/c?offer_id=1001&aff_id=net-7",
            &[("cf-connecting-ip", ip), ("user-agent", BROWSER)],
        );
        match r.status {
            302 => tid_of(r.header("location").unwrap()).to_owned(),
            _ => r.json()["error"]["reference"].as_str().unwrap().to_owned(),
        }
    };
    let postback = |query: &str| w.get(&format!("/postback?{query}"), &[]);
    // The rule is in force once a click right away gets `min_click_to_conversion`.
    let early = w
        .wait_for(Duration::from_secs(15), || {
            let r = postback(&format!("transaction_id={}", click("192.0.2.60")));
            (r.json()["reasons"][0] == "min_click_to_conversion").then_some(r)
        })
        .expect("the conversion rule never took effect");
    assert_eq!(early.status, 200);
    assert_eq!(early.json()["status"], "invalid");
    assert_eq!(
        early.json()["message"],
        "clickgate flagged the conversion as fraudulent"
    );

    let (in_window, too_late) = (click("192.0.2.61"), click("192.0.2.62"));
    let blocked = click("203.0.113.7"); // on the demo blocklist
    std::thread::sleep(Duration::from_millis(2500));
    let ok = postback(&format!(
        "transaction_id={in_window}&event=sale&amount=19.90"
    ));
    assert_eq!(ok.json()["status"], "approved", "{}", ok.body);
    let again = postback(&format!(
        "transaction_id={in_window}&event=sale&amount=19.90"
    ));
    assert_eq!(
        again.json()["reasons"][0],
        "duplicate_conversion",
        "{}",
        again.body
    );
    // Another event of the same click is its own conversion, but the click has had its one
    // approved conversion (the default `max_approved_per_click`).
    assert_eq!(
        postback(&format!("transaction_id={in_window}&event=upsell")).json()["reasons"][0],
        "approved_per_click"
    );
    let flagged = w.request_with_body(
        "POST",
        "/postback",
        &[("content-type", "application/x-www-form-urlencoded")],
        &format!("transaction_id={blocked}"),
    );
    assert_eq!(
        flagged.json()["reasons"][0],
        "flagged_click",
        "{}",
        flagged.body
    );
    assert_eq!(
        postback(&format!("transaction_id={blocked}&status=declined")).json()["status"],
        "not_judged"
    );
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(
        postback(&format!("transaction_id={too_late}")).json()["reasons"][0],
        "max_click_to_conversion"
    );

    let mut forged = in_window.clone().into_bytes();
    forged[12] = if forged[12] == b'A' { b'B' } else { b'A' };
    let r = postback(&format!(
        "transaction_id={}",
        String::from_utf8(forged).unwrap()
    ));
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (400, Some("unknown_transaction"))
    );
    assert_eq!(postback("event=sale").status, 400);

    let line = w
        .wait_for(Duration::from_secs(5), || {
            w.events("conversion")
                .into_iter()
                .find(|e| e["status"] == "approved")
        })
        .expect("a conversion line");
    assert_eq!(
        (line["offer_id"].as_str(), line["rule_id"].as_str()),
        (Some("1001"), Some("ctit"))
    );
    assert!(line["click_to_conversion_seconds"].as_u64().unwrap() >= 2);
}

#[test]
fn a_clicker_can_no_longer_mint_approved_conversions() {
    let w = Worker::start(&[]);
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(demo()).unwrap()).unwrap();
    doc["advertisers"][0]["postback_secret"] = "acme-postback-secret".into();
    doc["advertisers"][0]["flood_events"] = serde_json::json!(["sale"]);
    let config = w.state.0.join("postback-secret.json");
    std::fs::write(&config, doc.to_string()).unwrap();
    push_ok(&w, &config);
    let r = w.get(
        "/c?offer_id=1001&aff_id=net-7",
        &[("cf-connecting-ip", "192.0.2.50"), ("user-agent", BROWSER)],
    );
    assert_eq!(r.status, 302, "{}", r.body);
    let tid = tid_of(r.header("location").unwrap()).to_owned();
    // The clicker has the transaction id but not the advertiser's secret.
    for query in [
        format!("transaction_id={tid}&event=sale"),
        format!("transaction_id={tid}&event=e1&secret=guess"),
    ] {
        let r = w.get(&format!("/postback?{query}"), &[]);
        assert_eq!(r.status, 401, "{query}: {}", r.body);
        assert_eq!(r.json()["error"]["code"], "unauthorized");
    }
    // The advertiser's first conversion is approved; made-up event names for the same click are
    // capped at one approved conversion (the default), by parameter or by header alike.
    let sale = w.get(
        &format!("/postback?transaction_id={tid}&event=sale&secret=acme-postback-secret"),
        &[],
    );
    assert_eq!(sale.json()["status"], "approved", "{}", sale.body);
    for i in 0..3 {
        let r = w.get(
            &format!("/postback?transaction_id={tid}&event=made-up-{i}"),
            &[("x-postback-secret", "acme-postback-secret")],
        );
        assert_eq!(r.json()["status"], "invalid", "{}", r.body);
        assert_eq!(r.json()["reasons"][0], "approved_per_click", "{}", r.body);
    }
    let lines = w.wait_for(Duration::from_secs(5), || {
        let l = w.events("conversion");
        (l.len() >= 4).then_some(l)
    });
    let lines = lines.expect("conversion lines");
    assert!(
        lines.iter().all(|l| l["authenticated"] == true),
        "{lines:?}"
    );
}

#[test]
fn a_third_party_rejection_turns_the_clicks_later_conversion_invalid() {
    let w = Worker::start(&[]);
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(demo()).unwrap()).unwrap();
    doc["advertisers"][0]["postback_secret"] = "acme-postback-secret".into();
    doc["rules"] = serde_json::json!([{
        "id": "mmp", "created_at": "2026-11-01T00:00:00Z", "scope": {"offers": ["1001"]},
        "level": "conversion", "strategy": {"filters": [{"type": "third_party_rejection"}]}
    }]);
    let config = w.state.0.join("rejections.json");
    std::fs::write(&config, doc.to_string()).unwrap();
    push_ok(&w, &config);
    let click = |ip: &str| {
        let r = w.get(
            "/c?offer_id=1001&aff_id=net-7",
            &[("cf-connecting-ip", ip), ("user-agent", BROWSER)],
        );
        assert_eq!(r.status, 302, "{}", r.body);
        tid_of(r.header("location").unwrap()).to_owned()
    };
    let (rejected, kept) = (click("192.0.2.70"), click("192.0.2.71"));
    let reject = |tid: &str, reason: &str, secret: &str| {
        w.request_with_body(
            "POST",
            "/rejection",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("x-postback-secret", secret),
            ],
            &format!("transaction_id={tid}&reason={reason}"),
        )
    };
    // The MMP rejects the first click's install; a repeat of its report changes nothing.
    let first = reject(&rejected, "click+injection", "acme-postback-secret");
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(
        first.json(),
        serde_json::json!({"transaction_id": rejected, "status": "rejected",
                           "reason": "click injection", "new": true, "judged": true})
    );
    let again = reject(&rejected, "another+reason", "acme-postback-secret");
    assert_eq!(
        (again.status, &again.json()["reason"], &again.json()["new"]),
        (200, &"click injection".into(), &false.into())
    );
    // Without the advertiser's secret nothing is kept; an id never issued is not found.
    let forged = reject(&kept, "r", "not-the-postback-secret");
    assert_eq!(
        (forged.status, &forged.json()["error"]["code"]),
        (401, &"unauthorized".into())
    );
    let unknown = reject("AQGnot-a-transaction-id", "r", "acme-postback-secret");
    assert_eq!(
        (unknown.status, &unknown.json()["error"]["code"]),
        (404, &"unknown_transaction".into())
    );
    // The rejected click's conversion is invalid with the reason; the other's is approved.
    let postback = |tid: &str| {
        w.get(
            &format!("/postback?transaction_id={tid}&event=install&secret=acme-postback-secret"),
            &[],
        )
    };
    let invalid = postback(&rejected);
    assert_eq!(invalid.json()["status"], "invalid", "{}", invalid.body);
    assert_eq!(
        invalid.json()["reasons"],
        serde_json::json!(["third_party_rejection"])
    );
    assert_eq!(postback(&kept).json()["status"], "approved");
    let line = w
        .wait_for(Duration::from_secs(5), || {
            w.events("conversion")
                .into_iter()
                .find(|e| e["status"] == "invalid")
        })
        .expect("the invalid conversion's line");
    assert_eq!(line["reasons"][0]["code"], "third_party_rejection");
    assert!(
        line["reasons"][0]["detail"]
            .as_str()
            .is_some_and(|d| d.ends_with("click injection")),
        "{line}"
    );
    // Each report is logged, the repeat as not new.
    let rejections = w
        .wait_for(Duration::from_secs(5), || {
            let l = w.events("rejection");
            (l.len() >= 2).then_some(l)
        })
        .expect("the rejections' lines");
    let new: Vec<&serde_json::Value> = rejections.iter().map(|l| &l["new"]).collect();
    assert_eq!(
        new,
        [&true.into(), &serde_json::Value::from(false)],
        "{rejections:?}"
    );
}

/// The click's transaction id as if the click had come `ago_ms` earlier: the id carries its
/// click's time, so the Worker judges the postback as that long after it, and no test waits.
fn clicked_earlier(tid: &str, ago_ms: u64) -> String {
    let key = TokenKey::new(support::SECRET.as_bytes()).unwrap();
    let mut click = open_token(tid);
    click.issued_ms -= ago_ms;
    click.seal(&key)
}

#[test]
fn an_affiliate_whose_postbacks_all_arrive_after_two_hours_is_declined_as_click_spam() {
    let w = Worker::start(&[("CONFIG_REFRESH_SECONDS", "1")]);
    let rules = serde_json::json!([{
        "id": "spam", "created_at": "2026-11-01T00:00:00Z", "scope": {"offers": ["1001"]}, "level": "both",
        "strategy": {"filters": [{"type": "click_spam", "seconds": 7200, "percent": 60, "min": 3}]}
    }]);
    push_ok(
        &w,
        &demo_with(&w, "spam.json", rules, serde_json::json!({})),
    );
    let click = |aff: &str| {
        w.get(
            &format!("/c?offer_id=1001&aff_id={aff}"),
            &[("cf-connecting-ip", "192.0.2.70"), ("user-agent", BROWSER)],
        )
    };
    let late = |aff: &str| {
        let r = click(aff);
        assert_eq!(r.status, 302, "{}", r.body);
        clicked_earlier(tid_of(r.header("location").unwrap()), 3 * 3_600_000)
    };
    let postback = |tid: &str| w.get(&format!("/postback?transaction_id={tid}"), &[]);
    // The rule is in force once a postback's answer names the share: that is the first counted.
    let first = w
        .wait_for(Duration::from_secs(15), || {
            let r = postback(&late("net-7"));
            r.json().get("shares").is_some().then_some(r)
        })
        .expect("the click spam rule never took effect");
    assert_eq!(
        first.json()["status"],
        "approved",
        "one of three: {}",
        first.body
    );
    let second = postback(&late("net-7"));
    assert_eq!(
        second.json()["status"],
        "approved",
        "two of three: {}",
        second.body
    );
    let third = postback(&late("net-7"));
    assert_eq!(third.json()["status"], "invalid", "{}", third.body);
    assert_eq!(third.json()["reasons"], serde_json::json!(["click_spam"]));
    assert_eq!(
        third.json()["shares"]["click_spam"],
        serde_json::json!({"share": 1, "bound": 0.6, "over": 3, "of": 3})
    );
    // The rule judges clicks too: the affiliate's next click is declined while the share holds,
    // another affiliate's is not.
    assert_ne!(click("net-7").status, 302);
    assert_eq!(click("net-9").status, 302);
    let line = w
        .wait_for(Duration::from_secs(5), || {
            w.events("conversion")
                .into_iter()
                .find(|e| e["status"] == "invalid")
        })
        .expect("the invalid conversion's line");
    assert_eq!(line["reasons"][0]["code"], "click_spam");
    assert_eq!(line["shares"]["click_spam"]["over"], 3);
    assert!(line["click_to_conversion_seconds"].as_u64().unwrap() >= 3 * 3600);
}
