//! `summary.json` (schema version 1) and the recap printed at the end of a run. The summary is a
//! typed document: written with serde, and read back the same way by the HTML page and by anyone
//! who scripts against it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Tally;
use super::drift::DriftSummary;
use crate::cloud::Api;
use crate::cloud::pacer::PacerState;
use crate::engine::events::Outcome;
use crate::error::{Error, Result};
use crate::run::record::RunKind;
use crate::settings::Setting;
use crate::support::timestamp::rfc3339;

pub(crate) const SCHEMA_VERSION: u32 = 1;

/// What the summary says besides the tally.
pub(crate) struct RunInfo<'a> {
    pub command: RunKind,
    pub profile: Option<&'a str>,
    pub desired: String,
    pub input: Option<&'a Path>,
    pub tenant_id: &'a str,
    pub simulated: bool,
    /// This session continued an earlier one (`--resume`).
    pub resumed: bool,
    pub started_at: time::OffsetDateTime,
    pub elapsed: Duration,
    pub requests: BTreeMap<(Api, u16), u64>,
    pub throttled: u64,
    /// Per tenant: each API's rate and the budget measured for it.
    pub pacing: Vec<(String, [PacerState; 3])>,
    pub journal_records: u64,
    pub journal_syncs: u64,
    pub outcome: crate::error::FinalOutcome,
    pub interrupted: bool,
    /// Why the run stopped before its end (a signal, the journal, credentials), if it did.
    pub stopped_because: Option<String>,
    /// Targets never started because the run was stopped.
    pub not_started: u64,
    /// What is left to do, and the exact command that does it.
    pub unfinished: Vec<String>,
    pub finish_command: Option<String>,
    /// Bad CSV rows met in this session.
    pub input_problems: u64,
}

/// Outcome counts, by outcome name.
pub(crate) type Counts = BTreeMap<Outcome, u64>;

/// `summary.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Summary {
    pub schema_version: u32,
    pub tool_version: String,
    pub command: RunKind,
    pub profile: Option<String>,
    pub desired: String,
    pub input: Option<String>,
    pub tenant_id: String,
    pub simulated: bool,
    pub resumed: bool,
    pub started_at: String,
    pub finished_at: String,
    pub elapsed_seconds: f64,
    pub targets: u64,
    /// Targets whose user the directory does not hold.
    #[serde(default)]
    pub not_found: u64,
    pub rejected_rows: u64,
    /// Every outcome, zeros included.
    pub counts: Counts,
    pub by_setting: BTreeMap<Setting, Counts>,
    pub by_tenant: BTreeMap<String, Counts>,
    /// By API name, then by status (`no-answer` when none came).
    pub requests: BTreeMap<String, BTreeMap<String, u64>>,
    pub requests_total: u64,
    pub throttled: u64,
    /// By tenant, then by API.
    pub pacing: BTreeMap<String, BTreeMap<String, PacingFigures>>,
    pub journal: JournalFigures,
    pub warnings: Vec<String>,
    /// Standing notes, the same every run (the Exchange route in use, Microsoft's timeline).
    #[serde(default)]
    pub notes: Vec<String>,
    pub interrupted: bool,
    pub stopped_because: Option<String>,
    pub not_started: u64,
    pub pending_writes: u64,
    pub unfinished: Vec<String>,
    pub finish_command: Option<String>,
    pub exit_code: u8,
    /// Whether the run finished: every (target, setting) read or done, nothing interrupted. Only
    /// a complete report is taken as a later run's baseline.
    #[serde(default)]
    pub complete: bool,
    pub input_problems_this_session: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftSummary>,
    /// What the sign-in log said of SMTP AUTH, when the run's targets were chosen by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_auth_usage: Option<super::usage::UsageSummary>,
    /// Exclusion entries that excluded no target of the run (a typo?); empty when that cannot be
    /// told (a shard, a run stopped before its end, a run with no per-mailbox settings).
    #[serde(default)]
    pub unused_exclusions: Vec<String>,
}

/// One API's pace: where it started (from a budget remembered from an earlier run, or not), where
/// it ended and the budget this run measured, rates rounded to a hundredth.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct PacingFigures {
    pub ceiling: f64,
    pub start: f64,
    pub remembered: Option<f64>,
    pub rate: f64,
    pub budget: Option<f64>,
    pub throttled: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct JournalFigures {
    pub records: u64,
    pub syncs: u64,
    pub damaged: u64,
}

fn hundredths(rate: f64) -> f64 {
    (rate * 100.0).round() / 100.0
}

