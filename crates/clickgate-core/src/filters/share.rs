//! What the share filters judge: the part of an offer and affiliate's recent conversions (or
//! clicks) that are hits, once there are enough of them to say. One affiliate's late postback is
//! an accident; most of its postbacks late is a way of working.
//!
//! The counts themselves live with the network's other counts (see [`crate::network`]); a share
//! filter names what it counts ([`Measure`]) and its bound ([`ShareBound`]), and judges the
//! [`ShareTally`] it is handed.

use std::ops::RangeInclusive;

use crate::filters::Settings;
use crate::verdict::ReasonCode;

/// The range of `percent`: a share of none or of all would judge everyone or no one.
pub(crate) const PERCENT: RangeInclusive<u32> = 1..=99;
/// The range of `min`.
pub(crate) const MIN: RangeInclusive<u32> = 1..=1_000_000;
/// The range of `window_hours`: the counts keep 720 hours, as the duplicate-IP counts do.
pub(crate) const WINDOW_HOURS: RangeInclusive<u32> = 1..=720;
/// A rule counts at most this many shares (one per share filter); a fixed number keeps the click's
/// counts a plain value.
pub(crate) const MAX_SHARES: usize = 4;

/// What a share counts, which is also the name its counts are kept under: conversions more (or
/// less) than `seconds` after their click, or clicks from old devices, or from listed networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Measure {
    CtitOver(u64),
    CtitUnder(u64),
    OldDevices,
    DatacenterVpn,
}

impl Measure {
    /// Its name, hashed into the keys its counts are kept under (and read back in tests).
    pub(crate) fn tag(self) -> String {
        match self {
            Measure::CtitOver(s) => format!("over{s}"),
            Measure::CtitUnder(s) => format!("under{s}"),
            Measure::OldDevices => "old".to_owned(),
            Measure::DatacenterVpn => "vpn".to_owned(),
        }
    }

    pub fn parse(tag: &str) -> Option<Measure> {
        let seconds = |s: &str| {
            s.parse()
                .ok()
                .filter(|_| s.bytes().all(|b| b.is_ascii_digit()))
        };
        match tag {
            "old" => Some(Measure::OldDevices),
            "vpn" => Some(Measure::DatacenterVpn),
            _ => match (tag.strip_prefix("over"), tag.strip_prefix("under")) {
                (Some(s), _) => seconds(s).map(Measure::CtitOver),
                (_, Some(s)) => seconds(s).map(Measure::CtitUnder),
                _ => None,
            },
        }
    }

    /// The word for a hit in an answer (`"over": 48`).
    pub(crate) fn hit_word(self) -> &'static str {
        match self {
            Measure::CtitOver(_) => "over",
            Measure::CtitUnder(_) => "under",
            Measure::OldDevices => "old",
            Measure::DatacenterVpn => "listed",
        }
    }

    /// The code of a share filter beyond its bound: each measure is one filter's.
    pub fn code(self) -> ReasonCode {
        match self {
            Measure::CtitOver(_) => ReasonCode::ClickSpam,
            Measure::CtitUnder(_) => ReasonCode::LowSessionTime,
            Measure::OldDevices => ReasonCode::OldDeviceShare,
            Measure::DatacenterVpn => ReasonCode::ListedNetworkShare,
        }
    }

    /// Whether a conversion `ctit_ms` after its click is a hit; `None` for a measure of clicks.
    pub(crate) fn conversion_hit(self, ctit_ms: u64) -> Option<bool> {
        match self {
            Measure::CtitOver(s) => Some(ctit_ms > s.saturating_mul(1000)),
            Measure::CtitUnder(s) => Some(ctit_ms < s.saturating_mul(1000)),
            Measure::OldDevices | Measure::DatacenterVpn => None,
        }
    }
}

/// Events and the hits among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShareTally {
    pub total: u32,
    pub(crate) hits: u32,
}

impl ShareTally {
    pub fn add(&mut self, other: ShareTally) {
        self.total = self.total.saturating_add(other.total);
        self.hits = self.hits.saturating_add(other.hits);
    }

    /// The share in thousandths, rounded down (0 of none).
    pub(crate) fn permille(self) -> u32 {
        if self.total == 0 {
            return 0;
        }
        (u64::from(self.hits.min(self.total)) * 1000 / u64::from(self.total)) as u32
    }
}

/// A share filter's bound: it fires when hits are more than `percent` of at least `min` events
/// in the last `window_hours` (the current UTC hour and the ones before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareBound {
    pub(crate) percent: u32,
    pub min: u32,
    pub window_hours: u32,
}

impl ShareBound {
    /// `percent`, `min` and `window_hours` from `settings`, each defaulting to `defaults`'.
    pub fn read(settings: &mut dyn Settings, defaults: ShareBound) -> ShareBound {
        ShareBound {
            percent: settings
                .u32_in("percent", PERCENT)
                .unwrap_or(defaults.percent),
            min: settings.u32_in("min", MIN).unwrap_or(defaults.min),
            window_hours: settings
                .u32_in("window_hours", WINDOW_HOURS)
                .unwrap_or(defaults.window_hours),
        }
    }

    /// Whether `tally` is beyond the bound: at the bound exactly, or short of `min` events, it is
    /// not. In whole numbers: `hits / total > percent / 100`.
    pub(crate) fn exceeded(self, tally: ShareTally) -> bool {
        tally.total >= self.min
            && u64::from(tally.hits.min(tally.total)) * 100
                > u64::from(self.percent) * u64::from(tally.total)
    }
}

/// A share as a decision names it: the filter, what it counts, its tally and bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareSeen {
    pub filter: &'static str,
    pub(crate) measure: Measure,
    pub bound: ShareBound,
    pub tally: ShareTally,
}

