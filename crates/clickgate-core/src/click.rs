//! From a raw HTTP request to a parsed click, or to the reason it is not one.
//!
//! Everything a client sends is untrusted: sizes are checked first, every parameter is parsed into a
//! typed value once, and what the rest of the engine sees can no longer be malformed.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use percent_encoding::percent_decode_str;

use crate::fault::{Blame, Fault};

mod sent;
pub use sent::{Sent, MAX_HEADER_VALUE_LEN};
pub(crate) use sent::{
    AT_HTTP_PROTOCOL, AT_TLS_CIPHER, AT_TLS_VERSION, HTTP_PROTOCOL, SENT_HEADERS, TLS_CIPHER,
    TLS_VERSION,
};

/// An offer, affiliate or advertiser id: 1 to 64 of `A-Z a-z 0-9 . _ -`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(String);

pub const MAX_ID_LEN: usize = 64;

impl Id {
    pub fn parse(text: &str) -> Result<Id, BadId> {
        Id::check(text).map(|()| Id(text.to_owned()))
    }

    /// [`Id::parse`] of a string the caller owns already (a link's decoded parameter): kept, not
    /// copied.
    fn parse_owned(text: String) -> Result<Id, BadId> {
        Id::check(&text).map(|()| Id(text))
    }

    fn check(text: &str) -> Result<(), BadId> {
        if text.is_empty() {
            return Err(BadId("is empty".into()));
        }
        if text.len() > MAX_ID_LEN {
            return Err(BadId(format!(
                "is {} bytes; at most {MAX_ID_LEN}",
                text.len()
            )));
        }
        // `.` and `..` are path segments a URL's normaliser removes: such an id could take clicks
        // but never be named in `/admin/networks/{id}/block`.
        if text.bytes().all(|b| b == b'.') {
            return Err(BadId(
                "is only dots; an id needs a letter, digit, `_` or `-`".into(),
            ));
        }
        // By byte: every byte before the first refused one is ASCII, so it starts a character.
        if let Some(c) = text
            .bytes()
            .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')))
            .and_then(|at| text.get(at..)?.chars().next())
        {
            return Err(BadId(format!(
                "contains {c:?}; ids use only letters, digits, `.`, `_` and `-`"
            )));
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An id the code names itself, known to read as one (a test holds each such name to
    /// [`Id::parse`]).
    pub(crate) fn known(name: &'static str) -> Id {
        Id(name.to_owned())
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a text is not an [`Id`]: a message that follows the id's name ("`x` is empty").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadId(String);

impl fmt::Display for BadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadId {}

/// Callers that carry their problems as text take the same message.
impl From<BadId> for String {
    fn from(e: BadId) -> String {
        e.0
    }
}

/// Request size limits. Past these a request is refused before anything else is read.
pub const MAX_URL_LEN: usize = 4096;
pub const MAX_HEADERS_TOTAL: usize = 16 * 1024;
/// A sub ID or source id longer than this is refused: no tracker forwards more, and it would bloat logs.
pub const MAX_VALUE_LEN: usize = 512;

/// A tracking click whose parameters have been parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickParams {
    pub offer_id: Id,
    pub aff_id: Id,
    pub(crate) source_id: Option<String>,
    pub subs: [Option<String>; 5],
    /// An advertising or device id the network passes (`device_id`), for the fraud database.
    pub(crate) device_id: Option<String>,
    /// Which link format the click came in and its query as received, for what the destination
    /// is passed on.
    pub link: LinkOrigin,
}

/// Where a click came from: the config's link profile (by position; 0 when the config names
/// none) and the link's raw query, kept byte for byte so that the parameters clickgate does not
/// read reach the destination exactly as the publisher wrote them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkOrigin {
    pub profile: u16,
    pub query: String,
    /// Whether the profile's format read every parameter of the query, so none is left to pass
    /// on and the redirect need not walk the query again (most links). `false` when unknown: the
    /// query is then walked.
    pub(crate) all_read: bool,
}

/// What the edge knows about the client, read from headers and the runtime.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    /// `CF-Connecting-IP` was there but is not an address (see [`crate::ip::client_ip`]): the
    /// blocklist cannot clear the click and the rules' IP filters cannot run.
    pub ip_unreadable: bool,
    /// Read once when the click arrives; every filter, the preview check and the counts share it.
    pub user_agent: Option<crate::ua::UserAgent>,
    pub referer: Option<String>,
    /// ISO country code and autonomous system of the client, as the edge resolved them.
    pub country: Option<String>,
    pub asn: Option<u32>,
    /// The headers and connection facts the `spoof` filter reads, read only under a config that
    /// has the filter (`None` otherwise: no header is kept that nothing judges).
    pub sent: Option<Box<Sent>>,
    /// What the platform's bot detection made of the request, on a zone that has it.
    pub platform: Option<Box<Platform>>,
}

impl ClientInfo {
    /// A chat app unfurling the link, or a crawler the platform has verified as what it says it
    /// is: redirected, and not counted as a person's click.
    pub(crate) fn is_preview(&self) -> bool {
        crate::ua::is_link_preview(self.user_agent.as_ref())
            || self.platform.as_ref().is_some_and(|p| p.verified_bot)
    }
}

/// `request.cf.botManagement`, given only on a zone with Cloudflare Bot Management, and with it
/// the network's name (`request.cf.asOrganization`) for explaining the decision. Without Bot
/// Management there is none, and the click is judged and logged as it always was.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Platform {
    /// `botManagement.score`: 1 (automated) to 99 (human); absent when the platform gave none.
    pub score: Option<u8>,
    /// `botManagement.verifiedBot`: a crawler the platform has verified (a search engine's).
    pub verified_bot: bool,
    /// `botManagement.staticResource`: a request for a static file, which the platform does not
    /// score.
    pub static_resource: bool,
    pub as_organization: Option<String>,
}

impl Platform {
    /// The score the `bot` filter reads: none for a static resource, or outside 1 to 99.
    pub(crate) fn bot_score(&self) -> Option<u8> {
        self.score
            .filter(|s| (1..=99).contains(s) && !self.static_resource)
    }
}

/// The routes the Worker serves to the public. Callers outside the core match a few of them; a
/// new one must not break them, hence `non_exhaustive`.
#[derive(Debug, Clone, PartialEq, Eq)]
// Built once per request and moved straight into the decision: boxing the click would only add
// an allocation.
#[allow(clippy::large_enum_variant)]
#[non_exhaustive]
pub enum Route {
    Click(ClickParams),
    Health,
}

/// A request on the public side before the config is known: the health check, or a link whose
/// format the config's profiles decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Arrived {
    Health,
    Link,
}

