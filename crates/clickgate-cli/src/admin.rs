//! `block`, `unblock`, `blocklist`, `report`, `explain` and `feeds status`: calls to the Worker's admin API, authorised with
//! the `CLICKGATE_ADMIN_TOKEN` the Worker holds as its `ADMIN_TOKEN` secret.

use std::time::Duration;

use clickgate_core::config::feeds::{feeds_of, FeedStates};

use crate::args::{
    AdminBlockArgs, BlocklistEntryArgs, BlocklistListArgs, FeedsStatusArgs, Format, RejectArgs,
    ReportArgs,
};
use crate::Failure;

/// How long a connection may take to open, and a whole call to finish: the Worker answers an admin
/// call in well under a second, so waiting longer only hides a dead address.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest answer read: a report grouped by hour and affiliate over weeks stays far below it.
const MAX_ANSWER_BYTES: u64 = 256 << 20;

/// `network block|unblock`: imposes or lifts the network's block through the admin API.
pub fn network_admin(verb: &str, a: &AdminBlockArgs) -> Result<(), Failure> {
    // An id with `/`, `?` or `#` would name another route: refused here, as the Worker would.
    let network = clickgate_core::click::Id::parse(&a.network)
        .map_err(|e| Failure::Usage(format!("network `{}` {e}", a.network)))?;
    let body = serde_json::json!({ "by": a.by }).to_string();
    let path = format!("/admin/networks/{network}/{verb}");
    println!("{}", admin_call(&a.url, &path, Some(&body))?);
    Ok(())
}

/// `blocklist add|remove`: one entry through the admin API; prints what the Worker stored.
pub fn blocklist_change(verb: &str, a: &BlocklistEntryArgs) -> Result<(), Failure> {
    let path = match verb {
        "add" => "/admin/blocklist",
        _ => "/admin/blocklist/remove",
    };
    println!("{}", admin_call(&a.url, path, Some(&blocklist_body(a)))?);
    Ok(())
}

fn blocklist_body(a: &BlocklistEntryArgs) -> String {
    let mut body = serde_json::json!({ "aff_id": a.aff_id, "by": a.by });
    if let Some(sub) = &a.sub_id {
        body["sub_id"] = sub.as_str().into();
    }
    if let Some(note) = &a.note {
        body["note"] = note.as_str().into();
    }
    body.to_string()
}

/// `blocklist list`: every entry, as a table (default) or as the Worker answers it.
pub fn blocklist_list(a: &BlocklistListArgs) -> Result<(), Failure> {
    let text = admin_call(&a.url, "/admin/blocklist", None)?;
    if a.json {
        println!("{text}");
        return Ok(());
    }
    let list: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Failure::Io(format!("the Worker's blocklist is not JSON: {e}")))?;
    print!("{}", blocklist_table(&list));
    Ok(())
}

/// One line per entry: the affiliate, its sub ID (`*`: all), who listed it, when, and why.
fn blocklist_table(list: &serde_json::Value) -> String {
    let entries = list["entries"].as_array().map_or(&[][..], Vec::as_slice);
    if entries.is_empty() {
        return "the blocklist is empty\n".to_owned();
    }
    let mut out = String::new();
    for e in entries {
        let at = e["at"]
            .as_u64()
            .map(clickgate_core::time::rfc3339_ms)
            .unwrap_or_default();
        out.push_str(&format!(
            "{}\t{}\t{}\t{at}\t{}\n",
            e["aff_id"].as_str().unwrap_or(""),
            e["sub_id"].as_str().unwrap_or("*"),
            e["by"].as_str().unwrap_or(""),
            e["note"].as_str().unwrap_or(""),
        ));
    }
    out
}