impl ShareSeen {
    pub(crate) fn exceeded(&self) -> bool {
        self.bound.exceeded(self.tally)
    }

    /// `{"share": 0.62, "bound": 0.5, "over": 48, "of": 77}`: the share in an answer, a log line
    /// or a reason's value, its fractions written as decimals so they read back exactly.
    pub fn to_json(&self) -> String {
        format!(
            r#"{{"share":{},"bound":{},"{}":{},"of":{}}}"#,
            thousandths(self.tally.permille()),
            thousandths(self.bound.percent * 10),
            self.measure.hit_word(),
            self.tally.hits,
            self.tally.total
        )
    }
}

/// `620` as `0.62`, `1000` as `1`: thousandths as the shortest decimal, without floating point.
pub(crate) fn thousandths(n: u32) -> String {
    let (whole, frac) = (n / 1000, n % 1000);
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:03}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const HALF: ShareBound = ShareBound {
        percent: 50,
        min: 4,
        window_hours: 24,
    };

    fn tally(hits: u32, total: u32) -> ShareTally {
        ShareTally { total, hits }
    }

    #[test]
    fn fires_above_the_bound_and_not_at_or_below_it() {
        assert!(!HALF.exceeded(tally(4, 10)), "below");
        assert!(!HALF.exceeded(tally(5, 10)), "at");
        assert!(HALF.exceeded(tally(6, 10)), "above");
    }

    #[test]
    fn fires_only_from_its_minimum_count() {
        assert!(!HALF.exceeded(tally(3, 3)), "all of three, short of four");
        assert!(HALF.exceeded(tally(4, 4)), "all of four");
        assert!(!HALF.exceeded(tally(0, 0)), "nothing counted");
    }

    #[test]
    fn a_measure_reads_back_from_its_tag_and_nothing_else_does() {
        for m in [
            Measure::CtitOver(3600),
            Measure::CtitUnder(60),
            Measure::CtitOver(0),
            Measure::OldDevices,
            Measure::DatacenterVpn,
        ] {
            assert_eq!(Measure::parse(&m.tag()), Some(m));
            assert!(!m.tag().contains('/'));
        }
        for bad in ["", "over", "over-1", "over+1", "under 60", "OLD", "over1/2"] {
            assert_eq!(Measure::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_conversion_is_over_or_under_by_whole_milliseconds() {
        assert_eq!(
            Measure::CtitOver(3600).conversion_hit(3_600_000),
            Some(false)
        );
        assert_eq!(
            Measure::CtitOver(3600).conversion_hit(3_600_001),
            Some(true)
        );
        assert_eq!(Measure::CtitUnder(60).conversion_hit(60_000), Some(false));
        assert_eq!(Measure::CtitUnder(60).conversion_hit(59_999), Some(true));
        assert_eq!(Measure::OldDevices.conversion_hit(1), None);
    }

    #[test]
    fn a_share_is_named_with_its_value_bound_and_counts() {
        let seen = ShareSeen {
            filter: "click_spam",
            measure: Measure::CtitOver(3600),
            bound: ShareBound {
                percent: 50,
                min: 20,
                window_hours: 168,
            },
            tally: tally(48, 77),
        };
        assert_eq!(
            seen.to_json(),
            r#"{"share":0.623,"bound":0.5,"over":48,"of":77}"#
        );
        let v: serde_json::Value = serde_json::from_str(&seen.to_json()).unwrap();
        assert_eq!(v["share"], 0.623);
        assert_eq!(thousandths(1000), "1");
        assert_eq!(thousandths(0), "0");
        assert_eq!(thousandths(100), "0.1");
        assert_eq!(thousandths(5), "0.005");
    }

    // Natively only: proptest does not build for wasm32.
    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// The whole-number comparison is the fraction's: above the bound exactly when
            /// `hits / total > percent / 100`, from `min` events on.
            #[test]
            fn the_bound_is_the_fractions_comparison(
                hits in 0u32..2_000, extra in 0u32..2_000, percent in PERCENT, min in 1u32..50,
            ) {
                let t = tally(hits, hits + extra);
                let bound = ShareBound { percent, min, window_hours: 1 };
                let exact = t.total >= min
                    && (hits as u128) * 100 > (percent as u128) * (t.total as u128);
                prop_assert_eq!(bound.exceeded(t), exact);
            }

            /// The share shown never says more than the tally has: rounded down, within a thousandth,
            /// and at most 1.
            #[test]
            fn the_shown_share_is_the_tally_rounded_down(hits in 0u32..1_000_000, extra in 0u32..1_000_000) {
                let t = tally(hits, hits + extra);
                let shown = t.permille();
                prop_assert!(shown <= 1000);
                if t.total > 0 {
                    prop_assert!(u64::from(shown) * u64::from(t.total) <= u64::from(hits) * 1000);
                    prop_assert!(u64::from(shown + 1) * u64::from(t.total) > u64::from(hits) * 1000);
                }
                let text = thousandths(shown);
                prop_assert_eq!((text.parse::<f64>().unwrap() * 1000.0).round() as u32, shown);
            }

            /// Adding tallies in any grouping gives the same share: what the object adds batch by
            /// batch is what one count of every event would say.
            #[test]
            fn tallies_add_in_any_order(parts in proptest::collection::vec((0u32..1000, 0u32..1000), 0..20)) {
                let parts: Vec<ShareTally> = parts.into_iter().map(|(h, e)| tally(h, h + e)).collect();
                let mut forward = ShareTally::default();
                parts.iter().for_each(|p| forward.add(*p));
                let mut backward = ShareTally::default();
                parts.iter().rev().for_each(|p| backward.add(*p));
                prop_assert_eq!(forward, backward);
                prop_assert!(forward.hits <= forward.total);
            }
        }
    }
}
