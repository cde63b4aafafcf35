//! Feeds refreshed at the edge: the Worker's scheduled handler, fired the way the Cron Trigger
//! fires it, fetches a list from a local HTTP server playing the upstream, and the list it accepts
//! judges the next clicks; an empty, a broken and a shrunken list are refused, a fault is logged
//! for each, and the last good list stays in force.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{cli, root, stdout_of, Worker};
use crate::{demo_with, now_ms, push_ok, BROWSER};

const TOKEN: &str = "feeds-admin-token-feeds-admin-token";
/// The interval the test's feed is fetched at, the shortest a feed may ask for.
const EVERY_MS: u64 = 5 * 60_000;

/// The upstream: answers every request with the body it is given, and counts the requests.
struct Upstream {
    port: u16,
    body: Arc<Mutex<String>>,
    served: Arc<Mutex<usize>>,
}

impl Upstream {
    fn start() -> Upstream {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("a loopback port");
        let port = listener.local_addr().expect("its address").port();
        let body = Arc::new(Mutex::new(String::new()));
        let served = Arc::new(Mutex::new(0));
        let (body_, served_) = (Arc::clone(&body), Arc::clone(&served));
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let mut reader = BufReader::new(&stream);
                // The request line and headers, to their end, so the client sees a whole exchange.
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let body = body_.lock().unwrap().clone();
                let _ = (&stream).write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
                *served_.lock().unwrap() += 1;
            }
        });
        Upstream { port, body, served }
    }

    fn serve(&self, body: &str) {
        *self.body.lock().unwrap() = body.to_owned();
    }

    fn served(&self) -> usize {
        *self.served.lock().unwrap()
    }
}

