//! `max_click_to_conversion`: a conversion reported longer after its click than the offer credits.

use std::ops::RangeInclusive;

use crate::filters::{Judge, Settings, Stage};
use crate::verdict::ReasonCode;

/// The range of `seconds`: up to a year.
pub(crate) const SECONDS: RangeInclusive<u64> = 1..=31_536_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxClickToConversion {
    pub(crate) seconds: u64,
}

impl Judge for MaxClickToConversion {
    const NAME: &'static str = "max_click_to_conversion";
    const POINTS: u32 = 100;
    const STAGE: Stage = Stage::Conversion;
    const CODES: &'static [ReasonCode] = &[ReasonCode::MaxClickToConversion];

    fn compile(settings: &mut impl Settings) -> Self {
        MaxClickToConversion {
            seconds: settings.u64_in("seconds", SECONDS).unwrap_or(86_400),
        }
    }

    fn judge_conversion(&self, ctit_ms: u64) -> Option<(ReasonCode, String)> {
        let seconds = self.seconds;
        (ctit_ms > seconds * 1000).then(|| {
            (
                ReasonCode::MaxClickToConversion,
                format!("{} s after the click, maximum {seconds} s", ctit_ms / 1000),
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
        let filter = MaxClickToConversion { seconds: 20 };
        assert_eq!(filter.judge_conversion(20_000), None);
        assert_eq!(
            filter.judge_conversion(20_001),
            Some((
                ReasonCode::MaxClickToConversion,
                "20 s after the click, maximum 20 s".to_owned()
            ))
        );
    }
}
