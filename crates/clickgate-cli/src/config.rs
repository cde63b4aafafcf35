//! `config validate`, `config push` and `list compile`: a document checked with the compiler the
//! Worker runs, its IP list files compiled into their own KV keys, and the lot written to the
//! `CLICKGATE_CONFIG` KV namespace through wrangler, so a document the edge would refuse never
//! reaches it.

use std::path::{Path, PathBuf};
use std::process::Command;

use clickgate_core::config::list_formats::{parse_list, Entry, Format, LineError};
use clickgate_core::config::{repeated_keys, Config, ConfigError, Secrets, StoredLists};
use clickgate_core::ip::{IpNet, IpSet};
use clickgate_core::stored::list_key;

use crate::args::PushArgs;
use crate::Failure;

const KV_BINDING: &str = "CLICKGATE_CONFIG";
const KV_KEY: &str = "config";

/// What the command does with a valid document, for the messages `validate` prints.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Use {
    Check,
    Push,
    /// Replay's report owns stdout, so the summary goes to stderr.
    Replay,
    /// `sign` and `verify` need the signing keys themselves: a secret the document names is read
    /// from the environment variable of that name. Their output owns stdout too.
    Sign,
}

/// A valid document as it goes to KV: IP lists given as files are compiled and replaced by
/// references to their own keys, which `lists` holds.
pub struct Loaded {
    pub config: Config,
    text: String,
    lists: Vec<(String, Vec<u8>)>,
}

/// A document's or a list's text. A file that was read but is not UTF-8 is an invalid document
/// (exit 1), not a file that could not be read (exit 3): a script tells the two apart.
fn read_text(file: &Path) -> Result<String, Failure> {
    let bytes = std::fs::read(file)
        .map_err(|e| Failure::Io(format!("cannot read {}: {e}", file.display())))?;
    String::from_utf8(bytes).map_err(|e| {
        eprintln!("{}: not UTF-8 text: {}", file.display(), e.utf8_error());
        Failure::Invalid
    })
}

