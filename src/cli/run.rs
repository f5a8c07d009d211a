//! The arguments of a run over a tenant's mailboxes (`plan`, `apply`, `audit`): which targets,
//! what they should be, and what the run is compared with.

use std::path::PathBuf;

use clap::Args;

use super::{SessionArgs, Switch, parse_window, share};

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

    /// A desired value, added to or overriding the profile, for any setting `remediate profiles`
    /// lists with its values: smtp-auth=enabled, per-user-mfa=disabled, pop=disabled,
    /// audit=enabled, forwarding=none, shared-sign-in=disabled, and so on.
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
    pub shard: Option<crate::run::shard::Shard>,

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
