//! A link in a tracker's own format, through the whole decision: which parameters reach the
//! destination, byte for byte, and where an offer the document does not list is sent.

use clickgate_core::click::{ClientInfo, RequestError};
use clickgate_core::config::Config;
use clickgate_core::decide::{decide, ClickOutcome, Observed};
use clickgate_core::token::{TokenKey, NONCE_LEN};
use clickgate_core::verdict::Decision;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

const DOC: &str = r#"{
    "version": 1,
    "advertisers": [{"id": "acme"}, {"id": "tracker-adv"}],
    "offers": [
        {"id": "1001", "advertiser_id": "acme",
         "landing_url": "https://shop.example/land?tid={transaction_id}&s1={sub1}#top"},
        {"id": "1002", "landing_url": "https://shop.example/quiet", "pass_through": false},
        {"id": "1003", "landing_url": "https://shop.example/p?gclid={param:gclid}&rest={passthrough}&x=1"},
        {"id": "1004", "landing_url": "https://shop.example/p?{query}"}
    ],
    "links": [
        {"id": "ef", "preset": "everflow", "host": "ef.example",
         "destination": "https://tracker.example/?{query}&cg={transaction_id}",
         "advertiser_id": "tracker-adv"},
        {"id": "cake", "preset": "cake", "host": "cake.example", "pass_through": false},
        {"id": "own", "preset": "clickgate"}
    ],
    "rules": [
        {"id": "not-9", "created_at": "2026-01-01", "scope": {"affiliates": ["7"], "offers": {"exclude": ["9"]}},
         "decline": "medium_and_higher", "strategy": {"filters": [{"type": "bot"}]}}
    ]
}"#;

fn outcome(config: &Config, url: &str, ua: &str) -> Result<ClickOutcome, RequestError> {
    let click = config.links.route("GET", url)?;
    let client = ClientInfo {
        user_agent: Some(ua.into()),
        ..Default::default()
    };
    let key = TokenKey::new(&[5u8; 32]).expect("a 32-byte key");
    decide(
        config,
        &key,
        click,
        client,
        Observed::default(),
        1_780_000_000_000,
        [7; NONCE_LEN],
    )
}

const PHONE: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36";

fn location(config: &Config, url: &str) -> String {
    match outcome(config, url, PHONE).map(|o| o.decision) {
        Ok(Decision::Redirect { location }) => location,
        other => panic!("{url}: {other:?}"),
    }
}

fn config() -> Config {
    Config::compile(DOC).expect("the test document compiles")
}

#[test]
fn parameters_clickgate_does_not_read_reach_the_landing_page_as_they_came() {
    let c = config();
    let got = location(
        &c,
        "https://t.example/c?offer_id=1001&gclid=Cj0K%2Babc&aff_id=7&sub1=x&fbclid=IwAR1&k=1&k=2&name=J%C3%BCrgen&flag",
    );
    let tid = got
        .split("tid=")
        .nth(1)
        .and_then(|t| t.split('&').next())
        .expect("a transaction id");
    assert_eq!(
        got,
        format!(
            "https://shop.example/land?tid={tid}&s1=x&gclid=Cj0K%2Babc&fbclid=IwAR1&k=1&k=2&name=J%C3%BCrgen&flag#top"
        )
    );
}

#[test]
fn an_offer_or_a_profile_may_keep_the_other_parameters_back() {
    let c = config();
    assert_eq!(
        location(&c, "https://t.example/c?offer_id=1002&aff_id=7&gclid=x"),
        "https://shop.example/quiet"
    );
    // The CAKE profile passes nothing on: offer 1001's landing gets only its own macros.
    let got = location(&c, "https://cake.example/?c=1001&a=7&s1=x&gclid=y");
    assert!(got.starts_with("https://shop.example/land?tid="), "{got}");
    assert!(got.ends_with("&s1=x#top"), "{got}");
}

