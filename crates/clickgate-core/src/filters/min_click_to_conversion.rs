//! `min_click_to_conversion`: a conversion reported sooner after its click than a person could
//! have converted.

use std::ops::RangeInclusive;

use crate::filters::{Judge, Settings, Stage};
use crate::verdict::ReasonCode;

/// The range of `seconds`: up to a year.
pub(crate) const SECONDS: RangeInclusive<u64> = 0..=31_536_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinClickToConversion {
    pub(crate) seconds: u64,
}

impl Judge for MinClickToConversion {
    const NAME: &'static str = "min_click_to_conversion";
    const POINTS: u32 = 100;
    const STAGE: Stage = Stage::Conversion;
    const CODES: &'static [ReasonCode] = &[ReasonCode::MinClickToConversion];

    fn compile(settings: &mut impl Settings) -> Self {
        MinClickToConversion {
            seconds: settings.u64_in("seconds", SECONDS).unwrap_or(20),
        }
    }

    fn judge_conversion(&self, ctit_ms: u64) -> Option<(ReasonCode, String)> {
        let seconds = self.seconds;
        (ctit_ms < seconds * 1000).then(|| {
            (
                ReasonCode::MinClickToConversion,
                format!("{} s after the click, minimum {seconds} s", ctit_ms / 1000),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn judges_the_conversion_by_whole_seconds_after_its_click() {
        let filter = MinClickToConversion { seconds: 20 };
        assert_eq!(filter.judge_conversion(20_000), None);
        assert_eq!(
            filter.judge_conversion(19_999),
            Some((
                ReasonCode::MinClickToConversion,
                "19 s after the click, minimum 20 s".to_owned()
            ))
        );
    }
}
