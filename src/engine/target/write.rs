//! Writing one setting. Nothing is written that the journal cannot vouch for, and a write whose
//! fate is unknown is never simply repeated: the setting is read again first, so a write that
//! did happen is not made twice.

use std::ops::ControlFlow;

use crate::cloud::graph::DirectoryUser;
use crate::cloud::{CallError, RequestIds};
use crate::engine::Context;
use crate::engine::events::{Outcome, Row};
use crate::engine::journal::Record;
use crate::run::stop::StopReason;
use crate::settings;

use super::settle::reached;

/// Rounds of write, then re-read when the write's fate was unknown.
const WRITE_ROUNDS: u32 = 4;

/// Writes the row's desired value, once its intent is journaled. Returns the finished row.
pub(super) async fn write(context: &Context, mut row: Row, user: Option<&DirectoryUser>, exact: bool) -> Row {
    let Some(gate) = journal_intent(context, &row) else {
        row.outcome = Outcome::Unfinished;
        return row;
    };
    for _ in 0..WRITE_ROUNDS {
        match write_round(context, row, user, &gate, exact).await {
            ControlFlow::Break(finished) => return finished,
            ControlFlow::Continue(again) => row = again,
        }
    }
    let error = CallError::Exhausted {
        last: "every write's outcome was unknown".into(),
        ids: RequestIds::default(),
        attempts: 0,
    };
    row.failed(&error)
}

/// Journals the write's intent and returns the gate the write waits at; `None`, with the run
/// stopped, when the journal cannot take it (the row then stays owed).
fn journal_intent(context: &Context, row: &Row) -> Option<crate::cloud::Gate> {
    let intent = Record::Intent {
        line: row.line,
        identity: row.identity.clone(),
        user_id: row.user_id.clone(),
        setting: row.setting,
        before: row.before,
        desired: row.desired,
    };
    // Nothing is written that the journal cannot vouch for: the write waits, past its turn at
    // the pacer, for its intent on disk; if the journal fails, the row stays owed.
    match context.journal.append_later(&intent) {
        Ok(number) => Some(durable_intent(context, number)),
        Err(error) => {
            context.stop.request(StopReason::Journal(error.to_string()));
            None
        }
    }
}

/// One write and what came of it: the row finished, or another round when the write's fate is
/// unknown and reading again did not show it.
async fn write_round(
    context: &Context,
    mut row: Row,
    user: Option<&DirectoryUser>,
    gate: &crate::cloud::Gate,
    exact: bool,
) -> ControlFlow<Row, Row> {
    let (answer, sent_at) = match write_or_confirm(context, &mut row, user, gate, exact).await {
        Written::Answered(answer, sent_at) => (answer, sent_at),
        Written::Confirmed { check, write } => {
            row.attempts += check.attempts + 1;
            // The write's own request id, the one support can trace; its answer never came.
            row.note_ids(&write);
            row.after = check.value;
            row.outcome = Outcome::Changed;
            return ControlFlow::Break(row);
        }
    };
    match answer {
        Ok(answer) => ControlFlow::Break(written(context, row, &answer, user).await),
        Err(CallError::Unknown { attempts, ids, last }) => {
            row.attempts += attempts;
            row.note_ids(&ids);
            tracing::debug!(identity = %row.identity, setting = %row.setting, %last, "write outcome unknown: reading again");
            read_again(context, row, user, sent_at, exact).await
        }
        Err(CallError::Local { code: crate::cloud::NOT_RECORDED, .. }) => {
            row.outcome = Outcome::Unfinished;
            ControlFlow::Break(row)
        }
        Err(error) => ControlFlow::Break(row.failed(&error)),
    }
}

/// A write the service answered: the row is changed.
async fn written(context: &Context, mut row: Row, answer: &crate::cloud::Answer, user: Option<&DirectoryUser>) -> Row {
    row.attempts += answer.attempts;
    row.note_ids(&answer.ids);
    row.after = Some(row.desired);
    // A value the service may turn into another (enabled MFA becomes enforced for a user with a
    // registered method): read it back.
    if row.setting.spec().read_back.contains(&row.desired)
        && let Ok(check) = settings::read(row.setting, &context.client, user, context.sources().fresh()).await
    {
        row.attempts += check.attempts;
        row.after = check.value;
    }
    row.outcome = Outcome::Changed;
    row
}

