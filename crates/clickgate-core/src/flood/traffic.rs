//! Traffic with the shapes real networks have: a weekly cycle, days and hours that differ from
//! each other, Poisson clicks, a flagged share that wanders from day to day, conversions that
//! come an hour or so after their clicks; and episodes on top (bursts, launches, a rule change,
//! floods). Seeded: the same seed is the same traffic, on every platform.

use super::simulation::human;
use super::{Event, FloodState, Outcome, Thresholds, MINUTE_MS};

/// A seeded source of numbers (splitmix64): the simulation's only randomness.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// In [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit().max(1e-300), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// A Poisson count: exact for small means, the normal approximation for large ones.
    pub fn poisson(&mut self, mean: f64) -> u32 {
        if mean <= 0.0 {
            return 0;
        }
        if mean < 30.0 {
            let (limit, mut k, mut p) = ((-mean).exp(), 0u32, 1.0);
            loop {
                p *= self.unit();
                if p <= limit {
                    return k;
                }
                k += 1;
            }
        }
        (mean + mean.sqrt() * self.normal()).round().max(0.0) as u32
    }
}

/// A network's usual traffic.
#[derive(Debug, Clone, Copy)]
pub struct Network {
    /// Clicks on an average day.
    pub daily: f64,
    /// The weekly cycle's amplitude: 0.2 is weekends a fifth under the week's peak.
    pub(crate) weekly: f64,
    /// Day-to-day and hour-to-hour spread of the volume, as a share (log-normal).
    pub(crate) day_spread: f64,
    pub(crate) hour_spread: f64,
    /// The usual share of clicks the rules flag, and its day-to-day spread.
    pub flagged: f64,
    pub(crate) flagged_spread: f64,
    /// Conversions per click, its day-to-day spread (log-normal: a day's offers and audience
    /// convert better or worse, the launches' clicks with the usual ones), and their mean delay in
    /// minutes (exponential).
    pub(crate) cr: f64,
    pub(crate) cr_spread: f64,
    pub(crate) delay_minutes: f64,
    /// The share of conversions that come late, and their mean delay in minutes (exponential):
    /// an install opened the next morning, a purchase after a day's thought.
    pub late: f64,
    pub(crate) late_minutes: f64,
    pub(crate) seed: u64,
}

impl Network {
    /// A network of `daily` clicks a day with the spreads this simulation uses throughout:
    /// weekends 20% down, days ±15%, hours ±10%, 2% flagged (±30% from day to day), 1%
    /// converting after an hour on average, none late, the same rate every day (a day that
    /// converts under the baseline is a row of the table: see its tests).
    pub fn of(daily: f64, seed: u64) -> Network {
        Network {
            daily,
            weekly: 0.2,
            day_spread: 0.15,
            hour_spread: 0.1,
            flagged: 0.02,
            flagged_spread: 0.3,
            cr: 0.01,
            cr_spread: 0.2,
            delay_minutes: 60.0,
            late: 0.0,
            late_minutes: 12.0 * 60.0,
            seed,
        }
    }
}

/// Traffic on top of the usual, from `start` (minutes since the simulation's first 00:00)
/// for `minutes`.
#[derive(Debug, Clone, Copy)]
pub struct Episode {
    pub start: u64,
    pub(crate) minutes: u64,
    /// Extra clicks as a multiple of the usual volume at that minute (a launch at 10× adds
    /// 9), or, when `burst` is set, as a share of the day's clicks spread over `minutes`.
    pub times: f64,
    pub burst: bool,
    /// Minutes to ramp up to full strength.
    pub(crate) ramp: u64,
    /// The share of the extra clicks the rules flag (`None`: as the usual ones).
    pub flagged: Option<f64>,
    /// Their conversion rate as a multiple of the usual one.
    pub(crate) converts: f64,
    /// From `start` on, the usual clicks are flagged at this share (a rule change).
    pub(crate) rule_change: Option<f64>,
}

