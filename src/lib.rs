//! The clickgate Worker: the thin edge around `clickgate-core`.
//!
//! It reads the request, the clock (once), the random source, KV and secrets; hands them to the core;
//! and copies the core's answer onto the response. Every decision about a click is made in the core.

#![warn(unreachable_pub)]

#[cfg(target_arch = "wasm32")]
mod admin;
#[cfg(target_arch = "wasm32")]
mod config;
#[cfg(target_arch = "wasm32")]
mod console;
#[cfg(target_arch = "wasm32")]
mod edge;
#[cfg(target_arch = "wasm32")]
mod feeds;
#[cfg(target_arch = "wasm32")]
mod io;
#[cfg(target_arch = "wasm32")]
mod network;
#[cfg(target_arch = "wasm32")]
mod objects;
#[cfg(target_arch = "wasm32")]
mod postback;
#[cfg(target_arch = "wasm32")]
mod send;

/// The runtime's clock in ms since the Unix epoch: one call, where `worker::Date::now` makes a JS
/// `Date` object and asks it (read on every click).
#[cfg(target_arch = "wasm32")]
fn now_ms() -> u64 {
    worker::js_sys::Date::now() as u64
}
