//! What a User-Agent header says about the client, read once per click: its product tokens
//! (`name/version`) and comments (`( … ; … )`), whether it is automation and how sure that is,
//! whether it is a known people's client (an in-app browser, a regional browser, a feature phone),
//! whether it is a link-preview fetcher, and how old its OS and browser are.
//!
//! Words are found with literal patterns (one Aho-Corasick automaton, one pass over the header)
//! and kept only where they stand on word boundaries, never with a regex: compiling a large Unicode
//! regex costs a fresh wasm isolate more than its whole per-request CPU budget. The patterns are
//! checked against the labelled corpora of `tests/bot_corpus.rs`.

use std::cell::OnceCell;
use std::ops::{Deref, Range};
use std::sync::OnceLock;

/// How sure a sign of automation is. Only `Certain` reaches a `high` probability on its own; the
/// bot filter's points are scaled by [`Grade::percent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Grade {
    /// No User-Agent, a program's form with no known device or app, an engine older than its OS.
    Weak,
    /// A URL or an e-mail address in the header, `compatible;` without a browser.
    Likely,
    /// A self-declared crawler, HTTP library, headless browser, monitor, AI agent or an injection
    /// payload.
    Certain,
}

impl Grade {
    pub fn name(self) -> &'static str {
        match self {
            Grade::Weak => "weak",
            Grade::Likely => "likely",
            Grade::Certain => "certain",
        }
    }

    /// The share of the bot filter's points a sign of this grade adds: with the default 100
    /// points, 30 (`low`), 60 (`medium`) and 100 (`high`).
    pub fn percent(self) -> u32 {
        match self {
            Grade::Weak => 30,
            Grade::Likely => 60,
            Grade::Certain => 100,
        }
    }
}

/// What kind of automation a sign points to; each is its own reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bot,
    /// A browsing agent acting for a person (ChatGPT-User, Devin, Manus, ...).
    AiAgent,
}

impl Kind {
    pub fn code(self) -> &'static str {
        match self {
            Kind::Bot => "bot",
            Kind::AiAgent => "ai_agent",
        }
    }
}

/// One sign of automation: its grade, its kind and the word of the header that showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    pub grade: Grade,
    pub kind: Kind,
    pub token: String,
}

impl Signal {
    fn new(grade: Grade, kind: Kind, token: impl Into<String>) -> Signal {
        Signal {
            grade,
            kind,
            token: token.into(),
        }
    }

    /// A click that sent no User-Agent at all.
    pub fn no_user_agent() -> Signal {
        Signal::new(Grade::Weak, Kind::Bot, "(no user agent)")
    }

    /// `certain: Googlebot`: what the decision log shows as the reason's `matched`.
    pub fn describe(&self) -> String {
        format!("{}: {}", self.grade.name(), self.token)
    }
}

/// A part of the header: a product token (`name/version`, or a bare word) or a comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// The name's and the version's byte ranges (the version empty without `/`).
    Product(u16, u16, u16),
    /// The bytes between `(` and `)` (or `[` and `]`, as Facebook's in-app browser writes them).
    Comment(u16, u16),
}

/// A User-Agent header with what it says, read once when the click arrives and passed to every
/// filter, the preview check and the counts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserAgent {
    raw: String,
    parts: Vec<Part>,
    reading: Reading,
    marks: Marks,
    /// Read on first use: only the old-OS/browser filter and a weak sign need it.
    platform: OnceCell<Platform>,
}

/// What the header says about the client.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reading {
    /// The strongest sign of automation, if any.
    pub signal: Option<Signal>,
    /// A people's client recognised by name (`instagram`, `yandex`, `feature_phone`, ...).
    pub client: Option<&'static str>,
    /// A link-preview fetcher unfurling a pasted link: not a person clicking.
    pub preview: bool,
}

impl UserAgent {
    pub fn parse(raw: impl Into<String>) -> UserAgent {
        let mut raw: String = raw.into();
        // The ranges are u16; a header that long is cut (the edge refuses larger headers anyway).
        if raw.len() > usize::from(u16::MAX) {
            let mut end = usize::from(u16::MAX);
            while !raw.is_char_boundary(end) {
                end -= 1;
            }
            raw.truncate(end);
        }
        let parts = split(&raw);
        let platform = OnceCell::new();
        let mut marks = Marks::default();
        let reading = read(&raw, &parts, &mut marks, &platform);
        UserAgent {
            raw,
            parts,
            reading,
            marks,
            platform,
        }
    }

    /// The OS and browser with their major versions, as far as the header tells.
    pub fn platform(&self) -> Platform {
        *self
            .platform
            .get_or_init(|| platform_at(&self.raw, &self.marks))
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn reading(&self) -> &Reading {
        &self.reading
    }

    /// The product tokens, as `(name, version)`; the version is empty when the token has none.
    pub fn products(&self) -> impl Iterator<Item = (&str, &str)> {
        self.parts.iter().filter_map(|p| match *p {
            Part::Product(start, slash, end) => Some((
                &self.raw[usize::from(start)..usize::from(slash)],
                self.raw
                    .get(usize::from(slash) + 1..usize::from(end))
                    .unwrap_or(""),
            )),
            Part::Comment(..) => None,
        })
    }

    /// The comments, each split at `;` into its trimmed items.
    pub fn comments(&self) -> impl Iterator<Item = Vec<&str>> {
        self.parts.iter().filter_map(|p| match *p {
            Part::Comment(start, end) => Some(
                self.raw[usize::from(start)..usize::from(end)]
                    .split(';')
                    .map(str::trim)
                    .collect(),
            ),
            Part::Product(..) => None,
        })
    }
}

impl Deref for UserAgent {
    type Target = str;
    fn deref(&self) -> &str {
        &self.raw
    }
}

impl From<&str> for UserAgent {
    fn from(raw: &str) -> UserAgent {
        UserAgent::parse(raw)
    }
}

impl From<String> for UserAgent {
    fn from(raw: String) -> UserAgent {
        UserAgent::parse(raw)
    }
}

/// The sign the bot filter judges for a click's User-Agent, whether or not it sent one.
pub fn signal_of(user_agent: Option<&UserAgent>) -> Option<Signal> {
    match user_agent {
        Some(ua) => ua.reading.signal.clone(),
        None => Some(Signal::no_user_agent()),
    }
}

pub fn is_link_preview(user_agent: Option<&UserAgent>) -> bool {
    user_agent.is_some_and(|ua| ua.reading.preview)
}

/// Splits a header into product tokens and comments. Never fails: whatever is not a comment is a
/// run of product tokens separated by whitespace; an unclosed comment runs to the end.
fn split(ua: &str) -> Vec<Part> {
    let b = ua.as_bytes();
    let mut parts = Vec::with_capacity(8);
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            open @ (b'(' | b'[') => {
                let close = if open == b'(' { b')' } else { b']' };
                let mut depth = 1;
                let mut j = i + 1;
                while j < b.len() && depth > 0 {
                    if b[j] == open {
                        depth += 1;
                    } else if b[j] == close {
                        depth -= 1;
                    }
                    j += 1;
                }
                let end = if depth == 0 { j - 1 } else { j };
                parts.push(Part::Comment((i + 1) as u16, end as u16));
                i = j;
            }
            c if c.is_ascii_whitespace() || c == b';' || c == b',' => i += 1,
            _ => {
                let start = i;
                let mut slash = None;
                while i < b.len()
                    && !matches!(b[i], b'(' | b'[' | b';' | b',')
                    && !b[i].is_ascii_whitespace()
                {
                    if b[i] == b'/' && slash.is_none() {
                        slash = Some(i);
                    }
                    i += 1;
                }
                let slash = slash.unwrap_or(i);
                parts.push(Part::Product(start as u16, slash as u16, i as u16));
            }
        }
    }
    parts
}

