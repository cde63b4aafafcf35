//! The platform's bot signals in the running Worker: `request.cf.botManagement` as a zone with
//! Bot Management gives it, set per request, and its absence as on every other zone.

use std::time::Duration;

use crate::{demo_with, push_ok, support::Worker, BROWSER};

/// What Miniflare hands the Worker as `request.cf` for one request (it replaces the harness's).
fn cf(bot_management: Option<serde_json::Value>) -> String {
    let mut cf = serde_json::json!({
        "asn": 64496, "asOrganization": "Example Hosting", "country": "DE", "colo": "FRA",
    });
    if let Some(bm) = bot_management {
        cf["botManagement"] = bm;
    }
    cf.to_string()
}

#[test]
fn bot_management_scores_a_click_and_a_verified_bot_is_a_preview() {
    let w = Worker::start(&[("CONFIG_REFRESH_SECONDS", "1")]);
    let rules = serde_json::json!([{
        "id": "bots", "created_at": "2026-11-01T00:00:00Z", "scope": {"offers": ["1001"]},
        "strategy": {"filters": [{"type": "bot"}]}, "decline": "medium_and_higher"
    }]);
    push_ok(
        &w,
        &demo_with(&w, "platform.json", rules, serde_json::json!({})),
    );
    let click = |ip: &str, ua: &str, cf: &str| {
        w.get(
            "/c?offer_id=1001&aff_id=net-7",
            &[
                ("user-agent", ua),
                ("cf-connecting-ip", ip),
                ("mf-cf-blob", cf),
            ],
        )
    };
    let line_for = |ip: &str| {
        w.wait_for(Duration::from_secs(5), || {
            w.events("click").into_iter().find(|e| e["ip"] == ip)
        })
        .unwrap_or_else(|| panic!("a line for {ip}"))
    };
    // A browser's User-Agent that the platform scores 5: likely automated.
    let low = cf(Some(serde_json::json!(
        {"score": 5, "verifiedBot": false, "staticResource": false}
    )));
    let live = w.wait_for(Duration::from_secs(15), || {
        (click("192.0.2.71", BROWSER, &low).status == 403).then_some(())
    });
    assert!(live.is_some(), "the bot rule never declined the low score");
    let line = line_for("192.0.2.71");
    assert_eq!(
        line["reasons"][0]["matched"],
        "likely: bot management score 5"
    );
    assert_eq!(line["platform"]["bot_score"], 5);
    assert_eq!(line["platform"]["as_organization"], "Example Hosting");

    // A crawler the platform verified: redirected as a link preview is, not a person's click.
    let verified = cf(Some(serde_json::json!(
        {"score": 1, "verifiedBot": true, "staticResource": false}
    )));
    let r = click(
        "192.0.2.72",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        &verified,
    );
    assert_eq!(r.status, 302);
    let line = line_for("192.0.2.72");
    assert_eq!(line["preview"], true);
    assert_eq!(line["platform"]["verified_bot"], true);

    // A zone without Bot Management: the same browser is a person's click, logged as ever.
    let r = click("192.0.2.73", BROWSER, &cf(None));
    assert_eq!(r.status, 302);
    let line = line_for("192.0.2.73");
    assert_eq!(line["reasons"], serde_json::json!([]));
    assert!(line.get("platform").is_none(), "{line}");
}
