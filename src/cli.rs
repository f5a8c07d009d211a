//! The command line. The `///` comments are the help text users read, so they say what an option
//! does and what it defaults to.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};

pub use crate::tuning::BulkRead;
#[cfg(feature = "simulator")]
mod sim;
use crate::tuning::Tuning;
#[cfg(feature = "simulator")]
pub use sim::{ManagedIdentityForm, SimArgs};

pub use crate::cloud::CloudName;
pub use crate::cloud::auth::CredentialKind;
pub use crate::diagnosis::ClientKind;
pub use crate::logging::LogFormat;
pub use crate::report::OutputFormat;

/// The heading of the flags every command takes, so a subcommand's help lists them once, apart.
const GLOBAL: &str = "Global options";

/// Bring Microsoft 365 mailboxes to a desired state from a CSV: SMTP AUTH, legacy per-user MFA and
/// security defaults, concurrently, inside the service's throttling budget, with a report of every
/// row.
#[derive(Debug, Parser)]
#[command(name = "remediate", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// More detail in the log: -v for debug, -vv for trace. RUST_LOG overrides both.
    #[arg(help_heading = GLOBAL, short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Only warnings and errors, and no progress bar.
    #[arg(help_heading = GLOBAL, short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// How log lines are written to stderr.
    #[arg(help_heading = GLOBAL, long, value_enum, default_value_t = LogFormat::Text, global = true, value_name = "FORMAT")]
    pub log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read every target's settings and show what `apply` would change. Changes nothing.
    Plan(PlanArgs),
    /// Change what differs from the desired state, then report before and after for every row.
    Apply(ApplyArgs),
    /// Read only, for compliance sweeps: exit 0 when compliant, 3 when drift is found, 1 when some
    /// targets could not be read, 2 on configuration errors.
    Audit(RunArgs),
    /// Who signs in with SMTP AUTH: reads the Entra sign-in log once for the window and writes
    /// smtp-auth-usage.csv and report.html. Changes nothing. Needs AuditLog.Read.All and Entra ID
    /// P1 or P2: exit 2 when the log cannot be read, saying why.
    Usage(UsageArgs),
    /// Can these mailboxes send with SMTP AUTH? Checks every layer that decides it (the SMTP AUTH
    /// switches, authentication policies, Basic authentication, security defaults, Conditional
    /// Access, per-user MFA, blocked sign-in) for a client with a password and one with OAuth,
    /// and says which layer blocks each mailbox and how to fix it. Changes nothing. Exit 0 when
    /// every mailbox can send with the --client asked, 3 when some cannot, 1 when a layer could
    /// not be read (the report names the permission), 2 on configuration errors.
    Diagnose(DiagnoseArgs),
    /// Check a mailbox CSV and print each bad row with its line number. Contacts no service.
    Validate(ValidateArgs),
    /// Undo an earlier apply: restore each value it changed, where it is still what was set.
    Rollback(RollbackArgs),
    /// List the built-in profiles and their settings.
    Profiles,
    /// Print a shell's completion script, e.g. `remediate completions bash >
    /// ~/.local/share/bash-completion/completions/remediate`.
    Completions(CompletionsArgs),
    /// Print the manual page (`remediate man | man -l -`), or write one for every command.
    Man(ManArgs),
    /// Serve a simulated tenant (Graph, Exchange admin API, token endpoint) on localhost.
    #[cfg(feature = "simulator")]
    Sim(SimArgs),
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub run: RunArgs,

    /// Exit 3 when changes are pending (0 when there is nothing to change).
    #[arg(long)]
    pub detailed_exitcode: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub run: RunArgs,

    /// Confirm settings that weaken the tenant (security defaults off, MFA off) without a prompt.
    #[arg(help_heading = "Safety", long)]
    pub yes: bool,

    /// Continue the run recorded in this report directory, with its input, profile, options,
    /// exclusions and shard. Finished rows are not touched again; unfinished ones are done.
    #[arg(help_heading = "Safety", long, value_name = "DIR")]
    pub resume: Option<PathBuf>,

    /// With --resume: also try the rows that failed again (by default a resume leaves them as
    /// they are, failed).
    #[arg(help_heading = "Safety", long, requires = "resume")]
    pub retry_failed: bool,

    /// Record every mailbox this run leaves with SMTP AUTH on as an exception in FILE (the CSV
    /// --exceptions reads), with --owner, --reason and --expires, so that the nightly lockdown
    /// holds it there until it expires. A new run adds its entries; earlier ones stay.
    #[arg(help_heading = "Exceptions", long, value_name = "FILE", requires_all = ["owner", "reason", "expires"], conflicts_with = "resume")]
    pub record_exceptions: Option<PathBuf>,

    /// Who owns the recorded exceptions (a person or a team).
    #[arg(help_heading = "Exceptions", long, value_name = "NAME", requires = "record_exceptions")]
    pub owner: Option<String>,

    /// Why the recorded mailboxes keep SMTP AUTH (the device, the ticket).
    #[arg(help_heading = "Exceptions", long, value_name = "TEXT", requires = "record_exceptions")]
    pub reason: Option<String>,

    /// The day the recorded exceptions end (YYYY-MM-DD); from the day after, the lockdown turns
    /// SMTP AUTH off for them.
    #[arg(help_heading = "Exceptions", long, value_name = "DATE", requires = "record_exceptions")]
    pub expires: Option<String>,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The report directory of the apply to undo.
    #[arg(value_name = "DIR", required_unless_present = "resume")]
    pub source: Option<PathBuf>,

    /// Confirm without a prompt.
    #[arg(help_heading = "Safety", long)]
    pub yes: bool,

    /// Continue the rollback recorded in this report directory.
    #[arg(help_heading = "Safety", long, value_name = "DIR", conflicts_with = "source")]
    pub resume: Option<PathBuf>,

    /// With --resume: also try the rows that failed again.
    #[arg(help_heading = "Safety", long, requires = "resume")]
    pub retry_failed: bool,

    #[command(flatten)]
    pub session: SessionArgs,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Input")]
