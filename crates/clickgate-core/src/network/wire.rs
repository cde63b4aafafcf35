//! The wire between an isolate and its network's object: every request the object serves, as one
//! [`ObjectRequest`], and the answers it gives.
//!
//! The isolate builds an [`ObjectRequest`] and sends what [`ObjectRequest::encode`] makes of it;
//! the object reads what arrives with [`ObjectRequest::parse`], once, and matches on it. A request
//! is a method (always `POST`), a path, a query naming whose keys it touches ([`Space`]) and a
//! text body:
//!
//! | route | body | answer |
//! |---|---|---|
//! | `/batch` | a [`Batch`] as JSON | a [`Reply`] as JSON |
//! | `/replay` | `r/<key> <expires ms>` per line | `fresh` or `replayed` per line, in order |
//! | `/conversion` | `cv/<key>\n<expires ms>\n<0\|1>`, then `\ncv/<click key>\n<max approved>` | `fresh`, `replayed` or `capped` |
//! | `/operate` | `block\n<by>` or `unblock\n<by>` | a [`Reply`] with the block left in force |
//! | `/report` | `<from hour>\n<to hour>` | the report's hours (`crate::report::network_answer`; a shared object's members folded, `crate::report::Networks::answer`) |
//! | `/explain` | an explain key | the kept decision, or nothing |
//! | `/list` | `<object>\n<day>` (to the directory) | `listed` |
//! | `/networks` | `<day>` (to the directory) | one object per line |
//!
//! These bytes are what isolates and objects of different versions exchange while a deploy rolls
//! out: the tests below hold them byte for byte.

use std::collections::BTreeSet;
use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::alerts::Kind;
use crate::click::Id;
use crate::conversion::{Prior, Rejected};
use crate::fault::{Blame, Corrupt, Fault};
use crate::flood::{Event, FloodBlock, Thresholds};
use crate::hll::HyperLogLog;
use crate::report::{RowKey, Tally};
use crate::signing::ReplayAnswer;

use super::click_ids::MAX_BATCH;
use super::home::{self, Space};
use super::keys::{u32_at, History};
use crate::stored::StoreKey;

/// The one method the object serves.
pub(crate) const METHOD: &str = "POST";

/// A request to a network's object (or to the directory, which is one of them).
#[derive(Debug, Clone, PartialEq)]
pub enum ObjectRequest {
    /// `/batch`: what one isolate counted for one network; answered with a [`Reply`].
    Batch { space: Space, batch: Batch },
    /// `/replay`: click-id uses, `(r/<key>, expires ms)`, judged in order; answered with one
    /// `fresh` or `replayed` each ([`encode_click_id_answers`]).
    ClickIds {
        space: Space,
        uses: Vec<(String, u64)>,
    },
    /// `/conversion`: one postback's event, and its click's approvals when it would be approved;
    /// answered with a [`Prior`] ([`encode_seen`]).
    Conversion {
        space: Space,
        conversion: ConversionUse,
    },
    /// `/reject`: another system's rejection of one click, kept under its `rj/` key until
    /// `expires_ms`; answered with the rejection kept ([`encode_rejected`]).
    Reject {
        space: Space,
        key: String,
        expires_ms: u64,
        reason: String,
    },
    /// `/operate`: an operator's block or lift; answered with a [`Reply`] whose `block` is the
    /// block left in force.
    Operate { space: Space, operation: Operation },
    /// `/report`: the report's hours from `from_hour` up to `to_hour`.
    Report {
        space: Space,
        from_hour: u32,
        to_hour: u32,
    },
    /// `/explain`: one click's kept decision, by its explain key (a [`StoreKey::Explain`]).
    Explain { space: Space, key: String },
    /// `/list`, to the directory: the object `object` had report data on `day`.
    List { object: String, day: u32 },
    /// `/networks`, to the directory: the objects with report data on or after `since_day`.
    Networks { since_day: u32 },
}

/// A postback's one-time use of its event key (`cv/…`), kept until `expires_ms`; `counts`: a fresh
/// one adds to the flood day's conversions; `approvals`: the click's key (`cv/…`) and how many
/// approved conversions it may hold, when this one would be approved; `rejection`: the click's
/// rejection key (`rj/…`), when the conversion's rule reads rejections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversionUse {
    pub key: String,
    pub expires_ms: u64,
    pub counts: bool,
    pub approvals: Option<(String, u32)>,
    pub rejection: Option<String>,
}

/// An operator's change to a network's flood block, and who made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    Block { by: String },
    Unblock { by: String },
}

impl Operation {
    /// The step of the network's flood state this is.
    pub fn event(self) -> Event {
        match self {
            Operation::Block { by } => Event::Impose { by },
            Operation::Unblock { by } => Event::Lift { by },
        }
    }
}

/// Why a request is not one the object serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// No route by this method and path.
    UnknownRoute { method: String, path: String },
    /// The query does not say whose keys to use.
    Query(String),
    /// The body is not the route's.
    Body {
        route: &'static str,
        problem: String,
    },
}

impl WireError {
    /// The HTTP status the object answers with.
    pub fn status(&self) -> u16 {
        match self {
            WireError::UnknownRoute { .. } => 404,
            WireError::Query(_) | WireError::Body { .. } => 400,
        }
    }
}

/// The object's callers are the deployment's own isolates: a request it cannot read means the
/// two sides disagree, a runtime fault.
impl Fault for WireError {
    fn blame(&self) -> Blame {
        Blame::Runtime
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::UnknownRoute { method, path } => write!(f, "no route {method} {path}"),
            WireError::Query(problem) => f.write_str(problem),
            WireError::Body { route, problem } => write!(f, "{route}: {problem}"),
        }
    }
}

const BATCH: &str = "/batch";
const REPLAY: &str = "/replay";
const CONVERSION: &str = "/conversion";
const OPERATE: &str = "/operate";
const REJECT: &str = "/reject";
const REPORT: &str = "/report";
const EXPLAIN: &str = "/explain";
const LIST: &str = "/list";
const NETWORKS: &str = "/networks";

