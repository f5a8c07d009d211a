//! The end of a run: the report rendered from the journal, the summary and the HTML page, the
//! recap, and the exit code the run earned.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Job, final_outcome, left_to_do, resume_command};
use crate::cloud::CloudClient;
use crate::engine::{self, journal::Journal};
use crate::error::{Error, FinalOutcome, Result};
use crate::logging::{self, Loudness};
use crate::report::drift::Change;
use crate::report::summary::{RunInfo, Summary};
use crate::report::{self, OutputFormat, Report};
use crate::run::stop::StopReason;

/// The recap as one log event, for a log shipper: the outcome counts and what is left to do, each
/// in its own JSON type.
fn recap_event(summary: &Summary) {
    let fields = serde_json::json!({
        "kind": "recap",
        "message": format!("{} finished: {} targets", summary.command, summary.targets),
        "command": summary.command,
        "exit_code": summary.exit_code,
        "complete": summary.complete,
        "targets": summary.targets,
        "rejected_rows": summary.rejected_rows,
        "counts": summary.counts,
        "requests": summary.requests_total,
        "throttled": summary.throttled,
        "elapsed_seconds": summary.elapsed_seconds,
        "unfinished": summary.unfinished,
        "finish_command": summary.finish_command,
    });
    if let serde_json::Value::Object(fields) = fields {
        logging::json_event("INFO", fields);
    }
}

/// The exclusion entries that excluded no target. Only a run that met every target can tell: a
/// shard sees its share, a stopped run not all of them, a tenant-only run none. The rows of
/// earlier sessions (a resume) count through their identities in `results.csv`; a target they
/// excluded by an alias is not seen there, and its entry is counted here only if this session
/// met it.
fn unused_exclusions(job: &Job, info: &RunInfo) -> Vec<String> {
    let per_target = crate::settings::Setting::PER_TARGET.iter().any(|s| job.desired.get(*s).is_some());
    let whole = job.decided.shard.is_none() && info.stopped_because.is_none() && info.not_started == 0;
    if job.decided.exclusions.is_empty() || !per_target || !whole || job.kind == crate::run::record::RunKind::Rollback {
        return Vec::new();
    }
    for identity in report::excluded_identities(&job.directory) {
        let _ = job.decided.exclusions.reason(&identity);
    }
    job.decided.exclusions.unused()
}

/// Whether the journal holds fewer rows than this session recorded in it: records lost after
/// they were written (the file cut or edited, then grown again). A resumed run's journal holds
/// earlier sessions' rows too, so it must hold at least as many.
fn rows_missing(rendered: &report::Tally, said: &report::Tally, resumed: bool) -> Option<String> {
    let total = |tally: &report::Tally| tally.by_setting.values().flat_map(|o| o.values()).sum::<u64>();
    let (found, recorded) = (total(rendered), total(said));
    let missing = if resumed { found < recorded } else { found != recorded };
    missing.then(|| format!("it holds {found} rows where this run recorded {recorded}"))
}

/// `--output json`: the summary and where the report is, as one line a script can parse.
fn print_summary(summary: &Summary, directory: &std::path::Path) {
    #[derive(serde::Serialize)]
    struct Recap<'a> {
        report_dir: &'a std::path::Path,
        #[serde(flatten)]
        summary: &'a Summary,
    }
    match serde_json::to_string(&Recap { report_dir: directory, summary }) {
        Ok(line) => out!("{line}"),
        Err(error) => logging::say(Loudness::Warning, "output", &format!("cannot write the summary as JSON: {error}")),
    }
}

/// What one session of a run did (a resume is a later session of the same run), as its end reads
/// it: what it counted, whom it asked, how it stopped and when it began.
pub(super) struct Session<'a> {
    /// Where its events went.
    pub(super) report: &'a Report,
    /// What the run counted itself as it went: the journal is checked against it.
    pub(super) said: report::Tally,
    /// One a tenant, with its request counts and pacing.
    pub(super) clients: &'a [Arc<CloudClient>],
    pub(super) journal: &'a Journal,
    pub(super) ending: engine::Ending,
    pub(super) started_at: time::OffsetDateTime,
    /// Started with the run, for the time it took.
    pub(super) clock: tokio::time::Instant,
    /// Some lane ran against a simulated tenant.
    pub(super) simulated: bool,
    /// This session continued an earlier one (`--resume`).
    pub(super) resumed: bool,
}

