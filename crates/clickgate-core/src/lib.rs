//! clickgate's decision engine.
//!
//! Plain Rust with no I/O and no clock: the Worker (or the CLI, or a test) reads the request, the
//! time and the random source, and hands them in. The modules stand on floors, each importing only
//! from its own floor or below and none in a loop (`tests/floors.rs` checks both). No file holds
//! more than 900 lines before its tests (`tests/floors.rs` too): a module that outgrows that
//! becomes a folder of files along its seams, re-exported from its `mod.rs` so no path changes
//! ([`isolate`], [`network::local`]).
//!
//! 1. The ground, words every floor uses: [`time`] (UTC days, hours and the two time formats),
//!    [`verdict`] (reason codes, reasons, the verdicts, the decision, fail-open or closed),
//!    [`fault`] (who is at fault when something fails: operator, client or runtime), [`log`]
//!    (JSON log lines), [`hll`] (distinct counts), [`ua`] (the User-Agent, read once per click),
//!    [`ip`] (addresses, ranges and their sets), [`alerts`] (what the operator's webhook is told,
//!    and at most once per kind and subject per window).
//! 2. The request: [`click`] (raw request → routed, parsed click, or why it is not one; the
//!    parameters' names), [`template`] (landing-URL macros, named as the click's parameters),
//!    [`token`] (the transaction id, and constant-time secret comparison), [`flood`] (a network's
//!    day of clicks and when it is beyond human, a pure step over its state), [`stored`] (every
//!    name something is stored under, KV key, object or storage key, and how long it is kept).
//! 3. A rule's filters: [`filters`], one file per filter (its settings and how they are read,
//!    its default points, what it counts across clicks, its judgement of a click or a conversion,
//!    its reason codes) and the list that names them all. Below the config, whose rules hold them.
//! 4. The config document: [`config`] compiles the whole KV document once, with every problem and
//!    its path: fields and ranges, offers, lists, [`config::rules`], [`config::networks`] (signing
//!    and flood settings), [`config::postbacks`], [`config::feeds`] (lists fetched on the Cron
//!    Trigger: when one is due, whether a fetched list may replace the last good one, and the
//!    feeds' state), and [`config::cache`] (the isolate's copy).
//! 5. The judges: [`rules`] (a rule's filters over a click, scored into a probability), [`signing`]
//!    (the networks' click signatures and their breaker), [`conversion`] (a postback judged against
//!    its click).
//! 6. The decision: [`decide`] (click + config + what the edge observed + now → the outcome and its
//!    log line).
//! 7. The fraud report's rows and queries: [`report`]: [`report::tally`] (a row's counts),
//!    [`report::hours`] (a network's hour as its object stores it), [`report::networks`] (many
//!    networks in bounded memory), [`report::answer`] (what an object answers to a report),
//!    [`report::query`] and [`report::groups`] (the question and its answer), [`report::explain`]
//!    (one click's kept decision), [`report::analytics`] (the Analytics Engine's data point), and
//!    [`report::bounds`] (the caps).
//! 8. State shared through the network's Durable Object: [`network`]: [`network::home`] (which
//!    object keeps a network's state, its own or a shared one, and under which keys),
//!    [`network::wire`] (every request the object serves and its answers), [`network::local`] (the
//!    isolate's counts and when it sends them), [`network::store`] (the object's counts, and the
//!    daily sweep's one expiry rule), [`network::click_ids`] (click ids asked of their replay object
//!    in batches), [`network::directory`] (which objects and networks a report asks).
//! 9. The operator's API: [`admin`].
//! 10. Answers over HTTP: [`http`] (the one place a decision becomes a response: the 1021 contract).
//! 11. The whole click, and tools over it: [`isolate`] (the click's checks in their order over the
//!     state an isolate keeps between clicks, and what runs once per isolate, and a postback's),
//!     [`operator`] (an admin call from its credentials to its answer, its reads and writes asked
//!     of the edge step by step), [`whatif`]
//!     (recorded clicks through a config: what it would have done, for `clickgate replay`), and
//!     `fuzz` (the parsers under generated input; tests only).

// `pub` means used outside the crate (by the Worker, the CLI, the tests or the bench); the rest is
// `pub(crate)`, and this keeps it so.
#![warn(unreachable_pub)]
// The module map above and the modules' own docs also link items private to the crate: they are
// written for whoever works on it, with `cargo doc --document-private-items`, where every link
// resolves (the broken-link lint stays on).
#![allow(rustdoc::private_intra_doc_links)]

pub mod admin;
pub mod alerts;
pub mod click;
pub mod config;
pub mod conversion;
pub mod decide;
pub mod fault;
pub mod filters;
pub mod flood;
#[cfg(all(test, not(target_arch = "wasm32")))]
mod fuzz;
mod hll;
pub mod http;
pub mod ip;
pub mod isolate;
pub mod log;
pub mod network;
pub mod operator;
pub mod report;
pub mod rules;
pub mod signing;
pub mod stored;
mod template;
pub mod time;
pub mod token;
pub mod ua;
pub mod verdict;
pub mod whatif;
