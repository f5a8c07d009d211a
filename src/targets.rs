//! The mailbox CSV: streamed row by row into validated targets, each with its line number, and a
//! problem (line and reason) for every row that cannot be one.
//!
//! Files come from Excel, HR exports and other admins' scripts: a BOM, `;` or tab delimiters,
//! CRLF, quoted fields, duplicates in another letter case, and text that is not UTF-8 are all
//! expected here. The file is never loaded whole; a line longer than [`MAX_LINE`] is an error.

mod address;
mod duplicates;
mod head;
mod input;
mod lines;
#[cfg(test)]
mod tests;

pub use address::check_address;
use head::{sniff_delimiter, type_line_length};
pub use input::Input;
use input::Survey;
pub(crate) use input::{is_regular_file, is_stdin, settle_input};
use lines::{LineIndex, LineLimit};

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::error::Error;

/// The identity columns looked for, in order, when `--column` is not given.
pub(crate) const IDENTITY_COLUMNS: [&str; 6] =
    ["UserPrincipalName", "PrimarySmtpAddress", "EmailAddress", "Mail", "UPN", "Identity"];

/// The longest line accepted: more is a broken file, not a mailbox.
pub(crate) const MAX_LINE: usize = 64 * 1024;

/// A row that names a mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub line: u64,
    pub identity: String,
    /// Desired values for this target alone, replacing the run's for those settings.
    pub overrides: Vec<Wanted>,
    /// The tenant the row names in a `tenant` column (multi-tenant runs).
    pub tenant: Option<String>,
}

/// A desired value for one target; with `expect`, wanted only while the current value is still
/// `expect` (a rollback restores only what nobody changed since).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub setting: crate::settings::Setting,
    pub desired: crate::settings::Value,
    pub expect: Option<crate::settings::Value>,
}

/// A row that does not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub line: u64,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Target(Target),
    Problem(Problem),
}

impl Entry {
    pub fn into_target(self) -> Option<Target> {
        if let Entry::Target(target) = self { Some(target) } else { None }
    }

    pub fn into_problem(self) -> Option<Problem> {
        if let Entry::Problem(problem) = self { Some(problem) } else { None }
    }
}

/// Streams a mailbox CSV.
pub struct TargetReader {
    reader: csv::Reader<LineLimit<Box<dyn Read + Send>>>,
    index: std::sync::Arc<std::sync::Mutex<LineIndex>>,
    column: usize,
    /// Columns named after a per-target setting: a desired value for that row alone.
    setting_columns: Vec<(usize, crate::settings::Setting)>,
    tenant_column: Option<usize>,
    column_name: String,
    record: csv::ByteRecord,
    /// Which identities came before, and on what line.
    duplicates: duplicates::Duplicates,
    path: PathBuf,
    finished: bool,
    /// The file began with PowerShell's `#TYPE` line, which was skipped.
    type_line: bool,
}

impl std::fmt::Debug for TargetReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetReader").field("path", &self.path).field("column", &self.column_name).finish()
    }
}

/// Opens `path`, finds its delimiter and identity column, and checks the header. A regular file
/// is read once ahead for the duplicate check (see [`duplicates`]); a file the reader cannot get
/// through (a line over [`MAX_LINE`], a quote never closed) is refused then, naming the line,
/// so a run never stops reading silently halfway. A pipe is read once, as it comes.
pub fn open(path: &Path, column: Option<&str>) -> Result<TargetReader, Error> {
    open_with(path, column, true)
}

/// [`open`] for listing every problem (`validate`): a file the reader cannot get through is not
/// refused; its last entry says where and why the reading stopped.
pub fn open_to_list(path: &Path, column: Option<&str>) -> Result<TargetReader, Error> {
    open_with(path, column, false)
}

fn open_with(path: &Path, column: Option<&str>, refuse_broken: bool) -> Result<TargetReader, Error> {
    let mut reader = open_once(path, column)?;
    if let Ok(metadata) = std::fs::metadata(path)
        && metadata.is_file()
    {
        let survey = open_once(path, column)?.survey(metadata.len());
        if let Some(problem) = survey.broken.filter(|_| refuse_broken) {
            return Err(broken_file(path, &problem));
        }
        reader.duplicates = survey.duplicates;
    }
    Ok(reader)
}

