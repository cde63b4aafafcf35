//! How a network's flood state is stored by its object, and how its thresholds travel in the
//! isolates' batches: each reads what earlier versions wrote.

use serde_json::{json, Value};

use super::{
    Block, ConfigSeen, FloodBlock, FloodCause, FloodMode, FloodState, Thresholds,
    DEFAULT_BURST_TOLERANCE, DEFAULT_DISPERSION, DEFAULT_MIN_CLICKS, DEFAULT_MIN_FLAGGED,
    DEFAULT_TAIL,
};
use crate::fault::Corrupt;
use crate::time::DAY_MS;
use crate::verdict::FaultMode;

impl Thresholds {
    /// The thresholds as a batch carries them. The bound's settings follow only when one is not
    /// the default: a batch of default thresholds is the bytes earlier versions sent, and an
    /// object of an earlier version reads the first seven of any.
    pub fn to_json(&self) -> Value {
        let mut v = vec![
            json!(self.per_minute),
            json!(self.per_hour),
            json!(self.per_day),
            json!(self.tolerance),
            json!(self.floor),
            json!(self.flagged_share),
            json!(self.baseline_days),
        ];
        let defaults = Thresholds::default();
        let bound = (
            self.tail,
            self.dispersion,
            self.min_clicks,
            self.min_flagged,
            self.burst_tolerance,
        );
        if bound
            != (
                defaults.tail,
                defaults.dispersion,
                defaults.min_clicks,
                defaults.min_flagged,
                defaults.burst_tolerance,
            )
        {
            v.extend([
                json!(self.tail),
                json!(self.dispersion),
                json!(self.min_clicks),
                json!(self.min_flagged),
                json!(self.burst_tolerance),
            ]);
        }
        Value::Array(v)
    }

    /// Thresholds as a batch carries them to the object; a bad one is a runtime fault.
    pub(crate) fn from_json(v: &Value) -> Result<Thresholds, Corrupt> {
        Thresholds::read(v).map_err(|e| Corrupt::new("flood thresholds", e))
    }

    fn read(v: &Value) -> Result<Thresholds, String> {
        let limit = |i: usize| -> Result<Option<u32>, String> {
            match v.get(i) {
                Some(Value::Null) => Ok(None),
                Some(n) => n
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .map(Some)
                    .ok_or_else(|| format!("thresholds[{i}]")),
                None => Err(format!("thresholds[{i}] missing")),
            }
        };
        let number = |i: usize| {
            v.get(i)
                .and_then(Value::as_f64)
                .ok_or_else(|| format!("thresholds[{i}]"))
        };
        let optional = |i: usize| v.get(i).and_then(Value::as_f64);
        Ok(Thresholds {
            per_minute: limit(0)?,
            per_hour: limit(1)?,
            per_day: limit(2)?,
            tolerance: number(3)?,
            floor: number(4)? as u32,
            flagged_share: number(5)?,
            baseline_days: number(6)? as u32,
            // A batch from an isolate that does not send them yet: the defaults.
            tail: optional(7).unwrap_or(DEFAULT_TAIL),
            dispersion: optional(8).unwrap_or(DEFAULT_DISPERSION),
            min_clicks: optional(9).map_or(DEFAULT_MIN_CLICKS, |n| n as u32),
            min_flagged: optional(10).map_or(DEFAULT_MIN_FLAGGED, |n| n as u32),
            burst_tolerance: optional(11).unwrap_or(DEFAULT_BURST_TOLERANCE),
            on_fault: FaultMode::Open,
            mode: FloodMode::Enforce,
        })
    }
}

