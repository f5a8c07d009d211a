//! The `remediate` binary: parse the command line, start logging and the runtime, run, and turn
//! the outcome into an exit code. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = remediate::cli::Cli::parse();
    remediate::logging::init(cli.verbose, cli.quiet, cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
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
