//! The command line. The `///` comments are the help text users read, so they say what an option
//! does and what it defaults to.

use std::time::Duration;

use clap::{ArgAction, Parser, Subcommand};

pub use crate::run::tuning::BulkRead;
#[cfg(feature = "simulator")]
mod sim;
#[cfg(feature = "simulator")]
pub use sim::{ManagedIdentityForm, SimArgs};

mod diagnose;
mod offline;
mod rollback;
mod run;
mod session;
mod usage;
pub use diagnose::{DiagnoseArgs, Switch};
pub use offline::{CompletionsArgs, ManArgs, ValidateArgs};
pub use rollback::RollbackArgs;
pub use run::{ApplyArgs, PlanArgs, RunArgs};
pub use session::{ConnectionArgs, SessionArgs, TuningArgs};
pub use usage::UsageArgs;

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
    /// List the built-in profiles, then every setting: whose it is, its values, what its write needs
    /// granted, and the Microsoft page it follows.
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

impl Command {
    /// What stdout gets at the end, for the commands that run against a tenant; text for the rest.
    pub fn output(&self) -> OutputFormat {
        let session = match self {
            Command::Plan(args) => &args.run.session,
            Command::Apply(args) => &args.run.session,
            Command::Audit(args) => &args.session,
            Command::Usage(args) => &args.session,
            Command::Diagnose(args) => &args.session,
            Command::Rollback(args) => &args.session,
            _ => return OutputFormat::Text,
        };
        session.output
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
