//! The arguments of `rollback`: which apply to undo, or which rollback to continue.

use std::path::PathBuf;

use clap::Args;

use super::SessionArgs;

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