/// `report`: the fraud report as a table (default), JSON or CSV.
pub fn report(a: &ReportArgs) -> Result<(), Failure> {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (value, name) in [(&a.from, "from"), (&a.to, "to"), (&a.group_by, "group_by")] {
        if let Some(v) = value {
            query.append_pair(name, v);
        }
    }
    query.append_pair(
        "format",
        if a.format == Format::Csv {
            "csv"
        } else {
            "json"
        },
    );
    let answer = admin_call(&a.url, &format!("/admin/report?{}", query.finish()), None)?;
    match a.format {
        Format::Table => {
            let report: serde_json::Value = serde_json::from_str(&answer)
                .map_err(|e| Failure::Io(format!("the Worker's report is not JSON: {e}")))?;
            print!("{}", report_table(&report));
        }
        // Exactly as the Worker sent it: CSV lines end in CRLF.
        Format::Csv => print!("{answer}"),
        Format::Json => println!("{answer}"),
    }
    Ok(())
}

/// `explain`: one click's whole decision, by its transaction id.
pub fn explain(transaction_id: &str, base: &str) -> Result<(), Failure> {
    let answer = admin_call(base, &format!("/admin/explain/{transaction_id}"), None)?;
    let pretty = serde_json::from_str::<serde_json::Value>(&answer)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or(answer);
    println!("{pretty}");
    Ok(())
}

/// `reject`: reports a transaction id as rejected, with the click's advertiser's postback secret
/// (not the admin token: the advertiser's side is who rejects), and prints the rejection kept.
pub fn reject(a: &RejectArgs) -> Result<(), Failure> {
    let secret = std::env::var("CLICKGATE_POSTBACK_SECRET").map_err(|_| {
        Failure::Usage("set CLICKGATE_POSTBACK_SECRET to the advertiser's postback_secret".into())
    })?;
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("transaction_id", &a.transaction_id)
        .append_pair("reason", &a.reason)
        .finish();
    let url = format!("{}/rejection", a.url.trim_end_matches('/'));
    let fault = |e: ureq::Error| Failure::Io(format!("POST {url}: {e}"));
    let mut answer = agent()
        .post(&url)
        .header(clickgate_core::conversion::SECRET_HEADER, &secret)
        .content_type("application/x-www-form-urlencoded")
        .send(&body)
        .map_err(fault)?;
    let status = answer.status();
    let text = answer
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .lossy_utf8(true)
        .read_to_string()
        .map_err(fault)?;
    if status != 200 {
        return Err(Failure::Io(format!(
            "POST {url}: the Worker answered {}: {}",
            status.as_u16(),
            text.trim()
        )));
    }
    println!("{text}");
    Ok(())
}

/// How the command line calls the Worker: bounded waits, no redirects (a secret goes only where
/// it was sent), every status read rather than raised.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_global(Some(CALL_TIMEOUT))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!("clickgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// `feeds status`: each feed of the config in force, its last good fetch and its last error.
pub fn feeds_status(a: &FeedsStatusArgs) -> Result<(), Failure> {
    // The feeds the document in KV names, with the state the Worker keeps for them: the Worker
    // answers both as stored, and the status is made here.
    let document = admin_call(&a.url, "/admin/config", None)?;
    let feeds = match document.trim() {
        "null" => Vec::new(),
        text => feeds_of(text).map_err(|e| Failure::Io(e.to_string()))?,
    };
    let stored = admin_call(&a.url, "/admin/feeds", None)?;
    let states = FeedStates::read(Some(&stored)).map_err(|e| Failure::Io(e.detail))?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let answer = states.status_json(&feeds, now_ms);
    if a.json {
        println!("{answer}");
        return Ok(());
    }
    let status: serde_json::Value = serde_json::from_str(&answer)
        .map_err(|e| Failure::Io(format!("the feed status is not JSON: {e}")))?;
    print!("{}", feeds_table(&status));
    Ok(())
}

/// One block per feed: what it fills from where, then its last good fetch and last error.
fn feeds_table(status: &serde_json::Value) -> String {
    let feeds = status["feeds"].as_array().map_or(&[][..], Vec::as_slice);
    if feeds.is_empty() {
        return "the config in KV names no feeds\n".to_owned();
    }
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("?").to_owned();
    let mut out = String::new();
    for feed in feeds {
        out.push_str(&format!(
            "lists.{} <- {} ({}, every {} min, max_shrink {}){}\n",
            text(&feed["list"]),
            text(&feed["url"]),
            text(&feed["format"]),
            feed["every_minutes"],
            feed["max_shrink"],
            if feed["due"] == true { ", due" } else { "" },
        ));
        let good = &feed["last_good"];
        out.push_str(&match good.is_object() {
            true => format!(
                "  last good:  {}  {} entries  hash {}\n",
                text(&good["at"]),
                good["entries"],
                text(&good["hash"])
            ),
            false => "  last good:  never (the document's own list is in force)\n".to_owned(),
        });
        let error = &feed["last_error"];
        if error.is_object() {
            out.push_str(&format!(
                "  last error: {}  {}\n",
                text(&error["at"]),
                text(&error["problem"])
            ));
        }
    }
    out
}

