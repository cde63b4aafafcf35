//! The operator's API: authenticated requests that change a network's state, under `/admin/`.
//!
//! ```text
//! POST /admin/networks/{aff_id}/block     {"by": "alice@example.com"}
//! POST /admin/networks/{aff_id}/unblock   {"by": "alice@example.com"}
//! GET  /admin/config                      the document in KV
//! PUT  /admin/config                      a new document: validated like `clickgate config push`
//! GET  /admin/report?from&to&group_by&format   the fraud report (see [`crate::report`])
//! GET  /admin/explain/{transaction_id}    one click's whole decision
//! GET  /admin/feeds                       the feeds' state: each one's last good fetch and last error
//! GET  /admin/blocklist                   the lasting blocklist of affiliates and sub IDs
//! POST /admin/blocklist                   {"aff_id": "net-7", "sub_id"?: "s1", "by": "alice", "note"?: "why"}
//! POST /admin/blocklist/remove            {"aff_id": "net-7", "sub_id"?: "s1", "by": "alice"}
//! GET  /admin/                            the report page
//! Authorization: Bearer <ADMIN_TOKEN>     (or Basic with the token as password, for browsers)
//! ```
//!
//! A block imposed by an operator lasts until 00:00 UTC; a lift holds for the rest of the UTC day
//! (no automatic trip until then). Who and when are recorded in the network's state and logged.
//! An affiliate, or one of its sub IDs, on the blocklist stays blocked until it is removed (see
//! [`crate::config::blocklist`]).

use serde_json::Value;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use crate::click::Id;
use crate::config::blocklist::Entry;
use crate::fault::{Blame, Fault};
use crate::report::ReportQuery;
use crate::token::same_secret;

pub(crate) const PREFIX: &str = "/admin/";

/// The admin API's routes and the methods each takes, as [`parse`] reads them: what
/// `docs/openapi.json` describes (a test holds the three to each other).
pub const ROUTES: [(&str, &str); 9] = [
    ("/admin/", "GET"),
    ("/admin/report", "GET"),
    ("/admin/feeds", "GET"),
    ("/admin/explain/{transaction_id}", "GET"),
    ("/admin/config", "GET, PUT"),
    ("/admin/networks/{network}/block", "POST"),
    ("/admin/networks/{network}/unblock", "POST"),
    ("/admin/blocklist", "GET, POST"),
    ("/admin/blocklist/remove", "POST"),
];
const MAX_BY_LEN: usize = 128;
/// An `ADMIN_TOKEN` shorter than this is treated as unset: an empty or guessable secret must not
/// open the API (a mistyped `wrangler secret put` leaves an empty one).
pub(crate) const MIN_TOKEN_BYTES: usize = 16;
/// The largest body an admin request may carry: a config document at its limit (a block's
/// `{"by"}` is far smaller).
pub const MAX_BODY_BYTES: usize = crate::config::MAX_DOCUMENT_BYTES;

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
    /// The new document's text, not yet validated ([`crate::operator`] compiles it with its lists).
    PutConfig(String),
    Report(ReportQuery),
    /// A transaction id, not yet opened ([`crate::operator`] opens it with the key the Worker holds).
    Explain(String),
    /// The feeds' state as stored.
    Feeds,
    Blocklist(BlocklistCall),
    Page,
}

/// A call on the blocklist: an entry to add or remove, stamped with who and when the call came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlocklistCall {
    List,
    Add(Entry),
    Remove(Entry),
}

