//! The README and the pages under `docs/` are read the way a reader follows them: every relative
//! link must reach a file, and every `#anchor` a heading of the page it names (as GitHub spells
//! heading anchors). The figures the pages give that are constants in the code must be the
//! constants' values, read from the crate, so a changed limit cannot leave its page behind:
//!
//! ```text
//! cargo test -p clickgate-core --test docs
//! ```
//!
//! Native only: the pages are read from disk.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// README.md and every `docs/*.md`, by path.
fn pages() -> BTreeMap<PathBuf, String> {
    let root = root();
    let mut paths = vec![root.join("README.md")];
    let docs = std::fs::read_dir(root.join("docs")).expect("docs/ is readable");
    for entry in docs {
        let path = entry.expect("a docs/ entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            paths.push(path);
        }
    }
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
            (normal(&p), text)
        })
        .collect()
}

/// `a/b/../c` as `a/c`, so that a link's target and a page's path compare equal.
fn normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The page's lines outside fenced code blocks, with their line numbers.
fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut lines = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            lines.push((n + 1, line));
        }
    }
    lines
}

/// The line without its code spans: a run of backticks opens one, the next run as long closes it.
fn without_code(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let run = rest[start..].len() - rest[start..].trim_start_matches('`').len();
        let fence = &rest[start..start + run];
        let after = &rest[start + run..];
        match after.find(fence) {
            Some(end) => rest = &after[end + run..],
            None => {
                out.push_str(fence);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// GitHub's anchor for a heading: its text as rendered (code marks and link targets gone),
/// lower-cased, punctuation dropped, spaces as hyphens.
fn slug(heading: &str) -> String {
    let mut text = String::new();
    let mut rest = heading;
    // `[text](target)` renders as `text`.
    while let Some(open) = rest.find("](") {
        let Some(close) = rest[open..].find(')') else {
            break;
        };
        text.push_str(&rest[..open]);
        rest = &rest[open + close + 1..];
    }
    text.push_str(rest);
    text.trim()
        .chars()
        .flat_map(char::to_lowercase)
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

/// Every heading's anchor on the page; a repeated one gets `-1`, `-2`, … as on GitHub.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut all = BTreeSet::new();
    for (_, line) in prose(text) {
        let hashes = line.len() - line.trim_start_matches('#').len();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(&line[hashes..]);
        let n = seen.entry(base.clone()).or_insert(0);
        all.insert(if *n == 0 { base } else { format!("{base}-{n}") });
        *n += 1;
    }
    all
}

/// Every link target in the page's prose, `[x](target)`, with its line.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in prose(text) {
        let line = without_code(line);
        let mut rest = line.as_str();
        while let Some(open) = rest.find("](") {
            let after = &rest[open + 2..];
            let Some(close) = after.find(')') else {
                break;
            };
            found.push((n, after[..close].to_owned()));
            rest = &after[close..];
        }
    }
    found
}

/// What is wrong with the relative links of `pages`, one line each; how many links were checked.
/// A target is a page of `pages` or a file on disk; an anchor must be a heading of its page.
fn broken(pages: &BTreeMap<PathBuf, String>) -> (Vec<String>, usize) {
    let mut problems = Vec::new();
    let mut checked = 0;
    for (page, text) in pages {
        let dir = page.parent().expect("a page is in a folder");
        for (line, target) in links(text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, anchor) = match target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (target.as_str(), None),
            };
            let file = if path.is_empty() {
                page.clone()
            } else {
                normal(&dir.join(path))
            };
            let shown = page.strip_prefix(normal(&root())).unwrap_or(page);
            let at = format!("{}:{line}: `{target}`", shown.display());
            let text = match pages.get(&file) {
                Some(text) => Some(text.clone()),
                None if file.exists() => std::fs::read_to_string(&file).ok(),
                None => {
                    problems.push(format!("{at}: no such file"));
                    continue;
                }
            };
            if let Some(anchor) = anchor {
                match text {
                    Some(text) if anchors(&text).contains(anchor) => {}
                    Some(_) => problems.push(format!("{at}: no heading with that anchor")),
                    None => problems.push(format!("{at}: an anchor into a file that is not text")),
                }
            }
        }
    }
    (problems, checked)
}

