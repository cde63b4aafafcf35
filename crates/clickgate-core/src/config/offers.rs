//! The offers of the document: where each sends a click, and whether it is served.

use std::collections::hash_map::Entry;
use std::sync::OnceLock;

use rustc_hash::FxHashMap;

use super::error::{err, ConfigError};
use super::fields::{kind, At, Fields};
use super::json::Value;
use super::postbacks::PostbackPolicy;
use crate::click::Id;
use crate::filters::geo::Geo;
use crate::template::Template;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferStatus {
    Active,
    Paused,
}

#[derive(Debug, Clone)]
pub struct Offer {
    pub id: Id,
    pub name: Option<String>,
    pub advertiser_id: Option<Id>,
    pub status: OfferStatus,
    pub(crate) landing: Template,
    pub(crate) geo: Option<Geo>,
    /// Whether the link's other parameters are passed on to the landing URL; `None` follows the
    /// link profile.
    pub(crate) pass_through: Option<bool>,
    /// The rules that can judge its clicks and conversions, worked out on first use.
    pub(crate) candidates: Candidates,
}

/// An offer's candidates at each stage: the indexes of the rules that can judge its clicks, or its
/// conversions, best first. The offer and advertiser parts of a scope are fixed per offer, so they
/// are resolved once per offer, and the first time it is asked for, not for every offer with the
/// config: indexing all 100 offers of a document with 100 rules, at both stages, was a tenth of
/// compiling it inside a fresh isolate's first click, which asks for one.
#[derive(Debug, Clone, Default)]
pub(crate) struct Candidates {
    pub(crate) click: OnceLock<Vec<usize>>,
    pub(crate) conversion: OnceLock<Vec<usize>>,
}

/// `offers[]`, each id once. Where a link profile serves offers the document does not list
/// (`unlisted_served`), the list may be empty.
pub(super) fn compile_offers(
    list: Option<&Vec<Value>>,
    unlisted_served: bool,
    advertisers: &FxHashMap<Id, PostbackPolicy>,
    errors: &mut Vec<ConfigError>,
) -> FxHashMap<Id, Offer> {
    let mut offers = FxHashMap::default();
    match list {
        Some(list) if list.is_empty() && !unlisted_served => {
            errors.push(err("offers", "must list at least one offer"))
        }
        Some(list) => {
            offers.reserve(list.len());
            for (i, item) in list.iter().enumerate() {
                if let Some(offer) = compile_offer(item, At::Item("offers", i), advertisers, errors)
                {
                    match offers.entry(offer.id.clone()) {
                        Entry::Vacant(e) => {
                            e.insert(offer);
                        }
                        Entry::Occupied(mut e) => {
                            errors.push(err(
                                &format!("offers[{i}].id"),
                                format!("`{}` is declared twice", offer.id),
                            ));
                            e.insert(offer);
                        }
                    }
                }
            }
        }
        None => {}
    }
    offers
}

fn compile_offer(
    item: &Value,
    path: At,
    advertisers: &FxHashMap<Id, PostbackPolicy>,
    errors: &mut Vec<ConfigError>,
) -> Option<Offer> {
    let mut f = Fields::of(item, path, errors)?;
    let id = f.id("id", true, errors);
    let name = f.string("name", errors).map(str::to_owned);
    let advertiser_id = f.id("advertiser_id", false, errors);
    if let Some(a) = &advertiser_id {
        if !advertisers.contains_key(a) {
            errors.push(err(
                &f.child("advertiser_id"),
                format!("`{a}` is not in advertisers"),
            ));
        }
    }
    let status = f.choice(
        "status",
        &[
            ("active", OfferStatus::Active),
            ("paused", OfferStatus::Paused),
        ],
        errors,
    );
    let geo = f
        .get("geo")
        .and_then(|g| compile_geo(g, &f.child("geo"), errors));
    let landing = f.template("landing_url", errors);
    let pass_through = match f.get("pass_through") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => {
            errors.push(err(
                &f.child("pass_through"),
                format!("must be true or false, found {}", kind(other)),
            ));
            None
        }
    };
    f.finish(errors);
    Some(Offer {
        id: id?,
        name,
        advertiser_id,
        status,
        landing: landing?,
        geo,
        pass_through,
        candidates: Candidates::default(),
    })
}

/// An offer's `geo`: the countries its clicks may come from, or may not.
fn compile_geo(value: &Value, path: &str, errors: &mut Vec<ConfigError>) -> Option<Geo> {
    let mut f = Fields::of(value, path, errors)?;
    let allow = f.array("allow", errors);
    let deny = f.array("deny", errors);
    f.finish(errors);
    let countries = |list: &Vec<Value>, key: &str, errors: &mut Vec<ConfigError>| -> Vec<String> {
        let mut out = Vec::new();
        for (i, v) in list.iter().enumerate() {
            match v.as_str() {
                Some(c) if c.len() == 2 && c.chars().all(|c| c.is_ascii_alphabetic()) => {
                    out.push(c.to_ascii_uppercase())
                }
                _ => errors.push(err(
                    &format!("{path}.{key}[{i}]"),
                    "must be a two-letter country code (ISO 3166-1)",
                )),
            }
        }
        out
    };
    match (allow, deny) {
        (Some(a), None) => Some(Geo::Allow(countries(a, "allow", errors))),
        (None, Some(d)) => Some(Geo::Deny(countries(d, "deny", errors))),
        _ => {
            errors.push(err(path, "give exactly one of allow and deny"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::problems;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn duplicate_offer_ids_are_refused() {
        let got = problems(
            r#"{"version":1,"offers":[{"id":"1","landing_url":"https://x/"},{"id":"1","landing_url":"https://y/"}]}"#,
        );
        assert_eq!(got, ["offers[1].id: `1` is declared twice"]);
    }
}
