//! The report's bounds: how much one network's hour, one report and one isolate may hold, all
//! documented in the README.

use crate::stored::REPORT_RETAIN_DAYS;

pub const MAX_ROWS_PER_HOUR: usize = 2_000;
/// Networks a report names; the rest are summed into [`OTHER`] (see [`Networks`](super::Networks)).
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
