//! The exit-code policy of a finished run: which outcome it earned, what it left undone, and the
//! exact command that finishes it.

use super::Job;
use crate::engine::events::Outcome;
use crate::engine::{self, Mode};
use crate::error::FinalOutcome;
use crate::report;
use crate::run::record::RunKind;
use crate::run::stop::StopReason;

/// The command that carries on the run in `directory`, if it can be carried on.
pub(crate) fn resume_command(job: &Job, retry_failed: bool) -> Option<String> {
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
pub(crate) fn final_outcome(
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
        None if open > 0 || ending.not_started > 0 || mostly_missing(job, tally) || job.decided.source_damaged > 0 => {
            FinalOutcome::Unfinished
        }
        None if job.decided.detailed_exitcode && tally.count(Outcome::WouldChange) + blocked_drift > 0 => {
            FinalOutcome::Drift
        }
        None => FinalOutcome::Done,
    }
}

/// Whether more targets are missing from the directory than a real list ever has: the wrong
/// tenant, or the wrong file, and a green run would claim a tenant it never checked.
fn mostly_missing(job: &Job, tally: &report::Tally) -> bool {
    tally.targets > 0 && tally.not_found as f64 > job.decided.max_not_found * tally.targets as f64
}

/// What a run left undone, in words, and the command that finishes it.
pub(crate) fn left_to_do(
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
    if job.decided.source_damaged > 0 {
        lines.push(format!(
            "the apply's journal had {} damaged places: a change recorded only there cannot be undone; check those mailboxes by hand (its results.csv may name them)",
            job.decided.source_damaged
        ));
    }
    if mostly_missing(job, tally) {
        lines.push(format!(
            "{} of {} targets are not in the tenant's directory: is it the right tenant, and the right file? (the run fails when more than {} of its targets are missing; --max-not-found sets the share)",
            tally.not_found,
            tally.targets,
            job.decided.max_not_found
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
