//! `--only-smtp-auth-seen` and `--spare-smtp-auth-seen`: the run's targets chosen by the SMTP AUTH
//! sign-ins of a window. The log is read once before the run; what it found is kept in the report
//! directory (`smtp-auth-usage.csv`, `smtp-auth-usage.json`) and the run record, so a resume works
//! on the same set instead of a log that moved on.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::RunArgs;
use crate::cloud::CloudClient;
use crate::error::{Error, Result};
use crate::report::usage::{self as usage_report, UsageRow, UsageSummary};
use crate::run::record::{RunRecord, SignInTargeting};
use crate::run::scope::{SignInMode, SignInScope};

const SUMMARY_FILE: &str = "smtp-auth-usage.json";

/// What a run chose its targets by, and what the log said.
pub(super) struct Chosen {
    pub scope: Arc<SignInScope>,
    pub usage: Option<UsageSummary>,
    pub record: SignInTargeting,
}

/// The mode and window the command line asked for, if any (the window as typed, checked by
/// the command line's parser).
pub(super) fn asked(args: &RunArgs) -> Option<(SignInMode, Duration, String)> {
    let (mode, typed) = match (&args.only_smtp_auth_seen, &args.spare_smtp_auth_seen) {
        (Some(window), _) => (SignInMode::OnlySeen, window),
        (None, Some(window)) => (SignInMode::SpareSeen, window),
        (None, None) => return None,
    };
    let window = crate::cli::parse_duration(typed).unwrap_or(Duration::from_secs(30 * 86_400));
    Some((mode, window, typed.clone()))
}

/// Reads the log for a new run and keeps what it found in `directory`.
pub(super) async fn choose(
    (mode, window, typed): (SignInMode, Duration, String),
    client: &CloudClient,
    directory: &Path,
) -> Result<Chosen> {
    let usage = crate::sign_ins::read(client, window).await?;
    crate::report::ensure_directory(directory)?;
    let rows: Vec<UsageRow> = usage
        .users
        .values()
        .map(|user| UsageRow { usage: user.clone(), in_input: true, ..UsageRow::default() })
        .collect();
    usage_report::write_csv(directory, &rows)?;
    let summary = UsageSummary::of(&usage);
    let text = serde_json::to_string_pretty(&summary).unwrap_or_default() + "\n";
    crate::support::files::write_atomic(directory, SUMMARY_FILE, text.as_bytes())
        .map_err(Error::io(format!("cannot write {}", directory.join(SUMMARY_FILE).display())))?;
    let users = usage.users.values().map(|u| (u.user_id.clone(), u.last_success.clone()));
    tracing::info!(
        "{} {typed}: {} users signed in with SMTP AUTH ({} successfully), read in {} requests",
        mode.flag(),
        usage.users.len(),
        usage.users.values().filter(|u| u.last_success.is_some()).count(),
        usage.requests
    );
    Ok(Chosen {
        scope: Arc::new(SignInScope::new(mode, typed.clone(), users)),
        usage: Some(summary),
        record: SignInTargeting { mode, window: typed },
    })
}

/// The set a run began with, from its report directory, for a resume.
pub(super) fn recorded(record: &RunRecord, directory: &Path) -> Result<Option<Chosen>> {
    let Some(targeting) = &record.smtp_auth_targeting else { return Ok(None) };
    let kept = usage_report::read_csv(directory)?;
    let users = kept.into_iter().map(|(id, (_, success))| (id, success));
    let usage =
        crate::support::files::read_text_capped(&directory.join(SUMMARY_FILE), crate::support::files::cap::MEDIUM)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok());
    Ok(Some(Chosen {
        scope: Arc::new(SignInScope::new(targeting.mode, targeting.window.clone(), users)),
        usage,
        record: targeting.clone(),
    }))
}
