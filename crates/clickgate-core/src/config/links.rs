//! The `links[]` section of the config document, compiled: the link formats clickgate reads, so it
//! can stand in front of a tracker without anyone rewriting a link.
//!
//! A profile says which requests it takes (a host, and the paths of its format), where each of the
//! click's fields is carried (a query parameter or a path segment), and what to do with a click on
//! an offer the document does not list: send it to the profile's `destination`, usually the
//! tracker's own click URL. The presets are the link formats of the trackers' public
//! documentation (see `docs/links.md` for each source). A document without `links` reads
//! clickgate's own format, as it always has.

use super::error::{err, ConfigError};
use super::fields::{kind, Fields};
use super::json::Value;
use super::offers::{Offer, OfferStatus};
use crate::click::{
    authority_end, check_method, split_url, ClickParams, Id, LinkFormat, PathPattern, RequestError,
    CLICK_METHODS, FIELDS, FIELD_AFFILIATE, FIELD_OFFER, NATIVE_PATHS, PARAMS,
};
use crate::template::Template;

/// How many profiles a document may declare: each request tries them in order.
pub(crate) const MAX_PROFILES: usize = 32;

/// One link format served by this Worker.
#[derive(Debug, Clone)]
pub struct Profile {
    pub id: String,
    /// The host it serves (lowercase, no port); `None` serves every host.
    pub host: Option<String>,
    pub format: LinkFormat,
    /// What a click on an offer the document does not list becomes: an offer whose landing URL is
    /// the profile's `destination` and whose advertiser is the profile's (its id is the click's).
    pub unlisted: Option<Offer>,
    /// Whether the link's parameters clickgate does not read are passed on to the destination
    /// (an offer may say otherwise).
    pub(crate) pass_through: bool,
}

/// The document's link profiles, in the order a request tries them.
#[derive(Debug, Clone)]
pub struct Links {
    pub(crate) profiles: Vec<Profile>,
    /// Whether the document declares `links` (its decision lines then name each click's profile).
    pub declared: bool,
}

impl Default for Links {
    /// clickgate's own format on every host, passing other parameters on.
    fn default() -> Links {
        Links {
            profiles: vec![Profile {
                id: "clickgate".into(),
                host: None,
                format: LinkFormat::native(),
                unlisted: None,
                pass_through: true,
            }],
            declared: false,
        }
    }
}

impl Links {
    /// The request's link read by the first profile that serves its host and path.
    pub fn route(&self, method: &str, url: &str) -> Result<ClickParams, RequestError> {
        let (path, query) = split_url(url);
        for (n, profile) in self.profiles.iter().enumerate() {
            // The host is read only for a profile that names one: most documents have none.
            if profile.host.as_deref().is_some_and(|h| h != host_of(url)) {
                continue;
            }
            let Some(fields) = profile.format.match_path(path) else {
                continue;
            };
            check_method(method, CLICK_METHODS)?;
            let mut click = profile.format.parse(&fields, query)?;
            click.link.profile = u16::try_from(n).unwrap_or(u16::MAX);
            return Ok(click);
        }
        Err(RequestError::NotFound)
    }

    /// The profile a click came in by.
    pub fn of(&self, click: &ClickParams) -> &Profile {
        let n = usize::from(click.link.profile);
        self.profiles.get(n).unwrap_or(&self.profiles[0])
    }

    /// The position of the profile a decision line names (the first when it names none, or one
    /// this document lacks).
    pub fn position(&self, id: Option<&str>) -> u16 {
        id.and_then(|id| self.profiles.iter().position(|p| p.id == id))
            .and_then(|n| u16::try_from(n).ok())
            .unwrap_or(0)
    }

    /// The profile's id for the decision line, where the document declares profiles.
    pub(crate) fn named(&self, click: &ClickParams) -> Option<&str> {
        self.declared.then(|| self.of(click).id.as_str())
    }

    /// Whether any profile sends clicks on offers the document does not list.
    pub(crate) fn serves_unlisted(&self) -> bool {
        self.profiles.iter().any(|p| p.unlisted.is_some())
    }
}

/// The host of an absolute URL, lowercase and without its port (empty for a bare path).
fn host_of(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return String::new();
    };
    let rest = &url[start..];
    let authority = &rest[..authority_end(rest)];
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let host = match authority.strip_prefix('[') {
        // An IPv6 literal keeps its brackets' content whole.
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => authority.split(':').next().unwrap_or(authority),
    };
    host.to_ascii_lowercase()
}

