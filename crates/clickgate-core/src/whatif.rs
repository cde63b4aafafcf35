//! Replaying recorded clicks through a config: what it would have done, and which clicks a new config
//! would decide differently from the old one.
//!
//! Clicks come from the Worker's own decision log (its JSON lines as printed, or wrapped in the
//! records of `wrangler tail --format json`, Workers Logs or Logpush) or from CSV with a header
//! naming the columns. The duplicate-IP and sub-ID counts the filters need are recomputed from the
//! clicks themselves, in time order, so a replay needs nothing but the file.
//!
//! Each network's clicks also go through its flood detector ([`crate::flood`]) with the config's
//! thresholds, minute by minute, the log's earlier days making its baseline: where it would have
//! tripped and how many clicks the block would have stopped. The log's conversion lines feed the
//! share filters of conversions (`click_spam`, `low_session_time`) in time order with the clicks,
//! so their shares are recomputed as the networks' objects would hold them, and a rule that judges
//! clicks on them reads them; they do not feed the flood detector, so no conversions are ever due
//! and a network's clicks are held to twice the tolerance by volume alone, never short of them.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::click::{
    ClickParams, ClientInfo, Id, Platform, Sent, AFF_ID, DEVICE_ID, OFFER_ID, SOURCE_ID, SUB_IDS,
};
use crate::config::Config;
use crate::decide::{decide, ClickOutcome, Observed};
use crate::fault::Invalid;
use crate::filters::share::ShareSeen;
use crate::flood::{Event, FloodCause, FloodMode, FloodState, Outcome, Thresholds};
use crate::ip::client_ip;
use crate::log::LogClean;
use crate::network::keys::ClickKeys;
use crate::network::store::NetworkCounts;
use crate::rules::Counters;
use crate::time::{parse_recorded_instant, HOUR_MS, MINUTE_MS};
use crate::token::TokenKey;
use crate::ua::UserAgent;
use crate::verdict::{self, Decision};

/// One recorded click: the inputs of a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub at_ms: u64,
    pub click: ClickParams,
    pub client: ClientInfo,
    /// The link profile the click came in by, as the decision line names it (absent where the
    /// document declares no `links`).
    pub profile: Option<String>,
}

/// What one line of a decision log holds: its clicks, and why each part of it that should have
/// been one could not be read.
#[derive(Debug, Default, PartialEq)]
pub struct LogLine {
    pub clicks: Vec<Recorded>,
    pub conversions: Vec<RecordedConversion>,
    pub problems: Vec<String>,
    /// The config's `log`, where a line names one: its allowed clean clicks are then a sample, or
    /// absent (see [`sampled_note`]).
    pub log: Option<LogClean>,
}

/// One recorded conversion, as its log line gives it: what the share filters count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedConversion {
    pub at_ms: u64,
    pub offer: Id,
    pub network: Id,
    pub(crate) click_to_conversion_ms: u64,
    /// Judged and not a duplicate: what the edge counted toward the shares.
    pub(crate) counted: bool,
}

impl RecordedConversion {
    /// A `conversion` log line's fields; `None` for a line without its click's time or ids.
    fn read(value: &Value) -> Result<RecordedConversion, String> {
        let text = |k: &str| value[k].as_str().ok_or(format!("conversion without {k}"));
        let at_ms = parse_recorded_instant(text("ts")?)?;
        let clicked_ms = parse_recorded_instant(text("click_ts")?)?;
        let id = |k: &str| Id::parse(text(k)?).map_err(|e| format!("{k}: {e}"));
        let duplicate = value["reasons"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["code"] == "duplicate_conversion");
        Ok(RecordedConversion {
            at_ms,
            offer: id("offer_id")?,
            network: id("aff_id")?,
            click_to_conversion_ms: at_ms.saturating_sub(clicked_ms),
            counted: value["status"] != "not_judged" && !duplicate,
        })
    }
}

/// Reads every click in a decision-log line; other events and lines without JSON give none. A
/// `wrangler tail` record holds many messages: one that cannot be read costs only itself.
pub(crate) fn from_log_line(line: &str) -> LogLine {
    let Some(start) = line.find('{') else {
        return LogLine::default();
    };
    match serde_json::from_str(&line[start..]) {
        Ok(value) => from_log_record(&value),
        Err(e) => LogLine {
            clicks: Vec::new(),
            problems: vec![format!("not JSON: {e}")],
            ..LogLine::default()
        },
    }
}

