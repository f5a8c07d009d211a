//! What the sign-in log said of SMTP AUTH, as a report: `smtp-auth-usage.csv` (a row per user who
//! signed in with it), the `smtp_auth_usage` block of `summary.json`, and the section of
//! `report.html` with a chart of sign-ins per day and the way off Basic authentication.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::cells::safe;
use crate::error::{Error, Result};
use crate::settings::Value;
use crate::sign_ins::{Usage, UserUsage, WAY_OUT};

pub(crate) const FILE: &str = "smtp-auth-usage.csv";

const HEADER: [&str; 12] = [
    "identity",
    "user_id",
    "sign_ins",
    "failures",
    "last_seen",
    "last_result",
    "last_error_code",
    "last_success",
    "client_ips",
    "smtp_auth",
    "would_refuse",
    "in_input",
];

/// One user of the log, with what the tool knows of the mailbox.
#[derive(Clone, Debug, Default)]
pub(crate) struct UsageRow {
    pub usage: UserUsage,
    /// The mailbox's SMTP AUTH setting, when it was read.
    pub smtp_auth: Option<Value>,
    /// Whether that setting (with the organisation's, for `inherit`) refuses SMTP AUTH now.
    pub would_refuse: Option<bool>,
    /// Whether the user is among the run's targets (always, with `--all-mailboxes`).
    pub in_input: bool,
}

/// The `smtp_auth_usage` block of `summary.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct UsageSummary {
    /// The window: its start and its length in days.
    pub since: String,
    pub days: u64,
    /// Users with an SMTP AUTH sign-in in the window, and those whose every sign-in failed.
    pub mailboxes: u64,
    pub failing_only: u64,
    pub sign_ins: u64,
    pub failures: u64,
    /// Requests the log took (pages): grows with the sign-ins, not the mailboxes.
    pub requests: u64,
    /// How the run used it: `only-seen` or `spare-seen`, and how many targets that kept or spared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targeting: Option<String>,
    #[serde(default)]
    pub targets_affected: u64,
    /// Sign-ins per day: successful, failed.
    pub per_day: BTreeMap<String, (u64, u64)>,
}

impl UsageSummary {
    pub(crate) fn of(usage: &Usage) -> UsageSummary {
        UsageSummary {
            since: usage.since.clone(),
            days: usage.days,
            mailboxes: usage.users.len() as u64,
            failing_only: usage.failing() as u64,
            sign_ins: usage.entries,
            failures: usage.users.values().map(|u| u.failures).sum(),
            requests: usage.requests,
            targeting: None,
            targets_affected: 0,
            per_day: usage.per_day.clone(),
        }
    }

    /// The readiness line: how many still sign in with Basic SMTP AUTH, and the way off it.
    pub(crate) fn readiness(&self) -> String {
        format!(
            "{} mailboxes signed in with Basic SMTP AUTH in the last {} days ({} sign-ins, {} failed; {} never succeeded). Basic authentication for SMTP AUTH goes off by default for existing tenants at the end of December 2026 (administrators can turn it back on for a time): move them to OAuth for SMTP AUTH, High Volume Email, Azure Communication Services Email or a connector ({WAY_OUT})",
            self.mailboxes, self.days, self.sign_ins, self.failures, self.failing_only
        )
    }
}

/// Writes `smtp-auth-usage.csv`: one row per user, the most active first.
pub(crate) fn write_csv(directory: &Path, rows: &[UsageRow]) -> Result<()> {
    let mut writer = super::create_csv(directory, FILE, &HEADER)?;
    let mut sorted: Vec<&UsageRow> = rows.iter().collect();
    sorted.sort_by(|a, b| b.usage.sign_ins.cmp(&a.usage.sign_ins).then(a.usage.upn.cmp(&b.usage.upn)));
    for row in sorted {
        let usage = &row.usage;
        let addresses: Vec<&str> = usage.addresses.iter().map(String::as_str).collect();
        let record = [
            safe(&usage.upn).into_owned(),
            safe(&usage.user_id).into_owned(),
            usage.sign_ins.to_string(),
            usage.failures.to_string(),
            safe(&usage.last_seen).into_owned(),
            safe(&usage.last_result).into_owned(),
            usage.last_error_code.to_string(),
            safe(usage.last_success.as_deref().unwrap_or_default()).into_owned(),
            safe(&addresses.join(" ")).into_owned(),
            row.smtp_auth.map(|v| v.name().to_string()).unwrap_or_default(),
            row.would_refuse.map(|r| r.to_string()).unwrap_or_default(),
            row.in_input.to_string(),
        ];
        writer.write_record(&record).map_err(|e| Error::Io {
            context: format!("cannot write {}", directory.join(FILE).display()),
            source: e.into(),
        })?;
    }
    super::close_csv(directory, FILE, writer)
}

/// Reads back what a run kept (a resume targets the same set): user id → (sign-ins, last success).
pub(crate) fn read_csv(directory: &Path) -> Result<BTreeMap<String, (u64, Option<String>)>> {
    let path = directory.join(FILE);
    let unreadable = |e: csv::Error| Error::ReportDirectory(format!("cannot read {}: {e}", path.display()));
    let mut reader = csv::Reader::from_path(&path).map_err(unreadable)?;
    let mut kept = BTreeMap::new();
    for record in reader.records() {
        let record = record.map_err(unreadable)?;
        let field = |i: usize| record.get(i).unwrap_or_default().to_string();
        let last_success = Some(field(7)).filter(|s| !s.is_empty());
        kept.insert(field(1).to_lowercase(), (field(2).parse().unwrap_or(0), last_success));
    }
    Ok(kept)
}

/// The `report.html` section: the readiness line and a chart of sign-ins per day.
pub(crate) fn html_section(summary: &UsageSummary) -> String {
    let mut section = String::from("<h2>SMTP AUTH sign-ins</h2>");
    let _ = write!(section, "<p id=\"readiness\">{}</p>", super::html::escape(&summary.readiness()));
    let days: Vec<(&String, &(u64, u64))> = summary.per_day.iter().collect();
    let most = days.iter().map(|(_, (ok, failed))| ok + failed).max().unwrap_or(0).max(1) as f64;
    let (width, height, bar) = (24.0 * days.len().max(1) as f64, 120.0, 18.0);
    let _ = write!(
        section,
        "<svg id=\"sign-ins\" width=\"{width}\" height=\"{}\" role=\"img\" aria-label=\"SMTP AUTH sign-ins per day\">",
        height + 20.0
    );
    for (i, (day, (ok, failed))) in days.iter().enumerate() {
        let x = 24.0 * i as f64 + 3.0;
        let ok_height = height * *ok as f64 / most;
        let failed_height = height * *failed as f64 / most;
        let _ = write!(
            section,
            "<g><title>{day}: {ok} succeeded, {failed} failed</title><rect x=\"{x}\" y=\"{}\" width=\"{bar}\" height=\"{ok_height:.1}\" fill=\"#3a9d5d\"/><rect x=\"{x}\" y=\"{}\" width=\"{bar}\" height=\"{failed_height:.1}\" fill=\"#d64545\"/></g>",
            height - ok_height,
            height - ok_height - failed_height
        );
    }
    let _ = write!(
        section,
        "</svg><p class=\"muted\">per day since {}: green succeeded, red failed; every user is in {FILE}</p>",
        super::html::escape(&summary.since)
    );
    section
}
