//! The answer: the networks' hours inside a report's range summed into its groups, as JSON or CSV.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::bounds::{COUNTRY, MAX_NETWORKS_NAMED, MAX_SUB_IDS, OTHER, SUB_ID};
use super::networks::{heaviest, Networks};
use super::query::{day_label, hour_label, Group, ReportQuery};
use super::tally::Tally;
use crate::ip::sort_indices;
use crate::time::day_of_hour;

#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub query: ReportQuery,
    /// The group's values in `group_by` order, and its counts; most clicks first.
    pub rows: Vec<(Vec<String>, Tally)>,
    pub total: Tally,
    /// Networks whose objects answered; `missing` did not, and their counts are not in it.
    pub networks: usize,
    pub missing: Vec<String>,
}

/// Sums the networks' hours inside the query's range into its groups, naming at most
/// [`MAX_NETWORKS_NAMED`] networks.
pub fn aggregate(query: &ReportQuery, mut networks: Networks, missing: Vec<String>) -> Report {
    networks.fold_to(MAX_NETWORKS_NAMED);
    let mut groups: BTreeMap<Vec<String>, Tally> = BTreeMap::new();
    let mut total = Tally::default();
    // Grouped by sub ID or country, the report reads those rows instead of the offers'.
    let dim = query.group_by.iter().find_map(|g| match g {
        Group::SubId => Some(SUB_ID),
        Group::Country => Some(COUNTRY),
        _ => None,
    });
    let sub_at = query.group_by.iter().position(|g| *g == Group::SubId);
    for (network, hours) in networks.parts() {
        // One network's groups, its sub IDs folded to the heaviest as they pile up.
        let mut own: BTreeMap<Vec<String>, Tally> = BTreeMap::new();
        for (hour, rows) in hours {
            if *hour < query.from_hour || *hour >= query.to_hour {
                continue;
            }
            let read = if dim.is_some() {
                &rows.dims
            } else {
                &rows.rows
            };
            for ((advertiser, offer), tally) in read {
                if dim.is_some_and(|d| d != advertiser) {
                    continue;
                }
                let key = query
                    .group_by
                    .iter()
                    .map(|g| match g {
                        Group::Hour => hour_label(*hour),
                        Group::Day => day_label(day_of_hour(*hour)),
                        Group::Advertiser => advertiser.clone(),
                        Group::Offer | Group::SubId | Group::Country => offer.clone(),
                        Group::Affiliate => network.to_owned(),
                    })
                    .collect();
                own.entry(key).or_default().add(tally);
                total.add(tally);
            }
            if let Some(at) = sub_at.filter(|_| own.len() > 2 * MAX_SUB_IDS) {
                fold_groups(&mut own, at, MAX_SUB_IDS);
            }
        }
        if let Some(at) = sub_at {
            fold_groups(&mut own, at, MAX_SUB_IDS);
        }
        for (key, tally) in own {
            groups.entry(key).or_default().add(&tally);
        }
    }
    let mut rows: Vec<_> = groups.into_iter().collect();
    // Time groups read best in time order; the others with the biggest first.
    let by_time = query
        .group_by
        .first()
        .is_some_and(|g| matches!(g, Group::Hour | Group::Day));
    if !by_time {
        // Group keys are distinct, so the order is total and the unstable sort gives the same rows.
        let mut order: Vec<usize> = (0..rows.len()).collect();
        sort_indices(&mut order, &|a, b| {
            let (x, y) = (&rows[a], &rows[b]);
            y.1.clicks.cmp(&x.1.clicks).then_with(|| x.0.cmp(&y.0))
        });
        let mut taken: Vec<_> = rows.into_iter().map(Some).collect();
        rows = order.iter().filter_map(|&i| taken[i].take()).collect();
    }
    Report {
        query: query.clone(),
        rows,
        total,
        networks: networks.count(),
        missing,
    }
}

/// Keeps the `keep` groups with the most clicks and sums the others into the same group with
/// [`OTHER`] at `at`.
fn fold_groups(groups: &mut BTreeMap<Vec<String>, Tally>, at: usize, keep: usize) {
    let weights: Vec<u64> = groups.values().map(|t| t.clicks + t.previews).collect();
    let mut kept = heaviest(&weights, keep).into_iter();
    for (mut key, tally) in std::mem::take(groups) {
        if !kept.next().unwrap_or(true) {
            key[at] = OTHER.to_owned();
        }
        groups.entry(key).or_default().add(&tally);
    }
}