impl ObjectRequest {
    /// Reads a request as it arrives: `path` without its query, `query` the text after `?`
    /// (possibly empty).
    pub fn parse(
        method: &str,
        path: &str,
        query: &str,
        body: &str,
    ) -> Result<ObjectRequest, WireError> {
        let unknown = || WireError::UnknownRoute {
            method: method.to_owned(),
            path: path.to_owned(),
        };
        if method != METHOD {
            return Err(unknown());
        }
        let space = Space::from_query(query).map_err(|e| WireError::Query(e.to_string()))?;
        let route = [
            BATCH, REPLAY, CONVERSION, REJECT, OPERATE, REPORT, EXPLAIN, LIST, NETWORKS,
        ]
        .into_iter()
        .find(|r| *r == path)
        .ok_or_else(unknown)?;
        let body_error = |problem: String| WireError::Body { route, problem };
        let request = match route {
            BATCH => {
                let batch = Batch::parse(body).map_err(|e| body_error(e.to_string()))?;
                // A shared object's request names the network whose keys it touches: a batch of
                // another is refused, so nothing mixes.
                if !space.admits(&batch.network) {
                    return Err(body_error("a batch of another network".into()));
                }
                ObjectRequest::Batch { space, batch }
            }
            REPLAY => ObjectRequest::ClickIds {
                space,
                uses: parse_click_ids(body).map_err(body_error)?,
            },
            CONVERSION => ObjectRequest::Conversion {
                space,
                conversion: ConversionUse::parse(body).map_err(body_error)?,
            },
            REJECT => {
                let mut parts = body.splitn(3, '\n');
                let (Some(key), Some(Ok(expires_ms)), Some(reason)) = (
                    parts.next().filter(|k| k.starts_with("rj/")),
                    parts.next().map(str::parse::<u64>),
                    parts.next(),
                ) else {
                    return Err(body_error(
                        "expected `rj/<key>\\n<expires ms>\\n<reason>`".into(),
                    ));
                };
                ObjectRequest::Reject {
                    space,
                    key: key.to_owned(),
                    expires_ms,
                    reason: reason.to_owned(),
                }
            }
            OPERATE => ObjectRequest::Operate {
                space,
                operation: match body.split_once('\n') {
                    Some(("block", by)) => Operation::Block { by: by.to_owned() },
                    Some(("unblock", by)) => Operation::Unblock { by: by.to_owned() },
                    _ => return Err(body_error("expected `block|unblock\\n<by>`".into())),
                },
            },
            REPORT => {
                let (from_hour, to_hour) = body
                    .split_once('\n')
                    .and_then(|(f, t)| Some((f.parse::<u32>().ok()?, t.parse::<u32>().ok()?)))
                    .ok_or_else(|| body_error("expected `<from hour>\\n<to hour>`".into()))?;
                ObjectRequest::Report {
                    space,
                    from_hour,
                    to_hour,
                }
            }
            EXPLAIN => {
                if !matches!(StoreKey::parse(body), Some(StoreKey::Explain(..))) {
                    return Err(body_error("expected an explain key".into()));
                }
                ObjectRequest::Explain {
                    space,
                    key: body.to_owned(),
                }
            }
            LIST => {
                let (object, day) = body
                    .split_once('\n')
                    .filter(|(n, _)| home::is_listable(n))
                    .and_then(|(n, d)| Some((n, d.parse::<u32>().ok()?)))
                    .ok_or_else(|| body_error("expected `<object>\\n<day>`".into()))?;
                ObjectRequest::List {
                    object: object.to_owned(),
                    day,
                }
            }
            _ => ObjectRequest::Networks {
                since_day: body
                    .trim()
                    .parse()
                    .map_err(|_| body_error("expected a day number".into()))?,
            },
        };
        Ok(request)
    }

    /// What the isolate sends: the method, the path with its query, and the body.
    pub fn encode(&self) -> (&'static str, String, String) {
        let (route, space, body) = match self {
            ObjectRequest::Batch { space, batch } => (BATCH, Some(space), batch.to_json()),
            ObjectRequest::ClickIds { space, uses } => {
                let lines: Vec<String> = uses.iter().map(|(k, e)| format!("{k} {e}")).collect();
                (REPLAY, Some(space), lines.join("\n"))
            }
            ObjectRequest::Conversion { space, conversion } => {
                (CONVERSION, Some(space), conversion.encode())
            }
            ObjectRequest::Reject {
                space,
                key,
                expires_ms,
                reason,
            } => (
                REJECT,
                Some(space),
                format!("{key}\n{expires_ms}\n{reason}"),
            ),
            ObjectRequest::Operate { space, operation } => {
                let body = match operation {
                    Operation::Block { by } => format!("block\n{by}"),
                    Operation::Unblock { by } => format!("unblock\n{by}"),
                };
                (OPERATE, Some(space), body)
            }
            ObjectRequest::Report {
                space,
                from_hour,
                to_hour,
            } => (REPORT, Some(space), format!("{from_hour}\n{to_hour}")),
            ObjectRequest::Explain { space, key } => (EXPLAIN, Some(space), key.clone()),
            ObjectRequest::List { object, day } => (LIST, None, format!("{object}\n{day}")),
            ObjectRequest::Networks { since_day } => (NETWORKS, None, since_day.to_string()),
        };
        let query = space.map(Space::query).unwrap_or_default();
        let path = if query.is_empty() {
            route.to_owned()
        } else {
            format!("{route}?{query}")
        };
        (METHOD, path, body)
    }
}

impl ConversionUse {
    fn encode(&self) -> String {
        let mut body = format!(
            "{}\n{}\n{}",
            self.key,
            self.expires_ms,
            u8::from(self.counts)
        );
        if let Some((key, max)) = &self.approvals {
            body.push_str(&format!("\n{key}\n{max}"));
        }
        if let Some(key) = &self.rejection {
            body.push('\n');
            body.push_str(key);
        }
        body
    }

