//! `clickgate`, the operator's command line.
//!
//! ```text
//! clickgate config validate FILE
//! clickgate config push FILE (--local | --remote) [--persist-to DIR] [--wrangler-config FILE] [--env NAME]
//! clickgate replay --config FILE --clicks LOG [--against OLD_FILE] [--changes N] [--allow-dropped]
//! clickgate list compile LIST_FILE OUT_FILE [--format FORMAT]
//! clickgate sign --config FILE --network ID --url URL [--kid K] [--expires-in S] [--click-id ID | --click-ids FILE] [--any-aff-id]
//! clickgate verify --config FILE URL
//! clickgate network (block | unblock) NETWORK --url BASE_URL --by WHO   (also: clickgate block ...)
//! clickgate report --url BASE_URL [--from DATE] [--to DATE] [--group-by G,G] [--format table|json|csv]
//! clickgate explain TRANSACTION_ID --url BASE_URL
//! clickgate reject --transaction-id ID --reason TEXT --url BASE_URL
//! clickgate feeds status --url BASE_URL [--json]
//! clickgate completions (bash | zsh | fish | elvish | powershell)
//! ```
//!
//! `args` says what each command takes; this file runs it and turns its outcome into an exit code.

mod admin;
mod args;
mod config;
mod replay;
mod sign;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use args::{
    BlocklistCommand, Cli, Command, ConfigCommand, FeedsCommand, ListCommand, NetworkCommand,
};
use config::Use;

/// Exit codes: 0 done, 1 the document (or link) is invalid, 2 the command line is wrong, 3 a file,
/// wrangler or the Worker failed.
#[derive(Debug)]
pub enum Failure {
    Invalid,
    /// Arguments clap refused, or a request for help or the version (clap prints those itself).
    Args(clap::Error),
    /// Arguments that parse but do not fit what they name: no such network, key or link.
    Usage(String),
    Io(String),
}

fn main() -> ExitCode {
    match run(std::env::args_os()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Invalid) => ExitCode::from(1),
        Err(Failure::Args(e)) => {
            let _ = e.print();
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
        }
        Err(Failure::Usage(msg)) => {
            eprintln!("clickgate: {msg}\n\nFor more information, try '--help'.");
            ExitCode::from(2)
        }
        Err(Failure::Io(msg)) => {
            eprintln!("clickgate: {msg}");
            ExitCode::from(3)
        }
    }
}