/// The parts of an HTTP request the admin API reads.
#[derive(Debug, Clone, Copy)]
pub struct AdminCall<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub authorization: Option<&'a str>,
    pub body: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminError {
    /// The Worker has no `ADMIN_TOKEN` secret: the API is off.
    NotConfigured,
    /// The `ADMIN_TOKEN` secret is set but shorter than [`MIN_TOKEN_BYTES`]: the API is off, and
    /// the operator is told in the log.
    WeakToken {
        len: usize,
    },
    Unauthorized,
    /// The report page without credentials: the browser is asked for them.
    Login,
    NotFound,
    /// With the methods the route takes.
    MethodNotAllowed(&'static str),
    BadRequest(String),
}

/// Only a too-short `ADMIN_TOKEN` is the deployment's fault; an API left off, and every other
/// refusal, answer the caller.
impl Fault for AdminError {
    fn blame(&self) -> Blame {
        match self {
            AdminError::WeakToken { .. } => Blame::Operator,
            _ => Blame::Client,
        }
    }
}

impl AdminError {
    /// The fault line an operator must see for this refusal: only a too-short `ADMIN_TOKEN` is
    /// the deployment's fault rather than the caller's.
    pub fn fault_line(&self) -> Option<String> {
        let AdminError::WeakToken { len } = self else {
            return None;
        };
        Some(crate::log::fault_line(
            "admin_token",
            &format!("ADMIN_TOKEN is {len} bytes, under {MIN_TOKEN_BYTES}: the admin API is off"),
        ))
    }
}

pub fn is_admin_path(path: &str) -> bool {
    path.starts_with(PREFIX)
}

/// Checks the caller's credentials, before anything else of the request is looked at (its body
/// is not even read yet), so an unauthenticated caller learns nothing about which paths exist
/// and costs nothing but this.
pub(crate) fn authorize(
    method: &str,
    path: &str,
    authorization: Option<&str>,
    admin_token: Option<&str>,
) -> Result<(), AdminError> {
    let token = admin_token.ok_or(AdminError::NotConfigured)?;
    if token.len() < MIN_TOKEN_BYTES {
        return Err(AdminError::WeakToken { len: token.len() });
    }
    let rest = path.strip_prefix(PREFIX).unwrap_or("");
    let refused = if rest.is_empty() && method == "GET" {
        AdminError::Login
    } else {
        AdminError::Unauthorized
    };
    let presented = authorization
        .and_then(presented_token)
        .ok_or(refused.clone())?;
    if !same_secret(&presented, token) {
        return Err(refused);
    }
    Ok(())
}

/// Reads an admin request, its credentials first (see [`authorize`]).
pub fn parse(
    call: AdminCall<'_>,
    admin_token: Option<&str>,
    now_ms: u64,
) -> Result<AdminRequest, AdminError> {
    let AdminCall {
        method,
        path,
        query,
        authorization,
        body,
    } = call;
    authorize(method, path, authorization, admin_token)?;
    let rest = path.strip_prefix(PREFIX).unwrap_or("");
    if rest.is_empty() || rest == "report" {
        if method != "GET" {
            return Err(AdminError::MethodNotAllowed("GET"));
        }
        if rest.is_empty() {
            return Ok(AdminRequest::Page);
        }
        return ReportQuery::parse(query, now_ms)
            .map(AdminRequest::Report)
            .map_err(|e| AdminError::BadRequest(e.into()));
    }
    if let Some(id) = rest.strip_prefix("explain/") {
        if method != "GET" {
            return Err(AdminError::MethodNotAllowed("GET"));
        }
        return Ok(AdminRequest::Explain(id.to_owned()));
    }
    if rest == "feeds" {
        if method != "GET" {
            return Err(AdminError::MethodNotAllowed("GET"));
        }
        return Ok(AdminRequest::Feeds);
    }
    if let Some(verb) = rest.strip_prefix("blocklist") {
        return match (verb, method) {
            ("", "GET") => Ok(AdminRequest::Blocklist(BlocklistCall::List)),
            ("", "POST") => blocklist_entry(body, now_ms)
                .map(|e| AdminRequest::Blocklist(BlocklistCall::Add(e))),
            ("", _) => Err(AdminError::MethodNotAllowed("GET, POST")),
            ("/remove", "POST") => blocklist_entry(body, now_ms)
                .map(|e| AdminRequest::Blocklist(BlocklistCall::Remove(e))),
            ("/remove", _) => Err(AdminError::MethodNotAllowed("POST")),
            _ => Err(AdminError::NotFound),
        };
    }
    if rest == "config" {
        return match method {
            "GET" => Ok(AdminRequest::GetConfig),
            "PUT" => Ok(AdminRequest::PutConfig(body.to_owned())),
            _ => Err(AdminError::MethodNotAllowed("GET, PUT")),
        };
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let (network, verb) = match parts.as_slice() {
        ["networks", network, verb @ ("block" | "unblock")] => (*network, *verb),
        _ => return Err(AdminError::NotFound),
    };
    if method != "POST" {
        return Err(AdminError::MethodNotAllowed("POST"));
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
            AdminError::BadRequest(format!("`by` must name who asks, 1 to {MAX_BY_LEN} bytes"))
        })?
        .to_owned();
    Ok(AdminRequest::Network(if verb == "block" {
        Action::Block { network, by }
    } else {
        Action::Unblock { network, by }
    }))
}

/// A blocklist call's body: `{"aff_id", "sub_id"?, "by", "note"?}`, stamped `now_ms`.
fn blocklist_entry(body: &str, now_ms: u64) -> Result<Entry, AdminError> {
    let shape = "the body must be JSON: {\"aff_id\", \"sub_id\"?, \"by\", \"note\"?}";
    let doc: Value =
        serde_json::from_str(body).map_err(|_| AdminError::BadRequest(shape.into()))?;
    let text = |k: &str| match doc.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(AdminError::BadRequest(format!("`{k}` must be a string"))),
    };
    let aff_id = text("aff_id")?.ok_or_else(|| AdminError::BadRequest(shape.into()))?;
    let by = text("by")?.unwrap_or("");
    Entry::new(aff_id, text("sub_id")?, by, text("note")?, now_ms).map_err(AdminError::BadRequest)
}