pub struct UsageArgs {
    /// A mailbox CSV: its mailboxes are marked in_input (matched by UPN); every user of the log
    /// is listed.
    #[arg(value_name = "MAILBOXES.csv")]
    pub input: Option<PathBuf>,

    /// The column that names each mailbox (as for apply).
    #[arg(long, value_name = "NAME")]
    pub column: Option<String>,

    /// No CSV: every user of the tenant that signed in with SMTP AUTH.
    #[arg(long, conflicts_with = "input")]
    pub all_mailboxes: bool,

    /// The window, in days back from now (Entra keeps 30 days of sign-ins).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=30), value_name = "N")]
    pub days: u64,

    #[command(flatten)]
    pub session: SessionArgs,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Input")]
pub struct DiagnoseArgs {
    /// A mailbox CSV (as for apply).
    #[arg(value_name = "MAILBOXES.csv")]
    pub input: Option<PathBuf>,

    /// The column that names each mailbox (as for apply).
    #[arg(long, value_name = "NAME")]
    pub column: Option<String>,

    /// No CSV: every mailbox of the tenant (read in pages of 1,000).
    #[arg(long, conflicts_with = "input")]
    pub all_mailboxes: bool,

    /// The client the exit code answers for: basic (a username and a password: printers,
    /// scanners, old apps) or oauth (the way Microsoft recommends). Both are reported.
    #[arg(long, value_enum, default_value_t = ClientKind::Basic, value_name = "KIND")]
    pub client: ClientKind,

    /// Whether the tenant's Basic authentication for SMTP AUTH is on. Microsoft turns it off by
    /// default for existing tenants at the end of December 2026 (administrators can turn it back
    /// on for a time) and documents no way for an app to read it: until then the tool takes it as
    /// on; from then on it is unknown unless you say.
    #[arg(long, value_enum, value_name = "ON|OFF")]
    pub basic_auth_smtp: Option<Switch>,

    /// Days of SMTP AUTH sign-ins read as evidence: the last result and the Conditional Access
    /// policies it met (needs AuditLog.Read.All and Entra ID P1 or P2; 0 reads none).
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u64).range(0..=30), value_name = "N")]
    pub sign_in_days: u64,

    #[command(flatten)]
    pub session: SessionArgs,
}

/// On or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write remediate.1 and a page per command (remediate-apply.1, …) into this directory
    /// instead of printing the main page.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The mailbox CSV: a header row and one mailbox per row.
    #[arg(value_name = "MAILBOXES.csv")]
    pub input: PathBuf,

    /// The column that names each mailbox (default: the first of UserPrincipalName,
    /// PrimarySmtpAddress, EmailAddress, Mail, UPN, Identity, any letter case).
    #[arg(long, value_name = "NAME")]
    pub column: Option<String>,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Input")]
