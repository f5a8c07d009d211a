//! `apply --resume DIR`: carry on an apply with exactly the targets, settings and pace it began
//! with, as its run record keeps them.

use std::path::{Path, PathBuf};

use super::session::{self, Decisions, Job, Lane};
use super::{check_same_tenant, confirm_weakening, connection, desired_state, refuse_simulated, sharded, tell_notices};
use crate::cli::ApplyArgs;
use crate::error::{Error, Result};
use crate::run::record::{self as run_record, RunKind, RunRecord};
use crate::run::scope::Exclusions;
use crate::run::stop::Stop;
use crate::targets::Input;

/// The exclusions a run began with, from its record; refused if their file changed since.
fn recorded_exclusions(record: &RunRecord, directory: &Path) -> Result<Exclusions> {
    let Some(kept) = &record.exclusions else { return Ok(Exclusions::default()) };
    let source = kept.file.as_ref().map_or_else(|| "the run's profile".to_string(), |f| f.display().to_string());
    if let (Some(file), Some(sha)) = (&kept.file, &kept.file_sha256)
        && file.exists()
        && &run_record::fingerprint(file)? != sha
    {
        return Err(Error::Usage(format!(
            "--resume {}: the exclusion file {} changed since the run began; put it back as it was (run.json lists its entries) or start a new run",
            directory.display(),
            file.display()
        )));
    }
    Exclusions::from_entries(&kept.entries, &source)
        .map_err(|reason| Error::Usage(format!("--resume {}: run.json: exclusions: {reason}", directory.display())))
}

/// The exceptions the run held to, from the same file unchanged.
fn recorded_exceptions(record: &RunRecord, directory: &Path) -> Result<crate::settings::exceptions::Exceptions> {
    let Some(kept) = &record.exceptions else { return Ok(crate::settings::exceptions::Exceptions::default()) };
    kept.unchanged("the exceptions file", directory)?;
    crate::settings::exceptions::Exceptions::load(&kept.path, false)
}

/// The run's profile: a built-in by name, or its file, unchanged, from where it was.
fn recorded_profile(record: &RunRecord, directory: &Path) -> Result<Option<String>> {
    match &record.profile_file {
        Some(kept) => {
            kept.unchanged("the profile", directory)?;
            Ok(Some(kept.path.display().to_string()))
        }
        None => Ok(record.profile.clone()),
    }
}

/// The run's input as it began: the same file, or one with the same contents.
fn recorded_input(args: &ApplyArgs, record: &RunRecord, directory: &Path) -> Result<Input> {
    let stored = record.input.clone().ok_or_else(|| {
        Error::Usage(format!(
            "--resume {}: that run listed the tenant's mailboxes before remediate kept the listing, so its targets cannot be known again; start a new run",
            directory.display()
        ))
    })?;
    let path = args.run.input.clone().unwrap_or(stored);
    let input = Input::read(&path, record.column.as_deref())?;
    if Some(&input.sha256) != record.input_sha256.as_ref() {
        return Err(Error::Usage(format!(
            "--resume {}: {} is not the file that run started with (its contents differ); resume with the same file, or start a new run",
            directory.display(),
            path.display()
        )));
    }
    Ok(input)
}

/// Refuses what the run record already decides.
fn refuse_choices_again(args: &ApplyArgs, directory: &Path) -> Result<()> {
    let run = &args.run;
    let chosen_again = run.profile.is_some()
        || !run.set.is_empty()
        || run.column.is_some()
        || run.exclude.is_some()
        || run.shard.is_some()
        || run.all_mailboxes
        || run.tenants.is_some()
        || run.only_smtp_auth_seen.is_some()
        || run.spare_smtp_auth_seen.is_some()
        || run.basic_auth_policy.is_some()
        || run.ca_exclusion_group.is_some()
        || run.basic_auth_smtp.is_some()
        || run.exceptions.is_some();
    if chosen_again {
        return Err(Error::Usage(format!(
            "--resume {}: the run's profile, --set values, --column, --exclude, --shard, --all-mailboxes, the sign-in targeting, the exceptions and the SMTP AUTH layer flags are stored there; leave them off",
            directory.display()
        )));
    }
    Ok(())
}

/// `apply --resume DIR`.
pub(super) async fn apply(mut args: ApplyArgs, directory: PathBuf, quiet: bool) -> Result<u8> {
    let record = RunRecord::load(&directory)?;
    record.connection.fill(&mut args.run.session);
    if record.command != RunKind::Apply {
        return Err(Error::Usage(format!(
            "--resume {}: that directory holds a {} run, not an apply",
            directory.display(),
            record.command
        )));
    }
    refuse_choices_again(&args, &directory)?;
    refuse_simulated(&args.run, "--resume")?;
    let input = recorded_input(&args, &record, &directory)?;
    let exclusions = recorded_exclusions(&record, &directory)?;
    let exceptions = recorded_exceptions(&record, &directory)?;
    let profile = recorded_profile(&record, &directory)?;
    let (mut desired, profile_name) = desired_state(profile.as_deref(), &record.sets)?;
    super::opt_in::add_steps(&mut desired, &record.smtp_layers);
    let layers = super::opt_in::layers(&desired, &record.smtp_layers);
    let session = &args.run.session;
    let stop = Stop::new(session.grace);
    stop.watch_signals();
    let connection = connection::connect(&session.connection, &record.tuning)?;
    stop.within_grace(check_same_tenant(&record, &connection, &directory))
        .await
        .ok_or_else(|| Error::Interrupted("interrupted while signing in; nothing was changed".into()))??;
    tell_notices(&desired, RunKind::Apply.mode());
    confirm_weakening(&desired, RunKind::Apply.mode(), args.yes)?;
    let entries = sharded(Box::new(input.entries()?), record.shard);
    let chosen = super::sign_in_targeting::recorded(&record, &directory)?;
    let (sign_in_scope, smtp_auth_usage) = chosen.map_or((None, None), |chosen| (Some(chosen.scope), chosen.usage));
    let decided = Decisions {
        profile: profile_name,
        layers,
        total: Some(input.rows_in_shard(record.shard)?),
        input: Some(input.path),
        lanes: vec![Lane { connection, entries, mailbox_index: None }],
        exclusions: std::sync::Arc::new(exclusions),
        exceptions: std::sync::Arc::new(exceptions),
        retry_failed: args.retry_failed,
        shard: record.shard,
        max_not_found: args.run.max_not_found,
        sign_in_scope,
        smtp_auth_usage,
        ..Decisions::default()
    };
    let job = Job::new(RunKind::Apply, desired, directory, stop, record.tuning.clone(), session, decided);
    session::execute(job, quiet).await
}
