//! `duplicate_device_id`: more than `max` clicks from one device id on one offer within the
//! window, across all the offer's affiliates (`scope` `offer`, the published tables' "same offer /
//! all affiliates") or on the offer and affiliate alone (`offer_affiliate`).
//!
//! The device id is the click's `device_id` field (the link profile's `params.device`); it is
//! counted as a hash, never as text. An affiliate's clicks are counted by its network's object;
//! the offer across affiliates by the device's ledger (see
//! [`crate::network::keys::ledger`]), which every affiliate's clicks from the device reach.

use crate::filters::duplicate_ip::{count_hit, read_count};
use crate::filters::{Count, Hit, Judge, Seen, Settings, Stage, Unavailable};
use crate::verdict::ReasonCode;

/// Whose clicks on the offer a device's count takes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceScope {
    /// Every affiliate's: kept by the device's ledger.
    Offer = 0,
    /// The click's affiliate's: kept by its network's object, as duplicate IPs are.
    OfferAffiliate = 1,
}

impl DeviceScope {
    pub fn name(self) -> &'static str {
        match self {
            DeviceScope::Offer => "offer",
            DeviceScope::OfferAffiliate => "offer_affiliate",
        }
    }
}

/// A device may click an offer once in a day, whichever affiliate brings it (the `mobile_cpi`
/// and `mobile_cpa` tables' "same offer / all affiliates").
pub(crate) const DEFAULT: DuplicateDeviceId = DuplicateDeviceId {
    max: 1,
    window_hours: 24,
    scope: DeviceScope::Offer,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuplicateDeviceId {
    pub max: u32,
    pub window_hours: u32,
    pub scope: DeviceScope,
}

impl Judge for DuplicateDeviceId {
    const NAME: &'static str = "duplicate_device_id";
    const POINTS: u32 = 60;
    const STAGE: Stage = Stage::Click;
    const CODES: &'static [ReasonCode] = &[ReasonCode::DuplicateDeviceId];

    fn compile(settings: &mut impl Settings) -> Self {
        // Read as a bool: the choice the `bot` filter reads too, so no other copy of it.
        let scopes = [("offer", false), ("offer_affiliate", true)];
        let scope = match settings.choice("scope", &scopes) {
            false => DeviceScope::Offer,
            true => DeviceScope::OfferAffiliate,
        };
        let (max, window_hours) = read_count(settings);
        DuplicateDeviceId {
            max,
            window_hours,
            scope,
        }
    }

    fn counts(&self) -> Option<Count> {
        Some(Count::DeviceClicks {
            window_hours: self.window_hours,
            scope: self.scope,
        })
    }

    /// A click without a device id has nothing to count: no hit, not unavailable.
    fn judge_click(&self, seen: &Seen, points: u32) -> Result<Option<Hit>, Unavailable> {
        if seen.click.device_id.is_none() {
            return Ok(None);
        }
        let DuplicateDeviceId {
            max,
            window_hours,
            scope,
        } = *self;
        let n = seen
            .counters
            .and_then(|c| c.device_clicks[scope as usize])
            .ok_or(Unavailable)?;
        // The scope and the count, `offer: 2`, as a duplicate IP's is its address and count: the
        // device id is in the decision's `device_id`.
        let code = ReasonCode::DuplicateDeviceId;
        Ok((n > max).then(|| count_hit(code, (max, window_hours), scope.name(), n, points)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::harness::*;
    use crate::filters::Counters;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn only(filter: &str) -> crate::config::Config {
        config(&format!(
            r#"{{"id": "r", "created_at": "2026-11-01T00:00:00Z", "scope": {{"offers": ["1", "2"]}},
                "decline": "low_and_higher", "strategy": {{"filters": [{filter}]}}}}"#
        ))
    }

    /// A click with a device id, read as seen `offer` and `pair` times (`None`: not read).
    fn click(offer: Option<u32>, pair: Option<u32>) -> Click<'static> {
        Click {
            query: "offer_id=1&aff_id=net-7&device_id=6f1c2b9e-aaaa",
            counters: Some(Counters {
                device_clicks: [offer, pair],
                ..Counters::default()
            }),
            ..Click::default()
        }
    }

    #[test]
    fn fires_above_its_max_not_at_it_in_each_scope() {
        let cases = [
            // (scope, max, seen on the offer, seen on the offer and affiliate, fires)
            ("offer", 1, 1, 1, false),
            ("offer", 1, 2, 1, true),
            ("offer", 3, 3, 3, false),
            ("offer", 3, 4, 1, true),
            ("offer_affiliate", 1, 9, 1, false),
            ("offer_affiliate", 1, 9, 2, true),
            ("offer_affiliate", 2, 0, 2, false),
            ("offer_affiliate", 2, 0, 3, true),
        ];
        for (scope, max, offer, pair, fires) in cases {
            let cfg = only(&format!(
                r#"{{"type": "duplicate_device_id", "max": {max}, "scope": "{scope}"}}"#
            ));
            let out = run(&cfg, click(Some(offer), Some(pair)));
            let case = format!("{scope} max {max}, seen {offer}/{pair}");
            assert_eq!(out.is_blocked(), fires, "{case}");
            if fires {
                let r = &out.reasons()[0];
                assert_eq!(r.code, ReasonCode::DuplicateDeviceId, "{case}");
                let seen = if scope == "offer" { offer } else { pair };
                assert_eq!(r.value, format!("{scope}: {seen}"));
                assert_eq!(r.points, 60);
            }
        }
    }

    #[test]
    fn settings_default_to_once_a_day_across_the_offers_affiliates() {
        let cfg = only(r#"{"type": "duplicate_device_id"}"#);
        let kind = &cfg.rules[0].filters[0].kind;
        assert_eq!(
            *kind,
            crate::filters::FilterKind::DuplicateDeviceId(DEFAULT)
        );
        let out = run(&cfg, click(Some(2), None));
        assert_eq!(out.reasons()[0].matched, "more than 1 in 24h");
        let wide = only(
            r#"{"type": "duplicate_device_id", "scope": "offer_affiliate", "window_hours": 720}"#,
        );
        let out = run(&wide, click(None, Some(2)));
        assert_eq!(out.reasons()[0].matched, "more than 1 in 720h");
        assert_eq!(out.reasons()[0].value, "offer_affiliate: 2");
    }

    #[test]
    fn settings_out_of_range_or_unknown_are_refused() {
        for bad in [
            r#""max": 0"#,
            r#""max": 1000001"#,
            r#""window_hours": 0"#,
            r#""window_hours": 721"#,
            r#""scope": "affiliate""#,
        ] {
            let doc = format!(
                r#"{{"version": 1, "offers": [{{"id": "1", "landing_url": "https://x.example/"}}],
                    "rules": [{{"id": "r", "created_at": "2026-11-01", "scope": {{"offers": ["1"]}},
                               "strategy": {{"filters": [{{"type": "duplicate_device_id", {bad}}}]}}}}]}}"#
            );
            assert!(crate::config::Config::compile(&doc).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_click_without_a_device_id_is_not_judged_and_a_missing_count_is_unavailable() {
        let cfg = only(r#"{"type": "duplicate_device_id"}"#);
        let none = Click {
            counters: None,
            ..Click::default()
        };
        let out = run(&cfg, none);
        assert!(!out.is_blocked());
        assert!(out.assessment.unwrap().unavailable.is_empty());
        // Its scope's count was not read (the ledger silent), the other scope's was.
        let out = run(&cfg, click(None, Some(5)));
        assert!(!out.is_blocked());
        assert_eq!(out.assessment.unwrap().unavailable, ["duplicate_device_id"]);
        let out = run(&cfg, Click { counters: None, ..click(None, None) });
        assert_eq!(out.assessment.unwrap().unavailable, ["duplicate_device_id"]);
    }
}