/// The token in `Bearer <token>`, or the password of `Basic base64(user:token)` (what a browser
/// sends after asking). Scheme names are case-insensitive (RFC 7235 section 2.1).
fn presented_token(authorization: &str) -> Option<String> {
    let (scheme, credentials) = authorization.trim_start().split_once(' ')?;
    let credentials = credentials.trim_matches(' ');
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(credentials.to_owned());
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = B64.decode(credentials).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':')
        .map(|(_, password)| password.to_owned())
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
        let call = AdminCall {
            method,
            path,
            query: "",
            authorization: auth,
            body,
        };
        parse(call, Some(TOKEN), 0)
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
            Err(AdminError::MethodNotAllowed("GET, PUT"))
        );
        assert_eq!(
            call("GET", "/admin/networks/net-7/block", Some(&auth), body),
            Err(AdminError::MethodNotAllowed("POST"))
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
    fn blocklist_calls_are_read_with_who_and_when() {
        let auth = format!("Bearer {TOKEN}");
        let auth = Some(auth.as_str());
        let at = |method, path, body| {
            let call = AdminCall {
                method,
                path,
                query: "",
                authorization: auth,
                body,
            };
            parse(call, Some(TOKEN), 42)
        };
        assert_eq!(
            at("GET", "/admin/blocklist", ""),
            Ok(AdminRequest::Blocklist(BlocklistCall::List))
        );
        let body = r#"{"aff_id": "net-7", "sub_id": "s1", "by": "alice", "note": "chargebacks"}"#;
        let Ok(AdminRequest::Blocklist(BlocklistCall::Add(entry))) =
            at("POST", "/admin/blocklist", body)
        else {
            panic!("not an add")
        };
        assert_eq!(
            (
                entry.aff_id.as_str(),
                entry.sub_id.as_deref(),
                entry.by.as_str()
            ),
            ("net-7", Some("s1"), "alice")
        );
        assert_eq!(
            (entry.at_ms, entry.note.as_deref()),
            (42, Some("chargebacks"))
        );
        assert!(matches!(
            at(
                "POST",
                "/admin/blocklist/remove",
                r#"{"aff_id": "net-7", "by": "bob"}"#
            ),
            Ok(AdminRequest::Blocklist(BlocklistCall::Remove(Entry {
                sub_id: None,
                ..
            })))
        ));
        assert_eq!(
            at("DELETE", "/admin/blocklist", ""),
            Err(AdminError::MethodNotAllowed("GET, POST"))
        );
        assert_eq!(
            at("GET", "/admin/blocklist/remove", ""),
            Err(AdminError::MethodNotAllowed("POST"))
        );
        assert_eq!(
            at("GET", "/admin/blocklists", ""),
            Err(AdminError::NotFound)
        );
        for bad in [
            "",
            r#"{"by": "alice"}"#,
            r#"{"aff_id": "net-7"}"#,
            r#"{"aff_id": "net 7", "by": "alice"}"#,
            r#"{"aff_id": "net-7", "sub_id": 1, "by": "alice"}"#,
        ] {
            assert!(
                matches!(
                    at("POST", "/admin/blocklist", bad),
                    Err(AdminError::BadRequest(_))
                ),
                "{bad}"
            );
        }
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
        let call = AdminCall {
            method: "POST",
            path: "/admin/networks/n/block",
            query: "",
            authorization: Some("Bearer x"),
            body,
        };
        assert_eq!(parse(call, None, 0), Err(AdminError::NotConfigured));
        assert!(same_secret("a", "a") && !same_secret("a", "b") && !same_secret("a", "aa"));
    }

    #[test]
    fn reports_explanations_and_the_page_are_read_with_the_token() {
        let auth = format!("Bearer {TOKEN}");
        let get = |path: &str, query: &str, auth: Option<&str>| {
            let call = AdminCall {
                method: "GET",
                path,
                query,
                authorization: auth,
                body: "",
            };
            parse(call, Some(TOKEN), 0)
        };
        assert!(matches!(
            get("/admin/report", "group_by=offer&format=csv", Some(&auth)),
            Ok(AdminRequest::Report(q)) if q.format == crate::report::Format::Csv
        ));
        assert!(matches!(
            get("/admin/report", "group_by=nope", Some(&auth)),
            Err(AdminError::BadRequest(m)) if m.contains("nope")
        ));
        assert_eq!(
            get("/admin/explain/AbC-_1", "", Some(&auth)),
            Ok(AdminRequest::Explain("AbC-_1".into()))
        );
        assert_eq!(get("/admin/", "", Some(&auth)), Ok(AdminRequest::Page));
        assert_eq!(
            call("POST", "/admin/report", Some(&auth), ""),
            Err(AdminError::MethodNotAllowed("GET"))
        );
        // A browser's Basic answer carries the token as its password.
        let basic = format!("Basic {}", B64.encode(format!("ops:{TOKEN}")));
        assert_eq!(get("/admin/", "", Some(&basic)), Ok(AdminRequest::Page));
        let wrong = format!("Basic {}", B64.encode("ops:guess"));
        // Without the token the page asks for it; every other route just refuses.
        assert_eq!(get("/admin/", "", Some(&wrong)), Err(AdminError::Login));
        assert_eq!(get("/admin/", "", None), Err(AdminError::Login));
        assert_eq!(
            get("/admin/report", "", None),
            Err(AdminError::Unauthorized)
        );
        assert_eq!(
            get("/admin/report", "", Some("Basic %%%")),
            Err(AdminError::Unauthorized)
        );
        assert_eq!(
            get("/admin/explain/x", "", Some(&wrong)),
            Err(AdminError::Unauthorized)
        );
    }

    #[test]
    fn an_empty_or_short_admin_token_is_unset_and_opens_nothing() {
        // The empty token once matched `Basic dTo=` (user `u`, empty password).
        let empty_password = format!("Basic {}", B64.encode("u:"));
        for token in ["", "short-token-15b"] {
            let call = AdminCall {
                method: "GET",
                path: "/admin/config",
                query: "",
                authorization: Some(&empty_password),
                body: "",
            };
            assert_eq!(
                parse(call, Some(token), 0),
                Err(AdminError::WeakToken { len: token.len() })
            );
            let bearer = format!("Bearer {token}");
            assert_eq!(
                authorize("GET", "/admin/config", Some(&bearer), Some(token)),
                Err(AdminError::WeakToken { len: token.len() })
            );
            let line = AdminError::WeakToken { len: token.len() }.fault_line();
            assert!(line.is_some_and(|l| l.contains(r#""what":"admin_token""#)));
        }
        assert_eq!(AdminError::Unauthorized.fault_line(), None);
        // The operator is told in the log exactly when the refusal is the operator's fault.
        for e in [
            AdminError::NotConfigured,
            AdminError::WeakToken { len: 3 },
            AdminError::Unauthorized,
            AdminError::Login,
            AdminError::NotFound,
            AdminError::MethodNotAllowed("GET"),
            AdminError::BadRequest("from: not a time".into()),
        ] {
            let operators = e.blame() == Blame::Operator;
            assert_eq!(e.fault_line().is_some(), operators, "{e:?}");
        }
        let sixteen = "sixteen-bytes-ok";
        assert_eq!(sixteen.len(), MIN_TOKEN_BYTES);
        assert_eq!(
            authorize(
                "GET",
                "/admin/config",
                Some("Bearer sixteen-bytes-ok"),
                Some(sixteen)
            ),
            Ok(())
        );
    }

    #[test]
    fn auth_schemes_are_case_insensitive() {
        let basic = B64.encode(format!("ops:{TOKEN}"));
        for auth in [
            format!("Bearer {TOKEN}"),
            format!("bearer {TOKEN}"),
            format!("BEARER  {TOKEN}"),
            format!("Basic {basic}"),
            format!("basic {basic}"),
            format!("BASIC {basic}"),
        ] {
            assert_eq!(
                authorize("GET", "/admin/config", Some(&auth), Some(TOKEN)),
                Ok(()),
                "{auth}"
            );
        }
        for auth in [
            format!("Token {TOKEN}"),
            format!("Bearer{TOKEN}"),
            TOKEN.to_owned(),
        ] {
            assert_eq!(
                authorize("GET", "/admin/config", Some(&auth), Some(TOKEN)),
                Err(AdminError::Unauthorized),
                "{auth}"
            );
        }
    }
}
