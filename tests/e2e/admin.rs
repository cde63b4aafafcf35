//! The admin API: reading and replacing the config, and who its token lets in.

use std::time::Duration;

use crate::support::{tid_of, Worker};
use crate::{demo, push_ok, started_with_demo, BROWSER};

#[test]
fn the_admin_api_reads_and_replaces_the_config_validating_it_like_the_cli() {
    const TOKEN: &str = "config-admin-token-config-admin";
    let w = started_with_demo(&[("CONFIG_REFRESH_SECONDS", "1"), ("ADMIN_TOKEN", TOKEN)]);
    let auth = format!("Bearer {TOKEN}");
    let call = |method: &str, body: &str, token: &str| {
        w.request_with_body(method, "/admin/config", &[("authorization", token)], body)
    };
    assert_eq!(call("GET", "", "Bearer nope").status, 401);
    let current = call("GET", "", &auth);
    assert_eq!(current.status, 200);
    let mut doc = current.json();
    assert_eq!(doc["offers"][0]["id"], "1001");

    let refused = call(
        "PUT",
        r#"{"version": 1, "offers": [{"id": "x", "landing_ulr": "https://a/"}]}"#,
        &auth,
    );
    assert_eq!(refused.status, 400, "{}", refused.body);
    let problems = refused.json()["error"]["problems"].clone();
    assert!(
        problems
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["path"] == "offers[0].landing_ulr"),
        "{problems}"
    );
    assert_eq!(
        call("GET", "", &auth).json(),
        doc,
        "a refused document leaves KV alone"
    );

    doc["offers"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "id": "1003", "landing_url": "https://shop.example/new?t={transaction_id}"
        }));
    let saved = call("PUT", &doc.to_string(), &auth);
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert_eq!(saved.json()["offers"], 3);
    let live = w.wait_for(Duration::from_secs(15), || {
        (w.get("/c?offer_id=1003&aff_id=net-7", &[]).status == 302).then_some(())
    });
    assert!(live.is_some(), "the saved config never reached the isolate");
}

#[test]
fn an_empty_or_short_admin_token_opens_nothing_and_auth_schemes_are_case_insensitive() {
    // `Basic dTo=` is user `u` with an empty password: it once matched an empty ADMIN_TOKEN and
    // read the config, signing secrets included.
    let w = started_with_demo(&[("ADMIN_TOKEN", "")]);
    let r = w.get("/admin/config", &[("authorization", "Basic dTo=")]);
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "admin_off");
    let blocked = w.request_with_body(
        "POST",
        "/admin/networks/net-7/block",
        &[("authorization", "Bearer ")],
        r#"{"by": "mallory"}"#,
    );
    assert_eq!(blocked.status, 503);
    let faults = w.wait_for(Duration::from_secs(5), || {
        let f = w.events("fault");
        (f.iter().filter(|l| l["what"] == "admin_token").count() >= 2).then_some(f)
    });
    assert!(faults.is_some(), "no admin_token fault lines");

    let w = w.restart(&[("ADMIN_TOKEN", "fifteen-bytes!!")]);
    // base64("u:fifteen-bytes!!")
    let short = "Basic dTpmaWZ0ZWVuLWJ5dGVzISE=";
    assert_eq!(
        w.get("/admin/config", &[("authorization", short)]).status,
        503
    );

    const TOKEN: &str = "sixteen-bytes-ok";
    let w = w.restart(&[("ADMIN_TOKEN", TOKEN)]);
    for auth in [
        format!("Bearer {TOKEN}"),
        format!("bearer {TOKEN}"),
        format!("BEARER {TOKEN}"),
        // base64("ops:sixteen-bytes-ok")
        "Basic b3BzOnNpeHRlZW4tYnl0ZXMtb2s=".to_owned(),
        "basic b3BzOnNpeHRlZW4tYnl0ZXMtb2s=".to_owned(),
    ] {
        let r = w.get("/admin/config", &[("authorization", &auth)]);
        assert_eq!(r.status, 200, "{auth}: {}", r.body);
    }
    assert_eq!(
        w.get("/admin/config", &[("authorization", "Basic dTo=")])
            .status,
        401
    );
}

