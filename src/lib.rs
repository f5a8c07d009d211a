//! `remediate`: bring Microsoft 365 mailboxes to a desired state from a CSV.
//!
//! The binary is thin: [`run`] is the one entry point, and tests call it in process. The pieces:
//! [`targets`] reads the CSV, [`settings`] knows each remediable setting, [`cloud`] talks to
//! Microsoft (tokens, retries, throttling), [`engine`] plans and applies, [`report`] turns the
//! engine's events into the progress display, the log and the report directory. The simulated tenant everything
//! is tested against is the crate `remediate-sim` (crates/sim), behind the `simulator` feature.

pub mod budgets;
pub mod cli;
pub mod cloud;
mod commands;
pub mod diagnosis;
pub mod engine;
pub mod error;
pub mod exceptions;
pub mod files;
pub mod lock;
pub mod logging;
pub mod profile;
pub mod report;
pub mod run_record;
pub mod scope;
pub mod secret;
pub mod settings;
pub mod shard;
pub mod sign_ins;
mod stable_hash;
pub mod stop;
pub mod targets;
pub mod timestamp;
pub mod tuning;

pub use error::{Error, Result, exit};

use cli::{Cli, Command};

/// The exit code a run's outcome earns, saying the error (if any) on stderr: the one place that
/// turns errors into exit codes, for the binary and for tests alike.
pub fn exit_code(outcome: Result<u8>) -> u8 {
    match outcome {
        Ok(code) => code,
        Err(error) => {
            logging::say(logging::Loudness::Error, "error", &error.to_string());
            error.exit_code()
        }
    }
}

/// Runs one command to the end and returns the exit code it earned.
pub async fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Plan(args) => commands::plan(args, cli.quiet).await,
        Command::Apply(args) => commands::apply(args, cli.quiet).await,
        Command::Rollback(args) => commands::rollback(args, cli.quiet).await,
        Command::Validate(args) => commands::validate(args),
        Command::Profiles => commands::profiles(),
        Command::Usage(args) => commands::usage(args, cli.quiet).await,
        Command::Diagnose(args) => commands::diagnose(args, cli.quiet).await,
        Command::Completions(args) => commands::completions(args),
        Command::Man(args) => commands::manual(args),
        Command::Audit(args) => commands::audit(args, cli.quiet).await,
        #[cfg(feature = "simulator")]
        Command::Sim(args) => commands::sim(args).await,
    }
}
