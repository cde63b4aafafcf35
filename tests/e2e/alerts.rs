//! Alerts on the operator's webhook, played here by a local receiver: a network's flood trip is
//! sent once with the network named, a second trip within the window is not, and a webhook that
//! is down costs the clicks nothing but a fault line.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::Worker;
use crate::{demo, push_ok};

const ADMIN_TOKEN: &str = "e2e-admin-token-e2e-admin-token";

/// A webhook: answers 200 to anything and keeps each request's path and JSON body.
struct Receiver {
    port: u16,
    seen: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().expect("its address").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let mut reader = BufReader::new(&stream);
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut length = 0;
                let mut header = String::new();
                while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                    let lower = header.to_ascii_lowercase();
                    if let Some(n) = lower.strip_prefix("content-length:") {
                        length = n.trim().parse().unwrap_or(0);
                    }
                    header.clear();
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let target = line.split(' ').nth(1).unwrap_or("").to_owned();
                let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                sink.lock().unwrap().push((target, json));
                let _ = (&stream).write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                );
            }
        });
        Receiver { port, seen }
    }

    fn of_kind(&self, kind: &str) -> Vec<serde_json::Value> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter(|(_, b)| b["kind"] == kind)
            .map(|(path, b)| {
                assert_eq!(path, "/hook", "{b}");
                b.clone()
            })
            .collect()
    }
}

/// A loopback port nothing listens on: a webhook that is down.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.local_addr().expect("its address").port()
}

/// A Worker under the demo config with `net-flood` blocked past 5 clicks a minute, and alerts of
/// flood trips and lifts sent to the webhook on `port`.
fn flooding(port: u16) -> Worker {
    let w = Worker::start(&[
        ("CONFIG_REFRESH_SECONDS", "1"),
        ("COUNTS_FLUSH_MS", "200"),
        ("ADMIN_TOKEN", ADMIN_TOKEN),
    ]);
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(demo()).unwrap()).unwrap();
    doc["networks"] = serde_json::json!([{"id": "net-flood", "flood": {"per_minute": 5}}]);
    doc["alerts"] = serde_json::json!({
        "webhook": format!("http://127.0.0.1:{port}/hook"),
        "kinds": ["flood_tripped", "flood_lifted"],
        "window_seconds": 3600
    });
    let config = w.state.0.join("alerts.json");
    std::fs::write(&config, doc.to_string()).unwrap();
    push_ok(&w, &config);
    w
}

fn click(w: &Worker, network: &str) -> u16 {
    let path = format!("/c?offer_id=1001&aff_id={network}&sub1=a");
    w.get(&path, &[("cf-connecting-ip", "192.0.2.90")]).status
}

/// Clicks `net-flood` until it is blocked (the config taking effect first).
fn trip(w: &Worker) {
    w.wait_for(Duration::from_secs(20), || {
        (click(w, "net-flood") == 403).then_some(())
    })
    .expect("the flood never tripped");
}

fn operate(w: &Worker, action: &str) {
    let r = w.request_with_body(
        "POST",
        &format!("/admin/networks/net-flood/{action}"),
        &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
        r#"{"by": "alice@example.com"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn a_flood_trip_is_sent_once_naming_its_network_and_a_second_in_the_window_is_not() {
    let receiver = Receiver::start();
    let w = flooding(receiver.port);
    trip(&w);
    // The isolate hears of the trip with the object's answer, and sends it with its next request.
    let tripped = w
        .wait_for(Duration::from_secs(10), || {
            click(&w, "net-7");
            let got = receiver.of_kind("flood_tripped");
            (!got.is_empty()).then_some(got)
        })
        .expect("no flood_tripped alert arrived");
    assert_eq!(tripped.len(), 1, "{tripped:?}");
    let alert = &tripped[0];
    assert_eq!(alert["network"], "net-flood");
    assert!(alert["detail"]
        .as_str()
        .is_some_and(|d| d.starts_with("per_minute: ")));
    let text = alert["text"].as_str().unwrap_or("");
    assert!(
        text.starts_with("clickgate: network net-flood: flood block tripped"),
        "{text}"
    );
    assert_eq!(click(&w, "net-flood"), 403);

    // An operator lifts the block and imposes it again within the window: the lift is sent, the
    // second trip is held back and logged so. Both are decided by the one request after them.
    operate(&w, "unblock");
    operate(&w, "block");
    let lifted = w
        .wait_for(Duration::from_secs(10), || {
            click(&w, "net-7");
            let got = receiver.of_kind("flood_lifted");
            (!got.is_empty()).then_some(got)
        })
        .expect("no flood_lifted alert arrived");
    assert_eq!(lifted[0]["detail"], "lifted by alice@example.com");
    assert_eq!(click(&w, "net-flood"), 403, "the operator's block holds");
    let held = w
        .wait_for(Duration::from_secs(5), || {
            w.events("alert")
                .into_iter()
                .find(|l| l["result"] == "held")
        })
        .expect("the second trip is logged as held");
    assert_eq!(
        (&held["kind"], &held["subject"], &held["detail"]),
        (
            &"flood_tripped".into(),
            &"net-flood".into(),
            &"imposed by alice@example.com".into()
        )
    );
    assert_eq!(receiver.of_kind("flood_tripped").len(), 1);
    assert_eq!(receiver.of_kind("flood_lifted").len(), 1);
}

#[test]
fn a_webhook_that_is_down_costs_the_clicks_nothing_but_a_fault_line() {
    let w = flooding(free_port());
    trip(&w);
    // Every click is answered while the alert is tried and retried, and after it has failed.
    let fault = w
        .wait_for(Duration::from_secs(30), || {
            assert_eq!(click(&w, "net-7"), 302);
            assert_eq!(click(&w, "net-flood"), 403);
            w.events("fault")
                .into_iter()
                .find(|f| f["what"] == "alert_webhook")
        })
        .expect("no fault line for the webhook");
    let problem = fault["problem"].as_str().unwrap_or("");
    assert!(
        problem.starts_with("flood_tripped alert not delivered after 3 attempts: "),
        "{problem}"
    );
    assert_eq!(click(&w, "net-7"), 302);
}
