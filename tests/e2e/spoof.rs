//! The `spoof` filter in the running Worker: a script's request and a browser's under a rule that
//! declines from `medium`, with the connection facts `request.cf` gives in production set per
//! request, and without them as locally.

use std::process::Command;
use std::time::Duration;

use crate::{
    demo_with, push_ok,
    support::{TempDir, Worker},
};

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/// Chrome's navigation to a link followed from another site.
const CHROME_NAVIGATION: [(&str, &str); 11] = [
    ("sec-ch-ua", r#""Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24""#),
    ("sec-ch-ua-mobile", "?0"),
    ("sec-ch-ua-platform", "\"Windows\""),
    ("upgrade-insecure-requests", "1"),
    ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"),
    ("sec-fetch-site", "cross-site"),
    ("sec-fetch-mode", "navigate"),
    ("sec-fetch-user", "?1"),
    ("sec-fetch-dest", "document"),
    ("accept-encoding", "gzip, deflate, br, zstd"),
    ("accept-language", "de-DE,de;q=0.9,en;q=0.8"),
];

/// What Miniflare hands the Worker as `request.cf` for one request (it replaces the harness's).
fn cf(protocol: &str) -> String {
    serde_json::json!({
        "asn": 64496, "country": "DE", "colo": "FRA", "httpProtocol": protocol,
        "tlsVersion": "TLSv1.3", "tlsCipher": "AEAD-AES128-GCM-SHA256",
    })
    .to_string()
}

#[test]
fn a_spoof_rule_declines_a_script_claiming_chrome_and_redirects_chrome() {
    let w = Worker::start(&[("CONFIG_REFRESH_SECONDS", "1")]);
    let rules = serde_json::json!([{
        "id": "spoofed", "created_at": "2026-11-01T00:00:00Z", "scope": {"offers": ["1001"]},
        "strategy": {"filters": [{"type": "spoof"}]}, "decline": "medium_and_higher"
    }]);
    push_ok(
        &w,
        &demo_with(&w, "spoof.json", rules, serde_json::json!({})),
    );
    let click = |ip: &str, headers: &[(&str, &str)], cf: Option<&str>| {
        let mut all = vec![("user-agent", CHROME), ("cf-connecting-ip", ip)];
        all.extend_from_slice(headers);
        all.extend(cf.map(|cf| ("mf-cf-blob", cf)));
        w.get("/c?offer_id=1001&aff_id=net-7", &all)
    };
    // Python's requests: Accept */*, its own Accept-Encoding, HTTP/1.1 over TLS.
    let script = [("accept", "*/*"), ("accept-encoding", "gzip, deflate")];
    let h1 = cf("HTTP/1.1");
    let live = w.wait_for(Duration::from_secs(15), || {
        (click("192.0.2.61", &script, Some(&h1)).status == 403).then_some(())
    });
    assert!(live.is_some(), "the spoof rule never took effect");
    let line = w
        .wait_for(Duration::from_secs(5), || {
            w.events("click")
                .into_iter()
                .find(|e| e["verdict"] == "block" && e["ip"] == "192.0.2.61")
        })
        .expect("a block line for the script");
    assert_eq!(line["reasons"][0]["code"], "spoof");
    let matched = line["reasons"][0]["matched"].as_str().unwrap();
    assert!(
        matched.starts_with("certain: no client hints (sec-ch-ua)"),
        "{matched}"
    );
    assert!(matched.ends_with("HTTP/1.1 (http_protocol)"), "{matched}");
    assert_eq!(line["sent"]["http_protocol"], "HTTP/1.1");
    assert_eq!(line["sent"]["accept"], "*/*");

    // Chrome over HTTP/2, and Chrome as the local runtime serves it (no protocol or TLS given).
    let h2 = cf("HTTP/2");
    for (ip, cf) in [("192.0.2.62", Some(h2.as_str())), ("192.0.2.63", None)] {
        let r = click(ip, &CHROME_NAVIGATION, cf);
        assert_eq!(r.status, 302, "chrome from {ip}");
        let line = w
            .wait_for(Duration::from_secs(5), || {
                w.events("click").into_iter().find(|e| e["ip"] == ip)
            })
            .expect("a line for the browser");
        assert_eq!(line["reasons"], serde_json::json!([]), "{line}");
        assert_eq!(line["sent"]["sec-fetch-mode"], "navigate");
    }

    // curl's defaults with no connection facts: two causes, still declined from `medium`.
    let r = click("192.0.2.64", &[("accept", "*/*")], None);
    assert_eq!(r.status, 403);
}

/// Headless Chromium following a tracking link with a desktop Chrome's User-Agent of its own
/// version: a real browser's navigation, which gets no spoof points. With a Windows User-Agent
/// instead (a browser dressed as another system, as automation does), its client hints still say
/// Linux: one weak sign, which a rule declining from `low` declines and one from `medium` would not.
#[test]
fn headless_chromium_gets_no_points_as_itself_and_a_weak_sign_dressed_as_windows() {
    let w = Worker::start(&[("CONFIG_REFRESH_SECONDS", "1")]);
    let rules = serde_json::json!([{
        "id": "spoofed", "created_at": "2026-11-01T00:00:00Z", "scope": {"offers": ["1001"]},
        "strategy": {"filters": [{"type": "spoof"}]}, "decline": "low_and_higher"
    }]);
    push_ok(
        &w,
        &demo_with(&w, "spoof.json", rules, serde_json::json!({})),
    );
    let browser = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".to_owned());
    let version = Command::new(&browser).arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&version.stdout);
    let major: u32 = version
        .split_whitespace()
        .find_map(|w| w.split('.').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no version in {version:?}"));
    let url = format!("{}/c?offer_id=1001&aff_id=net-7", w.base);
    let follow = |system: &str| {
        let ua = format!(
            "Mozilla/5.0 ({system}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{major}.0.0.0 Safari/537.36"
        );
        let profile = TempDir::new("chromium");
        let out = Command::new(&browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
            ])
            .args(["--virtual-time-budget=3000", "--dump-dom"])
            .arg(format!("--user-agent={ua}"))
            .arg(format!("--user-data-dir={}", profile.0.display()))
            .arg(&url)
            .output()
            .unwrap_or_else(|e| panic!("{browser} is needed (make setup): {e}"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        w.wait_for(Duration::from_secs(10), || {
            w.events("click")
                .into_iter()
                .find(|e| e["user_agent"] == ua.as_str())
        })
        .unwrap_or_else(|| panic!("no line for {ua}"))
    };
    let itself = follow("X11; Linux x86_64");
    println!("chromium {major} as itself: {}", itself["sent"]);
    assert_eq!(itself["verdict"], "redirect");
    assert_eq!(itself["reasons"], serde_json::json!([]));
    assert_eq!(itself["sent"]["sec-fetch-mode"], "navigate");
    let hints = itself["sent"]["sec-ch-ua"].as_str().unwrap();
    assert!(
        hints.contains(&format!("\"Chromium\";v=\"{major}\"")),
        "{hints}"
    );

    let dressed = follow("Windows NT 10.0; Win64; x64");
    assert_eq!(dressed["verdict"], "block");
    assert_eq!(
        dressed["reasons"][0]["matched"],
        "weak: client hints say Linux (sec-ch-ua-platform)"
    );
    assert_eq!(dressed["reasons"][0]["points"], 30);
}

/// The filter's headers and the connection's facts cross into the Worker only under a config
/// that has the filter: under one without it, a browser's click that sends them all over HTTP/2
/// leaves none of them in its decision log; once a rule has the filter, the same click's line
/// carries every one.
#[test]
fn a_config_without_the_filter_logs_none_of_its_headers_or_facts() {
    let w = Worker::start(&[("CONFIG_REFRESH_SECONDS", "1")]);
    let rule = |filters: serde_json::Value| {
        serde_json::json!([{
            "id": "r", "created_at": "2026-11-01T00:00:00Z", "scope": {"offers": ["1001"]},
            "strategy": {"filters": filters}, "decline": "high"
        }])
    };
    // The runtime rewrites Accept-Encoding; the client's own comes in `request.cf`.
    let mut h2: serde_json::Value = serde_json::from_str(&cf("HTTP/2")).unwrap();
    h2["clientAcceptEncoding"] = "gzip, deflate, br, zstd".into();
    let h2 = h2.to_string();
    let click = |ip: &str| {
        let mut all = vec![
            ("user-agent", CHROME),
            ("cf-connecting-ip", ip),
            ("mf-cf-blob", &h2),
        ];
        all.extend_from_slice(&CHROME_NAVIGATION);
        assert_eq!(
            w.get("/c?offer_id=1001&aff_id=net-7", &all).status,
            302,
            "{ip}"
        );
        w.wait_for(Duration::from_secs(5), || {
            w.events("click").into_iter().find(|e| e["ip"] == ip)
        })
        .unwrap_or_else(|| panic!("no line for {ip}"))
    };
    let bot = serde_json::json!([{"type": "bot"}]);
    push_ok(
        &w,
        &demo_with(&w, "bot.json", rule(bot), serde_json::json!({})),
    );
    let line = click("192.0.2.71");
    assert_eq!(line.get("sent"), None, "{line}");
    let text = line.to_string();
    let facts = ["HTTP/2", "TLSv1.3", "AEAD-AES128-GCM-SHA256"];
    for value in CHROME_NAVIGATION
        .iter()
        .filter(|(name, _)| *name != "accept")
        .map(|(_, value)| *value)
        .chain(facts)
        // `?0`, `?1` and `1` could be any field's.
        .filter(|value| value.len() > 3)
    {
        let value = serde_json::Value::from(value).to_string();
        assert!(!text.contains(&value), "{value} in {text}");
    }

    let spoof = serde_json::json!([{"type": "bot"}, {"type": "spoof"}]);
    push_ok(
        &w,
        &demo_with(&w, "spoof.json", rule(spoof), serde_json::json!({})),
    );
    let mut n = 0;
    let line = w
        .wait_for(Duration::from_secs(15), || {
            n += 1;
            let line = click(&format!("192.0.2.{}", 100 + n));
            line.get("sent").is_some().then_some(line)
        })
        .expect("the spoof rule never took effect");
    let sent = line["sent"].as_object().unwrap();
    for (name, value) in CHROME_NAVIGATION {
        assert_eq!(sent[name], value, "{name}");
    }
    for (name, value) in ["http_protocol", "tls_version", "tls_cipher"]
        .into_iter()
        .zip(facts)
    {
        assert_eq!(sent[name], value, "{name}");
    }
    assert_eq!(sent.len(), CHROME_NAVIGATION.len() + facts.len(), "{line}");
}