#[test]
fn a_template_places_one_parameter_the_rest_or_the_whole_query_itself() {
    let c = config();
    assert_eq!(
        location(
            &c,
            "https://t.example/c?offer_id=1003&aff_id=7&gclid=a%20b&utm=z&sub2=q"
        ),
        "https://shop.example/p?gclid=a%20b&rest=gclid=a%20b&utm=z&x=1"
    );
    assert_eq!(
        location(&c, "https://t.example/c?aff_id=7&offer_id=1004&gclid=g"),
        "https://shop.example/p?aff_id=7&offer_id=1004&gclid=g"
    );
}

#[test]
fn an_unlisted_offer_goes_to_its_profiles_destination_with_the_trackers_own_link() {
    let c = config();
    let o = outcome(
        &c,
        "https://ef.example/?oid=5001&affid=7&sub1=s&gclid=g&uid=3",
        PHONE,
    )
    .expect("an unlisted offer is served by the profile");
    assert_eq!(
        o.advertiser_id.as_ref().map(|a| a.as_str()),
        Some("tracker-adv")
    );
    let Decision::Redirect { location } = o.decision else {
        panic!("not redirected: {:?}", o.decision)
    };
    assert_eq!(
        location,
        format!(
            "https://tracker.example/?oid=5001&affid=7&sub1=s&gclid=g&uid=3&cg={}",
            o.transaction_id
        )
    );
    // The clickgate profile has no destination: an offer it does not list is still a 404.
    assert!(matches!(
        outcome(&c, "https://t.example/c?offer_id=5001&aff_id=7", PHONE),
        Err(RequestError::UnknownOffer { .. })
    ));
}

#[test]
fn a_rules_scope_covers_unlisted_offers_and_keeps_its_exclusions() {
    let c = config();
    let bot = "curl/8.5.0";
    let blocked = outcome(&c, "https://ef.example/?oid=5001&affid=7", bot).expect("served");
    assert!(
        matches!(blocked.decision, Decision::Block { .. }),
        "{:?}",
        blocked.decision
    );
    assert_eq!(
        blocked.assessment.map(|a| a.rule_id),
        Some("not-9".to_owned())
    );
    let excluded = outcome(&c, "https://ef.example/?oid=9&affid=7", bot).expect("served");
    assert!(matches!(excluded.decision, Decision::Redirect { .. }));
    assert!(
        excluded.assessment.is_none(),
        "offer 9 is outside the rule's scope"
    );
}

#[test]
fn a_signed_links_signature_parameters_are_not_passed_on() {
    let doc = r#"{"version": 1,
        "offers": [{"id": "1", "landing_url": "https://shop.example/"}],
        "networks": [{"id": "7", "signing": {"mode": "report_only",
            "keys": [{"id": "k1", "secret": "0123456789abcdef0123456789abcdef"}]}}]}"#;
    let c = Config::compile(doc).expect("compiles");
    let got = location(
        &c,
        "https://t.example/c?offer_id=1&aff_id=7&gclid=g&expires=1&kid=k1&signature=abc&click_id=c1",
    );
    assert_eq!(got, "https://shop.example/?gclid=g");
    // Without a signing policy the same names are the publisher's own, and passed on.
    let plain = Config::compile(
        r#"{"version": 1, "offers": [{"id": "1", "landing_url": "https://shop.example/"}]}"#,
    )
    .expect("compiles");
    assert_eq!(
        location(&plain, "https://t.example/c?offer_id=1&aff_id=7&kid=k1"),
        "https://shop.example/?kid=k1"
    );
}

