//! The arguments of the commands that contact no service: `validate`, `completions` and `man`.

use std::path::PathBuf;

use clap::Args;

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