impl Episode {
    fn new(start: u64, minutes: u64, times: f64) -> Episode {
        Episode {
            start,
            minutes,
            times,
            burst: false,
            ramp: 0,
            flagged: None,
            converts: 1.0,
            rule_change: None,
        }
    }

    /// A push or an e-mail: `share` of a day's clicks in 10 minutes, usual in every way.
    pub fn burst(start: u64, share: f64) -> Episode {
        Episode {
            burst: true,
            ..Episode::new(start, 10, share)
        }
    }

    /// A campaign at `times` the volume for `hours`, ramping over `ramp` minutes, converting
    /// as usual.
    pub fn launch(start: u64, hours: u64, times: f64, ramp: u64) -> Episode {
        Episode {
            ramp,
            ..Episode::new(start, hours * 60, times - 1.0)
        }
    }

    /// From `start` on, the rules flag `share` of the usual clicks.
    pub fn rule_change(start: u64, share: f64) -> Episode {
        Episode {
            rule_change: Some(share),
            ..Episode::new(start, u64::MAX / 2, 0.0)
        }
    }

    /// A flood at `times` the volume until the day ends (or a trip), its clicks flagged at
    /// `flagged` and converting at `converts` times the usual rate.
    pub fn flood(start: u64, times: f64, flagged: f64, converts: f64, ramp: u64) -> Episode {
        Episode {
            ramp,
            flagged: Some(flagged),
            converts,
            ..Episode::new(start, 1440 - start % 1440, times - 1.0)
        }
    }

    fn strength(&self, minute: u64) -> f64 {
        if minute < self.start || minute - self.start >= self.minutes {
            return 0.0;
        }
        match self.ramp {
            0 => 1.0,
            r => ((minute - self.start + 1) as f64 / r as f64).min(1.0),
        }
    }
}

/// One minute's counts: clicks, flagged clicks, and of the clicks the episodes added.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Minute {
    pub clicks: u32,
    pub flagged: u32,
    pub extra: u32,
    /// Conversions these clicks will bring (a fraction).
    pub(crate) converting: f64,
}

/// The traffic generator: draws each day's and hour's factors as it reaches them.
pub struct Traffic {
    pub network: Network,
    pub(crate) episodes: Vec<Episode>,
    rng: Rng,
    day: Option<u64>,
    day_factor: f64,
    flagged_share: f64,
    cr_factor: f64,
    hour_factors: [f64; 24],
    /// Conversions still to come, by the minute they arrive at: a run that ends leaves them to
    /// the next, as a day's last clicks convert after midnight.
    pub(crate) due: std::collections::BTreeMap<u64, u32>,
}

impl Traffic {
    pub fn new(network: Network, episodes: Vec<Episode>) -> Traffic {
        Traffic {
            rng: Rng::new(network.seed),
            network,
            episodes,
            day: None,
            day_factor: 1.0,
            flagged_share: 0.0,
            cr_factor: 1.0,
            hour_factors: [1.0; 24],
            due: Default::default(),
        }
    }

    /// The counts of `minute` (since the first 00:00); minutes are drawn in order.
    pub fn minute(&mut self, minute: u64) -> Minute {
        let n = self.network;
        let day = minute / 1440;
        if self.day != Some(day) {
            self.day = Some(day);
            let week = 1.0 - n.weekly * f64::from(u8::from(day % 7 >= 5));
            self.day_factor = week * (n.day_spread * self.rng.normal()).exp();
            self.flagged_share =
                (n.flagged * (n.flagged_spread * self.rng.normal()).exp()).min(1.0);
            for h in self.hour_factors.iter_mut() {
                *h = (n.hour_spread * self.rng.normal()).exp();
            }
            // Drawn last, so a network without the spread draws the days it drew before.
            if n.cr_spread > 0.0 {
                self.cr_factor = (n.cr_spread * self.rng.normal()).exp();
            }
        }
        let m = minute % 1440;
        let usual = human(m, n.daily) * self.day_factor * self.hour_factors[(m / 60) as usize];
        let people = self.rng.poisson(usual);
        let share = self
            .episodes
            .iter()
            .filter(|e| e.rule_change.is_some() && minute >= e.start)
            .filter_map(|e| e.rule_change)
            .next_back()
            .unwrap_or(self.flagged_share);
        let mut flagged = self.rng.poisson(f64::from(people) * share).min(people);
        let cr = n.cr * self.cr_factor;
        let mut converting = f64::from(people) * cr;
        let mut extra = 0u32;
        for e in &self.episodes {
            let s = e.strength(minute);
            if s == 0.0 || e.rule_change.is_some() {
                continue;
            }
            let mean = if e.burst {
                e.times * n.daily / e.minutes as f64
            } else {
                e.times * usual
            };
            let more = self.rng.poisson(s * mean);
            let rate = e.flagged.unwrap_or(share);
            flagged += self.rng.poisson(f64::from(more) * rate).min(more);
            converting += f64::from(more) * cr * e.converts;
            extra += more;
        }
        let clicks = people + extra;
        Minute {
            clicks,
            flagged: flagged.min(clicks),
            extra,
            converting,
        }
    }
}

