//! `clickgate`, the operator's command line.
//!
//! ```text
//! clickgate config validate FILE
//! clickgate config push FILE (--local | --remote) [--persist-to DIR] [--wrangler-config FILE]
//! clickgate replay --config FILE --clicks LOG [--against OLD_FILE] [--changes N]
//! clickgate list compile LIST_FILE OUT_FILE
//! clickgate sign --config FILE --network ID --url URL [--kid K] [--expires-in S] [--click-id ID | --click-ids FILE]
//! clickgate verify --config FILE URL
//! clickgate network (block | unblock) NETWORK --url BASE_URL --by WHO
//! ```
//!
//! `push` validates with the same compiler the Worker runs, then writes the document to the
//! `CLICKGATE_CONFIG` KV namespace through wrangler, so a document the edge would refuse never reaches it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clickgate_core::click::{route, split_url, Id, Route};
use clickgate_core::config::{list_key, Config, ConfigError, StoredLists};
use clickgate_core::ip::{parse_list, IpSet};
use clickgate_core::signing::{sign_link, verify as verify_signature, Check};
use clickgate_core::whatif::{csv_header, from_csv_line, from_log_line, Recorded, Replay};

const USAGE: &str = "usage:
  clickgate config validate FILE
  clickgate config push FILE (--local | --remote) [--persist-to DIR] [--wrangler-config FILE]
  clickgate replay --config FILE --clicks LOG [--against OLD_FILE] [--changes N]
  clickgate list compile LIST_FILE OUT_FILE
  clickgate sign --config FILE --network ID --url URL [--kid K] [--expires-in S] [--click-id ID | --click-ids FILE]
  clickgate verify --config FILE URL
  clickgate (block | unblock) NETWORK --url BASE_URL --by WHO      (also: clickgate network block ...)
  clickgate report --url BASE_URL [--from DATE] [--to DATE] [--group-by G,G] [--format table|json|csv]
  clickgate explain TRANSACTION_ID --url BASE_URL

sign prints the link signed under the network's policy in FILE (the newest live key unless --kid;
valid for --expires-in seconds, default an hour or the policy's max_age_seconds if shorter), with
--click-ids one link per click id in FILE (one per line); verify says whether a link passes and why not.

An IP list in the document may be a file, {\"file\": \"datacenters.txt\"} (one address or CIDR block
per line, # comments): push compiles it into its own KV key and the document refers to that key.
list compile writes that compiled form and prints its key, for other upload tooling.

replay runs recorded clicks (the Worker's decision log, or CSV with a header) through a config and
prints what it would have done; with --against, also the clicks an older config decides differently.
It also runs each network's flood detector with the config's thresholds (the log's earlier days
make the baseline) and prints when it would have tripped and how many clicks the block would stop.

block / unblock imposes or lifts a network's click-flood block until 00:00 UTC through the
Worker's admin API (BASE_URL is where the Worker answers, e.g. https://track.example.com).

report prints the fraud report: clicks, blocked, would-block, conversions and CR, grouped by any of
hour, day, advertiser, offer, affiliate; DATE is YYYY-MM-DD or YYYY-MM-DDTHH (UTC), default the last
24 hours. explain prints everything behind one click's verdict.

environment:
  CLICKGATE_ADMIN_TOKEN   the Worker's ADMIN_TOKEN secret, for block, unblock, report and explain
  WRANGLER   the wrangler command to run (default: node_modules/.bin/wrangler next to wrangler.toml)";

const KV_BINDING: &str = "CLICKGATE_CONFIG";
const KV_KEY: &str = "config";

/// Exit codes: 0 done, 1 the document is invalid, 2 the command line is wrong, 3 wrangler failed.
#[derive(Debug)]
enum Failure {
    Invalid,
    Usage(String),
    Io(String),
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Invalid) => ExitCode::from(1),
        Err(Failure::Usage(msg)) => {
            eprintln!("clickgate: {msg}\n\n{USAGE}");
            ExitCode::from(2)
        }
        Err(Failure::Io(msg)) => {
            eprintln!("clickgate: {msg}");
            ExitCode::from(3)
        }
    }
}

fn run(args: &[String]) -> Result<(), Failure> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["config", "validate", file] => validate(Path::new(file), Use::Check).map(|_| ()),
        ["config", "push", file, flags @ ..] => push(Path::new(file), flags),
        ["replay", flags @ ..] => replay(flags),
        ["list", "compile", list, out] => compile_list(Path::new(list), Path::new(out)),
        ["sign", flags @ ..] => sign(flags),
        ["network", verb @ ("block" | "unblock"), network, flags @ ..]
        | [verb @ ("block" | "unblock"), network, flags @ ..] => {
            network_admin(verb, network, flags)
        }
        ["report", flags @ ..] => report(flags),
        ["explain", transaction_id, flags @ ..] => explain(transaction_id, flags),
        ["verify", "--config", file, url] => verify(Path::new(file), url),
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            Ok(())
        }
        [] => Err(Failure::Usage("no command given".into())),
        _ => Err(Failure::Usage(format!(
            "unknown command `{}`",
            words.join(" ")
        ))),
    }
}

/// What the command does with a valid document, for the messages `validate` prints.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Use {
    Check,
    Push,
    /// Replay's report owns stdout, so the summary goes to stderr.
    Replay,
}

