//! Time as the core counts it: Unix milliseconds in UTC, the proleptic Gregorian calendar, and
//! the two ways operators write a time (an instant in a rule, an hour in a report query).
//!
//! The ground floor: it imports nothing of the crate, so every module that counts days or hours
//! reads the same arithmetic.

pub(crate) const MINUTE_MS: u64 = 60_000;
pub(crate) const HOUR_MS: u64 = 3_600_000;
pub const DAY_MS: u64 = 86_400_000;

/// The UTC day (days since the epoch) an instant falls on: the day counts, reports and
/// listings are kept by.
pub fn utc_day(ms: u64) -> u32 {
    (ms / DAY_MS) as u32
}

/// The UTC day an hour since the epoch falls on.
pub fn day_of_hour(hour: u32) -> u32 {
    hour / 24
}

/// The next 00:00 UTC after `ms`.
pub fn next_midnight_ms(ms: u64) -> u64 {
    (ms / DAY_MS + 1) * DAY_MS
}

/// `2026-11-23T10:04:05.123Z` from Unix milliseconds (proleptic Gregorian, UTC).
pub fn rfc3339_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let year = match u64::try_from(y) {
        Ok(year) if year <= 9999 => year,
        _ => {
            return format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
                rem / 3600,
                rem % 3600 / 60,
                rem % 60,
                ms % 1000
            )
        }
    };
    // Every decision line carries one: digits written in place cost a tenth of `format!`.
    let mut text = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut value: u64| {
        for digit in text[at..at + width].iter_mut().rev() {
            *digit = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, u64::from(m));
    put(8, 2, u64::from(d));
    put(11, 2, rem / 3600);
    put(14, 2, rem % 3600 / 60);
    put(17, 2, rem % 60);
    put(20, 3, ms % 1000);
    // Only ASCII digits and separators were written.
    std::str::from_utf8(&text).unwrap_or_default().to_owned()
}