/// After a write whose outcome is unknown: the row finished when a read shows the value as
/// wanted (or the read fails), else another round.
async fn read_again(
    context: &Context,
    mut row: Row,
    user: Option<&DirectoryUser>,
    sent_at: Option<tokio::time::Instant>,
    exact: bool,
) -> ControlFlow<Row, Row> {
    let client = &context.client;
    // A read that shows the value as wanted ends it: the copy landed, and no later
    // copy is on its way. One that does not may be early: the copy can still land
    // until the request timeout since it went out has passed, so only then is it read
    // again (and written again if it still is not there), so that a late copy cannot
    // undo what comes after, a rollback say.
    let mut waited = sent_at.is_none();
    loop {
        match settings::read(row.setting, client, user, context.sources().fresh()).await {
            Ok(check) if check.value.is_some_and(|v| reached(&row, v, exact)) => {
                row.attempts += check.attempts;
                row.after = check.value;
                row.outcome = Outcome::Changed;
                return ControlFlow::Break(row);
            }
            Ok(check) => row.attempts += check.attempts,
            Err(error) => return ControlFlow::Break(row.failed(&error)),
        }
        if waited {
            return ControlFlow::Continue(row);
        }
        if let Some(sent_at) = sent_at {
            tokio::time::sleep_until(sent_at + client.request_timeout()).await;
        }
        waited = true;
    }
}

/// A gate that opens once the intent numbered `number` is on disk; if the journal cannot be
/// written, it stops the run and stays shut.
fn durable_intent(context: &Context, number: u64) -> crate::cloud::Gate {
    let (journal, stop) = (context.journal.clone(), context.stop.clone());
    crate::cloud::Gate(std::sync::Arc::new(move || {
        let (journal, stop) = (journal.clone(), stop.clone());
        Box::pin(async move {
            journal.durable(number).await.map_err(|error| {
                stop.request(StopReason::Journal(error.to_string()));
                error.to_string()
            })
        })
    }))
}

/// How a write ended: its answer (and when its last attempt went out), or a read that showed it
/// had taken effect while its answer was still held.
enum Written {
    Answered(Result<crate::cloud::Answer, CallError>, Option<tokio::time::Instant>),
    Confirmed { check: settings::Reading, write: RequestIds },
}

/// Writes; when the answer is slow in coming, reads the value back meanwhile, and if the write
/// has taken effect, the row is done without waiting out the held answer. A service that answers
/// most requests in tens of milliseconds sometimes holds one for many seconds, and at the end of
/// a run every worker would wait on those few ("The Tail at Scale", Dean and Barroso, CACM 2013).
/// Only the read is extra: the write is never sent twice here, and a read that does not show it
/// leaves the row waiting for its answer.
async fn write_or_confirm(
    context: &Context,
    row: &mut Row,
    user: Option<&DirectoryUser>,
    gate: &crate::cloud::Gate,
    exact: bool,
) -> Written {
    let client = &context.client;
    let (sent, mut went_out) = tokio::sync::watch::channel(None::<crate::cloud::Sent>);
    let sources = context.sources();
    let write =
        settings::write(row.setting, client, user, row.desired, sources, std::sync::Arc::new(sent), gate.clone());
    tokio::pin!(write);
    // The answer's time counts from when the write went out, not from its wait for a turn; the
    // writes' usual latency may become known while this one waits (the first of a run).
    let held = async {
        if went_out.changed().await.is_err() {
            // The write ended before it went out; its answer settles the select.
            std::future::pending::<()>().await;
        }
        crate::cloud::deadline::passed(tokio::time::Instant::now(), || client.slow_write(row.setting.api())).await;
    };
    let sent_at = |went_out: &tokio::sync::watch::Receiver<Option<crate::cloud::Sent>>| {
        went_out.borrow().as_ref().map(|sent| sent.at)
    };
    tokio::select! {
        answer = &mut write => return Written::Answered(answer, sent_at(&went_out)),
        () = held => {}
    }
    tracing::debug!(identity = %row.identity, setting = %row.setting, "write answer held: reading the value back");
    let check = settings::read(row.setting, client, user, sources.fresh());
    tokio::select! {
        answer = &mut write => return Written::Answered(answer, sent_at(&went_out)),
        check = check => match check {
            Ok(check) if check.value.is_some_and(|v| reached(row, v, exact)) => {
                let id = went_out.borrow().as_ref().map(|sent| sent.client_request_id.clone()).unwrap_or_default();
                let write = RequestIds { client_request_id: id, request_id: String::new() };
                return Written::Confirmed { check, write };
            }
            Ok(check) => row.attempts += check.attempts,
            Err(error) => row.attempts += error.attempts(),
        },
    }
    let answer = write.await;
    Written::Answered(answer, sent_at(&went_out))
}
