//! Exceptions that are owned and expire: a mailbox held at a value the profile would change (the
//! scanner's mailbox that must keep SMTP AUTH), with who asked, why, and until when.
//!
//! One CSV, `identity,setting,value,owner,reason,expires`, that the fix writes
//! (`--record-exceptions`: a new run adds its entries, an entry for the same mailbox and setting
//! is replaced by the newer, the others stay) and the sweep reads (`--exceptions`). An excepted
//! target is held at its value and reported `excepted`; drift from that value is still drift. An
//! expired exception is reported, and the profile's value applies from that day on.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::settings::{Setting, Value};

pub(crate) const HEADER: [&str; 6] = ["identity", "setting", "value", "owner", "reason", "expires"];

/// One exception.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Exception {
    pub identity: String,
    pub setting: Setting,
    pub value: Value,
    pub owner: String,
    pub reason: String,
    pub expires: time::Date,
}

impl Exception {
    /// Owner, reason and expiry, as a row's message says them.
    pub(crate) fn describe(&self) -> String {
        format!(
            "held at {} by an exception of {} until {}: {}",
            self.value,
            self.owner,
            date_text(self.expires),
            self.reason
        )
    }
}

/// The exceptions of a file, by (identity lower case, setting).
#[derive(Clone, Debug, Default)]
pub(crate) struct Exceptions {
    entries: BTreeMap<(String, Setting), Exception>,
    /// Where they came from, for messages.
    pub source: String,
}

fn date_text(date: time::Date) -> String {
    date.format(time::macros::format_description!("[year]-[month]-[day]")).unwrap_or_default()
}

/// `YYYY-MM-DD`.
pub(crate) fn parse_date(text: &str) -> Result<time::Date, String> {
    time::Date::parse(text.trim(), time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|_| format!("'{}' is not a date: write YYYY-MM-DD, e.g. 2027-06-30", text.trim()))
}

impl Exceptions {
    /// Reads an exceptions file; a missing file is an empty list only when `may_be_new` (the fix
    /// creates it).
    pub(crate) fn load(path: &Path, may_be_new: bool) -> Result<Exceptions> {
        let mut exceptions = Exceptions { source: path.display().to_string(), ..Exceptions::default() };
        if may_be_new && !path.exists() {
            return Ok(exceptions);
        }
        let place =
            |line: u64, problem: String| Error::Usage(format!("--exceptions {}:{line}: {problem}", path.display()));
        let bytes = crate::support::files::read_capped(path, crate::support::files::cap::MEDIUM)
            .map_err(|e| Error::Usage(format!("--exceptions {}: cannot read it: {e}", path.display())))?;
        let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(bytes.as_slice());
        let headers = reader.headers().map_err(|e| place(1, e.to_string()))?.clone();
        let column = |name: &str| headers.iter().position(|h| h.trim().eq_ignore_ascii_case(name));
        let columns: Vec<usize> = HEADER
            .iter()
            .map(|name| {
                column(name).ok_or_else(|| place(1, format!("no '{name}' column: the header is {}", HEADER.join(","))))
            })
            .collect::<Result<_>>()?;
        for (index, record) in reader.records().enumerate() {
            let line = index as u64 + 2;
            let record = record.map_err(|e| place(line, e.to_string()))?;
            let field = |i: usize| record.get(columns[i]).unwrap_or_default().trim().to_string();
            let entry = parse_entry(&field).map_err(|problem| place(line, problem))?;
            exceptions.entries.insert((entry.identity.to_lowercase(), entry.setting), entry);
        }
        Ok(exceptions)
    }

    /// The exception for `setting` of the mailbox any of `names` names, if one is in force `today`.
    pub(crate) fn find(&self, names: &[&str], setting: Setting, today: time::Date) -> Option<&Exception> {
        if self.entries.is_empty() {
            return None;
        }
        names
            .iter()
            .find_map(|name| self.entries.get(&(name.to_lowercase(), setting)))
            .filter(|exception| exception.expires >= today)
    }

