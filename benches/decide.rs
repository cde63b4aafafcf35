//! The core's cost per click, natively: parse the request, decide, build the response and the log
//! line, exactly what the Worker calls. Also the one-time cost of compiling a config.
//!
//! `make bench` runs it (cargo bench -p clickgate-core).

use std::hint::black_box;

use clickgate_core::click::{split_url, ClientInfo, Sent};
use clickgate_core::config::networks::{Form, Mode, Policy, ReplayCheck, SigningKey};
use clickgate_core::config::Config;
use clickgate_core::decide::{decide, ClickOutcome, Observed};
use clickgate_core::filters::spoof;
use clickgate_core::flood::Thresholds;
use clickgate_core::http::click_response;
use clickgate_core::network::local::{Flush, FlushPolicy, LocalCounts};
use clickgate_core::rules::Counters;
use clickgate_core::signing::{canonical_string, sign_link, verify};
use clickgate_core::token::TokenKey;
use clickgate_core::ua::UserAgent;
use clickgate_core::verdict::FaultMode;
use criterion::{criterion_group, Criterion};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const DEMO: &str = include_str!("../demo/config.json");

/// `n` ranges, IPv4 and IPv6, none covering the benchmark client.
fn cidrs(n: usize, salt: usize) -> Vec<serde_json::Value> {
    (0..n)
        .map(|i| {
            if i % 2 == 0 {
                format!("10.{}.{}.0/24", (i >> 8) & 255, (i + salt) & 255)
            } else {
                format!("2001:db8:{:x}:{salt:x}::/64", i % 65536)
            }
            .into()
        })
        .collect()
}

/// The demo config with `n` more blocked ranges.
fn with_cidrs(n: usize) -> String {
    let mut doc: serde_json::Value = serde_json::from_str(DEMO).unwrap();
    doc["lists"]["blocked_ips"]
        .as_array_mut()
        .unwrap()
        .extend(cidrs(n, 0));
    doc.to_string()
}

/// A production-sized config: about 100 offers, 100 rules over them (presets and custom filter lists,
/// scopes of every kind), and 50,000 ranges across the datacenter, VPN and fraud lists.
fn realistic() -> String {
    let mut doc: serde_json::Value = serde_json::from_str(DEMO).unwrap();
    let offers = doc["offers"].as_array_mut().unwrap();
    for i in 0..100 {
        offers.push(serde_json::json!({"id": format!("o{i}"), "advertiser_id": "acme",
            "landing_url": "https://shop.example/l?t={transaction_id}&s={sub1}", "geo": {"deny": ["KP", "IR"]}}));
    }
    let presets = ["mobile_cpi", "mobile_cpa", "lead", "ecommerce"];
    let rules: Vec<serde_json::Value> = (0..100)
        .map(|i| {
            let scope = match i % 4 {
                0 => serde_json::json!({"offers": ["1001", format!("o{i}")]}),
                1 => serde_json::json!({"advertisers": ["acme"], "affiliates": {"include": "all", "exclude": ["net-9"]}}),
                2 => serde_json::json!({"offers": [format!("o{i}")], "affiliates": ["net-7", "net-8"]}),
                _ => serde_json::json!({"affiliates": [format!("aff-{i}")]}),
            };
            let strategy = if i % 2 == 0 {
                serde_json::json!(presets[i % 4])
            } else {
                serde_json::json!({"filters": [{"type": "bot"}, {"type": "datacenter_vpn"}, {"type": "referrer"},
                                               {"type": "old_os_browser"}, {"type": "fraud_database"}]})
            };
            serde_json::json!({"id": format!("r{i}"), "created_at": format!("2026-{:02}-01", i % 12 + 1),
                               "priority": i % 3, "scope": scope, "strategy": strategy, "decline": "medium_and_higher"})
        })
        .collect();
    doc["rules"] = rules.into();
    doc["lists"]["datacenter_ips"] = cidrs(30_000, 1).into();
    doc["lists"]["vpn_ips"] = cidrs(10_000, 2).into();
    doc["lists"]["fraud_ips"] = cidrs(10_000, 3).into();
    doc["lists"]["datacenter_asns"] = (1..2000).map(|n| n * 7).collect::<Vec<u32>>().into();
    doc["lists"]["blocked_referrers"] = (0..500)
        .map(|i| format!("*.spam{i}.example"))
        .collect::<Vec<_>>()
        .into();
    doc.to_string()
}

