//! The wire between an isolate and its network's object.

use std::collections::BTreeSet;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::click::Id;
use crate::flood::{FloodBlock, FloodCause, Thresholds};
use crate::hll::HyperLogLog;
use crate::report::{RowKey, Tally};

use super::store::{History, StoreKey};

// ---------------------------------------------------------------------------------------------
// A batch: what one isolate counted for one network since its last flush.

#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// A random id the isolate picked at start; with `seq` it names the batch for deduplication.
    pub isolate: u64,
    /// 1, 2, 3… per isolate and network. A retried batch keeps its number.
    pub seq: u64,
    pub ips: Vec<IpDelta>,
    pub subs: Vec<SubDelta>,
    /// Clicks and flagged clicks per UTC minute (minutes since the epoch), for the flood threshold.
    pub flood: Vec<(u64, u32, u32)>,
    /// The network's flood thresholds as the sending isolate's config has them.
    pub thresholds: Thresholds,
    /// The network the batch counts for (its object registers itself for reports under it).
    pub network: Id,
    /// The fraud report's counts (see [`crate::report`]).
    pub report: Vec<(RowKey, Tally)>,
    /// Decisions kept for `explain`: storage key and log line.
    pub explain: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpDelta {
    pub offer: Id,
    pub ip: u64,
    pub hour: u32,
    pub clicks: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubDelta {
    pub offer: Id,
    pub day: u32,
    pub sketch: HyperLogLog,
}

/// The object's answer: the totals for every key of the batch, the batch included, and the
/// network's flood block, if one is in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    pub duplicate: bool,
    pub ips: Vec<(Id, u64, History)>,
    pub subs: Vec<(Id, u32, HyperLogLog)>,
    pub block: Option<FloodBlock>,
}

impl Batch {
    pub fn to_json(&self) -> String {
        json!({
            "isolate": format!("{:016x}", self.isolate),
            "seq": self.seq,
            "ips": self.ips.iter().map(|d| json!([d.offer.as_str(), format!("{:016x}", d.ip), d.hour, d.clicks])).collect::<Vec<_>>(),
            "subs": self.subs.iter().map(|d| json!([d.offer.as_str(), d.day, B64.encode(d.sketch.to_bytes())])).collect::<Vec<_>>(),
            "flood": self.flood,
            "thresholds": self.thresholds.to_json(),
            "network": self.network.as_str(),
            "report": self.report.iter().map(|(k, t)| json!([k.hour, k.advertiser, k.offer, t.to_wire()])).collect::<Vec<_>>(),
            "explain": self.explain,
        })
        .to_string()
    }

    /// Reads a batch sent to the object. Anything malformed is refused whole: a half-applied batch
    /// could not be retried safely.
    pub fn parse(text: &str) -> Result<Batch, String> {
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
            network,
            report,
            explain,
        })
    }

    /// The storage keys the object reads to apply this batch.
    pub fn storage_keys(&self) -> Vec<String> {
        let keys: BTreeSet<StoreKey> = [StoreKey::Seen, StoreKey::Flood]
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
            )
            .collect();
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

impl Reply {
    pub fn to_json(&self) -> String {
        json!({
            "duplicate": self.duplicate,
            "ips": self.ips.iter().map(|(o, ip, h)| json!([o.as_str(), format!("{ip:016x}"), h.to_json()])).collect::<Vec<_>>(),
            "subs": self.subs.iter().map(|(o, day, s)| json!([o.as_str(), day, B64.encode(s.to_bytes())])).collect::<Vec<_>>(),
            "block": self.block.as_ref().map(|b| json!([b.until_ms, b.cause.as_str(), b.detail])),
        })
        .to_string()
    }

    pub fn parse(text: &str) -> Result<Reply, String> {
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
            reply.block = Some(FloodBlock {
                until_ms: b.get(0).and_then(Value::as_u64).ok_or("block: until")?,
                cause: b
                    .get(1)
                    .and_then(Value::as_str)
                    .and_then(FloodCause::parse)
                    .ok_or("block: cause")?,
                detail: b.get(2).and_then(Value::as_str).unwrap_or("").to_owned(),
            });
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

pub(super) fn u32_at(v: &Value, i: usize) -> Result<u32, String> {
    v.get(i)
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("item {i} must be a whole number below 2^32"))
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
mod tests {
    use super::*;
    use crate::network::local::ip_hash;
    use crate::report;
    use crate::token::NONCE_LEN;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn id(s: &str) -> Id {
        Id::parse(s).unwrap()
    }

    fn batch(isolate: u64, seq: u64, ip: &str, hour: u32, clicks: u32) -> Batch {
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
            report::explain_key(499_000, &[1; NONCE_LEN]),
            "{\"event\":\"click\"}".into(),
        ));
        assert_eq!(Batch::parse(&b.to_json()), Ok(b.clone()));
        let bad = b.to_json().replace("explain/00499000", "explain/x");
        assert!(Batch::parse(&bad).unwrap_err().starts_with("explain[0]"));
        let reply = Reply {
            duplicate: true,
            ips: vec![(id("1"), 7, History(vec![(1, 2)]))],
            subs: vec![(id("1"), 20_000, sketch)],
            block: Some(FloodBlock {
                until_ms: 86_400_000,
                cause: FloodCause::PerMinute,
                detail: "12 clicks, ceiling 10".into(),
            }),
        };
        assert_eq!(Reply::parse(&reply.to_json()), Ok(reply));

        let bad = b.to_json().replace("\"seq\":3", "\"seq\":0");
        assert_eq!(
            Batch::parse(&bad),
            Err("seq: must be a positive integer".into())
        );
        let bad = b.to_json().replace(",4]", ",-4]");
        assert!(Batch::parse(&bad)
            .unwrap_err()
            .starts_with("ips[0]: item 3"));
        assert!(Batch::parse("{")
            .unwrap_err()
            .starts_with("batch is not JSON"));
    }
}
