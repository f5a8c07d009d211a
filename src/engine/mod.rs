//! Plan and apply: tenant settings first (once), then every target, concurrently: resolve it,
//! read each setting, compare, and (when applying) write only what differs. Every finished
//! (target, setting) becomes an [`events::Row`] for the reporters.

pub mod events;
mod target;

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cloud::CloudClient;
use crate::settings::{DesiredState, Setting, Value};
use crate::targets::{Entry, TargetReader};
use events::{Event, EventSink, Outcome, Row};

/// Read only, or change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Plan,
    Apply,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Plan => "plan",
            Mode::Apply => "apply",
        }
    }
}

/// Everything a worker needs, shared.
pub struct Context {
    pub client: Arc<CloudClient>,
    pub desired: DesiredState,
    pub mode: Mode,
    pub sink: Arc<dyn EventSink>,
}

/// How the run ended, for the exit code.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ending {
    pub interrupted: bool,
}

/// Runs the tenant step, then every target the reader yields, `concurrency` at a time. Stops
/// taking new targets when `cancel` fires; targets already started are finished.
pub async fn run(context: Arc<Context>, reader: TargetReader, concurrency: usize, cancel: CancellationToken) -> Ending {
    if let Some(desired) = context.desired.get(Setting::SecurityDefaults) {
        let row = target::tenant_setting(&context, Setting::SecurityDefaults, desired).await;
        warn_if_smtp_auth_blocked(&context, &row);
        context.sink.emit(Event::Row(row));
    } else if context.desired.get(Setting::SmtpAuth) == Some(Value::Enabled) {
        let reading = crate::settings::read(Setting::SecurityDefaults, &context.client, None).await;
        if reading.is_ok_and(|r| r.value == Some(Value::Enabled)) {
            context.sink.emit(Event::Warning(SMTP_AUTH_BLOCKED.into()));
        }
    }
    let per_target = Setting::PER_TARGET.iter().any(|s| context.desired.get(*s).is_some());
    if !per_target {
        return Ending::default();
    }
    let (sender, mut receiver) = mpsc::channel::<Entry>(concurrency * 4);
    let reading = tokio::task::spawn_blocking(move || {
        for entry in reader {
            if sender.blocking_send(entry).is_err() {
                break;
            }
        }
    });
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut workers = JoinSet::new();
    let mut interrupted = false;
    loop {
        let entry = tokio::select! {
            biased;
            _ = cancel.cancelled() => { interrupted = true; break }
            entry = receiver.recv() => entry,
        };
        match entry {
            None => break,
            Some(Entry::Problem(problem)) => context.sink.emit(Event::InputProblem(problem)),
            Some(Entry::Target(found)) => {
                let slot = tokio::select! {
                    biased;
                    _ = cancel.cancelled() => { interrupted = true; break }
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
    drop(receiver);
    while workers.join_next().await.is_some() {}
    let _ = reading.await;
    Ending { interrupted }
}

const SMTP_AUTH_BLOCKED: &str = "security defaults stay on: they block SMTP AUTH whatever the mailbox says, so enabling smtp-auth will have no effect (set security-defaults=disabled, and check Conditional Access policies that block legacy authentication)";

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