/// [`realistic`] without its 50,000 ranges written out: the document a first click compiles when
/// they are a list in their own KV key.
fn listed_apart() -> String {
    let mut doc: serde_json::Value = serde_json::from_str(&realistic()).unwrap();
    let lists = doc["lists"].as_object_mut().unwrap();
    for list in ["datacenter_ips", "vpn_ips", "fraud_ips"] {
        lists.remove(list);
    }
    doc.to_string()
}

/// A document of `n` advertisers, `n` offers (one per advertiser) and `n` networks.
fn wide(n: usize) -> String {
    let advertisers: Vec<_> = (0..n)
        .map(|i| serde_json::json!({"id": format!("adv-{i}")}))
        .collect();
    let offers: Vec<_> = (0..n)
        .map(|i| {
            serde_json::json!({"id": i.to_string(), "advertiser_id": format!("adv-{i}"),
            "landing_url": "https://x.example/?t={transaction_id}"})
        })
        .collect();
    let networks: Vec<_> = (0..n)
        .map(|i| serde_json::json!({"id": format!("net-{i}"), "flood": {"per_minute": 100}}))
        .collect();
    serde_json::json!({"version": 1, "advertisers": advertisers, "offers": offers, "networks": networks})
        .to_string()
}

const CHROME: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                      Chrome/131.0.0.0 Safari/537.36";

