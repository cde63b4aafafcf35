//! Click-flood thresholds per network: when a network's clicks are beyond human, block it for the
//! rest of the UTC day.
//!
//! The network's object owns its day as a [`FloodState`] and advances it with [`FloodState::step`], a
//! pure function of the state, an event and the time. The isolates send per-minute click counts in
//! their batches (see [`crate::counts`]) and cache the block state the object answers with.
//!
//! A network trips when, over the last 60 minutes (whole UTC minutes, this one included):
//!
//! 1. **static ceilings**: clicks in the current minute, the last 60 minutes or the UTC day reach
//!    `per_minute`, `per_hour` or `per_day` (each optional);
//! 2. **its own history**: the last 60 minutes (or the last 5, at 12 times their count) hold more than
//!    `max(floor, tolerance × expected × conversion factor)` clicks, where `expected` is the network's
//!    baseline for this hour of the day (an exponential moving average over past days, weight
//!    `1/baseline_days`), recomputed as each hour closes; and the conversion factor is 2 when the
//!    day's conversion rate is at least half the baseline's, else 1. Until one full day is known, only
//!    the ceilings and the flagged share apply;
//! 3. **flagged share**: at least `flagged_share` of at least `floor` clicks in the last 60 minutes were
//!    flagged by the fraud filters (a low-and-slow flood hides in volume, not in quality).
//!
//! With the defaults (tolerance 20, floor 600 clicks an hour) a campaign launch at ten times the
//! usual volume passes, and a flood at several dozen times trips within minutes. Once tripped, every
//! click is blocked with reason `click_flood` until the next 00:00 UTC. An operator can lift a
//! block (it stays lifted for the rest of the day) or impose one.

use serde_json::{json, Value};

use crate::counts::{DAY_MS, HOUR_MS};
use crate::rules::FaultMode;

pub const MINUTE_MS: u64 = 60_000;

/// A network's thresholds, from `networks[].flood` (or the defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub per_minute: Option<u32>,
    pub per_hour: Option<u32>,
    pub per_day: Option<u32>,
    pub tolerance: f64,
    pub floor: u32,
    pub flagged_share: f64,
    pub baseline_days: u32,
    /// When the network's object has not answered an isolate for a while: let clicks through
    /// (`Open`, the default) or block them (`Closed`). The isolate's concern; not sent in batches.
    pub on_fault: FaultMode,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            per_minute: None,
            per_hour: None,
            per_day: None,
            tolerance: 20.0,
            floor: 600,
            flagged_share: 0.8,
            baseline_days: 7,
            on_fault: FaultMode::Open,
        }
    }
}

impl Thresholds {
    pub fn to_json(&self) -> Value {
        json!([
            self.per_minute,
            self.per_hour,
            self.per_day,
            self.tolerance,
            self.floor,
            self.flagged_share,
            self.baseline_days
        ])
    }

    pub fn from_json(v: &Value) -> Result<Thresholds, String> {
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
        Ok(Thresholds {
            per_minute: limit(0)?,
            per_hour: limit(1)?,
            per_day: limit(2)?,
            tolerance: number(3)?,
            floor: number(4)? as u32,
            flagged_share: number(5)?,
            baseline_days: number(6)? as u32,
            on_fault: FaultMode::Open,
        })
    }
}

/// What an isolate knows of its network's flood state for one click.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FloodView {
    /// The block in force, as the object last answered.
    pub block: Option<FloodBlock>,
    /// The object has not answered for too long; with `on_fault: closed` the click is refused.
    pub unreachable: bool,
    pub on_fault: FaultMode,
}

/// A block as the isolates cache it: until when, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloodBlock {
    pub until_ms: u64,
    pub cause: String,
    pub detail: String,
}

