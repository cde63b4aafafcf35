//! The operator's API: authenticated requests that change a network's state, under `/admin/`.
//!
//! ```text
//! POST /admin/networks/{aff_id}/block     {"by": "alice@example.com"}
//! POST /admin/networks/{aff_id}/unblock   {"by": "alice@example.com"}
//! GET  /admin/config                      the document in KV
//! PUT  /admin/config                      a new document: validated like `clickgate config push`
//! Authorization: Bearer <ADMIN_TOKEN>
//! ```
//!
//! A block imposed by an operator lasts until 00:00 UTC; a lift holds for the rest of the UTC day
//! (no automatic trip until then). Who and when are recorded in the network's state and logged.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::click::Id;

pub const PREFIX: &str = "/admin/";
const MAX_BY_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Block { network: Id, by: String },
    Unblock { network: Id, by: String },
}

impl Action {
    pub fn network(&self) -> &Id {
        match self {
            Action::Block { network, .. } | Action::Unblock { network, .. } => network,
        }
    }
}

/// Everything the admin API does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminRequest {
    Network(Action),
    GetConfig,
    /// The new document's text, not yet validated (the Worker compiles it with its lists).
    PutConfig(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminError {
    /// The Worker has no `ADMIN_TOKEN` secret: the API is off.
    NotConfigured,
    Unauthorized,
    NotFound,
    MethodNotAllowed,
    BadRequest(String),
}

pub fn is_admin_path(path: &str) -> bool {
    path.starts_with(PREFIX)
}

/// Reads an admin request. The token is checked before anything else is looked at, so an
/// unauthenticated caller learns nothing about which paths exist.
pub fn parse(
    method: &str,
    path: &str,
    authorization: Option<&str>,
    admin_token: Option<&str>,
    body: &str,
) -> Result<AdminRequest, AdminError> {
    let token = admin_token.ok_or(AdminError::NotConfigured)?;
    let presented = authorization
        .and_then(|a| a.strip_prefix("Bearer "))
        .ok_or(AdminError::Unauthorized)?;
    if !same_secret(presented, token) {
        return Err(AdminError::Unauthorized);
    }
    let rest = path.strip_prefix(PREFIX).unwrap_or("");
    if rest == "config" {
        return match method {
            "GET" => Ok(AdminRequest::GetConfig),
            "PUT" => Ok(AdminRequest::PutConfig(body.to_owned())),
            _ => Err(AdminError::MethodNotAllowed),
        };
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let (network, verb) = match parts.as_slice() {
        ["networks", network, verb @ ("block" | "unblock")] => (*network, *verb),
        _ => return Err(AdminError::NotFound),
    };
    if method != "POST" {
        return Err(AdminError::MethodNotAllowed);
    }
    let network = Id::parse(network)
        .map_err(|e| AdminError::BadRequest(format!("network `{network}` {e}")))?;
    let doc: Value = serde_json::from_str(body)
        .map_err(|_| AdminError::BadRequest("the body must be JSON: {\"by\": \"who\"}".into()))?;
    let by = doc
        .get("by")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|b| !b.is_empty() && b.len() <= MAX_BY_LEN)
        .ok_or_else(|| {
            AdminError::BadRequest(format!(
                "`by` must name who asks, 1 to {MAX_BY_LEN} characters"
            ))
        })?
        .to_owned();
    Ok(AdminRequest::Network(if verb == "block" {
        Action::Block { network, by }
    } else {
        Action::Unblock { network, by }
    }))
}

/// Compares two secrets in time independent of where they differ (and of their lengths, by
/// comparing their hashes).
pub fn same_secret(a: &str, b: &str) -> bool {
    let (x, y) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const TOKEN: &str = "admin-token-admin-token-admin-token";

    fn call(
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: &str,
    ) -> Result<AdminRequest, AdminError> {
        parse(method, path, auth, Some(TOKEN), body)
    }

    #[test]
    fn operators_block_and_unblock_with_the_token_and_their_name() {
        let auth = format!("Bearer {TOKEN}");
        let body = r#"{"by": "alice@example.com"}"#;
        assert_eq!(
            call("POST", "/admin/networks/net-7/block", Some(&auth), body),
            Ok(AdminRequest::Network(Action::Block {
                network: Id::parse("net-7").unwrap(),
                by: "alice@example.com".into()
            }))
        );
        assert!(matches!(
            call("POST", "/admin/networks/net-7/unblock", Some(&auth), body),
            Ok(AdminRequest::Network(Action::Unblock { .. }))
        ));
        assert_eq!(
            call("GET", "/admin/config", Some(&auth), ""),
            Ok(AdminRequest::GetConfig)
        );
        assert_eq!(
            call("PUT", "/admin/config", Some(&auth), "{}"),
            Ok(AdminRequest::PutConfig("{}".into()))
        );
        assert_eq!(
            call("DELETE", "/admin/config", Some(&auth), ""),
            Err(AdminError::MethodNotAllowed)
        );
        assert_eq!(
            call("GET", "/admin/networks/net-7/block", Some(&auth), body),
            Err(AdminError::MethodNotAllowed)
        );
        assert_eq!(
            call("POST", "/admin/networks/net-7/delete", Some(&auth), body),
            Err(AdminError::NotFound)
        );
        assert!(matches!(
            call("POST", "/admin/networks/net-7/block", Some(&auth), "{}"),
            Err(AdminError::BadRequest(_))
        ));
        assert!(matches!(
            call("POST", "/admin/networks/net%207/block", Some(&auth), body),
            Err(AdminError::BadRequest(_))
        ));
    }

    #[test]
    fn without_the_right_token_nothing_is_told() {
        let body = r#"{"by": "mallory"}"#;
        for auth in [
            None,
            Some("Bearer wrong"),
            Some(TOKEN),
            Some("Bearer admin-token-admin-token-admin-toke"),
        ] {
            assert_eq!(
                call("POST", "/admin/networks/net-7/block", auth, body),
                Err(AdminError::Unauthorized)
            );
            assert_eq!(
                call("POST", "/admin/nothing", auth, body),
                Err(AdminError::Unauthorized)
            );
            assert_eq!(
                call("GET", "/admin/config", auth, ""),
                Err(AdminError::Unauthorized)
            );
        }
        assert_eq!(
            parse(
                "POST",
                "/admin/networks/n/block",
                Some("Bearer x"),
                None,
                body
            ),
            Err(AdminError::NotConfigured)
        );
        assert!(same_secret("a", "a") && !same_secret("a", "b") && !same_secret("a", "aa"));
    }
}