    /// The exception that holds `setting` of the mailbox `names` names on `today`: its own, or,
    /// for the sign-in of a shared mailbox, one that keeps SMTP AUTH on for it. A device that
    /// sends with SMTP AUTH signs in as the mailbox, so a sweep that blocked the sign-in would
    /// break the device the exception keeps working.
    pub(crate) fn holding(&self, names: &[&str], setting: Setting, today: time::Date) -> Option<Exception> {
        if let Some(own) = self.find(names, setting, today) {
            return Some(own.clone());
        }
        if setting != Setting::SharedSignIn {
            return None;
        }
        let smtp = self.find(names, Setting::SmtpAuth, today).filter(|e| e.value == Value::Enabled)?;
        let reason = format!("its SMTP AUTH exception needs the mailbox to sign in ({})", smtp.reason);
        Some(Exception { setting, value: Value::Enabled, reason, ..smtp.clone() })
    }

    /// The exceptions that keep SMTP AUTH on, unexpired on `today`, whose identity `signed_in`
    /// does not know: nothing in the window used them.
    pub(crate) fn unused_smtp_auth(&self, today: time::Date, signed_in: impl Fn(&str) -> bool) -> Vec<&Exception> {
        let holds_on = |e: &&Exception| e.setting == Setting::SmtpAuth && e.value == Value::Enabled;
        self.entries.values().filter(holds_on).filter(|e| e.expires >= today && !signed_in(&e.identity)).collect()
    }

    /// The exceptions past their expiry on `today`.
    pub(crate) fn expired(&self, today: time::Date) -> Vec<&Exception> {
        self.entries.values().filter(|e| e.expires < today).collect()
    }

    /// Adds (or replaces) an entry.
    pub(crate) fn add(&mut self, exception: Exception) {
        self.entries.insert((exception.identity.to_lowercase(), exception.setting), exception);
    }

    /// Writes the whole list to `path`, replacing it at once.
    pub(crate) fn save(&self, path: &Path) -> Result<()> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        let io = |e: csv::Error| Error::Io { context: format!("cannot write {}", path.display()), source: e.into() };
        writer.write_record(HEADER).map_err(io)?;
        for e in self.entries.values() {
            let record = [
                crate::report::safe(&e.identity).into_owned(),
                e.setting.name().to_string(),
                e.value.name().to_string(),
                crate::report::safe(&e.owner).into_owned(),
                crate::report::safe(&e.reason).into_owned(),
                date_text(e.expires),
            ];
            writer.write_record(&record).map_err(io)?;
        }
        let bytes = writer.into_inner().map_err(|e| Error::Fatal(format!("cannot write {}: {e}", path.display())))?;
        let directory = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        crate::support::files::write_atomic(directory, &name, &bytes)
            .map_err(Error::io(format!("cannot write {}", path.display())))
    }
}

