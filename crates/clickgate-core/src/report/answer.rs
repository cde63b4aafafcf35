//! What a network's object answers to a report, written by the object and read by the report: an
//! object of its own answers with its network's stored hours, a shared one with each of its
//! networks' hours, the long tail folded.
//!
//! Writer and reader stay on the report's floor, not in `network::wire` beside the object's other
//! answers: a shared object writes its answer with [`Networks::answer`], which folds the report's
//! own [`Networks`] and calls [`network_answer`], and the report may not import `network`, the
//! floor above it (`tests/floors.rs`).

use serde_json::Value;

use super::bounds::{MAX_NETWORKS_NAMED, OTHER};
use super::hours::HourRows;
use super::networks::{add_hour, Hours, Networks};
use crate::click::Id;

/// What a network's object answers to a report: its stored hours in the range, as stored.
pub fn network_answer<'a>(hours: impl IntoIterator<Item = (u32, &'a str)>) -> String {
    let mut out = String::from("[");
    for (i, (hour, stored)) in hours.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!("[{hour},{stored}]"));
    }
    out.push(']');
    out
}

impl Networks {
    /// What a shared object answers to a report: its networks folded to [`MAX_NETWORKS_NAMED`],
    /// each network's hours as [`network_answer`] writes them, by network, and the folded ones
    /// under [`OTHER`] with how many they were.
    pub fn answer(mut self) -> String {
        self.fold_to(MAX_NETWORKS_NAMED);
        let hours = |hours: &Hours| {
            let stored: Vec<(u32, String)> = hours.iter().map(|(h, r)| (*h, r.encode())).collect();
            network_answer(stored.iter().map(|(h, r)| (*h, r.as_str())))
        };
        let mut out = String::from("{");
        for (network, held) in &self.named {
            // An id holds only `A-Z a-z 0-9 . _ -`: nothing to escape.
            out.push_str(&format!("\"{network}\":{},", hours(held)));
        }
        if self.folded > 0 || !self.other.is_empty() {
            out.push_str(&format!(
                "\"{OTHER}\":{{\"networks\":{},\"hours\":{}}},",
                self.folded,
                hours(&self.other)
            ));
        }
        if out.ends_with(',') {
            out.pop();
        }
        out.push('}');
        out
    }
}

/// The networks' hours in the report answer of the object the directory lists as `object`: an
/// object of its own answers for the network it is named by, a shared one for each of its networks
/// (and those it folded).
pub fn parse_object_answer(object: &str, text: &str) -> Result<Networks, BadObjectAnswer> {
    read_object_answer(object, text).map_err(BadObjectAnswer)
}

/// Why an object's answer to a report was not read: the first thing in it that does not read,
/// with the network it is under (`net-7: not a list`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadObjectAnswer(String);

impl std::fmt::Display for BadObjectAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadObjectAnswer {}

fn read_object_answer(object: &str, text: &str) -> Result<Networks, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut networks = Networks::default();
    let Some(members) = v.as_object() else {
        networks.add(object, hours_of(&v)?);
        return Ok(networks);
    };
    for (network, hours) in members {
        if network == OTHER {
            networks.folded += hours
                .get("networks")
                .and_then(Value::as_u64)
                .ok_or("(other): how many networks")?;
            for (hour, rows) in hours_of(hours.get("hours").ok_or("(other): hours")?)? {
                add_hour(&mut networks.other, hour, rows);
            }
            continue;
        }
        if Id::parse(network).is_err() {
            return Err(format!("`{network}` is not a network"));
        }
        let hours = hours_of(hours).map_err(|e| format!("{network}: {e}"))?;
        networks.add(network, hours);
    }
    Ok(networks)
}

