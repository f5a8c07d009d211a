//! One target, start to finish: find the user, claim it (two rows naming one user are one
//! target), then for each setting read, compare and (when applying) write. A write whose fate is
//! unknown is never simply repeated: the setting is read again first, so a write that did happen
//! is not made twice. Every row a target owes is in the ledger from the start, so a target cut
//! short still ends with a row for each setting.

use tokio::time::Instant;

use super::events::{Event, Outcome, Row};
use super::journal::Record;
use super::ledger::{Claimed, Wants};
use super::{Context, Mode};
use crate::cloud::graph::DirectoryUser;
use crate::cloud::{CallError, RequestIds};
use crate::settings::{self, Setting, Value};
use crate::stop::StopReason;
use crate::targets::{Target, Wanted};

/// Rounds of write, then re-read when the write's fate was unknown.
const WRITE_ROUNDS: u32 = 4;

fn row(line: u64, identity: &str, setting: Setting, desired: Value) -> Row {
    Row {
        line,
        identity: identity.to_string(),
        user_id: String::new(),
        setting,
        before: None,
        desired,
        after: None,
        outcome: Outcome::Skipped,
        attempts: 0,
        error_code: String::new(),
        error_message: String::new(),
        request_id: String::new(),
        client_request_id: String::new(),
        duration_ms: 0,
        tenant: String::new(),
    }
}

impl Row {
    fn failed(mut self, error: &CallError) -> Row {
        self.outcome = Outcome::Failed;
        self.attempts += error.attempts();
        self.error_code = error.code();
        self.error_message = match error {
            CallError::Refused { message, .. } => message.clone(),
            other => other.to_string(),
        };
        self.note_ids(&error.ids());
        self
    }

    fn skipped(mut self, code: &str, reason: &str) -> Row {
        self.outcome = Outcome::Skipped;
        self.error_code = code.to_string();
        self.error_message = reason.to_string();
        self
    }

    /// A row held at an exception's value: `excepted` where it is at it, and said either way.
    fn note_exception(&mut self, exception: &crate::exceptions::Exception) {
        if matches!(self.outcome, Outcome::Compliant | Outcome::Changed | Outcome::WouldChange) {
            if self.outcome == Outcome::Compliant {
                self.outcome = Outcome::Excepted;
            }
            self.error_code = EXCEPTED.into();
            self.error_message = exception.describe();
        }
    }

    fn note_ids(&mut self, ids: &RequestIds) {
        if !ids.client_request_id.is_empty() {
            self.client_request_id = ids.client_request_id.clone();
            self.request_id = ids.request_id.clone();
        }
    }
}

/// The row of a tenant-wide setting, before it is worked on.
pub fn tenant_row(setting: Setting, desired: Value) -> Row {
    row(0, "(tenant)", setting, desired)
}

/// The tenant-wide step, run once before any target.
pub async fn tenant_setting(context: &Context, setting: Setting, desired: Value) -> Row {
    let started = Instant::now();
    let expect = context.tenant_expect.iter().find(|(s, _)| *s == setting).map(|(_, value)| *value);
    let mut row = concluded(context, settle(context, tenant_row(setting, desired), expect, None).await);
    row.duration_ms = started.elapsed().as_millis() as u64;
    row
}

/// A row that failed because the service no longer takes the app's token stops the whole run
/// (every other request would fail the same way) and stays owed, for a resume with working
/// credentials; so does a row whose intent could not be journaled.
fn concluded(context: &Context, mut row: Row) -> Row {
    if row.outcome == Outcome::Failed && row.error_code == CallError::AUTH_CODE {
        context.stop.request(StopReason::Auth(row.error_message.clone()));
        row.outcome = Outcome::Unfinished;
    }
    row
}

/// What a target wants of its user, for telling whether two rows that name one user agree.
fn wants_of(context: &Context, target: &Target) -> Wants {
    let value = |setting: Setting| {
        target
            .overrides
            .iter()
            .find(|w| w.setting == setting)
            .map(|w| w.desired)
            .or_else(|| context.desired.get(setting))
    };
    [value(Setting::SmtpAuth), value(Setting::PerUserMfa)]
}

/// Why a directory user is out of scope, if they are. A licence says nothing here: shared, room
/// and equipment mailboxes usually have none (Microsoft 365 docs, "Remove a license from a shared
/// mailbox") and a licence may lack an Exchange plan, so Exchange decides whether a mailbox
/// exists (its listing, or a not-found from Get-CASMailbox); per-user MFA belongs to every
/// member user, mailbox or not (Graph beta `authentication/requirements`).
fn out_of_scope(user: &DirectoryUser) -> Option<(&'static str, &'static str)> {
    user.guest.then_some(("Guest", "guest account: guests have no mailbox in this tenant"))
}

