//! `replay`, the what-if tool: recorded clicks (the Worker's decision log, or CSV with a header)
//! run through a config with the engine the Worker runs, and the report of what it would have done.

use std::path::Path;

use clickgate_core::flood::FloodMode;
use clickgate_core::log::LogClean;
use clickgate_core::whatif::{
    csv_header, from_csv_fields, from_log_record, least, sampled_note, unread_columns, Recorded,
    RecordedConversion, Replay,
};
use serde_json::Value;

use crate::args::ReplayArgs;
use crate::config::{validate, Use};
use crate::Failure;

/// How often a long read or replay says how far it got, on stderr.
const PROGRESS_LINES: u64 = 100_000;

pub fn replay(a: &ReplayArgs) -> Result<(), Failure> {
    let config = validate(&a.config, Use::Replay)?.config;
    let against = a
        .against
        .as_ref()
        .map(|p| validate(p, Use::Replay).map(|l| l.config))
        .transpose()?;
    let Clicks {
        records,
        conversions,
        skipped,
        log,
        ..
    } = read_clicks(&a.clicks)?;

    let mut replay = Replay::new(&config, against.as_ref(), a.changes);
    feed_all(&mut replay, records, conversions);
    if !skipped.is_empty() {
        println!(
            "lines dropped (could not be read, not replayed): {}",
            skipped.len()
        );
    }
    if let Some(log) = log.filter(|l| *l != LogClean::All) {
        println!("note: {}\n", sampled_note(log));
    }
    print_report(&replay, against.is_some());
    if skipped.is_empty() || a.allow_dropped {
        return Ok(());
    }
    Err(Failure::Io(format!(
        "{}: {} lines could not be read and were not replayed (named above); \
         --allow-dropped accepts a report without them",
        a.clicks.display(),
        skipped.len()
    )))
}

/// How many unreadable lines are named on stderr; the rest are counted.
const NAMED: usize = 5;

/// Reads a click file whole and sorts it by time: the duplicate-IP and sub-ID counts are only right
/// in time order, and log shippers do not always keep it (the log's conversion lines, which the
/// share filters count, are sorted too). Every line that should have held a click
/// and could not be read is counted, the first few named with their line numbers; lines of text
/// among the records (wrangler's own output) are counted once.
fn read_clicks(path: &Path) -> Result<Clicks, Failure> {
    let name = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Io(format!("cannot read {name}: {e}")))?;
    let mut clicks =
        parse_clicks(&text).map_err(|(line, e)| Failure::Io(format!("{name}:{line}: {e}")))?;
    if !clicks.unread_columns.is_empty() {
        eprintln!(
            "note: {name}: columns left unread (not a click's): {}",
            clicks.unread_columns.join(", ")
        );
    }
    if let Some((line, n)) = clicks.text_lines {
        eprintln!("note: {name}: {n} lines hold no JSON record and were passed over (the first on line {line})");
    }
    for (line, problem) in clicks.skipped.iter().take(NAMED) {
        eprintln!("dropped {name}:{line}: {problem}");
    }
    if clicks.skipped.len() > NAMED {
        eprintln!(
            "dropped {} more lines that could not be read",
            clicks.skipped.len() - NAMED
        );
    }
    if clicks.records.is_empty() {
        return Err(Failure::Io(format!("{name}: no clicks found")));
    }
    clicks.records.sort_by_key(|r| r.at_ms);
    clicks.conversions.sort_by_key(|c| c.at_ms);
    Ok(clicks)
}

/// A click file's clicks in file order, and what was not read.
#[derive(Default)]
struct Clicks {
    records: Vec<Recorded>,
    /// The log's conversion lines (a CSV file has none).
    conversions: Vec<RecordedConversion>,
    /// The lines that should have held a click and could not be read: (line number, why).
    skipped: Vec<(u64, String)>,
    /// Lines of text among JSON records: the first one's number, and how many.
    text_lines: Option<(u64, u64)>,
    /// A CSV header's columns that are no click's.
    unread_columns: Vec<String>,
    /// The fewest clean clicks a line says its config logged.
    log: Option<LogClean>,
}

/// Reads JSON records, or CSV when the first line is a header naming `offer_id`; a header the
/// core refuses is an error with its line number.
fn parse_clicks(text: &str) -> Result<Clicks, (u64, String)> {
    let first = text.lines().find(|l| !l.trim().is_empty());
    if first.is_some_and(|l| !l.contains('{') && l.contains("offer_id")) {
        return parse_csv(text);
    }
    Ok(parse_records(text))
}