/// Why a network is blocked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub since_ms: u64,
    /// Machine-readable: `per_minute`, `per_hour`, `per_day`, `history`, `flagged_share`, `operator`.
    pub cause: &'static str,
    /// What was seen against what was allowed, for the log and the report.
    pub detail: String,
    /// The operator who imposed it, if one did.
    pub by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Clicks counted in one UTC minute (minutes since the epoch), and how many the filters flagged.
    Clicks {
        minute: u64,
        clicks: u32,
        flagged: u32,
    },
    Conversions {
        count: u32,
    },
    /// The object's alarm, or any request: lets the day roll over and hours close.
    Tick,
    Lift {
        by: String,
    },
    Impose {
        by: String,
    },
}

/// What a step changed that is worth a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Nothing,
    Tripped(Block),
    Lifted {
        by: String,
    },
    Imposed(Block),
    /// A new UTC day started; any block of the old one ended.
    NewDay {
        ended_block: bool,
    },
}

/// A network's day as its object keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct FloodState {
    /// The UTC day (days since the epoch) the counts belong to.
    pub day: u64,
    /// Clicks and flagged clicks per UTC minute for the last 60 minutes: (minute, clicks, flagged).
    pub minutes: Vec<(u64, u32, u32)>,
    pub hour_clicks: [u32; 24],
    pub day_clicks: u64,
    pub day_conversions: u64,
    /// Expected clicks per hour of day, from past days, and how many days went into it.
    pub baseline: [f64; 24],
    pub baseline_cr: f64,
    pub days_known: u32,
    pub block: Option<Block>,
    /// An operator lifted today's block: no automatic trip until midnight.
    pub lifted_by: Option<String>,
}

impl FloodState {
    pub fn new(now_ms: u64) -> FloodState {
        FloodState {
            day: now_ms / DAY_MS,
            minutes: Vec::new(),
            hour_clicks: [0; 24],
            day_clicks: 0,
            day_conversions: 0,
            baseline: [0.0; 24],
            baseline_cr: 0.0,
            days_known: 0,
            block: None,
            lifted_by: None,
        }
    }

    /// When the block in force ends: the next 00:00 UTC.
    pub fn blocked_until_ms(&self) -> Option<u64> {
        self.block.as_ref().map(|_| (self.day + 1) * DAY_MS)
    }

    /// The block in force, as the isolates are told.
    pub fn current_block(&self) -> Option<FloodBlock> {
        let b = self.block.as_ref()?;
        Some(FloodBlock {
            until_ms: (self.day + 1) * DAY_MS,
            cause: b.cause.to_owned(),
            detail: b.detail.clone(),
        })
    }

    /// What the object stores.
    pub fn encode(&self) -> String {
        json!({
            "day": self.day,
            "minutes": self.minutes,
            "hours": self.hour_clicks,
            "clicks": self.day_clicks,
            "conversions": self.day_conversions,
            "baseline": self.baseline,
            "baseline_cr": self.baseline_cr,
            "days_known": self.days_known,
            "block": self.block.as_ref().map(|b| json!([b.since_ms, b.cause, b.detail, b.by])),
            "lifted_by": self.lifted_by,
        })
        .to_string()
    }

    pub fn decode(text: &str) -> Result<FloodState, String> {
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
        let block = match &v["block"] {
            Value::Null => None,
            b => Some(Block {
                since_ms: b.get(0).and_then(Value::as_u64).ok_or("block")?,
                cause: match b.get(1).and_then(Value::as_str).ok_or("block")? {
                    "per_minute" => "per_minute",
                    "per_hour" => "per_hour",
                    "per_day" => "per_day",
                    "history" => "history",
                    "flagged_share" => "flagged_share",
                    _ => "operator",
                },
                detail: b.get(2).and_then(Value::as_str).unwrap_or("").to_owned(),
                by: b.get(3).and_then(Value::as_str).map(str::to_owned),
            }),
        };
        Ok(FloodState {
            day: u("day")?,
            minutes,
            hour_clicks,
            day_clicks: u("clicks")?,
            day_conversions: u("conversions")?,
            baseline,
            baseline_cr: v["baseline_cr"].as_f64().ok_or("baseline_cr")?,
            days_known: u("days_known")? as u32,
            block,
            lifted_by: v["lifted_by"].as_str().map(str::to_owned),
        })
    }