/// The settings still to do for `target`: its own overrides, else the run's desired values,
/// less what an earlier session of this run finished.
pub(super) fn wanted(context: &Context, target: &Target) -> Vec<Wanted> {
    let verdict = context.layers.as_ref().and_then(|layers| layers.desired);
    let verdict = verdict.map(|desired| Wanted { setting: Setting::SmtpAuthEffective, desired, expect: None });
    Setting::PER_TARGET
        .iter()
        .filter_map(|&setting| {
            let own = target.overrides.iter().find(|w| w.setting == setting).copied();
            own.or_else(|| context.desired.get(setting).map(|desired| Wanted { setting, desired, expect: None }))
        })
        .chain(verdict.filter(|_| target.overrides.iter().all(|w| w.expect.is_none())))
        .filter(|w| !context.done.is_finished(target.line, w.setting))
        .collect()
}

/// Why a target's settings were not worked on: every row of it ends the same way.
enum Unresolved {
    Excluded(String),
    LookupFailed(CallError),
    NotFound,
    /// Another row names the same directory user (its line, when still known).
    SameUser {
        line: Option<u64>,
        upn: String,
    },
    /// Another row names the same directory user and wants other values of it.
    Disagrees {
        line: Option<u64>,
        upn: String,
        ours: String,
        theirs: String,
    },
}

impl Unresolved {
    fn close(&self, row: Row) -> Row {
        match self {
            Unresolved::Excluded(reason) => row.skipped("Excluded", reason),
            Unresolved::LookupFailed(error) => row.failed(error),
            Unresolved::NotFound => row.skipped(
                NOT_FOUND,
                "no user with this address in the directory (looked up by UPN, mail and proxy addresses)",
            ),
            Unresolved::SameUser { line, upn } => row.skipped(
                SAME_USER,
                &format!("{} names the same user ({upn}); it is worked on there, once", other_line(*line)),
            ),
            Unresolved::Disagrees { line, upn, ours, theirs } => {
                let other = other_line(*line);
                let message = format!(
                    "{other} names the same user ({upn}) and wants {theirs}, this line wants {ours}; fix the CSV so one row names each user ({other} was worked on as it asked)"
                );
                let mut row = row.skipped("ConflictingRows", &message);
                row.outcome = Outcome::Failed;
                row
            }
        }
    }
}

fn other_line(line: Option<u64>) -> String {
    line.map_or_else(|| "an earlier row".to_string(), |line| format!("line {line}"))
}

/// The code of a row whose target the directory does not hold.
pub const NOT_FOUND: &str = "NotFound";

/// The code of a row held at an exception's value.
pub const EXCEPTED: &str = "Excepted";

/// The code of a row that names a user another row already names.
pub const SAME_USER: &str = "SameUser";

fn describe_wants(wants: &Wants) -> String {
    let parts: Vec<String> = [Setting::SmtpAuth, Setting::PerUserMfa]
        .iter()
        .zip(wants)
        .filter_map(|(setting, value)| value.map(|v| format!("{setting}={v}")))
        .collect();
    if parts.is_empty() { "nothing".into() } else { parts.join(", ") }
}

/// The directory user a target names, unless it is excluded or cannot be found.
async fn resolve(context: &Context, target: &Target, wants: Wants) -> Result<DirectoryUser, Unresolved> {
    if let Some(reason) = context.exclusions.reason(&target.identity) {
        return Err(Unresolved::Excluded(reason));
    }
    let lookup = context.client.find_user(&target.identity).await.map_err(Unresolved::LookupFailed)?;
    let user = lookup.user.ok_or(Unresolved::NotFound)?;
    match context.ledger.claim(&user.id, target.line, wants, !target.overrides.is_empty()) {
        Claimed::First => Ok(user),
        Claimed::Same { line } => Err(Unresolved::SameUser { line, upn: user.upn }),
        Claimed::Disagrees { line, theirs } => Err(Unresolved::Disagrees {
            line,
            upn: user.upn,
            ours: describe_wants(&wants),
            theirs: describe_wants(&theirs),
        }),
    }
}

