//! `remediate`: bring Microsoft 365 mailboxes to a desired state from a CSV.
//!
//! The binary is thin: [`run`] is the one entry point, and tests call it in process. The pieces:
//! `targets` reads the CSV, `settings` knows each remediable setting, `cloud` talks to
//! Microsoft (tokens, retries, throttling), `engine` plans and applies, `report` turns the
//! engine's events into the progress display, the log and the report directory. The simulated tenant everything
//! is tested against is the crate `remediate-sim` (crates/sim), behind the `simulator` feature.

// The library's public face is what the binary needs: `run`, the command line, logging and the
// exit codes. Everything else is the crate's own, so the compiler finds what nothing uses and holds
// the layering; the integration tests' few reaches below the command line go through `testing`.
/// `println!` for what the tool prints on stdout: through [`logging::stdout`], so a closed pipe
/// never panics.
macro_rules! out {
    () => {
        $crate::logging::stdout("\n")
    };
    ($($arg:tt)*) => {
        $crate::logging::stdout(&format!("{}\n", format_args!($($arg)*)))
    };
}

pub mod cli;
mod cloud;
mod commands;
mod diagnosis;
mod engine;
mod error;
mod logging;
mod report;
mod run;
mod settings;
mod sign_ins;
mod support;
mod targets;

pub use error::{Error, Result, exit};
pub use logging::init as init_logging;

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

/// Runs one command to the end and returns the exit code it earned. With `--output json`, a
/// command that fails before it has a summary to print (credentials refused, a bad file) still
/// leaves one JSON object on stdout, its exit code and why, for the script that reads it.
pub async fn run(cli: Cli) -> Result<u8> {
    let json = cli.command.output() == cli::OutputFormat::Json;
    let outcome = dispatch(cli).await;
    if json && let Err(error) = &outcome {
        println!("{}", serde_json::json!({ "exit_code": error.exit_code(), "error": error.to_string() }));
    }
    outcome
}

async fn dispatch(cli: Cli) -> Result<u8> {
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

/// What the integration tests reach below the command line, and nothing else: the client's readings
/// of Microsoft's answers that the contract corpus holds to the documents' examples, the CSV reader
/// the corpus of hostile files is fed to, and what stages a state directory (a held lock, a shard).
/// Not an API: it may change with any release.
#[doc(hidden)]
pub mod testing {
    pub use crate::cloud::auth::sha256_thumbprint;
    pub use crate::cloud::{CloudName, Endpoints, limit_fraction};
    pub use crate::run::lock::acquire as acquire_lock;
    pub use crate::run::record::fingerprint;
    pub use crate::run::shard::Shard;
    pub use crate::support::secret::SecretString;

    /// The mailbox CSV reader.
    pub mod targets {
        pub use crate::targets::{Entry, Input, check_address, open, open_to_list};
    }
    /// `Retry-After` as the client reads it.
    pub mod retry_after {
        pub use crate::cloud::retry_after::parse;
    }
    /// Error bodies as the client reads them.
    pub mod service_error {
        pub use crate::cloud::service_error::{is_exchange_not_found, parse};
    }
    /// The managed identity client in each of its forms.
    pub mod managed {
        pub use crate::cloud::auth::managed::service_fabric::{Thumbprint, pinned_client};
        pub use crate::cloud::auth::managed::{ManagedSource, arc, managed_identity};
    }
}
