//! The fraud report and the explanation of single clicks.
//!
//! Every decided click and every judged conversion adds to a [`Tally`] under its hour, advertiser
//! and offer. The isolate sums them with the network's other counts and sends them in the same
//! batch (see [`crate::network::store`]), so the report costs the click no extra request and is
//! applied exactly once. The network's object keeps one storage key per UTC hour ([`HourRows`]); a report
//! asks every network's object for the hours it covers and [`aggregate`]s the answers into
//! groups.
//!
//! A click that any filter fired on (or that was blocked or declined) also leaves its whole
//! decision, the log line with the client's IP hashed ([`kept_decision`]), under its transaction
//! id's nonce, which `GET /admin/explain/{id}` reads back.
//!
//! Bounds, all documented in the README:
//! - hours are kept [`REPORT_RETAIN_DAYS`](crate::stored::REPORT_RETAIN_DAYS) days, explanations
//!   [`EXPLAIN_RETAIN_DAYS`](crate::stored::EXPLAIN_RETAIN_DAYS);
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
//!
//! Its files, each with its tests: [`bounds`] (the caps above), [`tally`] (a row's counts, and
//! where a click or a postback counts), [`hours`] (one network's hour as stored), [`networks`]
//! (many networks' hours in bounded memory), [`answer`] (what a network's object answers to a
//! report, written and read), [`query`] (the question), [`groups`] (the answer: groups, JSON and
//! CSV), [`analytics`] (one decision as an Analytics Engine data point), [`explain`] (one click's
//! kept decision and its answer). The items are re-exported here: `report::X` names them all.

pub(crate) mod analytics;
pub(crate) mod answer;
pub(crate) mod bounds;
pub mod explain;
#[cfg(test)]
mod fixtures;
pub(crate) mod groups;
pub(crate) mod hours;
pub mod networks;
pub(crate) mod query;
pub(crate) mod tally;

pub use analytics::{data_point, DataPoint};
pub use answer::{network_answer, parse_object_answer, BadObjectAnswer};
pub use bounds::{
    COUNTRY, MAX_COUNTRIES, MAX_EXPLAINED_PER_HOUR, MAX_EXPLAINED_PER_MINUTE, MAX_NETWORKS_NAMED,
    MAX_RANGE_HOURS, MAX_ROWS_PER_HOUR, MAX_SUB_IDS, OTHER, SUB_ID,
};
pub(crate) use explain::{explain_answer, explain_key_of, kept_decision, worth_explaining};
pub use groups::{aggregate, Report};
pub use hours::HourRows;
pub use networks::{is_ledger, Networks, DEVICE_LEDGERS};
pub use query::{Format, Group, ReportQuery};
pub(crate) use tally::{conversion_row, ConversionRow, RowKey, Tally};