/// The request facts the edge reads from `headers`, over HTTP/2 and TLS 1.3.
fn sent(headers: &[(&str, &'static str)]) -> Sent {
    let header = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    Sent::read(
        header,
        "https://clicks.example/c",
        Some("HTTP/2"),
        Some("TLSv1.3"),
        Some("AEAD-AES128-GCM-SHA256"),
    )
}

/// What Chrome 131 sends on a navigation.
fn navigation() -> Sent {
    sent(&[
        (
            "sec-ch-ua",
            r#""Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24""#,
        ),
        ("sec-ch-ua-mobile", "?0"),
        ("sec-ch-ua-platform", "\"Windows\""),
        ("upgrade-insecure-requests", "1"),
        (
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-mode", "navigate"),
        ("sec-fetch-user", "?1"),
        ("sec-fetch-dest", "document"),
        ("accept-encoding", "gzip, deflate, br, zstd"),
        ("accept-language", "de-DE,de;q=0.9"),
    ])
}

/// What a script sends.
fn script() -> Sent {
    sent(&[("accept", "*/*")])
}

/// One of two User-Agents, in turn: consecutive clicks rarely share a header in traffic.
fn in_turn(pair: [&str; 2]) -> &str {
    static TURN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    pair[TURN.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 2]
}

fn one_click(config: &Config, key: &TokenKey, query: &str, ip: &str) -> usize {
    let ua = in_turn([
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0.0.0 Safari/537.36",
    ]);
    one_click_as(config, key, query, ip, ua)
}

fn one_click_as(config: &Config, key: &TokenKey, query: &str, ip: &str, ua: &str) -> usize {
    let outcome = decided(config, key, query, ip, ua);
    let response = click_response(&outcome, Some("text/html"), false);
    outcome.log_line().len() + response.body.len() + response.headers.len()
}

/// The decision alone: the click routed and decided, as the edge would hand it in.
fn decided(config: &Config, key: &TokenKey, query: &str, ip: &str, ua: &str) -> ClickOutcome {
    decided_with(config, key, query, ip, ua, None)
}

/// The same with the request's facts, which the edge reads only under a config with the `spoof`
/// filter.
fn decided_with(
    config: &Config,
    key: &TokenKey,
    query: &str,
    ip: &str,
    ua: &str,
    sent: Option<&Sent>,
) -> ClickOutcome {
    // As the Worker reads a link: by the config's compiled link formats.
    let params = config
        .links
        .route("GET", &format!("https://clicks.example/c?{query}"))
        .unwrap();
    let client = ClientInfo {
        ip: ip.parse().ok(),
        ip_unreadable: false,
        user_agent: Some(ua.into()),
        referer: Some("https://news.example/article".into()),
        country: Some("DE".into()),
        asn: Some(3320),
        sent: sent.map(|s| Box::new(s.clone())),
        platform: None,
    };
    let counters = Some(Counters {
        ip_clicks: 1,
        distinct_sub_ids: 1,
        ..Counters::default()
    });
    decide(
        config,
        key,
        params,
        client,
        Observed {
            counters,
            signature: None,
            flood: Default::default(),
        },
        1_795_435_445_123,
        [9; 8],
    )
    .unwrap()
}

/// The demo config whose one rule, on offer 1001, has `filters` and declines from `high`.
fn rule_config(filters: &[&str]) -> Config {
    let mut doc: serde_json::Value = serde_json::from_str(DEMO).unwrap();
    let filters: Vec<_> = filters
        .iter()
        .map(|f| serde_json::json!({ "type": f }))
        .collect();
    doc["rules"] = serde_json::json!([{
        "id": "r", "created_at": "2026-11-01T00:00:00Z", "scope": {"offers": ["1001"]},
        "strategy": {"filters": filters}, "decline": "high"
    }]);
    Config::compile(&doc.to_string()).unwrap()
}

/// The least time one call of `a` and of `b` took, over twenty rounds of 20,000 calls each in
/// turn after a warm-up: for the printed difference of two benches, which criterion reports only
/// apart. Taking turns and the least of each keeps a busy machine's load out of the difference.
fn per_call_ns<A, B>(a: impl Fn() -> A, b: impl Fn() -> B) -> (f64, f64) {
    const CALLS: u32 = 20_000;
    fn round<T>(f: &impl Fn() -> T) -> f64 {
        let start = std::time::Instant::now();
        for _ in 0..CALLS {
            black_box(f());
        }
        start.elapsed().as_nanos() as f64 / f64::from(CALLS)
    }
    round(&a);
    round(&b);
    (0..20).fold((f64::INFINITY, f64::INFINITY), |(least_a, least_b), _| {
        (least_a.min(round(&a)), least_b.min(round(&b)))
    })
}

fn benches(c: &mut Criterion) {
    let key = TokenKey::new(b"bench-secret-bench-secret-bench-secret-bench").unwrap();
    let demo = Config::compile(DEMO).unwrap();
    let big_text = with_cidrs(50_000);
    let big = Config::compile(&big_text).unwrap();
    let query = "offer_id=1001&aff_id=net-7&source_id=feed-3&sub1=spring%20promo&sub2=a%26b";

    let mut g = c.benchmark_group("click");
    // The spoof filter's judgement of a browser's navigation and of a script's request: what it
    // adds to a click under a rule that has it.
    let chrome = UserAgent::parse(CHROME);
    let (browser_sent, script_sent) = (navigation(), script());
    g.bench_function("spoof filter, browser", |b| {
        b.iter(|| spoof::judge(black_box(&chrome), black_box(&browser_sent)).is_none())
    });
    g.bench_function("spoof filter, script", |b| {
        b.iter(|| spoof::judge(black_box(&chrome), black_box(&script_sent)).map(|f| f.signs.len()))
    });
    // A whole decision under a rule with the `bot` filter, and under the same rule with the
    // `spoof` filter too (the edge then hands in the request's facts): what the filter costs a
    // click. Criterion reports each; the difference is printed after the group.
    let bot = rule_config(&["bot"]);
    let bot_spoof = rule_config(&["bot", "spoof"]);
    let chrome_ua = chrome.as_str().to_owned();
    let without = || {
        decided(
            black_box(&bot),
            &key,
            black_box(query),
            "192.0.2.10",
            &chrome_ua,
        )
    };
    let with = || {
        let sent = Some(black_box(&browser_sent));
        decided_with(
            black_box(&bot_spoof),
            &key,
            black_box(query),
            "192.0.2.10",
            &chrome_ua,
            sent,
        )
    };
    assert!(
        with().log_line().contains("\"sent\":"),
        "the spoof filter did not run"
    );
    g.bench_function("decide only, bot rule", |b| b.iter(without));
    g.bench_function("decide only, bot + spoof rule", |b| b.iter(with));
    g.bench_function("redirect, demo config", |b| {
        b.iter(|| one_click(black_box(&demo), &key, black_box(query), "192.0.2.10"))
    });
    g.bench_function("block, demo config", |b| {
        b.iter(|| one_click(black_box(&demo), &key, black_box(query), "198.51.100.23"))
    });
    g.bench_function("redirect, 50k CIDRs", |b| {
        b.iter(|| one_click(black_box(&big), &key, black_box(query), "192.0.2.10"))
    });
    let real_text = realistic();
    let real = Config::compile(&real_text).unwrap();
    let browser = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) \
                   Version/17.4 Mobile/15E148 Safari/604.1";
    let browsers = [
        browser,
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) \
         Chrome/131.0.6778.135 Mobile Safari/537.36",
    ];
    g.bench_function("redirect, 100 rules + 50k CIDRs", |b| {
        b.iter(|| {
            one_click_as(
                black_box(&real),
                &key,
                black_box(query),
                "192.0.2.10",
                in_turn(browsers),
            )
        })
    });
    // The decision alone (route and decide), without writing the response and the log line.
    g.bench_function("decide only, 100 rules + 50k CIDRs", |b| {
        b.iter(|| {
            decided(
                black_box(&real),
                &key,
                black_box(query),
                "192.0.2.10",
                in_turn(browsers),
            )
        })
    });
    g.bench_function("block (bot), 100 rules + 50k CIDRs", |b| {
        b.iter(|| {
            one_click_as(
                black_box(&real),
                &key,
                black_box(query),
                "192.0.2.10",
                in_turn(["python-requests/2.31", "curl/8.4.0"]),
            )
        })
    });
    g.finish();
    let (with_ns, without_ns) = per_call_ns(with, without);
    println!(
        "spoof filter: a decision takes {with_ns:.0} ns with it, {without_ns:.0} ns without: +{:.0} ns",
        with_ns - without_ns
    );

    // Signature verification alone (target: under 2 µs), on a link as a network would send it.
    let policy = Policy {
        mode: Mode::Enforce,
        form: Form::Canonical,
        keys: vec![
            SigningKey::new("old", b"the-old-secret-of-network-7", None).unwrap(),
            SigningKey::new("new", b"the-new-secret-of-network-7", None).unwrap(),
        ],
        max_age_s: 86_400,
        on_replay_fault: FaultMode::Open,
        replay_check: ReplayCheck::BeforeRedirect,
        breaker: None,
        flood_exempt: true,
    };
    let now_ms = 1_795_435_445_123;
    let link = sign_link(
        &policy,
        &policy.keys[1],
        "https://track.example/c?offer_id=1001&aff_id=net-7&source_id=feed-3&sub1=spring%20promo&sub2=a%26b",
        now_ms / 1000 + 600,
        Some("net7-click-000123"),
    );
    let (path, query) = split_url(&link);
    let mut g = c.benchmark_group("signature");
    g.bench_function("verify, canonical form", |b| {
        b.iter(|| {
            verify(
                black_box(&policy),
                black_box(&link),
                path,
                black_box(query),
                now_ms,
            )
        })
    });
    // One HMAC-SHA256 of the same canonical string, keyed from the secret: the work verification
    // cannot avoid. Their ratio does not move with the machine, as the times do.
    let canonical = canonical_string(path, query).unwrap();
    let hmac = || {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"the-new-secret-of-network-7").unwrap();
        mac.update(black_box(canonical.as_bytes()));
        mac.finalize().into_bytes()
    };
    g.bench_function("one HMAC-SHA256 of the canonical string", |b| b.iter(hmac));
    g.finish();
    let verify_once = || verify(&policy, black_box(&link), path, black_box(query), now_ms);
    let (verify_ns, hmac_ns) = per_call_ns(verify_once, hmac);
    println!(
        "signature: verification takes {verify_ns:.0} ns, one HMAC-SHA256 of its canonical string \
         {hmac_ns:.0} ns: {:.2} HMACs",
        verify_ns / hmac_ns
    );

    // What the isolate does with each decided click after the response is written: the flood
    // count, the report row and (for a flagged click) the kept decision. The clicks all fall in
    // one minute, so past the first 300 the blocked click measures a flood's sampled-out path.
    let mut g = c.benchmark_group("count");
    let (clean, blocked) = (
        decided(&demo, &key, query, "192.0.2.10", browser),
        decided(&demo, &key, query, "198.51.100.23", browser),
    );
    let mut counts = LocalCounts::new(1, FlushPolicy::default());
    let mut flushed = 0u64;
    let (clean_line, blocked_line) = (clean.log_line(), blocked.log_line());
    let mut record = |outcome: &ClickOutcome, line: &str| {
        counts.record_outcome(black_box(outcome), line, Thresholds::default(), &[9; 8]);
        // Drain as the edge would, so the pending maps stay the size they have in service.
        flushed += 1;
        if flushed % 500 == 0 {
            if let Flush::Send(batch) = counts.flush(&outcome.click.aff_id, now_ms + 2_000) {
                counts.acked(&outcome.click.aff_id, batch.seq, Default::default(), now_ms);
            }
        }
    };
    g.bench_function("record a redirected click", |b| {
        b.iter(|| record(&clean, &clean_line))
    });
    g.bench_function("record a blocked click", |b| {
        b.iter(|| record(&blocked, &blocked_line))
    });
    g.finish();

    // Reading one User-Agent (split, one automaton pass, grading, platform): the target is under
    // 1.5 µs per header. A mix of what arrives, one header per iteration, in turn.
    let headers = [
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36 Instagram 330.0.0.34.109 Android (34/14; 480dpi; 1080x2340; samsung; SM-S918B; dm3q; qcom; en_US; 598323397)",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/450.0.0.38.108;FBBV/567890123;FBDV/iPhone14,2;FBMD/iPhone;FBSN/iOS;FBSV/17.1;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "python-requests/2.31.0",
        "Mozilla/5.0 (Linux; arm_64; Android 12; SM-A125F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.5993.111 YaBrowser/23.11.3.74.00 SA/3 Mobile Safari/537.36",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    ];
    let mut g = c.benchmark_group("user agent");
    let mut turn = 0usize;
    g.bench_function("read one header (mix of 8)", |b| {
        b.iter(|| {
            turn = (turn + 1) % headers.len();
            UserAgent::parse(black_box(headers[turn]))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("config compile");
    g.sample_size(10);
    g.bench_function("demo", |b| {
        b.iter(|| Config::compile(black_box(DEMO)).unwrap())
    });
    g.bench_function("50k CIDRs", |b| {
        b.iter(|| Config::compile(black_box(&big_text)).unwrap())
    });
    g.bench_function("production-sized", |b| {
        b.iter(|| Config::compile(black_box(&real_text)).unwrap())
    });
    // About 17 MB, past the cap: the largest document tested, the figure docs/config.md gives.
    let widest = wide(100_000);
    // About 5 MB, near the cap on a stored document.
    let wide = wide(30_000);
    g.bench_function("30k networks, advertisers and offers", |b| {
        b.iter(|| Config::compile(black_box(&wide)).unwrap())
    });
    g.bench_function("100k networks, advertisers and offers", |b| {
        b.iter(|| Config::compile_past_cap(black_box(&widest)).unwrap())
    });
    g.finish();
}

criterion_group!(decide_benches, benches);

/// `--callgrind PATH [N]` runs one path N times (1,000) in [`measured`] and nothing else, for
/// `valgrind --tool=callgrind --toggle-collect='*measured*'`: instruction counts do not move with
/// the machine's load, as times do. Without it, the criterion benches.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == "--callgrind") {
        Some(at) => {
            let path = args.get(at + 1).map_or("", String::as_str);
            let n = args
                .get(at + 2)
                .and_then(|n| n.parse().ok())
                .unwrap_or(1000);
            callgrind(path, n);
        }
        None => {
            decide_benches();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}

fn callgrind(path: &str, n: usize) {
    let key = TokenKey::new(b"bench-secret-bench-secret-bench-secret-bench").unwrap();
    let query = "offer_id=1001&aff_id=net-7&source_id=feed-3&sub1=spring%20promo&sub2=a%26b";
    let browsers = [
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) \
         Version/17.4 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) \
         Chrome/131.0.6778.135 Mobile Safari/537.36",
    ];
    let scripts = ["python-requests/2.31", "curl/8.4.0"];
    let real = || Config::compile(&realistic()).unwrap();
    let chrome = UserAgent::parse(CHROME);
    match path {
        "redirect" => {
            let real = real();
            measured(n, || one_click_as(&real, &key, query, "192.0.2.10", in_turn(browsers)))
        }
        "decide" => {
            let real = real();
            measured(n, || decided(&real, &key, query, "192.0.2.10", in_turn(browsers)))
        }
        "block" => {
            let real = real();
            measured(n, || one_click_as(&real, &key, query, "192.0.2.10", in_turn(scripts)))
        }
        "spoof-browser" => {
            let sent = navigation();
            measured(n, || spoof::judge(black_box(&chrome), black_box(&sent)))
        }
        "spoof-script" => {
            let sent = script();
            measured(n, || spoof::judge(black_box(&chrome), black_box(&sent)))
        }
        "bot-rule" => {
            let bot = rule_config(&["bot"]);
            measured(n, || decided(&bot, &key, query, "192.0.2.10", CHROME))
        }
        "bot-spoof-rule" => {
            let (bot_spoof, sent) = (rule_config(&["bot", "spoof"]), navigation());
            measured(n, || decided_with(&bot_spoof, &key, query, "192.0.2.10", CHROME, Some(&sent)))
        }
        // A fresh isolate's first click compiles the document: the document is built outside.
        "compile" => {
            let doc = realistic();
            measured(n, || Config::compile(black_box(&doc)).unwrap())
        }
        // The same document with its ranges kept in a list of their own, as the cold-start bench
        // has it (benches/coldstart.mjs --realistic --list): what a first click compiles beside
        // the stored list.
        "compile-doc" => {
            let doc = listed_apart();
            measured(n, || Config::compile(black_box(&doc)).unwrap())
        }
        _ => panic!(
            "--callgrind redirect|decide|block|spoof-browser|spoof-script|bot-rule|bot-spoof-rule|compile|compile-doc [N]"
        ),
    }
}

#[inline(never)]
fn measured<T>(n: usize, f: impl Fn() -> T) {
    for _ in 0..n {
        black_box(f());
    }
}