/// Reads every click in one JSON record: the Worker's own line, or a record of the places
/// Cloudflare carries it: `wrangler tail --format json` (`logs[].message[]`), a Logpush Workers
/// Trace Events export (`Logs[].Message[]`) and a Workers Logs export (the line's fields under
/// `source`). A message is the line as a string, or the object itself where an export parsed it.
pub fn from_log_record(value: &Value) -> LogLine {
    let mut out = LogLine::default();
    let wrapped = ["logs", "Logs"]
        .iter()
        .filter_map(|k| value[*k].as_array())
        .flatten()
        .flat_map(|l| {
            ["message", "Message"]
                .iter()
                .filter_map(|k| l[*k].as_array())
                .flatten()
        });
    let mut is_wrapper = value["logs"].is_array() || value["Logs"].is_array();
    for message in wrapped {
        let inner = match message {
            Value::String(text) => from_log_line(text),
            Value::Object(_) => from_log_record(message),
            _ => continue,
        };
        out.clicks.extend(inner.clicks);
        out.conversions.extend(inner.conversions);
        out.problems.extend(inner.problems);
        out.log = least(out.log, inner.log);
    }
    if value["source"].is_object() {
        is_wrapper = true;
        let inner = from_log_record(&value["source"]);
        out.clicks.extend(inner.clicks);
        out.conversions.extend(inner.conversions);
        out.problems.extend(inner.problems);
        out.log = least(out.log, inner.log);
    }
    if is_wrapper {
        return out;
    }
    if value["event"] == "conversion" {
        match RecordedConversion::read(value) {
            Ok(c) => out.conversions.push(c),
            Err(problem) => out.problems.push(problem),
        }
        return out;
    }
    if value["event"] != "click" {
        return out;
    }
    out.log = match &value["log"] {
        Value::String(s) if s == "none" => Some(LogClean::None),
        v => v["sample"].as_f64().map(LogClean::Sample),
    };
    let field = |k: &str| match &value[k] {
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        v => v.as_str().map(str::to_owned),
    };
    // What the spoof filter read, where the config that wrote the line had the filter.
    let sent = value["sent"]
        .as_object()
        .map(|sent| Box::new(Sent::from_fields(|k| sent.get(k).and_then(Value::as_str))));
    // The platform's bot signals, where the zone that logged the line had them.
    let platform = value["platform"].as_object().map(|p| {
        Box::new(Platform {
            score: p
                .get("bot_score")
                .and_then(Value::as_u64)
                .and_then(|s| u8::try_from(s).ok()),
            verified_bot: p.get("verified_bot").and_then(Value::as_bool) == Some(true),
            static_resource: p.get("static_resource").and_then(Value::as_bool) == Some(true),
            as_organization: p
                .get("as_organization")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    });
    match record(|k| field(k), sent).map(|mut r| {
        r.client.platform = platform;
        r
    }) {
        Ok(click) => out.clicks.push(click),
        Err(problem) => out.problems.push(problem),
    }
    out
}

/// Of two settings lines name, the one that logged the fewest clean clicks.
pub fn least(a: Option<LogClean>, b: Option<LogClean>) -> Option<LogClean> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.rate() < a.rate() { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// What a replay of a log written under a `log` other than `"all"` can and cannot say: every
/// decision but an allowed clean click is in it whole, so blocked, declined and would-block clicks
/// and their reasons replay as they were; the allowed clean clicks are a sample (or absent), so
/// counts of allowed clicks, shares of the total, and the counts that duplicate-IP, sub-ID and
/// flood filters rebuild from the clicks are low by that share.
pub fn sampled_note(log: LogClean) -> String {
    let kept = match log {
        LogClean::All => return String::new(),
        LogClean::None => "none of its allowed clean clicks (\"log\": \"none\")".to_owned(),
        LogClean::Sample(rate) => format!(
            "a sample of its allowed clean clicks, {}% of them (\"log\": {{\"sample\": {rate}}})",
            rate * 100.0
        ),
    };
    format!(
        "this log holds {kept}: blocked, declined, would-block, allowlisted, preview and fault \
         decisions are whole and replay as they were, but allowed clicks, the shares of the total, \
         and the duplicate-IP, sub-ID and flood counts rebuilt from the clicks are low by the \
         clicks left out; read a verdict that changed on them as one sampled click, not a count"
    )
}

/// The CSV columns a click file may have; `offer_id`, `aff_id` and `ts` are required.
pub(crate) const CSV_COLUMNS: [&str; 15] = [
    "ts",
    "ip",
    "user_agent",
    "referer",
    OFFER_ID,
    AFF_ID,
    SOURCE_ID,
    SUB_IDS[0],
    SUB_IDS[1],
    SUB_IDS[2],
    SUB_IDS[3],
    SUB_IDS[4],
    DEVICE_ID,
    "country",
    "asn",
];

/// A CSV header's fields (as the CLI's CSV reader splits them) into the column positions of
/// [`CSV_COLUMNS`]. Other columns are left unread: exports carry many more than a click's
/// ([`unread_columns`] names them).
pub fn csv_header(names: &[&str]) -> Result<Vec<Option<usize>>, MissingColumn> {
    let positions: Vec<Option<usize>> = CSV_COLUMNS
        .iter()
        .map(|c| names.iter().position(|n| n.trim() == *c))
        .collect();
    for required in ["ts", OFFER_ID, AFF_ID] {
        if positions[CSV_COLUMNS.iter().position(|c| *c == required).unwrap_or(0)].is_none() {
            return Err(MissingColumn {
                column: required,
                names: names.iter().map(|n| (*n).to_owned()).collect(),
            });
        }
    }
    Ok(positions)
}

/// Why a CSV header was not read: it has no `column`, one a click needs (`ts`, `offer_id` or
/// `aff_id`); `names` are the columns it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingColumn {
    pub(crate) column: &'static str,
    pub names: Vec<String>,
}

impl std::fmt::Display for MissingColumn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the header has no `{}` column (it names: {}; a click's are: {})",
            self.column,
            self.names.join(", "),
            CSV_COLUMNS.join(", ")
        )
    }
}

impl std::error::Error for MissingColumn {}

/// The header's columns that are no click's, which [`csv_header`] leaves unread.
pub fn unread_columns<'a>(names: &[&'a str]) -> Vec<&'a str> {
    names
        .iter()
        .filter(|n| !CSV_COLUMNS.contains(&n.trim()))
        .copied()
        .collect()
}

