//! The commands: `plan`, `apply` (new or `--resume`d), `rollback`, `validate` and `profiles`.
//! Each turns its arguments into a [`Job`] for the engine; [`execute`] runs any job the same way
//! and says which exit code it earned.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::cli::{ApplyArgs, BulkRead, PlanArgs, RollbackArgs, RunArgs, SessionArgs, TuningArgs, ValidateArgs};
use crate::cloud::CloudClient;
use crate::cloud::exchange::UNSUPPORTED_NOTE;
use crate::connection::{self, Connection};
use crate::engine::events::{Event, EventSink, Outcome};
use crate::engine::journal::{self, Done, Journal, Record};
use crate::engine::{self, Context, Mode};
use crate::error::{Error, Result, exit};
use crate::report::{self, Report, summary};
use crate::run_record::{self, RunRecord};
use crate::scope::{self, Exclusions};
use crate::settings::smtp_auth::{self, MailboxIndex, PendingIndex};
use crate::settings::{DesiredState, Setting, Value};
use crate::targets::{self, Entry, Target, Wanted};
use crate::{lock, profile};

const RETIREMENT_NOTE: &str = "Basic authentication for SMTP AUTH is being retired in Exchange Online: off by default for existing tenants from the end of December 2026, with final removal to be announced for the second half of 2027. Plan a move to OAuth for SMTP AUTH, High Volume Email, Azure Communication Services Email or a relay connector.";

/// One run for the engine, whatever command asked for it.
struct Job {
    command: &'static str,
    mode: Mode,
    desired: DesiredState,
    tenant_expect: Option<Value>,
    profile: Option<String>,
    input: Option<PathBuf>,
    /// One lane per tenant: its connection and its targets.
    lanes: Vec<Lane>,
    total: Option<u64>,
    detailed_exitcode: bool,
    directory: PathBuf,
    /// Set for a new run (saved as run.json); `None` when resuming.
    record: Option<RunRecord>,
    exclusions: Exclusions,
    baseline: Option<PathBuf>,
}

/// One tenant's share of a job.
struct Lane {
    connection: Connection,
    entries: Box<dyn Iterator<Item = Entry> + Send>,
    /// SMTP AUTH of every mailbox, when the targets came from that listing.
    smtp_index: Option<Arc<MailboxIndex>>,
}