    fn parse(body: &str) -> Result<ConversionUse, String> {
        let mut parts = body.split('\n');
        let (Some(key), Some(Ok(expires_ms)), Some(counts)) = (
            parts.next().filter(|k| k.starts_with("cv/")),
            parts.next().map(str::parse::<u64>),
            parts.next().and_then(|c| match c {
                "0" => Some(false),
                "1" => Some(true),
                _ => None,
            }),
        ) else {
            return Err("expected `cv/<key>\\n<expires ms>\\n<0|1>`".into());
        };
        let mut parts = parts.peekable();
        let approvals = match parts.peek() {
            Some(k) if k.starts_with("cv/") => {
                let k = (*k).to_owned();
                parts.next();
                match parts.next().map(str::parse::<u32>) {
                    Some(Ok(max)) => Some((k, max)),
                    _ => return Err("expected `cv/<click key>\\n<max approved>`".into()),
                }
            }
            _ => None,
        };
        let rejection = match parts.next() {
            Some(k) if k.starts_with("rj/") => Some(k.to_owned()),
            None => None,
            Some(_) => return Err("expected `rj/<rejection key>` or nothing".into()),
        };
        if parts.next().is_some() {
            return Err("expected nothing after the rejection key".into());
        }
        Ok(ConversionUse {
            key: key.to_owned(),
            expires_ms,
            counts,
            approvals,
            rejection,
        })
    }
}

/// Reads a `/replay` body into `(key, expires_ms)` uses. The one-question form of earlier
/// versions, `r/<key>\n<expires ms>`, is read too: while a deploy rolls out, old isolates still
/// send it, and the one-line answer is the same.
fn parse_click_ids(body: &str) -> Result<Vec<(String, u64)>, String> {
    if let Some((key, Ok(expires_ms))) = body
        .split_once('\n')
        .filter(|(k, _)| k.starts_with("r/") && !k.contains(' '))
        .map(|(k, e)| (k, e.parse::<u64>()))
    {
        return Ok(vec![(key.to_owned(), expires_ms)]);
    }
    let uses = body
        .lines()
        .map(|line| {
            line.split_once(' ')
                .filter(|(k, _)| k.starts_with("r/"))
                .and_then(|(k, e)| Some((k.to_owned(), e.parse::<u64>().ok()?)))
                .ok_or_else(|| format!("expected `r/<key> <expires ms>`, got `{line}`"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if uses.is_empty() || uses.len() > MAX_BATCH {
        return Err(format!(
            "a batch holds 1 to {MAX_BATCH} questions, not {}",
            uses.len()
        ));
    }
    Ok(uses)
}

// ---------------------------------------------------------------------------------------------
// The answers that are not JSON.

/// The object's answer to `/replay`: `fresh` or `replayed` per use (`true`: used before), in order.
pub fn encode_click_id_answers(used: &[bool]) -> String {
    let lines: Vec<&str> = used
        .iter()
        .map(|&u| if u { "replayed" } else { "fresh" })
        .collect();
    lines.join("\n")
}

/// The isolate's reading of a `/replay` answer to `n` questions, in order. A short, long or
/// garbled answer is a fault for the whole batch: no click is told it is fresh on a guess.
pub fn parse_click_id_answers(
    text: &str,
    n: usize,
) -> Result<Vec<ReplayAnswer>, BadClickIdAnswers> {
    let answers = text
        .lines()
        .map(|line| match line {
            "fresh" => Ok(ReplayAnswer::Fresh),
            "replayed" => Ok(ReplayAnswer::Replayed),
            other => Err(BadClickIdAnswers::Unexpected(other.to_owned())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if answers.len() != n {
        return Err(BadClickIdAnswers::Count {
            answers: answers.len(),
            questions: n,
        });
    }
    Ok(answers)
}

/// Why a `/replay` answer was not read: a line that is no answer, or not one per question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadClickIdAnswers {
    Unexpected(String),
    Count { answers: usize, questions: usize },
}

impl fmt::Display for BadClickIdAnswers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadClickIdAnswers::Unexpected(line) => write!(f, "unexpected answer `{line}`"),
            BadClickIdAnswers::Count { answers, questions } => {
                write!(f, "{answers} answers for {questions} questions")
            }
        }
    }
}

impl std::error::Error for BadClickIdAnswers {}

/// The object's answer to `/conversion`.
pub fn encode_seen(seen: &Prior) -> String {
    match seen {
        Prior::Fresh => "fresh".to_owned(),
        Prior::Duplicate => "replayed".to_owned(),
        Prior::Capped => "capped".to_owned(),
        Prior::Rejected(reason) => format!("rejected\n{reason}"),
    }
}

/// The isolate's reading of a `/conversion` answer.
pub fn parse_seen(text: &str) -> Result<Prior, Corrupt> {
    match text {
        "fresh" => Ok(Prior::Fresh),
        "replayed" => Ok(Prior::Duplicate),
        "capped" => Ok(Prior::Capped),
        other => match other.split_once('\n') {
            Some(("rejected", reason)) => Ok(Prior::Rejected(reason.to_owned())),
            _ => Err(Corrupt::new(
                "conversion answer",
                format!("unexpected answer `{other}`"),
            )),
        },
    }
}

/// The object's answer to `/reject`: `new` or `kept` (a rejection was already held), then the
/// reason held.
pub fn encode_rejected(kept: &Rejected) -> String {
    let word = if kept.new { "new" } else { "kept" };
    format!("{word}\n{}", kept.reason)
}

/// The isolate's reading of a `/reject` answer.
pub fn parse_rejected(text: &str) -> Result<Rejected, Corrupt> {
    let (new, reason) = match text.split_once('\n') {
        Some(("new", reason)) => (true, reason),
        Some(("kept", reason)) => (false, reason),
        _ => {
            return Err(Corrupt::new(
                "rejection answer",
                format!("unexpected answer `{text}`"),
            ))
        }
    };
    Ok(Rejected {
        reason: reason.to_owned(),
        new,
    })
}

/// The directory's answer to `/list`.
pub const LISTED: &str = "listed";

/// The directory's answer to `/networks`: one object per line.
pub fn encode_objects<'a>(objects: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for object in objects {
        out.push_str(object);
        out.push('\n');
    }
    out
}

/// The isolate's reading of a `/networks` answer: the objects a network can live in. A line that
/// names none (a broken directory's) is neither asked nor echoed into a report, only counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listed {
    pub objects: Vec<String>,
    pub malformed: usize,
}

pub fn parse_objects(text: &str) -> Listed {
    let mut listed = Listed::default();
    for line in text.lines() {
        if home::is_listable(line) {
            listed.objects.push(line.to_owned());
        } else {
            listed.malformed += 1;
        }
    }
    listed
}