/// Reads JSON records one after another, each on one line (the Worker's log, NDJSON exports) or
/// over many (`wrangler tail --format json` indents each record): a record starts at the first
/// `{` of a line and ends where its JSON does. A record that is not JSON is dropped with the line
/// it starts on; one printed over many lines is passed over to the line where it broke (which may
/// start the next record), so its inner objects are not read as records of their own.
fn parse_records(text: &str) -> Clicks {
    let mut clicks = Clicks::default();
    let (mut pos, mut line) = (0, 1u64);
    let mut reported = 0;
    while pos < text.len() {
        let line_end = text[pos..].find('\n').map_or(text.len(), |i| pos + i + 1);
        let here = &text[pos..line_end];
        let Some(brace) = here.find('{') else {
            if !here.trim().is_empty() {
                let (first, n) = clicks.text_lines.unwrap_or((line, 0));
                clicks.text_lines = Some((first, n + 1));
            }
            (pos, line) = (line_end, line + 1);
            continue;
        };
        let start = pos + brace;
        let mut stream = serde_json::Deserializer::from_str(&text[start..]).into_iter::<Value>();
        let next = match stream.next() {
            Some(Ok(value)) => {
                let read = from_log_record(&value);
                clicks.log = least(clicks.log, read.log);
                clicks.records.extend(read.clicks);
                clicks.conversions.extend(read.conversions);
                clicks
                    .skipped
                    .extend(read.problems.into_iter().map(|e| (line, e)));
                // On to the line after the one the record ends on.
                let end = start + stream.byte_offset();
                text[end..].find('\n').map_or(text.len(), |i| end + i + 1)
            }
            Some(Err(e)) => {
                clicks.skipped.push((line, format!("not JSON: {e}")));
                if e.is_eof() {
                    text.len()
                } else {
                    // The line it broke on may start the next record.
                    nth_line_start(text, start, e.line())
                }
            }
            None => line_end,
        };
        line += text[pos..next].matches('\n').count() as u64;
        pos = next;
        if line / PROGRESS_LINES > reported {
            reported = line / PROGRESS_LINES;
            eprintln!("read {line} lines");
        }
    }
    clicks
}

/// Where the `n`th line counted from the one `start` is on begins (the first is 1, and is the
/// line after it: a record that broke on its first line is passed over whole).
fn nth_line_start(text: &str, start: usize, n: usize) -> usize {
    text[start..]
        .match_indices('\n')
        .nth(n.saturating_sub(2))
        .map_or(text.len(), |(i, _)| start + i + 1)
}

/// Reads CSV with the `csv` crate: quoted fields may hold commas, quotes and line breaks, so a
/// click may span lines and is named by the line it starts on. As in the log, a row the core
/// cannot read is skipped and named; missing trailing fields read as empty and extra ones are
/// ignored (a warning says how many rows had them: an unquoted comma shifts the columns after it).
fn parse_csv(text: &str) -> Result<Clicks, (u64, String)> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut lines = LineCounter::new(text);
    let mut rows = reader.records().peekable();
    let (header_line, names) = match rows.next() {
        Some(Ok(names)) => (lines.line_of(&names), names),
        Some(Err(e)) => return Err((lines.line_of_error(&e), e.to_string())),
        None => return Err((1, "no header".into())),
    };
    let names_read: Vec<&str> = names.iter().collect();
    let header = csv_header(&names_read).map_err(|e| (header_line, e.to_string()))?;
    let mut clicks = Clicks {
        unread_columns: unread_columns(&names_read)
            .into_iter()
            .map(str::to_owned)
            .collect(),
        ..Clicks::default()
    };
    let (mut reported, mut too_long) = (0, 0);
    while let Some(row) = rows.next() {
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                clicks
                    .skipped
                    .push((lines.line_of_error(&e), e.to_string()));
                continue;
            }
        };
        let line = lines.line_of(&row);
        if line / PROGRESS_LINES > reported {
            reported = line / PROGRESS_LINES;
            eprintln!("read {line} lines");
        }
        // A line of spaces is a blank line, as in the log.
        if row.len() == 1 && row[0].trim().is_empty() {
            continue;
        }
        // The csv crate reads an unclosed quote to the end of the file as one value: the last row
        // then holds an odd number of quotes.
        let start = row.position().map_or(0, |p| p.byte() as usize);
        if rows.peek().is_none() && count_quotes(&text.as_bytes()[start..]) % 2 == 1 {
            clicks.skipped.push((
                line,
                "a quote opened here is never closed (the rest of the file would be one value)"
                    .into(),
            ));
            continue;
        }
        if row.len() > names.len() {
            too_long += 1;
        }
        match from_csv_fields(&row.iter().collect::<Vec<_>>(), &header) {
            Ok(r) => clicks.records.push(r),
            Err(e) => clicks.skipped.push((line, e.into())),
        }
    }
    if too_long > 0 {
        eprintln!(
            "{too_long} rows have more fields than the header's {}; the extra ones were ignored (quote values that hold commas)",
            names.len()
        );
    }
    Ok(clicks)
}

