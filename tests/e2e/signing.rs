//! Signed clicks: verification, key rotation, replays, the signer's breaker, and click ids
//! checked after the redirect.

use std::time::Duration;

use crate::{
    now_ms, push_demo_networks, signed_click,
    support::{self, Worker},
};

#[test]
fn signed_clicks_are_verified_rotated_replay_checked_and_a_broken_signer_trips_the_breaker() {
    use clickgate_core::config::networks::{Form, Mode, Policy, SigningKey};
    use clickgate_core::signing::sign_link;
    let w = Worker::start(&[("CONFIG_REFRESH_SECONDS", "1")]);
    let now_s = now_ms() / 1000;
    let retired = "2026-01-01T00:00:00Z";
    let config = push_demo_networks(
        &w,
        "signed.json",
        serde_json::json!([
            {"id": "net-s", "signing": {"mode": "enforce", "max_age_seconds": 600, "keys": [
                {"id": "old", "secret": "old-secret-of-network-s", "not_after": retired},
                {"id": "new", "secret": "new-secret-of-network-s"}]}},
            {"id": "net-r", "signing": {"mode": "report_only", "keys": [{"id": "k", "secret": "secret-of-network-r-0"}]}},
            {"id": "net-b", "signing": {"mode": "enforce", "keys": [{"id": "k", "secret": "secret-of-network-b-0"}],
                "breaker": {"invalid_share": 0.5, "window_seconds": 3, "min_clicks": 4}}}
        ]),
    );

    let key = |id: &str, secret: &str| SigningKey::new(id, secret.as_bytes(), None).unwrap();
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
    let link = |net: &str, k: &SigningKey, expires: u64, click_id: Option<&str>| {
        let unsigned = format!("{}/c?offer_id=1001&aff_id={net}&sub1=spring", w.base);
        let signed = sign_link(&policy, k, &unsigned, expires, click_id);
        signed[w.base.len()..].to_owned()
    };
    let new = key("new", "new-secret-of-network-s");
    let get = |path: &str| w.get(path, &[("cf-connecting-ip", "192.0.2.77")]);
    let logged = |r: &support::Reply| w.decision_for(r);

    let valid = link("net-s", &new, now_s + 300, None);
    let r = w
        .wait_for(Duration::from_secs(15), || {
            let r = get(&valid);
            (r.status == 302).then_some(r)
        })
        .expect("the signing policy never took effect");
    assert_eq!(logged(&r)["signature"]["status"], "valid");
    assert_eq!(logged(&r)["signature"]["kid"], "new");

    let refused = |path: &str, code: &str| {
        let r = get(path);
        assert_eq!(r.status, 403, "{path}: {}", r.body);
        assert_eq!(r.json()["error"]["code"], 1021);
        let line = logged(&r);
        assert_eq!(line["reasons"][0]["code"], code, "{path}: {line}");
        assert_eq!(line["rule_id"], "networks.net-s.signing");
    };
    refused(
        &valid.replace("sub1=spring", "sub1=autumn"),
        "invalid_signature",
    );
    refused("/c?offer_id=1001&aff_id=net-s", "missing_signature");
    refused(&link("net-s", &new, now_s - 10, None), "expired");
    refused(
        &link(
            "net-s",
            &key("k9", "a-key-nobody-configured"),
            now_s + 300,
            None,
        ),
        "unknown_key",
    );
    // The old key was retired: its links stop working, the new key's keep working.
    refused(
        &link(
            "net-s",
            &key("old", "old-secret-of-network-s"),
            now_s + 300,
            None,
        ),
        "unknown_key",
    );

    // A network click id is accepted once.
    let once = link("net-s", &new, now_s + 300, Some("net-s-click-1"));
    assert_eq!(get(&once).status, 302);
    refused(&once, "replayed");
    // At once, so the isolate carries the questions to their replay objects in shared batches:
    // one click id sent 16 times passes once; 16 distinct ids all pass.
    let burst = link("net-s", &new, now_s + 300, Some("net-s-burst"));
    let distinct: Vec<String> = (0..16)
        .map(|i| link("net-s", &new, now_s + 300, Some(&format!("net-s-d{i}"))))
        .collect();
    let (same, apart): (Vec<support::Reply>, Vec<support::Reply>) = std::thread::scope(|s| {
        let same: Vec<_> = (0..16).map(|_| s.spawn(|| get(&burst))).collect();
        let apart: Vec<_> = distinct.iter().map(|l| s.spawn(|| get(l))).collect();
        (
            same.into_iter().map(|h| h.join().unwrap()).collect(),
            apart.into_iter().map(|h| h.join().unwrap()).collect(),
        )
    });
    let passed: Vec<u16> = same
        .iter()
        .map(|r| r.status)
        .filter(|s| *s == 302)
        .collect();
    assert_eq!(
        passed.len(),
        1,
        "{:?}",
        same.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for r in same.iter().filter(|r| r.status != 302) {
        assert_eq!(r.status, 403, "{}", r.body);
        assert_eq!(logged(r)["reasons"][0]["code"], "replayed");
    }
    assert!(
        apart.iter().all(|r| r.status == 302),
        "a distinct click id was refused"
    );
    // Every answer came from the replay objects: none was the fail-open default of a fault.
    let no_replay_store_fault = || {
        let faults = w.events("fault");
        assert!(
            faults.iter().all(|f| f["what"] != "replay_store"),
            "{faults:?}"
        );
    };
    no_replay_store_fault();
    // Sustained: 32 clients, a fresh click id each time, so batches follow one another and
    // waiting clicks take turns sending them. Every id passes, and every answer comes from the
    // objects. (The bench's replay section, at several times this volume, counts the faults.)
    let answers: Vec<u16> = std::thread::scope(|s| {
        let clients: Vec<_> = (0..32)
            .map(|c| {
                let (link, new) = (&link, &new);
                s.spawn(move || {
                    (0..40)
                        .map(|i| {
                            let id = format!("net-s-load-{c}-{i}");
                            get(&link("net-s", new, now_s + 300, Some(&id))).status
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        clients
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(answers.iter().all(|s| *s == 302), "{answers:?}");
    no_replay_store_fault();

    // Report-only: a tampered link is redirected and recorded.
    let r_link = link(
        "net-r",
        &key("k", "secret-of-network-r-0"),
        now_s + 300,
        None,
    );
    let r = get(&r_link.replace("sub1=spring", "sub1=x"));
    assert_eq!(r.status, 302);
    let line = logged(&r);
    assert_eq!(line["signature"]["status"], "invalid_signature");
    assert_eq!(line["signature"]["mode"], "report_only");

    // An outsider cannot switch the checks off: unsigned clicks, made-up kids and forgeries under
    // the network's real kid are refused however many come (unsigned clicks used to open the
    // breaker after `min_clicks` of them, and then every forgery was redirected).
    let unsigned = "/c?offer_id=1001&aff_id=net-b&sub1=spring";
    let made_up = link(
        "net-b",
        &key("k9", "a-key-nobody-configured"),
        now_s + 300,
        None,
    );
    let forged = link(
        "net-b",
        &key("k", "not-the-secret-of-network-b"),
        now_s + 300,
        None,
    );
    for path in [unsigned, made_up.as_str(), forged.as_str()] {
        let statuses: Vec<u16> = (0..8).map(|_| get(path).status).collect();
        assert_eq!(statuses, [403; 8], "{path}");
    }
    assert!(w.events("signing_breaker").is_empty());

    // A broken signer: a window of valid signatures, then none and only mismatches under its key.
    // Once the mismatches reach `min_clicks`, enforcement pauses and says so.
    let b_key = key("k", "secret-of-network-b-0");
    for i in 0..4 {
        let valid = link("net-b", &b_key, now_s + 300, None);
        assert_eq!(get(&valid).status, 302, "valid click {i}");
    }
    // The valid clicks fall into the window before: one window (3 s) and an eighth of it later.
    std::thread::sleep(Duration::from_millis(3_500));
    let statuses: Vec<u16> = (0..6).map(|_| get(&forged).status).collect();
    assert_eq!(statuses, [403, 403, 403, 302, 302, 302]);
    let trip = w
        .wait_for(Duration::from_secs(5), || {
            w.events("signing_breaker").into_iter().next()
        })
        .expect("a breaker line");
    assert_eq!(
        (trip["network"].as_str(), trip["state"].as_str()),
        (Some("net-b"), Some("open"))
    );

    // The CLI signs and verifies the same way.
    let out = std::process::Command::new(support::cli())
        .args(["sign", "--config"])
        .arg(&config)
        .args(["--network", "net-s", "--url"])
        .arg(format!("{}/c?offer_id=1001&aff_id=net-s", w.base))
        .output()
        .unwrap();
    let signed = support::stdout_of(out).trim().to_owned();
    assert_eq!(get(&signed[w.base.len()..]).status, 302);
    let verify = |url: &str| {
        std::process::Command::new(support::cli())
            .args(["verify", "--config"])
            .arg(&config)
            .arg(url)
            .output()
            .unwrap()
    };
    let ok = verify(&signed);
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("valid: network net-s, key new"));
    let tampered = verify(&signed.replace("offer_id=1001", "offer_id=1002"));
    assert_eq!(tampered.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&tampered.stdout).starts_with("invalid_signature"));
}

#[test]
fn click_ids_checked_after_the_redirect_pass_at_once_and_their_replays_are_caught() {
    let vars = [("CONFIG_REFRESH_SECONDS", "1")];
    let w = Worker::start(&vars);
    let config = push_demo_networks(
        &w,
        "after.json",
        serde_json::json!([
            {"id": "net-a", "signing": {"mode": "enforce", "replay_check": "after_redirect",
                "keys": [{"id": "k", "secret": "secret-of-network-a-0000"}]}}
        ]),
    );

    // The CLI signs one link per click id in a file, as a network's batch signer would.
    let ids = w.state.0.join("ids.txt");
    let wanted: Vec<String> = (1..=41).map(|i| format!("a-{i}")).collect();
    std::fs::write(&ids, wanted.join("\n")).unwrap();
    let out = std::process::Command::new(support::cli())
        .args(["sign", "--config"])
        .arg(&config)
        .args(["--network", "net-a", "--url"])
        .arg(format!(
            "{}/c?offer_id=1001&aff_id=net-a&sub1=spring",
            w.base
        ))
        .arg("--click-ids")
        .arg(&ids)
        .output()
        .unwrap();
    let links: Vec<String> = support::stdout_of(out)
        .lines()
        .map(|l| l[w.base.len()..].to_owned())
        .collect();
    assert_eq!(links.len(), 41);
    for (link, id) in links.iter().zip(&wanted) {
        assert!(link.contains(&format!("click_id={id}&")), "{link}");
    }
    let get = |w: &Worker, path: &str| w.get(path, &[("cf-connecting-ip", "192.0.2.78")]);

    // Redirected at once, the check to follow; a repeat in this isolate is refused at once.
    let first = w
        .wait_for(Duration::from_secs(15), || {
            let r = get(&w, &links[0]);
            (r.status == 302).then_some(r)
        })
        .expect("the signing policy never took effect");
    let line = w.decision_for(&first);
    assert_eq!(line["signature"]["status"], "valid");
    assert_eq!(line["signature"]["replay_check"], "after_redirect");
    let again = get(&w, &links[0]);
    assert_eq!(again.status, 403, "{}", again.body);
    assert_eq!(w.decision_for(&again)["reasons"][0]["code"], "replayed");
    // Distinct ids at once: all redirected, their questions batched in the background.
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = links[1..40]
            .iter()
            .map(|l| s.spawn(|| get(&w, l).status))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(statuses.iter().all(|s| *s == 302), "{statuses:?}");

    // Let the batches go out (each waits 200 ms for company), then restart the runtime on the
    // same storage: a new isolate that has seen none of these ids, as another machine would be.
    std::thread::sleep(Duration::from_millis(1500));
    let w = w.restart(&vars);
    // It redirects a replayed id before the store answers, and logs the replay once it has.
    let replay = w
        .wait_for(Duration::from_secs(15), || {
            let r = get(&w, &links[1]);
            (r.status == 302).then_some(r)
        })
        .expect("the config never loaded after the restart");
    assert_eq!(
        w.decision_for(&replay)["signature"]["replay_check"],
        "after_redirect"
    );
    let detected = w
        .wait_for(Duration::from_secs(5), || {
            w.events("replay_detected").into_iter().next()
        })
        .expect("the store's answer is logged");
    assert_eq!(
        (detected["network"].as_str(), detected["click_id"].as_str()),
        (Some("net-a"), Some("a-2"))
    );
    // From then on the isolate refuses it at once; an id never used still passes.
    let refused = get(&w, &links[1]);
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(w.decision_for(&refused)["reasons"][0]["code"], "replayed");
    assert_eq!(get(&w, &links[40]).status, 302);
    assert!(w.events("fault").is_empty(), "{:?}", w.events("fault"));
}

#[test]
fn a_click_id_answered_fresh_is_stored_in_the_background_and_refused_after_a_restart() {
    let vars = [("CONFIG_REFRESH_SECONDS", "1")];
    let w = Worker::start(&vars);
    let config = push_demo_networks(
        &w,
        "before.json",
        serde_json::json!([
            {"id": "net-b", "signing": {"mode": "enforce",
                "keys": [{"id": "k", "secret": "secret-of-network-b-0000"}]}}
        ]),
    );
    let out = std::process::Command::new(support::cli())
        .args(["sign", "--config"])
        .arg(&config)
        .args(["--network", "net-b", "--click-id", "b-1", "--url"])
        .arg(format!(
            "{}/c?offer_id=1001&aff_id=net-b&sub1=spring",
            w.base
        ))
        .output()
        .unwrap();
    let link = support::stdout_of(out).trim()[w.base.len()..].to_owned();
    let get = |w: &Worker| w.get(&link, &[("cf-connecting-ip", "192.0.2.79")]);
    let first = w
        .wait_for(Duration::from_secs(15), || {
            let r = get(&w);
            (r.status == 302).then_some(r)
        })
        .expect("the signing policy never took effect");
    assert_eq!(w.decision_for(&first)["signature"]["status"], "valid");
    // The object answered `fresh` before storing the id, and stores it a moment later
    // (click_ids::STORE_AFTER_MS): past that, a runtime restarted on the same storage, whose new
    // isolate has never seen the id, hears from the object that it was used.
    std::thread::sleep(Duration::from_millis(1500));
    let w = w.restart(&vars);
    let again = w
        .wait_for(Duration::from_secs(15), || {
            let r = get(&w);
            (r.status != 404 && r.status != 503).then_some(r)
        })
        .expect("the Worker never answered after the restart");
    assert_eq!(again.status, 403, "{}", again.body);
    assert_eq!(w.decision_for(&again)["reasons"][0]["code"], "replayed");
    assert!(w.events("fault").is_empty(), "{:?}", w.events("fault"));
}

#[test]
fn a_keys_replay_objects_answer_for_its_links_ids_in_any_isolate() {
    // A key whose ids go to one replay object, beside one with the default 16: each link's id is
    // asked of the same object on every use, so after a restart (a new isolate, which remembers
    // nothing) the object refuses every id the first isolate let through.
    use clickgate_core::config::networks::SigningKey;
    const IDS: usize = 12;
    let w = Worker::start(&[]);
    push_demo_networks(
        &w,
        "objects.json",
        serde_json::json!([
            {"id": "net-o", "signing": {"mode": "enforce", "on_replay_store_fault": "closed", "keys": [
                {"id": "wide", "secret": "wide-secret-of-network-o"},
                {"id": "one", "secret": "one-secret-of-network-o", "replay_objects": 1}]}}
        ]),
    );
    let wide = SigningKey::new("wide", b"wide-secret-of-network-o", None).unwrap();
    let one = SigningKey::new("one", b"one-secret-of-network-o", None)
        .unwrap()
        .with_replay_objects(1);
    let links: Vec<(String, String)> = [("wide", &wide), ("one", &one)]
        .iter()
        .flat_map(|(name, key)| {
            let w = &w;
            (0..IDS).map(move |i| {
                let id = format!("{name}-{i}");
                let link = signed_click(w, "net-o", key, &id);
                (id, link)
            })
        })
        .collect();
    // All at once, so the one-object key's ids share batches.
    let all = |w: &Worker| -> Vec<(String, u16)> {
        std::thread::scope(|s| {
            let running: Vec<_> = links
                .iter()
                .map(|(id, link)| {
                    s.spawn(move || {
                        (
                            id.clone(),
                            w.get(link, &[("cf-connecting-ip", "192.0.2.43")]).status,
                        )
                    })
                })
                .collect();
            running.into_iter().map(|h| h.join().unwrap()).collect()
        })
    };
    let first = all(&w);
    assert!(first.iter().all(|(_, s)| *s == 302), "{first:?}");
    assert!(w.events("fault").is_empty(), "{:?}", w.events("fault"));
    // Past the object's 250 ms before it stores what it answered.
    std::thread::sleep(Duration::from_secs(1));
    let w = w.restart(&[]);
    let again = all(&w);
    assert!(again.iter().all(|(_, s)| *s == 403), "{again:?}");
    assert!(w.events("fault").is_empty(), "{:?}", w.events("fault"));
}
