//! What a User-Agent header says about the client: automation, and how old its OS and browser are.
//!
//! Bots are found with literal patterns (one Aho-Corasick automaton, one pass over the header) and
//! a few structural signs, never with a regex: compiling a large Unicode regex costs a fresh wasm
//! isolate more than its whole per-request CPU budget. The patterns are checked against a labelled
//! corpus of crawler and browser user agents in `tests/bot_corpus.rs`.

use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

/// Tokens that only automation puts in a User-Agent. Matched case-insensitively anywhere.
const BOT_TOKENS: &[&str] = &[
    // self-declared crawlers
    "bot",
    "crawl",
    "spider",
    "slurp",
    "scrap",
    "archiver",
    "indexer",
    "fetcher",
    "-fetch",
    "feedparser",
    "rss",
    "validator",
    "preview",
    "monitor",
    "checker",
    "scanner",
    "search",
    "analyzer",
    "proximic",
    "mediapartners",
    "google-",
    "google favicon",
    "yahoo! ",
    "yandex",
    "baidu",
    "bingpreview",
    "sogou",
    "exabot",
    "ia_archiver",
    "facebookexternalhit",
    "ahrefs",
    "semrush",
    "mj12",
    "dataprovider",
    "lighthouse",
    "pagespeed",
    "gtmetrix",
    "pingdom",
    "uptime",
    "statuscake",
    "site24x7",
    "newrelic",
    "datadog",
    "zgrab",
    "masscan",
    "nmap",
    "nikto",
    "sqlmap",
    "nuclei",
    "cloudflare-",
    "cf-network-",
    "amazon-route53",
    "amazoncloudfront",
    // headless and automated browsers
    "headless",
    "phantomjs",
    "slimerjs",
    "selenium",
    "webdriver",
    "puppeteer",
    "playwright",
    "electron/",
    "htmlunit",
    "cypress",
    // HTTP libraries and command-line clients
    "curl",
    "wget",
    "libwww",
    "lwp-",
    "python",
    "aiohttp",
    "httpx",
    "requests/",
    "urllib",
    "java/",
    "jakarta",
    "apache-httpclient",
    "go-http-client",
    "node-fetch",
    "undici",
    "axios",
    "got (",
    "superagent",
    "guzzle",
    "php/",
    "ruby",
    "perl",
    "libcurl",
    "winhttp",
    "httpclient",
    "http_request",
    "http-client",
    "httpunit",
    "restsharp",
    "postman",
    "insomnia",
    "powershell",
    "dart:io",
    "reqwest",
    "hyper/",
    "rust",
    "nutch",
    "heritrix",
    "httrack",
    "teleport",
    "offline explorer",
    "webcopier",
    "webzip",
    "mechanize",
    "scrapy",
    "colly",
    "ning/",
    "synapse",
    "indy library",
    "grequests",
    "cpp-httplib",
    "qt/",
    "wininet",
    // monitoring, auditing, SEO and feed services that announce themselves by product name
    "agent",
    "scan",
    "audit",
    "inspector",
    "optimizer",
    "resolver",
    "batch",
    "verify",
    "ptst/",
    "appinsights",
    "dareboost",
    "outbrain",
    "datanyze",
    "newsai",
    "attracta",
    "collapsify",
    "hardenize",
    "netcraft",
    "silktide",
    "sindup",
    "turingos",
    "webcapture",
    "dlc/",
    "feeder",
    "foregenix",
    "hotjar",
    "linktiger",
    "marketgoo",
    "miniature.io",
    "newsnow",
    "openvas",
    "playstore-google",
    "readable/",
    "retroliste",
    "securityheaders",
    "splash",
    "rigor",
    "testlocally",
    "abuse.",
    " ylt ",
    "upday",
    "watchtowr",
    "productfinder",
];

/// Device and app names that contain a bot token but are people's phones and browsers.
const NOT_BOTS: &[&str] = &["cubot", "robot_ios", "searchcraft", "searchapp"];

/// App network stacks that send tracking clicks for people (server-side clicks from app SDKs).
const APP_STACKS: &[&str] = &["dalvik/", "cfnetwork/", "darwin/", "okhttp/"];

