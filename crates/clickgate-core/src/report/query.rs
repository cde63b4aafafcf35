//! The question: `GET /admin/report?from=..&to=..&group_by=..&format=..`.

use super::bounds::MAX_RANGE_HOURS;
use crate::fault::Invalid;
use crate::stored::REPORT_RETAIN_DAYS;
use crate::time::{civil_from_days, day_of_hour, parse_report_hour, HOUR_MS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Hour,
    Day,
    Advertiser,
    Offer,
    Affiliate,
    SubId,
    Country,
}

impl Group {
    pub fn name(self) -> &'static str {
        match self {
            Group::Hour => "hour",
            Group::Day => "day",
            Group::Advertiser => "advertiser",
            Group::Offer => "offer",
            Group::Affiliate => "affiliate",
            Group::SubId => "sub_id",
            Group::Country => "country",
        }
    }

    fn parse(name: &str) -> Option<Group> {
        Some(match name {
            "hour" => Group::Hour,
            "day" => Group::Day,
            "advertiser" => Group::Advertiser,
            "offer" => Group::Offer,
            "affiliate" | "network" => Group::Affiliate,
            "sub_id" => Group::SubId,
            "country" => Group::Country,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportQuery {
    /// First hour counted (hours since the epoch).
    pub from_hour: u32,
    /// First hour not counted.
    pub to_hour: u32,
    pub group_by: Vec<Group>,
    pub format: Format,
}

impl ReportQuery {
    /// Reads the query string. `from` and `to` are `YYYY-MM-DD` or `YYYY-MM-DDTHH[:MM[:SS]][Z]`
    /// in UTC, cut to the hour; a date-only `to` includes its day. Without them: the last 24
    /// hours, this one included. A query that does not parse is the caller's fault (a 400).
    pub fn parse(query: &str, now_ms: u64) -> Result<ReportQuery, Invalid> {
        ReportQuery::read(query, now_ms).map_err(Invalid::client)
    }

    fn read(query: &str, now_ms: u64) -> Result<ReportQuery, String> {
        let mut from = None;
        let mut to = None;
        let mut group_by = Vec::new();
        let mut format = Format::Json;
        for (name, value) in crate::click::query_pairs(query) {
            match name.as_ref() {
                "from" => {
                    from = Some(parse_report_hour(&value, false).map_err(|e| format!("from: {e}"))?)
                }
                "to" => to = Some(parse_report_hour(&value, true).map_err(|e| format!("to: {e}"))?),
                "group_by" => {
                    for g in value.split(',').map(str::trim).filter(|g| !g.is_empty()) {
                        let group = Group::parse(g).ok_or_else(|| {
                            format!("group_by: `{g}` is not one of hour, day, advertiser, offer, affiliate, sub_id, country")
                        })?;
                        if !group_by.contains(&group) {
                            group_by.push(group);
                        }
                    }
                }
                "format" => {
                    format = match value.as_ref() {
                        "json" => Format::Json,
                        "csv" => Format::Csv,
                        other => return Err(format!("format: `{other}` is not json or csv")),
                    }
                }
                other => return Err(format!("unknown parameter `{other}`")),
            }
        }
        // Sub IDs and countries are counted per network and hour, apart from each other and from
        // offers; a sub ID is its network's, so it is grouped with its affiliate.
        if let Some(at) = group_by.iter().position(|g| *g == Group::SubId) {
            if !group_by.contains(&Group::Affiliate) {
                group_by.insert(at, Group::Affiliate);
            }
        }
        let dims = group_by
            .iter()
            .filter(|g| matches!(g, Group::SubId | Group::Country))
            .count();
        if dims > 1
            || (dims == 1
                && group_by
                    .iter()
                    .any(|g| matches!(g, Group::Advertiser | Group::Offer)))
        {
            return Err("group_by: sub_id and country go with hour, day and affiliate only".into());
        }
        let now_hour = (now_ms / HOUR_MS) as u32;
        let to_hour = to.unwrap_or(now_hour + 1);
        let from_hour = from.unwrap_or(to_hour.saturating_sub(24));
        if from_hour >= to_hour {
            return Err("from must be before to".into());
        }
        if to_hour - from_hour > MAX_RANGE_HOURS {
            return Err(format!(
                "the range is longer than the {REPORT_RETAIN_DAYS} days the report keeps"
            ));
        }
        Ok(ReportQuery {
            from_hour,
            to_hour,
            group_by,
            format,
        })
    }

    pub fn from_day(&self) -> u32 {
        day_of_hour(self.from_hour)
    }
}

pub(super) fn hour_label(hour: u32) -> String {
    let (y, m, d) = civil_from_days(i64::from(day_of_hour(hour)));
    format!("{y:04}-{m:02}-{d:02}T{:02}:00Z", hour % 24)
}

pub(super) fn day_label(day: u32) -> String {
    let (y, m, d) = civil_from_days(i64::from(day));
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::{Blame, Fault};
    use crate::report::fixtures::*;
    use crate::time::HOUR_MS;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn report_questions_are_read_with_clear_errors() {
        let q = ReportQuery::parse("", NOW).unwrap();
        let now_hour = (NOW / HOUR_MS) as u32;
        assert_eq!((q.from_hour, q.to_hour), (now_hour - 23, now_hour + 1));
        assert_eq!((q.group_by.clone(), q.format), (vec![], Format::Json));

        let q = ReportQuery::parse(
            "from=2026-11-01&to=2026-11-02&group_by=offer,affiliate,offer&format=csv",
            NOW,
        )
        .unwrap();
        let nov1 = (crate::time::days_of_date(2026, 11, 1).unwrap() * 24) as u32;
        assert_eq!((q.from_hour, q.to_hour), (nov1, nov1 + 48));
        assert_eq!(q.group_by, vec![Group::Offer, Group::Affiliate]);
        assert_eq!(q.format, Format::Csv);

        let q = ReportQuery::parse("from=2026-11-01T05:30Z&to=2026-11-01T07", NOW).unwrap();
        assert_eq!((q.from_hour, q.to_hour), (nov1 + 5, nov1 + 7));

        for (query, says) in [
            ("from=2026-13-01", "from: `2026-13-01`"),
            ("from=2026-02-30", "from: `2026-02-30`"),
            ("to=yesterday", "to: `yesterday`"),
            ("from=2026-11-02&to=2026-11-01", "from must be before to"),
            ("from=2025-01-01&to=2026-11-01", "longer than the 90 days"),
            ("group_by=campaign", "`campaign` is not one of"),
            ("format=xml", "`xml` is not json or csv"),
            ("limit=5", "unknown parameter `limit`"),
        ] {
            let e = ReportQuery::parse(query, NOW).unwrap_err();
            assert_eq!(e.blame(), Blame::Client);
            assert!(e.problem.contains(says), "{query}: {e}");
        }
    }

    #[test]
    fn hours_are_labelled_with_their_date() {
        assert_eq!(hour_label(19_782 * 24 + 13), "2024-02-29T13:00Z");
    }

    #[test]
    fn sub_id_and_country_questions_are_read_with_their_limits() {
        let q = ReportQuery::parse("group_by=sub_id", NOW).unwrap();
        assert_eq!(q.group_by, vec![Group::Affiliate, Group::SubId]);
        let q = ReportQuery::parse("group_by=day,sub_id,affiliate", NOW).unwrap();
        assert_eq!(q.group_by, vec![Group::Day, Group::SubId, Group::Affiliate]);
        let q = ReportQuery::parse("group_by=country,hour", NOW).unwrap();
        assert_eq!(q.group_by, vec![Group::Country, Group::Hour]);
        for bad in ["sub_id,country", "country,offer", "advertiser,sub_id"] {
            let e = ReportQuery::parse(&format!("group_by={bad}"), NOW).unwrap_err();
            assert!(
                e.to_string()
                    .contains("go with hour, day and affiliate only"),
                "{bad}: {e}"
            );
        }
    }
}