/// A tracker's link format as its public documentation gives it: paths, then the query
/// parameter of each field in the order of [`PARAMS`] (offer, affiliate, source, sub1..sub5,
/// device).
struct Preset {
    name: &'static str,
    paths: &'static [&'static str],
    names: [Option<&'static str>; FIELDS],
}

const PRESETS: [Preset; 6] = [
    Preset {
        name: "clickgate",
        paths: &NATIVE_PATHS,
        names: [
            Some(PARAMS[0]),
            Some(PARAMS[1]),
            Some(PARAMS[2]),
            Some(PARAMS[3]),
            Some(PARAMS[4]),
            Some(PARAMS[5]),
            Some(PARAMS[6]),
            Some(PARAMS[7]),
            Some(PARAMS[8]),
        ],
    },
    // Everflow: `?oid=…&affid=…&sub1=…&source_id=…`.
    Preset {
        name: "everflow",
        paths: &["/"],
        names: [
            Some("oid"),
            Some("affid"),
            Some("source_id"),
            Some("sub1"),
            Some("sub2"),
            Some("sub3"),
            Some("sub4"),
            Some("sub5"),
            None,
        ],
    },
    // CAKE: `?a={affiliate}&c={creative}&s1=…&s5=…`; the creative names the offer.
    Preset {
        name: "cake",
        paths: &["/"],
        names: [
            Some("c"),
            Some("a"),
            None,
            Some("s1"),
            Some("s2"),
            Some("s3"),
            Some("s4"),
            Some("s5"),
            None,
        ],
    },
    // Affise: `/click?pid={partner}&offer_id=…&sub1=…`; sub6 to sub8 are passed on.
    Preset {
        name: "affise",
        paths: &["/click"],
        names: [
            Some("offer_id"),
            Some("pid"),
            None,
            Some("sub1"),
            Some("sub2"),
            Some("sub3"),
            Some("sub4"),
            Some("sub5"),
            None,
        ],
    },
    // HasOffers / TUNE: `/aff_c?offer_id=…&aff_id=…&aff_sub=…&aff_sub5=…&source=…`.
    Preset {
        name: "hasoffers",
        paths: &["/aff_c"],
        names: [
            Some("offer_id"),
            Some("aff_id"),
            Some("source"),
            Some("aff_sub"),
            Some("aff_sub2"),
            Some("aff_sub3"),
            Some("aff_sub4"),
            Some("aff_sub5"),
            None,
        ],
    },
    // Voluum: `/{campaign id}?…`; the campaign's traffic source is the profile's
    // `default_affiliate`, and its own parameters are mapped by `params`.
    Preset {
        name: "voluum",
        paths: &["/{offer}"],
        names: [None; FIELDS],
    },
];

/// The preset names, for errors and docs.
pub(crate) fn preset_names() -> Vec<&'static str> {
    PRESETS.iter().map(|p| p.name).collect()
}

/// The keys of a profile's `params` object, in the order of [`PARAMS`]; `subs` is an array.
const PARAM_KEYS: [&str; 4] = ["offer", "affiliate", "source", "device"];

/// Compiles `links[]`. `advertisers` tells whether an advertiser id is declared.
pub(crate) fn compile_links(
    value: &Value,
    advertisers: &dyn Fn(&Id) -> bool,
    errors: &mut Vec<ConfigError>,
) -> Links {
    let Some(list) = value.as_array() else {
        errors.push(err(
            "links",
            format!("must be an array, found {}", kind(value)),
        ));
        return Links::default();
    };
    if list.is_empty() || list.len() > MAX_PROFILES {
        errors.push(err(
            "links",
            format!("must list 1 to {MAX_PROFILES} profiles"),
        ));
        return Links::default();
    }
    let mut profiles: Vec<Profile> = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let path = format!("links[{i}]");
        let Some(profile) = compile_profile(item, path.clone(), advertisers, errors) else {
            continue;
        };
        if profiles.iter().any(|p| p.id == profile.id) {
            errors.push(err(
                &format!("{path}.id"),
                format!("`{}` is declared twice", profile.id),
            ));
        }
        profiles.push(profile);
    }
    if profiles.is_empty() {
        return Links::default();
    }
    Links {
        profiles,
        declared: true,
    }
}