impl Report {
    pub fn to_json(&self) -> String {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|(key, tally)| {
                let mut m = Map::new();
                for (g, v) in self.query.group_by.iter().zip(key) {
                    m.insert(g.name().into(), json!(v));
                }
                m.extend(tally.to_json());
                Value::Object(m)
            })
            .collect();
        json!({
            "from": hour_label(self.query.from_hour),
            "to": hour_label(self.query.to_hour),
            "group_by": self.query.group_by.iter().map(|g| g.name()).collect::<Vec<_>>(),
            "networks": self.networks,
            "missing_networks": self.missing,
            "total": Value::Object(self.total.to_json()),
            "rows": rows,
        })
        .to_string()
    }

    /// One line per group; a column per reason code found, so a spreadsheet can sum them.
    pub(crate) fn to_csv(&self) -> String {
        let reasons: Vec<&String> = self.total.reasons.keys().collect();
        let conversion_reasons: Vec<&String> = self.total.conversion_reasons.keys().collect();
        let mut header: Vec<String> = self
            .query
            .group_by
            .iter()
            .map(|g| g.name().to_owned())
            .collect();
        header.extend(
            [
                "clicks",
                "allowed",
                "blocked",
                "would_block",
                "block_rate",
                "conversions",
                "approved",
                "invalid",
                "cr",
            ]
            .map(str::to_owned),
        );
        header.extend(reasons.iter().map(|r| format!("reason:{r}")));
        header.extend(
            conversion_reasons
                .iter()
                .map(|r| format!("conversion_reason:{r}")),
        );
        let mut out = csv_line(&header);
        for (key, t) in &self.rows {
            let mut fields = key.clone();
            let rate = |r: Option<f64>| r.map_or_else(String::new, |r| r.to_string());
            fields.extend([
                t.clicks.to_string(),
                t.allowed.to_string(),
                t.blocked.to_string(),
                t.would_block.to_string(),
                rate(t.block_rate()),
                t.conversions.to_string(),
                t.approved.to_string(),
                t.invalid.to_string(),
                rate(t.cr()),
            ]);
            fields.extend(
                reasons
                    .iter()
                    .map(|r| t.reasons.get(*r).copied().unwrap_or(0).to_string()),
            );
            fields.extend(conversion_reasons.iter().map(|r| {
                t.conversion_reasons
                    .get(*r)
                    .copied()
                    .unwrap_or(0)
                    .to_string()
            }));
            out.push_str(&csv_line(&fields));
        }
        out
    }
}