/// Why a request is not a click we can serve. Every variant maps to a 4xx in [`crate::http`]; the
/// CLI names some and shows the rest by their message, so the list may grow (`non_exhaustive`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    NotFound,
    /// The route does not take the method; `allow` is what it takes, as its `Allow` header says.
    MethodNotAllowed {
        allow: &'static str,
    },
    UrlTooLong {
        len: usize,
    },
    HeaderTooLarge {
        name: String,
    },
    MissingParam {
        name: String,
    },
    InvalidParam {
        name: String,
        problem: String,
    },
    UnknownOffer {
        offer_id: Id,
    },
    OfferPaused {
        offer_id: Id,
    },
    BodyTooLarge {
        limit: usize,
    },
}

impl Fault for RequestError {
    fn blame(&self) -> Blame {
        Blame::Client
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::NotFound => f.write_str("no such route"),
            RequestError::MethodNotAllowed { allow } => write!(f, "this route takes {allow}"),
            RequestError::UrlTooLong { len } => {
                write!(f, "the URL is {len} bytes; at most {MAX_URL_LEN}")
            }
            RequestError::HeaderTooLarge { name } => write!(f, "header {name} is too large"),
            RequestError::MissingParam { name } => write!(f, "parameter {name} is required"),
            RequestError::InvalidParam { name, problem } => write!(f, "parameter {name} {problem}"),
            RequestError::UnknownOffer { offer_id } => write!(f, "offer {offer_id} does not exist"),
            RequestError::OfferPaused { offer_id } => write!(f, "offer {offer_id} is paused"),
            RequestError::BodyTooLarge { limit } => {
                write!(f, "the body is larger than {limit} bytes")
            }
        }
    }
}

/// The methods of the click routes (`/c`, `/healthz`) and of `/postback`.
pub const CLICK_METHODS: &str = "GET, HEAD";
pub(crate) const POSTBACK_METHODS: &str = "GET, POST";

/// Refuses a method a route does not take; `allow` is one of the lists above.
pub fn check_method(method: &str, allow: &'static str) -> Result<(), RequestError> {
    if allow.split(", ").any(|m| m.eq_ignore_ascii_case(method)) {
        Ok(())
    } else {
        Err(RequestError::MethodNotAllowed { allow })
    }
}

/// Refuses a request whose URL or headers are past the limits. Called before routing, with the
/// headers the edge reads (the runtime already bounds the rest).
pub(crate) fn check_sizes<'a>(
    url_len: usize,
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), RequestError> {
    if url_len > MAX_URL_LEN {
        return Err(RequestError::UrlTooLong { len: url_len });
    }
    let mut total = 0usize;
    for (name, value) in headers {
        total = total.saturating_add(name.len() + value.len());
        if value.len() > MAX_HEADER_VALUE_LEN || total > MAX_HEADERS_TOTAL {
            let name = name.chars().take(64).collect();
            return Err(RequestError::HeaderTooLarge { name });
        }
    }
    Ok(())
}

/// Refuses a body past `limit` bytes: first by its declared `Content-Length` (so nothing is read),
/// then, while it is read, by the bytes that arrived so far (`read`), since a chunked body declares
/// no length. An unparseable `Content-Length` decides nothing here; the bytes still count.
pub fn check_body(
    content_length: Option<&str>,
    read: usize,
    limit: usize,
) -> Result<(), RequestError> {
    // All digits but past u64 is a length past any limit, not an unparseable one.
    let declared = content_length
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .map(|v| v.parse::<u64>().unwrap_or(u64::MAX));
    if declared.is_some_and(|n| n > limit as u64) || read > limit {
        return Err(RequestError::BodyTooLarge { limit });
    }
    Ok(())
}

/// Splits an absolute request URL into path and raw query, without a URL library: the Worker must not
/// carry IDNA tables for a job this small, and the runtime has already validated the URL.
///
/// Byte by byte: `str`'s searchers cost several times as much, on every click.
pub fn split_url(url: &str) -> (&str, &str) {
    let b = url.as_bytes();
    // A bare path has no scheme, though its query may carry a URL that has one: the first `://`
    // counts only before any `/`, `?` or `#`.
    let mut after_scheme = 0;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'/' | b'?' | b'#' => break,
            b':' if b[i + 1..].starts_with(b"//") => {
                after_scheme = i + 3;
                break;
            }
            _ => {}
        }
    }
    let rest = &url[after_scheme..];
    let rest = rest
        .bytes()
        .position(|c| c == b'/')
        .map_or("/", |i| &rest[i..]);
    let rest = &rest[..rest.bytes().position(|c| c == b'#').unwrap_or(rest.len())];
    match rest.bytes().position(|c| c == b'?') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    }
}