/// Structural signs looked for in one pass; the order is the order of [`SIGN_*`] below.
const SIGNS: &[&str] = &[
    "http://",
    "https://",
    "www.",
    ".com",
    "compatible;",
    "msie",
    "trident/",
];
const SIGN_URLS: usize = 4;
const SIGN_COMPATIBLE: usize = 4;

/// Every pattern in one automaton, so a header is scanned once: the bot tokens, then their
/// exceptions, the structural signs and the link-preview agents, each group a range of pattern ids.
struct Matcher {
    all: AhoCorasick,
    exceptions_from: usize,
    signs_from: usize,
    previews_from: usize,
}

fn matcher() -> &'static Matcher {
    static M: OnceLock<Matcher> = OnceLock::new();
    M.get_or_init(|| {
        let patterns: Vec<&str> = BOT_TOKENS
            .iter()
            .chain(NOT_BOTS)
            .chain(SIGNS)
            .chain(&PREVIEW_AGENTS)
            .copied()
            .collect();
        Matcher {
            // A DFA: the fastest search, and small for these few hundred bytes of patterns. Standard
            // semantics, so overlapping search reports every pattern at every place.
            all: AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .kind(Some(AhoCorasickKind::DFA))
                .match_kind(MatchKind::Standard)
                .build(&patterns)
                .expect("the bot patterns are valid literals"),
            exceptions_from: BOT_TOKENS.len(),
            signs_from: BOT_TOKENS.len() + NOT_BOTS.len(),
            previews_from: BOT_TOKENS.len() + NOT_BOTS.len() + SIGNS.len(),
        }
    })
}

/// What one scan of a User-Agent found.
#[derive(Debug, Default, Clone, Copy)]
struct Scan {
    /// The leftmost bot token (the earliest-listed at that place) not inside an exception.
    token: Option<(usize, usize)>,
    signs: [bool; 7],
    preview: bool,
}

thread_local! {
    // One click asks about its User-Agent up to three times (preview, counts, bot filter): the
    // last header scanned and what it held, compared by content.
    static LAST: std::cell::RefCell<(String, Scan)> = std::cell::RefCell::new((String::new(), Scan::default()));
}

fn scan(ua: &str) -> Scan {
    if let Some(found) = LAST.with(|last| {
        let last = last.borrow();
        (last.0 == ua).then_some(last.1)
    }) {
        return found;
    }
    let found = scan_uncached(ua);
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        last.0.clear();
        last.0.push_str(ua);
        last.1 = found;
    });
    found
}

fn scan_uncached(ua: &str) -> Scan {
    let m = matcher();
    let mut found = Scan::default();
    let mut tokens: Vec<(usize, usize, usize)> = Vec::new();
    let mut exceptions: Vec<(usize, usize)> = Vec::new();
    for hit in m.all.find_overlapping_iter(ua) {
        let id = hit.pattern().as_usize();
        if id < m.exceptions_from {
            tokens.push((hit.start(), id, hit.end()));
        } else if id < m.signs_from {
            exceptions.push((hit.start(), hit.end()));
        } else if id < m.previews_from {
            found.signs[id - m.signs_from] = true;
        } else {
            found.preview = true;
        }
    }
    // A token inside an exception ("CUBOT" phones) does not count; another token still may.
    found.token = tokens
        .iter()
        .filter(|(start, _, end)| !exceptions.iter().any(|(s, e)| s <= start && end <= e))
        .min()
        .map(|&(start, id, _)| (start, id));
    found
}

/// Link-preview fetchers (chat apps and social sites unfurling a pasted link). They are sent the
/// redirect like anyone, but are not people clicking, so the decision log marks them.
const PREVIEW_AGENTS: [&str; 12] = [
    "slackbot-linkexpanding",
    "slack-imgproxy",
    "facebookexternalhit",
    "facebookcatalog",
    "twitterbot",
    "linkedinbot",
    "whatsapp/",
    "telegrambot",
    "discordbot",
    "skypeuripreview",
    "applebot",
    "pinterestbot",
];

pub fn is_link_preview(user_agent: Option<&str>) -> bool {
    user_agent.is_some_and(|ua| scan(ua).preview)
}

