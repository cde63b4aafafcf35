//! The networks' Durable Objects: duplicate and flood counts kept across restarts, a flooding
//! network's block for the day, the shared objects of networks not in the config, and what a
//! hung or failing object must not hold up.

use std::time::Duration;

use crate::{
    demo, demo_with, now_ms, push_demo_networks, push_ok, signed_click, started_with_demo,
    support::{self, tid_of, Worker},
    BROWSER,
};

#[test]
fn duplicate_ips_and_sub_id_floods_are_counted_in_the_networks_object_across_restarts() {
    let vars = [("CONFIG_REFRESH_SECONDS", "1"), ("COUNTS_FLUSH_MS", "200")];
    let w = Worker::start(&vars);
    let rules = serde_json::json!([{
        "id": "counts", "created_at": "2026-11-01T00:00:00Z", "scope": {"offers": ["1001"]},
        "strategy": {"filters": [
            {"type": "duplicate_ip", "max": 2, "window_hours": 24},
            {"type": "sub_id_validity", "max": 5}
        ]},
        "decline": "low_and_higher"
    }]);
    push_ok(
        &w,
        &demo_with(&w, "counts.json", rules, serde_json::json!({})),
    );
    let click = |w: &Worker, aff: &str, ip: &str, sub: &str| {
        w.get(
            &format!("/c?offer_id=1001&aff_id={aff}&sub1={sub}"),
            &[("user-agent", BROWSER), ("cf-connecting-ip", ip)],
        )
    };
    let code = |w: &Worker, r: &support::Reply| {
        w.decision_for(r)["reasons"][0]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };

    // One IP: two clicks pass, the third is a duplicate. Another IP is untouched.
    assert_eq!(click(&w, "net-dup", "192.0.2.10", "s").status, 302);
    assert_eq!(click(&w, "net-dup", "192.0.2.10", "s").status, 302);
    let third = click(&w, "net-dup", "192.0.2.10", "s");
    assert_eq!(third.status, 403, "{}", third.body);
    assert_eq!(code(&w, &third), "duplicate_ip");
    assert_eq!(click(&w, "net-dup", "192.0.2.11", "s").status, 302);

    // One network cycling sub IDs from fresh IPs: the sixth distinct sub ID is a flood.
    let statuses: Vec<u16> = (0..8)
        .map(|i| {
            click(
                &w,
                "net-sub",
                &format!("100.64.0.{}", 10 + i),
                &format!("f{i}"),
            )
            .status
        })
        .collect();
    assert_eq!(
        statuses,
        [302, 302, 302, 302, 302, 403, 403, 403],
        "{:?}",
        w.events("click").last()
    );
    let flood = click(&w, "net-sub", "100.64.0.99", "f99");
    assert_eq!(code(&w, &flood), "sub_id_validity");
    // Other networks are counted apart.
    assert_eq!(click(&w, "net-other", "100.64.0.99", "f99").status, 302);

    // Let the isolate flush to the objects, then restart the runtime on the same storage.
    std::thread::sleep(Duration::from_millis(1500));
    let w = w.restart(&vars);
    // A fresh isolate knows nothing yet: each network's first click is judged on its own count
    // (the documented lag of one flush), and the object's answer to that flush restores the rest.
    assert_eq!(click(&w, "net-dup", "192.0.2.10", "s").status, 302);
    assert_eq!(click(&w, "net-sub", "100.64.0.200", "g").status, 302);
    std::thread::sleep(Duration::from_millis(1500));
    let dup = click(&w, "net-dup", "192.0.2.10", "s");
    assert_eq!(dup.status, 403, "{}", dup.body);
    assert_eq!(code(&w, &dup), "duplicate_ip");
    let sub = click(&w, "net-sub", "100.64.0.201", "h");
    assert_eq!(sub.status, 403, "{}", sub.body);
    assert_eq!(code(&w, &sub), "sub_id_validity");
    let line = w
        .wait_for(Duration::from_secs(5), || {
            w.events("click")
                .into_iter()
                .find(|e| e["verdict"] == "block" && e["reasons"][0]["code"] == "duplicate_ip")
        })
        .expect("a block line for the duplicate");
    // The object's three clicks, the one after the restart, and this one.
    assert_eq!(line["reasons"][0]["value"], "192.0.2.10: 5");
    assert!(w.events("fault").is_empty(), "{:?}", w.events("fault"));
}

