//! `low_session_time`: most of an offer and affiliate's recent conversions came sooner after their
//! clicks than a person gets through an install or a form. One quick conversion is a fast person;
//! most of them quick is a script, or an install injected once the app was already on its way.

use std::ops::RangeInclusive;

use crate::filters::share::{Measure, ShareBound};
use crate::filters::{judge_share, Count, Hit, Judge, Seen, Settings, Stage, Unavailable};
use crate::verdict::ReasonCode;

/// The range of `seconds`: up to a day.
pub(crate) const SECONDS: RangeInclusive<u64> = 1..=86_400;

/// What an unset field is: under a minute is short, and more than half short over a week's 20
/// conversions is an anomaly (the strategies' "50% < 1min CTIT").
pub(crate) const DEFAULT: LowSessionTime = LowSessionTime {
    seconds: 60,
    bound: ShareBound {
        percent: 50,
        min: 20,
        window_hours: 168,
    },
};

/// Conversions less than `seconds` after their click, judged as a share against `bound`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LowSessionTime {
    pub(crate) seconds: u64,
    pub bound: ShareBound,
}

impl Judge for LowSessionTime {
    const NAME: &'static str = "low_session_time";
    const POINTS: u32 = 100;
    const STAGE: Stage = Stage::Conversion;
    const CODES: &'static [ReasonCode] = &[ReasonCode::LowSessionTime];

    fn compile(settings: &mut impl Settings) -> Self {
        LowSessionTime {
            seconds: settings.u64_in("seconds", SECONDS).unwrap_or(DEFAULT.seconds),
            bound: ShareBound::read(settings, DEFAULT.bound),
        }
    }

    fn counts(&self) -> Option<Count> {
        Some(Count::Share {
            measure: Measure::CtitUnder(self.seconds),
            window_hours: self.bound.window_hours,
            clicks: false,
        })
    }

    /// As `click_spam`: a rule that also judges clicks gives them its points while the share holds.
    fn judge_click(&self, seen: &Seen, points: u32) -> Result<Option<Hit>, Unavailable> {
        judge_share(Self::NAME, self.share(), seen.counters.as_ref(), points)
    }

    fn share(&self) -> Option<(Measure, ShareBound)> {
        Some((Measure::CtitUnder(self.seconds), self.bound))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::share::{ShareTally, MAX_SHARES};
    use crate::filters::Counters;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn judge(filter: &LowSessionTime, counters: Option<&Counters>, points: u32) -> Result<Option<Hit>, Unavailable> {
        judge_share(LowSessionTime::NAME, filter.share(), counters, points)
    }

    fn counted(hits: u32, total: u32) -> Counters {
        let mut shares = [None; MAX_SHARES];
        shares[MAX_SHARES - 1] = Some((Measure::CtitUnder(60), ShareTally { total, hits }));
        Counters {
            shares,
            ..Counters::default()
        }
    }

    #[test]
    fn counts_conversions_under_its_seconds() {
        let (measure, _) = DEFAULT.share().unwrap();
        assert_eq!(measure.conversion_hit(59_999), Some(true));
        assert_eq!(measure.conversion_hit(60_000), Some(false));
    }

    #[test]
    fn fires_above_its_share_and_not_at_or_below_it() {
        let at = |hits, total| judge(&DEFAULT, Some(&counted(hits, total)), 100);
        assert_eq!(at(9, 20), Ok(None), "below");
        assert_eq!(at(10, 20), Ok(None), "at");
        let hit = at(11, 20).unwrap().unwrap();
        assert_eq!(hit.code, ReasonCode::LowSessionTime);
        assert_eq!(
            hit.value,
            r#"{"share":0.55,"bound":0.5,"under":11,"of":20}"#
        );
        assert_eq!(at(19, 19), Ok(None), "short of its minimum");
        assert_eq!(at(20, 20).unwrap().unwrap().points, 100, "at its minimum");
    }
}
