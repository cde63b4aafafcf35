//! Requests the Worker refuses: malformed ones get a clear 4xx, never a 500; wrong methods a
//! 405; bodies without the token or past their limit are refused unread.

use std::time::Duration;

use crate::{started_with_demo, support::Worker};

#[test]
fn bad_requests_get_clear_4xx_errors_and_never_a_500() {
    let w = started_with_demo(&[]);
    let error = |path: &str, headers: &[(&str, &str)]| {
        let r = w.get(path, headers);
        assert!(
            !r.body.is_empty(),
            "{path}: {} with an empty body",
            r.status
        );
        (r.status, r.json())
    };
    let (s, b) = error("/c?aff_id=net-7", &[]);
    assert_eq!(
        (
            s,
            b["error"]["code"].as_str(),
            b["error"]["parameter"].as_str()
        ),
        (400, Some("missing_parameter"), Some("offer_id"))
    );
    let (s, b) = error("/c?offer_id=1001&aff_id=net%2F7", &[]);
    assert_eq!((s, b["error"]["parameter"].as_str()), (400, Some("aff_id")));
    let (s, b) = error("/c?offer_id=1001&aff_id=1&offer_id=1002", &[]);
    assert_eq!(
        (s, b["error"]["parameter"].as_str()),
        (400, Some("offer_id"))
    );
    let (s, b) = error("/c?offer_id=9999&aff_id=net-7", &[]);
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (404, Some("unknown_offer"))
    );
    let (s, _) = error("/nowhere", &[]);
    assert_eq!(s, 404);
    let r = w.request("POST", "/c?offer_id=1001&aff_id=net-7", &[]);
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, HEAD")));

    let long = format!("/c?offer_id=1001&aff_id=net-7&pad={}", "x".repeat(5000));
    assert_eq!(error(&long, &[]).0, 414);
    let big = "y".repeat(5000);
    let (s, b) = error(
        "/c?offer_id=1001&aff_id=net-7",
        &[("user-agent", big.as_str())],
    );
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (431, Some("header_too_large"))
    );

    // Odd inputs of every kind: each gets an answer below 500.
    let odd = [
        "/c?offer_id=%FF&aff_id=1",
        "/c/%FF/%FE",
        "/c?offer_id=1001&aff_id=1&sub1=%00%01",
        "/c?%%%%=&&&=",
        "/c?offer_id=1001&aff_id=1&sub1=".to_owned().leak(),
        "/c//",
        "/c/1001/net-7/extra",
        "/healthz?x=1",
    ];
    for path in odd {
        let r = w.get(path, &[("cf-connecting-ip", "not-an-ip")]);
        assert!(r.status < 500, "{path}: {} {}", r.status, r.body);
    }
}

#[test]
fn postback_405s_allow_get_and_post_and_click_405s_get_and_head() {
    let w = started_with_demo(&[]);
    for method in ["HEAD", "PUT", "DELETE"] {
        let r = w.request(method, "/postback?transaction_id=x", &[]);
        assert_eq!(
            (r.status, r.header("allow")),
            (405, Some("GET, POST")),
            "{method}"
        );
    }
    for path in ["/c?offer_id=1001&aff_id=net-7", "/healthz"] {
        let r = w.request("POST", path, &[]);
        assert_eq!(
            (r.status, r.header("allow")),
            (405, Some("GET, HEAD")),
            "{path}"
        );
    }
}

#[test]
fn a_method_the_sdk_does_not_name_is_refused_on_postback_not_run_as_get() {
    // The SDK reads any method it has no name for as GET, so PROPFIND judged the postback. The
    // HTTP client sends only the methods it knows, so these go over a plain socket.
    let w = started_with_demo(&[]);
    for method in ["PROPFIND", "MKCOL", "LOCK"] {
        let answer = raw_answer(
            &w,
            &format!("{method} /postback?transaction_id=x HTTP/1.1"),
            &[],
        );
        let head = answer.to_ascii_lowercase();
        assert!(
            head.starts_with("http/1.1 405 ") && head.contains("\r\nallow: get, post\r\n"),
            "{method}: {answer}"
        );
    }
}