/// Renders the report from the journal, writes the summary and the HTML page, prints the recap,
/// and returns the exit code. A failure to write any of it comes after work was done: exit 1,
/// naming the command that finishes the run.
pub(super) fn finish_report(job: &Job, session: &Session<'_>, quiet: bool) -> Result<u8> {
    let mut tally = report::render(&job.directory).map_err(after_work(job))?;
    tally.warnings = session.said.warnings.clone();
    tally.notes = session.said.notes.clone();
    let reason = job.stop.reason();
    let tampered = check_the_journal(&mut tally, session);
    let verdict = judge(job, &tally, session.ending, reason.as_ref(), tampered);
    let tenant_id = session.clients.iter().map(|c| c.tenant_id.clone()).collect::<Vec<_>>().join(",");
    let info = run_info(job, session, &tenant_id, reason.as_ref(), verdict);
    let (summary, changes) = summarize(job, &info, &tally, quiet)?;
    summary.write(&job.directory).map_err(after_work(job))?;
    report::html::write(&job.directory, &summary, &changes).map_err(after_work(job))?;
    tell(job, &info, &summary, &tally, quiet);
    Ok(info.outcome.exit_code())
}

/// A failure after work was done, made to say where the journal is and the command that
/// finishes the run once it is fixed.
fn after_work(job: &Job) -> impl Fn(Error) -> Error + '_ {
    move |error: Error| {
        let finish = resume_command(job, false).unwrap_or_else(|| "run the same command again".into());
        Error::Fatal(format!(
            "{error}. The journal in {} holds everything done so far; once this is fixed: {finish}",
            job.directory.display()
        ))
    }
}

/// Whether the journal changed under the run, and how; if so, a new run's counts are its own.
fn check_the_journal(tally: &mut report::Tally, session: &Session<'_>) -> Option<String> {
    let tampered = session.journal.changed_under_us().or_else(|| rows_missing(tally, &session.said, session.resumed));
    if let Some(problem) = &tampered {
        logging::say(Loudness::Warning, "journal", problem);
        if !session.resumed {
            // What the run itself counted; results.csv holds what the journal still says.
            tally.by_setting = session.said.by_setting.clone();
        }
    }
    tampered
}

/// How the run ended, what it left undone, and the command that finishes it.
type Verdict = (FinalOutcome, Vec<String>, Option<String>);

/// The run's verdict from its tally; a journal changed under it (`tampered`) leaves it unfinished.
fn judge(
    job: &Job,
    tally: &report::Tally,
    ending: engine::Ending,
    reason: Option<&StopReason>,
    tampered: Option<String>,
) -> Verdict {
    let mut outcome = final_outcome(job, tally, ending, reason);
    let (mut unfinished, mut finish_command) = left_to_do(job, tally, ending, reason);
    if let Some(problem) = tampered {
        if outcome != FinalOutcome::Interrupted {
            outcome = FinalOutcome::Unfinished;
        }
        unfinished.push(format!(
            "the journal changed under the run ({problem}): the counts are the run's own and results.csv holds only what the journal still says. A resume reads every target whose row was lost again and writes only where the value is not yet as wanted, so nothing is written twice; but a change whose record was lost is then reported as found, and a rollback cannot undo it"
        ));
        // Every row the journal lost is owed again: the resume is what finishes the run.
        finish_command = finish_command.or_else(|| resume_command(job, false));
    }
    (outcome, unfinished, finish_command)
}