impl Listed {
    /// What a report names as not counted: the objects that did not answer, and for the
    /// malformed lines, whose networks cannot be known, one entry that says how many there were.
    pub fn missing(&self, mut not_answering: Vec<String>) -> Vec<String> {
        if self.malformed > 0 {
            not_answering.push(format!(
                "({} malformed directory entr{})",
                self.malformed,
                if self.malformed == 1 { "y" } else { "ies" }
            ));
        }
        not_answering
    }
}

// ---------------------------------------------------------------------------------------------
// A batch: what one isolate counted for one network since its last flush.

#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// A random id the isolate picked at start; with `seq` it names the batch for deduplication.
    pub isolate: u64,
    /// 1, 2, 3… per isolate and network. A retried batch keeps its number.
    pub seq: u64,
    pub(crate) ips: Vec<IpDelta>,
    pub subs: Vec<SubDelta>,
    /// Clicks and flagged clicks per UTC minute (minutes since the epoch), for the flood threshold.
    pub flood: Vec<(u64, u32, u32)>,
    /// The network's flood thresholds as the sending isolate's config has them.
    pub thresholds: Thresholds,
    /// The digest of the config its clicks were decided under, its 12 hex digits as a number (0:
    /// not said), so that the object can tell a rule change from a flood
    /// ([`crate::flood::ConfigSeen`]). A number keeps the batch small where the isolate queues it.
    pub config: u64,
    /// The network the batch counts for (its object registers itself for reports under it).
    pub network: Id,
    /// The fraud report's counts (see [`crate::report`]).
    pub report: Vec<(RowKey, Tally)>,
    /// Decisions kept for `explain`: storage key and log line.
    pub explain: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IpDelta {
    pub offer: Id,
    pub ip: u64,
    pub hour: u32,
    pub clicks: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubDelta {
    pub offer: Id,
    pub day: u32,
    pub(crate) sketch: HyperLogLog,
}

/// The object's answer: the totals for every key of the batch, the batch included, and the
/// network's flood block, if one is in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    pub duplicate: bool,
    pub ips: Vec<(Id, u64, History)>,
    pub subs: Vec<(Id, u32, HyperLogLog)>,
    pub block: Option<FloodBlock>,
    /// What this request changed in the network's block that is worth an alert (a trip, a lift):
    /// told only in the answer to the request that changed it, so one isolate hears of it once.
    pub alerts: Vec<(Kind, String)>,
}

impl Batch {
    pub fn to_json(&self) -> String {
        let mut v = json!({
            "isolate": format!("{:016x}", self.isolate),
            "seq": self.seq,
            "ips": self.ips.iter().map(|d| json!([d.offer.as_str(), format!("{:016x}", d.ip), d.hour, d.clicks])).collect::<Vec<_>>(),
            "subs": self.subs.iter().map(|d| json!([d.offer.as_str(), d.day, B64.encode(d.sketch.to_bytes())])).collect::<Vec<_>>(),
            "flood": self.flood,
            "thresholds": self.thresholds.to_json(),
            "network": self.network.as_str(),
            "report": self.report.iter().map(|(k, t)| json!([k.hour, k.advertiser, k.offer, t.to_wire()])).collect::<Vec<_>>(),
            "explain": self.explain,
        });
        // Only when known: a batch without one is the bytes earlier versions sent.
        if self.config != 0 {
            v["config"] = json!(format!("{:016x}", self.config));
        }
        v.to_string()
    }

    /// Reads a batch sent to the object. Anything malformed is refused whole: a half-applied batch
    /// could not be retried safely.
    pub fn parse(text: &str) -> Result<Batch, BadBatch> {
        Batch::read(text).map_err(BadBatch)
    }

    fn read(text: &str) -> Result<Batch, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("batch is not JSON: {e}"))?;
        let isolate = hex_u64(v.get("isolate")).map_err(|e| format!("isolate: {e}"))?;
        let seq = v
            .get("seq")
            .and_then(Value::as_u64)
            .filter(|s| *s > 0)
            .ok_or("seq: must be a positive integer")?;
        let mut ips = Vec::new();
        for (i, d) in list(&v, "ips")?.iter().enumerate() {
            let delta = (|| {
                Ok::<_, String>(IpDelta {
                    offer: id_at(d, 0)?,
                    ip: hex_u64(d.get(1))?,
                    hour: u32_at(d, 2)?,
                    clicks: u32_at(d, 3)?,
                })
            })()
            .map_err(|e| format!("ips[{i}]: {e}"))?;
            ips.push(delta);
        }
        let mut subs = Vec::new();
        for (i, d) in list(&v, "subs")?.iter().enumerate() {
            let delta = (|| {
                Ok::<_, String>(SubDelta {
                    offer: id_at(d, 0)?,
                    day: u32_at(d, 1)?,
                    sketch: sketch_from(d.get(2))?,
                })
            })()
            .map_err(|e| format!("subs[{i}]: {e}"))?;
            subs.push(delta);
        }
        let mut flood = Vec::new();
        for (i, d) in list(&v, "flood")?.iter().enumerate() {
            let minute = d.get(0).and_then(Value::as_u64);
            match (minute, u32_at(d, 1), u32_at(d, 2)) {
                (Some(m), Ok(c), Ok(f)) => flood.push((m, c, f)),
                _ => return Err(format!("flood[{i}]: must be [minute, clicks, flagged]")),
            }
        }
        let thresholds = Thresholds::from_json(&v["thresholds"])?;
        // A batch from an isolate that does not send it: no digest, no change seen.
        let config = match v.get("config") {
            Some(c) => hex_u64(Some(c)).map_err(|e| format!("config: {e}"))?,
            None => 0,
        };
        let network = v
            .get("network")
            .and_then(Value::as_str)
            .ok_or("network: missing")
            .and_then(|n| Id::parse(n).map_err(|_| "network: not an id"))?;
        let mut report = Vec::new();
        for (i, d) in list(&v, "report")?.iter().enumerate() {
            let row = (|| {
                let text = |j: usize| {
                    d.get(j)
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .ok_or("a name")
                };
                let key = RowKey {
                    hour: u32_at(d, 0)?,
                    advertiser: text(1)?,
                    offer: text(2)?,
                };
                Ok::<_, String>((key, Tally::from_wire(d.get(3).unwrap_or(&Value::Null))?))
            })()
            .map_err(|e| format!("report[{i}]: {e}"))?;
            report.push(row);
        }
        let mut explain = Vec::new();
        for (i, d) in list(&v, "explain")?.iter().enumerate() {
            match (
                d.get(0).and_then(Value::as_str),
                d.get(1).and_then(Value::as_str),
            ) {
                (Some(k), Some(line)) if StoreKey::parse(k).is_some() => {
                    explain.push((k.to_owned(), line.to_owned()));
                }
                _ => return Err(format!("explain[{i}]: must be [explain key, line]")),
            }
        }
        Ok(Batch {
            isolate,
            seq,
            ips,
            subs,
            flood,
            thresholds,
            config,
            network,
            report,
            explain,
        })
    }

    /// The storage keys the object reads to apply this batch.
    pub fn storage_keys(&self) -> Vec<String> {
        // Inserted one by one: collecting into a set would bring its own copy of the stable sort.
        let mut keys = BTreeSet::new();
        keys.extend(
            [StoreKey::Seen, StoreKey::Flood]
                .into_iter()
                .chain(self.ips.iter().map(|d| StoreKey::Ip(d.offer.clone(), d.ip)))
                .chain(
                    self.subs
                        .iter()
                        .map(|d| StoreKey::Sub(d.offer.clone(), d.day)),
                )
                .chain(self.report.iter().map(|(k, _)| StoreKey::Report(k.hour)))
                .chain(
                    self.explain
                        .iter()
                        .filter_map(|(k, _)| match StoreKey::parse(k) {
                            Some(StoreKey::Explain(hour, _)) => Some(StoreKey::Report(hour)),
                            _ => None,
                        }),
                ),
        );
        keys.iter().map(StoreKey::to_string).collect()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.ips.is_empty()
            && self.subs.is_empty()
            && self.flood.is_empty()
            && self.report.is_empty()
            && self.explain.is_empty()
    }
}

