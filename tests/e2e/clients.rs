//! The `spoof` filter against real clients, the ground truth for what it catches: HTTP tools a
//! script would use (curl, Python's requests and httpx, Node's fetch, Go's net/http), each
//! sending a current Chrome's, Safari's and Firefox's User-Agent with its own other headers;
//! curl_cffi impersonating each browser whole; and headless Chromium dressed as a desktop Chrome.
//! Each follows tracking links served by the Worker under a rule that declines from `medium`, as
//! the runtime serves them locally (no protocol or TLS facts, so the filter judges headers alone).
//! And real browsers, Chromium and Firefox on the desktop and in mobile emulation, which must get
//! no points: the headers each sent are the fixtures the core's tests judge again.
//! The tools are installed by scripts/setup-clients.sh (`make test-e2e` runs it first).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{
    demo_with, push_ok,
    support::{root, TempDir, Worker},
};

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/143.0.0.0 Safari/537.36";
const SAFARI: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.1 Safari/605.1.15";
const FIREFOX: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:146.0) Gecko/20100101 Firefox/146.0";

/// The browsers a script claims to be, by the name curl_cffi impersonates each under.
const CLAIMS: [(&str, &str); 3] = [("chrome", CHROME), ("safari", SAFARI), ("firefox", FIREFOX)];

/// Clicks per tool and claim: a tool sends the same headers every time, and the share shows it.
const TRIES: usize = 3;

/// Where scripts/setup-clients.sh puts the Python venv and the Go client (`CLIENTS` in
/// scripts/versions.sh, which names it).
fn clients_dir() -> PathBuf {
    let tools = std::env::var_os("CLICKGATE_TOOLS").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/clickgate/tools"),
        PathBuf::from,
    );
    tools.join("clients-1")
}

/// An HTTP tool: how it sends one GET with a claimed browser, and whether the set-up may lack it.
struct Tool {
    name: &'static str,
    optional: bool,
    command: fn(url: &str, claim: &str, ua: &str) -> Command,
}

fn python(args: [&str; 3]) -> Command {
    let mut c = Command::new(clients_dir().join("bin/python"));
    c.arg(root().join("tests/e2e/clients/get.py")).args(args);
    c
}

const TOOLS: [Tool; 6] = [
    Tool {
        name: "curl",
        optional: false,
        command: |url, _, ua| {
            let mut c = Command::new("curl");
            c.args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-A",
                ua,
                url,
            ]);
            c
        },
    },
    Tool {
        name: "python requests",
        optional: false,
        command: |url, _, ua| python(["requests", url, ua]),
    },
    Tool {
        name: "python httpx",
        optional: false,
        command: |url, _, ua| python(["httpx", url, ua]),
    },
    Tool {
        name: "node fetch",
        optional: false,
        command: |url, _, ua| {
            let mut c = Command::new("node");
            c.arg(root().join("tests/e2e/clients/get.mjs"))
                .args([url, ua]);
            c
        },
    },
    Tool {
        name: "go net/http",
        optional: true,
        command: |url, _, ua| {
            let mut c = Command::new(clients_dir().join("bin/go-get"));
            c.args([url, ua]);
            c
        },
    },
    Tool {
        name: "curl_cffi",
        optional: true,
        command: |url, claim, _| python(["curl_cffi", url, claim]),
    },
];

/// What the Worker decided for the clicks of one tool and claim.
struct Row {
    tool: String,
    claim: String,
    caught: usize,
    sent: usize,
    grade: String,
    signs: String,
    /// The User-Agent the Worker saw (curl_cffi sends its impersonated browser's own).
    user_agent: String,
}

impl Row {
    fn share(&self) -> f64 {
        100.0 * self.caught as f64 / self.sent as f64
    }

    /// Declined by the `medium_and_higher` rule, every time, at `likely` or `certain`.
    fn all_caught(&self) -> bool {
        self.caught == self.sent && matches!(self.grade.as_str(), "likely" | "certain")
    }
}