/// Where a URL's authority (what follows `scheme://`) ends: at its path, query or fragment (ASCII
/// bytes, so the end is a character boundary).
pub(crate) fn authority_end(rest: &str) -> usize {
    rest.bytes()
        .position(|c| matches!(c, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len())
}

/// The names of a click's parameters, said once: the link's query, the landing URL's macros and
/// the what-if tool's CSV columns spell them from here, and the decision log's fields (written
/// by `log::key!`, which takes only literals) are held to them by a test.
pub(crate) const OFFER_ID: &str = "offer_id";
pub(crate) const AFF_ID: &str = "aff_id";
pub(crate) const SOURCE_ID: &str = "source_id";
/// `sub1` .. `sub5`, in the order of [`ClickParams::subs`].
pub(crate) const SUB_IDS: [&str; 5] = ["sub1", "sub2", "sub3", "sub4", "sub5"];
pub(crate) const DEVICE_ID: &str = "device_id";

/// The parameters a click link may carry, in the order of [`LinkFormat`]'s fields.
pub(crate) const PARAMS: [&str; FIELDS] = [
    OFFER_ID, AFF_ID, SOURCE_ID, SUB_IDS[0], SUB_IDS[1], SUB_IDS[2], SUB_IDS[3], SUB_IDS[4],
    DEVICE_ID,
];

/// How many fields a link carries: offer, affiliate, source, five sub IDs, device.
pub(crate) const FIELDS: usize = 9;
/// The field positions, in the order of [`PARAMS`].
pub(crate) const FIELD_OFFER: usize = 0;
pub(crate) const FIELD_AFFILIATE: usize = 1;

/// The health check's path, answered before any config is needed.
pub const HEALTH_PATH: &str = "/healthz";
/// An advertiser's conversion postback.
pub const POSTBACK_PATH: &str = "/postback";
/// A tracker's question about a click's verdict, answered with the advertiser's secret.
pub const VERDICT_PATH: &str = "/verdict";
/// Another system's report that a click's transaction was rejected, with the advertiser's secret.
pub const REJECTION_PATH: &str = "/rejection";

/// The routes outside `/admin/` clickgate's own link format serves, with the methods each takes
/// (a link profile adds its own paths, see `docs/links.md`). `docs/openapi.json` describes
/// exactly these and [`crate::admin::ROUTES`], which a test holds it to.
pub const PUBLIC_ROUTES: [(&str, &str); 6] = [
    (NATIVE_PATHS[0], CLICK_METHODS),
    (NATIVE_PATHS[1], CLICK_METHODS),
    (HEALTH_PATH, CLICK_METHODS),
    (POSTBACK_PATH, POSTBACK_METHODS),
    (VERDICT_PATH, CLICK_METHODS),
    (REJECTION_PATH, POSTBACK_METHODS),
];

/// Whether a request is the health check or a link; the link's format is the config's to read.
pub(crate) fn arrive(method: &str, path: &str) -> Result<Arrived, RequestError> {
    if path.trim_end_matches('/') == HEALTH_PATH {
        return check_method(method, CLICK_METHODS).map(|()| Arrived::Health);
    }
    Ok(Arrived::Link)
}

/// One path a link format is served on: literal segments and the fields some segments carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern(Vec<Segment>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Field(usize),
}

impl PathPattern {
    /// Reads `/c/{offer}/{affiliate}`: a placeholder is a whole segment naming a field (`offer`,
    /// `affiliate`, `source`, `sub1`..`sub5`, `device`); every other segment is literal.
    pub(crate) fn parse(text: &str) -> Result<PathPattern, String> {
        if !text.starts_with('/') {
            return Err("must start with `/`".into());
        }
        let mut segments = Vec::new();
        let mut seen = [false; FIELDS];
        for part in text.trim_end_matches('/').split('/').skip(1) {
            if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                let field = PLACEHOLDERS
                    .iter()
                    .position(|p| *p == name)
                    .ok_or_else(|| {
                        format!(
                            "has an unknown placeholder `{{{name}}}`; known: {KNOWN_PLACEHOLDERS}"
                        )
                    })?;
                if std::mem::replace(&mut seen[field], true) {
                    return Err(format!("names `{{{name}}}` twice"));
                }
                segments.push(Segment::Field(field));
            } else if part.is_empty() || part.contains(['{', '}', '?', '#', '%']) {
                return Err(format!(
                    "has a segment `{part}` that is neither a plain word nor a placeholder"
                ));
            } else {
                segments.push(Segment::Literal(part.to_owned()));
            }
        }
        Ok(PathPattern(segments))
    }

    /// Whether the path carries a field.
    pub(crate) fn carries(&self, field: usize) -> bool {
        self.0.contains(&Segment::Field(field))
    }

    /// The fields of `path` (still percent-encoded) when it has this shape; a trailing `/` is
    /// no segment.
    fn read<'p>(&self, path: &'p str) -> Option<Vec<(usize, &'p str)>> {
        let parts: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
        if parts.len() != self.0.len() {
            return None;
        }
        let mut fields = Vec::new();
        for (segment, part) in self.0.iter().zip(parts) {
            match segment {
                Segment::Literal(l) if l == part => {}
                Segment::Literal(_) => return None,
                Segment::Field(_) if part.is_empty() => return None,
                Segment::Field(f) => fields.push((*f, part)),
            }
        }
        Some(fields)
    }
}