impl FloodBlock {
    /// A block's `[ms, cause, detail]` as the object stores it (its start, `by` after) and as it
    /// answers the isolates (its end); `ms` names a missing time in the error, as each reader did.
    pub(crate) fn read(b: &Value, ms: &'static str) -> Result<FloodBlock, &'static str> {
        Ok(FloodBlock {
            until_ms: b.get(0).and_then(Value::as_u64).ok_or(ms)?,
            cause: b
                .get(1)
                .and_then(Value::as_str)
                .and_then(FloodCause::parse)
                .ok_or("block: cause")?,
            detail: b.get(2).and_then(Value::as_str).unwrap_or("").to_owned(),
        })
    }
}

impl FloodState {
    /// What the object stores.
    pub fn encode(&self) -> String {
        let mut state = json!({
            "day": self.day,
            "minutes": self.minutes,
            "hours": self.hour_clicks,
            "clicks": self.day_clicks,
            "flagged": self.day_flagged,
            "conversions": self.day_conversions,
            "baseline": self.baseline,
            "baseline_cr": self.baseline_cr,
            "baseline_flagged": self.baseline_flagged,
            "days_known": self.days_known,
            "observed": self.observed,
            "watched_from": self.watched_from_ms,
            "baseline_days": self.baseline_days,
            "block": self.block.as_ref().map(|b| json!([b.since_ms, b.cause.as_str(), b.detail, b.by])),
            "lifted_by": self.lifted_by,
            "due": self.conversions,
            "config": [self.config.digest, self.config.previous, self.config.changed_ms, self.config.flagged_rate, self.config.alerted],
        });
        // Only once a weekday is learnt: until then the bytes are those stored before weekdays
        // were kept.
        if self.weekdays.iter().any(|&(_, seen)| seen > 0) {
            state["weekdays"] = json!(self.weekdays);
        }
        // Likewise only once the day's usual conversions are counted, or an excess judged.
        if self.usual != [0.0; 2] || self.in_excess {
            state["usual"] = json!([self.usual[0], self.usual[1], self.in_excess]);
        }
        state.to_string()
    }

    /// The state as the object stored it; text that does not read back is a runtime fault.
    pub fn decode(text: &str) -> Result<FloodState, Corrupt> {
        FloodState::read(text).map_err(|e| Corrupt::new("flood state", e))
    }

    fn read(text: &str) -> Result<FloodState, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let u = |k: &str| {
            v.get(k)
                .and_then(Value::as_u64)
                .ok_or_else(|| k.to_string())
        };
        let mut hour_clicks = [0u32; 24];
        let mut baseline = [0f64; 24];
        for (i, (h, b)) in hour_clicks.iter_mut().zip(baseline.iter_mut()).enumerate() {
            *h = v["hours"].get(i).and_then(Value::as_u64).ok_or("hours")? as u32;
            *b = v["baseline"]
                .get(i)
                .and_then(Value::as_f64)
                .ok_or("baseline")?;
        }
        let minutes = v["minutes"]
            .as_array()
            .ok_or("minutes")?
            .iter()
            .map(|m| {
                Some((
                    m.get(0)?.as_u64()?,
                    m.get(1)?.as_u64()? as u32,
                    m.get(2)?.as_u64()? as u32,
                ))
            })
            .collect::<Option<Vec<_>>>()
            .ok_or("minutes")?;
        let days_known = u("days_known")? as u32;
        // A state stored before hours were watched one by one: an hour with a baseline was seen
        // on every known day; one without is taken as never seen (it was most often a network's
        // first, partial day), so it is judged by its neighbours rather than against zero.
        let mut observed = [0u32; 24];
        for (i, o) in observed.iter_mut().enumerate() {
            *o = match v["observed"].get(i) {
                Some(n) => n.as_u64().ok_or("observed")? as u32,
                None if baseline[i] > 0.0 => days_known,
                None => 0,
            };
        }
        let day = u("day")?;
        let block = match &v["block"] {
            Value::Null => None,
            b => {
                let FloodBlock {
                    until_ms: since_ms,
                    cause,
                    detail,
                } = FloodBlock::read(b, "block")?;
                let by = b.get(3).and_then(Value::as_str).map(str::to_owned);
                Some(Block {
                    since_ms,
                    cause,
                    detail,
                    by,
                })
            }
        };
        // States stored before the day's usual conversions were kept: none counted yet.
        let (usual, in_excess) = match &v["usual"] {
            Value::Null => ([0.0; 2], false),
            u => read_usual(u).ok_or("usual")?,
        };
        Ok(FloodState {
            day,
            minutes,
            hour_clicks,
            day_clicks: u("clicks")?,
            // States stored before flagged clicks had a baseline lack these two: none counted yet.
            day_flagged: v["flagged"].as_u64().unwrap_or(0),
            day_conversions: u("conversions")?,
            baseline,
            baseline_cr: v["baseline_cr"].as_f64().ok_or("baseline_cr")?,
            baseline_flagged: v["baseline_flagged"].as_f64(),
            days_known,
            observed,
            watched_from_ms: v["watched_from"].as_u64().unwrap_or(day * DAY_MS),
            // States stored before the network's setting was kept lack it: the default, as then.
            baseline_days: v["baseline_days"]
                .as_u64()
                .map_or(Thresholds::default().baseline_days, |d| d as u32),
            block,
            lifted_by: v["lifted_by"].as_str().map(str::to_owned),
            // States stored before conversions were due: none yet, as for a new network.
            conversions: std::array::from_fn(|i| v["due"][i].as_f64().unwrap_or(0.0)),
            usual,
            in_excess,
            // States stored before digests were kept: none seen yet.
            config: ConfigSeen {
                digest: v["config"][0].as_u64().unwrap_or(0),
                previous: v["config"][1].as_u64().unwrap_or(0),
                changed_ms: v["config"][2].as_u64(),
                flagged_rate: v["config"][3].as_f64(),
                alerted: v["config"][4].as_bool().unwrap_or(false),
            },
            // States stored before weekdays were learnt, or before one was: none seen yet.
            weekdays: match &v["weekdays"] {
                Value::Null => [(1.0, 0); 7],
                w => read_weekdays(w).ok_or("weekdays")?,
            },
        })
    }
}