pub struct RunArgs {
    /// The mailbox CSV: a header row and one mailbox per row (UTF-8, `,` or `;`); `-` reads it
    /// from standard input (kept in the report directory as input.csv, for a resume).
    #[arg(value_name = "MAILBOXES.csv")]
    pub input: Option<PathBuf>,

    /// The column that names each mailbox (default: the first of UserPrincipalName,
    /// PrimarySmtpAddress, EmailAddress, Mail, UPN, Identity, any letter case).
    #[arg(long, value_name = "NAME")]
    pub column: Option<String>,

    /// A built-in profile (see `remediate profiles`) or a TOML profile file.
    #[arg(long, value_name = "NAME|FILE")]
    pub profile: Option<String>,

    /// A desired value, added to or overriding the profile: security-defaults=enabled|disabled,
    /// smtp-auth=enabled|disabled|inherit, per-user-mfa=disabled|enabled|enforced.
    #[arg(long = "set", value_name = "SETTING=VALUE")]
    pub set: Vec<String>,

    /// Any bad row in the CSV stops the run (exit 2) before anything is read or changed.
    #[arg(long)]
    pub strict: bool,

    /// The share of targets that may be missing from the directory before the run counts as
    /// failed (exit 1): above it, the list or the tenant is probably the wrong one. No real list
    /// reaches the default.
    #[arg(long, default_value_t = 0.5, value_parser = share, value_name = "SHARE")]
    pub max_not_found: f64,

    /// Every mailbox of the tenant instead of a CSV (read in pages of 1,000).
    #[arg(long, conflicts_with = "input")]
    pub all_mailboxes: bool,

    /// With --all-mailboxes: a file of tenants (id or domain, one a line), each with the same
    /// app registration consented; they run concurrently, each with its own tokens, rates and lock.
    /// (A CSV names each row's tenant in a `tenant` column instead.)
    #[arg(long, value_name = "FILE", requires = "all_mailboxes")]
    pub tenants: Option<PathBuf>,

    /// Addresses or `*@domain` patterns, one a line (# for comments): those targets are reported
    /// as skipped (excluded) and never touched.
    #[arg(long, value_name = "FILE")]
    pub exclude: Option<PathBuf>,

    /// Take a stable share of the targets: K of N (0-based), by a hash of the identity, so N
    /// machines or Kubernetes Indexed Job pods split one run with no overlap.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<crate::shard::Shard>,

    /// Keep only targets whose user signed in with SMTP AUTH (any result) in this window, e.g.
    /// 30d; the rest are reported as skipped. Reads the Entra sign-in log once before the run
    /// (AuditLog.Read.All, Entra ID P1 or P2). With smtp-auth-fix: SMTP AUTH on just where a
    /// device needs it.
    #[arg(long, value_name = "DURATION", value_parser = parse_window, conflicts_with = "spare_smtp_auth_seen")]
    pub only_smtp_auth_seen: Option<String>,

    /// Leave alone targets whose user signed in with SMTP AUTH successfully in this window, e.g.
    /// 30d: reported as skipped, "signed in with SMTP AUTH on DATE". With smtp-auth-lockdown: the
    /// sweep never breaks a device that is still sending.
    #[arg(long, value_name = "DURATION", value_parser = parse_window)]
    pub spare_smtp_auth_seen: Option<String>,

    /// Exceptions that are owned and expire: a CSV `identity,setting,value,owner,reason,expires`
    /// (the file --record-exceptions writes). An excepted mailbox is held at its value and
    /// reported `excepted`; drift from that value is drift; an expired one is reported and the
    /// profile's value applies again.
    #[arg(long, value_name = "FILE")]
    pub exceptions: Option<PathBuf>,

    /// With the SMTP AUTH fix: assign this Exchange authentication policy (one with
    /// AllowBasicAuthSmtp) to the targets whose authentication policy stops Basic SMTP AUTH, and
    /// to no others; journaled, undone by rollback. Exchange applies it within 24 hours.
    #[arg(help_heading = "SMTP AUTH layers", long, value_name = "NAME")]
    pub basic_auth_policy: Option<String>,

