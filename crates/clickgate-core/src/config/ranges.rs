//! The range every number of the document must fall in.

use std::ops::RangeInclusive;

use crate::filters;

/// The range of every number in the document, in one place: a value outside its range is an error
/// with its path, never wrapped or clamped. README's config tables list the same.
pub struct Ranges {
    /// `rules[].priority`.
    pub priority: RangeInclusive<i64>,
    /// A filter's `points`.
    pub points: RangeInclusive<u32>,
    /// `old_os_browser`'s `min.*`.
    pub major_version: RangeInclusive<u32>,
    /// `duplicate_ip.max`, `duplicate_device_id.max`, `sub_id_validity.max`.
    pub count: RangeInclusive<u32>,
    /// `duplicate_ip.window_hours`, `duplicate_device_id.window_hours`: the counters keep 720
    /// hours.
    pub window_hours: RangeInclusive<u32>,
    /// `min_click_to_conversion.seconds`, `max_click_to_conversion.seconds`: up to a year.
    pub min_click_to_conversion: RangeInclusive<u64>,
    pub max_click_to_conversion: RangeInclusive<u64>,
    /// `networks[].flood.per_minute`, `per_hour`, `per_day`, `floor`.
    pub flood_clicks: RangeInclusive<u32>,
    pub baseline_days: RangeInclusive<u32>,
    pub tolerance: RangeInclusive<f64>,
    /// `networks[].flood.flagged_share`, `networks[].signing.breaker.invalid_share`.
    pub share: RangeInclusive<f64>,
    /// `networks[].signing.max_age_seconds`: 30 days.
    pub max_age_seconds: RangeInclusive<u64>,
    /// `networks[].signing.keys[].replay_objects`: the objects a key's click ids are spread over.
    pub replay_objects: RangeInclusive<u64>,
    /// `networks[].signing.breaker.window_seconds`: a day.
    pub breaker_window_seconds: RangeInclusive<u64>,
    pub breaker_min_clicks: RangeInclusive<u32>,
    /// `advertisers[].max_approved_per_click`.
    pub approved_per_click: RangeInclusive<u32>,
    /// `alerts.window_seconds`: a minute to a day.
    pub alert_window_seconds: RangeInclusive<u64>,
    /// `alerts.blocked_share_min_clicks`.
    pub alert_min_clicks: RangeInclusive<u32>,
}

pub const RANGES: Ranges = Ranges {
    priority: -1_000_000..=1_000_000,
    points: 0..=1000,
    major_version: filters::old_os_browser::MAJOR_VERSION,
    count: filters::COUNT,
    window_hours: filters::duplicate_ip::WINDOW_HOURS,
    min_click_to_conversion: filters::min_click_to_conversion::SECONDS,
    max_click_to_conversion: filters::max_click_to_conversion::SECONDS,
    flood_clicks: 1..=1_000_000_000,
    baseline_days: 1..=365,
    tolerance: 1.0..=1000.0,
    share: 0.01..=1.0,
    max_age_seconds: 1..=2_592_000,
    replay_objects: 1..=16,
    breaker_window_seconds: 1..=86_400,
    breaker_min_clicks: 1..=1_000_000,
    approved_per_click: 1..=100,
    alert_window_seconds: 60..=86_400,
    alert_min_clicks: 1..=1_000_000,
};

