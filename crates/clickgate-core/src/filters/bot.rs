//! `bot`: the User-Agent's sign of automation, worth the filter's points scaled by how sure the
//! sign is (see [`crate::ua`]).

use crate::click::Platform;
use crate::filters::{Hit, Judge, Seen, Settings, Stage, Unavailable};
use crate::ua::{is_link_preview, signal_of, Grade, Kind, Signal, UserAgent};
use crate::verdict::ReasonCode;

/// What the bot filter does with the two kinds of automation an operator may want through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BotSettings {
    /// Link-preview fetchers are redirected whatever the rule finds, unless this is set
    /// (`"previews": "decline"`): then the bot filter fires on them at `certain`.
    pub(crate) decline_previews: bool,
    /// AI browsing agents fire as `ai_agent` (the default) or are let through
    /// (`"ai_agents": "redirect"`).
    pub(crate) allow_ai_agents: bool,
}

impl Judge for BotSettings {
    const NAME: &'static str = "bot";
    const POINTS: u32 = 100;
    const STAGE: Stage = Stage::Click;
    const CODES: &'static [ReasonCode] = &[ReasonCode::Bot, ReasonCode::AiAgent];

    fn compile(settings: &mut impl Settings) -> Self {
        BotSettings {
            decline_previews: settings.choice("previews", &[("redirect", false), ("decline", true)]),
            allow_ai_agents: settings.choice("ai_agents", &[("decline", false), ("redirect", true)]),
        }
    }

    fn declines_previews(&self) -> bool {
        self.decline_previews
    }

    fn judge_click(&self, seen: &Seen, points: u32) -> Result<Option<Hit>, Unavailable> {
        let ua = seen.client.user_agent.as_ref();
        let platform = seen.client.platform.as_deref();
        if let Some(signal) = self.signal(ua, platform) {
            return Ok(Some(Hit {
                code: match signal.kind {
                    Kind::Bot => ReasonCode::Bot,
                    Kind::AiAgent => ReasonCode::AiAgent,
                },
                matched: signal.describe(),
                value: ua.map_or("", |u| u.as_str()).to_owned(),
                points: points * signal.grade.percent() / 100,
            }));
        }
        // The User-Agent says nothing: the platform's score may.
        Ok(platform.and_then(|p| {
            let score = p.bot_score()?;
            let grade = score_grade(score)?;
            Some(Hit {
                code: ReasonCode::Bot,
                matched: format!("{}: bot management score {score}", grade.name()),
                value: format!("score {score}"),
                points: points * grade.percent() / 100,
            })
        }))
    }
}

/// The map from the platform's bot score (1 automated to 99 human) to a sign: 1 is `certain`,
/// 2 to 29 (Cloudflare's "likely automated") `likely`, higher no sign. docs/config.md shows it.
pub(crate) fn score_grade(score: u8) -> Option<Grade> {
    match score {
        1 => Some(Grade::Certain),
        2..=29 => Some(Grade::Likely),
        _ => None,
    }
}

impl BotSettings {
    /// The sign the filter fires on, after its settings: a preview it declines by name (or a
    /// crawler the platform verified) is `certain`, an AI agent it lets through is no sign.
    fn signal(self, ua: Option<&UserAgent>, platform: Option<&Platform>) -> Option<Signal> {
        if self.decline_previews && is_link_preview(ua) {
            let word = ua.map_or("", |u| u.split(['/', ' ']).next().unwrap_or(""));
            return Some(Signal {
                grade: Grade::Certain,
                kind: Kind::Bot,
                token: format!("link preview {word}"),
            });
        }
        if self.decline_previews && platform.is_some_and(|p| p.verified_bot) {
            return Some(Signal {
                grade: Grade::Certain,
                kind: Kind::Bot,
                token: "verified bot".into(),
            });
        }
        signal_of(ua).filter(|s| !(self.allow_ai_agents && s.kind == Kind::AiAgent))
    }
}

#[cfg(test)]
mod tests {
    use crate::decide::harness::*;
    use crate::config::Config;
    use crate::token::{ClickToken, TokenKey, TokenVerdict};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn fires_on_a_bot_or_a_missing_user_agent() {
        fires_alone(vec![
                ("bot", Click { ua: "curl/8.4.0", ..Click::default() }, "bot"),
                ("empty ua", Click { ua: "", ..Click::default() }, "bot"),
        ]);
    }

