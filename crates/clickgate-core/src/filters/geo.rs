//! `geo`: the client's country against the countries its offer accepts (the offer's `geo`).

use crate::filters::{Hit, Judge, Seen, Settings, Stage, Unavailable};
use crate::verdict::ReasonCode;

/// Countries an offer accepts: only the listed ones, or all but the listed ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Geo {
    Allow(Vec<String>),
    Deny(Vec<String>),
}

impl Geo {
    pub(crate) fn allows(&self, country: &str) -> bool {
        let listed = |list: &[String]| list.iter().any(|c| c.eq_ignore_ascii_case(country));
        match self {
            Geo::Allow(list) => listed(list),
            Geo::Deny(list) => !listed(list),
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Geo::Allow(list) => format!("allow {}", list.join(",")),
            Geo::Deny(list) => format!("deny {}", list.join(",")),
        }
    }
}

/// The filter has no settings of its own: the offer says which countries it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OfferGeo;

impl Judge for OfferGeo {
    const NAME: &'static str = "geo";
    const POINTS: u32 = 100;
    const STAGE: Stage = Stage::Click;
    const CODES: &'static [ReasonCode] = &[ReasonCode::Geo];

    fn compile(_: &mut impl Settings) -> Self {
        OfferGeo
    }

    fn judge_click(&self, seen: &Seen, points: u32) -> Result<Option<Hit>, Unavailable> {
        Ok(match (seen.geo, seen.client.country.as_deref()) {
            (Some(geo), Some(country)) if !geo.allows(country) => Some(Hit {
                code: ReasonCode::Geo,
                matched: geo.describe(),
                value: country.to_owned(),
                points,
            }),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::decide::harness::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn fires_on_a_country_its_offer_denies() {
        fires_alone(vec![
                ("geo", Click { country: Some("CN"), ..Click::default() }, "geo"),
        ]);
        // A click on an offer with no geo setting is not judged by country.
        let cfg = config(&rule("r", r#", "decline": "low_and_higher""#));
        assert!(!run(
            &cfg,
            Click {
                query: "offer_id=2&aff_id=n",
                country: Some("CN"),
                ..Click::default()
            }
        )
        .is_blocked());
    }
}