pub fn validate(file: &Path, purpose: Use) -> Result<Loaded, Failure> {
    let text = read_text(file)?;
    let Resolved {
        text,
        lists,
        stored,
        errors: list_errors,
    } = resolve_list_files(file, text);
    // The Worker reads the secrets the document names; a check of the document alone takes
    // them as set, and names them so the operator can see that the Worker has each.
    let named = std::cell::RefCell::new(Vec::new());
    let from_env = |name: &str| std::env::var(name).ok();
    let assumed = |name: &str| {
        named.borrow_mut().push(name.to_owned());
        Some(format!("stand-in-for-the-secret-{name}"))
    };
    let secrets = match purpose {
        Use::Sign => Secrets::Read(&from_env),
        _ => Secrets::Read(&assumed),
    };
    let compiled = if list_errors.is_empty() {
        Config::compile_with(&text, &stored, secrets)
    } else {
        Err(list_errors)
    };
    let mut named = named.into_inner();
    named.sort();
    named.dedup();
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
            let secrets = match named.as_slice() {
                [] => String::new(),
                names => format!(
                    "\n{}: names Worker secrets {} (taken as set here; the Worker refuses the document while one is missing: wrangler secret put NAME)",
                    file.display(),
                    names.join(", ")
                ),
            };
            if matches!(purpose, Use::Replay | Use::Sign) {
                eprintln!("{summary}{secrets}");
            } else {
                println!("{summary}{secrets}");
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
            if purpose == Use::Sign && errors.iter().any(|e| e.problem.contains("Worker secret")) {
                eprintln!(
                    "{}: sign and verify read a secret the document names from the environment variable of that name",
                    file.display()
                );
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

/// Replaces every IP list given as `{"file": "name.txt"}` (relative to the document), and every IP
/// list written out with more than [`WRITTEN_OUT_LIMIT`] entries, with `{"kv": "iplist/<hash>"}`,
/// compiling the list, and reports every problem with its path. A document with neither is
/// returned unchanged, byte for byte.
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
    let mut inlined = false;
    // Each relay's ranges are a list of their own, named under `relays`.
    let mut targets = Vec::new();
    for (name, value) in lists.iter_mut() {
        if name != "relays" || !value.is_object() {
            targets.push((name.clone(), value));
        } else if let Some(relays) = value.as_object_mut() {
            targets.extend(
                relays
                    .iter_mut()
                    .map(|(relay, value)| (format!("relays.{relay}"), value)),
            );
        }
    }
    // A list of address blocks goes to a key of its own, named by its compiled bytes' hash; the
    // document names that key in its place.
    let mut store_apart = |value: &mut serde_json::Value, set: IpSet| {
        let bytes = set.to_bytes();
        let key = list_key(&bytes);
        *value = serde_json::json!({ "kv": key });
        stored.insert(key.clone(), set);
        compiled.push((key, bytes));
    };
    for (name, value) in targets {
        if let Some(entries) = value.as_array() {
            if let Some(set) = long_written_ip_list(&name, entries) {
                store_apart(value, set);
            }
            continue;
        }
        let Some(list_file) = value.get("file").and_then(|f| f.as_str()) else {
            continue;
        };
        // The file's list replaces the whole object: anything beside `file` would vanish.
        if let Some(other) = value
            .as_object()
            .and_then(|o| o.keys().find(|k| *k != "file" && *k != "format"))
        {
            errors.push(ConfigError {
                path: format!("lists.{name}.{other}"),
                problem: "a list given as a file takes no other field than its format".into(),
            });
            continue;
        }
        let path = format!("lists.{name}.file");
        let problem = |p: String| ConfigError {
            path: path.clone(),
            problem: p,
        };
        let asns = ASN_LISTS.contains(&name.as_str());
        let format = match value
            .get("format")
            .map(|f| f.as_str().map(str::parse::<Format>))
        {
            None => Ok(if asns { Format::Asn } else { Format::Ips }),
            Some(Some(Ok(f))) if f.is_asn() == asns => Ok(f),
            Some(Some(Ok(_))) => Err(if asns {
                format!("lists.{name} holds AS numbers; this format holds address blocks")
            } else {
                format!("lists.{name} holds address blocks; this format holds AS numbers")
            }),
            Some(Some(Err(e))) => Err(e),
            Some(None) => Err("must be a format's name".to_owned()),
        };
        let format = match format {
            Ok(f) => f,
            Err(p) => {
                errors.push(ConfigError {
                    path: format!("lists.{name}.format"),
                    problem: p,
                });
                continue;
            }
        };
        let list_path = dir.join(list_file);
        let list_text = match std::fs::read_to_string(&list_path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(problem(format!("cannot read {}: {e}", list_path.display())));
                continue;
            }
        };
        match read_list(format, &list_text) {
            Ok(Read::Nets(set)) => store_apart(value, set),
            // AS lists are small and read by every click: they live in the document itself.
            Ok(Read::Asns(numbers)) => {
                *value = serde_json::json!(numbers);
                inlined = true;
            }
            Err(bad) => errors.extend(
                bad.into_iter()
                    .map(|e| problem(format!("{list_file}: {e}"))),
            ),
        }
    }
    if compiled.is_empty() && !inlined && errors.is_empty() {
        return unchanged(text);
    }
    // The rewritten document keeps one of each repeated key: report them from the original.
    errors.extend(repeated_keys(&text));
    compiled.sort();
    compiled.dedup();
    Resolved {
        text: serde_json::to_string_pretty(&doc).unwrap_or(text),
        lists: compiled,
        stored,
        errors,
    }
}

pub fn push(opts: &PushArgs) -> Result<(), Failure> {
    let loaded = validate(&opts.file, Use::Push)?;
    let wrangler_toml = match &opts.wrangler_config {
        Some(p) => p.clone(),
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
        if let Some(env) = &opts.env {
            cmd.arg("--env").arg(env);
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

/// The lists whose entries are AS numbers; every other list holds address blocks.
const ASN_LISTS: &[&str] = &["datacenter_asns", "vpn_asns"];

/// The lists of address blocks a document may keep in their own keys (each relay's too).
const IP_LISTS: &[&str] = &[
    "blocked_ips",
    "allowed_ips",
    "fraud_ips",
    "datacenter_ips",
    "vpn_ips",
];

/// The most entries an IP list keeps written out in the pushed document. A fresh isolate parses
/// and sorts a written-out list within its first click, at about a microsecond an entry in wasm
/// (the cold-start bench: 50,000 entries cost some 45 ms), where a list in its own key arrives
/// sorted and is checked in one pass; so a longer list goes to its own key as a list file does.
const WRITTEN_OUT_LIMIT: usize = 1_000;

/// A written-out IP list long enough to go to its own key, as the set the compiler would make of
/// it; `None` for a short list, another kind of list, or one with an entry the compiler refuses
/// (left in place, so the refusal names the entry's path).
fn long_written_ip_list(name: &str, entries: &[serde_json::Value]) -> Option<IpSet> {
    let ip_list = IP_LISTS.contains(&name) || name.starts_with("relays.");
    if !ip_list || entries.len() <= WRITTEN_OUT_LIMIT {
        return None;
    }
    let nets: Option<Vec<IpNet>> = entries
        .iter()
        .map(|e| e.as_str().and_then(|t| IpNet::parse(t).ok()))
        .collect();
    nets.map(IpSet::new)
}

/// A list file read in its format.
enum Read {
    Nets(IpSet),
    Asns(Vec<u32>),
}

fn read_list(format: Format, text: &str) -> Result<Read, Vec<LineError>> {
    let entries = parse_list(format, text)?;
    if format.is_asn() {
        let mut numbers: Vec<u32> = entries
            .into_iter()
            .filter_map(|e| match e {
                Entry::Asn(a) => Some(a),
                Entry::Net(_) => None,
            })
            .collect();
        numbers.sort_unstable();
        numbers.dedup();
        return Ok(Read::Asns(numbers));
    }
    Ok(Read::Nets(IpSet::new(entries.into_iter().filter_map(
        |e| match e {
            Entry::Net(n) => Some(n),
            Entry::Asn(_) => None,
        },
    ))))
}

/// `list compile`: an address list's compiled form and its KV key, or an AS list as the JSON
/// array `datacenter_asns` and `vpn_asns` take.
pub fn compile_list(list: &Path, out: &Path, format: Format) -> Result<(), Failure> {
    let text = read_text(list)?;
    let write = |bytes: &[u8]| {
        std::fs::write(out, bytes)
            .map_err(|e| Failure::Io(format!("cannot write {}: {e}", out.display())))
    };
    match read_list(format, &text) {
        Ok(Read::Nets(set)) => {
            let bytes = set.to_bytes();
            write(&bytes)?;
            println!("{}", list_key(&bytes));
            eprintln!(
                "{}: {} ranges, {} bytes",
                list.display(),
                set.len(),
                bytes.len()
            );
            Ok(())
        }
        Ok(Read::Asns(numbers)) => {
            write(serde_json::json!(numbers).to_string().as_bytes())?;
            eprintln!(
                "{}: {} AS numbers, written as the array lists.datacenter_asns and lists.vpn_asns take",
                list.display(),
                numbers.len()
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
    use crate::tests::{run_words, scratch};

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

        // Rewriting the document keeps one of each repeated key, so they are reported from the
        // original; and a field beside `file` would be lost with the object it is in.
        let twice = doc("dc.txt").replacen(r#""version": 1,"#, r#""version": 1, "version": 1,"#, 1);
        let r = resolve_list_files(&file, twice);
        let said: Vec<String> = r.errors.iter().map(ToString::to_string).collect();
        assert_eq!(said, ["version: is given more than once"]);
        let beside = doc("dc.txt").replace(
            r#"{"file": "dc.txt"}"#,
            r#"{"file": "dc.txt", "note": "provider A"}"#,
        );
        let said: Vec<String> = resolve_list_files(&file, beside)
            .errors
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            said,
            ["lists.datacenter_ips.note: a list given as a file takes no other field than its format"]
        );

        // Without list files the document goes to KV byte for byte.
        let plain = r#"{"version": 1, "offers": []}"#.to_owned();
        assert_eq!(resolve_list_files(&file, plain.clone()).text, plain);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn long_written_out_ip_lists_go_to_their_own_keys_and_mean_the_same() {
        let file = std::env::temp_dir().join("clickgate-cli-written-out.json");
        let ranges = |n: usize| -> Vec<String> {
            (0..n)
                .map(|i| format!("10.{}.{}.0/24", (i >> 8) & 255, i & 255))
                .collect()
        };
        let doc = |lists: serde_json::Value| {
            serde_json::json!({"version": 1,
                "offers": [{"id": "1", "landing_url": "https://x.example/"}],
                "lists": lists})
            .to_string()
        };
        let long = ranges(WRITTEN_OUT_LIMIT + 1);
        let original = doc(serde_json::json!({
            "blocked_ips": long,
            "allowed_ips": ranges(WRITTEN_OUT_LIMIT),
            "relays": {"private_relay": long},
            "fraud_device_ids": (0..WRITTEN_OUT_LIMIT + 1).map(|i| format!("dev-{i}")).collect::<Vec<_>>(),
        }));
        let r = resolve_list_files(&file, original.clone());
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        // The blocklist and the relay hold the same ranges: one key serves both.
        assert_eq!(r.lists.len(), 1);
        let key = &r.lists[0].0;
        let pushed: serde_json::Value = serde_json::from_str(&r.text).unwrap();
        assert_eq!(
            pushed["lists"]["blocked_ips"],
            serde_json::json!({"kv": key})
        );
        assert_eq!(
            pushed["lists"]["relays"]["private_relay"],
            serde_json::json!({"kv": key})
        );
        // A list at the limit, and a list of device ids, stay written out.
        assert!(pushed["lists"]["allowed_ips"].is_array());
        assert!(pushed["lists"]["fraud_device_ids"].is_array());
        // The Worker compiles the pushed document into the config the original one is.
        let before = Config::compile(&original).unwrap();
        let after = Config::compile_with_lists(&r.text, &r.stored).unwrap();
        assert_eq!(after.blocked_ips.len(), before.blocked_ips.len());
        for ip in ["10.3.231.9", "10.3.232.9", "10.0.0.1", "192.0.2.1"] {
            let ip = ip.parse().unwrap();
            assert_eq!(after.blocked_ips.lookup(ip), before.blocked_ips.lookup(ip));
        }
        assert_eq!(after.lists.relays.len(), 1);
        assert_eq!(
            after.lists.relays[0].1.len(),
            before.lists.relays[0].1.len()
        );

        // A long list with a bad entry stays where it is, so the compiler's refusal has its path.
        let mut bad = ranges(WRITTEN_OUT_LIMIT + 1);
        bad[7] = "10.0.7.1/24".into();
        let r = resolve_list_files(&file, doc(serde_json::json!({ "blocked_ips": bad })));
        assert!(r.lists.is_empty());
        let refused = Config::compile_with_lists(&r.text, &r.stored).unwrap_err();
        assert_eq!(refused[0].path, "lists.blocked_ips[7]");
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
        // The format a feed would name reads the same list; an unknown one is refused by the
        // argument parser, naming it and the formats there are.
        assert!(matches!(
            run_words(&["list", "compile", "--format", "ips", l, o]),
            Ok(())
        ));
        assert_eq!(std::fs::read(&out).unwrap(), bytes);
        match run_words(&["list", "compile", "--format", "dropp", l, o]) {
            Err(Failure::Args(e)) => {
                let m = e.to_string();
                assert!(m.contains("unknown list format `dropp`"), "{m}");
                assert_eq!(e.exit_code(), 2);
            }
            other => panic!("{other:?}"),
        }
        for p in [list, out, bad] {
            let _ = std::fs::remove_file(p);
        }
    }

    #[test]
    fn list_compile_reads_each_format_it_is_told() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../clickgate-core/tests/lists");
        let out = scratch("formats.bin", "");
        let o = out.to_str().unwrap();
        for (format, file, ranges) in [
            ("aws", "aws.json", 3),
            ("spamhaus", "drop.txt", 3),
            ("tor", "tor-exit-addresses.txt", 3),
            ("range-csv", "ip2asn.tsv", 4),
        ] {
            let f = fixtures.join(file);
            let words = [
                "list",
                "compile",
                f.to_str().unwrap(),
                o,
                "--format",
                format,
            ];
            assert!(matches!(run_words(&words), Ok(())), "{format}");
            let set = IpSet::from_bytes(std::fs::read(&out).unwrap()).unwrap();
            assert_eq!(set.len(), ranges, "{format}");
        }
        let asns = fixtures.join("asns.txt");
        let words = [
            "list",
            "compile",
            asns.to_str().unwrap(),
            o,
            "--format",
            "asn",
        ];
        assert!(matches!(run_words(&words), Ok(())));
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "[64496,64497,64498,65536]"
        );
        // Without --format a list is read as today: an AS list is not addresses.
        assert!(matches!(
            run_words(&["list", "compile", asns.to_str().unwrap(), o]),
            Err(Failure::Invalid)
        ));
        let _ = std::fs::remove_file(out);
    }

    #[test]
    fn a_datacenter_asns_file_is_read_as_as_numbers_not_addresses() {
        let dir = std::env::temp_dir().join(format!("clickgate-cli-asns-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("asns.txt"), "# hosting\nAS64496\n64497 ; resold\n").unwrap();
        std::fs::write(dir.join("drop.txt"), "; DROP\n192.0.2.0/24 ; SBL1\n").unwrap();
        let file = dir.join("config.json");
        let doc = |lists: &str| {
            format!(
                r#"{{"version": 1, "offers": [{{"id": "1", "landing_url": "https://x.example/"}}],
                    "lists": {{{lists}}}}}"#
            )
        };
        let r = resolve_list_files(
            &file,
            doc(
                r#""datacenter_asns": {"file": "asns.txt"}, "fraud_ips": {"file": "drop.txt", "format": "spamhaus"}"#,
            ),
        );
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let config = Config::compile_with_lists(&r.text, &r.stored).unwrap();
        assert!(config.lists.datacenter_asns.contains(&64496));
        assert!(config.lists.datacenter_asns.contains(&64497));
        assert_eq!(config.lists.fraud_ips.len(), 1);
        assert_eq!(r.lists.len(), 1, "only the address list gets its own key");

        let said = |lists: &str| -> Vec<String> {
            resolve_list_files(&file, doc(lists))
                .errors
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(
            said(r#""vpn_asns": {"file": "drop.txt", "format": "spamhaus"}"#),
            ["lists.vpn_asns.format: lists.vpn_asns holds AS numbers; this format holds address blocks"]
        );
        assert_eq!(
            said(r#""vpn_ips": {"file": "asns.txt", "format": "asn"}"#),
            ["lists.vpn_ips.format: lists.vpn_ips holds address blocks; this format holds AS numbers"]
        );
        assert_eq!(
            said(r#""vpn_asns": {"file": "drop.txt"}"#),
            ["lists.vpn_asns.file: drop.txt: line 2: `192.0.2.0/24` is not an AS number (16509 or AS16509)"]
        );
        assert!(
            said(r#""vpn_ips": {"file": "drop.txt", "format": "xml"}"#)[0]
                .starts_with("lists.vpn_ips.format: unknown list format `xml`")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_relay_given_as_apples_published_file_gets_its_own_key() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../clickgate-core/tests/lists");
        let file = fixtures.join("config.json");
        let doc = r#"{"version": 1, "offers": [{"id": "1", "landing_url": "https://x.example/"}],
            "lists": {"relays": {"icloud_private_relay": {"file": "icloud-egress.csv", "format": "icloud-relay"},
                                 "office": ["198.51.100.7"]}}}"#;
        let r = resolve_list_files(&file, doc.to_owned());
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.lists.len(), 1);
        let config = Config::compile_with_lists(&r.text, &r.stored).unwrap();
        assert_eq!(
            config.lists.relay("192.0.2.40".parse().ok()),
            Some("icloud_private_relay")
        );
        assert_eq!(
            config.lists.relay("198.51.100.7".parse().ok()),
            Some("office")
        );
        let bad = doc.replace("icloud-egress.csv", "drop.txt");
        let said: Vec<String> = resolve_list_files(&file, bad)
            .errors
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            said[0],
            "lists.relays.icloud_private_relay.file: drop.txt: line 1: `; Spamhaus DROP List 2026/12/01 - (c) 2026 The Spamhaus Project SLU` has 1 column, the format reads 4"
        );
    }
}