/// One CSV row's fields, placed by [`csv_header`]'s positions; a row that does not read is the
/// operator's file's problem.
pub fn from_csv_fields(cells: &[&str], header: &[Option<usize>]) -> Result<Recorded, Invalid> {
    let get = |k: &str| {
        let col = CSV_COLUMNS.iter().position(|c| *c == k)?;
        header[col]
            .and_then(|i| cells.get(i))
            .filter(|s| !s.is_empty())
            .map(|s| (*s).to_owned())
    };
    record(get, None).map_err(Invalid::operator)
}

/// A click from its fields; `sent` is what the spoof filter read, where the record carries it.
fn record(
    get: impl Fn(&str) -> Option<String>,
    sent: Option<Box<Sent>>,
) -> Result<Recorded, String> {
    let id = |k: &str| -> Result<Id, String> {
        let v = get(k).ok_or_else(|| format!("no {k}"))?;
        Id::parse(&v).map_err(|p| format!("{k} {p}"))
    };
    let ts = get("ts").ok_or("no ts")?;
    let at_ms = parse_recorded_instant(&ts)?;
    let click = ClickParams {
        offer_id: id(OFFER_ID)?,
        aff_id: id(AFF_ID)?,
        source_id: get(SOURCE_ID),
        subs: SUB_IDS.map(&get),
        device_id: get(DEVICE_ID),
        link: Default::default(),
    };
    // As the edge reads the header: a value that is no address is unreadable, not absent.
    let (ip, unreadable) = match client_ip(get("ip").as_deref()) {
        Ok(ip) => (ip, false),
        Err(_) => (None, true),
    };
    let client = ClientInfo {
        ip,
        ip_unreadable: unreadable || get("ip_unreadable").as_deref() == Some("true"),
        user_agent: get("user_agent").map(UserAgent::parse),
        referer: get("referer"),
        country: get("country"),
        asn: get("asn").and_then(|a| a.trim_start_matches("AS").parse().ok()),
        sent,
        platform: None,
    };
    Ok(Recorded {
        at_ms,
        click,
        client,
        profile: get("profile"),
    })
}

/// Duplicate-IP and distinct-sub-ID counts, recomputed over clicks fed in time order with the
/// same arithmetic as the networks' objects (see [`crate::network::store`]): what the edge converges to
/// once every isolate has flushed.
#[derive(Debug, Default)]
pub(crate) struct Counting {
    networks: HashMap<Id, NetworkCounts>,
}

impl Counting {
    /// Counts this click under `config`'s deciding rule; `None` when that rule reads no counts.
    pub(crate) fn observe(&mut self, config: &Config, r: &Recorded) -> Option<Counters> {
        let keys = ClickKeys::of(config, &r.click, &r.client, r.at_ms)?;
        let network = self.networks.entry(keys.network.clone()).or_default();
        let mut counters = network.count(&keys);
        let across = keys.needs.device_window_hours[0];
        if let (Some(window), Some(device), Some(ledger)) = (across, keys.device, &keys.ledger) {
            let ledger = self.networks.entry(ledger.clone()).or_default();
            let n = ledger.count_clicks(&keys.offer, device, keys.hour, keys.adds, window);
            counters.device_clicks[0] = Some(n);
        }
        Some(counters)
    }

    /// Counts a conversion toward the shares of `config`'s rule for its conversions, and answers
    /// each share with its tally, this conversion included.
    pub(crate) fn observe_conversion(
        &mut self,
        config: &Config,
        c: &RecordedConversion,
    ) -> Vec<ShareSeen> {
        let Some(rule) = config.conversion_rule(&c.offer, &c.network) else {
            return Vec::new();
        };
        let network = self.networks.entry(c.network.clone()).or_default();
        let hour = (c.at_ms / HOUR_MS) as u32;
        let mut seen = Vec::new();
        for f in &rule.filters {
            let Some((measure, bound)) = f.kind.share() else {
                continue;
            };
            let Some(hit) = measure.conversion_hit(c.click_to_conversion_ms) else {
                continue;
            };
            let hit = c.counted.then_some(hit);
            let tally = network.count_share(&c.offer, measure, hour, hit, bound.window_hours);
            seen.push(ShareSeen {
                filter: f.kind.name(),
                measure,
                bound,
                tally,
            });
        }
        seen
    }
}

/// What a config did with one click, reduced to what the report compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub label: verdict::Verdict,
    pub codes: Vec<&'static str>,
    pub rule_id: Option<String>,
}

impl Summary {
    fn of(outcome: &Result<ClickOutcome, String>) -> Summary {
        match outcome {
            Err(_) => Summary {
                label: verdict::Verdict::Refused,
                codes: Vec::new(),
                rule_id: None,
            },
            Ok(o) => {
                let a = o.assessment.as_ref();
                let codes: Vec<&'static str> =
                    o.reasons().iter().map(|r| r.code.as_str()).collect();
                let label = match (&o.decision, a) {
                    (Decision::Block { .. }, _) => verdict::Verdict::Block,
                    (_, Some(a)) if a.declined && a.monitor => verdict::Verdict::WouldBlock,
                    (_, Some(a)) if a.declined => verdict::Verdict::Fallback,
                    _ => verdict::Verdict::Redirect,
                };
                let rule_id = o.rule_id().map(str::to_owned);
                Summary {
                    label,
                    codes,
                    rule_id,
                }
            }
        }
    }
}