pub async fn process(context: &Context, target: &Target) {
    let started = Instant::now();
    let wanted = wanted(context, target);
    let fresh = |w: &Wanted| row(target.line, &target.identity, w.setting, w.desired);
    let timed = |mut row: Row| {
        row.duration_ms = started.elapsed().as_millis() as u64;
        row
    };
    for w in &wanted {
        context.ledger.owe(fresh(w));
    }
    if !wanted.is_empty() {
        match resolve(context, target, wants_of(context, target)).await {
            Err(unresolved) => {
                for w in &wanted {
                    let row = concluded(context, timed(unresolved.close(fresh(w))));
                    if row.outcome != Outcome::Unfinished {
                        context.finish(row);
                    }
                }
            }
            Ok(user) => {
                for w in &wanted {
                    let mut owed = fresh(w);
                    owed.user_id = user.id.clone();
                    context.ledger.owe(owed);
                }
                // The CSV may name an alias; the exclusion may name the UPN or the mail.
                let skip = [Some(user.upn.as_str()), user.mail.as_deref()]
                    .into_iter()
                    .flatten()
                    .find_map(|address| context.exclusions.reason(address))
                    .map(|reason| ("Excluded", reason))
                    .or_else(|| out_of_scope(&user).map(|(code, reason)| (code, reason.to_string())))
                    .or_else(|| {
                        let scope = context.sign_in_scope.as_ref()?;
                        let skip = scope.skip(&user.id)?;
                        scope.affected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        Some(skip)
                    });
                // The settings go through different APIs: side by side, a slow or paused one
                // does not hold the other back. The verdict comes after them all.
                let names = [Some(target.identity.as_str()), Some(user.upn.as_str()), user.mail.as_deref()];
                let names: Vec<&str> = names.into_iter().flatten().collect();
                let excepted = |setting| context.exceptions.find(&names, setting, context.today);
                let settle_one = |w: &Wanted| {
                    let mut row = fresh(w);
                    row.user_id = user.id.clone();
                    let exception = excepted(w.setting).filter(|_| w.expect.is_none());
                    if let Some(exception) = exception {
                        row.desired = exception.value;
                    }
                    let (skip, user, expect) = (&skip, &user, w.expect);
                    async move {
                        let mut done = match skip {
                            Some((code, reason)) => row.skipped(code, reason),
                            None => concluded(context, settle(context, row, expect, Some(user)).await),
                        };
                        if let Some(exception) = exception {
                            done.note_exception(exception);
                        }
                        if done.outcome != Outcome::Unfinished {
                            context.finish(timed(done.clone()));
                        }
                        done
                    }
                };
                let (verdicts, settings): (Vec<&Wanted>, Vec<&Wanted>) =
                    wanted.iter().partition(|w| w.setting == Setting::SmtpAuthEffective);
                let rows = futures_util::future::join_all(settings.into_iter().map(settle_one)).await;
                if let (Some(wanted), Some(layers)) = (verdicts.first(), &context.layers)
                    && rows.iter().all(|row| row.outcome != Outcome::Unfinished)
                {
                    let mut row = fresh(wanted);
                    row.user_id = user.id.clone();
                    let smtp = rows.iter().find(|r| r.setting == Setting::SmtpAuth);
                    let done = match (&skip, smtp) {
                        (Some((code, reason)), _) => row.skipped(code, reason),
                        // No mailbox, or a mailbox left alone: there is no device to carry the run to.
                        (None, Some(smtp)) if smtp.outcome == Outcome::Skipped => {
                            row.skipped(&smtp.error_code, &smtp.error_message)
                        }
                        (None, Some(held)) if held.error_code == EXCEPTED => {
                            let mut row = row.skipped(EXCEPTED, &held.error_message);
                            row.outcome = Outcome::Excepted;
                            row
                        }
                        _ => layers.verdict(context, row, &rows, &user).await,
                    };
                    context.finish(timed(done));
                }
            }
        }
    }
    context.sink.emit(Event::TargetFinished);
}

/// Whether `value` is where the row wants it: a desired state is met by a value that satisfies it
/// ("enforced" MFA satisfies "enabled"), a rollback (`exact`) only by the very value it found.
fn reached(row: &Row, value: Value, exact: bool) -> bool {
    if exact { row.setting.restored(value, row.desired) } else { row.setting.satisfies(value, row.desired) }
}