/// What a run saw: every trip (minute since the first 00:00), and the clicks episodes added
/// from `watch` until the first trip at or after it (that minute's included: its batch passes).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Run {
    pub trips: Vec<u64>,
    /// Each trip's cause and detail.
    pub why: Vec<String>,
    pub(crate) let_through: u64,
    /// The minutes a flagged trip was put down to a config change instead.
    pub(crate) after_config_change: Vec<u64>,
}

/// Steps the detector minute by minute through `minutes` minutes of `traffic` from `state`
/// at the UTC day `day0_ms`, `from` minutes in; conversions arrive after their delay.
pub fn run(
    state: &mut FloodState,
    traffic: &mut Traffic,
    t: &Thresholds,
    day0_ms: u64,
    from: u64,
    minutes: u64,
    watch: u64,
) -> Run {
    let mut out = Run::default();
    let mut delays = Rng::new(traffic.network.seed ^ 0x00de_1a75);
    let mut stopped = false;
    for minute in from..from + minutes {
        let now = day0_ms + minute * MINUTE_MS;
        let m = traffic.minute(minute);
        let event = Event::Clicks {
            minute: now / MINUTE_MS,
            clicks: m.clicks,
            flagged: m.flagged,
        };
        if minute >= watch && !stopped {
            out.let_through += u64::from(m.extra);
        }
        match state.step(event, t, now) {
            Outcome::Tripped(b) => {
                out.trips.push(minute);
                out.why.push(format!("{}: {}", b.cause.as_str(), b.detail));
                stopped |= minute >= watch;
            }
            Outcome::AfterConfigChange(_) => out.after_config_change.push(minute),
            _ => {}
        }
        // Each conversion comes after its own exponential delay: a minute's clicks convert over
        // the hours after it, not all at once.
        let n = traffic.network;
        for _ in 0..delays.poisson(m.converting) {
            let mean = if n.late > 0.0 && delays.unit() < n.late {
                n.late_minutes
            } else {
                n.delay_minutes
            };
            let delay = -mean * (1.0 - delays.unit()).ln();
            *traffic
                .due
                .entry(minute + delay.round() as u64)
                .or_default() += 1;
        }
        let whole = {
            let later = traffic.due.split_off(&(minute + 1));
            let now_due: u32 = traffic.due.values().sum();
            traffic.due = later;
            f64::from(now_due)
        };
        if whole >= 1.0 {
            state.step(
                Event::Conversions {
                    count: whole as u32,
                },
                t,
                now,
            );
        }
    }
    out
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::{run, Episode, FloodState, Network, Rng, Run, Thresholds, Traffic, MINUTE_MS};

    const DAY0: u64 = 1_795_392_000_000; // 2026-11-23T00:00:00Z, a Monday
    const SIZES: [f64; 4] = [1_000.0, 5_000.0, 50_000.0, 500_000.0];
    const HISTORY_DAYS: u64 = 14;
    /// The floods start at each of these hours of the day after the history; the table gives the
    /// slowest start.
    const STARTS: [u64; 4] = [2, 8, 14, 20];

    #[test]
    fn real_traffic_is_seeded_and_deterministic() {
        let draw = |seed| {
            let mut t = Traffic::new(Network::of(50_000.0, seed), vec![Episode::burst(600, 0.1)]);
            (0..2_000).map(|m| t.minute(m)).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        // The day holds about what it says: within its spreads of 50,000.
        let day: u32 = draw(9)[..1440].iter().map(|m| m.clicks - m.extra).sum();
        assert!((30_000..80_000).contains(&day), "{day}");
        let mut rng = Rng::new(1);
        let mean = (0..10_000)
            .map(|_| f64::from(rng.poisson(3.0)))
            .sum::<f64>()
            / 1e4;
        assert!((2.9..3.1).contains(&mean), "{mean}");
    }

    /// A network's state after its usual traffic for the history days, and the trips it made;
    /// and the conversions its last clicks still bring after midnight.
    fn history(daily: f64, t: &Thresholds) -> (FloodState, Vec<u64>, Pending) {
        let mut state = FloodState::new(DAY0);
        let mut traffic = Traffic::new(Network::of(daily, daily as u64), vec![]);
        let Run { trips, .. } = run(&mut state, &mut traffic, t, DAY0, 0, HISTORY_DAYS * 1440, 0);
        (state, trips, traffic.due)
    }

    type Pending = std::collections::BTreeMap<u64, u32>;

    /// The flood shapes of the table, from a start minute: (name, episode).
    fn shapes(start: u64) -> Vec<(&'static str, Episode)> {
        vec![
            (
                "sudden 50x, unflagged",
                Episode::flood(start, 50.0, 0.02, 0.05, 0),
            ),
            (
                "ramped to 60x over 2 h",
                Episode::flood(start, 60.0, 0.02, 0.05, 120),
            ),
            (
                "low and slow 2x, flagged",
                Episode::flood(start, 2.0, 0.97, 0.0, 0),
            ),
            (
                "low and slow 3x, flagged",
                Episode::flood(start, 3.0, 0.97, 0.0, 0),
            ),
            (
                "low and slow 6x, flagged",
                Episode::flood(start, 6.0, 0.97, 0.0, 0),
            ),
            (
                "low and slow 2x, unflagged",
                Episode::flood(start, 2.0, 0.02, 0.05, 0),
            ),
            (
                "low and slow 3x, unflagged",
                Episode::flood(start, 3.0, 0.02, 0.05, 0),
            ),
            (
                "low and slow 6x, unflagged",
                Episode::flood(start, 6.0, 0.02, 0.05, 0),
            ),
            (
                "20x unflagged, converting 1/20",
                Episode::flood(start, 20.0, 0.02, 0.05, 0),
            ),
            (
                "20x launch, converting as usual",
                Episode::flood(start, 20.0, 0.02, 1.0, 30),
            ),
            ("push: 10% of a day in 10 min", Episode::burst(start, 0.1)),
            (
                "20x launch, a quarter of conversions 12 h late",
                Episode::flood(start, 20.0, 0.02, 1.0, 30),
            ),
            (
                "20x launch on a day converting 30% under",
                Episode::flood(start, 20.0, 0.02, 1.0, 30),
            ),
            (
                "rule change declining 40%, new config",
                Episode::rule_change(start, 0.4),
            ),
        ]
    }

    /// The share of a row's conversions that come late (12 hours on average, not 1).
    fn late(name: &str) -> f64 {
        if name.contains("12 h late") {
            0.25
        } else {
            0.0
        }
    }

    /// One cell: over every start hour, the slowest trip (minutes after the start; `None` when
    /// one start never trips) and the most clicks let through; and any trip before the start.
    #[derive(Debug, Clone, Copy, PartialEq)]
    struct Cell {
        /// The slowest trip of the starts that tripped, and how many did.
        minutes: u64,
        tripped: usize,
        let_through: u64,
        early: usize,
        /// The starts whose trip was put down to a config change (one alert each), and the
        /// slowest.
        alerted: usize,
        alert_minutes: u64,
    }

    fn table(t: &Thresholds) -> Vec<(&'static str, Vec<Cell>)> {
        let histories: Vec<_> = SIZES.iter().map(|&d| history(d, t)).collect();
        for (size, (_, trips, _)) in SIZES.iter().zip(&histories) {
            assert_eq!(
                trips,
                &Vec::<u64>::new(),
                "{size}: false trips in the history"
            );
        }
        let names: Vec<&str> = shapes(0).iter().map(|s| s.0).collect();
        names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let cells = SIZES
                    .iter()
                    .zip(&histories)
                    .map(|(&daily, (state, _, pending))| {
                        let mut cell = Cell {
                            minutes: 0,
                            tripped: 0,
                            let_through: 0,
                            early: 0,
                            alerted: 0,
                            alert_minutes: 0,
                        };
                        for (k, hour) in STARTS.into_iter().enumerate() {
                            let start = HISTORY_DAYS * 1440 + hour * 60;
                            let episode = shapes(start)[i].1;
                            let seed = daily as u64 ^ (i as u64) << 40 ^ (k as u64) << 48;
                            let usual = Network::of(daily, seed);
                            let network = Network {
                                late: late(name),
                                cr: usual.cr * if name.contains("30% under") { 0.7 } else { 1.0 },
                                ..usual
                            };
                            let mut traffic = Traffic::new(network, vec![episode]);
                            traffic.due = pending.clone();
                            let mut s = state.clone();
                            let from = HISTORY_DAYS * 1440;
                            // A rule change comes with a new config, from its start.
                            s.config_in_force(0x01d, DAY0);
                            let mut r = Run::default();
                            let mut at = from;
                            if episode.rule_change.is_some() {
                                r = run(&mut s, &mut traffic, t, DAY0, from, start - from, start);
                                s.config_in_force(0x2e3, DAY0 + start * MINUTE_MS);
                                at = start;
                            }
                            let after =
                                run(&mut s, &mut traffic, t, DAY0, at, from + 1440 - at, start);
                            r.let_through += after.let_through;
                            r.trips.extend(after.trips);
                            r.after_config_change.extend(after.after_config_change);
                            cell.alerted += usize::from(!r.after_config_change.is_empty());
                            if let Some(a) = r.after_config_change.first() {
                                cell.alert_minutes = cell.alert_minutes.max(a - start);
                            }
                            cell.early += r.trips.iter().filter(|&&m| m < start).count();
                            let at = r.trips.iter().find(|&&m| m >= start).map(|m| m - start);
                            if let Some(at) = at {
                                cell.minutes = cell.minutes.max(at);
                                cell.tripped += 1;
                            }
                            cell.let_through = cell.let_through.max(r.let_through);
                        }
                        cell
                    })
                    .collect();
                (*name, cells)
            })
            .collect()
    }

    fn render(rows: &[(&str, Vec<Cell>)]) -> String {
        let mut out = String::from(
            "| shape | 1,000 a day | 5,000 | 50,000 | 500,000 |\n| --- | --- | --- | --- | --- |\n",
        );
        for (name, cells) in rows {
            out.push_str(&format!("| {name} |"));
            for c in cells {
                let (m, n, let_through) = (c.minutes, STARTS.len(), c.let_through);
                out.push_str(&match c.tripped {
                    0 if c.alerted == n => {
                        format!(" never; alerts after {} min |", c.alert_minutes)
                    }
                    0 if c.alerted > 0 => format!(
                        " never; {} of {n} starts alert, after {} min |",
                        c.alerted, c.alert_minutes
                    ),
                    0 => " never |".to_owned(),
                    k if k == n => format!(" {m} min, {let_through} let through |"),
                    k => format!(" {k} of {n} starts: {m} min, {let_through} let through |"),
                });
            }
            out.push('\n');
        }
        out
    }

    /// A year of a network's usual traffic with everything benign real networks do: a push or an
    /// e-mail (10% of a day's clicks in 10 minutes) every 5 days, a launch at 10× for 3 hours
    /// every 3 weeks, one ramped to 10× over 2 hours for 6 every 30 days, one at 20× converting
    /// as usual every 45 days, each at a seeded hour; and a campaign that triples the volume for
    /// good from day 180. The minutes it tripped at.
    fn benign_year(daily: f64, t: &Thresholds) -> Vec<(u64, String)> {
        let mut rng = Rng::new(daily as u64 ^ 0x7ea5);
        let mut at = |day: u64| day * 1440 + rng.next_u64() % 1440;
        let mut episodes = vec![Episode::launch(180 * 1440, 24 * 185, 3.0, 24 * 60)];
        for day in (1..365).step_by(5) {
            episodes.push(Episode::burst(at(day), 0.1));
        }
        for day in (3..365).step_by(21) {
            episodes.push(Episode::launch(at(day), 3, 10.0, 30));
        }
        for day in (11..365).step_by(30) {
            episodes.push(Episode::launch(at(day), 6, 10.0, 120));
        }
        for day in (17..365).step_by(45) {
            episodes.push(Episode::launch(at(day), 3, 20.0, 30));
        }
        let mut state = FloodState::new(DAY0);
        let mut traffic = Traffic::new(Network::of(daily, daily as u64 ^ 0x9ea7), episodes);
        let r = run(&mut state, &mut traffic, t, DAY0, 0, 365 * 1440, 0);
        // The causes, for the message when one trips.
        r.trips.into_iter().zip(r.why).collect()
    }

    #[test]
    fn a_year_of_benign_traffic_never_trips_at_1_000_a_day() {
        assert_eq!(
            benign_year(1_000.0, &Thresholds::default()),
            Vec::<(u64, String)>::new()
        );
    }

    #[test]
    fn a_year_of_benign_traffic_never_trips_at_5_000_a_day() {
        assert_eq!(
            benign_year(5_000.0, &Thresholds::default()),
            Vec::<(u64, String)>::new()
        );
    }

    #[test]
    fn a_year_of_benign_traffic_never_trips_at_50_000_a_day() {
        assert_eq!(
            benign_year(50_000.0, &Thresholds::default()),
            Vec::<(u64, String)>::new()
        );
    }

    #[test]
    fn a_year_of_benign_traffic_never_trips_at_500_000_a_day() {
        assert_eq!(
            benign_year(500_000.0, &Thresholds::default()),
            Vec::<(u64, String)>::new()
        );
    }

    #[test]
    fn flood_shapes_at_every_size_trip_as_the_table_says() {
        let rows = table(&Thresholds::default());
        let table = render(&rows);
        println!("{table}");
        let cell = |shape: &str, size: f64| {
            let (_, cells) = rows.iter().find(|r| r.0 == shape).expect("a shape");
            cells[SIZES.iter().position(|&s| s == size).expect("a size")]
        };
        for (name, cells) in &rows {
            for c in cells {
                assert_eq!(c.early, 0, "{name}: a false trip before the flood\n{table}");
            }
        }
        // The targets: a low-and-slow flagged flood at 2× trips within 60 minutes and at 3×
        // within 30 from 5,000 clicks a day up, and at 3× within 2 hours at 1,000 a day, from
        // every start; a push never trips.
        for size in [5_000.0, 50_000.0, 500_000.0] {
            for (shape, within) in [
                ("low and slow 2x, flagged", LOW_AND_SLOW_2X),
                ("low and slow 3x, flagged", LOW_AND_SLOW_3X),
            ] {
                let c = cell(shape, size);
                assert!(
                    c.tripped == STARTS.len() && c.minutes <= within,
                    "{shape} at {size}: {c:?}"
                );
            }
        }
        let c = cell("low and slow 3x, flagged", 1_000.0);
        assert!(c.tripped == STARTS.len() && c.minutes <= SMALL_3X, "{c:?}");
        for size in SIZES {
            let push = cell("push: 10% of a day in 10 min", size);
            assert_eq!(push.tripped, 0, "a push at {size}");
            // A launch at 20× converting as usual never trips: its conversions come as due.
            let launch = cell("20x launch, converting as usual", size);
            assert_eq!(launch.tripped, 0, "a launch at {size}: {launch:?}");
            // A flood at 20× converting at a twentieth trips from every start: within 30 minutes
            // from 50,000 clicks a day up; below that, when enough conversions are missing to
            // tell (a 1,000-a-day network expects one conversion in two hours of its usual): no
            // sooner than `ceiling` allows, later as the day's rate is known only so well.
            let flood = cell("20x unflagged, converting 1/20", size);
            let within = if size >= 50_000.0 { 30 } else { SMALL_20X };
            assert!(
                flood.tripped == STARTS.len() && flood.minutes <= within,
                "a 20x flood at {size}: {flood:?}"
            );
        }
        for size in [5_000.0, 50_000.0, 500_000.0] {
            // A rule change with a new config never blocks and alerts within the window from
            // every start. At 1,000 a day an hour holds too few clicks for the new share to
            // trip, or to be learnt, within the window: the table says what it does.
            let change = cell("rule change declining 40%, new config", size);
            assert_eq!(change.tripped, 0, "a rule change at {size}: {change:?}");
            assert!(
                change.alerted == STARTS.len()
                    && change.alert_minutes * MINUTE_MS < crate::flood::CONFIG_CHANGE_WINDOW_MS,
                "a rule change at {size}: {change:?}"
            );
        }
        // And every figure as docs/floods.md gives it.
        let docs = include_str!("../../../../docs/floods.md");
        assert!(
            docs.contains(&table),
            "docs/floods.md lacks the table:\n{table}"
        );
    }

    /// A day and a half at 50,000 clicks a day after the history, with `episodes` from 08:00
    /// on, and the config's digest changed at 08:00 when `push` says so.
    fn after_a_push(push: bool, episodes: impl Fn(u64) -> Vec<Episode>) -> (u64, Run) {
        let t = Thresholds::default();
        let (mut state, _, pending) = history(50_000.0, &t);
        state.config_in_force(0x01d, DAY0);
        let start = HISTORY_DAYS * 1440 + 8 * 60;
        let mut traffic = Traffic::new(Network::of(50_000.0, 3), episodes(start));
        traffic.due = pending;
        let from = HISTORY_DAYS * 1440;
        let mut r = run(
            &mut state,
            &mut traffic,
            &t,
            DAY0,
            from,
            start - from,
            start,
        );
        if push {
            state.config_in_force(0x2e3, DAY0 + start * 60_000);
        }
        let after = run(&mut state, &mut traffic, &t, DAY0, start, 2 * 1440, start);
        r.trips.extend(after.trips);
        r.why.extend(after.why);
        r.after_config_change.extend(after.after_config_change);
        (start, r)
    }

    #[test]
    fn a_rule_change_that_flags_two_fifths_of_the_usual_clicks_is_put_down_to_the_config() {
        // Pushed with a new config: one alert within the window, no block that day or the next.
        let (start, r) = after_a_push(true, |s| vec![Episode::rule_change(s, 0.4)]);
        assert!(r.trips.is_empty(), "{r:?}");
        assert_eq!(r.after_config_change.len(), 1, "{r:?}");
        let at = r.after_config_change[0];
        assert!((start..start + 120).contains(&at), "{r:?}");
    }

    #[test]
    fn the_same_jump_without_a_config_change_trips_as_a_flood_would() {
        let (start, r) = after_a_push(false, |s| vec![Episode::rule_change(s, 0.4)]);
        assert!(r.trips.first().is_some_and(|&m| m >= start), "{r:?}");
        assert!(r.why[0].starts_with("flagged_history:"), "{r:?}");
        assert!(r.after_config_change.is_empty(), "{r:?}");
    }

    #[test]
    fn a_flagged_flood_starting_after_the_window_trips() {
        // A push that changes no share, and a low-and-slow flood three hours later: caught as
        // without the push.
        let (start, r) = after_a_push(true, |s| vec![Episode::flood(s + 180, 2.0, 0.97, 0.0, 0)]);
        assert!(r.after_config_change.is_empty(), "{r:?}");
        let first = r.trips.first().copied();
        assert!(
            first.is_some_and(|m| (start + 180..start + 240).contains(&m)),
            "{r:?}"
        );
        assert!(r.why[0].starts_with("flagged_history:"), "{r:?}");
        // After a rule change that flags 40%, the flagged rate is the new rules' 40%: a flood is
        // told by its flagged share or its volume then, here within minutes.
        let (start, r) = after_a_push(true, |s| {
            vec![
                Episode::rule_change(s, 0.4),
                Episode::flood(s + 180, 5.0, 0.97, 0.0, 0),
            ]
        });
        assert_eq!(r.after_config_change.len(), 1, "{r:?}");
        let first = r.trips.first().copied();
        assert!(
            first.is_some_and(|m| (start + 180..start + 240).contains(&m)),
            "{r:?}"
        );
    }

    /// The earliest minute after a start at `hour` at which a 20× flood converting at a
    /// twentieth of the usual rate can be told short at all, by a detector that knew the day's
    /// rate exactly: the conversions its clicks are due at that rate (the usual traffic's and
    /// the flood's, each after the exponential delay) are so many that the conversions the flood
    /// brings on average are under the lower quantile of the detector's budget for a shortfall,
    /// `√tail` (a Poisson count; the day's spread and the excess's own only widen it). Before
    /// then no threshold that keeps that budget can trip on the conversions; the network is
    /// judged by the volume and the flagged clicks alone. Human traffic on its diurnal curve at
    /// `daily` clicks a day, on a weekday at its usual level.
    fn ceiling(daily: f64, hour: u64) -> u64 {
        use crate::flood::simulation::human;
        use crate::flood::CONVERSION_DELAY;
        let budget = Thresholds::default().tail.sqrt();
        let cr = Network::of(daily, 0).cr;
        let start = 1440 + hour * 60;
        // The conversions in flight: of the usual clicks and of the flood's.
        let (mut usual, mut flood, mut owed, mut got) = (0.0, 0.0, 0.0, 0.0);
        for m in start - 720.. {
            let clicks = human(m % 1440, daily);
            usual += clicks * cr;
            if m >= start {
                flood += 19.0 * clicks * cr;
            }
            let (a, b) = (usual / CONVERSION_DELAY, flood / CONVERSION_DELAY);
            (usual, flood) = (usual - a, flood - b);
            if m < start {
                continue;
            }
            (owed, got) = (owed + a + b, got + a + b / 20.0);
            // P(X ≤ got) for a Poisson X of mean `owed`, the terms summed in log space.
            let below: f64 = (0..=got as u64)
                .map(|k| {
                    let k = k as f64;
                    (k * owed.ln() - owed - (1..=k as u64).map(|i| (i as f64).ln()).sum::<f64>())
                        .exp()
                })
                .sum();
            if below < budget {
                return m - start;
            }
        }
        unreachable!()
    }

    #[test]
    fn the_docs_state_how_soon_conversions_can_tell_a_flood_at_each_size() {
        let slowest: Vec<u64> = SIZES
            .iter()
            .map(|&d| STARTS.iter().map(|&h| ceiling(d, h)).max().unwrap_or(0))
            .collect();
        let line = format!(
            "| 20x converting 1/20: the earliest the conversions can tell | {} min | {} min | {} min | {} min |",
            slowest[0], slowest[1], slowest[2], slowest[3]
        );
        println!("{line}");
        // Slower for a smaller network, by about the square root of its size.
        assert!(slowest.windows(2).all(|w| w[0] > w[1]), "{slowest:?}");
        let docs = include_str!("../../../../docs/floods.md");
        assert!(docs.contains(&line), "docs/floods.md lacks:\n{line}");
    }

    /// The targets' minutes.
    const LOW_AND_SLOW_2X: u64 = 60;
    const LOW_AND_SLOW_3X: u64 = 30;
    const SMALL_3X: u64 = 120;
    const SMALL_20X: u64 = 420;
}
