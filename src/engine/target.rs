//! One target, start to finish: find the user, claim it (two rows naming one user are one
//! target), then for each setting read, compare and (when applying) write. A write whose fate is
//! unknown is never simply repeated: the setting is read again first, so a write that did happen
//! is not made twice. Every row a target owes is in the ledger from the start, so a target cut
//! short still ends with a row for each setting.
//!
//! The stages live beside this file: [`resolve`] finds and claims the user, [`settle`] reads and
//! compares one setting, [`write`] writes it, [`row`] makes and closes the rows.

mod resolve;
mod row;
mod settle;
mod write;

use tokio::time::Instant;

use super::events::{Event, Outcome, Row};
use super::{Context, Reason};
use crate::cloud::graph::DirectoryUser;
use crate::settings::{Setting, Value};
use crate::targets::{Target, Wanted};
use resolve::{Unresolved, resolve, skip_reason, wants_of};
use row::{concluded, row};
use settle::settle;

/// The row of a tenant-wide setting, before it is worked on.
pub(super) fn tenant_row(context: &Context, setting: Setting, desired: Value) -> Row {
    row(context, 0, "(tenant)", setting, desired)
}

/// The tenant-wide step, run once before any target.
pub(super) async fn tenant_setting(context: &Context, setting: Setting, desired: Value) -> Row {
    let started = Instant::now();
    let expect = context.tenant_expect.iter().find(|(s, _)| *s == setting).map(|(_, value)| *value);
    let mut row = concluded(context, settle(context, tenant_row(context, setting, desired), expect, None).await);
    row.duration_ms = started.elapsed().as_millis() as u64;
    row
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

pub(super) async fn process(context: &Context, target: &Target) {
    let work = TargetWork { context, target, started: Instant::now(), wanted: wanted(context, target) };
    for w in &work.wanted {
        context.ledger.owe(work.fresh(w));
    }
    if !work.wanted.is_empty() {
        match resolve(context, target, wants_of(context, target)).await {
            Err(unresolved) => work.close_unresolved(&unresolved),
            Ok(user) => work.settle_user(&user).await,
        }
    }
    context.sink.emit(Event::TargetFinished);
}

/// One target under way: what it wants, and when its work started (every row's duration counts
/// from then).
struct TargetWork<'a> {
    context: &'a Context,
    target: &'a Target,
    started: Instant,
    wanted: Vec<Wanted>,
}

impl TargetWork<'_> {
    fn fresh(&self, w: &Wanted) -> Row {
        row(self.context, self.target.line, &self.target.identity, w.setting, w.desired)
    }

    /// A fresh row of the found user's.
    fn fresh_for(&self, w: &Wanted, user: &DirectoryUser) -> Row {
        let mut row = self.fresh(w);
        row.user_id = user.id.clone();
        row
    }

    fn timed(&self, mut row: Row) -> Row {
        row.duration_ms = self.started.elapsed().as_millis() as u64;
        row
    }

    /// Every row ends the same way when the user was not resolved.
    fn close_unresolved(&self, unresolved: &Unresolved) {
        for w in &self.wanted {
            let row = concluded(self.context, self.timed(unresolved.close(self.fresh(w))));
            if row.outcome != Outcome::Unfinished {
                self.context.finish(row);
            }
        }
    }

    /// Every setting of a found user, then the verdict.
    async fn settle_user(&self, user: &DirectoryUser) {
        for w in &self.wanted {
            self.context.ledger.owe(self.fresh_for(w, user));
        }
        let skip = skip_reason(self.context, user);
        let names = [Some(self.target.identity.as_str()), Some(user.upn.as_str()), user.mail.as_deref()];
        let names: Vec<&str> = names.into_iter().flatten().collect();
        let (verdicts, settings): (Vec<&Wanted>, Vec<&Wanted>) =
            self.wanted.iter().partition(|w| w.setting == Setting::SmtpAuthEffective);
        // The settings go through different APIs: side by side, a slow or paused one
        // does not hold the other back. The verdict comes after them all.
        let settling = settings.into_iter().map(|w| self.settle_setting(w, user, &names, skip.as_ref()));
        let rows = futures_util::future::join_all(settling).await;
        if let Some(wanted) = verdicts.first()
            && rows.iter().all(|row| row.outcome != Outcome::Unfinished)
        {
            self.verdict(wanted, user, skip.as_ref(), &rows).await;
        }
    }

    /// One setting of a found user, held at an exception's value where one applies.
    async fn settle_setting(
        &self,
        w: &Wanted,
        user: &DirectoryUser,
        names: &[&str],
        skip: Option<&(Reason, String)>,
    ) -> Row {
        let context = self.context;
        let mut row = self.fresh_for(w, user);
        let exception = context.exceptions.holding(names, w.setting, context.today).filter(|_| w.expect.is_none());
        if let Some(exception) = &exception {
            row.desired = exception.value;
        }
        let mut done = match skip {
            Some((code, reason)) => row.skipped(code.clone(), reason),
            None => concluded(context, settle(context, row, w.expect, Some(user)).await),
        };
        if let Some(exception) = &exception {
            done.note_exception(exception);
        }
        if done.outcome != Outcome::Unfinished {
            context.finish(self.timed(done.clone()));
        }
        done
    }

    /// The `smtp-auth-effective` verdict, from the rows of the settings before it.
    async fn verdict(&self, wanted: &Wanted, user: &DirectoryUser, skip: Option<&(Reason, String)>, rows: &[Row]) {
        let Some(layers) = &self.context.layers else { return };
        let row = self.fresh_for(wanted, user);
        let smtp = rows.iter().find(|r| r.setting == Setting::SmtpAuth);
        let done = match (skip, smtp) {
            (Some((code, reason)), _) => row.skipped(code.clone(), reason),
            // No mailbox, or a mailbox left alone: there is no device to carry the run to.
            (None, Some(smtp)) if smtp.outcome == Outcome::Skipped => {
                row.skipped(smtp.error_code.clone(), &smtp.error_message)
            }
            (None, Some(held)) if held.error_code == Reason::Excepted => {
                let mut row = row.skipped(Reason::Excepted, &held.error_message);
                row.outcome = Outcome::Excepted;
                row
            }
            _ => layers.verdict(self.context, row, rows, user).await,
        };
        self.context.finish(self.timed(done));
    }
}
