//! The directory's listing rule. The directory object lists each object with report data, and a
//! shared object lists each of its networks, under
//! [`listing_key`](crate::stored::listing_key) with the last UTC day it had report data; a report
//! asks the ones listed since its first day, and the daily sweep drops a listing no report can
//! reach.

use crate::stored::{listed_name, REPORT_RETAIN_DAYS};
use crate::time::utc_day;

/// Whether a listing holding `stored` (its last day, if any is kept) is to be written for `day`:
/// only to move it forward.
pub fn relists(stored: Option<&str>, day: u32) -> bool {
    stored
        .and_then(|d| d.parse::<u32>().ok())
        .is_none_or(|d| d < day)
}

/// The name a listing lists, when it had report data on or after `since`.
pub fn listed_since<'a>(key: &'a str, day: &str, since: u32) -> Option<&'a str> {
    if day.parse::<u32>().is_ok_and(|d| d >= since) {
        listed_name(key)
    } else {
        None
    }
}

/// Whether the listing `n/{name}` (value: the last day with report data) is older than any report
/// can reach.
pub(crate) fn listing_expired(key: &str, value: &str, now_ms: u64) -> bool {
    let today = utc_day(now_ms);
    listed_name(key).is_some()
        && value
            .parse::<u32>()
            .is_ok_and(|day| day + REPORT_RETAIN_DAYS < today)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::DAY_MS;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const NOW: u64 = 1_795_392_000_000; // 2026-11-23T00:00:00Z

    #[test]
    fn a_listing_moves_only_forward() {
        assert!(relists(None, 5));
        assert!(relists(Some("4"), 5));
        assert!(!relists(Some("5"), 5));
        assert!(!relists(Some("6"), 5));
        assert!(relists(Some("garbage"), 5));
    }

    #[test]
    fn a_report_asks_the_names_listed_since_its_first_day() {
        assert_eq!(listed_since("n/net-1", "10", 10), Some("net-1"));
        assert_eq!(listed_since("n/net-1", "9", 10), None);
        assert_eq!(listed_since("n/net-1", "x", 0), None);
        assert_eq!(listed_since("seen", "10", 10), None);
    }

    #[test]
    fn a_listing_expires_past_the_reports_reach() {
        let today = (NOW / DAY_MS) as u32;
        assert!(!listing_expired("n/net-1", &today.to_string(), NOW));
        assert!(!listing_expired("n/net-1", &(today - 90).to_string(), NOW));
        assert!(listing_expired("n/net-1", &(today - 91).to_string(), NOW));
        assert!(!listing_expired("flood", "0", NOW));
    }
}
