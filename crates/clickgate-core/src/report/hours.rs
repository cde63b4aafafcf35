//! One network's hour, as its object stores it: the rows, the sub IDs and countries beside them,
//! and how many explanations the hour has kept.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::bounds::{
    COUNTRY, MAX_COUNTRIES, MAX_EXPLAINED_PER_HOUR, MAX_ROWS_PER_HOUR, MAX_SUB_IDS, OTHER, SUB_ID,
};
use super::tally::Tally;
use crate::fault::Corrupt;

/// A network's rows for one hour, and how many explanations the hour has kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HourRows {
    pub rows: BTreeMap<(String, String), Tally>,
    /// Clicks per sub ID and per country, keyed by [`SUB_ID`] or [`COUNTRY`] and the value.
    pub(crate) dims: BTreeMap<(String, String), Tally>,
    pub explained: u32,
}

impl HourRows {
    /// Adds a row's tally; a new pair past [`MAX_ROWS_PER_HOUR`] is summed into [`OTHER`], and so
    /// is a new sub ID or country (`advertiser` [`SUB_ID`] or [`COUNTRY`]) past its cap.
    pub fn add(&mut self, advertiser: &str, offer: &str, tally: &Tally) {
        let (rows, cap, tag) = match advertiser {
            SUB_ID => (&mut self.dims, MAX_SUB_IDS, advertiser),
            COUNTRY => (&mut self.dims, MAX_COUNTRIES, advertiser),
            _ => (&mut self.rows, MAX_ROWS_PER_HOUR, ""),
        };
        let key = (advertiser.to_owned(), offer.to_owned());
        let held = || match tag {
            "" => rows.len(),
            _ => rows.keys().filter(|k| k.0 == tag).count(),
        };
        let key = if rows.contains_key(&key) || held() < cap {
            key
        } else {
            (tag.to_owned(), OTHER.to_owned())
        };
        rows.entry(key).or_default().add(tally);
    }

    /// Adds another network's (or object's) rows of the same hour.
    pub fn merge(&mut self, other: &HourRows) {
        for ((advertiser, offer), tally) in other.rows.iter().chain(&other.dims) {
            self.add(advertiser, offer, tally);
        }
        self.explained = self.explained.saturating_add(other.explained);
    }

    /// Whether one more explanation may be kept this hour (and counts it).
    pub(crate) fn keep_explanation(&mut self) -> bool {
        let keep = self.explained < MAX_EXPLAINED_PER_HOUR;
        self.explained += u32::from(keep);
        keep
    }

    /// The stored form; an hour stored before `dims` were counted reads as one without any.
    pub fn encode(&self) -> String {
        let list = |rows: &BTreeMap<(String, String), Tally>| -> Vec<Value> {
            rows.iter()
                .map(|((a, o), t)| json!([a, o, t.to_wire()]))
                .collect()
        };
        json!({"rows": list(&self.rows), "dims": list(&self.dims), "explained": self.explained})
            .to_string()
    }

    /// An hour's rows as the object stored them; text that does not read back is a runtime fault.
    pub fn decode(text: &str) -> Result<HourRows, Corrupt> {
        serde_json::from_str(text)
            .map_err(|e| e.to_string())
            .and_then(|v| HourRows::from_value(&v))
            .map_err(|e| Corrupt::new("report hour", e))
    }