    /// With the SMTP AUTH fix: add the targets a Conditional Access policy blocks to this group
    /// (name or id), which the blocking policies already exclude, and no others; journaled, undone
    /// by rollback. The tool never creates or edits a Conditional Access policy.
    #[arg(help_heading = "SMTP AUTH layers", long, value_name = "NAME|ID")]
    pub ca_exclusion_group: Option<String>,

    /// Whether the tenant's Basic authentication for SMTP AUTH is on, for the smtp-auth-effective
    /// verdict (as for diagnose: unknown from the end of December 2026 unless you say).
    #[arg(help_heading = "SMTP AUTH layers", long, value_enum, value_name = "ON|OFF")]
    pub basic_auth_smtp: Option<Switch>,

    /// What this run is compared with (drift.csv, the summary and report.html list what changed
    /// since): a previous run's report directory, or the directory that holds them, where the
    /// newest complete one is taken (a night that did not finish never is; none on the first).
    #[arg(help_heading = "Output", long, value_name = "DIR")]
    pub baseline: Option<PathBuf>,

    /// Keep only the newest N report directories beside this run's (same parent directory),
    /// removing older ones once this run is done; this run's own is never counted or removed.
    #[arg(help_heading = "Output", long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub keep: Option<u64>,

    /// Run against an in-process simulated tenant seeded from the CSV; needs no credentials.
    #[arg(help_heading = "Connection", long)]
    pub simulate: bool,

    #[command(flatten)]
    pub session: SessionArgs,
}

/// What every run against a tenant takes: where, how fast, where the report and state go.
#[derive(Debug, Args)]
pub struct SessionArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,

    #[command(flatten)]
    pub tuning: TuningArgs,

    /// Where the report goes (default: ./remediate-<command>-<UTC timestamp>/).
    #[arg(help_heading = "Output", long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,

    /// Where the per-tenant locks and the budgets measured live (default: ~/.cache/remediate).
    #[arg(help_heading = "Output", long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// What stdout gets at the end: the story and the recap as text, or the summary (as in
    /// summary.json, with `report_dir`) as one JSON object for a script to read.
    #[arg(help_heading = "Output", long, value_enum, default_value_t = OutputFormat::Text, value_name = "FORMAT")]
    pub output: OutputFormat,

    /// After Ctrl-C or SIGTERM, how long requests in flight may take before they are abandoned.
    #[arg(help_heading = "Safety", long, default_value = "30s", value_parser = ranges::wait("--grace"), value_name = "DURATION")]
    pub grace: Duration,
}

#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Connection")]
pub struct ConnectionArgs {
    /// The tenant's id (a GUID) or its initial domain.
    #[arg(long, env = "AZURE_TENANT_ID", value_name = "ID")]
    pub tenant_id: Option<String>,

    /// The app registration's application (client) id. The secret comes from AZURE_CLIENT_SECRET
    /// or --client-secret-file, a certificate from AZURE_CLIENT_CERTIFICATE_PATH, workload identity
    /// from AZURE_FEDERATED_TOKEN_FILE; never from an argument.
    #[arg(long, env = "AZURE_CLIENT_ID", value_name = "ID")]
    pub client_id: Option<String>,

    /// A file holding the client secret (keep it readable by you alone).
    #[arg(long, value_name = "FILE")]
    pub client_secret_file: Option<PathBuf>,

    /// The credential to sign in with (default: the first that is set up, in this order: secret,
    /// certificate, workload identity, managed identity of App Service or Functions, the Azure
    /// CLI's account; a VM's managed identity only when named). The log says which was used.
    #[arg(long, value_enum, value_name = "KIND")]
    pub credential: Option<CredentialKind>,

    /// The Microsoft cloud: sets the default login, Graph and Exchange hosts.
    #[arg(long, value_enum, default_value_t = CloudName::Global)]
    pub cloud: CloudName,

    /// Token endpoint base URL (default: AZURE_AUTHORITY_HOST, else the cloud's login host).
    #[arg(long, env = "REMEDIATE_LOGIN_URL", value_name = "URL")]
    pub login_url: Option<String>,

    /// The identity platform's host, as azure-identity reads it (the AKS workload-identity
    /// webhook sets it); --login-url wins.
    #[arg(long, env = "AZURE_AUTHORITY_HOST", value_name = "URL")]
    pub authority_host: Option<String>,

    /// Microsoft Graph base URL (default: the cloud's Graph host).
    #[arg(long, env = "REMEDIATE_GRAPH_URL", value_name = "URL")]
    pub graph_url: Option<String>,

