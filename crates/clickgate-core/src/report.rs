//! The fraud report and the explanation of single clicks.
//!
//! Every decided click and every judged conversion adds to a [`Tally`] under its hour, advertiser
//! and offer. The isolate sums them with the network's other counts and sends them in the same
//! batch (see [`crate::network::store`]), so the report costs the click no extra request and is applied
//! exactly once. The network's object keeps one storage key per UTC hour ([`HourRows`]); a report
//! asks every network's object for the hours it covers and [`aggregate`]s the answers into
//! groups.
//!
//! A click that any filter fired on (or that was blocked or declined) also leaves its whole
//! decision, the log line with the client's IP hashed ([`kept_decision`]), under its transaction
//! id's nonce, which `GET /admin/explain/{id}` reads back.
//!
//! Bounds, all documented in the README:
//! - hours are kept [`REPORT_RETAIN_DAYS`] days, explanations [`EXPLAIN_RETAIN_DAYS`];
//! - at most [`MAX_ROWS_PER_HOUR`] advertiser × offer rows per network and hour: later pairs are
//!   summed into the offer [`OTHER`];
//! - beside them, clicks per sub ID and per country ([`SUB_ID`], [`COUNTRY`]): at most
//!   [`MAX_SUB_IDS`] sub IDs and [`MAX_COUNTRIES`] countries per network and hour, later ones summed
//!   into [`OTHER`]; a report names at most [`MAX_SUB_IDS`] sub IDs per network, those with the most
//!   clicks;
//! - a report names at most [`MAX_NETWORKS_NAMED`] networks, those with the most clicks: the
//!   rest are summed into the network [`OTHER`] ([`Networks`]), so made-up `aff_id`s cost it
//!   bounded memory and the totals stay exact;
//! - at most [`MAX_EXPLAINED_PER_HOUR`] explanations per network and hour, and an isolate keeps at
//!   most [`MAX_EXPLAINED_PER_MINUTE`] per network and minute.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::click::Id;
use crate::config::Config;
use crate::conversion::{ConversionOutcome, ConversionStatus};
use crate::decide::ClickOutcome;
use crate::fault::{Corrupt, Invalid};
use crate::stored::{explain_key, EXPLAIN_RETAIN_DAYS, REPORT_RETAIN_DAYS};
use crate::time::{civil_from_days, day_of_hour, parse_report_hour, rfc3339_ms, HOUR_MS};
use crate::token::{ClickToken, TokenVerdict};
use crate::verdict::Verdict;

pub const MAX_ROWS_PER_HOUR: usize = 2_000;
/// Networks a report names; the rest are summed into [`OTHER`] (see [`Networks`]).
pub const MAX_NETWORKS_NAMED: usize = 1_000;
pub const MAX_EXPLAINED_PER_HOUR: u32 = 20_000;
/// Decisions an isolate keeps for `explain` per network and minute. A flood of flagged clicks is
/// counted in full by the report; keeping every one of its decisions would cost each of them a
/// log line's worth of batch and storage, so past this a flood is sampled, the first of each
/// minute kept.
pub const MAX_EXPLAINED_PER_MINUTE: u32 = 300;
/// Where rows past [`MAX_ROWS_PER_HOUR`] and networks past [`MAX_NETWORKS_NAMED`] are summed;
/// not a valid id, so it cannot collide.
pub const OTHER: &str = "(other)";
/// The longest range one report may cover.
pub const MAX_RANGE_HOURS: u32 = REPORT_RETAIN_DAYS * 24;
/// The dimensions counted per network and hour beside the advertiser × offer rows: a click counts
/// once under its sub ID and once under its country (`""` when it has none). In a batch they ride
/// as rows whose advertiser is the tag, which no id can be.
pub const SUB_ID: &str = "(sub_id)";
pub const COUNTRY: &str = "(country)";
/// Sub IDs a network's hour names, and a report per network: a client makes up as many as it likes.
pub const MAX_SUB_IDS: usize = 100;
/// Countries a network's hour names: ISO 3166 has 249 codes, Cloudflare adds a few (`T1`, `XX`).
pub const MAX_COUNTRIES: usize = 300;

// ---------------------------------------------------------------------------------------------
// What is counted.

/// The counts of one report row. `clicks = allowed + blocked`; `would_block` are the allowed clicks
/// a rule in monitor mode declined. CR is all conversions over all clicks, whatever their status,
/// as the fraud reports operators know define it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub clicks: u64,
    pub allowed: u64,
    pub blocked: u64,
    pub would_block: u64,
    /// Every postback with a valid transaction id, judged or not.
    pub conversions: u64,
    pub approved: u64,
    pub invalid: u64,
    /// Blocked and would-block clicks per reason code; a click with two reasons counts under both.
    pub reasons: BTreeMap<String, u64>,
    /// Invalid conversions per reason code.
    pub conversion_reasons: BTreeMap<String, u64>,
    /// Fetches redirected as link previews: not clicks, but counted, since the User-Agent that
    /// makes one is a claim a click farm can make too.
    pub previews: u64,
}