    #[test]
    fn bot_signs_score_by_grade_and_decline_only_where_the_rule_says() {
        let bot_only = |decline: &str| {
            config(&format!(
                r#"{{"id": "r", "created_at": "2026-11-01", "scope": {{"offers": ["1"]}}, "decline": "{decline}",
                    "strategy": {{"filters": [{{"type": "bot"}}]}}}}"#
            ))
        };
        // (User-Agent, points, blocked under high, medium_and_higher, low_and_higher)
        let cases = [
            ("curl/8.4.0", 100, [true, true, true]),
            (
                "Mozilla/5.0 (compatible; Zeppelin)",
                60,
                [false, true, true],
            ),
            (
                "SomeApp/2.0 (Linux; Android 13; SM-A536B)",
                30,
                [false, false, true],
            ),
            ("", 30, [false, false, true]),
            (BROWSER, 0, [false, false, false]),
        ];
        for (ua, points, blocked) in cases {
            for (decline, want) in ["high", "medium_and_higher", "low_and_higher"]
                .iter()
                .zip(blocked)
            {
                let out = run(
                    &bot_only(decline),
                    Click {
                        ua,
                        ..Click::default()
                    },
                );
                assert_eq!(out.is_blocked(), want, "{ua:?} under {decline}");
                let scored: u32 = out.assessment.as_ref().map_or(0, |a| a.score);
                assert_eq!(scored, points, "{ua:?}");
            }
        }
        let out = run(
            &bot_only("high"),
            Click {
                ua: "curl/8.4.0",
                ..Click::default()
            },
        );
        assert_eq!(out.reasons()[0].matched, "certain: curl");
        // A weak sign adds to other filters: with a datacenter ASN (60) it reaches high.
        let rule = r#"{"id": "r", "created_at": "2026-11-01", "scope": {"offers": ["1"]},
                       "strategy": {"filters": [{"type": "bot"}, {"type": "datacenter_vpn"}]}}"#;
        let weak_from_dc = Click {
            ua: "SomeApp/2.0 (Linux; Android 13)",
            asn: Some(16509),
            ..Click::default()
        };
        assert!(run(&config(rule), weak_from_dc).is_blocked());
    }

    #[test]
    fn link_previews_get_the_redirect_unless_the_bot_filter_declines_them() {
        const SLACK: &str = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)";
        let with = |settings: &str| {
            config(&format!(
                r#"{{"id": "r", "created_at": "2026-11-01", "scope": {{"offers": ["1"]}}, "decline": "low_and_higher",
                    "strategy": {{"filters": [{{"type": "bot"{settings}}}, {{"type": "datacenter_vpn"}}]}}}}"#
            ))
        };
        // From a datacenter, with a bot sign, under the strictest decline: still redirected.
        let preview = || Click {
            ua: SLACK,
            asn: Some(16509),
            ..Click::default()
        };
        let out = run(&with(""), preview());
        assert!(!out.is_blocked() && out.preview);
        assert!(!out.assessment.as_ref().unwrap().declined);
        let line: serde_json::Value = serde_json::from_str(&out.log_line()).unwrap();
        assert_eq!(line["preview"], true);
        assert_eq!(line["verdict"], "redirect");
        // Its transaction id says so, for a conversion that claims to follow it.
        let key = TokenKey::new(b"0123456789abcdef0123456789abcdef-test-only").unwrap();
        let token = ClickToken::open(&out.transaction_id, &key).unwrap();
        assert_eq!(token.verdict, TokenVerdict::Preview);
        // Named in the filter, previews are declined.
        let out = run(&with(r#", "previews": "decline""#), preview());
        assert!(out.is_blocked());
        // A preview without a bot word is still certain when declined by name.
        let out = run(
            &with(r#", "previews": "decline""#),
            Click {
                ua: "WhatsApp/2.23.20.0 A",
                asn: None,
                ..Click::default()
            },
        );
        assert_eq!(out.reasons()[0].matched, "certain: link preview WhatsApp");
    }

    #[test]
    fn ai_agents_are_their_own_reason_and_may_be_let_through() {
        const DEVIN: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Devin/1.0";
        let with = |settings: &str| {
            config(&format!(
                r#"{{"id": "r", "created_at": "2026-11-01", "scope": {{"offers": ["1"]}},
                    "strategy": {{"filters": [{{"type": "bot"{settings}}}]}}}}"#
            ))
        };
        let out = run(
            &with(""),
            Click {
                ua: DEVIN,
                ..Click::default()
            },
        );
        assert!(out.is_blocked());
        assert_eq!(codes(&out), ["ai_agent"]);
        assert_eq!(out.reasons()[0].matched, "certain: Devin");
        let out = run(
            &with(r#", "ai_agents": "redirect""#),
            Click {
                ua: DEVIN,
                ..Click::default()
            },
        );
        assert!(!out.is_blocked() && codes(&out).is_empty());
        // Crawlers are still declined under that setting.
        let out = run(
            &with(r#", "ai_agents": "redirect""#),
            Click {
                ua: "curl/8",
                ..Click::default()
            },
        );
        assert_eq!(codes(&out), ["bot"]);
    }

    #[test]
    fn bot_filter_settings_are_checked() {
        let doc = |settings: &str| {
            format!(
                r#"{{"version": 1, "offers": [{{"id": "1", "landing_url": "https://x.example/"}}],
                    "rules": [{{"id": "r", "created_at": "2026-11-01", "scope": {{"offers": ["1"]}},
                               "strategy": {{"filters": [{{"type": "bot", {settings}}}]}}}}]}}"#
            )
        };
        let good = doc(r#""previews": "decline", "ai_agents": "redirect""#);
        assert!(Config::compile(&good).is_ok());
        for bad in [
            r#""previews": "maybe""#,
            r#""ai_agents": true"#,
            r#""nonsense": 1"#,
        ] {
            assert!(Config::compile(&doc(bad)).is_err(), "{bad}");
        }
    }


    #[test]
    fn the_platforms_bot_signals_feed_the_filter_by_the_documented_map() {
        use crate::click::Platform;
        let cfg = config(
            r#"{"id": "r", "created_at": "2026-11-01", "scope": {"offers": ["1"]}, "decline": "medium_and_higher",
                "strategy": {"filters": [{"type": "bot"}]}}"#,
        );
        let platform = |score, verified_bot, static_resource| Platform {
            score: Some(score),
            verified_bot,
            static_resource,
            as_organization: Some("Example Networks".into()),
        };
        let judged = |ua, p: &Platform| {
            let out = run(&cfg, Click { ua, platform: Some(p), ..Click::default() });
            let line: serde_json::Value = serde_json::from_str(&out.log_line()).unwrap();
            let matched: Vec<String> =
                out.reasons().iter().map(|r| format!("{} {}", r.matched, r.points)).collect();
            (out.is_blocked(), line["preview"] == true, matched, line["platform"].clone())
        };
        // A low score adds points where the User-Agent says nothing: 1 is certain, 2 to 29 likely.
        let (blocked, preview, matched, logged) = judged(BROWSER, &platform(1, false, false));
        assert!(blocked && !preview);
        assert_eq!(matched, ["certain: bot management score 1 100"]);
        assert_eq!(
            logged,
            serde_json::json!({"bot_score": 1, "verified_bot": false, "static_resource": false,
                               "as_organization": "Example Networks"})
        );
        let (blocked, _, matched, _) = judged(BROWSER, &platform(12, false, false));
        assert!(blocked);
        assert_eq!(matched, ["likely: bot management score 12 60"]);
        // A human's score, and a static resource's (which the platform does not score), add none.
        for p in [platform(30, false, false), platform(1, false, true)] {
            let (blocked, _, matched, _) = judged(BROWSER, &p);
            assert!(!blocked && matched.is_empty(), "{p:?}");
        }
        // The User-Agent's own sign comes first.
        let (_, _, matched, _) = judged("curl/8.4.0", &platform(5, false, false));
        assert_eq!(matched, ["certain: curl 100"]);
        // A verified crawler is a link preview: redirected and not counted, what fired logged.
        let (blocked, preview, _, logged) =
            judged("Mozilla/5.0 (compatible; Googlebot/2.1)", &platform(1, true, false));
        assert!(!blocked && preview);
        assert_eq!(logged["verified_bot"], true);
        // Without Bot Management nothing is added, and the line has no `platform`.
        let out = run(&cfg, Click::default());
        assert!(!out.log_line().contains("platform"));
        assert!(!out.is_blocked());
    }

    #[test]
    fn a_verified_bot_is_declined_where_the_rule_declines_previews() {
        use crate::click::Platform;
        let cfg = config(
            r#"{"id": "r", "created_at": "2026-11-01", "scope": {"offers": ["1"]}, "decline": "high",
                "strategy": {"filters": [{"type": "bot", "previews": "decline"}]}}"#,
        );
        let verified = Platform { verified_bot: true, ..Platform::default() };
        let out = run(&cfg, Click { platform: Some(&verified), ..Click::default() });
        assert!(out.is_blocked());
        assert_eq!(out.reasons()[0].matched, "certain: verified bot");
    }
}