    /// Exchange Online base URL (default: the cloud's Exchange host).
    #[arg(long, env = "REMEDIATE_EXCHANGE_URL", value_name = "URL")]
    pub exchange_url: Option<String>,
}

#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Tuning")]
pub struct TuningArgs {
    /// Targets worked on at once.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=4096), value_name = "N")]
    pub concurrency: u32,

    /// A safety ceiling on Graph requests a second. The rate itself needs no flag: it starts from
    /// the budget the last run on this tenant measured (else from what the smallest tenants allow),
    /// and settles just under the budget the service's answers show (350–800 resource units a
    /// second; a read costs 1–2).
    #[arg(long, default_value_t = 2000.0, value_parser = ranges::rate("--graph-rps"), value_name = "PER_SECOND")]
    pub graph_rps: f64,

    /// A safety ceiling on Graph writes a second (the service allows about 20 per app and tenant).
    #[arg(long, default_value_t = 100.0, value_parser = ranges::rate("--graph-write-rps"), value_name = "PER_SECOND")]
    pub graph_write_rps: f64,

    /// A safety ceiling on Exchange admin API requests a second.
    #[arg(long, default_value_t = 100.0, value_parser = ranges::rate("--exchange-rps"), value_name = "PER_SECOND")]
    pub exchange_rps: f64,

    /// Exchange admin API requests in flight at once (the service allows a few per tenant).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64), value_name = "N")]
    pub exchange_inflight: u32,

    /// Attempts per request, the first included, before a transient error counts as a failure.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100), value_name = "N")]
    pub max_attempts: u32,

    /// How long one request may take: 30, 30s, 500ms, 2m.
    #[arg(long, default_value = "30s", value_parser = ranges::wait("--request-timeout"), value_name = "DURATION")]
    pub request_timeout: Duration,

    /// Send every Graph request on its own instead of in `$batch` requests of up to 20.
    #[arg(long)]
    pub no_batch: bool,

    /// Send at the ceilings throughout: no warm-up, no remembered budgets, no slowing down on 429
    /// or a nearly spent budget (a 429 still pauses every worker until its Retry-After).
    #[arg(long)]
    pub fixed_rate: bool,

    /// Read SMTP AUTH for every mailbox of the tenant in pages of 1,000 instead of one request per
    /// target: `auto` does so from 1,000 targets on.
    #[arg(long, value_enum, default_value_t = BulkRead::Auto, value_name = "WHEN")]
    pub bulk_read: BulkRead,
}

impl From<&TuningArgs> for Tuning {
    fn from(args: &TuningArgs) -> Tuning {
        Tuning {
            concurrency: args.concurrency,
            graph_rps: args.graph_rps,
            graph_write_rps: args.graph_write_rps,
            exchange_rps: args.exchange_rps,
            exchange_inflight: args.exchange_inflight,
            max_attempts: args.max_attempts,
            request_timeout: args.request_timeout,
            no_batch: args.no_batch,
            fixed_rate: args.fixed_rate,
            bulk_read: args.bulk_read,
        }
    }
}

/// A share from 0 to 1.
fn share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if (0.0..=1.0).contains(&value) => Ok(value),
        _ => Err(format!("'{text}' is not a share: write a number from 0 to 1, e.g. 0.5")),
    }
}

/// The simulator's budgets (its own flags; the runner's ceilings have their ranges in `ranges`).
#[cfg(feature = "simulator")]
fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!("'{text}' is not a positive number")),
    }
}

/// A sign-in window: a duration of at most 30 days (what Entra keeps), as typed.
fn parse_window(text: &str) -> Result<String, String> {
    let window = parse_duration(text)?;
    if window > Duration::from_secs(30 * 86_400) {
        return Err(format!("'{text}' is longer than the 30 days of sign-ins Entra keeps"));
    }
    Ok(text.trim().to_string())
}

/// `30`, `30s`, `1.5s`, `500ms`, `2m`, `1h`, `30d`: a positive duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("'{text}' is not a duration (try 30s, 500ms or 2m)"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86_400.0,
        _ => {
            return Err(format!("'{text}' has an unknown unit '{unit}' (use ms, s, m, h or d)"));
        }
    };
    if !(seconds.is_finite() && seconds > 0.0 && seconds < 1e9) {
        return Err(format!("'{text}' is not a positive duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

mod ranges;

#[cfg(test)]
mod tests;