/// Counts by verdict, reason, offer and affiliate. Link previews are nobody's click: as in the
/// live report, they are counted apart and in none of the click counts.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Totals {
    pub clicks: u64,
    pub previews: u64,
    pub by_verdict: BTreeMap<&'static str, u64>,
    pub by_reason: BTreeMap<&'static str, u64>,
    /// (clicks, not redirected to the offer) per offer and per affiliate.
    pub by_offer: BTreeMap<String, (u64, u64)>,
    pub by_affiliate: BTreeMap<String, (u64, u64)>,
}

impl Totals {
    fn add(&mut self, r: &Recorded, v: &Summary) {
        if r.client.is_preview() {
            self.previews += 1;
            return;
        }
        self.clicks += 1;
        *self.by_verdict.entry(v.label.as_str()).or_default() += 1;
        for code in &v.codes {
            *self.by_reason.entry(code).or_default() += 1;
        }
        let stopped = u64::from(v.label != verdict::Verdict::Redirect);
        for (map, key) in [
            (&mut self.by_offer, r.click.offer_id.as_str()),
            (&mut self.by_affiliate, r.click.aff_id.as_str()),
        ] {
            let e = map.entry(key.to_owned()).or_default();
            e.0 += 1;
            e.1 += stopped;
        }
    }
}

/// A click the two configs decide differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub record: Recorded,
    pub before: Summary,
    pub after: Summary,
}

/// Where a network's flood detector tripped during a replay, and what its block would have done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trip {
    /// The start of the minute whose clicks tripped it.
    pub at_ms: u64,
    pub cause: FloodCause,
    pub detail: String,
    /// The network's clicks after that minute, until the block ends at 00:00 UTC.
    pub stopped: u64,
    /// Of those, the ones the rules redirected to the offer.
    pub stopped_redirects: u64,
    /// The network's flood mode: in `report_only` the clicks were let through, `would_block`.
    pub mode: FloodMode,
}

/// One network's flood day as a replay rebuilds it from the clicks.
#[derive(Debug)]
pub struct FloodReplay {
    state: FloodState,
    thresholds: Thresholds,
    /// The minute being counted, as the edge's batches would carry it: (minute, clicks, flagged).
    pending: Option<(u64, u32, u32)>,
    pub trips: Vec<Trip>,
}

impl FloodReplay {
    fn new(thresholds: Thresholds, at_ms: u64) -> FloodReplay {
        FloodReplay {
            state: FloodState::new(at_ms),
            thresholds,
            pending: None,
            trips: Vec::new(),
        }
    }

    /// Counts one click, in time order; a click of a new minute first closes the last one.
    fn count(&mut self, at_ms: u64, flagged: bool, redirected: bool) {
        let minute = at_ms / MINUTE_MS;
        if self.pending.is_some_and(|(m, _, _)| m != minute) {
            self.close_minute();
        }
        let blocked = self
            .state
            .blocked_until_ms()
            .is_some_and(|until| at_ms < until);
        if let Some(trip) = self.trips.last_mut().filter(|_| blocked) {
            trip.stopped += 1;
            trip.stopped_redirects += u64::from(redirected);
        }
        let (_, clicks, flags) = self.pending.get_or_insert((minute, 0, 0));
        *clicks += 1;
        *flags += u32::from(flagged);
    }

    /// Steps the detector with the pending minute's counts, at the start of that minute (as the
    /// simulator in [`crate::flood::simulation`] does).
    fn close_minute(&mut self) {
        let Some((minute, clicks, flagged)) = self.pending.take() else {
            return;
        };
        let event = Event::Clicks {
            minute,
            clicks,
            flagged,
        };
        if let Outcome::Tripped(b) = self.state.step(event, &self.thresholds, minute * MINUTE_MS) {
            self.trips.push(Trip {
                at_ms: b.since_ms,
                cause: b.cause,
                detail: b.detail,
                stopped: 0,
                stopped_redirects: 0,
                mode: self.thresholds.mode,
            });
        }
    }
}

/// Replays clicks, fed in time order, through `config` and optionally `against` an older one.
pub struct Replay<'a> {
    config: &'a Config,
    against: Option<&'a Config>,
    key: TokenKey,
    // One per config: the two may read the sub ID from different parameters.
    counting: Counting,
    counting_against: Counting,
    pub tally: Totals,
    pub changes: Vec<Change>,
    pub changed: u64,
    keep_changes: usize,
    /// Each network's flood detector, by network id.
    pub floods: BTreeMap<String, FloodReplay>,
    /// Per share filter: (conversions judged on it, those its share put beyond its bound).
    pub shares: BTreeMap<&'static str, (u64, u64)>,
}

