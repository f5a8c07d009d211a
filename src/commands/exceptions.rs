//! `--exceptions FILE` and `--record-exceptions FILE`: the fix records the mailboxes it left able
//! to use SMTP AUTH as owned exceptions that expire, and the nightly lockdown holds them there
//! until they do, so that the pair never undoes itself.

use std::path::{Path, PathBuf};

use crate::cli::{ApplyArgs, RunArgs};
use crate::engine::events::{Event, EventSink, Outcome};
use crate::engine::journal::{self, Record};
use crate::error::{Error, Result};
use crate::settings::exceptions::{Exception, Exceptions, parse_date};
use crate::settings::{Setting, Value};

/// The exceptions a run holds to (an empty list without `--exceptions`).
pub(super) fn held(args: &RunArgs) -> Result<Exceptions> {
    match &args.exceptions {
        Some(path) => Exceptions::load(path, false),
        None => Ok(Exceptions::default()),
    }
}

/// Says which exceptions have expired: from today, the profile's value applies to them again.
pub(super) fn warn_expired(exceptions: &Exceptions, sink: &dyn EventSink) {
    let expired = exceptions.expired(time::OffsetDateTime::now_utc().date());
    if expired.is_empty() {
        return;
    }
    let shown: Vec<String> = expired
        .iter()
        .take(10)
        .map(|e| format!("{} {}={} ({}, {})", e.identity, e.setting, e.value, e.owner, e.reason))
        .collect();
    sink.emit(Event::Warning(format!(
        "{} exceptions in {} have expired and no longer hold their mailboxes (the profile's value applies again): {}{}",
        expired.len(),
        exceptions.source,
        shown.join("; "),
        if expired.len() > 10 { "; …" } else { "" }
    )));
}

/// What `--record-exceptions` writes, and where.
#[derive(Clone, Debug)]
pub(super) struct Recording {
    file: PathBuf,
    owner: String,
    reason: String,
    expires: time::Date,
}

impl Recording {
    /// The flags, checked before anything happens: an expiry in the future, a file that can be
    /// read if it exists.
    pub(super) fn from_args(args: &ApplyArgs) -> Result<Option<Recording>> {
        let Some(file) = &args.record_exceptions else { return Ok(None) };
        let expires = parse_date(args.expires.as_deref().unwrap_or_default())
            .map_err(|problem| Error::Usage(format!("--expires: {problem}")))?;
        if expires < time::OffsetDateTime::now_utc().date() {
            return Err(Error::Usage(format!("--expires {expires}: that day has passed; give a day to come")));
        }
        Exceptions::load(file, true)?;
        let owner = args.owner.clone().unwrap_or_default();
        Ok(Some(Recording { file: file.clone(), owner, reason: args.reason.clone().unwrap_or_default(), expires }))
    }

    /// Adds every mailbox the run left with SMTP AUTH on (changed to it, or found at it) to the
    /// file; earlier entries stay.
    pub(super) fn record(&self, directory: &Path) -> Result<()> {
        let mut exceptions = Exceptions::load(&self.file, true)?;
        let mut added = 0;
        for record in journal::read(&directory.join(journal::FILE_NAME))? {
            let Record::Row(row) = record else { continue };
            let kept_on = matches!(row.outcome, Outcome::Changed | Outcome::Compliant | Outcome::Excepted);
            if row.setting == Setting::SmtpAuth && kept_on && row.after == Some(Value::Enabled) {
                exceptions.add(Exception {
                    identity: row.identity,
                    setting: Setting::SmtpAuth,
                    value: Value::Enabled,
                    owner: self.owner.clone(),
                    reason: self.reason.clone(),
                    expires: self.expires,
                });
                added += 1;
            }
        }
        exceptions.save(&self.file)?;
        tracing::info!("recorded {added} SMTP AUTH exceptions in {}", self.file.display());
        Ok(())
    }
}