/// The Worker with one rule: the `spoof` filter, declining from `decline`.
fn worker_declining(decline: &str) -> Worker {
    let w = Worker::start(&[("CONFIG_REFRESH_SECONDS", "1")]);
    let rules = serde_json::json!([{
        "id": "spoofed", "created_at": "2026-11-01T00:00:00Z", "scope": {"offers": ["1001"]},
        "strategy": {"filters": [{"type": "spoof"}]}, "decline": decline
    }]);
    push_ok(
        &w,
        &demo_with(&w, "spoof.json", rules, serde_json::json!({})),
    );
    // The rule is live once a request no browser sends is declined.
    let live = w.wait_for(Duration::from_secs(15), || {
        let ua = [("user-agent", CHROME), ("accept", "*/*")];
        (w.get("/c?offer_id=1001&aff_id=net-7&sub1=probe", &ua)
            .status
            == 403)
            .then_some(())
    });
    assert!(live.is_some(), "the spoof rule never took effect");
    w
}

/// A tracking link whose `sub1` names the click, so its decision line can be found.
fn link(w: &Worker, tag: &str) -> String {
    format!("{}/c?offer_id=1001&aff_id=net-7&sub1={tag}", w.base)
}

/// The decision line of the click whose link carried `tag`.
fn line_for(w: &Worker, tag: &str) -> serde_json::Value {
    w.wait_for(Duration::from_secs(10), || {
        w.events("click").into_iter().find(|e| e["sub1"] == tag)
    })
    .unwrap_or_else(|| panic!("no decision line for {tag}"))
}

/// The spoof filter's grade and signs in a decision line: `none` when it found nothing.
fn spoof_of(line: &serde_json::Value) -> (String, String) {
    let reasons = line["reasons"].as_array().cloned().unwrap_or_default();
    match reasons.iter().find(|r| r["code"] == "spoof") {
        Some(r) => {
            let matched = r["matched"].as_str().unwrap_or("");
            let (grade, signs) = matched.split_once(": ").unwrap_or((matched, ""));
            (grade.to_owned(), signs.to_owned())
        }
        None => ("none".to_owned(), String::new()),
    }
}

/// Every click of a row, folded: the grade of the first (they are checked to agree).
fn row_of(w: &Worker, tool: &str, claim: &str, tags: &[String]) -> Row {
    let lines: Vec<_> = tags.iter().map(|t| line_for(w, t)).collect();
    let graded: Vec<_> = lines.iter().map(spoof_of).collect();
    assert!(
        graded.windows(2).all(|g| g[0] == g[1]),
        "{tool} as {claim} was judged differently from one click to the next: {graded:?}"
    );
    Row {
        tool: tool.to_owned(),
        claim: claim.to_owned(),
        caught: lines.iter().filter(|l| l["verdict"] == "block").count(),
        sent: lines.len(),
        grade: graded[0].0.clone(),
        signs: graded[0].1.clone(),
        user_agent: lines[0]["user_agent"].as_str().unwrap_or("").to_owned(),
    }
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<22} {:<8} {:>7} {:>6}  {:<8} signs",
        "client", "claims", "caught", "share", "grade"
    );
    for r in rows {
        println!(
            "{:<22} {:<8} {:>7} {:>5.0}%  {:<8} {}",
            r.tool,
            r.claim,
            format!("{}/{}", r.caught, r.sent),
            r.share(),
            r.grade,
            r.signs
        );
    }
    for r in rows.iter().filter(|r| r.tool == "curl_cffi") {
        println!("curl_cffi as {}: {}", r.claim, r.user_agent);
    }
}

/// The installed Chromium's major version, which its own client hints carry.
fn chromium() -> (String, u32) {
    let browser = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".to_owned());
    let version = Command::new(&browser)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("{browser} is needed (scripts/setup-browser.sh): {e}"));
    let version = String::from_utf8_lossy(&version.stdout);
    let major = version
        .split_whitespace()
        .find_map(|w| w.split('.').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no version in {version:?}"));
    (browser, major)
}