/// A valid document as it goes to KV: IP lists given as files are compiled and replaced by
/// references to their own keys, which `lists` holds.
struct Loaded {
    config: Config,
    text: String,
    lists: Vec<(String, Vec<u8>)>,
}

fn validate(file: &Path, purpose: Use) -> Result<Loaded, Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::Io(format!("cannot read {}: {e}", file.display())))?;
    let Resolved {
        text,
        lists,
        stored,
        errors: list_errors,
    } = resolve_list_files(file, text);
    let compiled = if list_errors.is_empty() {
        Config::compile_with_lists(&text, &stored)
    } else {
        Err(list_errors)
    };
    match compiled {
        Ok(config) => {
            let kept_apart: usize = stored.values().map(IpSet::len).sum();
            let summary = format!(
                "{}: valid (config {}; {} offers, {} rules, {} blocked IP ranges, {} lists in their own keys with {kept_apart} ranges)",
                file.display(),
                config.digest,
                config.offers.len(),
                config.rules.len(),
                config.blocked_ips.len(),
                lists.len(),
            );
            if purpose == Use::Replay {
                eprintln!("{summary}");
            } else {
                println!("{summary}");
            }
            Ok(Loaded {
                config,
                text,
                lists,
            })
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{}: {e}", file.display());
            }
            let n = errors.len();
            eprintln!(
                "{}: {n} problem{}{}",
                file.display(),
                if n == 1 { "" } else { "s" },
                if purpose == Use::Push {
                    "; nothing was pushed"
                } else {
                    ""
                }
            );
            Err(Failure::Invalid)
        }
    }
}

/// A document with its list files compiled.
struct Resolved {
    /// The document to push: list files replaced by references to their keys.
    text: String,
    /// The compiled lists by key, as they go to KV...
    lists: Vec<(String, Vec<u8>)>,
    /// ...and as the compiler reads them.
    stored: StoredLists,
    errors: Vec<ConfigError>,
}

/// Replaces every IP list given as `{"file": "name.txt"}` (relative to the document) with
/// `{"kv": "iplist/<hash>"}`, compiling the file, and reports every problem with its path. A
/// document without list files is returned unchanged, byte for byte.
fn resolve_list_files(file: &Path, text: String) -> Resolved {
    let unchanged = |text| Resolved {
        text,
        lists: Vec::new(),
        stored: StoredLists::new(),
        errors: Vec::new(),
    };
    let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(&text) else {
        return unchanged(text); // the compiler says what is wrong with it
    };
    let Some(lists) = doc.get_mut("lists").and_then(|l| l.as_object_mut()) else {
        return unchanged(text);
    };
    let dir = file.parent().unwrap_or(Path::new("."));
    let (mut compiled, mut stored, mut errors) = (Vec::new(), StoredLists::new(), Vec::new());
    for (name, value) in lists.iter_mut() {
        let Some(list_file) = value.get("file").and_then(|f| f.as_str()) else {
            continue;
        };
        let path = format!("lists.{name}.file");
        let problem = |p: String| ConfigError {
            path: path.clone(),
            problem: p,
        };
        let list_path = dir.join(list_file);
        let list_text = match std::fs::read_to_string(&list_path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(problem(format!("cannot read {}: {e}", list_path.display())));
                continue;
            }
        };
        match parse_list(&list_text) {
            Ok(set) => {
                let bytes = set.to_bytes();
                let key = list_key(&bytes);
                *value = serde_json::json!({ "kv": key });
                stored.insert(key.clone(), set);
                compiled.push((key, bytes));
            }
            Err(bad) => errors.extend(
                bad.into_iter()
                    .map(|e| problem(format!("{list_file}: {e}"))),
            ),
        }
    }
    if compiled.is_empty() && errors.is_empty() {
        return unchanged(text);
    }
    compiled.sort();
    compiled.dedup();
    Resolved {
        text: serde_json::to_string_pretty(&doc).unwrap_or(text),
        lists: compiled,
        stored,
        errors,
    }
}

#[derive(Debug)]
struct PushOptions {
    remote: bool,
    persist_to: Option<PathBuf>,
    wrangler_config: Option<PathBuf>,
}

fn parse_push_flags(flags: &[&str]) -> Result<PushOptions, Failure> {
    let mut target: Option<bool> = None;
    let mut persist_to = None;
    let mut wrangler_config = None;
    let mut rest = flags.iter();
    while let Some(flag) = rest.next() {
        let mut value = |name: &str| {
            rest.next()
                .map(PathBuf::from)
                .ok_or_else(|| Failure::Usage(format!("{name} needs a value")))
        };
        match *flag {
            "--local" | "--remote" => {
                let remote = *flag == "--remote";
                if target.is_some_and(|t| t != remote) {
                    return Err(Failure::Usage(
                        "give one of --local and --remote, not both".into(),
                    ));
                }
                target = Some(remote);
            }
            "--persist-to" => persist_to = Some(value("--persist-to")?),
            "--wrangler-config" => wrangler_config = Some(value("--wrangler-config")?),
            other => return Err(Failure::Usage(format!("unknown option `{other}`"))),
        }
    }
    let remote =
        target.ok_or_else(|| Failure::Usage("say where to push: --local or --remote".into()))?;
    if remote && persist_to.is_some() {
        return Err(Failure::Usage("--persist-to is for --local only".into()));
    }
    Ok(PushOptions {
        remote,
        persist_to,
        wrangler_config,
    })
}