fn compile_profile(
    item: &Value,
    path: String,
    advertisers: &dyn Fn(&Id) -> bool,
    errors: &mut Vec<ConfigError>,
) -> Option<Profile> {
    let mut f = Fields::of(item, path, errors)?;
    let id = f.required_string("id", errors).map(str::to_owned);
    if let Some(id) = &id {
        if Id::parse(id).is_err() {
            errors.push(err(
                &f.child("id"),
                "must be 1 to 64 of letters, digits, `.`, `_` and `-`",
            ));
        }
    }
    let preset = match f.string("preset", errors) {
        None => &PRESETS[0],
        Some(name) => match PRESETS.iter().find(|p| p.name == name) {
            Some(p) => p,
            None => {
                errors.push(err(
                    &f.child("preset"),
                    format!(
                        "must be one of {}, found \"{name}\"",
                        preset_names().join(", ")
                    ),
                ));
                &PRESETS[0]
            }
        },
    };
    let host = f.string("host", errors).map(|h| h.to_ascii_lowercase());
    if let Some(h) = &host {
        if h.is_empty() || h.contains(['/', '?', '#', ':', '@', ' ']) {
            errors.push(err(
                &f.child("host"),
                "must be a host name alone, as `track.example.com`",
            ));
        }
    }

    let mut names: [Option<String>; FIELDS] = preset.names.map(|n| n.map(str::to_owned));
    if let Some(params) = f.get("params") {
        compile_params(params, &f.child("params"), &mut names, errors);
    }
    let paths: Vec<PathPattern> = match f.array("paths", errors) {
        Some(list) if list.is_empty() => {
            errors.push(err(&f.child("paths"), "must list at least one path"));
            Vec::new()
        }
        Some(list) => list
            .iter()
            .enumerate()
            .filter_map(|(n, p)| {
                let at = format!("{}[{n}]", f.child("paths"));
                match p.as_str().map(PathPattern::parse) {
                    Some(Ok(p)) => Some(p),
                    Some(Err(problem)) => {
                        errors.push(err(&at, problem));
                        None
                    }
                    None => {
                        errors.push(err(&at, format!("must be a string, found {}", kind(p))));
                        None
                    }
                }
            })
            .collect(),
        None => preset
            .paths
            .iter()
            .filter_map(|p| PathPattern::parse(p).ok())
            .collect(),
    };
    let default_affiliate = f.id("default_affiliate", false, errors);
    // Every path must give the click its offer and its affiliate, by a segment or a parameter.
    for (field, what) in [(FIELD_OFFER, "offer"), (FIELD_AFFILIATE, "affiliate")] {
        let by_query = names[field].is_some();
        let by_default = field == FIELD_AFFILIATE && default_affiliate.is_some();
        if !by_query && !by_default && !paths.iter().all(|p| p.carries(field)) {
            let hint = match field {
                FIELD_AFFILIATE => {
                    "; set params.affiliate, a `{affiliate}` path segment or default_affiliate"
                }
                _ => "; set params.offer or an `{offer}` path segment",
            };
            errors.push(err(
                &f.path.to_string(),
                format!("has no way to read the click's {what}{hint}"),
            ));
        }
    }
    let advertiser_id = f.id("advertiser_id", false, errors);
    if let Some(a) = &advertiser_id {
        if !advertisers(a) {
            errors.push(err(
                &f.child("advertiser_id"),
                format!("`{a}` is not in advertisers"),
            ));
        }
    }
    let destination = match f.get("destination") {
        None => None,
        Some(Value::String(s)) => Template::compile(s)
            .map_err(|p| errors.push(err(&f.child("destination"), p)))
            .ok(),
        Some(other) => {
            errors.push(err(
                &f.child("destination"),
                format!("must be a URL string, found {}", kind(other)),
            ));
            None
        }
    };
    let pass_through = match f.get("pass_through") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            errors.push(err(
                &f.child("pass_through"),
                format!("must be true or false, found {}", kind(other)),
            ));
            true
        }
    };
    f.finish(errors);
    let unlisted = destination.map(|landing| Offer {
        // Stands in for the click's own offer id, which replaces it.
        id: Id::parse("unlisted").unwrap_or_else(|_| unreachable!()),
        name: None,
        advertiser_id,
        status: OfferStatus::Active,
        landing,
        geo: None,
        pass_through: None,
        candidates: Default::default(),
    });
    Some(Profile {
        id: id?,
        host,
        format: LinkFormat {
            names,
            paths,
            default_affiliate,
        },
        unlisted,
        pass_through,
    })
}

