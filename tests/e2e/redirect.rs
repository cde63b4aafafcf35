//! Clicks that pass: the redirect, its macros and the parameters it passes on, the path form, HEAD and link previews,
//! transaction ids, and the decision lines the demo's clicks log.

use std::collections::HashSet;
use std::time::Duration;

use clickgate_core::token::TokenVerdict;

use crate::{
    demo, now_ms, open_token, push_ok, started_with_demo,
    support::{self, root, tid_of, Worker},
};

#[test]
fn redirect_substitutes_and_encodes_every_macro() {
    let w = started_with_demo(&[]);
    let before = now_ms();
    let r = w.get(
        "/c?offer_id=1001&aff_id=net-7&source_id=feed%203&sub1=spring%20promo&sub2=a%26b%3Dc\
         &sub3=%C3%BC&sub4=x%2Fy%3Fz&sub5=~ok&utm_campaign=spring%2026",
        &[],
    );
    assert_eq!(r.status, 302, "{}", r.body);
    let location = r.header("location").unwrap();
    let tid = tid_of(location);
    assert_eq!(
        location,
        format!(
            "https://shop.example/landing?tid={tid}&offer=1001&aff=net-7&adv=acme&src=feed%203\
             &s1=spring%20promo&s2=a%26b%3Dc&s3=%C3%BC&s4=x%2Fy%3Fz&s5=~ok\
             &utm_campaign=spring%2026"
        )
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));

    // The transaction id carries the click, authenticated: a postback can judge it without a lookup.
    let token = open_token(tid);
    assert_eq!(
        (token.offer_id.as_str(), token.aff_id.as_str()),
        ("1001", "net-7")
    );
    assert_eq!(token.verdict, TokenVerdict::Redirected);
    assert!(token.issued_ms >= before - 1000 && token.issued_ms <= now_ms() + 1000);

    // The decision log has one line for it, with the inputs.
    let line = w
        .wait_for(Duration::from_secs(5), || {
            w.events("click")
                .into_iter()
                .find(|e| e["transaction_id"] == tid)
        })
        .expect("decision log line");
    assert_eq!(line["verdict"], "redirect");
    assert_eq!(line["sub2"], "a&b=c");
    assert_eq!(line["source_id"], "feed 3");
}

#[test]
fn path_form_head_and_link_previews_get_the_redirect() {
    let w = started_with_demo(&[]);
    let r = w.get("/c/1002/aff.9?sub1=x", &[]);
    assert_eq!(r.status, 302);
    let location = r.header("location").unwrap();
    assert!(
        location.starts_with("https://shop.example/newsletter?click="),
        "{location}"
    );
    assert_eq!(
        open_token(&location["https://shop.example/newsletter?click=".len()..])
            .aff_id
            .as_str(),
        "aff.9"
    );

    let head = w.request("HEAD", "/c?offer_id=1001&aff_id=net-7", &[]);
    assert_eq!(head.status, 302);
    assert!(head
        .header("location")
        .unwrap()
        .starts_with("https://shop.example/landing?tid="));
    assert_eq!(head.body, "");

    let preview = w.get(
        "/c?offer_id=1001&aff_id=net-7&sub1=unfurl",
        &[(
            "user-agent",
            "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        )],
    );
    assert_eq!(preview.status, 302);
    let line = w
        .wait_for(Duration::from_secs(5), || {
            w.events("click")
                .into_iter()
                .find(|e| e["sub1"] == "unfurl")
        })
        .unwrap();
    assert_eq!(line["preview"], true);
}

/// Two clicks in one millisecond differ by their nonce alone, so each click must draw its own from
/// the runtime's random source: a constant nonce, or one the id leaves out, repeats here.
#[test]
fn transaction_ids_are_unique_by_their_nonces() {
    let w = started_with_demo(&[]);
    let drawn: Vec<_> = (0..30)
        .map(|_| {
            let r = w.get("/c?offer_id=1001&aff_id=net-7", &[]);
            assert_eq!(r.status, 302);
            open_token(tid_of(r.header("location").unwrap())).nonce
        })
        .collect();
    let distinct: HashSet<_> = drawn.iter().collect();
    assert_eq!(distinct.len(), 30, "{drawn:?}");
}

#[test]
fn a_sub_id_of_dots_cannot_walk_up_the_landing_path() {
    let w = Worker::start(&[]);
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(demo()).unwrap()).unwrap();
    doc["offers"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"id": "2001",
            "landing_url": "https://shop.example/land/{sub1}/page?s={sub1}"}));
    let config = w.state.0.join("dots.json");
    std::fs::write(&config, doc.to_string()).unwrap();
    push_ok(&w, &config);
    // `..` and `.` as sub IDs (`%2E%2E` in the link is `..` too); `...` is no dot segment.
    for (sub, segment, query) in [
        ("..", "%252E%252E", ".."),
        (".", "%252E", "."),
        ("%2E%2E", "%252E%252E", ".."),
        ("...", "...", "..."),
    ] {
        let r = w.get(&format!("/c?offer_id=2001&aff_id=net-7&sub1={sub}"), &[]);
        assert_eq!(r.status, 302, "{sub}: {}", r.body);
        let location = r.header("location").unwrap();
        assert_eq!(
            location,
            format!("https://shop.example/land/{segment}/page?s={query}"),
            "{sub}"
        );
    }
}

