//! The console, written to as it is: every module of the Worker logs through here, below the
//! modules that do the Worker's work, so none of them has to import another just to log.

use worker::wasm_bindgen::JsValue;
use worker::worker_sys::web_sys;

/// Writes a log line to the console as it is. `console_log!("{line}")` would copy it through the
/// formatting machinery first, at each of the Worker's thirty places that log.
pub(crate) fn log(line: &str) {
    web_sys::console::log_1(&JsValue::from_str(line));
}

/// [`log`], as an error.
pub(crate) fn log_error(line: &str) {
    web_sys::console::error_1(&JsValue::from_str(line));
}
