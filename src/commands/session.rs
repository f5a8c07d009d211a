//! Runs a job, whatever command built it: sign in and lock each tenant ([`locks`]), start from
//! the budgets remembered ([`budgets`]), open the journal, run the engine per tenant ([`lanes`]),
//! render the report ([`finish`]); and the exit-code policy ([`outcome`]): which code a finished run earned,
//! what it left undone, and the exact command that finishes it.

mod budgets;
mod finish;
mod lanes;
mod locks;
mod outcome;

use std::path::PathBuf;
use std::sync::Arc;

use super::{Connection, RETIREMENT_NOTE};
use crate::cli::SessionArgs;
use crate::cloud::exchange::UNSUPPORTED_NOTE;
use crate::engine::Mode;
use crate::engine::events::{Event, EventSink};
use crate::engine::journal::{self, Done, Journal};
use crate::error::Result;
use crate::report::OutputFormat;
use crate::report::{self, Report};
use crate::run::lock;
use crate::run::record::{RunKind, RunRecord};
use crate::run::scope::Exclusions;
use crate::run::stop::Stop;
use crate::run::tuning::Tuning;
use crate::settings::mailbox_index::MailboxIndex;
use crate::settings::{DesiredState, Setting, Value};
use crate::targets::Entry;

pub(super) use locks::{Locked, lock_tenants};
pub(super) use outcome::{final_outcome, left_to_do, resume_command};

/// One run for the engine, whatever command asked for it: made once, by [`Job::new`], from what
/// every run has and what its command decided; read by the session alone.
pub(super) struct Job {
    kind: RunKind,
    desired: DesiredState,
    directory: PathBuf,
    /// Stops the run (signals are watched from the command's start).
    stop: Stop,
    tuning: Tuning,
    /// Where the tenant locks and the budgets measured live.
    state_dir: PathBuf,
    /// What stdout gets at the end.
    output: OutputFormat,
    /// What the command decided for this run.
    decided: Decisions,
}

/// What a command decided for its run beyond what every run has, given in one expression
/// (`Decisions { lanes, total, .. Decisions::default() }`).
pub(super) struct Decisions {
    pub(super) tenant_expect: Vec<(Setting, Value)>,
    /// The SMTP AUTH layers the run changes or judges, when it does.
    pub(super) layers: Option<crate::engine::layers::Layers>,
    /// Mailboxes held at the values of owned exceptions (`--exceptions`).
    pub(super) exceptions: Arc<crate::settings::exceptions::Exceptions>,
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
    /// Set for a new run (saved as run.json); `None` when resuming.
    pub(super) record: Option<RunRecord>,
    pub(super) exclusions: Arc<Exclusions>,
    pub(super) baseline: Option<PathBuf>,
    /// A resume that tries failed rows again.
    pub(super) retry_failed: bool,
    /// This run's shard of the targets (K of N), which spends the tenant's budget with the others.
    pub(super) shard: Option<crate::run::shard::Shard>,
    /// Targets chosen by the SMTP AUTH sign-in log, and what the log said.
    pub(super) sign_in_scope: Option<Arc<crate::run::scope::SignInScope>>,
    pub(super) smtp_auth_usage: Option<crate::report::usage::UsageSummary>,
}

impl Default for Decisions {
    fn default() -> Decisions {
        Decisions {
            tenant_expect: Default::default(),
            layers: Default::default(),
            exceptions: Default::default(),
            record_exceptions: Default::default(),
            source_damaged: Default::default(),
            locked: Default::default(),
            keep: Default::default(),
            max_not_found: 0.5,
            profile: Default::default(),
            input: Default::default(),
            lanes: Default::default(),
            total: Default::default(),
            detailed_exitcode: Default::default(),
            record: Default::default(),
            exclusions: Default::default(),
            baseline: Default::default(),
            retry_failed: Default::default(),
            shard: Default::default(),
            sign_in_scope: Default::default(),
            smtp_auth_usage: Default::default(),
        }
    }
}