/// Why a mailbox CSV cannot be used at all (a bad row is a [`Problem`], not an error).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{}: cannot open the mailbox CSV: {source}", .path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("{}: cannot read it: {source}", .path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{}: cannot keep a copy of {}: {source}", .copy.display(), .path.display())]
    Copy { path: PathBuf, copy: PathBuf, source: io::Error },
    #[error("{}: more than 16 GiB came through the pipe; give a file instead", .path.display())]
    PipeTooLarge { path: PathBuf },
    #[error("{}: the file is empty; it needs a header row (e.g. UserPrincipalName) and one mailbox per row", .path.display())]
    Empty { path: PathBuf },
    #[error("{}: the file is UTF-16; save it as UTF-8 (in Excel: 'CSV UTF-8 (Comma delimited)')", .path.display())]
    Utf16 { path: PathBuf },
    #[error("{}: cannot read the header row: {message}", .path.display())]
    Header { path: PathBuf, message: String },
    #[error("{}: {message}", .path.display())]
    Column { path: PathBuf, message: String },
    #[error("{}:{line}: {message}; nothing was read or changed. Fix the file (`remediate validate` lists every bad row) and run again", .path.display())]
    Broken { path: PathBuf, line: u64, message: String },
}

/// The error for a file the reader cannot get through.
fn broken_file(path: &Path, problem: &Problem) -> Error {
    InputError::Broken { path: path.to_path_buf(), line: problem.line, message: problem.message.clone() }.into()
}

fn open_once(path: &Path, column: Option<&str>) -> Result<TargetReader, Error> {
    let owned = || path.to_path_buf();
    let mut file: Box<dyn Read + Send> = if is_stdin(path) {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(path).map_err(|source| InputError::Open { path: owned(), source })?)
    };
    let mut head = vec![0u8; MAX_LINE];
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(source) => return Err(InputError::Read { path: owned(), source }.into()),
        }
    }
    head.truncate(filled);
    let bom = if head.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
    let start = bom + type_line_length(&head[bom..]);
    if head[start..].iter().all(u8::is_ascii_whitespace) {
        return Err(InputError::Empty { path: owned() }.into());
    }
    if head.starts_with(b"\xFF\xFE") || head.starts_with(b"\xFE\xFF") {
        return Err(InputError::Utf16 { path: owned() }.into());
    }
    let delimiter = sniff_delimiter(&head[start..]);
    let mut digest = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    digest.update(&head[..start]);
    let source: Box<dyn Read + Send> = Box::new(io::Cursor::new(head[start..].to_vec()).chain(file));
    let type_line = start > bom;
    let index = LineIndex::new(delimiter).after_lines(u64::from(type_line));
    let index = std::sync::Arc::new(std::sync::Mutex::new(index));
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(true)
        .from_reader(LineLimit { inner: source, index: index.clone(), digest: Some(digest) });
    let headers =
        reader.byte_headers().map_err(|e| InputError::Header { path: owned(), message: csv_error_text(&e) })?.clone();
    let names: Vec<String> = headers.iter().map(|h| String::from_utf8_lossy(h).trim().to_string()).collect();
    let column = find_column(&names, column).map_err(|message| InputError::Column { path: owned(), message })?;
    let setting_columns = names
        .iter()
        .enumerate()
        .filter_map(|(i, name)| {
            crate::settings::Setting::from_name(name).filter(|s| !s.is_tenant_wide()).map(|s| (i, s))
        })
        .collect();
    let tenant_column =
        names.iter().position(|n| n.eq_ignore_ascii_case("tenant") || n.eq_ignore_ascii_case("TenantId"));
    Ok(TargetReader {
        reader,
        index,
        setting_columns,
        tenant_column,
        column_name: names[column].clone(),
        column,
        record: csv::ByteRecord::new(),
        duplicates: duplicates::Duplicates::remembering_all(),
        path: path.to_path_buf(),
        finished: false,
        type_line,
    })
}