/// The demo's clicks (README's "A first rule" and `make dev`'s examples), under the demo config and
/// then the demo rules, each with the decision line it logs. `tests/vectors/demo-decisions.jsonl`
/// holds those lines as a build before any restructuring printed them, with the two values that
/// differ by run masked (`ts`, and the transaction id with its random nonce); this test requires
/// them byte for byte, so a change that means to leave behaviour alone can show it did.
/// `CLICKGATE_RECORD_DECISIONS=1` rewrites the file from the build under test.
#[test]
fn the_demo_clicks_log_the_recorded_decision_lines_byte_for_byte() {
    // Every click names its client: the test client's own User-Agent would change with its version.
    const CURL: (&str, &str) = ("User-Agent", "curl/8.4.0");
    const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) \
                          Version/17.4 Mobile/15E148 Safari/604.1";
    let with_demo: &[(&str, &[(&str, &str)])] = &[
        (
            "/c?offer_id=1001&aff_id=net-7&sub1=spring%20promo&source_id=feed-3",
            &[CURL],
        ),
        ("/c/1001/net-7?sub2=a%26b", &[CURL]),
        (
            "/c?offer_id=1001&aff_id=net-7",
            &[CURL, ("CF-Connecting-IP", "198.51.100.23")],
        ),
    ];
    let with_rules: &[(&str, &[(&str, &str)])] = &[
        ("/c?offer_id=1001&aff_id=net-7", &[CURL]),
        ("/c?offer_id=1001&aff_id=net-7", &[("User-Agent", IPHONE)]),
        ("/c?offer_id=1002&aff_id=net-7", &[CURL]),
        ("/c?offer_id=1001&aff_id=house&sub1=x", &[CURL]),
    ];
    let w = started_with_demo(&[("CONFIG_REFRESH_SECONDS", "1")]);
    let mut lines = Vec::new();
    // Clicks go one at a time and each logs one decision line before its answer: the line a click
    // adds is the next one.
    let mut click = |w: &Worker, path: &str, headers: &[(&str, &str)]| {
        let seen = w.raw_lines("click").len();
        w.get(path, headers);
        let line = w
            .wait_for(Duration::from_secs(5), || {
                w.raw_lines("click").get(seen).cloned()
            })
            .unwrap_or_else(|| panic!("no decision line for {path}"));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let (ts, tid) = (
            v["ts"].as_str().unwrap(),
            v["transaction_id"].as_str().unwrap(),
        );
        lines.push(
            line.replace(&format!("\"ts\":\"{ts}\""), "\"ts\":\"…\"")
                .replace(
                    &format!("\"transaction_id\":\"{tid}\""),
                    "\"transaction_id\":\"…\"",
                ),
        );
    };
    for (path, headers) in with_demo {
        click(&w, path, headers);
    }
    let before = w.get("/healthz", &[]).json()["config"].clone();
    support::stdout_of(w.push(&root().join("demo/rules.json")));
    w.wait_for(Duration::from_secs(15), || {
        (w.get("/healthz", &[]).json()["config"] != before).then_some(())
    })
    .expect("the Worker loaded demo/rules.json");
    for (path, headers) in with_rules {
        click(&w, path, headers);
    }
    let recorded = root().join("tests/vectors/demo-decisions.jsonl");
    let now = lines.join("\n") + "\n";
    if std::env::var_os("CLICKGATE_RECORD_DECISIONS").is_some() {
        std::fs::write(&recorded, &now).unwrap();
        // A comparison with what was just written could not fail: recording is not a test run.
        panic!(
            "recorded {}; run again without CLICKGATE_RECORD_DECISIONS to check it",
            recorded.display()
        );
    }
    let expected = std::fs::read_to_string(&recorded).unwrap_or_default();
    assert_eq!(
        now,
        expected,
        "the demo clicks' decision lines differ from {}",
        recorded.display()
    );
}
