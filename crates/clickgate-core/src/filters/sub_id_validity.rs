//! `sub_id_validity`: more than `max` distinct sub IDs on one offer and affiliate, as the
//! network's object counted them.

use crate::filters::{Count, Hit, Judge, Seen, Settings, Stage, Unavailable, COUNT};
use crate::verdict::ReasonCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubIdValidity {
    pub max: u32,
}

impl Judge for SubIdValidity {
    const NAME: &'static str = "sub_id_validity";
    const POINTS: u32 = 40;
    const STAGE: Stage = Stage::Click;
    const CODES: &'static [ReasonCode] = &[ReasonCode::SubIdValidity];

    fn compile(settings: &mut impl Settings) -> Self {
        SubIdValidity {
            max: settings.u32_in("max", COUNT).unwrap_or(700),
        }
    }

    fn counts(&self) -> Option<Count> {
        Some(Count::DistinctSubIds)
    }

    fn judge_click(&self, seen: &Seen, points: u32) -> Result<Option<Hit>, Unavailable> {
        let c = seen.counters.ok_or(Unavailable)?;
        let max = self.max;
        Ok((c.distinct_sub_ids > max).then(|| Hit {
            code: ReasonCode::SubIdValidity,
            matched: format!("more than {max} sub IDs"),
            value: format!("{}: {}", seen.sub_id.unwrap_or(""), c.distinct_sub_ids),
            points,
        }))
    }
}

#[cfg(test)]
mod tests {
    use crate::decide::harness::*;
    use crate::filters::Counters;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn fires_beyond_its_sub_ids() {
        fires_alone(vec![
                ("sub id flood", Click { counters: Some(Counters { ip_clicks: 1, distinct_sub_ids: 11, ..Counters::default() }), ..Click::default() }, "sub_id_validity"),
        ]);
    }
}