/// Calls the Worker's admin API, a POST of the JSON `body` if there is one, else a GET, and returns
/// the answer of a 200. Anything else is an error naming the call and what came back; redirects
/// are not followed, so the token goes only where it was sent.
fn admin_call(base: &str, path: &str, body: Option<&str>) -> Result<String, Failure> {
    let token = admin_token(std::env::var("CLICKGATE_ADMIN_TOKEN").ok())?;
    call(base, path, body, &token)
}

fn admin_token(from_env: Option<String>) -> Result<String, Failure> {
    from_env.ok_or_else(|| {
        Failure::Usage("set CLICKGATE_ADMIN_TOKEN to the Worker's ADMIN_TOKEN secret".into())
    })
}

fn call(base: &str, path: &str, body: Option<&str>, token: &str) -> Result<String, Failure> {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let agent = agent();
    let bearer = format!("Bearer {token}");
    let method = if body.is_some() { "POST" } else { "GET" };
    let fault = |e: ureq::Error| Failure::Io(format!("{method} {url}: {e}"));
    let mut answer = match body {
        Some(body) => agent
            .post(&url)
            .header("authorization", &bearer)
            .content_type("application/json")
            .send(body),
        None => agent.get(&url).header("authorization", &bearer).call(),
    }
    .map_err(fault)?;
    let status = answer.status();
    let text = answer
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .lossy_utf8(true)
        .read_to_string()
        .map_err(fault)?;
    if status == 200 {
        Ok(text)
    } else {
        Err(Failure::Io(format!(
            "{method} {url}: the Worker answered {}: {}",
            status.as_u16(),
            text.trim()
        )))
    }
}