#[test]
fn a_device_through_a_second_affiliate_on_one_offer_is_declined_by_the_devices_ledger() {
    let vars = [("CONFIG_REFRESH_SECONDS", "1"), ("COUNTS_FLUSH_MS", "200")];
    let w = Worker::start(&vars);
    let rules = serde_json::json!([{
        "id": "devices", "created_at": "2026-11-01T00:00:00Z", "scope": {"offers": ["1001", "1002"]},
        "strategy": {"filters": [{"type": "duplicate_device_id"}]},
        "decline": "medium_and_higher"
    }]);
    push_ok(
        &w,
        &demo_with(&w, "devices.json", rules, serde_json::json!({})),
    );
    let click = |w: &Worker, offer: &str, aff: &str, device: &str| {
        w.get(
            &format!("/c?offer_id={offer}&aff_id={aff}&device_id={device}"),
            &[("user-agent", BROWSER), ("cf-connecting-ip", "192.0.2.40")],
        )
    };
    let reason = |w: &Worker, r: &support::Reply| w.decision_for(r)["reasons"][0].clone();

    // The device's first click on offer 1001, then the same device on it through another
    // affiliate: declined, the decision naming what it saw and where.
    assert_eq!(click(&w, "1001", "net-a", "gaid-6f1c").status, 302);
    let second = click(&w, "1001", "net-b", "gaid-6f1c");
    assert_eq!(second.status, 403, "{}", second.body);
    let why = reason(&w, &second);
    assert_eq!(why["code"], "duplicate_device_id");
    assert_eq!(why["value"], "offer: 2");
    // Another offer, or another device, is untouched.
    assert_eq!(click(&w, "1002", "net-b", "gaid-6f1c").status, 302);
    assert_eq!(click(&w, "1001", "net-b", "gaid-0000").status, 302);

    // Once flushed, the ledger's object holds the offer's count for every isolate: after a
    // restart, a fresh isolate's first click is judged on its own count (the documented lag of
    // one flush), and the ledger's answer to that flush brings back the rest.
    std::thread::sleep(Duration::from_millis(1500));
    let w = w.restart(&vars);
    assert_eq!(click(&w, "1001", "net-c", "gaid-6f1c").status, 302);
    std::thread::sleep(Duration::from_millis(1500));
    let fourth = click(&w, "1001", "net-d", "gaid-6f1c");
    assert_eq!(fourth.status, 403, "{}", fourth.body);
    assert_eq!(reason(&w, &fourth)["value"], "offer: 4");
    assert!(w.events("fault").is_empty(), "{:?}", w.events("fault"));
}

#[test]
fn a_flooding_network_in_report_only_is_redirected_and_logged_would_block() {
    let w = Worker::start(&[("CONFIG_REFRESH_SECONDS", "1"), ("COUNTS_FLUSH_MS", "200")]);
    push_demo_networks(
        &w,
        "report-only.json",
        serde_json::json!([
            {"id": "net-watch", "flood": {"per_minute": 5, "mode": "report_only"}}
        ]),
    );
    let click = |w: &Worker| {
        w.get(
            "/c?offer_id=1001&aff_id=net-watch&sub1=a",
            &[("cf-connecting-ip", "192.0.2.91")],
        )
    };
    // The object trips as it would in enforce mode; the isolate, hearing of it, lets the clicks
    // through and logs what the block would have done.
    let would = w.wait_for(Duration::from_secs(20), || {
        let r = click(&w);
        assert_eq!(r.status, 302, "a report-only network is never blocked");
        let line = w.decision_for(&r);
        line["would_block"].is_object().then_some(line)
    });
    let line = would.expect("no click was logged would_block");
    assert_eq!(line["verdict"], "redirect");
    assert_eq!(line["would_block"]["code"], "click_flood");
    assert_eq!(line["would_block"]["matched"], "per_minute");
    assert_eq!(line["would_block"]["rule_id"], "networks.net-watch.flood");
    let trip = w
        .events("flood")
        .into_iter()
        .find(|e| e["state"] == "blocked");
    assert_eq!(trip.map(|t| t["cause"].clone()), Some("per_minute".into()));
}