// ---- the patterns ----
//
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
    "|cypress/#", "|ptst/", "|appinsights", "|dareboost", "|outbrain", "|datanyze", "|newsai",
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

/// Browsing agents acting for a person: `Certain`, reason `ai_agent`.
#[rustfmt::skip]
const AI_AGENTS: &[&str] = &[
    "|chatgpt-user", "|chatgpt agent", "|perplexity-user", "|claude-user", "|mistralai-user",
    "|devin|", "|manus|", "|manus-user", "|operator-user", "|gemini-deep-research",
    "|google-notebooklm", "|meta-externalagent", "|kagi-fetcher", "|duckassist", "|googleagent",
    "|amzn-user",
];

/// Injection and path-traversal payloads scanners put in the header: `Certain`, reason `bot`.
#[rustfmt::skip]
const PAYLOADS: &[&str] = &[
    "${", "<script", "' or ", "\" or ", " or 1=1", "union select", "union all select", "../",
    "..\\", "/etc/passwd", "<?php", "() {", "javascript:", "onerror=", "onload=", "sleep(",
    "waitfor delay", "xp_cmdshell", "%00", "<img", "<svg", "alert(", "/bin/sh", "cmd.exe", "eval(",
];

/// Link-preview fetchers: sent the redirect, marked `"preview": true`, never counted.
#[rustfmt::skip]
const PREVIEWS: &[&str] = &[
    "slackbot", "slack-imgproxy", "facebookexternalhit", "facebookcatalog", "|facebot",
    "twitterbot", "linkedinbot", "^whatsapp|", "telegrambot", "discordbot", "skypeuripreview",
    "applebot", "pinterestbot", "|embedly", "redditbot", "|vkshare", "|iframely",
    "google-pagerenderer", "|mastodon/#", "|viber|", "snap url preview", "microsoftpreview",
    "|cardyb", "kakaotalk-scrap", "line-poker", "|skype-url-preview", "|tumblr/#", "|bitlybot",
    "|yahoo link preview", "|googleother-image", "|googlemessages/#",
];

/// People's clients by name: in-app browsers, regional browsers, desktop apps, text browsers and
/// feature phones. Recognising one outweighs a `Weak` or `Likely` sign, never a `Certain` one.
#[rustfmt::skip]
const CLIENTS: &[(&str, &str)] = &[
    ("fban/", "facebook"), ("fbav/", "facebook"), ("fb_iab", "facebook"), ("|fbios", "facebook"),
    ("|messenger|", "facebook"), ("|instagram|", "instagram"), ("|snapchat", "snapchat"),
    ("|musical_ly", "tiktok"), ("|tiktok", "tiktok"), ("bytedancewebview", "tiktok"),
    ("|bytelocale", "tiktok"), ("|trill_", "tiktok"), ("|line/#", "line"),
    ("micromessenger", "wechat"), ("|wechat", "wechat"), ("|whatsapp|", "whatsapp"),
    ("|pinterest|", "pinterest"), ("|twitter for", "x"), ("|twitterandroid", "x"),
    ("|twitter/#", "x"), ("|naver|", "naver"), ("|naver(", "naver"), ("|whale/#", "naver"),
    ("|kakaotalk", "kakaotalk"), ("|kakaostory", "kakaotalk"), ("|telegram|", "telegram"),
    ("|linkedinapp", "linkedin"), ("|gsa/#", "google_app"), ("yabrowser", "yandex"),
    ("yasearchbrowser", "yandex"), ("|yaapp_", "yandex"), ("|yandexsearch", "yandex"),
    ("|yandex|", "yandex"), ("ucbrowser", "uc"), ("|ucweb", "uc"), ("|ubrowser/#", "uc"),
    ("|juc |", "uc"), ("samsungbrowser", "samsung"), ("baiduboxapp", "baidu"),
    ("baidubrowser", "baidu"), ("|bidubrowser", "baidu"), ("|baiduhd", "baidu"),
    ("sogoumobilebrowser", "sogou"), ("|sogousearch", "sogou"), ("|metasr|", "sogou"),
    ("mqqbrowser", "qq"), ("qqbrowser", "qq"), ("|qq/#", "qq"), ("huaweibrowser", "huawei"),
    ("|petalbrowser", "huawei"), ("|petalsearch", "huawei"), ("opera mini", "opera_mini"),
    ("|opios/#", "opera_mini"), ("opera mobi", "opera_mini"), ("|silk/#", "silk"),
    ("|vivaldi/#", "vivaldi"), ("|duckduckgo/#", "duckduckgo"), ("|ddg/#", "duckduckgo"),
    ("|ddg_android", "duckduckgo"), ("|ddg-android", "duckduckgo"),
    ("|electron/#", "electron"), ("|lynx/#", "lynx"), ("|links (", "text_browser"),
    ("|elinks", "text_browser"), ("|w3m/#", "text_browser"), ("profile/midp", "feature_phone"),
    ("|midp-", "feature_phone"), ("|cldc-", "feature_phone"), ("|j2me", "feature_phone"),
    ("|kaios", "feature_phone"), ("|series40", "feature_phone"), ("|series60", "feature_phone"),
    ("|symbianos", "feature_phone"), ("|up.browser", "feature_phone"), ("|foma|", "feature_phone"),
    ("|netfront", "feature_phone"), ("|obigo", "feature_phone"), ("|docomo/#", "feature_phone"),
    ("|kddi-", "feature_phone"), ("|softbank/#", "feature_phone"), ("|willcom", "feature_phone"),
    ("|ddipocket", "feature_phone"), ("|untrusted/#", "feature_phone"), ("|nokia", "feature_phone"),
    ("qihoobrowser", "360"), ("|qhbrowser", "360"), ("miuibrowser", "miui"),
    ("vivobrowser", "vivo"), ("heytapbrowser", "heytap"), ("|quark/#", "quark"),
    ("coc_coc_browser", "coccoc"), ("alipayclient", "alipay"), ("__weibo__", "weibo"),
    ("|rakuten", "rakuten"), ("|klarna", "klarna"),
    ("|slack/#", "electron"), ("|discord/#", "electron"),
    ("|googleapp/#", "google_app"), ("|teleca", "feature_phone"), ("|openwave", "feature_phone"),
    ("|polaris|", "feature_phone"), ("|jasmine/#", "feature_phone"), ("|brew|", "feature_phone"),
    ("|microsoft office/#", "microsoft_office"), ("|microsoft outlook", "microsoft_office"),
    ("|ms-office", "microsoft_office"), ("|msoffice", "microsoft_office"),
];

