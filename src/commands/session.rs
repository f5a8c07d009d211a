//! Runs a job, whatever command built it: sign in and lock each tenant, open the journal, run
//! the engine per tenant, render the report; and the exit-code policy: which code a finished run
//! earned, what it left undone, and the exact command that finishes it.

use std::path::PathBuf;
use std::sync::Arc;

use super::{Connection, RETIREMENT_NOTE, finish};
use crate::budgets::Budgets;
use crate::cli::SessionArgs;
use crate::cloud::CloudClient;
use crate::cloud::exchange::UNSUPPORTED_NOTE;
use crate::engine::events::{Event, EventSink, Outcome};
use crate::engine::journal::{self, Done, Journal};
use crate::engine::{self, Context, Ledger, Mode};
use crate::error::{Error, FinalOutcome, Result};
use crate::lock;
use crate::report::OutputFormat;
use crate::report::{self, Report};
use crate::run_record::{RunKind, RunRecord};
use crate::scope::Exclusions;
use crate::settings::mailbox_index::{MailboxIndex, PendingIndex};
use crate::settings::{DesiredState, Setting, Value};
use crate::stop::{Stop, StopReason};
use crate::targets::Entry;
use crate::tuning::{BulkRead, Tuning};

/// One run for the engine, whatever command asked for it.
pub(super) struct Job {
    pub(super) kind: RunKind,
    pub(super) desired: DesiredState,
    pub(super) tenant_expect: Vec<(Setting, Value)>,
    /// The SMTP AUTH layers the run changes or judges, when it does.
    pub(super) layers: Option<crate::engine::layers::Layers>,
    /// Mailboxes held at the values of owned exceptions (`--exceptions`).
    pub(super) exceptions: Arc<crate::exceptions::Exceptions>,
    /// Where the fix records the mailboxes it left with SMTP AUTH on (`--record-exceptions`).
    pub(super) record_exceptions: Option<super::exceptions::Recording>,
    /// A rollback: damaged places of the apply's journal, whose changes it cannot undo.
    pub(super) source_damaged: u64,
    /// The tenants' locks, when the command took them before listing (`--all-mailboxes`).
    pub(super) locked: Option<Locked>,
    /// How many earlier report directories beside this one to keep (`--keep`); the rest are removed.
    pub(super) keep: Option<usize>,
    /// The share of targets that may be missing from the directory before the run fails.
    pub(super) max_not_found: f64,
    pub(super) profile: Option<String>,
    pub(super) input: Option<PathBuf>,
    /// One lane per tenant: its connection and its targets.
    pub(super) lanes: Vec<Lane>,
    pub(super) total: Option<u64>,
    pub(super) detailed_exitcode: bool,
    pub(super) directory: PathBuf,
    /// Set for a new run (saved as run.json); `None` when resuming.
    pub(super) record: Option<RunRecord>,
    pub(super) exclusions: Arc<Exclusions>,
    pub(super) baseline: Option<PathBuf>,
    /// Stops the run (signals are watched from the command's start).
    pub(super) stop: Stop,
    /// A resume that tries failed rows again.
    pub(super) retry_failed: bool,
    pub(super) tuning: Tuning,
    /// Where the tenant locks and the budgets measured live.
    pub(super) state_dir: PathBuf,
    /// This run's shard of the targets (K of N), which spends the tenant's budget with the others.
    pub(super) shard: Option<crate::shard::Shard>,
    /// What stdout gets at the end.
    pub(super) output: OutputFormat,
    /// Targets chosen by the SMTP AUTH sign-in log, and what the log said.
    pub(super) sign_in_scope: Option<Arc<crate::scope::SignInScope>>,
    pub(super) smtp_auth_usage: Option<crate::report::usage::UsageSummary>,
}