/// Why a User-Agent looks automated: the pattern or sign that matched, for the decision log.
pub fn bot_signature(user_agent: Option<&str>) -> Option<String> {
    let ua = user_agent.map(str::trim).unwrap_or("");
    if ua.is_empty() {
        return Some("(empty user agent)".into());
    }
    let found = scan(ua);
    if let Some((_, id)) = found.token {
        return Some(BOT_TOKENS[id].to_owned());
    }
    let seen = found.signs;
    // Browsers never put a URL or an e-mail address in their User-Agent; crawlers sign with one.
    if let Some(i) = (0..SIGN_URLS).find(|&i| seen[i]) {
        return Some(format!("contains {:?}", SIGNS[i]));
    }
    // An e-mail address; `@` before a digit is a version (`android@150.0`), not an address.
    if ua
        .as_bytes()
        .windows(2)
        .any(|w| w[0] == b'@' && w[1].is_ascii_alphabetic())
    {
        return Some("contains an e-mail address".into());
    }
    // `(compatible; ...)` is how crawlers dress as browsers; the only browser that says it is old
    // Internet Explorer.
    if seen[SIGN_COMPATIBLE] && !seen[SIGN_COMPATIBLE + 1] && !seen[SIGN_COMPATIBLE + 2] {
        return Some("compatible; without a browser".into());
    }
    // Every browser and in-app web view sends `Mozilla/5.0 (...)`; other clients are programs,
    // except the app network stacks that carry server-side clicks.
    if !ua.starts_with("Mozilla/") && !ua.starts_with("Opera/") {
        let lower = ua.to_ascii_lowercase();
        if !APP_STACKS.iter().any(|s| lower.contains(s)) {
            return Some("not a browser user agent".into());
        }
    }
    None
}

/// Operating system and browser with their major versions, as far as the User-Agent tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Platform {
    pub os: Option<(Os, u32)>,
    pub browser: Option<(Browser, u32)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    Android,
    Ios,
    Windows,
    MacOs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Browser {
    Chrome,
    Firefox,
    Safari,
    Edge,
}

impl Os {
    pub fn name(self) -> &'static str {
        match self {
            Os::Android => "android",
            Os::Ios => "ios",
            Os::Windows => "windows",
            Os::MacOs => "macos",
        }
    }
}

impl Browser {
    pub fn name(self) -> &'static str {
        match self {
            Browser::Chrome => "chrome",
            Browser::Firefox => "firefox",
            Browser::Safari => "safari",
            Browser::Edge => "edge",
        }
    }
}

/// The number that starts `text` (`"17_4 like"` → 17).
fn leading_number(text: &str) -> Option<u32> {
    let digits: &str = &text[..text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len())];
    digits.parse().ok()
}

fn version_after(ua: &str, marker: &str) -> Option<u32> {
    ua.find(marker)
        .and_then(|i| leading_number(&ua[i + marker.len()..]))
}