#[cfg(not(target_arch = "wasm32"))]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// A raw query pair as a browser sends it: a name and a value of characters a query may hold,
    /// percent escapes among them.
    fn pair() -> impl Strategy<Value = String> {
        let text = "([A-Za-z0-9._~!$'()*+,;:@/?-]|%[0-9A-F]{2}){0,12}";
        (text, text).prop_map(|(n, v)| format!("x{n}={v}"))
    }

    proptest! {
        // Every parameter clickgate does not read arrives in the landing URL byte for byte, in
        // its order; the host and path are the landing URL's whatever the query holds.
        #[test]
        fn pass_through_keeps_every_byte_and_the_host(pairs in proptest::collection::vec(pair(), 0..6)) {
            let c = config();
            let extra = pairs.join("&");
            let url = format!("https://t.example/c?offer_id=1002&aff_id=7&{extra}");
            let doc = DOC.replace(r#""pass_through": false"#, r#""pass_through": true"#);
            let c2 = Config::compile(&doc).expect("compiles");
            let got = location(&c2, &url);
            let want = match extra.is_empty() {
                true => "https://shop.example/quiet".to_owned(),
                false => format!("https://shop.example/quiet?{extra}"),
            };
            prop_assert_eq!(got, want);
            prop_assert_eq!(location(&c, &url), "https://shop.example/quiet");
        }

        // Whatever the query holds, raw or in `{query}`, the destination's host stays the
        // template's.
        #[test]
        fn no_query_changes_the_destinations_host(query in "\\PC{0,60}") {
            let c = config();
            for url in [
                format!("https://ef.example/?oid=5001&affid=7&{query}"),
                format!("https://t.example/c?offer_id=1004&aff_id=7&{query}"),
                format!("https://t.example/c?offer_id=1001&aff_id=7&{query}"),
            ] {
                let Ok(o) = outcome(&c, &url, PHONE) else { continue };
                let Decision::Redirect { location } = o.decision else { continue };
                let rest = location.split_once("://").map(|(_, r)| r).unwrap_or("");
                let host = rest.split(['/', '?', '#']).next().unwrap_or("");
                prop_assert!(["tracker.example", "shop.example"].contains(&host), "{url} -> {location}");
                prop_assert!(location.matches('#').count() <= 1 && !location.contains(' '), "{location}");
            }
        }
    }
}

