//! The commands: `plan`, `apply`, `validate` and `profiles`. Each turns its arguments into the
//! engine's inputs, runs, and says which exit code the run earned.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::cli::{RunArgs, ValidateArgs};
use crate::cloud::exchange::UNSUPPORTED_NOTE;
use crate::connection::{self, Connection};
use crate::engine::events::{Event, EventSink, Outcome};
use crate::engine::{self, Context, Mode};
use crate::error::{Error, Result, exit};
use crate::profile;
use crate::report::{Report, summary};
use crate::settings::{DesiredState, Setting, Value};
use crate::targets::{self, Entry};

const RETIREMENT_NOTE: &str = "Basic authentication for SMTP AUTH is being retired in Exchange Online: off by default for existing tenants from the end of December 2026, with final removal to be announced for the second half of 2027. Plan a move to OAuth for SMTP AUTH, High Volume Email, Azure Communication Services Email or a relay connector.";

/// Profile plus `--set`s; an empty result is a mistake.
fn desired_state(args: &RunArgs) -> Result<(DesiredState, Option<String>)> {
    let mut desired = DesiredState::default();
    let mut name = None;
    if let Some(profile) = &args.profile {
        let profile = profile::load(profile)?;
        desired = profile.desired.clone();
        name = Some(profile.name);
    }
    for assignment in &args.set {
        desired.apply_assignment(assignment).map_err(Error::Config)?;
    }
    if desired.is_empty() {
        return Err(Error::Config(
            "nothing to do: give --profile smtp-auth-fix (see `remediate profiles`) or --set SETTING=VALUE".into(),
        ));
    }
    Ok((desired, name))
}

fn default_report_dir(command: &str) -> PathBuf {
    let now = time::OffsetDateTime::now_utc();
    let stamp = now
        .format(time::macros::format_description!("[year][month][day]T[hour][minute][second]Z"))
        .unwrap_or_else(|_| "now".into());
    PathBuf::from(format!("remediate-{command}-{stamp}"))
}

/// The one plain warning before settings that weaken the tenant, and the yes it needs.
fn confirm_weakening(desired: &DesiredState, yes: bool) -> Result<()> {
    let weakening = desired.weakening();
    if weakening.is_empty() {
        return Ok(());
    }
    let list = weakening.iter().map(|(s, v)| format!("{s}={v}")).collect::<Vec<_>>().join(", ");
    eprintln!(
        "warning: {list} weakens the whole tenant: with security defaults off and per-user MFA off, these accounts sign in with a password alone. {RETIREMENT_NOTE}"
    );
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::Config(format!(
            "apply would set {list}, which weakens the tenant; nothing was changed. Re-run with --yes to confirm (no terminal to ask on)."
        )));
    }
    eprint!("Type 'yes' to apply {list}: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).map_err(Error::io("reading the confirmation"))?;
    if answer.trim() == "yes" { Ok(()) } else { Err(Error::Config("not confirmed; nothing was changed".into())) }
}

/// Reads the valid identities of a CSV (for seeding `--simulate`).
fn identities(args: &RunArgs) -> Result<Vec<String>> {
    let reader = targets::open(&args.input, args.column.as_deref())?;
    Ok(reader.filter_map(|e| if let Entry::Target(t) = e { Some(t.identity) } else { None }).collect())
}

