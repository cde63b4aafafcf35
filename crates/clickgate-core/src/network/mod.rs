//! Everything a network shares through its Durable Object.
//!
//! - [`home`]: which object keeps a network's state (its own or a shared one) and under which keys.
//! - [`wire`]: every request an object serves, as one [`wire::ObjectRequest`], and its answers.
//! - [`local`]: the isolate's counts and when it sends them.
//! - [`store`]: the object's counts and the keys it stores them under.
//! - [`click_ids`]: click ids asked of their replay object in batches.

pub mod click_ids;
pub mod home;
pub mod local;
pub mod store;
pub mod wire;