fn parse_entry(field: &dyn Fn(usize) -> String) -> Result<Exception, String> {
    let identity = field(0);
    crate::targets::check_address(&identity).map_err(|problem| format!("identity '{identity}': {problem}"))?;
    let setting = Setting::from_name(&field(1))
        .ok_or_else(|| format!("'{}' is not a setting: use {}", field(1), Setting::settable()))?;
    let value = setting.parse_value(&field(2))?;
    let owner = field(3);
    if owner.is_empty() {
        return Err("no owner: every exception says who asked for it".into());
    }
    Ok(Exception { identity, setting, value, owner, reason: field(4), expires: parse_date(&field(5))? })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> std::path::PathBuf {
        let path = dir.join("exceptions.csv");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn an_exception_holds_until_its_day_and_names_its_owner() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "identity,setting,value,owner,reason,expires\nscanner@contoso.com,smtp-auth,enabled,Facilities,copier on floor 2,2027-03-31\n",
        );
        let exceptions = Exceptions::load(&path, false).unwrap();
        let day = |text| parse_date(text).unwrap();
        let held = exceptions.find(&["x@contoso.com", "SCANNER@contoso.com"], Setting::SmtpAuth, day("2027-03-31"));
        assert_eq!(held.unwrap().value, Value::Enabled);
        assert!(held.unwrap().describe().contains("Facilities"));
        assert!(exceptions.find(&["scanner@contoso.com"], Setting::SmtpAuth, day("2027-04-01")).is_none(), "expired");
        assert_eq!(exceptions.expired(day("2027-04-01")).len(), 1);
        assert!(exceptions.find(&["scanner@contoso.com"], Setting::PerUserMfa, day("2027-01-01")).is_none());
        // The device signs in as the mailbox: its sign-in is held open with SMTP AUTH.
        let sign_in = exceptions.holding(&["scanner@contoso.com"], Setting::SharedSignIn, day("2027-01-01")).unwrap();
        assert_eq!((sign_in.value, sign_in.owner.as_str()), (Value::Enabled, "Facilities"));
        assert!(exceptions.holding(&["scanner@contoso.com"], Setting::SharedSignIn, day("2027-04-01")).is_none());
        assert!(exceptions.holding(&["scanner@contoso.com"], Setting::Pop, day("2027-01-01")).is_none());
    }

    #[test]
    fn an_smtp_auth_exception_nobody_signed_in_with_is_unused() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "identity,setting,value,owner,reason,expires\nscanner@contoso.com,smtp-auth,enabled,Facilities,copier,2027-03-31\nold@contoso.com,smtp-auth,enabled,IT,gone,2026-01-01\nfax@contoso.com,smtp-auth,enabled,IT,fax,2027-03-31\nmfa@contoso.com,per-user-mfa,disabled,IT,x,2027-03-31\n",
        );
        let exceptions = Exceptions::load(&path, false).unwrap();
        let today = parse_date("2026-12-05").unwrap();
        let unused =
            exceptions.unused_smtp_auth(today, |identity| identity.eq_ignore_ascii_case("SCANNER@contoso.com"));
        let names: Vec<&str> = unused.iter().map(|e| e.identity.as_str()).collect();
        assert_eq!(names, ["fax@contoso.com"], "the expired one is reported as expired, the MFA one is not SMTP AUTH");
    }

    #[test]
    fn mistakes_name_the_line_and_what_to_write() {
        let dir = tempfile::tempdir().unwrap();
        let bad_date = write(
            dir.path(),
            "identity,setting,value,owner,reason,expires\na@contoso.com,smtp-auth,enabled,Me,x,31/03/2027\n",
        );
        let error = Exceptions::load(&bad_date, false).unwrap_err().to_string();
        assert!(error.contains(":2:") && error.contains("YYYY-MM-DD"), "{error}");
        let bad_value = write(
            dir.path(),
            "identity,setting,value,owner,reason,expires\na@contoso.com,smtp-auth,maybe,Me,x,2027-01-01\n",
        );
        assert!(Exceptions::load(&bad_value, false).unwrap_err().to_string().contains("enabled, disabled, inherit"));
        let no_owner = write(
            dir.path(),
            "identity,setting,value,owner,reason,expires\na@contoso.com,smtp-auth,enabled,,x,2027-01-01\n",
        );
        assert!(Exceptions::load(&no_owner, false).unwrap_err().to_string().contains("owner"));
        let no_column = write(dir.path(), "identity,setting,value\n");
        assert!(Exceptions::load(&no_column, false).unwrap_err().to_string().contains("'owner'"));
    }

    #[test]
    fn saving_keeps_earlier_entries_and_replaces_the_same_mailbox() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kept.csv");
        let mut exceptions = Exceptions::load(&path, true).unwrap();
        let entry = |identity: &str, expires: &str| Exception {
            identity: identity.into(),
            setting: Setting::SmtpAuth,
            value: Value::Enabled,
            owner: "Ops".into(),
            reason: "=cmd".into(),
            expires: parse_date(expires).unwrap(),
        };
        exceptions.add(entry("a@contoso.com", "2027-01-01"));
        exceptions.save(&path).unwrap();
        let mut again = Exceptions::load(&path, true).unwrap();
        again.add(entry("A@contoso.com", "2027-06-01"));
        again.add(entry("b@contoso.com", "2027-06-01"));
        again.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.contains("2027-06-01") && !text.contains("2027-01-01"));
        assert!(text.contains("'=cmd"), "a reason a spreadsheet would run is neutralised");
    }
}
