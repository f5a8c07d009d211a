//! Finding a target's directory user and claiming it: two rows naming one user are one target,
//! and a user excluded, out of scope or not in the directory ends every row of its target the
//! same way.

use crate::cloud::CallError;
use crate::cloud::graph::DirectoryUser;
use crate::engine::Context;
use crate::engine::events::{Outcome, Row};
use crate::engine::ledger::{Claimed, Wants};
use crate::settings::Setting;
use crate::targets::Target;

use crate::engine::Reason;

/// What a target wants of its user, for telling whether two rows that name one user agree.
pub(super) fn wants_of(context: &Context, target: &Target) -> Wants {
    let value = |setting: Setting| {
        target
            .overrides
            .iter()
            .find(|w| w.setting == setting)
            .map(|w| w.desired)
            .or_else(|| context.desired.get(setting))
    };
    Setting::PER_ROW.map(value)
}

/// Why a directory user is out of scope, if they are. A licence says nothing here: shared, room
/// and equipment mailboxes usually have none (Microsoft 365 docs, "Remove a license from a shared
/// mailbox") and a licence may lack an Exchange plan, so Exchange decides whether a mailbox
/// exists (its listing, or a not-found from Get-CASMailbox); per-user MFA belongs to every
/// member user, mailbox or not (Graph beta `authentication/requirements`).
fn out_of_scope(user: &DirectoryUser) -> Option<(Reason, &'static str)> {
    user.guest.then_some((Reason::Guest, "guest account: guests have no mailbox in this tenant"))
}

/// Why every setting of a found user is skipped, if it is: an exclusion, a user out of scope,
/// or the sign-in log's scope.
pub(super) fn skip_reason(context: &Context, user: &DirectoryUser) -> Option<(Reason, String)> {
    // The CSV may name an alias; the exclusion may name the UPN or the mail.
    [Some(user.upn.as_str()), user.mail.as_deref()]
        .into_iter()
        .flatten()
        .find_map(|address| context.exclusions.reason(address))
        .map(|reason| (Reason::Excluded, reason))
        .or_else(|| out_of_scope(user).map(|(code, reason)| (code, reason.to_string())))
        .or_else(|| {
            let scope = context.sign_in_scope.as_ref()?;
            let skip = scope.skip(&user.id)?;
            scope.affected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Some(skip)
        })
}

/// Why a target's settings were not worked on: every row of it ends the same way.
pub(super) enum Unresolved {
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
    pub(super) fn close(&self, row: Row) -> Row {
        match self {
            Unresolved::Excluded(reason) => row.skipped(Reason::Excluded, reason),
            Unresolved::LookupFailed(error) => row.failed(error),
            Unresolved::NotFound => row.skipped(
                Reason::NotFound,
                "no user with this address in the directory (looked up by UPN, mail and proxy addresses)",
            ),
            Unresolved::SameUser { line, upn } => row.skipped(
                Reason::SameUser,
                &format!("{} names the same user ({upn}); it is worked on there, once", other_line(*line)),
            ),
            Unresolved::Disagrees { line, upn, ours, theirs } => {
                let other = other_line(*line);
                let message = format!(
                    "{other} names the same user ({upn}) and wants {theirs}, this line wants {ours}; fix the CSV so one row names each user ({other} was worked on as it asked)"
                );
                let mut row = row.skipped(Reason::ConflictingRows, &message);
                row.outcome = Outcome::Failed;
                row
            }
        }
    }
}

fn other_line(line: Option<u64>) -> String {
    line.map_or_else(|| "an earlier row".to_string(), |line| format!("line {line}"))
}

fn describe_wants(wants: &Wants) -> String {
    let parts: Vec<String> = Setting::PER_ROW
        .iter()
        .zip(wants)
        .filter_map(|(setting, value)| value.map(|v| format!("{setting}={v}")))
        .collect();
    if parts.is_empty() { "nothing".into() } else { parts.join(", ") }
}

/// The directory user a target names, unless it is excluded or cannot be found.
pub(super) async fn resolve(context: &Context, target: &Target, wants: Wants) -> Result<DirectoryUser, Unresolved> {
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