/// A header name as compared: letters and digits in lower case, so the admin center's
/// `User principal name` and `Email address` are `UserPrincipalName` and `EmailAddress`.
fn header_key(name: &str) -> String {
    name.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

fn find_column(names: &[String], wanted: Option<&str>) -> Result<usize, String> {
    let position = |name: &str| names.iter().position(|n| header_key(n) == header_key(name));
    let found = match wanted {
        Some(name) => position(name.trim()),
        None => IDENTITY_COLUMNS.iter().find_map(|name| position(name)),
    };
    found.ok_or_else(|| {
        let seen = names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ");
        match wanted {
            Some(name) => format!("no column named '{name}'; the header has {seen}"),
            None => format!(
                "no identity column; the header has {seen}, and the accepted names are {} (any letter case), or name yours with --column",
                IDENTITY_COLUMNS.join(", ")
            ),
        }
    })
}

fn csv_error_text(error: &csv::Error) -> String {
    match error.kind() {
        csv::ErrorKind::Io(e) => e.to_string(),
        _ => error.to_string(),
    }
}

impl TargetReader {
    pub fn column_name(&self) -> &str {
        &self.column_name
    }

    /// What the reader skipped that a person should know of: PowerShell's `#TYPE` line.
    pub fn note(&self) -> Option<String> {
        self.type_line.then(|| {
            "line 1 is PowerShell's #TYPE line (Export-Csv without -NoTypeInformation): skipped; the header is line 2"
                .to_string()
        })
    }

    /// Whether rows name their tenant (a `tenant` column).
    pub fn has_tenant_column(&self) -> bool {
        self.tenant_column.is_some()
    }

    /// Reads the whole file once for what the run needs before it starts: the rows, the content
    /// hash, the tenants named, and which identities repeat; until the file ends or cannot be
    /// read further (then `broken` says why).
    fn survey(mut self, bytes: u64) -> Survey {
        let mut first_pass = duplicates::FirstPass::new(bytes);
        let mut rows = 0;
        let mut tenants = self.tenant_column.map(|_| std::collections::BTreeSet::new());
        let broken = loop {
            match self.next_record() {
                None => break None,
                Some(Err(problem)) => break Some(problem),
                Some(Ok(_)) => {}
            }
            rows += 1;
            let field = self.record.get(self.column).unwrap_or_default();
            if let Ok(identity) = std::str::from_utf8(field) {
                first_pass.insert(duplicates::identity_hash(identity));
            }
            if let (Some(tenants), Some(column)) = (tenants.as_mut(), self.tenant_column) {
                let raw = self.record.get(column).unwrap_or_default();
                tenants.insert(String::from_utf8_lossy(raw).trim().to_string());
            }
        };
        let digest = self.reader.get_mut().digest.take().map(|d| d.finish());
        let sha256 = digest.map(|d| d.as_ref().iter().map(|b| format!("{b:02x}")).collect()).unwrap_or_default();
        Survey { rows, sha256, tenants, duplicates: first_pass.finish(), broken }
    }

    fn line_at(&self, offset: u64) -> u64 {
        self.index.lock().unwrap_or_else(|e| e.into_inner()).line_of(offset)
    }

    /// Reads the next record into `self.record` and returns its line; or the problem that ends
    /// the file early (a line over the limit, a quote never closed); `None` at its end.
    fn next_record(&mut self) -> Option<Result<u64, Problem>> {
        if self.finished {
            return None;
        }
        let line = self.line_at(self.reader.position().byte());
        match self.reader.read_byte_record(&mut self.record) {
            Ok(false) => {
                self.finished = true;
                let unclosed = self.index.lock().unwrap_or_else(|e| e.into_inner()).unclosed_quote();
                unclosed.map(|line| {
                    let message = format!("the quote opened on line {line} is never closed, so every row after it was read as part of one field; close the quote");
                    Err(Problem { line, message })
                })
            }
            Ok(true) => Some(Ok(self.record.position().map_or(line, |p| self.line_at(p.byte())))),
            Err(error) => {
                // After an I/O error (a line over the limit) the reader cannot find the next row.
                self.finished = true;
                let line = error.position().map_or(line, |p| self.line_at(p.byte()));
                let message = format!("{}; the rows after it cannot be read", csv_error_text(&error));
                Some(Err(Problem { line, message }))
            }
        }
    }

    fn next_entry(&mut self) -> Option<Entry> {
        Some(match self.next_record()? {
            Ok(line) => self.check_row(line),
            Err(problem) => Entry::Problem(problem),
        })
    }

    fn check_row(&mut self, line: u64) -> Entry {
        let problem = |message: String| Entry::Problem(Problem { line, message });
        let Some(raw) = self.record.get(self.column) else {
            return problem(format!(
                "the row has no '{}' field (it has {} fields)",
                self.column_name,
                self.record.len()
            ));
        };
        let Ok(text) = std::str::from_utf8(raw) else {
            return problem("the text is not UTF-8 (it looks like Windows-1252/Latin-1); save the file as UTF-8, in Excel 'CSV UTF-8 (Comma delimited)'".into());
        };
        let identity = text.trim();
        if let Err(reason) = check_address(identity) {
            return problem(reason);
        }
        if let Some(first) = self.duplicates.check(duplicates::identity_hash(identity), line) {
            return problem(format!(
                "'{identity}' is a duplicate of line {first} (addresses match in any letter case); it is processed once"
            ));
        }
        let mut overrides = Vec::new();
        for &(column, setting) in &self.setting_columns {
            let text = self.record.get(column).map(String::from_utf8_lossy).unwrap_or_default();
            if text.trim().is_empty() {
                continue;
            }
            match setting.parse_value(&text) {
                Ok(desired) => overrides.push(Wanted { setting, desired, expect: None }),
                Err(reason) => return problem(format!("column {}: {reason}", setting.name())),
            }
        }
        let tenant = self
            .tenant_column
            .and_then(|column| self.record.get(column))
            .map(|raw| String::from_utf8_lossy(raw).trim().to_string())
            .filter(|tenant| !tenant.is_empty());
        Entry::Target(Target { line, identity: identity.to_string(), overrides, tenant })
    }
}

impl Iterator for TargetReader {
    type Item = Entry;
    fn next(&mut self) -> Option<Entry> {
        self.next_entry()
    }
}
