//! `rollback`: undo an apply from its journal, restoring each value it changed where the value
//! is still what the apply set.

use std::collections::BTreeMap;
use std::path::Path;

use super::session::{self, Decisions, Job, Lane};
use super::{absolute, check_same_tenant, confirm, connection, default_report_dir};
use crate::cli::RollbackArgs;
use crate::engine::events::Outcome;
use crate::engine::journal::{self, Record};
use crate::error::{Error, Result};
use crate::report;
use crate::run::record::{RunKind, RunRecord};
use crate::run::stop::Stop;
use crate::run::tuning::Tuning;
use crate::settings::{DesiredState, Setting, Value};
use crate::targets::{Entry, Target, Wanted};

/// What a rollback restores: each tenant setting the apply changed (setting, before, after), and
/// a target per changed mailbox, restoring `before` where the value is still `after`.
struct RollbackPlan {
    tenant: Vec<(Setting, Value, Value)>,
    entries: Vec<Entry>,
    /// Damaged places of the apply's journal: a change recorded only there cannot be undone.
    damaged: u64,
}

fn rollback_plan(source: &Path) -> Result<RollbackPlan> {
    let path = source.join(journal::FILE_NAME);
    if !path.exists() {
        return Err(Error::Usage(format!(
            "rollback {}: no journal there; give the report directory of an apply",
            source.display()
        )));
    }
    let mut tenant: Vec<(Setting, Value, Value)> = Vec::new();
    let mut by_line: BTreeMap<u64, Target> = BTreeMap::new();
    // Writes begun with no row saying they ended well or were never made: their outcome is
    // unknown, so they are undone where the value is what they set (and reported either way).
    let mut pending: BTreeMap<(u64, Setting), (String, Option<Value>, Value)> = BTreeMap::new();
    let mut restore = |line: u64, identity: &str, setting: Setting, before: Value, after: Value| {
        if setting.is_tenant_wide() {
            tenant.retain(|(s, _, _)| *s != setting);
            tenant.push((setting, before, after));
            return;
        }
        let target = by_line.entry(line).or_insert_with(|| Target {
            line,
            identity: identity.to_string(),
            overrides: Vec::new(),
            tenant: None,
        });
        target.overrides.retain(|w| w.setting != setting);
        target.overrides.push(Wanted { setting, desired: before, expect: Some(after) });
    };
    let mut records = journal::read(&path)?;
    for record in records.by_ref() {
        match record {
            Record::Intent { line, identity, setting, before, desired, .. } => {
                pending.insert((line, setting), (identity, before, desired));
            }
            Record::Row(row) => {
                if !matches!(row.outcome, Outcome::Failed | Outcome::Unfinished) {
                    pending.remove(&(row.line, row.setting));
                }
                if let (Outcome::Changed, Some(before), Some(after)) = (row.outcome, row.before, row.after) {
                    restore(row.line, &row.identity, row.setting, before, after);
                }
            }
            Record::Rejected { .. } => {}
        }
    }
    if records.damaged > 0 {
        tracing::warn!(
            "{}: {} damaged places in the journal were skipped; a change recorded only there cannot be undone",
            path.display(),
            records.damaged
        );
    }
    let unknown = pending.len();
    for ((line, setting), (identity, before, desired)) in pending {
        if let Some(before) = before {
            restore(line, &identity, setting, before, desired);
        }
    }
    if unknown > 0 {
        tracing::warn!(
            "{unknown} writes of that apply never recorded how they ended: each is read first, and undone only where it took effect"
        );
    }
    let damaged = records.damaged;
    Ok(RollbackPlan { tenant, entries: by_line.into_values().map(Entry::Target).collect(), damaged })
}

/// `rollback`, new or resumed.
pub(crate) async fn rollback(mut args: RollbackArgs, quiet: bool) -> Result<u8> {
    let (source, resumed_record, directory) = match (&args.resume, &args.source) {
        (Some(directory), _) => {
            let record = RunRecord::load(directory)?;
            let source =
                record.rollback_of.clone().filter(|_| record.command == RunKind::Rollback).ok_or_else(|| {
                    Error::Usage(format!(
                        "--resume {}: that directory holds a {} run, not a rollback",
                        directory.display(),
                        record.command
                    ))
                })?;
            (source, Some(record), directory.clone())
        }
        (None, Some(source)) => {
            let directory = args.session.report_dir.clone().unwrap_or_else(|| default_report_dir(RunKind::Rollback));
            (source.clone(), None, directory)
        }
        (None, None) => return Err(Error::Usage("give the report directory of the apply to undo".into())),
    };
    let source_record = RunRecord::load(&source).map_err(|_| {
        Error::Usage(format!("rollback {}: no run.json there; give the report directory of an apply", source.display()))
    })?;
    if source_record.command != RunKind::Apply {
        return Err(Error::Usage(format!(
            "rollback {}: that is a {} run; only an apply changed anything",
            source.display(),
            source_record.command.name()
        )));
    }
    // The rollback's own record when resuming it, else the apply's: where the tenant, the
    // credentials and the state were.
    resumed_record.as_ref().unwrap_or(&source_record).connection.fill(&mut args.session);
    let RollbackPlan { tenant, entries, damaged } = rollback_plan(&source)?;
    let tuning = resumed_record.as_ref().map_or_else(|| Tuning::from(&args.session.tuning), |r| r.tuning.clone());
    let stop = Stop::new(args.session.grace);
    stop.watch_signals();
    let connection = connection::connect(&args.session.connection, &tuning)?;
    stop.within_grace(check_same_tenant(&source_record, &connection, &source))
        .await
        .ok_or_else(|| Error::Interrupted("interrupted while signing in; nothing was changed".into()))??;
    let changes = entries.iter().map(|e| if let Entry::Target(t) = e { t.overrides.len() } else { 0 }).sum::<usize>()
        + tenant.len();
    confirm(
        &format!(
            "rollback would restore {changes} values that {} changed, where they are still what it set",
            source.display()
        ),
        args.yes,
    )?;
    let mut desired = DesiredState::default();
    for (setting, before, _) in &tenant {
        desired.set(*setting, *before);
    }
    if resumed_record.is_none() {
        report::check_directory(&directory)?;
    }
    let mut record = RunRecord::new(RunKind::Rollback, tuning.clone());
    record.connection = crate::run::record::ConnectionRecord::of(&args.session);
    record.rollback_of = Some(absolute(&source));
    let total = entries.len() as u64;
    // Reading a user's authentication policy names it from the tenant's list; the group is the apply's.
    let basic = crate::diagnosis::BasicSmtp::Unknown("a rollback judges no verdict".into());
    let layers = crate::engine::layers::Layers::new(None, basic, source_record.smtp_layers.ca_exclusion_group.clone());
    let decided = Decisions {
        tenant_expect: tenant.iter().map(|(setting, _, after)| (*setting, *after)).collect(),
        layers: Some(layers),
        total: Some(total),
        lanes: vec![Lane { connection, entries: Box::new(entries.into_iter()), mailbox_index: None }],
        record: resumed_record.is_none().then_some(record),
        retry_failed: args.retry_failed,
        source_damaged: damaged,
        ..Decisions::default()
    };
    let job = Job::new(RunKind::Rollback, desired, directory, stop, tuning, &args.session, decided);
    session::execute(job, quiet).await
}
