//! The core's cost per click, natively: parse the request, decide, build the response and the log
//! line, exactly what the Worker calls. Also the one-time cost of compiling a config.
//!
//! `make bench` runs it (cargo bench -p clickgate-core).

use std::hint::black_box;

use clickgate_core::click::{route, ClientInfo, Route};
use clickgate_core::config::Config;
use clickgate_core::decide::decide;
use clickgate_core::http::click_response;
use clickgate_core::rules::Counters;
use clickgate_core::token::TokenKey;
use criterion::{criterion_group, criterion_main, Criterion};

const DEMO: &str = include_str!("../demo/config.json");

/// The demo config with `n` more blocked ranges, IPv4 and IPv6, none covering the benchmark client.
fn with_cidrs(n: usize) -> String {
    let mut doc: serde_json::Value = serde_json::from_str(DEMO).unwrap();
    let list = doc["lists"]["blocked_ips"].as_array_mut().unwrap();
    for i in 0..n {
        let entry = if i % 2 == 0 {
            format!("10.{}.{}.0/24", (i >> 8) & 255, i & 255)
        } else {
            format!("2001:db8:{:x}::/48", i % 65536)
        };
        list.push(entry.into());
    }
    doc.to_string()
}

fn one_click(config: &Config, key: &TokenKey, query: &str, ip: &str) -> usize {
    let Ok(Route::Click(params)) = route("GET", "/c", query) else {
        panic!("not a click")
    };
    let client = ClientInfo {
        ip: ip.parse().ok(),
        user_agent: Some(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15".into(),
        ),
        referer: Some("https://news.example/article".into()),
        country: Some("DE".into()),
        asn: Some(3320),
    };
    let counters = Some(Counters {
        ip_clicks: 1,
        distinct_sub_ids: 1,
    });
    let outcome = decide(
        config,
        key,
        params,
        client,
        counters,
        1_795_435_445_123,
        [9; 8],
    )
    .unwrap();
    let response = click_response(&outcome, Some("text/html"), false);
    outcome.log_line().len() + response.body.len() + response.headers.len()
}

fn benches(c: &mut Criterion) {
    let key = TokenKey::new(b"bench-secret-bench-secret-bench-secret-bench").unwrap();
    let demo = Config::compile(DEMO).unwrap();
    let big_text = with_cidrs(50_000);
    let big = Config::compile(&big_text).unwrap();
    let query = "offer_id=1001&aff_id=net-7&source_id=feed-3&sub1=spring%20promo&sub2=a%26b";

    let mut g = c.benchmark_group("click");
    g.bench_function("redirect, demo config", |b| {
        b.iter(|| one_click(black_box(&demo), &key, black_box(query), "192.0.2.10"))
    });
    g.bench_function("block, demo config", |b| {
        b.iter(|| one_click(black_box(&demo), &key, black_box(query), "198.51.100.23"))
    });
    g.bench_function("redirect, 50k CIDRs", |b| {
        b.iter(|| one_click(black_box(&big), &key, black_box(query), "192.0.2.10"))
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
    g.finish();
}

criterion_group!(decide_benches, benches);
criterion_main!(decide_benches);