impl Job {
    pub(super) fn new(
        kind: RunKind,
        desired: DesiredState,
        directory: PathBuf,
        stop: Stop,
        tuning: Tuning,
        session: &SessionArgs,
        decided: Decisions,
    ) -> Job {
        Job {
            kind,
            desired,
            directory,
            stop,
            tuning,
            state_dir: session.state_dir.clone().unwrap_or_else(lock::default_state_dir),
            output: session.output,
            decided,
        }
    }
}

/// One tenant's share of a job.
pub(super) struct Lane {
    pub(super) connection: Connection,
    pub(super) entries: Box<dyn Iterator<Item = Entry> + Send>,
    /// SMTP AUTH of every mailbox, when the targets came from that listing.
    pub(super) mailbox_index: Option<MailboxIndex>,
}

/// Runs a job: sign in and lock the tenant, open the journal, run the engine, render the report,
/// and work out the exit code.
pub(super) async fn execute(mut job: Job, quiet: bool) -> Result<u8> {
    let (locks, tenant_ids) = match job.decided.locked.take() {
        Some(locked) => locked,
        None => locks::sign_in_and_lock(&job).await?,
    };
    budgets::start_from_remembered_budgets(&job, &tenant_ids);
    let following = budgets::follow_sibling_shards(&job, &locks, &tenant_ids);
    let resumed = job.decided.record.is_none();
    save_record(&mut job, &tenant_ids)?;
    let mut done = Done::load(&job.directory.join(journal::FILE_NAME), job.decided.retry_failed)?;
    let earlier_users = done.take_users();
    let done = Arc::new(done);
    if resumed {
        tracing::info!(
            "{} (target, setting) pairs were finished before; they are not touched again",
            done.finished_rows()
        );
    }
    let journal = Arc::new(Journal::open(&job.directory)?);
    let report = Arc::new(Report::create(quiet));
    let simulated = say_before_start(&job, &done, report.as_ref());
    report.emit(Event::Started { total: job.decided.total });
    let started_at = time::OffsetDateTime::now_utc();
    let clock = tokio::time::Instant::now();
    let mut running = lanes::start(&mut job, &report, &journal, &done, earlier_users);
    let ending = running.ending().await?;
    drop(following);
    let said = report.finish();
    budgets::remember_budgets(&job, &running.clients, &tenant_ids);
    if let Some(recording) = &job.decided.record_exceptions {
        recording.record(&job.directory)?;
    }
    let session = finish::Session {
        report: &report,
        said,
        clients: &running.clients,
        journal: &journal,
        ending,
        started_at,
        clock,
        simulated,
        resumed,
    };
    let finished = finish::finish_report(&job, &session, quiet);
    drop((locks, running.simulated_tenants));
    if let Some(keep) = job.decided.keep {
        let removed = report::baseline::prune(&job.directory, keep)?;
        tracing::info!("--keep {keep}: removed {removed} older report directories");
    }
    finished
}

/// A new run saves its record (with the tenants it locked) before anything is done; a resume
/// keeps the one it found.
fn save_record(job: &mut Job, tenant_ids: &[String]) -> Result<()> {
    match &mut job.decided.record {
        Some(record) => {
            report::ensure_directory(&job.directory)?;
            record.set_tenants(tenant_ids.to_vec());
            record.save(&job.directory)?;
        }
        None => tracing::info!("resuming the run in {}", job.directory.display()),
    }
    Ok(())
}

/// What the report says before the first target: damage the journal had, the notes the desired
/// state calls for, expired exceptions. Whether any lane is simulated.
fn say_before_start(job: &Job, done: &Done, report: &Report) -> bool {
    if done.damaged > 0 {
        report.emit(Event::Warning(format!(
            "the journal had {} damaged places (a full disk or a crash mid-write?); they were skipped, every intact record counts, and what they held is done again",
            done.damaged
        )));
    }
    let simulated = job.decided.lanes.iter().any(|lane| lane.connection.simulated.is_some());
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
    super::exceptions::warn_expired(&job.decided.exceptions, report);
    simulated
}
