//! `scripts/deploy.sh --dry-run`: the wrangler commands a first deploy runs, in order, for
//! production and for staging, with no secret's value in them and nothing changed.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The dry run's output; wrangler is `false`, so a command run for real would fail the script.
fn dry_run(config: &str, extra: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let out = Command::new("bash")
        .arg(root().join("scripts/deploy.sh"))
        .arg(config)
        .arg("--dry-run")
        .args(extra)
        .env("WRANGLER", "false")
        .env("CLICKGATE", env!("CARGO_BIN_EXE_clickgate"))
        .env_remove("TOKEN_SECRET")
        .env_remove("ADMIN_TOKEN")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The commands printed, in order.
fn commands(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("+ "))
        .map(str::trim_end)
        .collect()
}

#[test]
fn a_dry_run_prints_a_first_deploys_commands_and_changes_nothing() {
    let toml = std::fs::read(root().join("wrangler.toml")).unwrap();
    let config = root().join("demo/config.json");
    let (code, stdout, stderr) = dry_run(config.to_str().unwrap(), &[], &[]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let push = format!("clickgate config push {} --remote", config.display());
    assert_eq!(
        commands(&stdout),
        [
            "wrangler kv namespace create CLICKGATE_CONFIG",
            "wrangler secret put TOKEN_SECRET < (the value)",
            "wrangler secret put ADMIN_TOKEN < (the value)",
            push.as_str(),
            "wrangler deploy",
        ]
    );
    assert!(
        stdout.contains("would write the id it prints into wrangler.toml"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read(root().join("wrangler.toml")).unwrap(),
        toml,
        "a dry run leaves wrangler.toml as it was"
    );
}

#[test]
fn a_dry_run_for_staging_names_the_environment_and_the_configs_secrets() {
    let dir = std::env::temp_dir().join(format!("clickgate-deploy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("named.json");
    std::fs::write(
        &config,
        r#"{"version": 1, "offers": [{"id": "1", "landing_url": "https://x.example/", "advertiser_id": "a"}],
            "advertisers": [{"id": "a", "postback_secret": {"secret": "A_POSTBACK"}}],
            "networks": [{"id": "n", "signing": {"keys": [{"id": "k", "secret": {"secret": "N_SIGNING"}}]}}]}"#,
    )
    .unwrap();
    let value = "a-postback-secret-never-printed";
    let (code, stdout, stderr) = dry_run(
        config.to_str().unwrap(),
        &["--env", "staging"],
        &[
            ("A_POSTBACK", value),
            ("ADMIN_TOKEN", "an-admin-token-never-printed"),
        ],
    );
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let push = format!(
        "clickgate config push {} --remote --env staging",
        config.display()
    );
    assert_eq!(
        commands(&stdout),
        [
            "wrangler kv namespace create CLICKGATE_CONFIG --env staging",
            "wrangler secret put TOKEN_SECRET --env staging < (the value)",
            "wrangler secret put ADMIN_TOKEN --env staging < (the value)",
            "wrangler secret put A_POSTBACK --env staging < (the value)",
            "wrangler secret put N_SIGNING --env staging < ($N_SIGNING, not set here)",
            push.as_str(),
            "wrangler deploy --env staging",
        ]
    );
    assert!(!stdout.contains("never-printed"), "{stdout}");
    let (code, _, stderr) = dry_run(config.to_str().unwrap(), &["--env", "prod"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}
