//! The bench's bare Rust Worker: what a Rust/wasm Worker built as clickgate is (workers-rs,
//! wasm-bindgen, opt-level "z" with LTO, worker-build, names stripped, the plain handler of
//! src/entry.mjs) reaches on this runtime when it does nothing else. With the `log` feature it does
//! what benches/bare-logging-worker.js does: reads the link's parameters, two headers and
//! request.cf, writes one JSON line of clickgate's decision line's fields with console.log, and
//! redirects; without it, what benches/bare-worker.js does: reads offer_id and redirects.
//!
//! It takes the same short cuts clickgate's edge takes (the runtime's own request and response,
//! random bytes drawn in bulk, the line written straight into a string), so the gap between it and
//! the JS Worker is the toolchain's, not the code's.

#[cfg(target_arch = "wasm32")]
mod edge;