/// The report as aligned columns, the total last.
fn report_table(report: &serde_json::Value) -> String {
    use serde_json::Value;
    let groups: Vec<&str> = report["group_by"]
        .as_array()
        .map(|g| g.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let pct = |v: &Value| {
        v.as_f64()
            .map_or("-".to_owned(), |r| format!("{:.1}%", r * 100.0))
    };
    let top = |v: &Value| {
        v.as_object()
            .and_then(|m| m.iter().max_by_key(|(_, n)| n.as_u64()))
            .map_or("-".to_owned(), |(code, n)| format!("{code} ({n})"))
    };
    let line = |row: &Value, names: Vec<String>| {
        let mut cells = names;
        cells.extend([
            row["clicks"].to_string(),
            row["blocked"].to_string(),
            pct(&row["block_rate"]),
            row["would_block"].to_string(),
            row["conversions"].to_string(),
            row["invalid"].to_string(),
            pct(&row["cr"]),
            top(&row["reasons"]),
        ]);
        cells
    };
    let mut table: Vec<Vec<String>> = Vec::new();
    let mut header: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
    header.extend(
        [
            "clicks",
            "blocked",
            "block rate",
            "would block",
            "conversions",
            "invalid",
            "CR",
            "top reason",
        ]
        .map(str::to_owned),
    );
    table.push(header);
    for row in report["rows"].as_array().into_iter().flatten() {
        let names = groups
            .iter()
            .map(|g| {
                row[*g]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .unwrap_or("-")
                    .to_owned()
            })
            .collect();
        table.push(line(row, names));
    }
    let mut total_names = vec![String::new(); groups.len()];
    if let Some(first) = total_names.first_mut() {
        *first = "total".into();
    }
    table.push(line(&report["total"], total_names));
    let widths: Vec<usize> = (0..table[0].len())
        .map(|i| {
            table
                .iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = format!(
        "{} to {}, {} networks\n",
        report["from"].as_str().unwrap_or("?"),
        report["to"].as_str().unwrap_or("?"),
        report["networks"]
    );
    if let Some(missing) = report["missing_networks"]
        .as_array()
        .filter(|m| !m.is_empty())
    {
        let names: Vec<&str> = missing.iter().filter_map(|m| m.as_str()).collect();
        out.push_str(&format!(
            "not answering, not counted: {}\n",
            names.join(", ")
        ));
    }
    for row in &table {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i < groups.len() || i == row.len() - 1 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    /// Answers one HTTP request on loopback with `status` and `body`; returns the base URL and the
    /// request as it arrived (head and body).
    fn one_answer(status: &str, body: &'static str) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let status = status.to_owned();
        let served = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                request.push_str(&line);
                if line == "\r\n" || line.is_empty() {
                    break;
                }
            }
            let mut sent = vec![0; length];
            reader.read_exact(&mut sent).unwrap();
            request.push_str(&String::from_utf8(sent).unwrap());
            let mut stream = stream;
            write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            request
        });
        (base, served)
    }

    #[test]
    fn a_call_carries_the_token_and_returns_the_answer_of_a_200() {
        let (base, served) = one_answer("200 OK", r#"{"blocked":true}"#);
        let answer = call(
            &format!("{base}/"),
            "/admin/networks/net-7/block",
            Some(r#"{"by":"a"}"#),
            "t0ken",
        );
        assert_eq!(answer.unwrap(), r#"{"blocked":true}"#);
        let request = served.join().unwrap().to_ascii_lowercase();
        assert!(
            request.starts_with("post /admin/networks/net-7/block http/1.1\r\n"),
            "{request}"
        );
        assert!(
            request.contains("\r\nauthorization: bearer t0ken\r\n"),
            "{request}"
        );
        assert!(
            request.contains("\r\ncontent-type: application/json\r\n"),
            "{request}"
        );
        assert!(request.ends_with(r#"{"by":"a"}"#), "{request}");
    }

    #[test]
    fn an_answer_other_than_200_is_an_error_naming_the_call_and_the_status() {
        let (base, served) = one_answer("401 Unauthorized", "{\"error\":\"unauthorized\"}\n");
        let r = call(&base, "/admin/report?format=json", None, "wrong");
        served.join().unwrap();
        let Err(Failure::Io(m)) = r else {
            panic!("{r:?}")
        };
        assert_eq!(
            m,
            format!(
                "GET {base}/admin/report?format=json: the Worker answered 401: {{\"error\":\"unauthorized\"}}"
            )
        );
    }

    #[test]
    fn a_redirect_is_reported_not_followed() {
        let (base, served) = one_answer("302 Found\r\nlocation: http://127.0.0.1:9/elsewhere", "");
        let r = call(&base, "/admin/explain/t", None, "t0ken");
        served.join().unwrap();
        assert!(
            matches!(&r, Err(Failure::Io(m)) if m.ends_with("the Worker answered 302: ")),
            "{r:?}"
        );
    }

    #[test]
    fn no_worker_at_the_address_is_an_error_naming_the_url() {
        // A port just released: nothing listens there.
        let base = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", l.local_addr().unwrap())
        };
        let r = call(&base, "/admin/explain/t", None, "t0ken");
        assert!(
            matches!(&r, Err(Failure::Io(m)) if m.starts_with(&format!("GET {base}/admin/explain/t: "))),
            "{r:?}"
        );
    }

    #[test]
    fn a_network_id_that_would_change_the_route_is_refused_before_any_call() {
        let args = AdminBlockArgs {
            network: "net-7/unblock?x=".into(),
            // Nothing may be asked: a call here would fail with an I/O error, not a usage one.
            url: "http://127.0.0.1:9".into(),
            by: "ops".into(),
        };
        assert!(matches!(
            network_admin("block", &args),
            Err(Failure::Usage(m)) if m.starts_with("network `net-7/unblock?x=`")
        ));
    }

    #[test]
    fn networks_that_did_not_answer_are_named_plainly_under_the_table() {
        let report = serde_json::json!({"from": "a", "to": "b", "networks": 2,
            "group_by": [], "rows": [], "missing_networks": ["net-1", "net-2"]});
        let table = report_table(&report);
        assert!(
            table.contains("not answering, not counted: net-1, net-2\n"),
            "{table}"
        );
    }

    #[test]
    fn without_the_token_the_message_names_the_variable() {
        assert!(matches!(
            admin_token(None),
            Err(Failure::Usage(m)) if m.contains("CLICKGATE_ADMIN_TOKEN")
        ));
        assert!(matches!(admin_token(Some("x".into())), Ok(t) if t == "x"));
    }

    #[test]
    fn an_https_address_is_called_over_tls() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("https://{}", listener.local_addr().unwrap());
        let first_bytes = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut head = [0; 3];
            stream.read_exact(&mut head).unwrap();
            head
        });
        let r = call(&base, "/admin/explain/t", None, "t0ken");
        // A TLS record of type handshake (22), protocol 3.x: the client hello, not plain HTTP.
        assert_eq!(first_bytes.join().unwrap()[..2], [22, 3]);
        assert!(matches!(r, Err(Failure::Io(_))), "{r:?}");
    }

    #[test]
    fn a_blocklist_entry_is_sent_with_only_the_fields_given() {
        let args = |sub: Option<&str>, note: Option<&str>| BlocklistEntryArgs {
            url: "u".into(),
            aff_id: "net-7".into(),
            sub_id: sub.map(str::to_owned),
            by: "alice".into(),
            note: note.map(str::to_owned),
        };
        let body: serde_json::Value =
            serde_json::from_str(&blocklist_body(&args(None, None))).unwrap();
        assert_eq!(body, serde_json::json!({"aff_id": "net-7", "by": "alice"}));
        let body: serde_json::Value =
            serde_json::from_str(&blocklist_body(&args(Some("s1"), Some("why")))).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"aff_id": "net-7", "sub_id": "s1", "by": "alice", "note": "why"})
        );
    }

    #[test]
    fn the_blocklist_table_shows_who_listed_each_entry_and_when() {
        let list = serde_json::json!({"entries": [
            {"aff_id": "net-7", "by": "alice", "at": 1_780_272_000_000_u64},
            {"aff_id": "net-8", "sub_id": "s1", "by": "bob", "at": 1_780_272_000_000_u64,
             "note": "chargebacks"},
        ]});
        let table = blocklist_table(&list);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines,
            [
                "net-7\t*\talice\t2026-06-01T00:00:00.000Z\t",
                "net-8\ts1\tbob\t2026-06-01T00:00:00.000Z\tchargebacks",
            ]
        );
        assert_eq!(
            blocklist_table(&serde_json::json!({"entries": []})),
            "the blocklist is empty\n"
        );
    }

    #[test]
    fn the_feed_table_shows_the_last_good_fetch_and_the_last_error_of_each_feed() {
        let status = serde_json::json!({"feeds": [
            {"list": "datacenter_ips", "url": "https://l.example/a.txt", "format": "ips",
             "every_minutes": 60, "max_shrink": 0.5, "due": false,
             "last_good": {"at": "2026-06-01T00:00:00.000Z", "entries": 3, "hash": "abc", "kv": "iplist/abc"},
             "last_error": {"at": "2026-06-01T01:00:00.000Z", "problem": "the list is empty"}},
            {"list": "vpn_ips", "url": "https://l.example/b.txt", "format": "ips",
             "every_minutes": 5, "max_shrink": 0.25, "due": true, "last_good": null, "last_error": null}]});
        assert_eq!(
            feeds_table(&status),
            "lists.datacenter_ips <- https://l.example/a.txt (ips, every 60 min, max_shrink 0.5)\n\
             \x20 last good:  2026-06-01T00:00:00.000Z  3 entries  hash abc\n\
             \x20 last error: 2026-06-01T01:00:00.000Z  the list is empty\n\
             lists.vpn_ips <- https://l.example/b.txt (ips, every 5 min, max_shrink 0.25), due\n\
             \x20 last good:  never (the document's own list is in force)\n"
        );
        assert_eq!(
            feeds_table(&serde_json::json!({"feeds": []})),
            "the config in KV names no feeds\n"
        );
    }
}
