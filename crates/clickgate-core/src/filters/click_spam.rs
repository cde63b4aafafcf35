//! `click_spam`: most of an offer and affiliate's recent conversions came long after their clicks.
//! An affiliate that fires clicks at everyone steals the credit for installs and sales that would
//! have happened anyway: its clicks win attribution hours before the person decides, so its
//! click-to-conversion times run long where a real referral's run short.

use std::ops::RangeInclusive;

use crate::filters::share::{Measure, ShareBound};
use crate::filters::{judge_share, Count, Hit, Judge, Seen, Settings, Stage, Unavailable};
use crate::verdict::ReasonCode;

/// The range of `seconds`: up to 30 days.
pub(crate) const SECONDS: RangeInclusive<u64> = 1..=2_592_000;

/// What an unset field is: a conversion is late after an hour, and more than half late over a
/// week's 20 conversions is spam (the `mobile_cpi` strategy's "50% > 1h CTIT").
pub(crate) const DEFAULT: ClickSpam = ClickSpam {
    seconds: 3600,
    bound: ShareBound {
        percent: 50,
        min: 20,
        window_hours: 168,
    },
};

/// Conversions more than `seconds` after their click, judged as a share against `bound`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClickSpam {
    pub(crate) seconds: u64,
    pub bound: ShareBound,
}

impl Judge for ClickSpam {
    const NAME: &'static str = "click_spam";
    const POINTS: u32 = 100;
    const STAGE: Stage = Stage::Conversion;
    const CODES: &'static [ReasonCode] = &[ReasonCode::ClickSpam];

    fn compile(settings: &mut impl Settings) -> Self {
        ClickSpam {
            seconds: settings.u64_in("seconds", SECONDS).unwrap_or(DEFAULT.seconds),
            bound: ShareBound::read(settings, DEFAULT.bound),
        }
    }

    fn counts(&self) -> Option<Count> {
        Some(Count::Share {
            measure: Measure::CtitOver(self.seconds),
            window_hours: self.bound.window_hours,
            clicks: false,
        })
    }

    /// A rule that also judges clicks gives the affiliate's clicks its points while the share of
    /// its conversions stays beyond the bound.
    fn judge_click(&self, seen: &Seen, points: u32) -> Result<Option<Hit>, Unavailable> {
        judge_share(Self::NAME, self.share(), seen.counters.as_ref(), points)
    }

    fn share(&self) -> Option<(Measure, ShareBound)> {
        Some((Measure::CtitOver(self.seconds), self.bound))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::share::{ShareTally, MAX_SHARES};
    use crate::filters::Counters;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn judge(filter: &ClickSpam, counters: Option<&Counters>, points: u32) -> Result<Option<Hit>, Unavailable> {
        judge_share(ClickSpam::NAME, filter.share(), counters, points)
    }

    fn counted(hits: u32, total: u32) -> Counters {
        let mut shares = [None; MAX_SHARES];
        shares[0] = Some((Measure::CtitOver(7200), ShareTally { total, hits }));
        Counters {
            shares,
            ..Counters::default()
        }
    }

    const SIXTY: ClickSpam = ClickSpam {
        seconds: 7200,
        bound: ShareBound {
            percent: 60,
            min: 10,
            window_hours: 24,
        },
    };

    #[test]
    fn counts_conversions_over_its_seconds() {
        assert_eq!(
            SIXTY.share().map(|(m, _)| m.conversion_hit(7_200_001)),
            Some(Some(true))
        );
        assert_eq!(
            SIXTY.counts(),
            Some(Count::Share {
                measure: Measure::CtitOver(7200),
                window_hours: 24,
                clicks: false
            })
        );
    }

    #[test]
    fn fires_above_its_share_and_not_at_or_below_it() {
        let at = |hits, total| judge(&SIXTY, Some(&counted(hits, total)), 100);
        assert_eq!(at(5, 10), Ok(None), "below");
        assert_eq!(at(6, 10), Ok(None), "at");
        let hit = at(7, 10).unwrap().unwrap();
        assert_eq!(hit.code, ReasonCode::ClickSpam);
        assert_eq!(hit.matched, "share above 0.6 of at least 10 in 24h");
        assert_eq!(hit.value, r#"{"share":0.7,"bound":0.6,"over":7,"of":10}"#);
        assert_eq!(at(9, 9), Ok(None), "short of its minimum");
    }

    #[test]
    fn without_its_tally_it_cannot_say() {
        assert_eq!(judge(&SIXTY, None, 100), Err(Unavailable));
        let other = Counters::default();
        assert_eq!(judge(&SIXTY, Some(&other), 100), Err(Unavailable));
    }
}
