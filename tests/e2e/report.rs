//! What operators see: the fraud report and the Analytics Engine dataset.

use std::time::Duration;

use crate::{
    demo, push_ok, started_with_demo,
    support::{self, tid_of, Worker},
    BROWSER,
};

#[test]
fn the_fraud_report_counts_every_click_and_conversion_exactly_and_explains_one() {
    const TOKEN: &str = "report-admin-token-report-admin";
    let w = started_with_demo(&[
        ("CONFIG_REFRESH_SECONDS", "1"),
        ("COUNTS_FLUSH_MS", "200"),
        ("ADMIN_TOKEN", TOKEN),
    ]);
    let auth = format!("Bearer {TOKEN}");
    // Each click with its sub ID and its country: what Miniflare hands the Worker as `request.cf`
    // (it replaces the harness's, whose country is DE).
    let click = |offer: &str, aff: &str, ip: &str, sub: &str, country: &str| {
        let cf = serde_json::json!({"asn": 64496, "asOrganization": "clickgate test",
                                    "country": country, "colo": "FRA"});
        let r = w.get(
            &format!("/c?offer_id={offer}&aff_id={aff}{sub}"),
            &[
                ("cf-connecting-ip", ip),
                ("user-agent", BROWSER),
                ("mf-cf-blob", &cf.to_string()),
            ],
        );
        match r.status {
            // Offer 1002's landing page takes the id as `click=`.
            302 => {
                let location = r.header("location").unwrap().replace("click=", "tid=");
                tid_of(&location).to_owned()
            }
            403 => r.json()["error"]["reference"].as_str().unwrap().to_owned(),
            other => panic!("click answered {other}: {}", r.body),
        }
    };
    // 5 + 3 blocked on net-7's offer 1001, 4 on net-9's offer 1002. net-7's allowed clicks come
    // from sub IDs `spring` (3) and `autumn` (2), and from the US (3) and Germany (2); its blocked
    // ones from `spring` and France; net-9's from no sub ID and Germany.
    let allowed: Vec<String> = (0..5)
        .map(|i| {
            let sub = if i < 3 {
                "&sub1=spring"
            } else {
                "&sub1=autumn"
            };
            let country = if i % 2 == 0 { "US" } else { "DE" };
            click(
                "1001",
                "net-7",
                &format!("192.0.2.{}", 70 + i),
                sub,
                country,
            )
        })
        .collect();
    let blocked: Vec<String> = (0..3)
        .map(|i| {
            let ip = format!("198.51.100.{}", 70 + i);
            click("1001", "net-7", &ip, "&sub1=spring", "FR")
        })
        .collect();
    for i in 0..4 {
        click("1002", "net-9", &format!("192.0.2.{}", 90 + i), "", "DE");
    }
    let postback = |tid: &str| w.get(&format!("/postback?transaction_id={tid}"), &[]);
    assert_eq!(postback(&allowed[0]).json()["status"], "approved");
    assert_eq!(postback(&blocked[0]).json()["status"], "invalid");

    let report = |query: &str, auth: &str| {
        w.get(
            &format!("/admin/report?{query}"),
            &[("authorization", auth)],
        )
    };
    // Batches reach the objects within a flush; then every count is exact.
    let grouped = w
        .wait_for(Duration::from_secs(15), || {
            let r = report("group_by=affiliate,offer", &auth);
            let j = r.json();
            (j["total"]["clicks"] == 12 && j["total"]["conversions"] == 2).then_some(j)
        })
        .expect("the report never counted the 12 clicks and 2 conversions");
    let rows = grouped["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{grouped}");
    let net7 = &rows[0];
    assert_eq!(
        (&net7["affiliate"], &net7["offer"]),
        (&serde_json::json!("net-7"), &serde_json::json!("1001"))
    );
    assert_eq!(
        [
            &net7["clicks"],
            &net7["allowed"],
            &net7["blocked"],
            &net7["would_block"]
        ],
        [8, 5, 3, 0].map(serde_json::Value::from).each_ref()
    );
    assert_eq!(net7["reasons"]["ip_blocklist"], 3);
    assert_eq!(
        (&net7["conversions"], &net7["approved"], &net7["invalid"]),
        (&2.into(), &1.into(), &1.into())
    );
    assert_eq!(net7["conversion_reasons"]["flagged_click"], 1);
    assert_eq!(net7["cr"], 0.25);
    assert_eq!(net7["block_rate"], 0.375);
    assert_eq!(
        (&rows[1]["affiliate"], &rows[1]["clicks"]),
        (&"net-9".into(), &4.into())
    );
    assert_eq!(grouped["missing_networks"], serde_json::json!([]));

    // Grouped by sub ID (each with its network) and by country: the same 12 clicks.
    let rows_of = |query: &str| -> Vec<(String, u64, u64)> {
        let j = report(query, &auth).json();
        assert_eq!(j["total"]["clicks"], 12, "{j}");
        j["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let key = ["affiliate", "sub_id", "country"]
                    .iter()
                    .filter_map(|g| r[*g].as_str())
                    .collect::<Vec<_>>()
                    .join("/");
                (
                    key,
                    r["clicks"].as_u64().unwrap(),
                    r["blocked"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let row = |k: &str, clicks, blocked| (k.to_owned(), clicks, blocked);
    assert_eq!(
        rows_of("group_by=sub_id"),
        [
            row("net-7/spring", 6, 3),
            row("net-9/", 4, 0),
            row("net-7/autumn", 2, 0)
        ]
    );
    assert_eq!(
        rows_of("group_by=country"),
        [row("DE", 6, 0), row("FR", 3, 3), row("US", 3, 0)]
    );
    assert_eq!(
        rows_of("group_by=country,affiliate"),
        [
            row("net-9/DE", 4, 0),
            row("net-7/FR", 3, 3),
            row("net-7/US", 3, 0),
            row("net-7/DE", 2, 0)
        ]
    );
    let by_country = report("group_by=country", &auth).json();
    assert_eq!(by_country["rows"][1]["reasons"]["ip_blocklist"], 3);
    assert_eq!(by_country["group_by"], serde_json::json!(["country"]));
    let bad = report("group_by=sub_id,offer", &auth);
    assert_eq!(bad.status, 400, "{}", bad.body);

    let by_advertiser = report("group_by=advertiser", &auth).json();
    assert_eq!(by_advertiser["rows"][0]["advertiser"], "acme");
    assert_eq!(by_advertiser["rows"][0]["clicks"], 12);

    let csv = report("group_by=offer&format=csv", &auth);
    assert_eq!(csv.status, 200);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(
        lines[0],
        "offer,clicks,allowed,blocked,would_block,block_rate,conversions,approved,invalid,cr,reason:ip_blocklist,conversion_reason:flagged_click"
    );
    assert_eq!(lines[1], "1001,8,5,3,0,0.375,2,1,1,0.25,3,1");
    assert_eq!(lines[2], "1002,4,4,0,0,0,0,0,0,0,0,0");

    // A range with nothing in it, and a question the report cannot answer.
    let empty = report("from=2026-01-01&to=2026-01-02", &auth).json();
    assert_eq!(empty["total"]["clicks"], 0);
    let bad = report("group_by=campaign", &auth);
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("campaign"));

    // Admin auth: no token, a wrong one, the right one.
    assert_eq!(w.get("/admin/report", &[]).status, 401);
    assert_eq!(report("", "Bearer wrong-token").status, 401);
    assert_eq!(report("", &auth).status, 200);

    // Explain: the blocked click's whole decision; the clean one has nothing kept.
    let explain = |tid: &str| {
        w.get(
            &format!("/admin/explain/{tid}"),
            &[("authorization", &auth)],
        )
    };
    let why = w
        .wait_for(Duration::from_secs(10), || {
            let j = explain(&blocked[1]).json();
            (j["kept"] == true).then_some(j)
        })
        .expect("the blocked click's decision was never kept");
    assert_eq!(why["verdict"], "block");
    assert_eq!(why["decision"]["reasons"][0]["code"], "ip_blocklist");
    // The client's IP is kept as its hash, never as text.
    let hash = clickgate_core::network::keys::ip_hash("198.51.100.71");
    assert_eq!(
        why["decision"]["reasons"][0]["value"],
        format!("ip_hash:{hash:016x}")
    );
    assert_eq!(why["decision"]["ip_hash"], format!("{hash:016x}"));
    assert!(!why.to_string().contains("198.51.100.71"), "{why}");
    assert_eq!(
        why["decision"]["transaction_id"].as_str(),
        Some(blocked[1].as_str())
    );
    let clean = explain(&allowed[1]).json();
    assert_eq!(
        (&clean["kept"], &clean["verdict"]),
        (&false.into(), &"redirect".into())
    );
    let mut forged = blocked[1].clone().into_bytes();
    forged[14] = if forged[14] == b'A' { b'B' } else { b'A' };
    let r = explain(&String::from_utf8(forged).unwrap());
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (404, Some("unknown_transaction"))
    );
    assert_eq!(
        w.get(&format!("/admin/explain/{}", blocked[1]), &[]).status,
        401
    );

    // The same through the CLI.
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(support::cli())
            .args(args)
            .args(["--url", &w.base])
            .env("CLICKGATE_ADMIN_TOKEN", TOKEN)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{args:?}: {said} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        said
    };
    let table = cli(&["report", "--group-by", "affiliate"]);
    assert!(
        table.contains("net-7") && table.contains("37.5%"),
        "{table}"
    );
    assert_eq!(
        cli(&["report", "--group-by", "offer", "--format", "csv"]),
        csv.body
    );
    let by_sub = cli(&["report", "--group-by", "sub_id"]);
    assert!(
        by_sub.contains("sub_id") && by_sub.contains("spring") && by_sub.contains("autumn"),
        "{by_sub}"
    );
    let explained = cli(&["explain", &blocked[1]]);
    assert!(explained.contains("ip_blocklist"), "{explained}");

    // The report page in a real browser, with data, and a screenshot of it.
    let page = w.get("/admin/", &[]);
    assert_eq!(page.status, 401);
    assert!(page
        .header("www-authenticate")
        .unwrap()
        .starts_with("Basic"));
    let shots = support::root().join("target/e2e/report-page");
    // As a person would: the browser's own prompt answered with the token as the password.
    let with_login = w
        .base
        .replacen("http://", &format!("http://ops:{TOKEN}@"), 1);
    let seen = support::drive_report_page(&format!("{with_login}/admin/"), &shots, "net-9");
    let dom = seen["desktop"].as_str().unwrap_or_default();
    assert!(
        dom.contains(r#"data-state="loaded""#),
        "the page never loaded: {dom}"
    );
    // Offers by the config's names, each with its id beside it.
    assert!(
        dom.contains("Acme spring sale<small>1001</small>")
            && dom.contains("Acme newsletter lead<small>1002</small>"),
        "{dom}"
    );
    assert!(
        dom.contains(r#"data-label="affiliate"><span>net-7</span></td>"#),
        "{dom}"
    );
    assert_eq!(seen["desktop_fits"], true, "a table wider than a desktop");
    assert!(dom.contains("<li>ip_blocklist: 3 clicks</li>"), "{dom}");
    // On a phone every cell is within the 390 px width.
    let phone = &seen["phone"];
    assert!(
        phone["scroll_width"].as_f64() <= Some(390.0)
            && phone["widest_cell"].as_f64() <= Some(390.0),
        "{phone}"
    );
    // A block is asked about first and sent only once confirmed.
    assert_eq!(
        seen["asked"],
        "Block every click of network net-9 until 00:00 UTC?"
    );
    assert_eq!(
        (
            &seen["posted_while_asking"],
            &seen["closed_by_cancel"],
            &seen["posted_after_cancel"]
        ),
        (&0.into(), &true.into(), &0.into())
    );
    assert_eq!(
        seen["posts"],
        serde_json::json!([format!("{}/admin/networks/net-9/block", w.base)])
    );
    let said = seen["status"].as_str().unwrap_or_default();
    assert!(
        said.starts_with("net-9: blocked until ") && said.ends_with("(by ops@example.com)"),
        "{said}"
    );
    // Isolates hear of the block with their next batch's answer.
    w.wait_for(Duration::from_secs(10), || {
        let r = w.get(
            "/c?offer_id=1002&aff_id=net-9",
            &[("cf-connecting-ip", "192.0.2.99"), ("user-agent", BROWSER)],
        );
        (r.status == 403).then_some(())
    })
    .expect("net-9's clicks were still let through after the page blocked it");
    // The grouping control switched to sub ID and to country, on a phone and on a desktop.
    let sub_table = seen["grouped"]["sub_id"]["table"]
        .as_str()
        .unwrap_or_default();
    assert!(
        sub_table.contains(r#"data-label="sub_id"><span>spring</span>"#)
            && sub_table.contains(r#"data-label="sub_id"><span>autumn</span>"#),
        "{sub_table}"
    );
    let country_table = seen["grouped"]["country"]["table"]
        .as_str()
        .unwrap_or_default();
    for country in ["DE", "FR", "US"] {
        assert!(
            country_table.contains(&format!(r#"data-label="country"><span>{country}</span>"#)),
            "{country}: {country_table}"
        );
    }
    for group in ["sub_id", "country"] {
        let widest = seen["grouped"][group]["phone_widest_cell"].as_f64();
        assert!(widest <= Some(390.0), "{group}: a cell ends at {widest:?}");
    }
    for name in [
        "report-desktop.png",
        "report-phone.png",
        "report-phone-table.png",
        "report-phone-confirm.png",
        "report-phone-sub_id.png",
        "report-desktop-sub_id.png",
        "report-phone-country.png",
        "report-desktop-country.png",
    ] {
        let png = std::fs::read(shots.join(name)).expect("a screenshot");
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "{name}: {} bytes",
            png.len()
        );
    }
    println!("report page screenshots: {}", shots.display());

    // Listed in `networks[]` now, net-7 has an object of its own; the decisions it had kept in
    // the shared object while unlisted are still explained.
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(demo()).unwrap()).unwrap();
    doc["networks"] = serde_json::json!([{"id": "net-7"}]);
    let file = w.state.0.join("net-7-listed.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let before = w.get("/healthz", &[]).json()["config"].clone();
    push_ok(&w, &file);
    w.wait_for(Duration::from_secs(10), || {
        (w.get("/healthz", &[]).json()["config"] != before).then_some(())
    })
    .expect("the config listing net-7 never came into force");
    let moved = explain(&blocked[1]).json();
    assert_eq!(
        (&moved["kept"], &moved["decision"]["reasons"][0]["code"]),
        (&true.into(), &"ip_blocklist".into()),
        "{moved}"
    );
}

#[test]
fn decisions_go_to_the_analytics_engine_dataset_the_config_names() {
    let w = Worker::start(&[("CONFIG_REFRESH_SECONDS", "1")]);
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(demo()).unwrap()).unwrap();
    doc["analytics"] = serde_json::json!({"binding": "NO_SUCH_BINDING"});
    let file = w.state.0.join("analytics-missing.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    push_ok(&w, &file);
    // A binding the deployment lacks: clicks flow, the fault is reported once.
    for _ in 0..3 {
        assert_eq!(
            w.get("/c?offer_id=1001&aff_id=net-7", &[("user-agent", BROWSER)])
                .status,
            302
        );
    }
    let analytics_faults = || -> Vec<serde_json::Value> {
        w.events("fault")
            .into_iter()
            .filter(|e| e["what"] == "analytics_engine")
            .collect()
    };
    w.wait_for(Duration::from_secs(5), || {
        (!analytics_faults().is_empty()).then_some(())
    })
    .expect("the missing binding was never reported");

    doc["analytics"] = serde_json::json!({"binding": support::ANALYTICS_BINDING});
    let file = w.state.0.join("analytics.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    push_ok(&w, &file);
    let reference = w
        .wait_for(Duration::from_secs(15), || {
            let r = w.get(
                "/c?offer_id=1001&aff_id=net-7",
                &[
                    ("cf-connecting-ip", "198.51.100.5"),
                    ("user-agent", BROWSER),
                ],
            );
            let tid = r.json()["error"]["reference"].as_str()?.to_owned();
            w.events("analytics_point")
                .iter()
                .any(|p| p["blobs"][8] == tid.as_str())
                .then_some(tid)
        })
        .expect("no data point for a blocked click");
    let point = w
        .events("analytics_point")
        .into_iter()
        .find(|p| p["blobs"][8] == reference.as_str())
        .unwrap();
    assert_eq!(point["indexes"], serde_json::json!(["net-7"]));
    assert_eq!(
        point["blobs"].as_array().unwrap()[..6],
        [
            "block",
            "1001",
            "net-7",
            "acme",
            "lists.blocked_ips",
            "ip_blocklist"
        ]
        .map(serde_json::Value::from)
    );
    assert_eq!(point["doubles"], serde_json::json!([1, 1, 0, 0]));
    // Counted once more at the end, when every line the three clicks logged has long arrived.
    let faults = analytics_faults();
    assert_eq!(faults.len(), 1, "{faults:?}");
}

/// The operator sizes the log: under `"log": "none"` a clean click writes no line and a blocked
/// one does, and the report counts both.
#[test]
fn under_log_none_a_clean_click_is_not_logged_a_blocked_one_is_and_the_report_counts_both() {
    const TOKEN: &str = "log-none-admin-token-log-none-0001";
    let w = Worker::start(&[
        ("CONFIG_REFRESH_SECONDS", "1"),
        ("COUNTS_FLUSH_MS", "200"),
        ("ADMIN_TOKEN", TOKEN),
    ]);
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(demo()).unwrap()).unwrap();
    doc["log"] = serde_json::json!("none");
    let file = w.state.0.join("log-none.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    push_ok(&w, &file);
    let click = |aff: &str, ip: &str| {
        w.get(
            &format!("/c?offer_id=1001&aff_id={aff}"),
            &[("cf-connecting-ip", ip), ("user-agent", BROWSER)],
        )
    };
    let line_of = |tid: &str| {
        w.events("click")
            .into_iter()
            .find(|e| e["transaction_id"] == tid)
    };
    // Until the document is in force, warm-up clicks on a network of their own.
    w.wait_for(Duration::from_secs(15), || {
        let r = click("warm-up", "198.51.100.9");
        let tid = r.json()["error"]["reference"].as_str()?.to_owned();
        w.wait_for(Duration::from_secs(2), || line_of(&tid))
            .filter(|line| line["log"] == "none")
    })
    .expect("the document with \"log\": \"none\" never came into force");

    let blocked = click("quiet-1", "198.51.100.10");
    assert_eq!(blocked.status, 403);
    let blocked_tid = blocked.json()["error"]["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let clean = click("quiet-1", "192.0.2.10");
    assert_eq!(clean.status, 302);
    let clean_tid = tid_of(clean.header("location").unwrap()).to_owned();

    let line = w
        .wait_for(Duration::from_secs(5), || line_of(&blocked_tid))
        .expect("the blocked click was not logged");
    assert_eq!(
        (&line["verdict"], &line["reasons"][0]["code"], &line["log"]),
        (&"block".into(), &"ip_blocklist".into(), &"none".into())
    );
    let row = w
        .wait_for(Duration::from_secs(15), || {
            w.report_row(TOKEN, "quiet-1").filter(|r| r["clicks"] == 2)
        })
        .expect("the report never counted quiet-1's two clicks");
    assert_eq!((&row["allowed"], &row["blocked"]), (&1.into(), &1.into()));
    // The clean click's line would have been printed before its counts were sent: there is none.
    assert!(line_of(&clean_tid).is_none(), "the clean click was logged");
    assert!(
        !w.raw_lines("click").iter().any(|l| l.contains(&clean_tid)),
        "the clean click's id is in the log"
    );
}
