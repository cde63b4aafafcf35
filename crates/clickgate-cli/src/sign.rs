//! `sign` and `verify`: links signed and checked under a network's policy in a config file, with
//! the same code the Worker runs.

use std::io::Write;
use std::path::Path;

use clickgate_core::click::{route, split_url, Id, Route};
use clickgate_core::config::networks::Policy;
use clickgate_core::config::Config;
use clickgate_core::signing::{sign_link, verify as verify_signature, Check};

use crate::args::SignArgs;
use crate::config::{validate, Use};
use crate::Failure;

pub fn sign(a: &SignArgs) -> Result<(), Failure> {
    let config = validate(&a.config, Use::Replay)?.config;
    let (_, policy) = network_policy(&config, &a.network)?;
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

pub fn verify(file: &Path, url: &str) -> Result<(), Failure> {
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
}
