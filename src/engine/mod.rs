//! Plan and apply: tenant settings first (once), then every target, concurrently: resolve it,
//! read each setting, compare, and (when applying) write only what differs. Every finished
//! (target, setting) is recorded in the journal, then told to the reporters as an
//! [`events::Row`].

pub(crate) mod events;
pub(crate) mod journal;
pub(crate) mod layers;
mod ledger;
mod reason;
mod target;

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::cloud::CloudClient;
use crate::run::stop::{Stop, StopReason};
use crate::settings::{DesiredState, Setting, Value};
use crate::targets::Entry;
use events::{Event, EventSink, Outcome, Row};
use journal::{Done, Journal, Record};
pub(crate) use ledger::Ledger;
pub(crate) use reason::Reason;

/// Read only, or change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Plan,
    Apply,
}

/// Everything a worker needs, shared.
pub(crate) struct Context {
    pub client: Arc<CloudClient>,
    pub desired: DesiredState,
    /// Rollback: restore each tenant setting only while its value is still this.
    pub tenant_expect: Vec<(Setting, Value)>,
    pub mode: Mode,
    pub sink: Arc<dyn EventSink>,
    pub journal: Arc<Journal>,
    /// What earlier sessions of this run finished (empty for a new run).
    pub done: Arc<Done>,
    /// Asked when the run must stop (a signal, a journal that cannot be written, credentials
    /// refused); says how long work under way may still take.
    pub stop: Stop,
    /// Every mailbox's SMTP AUTH, when it is read in bulk.
    pub mailbox_index: Option<crate::settings::mailbox_index::PendingIndex>,
    /// Targets reported but never touched.
    pub exclusions: Arc<crate::run::scope::Exclusions>,
    /// Targets chosen by the SMTP AUTH sign-in log (`--only-smtp-auth-seen`, `--spare-…`).
    pub sign_in_scope: Option<Arc<crate::run::scope::SignInScope>>,
    /// What every accepted target still owes, and which directory user each line claimed.
    pub ledger: Arc<Ledger>,
    /// Targets held at the values of owned, unexpired exceptions, and the day they are judged on.
    pub exceptions: Arc<crate::settings::exceptions::Exceptions>,
    pub today: time::Date,
    /// The SMTP AUTH layers, when the run changes or judges them: the opt-in steps and the
    /// `smtp-auth-effective` verdict.
    pub layers: Option<Arc<layers::Layers>>,
}

impl Context {
    /// What reads and writes lean on besides the service.
    fn sources(&self) -> crate::settings::Sources<'_> {
        crate::settings::Sources {
            mailbox_index: self.mailbox_index.as_ref(),
            policies: self.layers.as_deref().map(layers::Layers::policies).unwrap_or_default(),
            exclusion_group: self.layers.as_deref().and_then(|l| l.exclusion_group.as_deref()),
        }
    }
}

impl Context {
    /// Records a finished row, then tells the reporters. The row is written and synced within
    /// a second; a crash in that second loses at most rows a resume tells again by reading: a
    /// write behind a row has its intent on disk from before it went out.
    fn finish(&self, mut row: Row) {
        row.tenant = self.client.tenant_id.clone();
        if let Err(error) = self.journal.append_later(&Record::Row(row.clone())) {
            tracing::error!("{error}; stopping the run");
            self.stop.request(StopReason::Journal(error.to_string()));
            return;
        }
        self.ledger.paid(row.line, row.setting);
        self.sink.emit(Event::Row(Box::new(row)));
    }
}

/// How the run ended, besides what the journal says (why it stopped is the `Stop`'s reason;
/// the rows recorded `unfinished` are in the journal).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Ending {
    /// Targets that never started because the run was stopped.
    pub not_started: u64,
}

const SMTP_AUTH_BLOCKED: &str = "security defaults stay on: they block SMTP AUTH whatever the mailbox says, so enabling smtp-auth will have no effect (set security-defaults=disabled, and check Conditional Access policies that block legacy authentication)";

/// Waits for the targets under way, within the grace period once the run is asked to stop; what
/// is still in flight then is abandoned (its writes stay as intents, which a resume reads again).
async fn drain(context: &Context, workers: &mut JoinSet<()>) {
    let drained = context.stop.within_grace(async { while workers.join_next().await.is_some() {} }).await;
    if drained.is_none() {
        context.sink.emit(Event::Warning(
            "requests still in flight after the grace period were abandoned; a resume reads them again".into(),
        ));
        workers.abort_all();
        while workers.join_next().await.is_some() {}
    }
}

/// The targets a stopped run owed and never started: those read ahead, and those still coming.
async fn never_started(
    context: &Context,
    ready: impl Iterator<Item = Entry>,
    receiver: &mut mpsc::Receiver<Vec<Entry>>,
) -> u64 {
    let mut rest: Vec<Entry> = ready.collect();
    while let Some(chunk) = receiver.recv().await {
        rest.extend(chunk);
    }
    let owed =
        rest.iter().filter(|entry| matches!(entry, Entry::Target(found) if !target::wanted(context, found).is_empty()));
    owed.count() as u64
}