impl<'a> Replay<'a> {
    pub fn new(config: &'a Config, against: Option<&'a Config>, keep_changes: usize) -> Replay<'a> {
        // Transaction ids are not part of the comparison; any key will do.
        let key = TokenKey::new(&[7u8; 32])
            .unwrap_or_else(|_| unreachable!("a 32-byte key is long enough"));
        Replay {
            config,
            against,
            key,
            counting: Counting::default(),
            counting_against: Counting::default(),
            tally: Totals::default(),
            changes: Vec::new(),
            changed: 0,
            keep_changes,
            floods: BTreeMap::new(),
            shares: BTreeMap::new(),
        }
    }

    /// Counts a recorded conversion toward the shares, under each config: fed in time order
    /// with the clicks, it gives the clicks' share filters what the edge's counts gave them.
    pub fn feed_conversion(&mut self, c: &RecordedConversion) {
        for seen in self.counting.observe_conversion(self.config, c) {
            let entry = self.shares.entry(seen.filter).or_default();
            entry.0 += 1;
            entry.1 += u64::from(seen.exceeded());
        }
        if let Some(old) = self.against {
            self.counting_against.observe_conversion(old, c);
        }
    }

    pub fn feed(&mut self, r: Recorded) {
        let key = &self.key;
        let run = |config: &Config, counting: &mut Counting| {
            let counters = counting.observe(config, &r);
            let mut click = r.click.clone();
            click.link.profile = config.links.position(r.profile.as_deref());
            decide(
                config,
                key,
                click,
                r.client.clone(),
                // Signatures are judged on the live link; a log line no longer carries one.
                Observed {
                    counters,
                    signature: None,
                    flood: Default::default(),
                },
                r.at_ms,
                [0; 8],
            )
            .map_err(|e| e.to_string())
        };
        let outcome = run(self.config, &mut self.counting);
        let flagged = outcome.as_ref().is_ok_and(ClickOutcome::flagged);
        let after = Summary::of(&outcome);
        if let Some(old) = self.against {
            let before = Summary::of(&run(old, &mut self.counting_against));
            if before.label != after.label || before.codes != after.codes {
                self.changed += 1;
                if self.changes.len() < self.keep_changes {
                    self.changes.push(Change {
                        record: r.clone(),
                        before,
                        after: after.clone(),
                    });
                }
            }
        }
        self.tally.add(&r, &after);
        // As at the edge, a preview's User-Agent is only a claim: the flood detector sees it.
        let network = &r.click.aff_id;
        let config = self.config;
        self.floods
            .entry(network.to_string())
            .or_insert_with(|| FloodReplay::new(config.flood_thresholds(network), r.at_ms))
            .count(r.at_ms, flagged, after.label == verdict::Verdict::Redirect);
    }

    /// Closes every network's last minute: call once the last click is fed.
    pub fn finish(&mut self) {
        for flood in self.floods.values_mut() {
            flood.close_minute();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn config(rules: &str) -> Config {
        Config::compile(&format!(
            r#"{{"version": 1, "offers": [{{"id": "1", "landing_url": "https://x.example/"}}],
                "lists": {{"datacenter_asns": [16509]}}, "rules": [{rules}]}}"#
        ))
        .unwrap()
    }

    const BOTS: &str = r#"{"id": "bots", "created_at": "2026-11-01", "scope": {"offers": ["1"]}, "decline": "medium_and_higher",
                          "strategy": {"filters": [{"type": "bot"}, {"type": "duplicate_ip", "max": 2}]}}"#;

    #[test]
    fn a_decision_log_line_reads_back_as_the_click_it_decided() {
        let config = config(BOTS);
        let click = ClickParams {
            offer_id: Id::parse("1").unwrap(),
            aff_id: Id::parse("n").unwrap(),
            source_id: Some("src".into()),
            subs: ["a", "b", "c", "d", "e"].map(|s| Some(s.to_owned())),
            device_id: Some("dev".into()),
            link: Default::default(),
        };
        let client = ClientInfo {
            ip: Some("192.0.2.1".parse().unwrap()),
            user_agent: Some(UserAgent::parse("curl/8")),
            referer: Some("https://ref.example/".into()),
            country: Some("DE".into()),
            asn: Some(16509),
            ..ClientInfo::default()
        };
        let key = TokenKey::new(&[7u8; 32]).unwrap();
        let at_ms = 1_795_431_600_000;
        let outcome = decide(
            &config,
            &key,
            click.clone(),
            client.clone(),
            Observed::default(),
            at_ms,
            [0; 8],
        )
        .unwrap();
        let read = from_log_line(&outcome.log_line()).clicks;
        assert_eq!(
            read,
            vec![Recorded {
                at_ms,
                click,
                client,
                profile: None,
            }]
        );
    }

    #[test]
    fn an_unreadable_address_replays_as_the_edge_read_it() {
        // A CF-Connecting-IP that is no address fails closed where the blocklist has entries;
        // replay read it as no address at all, and let such clicks through.
        let config = config(BOTS);
        let key = TokenKey::new(&[7u8; 32]).unwrap();
        let click = ClickParams {
            offer_id: Id::parse("1").unwrap(),
            aff_id: Id::parse("n").unwrap(),
            source_id: None,
            subs: Default::default(),
            device_id: None,
            link: Default::default(),
        };
        let client = ClientInfo {
            ip_unreadable: true,
            user_agent: Some(UserAgent::parse(
                "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/120.0",
            )),
            ..ClientInfo::default()
        };
        let outcome = decide(&config, &key, click, client, Observed::default(), 0, [0; 8]).unwrap();
        let read = from_log_line(&outcome.log_line()).clicks;
        assert!(read[0].client.ip_unreadable && read[0].client.ip.is_none());
        // A click file's cell that is no address, as the header would have been.
        let header = csv_header(&["ts", "offer_id", "aff_id", "ip"]).unwrap();
        let row = from_csv_fields(
            &["2026-11-22T10:00:00Z", "1", "n", "192.0.2.1:443"],
            &header,
        );
        assert!(row.unwrap().client.ip_unreadable);
        let row = from_csv_fields(&["2026-11-22T10:00:00Z", "1", "n", "192.0.2.1"], &header);
        assert!(!row.unwrap().client.ip_unreadable);
    }

    #[test]
    fn every_click_parameter_is_a_csv_column() {
        for name in crate::click::PARAMS {
            assert!(CSV_COLUMNS.contains(&name), "{name}");
        }
    }

    #[test]
    fn reads_the_workers_own_log_lines_and_tail_records() {
        let line = r#"{"event":"click","ts":"2026-11-22T10:00:00.000Z","verdict":"redirect","offer_id":"1","aff_id":"n","sub1":"s","ip":"192.0.2.1","user_agent":"curl/8","asn":"16509"}"#;
        let r = from_log_line(line).clicks;
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].client.asn, Some(16509));
        assert_eq!(r[0].click.subs[0].as_deref(), Some("s"));
        let wrapped =
            serde_json::json!({"logs": [{"message": [line], "level": "log"}], "outcome": "ok"})
                .to_string();
        assert_eq!(from_log_line(&wrapped).clicks, r);
        assert_eq!(
            from_log_line(r#"{"event":"config","status":"loaded"}"#),
            LogLine::default()
        );
        assert_eq!(
            from_log_line("[wrangler:info] GET /c 302"),
            LogLine::default()
        );
        assert!(
            from_log_line(r#"{"event":"click","ts":"2026-11-22"}"#).problems[0]
                .contains("no offer_id")
        );
        // In a tail record, a message that is no click costs only itself.
        let bad = r#"{"event":"click","ts":"2026-11-22T10:00:00.000Z","offer_id":"1"}"#;
        let mixed =
            serde_json::json!({"logs": [{"message": [bad]}, {"message": [line]}]}).to_string();
        let read = from_log_line(&mixed);
        assert_eq!((read.clicks, read.problems.len()), (r, 1));
    }

    #[test]
    fn reads_the_line_where_logpush_and_workers_logs_exports_carry_it() {
        let line = r#"{"event":"click","ts":"2026-11-22T10:00:00.000Z","verdict":"redirect","offer_id":"1","aff_id":"n","ip":"192.0.2.1","asn":"16509"}"#;
        let want = from_log_line(line).clicks;
        assert_eq!(want.len(), 1);
        // Logpush Workers Trace Events: capitalised fields, the message as logged.
        let logpush = serde_json::json!({
            "Event": {"Request": {"Method": "GET", "URL": "https://t.example/c?offer_id=1&aff_id=n"}},
            "EventTimestampMs": 1_795_312_800_000u64, "EventType": "fetch", "Outcome": "ok",
            "Logs": [{"Level": "log", "Message": [line], "TimestampMs": 1_795_312_800_000u64}],
            "ScriptName": "clickgate"
        });
        assert_eq!(from_log_record(&logpush).clicks, want);
        // Workers Logs: the line's fields parsed into `source`, numbers where the line had digits.
        let mut fields: Value = serde_json::from_str(line).unwrap();
        fields["asn"] = serde_json::json!(16509);
        let workers_logs = serde_json::json!({
            "source": fields, "dataset": "cloudflare-workers",
            "$workers": {"scriptName": "clickgate", "outcome": "ok"},
            "$metadata": {"message": line}
        });
        assert_eq!(from_log_record(&workers_logs).clicks, want);
        // A message an export already parsed into an object.
        let parsed = serde_json::json!({"Logs": [{"Message": [serde_json::from_str::<Value>(line).unwrap()]}]});
        assert_eq!(from_log_record(&parsed).clicks, want);
        // Times as exports write them.
        for ts in [
            "2026-11-22T10:00:00+00:00",
            "2026-11-22 10:00:00",
            "1795392000000",
        ] {
            let other = line.replace("2026-11-22T10:00:00.000Z", ts);
            let read = from_log_line(&other);
            assert_eq!(read.clicks.len(), 1, "{ts}: {read:?}");
        }
    }

    #[test]
    fn a_line_written_under_a_sampled_log_says_so_and_the_fewest_logged_wins() {
        let line = |log: &str| {
            format!(
                r#"{{"event":"click","ts":"2026-11-22T10:00:00.000Z","verdict":"block","offer_id":"1","aff_id":"n"{log},"config":"abc"}}"#
            )
        };
        assert_eq!(from_log_line(&line("")).log, None);
        let sampled = from_log_line(&line(r#","log":{"sample":0.01}"#));
        assert_eq!(
            (sampled.clicks.len(), sampled.log),
            (1, Some(LogClean::Sample(0.01)))
        );
        assert_eq!(
            from_log_line(&line(r#","log":"none""#)).log,
            Some(LogClean::None)
        );
        let tail = serde_json::json!({"logs": [{"message": [line("")]},
            {"message": [line(r#","log":{"sample":0.5}"#)]}]})
        .to_string();
        assert_eq!(from_log_line(&tail).log, Some(LogClean::Sample(0.5)));
        assert_eq!(
            least(Some(LogClean::Sample(0.5)), Some(LogClean::None)),
            Some(LogClean::None)
        );
        let note = sampled_note(LogClean::Sample(0.01));
        assert!(
            note.contains("1% of them") && note.contains("blocked, declined"),
            "{note}"
        );
        assert_eq!(sampled_note(LogClean::All), "");
    }

    #[test]
    fn reads_csv_with_any_column_order() {
        let header = csv_header(&["aff_id", "offer_id", "ts", "user_agent", "ip"]).unwrap();
        let r = from_csv_fields(
            &[
                "net-7",
                "1",
                "2026-11-22T10:00:00Z",
                r#"Mozilla/5.0 (X; "quoted", comma)"#,
                "192.0.2.1",
            ],
            &header,
        )
        .unwrap();
        assert_eq!(
            r.client.user_agent.as_deref(),
            Some(r#"Mozilla/5.0 (X; "quoted", comma)"#)
        );
        assert_eq!(r.click.aff_id.as_str(), "net-7");
        assert_eq!(
            csv_header(&["offer_id", "aff_id"]).unwrap_err().to_string(),
            "the header has no `ts` column (it names: offer_id, aff_id; a click's are: ts, ip, \
             user_agent, referer, offer_id, aff_id, source_id, sub1, sub2, sub3, sub4, sub5, \
             device_id, country, asn)"
        );
        // An export's other columns are left unread, and named.
        let names = ["ScriptName", "offer_id", "aff_id", "ts", "colour"];
        let wide = csv_header(&names).unwrap();
        assert_eq!(wide[..3], [Some(3), None, None]);
        assert_eq!(unread_columns(&names), ["ScriptName", "colour"]);
        // An empty cell is no value: a required one missing is an error naming it.
        assert!(
            from_csv_fields(&["", "1", "2026-11-22T10:00:00Z", "", ""], &header)
                .unwrap_err()
                .problem
                .contains("no aff_id")
        );
    }

    #[test]
    fn counting_follows_the_rules_window_in_whole_hours_and_sub_ids_per_utc_day() {
        let config = config(
            r#"{"id": "r", "created_at": "2026-11-01", "scope": {"offers": ["1"]},
                "strategy": {"filters": [{"type": "duplicate_ip", "max": 9, "window_hours": 2},
                                         {"type": "sub_id_validity", "max": 9}]}}"#,
        );
        let mut c = Counting::default();
        let mut at = |ms: u64, sub: Option<&str>| {
            let r = Recorded {
                at_ms: ms,
                click: ClickParams {
                    offer_id: Id::parse("1").unwrap(),
                    aff_id: Id::parse("n").unwrap(),
                    source_id: None,
                    subs: [sub.map(str::to_owned), None, None, None, None],
                    device_id: None,
                    link: Default::default(),
                },
                client: ClientInfo {
                    ip: "192.0.2.1".parse().ok(),
                    ip_unreadable: false,
                    ..ClientInfo::default()
                },
                profile: None,
            };
            let c = c.observe(&config, &r).unwrap();
            (c.ip_clicks, c.distinct_sub_ids)
        };
        let base = 1_795_392_000_000; // 2026-11-23T00:00:00Z
        const H: u64 = 3_600_000;
        assert_eq!(at(base, Some("a")), (1, 1));
        assert_eq!(at(base + 1000, Some("a")), (2, 1));
        assert_eq!(at(base + H + 5, Some("b")), (3, 2));
        // Two hours on, the first hour has left the two-hour window.
        assert_eq!(at(base + 2 * H, None), (2, 2));
        // The next UTC day starts a new sub-ID count; the IP window still holds hour 23.
        assert_eq!(at(base + 24 * H - 1, Some("c")), (1, 3));
        assert_eq!(at(base + 24 * H, Some("a")), (2, 1));
    }

    #[test]
    fn a_rule_without_counter_filters_counts_nothing() {
        let config = config(
            BOTS.replace(r#", {"type": "duplicate_ip", "max": 2}"#, "")
                .as_str(),
        );
        let r = Recorded {
            at_ms: 0,
            click: ClickParams {
                offer_id: Id::parse("1").unwrap(),
                aff_id: Id::parse("n").unwrap(),
                source_id: None,
                subs: Default::default(),
                device_id: None,
                link: Default::default(),
            },
            client: ClientInfo::default(),
            profile: None,
        };
        assert_eq!(Counting::default().observe(&config, &r), None);
    }

    #[test]
    fn link_previews_are_not_tallied_as_clicks_but_meet_the_flood_count() {
        let new = config(BOTS);
        let mut replay = Replay::new(&new, None, 10);
        let browser = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Version/17.4 Mobile/15E148 Safari/604.1";
        for (ua, ip) in [
            (
                "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
                "192.0.2.1",
            ),
            (
                "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
                "192.0.2.1",
            ),
            (browser, "192.0.2.2"),
        ] {
            let l = format!(
                r#"{{"event":"click","ts":"2026-11-22T10:00:00Z","offer_id":"1","aff_id":"n","ip":"{ip}","user_agent":"{ua}"}}"#
            );
            for r in from_log_line(&l).clicks {
                replay.feed(r);
            }
        }
        assert_eq!(replay.tally.clicks, 1);
        assert_eq!(replay.tally.previews, 2);
        assert_eq!(replay.tally.by_verdict.get("redirect"), Some(&1));
        assert_eq!(replay.tally.by_offer.get("1"), Some(&(1, 0)));
        assert_eq!(replay.tally.by_affiliate.get("n"), Some(&(1, 0)));
        // As at the edge, the network's flood minute holds the previews too: their User-Agent is
        // a claim anyone can make.
        let minute = replay.floods["n"]
            .pending
            .map(|(_, clicks, flagged)| (clicks, flagged));
        assert_eq!(minute, Some((3, 0)));
    }

    #[test]
    fn replay_counts_a_device_across_the_offers_affiliates_as_the_ledger_does() {
        let new = Config::compile(
            r#"{"version": 1, "offers": [{"id": "1", "landing_url": "https://x.example/"},
                                         {"id": "2", "landing_url": "https://y.example/"}],
                "rules": [{"id": "r", "created_at": "2026-11-01", "scope": {"offers": ["1", "2"]},
                           "decline": "medium_and_higher",
                           "strategy": {"filters": [{"type": "duplicate_device_id"}]}}]}"#,
        )
        .unwrap();
        let mut replay = Replay::new(&new, None, 10);
        let browser = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Version/17.4 Mobile/15E148 Safari/604.1";
        for (sec, offer, aff, device) in [
            (0, 1, "a", "D"),
            (1, 2, "a", "D"),
            (2, 1, "b", "E"),
            (3, 1, "b", "D"),
        ] {
            let l = format!(
                r#"{{"event":"click","ts":"2026-11-22T10:00:{sec:02}Z","offer_id":"{offer}","aff_id":"{aff}","device_id":"{device}","ip":"192.0.2.{sec}","user_agent":"{browser}"}}"#
            );
            for r in from_log_line(&l).clicks {
                replay.feed(r);
            }
        }
        assert_eq!(replay.tally.clicks, 4);
        // Only D's second click on offer 1, through another affiliate.
        assert_eq!(replay.tally.by_reason.get("duplicate_device_id"), Some(&1));
        assert_eq!(replay.tally.by_affiliate.get("b"), Some(&(2, 1)));
        assert_eq!(replay.tally.by_offer.get("2"), Some(&(1, 0)));
    }

    #[test]
    fn replay_counts_and_finds_changed_verdicts() {
        let new = config(BOTS);
        let old = config("");
        let mut replay = Replay::new(&new, Some(&old), 10);
        let line = |ua: &str, ip: &str, sec: u32| {
            format!(
                r#"{{"event":"click","ts":"2026-11-22T10:00:{sec:02}Z","offer_id":"1","aff_id":"n","ip":"{ip}","user_agent":"{ua}"}}"#
            )
        };
        let browser = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Version/17.4 Mobile/15E148 Safari/604.1";
        for l in [
            line("curl/8", "192.0.2.1", 0),
            line(browser, "192.0.2.2", 1),
            line(browser, "192.0.2.3", 2),
            line(browser, "192.0.2.3", 3),
            line(browser, "192.0.2.3", 4),
        ] {
            for r in from_log_line(&l).clicks {
                replay.feed(r);
            }
        }
        assert_eq!(replay.tally.clicks, 5);
        assert_eq!(replay.tally.by_verdict.get("block"), Some(&2)); // the curl click and the third from .3
        assert_eq!(replay.tally.by_reason.get("bot"), Some(&1));
        assert_eq!(replay.tally.by_reason.get("duplicate_ip"), Some(&1));
        assert_eq!(replay.tally.by_offer.get("1"), Some(&(5, 2)));
        assert_eq!(replay.changed, 2);
        assert_eq!(replay.changes[0].before.label, verdict::Verdict::Redirect);
        assert_eq!(replay.changes[0].after.codes, ["bot"]);
    }
}

#[cfg(test)]
mod sub_id_tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn sub_ids_are_counted_under_the_rules_sub_id_parameter() {
        let config = Config::compile(
            r#"{"version": 1, "offers": [{"id": "1", "landing_url": "https://x.example/"}], "rules": [
                {"id": "subs", "created_at": "2026-11-01", "scope": {"offers": ["1"]}, "sub_id_param": "sub2",
                 "decline": "low_and_higher", "strategy": {"filters": [{"type": "sub_id_validity", "max": 2}]}}]}"#,
        )
        .unwrap();
        let mut replay = Replay::new(&config, None, 0);
        for i in 0..4 {
            // sub1 never changes; sub2 does, and sub2 is what the rule counts.
            let line = format!(
                r#"{{"event":"click","ts":"2026-11-22T10:00:0{i}Z","offer_id":"1","aff_id":"n","sub1":"same","sub2":"pub-{i}","ip":"192.0.2.{i}","user_agent":"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Version/17.4 Mobile/15E148 Safari/604.1"}}"#
            );
            for r in from_log_line(&line).clicks {
                replay.feed(r);
            }
        }
        // The third and fourth distinct sub2 values are over the limit of 2.
        assert_eq!(replay.tally.by_reason.get("sub_id_validity"), Some(&2));
        assert_eq!(replay.tally.by_verdict.get("block"), Some(&2));
    }

    #[test]
    fn a_logged_platform_signal_is_read_back_so_replay_judges_as_the_edge_did() {
        let line = r#"{"event":"click","ts":"2026-11-22T10:00:00.000Z","verdict":"block","offer_id":"1","aff_id":"n","ip":"192.0.2.1","user_agent":"Mozilla/5.0","platform":{"bot_score":12,"verified_bot":true,"static_resource":false,"as_organization":"Example Hosting"}}"#;
        let r = from_log_line(line).clicks;
        let platform = r[0].client.platform.as_deref().unwrap();
        assert_eq!(platform.score, Some(12));
        assert!(platform.verified_bot && !platform.static_resource);
        assert_eq!(platform.as_organization.as_deref(), Some("Example Hosting"));
        assert!(r[0].client.is_preview());
        let plain = line.split(r#","platform""#).next().unwrap().to_owned() + "}";
        assert!(from_log_line(&plain).clicks[0].client.platform.is_none());
    }
}