fn push(file: &Path, flags: &[&str]) -> Result<(), Failure> {
    let opts = parse_push_flags(flags)?;
    let loaded = validate(file, Use::Push)?;
    let wrangler_toml = match opts.wrangler_config {
        Some(p) => p,
        None => find_upwards("wrangler.toml").ok_or_else(|| {
            Failure::Io("no wrangler.toml here or above; pass --wrangler-config".into())
        })?,
    };
    let project = wrangler_toml
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let wrangler = std::env::var("WRANGLER").unwrap_or_else(|_| {
        project
            .join("node_modules/.bin/wrangler")
            .to_string_lossy()
            .into_owned()
    });
    let wrangler_toml = std::fs::canonicalize(&wrangler_toml).unwrap_or(wrangler_toml);
    let put = |key: &str, bytes: &[u8]| -> Result<(), Failure> {
        // wrangler reads values from a file: a scratch file per key, removed after.
        let scratch = std::env::temp_dir().join(format!(
            "clickgate-push-{}-{}",
            std::process::id(),
            key.replace('/', "_")
        ));
        std::fs::write(&scratch, bytes)
            .map_err(|e| Failure::Io(format!("cannot write {}: {e}", scratch.display())))?;
        let mut cmd = Command::new(&wrangler);
        cmd.current_dir(&project)
            .args(["kv", "key", "put", key, "--binding", KV_BINDING, "--path"])
            .arg(&scratch)
            .arg("--config")
            .arg(&wrangler_toml)
            .arg(if opts.remote { "--remote" } else { "--local" });
        if let Some(dir) = &opts.persist_to {
            cmd.arg("--persist-to").arg(dir);
        }
        let status = cmd.status();
        let _ = std::fs::remove_file(&scratch);
        let status = status.map_err(|e| {
            Failure::Io(format!(
                "cannot run {wrangler}: {e} (run `make setup`, or set WRANGLER)"
            ))
        })?;
        if status.success() {
            Ok(())
        } else {
            Err(Failure::Io(format!(
                "wrangler failed ({status}) writing `{key}`; the config in KV is unchanged"
            )))
        }
    };
    // Lists first: a document in KV never refers to a list that is not there yet.
    for (key, bytes) in &loaded.lists {
        put(key, bytes)?;
    }
    put(KV_KEY, loaded.text.as_bytes())?;
    let place = if opts.remote { "remote KV" } else { "local KV" };
    println!(
        "pushed config {} ({} lists in their own keys) to {place}; isolates pick it up within their refresh interval",
        loaded.config.digest,
        loaded.lists.len()
    );
    Ok(())
}

/// Reads `--name value` flags; every name must be known.
fn named_flags<'a>(
    flags: &[&'a str],
    known: &[&str],
) -> Result<std::collections::HashMap<String, &'a str>, Failure> {
    let mut out = std::collections::HashMap::new();
    let mut rest = flags.iter();
    while let Some(flag) = rest.next() {
        if !known.contains(flag) {
            return Err(Failure::Usage(format!("unknown option `{flag}`")));
        }
        let value = rest
            .next()
            .ok_or_else(|| Failure::Usage(format!("{flag} needs a value")))?;
        out.insert(flag.to_string(), *value);
    }
    Ok(out)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn network_policy(
    config: &Config,
    network: &str,
) -> Result<(Id, clickgate_core::config::networks::Policy), Failure> {
    let id = Id::parse(network).map_err(|e| Failure::Usage(format!("network `{network}` {e}")))?;
    let policy = config.networks.get(&id).cloned().ok_or_else(|| {
        Failure::Usage(format!(
            "network `{id}` has no signing policy in the config"
        ))
    })?;
    Ok((id, policy))
}

fn sign(flags: &[&str]) -> Result<(), Failure> {
    let f = named_flags(
        flags,
        &[
            "--config",
            "--network",
            "--url",
            "--kid",
            "--expires-in",
            "--click-id",
            "--click-ids",
        ],
    )?;
    let need = |name: &str| {
        f.get(name)
            .copied()
            .ok_or_else(|| Failure::Usage(format!("sign needs {name}")))
    };
    let config = validate(Path::new(need("--config")?), Use::Replay)?.config;
    let (_, policy) = network_policy(&config, need("--network")?)?;
    let now = now_ms();
    let key = match f.get("--kid") {
        Some(kid) => policy.keys.iter().find(|k| k.id == *kid),
        // The newest key still live: the one a rotation added last.
        None => policy
            .keys
            .iter()
            .rev()
            .find(|k| k.not_after_ms.is_none_or(|t| now <= t)),
    }
    .ok_or_else(|| Failure::Usage("no such live key".into()))?;
    let expires_in: u64 = match f.get("--expires-in") {
        Some(v) => v
            .parse()
            .map_err(|_| Failure::Usage("--expires-in needs whole seconds".into()))?,
        // An hour, or less if the network's policy allows less.
        None => policy.max_age_s.min(3600),
    };
    let (url, expires) = (need("--url")?, now / 1000 + expires_in);
    let Some(file) = f.get("--click-ids") else {
        let click_id = f.get("--click-id").copied();
        println!("{}", sign_link(&policy, key, url, expires, click_id));
        return Ok(());
    };
    if f.contains_key("--click-id") {
        return Err(Failure::Usage(
            "give --click-id or --click-ids, not both".into(),
        ));
    }
    let ids = std::fs::read_to_string(file)
        .map_err(|e| Failure::Usage(format!("--click-ids {file}: {e}")))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    ids.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .try_for_each(|id| writeln!(out, "{}", sign_link(&policy, key, url, expires, Some(id))))
        .and_then(|()| out.flush())
        .map_err(|e| Failure::Usage(format!("writing links: {e}")))
}