impl Tally {
    /// Adds one decided click in place: what every click pays, so it allocates only for a new
    /// reason code.
    pub fn count_click(&mut self, outcome: &ClickOutcome) {
        let blocked = outcome.is_blocked();
        let flagged = outcome.flagged();
        // What its transaction id calls a preview; one blocked or declined is counted as a click,
        // under its reasons.
        if outcome.preview && !blocked && !flagged {
            self.previews += 1;
            return;
        }
        self.clicks += 1;
        self.allowed += u64::from(!blocked);
        self.blocked += u64::from(blocked);
        self.would_block += u64::from(flagged && !blocked);
        if flagged {
            for r in outcome.reasons() {
                match self.reasons.get_mut(r.code.as_str()) {
                    Some(n) => *n += 1,
                    None => {
                        self.reasons.insert(r.code.as_str().to_owned(), 1);
                    }
                }
            }
        }
    }

    /// One postback whose transaction id opened.
    pub fn conversion(outcome: &ConversionOutcome) -> Tally {
        let mut tally = Tally {
            conversions: 1,
            approved: u64::from(outcome.status == ConversionStatus::Approved),
            invalid: u64::from(outcome.status == ConversionStatus::Invalid),
            ..Tally::default()
        };
        if outcome.status == ConversionStatus::Invalid {
            for (code, _) in &outcome.judging.reasons {
                *tally
                    .conversion_reasons
                    .entry(code.as_str().to_owned())
                    .or_default() += 1;
            }
        }
        tally
    }

    pub fn add(&mut self, other: &Tally) {
        self.clicks += other.clicks;
        self.allowed += other.allowed;
        self.blocked += other.blocked;
        self.would_block += other.would_block;
        self.conversions += other.conversions;
        self.approved += other.approved;
        self.invalid += other.invalid;
        self.previews += other.previews;
        for (code, n) in &other.reasons {
            *self.reasons.entry(code.clone()).or_default() += n;
        }
        for (code, n) in &other.conversion_reasons {
            *self.conversion_reasons.entry(code.clone()).or_default() += n;
        }
    }

    /// Conversions per click; `None` without clicks.
    pub fn cr(&self) -> Option<f64> {
        ratio(self.conversions, self.clicks)
    }

    pub fn block_rate(&self) -> Option<f64> {
        ratio(self.blocked, self.clicks)
    }

    /// The compact form batches and storage carry: previews, counted later than the rest, are a
    /// tenth field only when there are some, so rows stored before read and write as they were.
    pub fn to_wire(&self) -> Value {
        let mut wire = json!([
            self.clicks,
            self.allowed,
            self.blocked,
            self.would_block,
            self.conversions,
            self.approved,
            self.invalid,
            self.reasons,
            self.conversion_reasons
        ]);
        if let (Some(fields), true) = (wire.as_array_mut(), self.previews > 0) {
            fields.push(json!(self.previews));
        }
        wire
    }

    /// A tally as stored or carried in a batch; one that does not read back is a runtime fault.
    pub fn from_wire(v: &Value) -> Result<Tally, Corrupt> {
        Tally::read(v).map_err(|e| Corrupt::new("report tally", e))
    }

    fn read(v: &Value) -> Result<Tally, String> {
        let a = v
            .as_array()
            .filter(|a| a.len() == 9 || a.len() == 10)
            .ok_or("a tally is 9 or 10 fields")?;
        let n = |i: usize| {
            a[i].as_u64()
                .ok_or_else(|| format!("field {i} is not a count"))
        };
        // Inserted one by one: collecting into a map would bring its own copy of the stable sort.
        let map = |i: usize| -> Result<BTreeMap<String, u64>, String> {
            let mut out = BTreeMap::new();
            for (k, v) in a[i]
                .as_object()
                .ok_or_else(|| format!("field {i} is not an object"))?
            {
                out.insert(k.clone(), v.as_u64().ok_or("a reason count")?);
            }
            Ok(out)
        };
        Ok(Tally {
            clicks: n(0)?,
            allowed: n(1)?,
            blocked: n(2)?,
            would_block: n(3)?,
            conversions: n(4)?,
            approved: n(5)?,
            invalid: n(6)?,
            reasons: map(7)?,
            conversion_reasons: map(8)?,
            previews: if a.len() == 10 { n(9)? } else { 0 },
        })
    }

    fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("clicks".into(), json!(self.clicks));
        m.insert("allowed".into(), json!(self.allowed));
        m.insert("blocked".into(), json!(self.blocked));
        m.insert("would_block".into(), json!(self.would_block));
        m.insert("block_rate".into(), json!(self.block_rate()));
        m.insert("conversions".into(), json!(self.conversions));
        m.insert("approved".into(), json!(self.approved));
        m.insert("invalid".into(), json!(self.invalid));
        m.insert("cr".into(), json!(self.cr()));
        m.insert("reasons".into(), json!(self.reasons));
        m.insert("conversion_reasons".into(), json!(self.conversion_reasons));
        m.insert("previews".into(), json!(self.previews));
        m
    }
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    // Rounded to 6 places so that JSON and CSV say the same number.
    (b > 0).then(|| (a as f64 / b as f64 * 1e6).round() / 1e6)
}

/// The advertiser and offer a tally is counted under, within its network and hour; or, with the
/// advertiser [`SUB_ID`] or [`COUNTRY`], the sub ID or country in place of the offer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RowKey {
    pub hour: u32,
    /// Empty when the offer names no advertiser.
    pub advertiser: String,
    pub offer: String,
}

/// Where a postback counts: its click's network and offer, that offer's advertiser as the config
/// has it now, and the hour the postback arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversionRow {
    pub network: Id,
    pub offer: Id,
    pub advertiser: String,
    pub hour: u32,
    pub tally: Tally,
}