/// Line numbers from the byte offsets the `csv` crate gives: its own line count starts a row where
/// the previous one ended, before any line breaks it skips (one per row in a CRLF file).
struct LineCounter<'a> {
    text: &'a [u8],
    at: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        LineCounter {
            text: text.as_bytes(),
            at: 0,
            line: 1,
        }
    }

    fn line_of(&mut self, row: &csv::StringRecord) -> u64 {
        self.line_at(row.position().map_or(0, csv::Position::byte))
    }

    fn line_of_error(&mut self, e: &csv::Error) -> u64 {
        self.line_at(e.position().map_or(0, csv::Position::byte))
    }

    /// The line of the first byte at or after `byte` that is not a line break. Offsets only grow
    /// while a file is read, so each byte is counted once.
    fn line_at(&mut self, byte: u64) -> u64 {
        let mut start = usize::try_from(byte)
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        while start < self.text.len() && matches!(self.text[start], b'\r' | b'\n') {
            start += 1;
        }
        if start >= self.at {
            let newlines = self.text[self.at..start].iter().filter(|b| **b == b'\n');
            self.line += newlines.count() as u64;
            self.at = start;
        }
        self.line
    }
}

fn count_quotes(bytes: &[u8]) -> usize {
    bytes.iter().filter(|b| **b == b'"').count()
}

/// Replays every click, each after the conversions logged before it, with progress on stderr for
/// long logs, and closes the last minute.
fn feed_all(replay: &mut Replay, records: Vec<Recorded>, conversions: Vec<RecordedConversion>) {
    let total = records.len();
    let mut conversions = conversions.into_iter().peekable();
    for (i, r) in records.into_iter().enumerate() {
        while let Some(c) = conversions.next_if(|c| c.at_ms <= r.at_ms) {
            replay.feed_conversion(&c);
        }
        replay.feed(r);
        if (i as u64 + 1) % PROGRESS_LINES == 0 {
            eprintln!("replayed {} of {total} clicks", i + 1);
        }
    }
    for c in conversions {
        replay.feed_conversion(&c);
    }
    replay.finish();
}

fn print_report(replay: &Replay, compared: bool) {
    let t = &replay.tally;
    let pct = |n: u64, of: u64| {
        if of == 0 {
            0.0
        } else {
            100.0 * n as f64 / of as f64
        }
    };
    println!("clicks replayed: {}", t.clicks);
    if t.previews > 0 {
        println!(
            "link previews (not clicks, counted nowhere): {}",
            t.previews
        );
    }
    println!("\nby verdict:");
    for (verdict, n) in &t.by_verdict {
        println!("  {verdict:<12} {n:>10}  {:>6.2}%", pct(*n, t.clicks));
    }
    if !t.by_reason.is_empty() {
        println!("\nby reason (a click can have several):");
        for (code, n) in &t.by_reason {
            println!("  {code:<20} {n:>10}");
        }
    }
    for (title, map) in [("offer", &t.by_offer), ("affiliate", &t.by_affiliate)] {
        println!("\nby {title} (clicks, not sent to the offer, share):");
        let mut rows: Vec<_> = map.iter().collect();
        rows.sort_by(|a, b| b.1 .1.cmp(&a.1 .1).then(a.0.cmp(b.0)));
        for (id, (clicks, stopped)) in rows.iter().take(25) {
            println!(
                "  {id:<24} {clicks:>10} {stopped:>10}  {:>6.2}%",
                pct(*stopped, *clicks)
            );
        }
        if rows.len() > 25 {
            println!("  ... and {} more", rows.len() - 25);
        }
    }
    if !replay.shares.is_empty() {
        println!("\nshares recomputed from the log's conversions (conversions judged, beyond the bound):");
        for (filter, (judged, beyond)) in &replay.shares {
            println!("  {filter:<20} {judged:>10} {beyond:>10}");
        }
    }
    println!();
    for line in flood_lines(replay) {
        println!("{line}");
    }
    if compared {
        println!(
            "\nclicks decided differently from --against: {}",
            replay.changed
        );
        for c in &replay.changes {
            let r = &c.record;
            println!(
                "  {} offer {} aff {} ip {}: {} {:?} -> {} {:?} (rule {})",
                clickgate_core::time::rfc3339_ms(r.at_ms),
                r.click.offer_id,
                r.click.aff_id,
                r.client
                    .ip
                    .map(|ip| ip.to_string())
                    .unwrap_or_else(|| "-".into()),
                c.before.label,
                c.before.codes,
                c.after.label,
                c.after.codes,
                c.after.rule_id.as_deref().unwrap_or("-"),
            );
        }
        if replay.changed as usize > replay.changes.len() {
            println!(
                "  ... {} more (raise --changes to list them)",
                replay.changed as usize - replay.changes.len()
            );
        }
    }
}