/// A device's own client without the browser form: an app's network stack, a TV, a console, a
/// watch. People's clicks (server-side clicks of app SDKs among them), no sign.
#[rustfmt::skip]
const DEVICES: &[&str] = &[
    "|darwin/", "|cfnetwork/", "|dalvik/", "|okhttp/", "|symbian", "|blackberry", "|tizen",
    "|hbbtv", "|roku", "|smarttv", "|smart-tv", "|playstation", "|nintendo", "|xbox", "|watchos",
    "|tvos", "|webos", "|itunes", "|server-bag", "|appletv", "|crkey", "|bravia", "|vizio",
    "|viera", "|watch3|", "|watch4|", "|watch5|", "|watch6|", "|watch7|", "|atc/#",
    // Set-top boxes and signage players, media players, a browser's own fetch stack.
    "|kreatv", "|brightsign", "|antgalio", "|espial", "|streaming player", "|applecoremedia",
    "|stagefright", "|exoplayerlib", "|mozacfetch",
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

/// Browsers that write `compatible;` and name themselves in it.
#[rustfmt::skip]
const COMPATIBLE_BROWSERS: &[&str] = &[
    "msie", "trident/", "konqueror", "iemobile", "|ibrowse", "|abrowse", "|netpositive",
    "|webpositive", "|offbyone", "|aweb|", "|fresco", "|ncbrowser", "|oregano", "|infinet",
];

/// Browser words that make a header the browser form even without `Mozilla/`.
#[rustfmt::skip]
const BROWSERS: &[&str] = &[
    "|opera", "|gecko/#", "applewebkit/", "|presto/#", "|netsurf", "|dillo/#", "|icab",
    "|midori", "|xombrero", "|uzbl", "|mosaic", "browser|", "|flock/#", "|sleipnir",
    "|amigavoyager", "|quicktime", "|contiki", "|opr/#", "|amaya/#",
    "|hotjava/#", "|xiino/#", "|palmscape/#", "|blazer/#", "|netscape", "|seamonkey",
    "|jig browser",
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
enum Class {
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

const LEFT: u8 = 1;
const RIGHT: u8 = 2;
const PRODUCT: u8 = 4;
const VERSION: u8 = 8;
const START: u8 = 16;
const APP_WORD: u8 = 32;

#[derive(Debug, Clone, Copy)]
struct Pattern {
    class: Class,
    flags: u8,
    len: u16,
}

/// Every pattern in one automaton, so a header is scanned once: an Aho-Corasick DFA, built here
/// from the patterns' trie. Its transitions are one flat table the scan indexes inline: with the
/// size-optimised build, a generic automaton's lookup stays a call per byte, which cost more than
/// the lookup itself.
struct Matcher {
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
    fn each_hit(&self, haystack: &str, mut each: impl FnMut(Pattern, usize, usize)) {
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

fn matcher() -> &'static Matcher {
    static M: OnceLock<Matcher> = OnceLock::new();
    M.get_or_init(|| {
        let (texts, patterns) = pattern_set();
        Matcher::new(&texts, patterns)
    })
}

/// Every pattern's text, and its class and placement.
fn pattern_set() -> (Vec<&'static str>, Vec<Pattern>) {
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

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// Whether a match at `start..end` stands where its flags say.
fn placed(ua: &str, parts: &[Part], start: usize, end: usize, flags: u8) -> bool {
    let b = ua.as_bytes();
    if flags & START != 0 && start != 0 {
        return false;
    }
    if flags & LEFT != 0 && start > 0 && is_word(b[start - 1]) && is_word(b[start]) {
        return false;
    }
    if flags & RIGHT != 0 && end < b.len() && is_word(b[end]) && is_word(b[end - 1]) {
        // A plural `s` that ends the word still ends it (`spiders`, `monitors`).
        let plural =
            b[end].eq_ignore_ascii_case(&b's') && b.get(end + 1).is_none_or(|&c| !is_word(c));
        if !plural {
            return false;
        }
    }
    if flags & VERSION != 0
        && !(b.get(end) == Some(&b'/') && b.get(end + 1).is_some_and(u8::is_ascii_digit))
    {
        return false;
    }
    if flags & PRODUCT != 0 {
        // The run of name bytes around the match; a product name is followed by `/`, or is a bare
        // word outside the comments.
        let delimiter = |c: u8| {
            c.is_ascii_whitespace() || matches!(c, b'(' | b')' | b'[' | b']' | b';' | b',' | b'/')
        };
        let run_end = b[end..]
            .iter()
            .position(|&c| delimiter(c))
            .map_or(b.len(), |p| end + p);
        if b.get(run_end) != Some(&b'/') && in_comment(parts, start) {
            return false;
        }
    }
    true
}

fn in_comment(parts: &[Part], at: usize) -> bool {
    parts
        .iter()
        .any(|p| matches!(*p, Part::Comment(s, e) if usize::from(s) <= at && at < usize::from(e)))
}

/// Whether a match stands in the device-model item of an Android comment (`Linux; Android 7.0;
/// M bot 54`, `Android 13; Spider 8 Build/...`): phone makers name models with any word. A crawler
/// that names itself there writes a version (`Googlebot/2.1`), a URL or `compatible`.
fn in_model_name(ua: &str, parts: &[Part], start: usize, end: usize) -> bool {
    let Some((from, to)) = parts.iter().find_map(|p| match *p {
        Part::Comment(s, e) if usize::from(s) <= start && end <= usize::from(e) => {
            Some((usize::from(s), usize::from(e)))
        }
        _ => None,
    }) else {
        return false;
    };
    let comment = &ua[from..to];
    let at = start - from;
    let item_start = comment[..at].rfind(';').map_or(0, |i| i + 1);
    let item_end = comment[at..].find(';').map_or(comment.len(), |i| at + i);
    let item = &comment[item_start..item_end];
    let android_before = comment[..item_start].split(';').any(|i| {
        let i = i.trim_start().as_bytes();
        i.len() >= 7
            && i[..7].eq_ignore_ascii_case(b"android")
            && i.get(7).is_none_or(|&c| c == b' ' || c.is_ascii_digit())
    });
    if !android_before {
        return false;
    }
    // The word's own version: `Name/2.1` after the rest of the word.
    let b = ua.as_bytes();
    let word_end = b[end..]
        .iter()
        .position(|&c| !(is_word(c) || c == b'_' || c == b'-'))
        .map_or(b.len(), |p| end + p);
    let versioned =
        b.get(word_end) == Some(&b'/') && b.get(word_end + 1).is_some_and(u8::is_ascii_digit);
    let lower = |needle: &str| {
        item.as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
    };
    // `+` signs an address (`+http://`, `+name[at]host`); a model's own `+` stands after a
    // number (`53+`).
    let signed = item
        .as_bytes()
        .windows(2)
        .any(|w| w[0] == b'+' && w[1].is_ascii_alphabetic());
    !versioned && !lower("compatible") && !lower("http") && !signed
}

/// The word of the header around a match, for the reason (`Googlebot` for a `bot` match).
fn word_around(ua: &str, start: usize, end: usize) -> &str {
    let b = ua.as_bytes();
    let part = |c: u8| is_word(c) || matches!(c, b'-' | b'_' | b'.' | b'!');
    let from = b[..start]
        .iter()
        .rposition(|&c| !part(c))
        .map_or(0, |p| p + 1);
    let to = b[end..]
        .iter()
        .position(|&c| !part(c))
        .map_or(b.len(), |p| end + p);
    let word = ua.get(from..to).unwrap_or("");
    if word.is_empty() {
        ua.get(start..end).unwrap_or("")
    } else {
        word
    }
}

/// The first automation match of a kind: its start and end.
type Hit = Option<(usize, usize)>;

/// `platform` is filled when the outdated-engine sign needed it, so the filters don't read it again.
fn read(ua: &str, parts: &[Part], marks: &mut Marks, platform: &OnceCell<Platform>) -> Reading {
    if ua.trim().is_empty() {
        return Reading {
            signal: Some(Signal::no_user_agent()),
            ..Reading::default()
        };
    }
    let m = matcher();
    let (mut ai, mut payload): (Hit, Hit) = (None, None);
    let mut exceptions: Vec<Range<usize>> = Vec::new();
    let mut candidates: Vec<(usize, usize, u8)> = Vec::new();
    let mut client = None;
    let (mut preview, mut device, mut browser, mut url) = (false, false, false, None);
    let (mut system, mut domain): (bool, Hit) = (false, None);
    let (mut compatible, mut named_browser, mut web_view) = (false, false, false);
    let mut mozilla = false;
    let mut engine_compatible: Hit = None;
    m.each_hit(ua, |p, start, end| {
        if !placed(ua, parts, start, end, p.flags) {
            return;
        }
        match p.class {
            Class::Crawler | Class::Library => candidates.push((start, end, p.flags)),
            Class::Ai => {
                ai.get_or_insert((start, end));
            }
            Class::Payload => {
                payload.get_or_insert((start, end));
            }
            Class::Preview => preview = true,
            Class::Client(name) => {
                client.get_or_insert(name);
            }
            Class::Device => device = true,
            Class::System => system = true,
            Class::Domain => {
                // A name with a letter before the dot (not a version's `1.7610.EU`), and no
                // further label after it (`.com.samsung`).
                let b = ua.as_bytes();
                let label = b[..start]
                    .iter()
                    .rposition(|&c| !(is_word(c) || c == b'-'))
                    .map_or(0, |p| p + 1);
                let named = b[label..start].iter().any(u8::is_ascii_alphabetic);
                // Nor a word going on (`.rus.`: no plural here).
                let last = !b
                    .get(end)
                    .is_some_and(|&c| is_word(c) || matches!(c, b'.' | b'_' | b'-'));
                if named && last {
                    domain.get_or_insert((start, end));
                }
            }
            Class::Browser => browser = true,
            Class::Mozilla => mozilla = true,
            Class::CompatibleBrowser => {
                named_browser = true;
                browser = true;
            }
            Class::Exception => exceptions.push(start..end),
            Class::Url => {
                url.get_or_insert((start, end));
            }
            Class::Compatible => compatible = true,
            Class::WebView => web_view = true,
            Class::EngineCompatible => {
                engine_compatible.get_or_insert((start, end));
            }
            Class::Mark(i) => {
                if marks.0[i] == u16::MAX {
                    marks.0[i] = start as u16;
                }
            }
        }
    });
    // The leftmost word not inside an exception (`CUBOT` phones), not a phone's model name, not an
    // app's name in its own web view; another one still counts. A product named from its first
    // letter (`|catchpoint`) is no maker's word for a model: it counts in the model item too.
    let bot: Hit = candidates
        .into_iter()
        .filter(|&(start, end, flags)| {
            let excepted = exceptions.iter().any(|e| e.start <= start && end <= e.end);
            let app_name = web_view && flags & APP_WORD != 0;
            let model = flags & LEFT == 0 && in_model_name(ua, parts, start, end);
            !(excepted || app_name || model)
        })
        .map(|(start, end, _)| (start, end))
        .min();
    let certain = |kind: Kind, (start, end): (usize, usize)| {
        Some(Signal::new(
            Grade::Certain,
            kind,
            word_around(ua, start, end),
        ))
    };
    // A URL signed the crawlers' way (`+http://`), or a domain standing as a product of its own
    // (`Criticalcss.com/2.0`, outside the comments where device builds live), is a self-declared
    // fetcher, whatever else the header claims.
    let signed = url.filter(|&(start, _)| ua[..start].trim_end().ends_with('+'));
    let domain_product = domain.filter(|&(start, _)| !in_comment(parts, start));
    let signal = if let Some(hit) = payload {
        Some(Signal::new(
            Grade::Certain,
            Kind::Bot,
            format!("payload {}", ua.get(hit.0..hit.1).unwrap_or("")),
        ))
    } else if let Some(hit) = ai {
        certain(Kind::AiAgent, hit)
    } else if let Some(hit) = bot {
        certain(Kind::Bot, hit)
    } else if let Some((start, end)) = signed.or(domain_product) {
        Some(Signal::new(
            Grade::Certain,
            Kind::Bot,
            format!("address {}", word_around(ua, start, end)),
        ))
    } else if let Some((start, end)) = engine_compatible {
        Some(Signal::new(
            Grade::Certain,
            Kind::Bot,
            ua.get(start..end).unwrap_or("").trim_end_matches(';'),
        ))
    } else if client.is_some() || preview {
        None
    } else {
        // `Mozilla/` makes the browser form only with something a browser writes after it: a
        // platform comment, an OS, a device. Alone, or followed by a program's name
        // (`Mozilla/5.0 Acme/1.0`), it is a program's dress.
        let commented = parts.iter().any(|p| matches!(p, Part::Comment(..)));
        let form = Form {
            // A TV or set-top box writes `compatible;` with its own words.
            compatible: compatible && !named_browser && !device,
            dressed: crawler_dress(ua, parts),
            browser: browser || (mozilla && (commented || system || device)),
            unplaced: mozilla && commented && !browser && !system && !device,
            device,
            system,
        };
        weaker_sign(ua, url.or(domain), form, || {
            *platform.get_or_init(|| platform_at(ua, marks))
        })
    };
    Reading {
        signal,
        client,
        preview,
    }
}

/// Whether the header is only `Mozilla/x` and one comment naming a product with its version
/// (`Mozilla/5.0 (compatible; Acme/1.0)`).
fn crawler_dress(ua: &str, parts: &[Part]) -> bool {
    let [Part::Product(start, slash, _), Part::Comment(from, to)] = *parts else {
        return false;
    };
    let (start, slash, from, to) = (
        usize::from(start),
        usize::from(slash),
        usize::from(from),
        usize::from(to),
    );
    let b = ua.as_bytes();
    ua[start..slash].eq_ignore_ascii_case("mozilla")
        && (from..to.saturating_sub(1))
            .any(|i| b[i] == b'/' && b[i + 1].is_ascii_digit() && i > from && is_word(b[i - 1]))
}

/// What a header's words say of its form.
struct Form {
    /// `compatible;` without a browser or a device that writes it.
    compatible: bool,
    /// Nothing but `Mozilla/5.0 (compatible; Name/1.0; …)`.
    dressed: bool,
    /// A browser's words (`Mozilla/` with a comment, `Opera`, `Gecko/`, `...Browser`).
    browser: bool,
    /// `Mozilla/` and a comment, with no engine, browser, OS or device named anywhere.
    unplaced: bool,
    /// A device's own client (an app's network stack, a TV, a console).
    device: bool,
    /// An OS named.
    system: bool,
}

/// The signs of the header's form, for a header with no certain word and no known client.
fn weaker_sign(
    ua: &str,
    url: Hit,
    form: Form,
    platform: impl FnOnce() -> Platform,
) -> Option<Signal> {
    let Form {
        compatible,
        dressed,
        browser,
        unplaced,
        device,
        system,
    } = form;
    // A program: neither the browser form, nor a device, an OS or a known app: a self-declared
    // tool (`Zapier`, `NodePing`, `findlinks/2.0`), as certain as a crawler's name.
    let program = !browser && !device && !system;
    // Browsers never put a URL or an e-mail address in their User-Agent; crawlers sign with one.
    // Signed the crawlers' way (`+http://`), or in a program's or a `compatible;` header, it is
    // certain; in a browser's form it is likely (a desktop app may name its site).
    let signed = |grade_if_plain: Grade, plus: bool| {
        if plus || program || compatible {
            Grade::Certain
        } else {
            grade_if_plain
        }
    };
    if let Some((start, end)) = url {
        let plus = ua[..start].trim_end().ends_with('+');
        return Some(Signal::new(
            signed(Grade::Likely, plus),
            Kind::Bot,
            format!("address {}", word_around(ua, start, end)),
        ));
    }
    // An e-mail address; `@` before a digit is a version (`android@150.0`), and a locale's
    // `@calendar=` or `@numbers=` is no address.
    let b = ua.as_bytes();
    if let Some(at) = (1..b.len()).find(|&i| {
        b[i] == b'@' && is_word(b[i - 1]) && b.get(i + 1).is_some_and(u8::is_ascii_alphabetic) && {
            let rest = &ua[i + 1..];
            let host = &rest[..rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
                .unwrap_or(rest.len())];
            host.contains('.') && !host.ends_with('.')
        }
    }) {
        return Some(Signal::new(
            signed(Grade::Likely, false),
            Kind::Bot,
            format!("e-mail {}", word_around(ua, at, at + 1)),
        ));
    }
    // Nothing but `Mozilla/5.0 (compatible; Name/1.0; …)` is the dress crawlers have worn since
    // the 1990s; the browsers that wrote it named themselves (MSIE, NetPositive, IBrowse, ...).
    if compatible {
        return Some(Signal::new(
            if dressed {
                Grade::Certain
            } else {
                Grade::Likely
            },
            Kind::Bot,
            "compatible; without a browser",
        ));
    }
    // Every browser writes its platform in the comment after `Mozilla/`; an old handset or a
    // desktop app may leave it out too, so this is likely, not certain.
    if unplaced {
        return Some(Signal::new(
            Grade::Likely,
            Kind::Bot,
            "Mozilla/ without a platform",
        ));
    }
    // Every browser and in-app web view has the browser form; a device's own client has its
    // device's words. A header with neither is a program; one that names only an OS is an
    // unknown app or a program on that OS.
    if !browser && !device {
        let mut words = ua.trim().split(['/', ' ', '(', ';']);
        let mut first = words.next().unwrap_or("");
        if first.eq_ignore_ascii_case("mozilla") {
            // The program's own name, past the `Mozilla/5.0` it wears.
            first = words
                .find(|w| w.starts_with(|c: char| c.is_ascii_alphabetic()))
                .unwrap_or(first);
        }
        let grade = if program { Grade::Certain } else { Grade::Weak };
        return Some(Signal::new(
            grade,
            Kind::Bot,
            format!("not a browser: {first}"),
        ));
    }
    // An engine years older than the OS it claims: no such browser ships; scripts pick a stale
    // string and an OS separately.
    let platform = platform();
    if let (Some((os, os_v)), Some((browser, v))) = (platform.os, platform.browser) {
        let stale = match (os, browser) {
            (Os::Windows, Browser::Chrome) => os_v >= 10 && v < 40,
            (Os::Windows, Browser::Firefox) => os_v >= 10 && v < 30,
            (Os::Android, Browser::Chrome) => os_v >= 10 && v < 60,
            (Os::MacOs, Browser::Chrome) => os_v >= 11 && v < 80,
            _ => false,
        };
        if stale {
            return Some(Signal::new(
                Grade::Weak,
                Kind::Bot,
                format!(
                    "outdated engine {} {v} on {} {os_v}",
                    browser.name(),
                    os.name()
                ),
            ));
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

/// The markers of the OS and browser versions, found in the same pass as the patterns (ASCII
/// case-insensitive, as they are).
const MARKERS: [&str; 12] = [
    "android ",
    "iphone os ",
    "cpu os ",
    "windows nt ",
    "mac os x ",
    "edg/",
    "firefox/",
    "fxios/",
    "chrome/",
    "crios/",
    "safari/",
    "version/",
];
const ANDROID_OS: usize = 0;
const IPHONE_OS: usize = 1;
const CPU_OS: usize = 2;
const WINDOWS_NT: usize = 3;
const MAC_OS_X: usize = 4;
const EDG: usize = 5;
const FIREFOX: usize = 6;
const FXIOS: usize = 7;
const CHROME: usize = 8;
const CRIOS: usize = 9;
const SAFARI: usize = 10;
const VERSION_TOKEN: usize = 11;

/// Where each marker first stands in the header (`u16::MAX`: nowhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Marks([u16; MARKERS.len()]);

impl Default for Marks {
    fn default() -> Marks {
        Marks([u16::MAX; MARKERS.len()])
    }
}

impl Marks {
    fn at(&self, marker: usize) -> Option<usize> {
        let at = self.0[marker];
        (at != u16::MAX).then_some(usize::from(at))
    }

    /// The number right after the marker's first occurrence (`Android 14` → 14).
    fn version(&self, ua: &str, marker: usize) -> Option<u32> {
        self.at(marker)
            .and_then(|i| ua.get(i + MARKERS[marker].len()..))
            .and_then(leading_number)
    }
}

fn platform_at(ua: &str, marks: &Marks) -> Platform {
    let os = if let Some(v) = marks.version(ua, ANDROID_OS) {
        Some((Os::Android, v))
    } else if let Some(v) = marks
        .version(ua, IPHONE_OS)
        .or_else(|| marks.version(ua, CPU_OS))
    {
        Some((Os::Ios, v))
    } else if let Some(v) = marks.version(ua, WINDOWS_NT) {
        // NT 10 is Windows 10 and 11; 6.3 is 8.1, 6.1 is 7: report the marketing major.
        let major = match v {
            10 => 10,
            6 => {
                let minor = marks
                    .at(WINDOWS_NT)
                    .and_then(|i| ua.as_bytes().get(i + MARKERS[WINDOWS_NT].len() + 2));
                match minor {
                    Some(b'3' | b'2') => 8,
                    _ => 7,
                }
            }
            v => v,
        };
        Some((Os::Windows, major))
    } else {
        marks.version(ua, MAC_OS_X).map(|v| (Os::MacOs, v))
    };
    let browser = if let Some(v) = marks.version(ua, EDG) {
        Some((Browser::Edge, v))
    } else if let Some(v) = marks
        .version(ua, FIREFOX)
        .or_else(|| marks.version(ua, FXIOS))
    {
        Some((Browser::Firefox, v))
    } else if let Some(v) = marks
        .version(ua, CHROME)
        .or_else(|| marks.version(ua, CRIOS))
    {
        Some((Browser::Chrome, v))
    } else if marks.at(SAFARI).is_some() {
        marks
            .version(ua, VERSION_TOKEN)
            .map(|v| (Browser::Safari, v))
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

    /// The OS and browser of a header, read whole.
    fn platform(user_agent: &str) -> Platform {
        UserAgent::parse(user_agent).platform()
    }

    const IPHONE: &str =
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 \
                          (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
    const ANDROID: &str =
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) \
                           Chrome/124.0.0.0 Mobile Safari/537.36";
    const WINDOWS: &str =
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                           Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51";

    fn signal(ua: &str) -> Option<(Grade, Kind, String)> {
        UserAgent::parse(ua)
            .reading()
            .signal
            .clone()
            .map(|s| (s.grade, s.kind, s.token))
    }

    fn grade(ua: &str) -> Option<Grade> {
        signal(ua).map(|s| s.0)
    }

    #[test]
    fn the_header_is_split_into_products_and_comments() {
        let ua = UserAgent::parse(ANDROID);
        let products: Vec<_> = ua.products().collect();
        assert_eq!(
            products,
            [
                ("Mozilla", "5.0"),
                ("AppleWebKit", "537.36"),
                ("Chrome", "124.0.0.0"),
                ("Mobile", ""),
                ("Safari", "537.36")
            ]
        );
        let comments: Vec<_> = ua.comments().collect();
        assert_eq!(
            comments,
            [
                vec!["Linux", "Android 14", "Pixel 8"],
                vec!["KHTML, like Gecko"]
            ]
        );
        // Facebook's bracketed form is a comment too; an unclosed one runs to the end.
        let fb = UserAgent::parse("Mozilla/5.0 (iPhone) [FBAN/FBIOS;FBAV/450.0.0.38.108]");
        assert_eq!(
            fb.comments().nth(1),
            Some(vec!["FBAN/FBIOS", "FBAV/450.0.0.38.108"])
        );
        let open = UserAgent::parse("Foo/1 (a; b");
        assert_eq!(open.comments().next(), Some(vec!["a", "b"]));
        assert_eq!(&*open, "Foo/1 (a; b");
    }

    #[test]
    fn browsers_are_not_bots() {
        for ua in [
            IPHONE,
            ANDROID,
            WINDOWS,
            "Mozilla/5.0 (Linux; Android 9; CUBOT X19) AppleWebKit/537.36",
            "Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; Trident/5.0)",
            "Mozilla/5.0 (compatible; Konqueror/4.5; Linux) KHTML/4.5.4 (like Gecko)",
            // An i-mode handset's browser names only its model and its network.
            "Mozilla/4.08 (P906i;FOMA;c300;TB)",
        ] {
            assert_eq!(signal(ua), None, "{ua}");
        }
    }

    #[test]
    fn words_count_only_on_their_boundaries() {
        // Each of these once matched an automation word inside a longer word or a device name.
        for ua in [
            // `ruby`: HTC's phone in a comment is not the language's HTTP client.
            "Mozilla/5.0 (Linux; U; Android 2.3.4; en-us; HTC Ruby Build/GRJ22) AppleWebKit/533.1 (KHTML, like Gecko) Version/4.0 Mobile Safari/533.1",
            // `perl`: a phone model.
            "Mozilla/5.0 (Linux; Android 8.1.0; Perla) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/99.0.4844.73 Mobile Safari/537.36",
            // `rust` inside UC Browser's `UNTRUSTED/1.0`.
            "Nokia5130c-2/2.0 (07.97) Profile/MIDP-2.1 Configuration/CLDC-1.1 UNTRUSTED/1.0 UCWEB/8.9",
            // `rss` inside a model name and an Android build id.
            "Mozilla/5.0 (Linux; Android 11; ANDERSSON TBX-1011) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/110.0.0.0 Safari/537.36",
            "Mozilla/5.0 (Linux; Android 12; moto g(30) Build/S1RSS32.38-20-7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
            // `bot` inside a company's name in an IE token.
            "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.1; Banca Caboto; .NET CLR 2.0.50727)",
            // `agent` inside a TV app and an Android web view library.
            "Mozilla/5.0 (Linux; Android 9; MagentaTV One) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/104.0.0.0 Safari/537.36",
            // `.com` inside a build string.
            "Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014.com.samsung) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
        ] {
            assert_eq!(signal(ua), None, "{ua}");
        }
    }

    #[test]
    fn certain_signs_name_the_word_that_showed_them() {
        let cases = [
            ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Googlebot"),
            ("curl/8.4.0", "curl"),
            ("python-requests/2.31.0", "python-requests"),
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/120.0.0.0 Safari/537.36", "HeadlessChrome"),
            ("Go-http-client/2.0", "Go-http-client"),
            ("Java/1.8.0_151", "Java"),
            ("libwww-perl/6.72", "libwww-perl"),
            ("Ruby", "Ruby"),
            ("SomeFetcher/1.0", "SomeFetcher"),
            ("Mozilla/5.0 (compatible; SeznamBot/4.0; +https://o-seznam.cz/)", "SeznamBot"),
            ("Mozilla/5.0 (Linux; Android 9; CUBOT X19) python-requests/2.31", "python-requests"),
        ];
        for (ua, token) in cases {
            assert_eq!(
                signal(ua),
                Some((Grade::Certain, Kind::Bot, token.to_owned())),
                "{ua}"
            );
        }
    }

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
    fn ai_agents_are_their_own_kind() {
        for (ua, token) in [
            ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ChatGPT-User/1.0; +https://openai.com/bot)", "ChatGPT-User"),
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Devin/1.0", "Devin"),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/132.0.0.0 Safari/537.36 Manus/1.0", "Manus"),
            ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Perplexity-User/1.0; +https://perplexity.ai/perplexity-user)", "Perplexity-User"),
        ] {
            assert_eq!(signal(ua), Some((Grade::Certain, Kind::AiAgent, token.to_owned())), "{ua}");
        }
        // An AI company's crawler is a crawler.
        assert_eq!(signal("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.1; +https://openai.com/gptbot)").map(|s| s.1), Some(Kind::Bot));
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
    fn signs_of_the_form_are_graded() {
        let cases = [
            ("", Grade::Weak),
            ("   ", Grade::Weak),
            // A program: no browser, device, OS or known app named.
            ("Zyborg/1.0", Grade::Certain),
            ("findlinks/2.0 (+http://wortschatz.uni-leipzig.de/findlinks/)", Grade::Certain),
            // An app nobody knows, on an OS it names.
            ("SomeApp/2.0 (Linux; Android 13; SM-A536B)", Grade::Weak),
            // A URL signed the crawlers' way, or in a `compatible;` header.
            ("Mozilla/5.0 (compatible; Acme/1.0; +https://acme.example/about)", Grade::Certain),
            ("Mozilla/5.0 (compatible; Genieo/1.0 http://www.genieo.com/webfilter.html)", Grade::Certain),
            // A domain as a product of its own.
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/79.0.3945.0 Safari/537.36 Criticalcss.com/2.0.0", Grade::Certain),
            // A URL or an address in a browser's form.
            ("Mozilla/5.0 (Windows NT 6.1; WOW64; https://top.mail.ru/passremind) AppleWebKit/537.22 (KHTML, like Gecko)", Grade::Likely),
            ("Mozilla/5.0 (X11; Linux) Acme ops@acme.example", Grade::Likely),
            // Nothing but Mozilla and `compatible; Name/version`: the crawlers' dress.
            ("Mozilla/5.0 (compatible; Zeppelin/1.0)", Grade::Certain),
            ("Mozilla/5.0 (compatible; Zeppelin/2.1; research)", Grade::Certain),
            // Without its version, or with more after it, only likely.
            ("Mozilla/5.0 (compatible; Zeppelin)", Grade::Likely),
            ("Mozilla/5.0 (compatible; Zeppelin/1.0) AppleWebKit/537.36", Grade::Likely),
            // `Mozilla/` alone, or before a program's name, is no browser: a browser writes its
            // platform after it.
            ("Mozilla/5.0", Grade::Certain),
            ("Mozilla/5.0 Zeppelin/1.0", Grade::Certain),
            ("Mozilla/5.0 zeppelin_probe", Grade::Certain),
            // With a comment that names no platform, only likely: a handset or desktop app may
            // write one.
            ("Mozilla/5.0 (Zeppelin Sync)", Grade::Likely),
            // Chrome 31 never ran on Windows 10.
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/31.0.1650.63 Safari/537.36", Grade::Weak),
        ];
        for (ua, want) in cases {
            assert_eq!(grade(ua), Some(want), "{ua:?}");
        }
        // The reason names the program, not the `Mozilla/5.0` it wears.
        assert_eq!(
            signal("Mozilla/5.0 Zeppelin/1.0").map(|s| s.2),
            Some("not a browser: Zeppelin".to_string())
        );
        assert_eq!(
            signal("Mozilla/5.0").map(|s| s.2),
            Some("not a browser: Mozilla".to_string())
        );
        // An OS or a device after `Mozilla/` keeps the browser form.
        assert_eq!(grade("Mozilla/5.0 (Inferno) Charon/4.0"), None);
        assert_eq!(grade("Mozilla/5.0 (Linux; Android 13) Zeppelin/1.0"), None);
        // A version's dots are no domain.
        assert_eq!(
            grade("Mozilla/5.0 (Nintendo 3DS; U; ; en) Version/1.7610.EU"),
            None
        );
        assert_eq!(signal_of(None), Some(Signal::no_user_agent()));
        assert_eq!(Signal::no_user_agent().describe(), "weak: (no user agent)");
    }

    #[test]
    fn ecosia_version_after_at_sign_is_not_an_email_address() {
        // The real-browser corpus caught this: `android@150.0.0.0` is a version, not an address.
        let ecosia = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) \
                      Chrome/150.0.0.0 Mobile Safari/537.36 (Ecosia android@150.0.0.0)";
        assert_eq!(signal(ecosia), None);
    }

    #[test]
    fn instagram_locale_calendar_is_not_an_email_address() {
        let ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) \
                  Mobile/15E148 Instagram 307.0.0.34.111 (iPhone14,5; iOS 17_1; en_US@calendar=gregorian; en-US; scale=3.00; 1170x2532; 532277017)";
        let read = UserAgent::parse(ua);
        assert_eq!(read.reading().signal, None);
        assert_eq!(read.reading().client, Some("instagram"));
    }

    #[test]
    fn people_clients_are_named_and_outweigh_weak_signs() {
        let cases = [
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBDV/iPhone14,2;FBMD/iPhone;FBSN/iOS;FBSV/17.0;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]", "facebook"),
            ("[FBAN/FB4A;FBAV/440.0.0.33.116;FBBV/123;FBDM/{density=2.75};FBLC/en_US;FBCR/T-Mobile;FBMF/samsung;FBBD/samsung;FBPN/com.facebook.katana;FBDV/SM-G991U;FBSV/13;FBOP/1;FBCA/arm64-v8a:;]", "facebook"),
            ("Mozilla/5.0 (Linux; Android 13; SM-S911B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.144 Mobile Safari/537.36 Snapchat/12.65.0.35 (SM-S911B; Android 13#S911BXXU3BWK5#33; gzip; )", "snapchat"),
            ("Mozilla/5.0 (Linux; Android 12; V2120 Build/SP1A.210812.003; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/112.0.5615.136 Mobile Safari/537.36 trill_310503 JsSdk/1.0 NetType/WIFI Channel/googleplay AppName/musical_ly app_version/31.5.3 ByteLocale/en ByteFullLocale/en Region/US BytedanceWebview/d8a21c6", "tiktok"),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Safari Line/13.16.0", "line"),
            ("Mozilla/5.0 (Linux; Android 13; 2201117TY Build/TKQ1.221114.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/111.0.5563.116 Mobile Safari/537.36 XWEB/5235 MMWEBSDK/20230701 MMWEBID/6311 MicroMessenger/8.0.40.2420(0x28002837) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64", "wechat"),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [Pinterest/iOS]", "pinterest"),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 16_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 NAVER(inapp; search; 1000; 12.1.3)", "naver"),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 16_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 KAKAOTALK 10.2.5", "kakaotalk"),
            ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 YaBrowser/23.11.3.74.00 SA/3 Mobile Safari/537.36", "yandex"),
            ("UCWEB/2.0 (MIDP-2.0; U; zh-CN; HTC EVO 3D X515m) U2/1.0.0 UCBrowser/10.4.0.558 U2/1.0.0 Mobile", "uc"),
            ("Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-A536B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36", "samsung"),
            ("Mozilla/5.0 (Linux; Android 10; ELE-AL00; HMSCore 6.11.0.302) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/99.0.4844.88 HuaweiBrowser/14.0.1.303 Mobile Safari/537.36", "huawei"),
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Slack/4.35.131 Chrome/118.0.5993.159 Electron/27.1.0 Safari/537.36 Sonic Slack_SSB/4.35.131", "electron"),
            ("Lynx/2.9.0dev.10 libwww-FM/2.14 SSL-MM/1.4.1 GNUTLS/3.7.8", "lynx"),
            ("Nokia303/14.87 CLDC-1.1", "feature_phone"),
            // DuckDuckGo's Android app under its own short name.
            ("ddg_android/5.180.0 (com.duckduckgo.mobile.android; Android API 34)", "duckduckgo"),
        ];
        for (ua, client) in cases {
            let read = UserAgent::parse(ua);
            assert_eq!(read.reading().client, Some(client), "{ua}");
            assert_eq!(read.reading().signal, None, "{ua}");
        }
        // A certain sign still wins: a crawler that names a portal is a crawler.
        let yandex_bot =
            UserAgent::parse("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)");
        assert_eq!(
            yandex_bot.reading().signal.as_ref().map(|s| s.grade),
            Some(Grade::Certain)
        );
    }

    #[test]
    fn search_portals_own_apps_are_people() {
        for ua in [
            "Mozilla/5.0 (Linux; arm_64; Android 12; SM-A125F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.5993.111 YaApp_Android/23.93.1 YaSearchBrowser/23.93.1 BroPP/1.0 SA/3 Mobile Safari/537.36",
            "Mozilla/5.0 (Linux; Android 12; NOH-AN00 Build/HUAWEINOH-AN00; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/99.0.4844.88 Mobile Safari/537.36 T7/13.32 SP-engine/2.70.0 baiduboxapp/13.32.0.10 (Baidu; P1 12) NABar/1.0",
            "Mozilla/5.0 (Linux; Android 10; HMA-AL00) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/88.0.4324.93 Mobile Safari/537.36 SogouMobileBrowser/5.34.1",
        ] {
            assert_eq!(grade(ua), None, "{ua}");
        }
    }

    #[test]
    fn link_previews_are_recognised() {
        for ua in [
            "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            "facebookexternalhit/1.1 Facebot Twitterbot/1.0",
            "WhatsApp/2.23.20.0 A",
            "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
            "TelegramBot (like TwitterBot)",
            "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
            "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36 GoogleMessages/20.2",
        ] {
            assert!(is_link_preview(Some(&UserAgent::parse(ua))), "{ua}");
        }
        assert!(!is_link_preview(Some(&UserAgent::parse(IPHONE))));
        assert!(!is_link_preview(None));
        // WhatsApp named inside a browser's header is not its preview fetcher.
        assert!(!is_link_preview(Some(&UserAgent::parse(
            "Mozilla/5.0 (Linux; Android 13) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36 WhatsApp/2.23.20.0"
        ))));
    }

    #[test]
    fn app_network_stacks_and_devices_are_not_bots() {
        for ua in [
            "Dalvik/2.1.0 (Linux; U; Android 13; SM-A536B Build/TP1A)",
            "MyApp/3.2 CFNetwork/1490.0.4 Darwin/23.2.0",
            "Roku4640X/DVP-7.70 (297.70E04154A)",
            "HbbTV/1.5.1 (+DRM;Samsung;SmartTV2021:UAU7000;T-KSU2EDEUC-1506.0;KantSU2e;)",
        ] {
            assert_eq!(signal(ua), None, "{ua}");
        }
    }

    #[test]
    fn phone_models_named_with_crawler_words_are_phones() {
        // Makers name phones and tablets with any word; the model item of an Android comment is
        // a device, unless a crawler writes its own version, URL or `compatible` there.
        for ua in [
            "Mozilla/5.0 (Linux; Android 12; Robo Bot 8 Build/SP1A.210812.016) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 Mobile Safari/537.36",
            "Mozilla/5.0 (Linux; Android 10; SPIDER X2) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/110.0.5481.153 Mobile Safari/537.36",
            "Mozilla/5.0 (Linux; U; Android 8.1.0; en-us; KidBot_Tab7 Build/O11019) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/61.0.3163.98 Safari/537.36",
            "Mozilla/5.0 (Linux; Android 9; Crawler Pro 5; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/96.0.4664.45 Mobile Safari/537.36",
            // A `+` after the model's number is part of its name, not a crawler's signature.
            "Mozilla/5.0 (Linux; Android 8.1.0; Kids bot 60+ Build/O11019) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.110 Mobile Safari/537.36",
        ] {
            assert_eq!(signal(ua), None, "{ua}");
        }
        for ua in [
            "Mozilla/5.0 (Linux; Android 10; K; ExampleBot/1.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
            "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.71 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 (Linux; Android 11; compatible; AcmeSpider +https://acme.example/spider) AppleWebKit/537.36",
            "Mozilla/5.0 (Linux; Android 11; AcmeSpider +ops[at]acme.example) AppleWebKit/537.36",
        ] {
            assert_eq!(grade(ua), Some(Grade::Certain), "{ua}");
        }
    }

    #[test]
    fn app_names_in_their_own_web_view_are_apps() {
        // An app that embeds a web view appends its name, and document scanners, price monitors
        // or code checkers are apps people use; outside a web view the same word is a tool's.
        for ua in [
            "Mozilla/5.0 (Linux; Android 14; Pixel 7 Build/UQ1A.240105.004; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.230 Mobile Safari/537.36 DocScanner/3.1.0",
            "Mozilla/5.0 (Linux; Android 13; SM-A146B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/119.0.6045.193 Mobile Safari/537.36 PriceMonitor/2.4.1",
        ] {
            assert_eq!(signal(ua), None, "{ua}");
        }
        for ua in [
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 SiteScanner/1.0",
            "Mozilla/5.0 (Linux; Android 14; Pixel 7 Build/UQ1A.240105.004; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.230 Mobile Safari/537.36 ExampleBot/1.0",
        ] {
            assert_eq!(grade(ua), Some(Grade::Certain), "{ua}");
        }
    }

    #[test]
    fn a_firmware_label_is_no_domain() {
        // `.rus` in a build label is a word going on, not `.ru` with a plural.
        for ua in [
            "Mozilla/5.0 (Linux; Android 4.4.2; TB-700 Build/KOT49H.rus.acme.20140101) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/44.0.2403.133 Safari/537.36",
            "Mozilla/5.0 Linux; Android 4.2.2; TB-800 Build/V2.0.JELLYBEAN.rus.acme AppleWebKit/537.36 KHTML, like Gecko Chrome/44.0.2403.133 Safari/537.36",
        ] {
            assert_eq!(signal(ua), None, "{ua}");
        }
    }

    #[test]
    fn niche_browsers_devices_and_desktop_apps_are_not_programs() {
        // Browsers without the `Mozilla/` form, TV and signage players, media stacks, a browser's
        // own fetcher: no sign. A desktop app that names its OS in short is at most weak.
        for ua in [
            "OPR/80.0.4170.0 SetTopOS/2.0, KreaTV/4.1 (Vendor, STB-100, wired)",
            "amaya/11.4 libwww/5.4.2",
            "HotJava/3.0",
            "Xiino/2.1 [en] (v. 4.1; 160x160; c16)",
            "Mozilla/5.0 (compatible; IBrowse 3.0; AmigaOS4.1)",
            // The browsers that wore the crawlers' `compatible;` dress named themselves.
            "Mozilla/3.0 (compatible; NetPositive/2.2.1; BeOS)",
            "HbbTV/1.2.1 (;;;;) Mozilla/5.0 (compatible; ANTGalio/3.3.0; Linux)",
            "HTC Streaming Player htc_asia / 1.0 / 4.1",
            "AppleCoreMedia/1.0.0.21C62 (iPhone; U; CPU OS 17_2 like Mac OS X; en_us)",
            "MozacFetch/121.0.1",
        ] {
            assert_eq!(signal(ua), None, "{ua}");
        }
        for (ua, client) in [
            ("GoogleApp/15.2.34.29.arm64", "google_app"),
            ("ACME-X10/1.0 Teleca/Q7", "feature_phone"),
            (
                "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Word 16.0.17328; Pro)",
                "microsoft_office",
            ),
        ] {
            let read = UserAgent::parse(ua);
            assert_eq!(read.reading().client, Some(client), "{ua}");
            assert_eq!(read.reading().signal, None, "{ua}");
        }
        assert_eq!(
            grade("GameLauncher/3.1.4 (Launcher) 0a1b2c3d (win10 x64)"),
            Some(Grade::Weak)
        );
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
    fn compatible_inside_the_engine_comment_is_a_dressed_fetcher() {
        assert_eq!(
            signal("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko; compatible; AcmeSnap/1.2) Chrome/120.0.0.0 Safari/537.36"),
            Some((Grade::Certain, Kind::Bot, "like Gecko; compatible".into()))
        );
        // A named crawler in the same place is reported by its name.
        assert_eq!(
            signal("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36"),
            Some((Grade::Certain, Kind::Bot, "bingbot".into()))
        );
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

    #[test]
    fn a_long_header_is_cut_on_a_character_boundary() {
        let long = "é".repeat(40_000);
        let ua = UserAgent::parse(long);
        assert!(ua.len() <= usize::from(u16::MAX));
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
        use super::{hits_both_ways, platform};
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn the_automaton_agrees_with_a_reference_one(
                ua in "([ -~]{0,6}(bot|crawl|mozilla/|android|compatible;|http://|fban/|\\.com|\\$\\{|\\.\\./|like gecko; compatible;)){0,8}[ -~]{0,6}"
            ) {
                let (ours, theirs) = hits_both_ways(&ua);
                prop_assert_eq!(ours, theirs);
            }

            #[test]
            fn never_panics(ua in "\\PC{0,200}") {
                let read = UserAgent::parse(ua.as_str());
                let _ = read.products().count() + read.comments().count();
                let _ = platform(&ua);
            }

            #[test]
            fn reading_is_the_same_however_the_header_is_cased(ua in "[ -~]{0,120}") {
                // The patterns are case-insensitive; boundaries look only at letters and digits.
                let lower = UserAgent::parse(ua.to_ascii_lowercase());
                let upper = UserAgent::parse(ua.to_ascii_uppercase());
                prop_assert_eq!(lower.reading().signal.as_ref().map(|s| s.grade), upper.reading().signal.as_ref().map(|s| s.grade));
                prop_assert_eq!(lower.reading().client, upper.reading().client);
            }
        }
    }
}