/// Why a batch was refused: the first thing in it that does not read, with its path
/// (`report[3]: …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadBatch(String);

impl fmt::Display for BadBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadBatch {}

impl Reply {
    pub fn to_json(&self) -> String {
        let mut reply = json!({
            "duplicate": self.duplicate,
            "ips": self.ips.iter().map(|(o, ip, h)| json!([o.as_str(), format!("{ip:016x}"), h.to_json()])).collect::<Vec<_>>(),
            "subs": self.subs.iter().map(|(o, day, s)| json!([o.as_str(), day, B64.encode(s.to_bytes())])).collect::<Vec<_>>(),
            "block": self.block.as_ref().map(|b| json!([b.until_ms, b.cause.as_str(), b.detail])),
        });
        // Only an answer that changed the block carries any: the others are sent as before.
        if !self.alerts.is_empty() {
            reply["alerts"] = self
                .alerts
                .iter()
                .map(|(k, d)| json!([k.as_str(), d]))
                .collect();
        }
        reply.to_string()
    }

    /// The object's answer to a batch; one that does not read back is a runtime fault.
    pub fn parse(text: &str) -> Result<Reply, Corrupt> {
        Reply::read(text).map_err(|e| Corrupt::new("object reply", e))
    }

    fn read(text: &str) -> Result<Reply, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("reply is not JSON: {e}"))?;
        let mut reply = Reply {
            duplicate: v.get("duplicate").and_then(Value::as_bool).unwrap_or(false),
            ..Reply::default()
        };
        for (i, d) in list(&v, "ips")?.iter().enumerate() {
            let entry = (|| {
                let history = History::from_json(d.get(2).unwrap_or(&Value::Null))?;
                Ok::<_, String>((id_at(d, 0)?, hex_u64(d.get(1))?, history))
            })()
            .map_err(|e| format!("ips[{i}]: {e}"))?;
            reply.ips.push(entry);
        }
        for (i, d) in list(&v, "subs")?.iter().enumerate() {
            let entry =
                (|| Ok::<_, String>((id_at(d, 0)?, u32_at(d, 1)?, sketch_from(d.get(2))?)))()
                    .map_err(|e| format!("subs[{i}]: {e}"))?;
            reply.subs.push(entry);
        }
        if let Some(b) = v.get("block").filter(|b| !b.is_null()) {
            reply.block = Some(FloodBlock::read(b, "block: until")?);
        }
        // An object of an older build sends none.
        for (i, a) in v["alerts"].as_array().into_iter().flatten().enumerate() {
            let kind = a.get(0).and_then(Value::as_str).and_then(Kind::parse);
            match (kind, a.get(1).and_then(Value::as_str)) {
                (Some(k), Some(d)) => reply.alerts.push((k, d.to_owned())),
                _ => return Err(format!("alerts[{i}]: must be [kind, detail]")),
            }
        }
        Ok(reply)
    }
}

fn list<'a>(v: &'a Value, field: &str) -> Result<&'a Vec<Value>, String> {
    v.get(field)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{field}: must be a list"))
}

pub(super) fn hex_u64(v: Option<&Value>) -> Result<u64, String> {
    let text = v.and_then(Value::as_str).ok_or("must be a hex string")?;
    if text.len() != 16 {
        return Err(format!("'{text}' is not 16 hex digits"));
    }
    u64::from_str_radix(text, 16).map_err(|_| format!("'{text}' is not 16 hex digits"))
}

fn id_at(v: &Value, i: usize) -> Result<Id, String> {
    let text = v
        .get(i)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("item {i} must be a string"))?;
    Id::parse(text).map_err(|e| format!("id '{text}' {e}"))
}

fn sketch_from(v: Option<&Value>) -> Result<HyperLogLog, String> {
    decode_sketch(v.and_then(Value::as_str).ok_or("sketch must be base64")?)
}