/// Headless Chromium following `url` with `ua` for its User-Agent.
fn chromium_follows(browser: &str, url: &str, ua: &str) {
    let profile = TempDir::new("chromium");
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .args(["--virtual-time-budget=3000", "--dump-dom"])
        .arg(format!("--user-agent={ua}"))
        .arg(format!("--user-data-dir={}", profile.0.display()))
        .arg(url)
        .output()
        .unwrap_or_else(|e| panic!("{browser}: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Firefox, where the set-up could install it.
fn firefox() -> Option<String> {
    ["firefox-esr", "firefox"]
        .into_iter()
        .map(str::to_owned)
        .find(|f| {
            Command::new(f)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

/// Headless Firefox opening `url` in a fresh profile (with `prefs` in its user.js); it is stopped
/// once the Worker has logged the click (a screenshot run waits on the landing page, which this
/// machine cannot reach).
fn firefox_follows(
    w: &Worker,
    firefox: &str,
    url: &str,
    tag: &str,
    prefs: &str,
) -> serde_json::Value {
    let profile = TempDir::new("firefox");
    std::fs::write(profile.0.join("user.js"), prefs).unwrap();
    let mut child = Command::new(firefox)
        .args(["--headless", "--no-remote", "--profile"])
        .arg(&profile.0)
        .arg("--screenshot")
        .arg(profile.0.join("shot.png"))
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{firefox}: {e}"));
    let line = w.wait_for(Duration::from_secs(60), || {
        w.events("click").into_iter().find(|e| e["sub1"] == tag)
    });
    let _ = child.kill();
    let _ = child.wait();
    line.unwrap_or_else(|| panic!("{firefox} sent no click within a minute"))
}

/// What a browser sent, as the Worker logged it: one entry of tests/e2e/fixtures/browsers.json.
fn fixture_of(browser: &str, line: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "browser": browser,
        "user_agent": line["user_agent"],
        "sent": line["sent"],
    })
}

#[test]
fn scripts_claiming_a_browser_are_caught_and_impersonators_and_browsers_are_not() {
    let w = worker_declining("medium_and_higher");
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    for tool in &TOOLS {
        let mut missing = None;
        for (claim, ua) in CLAIMS {
            let mut tags = Vec::new();
            for n in 0..TRIES {
                let tag = format!("{}-{claim}-{n}", tool.name.replace([' ', '/'], "-"));
                let out = (tool.command)(&link(&w, &tag), claim, ua)
                    .output()
                    .map_err(|e| e.to_string())
                    .and_then(|out| match out.status.code() {
                        Some(0) => Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned()),
                        // get.py: the library is not in the venv.
                        Some(3) => Err(String::from_utf8_lossy(&out.stdout).trim().to_owned()),
                        _ => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
                    });
                match out {
                    Ok(status) => {
                        assert!(
                            status == "302" || status == "403",
                            "{} as {claim}: status {status}",
                            tool.name
                        );
                        tags.push(tag);
                    }
                    Err(why) if tool.optional => {
                        missing = Some(why);
                        break;
                    }
                    Err(why) => panic!(
                        "{} could not run (scripts/setup-clients.sh installs it): {why}",
                        tool.name
                    ),
                }
            }
            if missing.is_some() {
                break;
            }
            rows.push(row_of(&w, tool.name, claim, &tags));
        }
        if let Some(why) = missing {
            skipped.push(format!(
                "skipped {} (optional in scripts/setup-clients.sh): {}",
                tool.name,
                why.lines().next().unwrap_or("")
            ));
        }
    }

    // Headless Chromium with a desktop Chrome's User-Agent of its own version: as itself (Linux)
    // and dressed as Windows, as automation dresses it.
    let (browser, major) = chromium();
    for (system, claim) in [
        ("X11; Linux x86_64", "linux"),
        ("Windows NT 10.0; Win64; x64", "windows"),
    ] {
        let ua = format!(
            "Mozilla/5.0 ({system}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{major}.0.0.0 Safari/537.36"
        );
        let mut tags = Vec::new();
        for n in 0..TRIES {
            let tag = format!("chromium-{claim}-{n}");
            chromium_follows(&browser, &link(&w, &tag), &ua);
            tags.push(tag);
        }
        rows.push(row_of(
            &w,
            &format!("headless chromium {major}"),
            claim,
            &tags,
        ));
    }

    print_table(&rows);
    for s in &skipped {
        println!("{s}");
    }
    let scripts = [
        "curl",
        "python requests",
        "python httpx",
        "node fetch",
        "go net/http",
    ];
    for r in rows.iter().filter(|r| scripts.contains(&r.tool.as_str())) {
        assert!(
            r.all_caught(),
            "{} claiming {} got through: {}",
            r.tool,
            r.claim,
            r.grade
        );
    }
    for r in rows
        .iter()
        .filter(|r| r.tool.starts_with("headless chromium"))
    {
        assert_eq!(
            r.caught, 0,
            "chromium as {} was declined: {}",
            r.claim, r.signs
        );
    }
    let required = scripts.len() - 1;
    assert!(
        rows.iter()
            .filter(|r| scripts.contains(&r.tool.as_str()))
            .count()
            >= required * CLAIMS.len(),
        "a required tool is missing from the table"
    );
}

/// Real browsers following a tracking link, on the desktop and in mobile emulation, under a rule
/// that declines from `low`: each is redirected and gets no spoof points. What each sent is the
/// fixture the core's table test judges (`CLICKGATE_WRITE_FIXTURES=1` writes it anew).
#[test]
fn real_browsers_on_the_desktop_and_in_mobile_emulation_get_no_spoof_points() {
    let w = worker_declining("low_and_higher");
    let (browser, major) = chromium();
    let mut seen = Vec::new();

    let desktop = format!("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{major}.0.0.0 Safari/537.36");
    chromium_follows(&browser, &link(&w, "chromium-desktop"), &desktop);
    seen.push((
        format!("chromium {major}, headless"),
        line_for(&w, "chromium-desktop"),
    ));

    // The reduced User-Agent Chrome for Android sends, with its client hints set to match, as
    // DevTools' device mode does.
    let android = format!("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{major}.0.0.0 Mobile Safari/537.36");
    let out = Command::new("node")
        .arg("--experimental-websocket")
        .arg(root().join("tests/e2e/clients/emulate.mjs"))
        .args([
            &browser,
            &link(&w, "chromium-mobile"),
            &android,
            &major.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    seen.push((
        format!("chromium {major}, headless, emulating a Pixel 8"),
        line_for(&w, "chromium-mobile"),
    ));

    match firefox() {
        Some(firefox) => {
            let tag = "firefox-desktop";
            let line = firefox_follows(&w, &firefox, &link(&w, tag), tag, "");
            let version = line["user_agent"]
                .as_str()
                .unwrap_or("")
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_owned();
            seen.push((format!("firefox {version}, headless"), line));
            // Firefox for Android's User-Agent: Firefox sends no client hints, so the User-Agent
            // is all that tells a phone.
            let mobile = format!(
                "Mozilla/5.0 (Android 14; Mobile; rv:{version}) Gecko/{version} Firefox/{version}"
            );
            let tag = "firefox-mobile";
            let prefs = format!("user_pref(\"general.useragent.override\", \"{mobile}\");\n");
            let line = firefox_follows(&w, &firefox, &link(&w, tag), tag, &prefs);
            seen.push((
                format!("firefox {version}, headless, as Firefox for Android"),
                line,
            ));
        }
        None => println!("skipped firefox (optional in scripts/setup-clients.sh): not installed"),
    }

    for (name, line) in &seen {
        println!("{name}: {} {}", line["user_agent"], line["sent"]);
        assert_eq!(line["verdict"], "redirect", "{name}: {line}");
        assert_eq!(line["reasons"], serde_json::json!([]), "{name}: {line}");
        assert_eq!(line["sent"]["sec-fetch-mode"], "navigate", "{name}: {line}");
    }
    let fixtures: Vec<_> = seen
        .iter()
        .map(|(name, line)| fixture_of(name, line))
        .collect();
    let path = root().join("tests/e2e/fixtures/browsers.json");
    if std::env::var_os("CLICKGATE_WRITE_FIXTURES").is_some() {
        let text = serde_json::to_string_pretty(&fixtures).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
        println!("wrote {}", path.display());
    }
}