/// Why an opt-in step (an authentication policy, a group) is not taken for this user, if it is
/// not: only where the layer it opens blocks the user, and opening it is enough.
async fn opt_in_refused(context: &Context, row: &Row, user: Option<&DirectoryUser>) -> Option<(&'static str, String)> {
    let (Some(layers), Some(user)) = (&context.layers, user) else { return None };
    if row.setting == Setting::AuthenticationPolicy {
        // Its reading names the policy from the tenant's list.
        layers.facts(&context.client).await;
    }
    match row.setting {
        Setting::AuthenticationPolicy | Setting::CaExclusion => {
            layers.not_needed(&context.client, row.setting, user).await
        }
        _ => None,
    }
}

/// Reads one setting, compares, and writes when applying. Returns the finished row.
async fn settle(context: &Context, mut row: Row, expect: Option<Value>, user: Option<&DirectoryUser>) -> Row {
    let client = &context.client;
    let exact = expect.is_some();
    if let Some((code, reason)) = opt_in_refused(context, &row, user).await.filter(|_| !exact) {
        return row.skipped(code, &reason);
    }
    let reading = match settings::read(row.setting, client, user, context.sources()).await {
        Ok(reading) => reading,
        Err(error) => return row.failed(&error),
    };
    row.attempts += reading.attempts;
    row.note_ids(&reading.ids);
    let Some(before) = reading.value else {
        return row.skipped("NoMailbox", "no Exchange Online mailbox for this user");
    };
    row.before = Some(before);
    let satisfied = reached(&row, before, exact);
    // A write of an earlier session whose outcome was never recorded: if the value is now what
    // we wanted, that write happened.
    if let Some(earlier) = context.done.pending_before(row.line, row.setting)
        && satisfied
        && context.mode == Mode::Apply
    {
        row.before = earlier;
        row.after = Some(before);
        row.outcome = Outcome::Changed;
        return row;
    }
    if satisfied {
        row.after = Some(before);
        row.outcome = Outcome::Compliant;
        return row;
    }
    if let Some(expected) = expect
        && before != expected
    {
        row.after = Some(before);
        let message =
            format!("changed by someone else since: it is now {before}, not the {expected} that was set; left alone");
        row = row.skipped("Conflict", &message);
        row.outcome = Outcome::Conflict;
        return row;
    }
    if context.mode == Mode::Plan {
        row.outcome = Outcome::WouldChange;
        return row;
    }
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
    let gate = match context.journal.append_later(&intent) {
        Ok(number) => durable_intent(context, number),
        Err(error) => {
            context.stop.request(StopReason::Journal(error.to_string()));
            row.outcome = Outcome::Unfinished;
            return row;
        }
    };
    for _ in 0..WRITE_ROUNDS {
        let (answer, sent_at) = match write_or_confirm(context, &mut row, user, &gate, exact).await {
            Written::Answered(answer, sent_at) => (answer, sent_at),
            Written::Confirmed { check, write } => {
                row.attempts += check.attempts + 1;
                // The write's own request id, the one support can trace; its answer never came.
                row.note_ids(&write);
                row.after = check.value;
                row.outcome = Outcome::Changed;
                return row;
            }
        };
        match answer {
            Ok(answer) => {
                row.attempts += answer.attempts;
                row.note_ids(&answer.ids);
                row.after = Some(row.desired);
                // Enabling MFA for a user with a registered method makes it enforced: read it back.
                if row.setting == Setting::PerUserMfa
                    && row.desired == Value::Enabled
                    && let Ok(check) = settings::read(row.setting, client, user, context.sources().fresh()).await
                {
                    row.attempts += check.attempts;
                    row.after = check.value;
                }
                row.outcome = Outcome::Changed;
                return row;
            }
            Err(CallError::Unknown { attempts, ids, last }) => {
                row.attempts += attempts;
                row.note_ids(&ids);
                tracing::debug!(identity = %row.identity, setting = %row.setting, %last, "write outcome unknown: reading again");
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
                            return row;
                        }
                        Ok(check) => row.attempts += check.attempts,
                        Err(error) => return row.failed(&error),
                    }
                    if waited {
                        break;
                    }
                    if let Some(sent_at) = sent_at {
                        tokio::time::sleep_until(sent_at + client.request_timeout()).await;
                    }
                    waited = true;
                }
            }
            Err(CallError::Local { code: crate::cloud::NOT_RECORDED, .. }) => {
                row.outcome = Outcome::Unfinished;
                return row;
            }
            Err(error) => return row.failed(&error),
        }
    }
    let error = CallError::Exhausted {
        last: "every write's outcome was unknown".into(),
        ids: RequestIds::default(),
        attempts: 0,
    };
    row.failed(&error)
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
