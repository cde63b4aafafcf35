//! The `alerts` section of the config document: the webhook, which kinds it is sent, the window
//! that holds each kind and subject to one alert, and what an offer's blocked-share jump is. What
//! they mean is in [`crate::alerts`].

use super::error::{err, ConfigError};
use super::fields::{kind, Fields};
use super::json::Value;
use super::ranges::RANGES;
use crate::alerts::{Kind, Settings};

/// `alerts`: `webhook` (required), `kinds`, `window_seconds`, `blocked_share_jump`,
/// `blocked_share_min_clicks`.
pub(crate) fn compile_alerts(value: &Value, errors: &mut Vec<ConfigError>) -> Option<Settings> {
    let mut f = Fields::of(value, "alerts", errors)?;
    let webhook = f.required_string("webhook", errors).map(str::to_owned);
    if let Some(url) = &webhook {
        if !(url.starts_with("https://") || url.starts_with("http://")) || url.contains(' ') {
            errors.push(err(
                "alerts.webhook",
                format!("`{url}` is not an http(s) URL"),
            ));
        }
    }
    let mut settings = Settings::new(webhook.clone().unwrap_or_default());
    if let Some(list) = f.array("kinds", errors) {
        let mut kinds = Vec::new();
        for (i, v) in list.iter().enumerate() {
            match v.as_str().map(|s| (s, Kind::parse(s))) {
                Some((_, Some(k))) => kinds.push(k),
                Some((s, None)) => {
                    let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                    errors.push(err(
                        &format!("alerts.kinds[{i}]"),
                        format!("`{s}` is not a kind of alert (known: {})", known.join(", ")),
                    ));
                }
                None => errors.push(err(
                    &format!("alerts.kinds[{i}]"),
                    format!("must be a string, found {}", kind(v)),
                )),
            }
        }
        settings = settings.only(&kinds);
    }
    if let Some(s) = f.u64_in("window_seconds", RANGES.alert_window_seconds, errors) {
        settings.window_ms = s * 1000;
    }
    if let Some(j) = f.f64_in("blocked_share_jump", RANGES.share, errors) {
        settings.blocked_share_jump = j;
    }
    if let Some(n) = f.u32_in("blocked_share_min_clicks", RANGES.alert_min_clicks, errors) {
        settings.blocked_share_min_clicks = n;
    }
    f.finish(errors);
    webhook.map(|_| settings)
}

#[cfg(test)]
mod tests {
    use crate::alerts::{Kind, Settings, DEFAULT_WINDOW_MS};
    use crate::config::tests::{problems, DEMO};
    use crate::config::Config;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn with(alerts: &str) -> String {
        DEMO.replacen('{', &format!("{{\"alerts\": {alerts},"), 1)
    }

    #[test]
    fn a_webhook_alone_sends_every_kind_with_the_defaults() {
        let config = Config::compile(&with(r#"{"webhook": "https://hooks.example/T0/B0/x"}"#));
        let alerts = config.unwrap().alerts.unwrap();
        assert_eq!(
            alerts,
            Settings::new("https://hooks.example/T0/B0/x".into())
        );
        assert_eq!(alerts.window_ms, DEFAULT_WINDOW_MS);
        assert!(Kind::ALL.iter().all(|k| alerts.wants(*k)));
        assert_eq!(Config::compile(DEMO).unwrap().alerts, None);
    }

    #[test]
    fn kinds_window_and_the_blocked_share_jump_are_read() {
        let doc = with(
            r#"{"webhook": "https://hooks.example/x", "kinds": ["flood_tripped", "config_failed"],
                "window_seconds": 600, "blocked_share_jump": 0.5, "blocked_share_min_clicks": 40}"#,
        );
        let alerts = Config::compile(&doc).unwrap().alerts.unwrap();
        let wanted: Vec<Kind> = Kind::ALL.into_iter().filter(|k| alerts.wants(*k)).collect();
        assert_eq!(wanted, [Kind::FloodTripped, Kind::ConfigFailed]);
        assert_eq!(alerts.window_ms, 600_000);
        assert_eq!(alerts.blocked_share_jump, 0.5);
        assert_eq!(alerts.blocked_share_min_clicks, 40);
    }

    #[test]
    fn a_missing_or_bad_webhook_and_an_unknown_kind_are_refused_with_their_path() {
        assert_eq!(problems(&with("{}")), ["alerts.webhook: is required"]);
        assert_eq!(
            problems(&with(r#"{"webhook": "hooks.example/x"}"#)),
            ["alerts.webhook: `hooks.example/x` is not an http(s) URL"]
        );
        let bad = problems(&with(
            r#"{"webhook": "https://h.example/", "kinds": ["flood", 3], "window_seconds": 5}"#,
        ));
        assert_eq!(bad.len(), 3, "{bad:?}");
        assert!(bad[0].starts_with("alerts.kinds[0]: `flood` is not a kind of alert (known: "));
        assert_eq!(bad[1], "alerts.kinds[1]: must be a string, found a number");
        assert_eq!(
            bad[2],
            "alerts.window_seconds: must be a whole number from 60 to 86400, found 5"
        );
        assert!(
            problems(&with(r#"{"webhook": "https://h.example/", "url": "x"}"#))[0]
                .starts_with("alerts.url: is not a known field")
        );
    }
}
