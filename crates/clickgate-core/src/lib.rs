//! clickgate's decision engine.
//!
//! Plain Rust with no I/O and no clock: the Worker (or the CLI, or a test) reads the request, the
//! time and the random source, and hands them in. The modules follow a click's path:
//!
//! - [`click`]: raw request → routed, parsed click (or the reason it is not one);
//! - [`config`]: KV JSON document → compiled [`config::Config`], with every problem and its path;
//! - [`cache`]: when the isolate's copy of the config is refreshed, and what survives a bad refresh;
//! - [`signing`]: the networks' click signatures, their replay records and circuit breaker;
//! - [`once`]: click ids asked of their replay object in batches, one request out per object;
//! - [`ip`], [`template`], [`token`]: the pieces a decision uses;
//! - [`counts`]: the duplicate-IP and sub-ID counts an isolate keeps and its network's object adds up;
//! - [`home`]: which object keeps a network's state (its own, or a shared one) and under which keys;
//! - [`decide`]: click + config + now → [`decide::Decision`], and its log line;
//! - [`http`]: decision or error → status, headers and body (the 1021 contract).

pub mod admin;
pub mod cache;
pub mod click;
pub mod config;
pub mod conversion;
pub mod counts;
pub mod decide;
pub mod flood;
#[cfg(all(test, not(target_arch = "wasm32")))]
mod fuzz;
pub mod hll;
pub mod home;
pub mod http;
pub mod ip;
pub mod log;
pub mod once;
pub mod replay;
pub mod report;
pub mod rules;
pub mod signing;
pub mod template;
pub mod token;
pub mod ua;