#[cfg(test)]
mod tests {
    use crate::config::tests::problems;
    use crate::config::Config;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn numbers_outside_their_range_are_refused_with_their_path_not_wrapped() {
        let filter = |f: &str| {
            format!(
                r#"{{"version": 1, "offers": [{{"id": "1", "landing_url": "https://x/"}}],
                    "rules": [{{"id": "r", "created_at": "2026-11-01", "scope": {{"offers": ["1"]}},
                                "strategy": {{"filters": [{f}]}}}}]}}"#
            )
        };
        let network = |n: &str| {
            format!(
                r#"{{"version": 1, "offers": [{{"id": "1", "landing_url": "https://x/"}}],
                    "networks": [{{"id": "n", {n}}}]}}"#
            )
        };
        let keys = r#""keys": [{"id": "k", "secret": "a-secret-of-16-bytes"}]"#;
        let cases = [
            // 2^32 wrapped to 0, and the filter fired on every click.
            (
                filter(r#"{"type": "duplicate_ip", "max": 4294967296}"#),
                "rules[0].strategy.filters[0].max: must be a whole number from 1 to 1000000, found 4294967296",
            ),
            // Seconds times 1000 overflowed to 0.38 s.
            (
                filter(r#"{"type": "max_click_to_conversion", "seconds": 18446744073709552}"#),
                "rules[0].strategy.filters[0].seconds: must be a whole number from 1 to 31536000, found 18446744073709552",
            ),
            (
                filter(r#"{"type": "min_click_to_conversion", "seconds": -1}"#),
                "rules[0].strategy.filters[0].seconds: must be a whole number from 0 to 31536000, found -1",
            ),
            // Clamped to 720 without a word.
            (
                filter(r#"{"type": "duplicate_ip", "window_hours": 1000}"#),
                "rules[0].strategy.filters[0].window_hours: must be a whole number from 1 to 720, found 1000",
            ),
            (
                filter(r#"{"type": "sub_id_validity", "max": 0}"#),
                "rules[0].strategy.filters[0].max: must be a whole number from 1 to 1000000, found 0",
            ),
            (
                filter(r#"{"type": "bot", "points": 1001}"#),
                "rules[0].strategy.filters[0].points: must be a whole number from 0 to 1000, found 1001",
            ),
            (
                filter(r#"{"type": "old_os_browser", "min": {"ios": 1000}}"#),
                "rules[0].strategy.filters[0].min.ios: must be a whole number from 0 to 999, found 1000",
            ),
            (
                filter(r#"{"type": "bot", "points": "10"}"#),
                "rules[0].strategy.filters[0].points: must be a whole number from 0 to 1000, found a string",
            ),
            (
                network(r#""flood": {"per_minute": 4294967296}"#),
                "networks[0].flood.per_minute: must be a whole number from 1 to 1000000000, found 4294967296",
            ),
            (
                network(r#""flood": {"baseline_days": 366}"#),
                "networks[0].flood.baseline_days: must be a whole number from 1 to 365, found 366",
            ),
            (
                network(r#""flood": {"tolerance": 1e309}"#),
                "is not valid JSON",
            ),
            (
                network(r#""flood": {"tolerance": 0.5}"#),
                "networks[0].flood.tolerance: must be a number from 1 to 1000, found 0.5",
            ),
            (
                network(&format!(r#""signing": {{{keys}, "max_age_seconds": 2592001}}"#)),
                "networks[0].signing.max_age_seconds: must be a whole number from 1 to 2592000, found 2592001",
            ),
            (
                network(r#""signing": {"keys": [{"id": "k", "secret": "a-secret-of-16-bytes", "replay_objects": 17}]}"#),
                "networks[0].signing.keys[0].replay_objects: must be a whole number from 1 to 16, found 17",
            ),
            (
                network(r#""signing": {"keys": [{"id": "k", "secret": "a-secret-of-16-bytes", "replay_objects": 0}]}"#),
                "networks[0].signing.keys[0].replay_objects: must be a whole number from 1 to 16, found 0",
            ),
            (
                network(&format!(r#""signing": {{{keys}, "breaker": {{"window_seconds": 0}}}}"#)),
                "networks[0].signing.breaker.window_seconds: must be a whole number from 1 to 86400, found 0",
            ),
            (
                network(&format!(r#""signing": {{{keys}, "breaker": {{"min_clicks": 1000001}}}}"#)),
                "networks[0].signing.breaker.min_clicks: must be a whole number from 1 to 1000000, found 1000001",
            ),
            (
                network(&format!(r#""signing": {{{keys}, "breaker": {{"invalid_share": 1.5}}}}"#)),
                "networks[0].signing.breaker.invalid_share: must be a number from 0.01 to 1, found 1.5",
            ),
        ];
        for (doc, want) in &cases {
            let got = problems(doc);
            assert!(
                got.len() == 1 && got[0].starts_with(want),
                "want {want:?}, got {got:#?}"
            );
        }
        // The ends of each range are accepted.
        for doc in [
            filter(r#"{"type": "duplicate_ip", "max": 1000000, "window_hours": 720}"#),
            filter(r#"{"type": "duplicate_ip", "max": 1, "window_hours": 1}"#),
            filter(r#"{"type": "max_click_to_conversion", "seconds": 31536000}"#),
            filter(r#"{"type": "min_click_to_conversion", "seconds": 0}"#),
            network(
                r#""flood": {"per_day": 1000000000, "tolerance": 1000, "flagged_share": 0.01}"#,
            ),
            network(&format!(
                r#""signing": {{{keys}, "breaker": {{"invalid_share": 1, "window_seconds": 86400}}}}"#
            )),
        ] {
            assert!(
                Config::compile(&doc).is_ok(),
                "{doc}: {:?}",
                Config::compile(&doc).err()
            );
        }
        let priority = |p: &str| {
            filter(r#"{"type": "bot"}"#)
                .replace(r#""id": "r","#, &format!(r#""id": "r", "priority": {p},"#))
        };
        assert!(Config::compile(&priority("-1000000")).is_ok());
        assert_eq!(
            problems(&priority("1000001")),
            ["rules[0].priority: must be a whole number from -1000000 to 1000000, found 1000001"]
        );
    }
}
