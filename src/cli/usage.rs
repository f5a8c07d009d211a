//! The arguments of `usage`: whose SMTP AUTH sign-ins to list, and over which window.

use std::path::PathBuf;

use clap::Args;

use super::SessionArgs;

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

    /// An exceptions file (identity,setting,value,owner,reason,expires): its SMTP AUTH exceptions
    /// whose mailbox has not signed in with SMTP AUTH in the window are reported as unused, in
    /// usage.json and on the terminal, so that their owners can let them go.
    #[arg(long, value_name = "FILE")]
    pub exceptions: Option<PathBuf>,

    /// The window, in days back from now (Entra keeps 30 days of sign-ins).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=30), value_name = "N")]
    pub days: u64,

    #[command(flatten)]
    pub session: SessionArgs,
}
