//! clickgate in front of a tracker: each tracker's own link (tests/e2e/fixtures/trackers.json, with
//! the public documentation it follows) is read by its preset, the offer is not listed, and the
//! click is sent on to the tracker, played here by a local HTTP server, with every parameter as
//! the publisher wrote it. A blocked click never reaches the tracker.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{root, tid_of, Worker};
use crate::{push_ok, BROWSER};

/// A tracker's click endpoint: answers 200 to anything and keeps each request's target.
struct Tracker {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Tracker {
    fn start() -> Tracker {
        Tracker::start_on(0)
    }

    /// A tracker on `port` (0: any free one).
    fn start_on(port: u16) -> Tracker {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("a loopback port");
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
                // Read the headers to their end so the client sees a whole exchange.
                let mut header = String::new();
                while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                    header.clear();
                }
                let target = line.split(' ').nth(1).unwrap_or("").to_owned();
                sink.lock().unwrap().push(target);
                let _ = (&stream).write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                );
            }
        });
        Tracker { port, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// Follows a redirect to this tracker as the browser would, and returns what it received.
    fn follow(&self, location: &str) -> String {
        let prefix = format!("http://127.0.0.1:{}", self.port);
        assert!(
            location.starts_with(&prefix),
            "{location} does not go to the tracker"
        );
        let before = self.seen().len();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let reply = agent.get(location).call().expect("the tracker answers");
        assert_eq!(reply.status().as_u16(), 200);
        let seen = self.seen();
        assert_eq!(seen.len(), before + 1);
        seen[before].clone()
    }
}

/// A loopback port nothing listens on (yet): a tracker that is down.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.local_addr().expect("its address").port()
}

fn fixtures() -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(root().join("tests/e2e/fixtures/trackers.json"))
        .expect("tests/e2e/fixtures/trackers.json");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("the fixtures are JSON");
    doc["trackers"].as_array().expect("a trackers list").clone()
}

/// A document with one tracker's profile, sending unlisted offers to the tracker at the path
/// the fixture names, with the link's whole query and clickgate's transaction id; and clickgate's
/// own format for a listed offer.
fn config(w: &Worker, tracker: &Tracker, t: &serde_json::Value) -> std::path::PathBuf {
    let destination = format!(
        "http://127.0.0.1:{}{}?{{query}}&cg_tid={{transaction_id}}",
        tracker.port,
        t["destination"].as_str().unwrap()
    );
    let mut profile = serde_json::json!({
        "id": t["preset"], "preset": t["preset"], "destination": destination,
    });
    if let Some(a) = t.get("default_affiliate") {
        profile["default_affiliate"] = a.clone();
    }
    let doc = serde_json::json!({
        "version": 1,
        "links": [profile, {"id": "own", "preset": "clickgate"}],
        "offers": [{"id": "1001", "landing_url": "https://shop.example/landing?tid={transaction_id}"}],
        "lists": {"blocked_ips": ["203.0.113.7"]}
    });
    let path = w.state.0.join("trackers.json");
    std::fs::write(&path, doc.to_string()).unwrap();
    path
}

/// What a publisher and the ad platforms add to a tracking link: click ids, a parameter no
/// profile knows, one given twice, and a value in another script.
const EXTRA: &str = "gclid=Cj0KCQiA%2Babc_-1&fbclid=IwAR1x&zz_custom=1&k=1&k=2&name=J%C3%BCrgen";

#[test]
fn each_trackers_link_reaches_the_tracker_with_every_parameter_intact() {
    let tracker = Tracker::start();
    for t in fixtures() {
        // A Worker per tracker: several trackers serve links on `/`, each on its own domain.
        let w = Worker::start(&[]);
        push_ok(&w, &config(&w, &tracker, &t));
        let preset = t["preset"].as_str().unwrap();
        let link = format!("{}&{EXTRA}", t["link"].as_str().unwrap());
        let r = w.get(&link, &[("user-agent", BROWSER)]);
        assert_eq!(r.status, 302, "{preset}: {link}: {}", r.body);
        let location = r.header("location").unwrap().to_owned();
        let tid = tid_of(&location).to_owned();
        let received = tracker.follow(&location);
        let (path, query) = link.split_once('?').unwrap();
        let path = match preset {
            "voluum" => path,
            _ => t["destination"].as_str().unwrap(),
        };
        assert_eq!(
            received,
            format!("{path}?{query}&cg_tid={tid}"),
            "{preset}: every parameter, in order, as the publisher wrote it"
        );
        let line = w
            .wait_for(Duration::from_secs(5), || {
                w.events("click")
                    .into_iter()
                    .find(|e| e["transaction_id"] == tid.as_str())
            })
            .unwrap_or_else(|| panic!("{preset}: no decision line"));
        assert_eq!(line["offer_id"], t["offer"], "{preset}");
        assert_eq!(line["aff_id"], t["affiliate"], "{preset}");
        assert_eq!(line["verdict"], "redirect", "{preset}");
    }
}

