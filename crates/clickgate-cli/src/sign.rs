//! `sign` and `verify`: links signed and checked under a network's policy in a config file, with
//! the same code the Worker runs.

use std::io::Write;
use std::path::Path;

use clickgate_core::click::{route, split_url, Id, RequestError, Route};
use clickgate_core::config::networks::Policy;
use clickgate_core::config::Config;
use clickgate_core::signing::{sign_link, verify as verify_signature, Check, SIGNING_PARAMS};

use crate::args::SignArgs;
use crate::config::{validate, Use};
use crate::Failure;

pub fn sign(a: &SignArgs) -> Result<(), Failure> {
    let config = validate(&a.config, Use::Sign)?.config;
    let (network, policy) = network_policy(&config, &a.network)?;
    check_link(&config, &network, &a.url, a.any_aff_id)?;
    let now = now_ms();
    // A retired key signs links the Worker refuses as `unknown_key`.
    let live = |k: &&clickgate_core::config::networks::SigningKey| k.is_live(now);
    let key = match &a.kid {
        Some(kid) => policy
            .keys
            .iter()
            .filter(live)
            .find(|k| k.id == *kid)
            .ok_or_else(|| Failure::Usage(format!("no live key `{kid}` for this network")))?,
        // The newest key still live: the one a rotation added last.
        None => policy
            .keys
            .iter()
            .rev()
            .find(live)
            .ok_or_else(|| Failure::Usage("the network has no live key".into()))?,
    };
    // An hour, or less if the network's policy allows less; never more than it allows, or the
    // Worker refuses the links as `expired`.
    let expires_in = a.expires_in.unwrap_or(policy.max_age_s.min(3600));
    if expires_in > policy.max_age_s {
        return Err(Failure::Usage(format!(
            "--expires-in {expires_in}: the network's policy allows links at most {} s",
            policy.max_age_s
        )));
    }
    let (url, expires) = (a.url.as_str(), now / 1000 + expires_in);
    let Some(file) = &a.click_ids else {
        let click_id = a.click_id.as_deref();
        println!("{}", sign_link(&policy, key, url, expires, click_id));
        return Ok(());
    };
    let ids = std::fs::read_to_string(file)
        .map_err(|e| Failure::Usage(format!("--click-ids {}: {e}", file.display())))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    ids.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .try_for_each(|id| writeln!(out, "{}", sign_link(&policy, key, url, expires, Some(id))))
        .and_then(|()| out.flush())
        .map_err(|e| Failure::Usage(format!("writing links: {e}")))
}

/// Refuses a link the Worker would not take as signed: what is not a URL, a link none of the
/// config's link formats reads, one whose `aff_id` is another network's (the Worker checks a link
/// against its `aff_id`'s policy, so it would refuse it; `--any-aff-id` signs it all the same),
/// one on an offer the config does not list and its profile sends nowhere, and one already
/// carrying what signing adds.
fn check_link(config: &Config, network: &Id, url: &str, any_aff_id: bool) -> Result<(), Failure> {
    let scheme_end = url.find("://").unwrap_or(0);
    let host = url[scheme_end..]
        .trim_start_matches("://")
        .split(['/', '?', '#'])
        .next()
        .unwrap_or("");
    if !matches!(
        url[..scheme_end].to_ascii_lowercase().as_str(),
        "http" | "https"
    ) || host.is_empty()
        || url.contains(char::is_whitespace)
    {
        return Err(Failure::Usage(format!(
            "--url `{url}` is not a URL (https://host/c?offer_id=…&aff_id=…)"
        )));
    }
    let click = config.links.route("GET", url).map_err(|e| {
        Failure::Usage(match e {
            RequestError::NotFound => format!(
                "--url `{url}` is no click link this config reads (its host and path match none of its link formats)"
            ),
            e => format!("--url `{url}`: {e}"),
        })
    })?;
    if click.aff_id != *network && !any_aff_id {
        return Err(Failure::Usage(format!(
            "the link's aff_id is `{}`, not --network `{network}`: the Worker checks a link under its aff_id's policy and would refuse it (--any-aff-id signs it anyway)",
            click.aff_id
        )));
    }
    let profile = config.links.of(&click);
    if !config.offers.contains_key(&click.offer_id) && profile.unlisted.is_none() {
        return Err(Failure::Usage(format!(
            "offer `{}` is not in the config, and the link format `{}` sends unlisted offers nowhere",
            click.offer_id, profile.id
        )));
    }
    let (_, query) = split_url(url);
    let signed = query
        .split('&')
        .map(|p| p.split_once('=').map_or(p, |(name, _)| name))
        .find(|name| SIGNING_PARAMS.contains(name));
    match signed {
        Some("click_id") => Err(Failure::Usage(
            "the link carries `click_id`, which signing adds: give it as --click-id".into(),
        )),
        Some(name) => Err(Failure::Usage(format!(
            "the link is already signed (it carries `{name}`): sign the link without `expires`, `kid` and `signature`"
        ))),
        None => Ok(()),
    }
}