/// Stops new work at the first Ctrl-C or SIGTERM; a second one ends the process at once.
fn watch_signals(cancel: CancellationToken) {
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::warn!(
            "interrupted: finishing the requests in flight, then writing the report (interrupt again to stop at once)"
        );
        cancel.cancel();
        wait_for_signal().await;
        eprintln!("stopped at once");
        std::process::exit(i32::from(exit::INTERRUPTED));
    });
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// `plan` and `apply`.
pub async fn plan_or_apply(args: RunArgs, mode: Mode, yes: bool, detailed_exitcode: bool, quiet: bool) -> Result<u8> {
    let (desired, profile_name) = desired_state(&args)?;
    let reader = targets::open(&args.input, args.column.as_deref())?;
    let Connection { client, simulator } = if args.connection.simulate {
        connection::simulate(identities(&args)?, &args.tuning).await?
    } else {
        connection::connect(&args.connection, &args.tuning)?
    };
    if mode == Mode::Apply {
        confirm_weakening(&desired, yes)?;
    }
    client.check_credentials().await?;
    let directory = args.report_dir.clone().unwrap_or_else(|| default_report_dir(mode.name()));
    let report = Arc::new(Report::create(&directory, quiet)?);
    if simulator.is_some() {
        tracing::info!("running against an in-process simulated tenant: nothing real is changed");
    }
    if desired.get(Setting::SmtpAuth).is_some() {
        report.emit(Event::Warning(UNSUPPORTED_NOTE.into()));
    }
    // Apply already said it in the confirmation warning.
    let said_in_confirmation = mode == Mode::Apply && !desired.weakening().is_empty();
    if desired.get(Setting::SmtpAuth) == Some(Value::Enabled) && !said_in_confirmation {
        report.emit(Event::Warning(RETIREMENT_NOTE.into()));
    }
    report.emit(Event::Started { total: targets::count_rows(&args.input) });
    let started_at = time::OffsetDateTime::now_utc();
    let clock = tokio::time::Instant::now();
    let cancel = CancellationToken::new();
    watch_signals(cancel.clone());
    let context = Arc::new(Context { client: client.clone(), desired: desired.clone(), mode, sink: report.clone() });
    let ending = engine::run(context, reader, args.tuning.concurrency as usize, cancel).await;
    let tally = report.finish()?;
    let exit_code = if ending.interrupted {
        exit::INTERRUPTED
    } else if tally.count(Outcome::Failed) > 0 {
        exit::TARGETS_FAILED
    } else if detailed_exitcode && tally.count(Outcome::WouldChange) > 0 {
        exit::DRIFT
    } else {
        exit::SUCCESS
    };
    let info = summary::RunInfo {
        command: mode.name(),
        profile: profile_name.as_deref(),
        desired: desired.describe(),
        input: &args.input,
        tenant_id: &client.tenant_id,
        simulated: simulator.is_some(),
        started_at,
        elapsed: clock.elapsed(),
        requests: client.requests.snapshot(),
        throttled: client.throttled_count(),
        exit_code,
        interrupted: ending.interrupted,
    };
    summary::write(report.directory(), &summary::to_json(&info, &tally))?;
    if !quiet {
        print!("{}", summary::recap(&info, &tally, report.directory()));
    }
    if ending.interrupted {
        eprintln!(
            "interrupted: the report in {} covers what was done; run the command again to finish the rest",
            report.directory().display()
        );
    }
    if let Some(simulator) = simulator {
        simulator.stop().await;
    }
    Ok(exit_code)
}

/// `validate`: every bad row with its line; exit 0 when clean, 1 when some rows are bad.
pub fn validate(args: ValidateArgs) -> Result<u8> {
    let reader = targets::open(&args.input, args.column.as_deref())?;
    println!("{}: identity column '{}'", args.input.display(), reader.column_name());
    let (mut good, mut bad) = (0u64, 0u64);
    for entry in reader {
        match entry {
            Entry::Target(_) => good += 1,
            Entry::Problem(problem) => {
                bad += 1;
                println!("{}:{}: {}", args.input.display(), problem.line, problem.message);
            }
        }
    }
    println!("{good} valid targets, {bad} bad rows");
    if good == 0 && bad == 0 {
        println!("the file has a header but no rows");
    }
    Ok(if bad == 0 { exit::SUCCESS } else { exit::TARGETS_FAILED })
}

/// `profiles`: the built-in profiles and their settings.
pub fn profiles() -> Result<u8> {
    for profile in profile::builtins() {
        println!("{}\n  {}\n  {}\n", profile.name, profile.description, profile.desired.describe());
    }
    println!("A profile can also be a TOML file: see samples/profiles/smtp-auth-fix.toml");
    Ok(exit::SUCCESS)
}
