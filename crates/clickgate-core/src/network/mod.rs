//! Everything a network shares through its Durable Object.
//!
//! - [`home`]: which object keeps a network's state (its own or a shared one) and under which keys.
//! - [`keys`]: what the isolate's counts and the object's store share: the keys a click touches,
//!   the store's keys, an IP's history of clicks.
//! - [`wire`]: every request an object serves, as one [`wire::ObjectRequest`], and its answers.
//! - [`local`]: the isolate's counts and when it sends them.
//! - [`store`]: the object's counts, applied from the isolates' batches exactly once.
//! - [`click_ids`]: click ids asked of their replay object in batches.
//! - [`directory`]: the directory's listing rule: which objects and networks a report asks.

pub mod click_ids;
pub mod directory;
pub mod home;
pub mod keys;
pub mod local;
pub mod store;
pub mod wire;