impl Summary {
    pub(crate) fn new(info: &RunInfo, tally: &Tally) -> Summary {
        let mut requests: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for ((api, status), count) in &info.requests {
            let status = if *status == 0 { "no-answer".to_string() } else { status.to_string() };
            requests.entry(api.name().to_string()).or_default().insert(status, *count);
        }
        let pacing = info
            .pacing
            .iter()
            .map(|(tenant, states)| {
                let apis = states.iter().map(|state| {
                    let figures = PacingFigures {
                        ceiling: hundredths(state.ceiling),
                        start: hundredths(state.start),
                        remembered: state.remembered.map(hundredths),
                        rate: hundredths(state.rate),
                        budget: state.budget.map(hundredths),
                        throttled: state.throttled,
                    };
                    (state.name.to_string(), figures)
                });
                (tenant.clone(), apis.collect())
            })
            .collect();
        Summary {
            schema_version: SCHEMA_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            command: info.command,
            profile: info.profile.map(str::to_string),
            desired: info.desired.clone(),
            input: info.input.map(|p| p.display().to_string()),
            tenant_id: info.tenant_id.to_string(),
            simulated: info.simulated,
            resumed: info.resumed,
            started_at: rfc3339(info.started_at),
            finished_at: rfc3339(info.started_at + info.elapsed),
            elapsed_seconds: (info.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
            targets: tally.targets,
            not_found: tally.not_found,
            rejected_rows: tally.rejected_rows,
            counts: Outcome::ALL.iter().map(|o| (*o, tally.count(*o))).collect(),
            by_setting: tally.by_setting.clone(),
            by_tenant: tally.by_tenant.clone(),
            requests_total: info.requests.values().sum(),
            requests,
            throttled: info.throttled,
            pacing,
            journal: JournalFigures {
                records: info.journal_records,
                syncs: info.journal_syncs,
                damaged: tally.damaged_records,
            },
            warnings: tally.warnings.clone(),
            notes: tally.notes.clone(),
            interrupted: info.interrupted,
            stopped_because: info.stopped_because.clone(),
            not_started: info.not_started,
            pending_writes: tally.pending_writes,
            unfinished: info.unfinished.clone(),
            finish_command: info.finish_command.clone(),
            exit_code: info.outcome.exit_code(),
            complete: info.outcome.is_complete() && !info.interrupted,
            input_problems_this_session: info.input_problems,
            drift: None,
            smtp_auth_usage: None,
            unused_exclusions: Vec::new(),
        }
    }

    /// Writes `summary.json` atomically: a temporary file, synced, then renamed.
    pub(crate) fn write(&self, directory: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).unwrap_or_default() + "\n";
        crate::support::files::write_atomic(directory, "summary.json", text.as_bytes())
            .map_err(Error::io(format!("cannot write summary.json in {}", directory.display())))
    }
}

/// The lines printed at the end of a run.
pub(crate) fn recap(info: &RunInfo, tally: &Tally, directory: &Path) -> String {
    let mut text = String::new();
    let verb = if info.interrupted { "interrupted" } else { "finished" };
    text.push_str(&format!(
        "{} {verb} in {:.1}s: {} targets, {} rows rejected\n",
        info.command,
        info.elapsed.as_secs_f64(),
        tally.targets,
        tally.rejected_rows
    ));
    for (setting, outcomes) in &tally.by_setting {
        let parts: Vec<String> = outcomes.iter().map(|(o, n)| format!("{} {n}", o.name())).collect();
        text.push_str(&format!("  {:<19} {}\n", setting.name(), parts.join(", ")));
    }
    let total: u64 = info.requests.values().sum();
    text.push_str(&format!("  requests {total}, throttled {}\n", info.throttled));
    for (tenant, states) in &info.pacing {
        let measured: Vec<String> = states
            .iter()
            .filter_map(|state| state.budget.map(|budget| format!("{} {budget:.1}/s", state.name)))
            .collect();
        if !measured.is_empty() {
            let whose = if info.pacing.len() > 1 { format!(" of {tenant}") } else { String::new() };
            text.push_str(&format!("  budgets measured{whose}: {}\n", measured.join(", ")));
        }
    }
    if !tally.warnings.is_empty() {
        text.push_str(&format!("  warnings {} (see summary.json)\n", tally.warnings.len()));
    }
    text.push_str(&format!("report: {}\n", directory.display()));
    for line in &info.unfinished {
        text.push_str(&format!("not done: {}\n", crate::logging::printable(line)));
    }
    if let Some(command) = &info.finish_command {
        text.push_str(&format!("to finish: {}\n", crate::logging::printable(command)));
    }
    // Tenants and the report directory are a user's or a server's words too.
    crate::logging::printable_lines(&text)
}
