//! The one place where decisions and request errors become HTTP responses.
//!
//! The block contract lives here and nowhere else: a blocked click gets 403 with error code 1021 and
//! the transaction id as a reference, as JSON or, for a browser, as a small HTML page. The clicker is
//! never told why; the reasons go to the decision log.

use serde_json::json;

use crate::admin::{Action, AdminError};
use crate::click::RequestError;
use crate::conversion::{self, ConversionOutcome, PostbackError};
use crate::decide::ClickOutcome;
use crate::flood::FloodBlock;
use crate::log::push_json_str;
use crate::report::{Format, Report};
use crate::verdict::Decision;

pub(crate) const BLOCK_CODE: u16 = 1021;
pub(crate) const BLOCK_MESSAGE: &str = "1021 : click fraud check";

/// A response in plain data; the Worker copies it onto a `worker::Response`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

const JSON: &str = "application/json; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

impl HttpResponse {
    fn new(status: u16, content_type: &'static str, body: String, head: bool) -> HttpResponse {
        HttpResponse {
            status,
            // Clicks are personal and time-bound: no cache may keep or replay a decision.
            headers: vec![
                ("content-type", content_type.to_owned()),
                ("cache-control", "no-store".to_owned()),
                ("x-content-type-options", "nosniff".to_owned()),
            ],
            body: if head { String::new() } else { body },
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `Accept: text/html` (a browser following the link) gets the HTML page; everything else JSON.
fn wants_html(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.to_ascii_lowercase().contains("text/html"))
}

pub fn click_response(outcome: &ClickOutcome, accept: Option<&str>, head: bool) -> HttpResponse {
    match &outcome.decision {
        // The redirect carries no body, so no content headers: each header is work on every click.
        Decision::Redirect { location } => HttpResponse {
            status: 302,
            headers: vec![
                ("location", location.clone()),
                ("cache-control", "no-store".to_owned()),
            ],
            body: String::new(),
        },
        Decision::Block { .. } => block_response(&outcome.transaction_id, accept, head),
    }
}

fn block_response(reference: &str, accept: Option<&str>, head: bool) -> HttpResponse {
    if wants_html(accept) {
        let reference = html_escape(reference);
        let mut body =
            String::with_capacity(PAGE_BEFORE.len() + reference.len() + PAGE_AFTER.len());
        body.push_str(PAGE_BEFORE);
        body.push_str(&reference);
        body.push_str(PAGE_AFTER);
        HttpResponse::new(403, HTML, body, head)
    } else {
        // Written directly, not through serde_json::Value: under attack most clicks take this path.
        let mut body = String::with_capacity(128);
        body.push_str(&format!("{{\"error\":{{\"code\":{BLOCK_CODE},\"message\":"));
        push_json_str(&mut body, BLOCK_MESSAGE);
        body.push_str(",\"reference\":");
        push_json_str(&mut body, reference);
        body.push_str("}}");
        HttpResponse::new(403, JSON, body, head)
    }
}

/// The block page before and after its reference, written out rather than formatted per click
/// (formatting it cost a blocked click more than its decision line); a test holds its code and
/// message to [`BLOCK_CODE`] and [`BLOCK_MESSAGE`].
const PAGE_BEFORE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
    <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
    <title>Error 1021</title></head>\
    <body style=\"font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem\">\
    <h1>Error 1021</h1><p>1021 : click fraud check</p>\
    <p>This link could not be followed. If you think this is wrong, contact the site that \
    showed you the link and quote this reference:</p>\
    <p><code style=\"word-break:break-all\">";
const PAGE_AFTER: &str = "</code></p></body></html>";

/// `text` with the characters HTML gives a meaning escaped; a transaction id has none of them.
fn html_escape(text: &str) -> std::borrow::Cow<'_, str> {
    if !text
        .bytes()
        .any(|b| matches!(b, b'&' | b'<' | b'>' | b'"' | b'\''))
    {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

pub fn error_response(error: &RequestError, head: bool) -> HttpResponse {
    let (status, code, parameter) = match error {
        RequestError::NotFound => (404, "not_found", None),
        RequestError::MethodNotAllowed { .. } => (405, "method_not_allowed", None),
        RequestError::UrlTooLong { .. } => (414, "url_too_long", None),
        RequestError::HeaderTooLarge { .. } => (431, "header_too_large", None),
        RequestError::MissingParam { name } => (400, "missing_parameter", Some(name.to_string())),
        RequestError::InvalidParam { name, .. } => (400, "invalid_parameter", Some(name.clone())),
        RequestError::UnknownOffer { .. } => (404, "unknown_offer", None),
        RequestError::OfferPaused { .. } => (404, "offer_paused", None),
        RequestError::BodyTooLarge { .. } => (413, "body_too_large", None),
    };
    let mut detail = json!({"code": code, "message": error.to_string()});
    if let Some(p) = parameter {
        detail["parameter"] = json!(p);
    }
    let mut r = HttpResponse::new(status, JSON, json!({ "error": detail }).to_string(), head);
    if let RequestError::MethodNotAllowed { allow } = error {
        r.headers.push(("allow", (*allow).to_owned()));
    }
    r
}

/// A fault on our side that no client caused: no config has ever loaded, or a secret is missing.
/// 503 tells the caller to retry; the detail stays in the log.
pub fn unavailable(head: bool) -> HttpResponse {
    let body = json!({"error": {"code": "unavailable", "message": "click filter is not ready; retry shortly"}});
    let mut r = HttpResponse::new(503, JSON, body.to_string(), head);
    r.headers.push(("retry-after", "5".to_owned()));
    r
}

pub(crate) fn health_response(config_digest: &str, head: bool) -> HttpResponse {
    HttpResponse::new(
        200,
        JSON,
        json!({"ok": true, "config": config_digest}).to_string(),
        head,
    )
}

/// The answer to a judged postback.
pub(crate) fn postback_response(outcome: &ConversionOutcome) -> HttpResponse {
    HttpResponse::new(200, JSON, outcome.answer(), false)
}

/// A click's verdict for the tracker that asked (see [`crate::conversion::click_verdict`]).
pub fn verdict_response(answer: Result<String, PostbackError>) -> HttpResponse {
    match answer {
        Ok(body) => HttpResponse::new(200, JSON, body, false),
        Err(e) => postback_error(&e),
    }
}

/// The answer to a rejection report: the rejection the object keeps, or why it was refused. A
/// transaction id this filter never issued is 404: there is no click to reject, and the reporting
/// system should not retry it. `None` from the object: it could not say, so retry.
pub(crate) fn rejection_response(
    answer: Result<(&conversion::Rejecting, Option<&conversion::Rejected>), PostbackError>,
) -> HttpResponse {
    match answer {
        Ok((rejecting, Some(kept))) => HttpResponse::new(200, JSON, rejecting.answer(kept), false),
        Ok((_, None)) => unavailable(false),
        Err(e @ PostbackError::UnknownTransaction(_)) => {
            let mut r = postback_error(&e);
            r.status = 404;
            r
        }
        Err(e) => postback_error(&e),
    }
}

/// A postback that could not be judged at all.
pub(crate) fn postback_error(error: &PostbackError) -> HttpResponse {
    let (status, code) = match error {
        PostbackError::Missing(_) => (400, "missing_parameter"),
        PostbackError::Invalid { .. } => (400, "invalid_parameter"),
        PostbackError::UnknownTransaction(_) => (400, "unknown_transaction"),
        PostbackError::Unauthorized => (401, "unauthorized"),
    };
    let body = json!({"error": {"code": code, "message": error.to_string()}});
    HttpResponse::new(status, JSON, body.to_string(), false)
}

/// An admin request that was refused.
pub(crate) fn admin_error_response(error: &AdminError) -> HttpResponse {
    if *error == AdminError::Login {
        // The page itself, which asks for the token when the browser's own prompt is dismissed;
        // it holds no data, and every request it makes is checked again.
        let mut r = HttpResponse::new(401, HTML, ADMIN_PAGE.to_owned(), false);
        r.headers.push((
            "www-authenticate",
            "Basic realm=\"clickgate admin\", charset=\"UTF-8\"".to_owned(),
        ));
        r.headers
            .push(("content-security-policy", PAGE_POLICY.to_owned()));
        return r;
    }
    let (status, code, message) = match error {
        AdminError::NotConfigured => (
            503,
            "admin_off",
            "the admin API is off: set the ADMIN_TOKEN secret".to_owned(),
        ),
        // The same answer as no token at all: the caller learns nothing about the secret.
        AdminError::WeakToken { .. } => (
            503,
            "admin_off",
            "the admin API is off: set the ADMIN_TOKEN secret".to_owned(),
        ),
        AdminError::Unauthorized | AdminError::Login => (
            401,
            "unauthorized",
            "a valid `Authorization: Bearer` token is required".to_owned(),
        ),
        AdminError::NotFound => (404, "not_found", "no such admin route".to_owned()),
        AdminError::MethodNotAllowed(allow) => (
            405,
            "method_not_allowed",
            format!("this route takes {allow}"),
        ),
        AdminError::BadRequest(m) => (400, "bad_request", m.clone()),
    };
    let body = json!({"error": {"code": code, "message": message}}).to_string();
    let mut r = HttpResponse::new(status, JSON, body, false);
    match error {
        AdminError::Unauthorized => r.headers.push(("www-authenticate", "Bearer".to_owned())),
        AdminError::MethodNotAllowed(allow) => r.headers.push(("allow", (*allow).to_owned())),
        _ => {}
    }
    r
}

/// The report page: one file, no external resources (see `admin_page.html`), its comments and
/// indentation left out (`build.rs`).
const ADMIN_PAGE: &str = include_str!(concat!(env!("OUT_DIR"), "/admin_page.html"));
/// The page runs only its own inline code and talks only to this origin.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub(crate) fn admin_page() -> HttpResponse {
    let mut r = HttpResponse::new(200, HTML, ADMIN_PAGE.to_owned(), false);
    r.headers
        .push(("content-security-policy", PAGE_POLICY.to_owned()));
    r
}

/// The fraud report as JSON or CSV.
pub(crate) fn admin_report(report: &Report) -> HttpResponse {
    match report.query.format {
        Format::Json => HttpResponse::new(200, JSON, report.to_json(), false),
        Format::Csv => {
            let mut r = HttpResponse::new(200, "text/csv; charset=utf-8", report.to_csv(), false);
            r.headers.push((
                "content-disposition",
                "attachment; filename=\"clickgate-report.csv\"".to_owned(),
            ));
            r
        }
    }
}

/// One click's decision (see [`crate::report::explain_answer`]).
pub(crate) fn admin_explain(answer: String) -> HttpResponse {
    HttpResponse::new(200, JSON, answer, false)
}

/// A transaction id that is not one of ours (forged, mistyped, or from another secret).
pub(crate) fn admin_unknown_transaction(problem: &str) -> HttpResponse {
    let body = json!({"error": {"code": "unknown_transaction", "message": problem}});
    HttpResponse::new(404, JSON, body.to_string(), false)
}

/// What an admin change left in force for the network.
pub(crate) fn admin_response(
    action: &Action,
    block: Option<&FloodBlock>,
    at_ms: u64,
) -> HttpResponse {
    let (verb, by) = match action {
        Action::Block { by, .. } => ("block", by),
        Action::Unblock { by, .. } => ("unblock", by),
    };
    let body = json!({
        "network": action.network().as_str(),
        "action": verb,
        "by": by,
        "at": crate::time::rfc3339_ms(at_ms),
        "blocked": block.is_some(),
        "blocked_until": block.map(|b| crate::time::rfc3339_ms(b.until_ms)),
        "cause": block.map(|b| b.cause.as_str()),
    });
    HttpResponse::new(200, JSON, body.to_string(), false)
}

/// The config document in KV, as it is.
pub(crate) fn admin_config(text: &str) -> HttpResponse {
    HttpResponse::new(200, JSON, text.to_owned(), false)
}

/// `GET /admin/feeds`: the feeds' status, written by the config's feeds.
pub(crate) fn admin_feeds(body: String) -> HttpResponse {
    HttpResponse::new(200, JSON, body, false)
}

/// The blocklist, or what a change of it left.
pub(crate) fn admin_blocklist(body: String) -> HttpResponse {
    HttpResponse::new(200, JSON, body, false)
}

/// A blocklist change refused: the list is full, or the entry to remove is not on it.
pub(crate) fn admin_blocklist_refused(status: u16, code: &str, problem: &str) -> HttpResponse {
    let body = json!({"error": {"code": code, "message": problem}});
    HttpResponse::new(status, JSON, body.to_string(), false)
}

/// A document accepted through the admin API and written to KV.
pub(crate) fn admin_config_saved(config: &crate::config::Config) -> HttpResponse {
    let body = json!({
        "saved": true,
        "config": config.digest,
        "offers": config.offers.len(),
        "rules": config.rules.len(),
    });
    HttpResponse::new(200, JSON, body.to_string(), false)
}

/// A document refused: every problem with its path; KV is left as it was.
pub(crate) fn admin_config_invalid(errors: &[crate::config::ConfigError]) -> HttpResponse {
    let problems: Vec<_> = errors
        .iter()
        .map(|e| json!({"path": e.path, "problem": e.problem}))
        .collect();
    let body = json!({"error": {"code": "invalid_config",
        "message": format!("{} problem(s); the config in force is unchanged", errors.len()),
        "problems": problems}});
    HttpResponse::new(400, JSON, body.to_string(), false)
}

/// An admin request the Worker cannot serve now: a Durable Object or KV did not answer, or a
/// secret or the config it needs is missing (a 503 the operator may retry).
pub(crate) fn admin_unavailable(problem: &str) -> HttpResponse {
    let body = json!({"error": {"code": "unavailable", "message": problem}});
    HttpResponse::new(503, JSON, body.to_string(), false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::click::{ClickParams, ClientInfo, Id};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn outcome(decision: Decision) -> ClickOutcome {
        ClickOutcome {
            transaction_id: "AQID-_x".into(),
            decision,
            at_ms: 0,
            click: ClickParams {
                offer_id: Id::parse("1").unwrap(),
                aff_id: Id::parse("2").unwrap(),
                source_id: None,
                subs: Default::default(),
                device_id: None,
                link: Default::default(),
            },
            advertiser_id: None,
            client: ClientInfo::default(),
            preview: false,
            config_digest: String::new(),
            assessment: None,
            allowlisted: None,
            signature: None,
            flood_unavailable: false,
            flood_would_block: None,
            profile: None,
            relay: None,
            sub_id_param: crate::config::rules::SubIdParam::Sub(0),
        }
    }

    #[test]
    fn redirect_is_a_302_with_location_and_no_store() {
        let r = click_response(
            &outcome(Decision::Redirect {
                location: "https://x/?t=1".into(),
            }),
            None,
            false,
        );
        assert_eq!(r.status, 302);
        assert_eq!(r.header("location"), Some("https://x/?t=1"));
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }

    #[test]
    fn block_is_403_with_code_1021_in_json() {
        let r = click_response(
            &outcome(Decision::Block { reasons: vec![] }),
            Some("*/*"),
            false,
        );
        assert_eq!(r.status, 403);
        assert_eq!(r.header("content-type"), Some(JSON));
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(
            body,
            json!({"error": {"code": 1021, "message": "1021 : click fraud check", "reference": "AQID-_x"}})
        );
    }

    #[test]
    fn block_for_a_browser_is_an_html_page_with_the_code() {
        let accept = Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8");
        let r = click_response(&outcome(Decision::Block { reasons: vec![] }), accept, false);
        assert_eq!(r.status, 403);
        assert_eq!(r.header("content-type"), Some(HTML));
        let code = format!("<title>Error {BLOCK_CODE}</title>");
        assert!(r.body.contains(&code) && r.body.contains(&format!("<h1>Error {BLOCK_CODE}</h1>")));
        assert!(r.body.contains(&format!("<p>{BLOCK_MESSAGE}</p>")) && r.body.contains("AQID-_x"));
        // Byte for byte the page every release has sent.
        assert_eq!(
            r.body,
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
             <title>Error 1021</title></head>\
             <body style=\"font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem\">\
             <h1>Error 1021</h1><p>1021 : click fraud check</p>\
             <p>This link could not be followed. If you think this is wrong, contact the site that \
             showed you the link and quote this reference:</p>\
             <p><code style=\"word-break:break-all\">AQID-_x</code></p></body></html>"
        );
    }

    #[test]
    fn head_requests_get_headers_and_no_body() {
        let r = click_response(&outcome(Decision::Block { reasons: vec![] }), None, true);
        assert_eq!((r.status, r.body.as_str()), (403, ""));
    }

    #[test]
    fn request_errors_map_to_4xx_naming_the_parameter() {
        let r = error_response(
            &RequestError::MissingParam {
                name: "aff_id".into(),
            },
            false,
        );
        assert_eq!(r.status, 400);
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["error"]["parameter"], "aff_id");
        assert_eq!(body["error"]["code"], "missing_parameter");
        let cases = [
            (RequestError::NotFound, 404),
            (
                RequestError::MethodNotAllowed {
                    allow: crate::click::CLICK_METHODS,
                },
                405,
            ),
            (RequestError::UrlTooLong { len: 9000 }, 414),
            (
                RequestError::HeaderTooLarge {
                    name: "cookie".into(),
                },
                431,
            ),
            (
                RequestError::InvalidParam {
                    name: "sub1".into(),
                    problem: "x".into(),
                },
                400,
            ),
            (
                RequestError::UnknownOffer {
                    offer_id: Id::parse("9").unwrap(),
                },
                404,
            ),
            (
                RequestError::OfferPaused {
                    offer_id: Id::parse("9").unwrap(),
                },
                404,
            ),
        ];
        for (e, status) in cases {
            assert_eq!(error_response(&e, false).status, status, "{e:?}");
        }
        use crate::click::{CLICK_METHODS, POSTBACK_METHODS};
        for (methods, allow) in [
            (CLICK_METHODS, "GET, HEAD"),
            (POSTBACK_METHODS, "GET, POST"),
        ] {
            let e = RequestError::MethodNotAllowed { allow: methods };
            assert_eq!(error_response(&e, false).header("allow"), Some(allow));
        }
    }

    #[test]
    fn html_escaping() {
        assert_eq!(
            html_escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }

    #[test]
    fn the_admin_page_asks_for_the_token_and_reports_come_as_json_or_csv() {
        let login = admin_error_response(&AdminError::Login);
        assert_eq!(login.status, 401);
        assert!(login
            .header("www-authenticate")
            .unwrap()
            .starts_with("Basic "));
        assert!(login.body.contains("<title>clickgate"));
        assert!(login
            .header("content-security-policy")
            .unwrap()
            .contains("default-src 'none'"));
        // The page loads nothing from elsewhere (the SVG namespace is a name, not a fetch).
        let page = ADMIN_PAGE.replace("\"http://www.w3.org/2000/svg\"", "");
        for outside in ["http:", "https:", "src=", "@import", "url("] {
            assert!(!page.contains(outside), "the page refers to {outside}");
        }
        let refused = admin_error_response(&AdminError::Unauthorized);
        assert_eq!(refused.header("www-authenticate"), Some("Bearer"));
        assert_eq!(
            admin_error_response(&AdminError::MethodNotAllowed("GET, PUT")).header("allow"),
            Some("GET, PUT")
        );

        let mut query = crate::report::ReportQuery::parse("format=csv", 0).unwrap();
        let report = crate::report::aggregate(&query, Default::default(), vec![]);
        let csv = admin_report(&report);
        assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
        assert!(csv.body.starts_with("clicks,allowed,blocked"));
        query.format = Format::Json;
        let json = admin_report(&crate::report::aggregate(
            &query,
            Default::default(),
            vec![],
        ));
        assert_eq!(json.header("content-type"), Some(JSON));
        assert_eq!(admin_unknown_transaction("bad tag").status, 404);
    }
}
