//! The `advertisers[]` section of the config document, compiled: how each advertiser's conversion
//! postbacks are authenticated, capped and counted. How a postback is judged is in
//! [`crate::conversion`].

use super::error::{err, ConfigError};
use super::fields::{kind, Fields};
use super::json::Value;
use super::ranges::RANGES;
use super::secrets::Secrets;
use crate::template::Template;

/// The longest event name or other postback field kept.
pub(crate) const MAX_FIELD_LEN: usize = 128;
/// A `postback_secret` shorter than this is refused by validation: it must not be guessable.
pub const MIN_SECRET_BYTES: usize = 16;

/// How an advertiser's postbacks are checked and counted (`advertisers[]` in the config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostbackPolicy {
    pub secret: Option<String>,
    pub(crate) max_approved_per_click: u32,
    /// The events whose approved conversions count toward a network's conversion rate.
    pub(crate) flood_events: Vec<String>,
    /// Where a judged conversion is passed on: the tracker's own postback URL.
    pub forward: Option<Forward>,
}

/// The tracker's postback URLs for this advertiser's conversions: an approved one is sent to
/// `approved`; a rejected one to `rejected`, or nowhere when it has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub(crate) approved: Template,
    pub rejected: Option<Template>,
}

impl Default for PostbackPolicy {
    fn default() -> Self {
        PostbackPolicy {
            secret: None,
            max_approved_per_click: 1,
            flood_events: vec!["conversion".to_owned()],
            forward: None,
        }
    }
}

impl PostbackPolicy {
    /// Reads `postback_secret`, `max_approved_per_click` and `flood_events` of an advertiser.
    pub(crate) fn compile(
        f: &mut Fields,
        secrets: Secrets,
        errors: &mut Vec<ConfigError>,
    ) -> PostbackPolicy {
        let mut policy = PostbackPolicy::default();
        // Elsewhere a null field reads as left out; a null secret would read as "no secret" and
        // open the advertiser's postbacks to anyone, so it is refused instead.
        if f.map.get("postback_secret").is_some_and(|v| v.is_null()) {
            errors.push(err(
                &f.child("postback_secret"),
                "must be a string, found null",
            ));
        }
        if let Some(secret) = f.secret("postback_secret", secrets, errors) {
            if secret.len() < MIN_SECRET_BYTES {
                errors.push(err(
                    &f.child("postback_secret"),
                    format!("must be at least {MIN_SECRET_BYTES} bytes"),
                ));
            }
            policy.secret = Some(secret);
        }
        if let Some(n) = f.u32_in("max_approved_per_click", RANGES.approved_per_click, errors) {
            policy.max_approved_per_click = n;
        }
        if let Some(events) = f.array("flood_events", errors) {
            policy.flood_events.clear();
            for (i, e) in events.iter().enumerate() {
                match e
                    .as_str()
                    .filter(|e| !e.is_empty() && e.len() <= MAX_FIELD_LEN)
                {
                    Some(e) => policy.flood_events.push(e.to_owned()),
                    None => errors.push(err(
                        &format!("{}[{i}]", f.child("flood_events")),
                        format!("must be an event name of 1 to {MAX_FIELD_LEN} bytes"),
                    )),
                }
            }
        }
        if let Some(value) = f.get("forward") {
            policy.forward = compile_forward(value, &f.child("forward"), errors);
        }
        policy
    }
}

/// Reads `forward`: `approved` (required) and `rejected`, each a postback URL template.
fn compile_forward(value: &Value, path: &str, errors: &mut Vec<ConfigError>) -> Option<Forward> {
    let mut f = Fields::of(value, path, errors)?;
    let url = |f: &mut Fields, key: &'static str, errors: &mut Vec<ConfigError>| match f.get(key)? {
        Value::String(s) => Template::compile_postback(s)
            .map_err(|p| errors.push(err(&f.child(key), p)))
            .ok(),
        other => {
            errors.push(err(
                &f.child(key),
                format!("must be a URL string, found {}", kind(other)),
            ));
            None
        }
    };
    let approved = match f.required("approved", errors) {
        Some(_) => url(&mut f, "approved", errors),
        None => None,
    };
    let rejected = url(&mut f, "rejected", errors);
    f.finish(errors);
    Some(Forward {
        approved: approved?,
        rejected,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn a_null_postback_secret_is_refused_not_read_as_no_secret() {
        // `"postback_secret": null` compiled to an advertiser without a secret, whose postbacks
        // then went through unauthenticated: a null secret is a slip, not a choice.
        let problems: Vec<String> = Config::compile(
            r#"{"version": 1, "advertisers": [{"id": "a", "postback_secret": null}],
                "offers": [{"id": "1", "landing_url": "https://x.example/"}]}"#,
        )
        .err()
        .unwrap_or_default()
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            problems,
            ["advertisers[0].postback_secret: must be a string, found null"]
        );
    }
}