    pub(super) fn from_value(v: &Value) -> Result<HourRows, String> {
        let mut hour = HourRows {
            explained: v
                .get("explained")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or("explained: not a count")?,
            ..HourRows::default()
        };
        for (name, empty) in [("rows", None), ("dims", Some(&json!([])))] {
            let list = v.get(name).or(empty).and_then(Value::as_array);
            for (i, row) in list
                .ok_or_else(|| format!("{name}: not a list"))?
                .iter()
                .enumerate()
            {
                let (Some(a), Some(o), Some(t)) = (
                    row.get(0).and_then(Value::as_str),
                    row.get(1).and_then(Value::as_str),
                    row.get(2),
                ) else {
                    return Err(format!("{name}[{i}]: must be [advertiser, offer, tally]"));
                };
                let tally = Tally::read(t).map_err(|e| format!("{name}[{i}]: {e}"))?;
                let rows = if name == "rows" {
                    &mut hour.rows
                } else {
                    &mut hour.dims
                };
                rows.insert((a.to_owned(), o.to_owned()), tally);
            }
        }
        Ok(hour)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::click::Id;
    use crate::report::fixtures::*;
    use crate::report::tally::{ConversionRow, RowKey};
    use crate::stored::{explain_key, hour_key};
    use crate::time::{DAY_MS, HOUR_MS};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn an_hour_round_trips_through_storage() {
        let mut hour = HourRows::default();
        hour.add("adv", "1", &tally(10, 3, "bot"));
        hour.add("", "2", &tally(4, 0, ""));
        hour.add("adv", "1", &tally(1, 1, "geo"));
        assert!(hour.keep_explanation());
        let back = HourRows::decode(&hour.encode()).unwrap();
        assert_eq!(back, hour);
        let t = &back.rows[&("adv".to_owned(), "1".to_owned())];
        assert_eq!((t.clicks, t.blocked), (11, 4));
        assert_eq!(t.reasons.get("geo"), Some(&1));
        assert_eq!(back.explained, 1);
        assert!(HourRows::decode(r#"{"rows": [["a", "1", [1]]], "explained": 0}"#).is_err());
        assert!(HourRows::decode("[]").is_err());
    }

    #[test]
    fn rows_past_the_hour_cap_are_summed_into_other() {
        let mut hour = HourRows::default();
        for i in 0..MAX_ROWS_PER_HOUR + 10 {
            hour.add("adv", &format!("o{i}"), &tally(1, 0, ""));
        }
        // An existing pair still counts under its own name.
        hour.add("adv", "o0", &tally(1, 0, ""));
        assert_eq!(hour.rows.len(), MAX_ROWS_PER_HOUR + 1);
        assert_eq!(hour.rows[&(String::new(), OTHER.to_owned())].clicks, 10);
        assert_eq!(hour.rows[&("adv".to_owned(), "o0".to_owned())].clicks, 2);
        let total: u64 = hour.rows.values().map(|t| t.clicks).sum();
        assert_eq!(total, MAX_ROWS_PER_HOUR as u64 + 11);
    }

    #[test]
    fn explanations_stop_at_the_hourly_cap() {
        let mut hour = HourRows {
            explained: MAX_EXPLAINED_PER_HOUR - 1,
            ..HourRows::default()
        };
        assert!(hour.keep_explanation());
        assert!(!hour.keep_explanation());
        assert_eq!(hour.explained, MAX_EXPLAINED_PER_HOUR);
    }

    #[test]
    fn keys_expire_after_their_retention() {
        let hour = (NOW / HOUR_MS) as u32;
        let day_ms = DAY_MS;
        let report = hour_key(hour);
        let explain = explain_key(hour, &[0xab; 8]);
        assert_eq!(explain, format!("explain/{hour:08}/abababababababab"));
        // The object's sweep judges its keys by kind.
        let expired = |key: &str, now| crate::network::store::expired(key, "", now);
        assert!(!expired(&report, NOW));
        assert!(!expired(&report, NOW + 89 * day_ms));
        assert!(expired(&report, NOW + 90 * day_ms));
        assert!(!expired(&explain, NOW + 6 * day_ms));
        assert!(expired(&explain, NOW + 7 * day_ms));
        assert!(!expired("flood", NOW + 90 * day_ms));
    }

    #[test]
    fn the_report_travels_with_the_counts_and_is_stored_exactly_once() {
        use crate::flood::Thresholds;
        use crate::network::local::{Flush, FlushPolicy, LocalCounts};
        use crate::network::store::NetworkCounts;
        use crate::stored::StoreKey;
        let mut isolate = LocalCounts::new(1, FlushPolicy::default());
        let clicks = [
            click("offer_id=1&aff_id=n1", "192.0.2.1", BROWSER, NOW),
            click("offer_id=1&aff_id=n1", "203.0.113.9", BROWSER, NOW),
            click("offer_id=2&aff_id=n1", "192.0.2.1", "curl/8.4.0", NOW),
        ];
        for (i, out) in clicks.iter().enumerate() {
            isolate.record_outcome(out, &out.log_line(), Thresholds::default(), &[i as u8; 8]);
        }
        let row = RowKey {
            hour: (NOW / HOUR_MS) as u32,
            advertiser: "adv".into(),
            offer: "1".into(),
        };
        let conversion = ConversionRow {
            network: clicks[0].click.aff_id.clone(),
            offer: clicks[0].click.offer_id.clone(),
            advertiser: "adv".into(),
            hour: row.hour,
            tally: Tally {
                conversions: 1,
                approved: 1,
                ..Tally::default()
            },
        };
        isolate.record_conversion(&conversion, NOW);
        let Flush::Send(batch) = isolate.flush(&clicks[0].click.aff_id, NOW + 1_000) else {
            panic!("a batch is due")
        };
        assert_eq!(batch.network.as_str(), "n1");
        // Offers 1 and 2 in one hour, and every click under its sub ID and country (none).
        assert_eq!(batch.report.len(), 4);
        // The blocked click and the monitored bot are kept; the clean click is not.
        assert_eq!(batch.explain.len(), 2);
        assert_eq!(batch.explain[0].0, explain_key(row.hour, &[1; 8]));

        let mut object = NetworkCounts::default();
        object.apply(&batch, NOW + 1_000);
        let retried = object.apply(&batch, NOW + 2_000);
        assert!(retried.duplicate);
        let stored: BTreeMap<String, Option<String>> = object.take_changes().into_iter().collect();
        let hour = HourRows::decode(stored[&hour_key(row.hour)].as_deref().unwrap()).unwrap();
        let offer1 = &hour.rows[&("adv".to_owned(), "1".to_owned())];
        assert_eq!(
            (
                offer1.clicks,
                offer1.blocked,
                offer1.conversions,
                offer1.approved
            ),
            (2, 1, 1, 1)
        );
        let offer2 = &hour.rows[&(String::new(), "2".to_owned())];
        assert_eq!((offer2.clicks, offer2.would_block), (1, 1));
        for tag in [SUB_ID, COUNTRY] {
            let none = &hour.dims[&(tag.to_owned(), String::new())];
            assert_eq!((none.clicks, none.blocked, none.would_block), (3, 1, 1));
        }
        assert_eq!(hour.explained, 2);
        let kept = stored[&explain_key(row.hour, &[1; 8])].as_deref().unwrap();
        assert!(kept.contains("\"ip_blocklist\""), "{kept}");
        assert!(matches!(
            StoreKey::parse(&explain_key(row.hour, &[2; 8])),
            Some(StoreKey::Explain(..))
        ));
    }

    #[test]
    fn a_click_counts_under_its_sub_id_and_country_and_an_hour_caps_both() {
        use crate::network::local::{Flush, FlushPolicy, LocalCounts};
        use crate::network::store::NetworkCounts;
        let mut isolate = LocalCounts::new(1, FlushPolicy::default());
        let mut counted = |query: &str, ip: &str, country: &str, nonce: u8| {
            let mut out = click(query, ip, BROWSER, NOW);
            out.client.country = Some(country.into());
            isolate.record_outcome(&out, "", Default::default(), &[nonce; 8]);
        };
        counted("offer_id=1&aff_id=n1&sub1=s1", "192.0.2.1", "DE", 1);
        counted("offer_id=1&aff_id=n1&sub1=s1", "203.0.113.9", "US", 2);
        counted("offer_id=2&aff_id=n1&sub1=s2", "192.0.2.1", "US", 3);
        counted("offer_id=2&aff_id=n1", "192.0.2.1", "DE", 4);
        let Flush::Send(batch) = isolate.flush(&Id::parse("n1").unwrap(), NOW + 60_000) else {
            panic!("a batch is due")
        };
        let mut object = NetworkCounts::default();
        object.apply(&batch, NOW + 60_000);
        let stored: BTreeMap<String, Option<String>> = object.take_changes().into_iter().collect();
        let h = (NOW / HOUR_MS) as u32;
        let hour = HourRows::decode(stored[&hour_key(h)].as_deref().unwrap()).unwrap();
        let dim = |tag: &str, value: &str| {
            let t = &hour.dims[&(tag.to_owned(), value.to_owned())];
            (t.clicks, t.blocked, t.reasons.get("ip_blocklist").copied())
        };
        assert_eq!(dim(SUB_ID, "s1"), (2, 1, Some(1)));
        assert_eq!(dim(SUB_ID, "s2"), (1, 0, None));
        assert_eq!(dim(SUB_ID, ""), (1, 0, None));
        assert_eq!(dim(COUNTRY, "DE"), (2, 0, None));
        assert_eq!(dim(COUNTRY, "US"), (2, 1, Some(1)));
        assert_eq!(hour.dims.len(), 5);
        // The offers' rows are as they were: sub IDs and countries add no offer row.
        let offers: u64 = hour.rows.values().map(|t| t.clicks).sum();
        assert_eq!((hour.rows.len(), offers), (2, 4));
        // An hour stored before sub IDs and countries were counted reads as it was.
        let old =
            HourRows::decode(r#"{"rows": [["adv", "1", [1,1,0,0,0,0,0,{},{}]]], "explained": 0}"#);
        assert!(old.is_ok_and(|o| o.dims.is_empty() && o.rows.len() == 1));
        assert!(HourRows::decode(r#"{"rows": [], "dims": {}, "explained": 0}"#).is_err());

        // Made-up sub IDs past the cap are summed into `(other)`; countries have their own cap,
        // and neither takes room from the offers.
        let mut hour = HourRows::default();
        for i in 0..MAX_SUB_IDS + 50 {
            hour.add(SUB_ID, &format!("made-up-{i}"), &tally(1, 0, ""));
        }
        hour.add(SUB_ID, "made-up-0", &tally(1, 0, ""));
        for i in 0..MAX_COUNTRIES + 5 {
            hour.add(COUNTRY, &format!("C{i}"), &tally(2, 0, ""));
        }
        hour.add("adv", "1", &tally(1, 0, ""));
        let of = |tag: &str| hour.dims.keys().filter(|(t, _)| t == tag).count();
        assert_eq!(of(SUB_ID), MAX_SUB_IDS + 1);
        assert_eq!(hour.dims[&(SUB_ID.to_owned(), OTHER.to_owned())].clicks, 50);
        assert_eq!(
            hour.dims[&(SUB_ID.to_owned(), "made-up-0".to_owned())].clicks,
            2
        );
        assert_eq!(of(COUNTRY), MAX_COUNTRIES + 1);
        assert_eq!(
            hour.dims[&(COUNTRY.to_owned(), OTHER.to_owned())].clicks,
            10
        );
        assert_eq!(hour.rows.len(), 1);
        assert_eq!(HourRows::decode(&hour.encode()).as_ref(), Ok(&hour));
    }
}