fn verify(file: &Path, url: &str) -> Result<(), Failure> {
    let config = validate(file, Use::Replay)?.config;
    let (path, query) = split_url(url);
    let params = match route("GET", path, query) {
        Ok(Route::Click(p)) => p,
        Ok(_) => {
            return Err(Failure::Usage(
                "not a click link (/c?… or /c/{offer}/{aff})".into(),
            ))
        }
        Err(e) => return Err(Failure::Usage(format!("not a click link: {e}"))),
    };
    let (network, policy) = network_policy(&config, params.aff_id.as_str())?;
    match verify_signature(&policy, url, path, query, now_ms()) {
        Check::Valid {
            kid,
            click_id,
            expires_ms,
        } => {
            println!(
                "valid: network {network}, key {kid}, expires in {} s{}",
                expires_ms.saturating_sub(now_ms()) / 1000,
                click_id
                    .map(|c| format!(", click id {c} (accepted once)"))
                    .unwrap_or_default()
            );
            Ok(())
        }
        Check::Failed { code, detail, .. } => {
            println!("{code}: {detail}");
            Err(Failure::Invalid)
        }
        Check::NotSigned => {
            println!("not checked: network {network} has signing off");
            Ok(())
        }
    }
}

/// `network block|unblock`: imposes or lifts the network's block through the admin API.
fn network_admin(verb: &str, network: &str, flags: &[&str]) -> Result<(), Failure> {
    let f = named_flags(flags, &["--url", "--by"])?;
    let (Some(base), Some(by)) = (f.get("--url"), f.get("--by")) else {
        return Err(Failure::Usage(format!("{verb} needs --url and --by")));
    };
    let body = serde_json::json!({ "by": by }).to_string();
    let path = format!("/admin/networks/{network}/{verb}");
    println!("{}", admin_call(base, "POST", &path, Some(&body))?);
    Ok(())
}