/// `[due, came, in excess]`: today's usual conversions, and whether the last judgement found an
/// excess.
fn read_usual(v: &Value) -> Option<([f64; 2], bool)> {
    let [due, came, excess] = v.as_array()?.as_slice() else {
        return None;
    };
    Some(([due.as_f64()?, came.as_f64()?], excess.as_bool()?))
}

/// Seven `[level, days seen]` pairs, Monday first.
fn read_weekdays(v: &Value) -> Option<[(f64, u32); 7]> {
    let pairs = v.as_array().filter(|w| w.len() == 7)?;
    let mut out = [(1.0, 0); 7];
    for (o, p) in out.iter_mut().zip(pairs) {
        *o = (
            p.get(0)?.as_f64()?,
            u32::try_from(p.get(1)?.as_u64()?).ok()?,
        );
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flood::{Event, HOUR_MS, MINUTE_MS};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const DAY0: u64 = 1_795_392_000_000; // 2026-11-23T00:00:00Z

    #[test]
    fn the_state_and_thresholds_survive_storage() {
        let t = Thresholds {
            per_minute: Some(10),
            ..Thresholds::default()
        };
        assert_eq!(Thresholds::from_json(&t.to_json()), Ok(t));
        let tuned = Thresholds {
            tail: 1e-9,
            min_flagged: 3,
            ..Thresholds::default()
        };
        assert_eq!(Thresholds::from_json(&tuned.to_json()), Ok(tuned));
        // A batch from an isolate that sends the first seven only reads with the bound's defaults.
        let older = json!([10, null, null, 20.0, 600, 0.8, 7]);
        assert_eq!(
            Thresholds::from_json(&older),
            Ok(Thresholds {
                per_minute: Some(10),
                ..Thresholds::default()
            })
        );
        let mut s = FloodState::new(DAY0);
        let at = DAY0 + HOUR_MS;
        s.step(
            Event::Clicks {
                minute: at / MINUTE_MS,
                clicks: 20,
                flagged: 3,
            },
            &t,
            at,
        );
        s.baseline[4] = 12.5;
        assert!(s.block.is_some());
        assert_eq!(FloodState::decode(&s.encode()), Ok(s.clone()));
        s.step(Event::Lift { by: "ops".into() }, &t, at);
        assert_eq!(FloodState::decode(&s.encode()), Ok(s));
    }

    #[test]
    fn a_stored_block_with_an_unknown_cause_is_an_error_not_an_operator_block() {
        let mut s = FloodState::new(DAY0);
        s.step(
            Event::Impose { by: "ops@y".into() },
            &Thresholds::default(),
            DAY0,
        );
        let stored = s.encode();
        let decoded = FloodState::decode(&stored).expect("a stored block reads back");
        assert_eq!(decoded.block.map(|b| b.cause), Some(FloodCause::Operator));
        let unknown = stored.replace("\"operator\"", "\"per_week\"");
        assert_ne!(unknown, stored);
        assert_eq!(
            FloodState::decode(&unknown).err(),
            Some(Corrupt::new("flood state", "block: cause"))
        );
    }

    /// A network's state as this version stores it after a day, a trip and a config digest:
    /// (the bytes, the state).
    fn stored_state() -> FloodState {
        let t = Thresholds::default();
        let mut s = FloodState::new(DAY0 + 14 * HOUR_MS);
        s.config_in_force(0x01d, DAY0 + 14 * HOUR_MS);
        for (m, n, f) in [
            (14 * 60, 30, 1),
            (23 * 60 + 59, 40, 2),
            (1440 + 61, 9000, 8000),
        ] {
            let at = DAY0 + m * MINUTE_MS;
            s.step(
                Event::Clicks {
                    minute: at / MINUTE_MS,
                    clicks: n,
                    flagged: f,
                },
                &t,
                at,
            );
        }
        s.step(
            Event::Conversions { count: 1 },
            &t,
            DAY0 + (1440 + 62) * MINUTE_MS,
        );
        s
    }

    #[test]
    fn a_state_stored_before_weekdays_were_learnt_reads_and_stores_the_same_bytes() {
        // The bytes of a state stored before weekdays were learnt.
        let before = STORED_BEFORE_WEEKDAYS;
        let s = FloodState::decode(before).expect("reads");
        assert_eq!(s, stored_state());
        assert_eq!(s.weekdays, [(1.0, 0); 7]);
        // No weekday learnt yet: stored as before, byte for byte.
        assert_eq!(s.encode(), before);
        // Once one is, a `weekdays` key follows: seven [level, days seen], Monday first.
        let mut learnt = s;
        learnt.weekdays[5] = (1.5, 2);
        let text = learnt.encode();
        assert!(
            text.contains(
                r#""weekdays":[[1.0,0],[1.0,0],[1.0,0],[1.0,0],[1.0,0],[1.5,2],[1.0,0]]"#
            ),
            "{text}"
        );
        assert_eq!(FloodState::decode(&text), Ok(learnt));
        // Six pairs, or a pair without its count, is a fault, not a default.
        let short = text.replace("[1.5,2],", "");
        assert_eq!(
            FloodState::decode(&short).err(),
            Some(Corrupt::new("flood state", "weekdays"))
        );
        let bad = text.replace("[1.5,2]", "[1.5]");
        assert!(FloodState::decode(&bad).is_err());
    }

    #[test]
    fn the_days_usual_conversions_are_stored_once_counted() {
        let s = FloodState::decode(STORED_BEFORE_WEEKDAYS).expect("reads");
        assert_eq!((s.usual, s.in_excess), ([0.0; 2], false));
        // Counted: a `usual` key follows, `[due, came, in excess]`, and reads back.
        let mut counted = s;
        counted.usual = [12.5, 9.0];
        counted.in_excess = true;
        let text = counted.encode();
        assert!(text.contains(r#""usual":[12.5,9.0,true]"#), "{text}");
        assert_eq!(FloodState::decode(&text), Ok(counted));
        // Two of the three is a fault, not a default.
        let short = text.replace("[12.5,9.0,true]", "[12.5,9.0]");
        assert_eq!(
            FloodState::decode(&short).err(),
            Some(Corrupt::new("flood state", "usual"))
        );
    }

    /// Written by the version before weekdays were learnt (0.2.0 and the flood work since), from
    /// [`stored_state`].
    const STORED_BEFORE_WEEKDAYS: &str = r#"{"baseline":[0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,30.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,40.0],"baseline_cr":0.0,"baseline_days":7,"baseline_flagged":0.04285714285714286,"block":[1795482060000,"flagged_share","8000 of 9000 clicks in the last hour flagged",null],"clicks":9000,"config":[29,0,null,null,false],"conversions":1,"day":20781,"days_known":1,"due":[0.0,0.0,1.0,29924701.0],"flagged":8000,"hours":[0,9000,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],"lifted_by":null,"minutes":[[29924701,9000,8000]],"observed":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,1,1,1,1,1,1,1,1,1],"watched_from":1795478400000}"#;
}