/// [`PLACEHOLDERS`] as an error message lists them (a test keeps the two the same).
const KNOWN_PLACEHOLDERS: &str =
    "{offer} {affiliate} {source} {sub1} {sub2} {sub3} {sub4} {sub5} {device}";

/// The words a path placeholder names a field by, in the order of [`PARAMS`].
pub(crate) const PLACEHOLDERS: [&str; FIELDS] = [
    "offer",
    "affiliate",
    "source",
    "sub1",
    "sub2",
    "sub3",
    "sub4",
    "sub5",
    "device",
];

/// The paths of clickgate's own link format (the `clickgate` preset's too).
pub(crate) const NATIVE_PATHS: [&str; 2] = ["/c", "/c/{offer}/{affiliate}"];

/// Where one link format carries a click's fields: the query parameter of each (`None`: the
/// format has none), the paths it is served on, and the affiliate of a link that names none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkFormat {
    pub names: [Option<String>; FIELDS],
    pub paths: Vec<PathPattern>,
    pub(crate) default_affiliate: Option<Id>,
}

impl LinkFormat {
    /// clickgate's own: `/c?offer_id=..&aff_id=..` or `/c/{offer_id}/{aff_id}`, with optional
    /// `source_id`, `sub1`..`sub5` and `device_id`.
    pub(crate) fn native() -> LinkFormat {
        LinkFormat {
            names: PARAMS.map(|p| Some(p.to_owned())),
            // The paths are fixed and well formed (the route tests read both).
            paths: NATIVE_PATHS
                .iter()
                .filter_map(|p| PathPattern::parse(p).ok())
                .collect(),
            default_affiliate: None,
        }
    }

    /// The fields `path` carries, when it is one of this format's paths.
    pub(crate) fn match_path<'p>(&self, path: &'p str) -> Option<Vec<(usize, &'p str)>> {
        self.paths.iter().find_map(|p| p.read(path))
    }

    /// Whether a query parameter is one of this format's fields (so it is read, not passed on).
    pub fn reads(&self, name: &str) -> bool {
        self.names.iter().flatten().any(|n| n == name)
    }

    /// How a field is named in errors: its query parameter, else its placeholder.
    fn name_of(&self, field: usize) -> String {
        self.names[field]
            .clone()
            .unwrap_or_else(|| PLACEHOLDERS[field].to_owned())
    }

    /// A field that must hold an id; its name is written only for the error.
    fn required_id(&self, field: usize, value: Option<String>) -> Result<Id, RequestError> {
        match value {
            Some(v) if !v.is_empty() => {
                Id::parse_owned(v).map_err(|problem| RequestError::InvalidParam {
                    name: self.name_of(field),
                    problem: problem.into(),
                })
            }
            _ => Err(RequestError::MissingParam {
                name: self.name_of(field),
            }),
        }
    }

    /// A link of this format, its path already matched (`path_fields`), read into a click.
    ///
    /// Unknown parameters are not read: networks append their own, and they are passed on. A
    /// field given twice is refused, since which copy wins is exactly what a fraudster probes.
    pub fn parse(
        &self,
        path_fields: &[(usize, &str)],
        query: &str,
    ) -> Result<ClickParams, RequestError> {
        let mut values: [Option<String>; FIELDS] = Default::default();
        for &(field, segment) in path_fields {
            values[field] = Some(decode_segment(&self.name_of(field), segment)?);
        }
        let mut seen = [false; FIELDS];
        let mut all_read = true;
        for (name, value) in query_pairs(query) {
            let Some(i) = self.names.iter().position(|n| n.as_deref() == Some(&*name)) else {
                all_read = false;
                continue;
            };
            if seen[i] || values[i].is_some() {
                return Err(RequestError::InvalidParam {
                    name: self.name_of(i),
                    problem: "is given more than once".into(),
                });
            }
            seen[i] = true;
            values[i] = Some(value.into_owned());
        }

        let [offer, aff, source_id, s1, s2, s3, s4, s5, device] = values;
        let offer_id = self.required_id(FIELD_OFFER, offer)?;
        let aff_id = match (aff, &self.default_affiliate) {
            (None, Some(default)) => default.clone(),
            (aff, _) => self.required_id(FIELD_AFFILIATE, aff)?,
        };
        let mut optional = [source_id, s1, s2, s3, s4, s5, device];
        for (i, v) in optional.iter_mut().enumerate() {
            if let Some(text) = v {
                if text.len() > MAX_VALUE_LEN {
                    let problem = format!("is {} bytes; at most {MAX_VALUE_LEN}", text.len());
                    return Err(RequestError::InvalidParam {
                        name: self.name_of(i + 2),
                        problem,
                    });
                }
                if text.is_empty() {
                    *v = None;
                }
            }
        }
        let [source_id, s1, s2, s3, s4, s5, device_id] = optional;
        Ok(ClickParams {
            offer_id,
            aff_id,
            source_id,
            subs: [s1, s2, s3, s4, s5],
            device_id,
            link: LinkOrigin {
                profile: 0,
                query: query.to_owned(),
                all_read,
            },
        })
    }
}

