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
    let key = match &a.kid {
        Some(kid) => policy.keys.iter().find(|k| k.id == *kid),
        // The newest key still live: the one a rotation added last.
        None => policy
            .keys
            .iter()
            .rev()
            .find(|k| k.not_after_ms.is_none_or(|t| now <= t)),
    }
    .ok_or_else(|| Failure::Usage("no such live key".into()))?;
    // An hour, or less if the network's policy allows less.
    let expires_in = a.expires_in.unwrap_or(policy.max_age_s.min(3600));
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