/// Runs one command line, the program's name first.
fn run(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> Result<(), Failure> {
    let cli = Cli::try_parse_from(args).map_err(Failure::Args)?;
    match cli.command {
        Command::Config(ConfigCommand::Validate { file }) => {
            config::validate(&file, Use::Check).map(|_| ())
        }
        Command::Config(ConfigCommand::Push(a)) => config::push(&a),
        Command::Replay(a) => replay::replay(&a),
        Command::List(ListCommand::Compile { list, out, format }) => {
            config::compile_list(&list, &out, format)
        }
        Command::Sign(a) => sign::sign(&a),
        Command::Verify(a) => sign::verify(&a.config, &a.url),
        Command::Network(NetworkCommand::Block(a)) | Command::Block(a) => {
            admin::network_admin("block", &a)
        }
        Command::Network(NetworkCommand::Unblock(a)) | Command::Unblock(a) => {
            admin::network_admin("unblock", &a)
        }
        Command::Blocklist(BlocklistCommand::Add(a)) => admin::blocklist_change("add", &a),
        Command::Blocklist(BlocklistCommand::Remove(a)) => admin::blocklist_change("remove", &a),
        Command::Blocklist(BlocklistCommand::List(a)) => admin::blocklist_list(&a),
        Command::Report(a) => admin::report(&a),
        Command::Explain(a) => admin::explain(&a.transaction_id, &a.url),
        Command::Reject(a) => admin::reject(&a),
        Command::Feeds(FeedsCommand::Status(a)) => admin::feeds_status(&a),
        Command::Completions { shell } => {
            completions(shell, &mut std::io::stdout().lock());
            Ok(())
        }
    }
}

fn completions(shell: clap_complete::Shell, out: &mut impl std::io::Write) {
    clap_complete::generate(shell, &mut Cli::command(), "clickgate", out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;
    use std::path::PathBuf;

    /// Runs `clickgate WORDS...` in this process.
    pub fn run_words(words: &[&str]) -> Result<(), Failure> {
        run(std::iter::once("clickgate").chain(words.iter().copied()))
    }

    pub fn scratch(name: &str, text: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("clickgate-cli-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The kind of error clap gives for a command line, and its message.
    fn refused(words: &[&str]) -> (ErrorKind, String) {
        match run_words(words) {
            Err(Failure::Args(e)) => (e.kind(), e.to_string()),
            other => panic!("{words:?} was not refused by the parser: {other:?}"),
        }
    }

    fn parsed(words: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("clickgate").chain(words.iter().copied()))
            .unwrap_or_else(|e| panic!("{words:?}: {e}"))
    }

    fn push_args(words: &[&str]) -> args::PushArgs {
        let mut all = vec!["config", "push", "c.json"];
        all.extend(words);
        match parsed(&all).command {
            Command::Config(ConfigCommand::Push(a)) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_commands_are_usage_errors() {
        let (kind, _) = refused(&[]);
        assert_eq!(kind, ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand);
        let (kind, msg) = refused(&["config", "frobnicate"]);
        assert_eq!(kind, ErrorKind::InvalidSubcommand, "{msg}");
        assert!(msg.contains("frobnicate"), "{msg}");
        assert!(matches!(
            run_words(&["config", "validate", "/nonexistent/x.json"]),
            Err(Failure::Io(_))
        ));
    }

    #[test]
    fn every_refused_command_line_exits_with_two_and_help_and_version_with_zero() {
        for words in [
            &[][..],
            &["frobnicate"],
            &["config", "validate"],
            &["sign", "--config", "c.json", "--network", "n"],
            &["report", "--url", "u", "--format", "xml"],
            &[
                "replay",
                "--config",
                "c",
                "--clicks",
                "k",
                "--changes",
                "many",
            ],
        ] {
            match run_words(words) {
                Err(Failure::Args(e)) => assert_eq!(e.exit_code(), 2, "{words:?}"),
                other => panic!("{words:?}: {other:?}"),
            }
        }
        for words in [
            &["--help"][..],
            &["help"],
            &["report", "--help"],
            &["--version"],
        ] {
            match run_words(words) {
                Err(Failure::Args(e)) => assert_eq!(e.exit_code(), 0, "{words:?}"),
                other => panic!("{words:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn version_is_the_crates() {
        let (kind, text) = refused(&["--version"]);
        assert_eq!(kind, ErrorKind::DisplayVersion);
        assert_eq!(text, format!("clickgate {}\n", env!("CARGO_PKG_VERSION")));
    }

    #[test]
    fn each_command_has_its_own_help() {
        let (kind, text) = refused(&["sign", "--help"]);
        assert_eq!(kind, ErrorKind::DisplayHelp);
        assert!(text.contains("--click-ids <FILE>"), "{text}");
        assert!(text.contains("newest live key"), "{text}");
        let (_, text) = refused(&["config", "push", "--help"]);
        assert!(text.contains("--persist-to <DIR>"), "{text}");
        let (_, text) = refused(&["--help"]);
        assert!(text.contains("CLICKGATE_ADMIN_TOKEN"), "{text}");
        for command in [
            "config", "replay", "list", "sign", "verify", "network", "block",
        ] {
            assert!(text.contains(command), "{command} missing from {text}");
        }
    }

    #[test]
    fn push_needs_exactly_one_target() {
        let (kind, msg) = refused(&["config", "push", "c.json"]);
        assert_eq!(kind, ErrorKind::MissingRequiredArgument);
        assert!(msg.contains("--local|--remote"), "{msg}");
        let (kind, msg) = refused(&["config", "push", "c.json", "--local", "--remote"]);
        assert_eq!(kind, ErrorKind::ArgumentConflict, "{msg}");
        assert!(!push_args(&["--local", "--local"]).remote);
        assert!(push_args(&["--remote"]).remote);
    }

    #[test]
    fn push_options_take_values() {
        let o = push_args(&[
            "--local",
            "--persist-to",
            "/tmp/x",
            "--wrangler-config",
            "w.toml",
        ]);
        assert_eq!(o.persist_to, Some(PathBuf::from("/tmp/x")));
        assert_eq!(o.wrangler_config, Some(PathBuf::from("w.toml")));
        assert_eq!(
            push_args(&["--remote", "--env", "staging"]).env.as_deref(),
            Some("staging")
        );
        let (kind, _) = refused(&["config", "push", "c.json", "--local", "--persist-to"]);
        assert_eq!(kind, ErrorKind::InvalidValue);
        let (kind, msg) = refused(&["config", "push", "c.json", "--remote", "--persist-to", "d"]);
        assert_eq!(kind, ErrorKind::ArgumentConflict, "{msg}");
        let (kind, msg) = refused(&["config", "push", "c.json", "--local", "--force"]);
        assert_eq!(kind, ErrorKind::UnknownArgument);
        assert!(msg.contains("--force"), "{msg}");
    }

    #[test]
    fn bad_values_are_refused_with_the_flag_named() {
        let (kind, msg) = refused(&["report", "--url", "u", "--format", "xml"]);
        assert_eq!(kind, ErrorKind::InvalidValue);
        assert!(
            msg.contains("--format") && msg.contains("table, json, csv"),
            "{msg}"
        );
        let (kind, msg) = refused(&[
            "sign",
            "--config",
            "c",
            "--network",
            "n",
            "--url",
            "u",
            "--expires-in",
            "soon",
        ]);
        assert_eq!(kind, ErrorKind::ValueValidation);
        assert!(msg.contains("--expires-in"), "{msg}");
        let (kind, _) = refused(&[
            "sign",
            "--config",
            "c",
            "--network",
            "n",
            "--url",
            "u",
            "--click-id",
            "a",
            "--click-ids",
            "f",
        ]);
        assert_eq!(kind, ErrorKind::ArgumentConflict);
        let (kind, msg) = refused(&["block", "net-7", "--url", "u"]);
        assert_eq!(kind, ErrorKind::MissingRequiredArgument);
        assert!(msg.contains("--by <WHO>"), "{msg}");
        let (kind, msg) = refused(&["explain", "--url", "u"]);
        assert_eq!(kind, ErrorKind::MissingRequiredArgument);
        assert!(msg.contains("TRANSACTION_ID"), "{msg}");
    }

    #[test]
    fn block_and_unblock_read_the_same_with_or_without_network() {
        for (verb, words) in [
            (
                "block",
                &["network", "block", "net-7", "--url", "u", "--by", "a"][..],
            ),
            ("block", &["block", "net-7", "--by", "a", "--url", "u"]),
            (
                "unblock",
                &["network", "unblock", "net-7", "--url", "u", "--by", "a"],
            ),
            ("unblock", &["unblock", "net-7", "--by", "a", "--url", "u"]),
        ] {
            let (read, a) = match parsed(words).command {
                Command::Network(NetworkCommand::Block(a)) | Command::Block(a) => ("block", a),
                Command::Network(NetworkCommand::Unblock(a)) | Command::Unblock(a) => {
                    ("unblock", a)
                }
                other => panic!("{other:?}"),
            };
            assert_eq!(
                (read, a.network.as_str(), a.url.as_str(), a.by.as_str()),
                (verb, "net-7", "u", "a"),
                "{words:?}"
            );
        }
    }

    #[test]
    fn blocklist_commands_read_the_entry_and_list_needs_only_the_address() {
        let Command::Blocklist(BlocklistCommand::Add(a)) = parsed(&[
            "blocklist",
            "add",
            "--url",
            "u",
            "--aff-id",
            "net-7",
            "--sub-id",
            "s1",
            "--by",
            "a",
            "--note",
            "why",
        ])
        .command
        else {
            panic!("not an add")
        };
        assert_eq!(
            (
                a.aff_id.as_str(),
                a.sub_id.as_deref(),
                a.by.as_str(),
                a.note.as_deref()
            ),
            ("net-7", Some("s1"), "a", Some("why"))
        );
        assert!(matches!(
            parsed(&["blocklist", "remove", "--url", "u", "--aff-id", "n", "--by", "a"]).command,
            Command::Blocklist(BlocklistCommand::Remove(a)) if a.sub_id.is_none()
        ));
        assert!(matches!(
            parsed(&["blocklist", "list", "--url", "u"]).command,
            Command::Blocklist(BlocklistCommand::List(_))
        ));
        // Who does it is recorded: an addition without --by is refused before any call.
        assert!(Cli::try_parse_from([
            "clickgate",
            "blocklist",
            "add",
            "--url",
            "u",
            "--aff-id",
            "n"
        ])
        .is_err());
    }

    #[test]
    fn completions_are_scripts_for_each_shell() {
        use clap_complete::Shell;
        for (shell, marker) in [
            (Shell::Bash, "complete -F"),
            (Shell::Zsh, "#compdef clickgate"),
            (Shell::Fish, "complete -c clickgate"),
        ] {
            let mut out = Vec::new();
            completions(shell, &mut out);
            let script = String::from_utf8(out).unwrap();
            assert!(script.contains(marker), "{shell}: {script}");
            // Every command is offered, down to the nested ones.
            for word in ["config", "push", "replay", "unblock", "completions"] {
                assert!(script.contains(word), "{shell} lacks {word}");
            }
        }
        assert!(matches!(run_words(&["completions", "bash"]), Ok(())));
        assert_eq!(refused(&["completions", "tcsh"]).0, ErrorKind::InvalidValue);
    }

    #[test]
    fn reject_takes_the_transaction_id_the_reason_and_the_worker() {
        let words = [
            "reject",
            "--transaction-id",
            "AQG",
            "--reason",
            "install rejected",
            "--url",
            "u",
        ];
        let Command::Reject(a) = parsed(&words).command else {
            panic!("not a rejection");
        };
        assert_eq!(
            (a.transaction_id.as_str(), a.reason.as_str(), a.url.as_str()),
            ("AQG", "install rejected", "u")
        );
        let (kind, msg) = refused(&["reject", "--transaction-id", "AQG", "--url", "u"]);
        assert_eq!(kind, ErrorKind::MissingRequiredArgument);
        assert!(msg.contains("--reason"), "{msg}");
    }
}
