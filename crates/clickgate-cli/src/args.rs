//! The command line as types: what each command takes, its help text, and the errors for input
//! that does not fit (clap's, exit code 2).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clickgate_core::config::list_formats::Format as ListFormat;

#[derive(Debug, Parser)]
#[command(
    name = "clickgate",
    version,
    about = "clickgate's operator command line: validate and push config, replay clicks, sign \
             links, and call the Worker's admin API",
    after_help = "environment:
  CLICKGATE_ADMIN_TOKEN   the Worker's ADMIN_TOKEN secret, for block, unblock, blocklist, report,
                          explain and feeds status
  CLICKGATE_POSTBACK_SECRET   the click's advertiser's postback_secret, for reject
  WRANGLER   the wrangler command to run (default: node_modules/.bin/wrangler next to wrangler.toml)",
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a config document, or validate it and write it to KV.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run recorded clicks through a config and print what it would have done.
    ///
    /// CLICKS is the Worker's decision log or CSV with a header. With --against, also the clicks an
    /// older config decides differently. Each network's flood detector runs with the config's
    /// thresholds (the log's earlier days make the baseline): when it would have tripped and how
    /// many clicks the block would have stopped.
    #[command(args_override_self = true)]
    Replay(ReplayArgs),
    /// IP lists in their compiled form.
    #[command(subcommand)]
    List(ListCommand),
    /// Print a link signed under a network's policy.
    ///
    /// Signed with the newest live key unless --kid; valid for --expires-in seconds (default an
    /// hour, or the policy's max_age_seconds if shorter). With --click-ids, one link per click id
    /// in the file (one per line).
    #[command(args_override_self = true)]
    Sign(SignArgs),
    /// Say whether a link passes its network's signature check, and why not.
    #[command(args_override_self = true)]
    Verify(VerifyArgs),
    /// Impose or lift a network's click-flood block through the admin API.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Impose a network's click-flood block until 00:00 UTC (same as `network block`).
    #[command(args_override_self = true)]
    Block(AdminBlockArgs),
    /// Lift a network's click-flood block (same as `network unblock`).
    #[command(args_override_self = true)]
    Unblock(AdminBlockArgs),
    /// The lasting blocklist of affiliates and sub IDs, through the admin API: unlike a network's
    /// block, an entry holds until it is removed. A change is in force within the Worker's config
    /// refresh interval (CONFIG_REFRESH_SECONDS, 30 by default).
    #[command(subcommand)]
    Blocklist(BlocklistCommand),
    /// Print the fraud report from the Worker's admin API.
    ///
    /// Clicks, blocked, would-block, conversions and CR, grouped by any of hour, day, advertiser,
    /// offer, affiliate; the last 24 hours unless --from/--to.
    #[command(args_override_self = true)]
    Report(ReportArgs),
    /// The lists the Worker fetches on its Cron Trigger.
    #[command(subcommand)]
    Feeds(FeedsCommand),
    /// Print everything behind one click's verdict, by its transaction id.
    #[command(args_override_self = true)]
    Explain(ExplainArgs),
    /// Report a transaction id as rejected by another system (an MMP, a tracker), with its reason.
    ///
    /// Sent to the Worker's /rejection with the click's advertiser's postback secret
    /// (CLICKGATE_POSTBACK_SECRET); the click's later conversions are judged invalid
    /// (third_party_rejection) under a rule carrying that filter. Reporting it again changes
    /// nothing.
    #[command(args_override_self = true)]
    Reject(RejectArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell) on stdout.
    ///
    /// For example: `clickgate completions bash > ~/.local/share/bash-completion/completions/clickgate`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a document with the compiler the Worker runs; every problem at once, with its path.
    Validate { file: PathBuf },
    /// Validate a document, then write it to the CLICKGATE_CONFIG KV namespace through wrangler.
    ///
    /// IP lists given as {"file": "name.txt"} are compiled into their own KV keys first, and the
    /// document refers to those keys. wrangler runs in the directory of the nearest wrangler.toml.
    #[command(args_override_self = true)]
    Push(PushArgs),
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("target").required(true).args(["local", "remote"]))]
pub struct PushArgs {
    pub file: PathBuf,
    /// Write to the local KV that `wrangler dev` reads.
    #[arg(long)]
    pub local: bool,
    /// Write to your Cloudflare account's KV.
    #[arg(long)]
    pub remote: bool,
    /// The local state directory (for --local only).
    #[arg(long, value_name = "DIR", conflicts_with = "remote")]
    pub persist_to: Option<PathBuf>,
    /// The wrangler.toml to use (default: the nearest one here or above).
    #[arg(long, value_name = "FILE")]
    pub wrangler_config: Option<PathBuf>,
    /// The wrangler environment whose KV namespace to write (`[env.NAME]`, e.g. staging).
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The config to replay the clicks through.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The clicks: the decision log as printed, `wrangler tail --format json`, a Workers Logs or
    /// Logpush export (NDJSON), or CSV with a header naming its columns (others are left unread).
    #[arg(long, value_name = "LOG")]
    pub clicks: PathBuf,
    /// An older config: also list the clicks it decides differently.
    #[arg(long, value_name = "OLD_FILE")]
    pub against: Option<PathBuf>,
    /// How many of the changed clicks to list.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub changes: usize,
    /// Report and exit 0 even when lines could not be read (they are still counted and named).
    #[arg(long)]
    pub allow_dropped: bool,
}