#[test]
fn a_blocked_click_never_reaches_the_tracker() {
    let tracker = Tracker::start();
    let w = Worker::start(&[]);
    push_ok(&w, &config(&w, &tracker, &fixtures()[0]));
    let r = w.get(
        &format!("/?oid=12&affid=7&{EXTRA}"),
        &[("user-agent", BROWSER), ("cf-connecting-ip", "203.0.113.7")],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.header("location").is_none());
    assert!(r.body.contains("1021"), "{}", r.body);
    assert!(tracker.seen().is_empty(), "{:?}", tracker.seen());
}

#[test]
fn a_listed_offer_gets_the_other_parameters_after_its_own() {
    let tracker = Tracker::start();
    let w = Worker::start(&[]);
    push_ok(&w, &config(&w, &tracker, &fixtures()[0]));
    let r = w.get(
        &format!("/c?offer_id=1001&aff_id=7&sub1=x&{EXTRA}"),
        &[("user-agent", BROWSER)],
    );
    assert_eq!(r.status, 302, "{}", r.body);
    let location = r.header("location").unwrap();
    let tid = tid_of(location);
    assert_eq!(
        location,
        format!("https://shop.example/landing?tid={tid}&{EXTRA}")
    );
    // An offer the clickgate profile does not list has no destination: still refused.
    let unknown = w.get("/c?offer_id=5001&aff_id=7", &[("user-agent", BROWSER)]);
    assert_eq!(unknown.status, 404);
}

/// A document whose unlisted offers go to an Everflow tracker, and whose advertiser's judged
/// conversions are passed on to the tracker's postback endpoint on `port`.
fn forwarding(w: &Worker, port: u16) -> std::path::PathBuf {
    let pb = format!("http://127.0.0.1:{port}/pb");
    let doc = serde_json::json!({
        "version": 1,
        "advertisers": [{"id": "tracker-adv", "forward": {
            "approved": format!("{pb}?transaction_id={{param:click_id}}&event={{event}}"),
            "rejected": format!("{pb}?transaction_id={{param:click_id}}&status=rejected&reason={{reason}}")
        }}],
        "links": [{"id": "everflow", "preset": "everflow", "advertiser_id": "tracker-adv",
                   "destination": format!("http://127.0.0.1:{port}/?{{query}}&cg_tid={{transaction_id}}")}],
        "lists": {"blocked_ips": ["203.0.113.7"]}
    });
    let path = w.state.0.join("forwarding.json");
    std::fs::write(&path, doc.to_string()).unwrap();
    path
}