impl Job {
    /// A job of `kind` with no lanes yet; the command fills in the rest.
    pub(super) fn new(
        kind: RunKind,
        desired: DesiredState,
        directory: PathBuf,
        stop: Stop,
        tuning: Tuning,
        session: &SessionArgs,
    ) -> Job {
        Job {
            kind,
            desired,
            tenant_expect: Vec::new(),
            layers: None,
            exceptions: Arc::default(),
            record_exceptions: None,
            max_not_found: 0.5,
            keep: None,
            locked: None,
            source_damaged: 0,
            profile: None,
            input: None,
            lanes: Vec::new(),
            total: None,
            detailed_exitcode: false,
            directory,
            record: None,
            exclusions: Arc::default(),
            baseline: None,
            stop,
            retry_failed: false,
            tuning,
            state_dir: session.state_dir.clone().unwrap_or_else(lock::default_state_dir),
            shard: None,
            output: session.output,
            sign_in_scope: None,
            smtp_auth_usage: None,
        }
    }
}

/// One tenant's share of a job.
pub(super) struct Lane {
    pub(super) connection: Connection,
    pub(super) entries: Box<dyn Iterator<Item = Entry> + Send>,
    /// SMTP AUTH of every mailbox, when the targets came from that listing.
    pub(super) smtp_index: Option<MailboxIndex>,
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
fn bulk_smtp_auth(client: &Arc<CloudClient>, job: &Job, sink: Arc<dyn EventSink>) -> Option<PendingIndex> {
    let wanted = match job.tuning.bulk_read {
        BulkRead::Never => false,
        BulkRead::Always => true,
        BulkRead::Auto => job.total.unwrap_or(0) >= 1000,
    };
    if !wanted || job.desired.get(Setting::SmtpAuth).is_none() || job.kind == RunKind::Rollback {
        return None;
    }
    Some(PendingIndex::spawn(client.clone(), move |read| match read {
        Ok(index) => {
            tracing::info!("read SMTP AUTH for {} mailboxes in bulk", index.len());
            warn_if_unreadable(index, sink.as_ref());
        }
        Err(error) => {
            tracing::warn!("could not read every mailbox at once ({error}); reading the rest one by one instead");
        }
    }))
}

/// Signs in to every lane's tenant and locks it by its id; stops with exit 130 if interrupted
/// meanwhile (nothing was changed yet).
async fn sign_in_and_lock(job: &Job) -> Result<Locked> {
    let connections: Vec<&Connection> = job.lanes.iter().map(|lane| &lane.connection).collect();
    lock_tenants(&connections, &job.stop, &job.state_dir, job.kind, job.shard).await
}

/// The tenants' locks, and their ids in the order of the connections.
pub(super) type Locked = (Vec<lock::TenantLock>, Vec<String>);

/// Signs in to each connection's tenant and locks it: before anything is listed or read, so that
/// a run that will be refused as busy is refused at once.
pub(super) async fn lock_tenants(
    connections: &[&Connection],
    stop: &Stop,
    state_dir: &std::path::Path,
    kind: RunKind,
    shard: Option<crate::shard::Shard>,
) -> Result<Locked> {
    let mut locks = Vec::new();
    let mut ids = Vec::new();
    for connection in connections {
        let client = &connection.client;
        let signed_in = async {
            client.check_credentials().await?;
            client.tenant_guid().await
        };
        let id = stop
            .within_grace(signed_in)
            .await
            .ok_or_else(|| Error::Interrupted("interrupted while signing in; nothing was changed".into()))??;
        // A simulated tenant lives in this process alone: two rehearsals never share one.
        if connection.simulated.is_none() {
            locks.push(lock::acquire(state_dir, &id, kind.name(), shard)?);
        }
        ids.push(id);
    }
    Ok((locks, ids))
}

/// Starts each lane's rates from the budgets an earlier run measured for its tenant (a shard from
/// its share of them), unless the rates are fixed.
fn start_from_remembered_budgets(job: &Job, tenant_ids: &[String]) {
    if job.tuning.fixed_rate {
        return;
    }
    let share = job.shard.map_or(1.0, |shard| 1.0 / f64::from(shard.count()));
    for (lane, tenant) in job.lanes.iter().zip(tenant_ids) {
        if let Some(budgets) = Budgets::load(&job.state_dir, tenant) {
            tracing::info!(tenant = %tenant, "starting from the budgets measured on {}", budgets.measured_at);
            lane.connection.client.start_from(budgets.as_array(), share);
        }
    }
}

/// How often a shard reads its siblings' lock files.
const SIBLING_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Follows the other shards of this run on each tenant: as they end (or come back), this shard's
/// share of the tenant's budget grows (or shrinks). Shards end apart (the targets split by hash,
/// not by cost), and the last one at work would otherwise spend a third of the budget alone for
/// as long as a minute (`shards-3x10k`, README).
fn follow_sibling_shards(job: &Job, locks: &[lock::TenantLock], tenant_ids: &[String]) -> Following {
    let mut tasks = Vec::new();
    for (lane, tenant) in job.lanes.iter().zip(tenant_ids) {
        let siblings = locks.iter().find(|lock| lock.tenant == *tenant).and_then(lock::TenantLock::siblings);
        let Some(siblings) = siblings.filter(|_| !job.tuning.fixed_rate) else {
            continue;
        };
        let client = lane.connection.client.clone();
        tasks.push(tokio::spawn(async move {
            let mut at_work = siblings.shards();
            let mut check = tokio::time::interval(SIBLING_CHECK);
            check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                check.tick().await;
                // Two small files a second, read on the runtime's thread: a blocking-pool hop
                // would cost more than the reads.
                let now = siblings.at_work();
                if now != at_work {
                    tracing::info!(
                        "{now} of {} shards at work on this tenant: this one's share of its budget is now 1/{now}",
                        siblings.shards()
                    );
                    client.reshare(f64::from(at_work) / f64::from(now));
                    at_work = now;
                }
            }
        }));
    }
    Following(tasks)
}

