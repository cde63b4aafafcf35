//! Runs the built Worker in workerd (through tests/e2e/support/serve.mjs) with its own temporary
//! KV, and talks to it over loopback with a real HTTP client.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const SECRET: &str = "e2e-secret-e2e-secret-e2e-secret-e2e-secret";

/// The Analytics Engine binding every test Worker has (see serve.mjs `--analytics`).
pub const ANALYTICS_BINDING: &str = "DECISIONS";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn need(path: &Path) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing: run `make test`, which builds it first",
        path.display()
    );
    path.to_path_buf()
}

pub fn cli() -> PathBuf {
    need(&root().join("target/release/clickgate"))
}

/// A command's standard output, once it has succeeded (else the test fails with what it said).
pub fn stdout_of(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The transaction id in a redirect's `tid` parameter.
pub fn tid_of(location: &str) -> &str {
    let start = location.find("tid=").expect("tid in location") + 4;
    let rest = &location[start..];
    &rest[..rest.find('&').unwrap_or(rest.len())]
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("clickgate-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.0.as_os_str().is_empty() {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct Worker {
    child: Child,
    // serve.mjs stops workerd and exits when its stdin closes: dropping this is the clean stop, and
    // it also happens when the test process dies, so no workerd outlives its test.
    stdin: Option<ChildStdin>,
    pub base: String,
    pub state: TempDir,
    log: Arc<Mutex<Vec<String>>>,
    agent: ureq::Agent,
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

impl Worker {
    /// Starts the Worker with an empty KV of its own. `vars` override wrangler.toml's.
    pub fn start(vars: &[(&str, &str)]) -> Worker {
        Worker::start_in(TempDir::new("e2e"), vars)
    }

    /// Stops the runtime and starts a new one on the same KV and Durable Object storage, as a
    /// deploy or a machine restart would.
    pub fn restart(mut self, vars: &[(&str, &str)]) -> Worker {
        let state = std::mem::replace(&mut self.state, TempDir(PathBuf::new()));
        drop(self);
        Worker::start_in(state, vars)
    }

    fn start_in(state: TempDir, vars: &[(&str, &str)]) -> Worker {
        need(&root().join("build/entry.mjs"));
        let mut cmd = Command::new("node");
        cmd.current_dir(root())
            .arg("tests/e2e/support/serve.mjs")
            .arg("--persist")
            .arg(&state.0)
            .args(["--port", "0", "--var", &format!("TOKEN_SECRET={SECRET}")])
            // An Analytics Engine dataset whose writes show as `analytics_point` events.
            .args(["--analytics", ANALYTICS_BINDING]);
        for (k, v) in vars {
            cmd.args(["--var", &format!("{k}={v}")]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node is needed to run workerd (make setup)");
        let stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let base = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(url) = line.strip_prefix("clickgate ") {
                        break url.trim_end_matches('/').to_owned();
                    }
                }
                other => panic!("serve.mjs ended before it was ready: {other:?}"),
            }
        };
        // Decision lines go to stdout (console.log), errors to stderr (console.error): keep both.
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let sink = Arc::clone(&log);
        let stderr = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            // A fresh connection per request: a server may close one after an error reply, and a
            // reused dead connection would fail the next test step for the wrong reason.
            .max_idle_connections(0)
            .max_idle_connections_per_host(0)
            .build()
            .into();
        Worker {
            child,
            stdin: Some(stdin),
            base,
            state,
            log,
            agent,
        }
    }

    pub fn push(&self, config: &Path) -> Output {
        Command::new(cli())
            .current_dir(root())
            .args(["config", "push"])
            .arg(config)
            .args(["--local", "--persist-to"])
            .arg(&self.state.0)
            .output()
            .unwrap()
    }

    /// Writes a document to KV without validation, as a hand edit in the dashboard would.
    pub fn put_raw(&self, text: &str) {
        let file = self.state.0.join("raw-config.json");
        std::fs::write(&file, text).unwrap();
        let out = Command::new(root().join("node_modules/.bin/wrangler"))
            .current_dir(root())
            .args([
                "kv",
                "key",
                "put",
                "config",
                "--binding",
                "CLICKGATE_CONFIG",
                "--local",
                "--path",
            ])
            .arg(&file)
            .arg("--persist-to")
            .arg(&self.state.0)
            .output()
            .unwrap();
        stdout_of(out);
    }

    /// One network's row of the report grouped by affiliate, asked with the admin `token`; `None`
    /// while the report has none.
    pub fn report_row(&self, token: &str, affiliate: &str) -> Option<serde_json::Value> {
        let auth = format!("Bearer {token}");
        let j = self
            .get(
                "/admin/report?group_by=affiliate",
                &[("authorization", &auth)],
            )
            .json();
        j["rows"]
            .as_array()?
            .iter()
            .find(|r| r["affiliate"] == affiliate)
            .cloned()
    }

    pub fn get(&self, path_and_query: &str, headers: &[(&str, &str)]) -> Reply {
        self.request("GET", path_and_query, headers)
    }

    pub fn request(&self, method: &str, path_and_query: &str, headers: &[(&str, &str)]) -> Reply {
        self.request_with_body(method, path_and_query, headers, "")
    }

    pub fn request_with_body(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let url = format!("{}{}", self.base, path_and_query);
        let mut builder = ureq::http::Request::builder().method(method).uri(&url);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let mut resp = self
            .agent
            .run(builder.body(body.to_owned()).unwrap())
            .unwrap_or_else(|e| {
                let shown: String = url.chars().take(200).collect();
                panic!("{method} {shown}: {e}")
            });
        let headers = resp
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        Reply {
            status: resp.status().as_u16(),
            headers,
            body,
        }
    }

    /// The log lines with this `event`, exactly as the Worker printed them.
    pub fn raw_lines(&self, event: &str) -> Vec<String> {
        let needle = format!("\"event\":\"{event}\"");
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with('{') && l.contains(&needle))
            .cloned()
            .collect()
    }

    /// Log lines the Worker printed that parse as JSON objects with this `event`.
    pub fn events(&self, event: &str) -> Vec<serde_json::Value> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["event"] == event)
            .collect()
    }

    /// The decision line of the click that got this reply: its transaction id is in the redirect's
    /// `tid` parameter, or the block's `reference` (the clicker is told nothing more).
    pub fn decision_for(&self, reply: &Reply) -> serde_json::Value {
        let tid = match reply.header("location") {
            Some(location) => tid_of(location).to_owned(),
            None => reply.json()["error"]["reference"]
                .as_str()
                .expect("a reference in the block")
                .to_owned(),
        };
        self.wait_for(Duration::from_secs(5), || {
            self.events("click")
                .into_iter()
                .find(|e| e["transaction_id"] == tid.as_str())
        })
        .unwrap_or_else(|| panic!("no decision line for {tid}"))
    }

    /// Polls `f` until it returns Some, for at most `limit`; the runtime refreshes config on its own time.
    pub fn wait_for<T>(&self, limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(v) = f() {
                return Some(v);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Killing node skips Miniflare's shutdown and would orphan workerd: only as a last resort.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens the report page at `url` in headless Chromium (Debian's `chromium`, or `$CHROMIUM`) and
/// works it as an operator would (`page.mjs`): screenshots at desktop and phone sizes saved in
/// `shots`, and `network` blocked through the page's confirmation. Returns what the page showed.
pub fn drive_report_page(url: &str, shots: &Path, network: &str) -> serde_json::Value {
    let out = Command::new("node")
        .arg(root().join("tests/e2e/support/page.mjs"))
        .args([url, &shots.display().to_string(), network])
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("node is needed for the report page test (make setup): {e}"));
    assert!(
        out.status.success(),
        "the report page in chromium (make setup installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("page.mjs prints one JSON object")
}