#[derive(Debug, Subcommand)]
pub enum ListCommand {
    /// Write a list file's compiled form and print its KV key, for uploads by other tooling; an
    /// AS list is written as the JSON array `datacenter_asns` and `vpn_asns` take.
    Compile {
        #[arg(value_name = "LIST_FILE")]
        list: PathBuf,
        #[arg(value_name = "OUT_FILE")]
        out: PathBuf,
        /// The list's format: ips (one address, block or first-last range per line, # comments),
        /// spamhaus, asn, asn-csv, range-csv, aws, gcp, azure, oracle, tor, icloud-relay.
        #[arg(long, value_name = "FORMAT", default_value = "ips", value_parser = parse_format)]
        format: ListFormat,
    },
}

#[derive(Debug, Subcommand)]
pub enum FeedsCommand {
    /// Print each feed the config in KV names, with its last good fetch and last error, from the
    /// Worker's admin API.
    #[command(args_override_self = true)]
    Status(FeedsStatusArgs),
}

#[derive(Debug, Args)]
pub struct FeedsStatusArgs {
    /// Where the Worker answers, e.g. https://track.example.com.
    #[arg(long, value_name = "BASE_URL")]
    pub url: String,
    /// Print the status as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The config holding the network's signing policy.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The network whose policy signs the link.
    #[arg(long, value_name = "ID")]
    pub network: String,
    /// The click link to sign.
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// The key to sign with (default: the newest live one).
    #[arg(long, value_name = "K")]
    pub kid: Option<String>,
    /// Seconds the link stays valid.
    #[arg(long, value_name = "S")]
    pub expires_in: Option<u64>,
    /// A click id the Worker accepts once.
    #[arg(long, value_name = "ID", conflicts_with = "click_ids")]
    pub click_id: Option<String>,
    /// A file of click ids, one per line: one link each.
    #[arg(long, value_name = "FILE")]
    pub click_ids: Option<PathBuf>,
    /// Sign a link whose aff_id is not --network (the Worker refuses it: for testing that).
    #[arg(long)]
    pub any_aff_id: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The config holding the network's signing policy.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The signed click link.
    pub url: String,
}

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Impose the network's click-flood block until 00:00 UTC.
    #[command(args_override_self = true)]
    Block(AdminBlockArgs),
    /// Lift the network's click-flood block.
    #[command(args_override_self = true)]
    Unblock(AdminBlockArgs),
}

#[derive(Debug, Args)]
pub struct AdminBlockArgs {
    /// The network's id.
    pub network: String,
    /// Where the Worker answers, e.g. https://track.example.com.
    #[arg(long, value_name = "BASE_URL")]
    pub url: String,
    /// Who does it, recorded with the block or the lift.
    #[arg(long, value_name = "WHO")]
    pub by: String,
}

#[derive(Debug, Subcommand)]
pub enum BlocklistCommand {
    /// List an affiliate, or one of its sub IDs, until it is removed; its clicks are blocked as
    /// `blocklisted`. The sub ID is the one the deciding rule reads (its sub_id_param, sub1
    /// without a rule). Listing the same again replaces who, when and the note.
    #[command(args_override_self = true)]
    Add(BlocklistEntryArgs),
    /// Print every entry with who listed it and when.
    #[command(args_override_self = true)]
    List(BlocklistListArgs),
    /// Remove an affiliate's entry (without --sub-id) or one sub ID's entry.
    #[command(args_override_self = true)]
    Remove(BlocklistEntryArgs),
}

#[derive(Debug, Args)]
pub struct BlocklistEntryArgs {
    /// Where the Worker answers, e.g. https://track.example.com.
    #[arg(long, value_name = "BASE_URL")]
    pub url: String,
    /// The affiliate (network) id.
    #[arg(long, value_name = "ID")]
    pub aff_id: String,
    /// One sub ID of the affiliate; without it, the whole affiliate.
    #[arg(long, value_name = "SUB_ID")]
    pub sub_id: Option<String>,
    /// Who does it, recorded with the entry and logged.
    #[arg(long, value_name = "WHO")]
    pub by: String,
    /// Why, kept with the entry (add only).
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
}

#[derive(Debug, Args)]
pub struct BlocklistListArgs {
    /// Where the Worker answers, e.g. https://track.example.com.
    #[arg(long, value_name = "BASE_URL")]
    pub url: String,
    /// Print the list as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Where the Worker answers, e.g. https://track.example.com.
    #[arg(long, value_name = "BASE_URL")]
    pub url: String,
    /// The first hour: YYYY-MM-DD or YYYY-MM-DDTHH (UTC).
    #[arg(long, value_name = "DATE")]
    pub from: Option<String>,
    /// The end: YYYY-MM-DD or YYYY-MM-DDTHH (UTC).
    #[arg(long, value_name = "DATE")]
    pub to: Option<String>,
    /// Comma-separated groups: hour, day, advertiser, offer, affiliate, sub_id, country (the last
    /// two with hour, day and affiliate only).
    #[arg(long, value_name = "G,G")]
    pub group_by: Option<String>,
    /// How to print the report.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns, the total last.
    Table,
    /// The Worker's JSON as it sent it.
    Json,
    /// The Worker's CSV as it sent it.
    Csv,
}

#[derive(Debug, Args)]
pub struct RejectArgs {
    /// The click's transaction id (the `tid` of its redirect, `transaction_id` in the log).
    #[arg(long)]
    pub transaction_id: String,
    /// Why the other system rejected it, kept with the click (up to 128 bytes).
    #[arg(long)]
    pub reason: String,
    /// Where the Worker answers, e.g. https://track.example.com.
    #[arg(long, value_name = "BASE_URL")]
    pub url: String,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The click's transaction id (the `tid` of its redirect, `transaction_id` in the log).
    pub transaction_id: String,
    /// Where the Worker answers, e.g. https://track.example.com.
    #[arg(long, value_name = "BASE_URL")]
    pub url: String,
}

fn parse_format(name: &str) -> Result<ListFormat, String> {
    name.parse()
}