/// The tasks following sibling shards, stopped with the run.
struct Following(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Following {
    fn drop(&mut self) {
        self.0.iter().for_each(tokio::task::JoinHandle::abort);
    }
}

/// Keeps the budgets each tenant's run measured for the next run (a shard measured only its
/// share, and keeps nothing).
fn remember_budgets(job: &Job, clients: &[Arc<CloudClient>], tenant_ids: &[String]) {
    if job.tuning.fixed_rate || job.shard.is_some() {
        return;
    }
    for (client, tenant) in clients.iter().zip(tenant_ids) {
        if let Some(budgets) = Budgets::updated(Budgets::load(&job.state_dir, tenant), &client.pacing()) {
            budgets.save(&job.state_dir, tenant);
        }
    }
}

/// Runs a job: sign in and lock the tenant, open the journal, run the engine, render the report,
/// and work out the exit code.
pub(super) async fn execute(mut job: Job, quiet: bool) -> Result<u8> {
    let (locks, tenant_ids) = match job.locked.take() {
        Some(locked) => locked,
        None => sign_in_and_lock(&job).await?,
    };
    start_from_remembered_budgets(&job, &tenant_ids);
    let following = follow_sibling_shards(&job, &locks, &tenant_ids);
    let resumed = job.record.is_none();
    match &mut job.record {
        Some(record) => {
            report::ensure_directory(&job.directory)?;
            record.set_tenants(tenant_ids.clone());
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
    let report = Arc::new(Report::create(quiet));
    if done.damaged > 0 {
        report.emit(Event::Warning(format!(
            "the journal had {} damaged places (a full disk or a crash mid-write?); they were skipped, every intact record counts, and what they held is done again",
            done.damaged
        )));
    }
    let simulated = job.lanes.iter().any(|lane| lane.connection.simulated.is_some());
    if simulated {
        tracing::info!("running against an in-process simulated tenant: nothing real is changed");
    }
    if job.desired.get(Setting::SmtpAuth).is_some() || job.kind == RunKind::Rollback {
        report.emit(Event::Note(UNSUPPORTED_NOTE.into()));
    }
    let said_in_confirmation = job.kind.mode() == Mode::Apply && !job.desired.weakening().is_empty();
    if job.desired.get(Setting::SmtpAuth) == Some(Value::Enabled) && !said_in_confirmation {
        report.emit(Event::Note(RETIREMENT_NOTE.into()));
    }
    super::exceptions::warn_expired(&job.exceptions, report.as_ref());
    report.emit(Event::Started { total: job.total });
    let started_at = time::OffsetDateTime::now_utc();
    let clock = tokio::time::Instant::now();
    let per_target = job.kind == RunKind::Rollback || Setting::PER_TARGET.iter().any(|s| job.desired.get(*s).is_some());
    let exclusions = job.exclusions.clone();
    let run_wants = [job.desired.get(Setting::SmtpAuth), job.desired.get(Setting::PerUserMfa)];

    let mut clients = Vec::new();
    let mut simulated_tenants = Vec::new();
    let mut runs = tokio::task::JoinSet::new();
    // Tenants run side by side, each with its own client (tokens, rates) and share of the work.
    for lane in std::mem::take(&mut job.lanes) {
        let Lane { connection: Connection { client, simulated }, entries, smtp_index } = lane;
        let smtp_index = match smtp_index {
            Some(index) => {
                warn_if_unreadable(&index, report.as_ref());
                Some(PendingIndex::ready(index))
            }
            None => bulk_smtp_auth(&client, &job, report.clone()),
        };
        let context = Arc::new(Context {
            smtp_index,
            exclusions: exclusions.clone(),
            sign_in_scope: job.sign_in_scope.clone(),
            client: client.clone(),
            desired: job.desired.clone(),
            tenant_expect: job.tenant_expect.clone(),
            layers: job.layers.as_ref().map(|layers| Arc::new(layers.for_tenant())),
            exceptions: job.exceptions.clone(),
            today: time::OffsetDateTime::now_utc().date(),
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
        runs.spawn(engine::run(context, entries, job.tuning.concurrency as usize));
        clients.push(client);
        simulated_tenants.extend(simulated);
    }
    let mut ending = engine::Ending::default();
    while let Some(lane_ending) = runs.join_next().await {
        let lane_ending = lane_ending.map_err(|e| Error::Fatal(format!("a tenant's run stopped unexpectedly: {e}")))?;
        ending.not_started += lane_ending.not_started;
    }
    drop(following);
    let warnings = report.finish();
    remember_budgets(&job, &clients, &tenant_ids);
    if let Some(recording) = &job.record_exceptions {
        recording.record(&job.directory)?;
    }
    let finished = finish::finish_report(
        &job, &report, warnings, &clients, &journal, ending, started_at, clock, simulated, resumed, quiet,
    );
    drop((locks, simulated_tenants));
    if let Some(keep) = job.keep {
        let removed = report::baseline::prune(&job.directory, keep)?;
        tracing::info!("--keep {keep}: removed {removed} older report directories");
    }
    finished
}

/// The command that carries on the run in `directory`, if it can be carried on.
pub(super) fn resume_command(job: &Job, retry_failed: bool) -> Option<String> {
    let again = match job.kind {
        RunKind::Rollback => "rollback",
        RunKind::Apply => "apply",
        RunKind::Plan | RunKind::Audit => return None,
    };
    let retry = if retry_failed { " --retry-failed" } else { "" };
    // Absolute, and quoted for a shell: the command is run from wherever the reader is. The run
    // record keeps the tenant, the credentials' place and the state directory.
    let directory = std::fs::canonicalize(&job.directory).unwrap_or_else(|_| job.directory.clone());
    Some(format!("remediate {again} --resume {}{retry}", shell_word(&directory.display().to_string())))
}

/// `text` as one shell word: bare when it is plain, else in single quotes.
fn shell_word(text: &str) -> String {
    let plain = !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+:@%=,".contains(c));
    if plain { text.to_string() } else { format!("'{}'", text.replace('\'', "'\\''")) }
}

/// How a finished run ended: done only when every (target, setting) has its final row.
pub(super) fn final_outcome(
    job: &Job,
    tally: &report::Tally,
    ending: engine::Ending,
    reason: Option<&StopReason>,
) -> FinalOutcome {
    // A device that still cannot send leaves an apply unfinished; a plan or audit only finds it.
    let blocked = tally.count(Outcome::Blocked);
    let (blocked_open, blocked_drift) = if job.kind.mode() == Mode::Apply { (blocked, 0) } else { (0, blocked) };
    let open =
        tally.count(Outcome::Failed) + tally.count(Outcome::Conflict) + tally.count(Outcome::Unfinished) + blocked_open;
    match reason {
        Some(StopReason::Signal) => FinalOutcome::Interrupted,
        Some(StopReason::Auth(_)) if tally.count(Outcome::Changed) == 0 && tally.pending_writes == 0 => {
            FinalOutcome::NothingDone
        }
        Some(_) => FinalOutcome::Unfinished,
        // Nothing changed, and every failure a permission the app lacks (a refusal: no write of
        // those rows happened): a configuration problem.
        None if tally.count(Outcome::Failed) > 0
            && tally.refused == tally.count(Outcome::Failed)
            && open == tally.count(Outcome::Failed)
            && tally.count(Outcome::Changed) == 0 =>
        {
            FinalOutcome::NothingDone
        }
        None if open > 0 || ending.not_started > 0 || mostly_missing(job, tally) || job.source_damaged > 0 => {
            FinalOutcome::Unfinished
        }
        None if job.detailed_exitcode && tally.count(Outcome::WouldChange) + blocked_drift > 0 => FinalOutcome::Drift,
        None => FinalOutcome::Done,
    }
}

/// Whether more targets are missing from the directory than a real list ever has: the wrong
/// tenant, or the wrong file, and a green run would claim a tenant it never checked.
fn mostly_missing(job: &Job, tally: &report::Tally) -> bool {
    tally.targets > 0 && tally.not_found as f64 > job.max_not_found * tally.targets as f64
}

/// What a run left undone, in words, and the command that finishes it.
pub(super) fn left_to_do(
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
    if job.source_damaged > 0 {
        lines.push(format!(
            "the apply's journal had {} damaged places: a change recorded only there cannot be undone; check those mailboxes by hand (its results.csv may name them)",
            job.source_damaged
        ));
    }
    if mostly_missing(job, tally) {
        lines.push(format!(
            "{} of {} targets are not in the tenant's directory: is it the right tenant, and the right file? (the run fails when more than {} of its targets are missing; --max-not-found sets the share)",
            tally.not_found,
            tally.targets,
            job.max_not_found
        ));
    }
    if tally.count(Outcome::Blocked) > 0 {
        lines.push(format!(
            "{} targets are not where the run wants them though their settings are done: another layer decides (outcome 'blocked' in results.csv names it and its fix; `remediate diagnose` explains each)",
            tally.count(Outcome::Blocked)
        ));
    }
    if tally.count(Outcome::Conflict) > 0 {
        lines.push(format!(
            "{} values were changed by someone else since and left alone",
            tally.count(Outcome::Conflict)
        ));
    }
    let stopped = reason.is_some() || unfinished > 0 || ending.not_started > 0 || tally.count(Outcome::Blocked) > 0;
    let command = if stopped || failed > 0 {
        resume_command(job, failed > 0).or_else(|| (stopped || failed > 0).then(|| "run the same command again".into()))
    } else {
        None
    };
    (lines, command)
}
