//! The fuzz harness: every parser that faces input from outside the operator's hands (the click URL
//! and query, the signature form, the transaction id, IP and CIDR text) or that an operator's typo
//! reaches (the config document), run on generated input for a fixed number of cases in `make test`.
//! Each asserts that nothing panics and, where there is one, a property of what came out. Each
//! prints how many cases it ran (`cargo test -p clickgate-core fuzz -- --nocapture`).

use std::cell::Cell;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use serde_json::Value;

use crate::click::{route, split_url, Id, Route};
use crate::config::networks::{Form, Mode, Policy, ReplayCheck, SigningKey};
use crate::config::{parse, Config};
use crate::ip::{parse_client_ip, parse_list, IpNet};
use crate::signing::{sign_link, verify, Check};
use crate::token::{ClickToken, TokenKey, TokenVerdict};
use crate::verdict::FaultMode;

/// Runs `test` on `cases` values of `strategy`; a panic or a failed property fails the test with
/// the smallest input proptest finds.
fn fuzz<S: Strategy>(
    name: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let mut runner = TestRunner::new(RunnerConfig {
        cases,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let ran = Cell::new(0u32);
    let result = runner.run(&strategy, |value| {
        ran.set(ran.get() + 1);
        test(value)
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    assert!(ran.get() >= cases, "{name}: ran {} of {cases}", ran.get());
    println!("fuzz {name}: {} cases, no panic", ran.get());
}

/// Text that looks like what the parser expects more often than random text would, and random
/// text besides.
fn text_of(alphabet: &'static str, len: usize) -> BoxedStrategy<String> {
    prop_oneof![
        3 => proptest::string::string_regex(&format!("[{alphabet}]{{0,{len}}}")).unwrap(),
        1 => proptest::string::string_regex(&format!("\\PC{{0,{len}}}")).unwrap(),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------------
// The click URL and query.

fn query() -> impl Strategy<Value = String> {
    // The link's own parameters, a signature and one the router ignores.
    let names: Vec<&str> = crate::click::PARAMS
        .iter()
        .copied()
        .chain(["signature", "other"])
        .collect();
    let pair = (
        prop::sample::select(names),
        text_of("A-Za-z0-9._~%+&=/?#-", 12),
    );
    prop::collection::vec(pair, 0..8).prop_map(|pairs| {
        pairs
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

#[test]
fn fuzz_click_url_and_query() {
    let method = prop_oneof![
        prop::sample::select(vec!["GET", "HEAD", "get", "POST", "PUT", ""]).prop_map(String::from),
        "\\PC{0,8}",
    ];
    let path = prop_oneof![
        Just("/c".to_owned()),
        text_of("A-Za-z0-9._%-", 10).prop_map(|s| format!("/c/{s}/net-7")),
        text_of("A-Za-z0-9._%/-", 24).prop_map(|s| format!("/{s}")),
    ];
    // Random pairs rarely hold exactly one valid offer_id and aff_id: half the queries start
    // with them, so the round trip below runs often.
    let click_query = prop_oneof![
        query(),
        query().prop_map(|q| format!("offer_id=1001&aff_id=net-7&{q}")),
    ];
    let clicks = Cell::new(0u32);
    fuzz(
        "click URL and query",
        2000,
        (method, path, click_query, "\\PC{0,20}"),
        |(method, path, query, junk)| {
            // The URL as the runtime hands it over, and as a client could mangle it.
            for url in [
                format!("https://t.example{path}?{query}"),
                format!("{junk}{path}?{query}#{junk}"),
                junk.clone(),
            ] {
                let (p, q) = split_url(&url);
                let _ = route(&method, p, q);
            }
            // A click that parses parses the same once its values are encoded again: what the
            // decision sees is what the link said, not an artefact of its encoding.
            if let Ok(Route::Click(c)) = route("GET", "/c", &query) {
                clicks.set(clicks.get() + 1);
                let mut again = form_urlencoded::Serializer::new(String::new());
                again.append_pair("offer_id", c.offer_id.as_str());
                again.append_pair("aff_id", c.aff_id.as_str());
                let named = [("source_id", &c.source_id), ("device_id", &c.device_id)];
                for (name, value) in named {
                    if let Some(v) = value {
                        again.append_pair(name, v);
                    }
                }
                for (i, sub) in c.subs.iter().enumerate() {
                    if let Some(v) = sub {
                        again.append_pair(&format!("sub{}", i + 1), v);
                    }
                }
                let Ok(Route::Click(mut back)) = route("GET", "/c", &again.finish()) else {
                    return Err(TestCaseError::fail(format!(
                        "{query}: does not route again"
                    )));
                };
                // The fields round-trip; the raw query, written anew, need not.
                back.link = c.link.clone();
                prop_assert_eq!(back, c);
            }
            Ok(())
        },
    );
    assert!(
        clicks.get() >= 200,
        "{} of 2000 queries were clicks",
        clicks.get()
    );
}

// ---------------------------------------------------------------------------------------------
// The signature form.

const SECRET: &str = "network-7-signing-secret-0001";
const NOW_MS: u64 = 1_795_431_600_000;

fn signing_policy(form: Form) -> Policy {
    Policy {
        mode: Mode::Enforce,
        form,
        keys: vec![SigningKey::new("k1", SECRET.as_bytes(), None).unwrap()],
        max_age_s: 86_400,
        on_replay_fault: FaultMode::Open,
        replay_check: ReplayCheck::BeforeRedirect,
        breaker: None,
        flood_exempt: true,
    }
}

#[test]
fn fuzz_signature_form() {
    let policies = [signing_policy(Form::Canonical), signing_policy(Form::Url)];
    let signature = prop_oneof!["[0-9a-f]{64}", text_of("0-9a-fA-F%", 70)];
    let expires = prop_oneof![Just((NOW_MS / 1000 + 600).to_string()), text_of("0-9-", 22)];
    let kid = prop::sample::select(vec!["k1", "k2", "", "k1&kid=k1"]);
    fuzz(
        "signature form",
        2000,
        (query(), signature, expires, kid, any::<bool>()),
        |(query, signature, expires, kid, signature_last)| {
            let signed = format!("{query}&expires={expires}&kid={kid}");
            let query = if signature_last {
                format!("{signed}&signature={signature}")
            } else {
                format!("signature={signature}&{signed}")
            };
            let url = format!("https://t.example/c?{query}");
            for p in &policies {
                // Nobody without the secret makes a signature that verifies: a signature guessed
                // or carried over from elsewhere never does.
                let check = verify(p, &url, "/c", &query, NOW_MS);
                prop_assert!(!matches!(check, Check::Valid { .. }), "{query}: {check:?}");
            }
            // And one made with the secret verifies, whatever the rest of the link holds.
            let link = format!("https://t.example/c?{query}");
            let real = sign_link(
                &policies[0],
                &policies[0].keys[0],
                &link,
                NOW_MS / 1000 + 600,
                None,
            );
            let (p, q) = split_url(&real);
            let check = verify(&policies[0], &real, p, q, NOW_MS);
            prop_assert!(matches!(check, Check::Valid { .. }), "{real}: {check:?}");
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// The transaction id.

#[test]
fn fuzz_transaction_id() {
    let key = TokenKey::new(b"0123456789abcdef0123456789abcdef-fuzz-only").unwrap();
    let other = TokenKey::new(b"another-key-another-key-another-key-0000").unwrap();
    let issued = (
        0u64..(1 << 48),
        any::<[u8; 8]>(),
        "[A-Za-z0-9._-]{0,40}[A-Za-z0-9_-][A-Za-z0-9._-]{0,23}",
        "[A-Za-z0-9._-]{0,40}[A-Za-z0-9_-][A-Za-z0-9._-]{0,23}",
    )
        .prop_map(|(ms, nonce, o, a)| ClickToken {
            issued_ms: ms,
            nonce,
            verdict: TokenVerdict::Redirected,
            offer_id: Id::parse(&o).unwrap(),
            aff_id: Id::parse(&a).unwrap(),
            profile: 0,
        });
    let damage = prop_oneof![
        Just(None),
        (
            any::<prop::sample::Index>(),
            prop::sample::select(vec!['A', '-', '_', '0', '=', '.'])
        )
            .prop_map(Some),
    ];
    let random = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..120).prop_map(|b| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
        }),
        text_of("A-Za-z0-9_-", 120),
    ];
    fuzz(
        "transaction id",
        2000,
        (issued, damage, any::<bool>(), random),
        |(token, damage, by_us, random)| {
            // A random string never opens.
            prop_assert!(ClickToken::open(&random, &key).is_err(), "{random}");
            // A token opens exactly when it is one we sealed, unchanged.
            let sealed = token.seal(if by_us { &key } else { &other });
            let mut text = sealed.clone();
            if let Some((at, c)) = damage {
                let i = at.index(text.len());
                text.replace_range(i..i + 1, &c.to_string());
            }
            let opened = ClickToken::open(&text, &key);
            prop_assert_eq!(opened.is_ok(), by_us && text == sealed, "{}", text);
            if let Ok(t) = opened {
                prop_assert_eq!(t, token);
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// IP and CIDR text.

#[test]
fn fuzz_ip_and_cidr_text() {
    use std::net::{Ipv4Addr, Ipv6Addr};
    // Random text is an address too rarely for the checks below to run often: real addresses
    // and blocks (host bits clear, as a list must have them) are mixed in.
    let v4 = any::<u32>().prop_map(|a| Ipv4Addr::from(a).to_string());
    let v6 = any::<u128>().prop_map(|a| Ipv6Addr::from(a).to_string());
    let v4_block = (any::<u32>(), 0u32..=32).prop_map(|(a, len)| {
        let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
        format!("{}/{len}", Ipv4Addr::from(a & mask))
    });
    let v6_block = (any::<u128>(), 0u32..=128).prop_map(|(a, len)| {
        let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
        format!("{}/{len}", Ipv6Addr::from(a & mask))
    });
    let text = prop_oneof![
        3 => text_of("0-9./", 20),
        3 => text_of("0-9a-fA-F:./", 45),
        1 => text_of("0-9a-fA-F:.%/ ", 45),
        1 => v4,
        1 => v6,
        1 => v4_block,
        1 => v6_block,
    ];
    let (nets, ips) = (Cell::new(0u32), Cell::new(0u32));
    fuzz("IP and CIDR text", 3000, (text.clone(), text), |(a, b)| {
        // What parses prints back as text that parses to the same value, and contains itself.
        if let Ok(net) = IpNet::parse(&a) {
            nets.set(nets.get() + 1);
            prop_assert_eq!(IpNet::parse(&net.to_string()), Ok(net), "{}", a);
        }
        if let Some(ip) = parse_client_ip(&a) {
            ips.set(ips.get() + 1);
            prop_assert_eq!(parse_client_ip(&ip.to_string()), Some(ip), "{}", a);
            let host = IpNet::parse(&ip.to_string());
            prop_assert!(host.is_ok_and(|n| n.contains(ip)), "{}", a);
        }
        // A list parses whole or reports every bad line; what it holds contains each address
        // that parsed on its own.
        let list = format!("{a}\n# note\n{b}\n");
        match parse_list(&list) {
            Ok(set) => {
                for line in [&a, &b] {
                    if let Some(ip) = parse_client_ip(line.split('/').next().unwrap_or("")) {
                        if IpNet::parse(line).is_ok() {
                            prop_assert!(set.lookup(ip).is_some(), "{}", list);
                        }
                    }
                }
            }
            Err(problems) => prop_assert!(!problems.is_empty()),
        }
        Ok(())
    });
    // About a third of the cases are addresses or blocks: the round trips above ran, often.
    assert!(
        nets.get() >= 500 && ips.get() >= 250,
        "{} blocks and {} addresses parsed",
        nets.get(),
        ips.get()
    );
}

// ---------------------------------------------------------------------------------------------
// The config document.

const DEMO: &str = include_str!("../../../demo/config.json");

/// Field names and values of the document, so that generated documents reach past its first check.
const WORDS: [&str; 44] = [
    "version",
    "advertisers",
    "offers",
    "id",
    "name",
    "advertiser_id",
    "status",
    "landing_url",
    "geo",
    "allow",
    "deny",
    "lists",
    "blocked_ips",
    "allowed_ips",
    "fraud_ips",
    "datacenter_asns",
    "builtin",
    "hosting",
    "except",
    "relays",
    "rules",
    "created_at",
    "priority",
    "scope",
    "level",
    "strategy",
    "filters",
    "type",
    "max",
    "window_hours",
    "seconds",
    "points",
    "networks",
    "signing",
    "keys",
    "secret",
    "breaker",
    "flood",
    "per_minute",
    "analytics",
    "binding",
    "kv",
    "mobile_cpi",
    "https://x.example/{sub1}",
];

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        (0u64..3).prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
        prop::sample::select(&WORDS[..]).prop_map(Value::from),
    ];
    let key = prop_oneof![
        3 => prop::sample::select(&WORDS[..]).prop_map(String::from),
        1 => "[a-z_]{1,8}",
    ];
    leaf.prop_recursive(5, 96, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// What a compile came to, without the digest (which names the text, not what it means).
fn outcome(text: &str) -> Result<[usize; 4], Vec<String>> {
    Config::compile(text)
        .map(|c| {
            [
                c.offers.len(),
                c.rules.len(),
                c.networks.len(),
                c.flood.len(),
            ]
        })
        .map_err(|errors| errors.iter().map(|e| e.to_string()).collect())
}

/// Replaces, removes or adds one value somewhere in a document; `steps` picks the way down.
fn mutate(doc: &mut Value, steps: &[prop::sample::Index], action: u8, with: Value) {
    let (step, rest) = match steps.split_first() {
        Some(s) => s,
        None => return,
    };
    let deeper = !rest.is_empty() && step.index(4) != 0;
    match doc {
        Value::Object(map) if !map.is_empty() => {
            let key = map
                .keys()
                .nth(step.index(map.len()))
                .cloned()
                .unwrap_or_default();
            match (deeper, action % 3) {
                (true, _) => mutate(&mut map[&key], rest, action, with),
                (false, 0) => map[&key] = with,
                (false, 1) => {
                    map.remove(&key);
                }
                _ => {
                    map.insert(format!("{key}_x"), with);
                }
            }
        }
        Value::Array(list) if !list.is_empty() => {
            let i = step.index(list.len());
            match (deeper, action % 3) {
                (true, _) => mutate(&mut list[i], rest, action, with),
                (false, 0) => list[i] = with,
                (false, 1) => {
                    list.remove(i);
                }
                _ => list.push(with),
            }
        }
        other => *other = with,
    }
}

#[test]
fn fuzz_config_document_arbitrary_json() {
    fuzz(
        "config document, arbitrary JSON",
        1000,
        (json(), any::<bool>()),
        |(mut doc, versioned)| {
            if let (true, Value::Object(map)) = (versioned, &mut doc) {
                map.insert("version".into(), Value::from(1));
            }
            let text = doc.to_string();
            // The duplicate-refusing parse builds what serde_json builds from the same text, and
            // finds no duplicate in text serde_json wrote.
            let (parsed, twice) = parse(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let theirs: Value =
                serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(parsed.to_json(), theirs);
            prop_assert!(twice.is_empty());
            // What a document means does not depend on how it is laid out.
            let pretty = serde_json::to_string_pretty(&doc).unwrap_or_default();
            prop_assert_eq!(outcome(&text), outcome(&pretty));
            let _ = crate::config::referenced_lists(&text);
            Ok(())
        },
    );
}

#[test]
fn fuzz_config_document_mutations_of_the_demo() {
    let demo: Value = serde_json::from_str(DEMO).unwrap();
    let steps = prop::collection::vec(any::<prop::sample::Index>(), 1..7);
    let bytes = (
        any::<prop::sample::Index>(),
        prop::sample::select(vec![
            "",
            "\"",
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            "1",
            "-1",
            "x",
            "\\",
            "99999999999999999999",
        ]),
    );
    fuzz(
        "config document, mutations of the demo",
        1000,
        (steps, any::<u8>(), json(), bytes),
        |(steps, action, with, (at, insert))| {
            let mut doc = demo.clone();
            mutate(&mut doc, &steps, action, with);
            let text = doc.to_string();
            let got = outcome(&text);
            if let Err(problems) = &got {
                prop_assert!(!problems.is_empty());
            }
            let pretty = serde_json::to_string_pretty(&doc).unwrap_or_default();
            prop_assert_eq!(&got, &outcome(&pretty));
            // Bytes of the demo's own text replaced: never a panic, and a refusal always says why.
            let mut text = DEMO.to_owned();
            let i = at.index(text.len());
            text.replace_range(i..i + 1, insert);
            if let Err(problems) = outcome(&text) {
                prop_assert!(!problems.is_empty() && problems.iter().all(|p| !p.is_empty()));
            }
            Ok(())
        },
    );
}

#[test]
fn the_harness_reaches_past_the_first_check() {
    // Mutated demos that still compile, and ones refused for many different reasons: the
    // generators produce documents the compiler has to look into, not only broken JSON.
    let demo: Value = serde_json::from_str(DEMO).unwrap();
    let mut runner = TestRunner::deterministic();
    let strategy = (
        prop::collection::vec(any::<prop::sample::Index>(), 1..7),
        any::<u8>(),
        json(),
    );
    let (mut compiled, mut reasons) = (0, std::collections::HashSet::new());
    for _ in 0..300 {
        let (steps, action, with) = strategy.new_tree(&mut runner).unwrap().current();
        let mut doc = demo.clone();
        mutate(&mut doc, &steps, action, with);
        match outcome(&doc.to_string()) {
            Ok(_) => compiled += 1,
            Err(problems) => {
                for p in problems {
                    let problem = p.split_once(": ").map_or(p.as_str(), |(_, b)| b);
                    reasons.insert(
                        problem
                            .split_whitespace()
                            .take(3)
                            .collect::<Vec<_>>()
                            .join(" "),
                    );
                }
            }
        }
    }
    assert!(compiled >= 30, "{compiled} of 300 compiled");
    assert!(reasons.len() >= 6, "{reasons:?}");
}