/// Reads `params`: `offer`, `affiliate`, `source`, `device` (each a parameter name, or `null` for
/// none) and `subs` (up to five names, in order).
fn compile_params(
    value: &Value,
    path: &str,
    names: &mut [Option<String>; FIELDS],
    errors: &mut Vec<ConfigError>,
) {
    let Some(object) = value.as_object() else {
        errors.push(err(
            path,
            format!("must be an object, found {}", kind(value)),
        ));
        return;
    };
    let name_of = |v: &Value, at: &str, errors: &mut Vec<ConfigError>| -> Option<String> {
        match v.as_str() {
            Some(s) if !s.is_empty() && s.len() <= 64 => Some(s.to_owned()),
            _ => {
                errors.push(err(
                    at,
                    "must be a parameter name of 1 to 64 bytes, or null",
                ));
                None
            }
        }
    };
    for key in object.keys() {
        let at = format!("{path}.{key}");
        let Some(v) = object.get(key) else { continue };
        if let Some(k) = PARAM_KEYS.iter().position(|k| *k == key) {
            let field = [0, 1, 2, 8][k];
            names[field] = if v.is_null() {
                None
            } else {
                name_of(v, &at, errors)
            };
        } else if key == "subs" {
            let Some(list) = v.as_array().filter(|l| l.len() <= 5) else {
                errors.push(err(&at, "must be an array of at most 5 parameter names"));
                continue;
            };
            for slot in &mut names[3..8] {
                *slot = None;
            }
            for (n, s) in list.iter().enumerate() {
                names[3 + n] = name_of(s, &format!("{at}[{n}]"), errors);
            }
        } else {
            errors.push(err(
                &at,
                format!(
                    "is not a known field (known here: {}, subs)",
                    PARAM_KEYS.join(", ")
                ),
            ));
        }
    }
    let mut seen: Vec<&str> = Vec::new();
    for name in names.iter().flatten() {
        if seen.contains(&name.as_str()) {
            errors.push(err(path, format!("names the parameter `{name}` twice")));
        }
        seen.push(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn links(json: &str) -> Links {
        let doc = format!(
            r#"{{"version": 1, "advertisers": [{{"id": "acme"}}],
                "offers": [{{"id": "1001", "landing_url": "https://shop.example/"}}],
                "links": {json}}}"#
        );
        match Config::compile(&doc) {
            Ok(c) => c.links,
            Err(e) => panic!("{json}: {e:?}"),
        }
    }

    fn problems(json: &str) -> Vec<String> {
        let doc = format!(
            r#"{{"version": 1, "offers": [{{"id": "1001", "landing_url": "https://shop.example/"}}],
                "links": {json}}}"#
        );
        match Config::compile(&doc) {
            Ok(_) => Vec::new(),
            Err(e) => e.iter().map(|e| e.to_string()).collect(),
        }
    }

    fn fields(c: &ClickParams) -> (String, String, Vec<Option<String>>) {
        (
            c.offer_id.to_string(),
            c.aff_id.to_string(),
            c.subs.to_vec(),
        )
    }

    #[test]
    fn each_preset_reads_its_trackers_link() {
        let l = links(
            r#"[{"id": "ef", "preset": "everflow", "host": "ef.example"},
                {"id": "cake", "preset": "cake", "host": "cake.example"},
                {"id": "affise", "preset": "affise"},
                {"id": "tune", "preset": "hasoffers"},
                {"id": "vol", "preset": "voluum", "host": "vol.example", "default_affiliate": "ts-1"}]"#,
        );
        let read = |url: &str| {
            l.route("GET", url)
                .map(|c| (l.of(&c).id.clone(), fields(&c)))
        };
        let subs = |s1: &str| vec![Some(s1.to_owned()), None, None, None, None];
        assert_eq!(
            read("https://ef.example/?oid=12&affid=7&sub1=x&gclid=abc"),
            Ok(("ef".into(), ("12".into(), "7".into(), subs("x"))))
        );
        assert_eq!(
            read("https://cake.example/?a=7&c=55&s1=x&s6=y"),
            Ok(("cake".into(), ("55".into(), "7".into(), subs("x"))))
        );
        assert_eq!(
            read("https://any.example/click?pid=7&offer_id=12&sub1=x&sub8=z"),
            Ok(("affise".into(), ("12".into(), "7".into(), subs("x"))))
        );
        assert_eq!(
            read("https://any.example/aff_c?offer_id=12&aff_id=7&aff_sub=x&source=fb"),
            Ok(("tune".into(), ("12".into(), "7".into(), subs("x"))))
        );
        assert_eq!(
            read("https://vol.example/9b2a1c3d-0000-4e5f-8a7b-123456789abc?zone=1"),
            Ok((
                "vol".into(),
                (
                    "9b2a1c3d-0000-4e5f-8a7b-123456789abc".into(),
                    "ts-1".into(),
                    vec![None; 5]
                )
            ))
        );
        // A path no profile serves, and a CAKE link on a host its profile does not serve.
        assert_eq!(
            read("https://any.example/c?offer_id=1&aff_id=2"),
            Err(RequestError::NotFound)
        );
        assert_eq!(
            read("https://other.example/?a=7&c=55"),
            Err(RequestError::NotFound)
        );
    }

    #[test]
    fn a_profile_names_its_own_parameters_over_its_preset() {
        let l = links(
            r#"[{"id": "ef", "preset": "everflow",
                 "params": {"source": "src", "subs": ["s_a", "s_b"], "device": "gaid"}}]"#,
        );
        let c = l
            .route(
                "GET",
                "https://t.example/?oid=1&affid=2&src=fb&s_a=x&s_b=y&gaid=G&sub1=z",
            )
            .unwrap();
        assert_eq!(c.source_id.as_deref(), Some("fb"));
        assert_eq!(c.subs[..2], [Some("x".into()), Some("y".into())]);
        assert_eq!(c.subs[2], None, "sub1 is no longer read");
        assert_eq!(c.device_id.as_deref(), Some("G"));
    }

    #[test]
    fn errors_name_the_profiles_own_parameter() {
        let l = links(r#"[{"id": "cake", "preset": "cake"}]"#);
        assert_eq!(
            l.route("GET", "https://t.example/?c=55"),
            Err(RequestError::MissingParam { name: "a".into() })
        );
        assert!(matches!(
            l.route("GET", "https://t.example/?c=55&a=1&a=2"),
            Err(RequestError::InvalidParam { name, .. }) if name == "a"
        ));
        assert!(matches!(
            l.route("POST", "https://t.example/?c=55&a=1"),
            Err(RequestError::MethodNotAllowed { .. })
        ));
    }

    #[test]
    fn without_links_the_native_format_is_read_on_every_host() {
        let config = Config::compile(
            r#"{"version": 1, "offers": [{"id": "1", "landing_url": "https://shop.example/"}]}"#,
        )
        .unwrap();
        let c = config
            .links
            .route("HEAD", "http://127.0.0.1:8787/c/1/net-7?sub2=x")
            .unwrap();
        assert_eq!(
            fields(&c),
            (
                "1".into(),
                "net-7".into(),
                vec![None, Some("x".into()), None, None, None]
            )
        );
    }

    #[test]
    fn hosts_are_compared_without_port_or_case() {
        assert_eq!(host_of("https://Track.Example:8443/c?x"), "track.example");
        assert_eq!(host_of("http://[2001:db8::1]:80/c"), "2001:db8::1");
        assert_eq!(host_of("/c?x=1"), "");
    }

    #[test]
    fn bad_profiles_are_refused_with_their_path() {
        let cases = [
            (
                r#"[{"id": "x", "preset": "nope"}]"#,
                "links[0].preset: must be one of",
            ),
            (
                r#"[{"id": "x", "host": "a.example/c"}]"#,
                "links[0].host: must be a host name",
            ),
            (
                r#"[{"id": "x", "paths": ["c"]}]"#,
                "links[0].paths[0]: must start with `/`",
            ),
            (
                r#"[{"id": "x", "paths": ["/c/{bogus}"]}]"#,
                "unknown placeholder `{bogus}`",
            ),
            (
                r#"[{"id": "x", "preset": "voluum"}]"#,
                "links[0]: has no way to read the click's affiliate",
            ),
            (
                r#"[{"id": "x", "params": {"offer": null}}]"#,
                "links[0]: has no way to read the click's offer",
            ),
            (
                r#"[{"id": "x", "params": {"subs": ["a", "aff_id"]}}]"#,
                "names the parameter `aff_id` twice",
            ),
            (
                r#"[{"id": "x", "destination": "https://t.example/{passthrough}"}]"#,
                "must come after the `?`",
            ),
            (
                r#"[{"id": "x", "advertiser_id": "nobody"}]"#,
                "`nobody` is not in advertisers",
            ),
            (
                r#"[{"id": "x"}, {"id": "x"}]"#,
                "links[1].id: `x` is declared twice",
            ),
            (r#"[]"#, "links: must list 1 to 32 profiles"),
            (
                r#"[{"id": "x", "pass_through": "yes"}]"#,
                "links[0].pass_through: must be true or false",
            ),
        ];
        for (json, want) in cases {
            let found = problems(json);
            assert!(found.iter().any(|p| p.contains(want)), "{json}: {found:?}");
        }
    }
}