/// Whitespace runs as one space, so a figure may wrap where the page wraps it.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `4096` as `4,096`, the way the pages write large numbers.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// A `[vars]` entry of wrangler.toml, `NAME = "value"`.
fn wrangler_var(name: &str) -> String {
    let toml = std::fs::read_to_string(root().join("wrangler.toml")).expect("wrangler.toml");
    toml.lines()
        .find_map(|line| {
            let (key, value) = line.split_once('=')?;
            (key.trim() == name).then(|| value.trim().trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| panic!("wrangler.toml sets no {name}"))
}

/// A whole-number constant of the Worker's sources (`src/`, a crate the core cannot use), as
/// `const NAME: u64 = 5_000;` writes it, under any visibility.
fn worker_const(file: &str, name: &str) -> u64 {
    let path = root().join("src").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let start = format!("const {name}: u64 = ");
    text.lines()
        .find_map(|line| {
            let value = line
                .trim_start()
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub ")
                .strip_prefix(&start)?;
            value.trim_end_matches(';').replace('_', "").parse().ok()
        })
        .unwrap_or_else(|| panic!("src/{file} has no `{start}<number>;`"))
}

/// The figures each page states, as the code holds them: (page, the words that must be on it).
fn stated_figures() -> Vec<(&'static str, String)> {
    use clickgate_core::click::{
        MAX_HEADERS_TOTAL, MAX_HEADER_VALUE_LEN, MAX_ID_LEN, MAX_URL_LEN, MAX_VALUE_LEN,
    };
    use clickgate_core::config::postbacks::MIN_SECRET_BYTES;
    use clickgate_core::config::{MAX_DOCUMENT_BYTES, SCHEMA_VERSION};
    use clickgate_core::flood::Thresholds;
    use clickgate_core::network::click_ids::{
        AFTER_REDIRECT_BATCH_MS, LOST_AFTER_MS, MAX_BATCH, REMEMBERED, STORE_AFTER_MS,
    };
    use clickgate_core::network::home::SHARED_OBJECTS;
    use clickgate_core::network::local::{FlushPolicy, MAX_SENDS};
    use clickgate_core::report::{
        MAX_COUNTRIES, MAX_EXPLAINED_PER_HOUR, MAX_EXPLAINED_PER_MINUTE, MAX_NETWORKS_NAMED,
        MAX_ROWS_PER_HOUR, MAX_SUB_IDS, OTHER,
    };
    use clickgate_core::signing::{REPLAY_SHARDS, SCHEME};
    use clickgate_core::stored::LIST_KEY_PREFIX;
    use clickgate_core::stored::RETAIN_HOURS;
    use clickgate_core::stored::{EXPLAIN_RETAIN_DAYS, REPORT_RETAIN_DAYS};
    use clickgate_core::{admin, conversion, token};
    const KIB: usize = 1024;
    const MIB: usize = 1024 * 1024;
    const DAY_MS: u64 = 86_400_000;
    let flush = FlushPolicy::default();
    let flood = Thresholds::default();
    let refresh = wrangler_var("CONFIG_REFRESH_SECONDS");
    assert_eq!(
        refresh,
        worker_const("config.rs", "DEFAULT_REFRESH_SECONDS").to_string(),
        "wrangler.toml's CONFIG_REFRESH_SECONDS is the Worker's own default, which the pages give"
    );
    let deadline = |name| worker_const("objects.rs", name) / 1000;
    let flush_ms = wrangler_var("COUNTS_FLUSH_MS");
    assert_eq!(
        flush_ms,
        flush.interval_ms.to_string(),
        "wrangler.toml's COUNTS_FLUSH_MS is the default the pages give"
    );
    vec![
        ("README.md", format!("URL > {} KiB", MAX_URL_LEN / KIB)),
        (
            "docs/links.md",
            format!("1 to {MAX_ID_LEN} of `A-Z a-z 0-9 . _ -`"),
        ),
        (
            "docs/links.md",
            format!("at most {MAX_VALUE_LEN} bytes each"),
        ),
        (
            "docs/links.md",
            format!("URL over {} bytes", thousands(MAX_URL_LEN as u64)),
        ),
        (
            "docs/links.md",
            format!(
                "over {} bytes, or those together, names and values, over {} KiB",
                thousands(MAX_HEADER_VALUE_LEN as u64),
                MAX_HEADERS_TOTAL / KIB
            ),
        ),
        (
            "docs/links.md",
            format!(
                "a `POST /postback` body over {} KiB, or an `/admin/` body over {} MiB",
                conversion::MAX_BODY_BYTES / KIB,
                admin::MAX_BODY_BYTES / MIB
            ),
        ),
        (
            "docs/links.md",
            format!("an {}-byte random nonce", token::NONCE_LEN),
        ),
        (
            "docs/links.md",
            format!("id over {} characters is refused", token::MAX_TOKEN_LEN),
        ),
        (
            "docs/config.md",
            format!(
                "The document may be at most {} MiB.",
                MAX_DOCUMENT_BYTES / MIB
            ),
        ),
        (
            "docs/config.md",
            format!("| `version` | `{SCHEMA_VERSION}` |"),
        ),
        (
            "docs/config.md",
            format!("`postback_secret` (at least {MIN_SECRET_BYTES} bytes)"),
        ),
        (
            "docs/config.md",
            format!("(`{LIST_KEY_PREFIX}<24 hex digits>`)"),
        ),
        (
            "docs/config.md",
            format!("at most {RETAIN_HOURS} hours are kept"),
        ),
        (
            "docs/config.md",
            format!(
                "(a `[vars]` entry, default {flush_ms} ms), at {} keys or at {} clicks",
                flush.max_keys, flush.max_clicks
            ),
        ),
        (
            "docs/config.md",
            format!("backing off to {} s", flush.max_backoff_ms / 1000),
        ),
        (
            "docs/config.md",
            format!(
                "when the object has not answered an isolate for {} s, its counted filters",
                flush.stale_ms / 1000
            ),
        ),
        (
            "docs/config.md",
            format!(
                "**{SHARED_OBJECTS} shared objects**, `unlisted:0` to `unlisted:{}`",
                SHARED_OBJECTS - 1
            ),
        ),
        (
            "docs/operations.md",
            format!(
                "`CONFIG_REFRESH_SECONDS` (a `[vars]` entry in `wrangler.toml`, default {refresh})"
            ),
        ),
        (
            "docs/operations.md",
            format!(
                "`TOKEN_SECRET` must be at least {} bytes",
                token::MIN_SECRET_LEN
            ),
        ),
        (
            "docs/operations.md",
            format!(
                "| a click id's replay check (before or after the redirect) | {} s from the click's arrival |",
                LOST_AFTER_MS / 1000
            ),
        ),
        (
            "docs/floods.md",
            format!("a batch sent {MAX_SENDS} times without an answer"),
        ),
        (
            "docs/config.md",
            format!("backing off to 15 s, and sent at most {MAX_SENDS} times"),
        ),
        (
            "docs/operations.md",
            format!("| a postback's duplicate lookup | {} s |", deadline("CONVERSION_MS")),
        ),
        (
            "docs/operations.md",
            format!("| `/admin/report`: the directory's network list | {} s |", deadline("ADMIN_MS")),
        ),
        (
            "docs/operations.md",
            format!(
                "| `/admin/report`: each object's hours (a shared object's for all its networks) | {} s |",
                deadline("ADMIN_MS")
            ),
        ),
        (
            "docs/operations.md",
            format!("| `/admin/explain`, block, unblock | {} s |", deadline("ADMIN_MS")),
        ),
        (
            "docs/operations.md",
            format!("| a counts batch (after the response) | {} s |", deadline("BATCH_MS")),
        ),
        (
            "docs/operations.md",
            format!("| an object listing itself in the directory | {} s |", deadline("LIST_MS")),
        ),
        (
            "docs/signing.md",
            format!("The string signed is `{SCHEME}`"),
        ),
        (
            "docs/signing.md",
            format!("`replay:{{network}}:{{0..{}}}`", REPLAY_SHARDS - 1),
        ),
        (
            "docs/signing.md",
            format!("up to {MAX_BATCH} in one request"),
        ),
        (
            "docs/signing.md",
            format!(
                "(up to {}, until their links expire)",
                thousands(REMEMBERED as u64)
            ),
        ),
        (
            "docs/signing.md",
            format!(
                "once its oldest question has waited {AFTER_REDIRECT_BATCH_MS} ms, when it holds \
                 {MAX_BATCH}"
            ),
        ),
        (
            "docs/signing.md",
            format!("stores them all in one write {STORE_AFTER_MS} ms after the first"),
        ),
        (
            "docs/signing.md",
            format!("within the {STORE_AFTER_MS} ms before its instance was lost"),
        ),
        (
            "docs/signing.md",
            format!("no id answered more than {STORE_AFTER_MS} ms before a crash passes again"),
        ),
        (
            "docs/signing.md",
            format!(
                "A click that gets no answer within {} s of its arrival, however long it queued, is judged",
                LOST_AFTER_MS / 1000
            ),
        ),
        ("docs/floods.md", format!("| `tolerance` | {} |", flood.tolerance)),
        (
            "docs/floods.md",
            format!("| `burst_tolerance` | {} |", flood.burst_tolerance),
        ),
        ("docs/floods.md", format!("| `tail` | {:e} |", flood.tail)),
        ("docs/floods.md", format!("| `dispersion` | {} |", flood.dispersion)),
        ("docs/floods.md", format!("| `min_clicks` | {} |", flood.min_clicks)),
        ("docs/floods.md", format!("| `min_flagged` | {} |", flood.min_flagged)),
        ("docs/floods.md", format!("| `floor` | {} |", flood.floor)),
        (
            "docs/floods.md",
            format!("| `flagged_share` | {} |", flood.flagged_share),
        ),
        (
            "docs/floods.md",
            format!("| `baseline_days` | {} |", flood.baseline_days),
        ),
        (
            "docs/floods.md",
            format!(
                "a moving average over **{} weeks** (weight `1/min({}, times seen + 1)`), kept within {} to {}",
                clickgate_core::flood::WEEKDAY_WEEKS,
                clickgate_core::flood::WEEKDAY_WEEKS,
                clickgate_core::flood::WEEKDAY_LEVELS.start(),
                clickgate_core::flood::WEEKDAY_LEVELS.end()
            ),
        ),
        (
            "docs/conversions.md",
            format!(
                "(remembered by the network's object for {} days after the click",
                conversion::DUPLICATE_WINDOW_MS / DAY_MS
            ),
        ),
        (
            "docs/conversions.md",
            format!("\"message\":\"{}\"", conversion::INVALID_MESSAGE),
        ),
        (
            "docs/report.md",
            format!(
                "report hours are kept **{REPORT_RETAIN_DAYS} days** (a range may not be longer); \
                 at most {} advertiser × offer rows per hour (later pairs are summed into the \
                 offer `{OTHER}`), and beside them at most {MAX_SUB_IDS} sub IDs and \
                 {MAX_COUNTRIES} countries per hour (later ones are summed into the sub ID or \
                 country `{OTHER}`); kept decisions for explain **{EXPLAIN_RETAIN_DAYS} days**, at \
                 most {} per hour, and each isolate keeps at most {MAX_EXPLAINED_PER_MINUTE} per \
                 network and minute",
                thousands(MAX_ROWS_PER_HOUR as u64),
                thousands(u64::from(MAX_EXPLAINED_PER_HOUR))
            ),
        ),
        (
            "docs/report.md",
            format!(
                "A report names at most **{} networks**, those with the most clicks",
                thousands(MAX_NETWORKS_NAMED as u64)
            ),
        ),
        (
            "docs/report.md",
            format!(
                "So neither ever holds more than {} networks' rows",
                thousands(2 * MAX_NETWORKS_NAMED as u64)
            ),
        ),
        ("docs/config.md", people_networks()),
        (
            "docs/report.md",
            format!(
                "a network's hour names the first {MAX_SUB_IDS} (and the rest are its `{OTHER}`)"
            ),
        ),
        (
            "docs/report.md",
            format!("it names at most **{MAX_SUB_IDS} sub IDs per network**, and its totals stay exact"),
        ),
    ]
}

/// How docs/config.md counts data/people-asns.txt: its carriers and home ISPs (the lines not
/// marked `relay`) and their countries.
fn people_networks() -> String {
    let path = root().join("data/people-asns.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let places: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().nth(2))
        .filter(|&w| w != "relay")
        .collect();
    let countries: BTreeSet<&str> = places.iter().copied().collect();
    format!(
        "`data/people-asns.txt` lists {} mobile carriers and home ISPs of {} countries",
        places.len(),
        countries.len()
    )
}

/// The row of the ranges table that starts with `field`, as `lo to hi` with the page's thousands
/// commas and minus sign read as plain digits.
fn range_row(config: &str, field: &str) -> String {
    let start = format!("| {field} | ");
    let line = config
        .lines()
        .find(|l| l.starts_with(&start))
        .unwrap_or_else(|| panic!("docs/config.md has no ranges row for {field}"));
    line[start.len()..]
        .trim_end_matches(" |")
        .replace(',', "")
        .replace('−', "-")
}

#[test]
fn every_relative_link_reaches_a_file_and_a_heading() {
    let pages = pages();
    let (problems, checked) = broken(&pages);
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
    // The pages link to each other: a parser that found nothing would pass the check above.
    assert!(checked >= 30, "only {checked} relative links found");
}

#[test]
fn the_readme_links_every_docs_page() {
    let pages = pages();
    let root = normal(&root());
    let readme = &pages[&root.join("README.md")];
    let linked: BTreeSet<PathBuf> = links(readme)
        .into_iter()
        .map(|(_, target)| normal(&root.join(target.split('#').next().unwrap_or_default())))
        .collect();
    let docs: Vec<&PathBuf> = pages
        .keys()
        .filter(|p| p.parent() == Some(root.join("docs").as_path()))
        .collect();
    assert!(docs.len() >= 9, "docs/ holds {} pages", docs.len());
    for page in docs {
        assert!(linked.contains(page), "README.md does not link {page:?}");
    }
}

#[test]
fn the_docs_state_the_figures_the_code_holds() {
    let pages = pages();
    let root = normal(&root());
    for (page, words) in stated_figures() {
        let text = flat(&pages[&root.join(page)]);
        assert!(text.contains(&words), "{page} lacks: {words}");
    }
}

#[test]
fn each_filter_row_gives_the_filter_s_default_points() {
    use clickgate_core::config::rules::preset;
    use clickgate_core::filters::FilterKind;
    let config = &pages()[&normal(&root()).join("docs/config.md")];
    // The presets hold every filter at its default points.
    let filters = preset("mobile_cpi").expect("the mobile_cpi preset");
    assert_eq!(filters.len(), 14, "every filter is in the preset");
    for filter in filters {
        let name = filter.kind.name();
        let row = config
            .lines()
            .find(|l| {
                l.starts_with(&format!("| `{name}` |"))
                    || l.starts_with(&format!("| `{name}`, "))
                    || l.contains(&format!(", `{name}` |"))
            })
            .unwrap_or_else(|| panic!("docs/config.md has no filter row for {name}"));
        let points = match filter.kind {
            FilterKind::Bot(_) => format!("| {} × the grade's share |", filter.points),
            _ => format!("| {} |", filter.points),
        };
        assert!(
            row.ends_with(&points),
            "{name}: {row} does not end with {points}"
        );
    }
}

#[test]
fn the_old_os_browser_row_gives_the_default_minimum_versions() {
    use clickgate_core::filters::old_os_browser::MinVersions;
    let m = MinVersions::default();
    let defaults = format!(
        "`min`: `{{\"android\": {}, \"ios\": {}, \"windows\": {}, \"macos\": {}, \"chrome\": {}, \
         \"firefox\": {}, \"safari\": {}, \"edge\": {}}}` (defaults shown)",
        m.android, m.ios, m.windows, m.macos, m.chrome, m.firefox, m.safari, m.edge
    );
    let config = &pages()[&normal(&root()).join("docs/config.md")];
    assert!(
        config.contains(&defaults),
        "docs/config.md lacks: {defaults}"
    );
}

#[test]
fn the_ranges_table_gives_the_ranges_the_config_enforces() {
    use clickgate_core::config::RANGES;
    use clickgate_core::flood;
    let config = &pages()[&normal(&root()).join("docs/config.md")];
    let r = &RANGES;
    let rows = [
        (
            "`rules[].priority`",
            format!("{} to {}", r.priority.start(), r.priority.end()),
        ),
        (
            "a filter's `points`",
            format!("{} to {}", r.points.start(), r.points.end()),
        ),
        (
            "`old_os_browser` `min.*`",
            format!("{} to {}", r.major_version.start(), r.major_version.end()),
        ),
        (
            "`duplicate_ip.max`, `duplicate_device_id.max`, `sub_id_validity.max`",
            format!("{} to {}", r.count.start(), r.count.end()),
        ),
        (
            "`duplicate_ip.window_hours`, `duplicate_device_id.window_hours`",
            format!("{} to {}", r.window_hours.start(), r.window_hours.end()),
        ),
        (
            "`min_click_to_conversion.seconds`",
            format!(
                "{} to {} (a year)",
                r.min_click_to_conversion.start(),
                r.min_click_to_conversion.end()
            ),
        ),
        (
            "`max_click_to_conversion.seconds`",
            format!(
                "{} to {}",
                r.max_click_to_conversion.start(),
                r.max_click_to_conversion.end()
            ),
        ),
        (
            "`networks[].flood.per_minute`, `per_hour`, `per_day`, `floor`",
            format!("{} to {}", r.flood_clicks.start(), r.flood_clicks.end()),
        ),
        (
            "`networks[].flood.min_clicks`, `min_flagged`",
            format!("{} to {}", r.flood_clicks.start(), r.flood_clicks.end()),
        ),
        (
            "`networks[].flood.burst_tolerance`",
            format!(
                "{} to {}",
                flood::BURST_TOLERANCE.start(),
                flood::BURST_TOLERANCE.end()
            ),
        ),
        (
            "`networks[].flood.tail`",
            format!("{} to {}", flood::TAIL.start(), flood::TAIL.end()),
        ),
        (
            "`networks[].flood.dispersion`",
            format!(
                "{} to {}",
                flood::DISPERSION.start(),
                flood::DISPERSION.end()
            ),
        ),
        (
            "`networks[].flood.baseline_days`",
            format!("{} to {}", r.baseline_days.start(), r.baseline_days.end()),
        ),
        (
            "`networks[].flood.tolerance`",
            format!("{} to {}", r.tolerance.start(), r.tolerance.end()),
        ),
        (
            "`networks[].flood.flagged_share`, `networks[].signing.breaker.invalid_share`",
            format!("{} to {}", r.share.start(), r.share.end()),
        ),
        (
            "`networks[].signing.max_age_seconds`",
            format!(
                "{} to {} (30 days)",
                r.max_age_seconds.start(),
                r.max_age_seconds.end()
            ),
        ),
        (
            "`networks[].signing.keys[].replay_objects`",
            format!("{} to {}", r.replay_objects.start(), r.replay_objects.end()),
        ),
        (
            "`networks[].signing.breaker.window_seconds`",
            format!(
                "{} to {}",
                r.breaker_window_seconds.start(),
                r.breaker_window_seconds.end()
            ),
        ),
        (
            "`networks[].signing.breaker.min_clicks`",
            format!(
                "{} to {}",
                r.breaker_min_clicks.start(),
                r.breaker_min_clicks.end()
            ),
        ),
        (
            "`advertisers[].max_approved_per_click`",
            format!(
                "{} to {}",
                r.approved_per_click.start(),
                r.approved_per_click.end()
            ),
        ),
        (
            "`alerts.window_seconds`",
            format!(
                "{} to {} (a day)",
                r.alert_window_seconds.start(),
                r.alert_window_seconds.end()
            ),
        ),
        (
            "`alerts.blocked_share_jump`",
            format!("{} to {}", r.share.start(), r.share.end()),
        ),
        (
            "`alerts.blocked_share_min_clicks`",
            format!(
                "{} to {}",
                r.alert_min_clicks.start(),
                r.alert_min_clicks.end()
            ),
        ),
    ];
    for (field, range) in rows {
        assert_eq!(range_row(config, field), range, "{field}");
    }
}

#[test]
fn a_planted_broken_link_or_anchor_is_reported() {
    // Pages that exist only here, under a folder that does not: every target must be one of them.
    let root = normal(&root().join("no-such-folder"));
    let pages = BTreeMap::from([
        (
            root.join("README.md"),
            "# Top\n\n[ok](docs/a.md#the-block-contract-error-1021) [ok](#top) \
             [gone](docs/none.md) [bad anchor](docs/a.md#nowhere) [bad here](#bottom)\n\
             `[in code](docs/none.md)`\n```\n[fenced](docs/none.md)\n```\n"
                .to_owned(),
        ),
        (
            root.join("docs/a.md"),
            "# A\n\n## The block contract (error 1021)\n\n[up](../README.md#top)\n".to_owned(),
        ),
    ]);
    let (problems, checked) = broken(&pages);
    assert_eq!(checked, 6, "{problems:?}");
    let what: Vec<&str> = problems
        .iter()
        .map(|p| p.rsplit(": ").next().unwrap_or_default())
        .collect();
    assert_eq!(
        what,
        [
            "no such file",
            "no heading with that anchor",
            "no heading with that anchor"
        ],
        "{problems:?}"
    );
    assert!(problems[0].contains("`docs/none.md`"), "{problems:?}");
}

#[test]
fn anchors_follow_github_and_number_repeated_headings() {
    let page = "# The `bot` filter\n## The block contract (error 1021)\n## Rules\n### Rules\n\
                ## The client's address\n## [Linked](x.md) heading\n```\n# not a heading\n```\n";
    let expected: BTreeSet<String> = [
        "the-bot-filter",
        "the-block-contract-error-1021",
        "rules",
        "rules-1",
        "the-clients-address",
        "linked-heading",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(anchors(page), expected);
}

/// A merge left `<<<<<<<`/`>>>>>>>` lines in the README's layout table once, and nothing caught it:
/// no page (nor any text file the project tracks) may hold a conflict marker.
#[test]
fn no_page_or_source_holds_a_merge_conflict_marker() {
    let out = std::process::Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root())
        .output()
        .expect("git ls-files");
    assert!(out.status.success());
    let mut checked = 0;
    let mut found = Vec::new();
    for name in out.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        let Ok(text) = std::fs::read_to_string(root().join(&name)) else {
            continue; // binary, or removed from the work tree
        };
        checked += 1;
        for (i, line) in text.lines().enumerate() {
            if line.starts_with("<<<<<<< ") || line.starts_with(">>>>>>> ") {
                found.push(format!("{name}:{}", i + 1));
            }
        }
    }
    assert!(checked > 100, "only {checked} text files read");
    assert!(found.is_empty(), "conflict markers at {found:?}");
}