/// Routes a request in clickgate's own link format by method, path and raw query string (without
/// `?`): the health check, or a click ([`LinkFormat::native`]).
pub fn route(method: &str, path: &str, query: &str) -> Result<Route, RequestError> {
    if arrive(method, path)? == Arrived::Health {
        return Ok(Route::Health);
    }
    let format = LinkFormat::native();
    let fields = format.match_path(path).ok_or(RequestError::NotFound)?;
    check_method(method, CLICK_METHODS)?;
    let mut click = format.parse(&fields, query)?;
    // Read by the native format, which need not be the format of the profile it is decided under
    // (a config's first): what that one leaves to pass on is found by walking the query.
    click.link.all_read = false;
    Ok(Route::Click(click))
}

/// The pairs of a raw query that `keep` keeps (it is given each pair's decoded name), joined
/// with `&`, each exactly as it arrived but for bytes no query may hold as they are (spaces,
/// `#`, quotes, angle brackets, controls, non-ASCII), which are percent-encoded: what is passed
/// on stays inside the destination's query and keeps every byte a browser would send.
pub(crate) fn pass_on(query: &str, mut keep: impl FnMut(&str) -> bool) -> String {
    let mut out = String::new();
    for pair in raw_pairs(query) {
        if !keep(&form_decoded(name_and_value(pair).0)) {
            continue;
        }
        if !out.is_empty() {
            out.push('&');
        }
        push_query_safe(&mut out, pair);
    }
    out
}

/// A raw query's pairs, decoded as a browser's form encodes them (`+` a space, `%XX` a byte,
/// bytes that are no UTF-8 read as U+FFFD), exactly as `form_urlencoded::parse` reads them (a
/// test holds the two the same); empty pairs are skipped, a pair without `=` has an empty value.
///
/// Written here rather than taken from that crate: a pair without `%` or `+`, as most are, is
/// handed back as it stands, and the crate's copies and UTF-8 passes cost more per click than
/// the rest of reading the link.
pub(crate) fn query_pairs(query: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    raw_pairs(query).map(|pair| {
        let (name, value) = name_and_value(pair);
        (form_decoded(name), form_decoded(value))
    })
}

/// The `&`-separated pairs of a raw query, still encoded; empty ones are left out.
fn raw_pairs(query: &str) -> impl Iterator<Item = &str> {
    let mut rest = query;
    std::iter::from_fn(move || loop {
        if rest.is_empty() {
            return None;
        }
        // Cut at ASCII bytes, so on character boundaries.
        let end = rest.bytes().position(|b| b == b'&').unwrap_or(rest.len());
        let pair = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or("");
        if !pair.is_empty() {
            return Some(pair);
        }
    })
}

/// A raw pair's name and value, split at its first `=`.
fn name_and_value(pair: &str) -> (&str, &str) {
    match pair.bytes().position(|b| b == b'=') {
        Some(i) => (&pair[..i], &pair[i + 1..]),
        None => (pair, ""),
    }
}