    /// Advances the day by one event.
    pub fn step(&mut self, event: Event, t: &Thresholds, now_ms: u64) -> Outcome {
        let today = now_ms / DAY_MS;
        let mut outcome = Outcome::Nothing;
        if today > self.day {
            outcome = Outcome::NewDay {
                ended_block: self.block.is_some(),
            };
            self.roll_over(today, t);
        }
        match event {
            Event::Clicks {
                minute,
                clicks,
                flagged,
            } => {
                // Counts of another day (a late batch across midnight) are not this day's.
                if minute * MINUTE_MS / DAY_MS != self.day {
                    return outcome;
                }
                self.add(minute, clicks, flagged);
            }
            // Conversions only move the rate the next click batch is judged with.
            Event::Conversions { count } => {
                self.day_conversions += u64::from(count);
                return outcome;
            }
            Event::Tick => {}
            Event::Lift { by } => {
                self.block = None;
                self.lifted_by = Some(by.clone());
                return Outcome::Lifted { by };
            }
            Event::Impose { by } => {
                let block = Block {
                    since_ms: now_ms,
                    cause: "operator",
                    detail: format!("imposed by {by}"),
                    by: Some(by),
                };
                self.block = Some(block.clone());
                return Outcome::Imposed(block);
            }
        }
        if self.block.is_none() && self.lifted_by.is_none() {
            if let Some((cause, detail)) = self.judge(t, now_ms) {
                let block = Block {
                    since_ms: now_ms,
                    cause,
                    detail,
                    by: None,
                };
                self.block = Some(block.clone());
                return Outcome::Tripped(block);
            }
        }
        outcome
    }

    fn add(&mut self, minute: u64, clicks: u32, flagged: u32) {
        match self.minutes.iter_mut().find(|(m, _, _)| *m == minute) {
            Some(entry) => {
                entry.1 = entry.1.saturating_add(clicks);
                entry.2 = entry.2.saturating_add(flagged);
            }
            None => self.minutes.push((minute, clicks, flagged)),
        }
        let hour = ((minute * MINUTE_MS % DAY_MS) / HOUR_MS) as usize;
        self.hour_clicks[hour] = self.hour_clicks[hour].saturating_add(clicks);
        self.day_clicks += u64::from(clicks);
    }

    /// The last 60 minutes up to `now`: (clicks, flagged, clicks this minute, clicks in the last
    /// 5 minutes).
    fn last_hour(&mut self, now_ms: u64) -> (u64, u64, u64, u64) {
        let now_minute = now_ms / MINUTE_MS;
        self.minutes.retain(|(m, _, _)| m + 60 > now_minute);
        self.minutes.iter().fold(
            (0, 0, 0, 0),
            |(c, f, this, recent), &(m, clicks, flagged)| {
                let n = u64::from(clicks);
                let this = this + if m == now_minute { n } else { 0 };
                let recent = recent + if m + 5 > now_minute { n } else { 0 };
                (c + n, f + u64::from(flagged), this, recent)
            },
        )
    }

    fn judge(&mut self, t: &Thresholds, now_ms: u64) -> Option<(&'static str, String)> {
        let (hour, flagged, minute, recent) = self.last_hour(now_ms);
        let ceilings = [
            ("per_minute", minute, t.per_minute),
            ("per_hour", hour, t.per_hour),
            ("per_day", self.day_clicks, t.per_day),
        ];
        for (cause, seen, limit) in ceilings {
            if let Some(limit) = limit.filter(|l| seen >= u64::from(*l)) {
                return Some((cause, format!("{seen} clicks, ceiling {limit}")));
            }
        }
        if hour >= u64::from(t.floor) && flagged as f64 >= t.flagged_share * hour as f64 {
            return Some((
                "flagged_share",
                format!("{flagged} of {hour} clicks in the last hour flagged"),
            ));
        }
        if self.days_known > 0 {
            let allowed = self.allowed_per_hour(t, now_ms);
            if hour as f64 > allowed {
                return Some((
                    "history",
                    format!("{hour} clicks in the last hour, allowed {allowed:.0}"),
                ));
            }
            // A sudden flood shows within minutes, long before the hour fills up: the last five
            // minutes at an hourly rate.
            if (recent * 12) as f64 > allowed {
                return Some((
                    "history",
                    format!("{recent} clicks in the last 5 minutes, {} an hour against {allowed:.0} allowed", recent * 12),
                ));
            }
        }
        None
    }