pub(super) fn decode_sketch(text: &str) -> Result<HyperLogLog, String> {
    let bytes = B64.decode(text).map_err(|_| "sketch is not base64")?;
    HyperLogLog::from_bytes(&bytes).ok_or_else(|| "sketch is not a HyperLogLog of ours".into())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::flood::FloodCause;
    use crate::network::click_ids::uses;
    use crate::network::keys::ip_hash;
    use crate::token::NONCE_LEN;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const NOW: u64 = 1_795_392_000_000; // 2026-11-23T00:00:00Z

    /// What the object reads from what the isolate sends.
    fn through(request: &ObjectRequest) -> Result<ObjectRequest, WireError> {
        let (method, path, body) = request.encode();
        let (path, query) = path.split_once('?').unwrap_or((&path, ""));
        ObjectRequest::parse(method, path, query, &body)
    }

    fn read(path: &str, body: &str) -> Result<ObjectRequest, WireError> {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        ObjectRequest::parse(METHOD, path, query, body)
    }

    fn shared() -> Space {
        Space::Of(id("made-up-9"))
    }

    /// One request of each route, as the isolate builds them.
    fn one_of_each() -> Vec<ObjectRequest> {
        let mut b = batch(0xfeed, 3, "192.0.2.1", 499_000, 4);
        b.network = id("made-up-9");
        vec![
            ObjectRequest::Batch {
                space: shared(),
                batch: b,
            },
            ObjectRequest::ClickIds {
                space: Space::Whole,
                uses: vec![("r/a".into(), NOW + 10), ("r/b".into(), NOW + 20)],
            },
            ObjectRequest::Conversion {
                space: shared(),
                conversion: ConversionUse {
                    key: "cv/net/1/e".into(),
                    expires_ms: NOW,
                    counts: true,
                    approvals: Some(("cv/net/1".into(), 2)),
                    rejection: None,
                },
            },
            ObjectRequest::Conversion {
                space: Space::Whole,
                conversion: ConversionUse {
                    key: "cv/net/1/e".into(),
                    expires_ms: NOW,
                    counts: false,
                    approvals: None,
                    rejection: None,
                },
            },
            ObjectRequest::Conversion {
                space: Space::Whole,
                conversion: ConversionUse {
                    key: "cv/net/1/e".into(),
                    expires_ms: NOW,
                    counts: false,
                    approvals: None,
                    rejection: Some("rj/00ff".into()),
                },
            },
            ObjectRequest::Reject {
                space: shared(),
                key: "rj/00ff".into(),
                expires_ms: NOW,
                reason: "install rejected\nby the MMP".into(),
            },
            ObjectRequest::Operate {
                space: Space::Whole,
                operation: Operation::Block {
                    by: "ops@example.com".into(),
                },
            },
            ObjectRequest::Operate {
                space: shared(),
                operation: Operation::Unblock { by: String::new() },
            },
            ObjectRequest::Report {
                space: Space::Members,
                from_hour: 499_000,
                to_hour: 499_023,
            },
            ObjectRequest::Explain {
                space: shared(),
                key: crate::stored::explain_key(499_001, &[1; NONCE_LEN]),
            },
            ObjectRequest::List {
                object: "unlisted:3".into(),
                day: 20_415,
            },
            ObjectRequest::Networks { since_day: 20_415 },
        ]
    }

    #[test]
    fn every_request_reads_back_as_it_was_sent() {
        for request in one_of_each() {
            assert_eq!(through(&request), Ok(request.clone()));
        }
    }

    #[test]
    fn the_bytes_on_the_wire_are_those_of_earlier_versions() {
        // Isolates and objects of two versions talk while a deploy rolls out: these are the
        // paths and bodies the Worker sent before the requests were one type.
        let sent: Vec<(&str, String, String)> =
            one_of_each().iter().map(ObjectRequest::encode).collect();
        let expected_batch = concat!(
            r#"{"explain":[],"flood":[],"ips":[["1","#,
            r#""4d0e1bc6845259f5",499000,4]],"isolate":"000000000000feed","network":"made-up-9","#,
            r#""report":[],"seq":3,"subs":[],"thresholds":[null,null,null,20.0,600,0.8,7]}"#
        );
        let expected: Vec<(&str, &str, String)> = vec![
            ("POST", "/batch?in=made-up-9", expected_batch.into()),
            (
                "POST",
                "/replay",
                format!("r/a {}\nr/b {}", NOW + 10, NOW + 20),
            ),
            (
                "POST",
                "/conversion?in=made-up-9",
                format!("cv/net/1/e\n{NOW}\n1\ncv/net/1\n2"),
            ),
            ("POST", "/conversion", format!("cv/net/1/e\n{NOW}\n0")),
            // A conversion whose rule reads rejections names the click's rejection key last.
            (
                "POST",
                "/conversion",
                format!("cv/net/1/e\n{NOW}\n0\nrj/00ff"),
            ),
            (
                "POST",
                "/reject?in=made-up-9",
                format!("rj/00ff\n{NOW}\ninstall rejected\nby the MMP"),
            ),
            ("POST", "/operate", "block\nops@example.com".into()),
            ("POST", "/operate?in=made-up-9", "unblock\n".into()),
            ("POST", "/report?members", "499000\n499023".into()),
            (
                "POST",
                "/explain?in=made-up-9",
                crate::stored::explain_key(499_001, &[1; NONCE_LEN]),
            ),
            ("POST", "/list", "unlisted:3\n20415".into()),
            ("POST", "/networks", "20415".into()),
        ];
        assert_eq!(sent.len(), expected.len());
        for ((method, path, body), (m, p, b)) in sent.iter().zip(&expected) {
            assert_eq!(
                (*method, path.as_str(), body.as_str()),
                (*m, *p, b.as_str())
            );
        }
        // The answers that are not JSON.
        assert_eq!(encode_click_id_answers(&[false, true]), "fresh\nreplayed");
        assert_eq!(
            [
                Prior::Fresh,
                Prior::Duplicate,
                Prior::Capped,
                Prior::Rejected("mmp: click injection".into())
            ]
            .map(|s| encode_seen(&s)),
            [
                "fresh",
                "replayed",
                "capped",
                "rejected\nmmp: click injection"
            ]
        );
        assert_eq!(
            encode_objects(["net-7", "unlisted:3"]),
            "net-7\nunlisted:3\n"
        );
        let block = Reply {
            block: Some(FloodBlock {
                until_ms: 86_400_000,
                cause: FloodCause::Operator,
                detail: "ops".into(),
            }),
            ..Reply::default()
        };
        assert_eq!(
            block.to_json(),
            r#"{"block":[86400000,"operator","ops"],"duplicate":false,"ips":[],"subs":[]}"#
        );
    }

    #[test]
    fn answers_read_back_as_they_were_sent_and_bad_ones_are_faults() {
        let used = [false, true, true];
        assert_eq!(
            parse_click_id_answers(&encode_click_id_answers(&used), 3),
            Ok(vec![
                ReplayAnswer::Fresh,
                ReplayAnswer::Replayed,
                ReplayAnswer::Replayed
            ])
        );
        assert!(parse_click_id_answers("fresh", 2).is_err());
        assert!(parse_click_id_answers("fresh\nmaybe", 2).is_err());
        assert!(parse_click_id_answers("fresh\nfresh\nfresh", 2).is_err());
        for seen in [
            Prior::Fresh,
            Prior::Duplicate,
            Prior::Capped,
            Prior::Rejected("a reason\nacross lines".into()),
        ] {
            assert_eq!(parse_seen(&encode_seen(&seen)), Ok(seen));
        }
        assert!(parse_seen("").is_err() && parse_seen("Fresh").is_err());
        assert!(parse_seen("refused\nwhy").is_err());
        // An answer that does not read is the runtime's fault, its message as the logs show it.
        let e = parse_seen("Fresh").unwrap_err();
        assert_eq!(
            (e.blame(), e.to_string()),
            (Blame::Runtime, "unexpected answer `Fresh`".into())
        );
        assert_eq!(parse_rejected("old").unwrap_err().what, "rejection answer");
        for new in [true, false] {
            let kept = Rejected {
                reason: "mmp: install\nrejected".into(),
                new,
            };
            assert_eq!(parse_rejected(&encode_rejected(&kept)), Ok(kept));
        }
        assert!(parse_rejected("new").is_err() && parse_rejected("old\nwhy").is_err());
        assert_eq!(
            parse_objects(&encode_objects(["net-7", "unlisted:3"])).objects,
            ["net-7", "unlisted:3"]
        );
        assert_eq!(parse_objects(""), Listed::default());
    }

    #[test]
    fn unknown_routes_are_named_and_refused_with_404() {
        let get = ObjectRequest::parse("GET", "/batch", "", "").unwrap_err();
        assert_eq!(get.to_string(), "no route GET /batch");
        assert_eq!(get.status(), 404);
        let other = read("/counts", "").unwrap_err();
        assert_eq!(other.to_string(), "no route POST /counts");
        assert_eq!(other.status(), 404);
        assert!(read("/", "").is_err() && read("/batch/", "").is_err());
        let query = read("/replay?x=1", "r/a 1").unwrap_err();
        assert_eq!(query, WireError::Query("unknown query `x=1`".into()));
        assert_eq!(query.status(), 400);
    }

    #[test]
    fn malformed_bodies_are_errors_that_name_their_route() {
        let mut other = batch(1, 1, "192.0.2.1", 10, 1);
        other.network = id("made-up-90");
        let bad: Vec<(&str, String)> = vec![
            ("/batch", "{".into()),
            ("/batch?in=made-up-9", other.to_json()),
            ("/batch?members", batch(1, 1, "192.0.2.1", 10, 1).to_json()),
            ("/replay", String::new()),
            ("/replay", "r/a".into()),
            ("/replay", "x/a 12".into()),
            ("/replay", "r/a soon".into()),
            ("/replay", vec!["r/a 1"; MAX_BATCH + 1].join("\n")),
            ("/conversion", "cv/a\n12".into()),
            ("/conversion", "x/a\n12\n1".into()),
            ("/conversion", "cv/a\nsoon\n1".into()),
            ("/conversion", "cv/a\n12\n2".into()),
            ("/conversion", "cv/a\n12\n1\ncv/c".into()),
            ("/conversion", "cv/a\n12\n1\nx/c\n2".into()),
            ("/conversion", "cv/a\n12\n1\ncv/c\n2\n3".into()),
            ("/operate", "block".into()),
            ("/operate", "lift\nops".into()),
            ("/report", "499000".into()),
            ("/report", "499000\n-1".into()),
            ("/explain", "report/00499001".into()),
            ("/explain", String::new()),
            ("/list", "a/b\n20415".into()),
            ("/list", "unlisted:16\n20415".into()),
            ("/list", "net-7".into()),
            ("/networks", "yesterday".into()),
        ];
        for (path, body) in bad {
            let error = read(path, &body).unwrap_err();
            let route = path.split('?').next().unwrap();
            assert!(
                matches!(&error, WireError::Body { route: r, .. } if *r == route),
                "{path} {body:?}: {error:?}"
            );
            assert_eq!(error.status(), 400);
        }
        assert_eq!(
            read("/batch?in=made-up-9", &other.to_json())
                .unwrap_err()
                .to_string(),
            "/batch: a batch of another network"
        );
    }

    #[test]
    fn the_one_question_form_of_earlier_isolates_is_still_read() {
        let body = format!("r/a\n{}", NOW + 3);
        let Ok(ObjectRequest::ClickIds { uses: asked, .. }) = read("/replay", &body) else {
            panic!("not read");
        };
        assert_eq!(asked, vec![("r/a".to_owned(), NOW + 3)]);
        let asked: Vec<(&str, u64)> = asked.iter().map(|(k, e)| (k.as_str(), *e)).collect();
        let (used, _) = uses(&asked, Default::default(), NOW);
        assert_eq!(encode_click_id_answers(&used), "fresh");
    }

    pub(crate) fn id(s: &str) -> Id {
        Id::parse(s).unwrap()
    }

    /// A batch of one IP's clicks on offer 1 of `net-1`, for the tests of the object's and the
    /// isolate's counts too.
    pub(crate) fn batch(isolate: u64, seq: u64, ip: &str, hour: u32, clicks: u32) -> Batch {
        Batch {
            isolate,
            seq,
            ips: vec![IpDelta {
                offer: id("1"),
                ip: ip_hash(ip),
                hour,
                clicks,
            }],
            subs: vec![],
            flood: vec![],
            thresholds: Thresholds::default(),
            config: 0,
            network: id("net-1"),
            report: vec![],
            explain: vec![],
        }
    }

    #[test]
    fn batches_and_replies_survive_the_wire_and_bad_ones_name_the_problem() {
        let mut b = batch(0xfeed, 3, "192.0.2.1", 499_000, 4);
        let mut sketch = HyperLogLog::default();
        sketch.insert("s1");
        b.subs.push(SubDelta {
            offer: id("1"),
            day: 20_000,
            sketch: sketch.clone(),
        });
        let mut tally = Tally {
            clicks: 3,
            blocked: 1,
            allowed: 2,
            ..Tally::default()
        };
        tally.reasons.insert("bot".into(), 1);
        b.report.push((
            RowKey {
                hour: 499_000,
                advertiser: "adv".into(),
                offer: "1".into(),
            },
            tally,
        ));
        b.explain.push((
            crate::stored::explain_key(499_000, &[1; NONCE_LEN]),
            "{\"event\":\"click\"}".into(),
        ));
        b.config = 0x0123_4567_89ab;
        assert_eq!(Batch::parse(&b.to_json()), Ok(b.clone()));
        let bad = b.to_json().replace("explain/00499000", "explain/x");
        let problem = |text: &str| Batch::parse(text).unwrap_err().to_string();
        assert!(problem(&bad).starts_with("explain[0]"));
        let reply = Reply {
            duplicate: true,
            ips: vec![(id("1"), 7, History(vec![(1, 2)]))],
            subs: vec![(id("1"), 20_000, sketch)],
            block: Some(FloodBlock {
                until_ms: 86_400_000,
                cause: FloodCause::PerMinute,
                detail: "12 clicks, ceiling 10".into(),
            }),
            alerts: vec![(
                Kind::FloodTripped,
                "per_minute: 12 clicks, ceiling 10".into(),
            )],
        };
        assert_eq!(Reply::parse(&reply.to_json()), Ok(reply));
        // An answer of an older build has no alerts; one whose alert is not [kind, detail] is
        // refused.
        let old = r#"{"duplicate":false,"ips":[],"subs":[],"block":null}"#;
        assert_eq!(Reply::parse(old).map(|r| r.alerts), Ok(Vec::new()));
        let bad = r#"{"ips":[],"subs":[],"alerts":[["flood_tripped"]]}"#;
        assert!(Reply::parse(bad).is_err());

        let bad = b.to_json().replace("\"seq\":3", "\"seq\":0");
        assert_eq!(problem(&bad), "seq: must be a positive integer");
        let bad = b.to_json().replace(",4]", ",-4]");
        assert!(problem(&bad).starts_with("ips[0]: item 3"));
        assert!(problem("{").starts_with("batch is not JSON"));
    }

    #[test]
    fn a_broken_directory_s_junk_is_not_echoed_into_the_report_s_missing_networks() {
        // Every line of the directory's answer was asked as an object and, when it did not
        // answer, named in `missing_networks` as it was: markup, paths, anything.
        let listed = parse_objects("net-7\n<script>x</script>\nunlisted:3\nunlisted:99999\n..\n\n");
        assert_eq!(listed.objects, ["net-7", "unlisted:3"]);
        assert_eq!(
            listed.missing(vec!["net-7".into()]),
            ["net-7", "(4 malformed directory entries)"]
        );
        let sound = parse_objects("net-7\nunlisted:3\n");
        assert_eq!(sound.missing(vec!["unlisted:3".into()]), ["unlisted:3"]);
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::*;
        use proptest::prelude::*;

        const ID: &str = "[A-Za-z0-9._-]{0,40}[A-Za-z0-9_-][A-Za-z0-9._-]{0,23}";

        fn space() -> impl Strategy<Value = Space> {
            prop_oneof![
                Just(Space::Whole),
                Just(Space::Members),
                ID.prop_map(|n| Space::Of(id(&n))),
            ]
        }

        proptest! {
            #[test]
            fn click_ids_read_back_as_they_were_sent(
                space in space(),
                asked in prop::collection::vec(("r/[!-~]{1,40}", any::<u64>()), 1..=MAX_BATCH),
            ) {
                let request = ObjectRequest::ClickIds { space, uses: asked };
                prop_assert_eq!(through(&request), Ok(request));
            }

            #[test]
            fn conversions_read_back_as_they_were_sent(
                space in space(),
                key in "cv/[!-~ ]{0,40}",
                expires_ms in any::<u64>(),
                counts in any::<bool>(),
                approvals in prop::option::of(("cv/[!-~ ]{0,40}", any::<u32>())),
                rejection in prop::option::of("rj/[!-~ ]{0,40}"),
            ) {
                let conversion = ConversionUse { key, expires_ms, counts, approvals, rejection };
                let request = ObjectRequest::Conversion { space, conversion };
                prop_assert_eq!(through(&request), Ok(request));
            }

            #[test]
            fn operations_read_back_as_they_were_sent(
                space in space(),
                by in "\\PC{0,40}(\n\\PC{0,10})?",
                block in any::<bool>(),
            ) {
                let operation = if block { Operation::Block { by } } else { Operation::Unblock { by } };
                let request = ObjectRequest::Operate { space, operation };
                prop_assert_eq!(through(&request), Ok(request));
            }

            #[test]
            fn reports_and_the_directory_read_back_as_they_were_sent(
                space in space(),
                from_hour in any::<u32>(),
                to_hour in any::<u32>(),
                object in prop_oneof![ID.prop_map(String::from), (0..16u32).prop_map(|n| format!("unlisted:{n}"))],
                day in any::<u32>(),
            ) {
                for request in [
                    ObjectRequest::Report { space, from_hour, to_hour },
                    ObjectRequest::List { object, day },
                    ObjectRequest::Networks { since_day: day },
                ] {
                    prop_assert_eq!(through(&request), Ok(request.clone()));
                }
            }

            #[test]
            fn a_space_reads_back_from_its_query(space in space()) {
                prop_assert_eq!(Space::from_query(&space.query()), Ok(space));
            }

            #[test]
            fn reading_any_request_never_panics(
                path in "/[a-z]{0,12}",
                query in ".{0,20}",
                body in ".{0,200}",
            ) {
                let _ = ObjectRequest::parse(METHOD, &path, &query, &body);
                let _ = parse_click_id_answers(&body, 3);
            }
        }
    }
}