/// One name or value of a form-encoded query, decoded. A `%` not followed by two hex digits
/// stands for itself.
fn form_decoded(text: &str) -> Cow<'_, str> {
    if !text.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(text);
    }
    let hex = |b: Option<&u8>| char::from(*b?).to_digit(16);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        i += 1;
        out.push(match b {
            b'+' => b' ',
            b'%' => match (hex(bytes.get(i)), hex(bytes.get(i + 1))) {
                (Some(high), Some(low)) => {
                    i += 2;
                    (high << 4 | low) as u8
                }
                _ => b'%',
            },
            b => b,
        });
    }
    Cow::Owned(match String::from_utf8(out) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// Appends `text`, percent-encoding every byte that may not stand in a query as it is.
pub(crate) fn push_query_safe(out: &mut String, text: &str) {
    for b in text.bytes() {
        let safe = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%[]".contains(&b);
        if safe {
            out.push(b as char);
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

fn decode_segment(name: &str, segment: &str) -> Result<String, RequestError> {
    percent_decode_str(segment)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| RequestError::InvalidParam {
            name: name.to_owned(),
            problem: "is not valid UTF-8".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::sent::PLAIN_HTTP;
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn sent_reads_back_from_its_fields_and_an_empty_fact_is_none() {
        let headers = [("sec-fetch-mode", "navigate"), ("accept-language", "de")];
        let header = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        let sent = Sent::read(
            header,
            "http://clicks.example/c",
            Some("HTTP/1.1"),
            Some(""),
            Some(" "),
        );
        assert_eq!(sent.header("sec-fetch-mode"), Some("navigate"));
        assert_eq!((sent.tls_version(), sent.tls_cipher()), (None, None));
        let fields: Vec<_> = sent.fields().collect();
        assert_eq!(
            fields,
            [
                ("sec-fetch-mode", "navigate"),
                ("accept-language", "de"),
                (HTTP_PROTOCOL, "HTTP/1.1"),
                (PLAIN_HTTP, "true"),
            ]
        );
        let back = Sent::from_fields(|k| fields.iter().find(|(n, _)| *n == k).map(|(_, v)| *v));
        assert_eq!(back, sent);
    }

    fn click(r: Result<Route, RequestError>) -> ClickParams {
        match r {
            Ok(Route::Click(c)) => c,
            other => panic!("not a click: {other:?}"),
        }
    }

    #[test]
    fn query_form_parses_every_parameter() {
        let c = click(route(
            "GET",
            "/c",
            "offer_id=1001&aff_id=net-7&source_id=s%201&sub1=a%26b&sub2=&sub5=z&utm_source=ignored",
        ));
        assert_eq!(c.offer_id.as_str(), "1001");
        assert_eq!(c.aff_id.as_str(), "net-7");
        assert_eq!(c.source_id.as_deref(), Some("s 1"));
        assert_eq!(
            c.subs,
            [Some("a&b".into()), None, None, None, Some("z".into())]
        );
    }

    /// The form decoding's corners, as browsers and `form_urlencoded` read them.
    #[test]
    fn query_pairs_decode_the_form_encoding() {
        let pairs: Vec<_> =
            query_pairs("a=b=c&&=x&y&p=1+2%2B3&q=%zz%2%&r=%C3%A9%FF&s+t%3D=%26").collect();
        let expected = [
            ("a", "b=c"),
            ("", "x"),
            ("y", ""),
            ("p", "1 2+3"),
            ("q", "%zz%2%"),
            ("r", "é\u{FFFD}"),
            ("s t=", "&"),
        ];
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (&**n, &**v)).collect();
        assert_eq!(pairs, expected);
    }

    #[test]
    fn path_form_parses_ids_and_query_subs() {
        let c = click(route("HEAD", "/c/1001/net-7/", "sub3=x"));
        assert_eq!((c.offer_id.as_str(), c.aff_id.as_str()), ("1001", "net-7"));
        assert_eq!(c.subs[2].as_deref(), Some("x"));
    }

    #[test]
    fn bad_requests_name_the_parameter() {
        let cases: [(&str, &str, &str, RequestError); 6] = [
            (
                "GET",
                "/c",
                "aff_id=1",
                RequestError::MissingParam {
                    name: "offer_id".into(),
                },
            ),
            (
                "GET",
                "/c",
                "offer_id=1",
                RequestError::MissingParam {
                    name: "aff_id".into(),
                },
            ),
            (
                "GET",
                "/c",
                "offer_id=&aff_id=1",
                RequestError::MissingParam {
                    name: "offer_id".into(),
                },
            ),
            (
                "POST",
                "/c",
                "offer_id=1&aff_id=1",
                RequestError::MethodNotAllowed {
                    allow: CLICK_METHODS,
                },
            ),
            ("GET", "/x", "", RequestError::NotFound),
            ("GET", "/c/1", "", RequestError::NotFound),
        ];
        for (method, path, query, want) in cases {
            assert_eq!(
                route(method, path, query).unwrap_err(),
                want,
                "{method} {path}?{query}"
            );
        }
        let invalid = |q: &str| match route("GET", "/c", q) {
            Err(RequestError::InvalidParam { name, problem }) => (name, problem),
            other => panic!("{q}: {other:?}"),
        };
        assert_eq!(invalid("offer_id=10%2001&aff_id=1").0, "offer_id");
        assert!(invalid("offer_id=1&aff_id=a/b").1.contains("contains '/'"));
        assert!(invalid(&format!("offer_id={}&aff_id=1", "9".repeat(65)))
            .1
            .contains("at most 64"));
        assert!(invalid("offer_id=1&offer_id=2&aff_id=1")
            .1
            .contains("more than once"));
        assert_eq!(
            invalid(&format!("offer_id=1&aff_id=1&sub4={}", "x".repeat(513))).0,
            "sub4"
        );
        assert_eq!(
            route("GET", "/c/1/%FF", "").unwrap_err(),
            RequestError::InvalidParam {
                name: "aff_id".into(),
                problem: "is not valid UTF-8".into()
            }
        );
        assert!(matches!(
            route("GET", "/c/1/2", "offer_id=3"),
            Err(RequestError::InvalidParam { .. })
        ));
    }

    #[test]
    fn split_url_takes_path_and_query() {
        assert_eq!(
            split_url("https://t.example/c?offer_id=1#frag"),
            ("/c", "offer_id=1")
        );
        assert_eq!(split_url("http://127.0.0.1:8787/c/1/2"), ("/c/1/2", ""));
        assert_eq!(split_url("https://t.example"), ("/", ""));
        assert_eq!(split_url("https://t.example?x=1"), ("/", ""));
        assert_eq!(split_url("https://t.example/a?b?c"), ("/a", "b?c"));
    }

    #[test]
    fn split_url_reads_a_bare_path_a_bare_host_a_query_and_a_fragment() {
        // A bare path, as `clickgate sign` and `verify` may be given one, is its own path.
        assert_eq!(split_url("/c"), ("/c", ""));
        assert_eq!(split_url("/c/1/2?sub1=x"), ("/c/1/2", "sub1=x"));
        assert_eq!(
            split_url("/c?u=https://x.example/y"),
            ("/c", "u=https://x.example/y")
        );
        // `scheme://host` without a path is the root.
        assert_eq!(split_url("https://t.example"), ("/", ""));
        assert_eq!(split_url("https://t.example/"), ("/", ""));
        // The fragment is never sent to the edge: it ends the path, or the query.
        assert_eq!(split_url("https://t.example/c#f"), ("/c", ""));
        assert_eq!(split_url("/c?a=1#f?b=2"), ("/c", "a=1"));
        // A URL in the query moves neither the path's start nor its end.
        assert_eq!(
            split_url("https://t.example/c?u=https://x.example/y?z"),
            ("/c", "u=https://x.example/y?z")
        );
    }

    #[test]
    fn the_placeholders_an_error_lists_are_the_placeholders() {
        assert_eq!(
            KNOWN_PLACEHOLDERS,
            PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(" ")
        );
    }

    #[test]
    fn the_native_format_serves_every_native_path() {
        assert_eq!(LinkFormat::native().paths.len(), NATIVE_PATHS.len());
    }

    #[test]
    fn health_route() {
        assert_eq!(route("GET", "/healthz", ""), Ok(Route::Health));
    }

    #[test]
    fn size_limits() {
        assert!(check_sizes(100, [("user-agent", "x")]).is_ok());
        assert_eq!(
            check_sizes(MAX_URL_LEN + 1, []),
            Err(RequestError::UrlTooLong {
                len: MAX_URL_LEN + 1
            })
        );
        let big = "x".repeat(MAX_HEADER_VALUE_LEN + 1);
        assert_eq!(
            check_sizes(10, [("cookie", big.as_str())]),
            Err(RequestError::HeaderTooLarge {
                name: "cookie".into()
            })
        );
        let medium = "x".repeat(MAX_HEADER_VALUE_LEN);
        let many: Vec<(&str, &str)> = (0..5).map(|_| ("x-a", medium.as_str())).collect();
        assert!(check_sizes(10, many).is_err());
    }

    #[test]
    fn bodies_past_the_limit_are_refused_by_declared_length_or_by_what_arrived() {
        let too_large = Err(RequestError::BodyTooLarge { limit: 100 });
        assert_eq!(check_body(Some("100"), 0, 100), Ok(()));
        assert_eq!(check_body(Some("101"), 0, 100), too_large);
        // 50 MB declared: refused before a byte is read.
        assert_eq!(check_body(Some("52428800"), 0, 100), too_large);
        assert_eq!(
            check_body(Some("99999999999999999999999"), 0, 100),
            too_large
        );
        // A chunked body declares nothing; an understated length does not hide what arrives.
        assert_eq!(check_body(None, 100, 100), Ok(()));
        assert_eq!(check_body(None, 101, 100), too_large);
        assert_eq!(check_body(Some("10"), 101, 100), too_large);
        assert_eq!(check_body(Some("x"), 0, 100), Ok(()));
    }

    #[test]
    fn an_all_dot_id_is_refused_since_url_normalisation_eats_it_on_the_admin_route() {
        // `aff_id=..` took clicks, but `/admin/networks/../block` reaches no network: an id the
        // operator cannot name in a path is refused where ids are read.
        for id in [".", "..", "..."] {
            assert!(Id::parse(id).is_err(), "{id}");
            for query in [
                format!("offer_id=1&aff_id={id}"),
                format!("offer_id={id}&aff_id=1"),
            ] {
                assert!(
                    matches!(
                        route("GET", "/c", &query),
                        Err(RequestError::InvalidParam { .. })
                    ),
                    "{query}"
                );
            }
        }
        for id in [".a", "a..", "a.b", "-", "_"] {
            assert_eq!(Id::parse(id).map(|i| i.to_string()), Ok(id.to_owned()));
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::super::sent::SENT_TEXTS;
        use super::super::*;
        use proptest::prelude::*;

        const CLICK_CONFIG: &str = r#"{"version": 1, "offers": [{"id": "1", "landing_url": "https://x.example/?s={sub1}&t={transaction_id}"}],
            "rules": [{"id": "r", "created_at": "2026-01-01", "scope": {"offers": ["1"]}, "decline": "medium_and_higher",
                       "strategy": {"filters": [{"type": "bot"}, {"type": "referrer"}, {"type": "old_os_browser"}]}}]}"#;

        /// A valid id most of the time (the offer's own id among them), else anything.
        fn id_or_junk() -> impl Strategy<Value = String> {
            prop_oneof![Just("1".to_owned()), "[A-Za-z0-9._-]{1,12}", "\\PC{0,20}"]
        }

        /// One `name=value`: a known parameter or any name, written raw or form-encoded.
        fn query_pair() -> impl Strategy<Value = String> {
            let name = prop_oneof![
                proptest::sample::select(PARAMS.to_vec()).prop_map(str::to_owned),
                "\\PC{0,12}",
            ];
            (name, prop_oneof![id_or_junk(), "\\PC{0,40}"], any::<bool>()).prop_map(
                |(n, v, encode)| {
                    if encode {
                        form_urlencoded::Serializer::new(String::new())
                            .append_pair(&n, &v)
                            .finish()
                    } else {
                        format!("{n}={v}")
                    }
                },
            )
        }

        /// A header the `spoof` filter reads, or one it does not.
        fn header_name() -> impl Strategy<Value = &'static str> {
            let names: Vec<&'static str> = SENT_HEADERS
                .iter()
                .copied()
                .chain(["user-agent", "x-other"])
                .collect();
            proptest::sample::select(names)
        }

        /// A header value: empty, blank, ASCII, any characters at all (controls and non-ASCII
        /// among them), or one around the length past which [`Sent`] cuts a value.
        fn value() -> impl Strategy<Value = String> {
            prop_oneof![
                1 => Just(String::new()),
                1 => "[ \t]{1,3}",
                4 => "[ -~]{0,40}",
                4 => any::<String>(),
                1 => (4090..=MAX_HEADER_VALUE_LEN, "\\PC{0,8}").prop_map(|(n, tail)| "a".repeat(n) + &tail),
            ]
        }

        /// `value` as [`Sent`] holds it: its characters while they fit [`MAX_HEADER_VALUE_LEN`]
        /// bytes.
        fn cut(value: &str) -> String {
            let mut kept = String::new();
            for c in value.chars() {
                if kept.len() + c.len_utf8() > MAX_HEADER_VALUE_LEN {
                    break;
                }
                kept.push(c);
            }
            kept
        }

        proptest! {
            #[test]
            fn route_never_panics(method in "[A-Z]{0,7}", path in "\\PC{0,40}", query in "\\PC{0,80}") {
                let _ = route(&method, &path, &query);
            }

            // Aimed at the click routes: `/c` or `/c/{offer}/{aff}` with a query of known and unknown
            // names and arbitrary values (raw or form-encoded), and arbitrary client headers; a
            // routed click goes through the whole decision.
            #[test]
            fn click_routes_never_panic(
                by_path in any::<bool>(),
                offer in id_or_junk(),
                aff in id_or_junk(),
                pairs in proptest::collection::vec(query_pair(), 0..8),
                ip in "\\PC{0,45}",
                user_agent in "\\PC{0,120}",
                referer in "\\PC{0,120}",
            ) {
                let path = if by_path { format!("/c/{offer}/{aff}") } else { "/c".to_owned() };
                let query = pairs.join("&");
                let headers = [("cf-connecting-ip", ip.as_str()), ("user-agent", user_agent.as_str()), ("referer", referer.as_str())];
                let _ = check_sizes(path.len() + query.len(), headers);
                if let Ok(Route::Click(params)) = route("GET", &path, &query) {
                    let read = crate::ip::client_ip(Some(&ip));
                    let client = ClientInfo {
                        ip_unreadable: read.is_err(),
                        ip: read.ok().flatten(),
                        user_agent: Some(user_agent.into()),
                        referer: Some(referer),
                        country: None,
                        asn: None,
                        sent: None,
                        platform: None,
                    };
                    let config = crate::config::Config::compile(CLICK_CONFIG).unwrap();
                    let key = crate::token::TokenKey::new(&[3u8; 32]).unwrap();
                    let _ = crate::decide::decide(&config, &key, params, client, Default::default(), 0, [0; crate::token::NONCE_LEN]);
                }
            }

            // Any value a publisher sends in a sub ID comes back unchanged after URL-decoding.
            #[test]
            fn sub_values_round_trip(sub in "\\PC{1,60}") {
                let q: String = form_urlencoded::Serializer::new(String::new())
                    .append_pair("offer_id", "1").append_pair("aff_id", "2").append_pair("sub1", &sub).finish();
                let Route::Click(c) = route("GET", "/c", &q).unwrap() else { panic!() };
                prop_assert_eq!(c.subs[0].as_deref(), Some(sub.as_str()));
            }

            // The one string with its spans reads each header and connection fact as a plain map
            // of the request's values would: the first of a repeated name, an empty value as
            // given, any bytes, and a value past the bound cut to it at a character's start.
            #[test]
            fn sent_reads_what_a_map_of_the_values_reads(
                headers in proptest::collection::vec((header_name(), value()), 0..24),
                connection in proptest::array::uniform3(proptest::option::of(value())),
            ) {
                let mut map = std::collections::HashMap::new();
                for (name, value) in &headers {
                    map.entry(*name).or_insert(value.as_str());
                }
                let header = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
                let [protocol, tls, cipher] = connection.clone().map(|v| v.filter(|v| !v.trim().is_empty()));
                let sent = Sent::read(header, "https://clicks.example/c", connection[0].as_deref(),
                                      connection[1].as_deref(), connection[2].as_deref());
                for name in SENT_HEADERS {
                    let want = map.get(name).map(|v| cut(v));
                    prop_assert_eq!(sent.header(name), want.as_deref(), "{}", name);
                }
                let want = [protocol, tls, cipher].map(|v| v.as_deref().map(cut));
                let got = [sent.http_protocol(), sent.tls_version(), sent.tls_cipher()];
                prop_assert_eq!(got, want.each_ref().map(Option::as_deref));
                for at in 0..SENT_TEXTS.len() {
                    prop_assert_eq!(sent.bytes(at), sent.text(at).map(str::as_bytes));
                }
                let fields: Vec<_> = sent.fields().collect();
                let back = Sent::from_fields(|k| fields.iter().find(|(n, _)| *n == k).map(|(_, v)| *v));
                prop_assert_eq!(back, sent);
            }

            // The query's own decoder reads every query as the form-encoding crate does: names,
            // values, `+`, `%` with and without its two hex digits, bytes that are no UTF-8.
            #[test]
            fn query_pairs_decode_as_form_urlencoded_does(
                query in "([ab=&+%]|%[0-9A-Fa-f]{2}|%[0-9a-z]{0,2}|%[89a-fA-F][0-9a-fA-F]|é|\\PC){0,40}",
            ) {
                let ours: Vec<_> = query_pairs(&query).collect();
                let theirs: Vec<_> = form_urlencoded::parse(query.as_bytes()).collect();
                prop_assert_eq!(ours, theirs);
            }

            #[test]
            fn id_parse_accepts_exactly_the_alphabet(text in "\\PC{0,70}") {
                let ok = !text.is_empty() && text.len() <= MAX_ID_LEN
                    && text.chars().all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c))
                    && !text.chars().all(|c| c == '.');
                prop_assert_eq!(Id::parse(&text).is_ok(), ok);
            }
        }
    }
}