/// Fires the scheduled handler for the run at `time_ms`, as the Cron Trigger would, and waits
/// until the upstream has been asked once more.
fn run_cron(w: &Worker, upstream: &Upstream, time_ms: u64) {
    let before = upstream.served();
    let reply = w.get(
        &format!("/cdn-cgi/handler/scheduled?cron=*/5+*+*+*+*&time={time_ms}"),
        &[],
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let asked = w.wait_for(Duration::from_secs(10), || {
        (upstream.served() > before).then_some(())
    });
    assert!(asked.is_some(), "the scheduled run did not fetch the feed");
}

/// The fed list's state as the Worker keeps it (`GET /admin/feeds`).
fn feed_state(w: &Worker) -> serde_json::Value {
    let reply = w.get(
        "/admin/feeds",
        &[("authorization", &format!("Bearer {TOKEN}"))],
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["datacenter_ips"].clone()
}

#[test]
fn a_feed_switches_the_list_in_force_and_a_broken_upstream_never_empties_it() {
    let w = Worker::start(&[("CONFIG_REFRESH_SECONDS", "1"), ("ADMIN_TOKEN", TOKEN)]);
    let upstream = Upstream::start();
    let fixture = root().join("tests/e2e/fixtures/feed-hosting.txt");
    let listed = std::fs::read_to_string(&fixture).unwrap();
    upstream.serve(&listed);

    // The demo config, its datacenter rule on offer 1001 and its datacenter list fed from the
    // upstream.
    let rules = serde_json::json!([{
        "id": "hosting", "created_at": "2026-11-01T00:00:00Z", "scope": {"offers": ["1001"]},
        "strategy": {"filters": [{"type": "datacenter_vpn"}]}, "decline": "medium_and_higher"
    }]);
    let path = demo_with(&w, "fed.json", rules, serde_json::json!({}));
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let url = format!("http://127.0.0.1:{}/hosting.txt", upstream.port);
    doc["feeds"] = serde_json::json!([{
        "url": url, "format": "ips", "every": "5m", "list": "datacenter_ips"
    }]);
    std::fs::write(&path, doc.to_string()).unwrap();
    push_ok(&w, &path);

    let click = |ip: &str| {
        w.get(
            "/c?offer_id=1001&aff_id=net-7",
            &[("cf-connecting-ip", ip), ("user-agent", BROWSER)],
        )
    };
    // Before the first fetch the document's own (empty) list is in force.
    assert_eq!(click("10.3.4.5").status, 302);
    assert_eq!(feed_state(&w), serde_json::Value::Null);

    let t0 = now_ms();
    run_cron(&w, &upstream, t0);
    let good = w
        .wait_for(Duration::from_secs(10), || {
            let s = feed_state(&w);
            s["good"].is_object().then(|| s["good"].clone())
        })
        .expect("the feed's list was never accepted");
    assert_eq!(good["at"], t0);

    // The list in KV is the list the CLI compiles from the same text, under its content's key.
    let compiled = w.state.0.join("feed-hosting.bin");
    let said = Command::new(cli())
        .args(["list", "compile", "--format", "ips"])
        .arg(&fixture)
        .arg(&compiled)
        .output()
        .unwrap();
    let key = stdout_of(said).trim().to_owned();
    assert_eq!(good["kv"], key.as_str());
    let entries = clickgate_core::ip::IpSet::from_bytes(std::fs::read(&compiled).unwrap())
        .unwrap()
        .len();
    assert_eq!(good["entries"], entries);
    let in_kv = Command::new(root().join("node_modules/.bin/wrangler"))
        .current_dir(root())
        .args([
            "kv",
            "key",
            "get",
            &key,
            "--binding",
            "CLICKGATE_CONFIG",
            "--local",
        ])
        .arg("--persist-to")
        .arg(&w.state.0)
        .output()
        .unwrap();
    assert!(in_kv.status.success(), "{in_kv:?}");
    assert_eq!(in_kv.stdout, std::fs::read(&compiled).unwrap());
    let switched = w.events("feed");
    assert!(
        switched
            .iter()
            .any(|e| e["status"] == "switched" && e["kv"] == key.as_str()),
        "{switched:?}"
    );

    // The config in force uses it: a click from a listed range is judged by it.
    let blocked = w.wait_for(Duration::from_secs(15), || {
        (click("10.3.4.5").status == 403).then_some(())
    });
    assert!(blocked.is_some(), "the fed list never took effect");
    let line = w
        .wait_for(Duration::from_secs(5), || {
            w.events("click")
                .into_iter()
                .find(|e| e["verdict"] == "block" && e["ip"] == "10.3.4.5")
        })
        .expect("a block line for the listed click");
    assert_eq!(line["rule_id"], "hosting");
    assert_eq!(line["reasons"][0]["code"], "datacenter_ip");
    assert_eq!(line["reasons"][0]["matched"], "10.3.0.0/16");
    assert_eq!(click("10.200.0.1").status, 302);

    // A broken upstream: each answer is refused, a fault is logged, the last good list stays.
    let one_of_ten = "10.1.0.0/16\n";
    let refusals = [
        ("", "the list is empty"),
        (
            "<html><body>Service Unavailable</body></html>\n",
            "the list does not read as `ips`: line 1: ",
        ),
        (one_of_ten, "the list shrank from "),
    ];
    for (i, (body, why)) in refusals.iter().enumerate() {
        upstream.serve(body);
        let faults_before = feed_faults(&w).len();
        run_cron(&w, &upstream, t0 + (i as u64 + 1) * EVERY_MS);
        let fault = w
            .wait_for(Duration::from_secs(10), || {
                feed_faults(&w).get(faults_before).cloned()
            })
            .unwrap_or_else(|| panic!("no fault line for {why:?}"));
        let problem = fault["problem"].as_str().unwrap();
        assert!(problem.contains(why), "{problem}");
        assert!(
            problem.contains(&format!("its last good list ({key}) stays in force")),
            "{problem}"
        );
        let state = feed_state(&w);
        assert_eq!(state["good"], good, "{why}");
        let last_error = state["error"]["problem"].as_str().unwrap();
        assert!(last_error.starts_with(why), "{last_error}");
        assert_eq!(click("10.3.4.5").status, 403, "after {why:?}");
    }

    // The operator's view of the same state, with the feeds the document names.
    let out = Command::new(cli())
        .args(["feeds", "status", "--url", &w.base])
        .env("CLICKGATE_ADMIN_TOKEN", TOKEN)
        .output()
        .unwrap();
    let table = stdout_of(out);
    assert!(
        table.contains(&format!(
            "lists.datacenter_ips <- {url} (ips, every 5 min, max_shrink 0.5)"
        )),
        "{table}"
    );
    assert!(table.contains(&format!("{entries} entries")), "{table}");
    assert!(
        table.contains(&format!("hash {}", &key["iplist/".len()..])),
        "{table}"
    );
    assert!(table.contains("  the list shrank from "), "{table}");
}

fn feed_faults(w: &Worker) -> Vec<serde_json::Value> {
    w.events("fault")
        .into_iter()
        .filter(|e| e["what"] == "feed")
        .collect()
}
