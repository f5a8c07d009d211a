//! `summary.json` (schema version 1) and the recap printed at the end of a run.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use super::Tally;
use crate::cloud::Api;
use crate::cloud::pacer::PacerState;
use crate::engine::events::Outcome;
use crate::error::{Error, Result};
use crate::timestamp::rfc3339;

pub const SCHEMA_VERSION: u32 = 1;

/// What the summary says besides the tally.
pub struct RunInfo<'a> {
    pub command: &'a str,
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
    pub exit_code: u8,
    pub interrupted: bool,
    /// Why the run stopped before its end (a signal, the journal, credentials), if it did.
    pub stopped_because: Option<String>,
    /// Targets never started because the run was stopped.
    pub not_started: u64,
    /// What is left to do, and the exact command that does it.
    pub unfinished: Vec<String>,
    pub finish_command: Option<String>,
}

fn outcome_counts(outcomes: &BTreeMap<Outcome, u64>) -> Value {
    Value::Object(outcomes.iter().map(|(o, n)| (o.name().to_string(), json!(n))).collect())
}

pub fn to_json(info: &RunInfo, tally: &Tally) -> Value {
    let by_setting: serde_json::Map<String, Value> = tally
        .by_setting
        .iter()
        .map(|(setting, outcomes)| (setting.name().to_string(), outcome_counts(outcomes)))
        .collect();
    let by_tenant: serde_json::Map<String, Value> =
        tally.by_tenant.iter().map(|(tenant, outcomes)| (tenant.clone(), outcome_counts(outcomes))).collect();
    let counts: serde_json::Map<String, Value> =
        Outcome::ALL.iter().map(|o| (o.name().to_string(), json!(tally.count(*o)))).collect();
    let mut requests: BTreeMap<&str, BTreeMap<String, u64>> = BTreeMap::new();
    for ((api, status), count) in &info.requests {
        let status = if *status == 0 { "no-answer".to_string() } else { status.to_string() };
        requests.entry(api.name()).or_default().insert(status, *count);
    }
    json!({
        "schema_version": SCHEMA_VERSION,
        "tool_version": env!("CARGO_PKG_VERSION"),
        "command": info.command,
        "profile": info.profile,
        "desired": info.desired,
        "input": info.input.map(|p| p.display().to_string()),
        "tenant_id": info.tenant_id,
        "simulated": info.simulated,
        "resumed": info.resumed,
        "started_at": rfc3339(info.started_at),
        "finished_at": rfc3339(info.started_at + info.elapsed),
        "elapsed_seconds": (info.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        "targets": tally.targets,
        "rejected_rows": tally.rejected_rows,
        "counts": counts,
        "by_setting": by_setting,
        "by_tenant": by_tenant,
        "requests": requests,
        "requests_total": info.requests.values().sum::<u64>(),
        "throttled": info.throttled,
        "pacing": pacing_json(&info.pacing),
        "journal": {"records": info.journal_records, "syncs": info.journal_syncs, "damaged": tally.damaged_records},
        "warnings": tally.warnings,
        "interrupted": info.interrupted,
        "stopped_because": info.stopped_because,
        "not_started": info.not_started,
        "pending_writes": tally.pending_writes,
        "unfinished": info.unfinished,
        "finish_command": info.finish_command,
        "exit_code": info.exit_code,
    })
}

/// `{tenant: {api: {ceiling, rate, budget, throttled}}}`, rates rounded to a hundredth.
fn pacing_json(pacing: &[(String, [PacerState; 3])]) -> Value {
    let round = |rate: f64| (rate * 100.0).round() / 100.0;
    let tenants = pacing.iter().map(|(tenant, states)| {
        let apis = states.iter().map(|state| {
            let entry = json!({
                "ceiling": round(state.ceiling),
                "rate": round(state.rate),
                "budget": state.budget.map(round),
                "throttled": state.throttled,
            });
            (state.name.to_string(), entry)
        });
        (tenant.clone(), Value::Object(apis.collect()))
    });
    Value::Object(tenants.collect())
}

/// Writes `summary.json` atomically: a temporary file, synced, then renamed.
pub fn write(directory: &Path, summary: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(summary).unwrap_or_default() + "\n";
    crate::files::write_atomic(directory, "summary.json", text.as_bytes())
        .map_err(Error::io(format!("cannot write summary.json in {}", directory.display())))
}

/// The lines printed at the end of a run.
pub fn recap(info: &RunInfo, tally: &Tally, directory: &Path) -> String {
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
        text.push_str(&format!("  {:<18} {}\n", setting.name(), parts.join(", ")));
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
        text.push_str(&format!("not done: {line}\n"));
    }
    if let Some(command) = &info.finish_command {
        text.push_str(&format!("to finish: {command}\n"));
    }
    text
}