/// `report`: the fraud report as a table (default), JSON or CSV.
fn report(flags: &[&str]) -> Result<(), Failure> {
    let f = named_flags(
        flags,
        &["--url", "--from", "--to", "--group-by", "--format"],
    )?;
    let base = f
        .get("--url")
        .ok_or_else(|| Failure::Usage("report needs --url".into()))?;
    let format = f.get("--format").copied().unwrap_or("table");
    if !matches!(format, "table" | "json" | "csv") {
        return Err(Failure::Usage(format!(
            "--format `{format}` is not table, json or csv"
        )));
    }
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (flag, name) in [
        ("--from", "from"),
        ("--to", "to"),
        ("--group-by", "group_by"),
    ] {
        if let Some(v) = f.get(flag) {
            query.append_pair(name, v);
        }
    }
    query.append_pair("format", if format == "csv" { "csv" } else { "json" });
    let answer = admin_call(
        base,
        "GET",
        &format!("/admin/report?{}", query.finish()),
        None,
    )?;
    match format {
        "table" => {
            let report: serde_json::Value = serde_json::from_str(&answer)
                .map_err(|e| Failure::Io(format!("the Worker's report is not JSON: {e}")))?;
            print!("{}", report_table(&report));
        }
        // Exactly as the Worker sent it: CSV lines end in CRLF.
        "csv" => print!("{answer}"),
        _ => println!("{answer}"),
    }
    Ok(())
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
        out.push_str(&format!("not answering, not counted: {missing:?}\n"));
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

/// `explain`: one click's whole decision, by its transaction id.
fn explain(transaction_id: &str, flags: &[&str]) -> Result<(), Failure> {
    let f = named_flags(flags, &["--url"])?;
    let base = f
        .get("--url")
        .ok_or_else(|| Failure::Usage("explain needs --url".into()))?;
    let answer = admin_call(
        base,
        "GET",
        &format!("/admin/explain/{transaction_id}"),
        None,
    )?;
    let pretty = serde_json::from_str::<serde_json::Value>(&answer)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or(answer);
    println!("{pretty}");
    Ok(())
}

/// Calls the Worker's admin API with curl and returns the answer of a 200; the token goes to curl
/// on its standard input, never on a command line another user could read.
fn admin_call(base: &str, method: &str, path: &str, body: Option<&str>) -> Result<String, Failure> {
    let token = std::env::var("CLICKGATE_ADMIN_TOKEN").map_err(|_| {
        Failure::Usage("set CLICKGATE_ADMIN_TOKEN to the Worker's ADMIN_TOKEN secret".into())
    })?;
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-X", method, "-H", "@-"]);
    if let Some(body) = body {
        cmd.args(["-H", "content-type: application/json", "--data", body]);
    }
    let mut child = cmd
        .args(["-w", "\n%{http_code}", &url])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| Failure::Io(format!("cannot run curl: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        writeln!(stdin, "Authorization: Bearer {token}")
            .map_err(|e| Failure::Io(format!("curl: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Failure::Io(format!("curl: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let (answer, status) = text.rsplit_once('\n').unwrap_or(("", text.trim()));
    match status.trim() {
        "200" => Ok(answer.to_owned()),
        _ if !out.status.success() => Err(Failure::Io(format!("curl failed ({})", out.status))),
        other => Err(Failure::Io(format!(
            "the Worker answered {other}: {}",
            answer.trim()
        ))),
    }
}

fn compile_list(list: &Path, out: &Path) -> Result<(), Failure> {
    let text = std::fs::read_to_string(list)
        .map_err(|e| Failure::Io(format!("cannot read {}: {e}", list.display())))?;
    match parse_list(&text) {
        Ok(set) => {
            let bytes = set.to_bytes();
            std::fs::write(out, &bytes)
                .map_err(|e| Failure::Io(format!("cannot write {}: {e}", out.display())))?;
            println!("{}", list_key(&bytes));
            eprintln!(
                "{}: {} ranges, {} bytes",
                list.display(),
                set.len(),
                bytes.len()
            );
            Ok(())
        }
        Err(errors) => {
            for e in errors {
                eprintln!("{}: {e}", list.display());
            }
            Err(Failure::Invalid)
        }
    }
}

fn replay(flags: &[&str]) -> Result<(), Failure> {
    let f = named_flags(flags, &["--config", "--clicks", "--against", "--changes"])?;
    let path = |name: &str| f.get(name).map(PathBuf::from);
    let (config, clicks, against) = (path("--config"), path("--clicks"), path("--against"));
    let keep: usize = match f.get("--changes") {
        Some(v) => v
            .parse()
            .map_err(|_| Failure::Usage(format!("--changes takes a number, not `{v}`")))?,
        None => 20,
    };
    let config_file = config.ok_or_else(|| Failure::Usage("replay needs --config FILE".into()))?;
    let config = validate(&config_file, Use::Replay)?.config;
    let against = against
        .map(|p| validate(&p, Use::Replay).map(|l| l.config))
        .transpose()?;
    let clicks = clicks.ok_or_else(|| Failure::Usage("replay needs --clicks LOG".into()))?;
    let records = read_clicks(&clicks)?;

    let mut replay = Replay::new(&config, against.as_ref(), keep);
    feed_all(&mut replay, records);
    print_report(&replay, against.is_some());
    Ok(())
}

/// Replays every click, with progress on stderr for long logs, and closes the last minute.
fn feed_all(replay: &mut Replay, records: Vec<Recorded>) {
    let total = records.len();
    for (i, r) in records.into_iter().enumerate() {
        replay.feed(r);
        if (i + 1) % 100_000 == 0 {
            eprintln!("replayed {} of {total} clicks", i + 1);
        }
    }
    replay.finish();
}

/// The flood section of the report: every trip, then how many networks never tripped.
fn flood_lines(replay: &Replay) -> Vec<String> {
    let mut lines = vec![
        "floods (the config's thresholds; the log's earlier days make the baseline):".to_owned(),
    ];
    let mut calm = 0;
    for (network, flood) in &replay.floods {
        if flood.trips.is_empty() {
            calm += 1;
        }
        for trip in &flood.trips {
            lines.push(format!(
                "  {network} tripped at {} ({}: {}); the block would have stopped {} clicks, {} of them redirected by the rules",
                clickgate_core::time::rfc3339_ms(trip.at_ms),
                trip.cause.as_str(),
                trip.detail,
                trip.stopped,
                trip.stopped_redirects,
            ));
        }
    }
    lines.push(format!("  {calm} networks never tripped"));
    lines
}

/// Reads a click file whole and sorts it by time: the duplicate-IP and sub-ID counts are only right
/// in time order, and log shippers do not always keep it.
fn read_clicks(path: &Path) -> Result<Vec<Recorded>, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Io(format!("cannot read {}: {e}", path.display())))?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .peekable();
    let csv = lines
        .peek()
        .is_some_and(|(_, l)| !l.contains('{') && l.contains("offer_id"));
    let header = if csv {
        let (_, first) = lines.next().unwrap_or((0, ""));
        Some(csv_header(first).map_err(|e| Failure::Io(format!("{}:1: {e}", path.display())))?)
    } else {
        None
    };
    let (mut records, mut bad) = (Vec::new(), Vec::new());
    for (n, line) in lines {
        let parsed = match &header {
            Some(h) => from_csv_line(line, h).map(|r| vec![r]),
            None => from_log_line(line),
        };
        match parsed {
            Ok(rs) => records.extend(rs),
            Err(e) => bad.push(format!("{}:{}: {e}", path.display(), n + 1)),
        }
        if (n + 1) % 100_000 == 0 {
            eprintln!("read {} lines", n + 1);
        }
    }
    for b in bad.iter().take(5) {
        eprintln!("skipped {b}");
    }
    if bad.len() > 5 {
        eprintln!("skipped {} more lines that are not clicks", bad.len() - 5);
    }
    if records.is_empty() {
        return Err(Failure::Io(format!("{}: no clicks found", path.display())));
    }
    records.sort_by_key(|r| r.at_ms);
    Ok(records)
}

fn print_report(replay: &Replay, compared: bool) {
    let t = &replay.tally;
    let pct = |n: u64, of: u64| {
        if of == 0 {
            0.0
        } else {
            100.0 * n as f64 / of as f64
        }
    };
    println!("clicks replayed: {}", t.clicks);
    if t.previews > 0 {
        println!(
            "link previews (not clicks, counted nowhere): {}",
            t.previews
        );
    }
    println!("\nby verdict:");
    for (verdict, n) in &t.by_verdict {
        println!("  {verdict:<12} {n:>10}  {:>6.2}%", pct(*n, t.clicks));
    }
    if !t.by_reason.is_empty() {
        println!("\nby reason (a click can have several):");
        for (code, n) in &t.by_reason {
            println!("  {code:<20} {n:>10}");
        }
    }
    for (title, map) in [("offer", &t.by_offer), ("affiliate", &t.by_affiliate)] {
        println!("\nby {title} (clicks, not sent to the offer, share):");
        let mut rows: Vec<_> = map.iter().collect();
        rows.sort_by(|a, b| b.1 .1.cmp(&a.1 .1).then(a.0.cmp(b.0)));
        for (id, (clicks, stopped)) in rows.iter().take(25) {
            println!(
                "  {id:<24} {clicks:>10} {stopped:>10}  {:>6.2}%",
                pct(*stopped, *clicks)
            );
        }
        if rows.len() > 25 {
            println!("  ... and {} more", rows.len() - 25);
        }
    }
    println!();
    for line in flood_lines(replay) {
        println!("{line}");
    }
    if compared {
        println!(
            "\nclicks decided differently from --against: {}",
            replay.changed
        );
        for c in &replay.changes {
            let r = &c.record;
            println!(
                "  {} offer {} aff {} ip {}: {} {:?} -> {} {:?} (rule {})",
                clickgate_core::time::rfc3339_ms(r.at_ms),
                r.click.offer_id,
                r.click.aff_id,
                r.client
                    .ip
                    .map(|ip| ip.to_string())
                    .unwrap_or_else(|| "-".into()),
                c.before.label,
                c.before.codes,
                c.after.label,
                c.after.codes,
                c.after.rule_id.as_deref().unwrap_or("-"),
            );
        }
        if replay.changed as usize > replay.changes.len() {
            println!(
                "  ... {} more (raise --changes to list them)",
                replay.changed as usize - replay.changes.len()
            );
        }
    }
}

fn find_upwards(name: &str) -> Option<PathBuf> {
    let mut dir = std::env::current_dir().ok()?;
    loop {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return Some(candidate);
        }
        if !dir.pop() {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clickgate_core::flood::simulation::{floods, launch, simulate, Traffic, FLOOD_START};
    use clickgate_core::flood::Thresholds;
    use clickgate_core::whatif::Trip;

    fn flags(words: &[&str]) -> Result<PushOptions, String> {
        parse_push_flags(words).map_err(|f| match f {
            Failure::Usage(m) | Failure::Io(m) => m,
            Failure::Invalid => "invalid".into(),
        })
    }

    #[test]
    fn push_needs_exactly_one_target() {
        assert!(flags(&[]).unwrap_err().contains("--local or --remote"));
        assert!(flags(&["--local", "--remote"])
            .unwrap_err()
            .contains("not both"));
        assert!(!flags(&["--local", "--local"]).unwrap().remote);
        assert!(flags(&["--remote"]).unwrap().remote);
    }

    #[test]
    fn push_options_take_values() {
        let o = flags(&[
            "--local",
            "--persist-to",
            "/tmp/x",
            "--wrangler-config",
            "w.toml",
        ])
        .unwrap();
        assert_eq!(o.persist_to, Some(PathBuf::from("/tmp/x")));
        assert_eq!(o.wrangler_config, Some(PathBuf::from("w.toml")));
        assert!(flags(&["--local", "--persist-to"])
            .unwrap_err()
            .contains("needs a value"));
        assert!(flags(&["--remote", "--persist-to", "d"])
            .unwrap_err()
            .contains("--local only"));
        assert!(flags(&["--local", "--force"])
            .unwrap_err()
            .contains("unknown option `--force`"));
    }

    fn scratch(name: &str, text: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("clickgate-cli-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn click_files_are_read_as_log_or_csv_and_sorted_by_time() {
        let log = scratch(
            "clicks.log",
            "{\"event\":\"click\",\"ts\":\"2026-11-22T10:00:05Z\",\"offer_id\":\"1\",\"aff_id\":\"b\"}\n\
             [wrangler:info] GET /c 302\n\
             {\"event\":\"click\",\"ts\":\"2026-11-22T10:00:01Z\",\"offer_id\":\"1\",\"aff_id\":\"a\"}\n\
             {\"event\":\"click\",\"ts\":\"bad\",\"offer_id\":\"1\",\"aff_id\":\"c\"}\n",
        );
        let records = read_clicks(&log).unwrap();
        let affs: Vec<&str> = records.iter().map(|r| r.click.aff_id.as_str()).collect();
        assert_eq!(
            affs,
            ["a", "b"],
            "sorted by time, the unparseable line skipped"
        );

        let csv = scratch(
            "clicks.csv",
            "ts,offer_id,aff_id,ip\n2026-11-22T10:00:00Z,1,a,192.0.2.1\n",
        );
        let records = read_clicks(&csv).unwrap();
        assert_eq!(records[0].client.ip, "192.0.2.1".parse().ok());

        let empty = scratch("empty.log", "nothing here\n");
        assert!(
            matches!(read_clicks(&empty), Err(Failure::Io(m)) if m.contains("no clicks found"))
        );
        for p in [log, csv, empty] {
            let _ = std::fs::remove_file(p);
        }
    }

    #[test]
    fn list_files_are_compiled_into_their_own_keys_and_their_errors_have_paths() {
        let dir = std::env::temp_dir().join(format!("clickgate-cli-lists-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("dc.txt"),
            "# provider A\n192.0.2.0/24\n2001:db8::/32\n",
        )
        .unwrap();
        std::fs::write(dir.join("bad.txt"), "192.0.2.0/24\n10.0.0.1/8\n").unwrap();
        let doc = |list: &str| {
            format!(
                r#"{{"version": 1, "offers": [{{"id": "1", "landing_url": "https://x.example/"}}],
                    "lists": {{"datacenter_ips": {{"file": "{list}"}}, "fraud_ips": ["203.0.113.1"]}}}}"#
            )
        };
        let file = dir.join("config.json");

        let r = resolve_list_files(&file, doc("dc.txt"));
        assert!(r.errors.is_empty());
        assert_eq!(r.lists.len(), 1);
        let key = &r.lists[0].0;
        assert!(key.starts_with("iplist/"));
        let config = Config::compile_with_lists(&r.text, &r.stored).unwrap();
        assert_eq!(config.lists.datacenter_ips.len(), 2);
        assert!(r.text.contains(&format!(r#""kv": "{key}""#)));
        // The same file gives the same key: pushing twice writes nothing new.
        assert_eq!(&resolve_list_files(&file, doc("dc.txt")).lists[0].0, key);

        let r = resolve_list_files(&file, doc("bad.txt"));
        assert_eq!(r.errors.len(), 1);
        assert_eq!(r.errors[0].path, "lists.datacenter_ips.file");
        assert!(r.errors[0]
            .problem
            .starts_with("bad.txt: line 2: `10.0.0.1/8` has host bits set"));
        let r = resolve_list_files(&file, doc("missing.txt"));
        assert!(r.errors[0].problem.starts_with("cannot read"));

        // Without list files the document goes to KV byte for byte.
        let plain = r#"{"version": 1, "offers": []}"#.to_owned();
        assert_eq!(resolve_list_files(&file, plain.clone()).text, plain);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn unknown_commands_are_usage_errors() {
        let run_words = |w: &[&str]| run(&w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(matches!(run_words(&[]), Err(Failure::Usage(_))));
        assert!(matches!(
            run_words(&["config", "frobnicate"]),
            Err(Failure::Usage(_))
        ));
        assert!(matches!(
            run_words(&["config", "validate", "/nonexistent/x.json"]),
            Err(Failure::Io(_))
        ));
    }

    /// A document with one offer, a rule declining bots, and net-7's flood floor scaled to the
    /// simulated traffic below (a tenth of the core simulator's).
    const FLOOD_CONFIG: &str = r#"{"version": 1, "offers": [{"id": "1", "landing_url": "https://x.example/"}],
        "networks": [{"id": "net-7", "flood": {"floor": 60}}],
        "rules": [{"id": "bots", "created_at": "2026-11-01", "scope": {"offers": ["1"]}, "decline": "medium_and_higher",
                   "strategy": {"filters": [{"type": "bot"}]}}]}"#;
    const DAY0: u64 = 1_795_392_000_000; // 2026-11-23T00:00:00Z
    const DAILY: f64 = 5_000.0;

    /// Two days of net-7's clicks as CSV, minute by minute as the core's simulator counts them:
    /// each minute's clicks spread over it, its flagged ones sent by curl (the rule declines them).
    fn traffic_csv(traffic: &Traffic) -> String {
        let mut csv = String::from("ts,offer_id,aff_id,ip,user_agent\n");
        for day in 0..2 {
            for m in 0..1440 {
                let (clicks, flagged, _) = traffic.minute(day, m);
                let start = DAY0 + day * 86_400_000 + m * 60_000;
                for i in 0..clicks {
                    let ua = if i < flagged {
                        "curl/8.4.0"
                    } else {
                        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
                    };
                    let at = start + u64::from(i) * 60_000 / u64::from(clicks);
                    csv.push_str(&format!(
                        "{},1,net-7,198.51.100.{},{ua}\n",
                        clickgate_core::time::rfc3339_ms(at),
                        i % 250
                    ));
                }
            }
        }
        csv
    }

    /// Replays a traffic file as `clickgate replay` does; net-7's trips and the flood report.
    fn replay_floods(name: &str, traffic: &Traffic) -> (Vec<Trip>, Vec<String>) {
        let config_file = scratch(&format!("{name}.json"), FLOOD_CONFIG);
        let clicks = scratch(&format!("{name}.csv"), &traffic_csv(traffic));
        let config = validate(&config_file, Use::Replay).unwrap().config;
        let mut replay = Replay::new(&config, None, 0);
        feed_all(&mut replay, read_clicks(&clicks).unwrap());
        for p in [config_file, clicks] {
            let _ = std::fs::remove_file(p);
        }
        (replay.floods["net-7"].trips.clone(), flood_lines(&replay))
    }

    fn thresholds() -> Thresholds {
        let config = Config::compile(FLOOD_CONFIG).unwrap();
        config.flood_thresholds(&Id::parse("net-7").unwrap())
    }

    #[test]
    fn replay_finds_no_flood_in_human_traffic_with_a_ten_fold_launch() {
        let traffic = Traffic {
            daily: DAILY,
            human_cr: 0.0,
            extra: launch(1, 10.0, DAILY, 0.0),
        };
        assert_eq!(simulate(DAY0, 2, &traffic, &thresholds()), [None, None]);
        let (trips, lines) = replay_floods("launch", &traffic);
        assert_eq!(trips, []);
        assert_eq!(
            lines.last().map(String::as_str),
            Some("  1 networks never tripped")
        );
    }

    #[test]
    fn replay_trips_every_flood_shape_at_the_simulators_minute() {
        let t = thresholds();
        // Two hours of each flood on the second day, the first day the baseline.
        for (name, extra) in floods(1, FLOOD_START + 120, DAILY, &[2, 3, 6, 21]) {
            let traffic = Traffic {
                daily: DAILY,
                human_cr: 0.0,
                extra,
            };
            let simulated = simulate(DAY0, 2, &traffic, &t);
            let minute =
                simulated[1].unwrap_or_else(|| panic!("{name}: the simulator never trips"));
            assert_eq!(simulated[0], None, "{name}");
            let (trips, lines) = replay_floods(&name.replace(' ', "-"), &traffic);
            assert_eq!(trips.len(), 1, "{name}: {trips:?}");
            let trip = &trips[0];
            assert_eq!(
                trip.at_ms,
                DAY0 + 86_400_000 + minute * 60_000,
                "{name}: {trip:?}"
            );
            // Every click of the rest of that day comes after the trip's minute.
            let after: u32 = (minute + 1..1440).map(|m| traffic.minute(1, m).0).sum();
            assert_eq!(trip.stopped, u64::from(after), "{name}");
            let unflagged: u32 = (minute + 1..1440)
                .map(|m| {
                    let (c, f, _) = traffic.minute(1, m);
                    c - f
                })
                .sum();
            assert_eq!(trip.stopped_redirects, u64::from(unflagged), "{name}");
            assert!(
                lines[1].starts_with(&format!(
                    "  net-7 tripped at {} ({}:",
                    clickgate_core::time::rfc3339_ms(trip.at_ms),
                    trip.cause.as_str()
                )),
                "{lines:?}"
            );
            assert!(lines[1].ends_with(&format!(
                "the block would have stopped {after} clicks, {unflagged} of them redirected by the rules"
            )));
        }
    }

    fn run_words(words: &[&str]) -> Result<(), Failure> {
        run(&words.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn config_validate_accepts_the_demo_document() {
        let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../demo/config.json");
        let demo = demo.to_str().unwrap();
        assert!(matches!(run_words(&["config", "validate", demo]), Ok(())));
        let broken = scratch("broken.json", r#"{"version": 1, "offers": [{"id": "1"}]}"#);
        assert!(matches!(
            run_words(&["config", "validate", broken.to_str().unwrap()]),
            Err(Failure::Invalid)
        ));
        let _ = std::fs::remove_file(broken);
    }

    #[test]
    fn list_compile_writes_the_set_its_key_names() {
        let list = scratch(
            "dc.txt",
            "# datacenters\n192.0.2.0/24\n2001:db8::/32\n198.51.100.7\n",
        );
        let out = list.with_extension("bin");
        let (l, o) = (list.to_str().unwrap(), out.to_str().unwrap());
        assert!(matches!(run_words(&["list", "compile", l, o]), Ok(())));
        let bytes = std::fs::read(&out).unwrap();
        let set = IpSet::from_bytes(bytes.clone()).unwrap();
        assert_eq!(set.len(), 3);
        assert!(set.lookup("192.0.2.200".parse().unwrap()).is_some());
        assert!(set.lookup("198.51.100.8".parse().unwrap()).is_none());
        // The key is made from the content: another list gets another one.
        assert!(list_key(&bytes).starts_with("iplist/"));
        assert_ne!(list_key(&bytes), list_key(&IpSet::new([]).to_bytes()));
        let bad = scratch("bad.txt", "10.0.0.1/8\n");
        assert!(matches!(
            run_words(&["list", "compile", bad.to_str().unwrap(), o]),
            Err(Failure::Invalid)
        ));
        for p in [list, out, bad] {
            let _ = std::fs::remove_file(p);
        }
    }

    #[test]
    fn replay_runs_from_the_command_line() {
        let config = scratch("replay-config.json", FLOOD_CONFIG);
        let clicks = scratch(
            "replay-clicks.csv",
            "ts,offer_id,aff_id,user_agent\n2026-11-23T10:00:00Z,1,net-7,curl/8\n2026-11-23T10:00:01Z,1,net-7,Mozilla/5.0\n",
        );
        let (c, k) = (config.to_str().unwrap(), clicks.to_str().unwrap());
        assert!(matches!(
            run_words(&["replay", "--config", c, "--clicks", k]),
            Ok(())
        ));
        assert!(matches!(
            run_words(&["replay", "--clicks", k]),
            Err(Failure::Usage(m)) if m.contains("--config")
        ));
        for p in [config, clicks] {
            let _ = std::fs::remove_file(p);
        }
    }
}