#[test]
fn a_flooding_network_is_blocked_for_the_day_while_others_and_its_signed_clicks_pass() {
    use clickgate_core::config::networks::{Form, Mode, Policy, SigningKey};
    use clickgate_core::signing::sign_link;
    use clickgate_core::time::parse_instant;
    const ADMIN_TOKEN: &str = "e2e-admin-token-e2e-admin-token";
    let vars = [
        ("CONFIG_REFRESH_SECONDS", "1"),
        ("COUNTS_FLUSH_MS", "200"),
        ("ADMIN_TOKEN", ADMIN_TOKEN),
    ];
    let w = Worker::start(&vars);
    push_demo_networks(
        &w,
        "flood.json",
        serde_json::json!([
            {"id": "net-flood", "flood": {"per_minute": 5},
             "signing": {"mode": "report_only", "keys": [{"id": "k", "secret": "secret-of-net-flood-01"}]}}
        ]),
    );
    let click = |w: &Worker, path: &str| w.get(path, &[("cf-connecting-ip", "192.0.2.90")]);
    let plain = "/c?offer_id=1001&aff_id=net-flood&sub1=a";
    // Wait for the config, then flood: the isolate hears of the trip with its next answer.
    w.wait_for(Duration::from_secs(15), || {
        (click(&w, "/c?offer_id=1001&aff_id=net-7").status == 302 && {
            let r = click(&w, plain);
            r.status == 302
                && w.events("click")
                    .iter()
                    .any(|e| e["aff_id"] == "net-flood" && e["signature"].is_object())
        })
        .then_some(())
    })
    .expect("the config never took effect");
    let mut passed = 0;
    let blocked = w.wait_for(Duration::from_secs(10), || {
        let r = click(&w, plain);
        if r.status == 302 {
            passed += 1;
        }
        (r.status == 403).then_some(r)
    });
    let blocked = blocked.expect("the flood never tripped");
    assert_eq!(blocked.json()["error"]["code"], 1021);
    let line = w.decision_for(&blocked);
    assert_eq!(line["reasons"][0]["code"], "click_flood");
    assert_eq!(line["reasons"][0]["matched"], "per_minute");
    let trip = w
        .wait_for(Duration::from_secs(5), || {
            w.events("flood")
                .into_iter()
                .find(|e| e["state"] == "blocked")
        })
        .expect("the object logs the trip");
    assert_eq!(trip["cause"], "per_minute");
    // The overshoot: clicks redirected after the object tripped, told apart by the time in the
    // object's `flood` line and in each click's decision line (the loop's last click, the block,
    // is logged after all of them). The isolate hears of the trip with the answer to the very
    // batch that tripped it, so these are the clicks it took during that answer's round trip:
    // the bound asserted is that they all came within a second of the trip, generous for a busy
    // machine where a local round trip takes milliseconds.
    let time = |e: &serde_json::Value| parse_instant(e["ts"].as_str().unwrap_or("")).ok();
    let tripped_at = time(&trip).expect("the trip's time");
    let redirected: Vec<u64> = w
        .events("click")
        .iter()
        .filter(|e| e["aff_id"] == "net-flood" && e["verdict"] == "redirect")
        .filter_map(time)
        .collect();
    // Every redirect of the loop (and the one that saw the config) is there with its time.
    assert!(redirected.len() > passed, "{redirected:?}");
    let after: Vec<u64> = redirected
        .into_iter()
        .filter(|&at| at > tripped_at)
        .collect();
    eprintln!(
        "clicks redirected after the trip: {} (of {passed} redirected in the flood loop)",
        after.len()
    );
    assert!(
        after.iter().all(|&at| at - tripped_at <= 1_000),
        "a click passed more than a second after the trip: {after:?} against {tripped_at}"
    );

    // Another network is untouched; a validly signed click of the blocked one still passes.
    assert_eq!(click(&w, "/c?offer_id=1001&aff_id=net-7").status, 302);
    let policy = Policy {
        mode: Mode::ReportOnly,
        form: Form::Canonical,
        keys: vec![],
        max_age_s: 86_400,
        on_replay_fault: clickgate_core::verdict::FaultMode::Open,
        replay_check: clickgate_core::config::networks::ReplayCheck::BeforeRedirect,
        breaker: None,
        flood_exempt: true,
    };
    let key = SigningKey::new("k", b"secret-of-net-flood-01", None).unwrap();
    let signed = sign_link(
        &policy,
        &key,
        &format!("{}{plain}", w.base),
        now_ms() / 1000 + 600,
        None,
    );
    assert_eq!(click(&w, &signed[w.base.len()..]).status, 302);
    assert_eq!(click(&w, plain).status, 403);

    // The block is kept by the network's object across a restart: a fresh isolate learns it with
    // its first answer (the one click it lets through before is the documented lag).
    std::thread::sleep(Duration::from_millis(1000));
    let w = w.restart(&vars);
    assert_eq!(click(&w, plain).status, 302);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(click(&w, plain).status, 403);

    // An operator lifts the block (recorded with who), and imposes one on another network.
    let admin = |w: &Worker, path: &str, token: &str| {
        w.request_with_body(
            "POST",
            path,
            &[("authorization", &format!("Bearer {token}"))],
            r#"{"by": "alice@example.com"}"#,
        )
    };
    let denied = admin(&w, "/admin/networks/net-flood/unblock", "wrong-token");
    assert_eq!(denied.status, 401, "{}", denied.body);
    let lifted = admin(&w, "/admin/networks/net-flood/unblock", ADMIN_TOKEN);
    assert_eq!(lifted.status, 200, "{}", lifted.body);
    assert_eq!(lifted.json()["blocked"], false);
    assert_eq!(lifted.json()["by"], "alice@example.com");
    let line = w
        .wait_for(Duration::from_secs(5), || {
            w.events("flood")
                .into_iter()
                .find(|e| e["state"] == "lifted")
        })
        .expect("the lift is logged");
    assert_eq!(line["by"], "alice@example.com");
    // The isolate hears of it with its next answer, and the lift holds for the day.
    let open = w.wait_for(Duration::from_secs(5), || {
        (click(&w, plain).status == 302).then_some(())
    });
    assert!(open.is_some(), "the lift never reached the isolate");
    for _ in 0..8 {
        assert_eq!(click(&w, plain).status, 302);
    }
    // The CLI does the same through the admin API.
    let said = support::stdout_of(
        std::process::Command::new(support::cli())
            .args([
                "network",
                "block",
                "net-7",
                "--url",
                &w.base,
                "--by",
                "bob@example.com",
            ])
            .env("CLICKGATE_ADMIN_TOKEN", ADMIN_TOKEN)
            .output()
            .unwrap(),
    );
    assert!(said.contains(r#""blocked":true"#), "{said}");
    let shut = w.wait_for(Duration::from_secs(5), || {
        let r = click(&w, "/c?offer_id=1001&aff_id=net-7");
        (r.status == 403).then_some(r)
    });
    assert!(
        shut.is_some(),
        "the imposed block never reached the isolate"
    );
    // `clickgate unblock` (the short form) lifts it again, recorded with who.
    let said = support::stdout_of(
        std::process::Command::new(support::cli())
            .args([
                "unblock",
                "net-7",
                "--url",
                &w.base,
                "--by",
                "carol@example.com",
            ])
            .env("CLICKGATE_ADMIN_TOKEN", ADMIN_TOKEN)
            .output()
            .unwrap(),
    );
    assert!(said.contains(r#""blocked":false"#), "{said}");
    assert!(
        w.wait_for(Duration::from_secs(5), || {
            w.events("flood")
                .into_iter()
                .find(|e| e["state"] == "lifted" && e["by"] == "carol@example.com")
        })
        .is_some(),
        "the CLI's lift is logged with who"
    );
    let open = w.wait_for(Duration::from_secs(5), || {
        (click(&w, "/c?offer_id=1001&aff_id=net-7").status == 302).then_some(())
    });
    assert!(open.is_some(), "the CLI's lift never reached the isolate");
}

#[test]
fn a_hung_or_failing_network_object_holds_no_click_postback_or_operator() {
    use clickgate_core::config::networks::{Form, Mode, Policy, SigningKey};
    use clickgate_core::signing::sign_link;
    const TOKEN: &str = "fault-admin-token-fault-admin";
    for fault in ["hang", "error"] {
        let w = Worker::start(&[("ADMIN_TOKEN", TOKEN), ("NETWORK_FAULT_INJECTION", fault)]);
        push_demo_networks(
            &w,
            "fault.json",
            serde_json::json!([
                {"id": "net-o", "signing": {"mode": "enforce", "on_replay_store_fault": "open",
                    "keys": [{"id": "k", "secret": "secret-of-network-o-0"}]}},
                {"id": "net-c", "signing": {"mode": "enforce", "on_replay_store_fault": "closed",
                    "keys": [{"id": "k", "secret": "secret-of-network-c-0"}]}}
            ]),
        );
        let policy = Policy {
            mode: Mode::Enforce,
            form: Form::Canonical,
            keys: vec![],
            max_age_s: 600,
            on_replay_fault: clickgate_core::verdict::FaultMode::Open,
            replay_check: clickgate_core::config::networks::ReplayCheck::BeforeRedirect,
            breaker: None,
            flood_exempt: true,
        };
        let expires = now_ms() / 1000 + 300;
        let link = |net: &str, secret: &str| {
            let key = SigningKey::new("k", secret.as_bytes(), None).unwrap();
            let unsigned = format!("{}/c?offer_id=1001&aff_id={net}", w.base);
            sign_link(
                &policy,
                &key,
                &unsigned,
                expires,
                Some(&format!("{net}-{fault}")),
            )[w.base.len()..]
                .to_owned()
        };
        let ip = [("cf-connecting-ip", "192.0.2.40")];
        // A click without a click id never waits for an object.
        let started = std::time::Instant::now();
        let plain = w.get("/c?offer_id=1001&aff_id=net-7", &ip);
        assert_eq!(plain.status, 302, "{fault}: {}", plain.body);
        assert!(started.elapsed() < Duration::from_secs(2), "{fault}");
        let tid = tid_of(plain.header("location").unwrap()).to_owned();

        let auth = format!("Bearer {TOKEN}");
        let auth = [("authorization", auth.as_str())];
        let timed = |f: &(dyn Fn() -> support::Reply + Sync)| {
            let started = std::time::Instant::now();
            let r = f();
            (r, started.elapsed())
        };
        type Call<'a> = Box<dyn Fn() -> support::Reply + Sync + 'a>;
        let calls: Vec<(&str, Call)> = vec![
            (
                "open",
                Box::new(|| w.get(&link("net-o", "secret-of-network-o-0"), &ip)),
            ),
            (
                "closed",
                Box::new(|| w.get(&link("net-c", "secret-of-network-c-0"), &ip)),
            ),
            (
                "postback",
                Box::new(|| w.get(&format!("/postback?transaction_id={tid}"), &[])),
            ),
            ("report", Box::new(|| w.get("/admin/report", &auth))),
            (
                "explain",
                Box::new(|| w.get(&format!("/admin/explain/{tid}"), &auth)),
            ),
            (
                "block",
                Box::new(|| {
                    w.request_with_body(
                        "POST",
                        "/admin/networks/net-7/block",
                        &auth,
                        r#"{"by": "ops"}"#,
                    )
                }),
            ),
        ];
        // All at once: each waits out its own deadline (5 s) when the object hangs.
        let answers: Vec<(&str, support::Reply, Duration)> = std::thread::scope(|s| {
            let running: Vec<_> = calls
                .iter()
                .map(|(name, f)| (*name, s.spawn(|| timed(f.as_ref()))))
                .collect();
            running
                .into_iter()
                .map(|(name, h)| {
                    let (r, took) = h.join().unwrap();
                    (name, r, took)
                })
                .collect()
        });
        for (name, r, took) in &answers {
            assert!(
                *took < Duration::from_secs(9),
                "{fault}/{name}: {took:?}: {}",
                r.body
            );
            let expected = match *name {
                "open" => 302,
                "closed" => 403,
                "postback" => 200,
                _ => 503,
            };
            assert_eq!(r.status, expected, "{fault}/{name}: {}", r.body);
        }
        let by_name = |n: &str| &answers.iter().find(|(name, ..)| *name == n).unwrap().1;
        let open = w.decision_for(by_name("open"));
        assert_eq!(open["signature"]["replay_unavailable"], true, "{open}");
        let closed = w.decision_for(by_name("closed"));
        assert_eq!(closed["reasons"][0]["code"], "replay_store_unavailable");
        // The conversion is judged on its other checks when the object cannot say.
        assert_eq!(by_name("postback").json()["status"], "approved");
        // Log lines arrive on their own time, after the answers.
        let whats = ["replay_store", "conversion_store", "admin"];
        let logged = w.wait_for(Duration::from_secs(5), || {
            let faults = w.events("fault");
            whats
                .iter()
                .all(|what| faults.iter().any(|f| f["what"] == *what))
                .then_some(())
        });
        assert!(
            logged.is_some(),
            "{fault}: not every one of {whats:?} in {:?}",
            w.events("fault")
        );
    }
}

#[test]
fn no_click_waits_for_a_hung_replay_store_past_its_deadline_from_arrival() {
    // Regression: the click that sent a batch of replay questions waited a full deadline from its
    // send however long it had queued; with a hanging object 22 of 60 clicks waited 6 to 10 s.
    use clickgate_core::config::networks::SigningKey;
    const CLICKS: usize = 60;
    let w = Worker::start(&[("NETWORK_FAULT_INJECTION", "hang")]);
    push_demo_networks(
        &w,
        "hang.json",
        serde_json::json!([
            {"id": "net-h", "signing": {"mode": "enforce", "on_replay_store_fault": "open",
                "keys": [{"id": "k", "secret": "secret-of-network-h-0"}]}}
        ]),
    );
    let key = SigningKey::new("k", b"secret-of-network-h-0", None).unwrap();
    let links: Vec<String> = (0..CLICKS)
        .map(|i| signed_click(&w, "net-h", &key, &format!("hang-{i}")))
        .collect();
    // All at once: the first sends a batch that hangs, the rest queue behind it.
    let waits: Vec<(u16, Duration)> = std::thread::scope(|s| {
        let running: Vec<_> = links
            .iter()
            .map(|link| {
                let w = &w;
                s.spawn(move || {
                    let started = std::time::Instant::now();
                    let r = w.get(link, &[("cf-connecting-ip", "192.0.2.41")]);
                    (r.status, started.elapsed())
                })
            })
            .collect();
        running.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // The deadline is 5 s from arrival; the margin is the harness's, not the Worker's.
    let late: Vec<_> = waits
        .iter()
        .filter(|(_, took)| *took > Duration::from_millis(6_500))
        .collect();
    assert!(
        late.is_empty(),
        "{} of {CLICKS} waited past 5 s: {late:?}",
        late.len()
    );
    assert!(waits.iter().all(|(status, _)| *status == 302), "{waits:?}");
}

#[test]
fn concurrent_clicks_waiting_on_one_replay_store_each_get_their_own_answer() {
    // Waiting clicks are woken by the request that sent their batch, not by polling: each must
    // still get its answer, in its own request, with nothing refused by the runtime.
    use clickgate_core::config::networks::SigningKey;
    const IDS: usize = 40;
    let w = Worker::start(&[]);
    push_demo_networks(
        &w,
        "wake.json",
        serde_json::json!([
            {"id": "net-w", "signing": {"mode": "enforce", "on_replay_store_fault": "closed",
                "keys": [{"id": "k", "secret": "secret-of-network-w-0"}]}}
        ]),
    );
    let key = SigningKey::new("k", b"secret-of-network-w-0", None).unwrap();
    // Each link twice, all at once: one of each pair is fresh, the other a replay.
    let links: Vec<(usize, String)> = (0..2 * IDS)
        .map(|i| {
            let n = i % IDS;
            (n, signed_click(&w, "net-w", &key, &format!("wake-{n}")))
        })
        .collect();
    let answers: Vec<(usize, support::Reply)> = std::thread::scope(|s| {
        let running: Vec<_> = links
            .iter()
            .map(|(n, link)| {
                let w = &w;
                s.spawn(move || (*n, w.get(link, &[("cf-connecting-ip", "192.0.2.42")])))
            })
            .collect();
        running.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for n in 0..IDS {
        let mut statuses: Vec<u16> = answers
            .iter()
            .filter(|(m, _)| *m == n)
            .map(|(_, r)| r.status)
            .collect();
        statuses.sort_unstable();
        assert_eq!(statuses, vec![302, 403], "wake-{n}");
    }
    for (_, r) in answers.iter().filter(|(_, r)| r.status == 403) {
        let decision = w.decision_for(r);
        assert_eq!(decision["reasons"][0]["code"], "replayed", "{decision}");
    }
    assert!(w.events("fault").is_empty(), "{:?}", w.events("fault"));
}

#[test]
fn an_object_outage_keeps_the_isolate_under_its_network_cap_and_logs_the_clicks_it_drops() {
    // Regression: networks with counts out were never evicted, so during an outage made-up
    // aff_ids held an isolate at 2,002 networks against its cap of 1,024, and what a kill would
    // lose grew with them.
    const MADE_UP: usize = 1_100;
    let w = Worker::start(&[
        ("COUNTS_FLUSH_MS", "100"),
        ("NETWORK_FAULT_INJECTION", "error"),
    ]);
    push_ok(&w, &demo());
    for i in 0..MADE_UP {
        let r = w.get(
            &format!("/c?offer_id=1001&aff_id=out-{i}"),
            &[
                (
                    "cf-connecting-ip",
                    &format!("198.18.{}.{}", i / 250, i % 250),
                ),
                ("user-agent", BROWSER),
            ],
        );
        assert!(matches!(r.status, 302 | 403), "out-{i}: {}", r.body);
    }
    let evictions = w.events("counts_evicted");
    assert!(!evictions.is_empty(), "the isolate never evicted a network");
    assert!(
        evictions
            .iter()
            .all(|e| e["networks_kept"].as_u64().unwrap() <= 1_024),
        "{evictions:?}"
    );
    let dropped = w.wait_for(Duration::from_secs(10), || {
        w.events("fault")
            .into_iter()
            .find(|f| f["what"] == "counts_dropped")
    });
    let dropped = dropped.expect("no counts_dropped line");
    let problem = dropped["problem"].as_str().unwrap();
    assert!(problem.contains("with their network's state"), "{problem}");
}

#[test]
fn a_quiet_networks_counts_stranded_by_an_outage_are_sent_by_another_networks_click() {
    // Regression: a network's batch was retried only by its own drive, which gives up after
    // about 25 s; a network that went quiet during a longer object outage was missing from the
    // report until it clicked again. The objects here fail every request for the first 45 s.
    const TOKEN: &str = "stranded-admin-token-stranded-admin";
    let outage_ends_ms = now_ms() + 45_000;
    let w = Worker::start(&[
        ("ADMIN_TOKEN", TOKEN),
        (
            "NETWORK_FAULT_INJECTION",
            &format!("error-until:{outage_ends_ms}"),
        ),
    ]);
    push_ok(&w, &demo());
    let click = |aff: &str, i: usize| {
        w.get(
            &format!("/c?offer_id=1001&aff_id={aff}"),
            &[
                ("cf-connecting-ip", &format!("192.0.2.{}", 10 + i)),
                ("user-agent", BROWSER),
            ],
        )
    };
    let quiet_started_ms = now_ms();
    for i in 0..50 {
        assert_eq!(click("net-quiet", i).status, 302);
    }
    // Its sends at about 1, 3, 7 and 15 s all fail; the next is due at about 30 s, after its
    // drive has stopped, so nothing of its own will send it again.
    assert!(
        now_ms() < quiet_started_ms + 15_000,
        "the clicks took so long that the outage may not cover the network's own sends"
    );
    let auth = format!("Bearer {TOKEN}");
    let quiet_row = || w.report_row(TOKEN, "net-quiet");
    let resumed_ms = outage_ends_ms.max(quiet_started_ms + 31_000) + 1_000;
    std::thread::sleep(Duration::from_millis(resumed_ms.saturating_sub(now_ms())));
    assert!(
        w.events("fault")
            .iter()
            .any(|f| f["what"] == "network_object"),
        "the outage was never seen"
    );
    // The outage is over, and the quiet network's counts are still in this isolate.
    assert_eq!(
        quiet_row(),
        None,
        "the stranded counts were sent without a click"
    );
    // Any other network's click sends them.
    let mut i = 0;
    let row = w.wait_for(Duration::from_secs(15), || {
        i += 1;
        assert_eq!(click("net-busy", i % 200).status, 302);
        quiet_row().filter(|r| r["clicks"] == 50)
    });
    let row = row.unwrap_or_else(|| {
        let report = w
            .get(
                "/admin/report?group_by=affiliate",
                &[("authorization", &auth)],
            )
            .json();
        panic!(
            "the quiet network's 50 clicks never reached the report: {report}\nfaults: {:?}",
            w.events("fault")
        )
    });
    assert_eq!(row["allowed"], 50, "{row}");
    assert!(
        !w.events("fault")
            .iter()
            .any(|f| f["what"] == "counts_dropped"),
        "{:?}",
        w.events("fault")
    );
}

#[test]
fn made_up_aff_ids_are_evicted_from_the_isolate_and_a_returning_network_counts_exactly_once() {
    // Regression: every new aff_id kept state in the isolate for good. Past 1,024 networks the
    // isolate now forgets the least recently clicked idle ones (`counts_evicted`), and a network
    // it forgot is counted exactly once when it clicks again.
    const TOKEN: &str = "bounds-admin-token-bounds-admin";
    const MADE_UP: usize = 1_100;
    let w = started_with_demo(&[("COUNTS_FLUSH_MS", "100"), ("ADMIN_TOKEN", TOKEN)]);
    let auth = format!("Bearer {TOKEN}");
    let click = |aff: &str, ip: &str| {
        let r = w.get(
            &format!("/c?offer_id=1001&aff_id={aff}"),
            &[("cf-connecting-ip", ip), ("user-agent", BROWSER)],
        );
        assert!(matches!(r.status, 302 | 403), "{aff}: {}", r.body);
    };
    let report = || {
        let started = std::time::Instant::now();
        let r = w.get(
            "/admin/report?group_by=affiliate",
            &[("authorization", auth.as_str())],
        );
        assert_eq!(r.status, 200, "{}", r.body);
        (r.json(), started.elapsed())
    };
    let clicks_of = |j: &serde_json::Value, aff: &str| {
        j["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["affiliate"] == aff)
            .map_or(0, |r| r["clicks"].as_u64().unwrap())
    };
    for i in 0..2 {
        click("net-7", &format!("192.0.2.{}", 10 + i));
    }
    let (_, alone) = w
        .wait_for(Duration::from_secs(15), || {
            let (j, took) = report();
            (clicks_of(&j, "net-7") == 2).then_some((j, took))
        })
        .expect("net-7's first clicks never reached its object");
    for i in 0..MADE_UP {
        click(
            &format!("made-up-{i}"),
            &format!("198.18.{}.{}", i / 250, i % 250),
        );
    }
    for i in 0..3 {
        click("net-7", &format!("192.0.2.{}", 20 + i));
    }
    let evictions = w.events("counts_evicted");
    assert!(!evictions.is_empty(), "the isolate never evicted a network");
    assert!(
        evictions
            .iter()
            .all(|e| e["networks_kept"].as_u64().unwrap() <= 1_024),
        "{evictions:?}"
    );
    let total = (MADE_UP + 5) as u64;
    let (crowded, took) = w
        .wait_for(Duration::from_secs(60), || {
            let (j, took) = report();
            (j["total"]["clicks"] == total && j["missing_networks"] == serde_json::json!([]))
                .then_some((j, took))
        })
        .expect("the report never counted every click");
    assert_eq!(
        clicks_of(&crowded, "net-7"),
        5,
        "net-7 counted exactly once"
    );
    // What the made-up aff_ids cost in storage and report time, printed for the figures in
    // docs/report.md.
    let (files, bytes) = sqlite_files(&w.state.0);
    eprintln!(
        "report: {alone:?} with 1 network, {took:?} with {} networks; object storage: {files} \
         SQLite files, {bytes} bytes",
        MADE_UP + 1
    );
}

#[test]
fn networks_not_in_the_config_share_sixteen_objects_and_each_keeps_its_own_counts_and_block() {
    // Regression: every made-up aff_id got a Durable Object and a directory entry of its own, and
    // the report asked each of them. Networks the config does not list now live in 16 shared
    // objects, each network under its own keys there.
    use clickgate_core::config::Config;
    use clickgate_core::network::home::{Home, SHARED_OBJECTS};
    const TOKEN: &str = "shared-admin-token-shared-admin";
    const MADE_UP: usize = 400;
    let w = started_with_demo(&[("COUNTS_FLUSH_MS", "100"), ("ADMIN_TOKEN", TOKEN)]);
    let auth = format!("Bearer {TOKEN}");
    let click_reply = |aff: &str, ip: &str| {
        w.get(
            &format!("/c?offer_id=1001&aff_id={aff}"),
            &[("cf-connecting-ip", ip), ("user-agent", BROWSER)],
        )
    };
    let click = |aff: &str, ip: &str| click_reply(aff, ip).status;
    let report = || {
        let started = std::time::Instant::now();
        let r = w.get(
            "/admin/report?group_by=affiliate",
            &[("authorization", auth.as_str())],
        );
        assert_eq!(r.status, 200, "{}", r.body);
        (r.json(), started.elapsed())
    };
    let clicks_by_network = |j: &serde_json::Value| -> std::collections::HashMap<String, u64> {
        j["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let aff = r["affiliate"].as_str().unwrap().to_owned();
                (aff, r["clicks"].as_u64().unwrap())
            })
            .collect()
    };
    assert_eq!(click("net-7", "192.0.2.10"), 302);
    let (_, alone) = w
        .wait_for(Duration::from_secs(15), || {
            let (j, took) = report();
            (j["total"]["clicks"] == 1).then_some((j, took))
        })
        .expect("net-7's click never reached its object");
    // KV, the directory and net-7's shared object are there now.
    let (files_before, _) = sqlite_files(&w.state.0);

    // Each made-up network clicks 1 to 3 times, so a count that strayed to a neighbour shows.
    let clicks_of = |i: usize| (i % 3 + 1) as u64;
    for i in 0..MADE_UP {
        for c in 0..clicks_of(i) {
            let status = click(
                &format!("made-up-{i}"),
                &format!("198.{}.{}.{}", 18 + c, i / 200, i % 200),
            );
            assert!(matches!(status, 302 | 403), "made-up-{i}: {status}");
        }
    }
    let total = 1 + (0..MADE_UP).map(clicks_of).sum::<u64>();
    let (crowded, took) = w
        .wait_for(Duration::from_secs(60), || {
            let (j, took) = report();
            (j["total"]["clicks"] == total && j["missing_networks"] == serde_json::json!([]))
                .then_some((j, took))
        })
        .expect("the report never counted every click");
    assert_eq!(crowded["networks"], (MADE_UP + 1) as u64);
    let by_network = clicks_by_network(&crowded);
    assert_eq!(by_network.get("net-7"), Some(&1));
    for i in 0..MADE_UP {
        assert_eq!(
            by_network.get(&format!("made-up-{i}")),
            Some(&clicks_of(i)),
            "made-up-{i}"
        );
    }
    // 400 networks added at most the 15 other shared objects, not one object each.
    let (files_after, bytes) = sqlite_files(&w.state.0);
    // Files were found, and the new networks added some: an unreadable or moved storage folder
    // would read as none and pass the bound below.
    assert!(
        files_before >= 2 && files_after > files_before,
        "{files_before} SQLite files before, {files_after} after"
    );
    assert!(
        files_after - files_before < SHARED_OBJECTS as usize,
        "{files_before} SQLite files before, {files_after} after"
    );

    // An operator's block reaches the network in its shared object, and only it: two made-up
    // networks that share an object.
    let demo_config = Config::compile(&std::fs::read_to_string(demo()).unwrap()).unwrap();
    let home = |i: usize| {
        Home::of(
            &demo_config,
            &clickgate_core::click::Id::parse(&format!("made-up-{i}")).unwrap(),
        )
        .object()
    };
    let neighbour = (1..MADE_UP).find(|i| home(*i) == home(0)).unwrap();
    let blocked = w.request_with_body(
        "POST",
        "/admin/networks/made-up-0/block",
        &[("authorization", &auth)],
        r#"{"by": "alice@example.com"}"#,
    );
    assert_eq!(blocked.status, 200, "{}", blocked.body);
    assert_eq!(blocked.json()["blocked"], true);
    let shut = w
        .wait_for(Duration::from_secs(10), || {
            let r = click_reply("made-up-0", "198.51.99.1");
            (r.status == 403).then_some(r)
        })
        .expect("the block never reached made-up-0's clicks");
    assert_eq!(w.decision_for(&shut)["reasons"][0]["code"], "click_flood");
    for n in 0..5 {
        let ip = format!("198.51.99.{}", 10 + n);
        assert_eq!(click(&format!("made-up-{neighbour}"), &ip), 302);
    }
    eprintln!(
        "report: {alone:?} with 1 network, {took:?} with {} networks; object storage: \
         {files_after} SQLite files ({files_before} before the made-up networks), {bytes} bytes",
        MADE_UP + 1
    );
}

/// The SQLite files under `dir` (workerd keeps a Durable Object's storage in one) and their bytes.
fn sqlite_files(dir: &std::path::Path) -> (usize, u64) {
    let mut found = (0, 0);
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            let (n, b) = sqlite_files(&path);
            found = (found.0 + n, found.1 + b);
        } else if path.extension().is_some_and(|e| e == "sqlite") {
            found = (
                found.0 + 1,
                found.1 + entry.metadata().map_or(0, |m| m.len()),
            );
        }
    }
    found
}
