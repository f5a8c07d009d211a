//! One setting of one target (or of the tenant): read it, compare it with what is wanted, and
//! hand it to the write when applying and it differs.

use std::ops::ControlFlow;

use crate::cloud::graph::DirectoryUser;
use crate::engine::events::{Outcome, Row};
use crate::engine::{Context, Mode, Reason};
use crate::settings::{self, Absent, Value};

use super::write::write;

/// Whether `value` is where the row wants it: a desired state is met by a value that satisfies it
/// ("enforced" MFA satisfies "enabled"), a rollback (`exact`) only by the very value it found.
pub(super) fn reached(row: &Row, value: Value, exact: bool) -> bool {
    if exact { row.setting.restored(value, row.desired) } else { row.setting.satisfies(value, row.desired) }
}

/// Why an opt-in step (an authentication policy, a group) is not taken for this user, if it is
/// not: only where the layer it opens blocks the user, and opening it is enough.
async fn opt_in_refused(context: &Context, row: &Row, user: Option<&DirectoryUser>) -> Option<(Reason, String)> {
    let (Some(layers), Some(user)) = (&context.layers, user) else { return None };
    let spec = row.setting.spec();
    if spec.needs_policies {
        // Its reading names the policy from the tenant's list.
        layers.facts(&context.client).await;
    }
    if !spec.opt_in {
        return None;
    }
    layers.not_needed(&context.client, row.setting, user).await
}

/// Reads one setting, compares, and writes when applying. Returns the finished row.
pub(super) async fn settle(
    context: &Context,
    mut row: Row,
    expect: Option<Value>,
    user: Option<&DirectoryUser>,
) -> Row {
    let exact = expect.is_some();
    if let Some((code, reason)) = opt_in_refused(context, &row, user).await.filter(|_| !exact) {
        return row.skipped(code, &reason);
    }
    let reading = match settings::read(row.setting, &context.client, user, context.sources()).await {
        Ok(reading) => reading,
        Err(error) => return row.failed(&error),
    };
    row.attempts += reading.attempts;
    row.note_ids(&reading.ids);
    let Some(before) = reading.value else {
        return match row.setting.spec().absent {
            Absent::NoMailbox => row.skipped(Reason::NoMailbox, "no Exchange Online mailbox for this user"),
            Absent::NoSharedMailbox => row.skipped(
                Reason::NoSharedMailbox,
                "not a shared, room or equipment mailbox: the user signs in to their own",
            ),
        };
    };
    row.before = Some(before);
    match decide(context, row, before, expect) {
        ControlFlow::Break(finished) => finished,
        ControlFlow::Continue(row) => write(context, row, user, exact).await,
    }
}

/// What the value read calls for: the row is finished (compliant, a conflict, a plan), or the
/// value is to be written.
fn decide(context: &Context, mut row: Row, before: Value, expect: Option<Value>) -> ControlFlow<Row, Row> {
    let satisfied = reached(&row, before, expect.is_some());
    // A write of an earlier session whose outcome was never recorded: if the value is now what
    // we wanted, that write happened.
    if let Some(earlier) = context.done.pending_before(row.line, row.setting)
        && satisfied
        && context.mode == Mode::Apply
    {
        row.before = earlier;
        row.after = Some(before);
        row.outcome = Outcome::Changed;
        return ControlFlow::Break(row);
    }
    if satisfied {
        row.after = Some(before);
        row.outcome = Outcome::Compliant;
        return ControlFlow::Break(row);
    }
    if let Some(expected) = expect
        && before != expected
    {
        row.after = Some(before);
        let message =
            format!("changed by someone else since: it is now {before}, not the {expected} that was set; left alone");
        row = row.skipped(Reason::Conflict, &message);
        row.outcome = Outcome::Conflict;
        return ControlFlow::Break(row);
    }
    if context.mode == Mode::Plan {
        row.outcome = Outcome::WouldChange;
        return ControlFlow::Break(row);
    }
    ControlFlow::Continue(row)
}