    /// The dynamic threshold for the 60 minutes ending now.
    pub fn allowed_per_hour(&self, t: &Thresholds, now_ms: u64) -> f64 {
        let hour_of_day = ((now_ms % DAY_MS) / HOUR_MS) as usize;
        let expected = self.baseline[hour_of_day];
        let cr = if self.day_clicks > 0 {
            self.day_conversions as f64 / self.day_clicks as f64
        } else {
            0.0
        };
        let converting = self.baseline_cr > 0.0 && cr >= self.baseline_cr / 2.0;
        let factor = if converting { 2.0 } else { 1.0 };
        f64::from(t.floor).max(t.tolerance * expected * factor)
    }

    /// Folds the finished day into the baseline and starts a new one: counts reset, the block ends.
    fn roll_over(&mut self, today: u64, t: &Thresholds) {
        // Days with no clicks at all (the network paused) leave the baseline as it was.
        if self.day_clicks > 0 {
            let weight = 1.0 / f64::from(t.baseline_days.max(1).min(self.days_known + 1));
            for (b, &c) in self.baseline.iter_mut().zip(self.hour_clicks.iter()) {
                *b += weight * (f64::from(c) - *b);
            }
            let cr = self.day_conversions as f64 / self.day_clicks as f64;
            self.baseline_cr += weight * (cr - self.baseline_cr);
            self.days_known += 1;
        }
        self.day = today;
        self.minutes.clear();
        self.hour_clicks = [0; 24];
        self.day_clicks = 0;
        self.day_conversions = 0;
        self.block = None;
        self.lifted_by = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const DAY0: u64 = 1_795_392_000_000; // 2026-11-23T00:00:00Z

    /// Human traffic per minute at a minute of the day: a diurnal curve peaking in the evening.
    fn human(minute_of_day: u64, daily: f64) -> f64 {
        let h = minute_of_day as f64 / 60.0;
        let shape = 0.2 + (((h - 20.0) / 24.0 * std::f64::consts::TAU).cos() + 1.0) / 2.0;
        daily * shape / (1440.0 * 0.7)
    }

    /// A small deterministic jitter, so minutes are not all alike (±30%).
    fn jitter(seed: u64) -> f64 {
        let x = crate::hll::hash64(&seed.to_le_bytes());
        0.7 + 0.6 * (x % 1000) as f64 / 1000.0
    }

    /// Runs `days` of traffic minute by minute; `extra(day, minute_of_day)` adds (clicks, flagged).
    /// Returns, per day, the minute of the day it tripped at, if it did.
    fn simulate(
        days: u64,
        daily: f64,
        t: &Thresholds,
        extra: impl Fn(u64, u64) -> (f64, f64),
    ) -> Vec<Option<u64>> {
        let mut s = FloodState::new(DAY0);
        let mut trips = vec![None; days as usize];
        for day in 0..days {
            for m in 0..1440 {
                let now = DAY0 + day * DAY_MS + m * MINUTE_MS;
                let (more, more_flagged) = extra(day, m);
                let clicks = (human(m, daily) * jitter(day * 1440 + m) + more).round() as u32;
                let flagged = (clicks as f64 * 0.02 + more_flagged).round() as u32;
                let event = Event::Clicks {
                    minute: now / MINUTE_MS,
                    clicks,
                    flagged: flagged.min(clicks),
                };
                if let Outcome::Tripped(_) = s.step(event, t, now) {
                    trips[day as usize].get_or_insert(m);
                }
            }
        }
        trips
    }

    #[test]
    fn human_traffic_with_ten_fold_launches_never_trips() {
        let t = Thresholds::default();
        // 50,000 clicks a day; on days 8 and 11 a campaign launch multiplies traffic by 10 for
        // three hours, ramping up over the first half hour.
        let launch = |day: u64, m: u64| {
            let launching = (day == 8 || day == 11) && (600..780).contains(&m);
            let ramp = ((m.saturating_sub(600)) as f64 / 30.0).min(1.0);
            let more = if launching {
                9.0 * ramp * human(m, 50_000.0)
            } else {
                0.0
            };
            (more, 0.0)
        };
        let trips = simulate(14, 50_000.0, &t, launch);
        eprintln!(
            "14 days with two 10x launches: {} false trips",
            trips.iter().flatten().count()
        );
        assert!(trips.iter().all(Option::is_none), "false trips: {trips:?}");
    }

    #[test]
    fn floods_of_every_shape_trip_within_minutes() {
        let t = Thresholds::default();
        let daily = 50_000.0;
        // Each starts on day 9 at 10:00 UTC, after a week of history.
        let start = 600;
        type Shape = Box<dyn Fn(u64, u64) -> (f64, f64)>;
        let shapes: [(&str, Shape, u64); 3] = [
            // 50 times the usual rate at once.
            (
                "sudden",
                Box::new(move |d, m| {
                    if d == 9 && m >= start {
                        (49.0 * human(m, daily), 0.0)
                    } else {
                        (0.0, 0.0)
                    }
                }),
                5,
            ),
            // Ramped from nothing to 60 times over two hours.
            (
                "ramped",
                Box::new(move |d, m| {
                    let r = (m.saturating_sub(start)) as f64 / 120.0;
                    if d == 9 && m >= start {
                        (60.0 * r.min(1.0) * human(m, daily), 0.0)
                    } else {
                        (0.0, 0.0)
                    }
                }),
                90,
            ),
            // Low and slow: only twice the usual volume, from many sub IDs, the filters flag nearly all.
            (
                "low and slow",
                Box::new(move |d, m| {
                    if d == 9 && m >= start {
                        let more = 20.0 * human(m, daily);
                        (more, more * 0.97)
                    } else {
                        (0.0, 0.0)
                    }
                }),
                60,
            ),
        ];
        for (name, extra, within) in shapes {
            let trips = simulate(10, daily, &t, extra);
            assert!(
                trips[..9].iter().all(Option::is_none),
                "{name}: false trips before it: {trips:?}"
            );
            let at = trips[9].unwrap_or_else(|| panic!("{name}: never tripped"));
            eprintln!("{name}: tripped {} minutes after the start", at - start);
            assert!(
                at >= start && at - start <= within,
                "{name}: tripped at minute {} after the start",
                at - start
            );
        }
    }

    #[test]
    fn the_block_lifts_at_midnight_utc_exactly() {
        let t = Thresholds {
            per_minute: Some(100),
            ..Thresholds::default()
        };
        let mut s = FloodState::new(DAY0);
        let at = DAY0 + 13 * HOUR_MS;
        let out = s.step(
            Event::Clicks {
                minute: at / MINUTE_MS,
                clicks: 150,
                flagged: 0,
            },
            &t,
            at,
        );
        assert!(
            matches!(
                out,
                Outcome::Tripped(Block {
                    cause: "per_minute",
                    ..
                })
            ),
            "{out:?}"
        );
        assert_eq!(s.blocked_until_ms(), Some(DAY0 + DAY_MS));
        assert!(s
            .step(Event::Tick, &t, DAY0 + DAY_MS - 1)
            .eq(&Outcome::Nothing));
        assert!(s.block.is_some());
        assert_eq!(
            s.step(Event::Tick, &t, DAY0 + DAY_MS),
            Outcome::NewDay { ended_block: true }
        );
        assert!(s.block.is_none());
    }

    #[test]
    fn an_operator_lift_holds_until_midnight_and_an_imposed_block_too() {
        let t = Thresholds {
            per_minute: Some(10),
            ..Thresholds::default()
        };
        let mut s = FloodState::new(DAY0);
        let at = DAY0 + HOUR_MS;
        s.step(
            Event::Clicks {
                minute: at / MINUTE_MS,
                clicks: 20,
                flagged: 0,
            },
            &t,
            at,
        );
        assert!(s.block.is_some());
        assert_eq!(
            s.step(Event::Lift { by: "ops@x".into() }, &t, at + 1),
            Outcome::Lifted { by: "ops@x".into() }
        );
        // Still over the ceiling, but lifted for the day.
        let out = s.step(
            Event::Clicks {
                minute: at / MINUTE_MS + 1,
                clicks: 50,
                flagged: 0,
            },
            &t,
            at + MINUTE_MS,
        );
        assert_eq!(out, Outcome::Nothing);
        let Outcome::Imposed(b) =
            s.step(Event::Impose { by: "ops@y".into() }, &t, at + 2 * MINUTE_MS)
        else {
            panic!()
        };
        assert_eq!((b.cause, b.by.as_deref()), ("operator", Some("ops@y")));
        assert_eq!(s.blocked_until_ms(), Some(DAY0 + DAY_MS));
    }

    #[test]
    fn the_baseline_learns_each_hour_of_the_day() {
        let t = Thresholds::default();
        let mut s = FloodState::new(DAY0);
        for day in 0..3 {
            let at = DAY0 + day * DAY_MS + 20 * HOUR_MS;
            s.step(
                Event::Clicks {
                    minute: at / MINUTE_MS,
                    clicks: 1000,
                    flagged: 0,
                },
                &t,
                at,
            );
        }
        s.step(Event::Tick, &t, DAY0 + 3 * DAY_MS);
        assert_eq!(s.days_known, 3);
        assert!((s.baseline[20] - 1000.0).abs() < 1e-9, "{:?}", s.baseline);
        assert_eq!(s.baseline[3], 0.0);
        // At 20:00 the allowance is tolerance × 1000; at 03:00 the floor.
        assert_eq!(
            s.allowed_per_hour(&t, DAY0 + 3 * DAY_MS + 20 * HOUR_MS),
            20_000.0
        );
        assert_eq!(
            s.allowed_per_hour(&t, DAY0 + 3 * DAY_MS + 3 * HOUR_MS),
            600.0
        );
    }

    #[test]
    fn the_state_and_thresholds_survive_storage() {
        let t = Thresholds {
            per_minute: Some(10),
            ..Thresholds::default()
        };
        assert_eq!(Thresholds::from_json(&t.to_json()), Ok(t));
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
    fn a_late_batch_from_yesterday_is_not_counted_today() {
        let t = Thresholds::default();
        let mut s = FloodState::new(DAY0);
        let now = DAY0 + DAY_MS + 5 * MINUTE_MS;
        s.step(
            Event::Clicks {
                minute: (DAY0 + DAY_MS - MINUTE_MS) / MINUTE_MS,
                clicks: 7,
                flagged: 0,
            },
            &t,
            now,
        );
        assert_eq!(s.day_clicks, 0);
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            // The day's counts do not depend on the order batches arrive in.
            #[test]
            fn counts_do_not_depend_on_arrival_order(
                events in proptest::collection::vec((0u64..120, 0u32..500, 0u32..100), 1..40),
                rotate in any::<proptest::sample::Index>(),
            ) {
                let t = Thresholds { tolerance: 1e9, floor: u32::MAX, flagged_share: 2.0, ..Thresholds::default() };
                let now = DAY0 + 3 * HOUR_MS;
                let run = |list: &[(u64, u32, u32)]| {
                    let mut s = FloodState::new(DAY0);
                    for &(m, c, f) in list {
                        s.step(Event::Clicks { minute: DAY0 / MINUTE_MS + m, clicks: c, flagged: f.min(c) }, &t, now);
                    }
                    (s.hour_clicks, s.day_clicks)
                };
                let mut other = events.clone();
                let by = rotate.index(other.len());
                other.rotate_left(by);
                other.reverse();
                prop_assert_eq!(run(&events), run(&other));
            }
        }
    }
}