/// Runs the tenant step, then every entry, `concurrency` targets at a time. A run nobody stops
/// waits for all of its work. Once `context.stop` is asked, no new target starts and targets
/// under way get the grace period to finish; what they still owe is then recorded as
/// `unfinished` (their writes stay as intents in the journal, which a resume reads again).
pub(crate) async fn run<I>(context: Arc<Context>, entries: I, concurrency: usize) -> Ending
where
    I: Iterator<Item = Entry> + Send + 'static,
{
    let stop = context.stop.clone();
    if !stop.is_stopped() {
        tenant_step(&context).await;
    }
    let (sender, mut receiver) = mpsc::channel::<Vec<Entry>>(concurrency.div_ceil(READ_AHEAD) * 4);
    let reading = tokio::task::spawn_blocking(move || read_ahead(entries, &sender));
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut workers = JoinSet::new();
    let mut not_started = 0;
    let mut ready = Vec::new().into_iter();
    loop {
        let entry = match ready.next() {
            Some(entry) if stop.is_stopped() => {
                ready = std::iter::once(entry).chain(ready).collect::<Vec<_>>().into_iter();
                break;
            }
            Some(entry) => Some(entry),
            None => tokio::select! {
                biased;
                _ = stop.stopped() => break,
                chunk = receiver.recv() => chunk.and_then(|chunk| {
                    ready = chunk.into_iter();
                    ready.next()
                }),
            },
        };
        match entry {
            None => break,
            Some(Entry::Problem(problem)) => {
                if !context.done.was_rejected(problem.line) {
                    // A write that fails breaks the journal, and the flush at the end says so.
                    let _ = context
                        .journal
                        .append_later(&Record::Rejected { line: problem.line, reason: problem.message.clone() });
                }
                context.sink.emit(Event::InputProblem(problem));
            }
            Some(Entry::Target(found)) => {
                let slot = tokio::select! {
                    biased;
                    _ = stop.stopped() => {
                        not_started += u64::from(!target::wanted(&context, &found).is_empty());
                        break
                    }
                    slot = slots.clone().acquire_owned() => slot,
                };
                let context = context.clone();
                workers.spawn(async move {
                    target::process(&context, &found).await;
                    drop(slot);
                });
            }
        }
        while workers.try_join_next().is_some() {}
    }
    drain(&context, &mut workers).await;
    if stop.is_stopped() {
        not_started += never_started(&context, ready, &mut receiver).await;
    }
    drop(receiver);
    let _ = reading.await;
    record_unfinished(&context);
    if let Err(error) = context.journal.flush().await {
        context.stop.request(StopReason::Journal(error.to_string()));
    }
    Ending { not_started }
}

/// Entries handed from the reading thread to the run at a time: one by one, the two threads
/// would wake each other for every target.
const READ_AHEAD: usize = 64;

/// Reads `entries` on a thread of its own (the CSV is read from disk), in chunks.
fn read_ahead(entries: impl Iterator<Item = Entry>, sender: &mpsc::Sender<Vec<Entry>>) {
    let mut chunk = Vec::with_capacity(READ_AHEAD);
    for entry in entries {
        chunk.push(entry);
        if chunk.len() == READ_AHEAD
            && sender.blocking_send(std::mem::replace(&mut chunk, Vec::with_capacity(READ_AHEAD))).is_err()
        {
            return;
        }
    }
    if !chunk.is_empty() {
        let _ = sender.blocking_send(chunk);
    }
}

/// Every row the ledger still owes, as `unfinished` (made durable by the flush that follows).
fn record_unfinished(context: &Context) {
    for mut row in context.ledger.outstanding() {
        row.outcome = Outcome::Unfinished;
        row.tenant = context.client.tenant_id.clone();
        let _ = context.journal.append_later(&Record::Row(row.clone()));
        context.sink.emit(Event::Row(Box::new(row)));
    }
}

/// The tenant-wide settings, once, before any target: each as the run wants it, and what it is
/// left at told to the layers (so each target's verdict counts it).
async fn tenant_step(context: &Context) {
    for setting in Setting::TENANT {
        let Some(desired) = context.desired.get(setting) else { continue };
        if context.done.is_finished(0, setting) {
            continue;
        }
        context.ledger.owe(target::tenant_row(context, setting, desired));
        let Some(row) = context.stop.within_grace(target::tenant_setting(context, setting, desired)).await else {
            return;
        };
        if setting == Setting::SecurityDefaults {
            warn_if_smtp_auth_blocked(context, &row);
        }
        if let Some(layers) = &context.layers {
            let left = match row.outcome {
                Outcome::WouldChange => Some(row.desired),
                Outcome::Changed | Outcome::Compliant => row.after,
                _ => None,
            };
            left.into_iter().for_each(|value| layers.tenant_left(setting, value));
        }
        if row.outcome != Outcome::Unfinished {
            context.finish(row);
        }
    }
    if context.desired.get(Setting::SecurityDefaults).is_none()
        && context.desired.get(Setting::SmtpAuth) == Some(Value::Enabled)
    {
        let reading = crate::settings::read(Setting::SecurityDefaults, &context.client, None, context.sources()).await;
        if reading.is_ok_and(|r| r.value == Some(Value::Enabled)) {
            context.sink.emit(Event::Warning(SMTP_AUTH_BLOCKED.into()));
        }
    }
}

/// SMTP AUTH stays blocked while security defaults are on, whatever the mailbox says.
fn warn_if_smtp_auth_blocked(context: &Context, row: &Row) {
    let enabling = context.desired.get(Setting::SmtpAuth) == Some(Value::Enabled);
    let stays_on = match row.outcome {
        Outcome::Changed | Outcome::WouldChange => row.desired == Value::Enabled,
        _ => row.before == Some(Value::Enabled) || row.after == Some(Value::Enabled),
    };
    if enabling && stays_on {
        context.sink.emit(Event::Warning(SMTP_AUTH_BLOCKED.into()));
    }
}