/// Sends `head` (a request line and headers, without the blank line) and then `body` in pieces
/// over a plain socket, and returns the status of the answer, or `None` if none came in 10 s. For
/// what an HTTP client will not do: declare a body it does not send, or send one chunked.
fn raw_status(w: &Worker, head: &str, body: &[&[u8]]) -> Option<u16> {
    raw_answer(w, head, body)
        .strip_prefix("HTTP/1.1 ")?
        .get(..3)?
        .parse()
        .ok()
}

/// [`raw_status`]'s whole answer, as text (empty if none came in 10 s); also for a method the
/// HTTP client will not send.
fn raw_answer(w: &Worker, head: &str, body: &[&[u8]]) -> String {
    use std::io::{Read, Write};
    let address = w.base.trim_start_matches("http://");
    let mut socket = std::net::TcpStream::connect(address).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    socket
        .write_all(format!("{head}\r\nHost: {address}\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    for part in body {
        // The Worker may answer and close before the rest is sent; the answer is what counts.
        if socket.write_all(part).is_err() {
            break;
        }
    }
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn bodies_are_refused_unread_without_the_token_and_past_their_limit() {
    const TOKEN: &str = "bodies-admin-token-bodies-admin";
    let w = started_with_demo(&[("ADMIN_TOKEN", TOKEN)]);
    // 50 MB declared and never sent: a Worker that read the body before the token would wait for
    // it; this one answers 401 at once.
    let declared = "Content-Length: 52428800\r\nContent-Type: application/json";
    assert_eq!(
        raw_status(
            &w,
            &format!("POST /admin/x HTTP/1.1\r\n{declared}"),
            &[b"{"]
        ),
        Some(401)
    );
    // With the token, the declared length alone gets 413, for the admin API and postbacks.
    let auth = format!("Authorization: Bearer {TOKEN}");
    assert_eq!(
        raw_status(
            &w,
            &format!("PUT /admin/config HTTP/1.1\r\n{auth}\r\n{declared}"),
            &[b"{"]
        ),
        Some(413)
    );
    assert_eq!(
        raw_status(
            &w,
            "POST /postback HTTP/1.1\r\nContent-Length: 9000\r\nContent-Type: application/x-www-form-urlencoded",
            &[b"transaction_id=x"]
        ),
        Some(413)
    );
    // A chunked body declares no length: it is cut off once what arrived passes the limit.
    let chunk = format!("2000\r\n{}\r\n", "a".repeat(0x2000));
    let chunks: Vec<&[u8]> = std::iter::repeat_n(chunk.as_bytes(), 4).collect();
    assert_eq!(
        raw_status(
            &w,
            "POST /postback HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Type: application/x-www-form-urlencoded",
            &chunks
        ),
        Some(413)
    );
    // One chunk of 5 MiB + 1 byte, one past the admin limit.
    let big = format!("500001\r\n{}\r\n", "a".repeat(0x50_0001));
    let chunks: Vec<&[u8]> = vec![big.as_bytes()];
    assert_eq!(
        raw_status(
            &w,
            &format!("PUT /admin/config HTTP/1.1\r\n{auth}\r\nTransfer-Encoding: chunked"),
            &chunks
        ),
        Some(413)
    );
    // Bodies within the limits are read as before.
    let r = w.request_with_body(
        "POST",
        "/postback",
        &[("content-type", "application/x-www-form-urlencoded")],
        "transaction_id=not-one-of-ours",
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "unknown_transaction");
    let r = w.request_with_body(
        "POST",
        "/admin/networks/net-7/unblock",
        &[("authorization", &format!("Bearer {TOKEN}"))],
        r#"{"by": "alice"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
}
