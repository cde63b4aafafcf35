//! Simulated traffic for the detector: human clicks on a diurnal curve plus a campaign launch or a
//! flood, minute by minute. The tests here state where each flood shape trips; `clickgate replay`'s
//! tests write the same traffic as click files and expect the same minutes.

use super::{Event, FloodState, Outcome, Thresholds, MINUTE_MS};
use crate::time::DAY_MS;

/// The share of human clicks the filters flag.
pub(crate) const HUMAN_FLAGGED: f64 = 0.02;
/// Where the floods start: 10:00 UTC.
pub const FLOOD_START: u64 = 600;

/// Human clicks per minute at a minute of the day, for `daily` clicks a day: a diurnal curve
/// peaking in the evening.
pub(crate) fn human(minute_of_day: u64, daily: f64) -> f64 {
    let h = minute_of_day as f64 / 60.0;
    let shape = 0.2 + (((h - 20.0) / 24.0 * std::f64::consts::TAU).cos() + 1.0) / 2.0;
    daily * shape / (1440.0 * 0.7)
}

/// A small deterministic jitter, so minutes are not all alike (±30%).
fn jitter(seed: u64) -> f64 {
    let x = crate::hll::hash64(&seed.to_le_bytes());
    0.7 + 0.6 * (x % 1000) as f64 / 1000.0
}

/// A deterministic fraction in [0, 1) to round a count with: rounding to the nearest would
/// leave a quiet minute's 0.3 flagged clicks at none, and human traffic cleaner than it is.
fn dither(seed: u64) -> f64 {
    let x = crate::hll::hash64(&(seed ^ 0x5eed_f1a6).to_le_bytes());
    (x % 1000) as f64 / 1000.0
}

/// One minute's traffic on top of the human curve.
#[derive(Debug, Default, Clone, Copy)]
pub struct Extra {
    pub clicks: f64,
    pub flagged: f64,
    /// Conversions per extra click.
    pub(crate) converting: f64,
}

impl Extra {
    pub fn plus(self, other: Extra) -> Extra {
        Extra {
            clicks: self.clicks + other.clicks,
            flagged: self.flagged + other.flagged,
            converting: self.converting.max(other.converting),
        }
    }
}

pub type Shape = Box<dyn Fn(u64, u64) -> Extra>;

/// A network's traffic: `daily` human clicks a day converting at `human_cr`, plus
/// `extra(day, minute_of_day)`.
pub struct Traffic {
    pub daily: f64,
    pub human_cr: f64,
    pub extra: Shape,
}

impl Traffic {
    /// Whole clicks and flagged clicks in one minute, and the conversions they bring (a
    /// fraction; [`simulate`] sends them as they add up to whole ones).
    pub fn minute(&self, day: u64, m: u64) -> (u32, u32, f64) {
        let more = (self.extra)(day, m);
        let people = human(m, self.daily) * jitter(day * 1440 + m);
        let clicks = (people + more.clicks).round() as u32;
        let dither = dither(day * 1440 + m);
        let flagged = ((people * HUMAN_FLAGGED + more.flagged + dither) as u32).min(clicks);
        let converting = people * self.human_cr + more.clicks * more.converting;
        (clicks, flagged, converting)
    }
}

/// Runs `days` of traffic minute by minute from the UTC day starting at `day0_ms`, each
/// minute's clicks in one step at its start, its conversions after them. Returns, per day, the
/// minute of the day it tripped at, if it did.
pub fn simulate(day0_ms: u64, days: u64, traffic: &Traffic, t: &Thresholds) -> Vec<Option<u64>> {
    let mut s = FloodState::new(day0_ms);
    let mut trips = vec![None; days as usize];
    let mut converting = 0.0;
    for day in 0..days {
        for m in 0..1440 {
            let now = day0_ms + day * DAY_MS + m * MINUTE_MS;
            let (clicks, flagged, more) = traffic.minute(day, m);
            let event = Event::Clicks {
                minute: now / MINUTE_MS,
                clicks,
                flagged,
            };
            if let Outcome::Tripped(_) = s.step(event, t, now) {
                trips[day as usize].get_or_insert(m);
            }
            converting += more;
            let count = converting.floor();
            if count >= 1.0 {
                converting -= count;
                s.step(
                    Event::Conversions {
                        count: count as u32,
                    },
                    t,
                    now,
                );
            }
        }
    }
    trips
}

/// A campaign launch on `day` from 10:00 to 13:00 UTC at `times` the human volume, ramping up
/// over its first half hour, its clicks flagged as often as the human ones.
pub fn launch(day: u64, times: f64, daily: f64, converting: f64) -> Shape {
    Box::new(move |d, m| {
        if d != day || !(600..780).contains(&m) {
            return Extra::default();
        }
        let ramp = ((m - 600) as f64 / 30.0).min(1.0);
        let clicks = (times - 1.0) * ramp * human(m, daily);
        Extra {
            clicks,
            flagged: clicks * HUMAN_FLAGGED,
            converting,
        }
    })
}

/// The flood shapes, by name, on `day` from [`FLOOD_START`] to minute `end` of the day:
/// sudden at 50 times the volume; ramped from the usual to 60 times over two hours; and low
/// and slow at each of `low_and_slow` times the volume, the excess (from many sub IDs) 97%
/// flagged.
pub fn floods(day: u64, end: u64, daily: f64, low_and_slow: &[u32]) -> Vec<(String, Shape)> {
    let during = move |d: u64, m: u64| d == day && (FLOOD_START..end).contains(&m);
    let mut shapes: Vec<(String, Shape)> = vec![
        (
            "sudden 50x".into(),
            Box::new(move |d, m| Extra {
                clicks: if during(d, m) {
                    49.0 * human(m, daily)
                } else {
                    0.0
                },
                ..Extra::default()
            }),
        ),
        (
            "ramped 60x".into(),
            Box::new(move |d, m| {
                if !during(d, m) {
                    return Extra::default();
                }
                let r = ((m - FLOOD_START) as f64 / 120.0).min(1.0);
                Extra {
                    clicks: 59.0 * r * human(m, daily),
                    ..Extra::default()
                }
            }),
        ),
    ];
    for &times in low_and_slow {
        shapes.push((
            format!("low and slow {times}x"),
            Box::new(move |d, m| {
                if !during(d, m) {
                    return Extra::default();
                }
                let clicks = f64::from(times - 1) * human(m, daily);
                Extra {
                    clicks,
                    flagged: clicks * 0.97,
                    converting: 0.0,
                }
            }),
        ));
    }
    shapes
}