#[test]
fn a_secret_named_in_the_config_is_read_from_the_worker_and_never_shown() {
    const TOKEN: &str = "secret-admin-token-secret-admin";
    const POSTBACK: &str = "acme-postback-secret-from-the-worker";
    let w = Worker::start(&[
        ("CONFIG_REFRESH_SECONDS", "1"),
        ("ADMIN_TOKEN", TOKEN),
        ("ACME_POSTBACK_SECRET", POSTBACK),
    ]);
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(demo()).unwrap()).unwrap();
    doc["advertisers"][0]["postback_secret"] =
        serde_json::json!({"secret": "ACME_POSTBACK_SECRET"});
    let config = w.state.0.join("named-secret.json");
    std::fs::write(&config, doc.to_string()).unwrap();
    push_ok(&w, &config);

    // The advertiser's postbacks are checked against the Worker's secret.
    let r = w.get(
        "/c?offer_id=1001&aff_id=net-7",
        &[("cf-connecting-ip", "192.0.2.51"), ("user-agent", BROWSER)],
    );
    assert_eq!(r.status, 302, "{}", r.body);
    let tid = tid_of(r.header("location").unwrap()).to_owned();
    let guessed = w.get(
        &format!("/postback?transaction_id={tid}&event=sale&secret=guess"),
        &[],
    );
    assert_eq!(guessed.status, 401, "{}", guessed.body);
    let sale = w.get(
        &format!("/postback?transaction_id={tid}&event=sale"),
        &[("x-postback-secret", POSTBACK)],
    );
    assert_eq!(sale.json()["status"], "approved", "{}", sale.body);

    // The document shown back names the secret and does not hold it.
    let auth = format!("Bearer {TOKEN}");
    let call = |method: &str, body: &str| {
        w.request_with_body(method, "/admin/config", &[("authorization", &auth)], body)
    };
    let shown = call("GET", "");
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert!(!shown.body.contains(POSTBACK), "{}", shown.body);
    assert_eq!(
        shown.json()["advertisers"][0]["postback_secret"],
        serde_json::json!({"secret": "ACME_POSTBACK_SECRET"})
    );

    // A document naming a secret the Worker does not have is refused, naming it.
    doc["advertisers"][0]["postback_secret"] = serde_json::json!({"secret": "NOT_SET_HERE"});
    let refused = call("PUT", &doc.to_string());
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(
        refused.json()["error"]["problems"][0]["path"],
        "advertisers[0].postback_secret"
    );
    assert!(
        refused
            .body
            .contains("names the Worker secret `NOT_SET_HERE`, which is not set"),
        "{}",
        refused.body
    );
}

#[test]
fn a_blocklisted_affiliate_is_blocked_until_removed_and_its_entry_says_who_and_when() {
    const TOKEN: &str = "blocklist-admin-token-blocklist";
    let w = started_with_demo(&[("CONFIG_REFRESH_SECONDS", "1"), ("ADMIN_TOKEN", TOKEN)]);
    let auth = format!("Bearer {TOKEN}");
    let call = |method: &str, path: &str, body: &str| {
        w.request_with_body(method, path, &[("authorization", &auth)], body)
    };
    let click = || w.get("/c?offer_id=1001&aff_id=net-7", &[("user-agent", BROWSER)]);
    assert_eq!(click().status, 302, "the affiliate is not blocked before");
    assert_eq!(
        call("GET", "/admin/blocklist", "").json()["entries"],
        serde_json::json!([])
    );

    let entry = r#"{"aff_id": "net-7", "by": "alice@example.com", "note": "chargebacks"}"#;
    let added = call("POST", "/admin/blocklist", entry);
    assert_eq!(added.status, 200, "{}", added.body);
    assert_eq!(added.json()["entries"], 1);
    let blocked = w.wait_for(Duration::from_secs(15), || {
        let r = click();
        (r.status == 403).then_some(r)
    });
    let blocked = blocked.expect("the listing never reached the isolate");
    let line = w.decision_for(&blocked);
    assert_eq!(line["reasons"][0]["code"], "blocklisted", "{line}");
    assert_eq!(line["reasons"][0]["matched"], "affiliate net-7", "{line}");
    // Another affiliate is not touched.
    let other = w.get("/c?offer_id=1001&aff_id=net-8", &[("user-agent", BROWSER)]);
    assert_eq!(other.status, 302);

    let listed = call("GET", "/admin/blocklist", "").json();
    let [listed] = listed["entries"].as_array().unwrap().as_slice() else {
        panic!("{listed}")
    };
    assert_eq!(
        (&listed["aff_id"], &listed["by"], &listed["note"]),
        (
            &"net-7".into(),
            &"alice@example.com".into(),
            &"chargebacks".into()
        )
    );
    let at = listed["at"].as_u64().expect("when it was listed");
    assert!(at >= crate::now_ms() - 3_600_000, "{listed}");
    let logged = w.wait_for(Duration::from_secs(5), || {
        w.events("blocklist")
            .into_iter()
            .find(|e| e["action"] == "add" && e["by"] == "alice@example.com")
    });
    assert!(logged.is_some(), "the addition was not logged");

    let removed = call(
        "POST",
        "/admin/blocklist/remove",
        r#"{"aff_id": "net-7", "by": "bob@example.com"}"#,
    );
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert_eq!(removed.json()["entries"], 0);
    let open = w.wait_for(Duration::from_secs(15), || {
        (click().status == 302).then_some(())
    });
    assert!(open.is_some(), "the removal never reached the isolate");
    let again = call(
        "POST",
        "/admin/blocklist/remove",
        r#"{"aff_id": "net-7", "by": "bob@example.com"}"#,
    );
    assert_eq!(again.status, 404, "{}", again.body);
}
