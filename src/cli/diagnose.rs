//! The arguments of `diagnose`: which mailboxes, the client the exit code answers for, and what
//! the tool cannot read for itself.

use std::path::PathBuf;

use clap::Args;

use super::{ClientKind, SessionArgs};

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