pub fn platform(user_agent: &str) -> Platform {
    let ua = user_agent;
    let os = if let Some(v) = version_after(ua, "Android ") {
        Some((Os::Android, v))
    } else if let Some(v) = version_after(ua, "iPhone OS ").or_else(|| version_after(ua, "CPU OS "))
    {
        Some((Os::Ios, v))
    } else if let Some(v) = version_after(ua, "Windows NT ") {
        // NT 10 is Windows 10 and 11; 6.3 is 8.1, 6.1 is 7: report the marketing major.
        let major = match v {
            10 => 10,
            6 => match ua[ua.find("Windows NT 6.").map_or(0, |i| i + 13)..]
                .chars()
                .next()
            {
                Some('3') => 8,
                Some('2') => 8,
                _ => 7,
            },
            v => v,
        };
        Some((Os::Windows, major))
    } else {
        version_after(ua, "Mac OS X ").map(|v| (Os::MacOs, v))
    };
    let browser = if let Some(v) = version_after(ua, "Edg/") {
        Some((Browser::Edge, v))
    } else if let Some(v) = version_after(ua, "Firefox/").or_else(|| version_after(ua, "FxiOS/")) {
        Some((Browser::Firefox, v))
    } else if let Some(v) = version_after(ua, "Chrome/").or_else(|| version_after(ua, "CriOS/")) {
        Some((Browser::Chrome, v))
    } else if ua.contains("Safari/") {
        version_after(ua, "Version/").map(|v| (Browser::Safari, v))
    } else {
        None
    };
    Platform { os, browser }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const IPHONE: &str =
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 \
                          (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
    const ANDROID: &str =
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) \
                           Chrome/124.0.0.0 Mobile Safari/537.36";
    const WINDOWS: &str =
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                           Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51";

    #[test]
    fn link_previews_are_recognised() {
        assert!(is_link_preview(Some(
            "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
        )));
        assert!(is_link_preview(Some("facebookexternalhit/1.1")));
        assert!(!is_link_preview(Some(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)"
        )));
        assert!(!is_link_preview(None));
    }

    #[test]
    fn browsers_are_not_bots() {
        for ua in [
            IPHONE,
            ANDROID,
            WINDOWS,
            "Mozilla/5.0 (Linux; Android 9; CUBOT X19) AppleWebKit/537.36",
        ] {
            assert_eq!(bot_signature(Some(ua)), None, "{ua}");
        }
    }

    #[test]
    fn automation_is_named() {
        let cases = [
            ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot"),
            ("curl/8.4.0", "curl"),
            ("python-requests/2.31.0", "python"),
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/120.0.0.0 Safari/537.36", "headless"),
            ("Go-http-client/2.0", "go-http-client"),
            ("SomeFetcher/1.0", "fetcher"),
            ("Mozilla/5.0 (compatible; Acme/1.0; +https://acme.example/about)", "contains \"https://\""),
            ("Zyborg/1.0", "not a browser user agent"),
        ];
        for (ua, want) in cases {
            assert_eq!(bot_signature(Some(ua)).as_deref(), Some(want), "{ua}");
        }
        assert_eq!(bot_signature(None).as_deref(), Some("(empty user agent)"));
        assert_eq!(
            bot_signature(Some("  ")).as_deref(),
            Some("(empty user agent)")
        );
    }

    #[test]
    fn ecosia_version_after_at_sign_is_not_an_email_address() {
        // The real-browser corpus caught this: `android@150.0.0.0` is a version, not an address.
        let ecosia = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) \
                      Chrome/150.0.0.0 Mobile Safari/537.36 (Ecosia android@150.0.0.0)";
        assert_eq!(bot_signature(Some(ecosia)), None);
        assert_eq!(
            bot_signature(Some("Mozilla/5.0 (X) ops@acme.example")).as_deref(),
            Some("contains an e-mail address")
        );
    }

    #[test]
    fn a_token_after_an_excused_one_still_counts() {
        assert_eq!(
            bot_signature(Some(
                "Mozilla/5.0 (Linux; Android 9; CUBOT X19) python-requests/2.31"
            ))
            .as_deref(),
            Some("python")
        );
    }

    #[test]
    fn old_internet_explorer_is_compatible_but_a_browser() {
        assert_eq!(
            bot_signature(Some(
                "Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; Trident/5.0)"
            )),
            None
        );
        assert_eq!(
            bot_signature(Some("Mozilla/5.0 (compatible; Zeppelin/1.0)")).as_deref(),
            Some("compatible; without a browser")
        );
    }

    #[test]
    fn app_network_stacks_are_not_bots() {
        assert_eq!(
            bot_signature(Some(
                "Dalvik/2.1.0 (Linux; U; Android 13; SM-A536B Build/TP1A)"
            )),
            None
        );
        assert_eq!(
            bot_signature(Some("MyApp/3.2 CFNetwork/1490.0.4 Darwin/23.2.0")),
            None
        );
    }

    #[test]
    fn platforms_and_versions() {
        assert_eq!(
            platform(IPHONE),
            Platform {
                os: Some((Os::Ios, 17)),
                browser: Some((Browser::Safari, 17))
            }
        );
        assert_eq!(
            platform(ANDROID),
            Platform {
                os: Some((Os::Android, 14)),
                browser: Some((Browser::Chrome, 124))
            }
        );
        assert_eq!(
            platform(WINDOWS),
            Platform {
                os: Some((Os::Windows, 10)),
                browser: Some((Browser::Edge, 124))
            }
        );
        let win7 = "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:52.0) Gecko/20100101 Firefox/52.0";
        assert_eq!(
            platform(win7),
            Platform {
                os: Some((Os::Windows, 7)),
                browser: Some((Browser::Firefox, 52))
            }
        );
        assert_eq!(platform("curl/8.0"), Platform::default());
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics(ua in "\\PC{0,200}") {
                let _ = bot_signature(Some(&ua));
                let _ = platform(&ua);
            }
        }
    }
}