/// RFC 4180: fields with a comma, quote or line break are quoted, quotes doubled. A field that a
/// spreadsheet would run as a formula is prefixed with `'`.
fn csv_line(fields: &[String]) -> String {
    let mut line = String::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        let f = if f.starts_with(['=', '+', '-', '@']) && f.parse::<f64>().is_err() {
            format!("'{f}")
        } else {
            f.clone()
        };
        if f.contains([',', '"', '\n', '\r']) {
            line.push('"');
            line.push_str(&f.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(&f);
        }
    }
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::*;
    use crate::report::hours::HourRows;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn groups_sum_across_networks_and_hours_inside_the_range_only() {
        let h = 500_000;
        let n1 = network(&[
            (
                h,
                &[
                    ("adv", "1", tally(10, 2, "bot")),
                    ("adv", "2", tally(5, 0, "")),
                ],
            ),
            (h + 1, &[("adv", "1", tally(4, 4, "geo"))]),
            (h + 5, &[("adv", "1", tally(100, 0, ""))]),
        ]);
        let n2 = network(&[(h, &[("adv", "1", tally(6, 1, "bot"))])]);
        let query = |group: &str| {
            let mut q = ReportQuery::parse(&format!("group_by={group}"), 0).unwrap();
            q.from_hour = h;
            q.to_hour = h + 2;
            q
        };
        let parts = || {
            let mut all = Networks::default();
            all.add("n1", n1.clone());
            all.add("n2", n2.clone());
            all
        };

        let r = aggregate(&query("offer"), parts(), vec![]);
        assert_eq!(r.total.clicks, 25);
        assert_eq!(r.total.blocked, 7);
        assert_eq!(r.total.reasons.get("bot"), Some(&3));
        let offers: Vec<_> = r
            .rows
            .iter()
            .map(|(k, t)| (k[0].as_str(), t.clicks))
            .collect();
        assert_eq!(offers, vec![("1", 20), ("2", 5)]);

        let r = aggregate(&query("affiliate,offer"), parts(), vec!["n3".into()]);
        let rows: Vec<_> = r
            .rows
            .iter()
            .map(|(k, t)| (k.join("/"), t.clicks, t.blocked))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("n1/1".into(), 14, 6),
                ("n2/1".into(), 6, 1),
                ("n1/2".into(), 5, 0)
            ]
        );
        assert_eq!((r.networks, r.missing.clone()), (2, vec!["n3".to_owned()]));

        let r = aggregate(&query("hour"), parts(), vec![]);
        let hours: Vec<_> = r
            .rows
            .iter()
            .map(|(k, t)| (k[0].clone(), t.clicks))
            .collect();
        assert_eq!(hours[0], (hour_label(h), 21));
        assert_eq!(hours[1], (hour_label(h + 1), 4));

        let r = aggregate(&query(""), parts(), vec![]);
        assert_eq!(r.rows.len(), 1);
        assert!(r.rows[0].0.is_empty());
    }

    #[test]
    fn json_carries_rates_and_csv_has_a_column_per_reason() {
        let h = 500_000;
        let mut t = tally(8, 2, "bot");
        t.reasons.insert("geo".into(), 1);
        t.conversions = 2;
        t.invalid = 1;
        t.conversion_reasons
            .insert("min_click_to_conversion".into(), 1);
        let n1 = network(&[(h, &[("adv", "1", t), ("", "2", tally(2, 0, ""))])]);
        let mut q = ReportQuery::parse("group_by=advertiser,offer&format=csv", 0).unwrap();
        q.from_hour = h;
        q.to_hour = h + 1;
        let mut n = Networks::default();
        n.add("n1", n1);
        let r = aggregate(&q, n, vec![]);

        let json: Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(json["total"]["clicks"], 10);
        assert_eq!(json["total"]["cr"], 0.2);
        assert_eq!(json["rows"][0]["advertiser"], "adv");
        assert_eq!(json["rows"][0]["block_rate"], 0.25);
        assert_eq!(json["rows"][1]["cr"], 0.0);
        assert_eq!(json["from"], hour_label(h));

        let csv = r.to_csv();
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "advertiser,offer,clicks,allowed,blocked,would_block,block_rate,conversions,approved,invalid,cr,reason:bot,reason:geo,conversion_reason:min_click_to_conversion"
        );
        assert_eq!(lines[1], "adv,1,8,6,2,0,0.25,2,0,1,0.25,2,1,1");
        assert_eq!(lines[2], ",2,2,2,0,0,0,0,0,0,0,0,0,0");
        assert_eq!(lines[3], "");
    }

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        let line = csv_line(&[
            "a,b".into(),
            "say \"hi\"".into(),
            "=1+2".into(),
            "-3".into(),
        ]);
        assert_eq!(line, "\"a,b\",\"say \"\"hi\"\"\",'=1+2,-3\r\n");
    }

    #[test]
    fn grouped_by_sub_id_or_country_the_report_reads_those_counts_and_names_the_heaviest() {
        let h = 500_000;
        let hour = |dims: &[(&str, &str, Tally)]| {
            let mut rows = HourRows::default();
            let mut all = Tally::default();
            for (tag, value, t) in dims {
                rows.add(tag, value, t);
                if *tag == SUB_ID {
                    all.add(t);
                }
            }
            rows.add("adv", "1", &all);
            rows
        };
        let mut networks = Networks::default();
        networks.add(
            "n1",
            vec![
                (
                    h,
                    hour(&[
                        (SUB_ID, "s1", tally(5, 2, "bot")),
                        (SUB_ID, "", tally(1, 0, "")),
                        (COUNTRY, "DE", tally(4, 2, "bot")),
                        (COUNTRY, "US", tally(2, 0, "")),
                    ]),
                ),
                (
                    h + 1,
                    hour(&[
                        (SUB_ID, "s1", tally(3, 0, "")),
                        (COUNTRY, "DE", tally(3, 0, "")),
                    ]),
                ),
                (
                    h + 9,
                    hour(&[
                        (SUB_ID, "s9", tally(50, 0, "")),
                        (COUNTRY, "FR", tally(50, 0, "")),
                    ]),
                ),
            ],
        );
        networks.add(
            "n2",
            vec![(
                h,
                hour(&[
                    (SUB_ID, "s1", tally(2, 1, "geo")),
                    (COUNTRY, "US", tally(2, 1, "geo")),
                ]),
            )],
        );
        let report = |group: &str| {
            let mut q = ReportQuery::parse(&format!("group_by={group}"), 0).unwrap();
            (q.from_hour, q.to_hour) = (h, h + 2);
            let r = aggregate(&q, networks.clone(), vec![]);
            let rows: Vec<_> = r
                .rows
                .iter()
                .map(|(k, t)| (k.join("/"), t.clicks, t.blocked))
                .collect();
            (rows, r.total)
        };
        let (rows, total) = report("sub_id");
        assert_eq!(
            rows,
            [("n1/s1", 8, 2), ("n2/s1", 2, 1), ("n1/", 1, 0)].map(|(k, c, b)| (k.to_owned(), c, b))
        );
        assert_eq!(
            (total.clicks, total.blocked, total.reasons.len()),
            (11, 3, 2)
        );
        let (rows, total) = report("country");
        assert_eq!(
            rows,
            [("DE", 7, 2), ("US", 4, 1)].map(|(k, c, b)| (k.to_owned(), c, b))
        );
        assert_eq!(total.clicks, 11);
        let (rows, _) = report("country,affiliate");
        assert_eq!(rows[0], ("DE/n1".to_owned(), 7, 2));
        // The offers' report is untouched by the dimensions' rows.
        let (rows, total) = report("offer");
        assert_eq!((rows.len(), total.clicks), (1, 11));
        // Led by time, rows are in the order of their groups.
        let (rows, _) = report("day,sub_id");
        let day = day_label(day_of_hour(h));
        let keys: Vec<String> = rows.into_iter().map(|r| r.0).collect();
        assert_eq!(
            keys,
            [
                format!("{day}/n1/"),
                format!("{day}/n1/s1"),
                format!("{day}/n2/s1")
            ]
        );

        // A network with made-up sub IDs over many hours: at most MAX_SUB_IDS of them are named,
        // the heaviest, and the rest are one `(other)`; nothing is lost.
        let mut flood = Networks::default();
        let hours: Vec<(u32, HourRows)> = (0..40u32)
            .map(|i| {
                let mut rows = HourRows::default();
                rows.add(SUB_ID, &format!("heavy-{}", i % 3), &tally(1_000, 0, ""));
                for j in 0..MAX_SUB_IDS as u32 {
                    rows.add(SUB_ID, &format!("made-up-{i}-{j}"), &tally(1, 0, ""));
                }
                (h + i, rows)
            })
            .collect();
        flood.add("n1", hours);
        let mut q = ReportQuery::parse("group_by=sub_id", 0).unwrap();
        (q.from_hour, q.to_hour) = (h, h + 40);
        let r = aggregate(&q, flood, vec![]);
        assert!(r.rows.len() <= MAX_SUB_IDS + 1, "{} rows", r.rows.len());
        let names: Vec<&str> = r.rows.iter().take(3).map(|(k, _)| k[1].as_str()).collect();
        assert!(names.iter().all(|n| n.starts_with("heavy-")), "{names:?}");
        assert!(r.rows.iter().any(|(k, _)| k[1] == OTHER));
        // Exact totals: each hour's last made-up sub ID went to the hour's `(other)`.
        let sum: u64 = r.rows.iter().map(|(_, t)| t.clicks).sum();
        assert_eq!((sum, r.total.clicks), (40 * 1_100, 40 * 1_100));
    }
}