/// Days since 1970-01-01 of a real calendar date (month lengths and leap years checked), `None`
/// for anything else; Howard Hinnant's `days_from_civil`, the inverse of [`civil_from_days`].
pub(crate) fn days_of_date(y: i64, m: i64, d: i64) -> Option<i64> {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d < 1 || d > month_days[(m - 1) as usize] {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's `civil_from_days`.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Days since 1970-01-01 of exactly `YYYY-MM-DD`: a real calendar date, not before the epoch. The
/// date part of both time formats below.
fn epoch_day(date: &str) -> Option<i64> {
    let b = date.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |part: &str| {
        (part.bytes().all(|c| c.is_ascii_digit()))
            .then(|| part.parse::<i64>().ok())
            .flatten()
    };
    let (y, m, d) = (num(&date[..4])?, num(&date[5..7])?, num(&date[8..])?);
    days_of_date(y, m, d).filter(|days| *days >= 0)
}

/// A text [`parse_instant`] does not read as a UTC time; it names the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAnInstant(String);

impl std::fmt::Display for NotAnInstant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` is not a UTC time like 2026-11-01T09:30:00Z",
            self.0
        )
    }
}

impl std::error::Error for NotAnInstant {}

impl From<NotAnInstant> for String {
    fn from(e: NotAnInstant) -> String {
        e.to_string()
    }
}

/// `2026-11-01`, `2026-11-01T09:30:00Z` or with fractional seconds, in UTC, to Unix milliseconds.
pub fn parse_instant(text: &str) -> Result<u64, NotAnInstant> {
    let bad = || NotAnInstant(text.to_owned());
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Result<i64, NotAnInstant> {
        let part = text.get(range).ok_or_else(bad)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let days = text.get(..10).and_then(epoch_day).ok_or_else(bad)?;
    let (mut hh, mut mm, mut ss, mut ms) = (0, 0, 0, 0);
    if b.len() > 10 {
        if b.len() < 20
            || b[10] != b'T'
            || b[13] != b':'
            || b[16] != b':'
            || *b.last().ok_or_else(bad)? != b'Z'
        {
            return Err(bad());
        }
        hh = num(11..13)?;
        mm = num(14..16)?;
        ss = num(17..19)?;
        if b.len() > 20 {
            if b[19] != b'.' || b.len() < 22 {
                return Err(bad());
            }
            let frac = text.get(20..b.len() - 1).ok_or_else(bad)?;
            let digits: String = frac.chars().chain("000".chars()).take(3).collect();
            if !frac.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            ms = digits.parse::<i64>().map_err(|_| bad())?;
        }
    }
    if hh > 23 || mm > 59 || ss > 59 {
        return Err(bad());
    }
    Ok((((days * 24 + hh) * 60 + mm) * 60 + ss) as u64 * 1000 + ms as u64)
}

/// A recorded click's time as log exports write it, to Unix milliseconds: RFC 3339 with `Z` or an
/// offset (`+00:00`, `-0500`), a space instead of the `T`, any number of fraction digits (cut to
/// milliseconds), a trailing ` UTC`, or Unix seconds or milliseconds (a number of 12 digits or
/// more is milliseconds: seconds reach 12 digits only after the year 5138). A time without a
/// zone is UTC, as Cloudflare's exports write it.
pub(crate) fn parse_recorded_instant(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "`{text}` is not a time (RFC 3339 like 2026-11-01T09:30:00Z or +00:00, \
             `2026-11-01 09:30:00`, or Unix seconds or milliseconds)"
        )
    };
    let t = text.trim();
    let t = t.strip_suffix("UTC").map_or(t, str::trim_end);
    if !t.is_ascii() {
        return Err(bad());
    }
    if t.bytes().next().is_some_and(|b| b.is_ascii_digit()) && !t.contains('-') {
        return unix_instant(t).ok_or_else(bad);
    }
    if t.len() <= 10 {
        return parse_instant(t).map_err(|_| bad());
    }
    let b = t.as_bytes();
    if b.len() < 19 || !matches!(b[10], b'T' | b't' | b' ') {
        return Err(bad());
    }
    // Fraction, then the zone: what follows the seconds.
    let rest = &t[19..];
    let frac_len = rest
        .strip_prefix('.')
        .map_or(0, |f| 1 + f.bytes().take_while(u8::is_ascii_digit).count());
    if frac_len == 1 {
        return Err(bad());
    }
    let (frac, zone) = rest.split_at(frac_len);
    let offset_min = match zone.trim_start() {
        "" | "Z" | "z" => 0,
        z => zone_minutes(z).ok_or_else(bad)?,
    };
    let millis: String = frac.chars().skip(1).chain("000".chars()).take(3).collect();
    let utc =
        parse_instant(&format!("{}T{}.{millis}Z", &t[..10], &t[11..19])).map_err(|_| bad())?;
    let shifted = i128::from(utc) - i128::from(offset_min) * 60_000;
    u64::try_from(shifted).map_err(|_| bad())
}

/// `1795392000`, `1795392000.25` (seconds) or `1795392000250` (milliseconds).
fn unix_instant(t: &str) -> Option<u64> {
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    let digits = |s: &str| s.bytes().all(|c| c.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(frac) {
        return None;
    }
    let n: u64 = whole.parse().ok()?;
    if whole.len() >= 12 {
        return frac.is_empty().then_some(n);
    }
    let millis: String = frac.chars().chain("000".chars()).take(3).collect();
    n.checked_mul(1000)?.checked_add(millis.parse().ok()?)
}

/// `+05:30`, `-0500` or `+05` to minutes east of UTC.
fn zone_minutes(z: &str) -> Option<i64> {
    let sign = match z.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = z[1..].chars().filter(|c| *c != ':').collect();
    let colons = z[1..].matches(':').count();
    if !digits.bytes().all(|c| c.is_ascii_digit())
        || !matches!((digits.len(), colons), (2, 0) | (4, 0) | (4, 1))
    {
        return None;
    }
    let hh: i64 = digits[..2].parse().ok()?;
    let mm: i64 = if digits.len() == 4 {
        digits[2..].parse().ok()?
    } else {
        0
    };
    (hh <= 23 && mm <= 59).then_some(sign * (hh * 60 + mm))
}

/// An hour since the epoch from `YYYY-MM-DD[THH[:MM[:SS]]][Z]`; `end`: a bare date means the hour
/// after its day.
pub(crate) fn parse_report_hour(text: &str, end: bool) -> Result<u32, String> {
    let bad = || format!("`{text}` is not YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)");
    let text = text.strip_suffix('Z').unwrap_or(text);
    let (date, time) = match text.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let days = epoch_day(date).ok_or_else(bad)?;
    let num = |s: &str, len: usize| {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<i64>().ok())
            .flatten()
    };
    let hour = match time {
        None if end => 24,
        None => 0,
        Some(t) => {
            let mut fields = t.split(':');
            let h = fields.next().and_then(|h| num(h, 2)).filter(|h| *h < 24);
            // Minutes and seconds at most: `10:30:00:00` is no time.
            let rest: Vec<&str> = fields.collect();
            let rest_ok = rest.len() <= 2 && rest.iter().all(|f| num(f, 2).is_some_and(|n| n < 60));
            match (h, rest_ok) {
                (Some(h), true) => h,
                _ => return Err(bad()),
            }
        }
    };
    u32::try_from(days * 24 + hour).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn days_of_instants_and_hours_and_the_next_midnight() {
        // The last millisecond of a day is still that day; midnight starts the next.
        assert_eq!(utc_day(3 * DAY_MS - 1), 2);
        assert_eq!(utc_day(3 * DAY_MS), 3);
        assert_eq!((day_of_hour(71), day_of_hour(72)), (2, 3));
        assert_eq!(next_midnight_ms(3 * DAY_MS - 1), 3 * DAY_MS);
        assert_eq!(next_midnight_ms(3 * DAY_MS), 4 * DAY_MS);
    }

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_798_761_599_999), "2026-12-31T23:59:59.999Z");
    }

    #[test]
    fn dates_convert_both_ways() {
        for days in [0i64, 59, 365, 10_957, 20_780, 20_785, 40_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_of_date(y, i64::from(m), i64::from(d)), Some(days));
        }
        assert_eq!(days_of_date(2024, 2, 29), Some(19_782));
        assert_eq!(days_of_date(2023, 2, 29), None);
    }

    #[test]
    fn instants_parse_to_unix_milliseconds() {
        assert_eq!(parse_instant("1970-01-01"), Ok(0));
        assert_eq!(parse_instant("2026-11-23T12:04:05Z"), Ok(1_795_435_445_000));
        assert_eq!(
            parse_instant("2026-11-23T12:04:05.123Z"),
            Ok(1_795_435_445_123)
        );
        assert_eq!(parse_instant("2000-02-29T00:00:00Z"), Ok(951_782_400_000));
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "2026-11-23T25:00:00Z",
            "2026-11-23T12:04:05+01:00",
            "yesterday",
            "",
        ] {
            assert!(parse_instant(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_time_that_is_not_one_is_named_in_the_operators_words() {
        // The message reaches `config validate` under the field's path.
        assert_eq!(
            parse_instant("2026-13-01").unwrap_err().to_string(),
            "`2026-13-01` is not a UTC time like 2026-11-01T09:30:00Z"
        );
    }

    #[test]
    fn report_hours_take_a_bare_date_as_its_first_or_its_last_hour() {
        let nov1 = (days_of_date(2026, 11, 1).unwrap() * 24) as u32;
        assert_eq!(parse_report_hour("2026-11-01", false), Ok(nov1));
        assert_eq!(parse_report_hour("2026-11-01", true), Ok(nov1 + 24));
        assert_eq!(parse_report_hour("2026-11-01T09:30Z", false), Ok(nov1 + 9));
        assert!(parse_report_hour("2026-11-01T24", false).is_err());
        assert_eq!(
            parse_report_hour("2026-11-01T09:30:59", false),
            Ok(nov1 + 9)
        );
        assert!(parse_report_hour("2026-11-01T09:30:00:00", false).is_err());
        assert!(parse_report_hour("1969-12-31", false).is_err());
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn instants_round_trip_with_the_log_format(ms in 0u64..253_402_300_799_999) {
                let text = rfc3339_ms(ms);
                prop_assert_eq!(parse_instant(&text), Ok(ms));
            }

            #[test]
            fn the_timestamp_written_in_place_is_the_formatted_one(
                ms in prop_oneof![0u64..253_402_300_800_000, any::<u64>()]
            ) {
                let secs = ms / 1000;
                let (y, m, d) = civil_from_days((secs / 86_400) as i64);
                let rem = secs % 86_400;
                let formatted = format!(
                    "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
                    rem / 3600,
                    rem % 3600 / 60,
                    rem % 60,
                    ms % 1000
                );
                prop_assert_eq!(rfc3339_ms(ms), formatted);
            }

            #[test]
            fn parsing_never_panics(text in "\\PC{0,30}") {
                let _ = parse_instant(&text);
                let _ = parse_report_hour(&text, false);
                let _ = parse_report_hour(&text, true);
            }
        }
    }

    #[test]
    fn recorded_times_read_every_way_exports_write_them() {
        let at = 1_795_435_445_123; // 2026-11-23T12:04:05.123Z
        for text in [
            "2026-11-23T12:04:05.123Z",
            "2026-11-23T12:04:05.123+00:00",
            "2026-11-23T12:04:05.123456789Z",
            "2026-11-23T13:04:05.123+01:00",
            "2026-11-23T07:04:05.123-0500",
            "2026-11-23T17:34:05.123+05:30",
            "2026-11-23 12:04:05.123",
            "2026-11-23 12:04:05.123 UTC",
            "2026-11-23 12:04:05.123 +00:00",
            "1795435445123",
            "1795435445.123",
            " 1795435445.1234 ",
        ] {
            assert_eq!(parse_recorded_instant(text), Ok(at), "{text}");
        }
        assert_eq!(parse_recorded_instant("1795435445"), Ok(at - 123));
        assert_eq!(parse_recorded_instant("2026-11-23"), Ok(at - 43_445_123));
        for text in [
            "",
            "bad",
            "2026-11-23T12:04",
            "2026-11-23T12:04:05.Z",
            "2026-11-23T12:04:05+25:00",
            "2026-11-23T12:04:05+1:00",
            "2026-11-23T12:04:05 EST",
            "2026-11-23X12:04:05Z",
            "2026-11-23T12:04:05\u{e9}",
            "1795435445123.5",
            "1970-01-01T00:00:00+01:00",
            "12e5",
        ] {
            let e = parse_recorded_instant(text).unwrap_err();
            assert!(e.contains("is not a time"), "{text}: {e}");
        }
    }
}