mod forwarding {
    use super::*;
    use clickgate_core::conversion::{parse, Judging, Prior};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const FORWARDING: &str = r#"{
        "version": 1,
        "advertisers": [
            {"id": "tracker-adv", "forward": {
                "approved": "https://tracker.example/pb?click={param:click_id}&ev={event}&cg={transaction_id}",
                "rejected": "https://tracker.example/pb?click={param:click_id}&status={status}&why={reason}"}},
            {"id": "quiet", "forward": {"approved": "https://quiet.example/pb?c={param:click_id}"}}
        ],
        "offers": [{"id": "1", "advertiser_id": "quiet", "landing_url": "https://shop.example/"}],
        "links": [
            {"id": "ef", "preset": "everflow", "destination": "https://tracker.example/?{query}",
             "advertiser_id": "tracker-adv"},
            {"id": "own", "preset": "clickgate"}
        ],
        "lists": {"blocked_ips": ["203.0.113.7"]}
    }"#;

    fn tid(config: &Config, url: &str, ip: &str) -> String {
        let click = config.links.route("GET", url).expect("a link");
        let client = ClientInfo {
            ip: ip.parse().ok(),
            user_agent: Some(PHONE.into()),
            ..Default::default()
        };
        let key = TokenKey::new(&[5u8; 32]).expect("a key");
        decide(
            config,
            &key,
            click,
            client,
            Observed::default(),
            1_000,
            [1; NONCE_LEN],
        )
        .expect("decided")
        .transaction_id
    }

    fn forwarded(config: &Config, tid: &str, extra: &str, seen: Prior) -> Option<String> {
        let key = TokenKey::new(&[5u8; 32]).expect("a key");
        let postback = parse(&format!("transaction_id={tid}&{extra}")).expect("a postback");
        Judging::new(config, &key, postback, 60_000)
            .expect("judged")
            .finish(Some(seen))
            .forward_url()
    }

    #[test]
    fn an_approved_conversion_on_an_unlisted_offer_reaches_its_profiles_tracker() {
        let c = Config::compile(FORWARDING).expect("compiles");
        let t = tid(&c, "https://t.example/?oid=5001&affid=7", "192.0.2.1");
        assert_eq!(
            forwarded(&c, &t, "event=sale&click_id=T%20123", Prior::Fresh),
            Some(format!(
                "https://tracker.example/pb?click=T%20123&ev=sale&cg={t}"
            ))
        );
        // The same event reported again is judged a duplicate and goes nowhere.
        assert_eq!(
            forwarded(&c, &t, "event=sale&click_id=T1", Prior::Duplicate),
            None
        );
        // A status the advertiser decided itself is not ours to pass on.
        assert_eq!(
            forwarded(
                &c,
                &t,
                "event=sale&click_id=T1&status=declined",
                Prior::Fresh
            ),
            None
        );
    }

    #[test]
    fn a_rejected_conversion_goes_to_the_rejected_url_with_its_reason_or_nowhere() {
        let c = Config::compile(FORWARDING).expect("compiles");
        let blocked = tid(&c, "https://t.example/?oid=5001&affid=7", "203.0.113.7");
        assert_eq!(
            forwarded(&c, &blocked, "click_id=T9", Prior::Fresh),
            Some("https://tracker.example/pb?click=T9&status=rejected&why=flagged_click".into())
        );
        // The listed offer's advertiser forwards approved conversions only.
        let quiet = tid(&c, "https://t.example/c?offer_id=1&aff_id=7", "203.0.113.7");
        assert_eq!(forwarded(&c, &quiet, "click_id=Q", Prior::Fresh), None);
        let fine = tid(&c, "https://t.example/c?offer_id=1&aff_id=7", "192.0.2.1");
        assert_eq!(
            forwarded(&c, &fine, "click_id=Q", Prior::Fresh),
            Some("https://quiet.example/pb?c=Q".into())
        );
    }

    #[test]
    fn a_forward_url_may_not_hand_on_the_postbacks_secret() {
        let doc = FORWARDING.replace("&cg={transaction_id}", "&all={query}");
        let problems = Config::compile(&doc).expect_err("refused");
        assert!(
            problems
                .iter()
                .any(|p| p.path == "advertisers[0].forward.approved"
                    && p.problem.contains("not {query}")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_tracker_reads_a_clicks_verdict_with_the_advertisers_secret_only() {
        use clickgate_core::conversion::{click_verdict, PostbackError};
        let doc = FORWARDING.replace(
            r#"{"id": "tracker-adv", "forward""#,
            r#"{"id": "tracker-adv", "postback_secret": "tracker-secret-0123456789", "forward""#,
        );
        let c = Config::compile(&doc).expect("compiles");
        let key = TokenKey::new(&[5u8; 32]).expect("a key");
        let fine = tid(&c, "https://t.example/?oid=5001&affid=7", "192.0.2.1");
        let blocked = tid(&c, "https://t.example/?oid=5001&affid=7", "203.0.113.7");
        let ask = |t: &str, secret: Option<&str>| {
            click_verdict(
                &c,
                &key,
                &format!("transaction_id={t}"),
                secret.map(str::to_owned),
            )
        };
        let answer: serde_json::Value =
            serde_json::from_str(&ask(&fine, Some("tracker-secret-0123456789")).expect("answered"))
                .expect("JSON");
        assert_eq!(
            (answer["verdict"].as_str(), answer["pay"].as_bool()),
            (Some("redirect"), Some(true))
        );
        assert_eq!(answer["offer_id"], "5001");
        let answer: serde_json::Value = serde_json::from_str(
            &ask(&blocked, Some("tracker-secret-0123456789")).expect("answered"),
        )
        .expect("JSON");
        assert_eq!(
            (answer["verdict"].as_str(), answer["pay"].as_bool()),
            (Some("block"), Some(false))
        );
        // Without the secret, or with another, nothing is said of the click.
        assert_eq!(ask(&fine, None), Err(PostbackError::Unauthorized));
        assert_eq!(ask(&fine, Some("guess")), Err(PostbackError::Unauthorized));
        // An advertiser without a secret cannot be asked at all: the id alone proves nothing.
        let quiet = tid(&c, "https://t.example/c?offer_id=1&aff_id=7", "192.0.2.1");
        assert_eq!(
            ask(&quiet, Some("anything")),
            Err(PostbackError::Unauthorized)
        );
        assert!(matches!(
            ask("forged", Some("x")),
            Err(PostbackError::UnknownTransaction(_))
        ));
    }
}