/// What the summary and the recap say about the run itself.
fn run_info<'a>(
    job: &'a Job,
    session: &Session<'_>,
    tenant_id: &'a str,
    reason: Option<&StopReason>,
    (outcome, unfinished, finish_command): Verdict,
) -> RunInfo<'a> {
    let clients = session.clients;
    RunInfo {
        command: job.kind,
        profile: job.decided.profile.as_deref(),
        desired: job.desired.describe(),
        input: job.decided.input.as_deref(),
        tenant_id,
        simulated: session.simulated,
        resumed: session.resumed,
        started_at: session.started_at,
        elapsed: session.clock.elapsed(),
        requests: clients.iter().fold(BTreeMap::new(), |mut all, client| {
            for (key, count) in client.requests.snapshot() {
                *all.entry(key).or_insert(0) += count;
            }
            all
        }),
        throttled: clients.iter().map(|c| c.throttled_count()).sum(),
        pacing: clients.iter().map(|c| (c.tenant_id.clone(), c.pacing())).collect(),
        journal_records: session.journal.records.load(std::sync::atomic::Ordering::Relaxed),
        journal_syncs: session.journal.syncs.load(std::sync::atomic::Ordering::Relaxed),
        outcome,
        interrupted: reason == Some(&StopReason::Signal),
        stopped_because: reason.map(|r| match r {
            StopReason::Signal => "signal".to_string(),
            StopReason::Journal(error) => format!("journal: {error}"),
            StopReason::Auth(error) => format!("authentication: {error}"),
        }),
        not_started: session.ending.not_started,
        unfinished,
        finish_command,
        input_problems: session.report.input_problems(),
    }
}

/// The summary (with the SMTP AUTH usage and the drift since the baseline, when the run has
/// them) and the changes since the baseline.
fn summarize(job: &Job, info: &RunInfo<'_>, tally: &report::Tally, quiet: bool) -> Result<(Summary, Vec<Change>)> {
    let mut summary = Summary::new(info, tally);
    summary.unused_exclusions = unused_exclusions(job, info);
    if let Some(mut usage) = job.decided.smtp_auth_usage.clone() {
        if let Some(scope) = &job.decided.sign_in_scope {
            usage.targeting = Some(format!("{} {}", scope.mode.flag(), scope.window));
            usage.targets_affected = scope.affected.load(std::sync::atomic::Ordering::Relaxed);
        }
        summary.smtp_auth_usage = Some(usage);
    }
    let mut changes = Vec::new();
    if let Some(baseline) = &job.decided.baseline {
        let (drift, found) = report::drift::compare(baseline, &job.directory).map_err(after_work(job))?;
        if !quiet && job.output == OutputFormat::Text {
            out!(
                "drift since {}: {} newly non-compliant, {} fixed, {} new and {} removed mailboxes (drift.csv)",
                baseline.display(),
                drift.newly_non_compliant,
                drift.fixed,
                drift.new_mailboxes,
                drift.removed_mailboxes
            );
        }
        summary.drift = Some(drift);
        changes = found;
    }
    Ok((summary, changes))
}

/// Says how the run went: what is left to do on stderr even when quiet, the recap (as text or
/// JSON) on stdout, and warnings for unused exclusions and an interruption.
fn tell(job: &Job, info: &RunInfo<'_>, summary: &Summary, tally: &report::Tally, quiet: bool) {
    if quiet || logging::is_json() {
        // Whatever is left to do is said even with -q: cron mails stderr.
        for line in &info.unfinished {
            logging::say(Loudness::Warning, "not done", line);
        }
        if let Some(command) = &info.finish_command {
            logging::say(Loudness::Warning, "to finish", command);
        }
    }
    if logging::is_json() {
        recap_event(summary);
    }
    if job.output == OutputFormat::Json {
        print_summary(summary, &job.directory);
    } else if !quiet {
        let read_only = job.kind.mode() == engine::Mode::Plan;
        crate::logging::stdout(&report::story::tell(&job.directory, read_only, resume_command(job, true).as_deref()));
        if let Some(usage) = &summary.smtp_auth_usage {
            if let Some(targeting) = &usage.targeting {
                out!("{targeting}: {} targets left alone (skipped, with the reason)", usage.targets_affected);
            }
            out!("{}", usage.readiness());
        }
        crate::logging::stdout(&report::summary::recap(info, tally, &job.directory));
    }
    if !summary.unused_exclusions.is_empty() {
        let message = format!(
            "{} exclusion entries of {} matched no target: {}. Check them for a typo, or remove them (unused_exclusions in summary.json)",
            summary.unused_exclusions.len(),
            job.decided.exclusions.source(),
            summary.unused_exclusions.join(", ")
        );
        logging::say(Loudness::Warning, "warning", &message);
    }
    if info.interrupted {
        let finish = resume_command(job, false).unwrap_or_else(|| "run the same command again".into());
        let message =
            format!("the report in {} covers what was done. To finish the rest: {finish}", job.directory.display());
        logging::say(Loudness::Warning, "interrupted", &message);
    }
}
