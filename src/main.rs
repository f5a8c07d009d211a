//! The `remediate` binary: parse the command line, start logging and the runtime, run, and turn
//! the outcome into an exit code. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = remediate::cli::Cli::parse();
    remediate::init_logging(cli.verbose, cli.quiet, cli.log_format);
    let runtime = match runtime_for(&cli.command).enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(remediate::exit::NOTHING_DONE);
        }
    };
    let code = remediate::exit_code(runtime.block_on(remediate::run(cli)));
    // Don't wait for stragglers (a request held by a slow reply) once the report is written.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    ExitCode::from(code)
}

/// The runner on one thread: its work is waiting (on the service's budget, on answers, on the
/// disk), and a run's CPU goes to waking up for each event. A second worker thread only added
/// wake-ups between the two (12 % of the CPU of a throttled run of 10,000 mailboxes, measured
/// with `benches/throughput.rs`). Blocking work (the CSV, the journal) has threads of its own.
/// The simulator serves many clients at once, and keeps a thread per core.
fn runtime_for(command: &remediate::cli::Command) -> tokio::runtime::Builder {
    #[cfg(feature = "simulator")]
    if matches!(command, remediate::cli::Command::Sim(_)) {
        return tokio::runtime::Builder::new_multi_thread();
    }
    let _ = command;
    tokio::runtime::Builder::new_current_thread()
}