pub fn conversion_row(config: &Config, outcome: &ConversionOutcome, now_ms: u64) -> ConversionRow {
    let click = &outcome.judging.click;
    ConversionRow {
        network: click.aff_id.clone(),
        offer: click.offer_id.clone(),
        advertiser: config
            .offers
            .get(&click.offer_id)
            .and_then(|o| o.advertiser_id.as_ref())
            .map_or_else(String::new, |a| a.to_string()),
        hour: (now_ms / HOUR_MS) as u32,
        tally: Tally::conversion(outcome),
    }
}

// ---------------------------------------------------------------------------------------------
// One network's hour, as its object stores it.

/// Where the decision of the click behind a transaction id is kept.
pub fn explain_key_of(token: &ClickToken) -> String {
    explain_key((token.issued_ms / HOUR_MS) as u32, &token.nonce)
}

/// A network's rows for one hour, and how many explanations the hour has kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HourRows {
    pub rows: BTreeMap<(String, String), Tally>,
    /// Clicks per sub ID and per country, keyed by [`SUB_ID`] or [`COUNTRY`] and the value.
    pub dims: BTreeMap<(String, String), Tally>,
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
    pub fn keep_explanation(&mut self) -> bool {
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

    fn from_value(v: &Value) -> Result<HourRows, String> {
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

// ---------------------------------------------------------------------------------------------
// Many networks, in bounded memory.

/// The networks a report has read, held in bounded memory however many ids clients made up.
///
/// Every `aff_id` that clicks is a network, so a report over made-up ids reads as many networks as
/// were made up. At most [`MAX_NETWORKS_NAMED`] of them keep their name: whenever twice as many are
/// held, the ones with the fewest clicks (previews and conversions included; ties by name) are
/// folded into one network named [`OTHER`], hour by hour and row by row. Nothing is dropped: the
/// totals and every hour, day, advertiser and offer stay exact; only the long tail of networks
/// loses its names, and [`Networks::count`] still says how many there were.
///
/// A shared object folds its members this way before it answers, and the report folds the objects'
/// answers into one, so neither holds more than twice the cap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Networks {
    /// Each named network's hours, in hour order.
    named: BTreeMap<String, Hours>,
    other: Hours,
    /// Networks folded into `other`.
    folded: u64,
}

/// One network's hours, in hour order.
type Hours = Vec<(u32, HourRows)>;

/// Adds an hour's rows to a network's hours, keeping them in hour order.
fn add_hour(hours: &mut Hours, hour: u32, rows: HourRows) {
    match hours.binary_search_by_key(&hour, |(h, _)| *h) {
        Ok(i) => hours[i].1.merge(&rows),
        Err(i) => hours.insert(i, (hour, rows)),
    }
}

impl Networks {
    /// Adds one network's hours; a network already held sums them into its own.
    pub fn add(&mut self, network: &str, hours: Hours) {
        // A device ledger is listed among its shared object's networks, with no report rows.
        if is_ledger(network) {
            return;
        }
        let held = match self.named.get_mut(network) {
            Some(held) => held,
            None => self.named.entry(network.to_owned()).or_default(),
        };
        for (hour, rows) in hours {
            add_hour(held, hour, rows);
        }
        if self.named.len() > 2 * MAX_NETWORKS_NAMED {
            self.fold_to(MAX_NETWORKS_NAMED);
        }
    }

    /// Adds what another object answered.
    pub fn merge(&mut self, other: Networks) {
        for (hour, rows) in other.other {
            add_hour(&mut self.other, hour, rows);
        }
        self.folded += other.folded;
        for (network, hours) in other.named {
            self.add(&network, hours);
        }
    }

    /// Folds every network but the `keep` with the most clicks into [`OTHER`]; of networks that
    /// weigh the same, the first by name keep theirs.
    fn fold_to(&mut self, keep: usize) {
        if self.named.len() <= keep {
            return;
        }
        let weights: Vec<u64> = self.named.values().map(weight).collect();
        let mut kept = heaviest(&weights, keep).into_iter();
        let named = std::mem::take(&mut self.named);
        for (network, hours) in named {
            if kept.next().unwrap_or(true) {
                self.named.insert(network, hours);
            } else {
                for (hour, rows) in hours {
                    add_hour(&mut self.other, hour, rows);
                }
                self.folded += 1;
            }
        }
    }

    /// How many networks were read: the named ones and the folded ones. A network whose hours are
    /// in two objects (its own, and a shared one from before it was listed) counts once, unless
    /// one of the two folded it.
    pub fn count(&self) -> usize {
        self.named.len() + self.folded as usize
    }

    /// The networks held by name; at most twice [`MAX_NETWORKS_NAMED`].
    pub fn named(&self) -> usize {
        self.named.len()
    }

    /// The rows held, named networks' and folded ones': what the memory a report takes grows with.
    pub fn rows(&self) -> usize {
        let rows = |hours: &Hours| {
            hours
                .iter()
                .map(|(_, h)| h.rows.len() + h.dims.len())
                .sum::<usize>()
        };
        self.named.values().map(rows).sum::<usize>() + rows(&self.other)
    }

    /// Each network's hours by its name, the folded ones under [`OTHER`].
    pub fn parts(&self) -> impl Iterator<Item = (&str, &Hours)> {
        self.named
            .iter()
            .map(|(n, h)| (n.as_str(), h))
            .chain((!self.other.is_empty() || self.folded > 0).then_some((OTHER, &self.other)))
    }

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

/// Which of `weights` are the `keep` heaviest; of those that weigh the same, the first.
fn heaviest(weights: &[u64], keep: usize) -> Vec<bool> {
    // The lightest weight kept: the largest `cut` that at least `keep` weigh, found by halving
    // rather than by sorting (a sort of its own would cost the Worker its code).
    let at_least = |c: u64| weights.iter().filter(|w| **w >= c).count();
    let (mut cut, mut high) = (0, weights.iter().copied().max().unwrap_or(0));
    while cut < high {
        let mid = cut + (high - cut).div_ceil(2);
        if at_least(mid) >= keep {
            cut = mid;
        } else {
            high = mid - 1;
        }
    }
    // Those heavier are all kept; of those that weigh `cut`, the first fill the rest.
    let mut at_cut = keep.saturating_sub(weights.iter().filter(|w| **w > cut).count());
    weights
        .iter()
        .map(|&w| {
            let kept = w > cut || (w == cut && at_cut > 0);
            at_cut -= usize::from(kept && w == cut);
            kept
        })
        .collect()
}

/// What a network weighs when the tail is folded: everything it counted.
fn weight(hours: &Hours) -> u64 {
    hours
        .iter()
        .flat_map(|(_, h)| h.rows.values())
        .map(|t| t.clicks + t.previews + t.conversions)
        .sum()
}

/// The device ledgers' names (`network::keys::ledger` picks one): networks whose batches carry
/// device counts and no report rows, which the report leaves out.
pub const DEVICE_LEDGERS: [&str; 16] = [
    "_devices.0",
    "_devices.1",
    "_devices.2",
    "_devices.3",
    "_devices.4",
    "_devices.5",
    "_devices.6",
    "_devices.7",
    "_devices.8",
    "_devices.9",
    "_devices.10",
    "_devices.11",
    "_devices.12",
    "_devices.13",
    "_devices.14",
    "_devices.15",
];

/// Whether `network` names a device ledger rather than an affiliate.
pub fn is_ledger(network: &str) -> bool {
    DEVICE_LEDGERS.contains(&network)
}

/// The networks' hours in the report answer of the object the directory lists as `object`: an
/// object of its own answers for the network it is named by, a shared one for each of its networks
/// (and those it folded).
pub fn parse_object_answer(object: &str, text: &str) -> Result<Networks, String> {
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

// ---------------------------------------------------------------------------------------------
// The question: `GET /admin/report?from=..&to=..&group_by=..&format=..`.

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
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
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

fn hour_label(hour: u32) -> String {
    let (y, m, d) = civil_from_days(i64::from(day_of_hour(hour)));
    format!("{y:04}-{m:02}-{d:02}T{:02}:00Z", hour % 24)
}

fn day_label(day: u32) -> String {
    let (y, m, d) = civil_from_days(i64::from(day));
    format!("{y:04}-{m:02}-{d:02}")
}

// ---------------------------------------------------------------------------------------------
// The answer.

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
        rows.sort_unstable_by(|a, b| b.1.clicks.cmp(&a.1.clicks).then_with(|| a.0.cmp(&b.0)));
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
    pub fn to_csv(&self) -> String {
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

// ---------------------------------------------------------------------------------------------
// Workers Analytics Engine.

/// One decision as an Analytics Engine data point, for operators who query at scale. The columns
/// are fixed (the README lists them); never reorder them, only append.
#[derive(Debug, Clone, PartialEq)]
pub struct DataPoint {
    /// The sampling key: the network, so a busy one is sampled apart from the others.
    pub index: String,
    /// blob1..blob9: verdict, offer, affiliate, advertiser, rule, first reason, probability,
    /// country, transaction id.
    pub blobs: Vec<String>,
    /// double1..double4: clicks (1), blocked (0/1), would-block (0/1), score.
    pub doubles: Vec<f64>,
}

pub fn data_point(outcome: &ClickOutcome) -> DataPoint {
    let blocked = outcome.is_blocked();
    let would_block = outcome.flagged() && !blocked;
    let verdict = match (blocked, would_block) {
        (true, _) => Verdict::Block,
        (_, true) => Verdict::WouldBlock,
        _ => Verdict::Redirect,
    };
    let assessment = outcome.assessment.as_ref();
    let text = |s: Option<&str>| s.unwrap_or("").to_owned();
    DataPoint {
        index: outcome.click.aff_id.to_string(),
        blobs: vec![
            verdict.as_str().to_owned(),
            outcome.click.offer_id.to_string(),
            outcome.click.aff_id.to_string(),
            text(outcome.advertiser_id.as_ref().map(|a| a.as_str())),
            text(outcome.rule_id()),
            text(outcome.reasons().first().map(|r| r.code.as_str())),
            text(assessment.map(|a| a.probability.name())),
            text(outcome.client.country.as_deref()),
            outcome.transaction_id.clone(),
        ],
        doubles: vec![
            1.0,
            f64::from(u8::from(blocked)),
            f64::from(u8::from(would_block)),
            f64::from(assessment.map_or(0, |a| a.score)),
        ],
    }
}

// ---------------------------------------------------------------------------------------------
// Explaining one click.

/// Whether a click's decision is kept for `explain`: something fired, or it was not let through.
pub fn worth_explaining(outcome: &ClickOutcome) -> bool {
    outcome.flagged() || !outcome.reasons().is_empty() || outcome.allowlisted.is_some()
}

/// The decision kept for `explain`: the log line, with the client's IP as the 64-bit hash the
/// duplicate-IP counts key on (`ip_hash`, and `ip_hash:…` as a reason's value), never as text. A
/// record kept before, with `ip`, reads the same way: the answer holds whichever the record has.
pub fn kept_decision(outcome: &ClickOutcome, log_line: &str) -> String {
    let Some(ip) = outcome.client.ip.map(|ip| ip.to_string()) else {
        return log_line.to_owned();
    };
    let Ok(Value::Object(mut line)) = serde_json::from_str::<Value>(log_line) else {
        return log_line.to_owned();
    };
    // The same hash as `network::keys::ip_hash`, so a kept click can be matched to its counts.
    let hash = format!("{:016x}", crate::hll::hash64(ip.as_bytes()));
    if line.remove("ip").is_some() {
        line.insert("ip_hash".into(), json!(hash));
    }
    if let Some(reasons) = line.get_mut("reasons").and_then(Value::as_array_mut) {
        for value in reasons.iter_mut().filter_map(|r| r.get_mut("value")) {
            if value.as_str() == Some(ip.as_str()) {
                *value = json!(format!("ip_hash:{hash}"));
            }
        }
    }
    Value::Object(line).to_string()
}

/// The answer to `GET /admin/explain/{id}`: the kept decision, or what the id itself says.
pub fn explain_answer(transaction_id: &str, token: &ClickToken, kept: Option<&str>) -> String {
    let verdict = token.verdict.verdict();
    let mut answer = json!({
        "transaction_id": transaction_id,
        "at": rfc3339_ms(token.issued_ms),
        "verdict": verdict.as_str(),
        "offer_id": token.offer_id.as_str(),
        "aff_id": token.aff_id.as_str(),
        "kept": kept.is_some(),
    });
    match kept.and_then(|k| serde_json::from_str::<Value>(k).ok()) {
        Some(decision) => answer["decision"] = decision,
        None => {
            let why = if matches!(
                token.verdict,
                TokenVerdict::Redirected | TokenVerdict::Preview
            ) {
                format!("no filter fired on this click, or its record is gone: decisions are kept only when a filter fired, for {EXPLAIN_RETAIN_DAYS} days, up to {MAX_EXPLAINED_PER_HOUR} per network and hour and, from each isolate, {MAX_EXPLAINED_PER_MINUTE} per network and minute")
            } else {
                format!("the decision's record is gone: records are kept {EXPLAIN_RETAIN_DAYS} days, up to {MAX_EXPLAINED_PER_HOUR} per network and hour and, from each isolate, {MAX_EXPLAINED_PER_MINUTE} per network and minute")
            };
            answer["note"] = json!(why);
        }
    }
    answer.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::click::{route, ClientInfo, Route};
    use crate::conversion;
    use crate::decide::{decide, Observed};
    use crate::fault::{Blame, Fault};
    use crate::network::home;
    use crate::stored::hour_key;
    use crate::time::DAY_MS;
    use crate::token::TokenKey;
    #[cfg(not(target_arch = "wasm32"))]
    use proptest::prelude::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// 2026-11-23T10:00:00Z.
    const NOW: u64 = 1_795_428_000_000;
    const CONFIG: &str = r#"{"version": 1, "advertisers": [{"id": "adv"}],
        "offers": [{"id": "1", "advertiser_id": "adv", "landing_url": "https://x.example/?t={transaction_id}"},
                   {"id": "2", "landing_url": "https://y.example/?t={transaction_id}"}],
        "lists": {"blocked_ips": ["203.0.113.0/24"]},
        "rules": [{"id": "r", "created_at": "2026-01-01", "scope": {"offers": ["2"]}, "decline": "high",
                   "ignore_results": true, "strategy": {"filters": [{"type": "bot"}]}}]}"#;

    fn key() -> TokenKey {
        TokenKey::new(b"0123456789abcdef0123456789abcdef-test-only").unwrap()
    }

    fn click(query: &str, ip: &str, ua: &str, at_ms: u64) -> ClickOutcome {
        let config = Config::compile(CONFIG).unwrap();
        let Ok(Route::Click(params)) = route("GET", "/c", query) else {
            panic!("{query}")
        };
        let client = ClientInfo {
            ip: ip.parse().ok(),
            ip_unreadable: false,
            user_agent: Some(ua.into()),
            ..ClientInfo::default()
        };
        decide(
            &config,
            &key(),
            params,
            client,
            Observed::default(),
            at_ms,
            [7; 8],
        )
        .unwrap()
    }

    /// One decided click's tally, as the isolate counts it.
    fn tally_of(outcome: &ClickOutcome) -> Tally {
        let mut tally = Tally::default();
        tally.count_click(outcome);
        tally
    }

    const BROWSER: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

    #[test]
    fn a_click_counts_as_allowed_blocked_or_would_block_with_its_reasons() {
        let allowed = tally_of(&click("offer_id=1&aff_id=n1", "192.0.2.1", BROWSER, NOW));
        assert_eq!(
            (allowed.clicks, allowed.allowed, allowed.blocked),
            (1, 1, 0)
        );
        assert!(allowed.reasons.is_empty());

        let blocked = tally_of(&click("offer_id=1&aff_id=n1", "203.0.113.9", BROWSER, NOW));
        assert_eq!(
            (blocked.clicks, blocked.allowed, blocked.blocked),
            (1, 0, 1)
        );
        assert_eq!(blocked.reasons.get("ip_blocklist"), Some(&1));

        // Offer 2's rule is in monitor mode: a bot is redirected but counted as would-block.
        let monitored = tally_of(&click(
            "offer_id=2&aff_id=n1",
            "192.0.2.1",
            "curl/8.4.0",
            NOW,
        ));
        assert_eq!(
            (monitored.allowed, monitored.blocked, monitored.would_block),
            (1, 0, 1)
        );
        assert_eq!(monitored.reasons.get("bot"), Some(&1));
    }

    #[test]
    fn a_link_preview_is_counted_as_a_preview_not_a_click() {
        use crate::network::local::{Flush, FlushPolicy, LocalCounts};
        // Offer 2's rule runs the bot filter: the preview fetcher is redirected, and counted
        // (its User-Agent is a claim), but as a preview: the clicks and their rates stay people's.
        let preview = click(
            "offer_id=2&aff_id=n1",
            "192.0.2.1",
            "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
            NOW,
        );
        assert!(preview.preview && !preview.is_blocked());
        let mut isolate = LocalCounts::new(1, FlushPolicy::default());
        isolate.record_outcome(&preview, &preview.log_line(), Default::default(), &[1; 8]);
        // The same click from a browser is a click.
        let person = click("offer_id=2&aff_id=n1", "192.0.2.1", BROWSER, NOW);
        isolate.record_outcome(&person, &person.log_line(), Default::default(), &[2; 8]);
        let Flush::Send(batch) = isolate.flush(&person.click.aff_id, NOW + 60_000) else {
            panic!("a batch is due")
        };
        // The offer's row, and the same counts under the sub ID and the country (none: "").
        assert_eq!(batch.report.len(), 3);
        for (key, t) in &batch.report[1..] {
            assert_eq!(key.offer, "");
            assert_eq!(t, &batch.report[0].1);
        }
        let tally = &batch.report[0].1;
        assert_eq!((tally.clicks, tally.allowed, tally.previews), (1, 1, 1));
        assert_eq!(batch.flood, vec![(NOW / crate::time::MINUTE_MS, 2, 0)]);
        assert_eq!(Tally::from_wire(&tally.to_wire()).as_ref(), Ok(tally));
    }

    #[test]
    fn rows_are_keyed_by_hour_advertiser_and_offer() {
        let row_of = |out: &ClickOutcome| {
            use crate::network::local::{Flush, FlushPolicy, LocalCounts};
            let mut isolate = LocalCounts::new(1, FlushPolicy::default());
            isolate.record_outcome(out, "", Default::default(), &[1; 8]);
            let Flush::Send(batch) = isolate.flush(&out.click.aff_id, NOW + 60_000) else {
                panic!("a batch is due")
            };
            batch.report[0].0.clone()
        };
        let out = click("offer_id=1&aff_id=n1", "192.0.2.1", BROWSER, NOW + 5);
        assert_eq!(
            row_of(&out),
            RowKey {
                hour: (NOW / HOUR_MS) as u32,
                advertiser: "adv".into(),
                offer: "1".into()
            }
        );
        let out = click("offer_id=2&aff_id=n1", "192.0.2.1", BROWSER, NOW);
        assert_eq!(row_of(&out).advertiser, "");
    }

    #[test]
    fn conversions_count_by_status_with_invalid_reasons() {
        let config = Config::compile(CONFIG).unwrap();
        let flagged = click("offer_id=1&aff_id=n1", "203.0.113.9", BROWSER, NOW);
        let clean = click("offer_id=1&aff_id=n1", "192.0.2.1", BROWSER, NOW);
        let judge = |tid: &str, status: &str| {
            let p = conversion::parse(&format!("transaction_id={tid}&status={status}")).unwrap();
            conversion::Judging::new(&config, &key(), p, NOW + 60_000)
                .unwrap()
                .finish(Some(crate::conversion::Prior::Fresh))
        };
        let invalid = judge(&flagged.transaction_id, "approved");
        let row = conversion_row(&config, &invalid, NOW + 60_000);
        let tally = row.tally;
        assert_eq!(row.network.as_str(), "n1");
        assert_eq!((row.advertiser.as_str(), row.offer.as_str()), ("adv", "1"));
        assert_eq!(row.hour, ((NOW + 60_000) / HOUR_MS) as u32);
        assert_eq!(
            (tally.conversions, tally.approved, tally.invalid),
            (1, 0, 1)
        );
        assert_eq!(tally.conversion_reasons.get("flagged_click"), Some(&1));

        let approved = Tally::conversion(&judge(&clean.transaction_id, "approved"));
        assert_eq!(
            (approved.conversions, approved.approved, approved.invalid),
            (1, 1, 0)
        );
        // Not judged, still a conversion for CR.
        let declined = Tally::conversion(&judge(&clean.transaction_id, "declined"));
        assert_eq!(
            (declined.conversions, declined.approved, declined.invalid),
            (1, 0, 0)
        );
    }

    fn tally(clicks: u64, blocked: u64, reason: &str) -> Tally {
        let mut t = Tally {
            clicks,
            allowed: clicks - blocked,
            blocked,
            ..Tally::default()
        };
        if blocked > 0 {
            t.reasons.insert(reason.into(), blocked);
        }
        t
    }

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

    /// An hour's rows as (advertiser, offer, tally).
    type Rows<'a> = &'a [(&'a str, &'a str, Tally)];

    fn network(hours: &[(u32, Rows)]) -> Vec<(u32, HourRows)> {
        hours
            .iter()
            .map(|(h, rows)| {
                let mut hr = HourRows::default();
                for (a, o, t) in rows.iter() {
                    hr.add(a, o, t);
                }
                (*h, hr)
            })
            .collect()
    }

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
    fn explain_answers_with_the_kept_decision_or_what_the_id_says() {
        let out = click("offer_id=1&aff_id=n1", "203.0.113.9", BROWSER, NOW);
        assert!(worth_explaining(&out));
        assert!(!worth_explaining(&click(
            "offer_id=1&aff_id=n1",
            "192.0.2.1",
            BROWSER,
            NOW
        )));
        let token = ClickToken::open(&out.transaction_id, &key()).unwrap();
        assert_eq!(
            explain_key_of(&token),
            explain_key((NOW / HOUR_MS) as u32, &[7; 8])
        );

        let kept: Value = serde_json::from_str(&explain_answer(
            &out.transaction_id,
            &token,
            Some(&out.log_line()),
        ))
        .unwrap();
        assert_eq!(kept["kept"], true);
        assert_eq!(kept["verdict"], "block");
        assert_eq!(kept["decision"]["reasons"][0]["code"], "ip_blocklist");
        assert_eq!(kept["decision"]["ip"], "203.0.113.9");

        let gone: Value =
            serde_json::from_str(&explain_answer(&out.transaction_id, &token, None)).unwrap();
        assert_eq!(gone["kept"], false);
        assert_eq!(gone["aff_id"], "n1");
        assert!(gone["note"].as_str().unwrap().contains("record is gone"));
    }

    #[test]
    fn a_batch_carries_the_digest_of_the_config_its_clicks_were_decided_under() {
        // The network's object tells a rule change from a flood by it (crate::flood::ConfigSeen).
        use crate::flood::Thresholds;
        use crate::network::local::{Flush, FlushPolicy, LocalCounts};
        let mut isolate = LocalCounts::new(1, FlushPolicy::default());
        let out = click("offer_id=1&aff_id=n1", "203.0.113.9", BROWSER, NOW);
        let digest = u64::from_str_radix(&out.config_digest, 16).unwrap();
        assert_ne!(digest, 0, "{}", out.config_digest);
        isolate.record_outcome(&out, "", Thresholds::default(), &[7; 8]);
        let Flush::Send(batch) = isolate.flush(&out.click.aff_id, NOW + 60_000) else {
            panic!("a batch is due")
        };
        assert_eq!(batch.config, digest);
    }

    #[test]
    fn a_kept_decision_holds_the_client_ip_as_its_hash_never_as_text() {
        // The decision kept for explain was the log line as logged, the client's IP in it as text
        // for seven days, where the duplicate-IP counts keep only its 64-bit hash.
        use crate::flood::Thresholds;
        use crate::network::keys::ip_hash;
        use crate::network::local::{Flush, FlushPolicy, LocalCounts};
        let mut isolate = LocalCounts::new(1, FlushPolicy::default());
        let out = click("offer_id=1&aff_id=n1", "203.0.113.9", BROWSER, NOW);
        isolate.record_outcome(&out, &out.log_line(), Thresholds::default(), &[7; 8]);
        let Flush::Send(batch) = isolate.flush(&out.click.aff_id, NOW + 60_000) else {
            panic!("a batch is due")
        };
        let kept = &batch.explain[0].1;
        assert!(!kept.contains("203.0.113.9"), "{kept}");
        let token = ClickToken::open(&out.transaction_id, &key()).unwrap();
        let answer: Value =
            serde_json::from_str(&explain_answer(&out.transaction_id, &token, Some(kept))).unwrap();
        let hash = format!("{:016x}", ip_hash("203.0.113.9"));
        let decision = &answer["decision"];
        assert_eq!(
            (&decision["ip"], &decision["ip_hash"]),
            (&Value::Null, &json!(hash))
        );
        assert_eq!(decision["reasons"][0]["code"], "ip_blocklist");
        assert_eq!(decision["reasons"][0]["value"], format!("ip_hash:{hash}"));
        assert_eq!(decision["offer_id"], "1");
        // A record kept before, with the IP as text, still reads.
        let old: Value = serde_json::from_str(&explain_answer(
            &out.transaction_id,
            &token,
            Some(&out.log_line()),
        ))
        .unwrap();
        assert_eq!(old["decision"]["ip"], "203.0.113.9");
    }

    #[test]
    fn a_decision_becomes_one_analytics_point_with_fixed_columns() {
        let blocked = data_point(&click("offer_id=1&aff_id=n1", "203.0.113.9", BROWSER, NOW));
        assert_eq!(blocked.index, "n1");
        assert_eq!(
            &blocked.blobs[..6],
            [
                "block",
                "1",
                "n1",
                "adv",
                "lists.blocked_ips",
                "ip_blocklist"
            ]
        );
        assert_eq!(blocked.doubles, vec![1.0, 1.0, 0.0, 0.0]);
        let monitored = data_point(&click(
            "offer_id=2&aff_id=n1",
            "192.0.2.1",
            "curl/8.4.0",
            NOW,
        ));
        assert_eq!(
            (monitored.blobs[0].as_str(), monitored.blobs[3].as_str()),
            ("would_block", "")
        );
        assert_eq!(monitored.blobs[5], "bot");
        assert_eq!(&monitored.doubles[..3], [1.0, 0.0, 1.0]);
        assert!(monitored.doubles[3] > 0.0);
        let clean = data_point(&click("offer_id=1&aff_id=n1", "192.0.2.1", BROWSER, NOW));
        assert_eq!(clean.blobs[0], "redirect");
        assert_eq!(clean.blobs.len(), 9);
    }

    #[test]
    fn a_flood_of_flagged_clicks_is_counted_in_full_and_sampled_for_explain() {
        use crate::flood::Thresholds;
        use crate::network::local::{Flush, FlushPolicy, LocalCounts};
        let policy = FlushPolicy {
            max_keys: usize::MAX,
            max_clicks: u32::MAX,
            ..FlushPolicy::default()
        };
        let mut isolate = LocalCounts::new(1, policy);
        let blocked = click("offer_id=1&aff_id=n1", "203.0.113.9", BROWSER, NOW);
        let line = blocked.log_line();
        let n = MAX_EXPLAINED_PER_MINUTE + 50;
        for i in 0..n {
            isolate.record_outcome(
                &blocked,
                &line,
                Thresholds::default(),
                &i.to_be_bytes().repeat(2).try_into().unwrap(),
            );
        }
        // The next minute has a budget of its own.
        let later = click("offer_id=1&aff_id=n1", "203.0.113.9", BROWSER, NOW + 60_000);
        isolate.record_outcome(&later, &line, Thresholds::default(), &[9; 8]);
        let Flush::Send(batch) = isolate.flush(&blocked.click.aff_id, NOW + 61_000) else {
            panic!("a batch is due")
        };
        assert_eq!(batch.explain.len() as u32, MAX_EXPLAINED_PER_MINUTE + 1);
        for tag in ["adv", SUB_ID, COUNTRY] {
            let clicks: u64 = batch
                .report
                .iter()
                .filter(|(k, _)| k.advertiser == tag)
                .map(|(_, t)| t.clicks)
                .sum();
            assert_eq!(clicks, u64::from(n) + 1, "every click is counted: {tag}");
        }
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

    #[test]
    fn a_fold_keeps_the_heaviest_networks_and_the_first_by_name_of_equals() {
        let h = 500_000;
        let mut n = Networks::default();
        for (name, clicks) in [("d", 5), ("a", 1), ("c", 9), ("b", 5), ("e", 5)] {
            n.add(name, network(&[(h, &[("adv", "1", tally(clicks, 0, ""))])]));
        }
        n.fold_to(3);
        assert_eq!(
            n.parts().map(|(k, _)| k).collect::<Vec<_>>(),
            ["b", "c", "d", OTHER]
        );
        assert_eq!((n.count(), n.named(), n.folded), (5, 3, 2));
        let folded: u64 = n
            .other
            .iter()
            .flat_map(|(_, r)| r.rows.values())
            .map(|t| t.clicks)
            .sum();
        assert_eq!(folded, 6);
        // Already within the cap: nothing moves.
        let before = n.clone();
        n.fold_to(3);
        assert_eq!(n, before);
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

    #[cfg(not(target_arch = "wasm32"))]
    proptest! {
        #[test]
        fn adding_tallies_sums_every_field_in_any_order(
            parts in proptest::collection::vec(
                (proptest::array::uniform8(0u64..1000), 0usize..3, 0u64..1000, 0usize..3, 0u64..1000),
                0..20,
            )
        ) {
            let codes = ["bot", "geo", "referrer"];
            let tallies: Vec<Tally> = parts
                .iter()
                .map(|(n, r, rn, c, cn)| Tally {
                    clicks: n[0],
                    allowed: n[1],
                    blocked: n[2],
                    would_block: n[3],
                    conversions: n[4],
                    approved: n[5],
                    invalid: n[6],
                    reasons: BTreeMap::from([(codes[*r].to_owned(), *rn)]),
                    conversion_reasons: BTreeMap::from([(codes[*c].to_owned(), *cn)]),
                    previews: n[7],
                })
                .collect();
            // The sum, field by field, straight from the parts.
            let field = |i: usize| parts.iter().map(|(n, ..)| n[i]).sum::<u64>();
            let (mut reasons, mut conversion_reasons) = (BTreeMap::new(), BTreeMap::new());
            for (_, r, rn, c, cn) in &parts {
                *reasons.entry(codes[*r].to_owned()).or_insert(0) += rn;
                *conversion_reasons.entry(codes[*c].to_owned()).or_insert(0) += cn;
            }
            let expected = Tally {
                clicks: field(0),
                allowed: field(1),
                blocked: field(2),
                would_block: field(3),
                conversions: field(4),
                approved: field(5),
                invalid: field(6),
                reasons,
                conversion_reasons,
                previews: field(7),
            };
            let mut forward = Tally::default();
            tallies.iter().for_each(|t| forward.add(t));
            let mut backward = Tally::default();
            tallies.iter().rev().for_each(|t| backward.add(t));
            prop_assert_eq!(&forward, &expected);
            prop_assert_eq!(&backward, &expected);
            prop_assert_eq!(Tally::from_wire(&forward.to_wire()).unwrap(), forward);
        }
    }
}