fn hours_of(v: &Value) -> Result<Vec<(u32, HourRows)>, String> {
    let list = v.as_array().ok_or("not a list")?;
    list.iter()
        .map(|item| {
            let hour = item
                .get(0)
                .and_then(Value::as_u64)
                .and_then(|h| u32::try_from(h).ok())
                .ok_or("an hour")?;
            Ok((hour, HourRows::from_value(item.get(1).ok_or("rows")?)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::home;
    use crate::report::bounds::*;
    use crate::report::fixtures::*;
    use crate::report::groups::aggregate;
    use crate::report::query::ReportQuery;
    use crate::report::tally::Tally;
    use crate::stored::hour_key;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn a_shared_object_answers_for_each_of_its_networks_and_a_network_in_two_objects_counts_once() {
        let h = 500_000;
        let hours = network(&[(h, &[("adv", "1", tally(3, 1, "bot"))])]);
        let stored: Vec<(u32, String)> = hours.iter().map(|(h, r)| (*h, r.encode())).collect();
        let answer = || network_answer(stored.iter().map(|(h, v)| (*h, v.as_str())));
        let mut members = Networks::default();
        members.add("made-up-1", hours.clone());
        members.add("net-7", hours.clone());
        // A device ledger living in the same object is no network of the report's.
        members.add("_devices.3", Vec::new());
        let shared = members.answer();
        let mut all = parse_object_answer("unlisted:3", &shared).unwrap();
        assert_eq!(
            all.parts().map(|(n, _)| n).collect::<Vec<_>>(),
            ["made-up-1", "net-7"]
        );
        assert_eq!(
            all.parts()
                .next()
                .map(|(_, h)| h.clone().into_iter().collect::<Vec<_>>()),
            Some(hours.clone())
        );
        // net-7's own object from before networks were shared, still holding hours.
        all.merge(parse_object_answer("net-7", &answer()).unwrap());
        let mut q = ReportQuery::parse("group_by=affiliate", 0).unwrap();
        (q.from_hour, q.to_hour) = (h, h + 1);
        let r = aggregate(&q, all.clone(), vec![]);
        assert_eq!(r.networks, 2);
        let rows: Vec<_> = r
            .rows
            .iter()
            .map(|(k, t)| (k[0].as_str(), t.clicks))
            .collect();
        assert_eq!(rows, [("net-7", 6), ("made-up-1", 3)]);
        assert!(parse_object_answer("unlisted:3", r#"{"a/b":[]}"#).is_err());
        assert!(parse_object_answer("unlisted:3", r#"{"(other)":[]}"#).is_err());
        assert_eq!(Networks::default().answer(), "{}");
    }

    /// A shared object's members and each network's hours, as its report reads them.
    /// Also counts the bytes its members' hours take in the object's storage (key and value).
    fn made_up(
        ids: std::ops::Range<u64>,
        object: u64,
        h: u32,
        t: &Tally,
        stored_bytes: &mut usize,
    ) -> Networks {
        let mut members = Networks::default();
        let mut hour = HourRows::default();
        hour.add("adv", "1", t);
        // Each click counted under its sub ID and country too, as the isolate counts it.
        hour.add(SUB_ID, "s1", t);
        hour.add(COUNTRY, "DE", t);
        // The object decodes each member's stored hour as it lists it.
        let stored = hour.encode();
        for i in ids.filter(|i| i % home::SHARED_OBJECTS == object) {
            let hours = HourRows::decode(&stored).unwrap();
            // A few networks click far more than the made-up tail, and keep their names.
            let mut hours = hours;
            if i % 10_000 == 0 {
                let counts = hours.rows.values_mut().chain(hours.dims.values_mut());
                counts.for_each(|t| t.clicks *= 1_000);
            }
            let network = Id::parse(&format!("made-up-{i}")).unwrap();
            *stored_bytes +=
                home::Space::Of(network.clone()).key(&hour_key(h)).len() + stored.len();
            members.add(network.as_str(), vec![(h, hours)]);
            assert!(members.named() <= 2 * MAX_NETWORKS_NAMED);
        }
        members
    }

    /// Regression: a report over made-up `aff_id`s held every one of them, so 184,000 of them took
    /// the runtime past a Worker isolate's 128 MB.
    #[test]
    fn a_report_over_made_up_ids_stays_bounded() {
        const IDS: u64 = 100_000;
        let h = 500_000;
        let t = tally(2, 1, "bot");
        let mut q = ReportQuery::parse("group_by=affiliate", 0).unwrap();
        (q.from_hour, q.to_hour) = (h, h + 1);
        let (mut answer_bytes, mut stored_bytes, mut all) = (0, 0, Networks::default());
        for object in 0..home::SHARED_OBJECTS {
            let answer = made_up(0..IDS, object, h, &t, &mut stored_bytes).answer();
            answer_bytes = answer_bytes.max(answer.len());
            all.merge(parse_object_answer(&format!("unlisted:{object}"), &answer).unwrap());
            assert!(all.named() <= 2 * MAX_NETWORKS_NAMED);
        }
        let r = aggregate(&q, all.clone(), vec![]);
        let json = r.to_json();
        println!(
            "{IDS} made-up ids: stored {stored_bytes} B of report hours over the shared objects; \
             largest object answer {answer_bytes} B, {} networks named, {} rows held, report {} rows, {} B",
            all.named(),
            all.rows(),
            r.rows.len(),
            json.len()
        );
        // Exact totals, every network counted.
        assert_eq!(
            (r.total.clicks, r.total.blocked, r.networks),
            (2 * IDS + 10 * 1_998, IDS, IDS as usize)
        );
        assert_eq!(r.total.reasons.get("bot"), Some(&IDS));
        // The biggest networks keep their names and their own counts; the tail is one row.
        let big: Vec<_> = r.rows.iter().filter(|(_, t)| t.clicks == 2_000).collect();
        assert_eq!(big.len(), 10);
        let id = |k: &str| {
            k.strip_prefix("made-up-")
                .and_then(|n| n.parse::<u64>().ok())
        };
        assert!(big
            .iter()
            .all(|(k, _)| id(&k[0]).is_some_and(|n| n % 10_000 == 0)));
        let other = r.rows.iter().find(|(k, _)| k[0] == OTHER).unwrap();
        let named: u64 = r
            .rows
            .iter()
            .filter(|(k, _)| k[0] != OTHER)
            .map(|(_, t)| t.clicks)
            .sum();
        assert_eq!(named + other.1.clicks, r.total.clicks);
        // The bound: rows and bytes fixed by the cap, whatever the number of ids.
        assert!(all.named() <= 2 * MAX_NETWORKS_NAMED);
        // Each network's hour holds its offer's row, its sub ID's and its country's.
        assert!(
            all.rows() <= 3 * (2 * MAX_NETWORKS_NAMED + 1),
            "{} rows",
            all.rows()
        );
        assert_eq!(r.rows.len(), MAX_NETWORKS_NAMED + 1);
        assert!(
            answer_bytes <= 256 * 1024,
            "an object's answer is {answer_bytes} B"
        );
        // Grouped by sub ID or country, the same clicks in as few rows.
        for (group, rows) in [("sub_id", MAX_NETWORKS_NAMED + 1), ("country", 1)] {
            let mut q = ReportQuery::parse(&format!("group_by={group}"), 0).unwrap();
            (q.from_hour, q.to_hour) = (h, h + 1);
            let by = aggregate(&q, all.clone(), vec![]);
            assert_eq!((by.total.clicks, by.rows.len()), (r.total.clicks, rows));
        }
        assert!(json.len() <= 1 << 20, "the report is {} B", json.len());
    }
}
