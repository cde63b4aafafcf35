//! `third_party_rejection`: another system (an MMP rejecting the install, a tracker rejecting the
//! conversion) reported the click's transaction id as rejected, with its reason, through
//! `POST /rejection` or `clickgate reject`. The rejection is kept with the click's conversion
//! records in its network's object; a conversion judged by a rule carrying this filter asks for
//! it along with its duplicate check, so every later conversion of the click is invalid.
//!
//! Nothing to set: the other system decides, this filter carries its word.

use crate::filters::{Judge, Settings, Stage};
use crate::verdict::ReasonCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ThirdPartyRejection;

impl ThirdPartyRejection {
    /// The judgement of a conversion whose click was reported rejected for `reason`.
    pub(crate) fn judge_rejected(reason: &str) -> (ReasonCode, String) {
        (
            ReasonCode::ThirdPartyRejection,
            format!("the click was rejected by another system: {reason}"),
        )
    }
}

impl Judge for ThirdPartyRejection {
    const NAME: &'static str = "third_party_rejection";
    const POINTS: u32 = 100;
    const STAGE: Stage = Stage::Conversion;
    const CODES: &'static [ReasonCode] = &[ReasonCode::ThirdPartyRejection];

    fn compile(_settings: &mut impl Settings) -> Self {
        ThirdPartyRejection
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn names_the_reason_the_other_system_gave() {
        assert_eq!(
            ThirdPartyRejection::judge_rejected("install rejected: click injection"),
            (
                ReasonCode::ThirdPartyRejection,
                "the click was rejected by another system: install rejected: click injection"
                    .to_owned()
            )
        );
        // Its verdict comes from the object, never from the time to convert.
        assert_eq!(ThirdPartyRejection.judge_conversion(0), None);
    }
}