/// Profile plus `--set`s; an empty result is a mistake.
fn desired_state(profile: Option<&str>, sets: &[String]) -> Result<(DesiredState, Option<String>)> {
    let mut desired = DesiredState::default();
    let mut name = None;
    if let Some(profile) = profile {
        let profile = profile::load(profile)?;
        desired = profile.desired.clone();
        name = Some(profile.name);
    }
    for assignment in sets {
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

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// Asks for a typed `yes` on a terminal; without one, `--yes` is the only way.
fn confirm(what: &str, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::Config(format!(
            "{what}; nothing was changed. Re-run with --yes to confirm (there is no terminal to ask on)."
        )));
    }
    eprint!("{what}. Type 'yes' to go on: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).map_err(Error::io("reading the confirmation"))?;
    if answer.trim() == "yes" { Ok(()) } else { Err(Error::Config("not confirmed; nothing was changed".into())) }
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
    confirm(&format!("apply would set {list}, which weakens the tenant"), yes)
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
        eprintln!("stopped at once; the journal is consistent and --resume carries on");
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

fn csv_entries(path: &Path, column: Option<&str>) -> Result<Box<dyn Iterator<Item = Entry> + Send>> {
    Ok(Box::new(targets::open(path, column)?))
}

/// `--strict`: every bad row, listed, stops the run before it starts.
fn refuse_bad_rows(path: &Path, column: Option<&str>) -> Result<()> {
    let problems: Vec<_> =
        targets::open(path, column)?.filter_map(|e| if let Entry::Problem(p) = e { Some(p) } else { None }).collect();
    if problems.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> =
        problems.iter().take(20).map(|p| format!("  {}:{}: {}", path.display(), p.line, p.message)).collect();
    let more = if problems.len() > 20 {
        format!("\n  … and {} more (see `remediate validate`)", problems.len() - 20)
    } else {
        String::new()
    };
    Err(Error::Config(format!(
        "--strict: {} bad rows in {}; nothing was read or changed:\n{}{more}",
        problems.len(),
        path.display(),
        shown.join("\n")
    )))
}

fn connect(session: &SessionArgs, tuning: &TuningArgs) -> Result<Connection> {
    connection::connect(&session.connection, tuning)
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// `plan`.
pub async fn plan(args: PlanArgs, quiet: bool) -> Result<u8> {
    new_run(args.run, "plan", Mode::Plan, false, args.detailed_exitcode, quiet).await
}

/// `audit`: a plan whose exit code says whether the tenant drifted.
pub async fn audit(args: RunArgs, quiet: bool) -> Result<u8> {
    new_run(args, "audit", Mode::Plan, false, true, quiet).await
}

/// `apply`, new or resumed.
pub async fn apply(args: ApplyArgs, quiet: bool) -> Result<u8> {
    match &args.resume {
        Some(directory) => resume_apply(args.run, directory.clone(), args.yes, quiet).await,
        None => new_run(args.run, "apply", Mode::Apply, args.yes, false, quiet).await,
    }
}

/// Exclusions from `--exclude` and the profile.
fn exclusions(args: &RunArgs) -> Result<Exclusions> {
    exclusions_from(args.profile.as_deref(), args.exclude.as_deref())
}

fn exclusions_from(profile: Option<&str>, exclude: Option<&Path>) -> Result<Exclusions> {
    let mut exclusions = match exclude {
        Some(path) => Exclusions::load(path)?,
        None => Exclusions::default(),
    };
    if let Some(profile) = profile {
        for entry in profile::load(profile)?.exclude {
            exclusions
                .add(&entry)
                .map_err(|reason| Error::Config(format!("--profile {profile}: exclude: {reason}")))?;
        }
    }
    Ok(exclusions)
}

/// Keeps the targets of one shard (and each rejected row in one shard only).
fn sharded(
    entries: Box<dyn Iterator<Item = Entry> + Send>,
    shard: Option<(u32, u32)>,
) -> Box<dyn Iterator<Item = Entry> + Send> {
    let Some(shard) = shard else { return entries };
    Box::new(entries.filter(move |entry| match entry {
        Entry::Target(target) => scope::in_shard(&target.identity, shard),
        Entry::Problem(problem) => problem.line % u64::from(shard.1) == u64::from(shard.0),
    }))
}

/// The tenants of a run: the CSV's `tenant` column, else `--tenants FILE`, else the one tenant
/// of the connection arguments (`None`).
fn tenants_of(args: &RunArgs, input: Option<&Path>) -> Result<Option<Vec<String>>> {
    if let Some(path) = &args.tenants {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("--tenants {}: cannot read it: {e}", path.display())))?;
        let tenants: Vec<String> = text
            .lines()
            .map(|l| l.split('#').next().unwrap_or_default().trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        if tenants.is_empty() {
            return Err(Error::Config(format!(
                "--tenants {}: no tenant in it (one tenant id or domain a line)",
                path.display()
            )));
        }
        return Ok(Some(tenants));
    }
    let Some(input) = input else { return Ok(None) };
    let reader = targets::open(input, args.column.as_deref())?;
    if !reader.has_tenant_column() {
        return Ok(None);
    }
    let mut tenants = std::collections::BTreeSet::new();
    for entry in reader {
        if let Entry::Target(target) = entry {
            tenants.insert(target.tenant.unwrap_or_default());
        }
    }
    if tenants.remove("") {
        let default = args.session.connection.tenant_id.clone().ok_or_else(|| {
            Error::Config(format!(
                "{}: some rows have no tenant; fill the tenant column, or name a default with --tenant-id",
                input.display()
            ))
        })?;
        tenants.insert(default);
    }
    Ok(Some(tenants.into_iter().collect()))
}

/// Lists every mailbox of a lane's tenant as its targets.
async fn all_mailboxes(
    connection: &Connection,
) -> Result<(Box<dyn Iterator<Item = Entry> + Send>, u64, Arc<MailboxIndex>)> {
    connection.client.check_credentials().await?;
    let index = smtp_auth::read_all(&connection.client, true).await.map_err(|e| {
        Error::Fatal(format!(
            "--all-mailboxes: cannot list the mailboxes of tenant {}: {e}",
            connection.client.tenant_id
        ))
    })?;
    tracing::info!(tenant = %connection.client.tenant_id, "{} mailboxes in the tenant", index.addresses.len());
    let listed: Vec<Entry> = index
        .addresses
        .iter()
        .enumerate()
        .map(|(i, address)| {
            Entry::Target(Target { line: i as u64 + 1, identity: address.clone(), overrides: Vec::new(), tenant: None })
        })
        .collect();
    let total = listed.len() as u64;
    Ok((Box::new(listed.into_iter()), total, Arc::new(index)))
}

async fn new_run(
    args: RunArgs,
    command: &'static str,
    mode: Mode,
    yes: bool,
    detailed_exitcode: bool,
    quiet: bool,
) -> Result<u8> {
    let (desired, profile_name) = desired_state(args.profile.as_deref(), &args.set)?;
    let exclusions = exclusions(&args)?;
    let session = &args.session;
    let input = match (&args.input, args.all_mailboxes) {
        (Some(input), _) => Some(input.clone()),
        (None, true) => None,
        (None, false) => {
            return Err(Error::Config("give the mailbox CSV to work on, or --all-mailboxes (or --resume DIR)".into()));
        }
    };
    if let Some(baseline) = &args.baseline
        && !baseline.join("results.csv").exists()
    {
        return Err(Error::Config(format!(
            "--baseline {}: no results.csv there; give an earlier run's report directory",
            baseline.display()
        )));
    }
    if let (Some(input), true) = (&input, args.strict) {
        refuse_bad_rows(input, args.column.as_deref())?;
    }
    // The file is checked (header, identity column) before anything else can fail.
    if let Some(input) = &input {
        targets::open(input, args.column.as_deref())?;
    }
    let tenants = tenants_of(&args, input.as_deref())?;
    if tenants.is_some() && session.connection.simulate {
        return Err(Error::Config("--simulate serves one tenant; leave out the tenant column or --tenants".into()));
    }
    if mode == Mode::Apply {
        confirm_weakening(&desired, yes)?;
    }
    let mut lanes = Vec::new();
    let mut total = Some(0u64);
    let tenant_list = tenants.clone().map_or(vec![None], |list| list.into_iter().map(Some).collect());
    for (position, tenant) in tenant_list.into_iter().enumerate() {
        let connection = match (&tenant, &input) {
            (Some(tenant), _) => connection::connect_to(&session.connection, &session.tuning, tenant.clone())?,
            (None, _) if !session.connection.simulate => connect(session, &session.tuning)?,
            (None, Some(input)) => {
                connection::simulate(targets::identities(input, args.column.as_deref())?, &session.tuning).await?
            }
            (None, None) => connection::simulate_generated(&session.tuning).await?,
        };
        let (entries, count, smtp_index) = match &input {
            Some(input) => {
                let mut entries = csv_entries(input, args.column.as_deref())?;
                if let Some(tenant) = &tenant {
                    // Each tenant's lane takes its own rows; rejected rows are reported once.
                    let (mine, default) = (
                        tenant.to_lowercase(),
                        args.session.connection.tenant_id.clone().unwrap_or_default().to_lowercase(),
                    );
                    entries = Box::new(entries.filter(move |entry| match entry {
                        Entry::Target(t) => t.tenant.as_deref().map_or(default.clone(), str::to_lowercase) == mine,
                        Entry::Problem(_) => position == 0,
                    }));
                }
                (entries, targets::count_rows(input).filter(|_| position == 0), None)
            }
            None => {
                let (entries, count, index) = all_mailboxes(&connection).await?;
                (entries, Some(count), Some(index))
            }
        };
        total = total.zip(count.or(Some(0))).map(|(a, b)| a + b);
        lanes.push(Lane { connection, entries: sharded(entries, args.shard), smtp_index });
    }
    let record = RunRecord {
        version: 1,
        command: command.into(),
        input: input.as_deref().map(absolute),
        input_sha256: input.as_deref().map(run_record::fingerprint).transpose()?,
        column: args.column.clone(),
        profile: args.profile.clone(),
        sets: args.set.clone(),
        rollback_of: None,
        tenant_id: lanes.iter().map(|l| l.connection.client.tenant_id.clone()).collect::<Vec<_>>().join(","),
        tuning: session.tuning.clone(),
        started_at: now_rfc3339(),
    };
    let job = Job {
        command,
        mode,
        desired,
        tenant_expect: None,
        profile: profile_name,
        total,
        input,
        lanes,
        detailed_exitcode,
        directory: session.report_dir.clone().unwrap_or_else(|| default_report_dir(command)),
        record: Some(record),
        exclusions,
        baseline: args.baseline.clone(),
    };
    execute(job, session, &session.tuning, quiet).await
}

fn refuse_simulated_resume(session: &SessionArgs) -> Result<()> {
    if session.connection.simulate {
        return Err(Error::Config(
            "--resume cannot use --simulate: the simulated tenant of the first run lived in that process".into(),
        ));
    }
    Ok(())
}

fn check_same_tenant(record: &RunRecord, connection: &Connection, directory: &Path) -> Result<()> {
    if record.tenant_id.contains(',') {
        return Err(Error::Config(format!(
            "{}: that run covered several tenants ({}); resume and rollback work on one tenant's run",
            directory.display(),
            record.tenant_id
        )));
    }
    if !record.tenant_id.eq_ignore_ascii_case(&connection.client.tenant_id) {
        return Err(Error::Config(format!(
            "--resume {}: that run was against tenant {}, this one is against {}; point AZURE_TENANT_ID at the same tenant",
            directory.display(),
            record.tenant_id,
            connection.client.tenant_id
        )));
    }
    Ok(())
}

async fn resume_apply(args: RunArgs, directory: PathBuf, yes: bool, quiet: bool) -> Result<u8> {
    let record = RunRecord::load(&directory)?;
    if record.command != "apply" {
        return Err(Error::Config(format!(
            "--resume {}: that directory holds a {} run, not an apply",
            directory.display(),
            record.command
        )));
    }
    if args.profile.is_some() || !args.set.is_empty() || args.column.is_some() {
        return Err(Error::Config(format!(
            "--resume {}: the run's profile, --set values and --column are stored there; leave them off",
            directory.display()
        )));
    }
    refuse_simulated_resume(&args.session)?;
    let stored = record.input.clone().ok_or_else(|| {
        Error::Config(format!("--resume {}: the run record names no input file", directory.display()))
    })?;
    let input = args.input.clone().unwrap_or_else(|| stored.clone());
    if run_record::fingerprint(&input)? != record.input_sha256.clone().unwrap_or_default() {
        return Err(Error::Config(format!(
            "--resume {}: {} is not the file that run started with (its contents differ); resume with the same file, or start a new run",
            directory.display(),
            input.display()
        )));
    }
    let (desired, profile_name) = desired_state(record.profile.as_deref(), &record.sets)?;
    let connection = connect(&args.session, &record.tuning)?;
    check_same_tenant(&record, &connection, &directory)?;
    confirm_weakening(&desired, yes)?;
    let job = Job {
        command: "apply",
        mode: Mode::Apply,
        desired,
        tenant_expect: None,
        profile: profile_name,
        total: targets::count_rows(&input),
        lanes: vec![Lane { connection, entries: csv_entries(&input, record.column.as_deref())?, smtp_index: None }],
        input: Some(input),
        detailed_exitcode: false,
        directory,
        record: None,
        exclusions: exclusions_from(record.profile.as_deref(), args.exclude.as_deref())?,
        baseline: None,
    };
    execute(job, &args.session, &record.tuning, quiet).await
}

/// What a rollback restores: the tenant setting (before, after) if the apply changed it, and a
/// target per changed mailbox, restoring `before` where the value is still `after`.
struct RollbackPlan {
    tenant: Option<(Value, Value)>,
    entries: Vec<Entry>,
}

fn rollback_plan(source: &Path) -> Result<RollbackPlan> {
    let path = source.join(journal::FILE_NAME);
    if !path.exists() {
        return Err(Error::Config(format!(
            "rollback {}: no journal there; give the report directory of an apply",
            source.display()
        )));
    }
    let mut tenant = None;
    let mut by_line: BTreeMap<u64, Target> = BTreeMap::new();
    for record in journal::read(&path)? {
        let Record::Row(row) = record else { continue };
        let (Outcome::Changed, Some(before), Some(after)) = (row.outcome, row.before, row.after) else { continue };
        if row.setting.is_tenant_wide() {
            tenant = Some((before, after));
            continue;
        }
        let target = by_line.entry(row.line).or_insert_with(|| Target {
            line: row.line,
            identity: row.identity.clone(),
            overrides: Vec::new(),
            tenant: None,
        });
        target.overrides.push(Wanted { setting: row.setting, desired: before, expect: Some(after) });
    }
    Ok(RollbackPlan { tenant, entries: by_line.into_values().map(Entry::Target).collect() })
}

/// `rollback`, new or resumed.
pub async fn rollback(args: RollbackArgs, quiet: bool) -> Result<u8> {
    let (source, resumed_record, directory) = match (&args.resume, &args.source) {
        (Some(directory), _) => {
            let record = RunRecord::load(directory)?;
            let source = record.rollback_of.clone().filter(|_| record.command == "rollback").ok_or_else(|| {
                Error::Config(format!(
                    "--resume {}: that directory holds a {} run, not a rollback",
                    directory.display(),
                    record.command
                ))
            })?;
            (source, Some(record), directory.clone())
        }
        (None, Some(source)) => {
            let directory = args.session.report_dir.clone().unwrap_or_else(|| default_report_dir("rollback"));
            (source.clone(), None, directory)
        }
        (None, None) => return Err(Error::Config("give the report directory of the apply to undo".into())),
    };
    let source_record = RunRecord::load(&source).map_err(|_| {
        Error::Config(format!(
            "rollback {}: no run.json there; give the report directory of an apply",
            source.display()
        ))
    })?;
    if source_record.command != "apply" {
        return Err(Error::Config(format!(
            "rollback {}: that is a {} run; only an apply changed anything",
            source.display(),
            source_record.command
        )));
    }
    refuse_simulated_resume(&args.session).map_err(|_| {
        Error::Config("rollback cannot use --simulate: the simulated tenant of that apply lived in its process".into())
    })?;
    let RollbackPlan { tenant, entries } = rollback_plan(&source)?;
    let tuning = resumed_record.as_ref().map_or(args.session.tuning.clone(), |r| r.tuning.clone());
    let connection = connect(&args.session, &tuning)?;
    check_same_tenant(&source_record, &connection, &source)?;
    let changes = entries.iter().map(|e| if let Entry::Target(t) = e { t.overrides.len() } else { 0 }).sum::<usize>()
        + usize::from(tenant.is_some());
    confirm(
        &format!(
            "rollback would restore {changes} values that {} changed, where they are still what it set",
            source.display()
        ),
        args.yes,
    )?;
    let mut desired = DesiredState::default();
    if let Some((before, _)) = tenant {
        desired.set(Setting::SecurityDefaults, before);
    }
    let record = RunRecord {
        version: 1,
        command: "rollback".into(),
        input: None,
        input_sha256: None,
        column: None,
        profile: None,
        sets: Vec::new(),
        rollback_of: Some(absolute(&source)),
        tenant_id: connection.client.tenant_id.clone(),
        tuning: tuning.clone(),
        started_at: now_rfc3339(),
    };
    let job = Job {
        command: "rollback",
        mode: Mode::Apply,
        desired,
        tenant_expect: tenant.map(|(_, after)| after),
        profile: None,
        input: None,
        total: Some(entries.len() as u64),
        lanes: vec![Lane { connection, entries: Box::new(entries.into_iter()), smtp_index: None }],
        detailed_exitcode: false,
        directory,
        record: if resumed_record.is_some() { None } else { Some(record) },
        exclusions: Exclusions::default(),
        baseline: None,
    };
    execute(job, &args.session, &tuning, quiet).await
}

/// Reads SMTP AUTH for the whole tenant in pages of 1,000 when that costs fewer requests than a
/// read per target, in the background while the run starts. The tenant's size is unknown up
/// front; from 1,000 targets on, the pages cost fewer requests than per-target reads for any
/// tenant up to a million mailboxes.
fn bulk_smtp_auth(client: &Arc<CloudClient>, job: &Job, choice: BulkRead) -> Option<PendingIndex> {
    let wanted = match choice {
        BulkRead::Never => false,
        BulkRead::Always => true,
        BulkRead::Auto => job.total.unwrap_or(0) >= 1000,
    };
    if !wanted || job.desired.get(Setting::SmtpAuth).is_none() || job.mode == Mode::Apply && job.command == "rollback" {
        return None;
    }
    let client = client.clone();
    Some(PendingIndex::spawn(async move {
        match smtp_auth::read_all(&client, false).await {
            Ok(index) => {
                tracing::info!("read SMTP AUTH for {} mailboxes in bulk", index.len());
                Some(Arc::new(index))
            }
            Err(error) => {
                tracing::warn!("could not read every mailbox at once ({error}); reading them one by one instead");
                None
            }
        }
    }))
}

/// Runs a job: lock the tenant, open the report directory and the journal, run the engine,
/// render the report, and work out the exit code.
async fn execute(mut job: Job, session: &SessionArgs, tuning: &TuningArgs, quiet: bool) -> Result<u8> {
    let state_dir = session.state_dir.clone().unwrap_or_else(lock::default_state_dir);
    let mut locks = Vec::new();
    for lane in &job.lanes {
        lane.connection.client.check_credentials().await?;
        locks.push(lock::acquire(&state_dir, &lane.connection.client.tenant_id, job.command)?);
    }
    let resumed = job.record.is_none();
    match &job.record {
        Some(record) => {
            report::prepare_directory(&job.directory)?;
            record.save(&job.directory)?;
        }
        None => tracing::info!("resuming the run in {}", job.directory.display()),
    }
    let done = Arc::new(Done::load(&job.directory.join(journal::FILE_NAME))?);
    if resumed {
        tracing::info!(
            "{} (target, setting) pairs were finished before; they are not touched again",
            done.finished_rows()
        );
    }
    let journal = Arc::new(Journal::open(&job.directory)?);
    let report = Arc::new(Report::create(&job.directory, quiet));
    let simulated = job.lanes.iter().any(|lane| lane.connection.simulator.is_some());
    if simulated {
        tracing::info!("running against an in-process simulated tenant: nothing real is changed");
    }
    if job.desired.get(Setting::SmtpAuth).is_some() || job.command == "rollback" {
        report.emit(Event::Warning(UNSUPPORTED_NOTE.into()));
    }
    let said_in_confirmation = job.mode == Mode::Apply && !job.desired.weakening().is_empty();
    if job.desired.get(Setting::SmtpAuth) == Some(Value::Enabled) && !said_in_confirmation {
        report.emit(Event::Warning(RETIREMENT_NOTE.into()));
    }
    report.emit(Event::Started { total: job.total });
    let started_at = time::OffsetDateTime::now_utc();
    let clock = tokio::time::Instant::now();
    let cancel = CancellationToken::new();
    watch_signals(cancel.clone());
    let per_target = job.command == "rollback" || Setting::PER_TARGET.iter().any(|s| job.desired.get(*s).is_some());
    let exclusions = Arc::new(std::mem::take(&mut job.exclusions));
    let mut clients = Vec::new();
    let mut simulators = Vec::new();
    let mut runs = tokio::task::JoinSet::new();
    // Tenants run side by side, each with its own client (tokens, rates) and share of the work.
    for lane in std::mem::take(&mut job.lanes) {
        let Lane { connection: Connection { client, simulator }, entries, smtp_index } = lane;
        let smtp_index = match smtp_index {
            Some(index) => Some(PendingIndex::ready(index)),
            None => bulk_smtp_auth(&client, &job, tuning.bulk_read),
        };
        let context = Arc::new(Context {
            smtp_index,
            exclusions: exclusions.clone(),
            client: client.clone(),
            desired: job.desired.clone(),
            tenant_expect: job.tenant_expect,
            mode: job.mode,
            sink: report.clone(),
            journal: journal.clone(),
            done: done.clone(),
            cancel: cancel.clone(),
        });
        let entries: Box<dyn Iterator<Item = Entry> + Send> =
            if per_target { entries } else { Box::new(std::iter::empty()) };
        runs.spawn(engine::run(context, entries, tuning.concurrency as usize, session.grace));
        clients.push(client);
        simulators.extend(simulator);
    }
    let mut interrupted = false;
    while let Some(ending) = runs.join_next().await {
        interrupted |=
            ending.map_err(|e| Error::Fatal(format!("a tenant's run stopped unexpectedly: {e}")))?.interrupted;
    }
    let ending = engine::Ending { interrupted };
    drop(locks);
    let warnings = report.finish();
    let mut tally = report::render(&job.directory)?;
    tally.warnings = warnings;
    let exit_code = if ending.interrupted {
        exit::INTERRUPTED
    } else if tally.count(Outcome::Failed) + tally.count(Outcome::Conflict) > 0 {
        exit::TARGETS_FAILED
    } else if job.detailed_exitcode && tally.count(Outcome::WouldChange) > 0 {
        exit::DRIFT
    } else {
        exit::SUCCESS
    };
    let info = summary::RunInfo {
        command: job.command,
        profile: job.profile.as_deref(),
        desired: job.desired.describe(),
        input: job.input.as_deref(),
        tenant_id: &clients.iter().map(|c| c.tenant_id.clone()).collect::<Vec<_>>().join(","),
        simulated,
        resumed,
        started_at,
        elapsed: clock.elapsed(),
        requests: clients.iter().fold(std::collections::BTreeMap::new(), |mut all, client| {
            for (key, count) in client.requests.snapshot() {
                *all.entry(key).or_insert(0) += count;
            }
            all
        }),
        throttled: clients.iter().map(|c| c.throttled_count()).sum(),
        pacing: clients.iter().map(|c| (c.tenant_id.clone(), c.pacing())).collect(),
        journal_records: journal.records.load(std::sync::atomic::Ordering::Relaxed),
        journal_syncs: journal.syncs.load(std::sync::atomic::Ordering::Relaxed),
        exit_code,
        interrupted: ending.interrupted,
    };
    let mut summary_json = summary::to_json(&info, &tally);
    let mut changes = Vec::new();
    if let Some(baseline) = &job.baseline {
        let (drift_summary, found) = report::drift::compare(baseline, &job.directory)?;
        if !quiet {
            println!(
                "drift since {}: {} newly non-compliant, {} fixed, {} new and {} removed mailboxes (drift.csv)",
                baseline.display(),
                drift_summary["newly_non_compliant"],
                drift_summary["fixed"],
                drift_summary["new_mailboxes"],
                drift_summary["removed_mailboxes"]
            );
        }
        summary_json["drift"] = drift_summary;
        changes = found;
    }
    summary::write(&job.directory, &summary_json)?;
    report::html::write(&job.directory, &summary_json, &changes)?;
    if !quiet {
        print!("{}", summary::recap(&info, &tally, &job.directory));
    }
    if ending.interrupted {
        let again = if job.command == "rollback" { "rollback" } else { "apply" };
        eprintln!(
            "interrupted: the report in {dir} covers what was done. To finish the rest: remediate {again} --resume {dir}",
            dir = job.directory.display()
        );
    }
    for simulator in simulators {
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