/// The targets the tracker received on its postback path, waiting up to `limit` for `want`.
fn postbacks(tracker: &Tracker, want: usize, limit: Duration) -> Vec<String> {
    let until = std::time::Instant::now() + limit;
    loop {
        let got: Vec<String> = tracker
            .seen()
            .into_iter()
            .filter(|t| t.starts_with("/pb?"))
            .collect();
        if got.len() >= want || std::time::Instant::now() >= until {
            return got;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_judged_conversion_reaches_the_trackers_postback_once() {
    let tracker = Tracker::start();
    let w = Worker::start(&[]);
    push_ok(&w, &forwarding(&w, tracker.port));
    let click = w.get("/?oid=5001&affid=7&sub1=s", &[("user-agent", BROWSER)]);
    assert_eq!(click.status, 302, "{}", click.body);
    let tid = tid_of(click.header("location").unwrap()).to_owned();
    let postback = format!("/postback?transaction_id={tid}&event=sale&click_id=EF-123");
    let r = w.get(&postback, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["status"], "approved");
    assert_eq!(
        postbacks(&tracker, 1, Duration::from_secs(10)),
        vec!["/pb?transaction_id=EF-123&event=sale".to_owned()]
    );
    // The same event again is a duplicate: judged invalid, and not passed on a second time.
    let again = w.get(&postback, &[]);
    assert_eq!(again.json()["status"], "invalid");
    assert_eq!(postbacks(&tracker, 2, Duration::from_secs(3)).len(), 1);

    // A conversion on a blocked click goes to the rejected URL with its reason.
    let blocked = w.get(
        "/?oid=5001&affid=7",
        &[("user-agent", BROWSER), ("cf-connecting-ip", "203.0.113.7")],
    );
    assert_eq!(blocked.status, 403);
    let blocked_line = w
        .wait_for(Duration::from_secs(5), || {
            w.events("click")
                .into_iter()
                .find(|e| e["verdict"] == "block")
        })
        .expect("the blocked click's line");
    let blocked_tid = blocked_line["transaction_id"].as_str().unwrap().to_owned();
    let r = w.get(
        &format!("/postback?transaction_id={blocked_tid}&click_id=EF-9"),
        &[],
    );
    assert_eq!(r.json()["status"], "invalid");
    assert_eq!(
        postbacks(&tracker, 2, Duration::from_secs(10))[1],
        "/pb?transaction_id=EF-9&status=rejected&reason=flagged_click"
    );
}

#[test]
fn a_tracker_that_is_down_gets_the_postback_later_once() {
    let port = free_port();
    let w = Worker::start(&[]);
    push_ok(&w, &forwarding(&w, port));
    let click = w.get("/?oid=5001&affid=7", &[("user-agent", BROWSER)]);
    let tid = tid_of(click.header("location").unwrap()).to_owned();
    let r = w.get(
        &format!("/postback?transaction_id={tid}&click_id=EF-7"),
        &[],
    );
    assert_eq!(r.json()["status"], "approved");
    // The first try finds nobody; the tracker comes up before the next one.
    std::thread::sleep(Duration::from_millis(700));
    let tracker = Tracker::start_on(port);
    assert_eq!(
        postbacks(&tracker, 1, Duration::from_secs(15)),
        vec!["/pb?transaction_id=EF-7&event=conversion".to_owned()]
    );
    let line = w
        .wait_for(Duration::from_secs(10), || {
            w.events("forward")
                .into_iter()
                .find(|e| e["transaction_id"] == tid.as_str())
        })
        .expect("the forward's log line");
    assert_eq!(line["result"], "sent");
    assert!(line["attempts"].as_u64().unwrap() >= 2, "{line}");
    // Nothing arrives after the one that was taken.
    assert_eq!(postbacks(&tracker, 2, Duration::from_secs(9)).len(), 1);
}

#[test]
fn a_tracker_asks_a_clicks_verdict_before_it_pays() {
    let w = Worker::start(&[]);
    let doc = serde_json::json!({
        "version": 1,
        "advertisers": [{"id": "tracker-adv", "postback_secret": "tracker-secret-0123456789"}],
        "links": [{"id": "everflow", "preset": "everflow", "advertiser_id": "tracker-adv",
                   "destination": "https://tracker.example/?{query}&cg_tid={transaction_id}"}],
        "lists": {"blocked_ips": ["203.0.113.7"]}
    });
    let path = w.state.0.join("verdict.json");
    std::fs::write(&path, doc.to_string()).unwrap();
    push_ok(&w, &path);
    let click = w.get("/?oid=5001&affid=7", &[("user-agent", BROWSER)]);
    assert_eq!(click.status, 302, "{}", click.body);
    let tid = tid_of(click.header("location").unwrap()).to_owned();
    let secret = [("x-postback-secret", "tracker-secret-0123456789")];
    let r = w.get(&format!("/verdict?transaction_id={tid}"), &secret);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["verdict"], "redirect");
    assert_eq!(r.json()["pay"], true);
    let unsigned = w.get(&format!("/verdict?transaction_id={tid}"), &[]);
    assert_eq!(unsigned.status, 401, "{}", unsigned.body);
    let posted = w.request("POST", &format!("/verdict?transaction_id={tid}"), &secret);
    assert_eq!(posted.status, 405);
}
