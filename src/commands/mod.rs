//! The commands. Each command's file turns its arguments into a [`session::Job`]: `new_run`
//! (`plan`, `audit`, `apply`), `resume` (`apply --resume`), `rollback`, `offline` (`validate`,
//! `profiles`) and `sim`. [`session`] runs any job the same way and owns the exit-code policy:
//! 0 only when every (target, setting) has its final row. This is the command line's edge: the
//! only place besides `lib.rs` that reads `cli`'s types.

mod connection;
mod diagnose;
mod exceptions;
mod install_files;
mod listing;
mod new_run;
mod offline;
mod opt_in;
mod resume;
mod rollback;
mod session;
mod sign_in_targeting;
mod simulate;
mod usage;

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::cli::{ApplyArgs, RunArgs};
use crate::engine::Mode;
use crate::error::{Error, Result};
use crate::logging::{self, Loudness};
use crate::run::record::{RunKind, RunRecord};
use crate::run::scope;
use crate::settings::DesiredState;
use crate::settings::profile;
use crate::targets::Entry;

pub(crate) use connection::Connection;
pub(crate) use diagnose::diagnose;
pub(crate) use install_files::{completions, manual};
pub(crate) use new_run::{audit, plan};
pub(crate) use offline::{profiles, validate};
pub(crate) use rollback::rollback;
#[cfg(feature = "simulator")]
pub(crate) use simulate::serve as sim;
pub(crate) use usage::usage;

/// Said wherever SMTP AUTH is turned on.
const RETIREMENT_NOTE: &str = "Basic authentication for SMTP AUTH is being retired in Exchange Online: off by default for existing tenants at the end of December 2026 (administrators can turn it back on for a time), OAuth only for tenants created after that, and the final removal date to be announced in the second half of 2027. Plan a move to OAuth for SMTP AUTH, High Volume Email, Azure Communication Services Email or a relay connector.";

/// `apply`, new or resumed.
pub(crate) async fn apply(args: ApplyArgs, quiet: bool) -> Result<u8> {
    match args.resume.clone() {
        Some(directory) => resume::apply(args, directory, quiet).await,
        None => {
            let recording = exceptions::Recording::from_args(&args)?;
            new_run::run(args.run, RunKind::Apply, args.yes, false, quiet, recording).await
        }
    }
}

/// Profile plus `--set`s; an empty result is a mistake.
fn desired_state(profile: Option<&str>, sets: &[String]) -> Result<(DesiredState, Option<String>)> {
    let mut desired = DesiredState::default();
    let mut name = None;
    if let Some(profile) = profile {
        let profile = profile::load(profile)?;
        desired = profile.desired.clone();
        name = Some(profile.name);
    }
    for assignment in sets {
        desired.apply_assignment(assignment).map_err(Error::Usage)?;
    }
    if desired.is_empty() {
        return Err(Error::Usage(
            "nothing to do: give --profile smtp-auth-fix (see `remediate profiles`) or --set SETTING=VALUE".into(),
        ));
    }
    Ok((desired, name))
}

fn default_report_dir(kind: RunKind) -> PathBuf {
    default_report_dir_named(kind.name())
}

/// `./remediate-<command>-<UTC timestamp>/`.
fn default_report_dir_named(command: &str) -> PathBuf {
    let now = time::OffsetDateTime::now_utc();
    let stamp = now
        .format(time::macros::format_description!("[year][month][day]T[hour][minute][second]Z"))
        .unwrap_or_else(|_| "now".into());
    PathBuf::from(format!("remediate-{command}-{stamp}"))
}

/// Asks for a typed `yes` on a terminal; without one, `--yes` is the only way.
fn confirm(what: &str, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage(format!(
            "{what}; nothing was changed. Re-run with --yes to confirm (there is no terminal to ask on)."
        )));
    }
    eprint!("{what}. Type 'yes' to go on: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).map_err(Error::io("reading the confirmation"))?;
    if answer.trim() == "yes" { Ok(()) } else { Err(Error::Usage("not confirmed; nothing was changed".into())) }
}

/// What the settings a run changes ask a person to know first (their specs' notices).
fn tell_notices(desired: &DesiredState, mode: Mode) {
    if mode != Mode::Apply {
        return;
    }
    for (setting, value) in desired.iter() {
        if let Some(notice) = setting.spec().notice.as_ref().filter(|notice| notice.when == value) {
            logging::say(Loudness::Warning, "note", notice.text);
        }
    }
}

/// The one plain warning before settings that weaken the tenant, and the yes it needs.
fn confirm_weakening(desired: &DesiredState, mode: Mode, yes: bool) -> Result<()> {
    let weakening = desired.weakening();
    if weakening.is_empty() || mode != Mode::Apply {
        return Ok(());
    }
    let list = weakening.iter().map(|(s, v)| format!("{s}={v}")).collect::<Vec<_>>().join(", ");
    let warning = format!(
        "{list} weakens the whole tenant: with security defaults off and per-user MFA off, these accounts sign in with a password alone. {RETIREMENT_NOTE}"
    );
    logging::say(Loudness::Warning, "warning", &warning);
    confirm(&format!("apply would set {list}, which weakens the tenant"), yes)
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Keeps the targets of one shard (and each rejected row in one shard only).
fn sharded(
    entries: Box<dyn Iterator<Item = Entry> + Send>,
    shard: Option<crate::run::shard::Shard>,
) -> Box<dyn Iterator<Item = Entry> + Send> {
    let Some(shard) = shard else { return entries };
    Box::new(entries.filter(move |entry| scope::entry_in_shard(entry, shard)))
}

/// A resume works on a real tenant: the simulated one of the first run is gone. (`rollback`
/// takes no `--simulate` at all.)
fn refuse_simulated(run: &RunArgs, what: &str) -> Result<()> {
    if run.simulate {
        return Err(Error::Usage(format!(
            "{what} cannot use --simulate: the simulated tenant of the first run lived in that process"
        )));
    }
    Ok(())
}

/// Refuses to carry on `record`'s run against another tenant than the one it began with.
async fn check_same_tenant(record: &RunRecord, connection: &Connection, directory: &Path) -> Result<()> {
    let client = &connection.client;
    let [recorded] = record.tenant_ids.as_slice() else {
        return Err(Error::Usage(format!(
            "{}: that run covered {} tenants ({}); resume and rollback work on one tenant's run",
            directory.display(),
            record.tenant_ids.len(),
            record.tenant_ids.join(", ")
        )));
    };
    let same =
        recorded.eq_ignore_ascii_case(&client.tenant_id) || recorded.eq_ignore_ascii_case(&client.tenant_guid().await?);
    if !same {
        return Err(Error::Usage(format!(
            "--resume {}: that run was against tenant {recorded}, this one is against {}; point AZURE_TENANT_ID at the same tenant",
            directory.display(),
            client.tenant_id
        )));
    }
    Ok(())
}
