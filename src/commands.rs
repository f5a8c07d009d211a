//! The commands: `plan`, `apply` (new or `--resume`d), `rollback`, `validate` and `profiles`.
//! Each turns its arguments into a [`Job`] for the engine; [`execute`] runs any job the same way
//! and says which exit code it earned: 0 only when every (target, setting) has its final row.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cli::{ApplyArgs, BulkRead, PlanArgs, RollbackArgs, RunArgs, SessionArgs, TuningArgs, ValidateArgs};
use crate::cloud::CloudClient;
use crate::cloud::exchange::UNSUPPORTED_NOTE;
use crate::connection::{self, Connection};
use crate::engine::events::{Event, EventSink, Outcome};
use crate::engine::journal::{self, Done, Journal, Record};
use crate::engine::{self, Context, Ledger, Mode};
use crate::error::{Error, Result, exit};
use crate::report::{self, Report, summary};
use crate::run_record::{self, ExclusionRecord, RunKind, RunRecord};
use crate::scope::{self, Exclusions};
use crate::settings::smtp_auth::{self, MailboxIndex, PendingIndex};
use crate::settings::{DesiredState, Setting, Value};
use crate::stop::{Stop, StopReason};
use crate::targets::{self, Entry, Target, Wanted};
use crate::timestamp::now_rfc3339;
use crate::{lock, profile};

const RETIREMENT_NOTE: &str = "Basic authentication for SMTP AUTH is being retired in Exchange Online: off by default for existing tenants from the end of December 2026, with final removal to be announced for the second half of 2027. Plan a move to OAuth for SMTP AUTH, High Volume Email, Azure Communication Services Email or a relay connector.";

