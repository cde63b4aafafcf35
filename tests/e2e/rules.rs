//! Rules and lists: the blocklist (addresses, ranges, a large list in its own KV key, an
//! unreadable client address), pushed rules and what they do to verdicts and counts.

use std::time::Duration;

use clickgate_core::token::TokenVerdict;

use crate::{
    demo, demo_with, open_token, push_ok, started_with_demo,
    support::{self, tid_of, Worker},
    BROWSER,
};

#[test]
fn blocklisted_address_and_ranges_get_1021_in_json_and_html() {
    let w = started_with_demo(&[]);
    for (ip, entry) in [
        ("203.0.113.7", "203.0.113.7"),
        ("198.51.100.23", "198.51.100.0/24"),
        ("2001:db8:bad::1", "2001:db8:bad::/48"),
    ] {
        let r = w.get("/c?offer_id=1001&aff_id=net-7", &[("cf-connecting-ip", ip)]);
        assert_eq!(r.status, 403, "{ip}");
        assert!(r.header("location").is_none());
        let body = r.json();
        assert_eq!(body["error"]["code"], 1021);
        assert_eq!(body["error"]["message"], "1021 : click fraud check");
        let reference = body["error"]["reference"].as_str().unwrap().to_owned();
        assert_eq!(open_token(&reference).verdict, TokenVerdict::Blocked);
        // The clicker is not told why; the log is.
        assert!(!r.body.contains("blocklist") && !r.body.contains(entry));
        let line = w
            .wait_for(Duration::from_secs(5), || {
                w.events("click")
                    .into_iter()
                    .find(|e| e["transaction_id"] == reference.as_str())
            })
            .unwrap();
        assert_eq!(line["verdict"], "block");
        assert_eq!(line["reasons"][0]["code"], "ip_blocklist");
        assert_eq!(line["reasons"][0]["matched"], entry);
        assert_eq!(line["rule_id"], "lists.blocked_ips");
    }

    let html = w.get(
        "/c?offer_id=1001&aff_id=net-7",
        &[
            ("cf-connecting-ip", "198.51.100.23"),
            ("accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
        ],
    );
    assert_eq!(html.status, 403);
    assert!(html
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(html.body.contains("Error 1021"));

    let neighbour = w.get(
        "/c?offer_id=1001&aff_id=net-7",
        &[("cf-connecting-ip", "198.51.101.1")],
    );
    assert_eq!(neighbour.status, 302);
}

#[test]
fn pushed_rules_change_verdicts_in_the_running_worker() {
    // The local runtime reports every client as AS64496 in DE (tests/e2e/support/serve.mjs).
    let w = Worker::start(&[("CONFIG_REFRESH_SECONDS", "1")]);
    let rule = |monitor: bool| {
        serde_json::json!([{
            "id": "dc-and-bots", "created_at": "2026-11-01T00:00:00Z", "scope": {"offers": ["1001"]},
            "strategy": {"filters": [{"type": "bot"}, {"type": "datacenter_vpn"}]},
            "decline": "medium_and_higher", "ignore_results": monitor
        }])
    };
    let click = |ua: &str| {
        w.get(
            "/c?offer_id=1001&aff_id=net-7",
            &[("user-agent", ua), ("cf-connecting-ip", "192.0.2.44")],
        )
    };

    // No rules: a bot UA is redirected.
    push_ok(&w, &demo());
    assert_eq!(click("curl/8.4.0").status, 302);

    // A bot rule: the same click is blocked with 1021, a browser still passes.
    push_ok(
        &w,
        &demo_with(&w, "bots.json", rule(false), serde_json::json!({})),
    );
    let blocked = w.wait_for(Duration::from_secs(15), || {
        (click("curl/8.4.0").status == 403).then_some(())
    });
    assert!(blocked.is_some(), "the bot rule never took effect");
    assert_eq!(click("curl/8.4.0").json()["error"]["code"], 1021);
    assert_eq!(click(BROWSER).status, 302);
    let line = w
        .wait_for(Duration::from_secs(5), || {
            w.events("click")
                .into_iter()
                .find(|e| e["verdict"] == "block")
        })
        .expect("a block line for the bot click");
    assert_eq!(line["rule_id"], "dc-and-bots");
    assert_eq!(line["reasons"][0]["code"], "bot");
    assert_eq!(line["reasons"][0]["matched"], "certain: curl");
    assert_eq!(line["probability"], "high");

    // The runtime's ASN on the datacenter list: now browsers from it are blocked too.
    push_ok(
        &w,
        &demo_with(
            &w,
            "dc.json",
            rule(false),
            serde_json::json!({"datacenter_asns": [64496]}),
        ),
    );
    let blocked = w.wait_for(Duration::from_secs(15), || {
        (click(BROWSER).status == 403).then_some(())
    });
    assert!(blocked.is_some(), "the datacenter list never took effect");
    let line = w
        .wait_for(Duration::from_secs(5), || {
            w.events("click")
                .into_iter()
                .find(|e| e["verdict"] == "block" && e["user_agent"] == BROWSER)
        })
        .expect("a block line for the browser click");
    assert_eq!(line["reasons"][0]["code"], "datacenter_asn");
    assert_eq!(line["reasons"][0]["matched"], "AS64496");
    assert_eq!(line["asn"], "64496");

    // Monitor mode: redirected, and the log says it would have been blocked.
    push_ok(
        &w,
        &demo_with(
            &w,
            "monitor.json",
            rule(true),
            serde_json::json!({"datacenter_asns": [64496]}),
        ),
    );
    let passed = w.wait_for(Duration::from_secs(15), || {
        (click(BROWSER).status == 302).then_some(())
    });
    assert!(passed.is_some(), "monitor mode never took effect");
    let r = click("curl/8.4.0");
    assert_eq!(r.status, 302);
    let tid = tid_of(r.header("location").unwrap()).to_owned();
    assert_eq!(open_token(&tid).verdict, TokenVerdict::Flagged);
    let line = w
        .wait_for(Duration::from_secs(5), || {
            w.events("click")
                .into_iter()
                .find(|e| e["transaction_id"] == tid.as_str())
        })
        .unwrap();
    assert_eq!(
        (
            line["verdict"].as_str(),
            line["declined"].as_bool(),
            line["monitor"].as_bool()
        ),
        (Some("redirect"), Some(true), Some(true))
    );
    let codes: Vec<&str> = line["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["code"].as_str())
        .collect();
    assert_eq!(codes, ["bot", "datacenter_asn"]);
}

#[test]
fn a_link_preview_under_a_bot_rule_is_redirected_and_not_counted_as_a_click() {
    const TOKEN: &str = "preview-admin-token-preview-admin";
    let w = Worker::start(&[
        ("CONFIG_REFRESH_SECONDS", "1"),
        ("COUNTS_FLUSH_MS", "200"),
        ("ADMIN_TOKEN", TOKEN),
    ]);
    let rules = serde_json::json!([{
        "id": "bots", "created_at": "2026-11-01T00:00:00Z", "scope": {"offers": ["1001"]},
        "strategy": {"filters": [{"type": "bot"}]}, "decline": "low_and_higher"
    }]);
    push_ok(
        &w,
        &demo_with(&w, "bots.json", rules, serde_json::json!({})),
    );
    let click = |ua: &str| {
        w.get(
            "/c?offer_id=1001&aff_id=unfurl-net",
            &[("user-agent", ua), ("cf-connecting-ip", "192.0.2.45")],
        )
    };
    let live = w.wait_for(Duration::from_secs(15), || {
        (w.get(
            "/c?offer_id=1001&aff_id=probe-net",
            &[("user-agent", "curl/8.4.0")],
        )
        .status
            == 403)
            .then_some(())
    });
    assert!(live.is_some(), "the bot rule never took effect");

    // Slack unfurling the link: redirected, logged as a preview.
    let preview = click("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)");
    assert_eq!(preview.status, 302, "{}", preview.body);
    let line = w
        .wait_for(Duration::from_secs(5), || {
            w.events("click")
                .into_iter()
                .find(|e| e["aff_id"] == "unfurl-net")
        })
        .expect("a log line for the preview");
    assert_eq!(line["preview"], true);
    assert_eq!(line["verdict"], "redirect");
    // A conversion reported for the preview's transaction id is nobody's.
    let tid = tid_of(preview.header("location").unwrap());
    let conversion = w.get(&format!("/postback?transaction_id={tid}"), &[]);
    assert_eq!(
        conversion.json()["status"],
        "invalid",
        "{}",
        conversion.body
    );
    assert_eq!(conversion.json()["reasons"][0], "preview_click");

    // Then a person on the same network. The report's row for the network appears with the
    // first batch that reaches the object; a counted preview would make it 2 within a few flush
    // intervals (200 ms each), so it is read again 2 s later and must still be 1.
    assert_eq!(click(BROWSER).status, 302);
    let row = || {
        let r = w.get(
            "/admin/report?group_by=affiliate",
            &[("authorization", &format!("Bearer {TOKEN}"))],
        );
        let j = r.json();
        j["rows"]
            .as_array()?
            .iter()
            .find(|row| row["affiliate"] == "unfurl-net")
            .cloned()
    };
    w.wait_for(Duration::from_secs(15), row)
        .expect("the report never counted the person's click");
    std::thread::sleep(Duration::from_secs(2));
    let report = row().expect("the row is still there");
    assert_eq!(report["clicks"], 1, "{report}");
    assert_eq!(report["allowed"], 1, "{report}");
}

#[test]
fn a_large_ip_list_pushed_from_a_file_or_written_out_lives_in_its_own_kv_key_and_blocks() {
    let w = Worker::start(&[("CONFIG_REFRESH_SECONDS", "1")]);
    push_ok(&w, &demo());
    // 50,000 /28 blocks in 10.0.0.0/8, as a provider's range export would list them.
    let list: String = (0u32..50_000)
        .map(|i| format!("10.{}.{}.{}/28\n", i >> 12, (i >> 4) & 255, (i & 15) << 4))
        .collect();
    std::fs::write(
        w.state.0.join("blocked.txt"),
        format!("# generated\n{list}"),
    )
    .unwrap();
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(demo()).unwrap()).unwrap();
    doc["lists"]["blocked_ips"] = serde_json::json!({"file": "blocked.txt"});
    let config = w.state.0.join("with-list.json");
    std::fs::write(&config, doc.to_string()).unwrap();
    let said = support::stdout_of(w.push(&config));
    assert!(
        said.contains("1 lists in their own keys with 50000 ranges"),
        "{said}"
    );

    let click = |ip: &str| {
        w.get(
            "/c?offer_id=1001&aff_id=net-7",
            &[("cf-connecting-ip", ip), ("user-agent", BROWSER)],
        )
    };
    // The decision line of a click from `ip` once the pushed list blocks it.
    let block_of = |ip: &str, list: &str| {
        let blocked = w.wait_for(Duration::from_secs(15), || {
            (click(ip).status == 403).then_some(())
        });
        assert!(blocked.is_some(), "the {list} never took effect");
        w.wait_for(Duration::from_secs(5), || {
            w.events("click")
                .into_iter()
                .find(|e| e["verdict"] == "block" && e["ip"] == ip)
        })
        .unwrap()
    };
    let line = block_of("10.3.20.33", "list file");
    assert_eq!(click("10.200.0.1").status, 302);
    assert_eq!(line["reasons"][0]["code"], "ip_blocklist");
    assert_eq!(line["reasons"][0]["matched"], "10.3.20.32/28");
    let loaded = w.events("config");
    assert!(loaded.iter().any(|e| e["status"] == "loaded"), "{loaded:?}");

    // A long list written out in the document goes to its own key the same way, so a fresh
    // isolate does not parse it within its first click.
    let written: Vec<String> = (0u32..1_001)
        .map(|i| format!("172.16.{}.{}/30", i >> 6, (i & 63) << 2))
        .collect();
    doc["lists"]["blocked_ips"] = serde_json::json!(written);
    std::fs::write(&config, doc.to_string()).unwrap();
    let said = support::stdout_of(w.push(&config));
    assert!(
        said.contains("1 lists in their own keys with 1001 ranges"),
        "{said}"
    );
    let line = block_of("172.16.15.161", "written-out list");
    assert_eq!(click("10.3.20.33").status, 302, "the file's list is gone");
    assert_eq!(line["reasons"][0]["matched"], "172.16.15.160/30");
}

#[test]
fn an_unparseable_cf_connecting_ip_no_longer_skips_the_blocklist() {
    let w = started_with_demo(&[]);
    let r = w.get(
        "/c?offer_id=1001&aff_id=net-7",
        &[
            ("cf-connecting-ip", "203.0.113.7, 10.0.0.1"),
            ("user-agent", BROWSER),
        ],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let line = w.decision_for(&r);
    assert_eq!(line["reasons"][0]["code"], "ip_unreadable", "{line}");
    assert_eq!(line["reasons"][0]["rule_id"], "lists.blocked_ips");
    let fault = w.wait_for(Duration::from_secs(5), || {
        w.events("fault")
            .into_iter()
            .find(|f| f["what"] == "client_ip")
    });
    let fault = fault.expect("no client_ip fault line");
    assert!(
        fault["problem"]
            .as_str()
            .unwrap()
            .contains("203.0.113.7, 10.0.0.1"),
        "{fault}"
    );
    // Without the header (a local run) there is no address to block on, as before.
    let r = w.get("/c?offer_id=1001&aff_id=net-7", &[("user-agent", BROWSER)]);
    assert_eq!(r.status, 302);
}