/// The flood section of the report: every trip, then how many networks never tripped.
fn flood_lines(replay: &Replay) -> Vec<String> {
    let mut lines = vec![
        "floods (the config's thresholds; the log's earlier days make the baseline):".to_owned(),
    ];
    let (mut calm, mut would_block) = (0, 0);
    for (network, flood) in &replay.floods {
        if flood.trips.is_empty() {
            calm += 1;
        }
        for trip in &flood.trips {
            let (mode, stopped) = match trip.mode {
                FloodMode::Enforce => ("", "the block would have stopped"),
                FloodMode::ReportOnly => {
                    would_block += trip.stopped;
                    (" (report_only)", "would_block:")
                }
            };
            lines.push(format!(
                "  {network}{mode} tripped at {} ({}: {}); {stopped} {} clicks, {} of them redirected by the rules",
                clickgate_core::time::rfc3339_ms(trip.at_ms),
                trip.cause.as_str(),
                trip.detail,
                trip.stopped,
                trip.stopped_redirects,
            ));
        }
    }
    lines.push(format!("  {calm} networks never tripped"));
    if would_block > 0 {
        lines.push(format!(
            "  {would_block} clicks would_block in networks whose flood mode is report_only (let through)"
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{run_words, scratch};
    use clickgate_core::click::Id;
    use clickgate_core::config::Config;
    use clickgate_core::flood::simulation::{floods, launch, simulate, Traffic, FLOOD_START};
    use clickgate_core::flood::Thresholds;
    use clickgate_core::whatif::Trip;

    #[test]
    fn click_files_are_read_as_log_or_csv_and_sorted_by_time() {
        let log = scratch(
            "clicks.log",
            "{\"event\":\"click\",\"ts\":\"2026-11-22T10:00:05Z\",\"offer_id\":\"1\",\"aff_id\":\"b\"}\n\
             [wrangler:info] GET /c 302\n\
             {\"event\":\"click\",\"ts\":\"2026-11-22T10:00:01Z\",\"offer_id\":\"1\",\"aff_id\":\"a\"}\n\
             {\"event\":\"click\",\"ts\":\"bad\",\"offer_id\":\"1\",\"aff_id\":\"c\"}\n",
        );
        let read = read_clicks(&log).unwrap();
        assert_eq!(read.text_lines, Some((2, 1)));
        assert_eq!(read.log, None, "a log that names no `log` setting is whole");
        assert_eq!(read.skipped.len(), 1, "{:?}", read.skipped);
        assert_eq!(read.skipped[0].0, 4);
        let records = read.records;
        let affs: Vec<&str> = records.iter().map(|r| r.click.aff_id.as_str()).collect();
        assert_eq!(
            affs,
            ["a", "b"],
            "sorted by time, the unparseable line skipped"
        );

        let csv = scratch(
            "clicks.csv",
            "ts,offer_id,aff_id,ip\n2026-11-22T10:00:00Z,1,a,192.0.2.1\n",
        );
        let records = read_clicks(&csv).unwrap().records;
        assert_eq!(records[0].client.ip, "192.0.2.1".parse().ok());

        let empty = scratch("empty.log", "nothing here\n");
        assert!(
            matches!(read_clicks(&empty), Err(Failure::Io(m)) if m.contains("no clicks found"))
        );
        for p in [log, csv, empty] {
            let _ = std::fs::remove_file(p);
        }
    }

    /// A document with one offer, a rule declining bots, and net-7's flood floor scaled to the
    /// simulated traffic below (a tenth of the core simulator's).
    const FLOOD_CONFIG: &str = r#"{"version": 1, "offers": [{"id": "1", "landing_url": "https://x.example/"}],
        "networks": [{"id": "net-7", "flood": {"floor": 60}}],
        "rules": [{"id": "bots", "created_at": "2026-11-01", "scope": {"offers": ["1"]}, "decline": "medium_and_higher",
                   "strategy": {"filters": [{"type": "bot"}]}}]}"#;
    const DAY0: u64 = 1_795_392_000_000; // 2026-11-23T00:00:00Z
    const DAILY: f64 = 5_000.0;

    /// Two days of net-7's clicks as CSV, minute by minute as the core's simulator counts them:
    /// each minute's clicks spread over it, its flagged ones sent by curl (the rule declines them).
    fn traffic_csv(traffic: &Traffic) -> String {
        let mut csv = String::from("ts,offer_id,aff_id,ip,user_agent\n");
        for day in 0..2 {
            for m in 0..1440 {
                let (clicks, flagged, _) = traffic.minute(day, m);
                let start = DAY0 + day * 86_400_000 + m * 60_000;
                for i in 0..clicks {
                    let ua = if i < flagged {
                        "curl/8.4.0"
                    } else {
                        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
                    };
                    let at = start + u64::from(i) * 60_000 / u64::from(clicks);
                    csv.push_str(&format!(
                        "{},1,net-7,198.51.100.{},{ua}\n",
                        clickgate_core::time::rfc3339_ms(at),
                        i % 250
                    ));
                }
            }
        }
        csv
    }

    /// Replays a traffic file as `clickgate replay` does; net-7's trips and the flood report.
    fn replay_floods(name: &str, traffic: &Traffic) -> (Vec<Trip>, Vec<String>) {
        replay_floods_with(FLOOD_CONFIG, name, traffic)
    }

    fn replay_floods_with(
        document: &str,
        name: &str,
        traffic: &Traffic,
    ) -> (Vec<Trip>, Vec<String>) {
        let config_file = scratch(&format!("{name}.json"), document);
        let clicks = scratch(&format!("{name}.csv"), &traffic_csv(traffic));
        let config = validate(&config_file, Use::Replay).unwrap().config;
        let mut replay = Replay::new(&config, None, 0);
        let read = read_clicks(&clicks).unwrap();
        feed_all(&mut replay, read.records, read.conversions);
        for p in [config_file, clicks] {
            let _ = std::fs::remove_file(p);
        }
        (replay.floods["net-7"].trips.clone(), flood_lines(&replay))
    }

    fn thresholds() -> Thresholds {
        let config = Config::compile(FLOOD_CONFIG).unwrap();
        config.flood_thresholds(&Id::parse("net-7").unwrap())
    }

    #[test]
    fn replay_finds_no_flood_in_human_traffic_with_a_ten_fold_launch() {
        let traffic = Traffic {
            daily: DAILY,
            human_cr: 0.0,
            extra: launch(1, 10.0, DAILY, 0.0),
        };
        assert_eq!(simulate(DAY0, 2, &traffic, &thresholds()), [None, None]);
        let (trips, lines) = replay_floods("launch", &traffic);
        assert_eq!(trips, []);
        assert_eq!(
            lines.last().map(String::as_str),
            Some("  1 networks never tripped")
        );
    }

    #[test]
    fn replay_trips_every_flood_shape_at_the_simulators_minute() {
        let t = thresholds();
        // Two hours of each flood on the second day, the first day the baseline.
        for (name, extra) in floods(1, FLOOD_START + 120, DAILY, &[2, 3, 6, 21]) {
            let traffic = Traffic {
                daily: DAILY,
                human_cr: 0.0,
                extra,
            };
            let simulated = simulate(DAY0, 2, &traffic, &t);
            let minute =
                simulated[1].unwrap_or_else(|| panic!("{name}: the simulator never trips"));
            assert_eq!(simulated[0], None, "{name}");
            let (trips, lines) = replay_floods(&name.replace(' ', "-"), &traffic);
            assert_eq!(trips.len(), 1, "{name}: {trips:?}");
            let trip = &trips[0];
            assert_eq!(
                trip.at_ms,
                DAY0 + 86_400_000 + minute * 60_000,
                "{name}: {trip:?}"
            );
            // Every click of the rest of that day comes after the trip's minute.
            let after: u32 = (minute + 1..1440).map(|m| traffic.minute(1, m).0).sum();
            assert_eq!(trip.stopped, u64::from(after), "{name}");
            let unflagged: u32 = (minute + 1..1440)
                .map(|m| {
                    let (c, f, _) = traffic.minute(1, m);
                    c - f
                })
                .sum();
            assert_eq!(trip.stopped_redirects, u64::from(unflagged), "{name}");
            assert!(
                lines[1].starts_with(&format!(
                    "  net-7 tripped at {} ({}:",
                    clickgate_core::time::rfc3339_ms(trip.at_ms),
                    trip.cause.as_str()
                )),
                "{lines:?}"
            );
            assert!(lines[1].ends_with(&format!(
                "the block would have stopped {after} clicks, {unflagged} of them redirected by the rules"
            )));
        }
    }

    #[test]
    fn replay_counts_the_clicks_a_report_only_network_would_have_blocked() {
        let document =
            FLOOD_CONFIG.replace(r#""floor": 60"#, r#""floor": 60, "mode": "report_only""#);
        assert_ne!(document, FLOOD_CONFIG);
        let (name, extra) = floods(1, FLOOD_START + 120, DAILY, &[])
            .into_iter()
            .next()
            .unwrap();
        let traffic = Traffic {
            daily: DAILY,
            human_cr: 0.0,
            extra,
        };
        let (enforced, _) = replay_floods(&format!("{name}-enforce").replace(' ', "-"), &traffic);
        let (trips, lines) = replay_floods_with(
            &document,
            &format!("{name}-report").replace(' ', "-"),
            &traffic,
        );
        // The same trip at the same minute, its clicks let through and counted.
        assert_eq!(trips.len(), 1, "{trips:?}");
        assert_eq!(
            (trips[0].at_ms, trips[0].stopped),
            (enforced[0].at_ms, enforced[0].stopped)
        );
        assert_eq!(trips[0].mode, FloodMode::ReportOnly);
        assert!(
            lines[1].starts_with("  net-7 (report_only) tripped at "),
            "{lines:?}"
        );
        assert!(
            lines[1].contains(&format!("; would_block: {} clicks,", trips[0].stopped)),
            "{lines:?}"
        );
        assert_eq!(
            lines.last(),
            Some(&format!(
                "  {} clicks would_block in networks whose flood mode is report_only (let through)",
                trips[0].stopped
            ))
        );
    }

    #[test]
    fn a_log_written_under_a_sample_is_named_with_its_smallest_share() {
        let line = |ts: &str, log: &str| {
            format!("{{\"event\":\"click\",\"ts\":\"2026-11-22T10:00:0{ts}Z\",\"offer_id\":\"1\",\"aff_id\":\"a\"{log}}}\n")
        };
        let log = scratch(
            "sampled.log",
            &[
                line("1", r#","log":{"sample":0.1}"#),
                line("2", ""),
                line("3", r#","log":{"sample":0.01}"#),
            ]
            .concat(),
        );
        let read = read_clicks(&log).unwrap();
        assert_eq!(
            (read.records.len(), read.log),
            (3, Some(LogClean::Sample(0.01)))
        );
        let _ = std::fs::remove_file(log);
    }

    #[test]
    fn replay_runs_from_the_command_line() {
        let config = scratch("replay-config.json", FLOOD_CONFIG);
        let clicks = scratch(
            "replay-clicks.csv",
            "ts,offer_id,aff_id,user_agent\n2026-11-23T10:00:00Z,1,net-7,curl/8\n2026-11-23T10:00:01Z,1,net-7,Mozilla/5.0\n",
        );
        let (c, k) = (config.to_str().unwrap(), clicks.to_str().unwrap());
        assert!(matches!(
            run_words(&["replay", "--config", c, "--clicks", k]),
            Ok(())
        ));
        assert!(matches!(
            run_words(&["replay", "--clicks", k]),
            Err(Failure::Args(e)) if e.to_string().contains("--config")
        ));
        for p in [config, clicks] {
            let _ = std::fs::remove_file(p);
        }
    }

    fn csv(text: &str) -> Clicks {
        parse_clicks(text).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn ua(r: &Recorded) -> &str {
        r.client.user_agent.as_ref().map_or("", |u| u.as_str())
    }

    #[test]
    fn csv_fields_may_quote_commas_quotes_and_line_breaks() {
        let c = csv(concat!(
            "ts,offer_id,aff_id,user_agent,ip\n",
            "2026-11-22T10:00:00Z,1,a,\"Mozilla/5.0 (KHTML, like Gecko) \"\"quoted\"\"\",192.0.2.1\n",
            "2026-11-22T10:00:01Z,1,b,\"two\nlines\",192.0.2.2\n",
            "2026-11-22T10:00:02Z,1,c,plain,192.0.2.3\n",
        ));
        assert_eq!(c.skipped, []);
        let uas: Vec<&str> = c.records.iter().map(ua).collect();
        assert_eq!(
            uas,
            [
                "Mozilla/5.0 (KHTML, like Gecko) \"quoted\"",
                "two\nlines",
                "plain"
            ]
        );
        assert_eq!(c.records[2].client.ip, "192.0.2.3".parse().ok());
    }

    #[test]
    fn csv_columns_may_come_in_any_order() {
        let c = csv(
            "ip,aff_id,user_agent,ts,offer_id\n192.0.2.9,net-7,curl/8,2026-11-22T10:00:00Z,1001\n",
        );
        let r = &c.records[0];
        assert_eq!(
            (r.click.offer_id.as_str(), r.click.aff_id.as_str(), ua(r)),
            ("1001", "net-7", "curl/8")
        );
        assert_eq!(r.client.ip, "192.0.2.9".parse().ok());
    }

    #[test]
    fn a_malformed_csv_row_is_skipped_with_the_line_it_starts_on() {
        // Line 3 holds a value over two lines, so the bad row is on line 5; CRLF line ends and a
        // blank line must not shift the count.
        let c = csv(concat!(
            "ts,offer_id,aff_id,user_agent\r\n",
            "2026-11-22T10:00:00Z,1,a,x\r\n",
            "2026-11-22T10:00:01Z,1,b,\"one\r\ntwo\"\r\n",
            "not-a-time,1,c,x\r\n",
            "\r\n",
            "2026-11-22T10:00:03Z,1,,x\r\n",
            "2026-11-22T10:00:04Z,1,e,x\r\n",
        ));
        let affs: Vec<&str> = c.records.iter().map(|r| r.click.aff_id.as_str()).collect();
        assert_eq!(affs, ["a", "b", "e"]);
        let lines: Vec<u64> = c.skipped.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [5, 7], "{:?}", c.skipped);
        assert!(
            c.skipped[0]
                .1
                .starts_with("`not-a-time` is not a time (RFC 3339"),
            "{:?}",
            c.skipped
        );
        assert_eq!(c.skipped[1].1, "no aff_id");
    }

    #[test]
    fn an_unclosed_quote_is_named_not_read_to_the_end_of_the_file() {
        let c = csv(concat!(
            "ts,offer_id,aff_id,user_agent\n",
            "2026-11-22T10:00:00Z,1,a,x\n",
            "2026-11-22T10:00:01Z,1,b,\"open\n",
            "2026-11-22T10:00:02Z,1,c,x\n",
        ));
        assert_eq!(c.records.len(), 1);
        assert_eq!(c.skipped.len(), 1);
        assert_eq!(c.skipped[0].0, 3);
        assert!(c.skipped[0].1.contains("never closed"), "{:?}", c.skipped);
    }

    #[test]
    fn short_csv_rows_read_their_missing_fields_as_empty() {
        let c = csv("ts,offer_id,aff_id,ip\n2026-11-22T10:00:00Z,1,a\n   \n2026-11-22T10:00:01Z,1,b,192.0.2.1,extra\n");
        assert_eq!(c.skipped, []);
        assert_eq!(c.records.len(), 2);
        assert_eq!(c.records[0].client.ip, None);
        assert_eq!(c.records[1].client.ip, "192.0.2.1".parse().ok());
    }

    #[test]
    fn a_csv_header_without_a_clicks_columns_is_an_error_on_its_line() {
        let e = parse_clicks("\n\nts,offer_ids,aff_id,colour\n2026-11-22T10:00:00Z,1,a,red\n")
            .err()
            .unwrap();
        assert_eq!(e.0, 3);
        assert!(
            e.1.starts_with(
                "the header has no `offer_id` column (it names: ts, offer_ids, aff_id, colour;"
            ),
            "{e:?}"
        );
        let e = parse_clicks("offer_id,aff_id\n1,a\n").err().unwrap();
        assert_eq!(e.0, 1);
        assert!(e.1.starts_with("the header has no `ts` column"), "{e:?}");
    }

    /// `wrangler tail --format json` as wrangler 4 prints it: each record indented over many
    /// lines, one after another, the Worker's line inside `logs[].message[]`.
    const WRANGLER_TAIL: &str = include_str!("../tests/fixtures/wrangler-tail.json");

    #[test]
    fn replay_read_no_clicks_from_wrangler_tail_json_as_printed() {
        let read = parse_records(WRANGLER_TAIL);
        assert_eq!(
            read.skipped,
            [],
            "every record is JSON and every click is readable"
        );
        assert_eq!(read.text_lines, None);
        let clicks: Vec<(&str, Option<&str>)> = read
            .records
            .iter()
            .map(|r| (r.click.aff_id.as_str(), r.click.subs[0].as_deref()))
            .collect();
        assert_eq!(
            clicks,
            [
                ("net-7", Some("spring")),
                ("net-7", None),
                ("net-9", Some("été"))
            ]
        );
        assert_eq!(read.records[1].client.ip, "198.51.100.7".parse().ok());
        assert_eq!(read.records[2].at_ms, 1_795_435_449_877);

        let config = scratch("tail-config.json", FLOOD_CONFIG);
        let log = scratch("tail.json", WRANGLER_TAIL);
        let (c, k) = (config.to_str().unwrap(), log.to_str().unwrap());
        assert!(matches!(
            run_words(&["replay", "--config", c, "--clicks", k]),
            Ok(())
        ));
        for p in [config, log] {
            let _ = std::fs::remove_file(p);
        }
    }

    #[test]
    fn a_tail_record_cut_short_is_dropped_whole_on_the_line_it_starts() {
        // The second record loses its end (wrangler stopped mid-print) and a third follows: its
        // inner objects must not be read as records, the third still is.
        let mut records = WRANGLER_TAIL.split_inclusive("}\n{").map(str::to_owned);
        let first = records.next().unwrap();
        let second = records.next().unwrap();
        let cut = &second[..second.find("\"logs\"").unwrap()];
        let rest: String = records.collect();
        let first = first.trim_end_matches('{');
        let text = format!("{first}{{{}\n{{{rest}", cut.trim_end());
        let read = parse_records(&text);
        let second_line = first.matches('\n').count() as u64 + 1;
        assert!(text.lines().nth(second_line as usize - 1) == Some("{"));
        assert_eq!(read.skipped.len(), 1, "{:?}", read.skipped);
        assert_eq!(read.skipped[0].0, second_line);
        assert!(
            read.skipped[0].1.starts_with("not JSON"),
            "{:?}",
            read.skipped
        );
        assert_eq!(
            read.records.len(),
            3,
            "the first record's click and the last two's"
        );

        // Cut off at the end of the file: the record is dropped, the others read.
        let truncated = &WRANGLER_TAIL[..WRANGLER_TAIL.len() - 40];
        let read = parse_records(truncated);
        assert_eq!(read.records.len(), 2);
        assert_eq!(read.skipped.len(), 1, "{:?}", read.skipped);
    }

    #[test]
    fn ndjson_exports_of_workers_logs_and_logpush_replay() {
        let line = r#"{"event":"click","ts":"2026-11-23T12:04:05.123Z","verdict":"redirect","offer_id":"1001","aff_id":"net-7","ip":"203.0.113.24","user_agent":"curl/8.4.0"}"#;
        let logpush = serde_json::json!({
            "EventTimestampMs": 1_795_435_445_123u64, "EventType": "fetch", "Outcome": "ok",
            "ScriptName": "clickgate", "Exceptions": [],
            "Logs": [{"Level": "log", "Message": [line], "TimestampMs": 1_795_435_445_123u64}]
        });
        let workers_logs = serde_json::json!({
            "source": serde_json::from_str::<Value>(&line.replace("net-7", "net-8")).unwrap(),
            "$workers": {"scriptName": "clickgate", "outcome": "ok", "eventType": "fetch"},
            "$metadata": {"message": line.replace("net-7", "net-8")},
            "timestamp": 1_795_435_445_200u64
        });
        let text = format!("{logpush}\n{workers_logs}\n");
        let read = parse_records(&text);
        assert_eq!(read.skipped, []);
        let affs: Vec<&str> = read
            .records
            .iter()
            .map(|r| r.click.aff_id.as_str())
            .collect();
        assert_eq!(affs, ["net-7", "net-8"]);
    }

    #[test]
    fn csv_with_an_exports_extra_columns_is_read_and_the_columns_named() {
        let c = csv(concat!(
            "ScriptName,ts,offer_id,Outcome,aff_id,ip,colo\n",
            "clickgate,2026-11-23T12:04:05Z,1001,ok,net-7,192.0.2.1,FRA\n",
        ));
        assert_eq!(c.skipped, []);
        assert_eq!(c.unread_columns, ["ScriptName", "Outcome", "colo"]);
        assert_eq!(c.records[0].click.aff_id.as_str(), "net-7");
        assert_eq!(c.records[0].client.ip, "192.0.2.1".parse().ok());
    }

    #[test]
    fn times_with_offsets_spaces_and_unix_numbers_replay_as_the_same_instant() {
        let c = csv(concat!(
            "ts,offer_id,aff_id\n",
            "2026-11-23T12:04:05.123+00:00,1,a\n",
            "2026-11-23 12:04:05.123,1,b\n",
            "2026-11-23T13:04:05.123+01:00,1,c\n",
            "1795435445123,1,d\n",
            "1795435445.123,1,e\n",
            "2026-11-23 12:04:05.123 UTC,1,f\n",
        ));
        assert_eq!(c.skipped, []);
        let times: Vec<u64> = c.records.iter().map(|r| r.at_ms).collect();
        assert_eq!(times, [1_795_435_445_123; 6]);
    }

    #[test]
    fn a_replay_that_dropped_lines_says_so_and_fails_unless_allowed() {
        let config = scratch("dropped-config.json", FLOOD_CONFIG);
        let clicks = scratch(
            "dropped.csv",
            "ts,offer_id,aff_id\n2026-11-23T10:00:00Z,1,net-7\nyesterday,1,net-7\n",
        );
        let (c, k) = (config.to_str().unwrap(), clicks.to_str().unwrap());
        match run_words(&["replay", "--config", c, "--clicks", k]) {
            Err(Failure::Io(m)) => {
                assert!(m.contains("1 lines could not be read"), "{m}");
                assert!(m.contains("--allow-dropped"), "{m}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            run_words(&["replay", "--config", c, "--clicks", k, "--allow-dropped"]),
            Ok(())
        ));
        for p in [config, clicks] {
            let _ = std::fs::remove_file(p);
        }
    }

    #[test]
    fn replay_recomputes_a_click_spam_share_from_the_logs_conversions() {
        let config_file = scratch(
            "spam.json",
            r#"{"version": 1, "offers": [{"id": "1", "landing_url": "https://x.example/"}],
                "rules": [{"id": "spam", "created_at": "2026-11-01", "scope": {"offers": ["1"]}, "level": "both",
                           "strategy": {"filters": [{"type": "click_spam", "seconds": 7200, "percent": 50, "min": 2}]}}]}"#,
        );
        let conversion = |ts: &str, clicked: &str, reasons: &str| {
            format!(
                "{{\"event\":\"conversion\",\"ts\":\"{ts}\",\"status\":\"approved\",\"offer_id\":\"1\",\
                 \"aff_id\":\"a\",\"click_ts\":\"{clicked}\",\"reasons\":[{reasons}]}}\n"
            )
        };
        let click = |ts: &str| {
            format!("{{\"event\":\"click\",\"ts\":\"{ts}\",\"offer_id\":\"1\",\"aff_id\":\"a\"}}\n")
        };
        // A click before any conversion, two conversions three hours after their clicks (one
        // repeated as a duplicate, which counts once), then a click the share now declines.
        let log = click("2026-11-22T10:00:00Z")
            + &conversion("2026-11-22T10:00:01Z", "2026-11-22T07:00:00Z", "")
            + &conversion("2026-11-22T10:00:02Z", "2026-11-22T07:00:00Z", "")
            + &conversion(
                "2026-11-22T10:00:03Z",
                "2026-11-22T07:00:00Z",
                r#"{"code":"duplicate_conversion","detail":"x"}"#,
            )
            + &click("2026-11-22T10:00:04Z");
        let clicks = scratch("spam.log", &log);
        let config = validate(&config_file, Use::Replay).unwrap().config;
        let mut replay = Replay::new(&config, None, 0);
        let read = read_clicks(&clicks).unwrap();
        assert_eq!((read.records.len(), read.conversions.len()), (2, 3));
        feed_all(&mut replay, read.records, read.conversions);
        for p in [config_file, clicks] {
            let _ = std::fs::remove_file(p);
        }
        // Judged: 1 of 1 (short of the minimum), 2 of 2, and the duplicate read at 2 of 2.
        assert_eq!(replay.shares["click_spam"], (3, 2));
        assert_eq!(replay.tally.by_reason.get("click_spam"), Some(&1));
        assert_eq!(replay.tally.clicks, 2);
    }
}