/// One run for the engine, whatever command asked for it.
struct Job {
    kind: RunKind,
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
    /// Stops the run (signals are watched from the command's start).
    stop: Stop,
    /// A resume that tries failed rows again.
    retry_failed: bool,
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

fn default_report_dir(kind: RunKind) -> PathBuf {
    let now = time::OffsetDateTime::now_utc();
    let stamp = now
        .format(time::macros::format_description!("[year][month][day]T[hour][minute][second]Z"))
        .unwrap_or_else(|_| "now".into());
    PathBuf::from(format!("remediate-{}-{stamp}", kind.name()))
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
    new_run(args.run, RunKind::Plan, false, args.detailed_exitcode, quiet).await
}

/// `audit`: a plan whose exit code says whether the tenant drifted.
pub async fn audit(args: RunArgs, quiet: bool) -> Result<u8> {
    new_run(args, RunKind::Audit, false, true, quiet).await
}

/// `apply`, new or resumed.
pub async fn apply(args: ApplyArgs, quiet: bool) -> Result<u8> {
    match &args.resume {
        Some(directory) => {
            let directory = directory.clone();
            resume_apply(args, directory, quiet).await
        }
        None => new_run(args.run, RunKind::Apply, args.yes, false, quiet).await,
    }
}

/// Exclusions from `--exclude` and the profile, and how the run record keeps them.
fn exclusions(args: &RunArgs) -> Result<(Exclusions, ExclusionRecord)> {
    let mut exclusions = match &args.exclude {
        Some(path) => Exclusions::load(path)?,
        None => Exclusions::default(),
    };
    if let Some(profile) = &args.profile {
        let source = format!("profile {profile}");
        let from_profile = Exclusions::from_entries(&profile::load(profile)?.exclude, &source)
            .map_err(|reason| Error::Config(format!("--profile {profile}: exclude: {reason}")))?;
        exclusions.merge(from_profile);
    }
    let record = ExclusionRecord {
        file: args.exclude.as_deref().map(absolute),
        file_sha256: args.exclude.as_deref().map(run_record::fingerprint).transpose()?,
        entries: exclusions.entries(),
    };
    Ok((exclusions, record))
}

/// The exclusions a run began with, from its record; refused if their file changed since.
fn recorded_exclusions(record: &RunRecord, directory: &Path) -> Result<Exclusions> {
    let Some(kept) = &record.exclusions else { return Ok(Exclusions::default()) };
    let source = kept.file.as_ref().map_or_else(|| "the run's profile".to_string(), |f| f.display().to_string());
    if let (Some(file), Some(sha)) = (&kept.file, &kept.file_sha256)
        && file.exists()
        && &run_record::fingerprint(file)? != sha
    {
        return Err(Error::Config(format!(
            "--resume {}: the exclusion file {} changed since the run began; put it back as it was (run.json lists its entries) or start a new run",
            directory.display(),
            file.display()
        )));
    }
    Exclusions::from_entries(&kept.entries, &source)
        .map_err(|reason| Error::Config(format!("--resume {}: run.json: exclusions: {reason}", directory.display())))
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
        let text = crate::files::read_text_capped(path, crate::files::cap::SMALL)
            .map_err(|e| Error::Config(format!("--tenants {}: cannot read it: {e}", path.display())))?;
        let tenants: Vec<String> = text
            .lines()
            .map(|l| l.split(" #").next().unwrap_or_default().trim().to_string())
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
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

/// The file `--all-mailboxes` keeps the tenant's listing in, in the report directory: the run's
/// input from then on, so a resume works on the same targets.
const LISTING: &str = "mailboxes.csv";

/// Lists every mailbox of each tenant into the report directory's listing (with a tenant column
/// when there are several), and keeps each tenant's SMTP AUTH index from it.
/// Every mailbox of a tenant, and (when per-user MFA is wanted) every member user without one:
/// per-user MFA belongs to the directory user, mailbox or not.
async fn list_tenant(client: &CloudClient, members_too: bool) -> Result<(MailboxIndex, Vec<String>)> {
    client.check_credentials().await?;
    let failed = |e: crate::cloud::CallError| {
        Error::Fatal(format!("--all-mailboxes: cannot list the mailboxes of tenant {}: {e}", client.tenant_id))
    };
    let index = smtp_auth::read_all(client, true).await.map_err(failed)?;
    let mut targets = index.addresses.clone();
    if members_too {
        let members = client.member_users().await.map_err(failed)?;
        targets.extend(members.into_iter().filter(|(id, _)| index.lookup(id) == Some(None)).map(|(_, upn)| upn));
    }
    Ok((index, targets))
}

async fn list_mailboxes(
    connections: &[(Option<String>, Connection)],
    directory: &Path,
    stop: &Stop,
    members_too: bool,
) -> Result<(PathBuf, Vec<Option<Arc<MailboxIndex>>>)> {
    report::ensure_directory(directory)?;
    let several = connections.len() > 1;
    let header: &[&str] = if several { &["PrimarySmtpAddress", "tenant"] } else { &["PrimarySmtpAddress"] };
    let mut writer = report::create_csv(directory, LISTING, header)?;
    let io = |e: csv::Error| Error::Io { context: format!("cannot write {LISTING}"), source: e.into() };
    let mut indexes = Vec::new();
    for (tenant, connection) in connections {
        let client = &connection.client;
        let (index, listed) = stop.within_grace(list_tenant(client, members_too)).await.ok_or_else(|| {
            Error::Interrupted("interrupted while listing the mailboxes; nothing was changed".into())
        })??;
        tracing::info!(
            tenant = %client.tenant_id,
            "{} mailboxes in the tenant; {} targets with the member users that have none",
            index.addresses.len(),
            listed.len()
        );
        for address in &listed {
            let row = if several {
                vec![address.as_str(), tenant.as_deref().unwrap_or_default()]
            } else {
                vec![address.as_str()]
            };
            writer.write_record(row).map_err(io)?;
        }
        indexes.push(Some(Arc::new(index)));
    }
    report::close_csv(directory, LISTING, writer)?;
    Ok((directory.join(LISTING), indexes))
}

async fn new_run(args: RunArgs, kind: RunKind, yes: bool, detailed_exitcode: bool, quiet: bool) -> Result<u8> {
    let (desired, profile_name) = desired_state(args.profile.as_deref(), &args.set)?;
    let (exclusions, exclusion_record) = exclusions(&args)?;
    let session = &args.session;
    if args.input.is_none() && !args.all_mailboxes {
        return Err(Error::Config("give the mailbox CSV to work on, or --all-mailboxes (or --resume DIR)".into()));
    }
    if let Some(baseline) = &args.baseline
        && !baseline.join("results.csv").exists()
    {
        return Err(Error::Config(format!(
            "--baseline {}: no results.csv there; give an earlier run's report directory",
            baseline.display()
        )));
    }
    let stop = Stop::new(session.grace);
    stop.watch_signals();
    let directory = session.report_dir.clone().unwrap_or_else(|| default_report_dir(kind));
    report::check_directory(&directory)?;
    // A pipe can be read once; the run reads its input several times, and a resume again later.
    let settle = |path: &Path| {
        if path.exists() && !targets::is_regular_file(path) {
            report::ensure_directory(&directory)?;
        }
        targets::settle_input(path, &directory.join("input.csv"))
    };
    let input = args.input.as_deref().map(settle).transpose()?;
    if let (Some(input), true) = (&input, args.strict) {
        refuse_bad_rows(input, args.column.as_deref())?;
    }
    // The file is checked (header, identity column, readable to its end) before anything else.
    if let Some(input) = &input {
        targets::open(input, args.column.as_deref())?;
    }
    let tenants = tenants_of(&args, input.as_deref())?;
    if tenants.is_some() && session.connection.simulate {
        return Err(Error::Config("--simulate serves one tenant; leave out the tenant column or --tenants".into()));
    }
    if kind.mode() == Mode::Apply {
        confirm_weakening(&desired, yes)?;
    }
    let mut connections = Vec::new();
    for tenant in tenants.clone().map_or(vec![None], |list| list.into_iter().map(Some).collect()) {
        let connection = match (&tenant, &input) {
            (Some(tenant), _) => connection::connect_to(&session.connection, &session.tuning, tenant.clone())?,
            (None, _) if !session.connection.simulate => connect(session, &session.tuning)?,
            (None, Some(input)) => {
                connection::simulate(targets::identities(input, args.column.as_deref())?, &session.tuning).await?
            }
            (None, None) => connection::simulate_generated(&session.tuning).await?,
        };
        connections.push((tenant, connection));
    }
    let (input, column, indexes) = match input {
        Some(input) => (input, args.column.clone(), vec![None; connections.len()]),
        None => {
            let members_too = desired.get(Setting::PerUserMfa).is_some();
            let (listing, indexes) = list_mailboxes(&connections, &directory, &stop, members_too).await?;
            (listing, None, indexes)
        }
    };
    let mut lanes = Vec::new();
    let several = connections.len() > 1;
    for (position, ((tenant, connection), smtp_index)) in connections.into_iter().zip(indexes).enumerate() {
        let mut entries = csv_entries(&input, column.as_deref())?;
        if let (Some(tenant), true) = (&tenant, several || args.tenants.is_none()) {
            // Each tenant's lane takes its own rows; rejected rows are reported once.
            let (mine, default) =
                (tenant.to_lowercase(), session.connection.tenant_id.clone().unwrap_or_default().to_lowercase());
            entries = Box::new(entries.filter(move |entry| match entry {
                Entry::Target(t) => t.tenant.as_deref().map_or(default.clone(), str::to_lowercase) == mine,
                Entry::Problem(_) => position == 0,
            }));
        }
        lanes.push(Lane { connection, entries: sharded(entries, args.shard), smtp_index });
    }
    let record = RunRecord {
        version: run_record::VERSION,
        command: kind,
        input: Some(absolute(&input)),
        input_sha256: Some(run_record::fingerprint(&input)?),
        column,
        profile: args.profile.clone(),
        sets: args.set.clone(),
        rollback_of: None,
        tenant_id: String::new(),
        tuning: session.tuning.clone(),
        started_at: now_rfc3339(),
        exclusions: Some(exclusion_record),
        shard: args.shard,
        all_mailboxes: args.all_mailboxes,
    };
    let job = Job {
        kind,
        desired,
        tenant_expect: None,
        profile: profile_name,
        total: targets::count_rows(&input),
        input: Some(input),
        lanes,
        detailed_exitcode,
        directory,
        record: Some(record),
        exclusions,
        baseline: args.baseline.clone(),
        stop,
        retry_failed: false,
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

async fn check_same_tenant(record: &RunRecord, connection: &Connection, directory: &Path) -> Result<()> {
    if record.tenant_id.contains(',') {
        return Err(Error::Config(format!(
            "{}: that run covered several tenants ({}); resume and rollback work on one tenant's run",
            directory.display(),
            record.tenant_id
        )));
    }
    let client = &connection.client;
    let same = record.tenant_id.eq_ignore_ascii_case(&client.tenant_id)
        || record.tenant_id.eq_ignore_ascii_case(&client.tenant_guid().await?);
    if !same {
        return Err(Error::Config(format!(
            "--resume {}: that run was against tenant {}, this one is against {}; point AZURE_TENANT_ID at the same tenant",
            directory.display(),
            record.tenant_id,
            client.tenant_id
        )));
    }
    Ok(())
}

async fn resume_apply(args: ApplyArgs, directory: PathBuf, quiet: bool) -> Result<u8> {
    let (run, yes, retry_failed) = (args.run, args.yes, args.retry_failed);
    let record = RunRecord::load(&directory)?;
    if record.command != RunKind::Apply {
        return Err(Error::Config(format!(
            "--resume {}: that directory holds a {} run, not an apply",
            directory.display(),
            record.command.name()
        )));
    }
    let chosen_again = run.profile.is_some()
        || !run.set.is_empty()
        || run.column.is_some()
        || run.exclude.is_some()
        || run.shard.is_some()
        || run.all_mailboxes
        || run.tenants.is_some();
    if chosen_again {
        return Err(Error::Config(format!(
            "--resume {}: the run's profile, --set values, --column, --exclude, --shard and --all-mailboxes are stored there; leave them off",
            directory.display()
        )));
    }
    refuse_simulated_resume(&run.session)?;
    let stored = record.input.clone().ok_or_else(|| {
        Error::Config(format!(
            "--resume {}: that run listed the tenant's mailboxes before remediate kept the listing, so its targets cannot be known again; start a new run",
            directory.display()
        ))
    })?;
    let input = run.input.clone().unwrap_or_else(|| stored.clone());
    if run_record::fingerprint(&input)? != record.input_sha256.clone().unwrap_or_default() {
        return Err(Error::Config(format!(
            "--resume {}: {} is not the file that run started with (its contents differ); resume with the same file, or start a new run",
            directory.display(),
            input.display()
        )));
    }
    let exclusions = recorded_exclusions(&record, &directory)?;
    let (desired, profile_name) = desired_state(record.profile.as_deref(), &record.sets)?;
    let stop = Stop::new(run.session.grace);
    stop.watch_signals();
    let connection = connect(&run.session, &record.tuning)?;
    stop.within_grace(check_same_tenant(&record, &connection, &directory))
        .await
        .ok_or_else(|| Error::Interrupted("interrupted while signing in; nothing was changed".into()))??;
    confirm_weakening(&desired, yes)?;
    let entries = sharded(csv_entries(&input, record.column.as_deref())?, record.shard);
    let job = Job {
        kind: RunKind::Apply,
        desired,
        tenant_expect: None,
        profile: profile_name,
        total: targets::count_rows(&input),
        lanes: vec![Lane { connection, entries, smtp_index: None }],
        input: Some(input),
        detailed_exitcode: false,
        directory,
        record: None,
        exclusions,
        baseline: None,
        stop,
        retry_failed,
    };
    execute(job, &run.session, &record.tuning, quiet).await
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
    // Writes begun with no row saying they ended well or were never made: their outcome is
    // unknown, so they are undone where the value is what they set (and reported either way).
    let mut pending: BTreeMap<(u64, Setting), (String, Option<Value>, Value)> = BTreeMap::new();
    let mut restore = |line: u64, identity: &str, setting: Setting, before: Value, after: Value| {
        if setting.is_tenant_wide() {
            tenant = Some((before, after));
            return;
        }
        let target = by_line.entry(line).or_insert_with(|| Target {
            line,
            identity: identity.to_string(),
            overrides: Vec::new(),
            tenant: None,
        });
        target.overrides.retain(|w| w.setting != setting);
        target.overrides.push(Wanted { setting, desired: before, expect: Some(after) });
    };
    let mut records = journal::read(&path)?;
    for record in records.by_ref() {
        match record {
            Record::Intent { line, identity, setting, before, desired, .. } => {
                pending.insert((line, setting), (identity, before, desired));
            }
            Record::Row(row) => {
                if !matches!(row.outcome, Outcome::Failed | Outcome::Unfinished) {
                    pending.remove(&(row.line, row.setting));
                }
                if let (Outcome::Changed, Some(before), Some(after)) = (row.outcome, row.before, row.after) {
                    restore(row.line, &row.identity, row.setting, before, after);
                }
            }
            Record::Rejected { .. } => {}
        }
    }
    if records.damaged > 0 {
        tracing::warn!(
            "{}: {} damaged places in the journal were skipped; a change recorded only there cannot be undone",
            path.display(),
            records.damaged
        );
    }
    let unknown = pending.len();
    for ((line, setting), (identity, before, desired)) in pending {
        if let Some(before) = before {
            restore(line, &identity, setting, before, desired);
        }
    }
    if unknown > 0 {
        tracing::warn!(
            "{unknown} writes of that apply never recorded how they ended: each is read first, and undone only where it took effect"
        );
    }
    Ok(RollbackPlan { tenant, entries: by_line.into_values().map(Entry::Target).collect() })
}

/// `rollback`, new or resumed.
pub async fn rollback(args: RollbackArgs, quiet: bool) -> Result<u8> {
    let (source, resumed_record, directory) = match (&args.resume, &args.source) {
        (Some(directory), _) => {
            let record = RunRecord::load(directory)?;
            let source =
                record.rollback_of.clone().filter(|_| record.command == RunKind::Rollback).ok_or_else(|| {
                    Error::Config(format!(
                        "--resume {}: that directory holds a {} run, not a rollback",
                        directory.display(),
                        record.command
                    ))
                })?;
            (source, Some(record), directory.clone())
        }
        (None, Some(source)) => {
            let directory = args.session.report_dir.clone().unwrap_or_else(|| default_report_dir(RunKind::Rollback));
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
    if source_record.command != RunKind::Apply {
        return Err(Error::Config(format!(
            "rollback {}: that is a {} run; only an apply changed anything",
            source.display(),
            source_record.command.name()
        )));
    }
    refuse_simulated_resume(&args.session).map_err(|_| {
        Error::Config("rollback cannot use --simulate: the simulated tenant of that apply lived in its process".into())
    })?;
    let RollbackPlan { tenant, entries } = rollback_plan(&source)?;
    let tuning = resumed_record.as_ref().map_or(args.session.tuning.clone(), |r| r.tuning.clone());
    let stop = Stop::new(args.session.grace);
    stop.watch_signals();
    let connection = connect(&args.session, &tuning)?;
    stop.within_grace(check_same_tenant(&source_record, &connection, &source))
        .await
        .ok_or_else(|| Error::Interrupted("interrupted while signing in; nothing was changed".into()))??;
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
    if resumed_record.is_none() {
        report::check_directory(&directory)?;
    }
    let record = RunRecord {
        version: run_record::VERSION,
        command: RunKind::Rollback,
        input: None,
        input_sha256: None,
        column: None,
        profile: None,
        sets: Vec::new(),
        rollback_of: Some(absolute(&source)),
        tenant_id: String::new(),
        tuning: tuning.clone(),
        started_at: now_rfc3339(),
        exclusions: None,
        shard: None,
        all_mailboxes: false,
    };
    let job = Job {
        kind: RunKind::Rollback,
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
        stop,
        retry_failed: args.retry_failed,
    };
    execute(job, &args.session, &tuning, quiet).await
}

/// Says so when the bulk listing held mailboxes it could not read (they are read one by one).
fn warn_if_unreadable(index: &MailboxIndex, sink: &dyn EventSink) {
    if index.unreadable() > 0 {
        sink.emit(Event::Warning(format!(
            "{} mailboxes of the Get-CASMailbox listing had no readable directory id or SMTP AUTH value; they were read one by one",
            index.unreadable()
        )));
    }
}

/// Reads SMTP AUTH for the whole tenant in pages of 1,000 when that costs fewer requests than a
/// read per target, in the background while the run starts. The tenant's size is unknown up
/// front; from 1,000 targets on, the pages cost fewer requests than per-target reads for any
/// tenant up to a million mailboxes.
fn bulk_smtp_auth(
    client: &Arc<CloudClient>,
    job: &Job,
    choice: BulkRead,
    sink: Arc<dyn EventSink>,
) -> Option<PendingIndex> {
    let wanted = match choice {
        BulkRead::Never => false,
        BulkRead::Always => true,
        BulkRead::Auto => job.total.unwrap_or(0) >= 1000,
    };
    if !wanted || job.desired.get(Setting::SmtpAuth).is_none() || job.kind == RunKind::Rollback {
        return None;
    }
    let client = client.clone();
    Some(PendingIndex::spawn(async move {
        match smtp_auth::read_all(&client, false).await {
            Ok(index) => {
                tracing::info!("read SMTP AUTH for {} mailboxes in bulk", index.len());
                warn_if_unreadable(&index, sink.as_ref());
                Some(Arc::new(index))
            }
            Err(error) => {
                tracing::warn!("could not read every mailbox at once ({error}); reading them one by one instead");
                None
            }
        }
    }))
}

/// Signs in to every lane's tenant and locks it by its id; stops with exit 130 if interrupted
/// meanwhile (nothing was changed yet).
async fn sign_in_and_lock(job: &Job, session: &SessionArgs) -> Result<(Vec<lock::TenantLock>, Vec<String>)> {
    let state_dir = session.state_dir.clone().unwrap_or_else(lock::default_state_dir);
    let mut locks = Vec::new();
    let mut ids = Vec::new();
    for lane in &job.lanes {
        let client = &lane.connection.client;
        let signed_in = async {
            client.check_credentials().await?;
            client.tenant_guid().await
        };
        let id = job
            .stop
            .within_grace(signed_in)
            .await
            .ok_or_else(|| Error::Interrupted("interrupted while signing in; nothing was changed".into()))??;
        locks.push(lock::acquire(&state_dir, &id, job.kind.name())?);
        ids.push(id);
    }
    Ok((locks, ids))
}

/// Runs a job: sign in and lock the tenant, open the journal, run the engine, render the report,
/// and work out the exit code.
async fn execute(mut job: Job, session: &SessionArgs, tuning: &TuningArgs, quiet: bool) -> Result<u8> {
    let (locks, tenant_ids) = sign_in_and_lock(&job, session).await?;
    let resumed = job.record.is_none();
    match &mut job.record {
        Some(record) => {
            report::ensure_directory(&job.directory)?;
            record.tenant_id = tenant_ids.join(",");
            record.save(&job.directory)?;
        }
        None => tracing::info!("resuming the run in {}", job.directory.display()),
    }
    let mut done = Done::load(&job.directory.join(journal::FILE_NAME), job.retry_failed)?;
    let mut earlier_users = Some(done.take_users());
    let done = Arc::new(done);
    if resumed {
        tracing::info!(
            "{} (target, setting) pairs were finished before; they are not touched again",
            done.finished_rows()
        );
    }
    let journal = Arc::new(Journal::open(&job.directory)?);
    let report = Arc::new(Report::create(&job.directory, quiet));
    if done.damaged > 0 {
        report.emit(Event::Warning(format!(
            "the journal had {} damaged places (a full disk or a crash mid-write?); they were skipped, every intact record counts, and what they held is done again",
            done.damaged
        )));
    }
    let simulated = job.lanes.iter().any(|lane| lane.connection.simulator.is_some());
    if simulated {
        tracing::info!("running against an in-process simulated tenant: nothing real is changed");
    }
    if job.desired.get(Setting::SmtpAuth).is_some() || job.kind == RunKind::Rollback {
        report.emit(Event::Warning(UNSUPPORTED_NOTE.into()));
    }
    let said_in_confirmation = job.kind.mode() == Mode::Apply && !job.desired.weakening().is_empty();
    if job.desired.get(Setting::SmtpAuth) == Some(Value::Enabled) && !said_in_confirmation {
        report.emit(Event::Warning(RETIREMENT_NOTE.into()));
    }
    report.emit(Event::Started { total: job.total });
    let started_at = time::OffsetDateTime::now_utc();
    let clock = tokio::time::Instant::now();
    let per_target = job.kind == RunKind::Rollback || Setting::PER_TARGET.iter().any(|s| job.desired.get(*s).is_some());
    let exclusions = Arc::new(std::mem::take(&mut job.exclusions));
    let run_wants = [job.desired.get(Setting::SmtpAuth), job.desired.get(Setting::PerUserMfa)];

    let mut clients = Vec::new();
    let mut simulators = Vec::new();
    let mut runs = tokio::task::JoinSet::new();
    // Tenants run side by side, each with its own client (tokens, rates) and share of the work.
    for lane in std::mem::take(&mut job.lanes) {
        let Lane { connection: Connection { client, simulator }, entries, smtp_index } = lane;
        let smtp_index = match smtp_index {
            Some(index) => {
                warn_if_unreadable(&index, report.as_ref());
                Some(PendingIndex::ready(index))
            }
            None => bulk_smtp_auth(&client, &job, tuning.bulk_read, report.clone()),
        };
        let context = Arc::new(Context {
            smtp_index,
            exclusions: exclusions.clone(),
            client: client.clone(),
            desired: job.desired.clone(),
            tenant_expect: job.tenant_expect,
            mode: job.kind.mode(),
            sink: report.clone(),
            journal: journal.clone(),
            done: done.clone(),
            stop: job.stop.clone(),
            // Each tenant's lane owes its own rows (a lane that ends first must not record
            // another's as unfinished); a resume has one lane, which gets what was claimed.
            ledger: Arc::new(Ledger::new(earlier_users.take().unwrap_or_default(), run_wants)),
        });
        let entries: Box<dyn Iterator<Item = Entry> + Send> =
            if per_target { entries } else { Box::new(std::iter::empty()) };
        runs.spawn(engine::run(context, entries, tuning.concurrency as usize));
        clients.push(client);
        simulators.extend(simulator);
    }
    let mut ending = engine::Ending::default();
    while let Some(lane_ending) = runs.join_next().await {
        let lane_ending = lane_ending.map_err(|e| Error::Fatal(format!("a tenant's run stopped unexpectedly: {e}")))?;
        ending.not_started += lane_ending.not_started;
    }
    let warnings = report.finish();
    let finished = finish_report(
        &job, &report, warnings, &clients, &journal, ending, started_at, clock, simulated, resumed, quiet,
    );
    drop(locks);
    for simulator in simulators {
        simulator.stop().await;
    }
    finished
}

/// The command that carries on the run in `directory`, if it can be carried on.
fn resume_command(job: &Job, retry_failed: bool) -> Option<String> {
    let again = match job.kind {
        RunKind::Rollback => "rollback",
        RunKind::Apply => "apply",
        RunKind::Plan | RunKind::Audit => return None,
    };
    let retry = if retry_failed { " --retry-failed" } else { "" };
    Some(format!("remediate {again} --resume {}{retry}", job.directory.display()))
}

/// The exit code a finished run earned: 0 only when every (target, setting) has its final row.
fn earned_exit_code(job: &Job, tally: &report::Tally, ending: engine::Ending, reason: Option<&StopReason>) -> u8 {
    let open = tally.count(Outcome::Failed) + tally.count(Outcome::Conflict) + tally.count(Outcome::Unfinished);
    match reason {
        Some(StopReason::Signal) => exit::INTERRUPTED,
        Some(StopReason::Auth(_)) if tally.count(Outcome::Changed) == 0 && tally.pending_writes == 0 => {
            exit::NOTHING_DONE
        }
        Some(_) => exit::TARGETS_FAILED,
        None if open > 0 || ending.not_started > 0 => exit::TARGETS_FAILED,
        None if job.detailed_exitcode && tally.count(Outcome::WouldChange) > 0 => exit::DRIFT,
        None => exit::SUCCESS,
    }
}

/// What a run left undone, in words, and the command that finishes it.
fn left_to_do(
    job: &Job,
    tally: &report::Tally,
    ending: engine::Ending,
    reason: Option<&StopReason>,
) -> (Vec<String>, Option<String>) {
    let mut lines = Vec::new();
    match reason {
        Some(StopReason::Signal) => lines.push("the run was interrupted (Ctrl-C or SIGTERM)".into()),
        Some(StopReason::Journal(error)) => {
            lines.push(format!("the journal could not be written ({error}); free space, then resume"))
        }
        Some(StopReason::Auth(error)) => lines.push(format!("the service stopped taking the app's token: {error}")),
        _ => {}
    }
    let (unfinished, failed) = (tally.count(Outcome::Unfinished), tally.count(Outcome::Failed));
    if unfinished > 0 {
        lines.push(format!(
            "{unfinished} rows of targets under way are unfinished (outcome 'unfinished' in results.csv)"
        ));
    }
    if ending.not_started > 0 {
        lines.push(format!("{} targets were not started", ending.not_started));
    }
    if failed > 0 {
        lines.push(format!("{failed} rows failed (results.csv says why, with the request ids support asks for)"));
    }
    if tally.count(Outcome::Conflict) > 0 {
        lines.push(format!(
            "{} values were changed by someone else since and left alone",
            tally.count(Outcome::Conflict)
        ));
    }
    let stopped = reason.is_some() || unfinished > 0 || ending.not_started > 0;
    let command = if stopped || failed > 0 {
        resume_command(job, failed > 0).or_else(|| (stopped || failed > 0).then(|| "run the same command again".into()))
    } else {
        None
    };
    (lines, command)
}

/// Renders the report from the journal, writes the summary and the HTML page, prints the recap,
/// and returns the exit code. A failure to write any of it comes after work was done: exit 1,
/// naming the command that finishes the run.
#[allow(clippy::too_many_arguments)]
fn finish_report(
    job: &Job,
    report: &Report,
    warnings: Vec<String>,
    clients: &[Arc<CloudClient>],
    journal: &Journal,
    ending: engine::Ending,
    started_at: time::OffsetDateTime,
    clock: tokio::time::Instant,
    simulated: bool,
    resumed: bool,
    quiet: bool,
) -> Result<u8> {
    let after_work = |error: Error| {
        let finish = resume_command(job, false).unwrap_or_else(|| "run the same command again".into());
        Error::Fatal(format!(
            "{error}. The journal in {} holds everything done so far; once this is fixed: {finish}",
            job.directory.display()
        ))
    };
    let mut tally = report::render(&job.directory).map_err(after_work)?;
    tally.warnings = warnings;
    let reason = job.stop.reason();
    let exit_code = earned_exit_code(job, &tally, ending, reason.as_ref());
    let (unfinished, finish_command) = left_to_do(job, &tally, ending, reason.as_ref());
    let info = summary::RunInfo {
        command: job.kind.name(),
        profile: job.profile.as_deref(),
        desired: job.desired.describe(),
        input: job.input.as_deref(),
        tenant_id: &clients.iter().map(|c| c.tenant_id.clone()).collect::<Vec<_>>().join(","),
        simulated,
        resumed,
        started_at,
        elapsed: clock.elapsed(),
        requests: clients.iter().fold(BTreeMap::new(), |mut all, client| {
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
        interrupted: reason == Some(StopReason::Signal),
        stopped_because: reason.as_ref().map(|r| match r {
            StopReason::Signal => "signal".to_string(),
            StopReason::Journal(error) => format!("journal: {error}"),
            StopReason::Auth(error) => format!("authentication: {error}"),
        }),
        not_started: ending.not_started,
        unfinished,
        finish_command,
    };
    let mut summary_json = summary::to_json(&info, &tally);
    summary_json["input_problems_this_session"] = report.input_problems().into();
    let mut changes = Vec::new();
    if let Some(baseline) = &job.baseline {
        let (drift_summary, found) = report::drift::compare(baseline, &job.directory).map_err(after_work)?;
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
    summary::write(&job.directory, &summary_json).map_err(after_work)?;
    report::html::write(&job.directory, &summary_json, &changes).map_err(after_work)?;
    if quiet {
        // Whatever is left to do is said even with -q: cron mails stderr.
        for line in &info.unfinished {
            eprintln!("not done: {line}");
        }
        if let Some(command) = &info.finish_command {
            eprintln!("to finish: {command}");
        }
    } else {
        print!("{}", summary::recap(&info, &tally, &job.directory));
    }
    if info.interrupted {
        let finish = resume_command(job, false).unwrap_or_else(|| "run the same command again".into());
        eprintln!(
            "interrupted: the report in {} covers what was done. To finish the rest: {finish}",
            job.directory.display()
        );
    }
    Ok(exit_code)
}

/// `validate`: every bad row with its line; exit 0 when clean, 1 when some rows are bad.
pub fn validate(args: ValidateArgs) -> Result<u8> {
    let reader = targets::open_to_list(&args.input, args.column.as_deref())?;
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