pub fn verify(file: &Path, url: &str) -> Result<(), Failure> {
    let config = validate(file, Use::Sign)?.config;
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
            ..
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

fn network_policy(config: &Config, network: &str) -> Result<(Id, Policy), Failure> {
    let id = Id::parse(network).map_err(|e| Failure::Usage(format!("network `{network}` {e}")))?;
    let policy = config.networks.get(&id).cloned().ok_or_else(|| {
        Failure::Usage(format!(
            "network `{id}` has no signing policy in the config"
        ))
    })?;
    Ok((id, policy))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use crate::tests::{run_words, scratch};
    use crate::Failure;

    #[test]
    fn sign_refuses_a_retired_key_and_a_lifetime_the_policy_does_not_allow() {
        // Both used to print links the Worker refuses (`unknown_key`, `expired`), and exit 0.
        let config = scratch(
            "sign-policy.json",
            r#"{"version": 1, "offers": [{"id": "1", "landing_url": "https://x.example/"}],
                "networks": [{"id": "net-7", "signing": {"mode": "enforce", "max_age_seconds": 600,
                  "keys": [{"id": "old", "secret": "network-7-signing-secret-0001", "not_after": "2020-01-01T00:00:00Z"},
                           {"id": "new", "secret": "network-7-signing-secret-0002"}]}}]}"#,
        );
        let config = config.to_str().unwrap();
        let sign = |extra: &[&str]| {
            let mut words = vec!["sign", "--config", config, "--network", "net-7"];
            words.extend_from_slice(&["--url", "https://t.example/c?offer_id=1&aff_id=net-7"]);
            words.extend_from_slice(extra);
            run_words(&words)
        };
        assert!(matches!(sign(&[]), Ok(())));
        assert!(matches!(
            sign(&["--kid", "new", "--expires-in", "600"]),
            Ok(())
        ));
        let Err(Failure::Usage(retired)) = sign(&["--kid", "old"]) else {
            panic!("a retired key signed")
        };
        assert!(retired.contains("no live key `old`"), "{retired}");
        let Err(Failure::Usage(long)) = sign(&["--expires-in", "601"]) else {
            panic!("a lifetime past max_age_seconds signed")
        };
        assert!(long.contains("at most 600 s"), "{long}");
    }

    /// A document with offer 1, net-7's and net-9's signing keys, and (with `links`) a profile
    /// sending unlisted offers to a tracker.
    fn sign_config(name: &str, links: &str) -> std::path::PathBuf {
        scratch(
            name,
            &format!(
                r#"{{"version": 1, "offers": [{{"id": "1", "landing_url": "https://x.example/"}}],
                "networks": [{{"id": "net-7", "signing": {{"mode": "enforce", "keys": [{{"id": "k", "secret": "network-7-signing-secret-0001"}}]}}}},
                             {{"id": "net-9", "signing": {{"mode": "enforce", "keys": [{{"id": "k", "secret": "network-9-signing-secret-0001"}}]}}}}]
                {links}}}"#
            ),
        )
    }

    fn refusal(config: &std::path::Path, url: &str, extra: &[&str]) -> Option<String> {
        let mut words = vec!["sign", "--config", config.to_str().unwrap()];
        words.extend_from_slice(&["--network", "net-7", "--url", url]);
        words.extend_from_slice(extra);
        match run_words(&words) {
            Ok(()) => None,
            Err(Failure::Usage(m)) => Some(m),
            Err(other) => panic!("{url}: {other:?}"),
        }
    }

    #[test]
    fn sign_refuses_what_is_not_a_url() {
        // `not a url` was signed into `not a url?expires=…`, exit 0.
        let config = sign_config("sign-url.json", "");
        for url in [
            "not a url",
            "/c?offer_id=1&aff_id=net-7",
            "ftp://t.example/c?offer_id=1&aff_id=net-7",
            "https:///c?offer_id=1&aff_id=net-7",
            "https://t.example/c?offer_id=1&aff_id=net-7 x",
        ] {
            let m = refusal(&config, url, &[]).unwrap_or_else(|| panic!("{url} signed"));
            assert!(m.contains("is not a URL"), "{url}: {m}");
        }
        let m = refusal(&config, "https://t.example/landing?offer_id=1", &[]).unwrap();
        assert!(m.contains("no click link this config reads"), "{m}");
        let m = refusal(&config, "https://t.example/c?aff_id=net-7", &[]).unwrap();
        assert!(m.contains("parameter offer_id is required"), "{m}");
        assert_eq!(
            refusal(&config, "HTTPS://t.example/c?offer_id=1&aff_id=net-7", &[]),
            None
        );
        let _ = std::fs::remove_file(config);
    }

    #[test]
    fn sign_refuses_a_link_of_another_affiliate_unless_told() {
        // A link whose aff_id is net-9 was signed with net-7's key: the Worker checks it under
        // net-9's policy and refuses it.
        let config = sign_config("sign-aff.json", "");
        let other = "https://t.example/c?offer_id=1&aff_id=net-9";
        let m = refusal(&config, other, &[]).expect("another network's link signed");
        assert!(
            m.contains("aff_id is `net-9`, not --network `net-7`"),
            "{m}"
        );
        assert!(m.contains("--any-aff-id"), "{m}");
        assert_eq!(refusal(&config, other, &["--any-aff-id"]), None);
        let _ = std::fs::remove_file(config);
    }

    #[test]
    fn sign_refuses_an_unknown_offer_unless_the_link_format_sends_it_somewhere() {
        let config = sign_config("sign-offer.json", "");
        let m = refusal(
            &config,
            "https://t.example/c?offer_id=404&aff_id=net-7",
            &[],
        )
        .expect("an unknown offer signed");
        assert!(
            m.contains("offer `404` is not in the config, and the link format `clickgate` sends unlisted offers nowhere"),
            "{m}"
        );
        let with_destination = sign_config(
            "sign-offer-links.json",
            r#", "links": [{"id": "tracker", "preset": "clickgate", "destination": "https://tracker.example/click?o={offer_id}"}]"#,
        );
        assert_eq!(
            refusal(
                &with_destination,
                "https://t.example/c?offer_id=404&aff_id=net-7",
                &[]
            ),
            None
        );
        for p in [config, with_destination] {
            let _ = std::fs::remove_file(p);
        }
    }

    #[test]
    fn sign_refuses_a_link_already_signed() {
        // Signing a signed link dropped its signature silently and printed a new one.
        let config = sign_config("sign-signed.json", "");
        let base = "https://t.example/c?offer_id=1&aff_id=net-7";
        for (extra, name) in [
            ("&expires=1795435445&kid=k&signature=abc", "expires"),
            ("&signature=abc", "signature"),
            ("&kid=k", "kid"),
        ] {
            let m = refusal(&config, &format!("{base}{extra}"), &[]).expect("a signed link signed");
            assert!(
                m.contains(&format!("already signed (it carries `{name}`)")),
                "{m}"
            );
        }
        let m = refusal(&config, &format!("{base}&click_id=c-1"), &[]).unwrap();
        assert!(m.contains("give it as --click-id"), "{m}");
        assert_eq!(refusal(&config, base, &["--click-id", "c-1"]), None);
        let _ = std::fs::remove_file(config);
    }
}
