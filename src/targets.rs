//! The mailbox CSV: streamed row by row into validated targets, each with its line number, and a
//! problem (line and reason) for every row that cannot be one.
//!
//! Files come from Excel, HR exports and other admins' scripts: a BOM, `;` or tab delimiters,
//! CRLF, quoted fields, duplicates in another letter case, and text that is not UTF-8 are all
//! expected here. The file is never loaded whole; a line longer than [`MAX_LINE`] is an error.

mod duplicates;

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::error::Error;

/// The identity columns looked for, in order, when `--column` is not given.
pub const IDENTITY_COLUMNS: [&str; 6] =
    ["UserPrincipalName", "PrimarySmtpAddress", "EmailAddress", "Mail", "UPN", "Identity"];

/// The longest line accepted: more is a broken file, not a mailbox.
pub const MAX_LINE: usize = 64 * 1024;

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
    /// Why the reader could not get through the file, once it could not.
    broken: Option<Problem>,
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
        let mut first = open_once(path, column)?;
        reader.duplicates = duplicates::Duplicates::from_first_pass(first.identity_hashes(), metadata.len());
        if let Some(problem) = first.broken.filter(|_| refuse_broken) {
            return Err(Error::Config(format!(
                "{}:{}: {}; nothing was read or changed. Fix the file (`remediate validate` lists every bad row) and run again",
                path.display(),
                problem.line,
                problem.message
            )));
        }
    }
    Ok(reader)
}

/// Whether `path` can be read twice (a regular file), unlike a pipe, a FIFO or `<(…)`.
pub fn is_regular_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

/// The largest input copied from a pipe.
pub const MAX_STREAMED_INPUT: u64 = 16 * 1024 * 1024 * 1024;

/// A pipe, FIFO or `<(…)` can be read only once, and a run reads its input more than once (and a
/// resume reads it again later): copy it into `copy` first and work on the copy. A regular file
/// is used where it is.
pub fn settle_input(path: &Path, copy: &Path) -> Result<PathBuf, Error> {
    if is_regular_file(path) {
        return Ok(path.to_path_buf());
    }
    let shown = path.display();
    let mut source =
        File::open(path).map_err(|e| Error::Config(format!("{shown}: cannot open the mailbox CSV: {e}")))?;
    let mut target = crate::files::create_new_private(copy)
        .map_err(|e| Error::Config(format!("{}: cannot keep a copy of {shown}: {e}", copy.display())))?;
    let copied = io::copy(&mut (&mut source).take(MAX_STREAMED_INPUT + 1), &mut target)
        .map_err(|e| Error::Config(format!("{shown}: cannot read it: {e}")))?;
    if copied > MAX_STREAMED_INPUT {
        return Err(Error::Config(format!("{shown}: more than 16 GiB came through the pipe; give a file instead")));
    }
    target.sync_all().map_err(|e| Error::Config(format!("{}: cannot write it: {e}", copy.display())))?;
    Ok(copy.to_path_buf())
}

fn open_once(path: &Path, column: Option<&str>) -> Result<TargetReader, Error> {
    let shown = path.display();
    let mut file = File::open(path).map_err(|e| Error::Config(format!("{shown}: cannot open the mailbox CSV: {e}")))?;
    let mut head = vec![0u8; MAX_LINE];
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) => return Err(Error::Config(format!("{shown}: cannot read it: {e}"))),
        }
    }
    head.truncate(filled);
    let start = if head.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
    if head[start..].iter().all(u8::is_ascii_whitespace) {
        return Err(Error::Config(format!(
            "{shown}: the file is empty; it needs a header row (e.g. UserPrincipalName) and one mailbox per row"
        )));
    }
    if head.starts_with(b"\xFF\xFE") || head.starts_with(b"\xFE\xFF") {
        return Err(Error::Config(format!(
            "{shown}: the file is UTF-16; save it as UTF-8 (in Excel: 'CSV UTF-8 (Comma delimited)')"
        )));
    }
    let delimiter = sniff_delimiter(&head[start..]);
    let source: Box<dyn Read + Send> = Box::new(io::Cursor::new(head[start..].to_vec()).chain(file));
    let index = std::sync::Arc::new(std::sync::Mutex::new(LineIndex::new(delimiter)));
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(true)
        .from_reader(LineLimit { inner: source, index: index.clone() });
    let headers = reader
        .byte_headers()
        .map_err(|e| Error::Config(format!("{shown}: cannot read the header row: {}", csv_error_text(&e))))?
        .clone();
    let names: Vec<String> = headers.iter().map(|h| String::from_utf8_lossy(h).trim().to_string()).collect();
    let column = find_column(&names, column).map_err(|message| Error::Config(format!("{shown}: {message}")))?;
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
        broken: None,
    })
}

fn sniff_delimiter(head: &[u8]) -> u8 {
    let first_line = head.split(|&b| b == b'\n' || b == b'\r').next().unwrap_or_default();
    let mut best = (0, b',');
    for delimiter in [b',', b';', b'\t'] {
        let mut count = 0;
        let mut quoted = false;
        for &b in first_line {
            match b {
                b'"' => quoted = !quoted,
                _ if b == delimiter && !quoted => count += 1,
                _ => {}
            }
        }
        if count > best.0 {
            best = (count, delimiter);
        }
    }
    best.1
}

fn find_column(names: &[String], wanted: Option<&str>) -> Result<usize, String> {
    let position = |name: &str| names.iter().position(|n| n.eq_ignore_ascii_case(name));
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

    /// Whether rows name their tenant (a `tenant` column).
    pub fn has_tenant_column(&self) -> bool {
        self.tenant_column.is_some()
    }

    /// The hash of every row's identity field, valid or not, until the file ends or cannot be
    /// read further (then `broken` says why).
    fn identity_hashes(&mut self) -> impl Iterator<Item = u64> + '_ {
        std::iter::from_fn(move || {
            loop {
                match self.next_record()? {
                    Ok(_) => {
                        let field = self.record.get(self.column).unwrap_or_default();
                        if let Ok(identity) = std::str::from_utf8(field) {
                            return Some(duplicates::identity_hash(identity));
                        }
                    }
                    Err(problem) => {
                        self.broken = Some(problem);
                        return None;
                    }
                }
            }
        })
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

/// Whether `identity` can be a mailbox address: one `@`, something on both sides, a dotted
/// domain, no spaces or control characters.
pub fn check_address(identity: &str) -> Result<(), String> {
    if identity.is_empty() {
        return Err("the identity is empty".into());
    }
    if identity.len() > 320 {
        return Err(format!("the identity is {} characters long; an address has at most 320", identity.len()));
    }
    if identity.chars().any(|c| c.is_control()) {
        return Err("the identity contains a control character (a NUL byte or a line break?)".into());
    }
    if let Some(c) = identity.chars().find(|&c| is_format_character(c)) {
        return Err(format!(
            "the identity contains the invisible character U+{:04X} (a zero-width, direction or byte-order mark, often pasted from a web page or a document); type the address again",
            u32::from(c)
        ));
    }
    let shown = identity;
    if identity.chars().any(char::is_whitespace) {
        return Err(format!("'{shown}' is not an address: it contains a space"));
    }
    let Some((local, domain)) = identity.rsplit_once('@') else {
        return Err(format!("'{shown}' is not an address: it has no '@'"));
    };
    if local.is_empty() || local.contains('@') {
        return Err(format!("'{shown}' is not an address: it needs exactly one '@' with a name before it"));
    }
    let labels_ok =
        domain.split('.').all(|label| !label.is_empty() && label.chars().all(|c| c.is_alphanumeric() || c == '-'));
    if !domain.contains('.') || !labels_ok {
        return Err(format!("'{shown}' is not an address: '{domain}' is not a domain name"));
    }
    Ok(())
}

/// Unicode's format characters (general category Cf, Unicode 16): invisible, so an address
/// holding one looks like another address on screen, in the log and in the report.
fn is_format_character(c: char) -> bool {
    matches!(u32::from(c),
        0x00AD | 0x0600..=0x0605 | 0x061C | 0x06DD | 0x070F | 0x0890..=0x0891 | 0x08E2 | 0x180E
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF
        | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F)
}

/// The valid identities of a CSV, in order (what a simulated tenant is seeded from).
pub fn identities(path: &Path, column: Option<&str>) -> Result<Vec<String>, Error> {
    Ok(open(path, column)?.filter_map(|e| if let Entry::Target(t) = e { Some(t.identity) } else { None }).collect())
}

/// Counts the rows of a CSV quickly (for the progress bar's total).
pub fn count_rows(path: &Path) -> Option<u64> {
    let file = File::open(path).ok()?;
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(io::BufReader::new(file));
    let mut record = csv::ByteRecord::new();
    let mut rows = 0;
    while reader.read_byte_record(&mut record).ok()? {
        rows += 1;
    }
    Some(rows)
}

/// Line breaks seen so far, to turn a record's byte offset into its line number (the csv crate
/// miscounts lines in CRLF files), and the guard that fails the read when a line runs past
/// [`MAX_LINE`] bytes, so a broken file cannot make the reader's buffer grow without bound.
#[derive(Debug)]
struct LineIndex {
    /// Where each recent line break starts and ends (CRLF is one break of two bytes).
    breaks: std::collections::VecDeque<(u64, u64)>,
    /// Line breaks older than those kept.
    forgotten: u64,
    offset: u64,
    /// Bytes since the last line break, and since the last row's end (quoted line breaks do not
    /// end a row).
    line_run: usize,
    row_run: usize,
    after_cr: bool,
    delimiter: u8,
    /// Inside a quoted field, and the line where its opening quote stands.
    quoted: Option<u64>,
    /// A quote inside a quoted field: the end of it, or the first half of `""`.
    quote_pending: bool,
    at_field_start: bool,
}

/// How far behind the read position a record can start: the csv buffer plus one long row.
const INDEX_WINDOW: u64 = 2 * MAX_ROW as u64;

/// The longest row accepted, quoted line breaks included.
pub const MAX_ROW: usize = 256 * 1024;

impl LineIndex {
    fn new(delimiter: u8) -> LineIndex {
        LineIndex {
            breaks: Default::default(),
            forgotten: 0,
            offset: 0,
            line_run: 0,
            row_run: 0,
            after_cr: false,
            delimiter,
            quoted: None,
            quote_pending: false,
            at_field_start: true,
        }
    }

    /// The line of the record whose parse began at `offset`. The csv crate starts a record right
    /// after the byte that ended the previous one, so the offset can point at the `\n` of a CRLF
    /// or at blank lines; a record's line is that of its first byte after them.
    fn line_of(&self, offset: u64) -> u64 {
        let mut index = self.breaks.partition_point(|&(_, end)| end <= offset);
        let mut at = offset;
        while let Some(&(start, end)) = self.breaks.get(index) {
            if start > at {
                break;
            }
            at = end;
            index += 1;
        }
        1 + self.forgotten + index as u64
    }

    fn current_line(&self) -> u64 {
        1 + self.forgotten + self.breaks.len() as u64
    }

    /// A quote still open at the end of the file: the line it opened on.
    fn unclosed_quote(&self) -> Option<u64> {
        self.quoted.filter(|_| !self.quote_pending)
    }

    fn track_quotes(&mut self, b: u8) {
        if self.quoted.is_some() {
            if self.quote_pending {
                self.quote_pending = false;
                if b == b'"' {
                    return; // `""`: an escaped quote
                }
                self.quoted = None;
            } else {
                if b == b'"' {
                    self.quote_pending = true;
                }
                return;
            }
        }
        if b == b'"' && self.at_field_start {
            self.quoted = Some(self.current_line());
        }
        self.at_field_start = b == self.delimiter || b == b'\n' || b == b'\r';
    }

    fn scan(&mut self, bytes: &[u8]) -> io::Result<()> {
        for &b in bytes {
            let at = self.offset;
            if self.after_cr {
                self.breaks.push_back((at - 1, if b == b'\n' { at + 1 } else { at }));
            } else if b == b'\n' {
                self.breaks.push_back((at, at + 1));
            }
            self.after_cr = b == b'\r';
            self.offset += 1;
            self.track_quotes(b);
            let line_break = b == b'\n' || b == b'\r';
            self.line_run = if line_break { 0 } else { self.line_run + 1 };
            self.row_run = if line_break && self.quoted.is_none() { 0 } else { self.row_run + 1 };
            if self.line_run > MAX_LINE {
                let text = format!("a line is longer than {} KiB", MAX_LINE / 1024);
                return Err(io::Error::new(io::ErrorKind::InvalidData, text));
            }
            if self.row_run > MAX_ROW {
                let opened = self
                    .quoted
                    .map(|line| format!(" (is the quote opened on line {line} ever closed?)"))
                    .unwrap_or_default();
                let text = format!("a row is longer than {} KiB{opened}", MAX_ROW / 1024);
                return Err(io::Error::new(io::ErrorKind::InvalidData, text));
            }
        }
        while self.breaks.front().is_some_and(|&(_, end)| end + INDEX_WINDOW < self.offset) {
            self.breaks.pop_front();
            self.forgotten += 1;
        }
        Ok(())
    }
}

struct LineLimit<R> {
    inner: R,
    index: std::sync::Arc<std::sync::Mutex<LineIndex>>,
}

impl<R: Read> Read for LineLimit<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buffer)?;
        self.index.lock().unwrap_or_else(|e| e.into_inner()).scan(&buffer[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn entries(text: &[u8], column: Option<&str>) -> Result<Vec<Entry>, Error> {
        let mut file = tempfile_in_target();
        file.1.write_all(text).unwrap();
        let reader = open(&file.0, column)?;
        let all = reader.collect();
        std::fs::remove_file(&file.0).ok();
        Ok(all)
    }

    fn tempfile_in_target() -> (PathBuf, File) {
        let path = std::env::temp_dir().join(format!("remediate-targets-{}.csv", uuid::Uuid::new_v4()));
        let file = File::create(&path).unwrap();
        (path, file)
    }

    fn identities(entries: &[Entry]) -> Vec<&str> {
        entries.iter().filter_map(|e| if let Entry::Target(t) = e { Some(t.identity.as_str()) } else { None }).collect()
    }

    #[test]
    fn excel_files_with_bom_semicolons_and_crlf() {
        let all = entries(b"\xEF\xBB\xBFDisplayName;UserPrincipalName\r\nAdele;adele@contoso.com\r\n\"Vance; Alex\";alex@contoso.com\r\n", None).unwrap();
        assert_eq!(identities(&all), ["adele@contoso.com", "alex@contoso.com"]);
        assert!(matches!(&all[1], Entry::Target(Target { line: 3, .. })), "{all:?}");
        let lone_cr = entries(b"upn\ra@contoso.com\r\rb@contoso.com\r", None).unwrap();
        assert_eq!(
            lone_cr.last(),
            Some(&Entry::Target(Target { line: 4, identity: "b@contoso.com".into(), overrides: vec![], tenant: None }))
        );
        let quoted = entries(b"upn,note\na@contoso.com,\"two\nlines\"\nb@contoso.com,x\n", None).unwrap();
        assert_eq!(
            quoted.last(),
            Some(&Entry::Target(Target { line: 4, identity: "b@contoso.com".into(), overrides: vec![], tenant: None }))
        );
    }

    #[test]
    fn bad_rows_carry_their_line_and_reason() {
        let all = entries(b"upn\na@contoso.com\nnot-an-address\nA@CONTOSO.COM\n\xE9@contoso.com\n", None).unwrap();
        let problems: Vec<_> =
            all.iter().filter_map(|e| if let Entry::Problem(p) = e { Some(p) } else { None }).collect();
        assert_eq!(problems.len(), 3);
        assert_eq!(problems[0].line, 3);
        assert!(problems[0].message.contains("no '@'"));
        assert!(problems[1].message.contains("duplicate of line 2"), "{}", problems[1].message);
        assert!(problems[2].message.contains("Windows-1252"));
    }

    #[test]
    fn a_missing_column_lists_what_was_found() {
        let error = entries(b"Name,Department\nx,y\n", None).unwrap_err().to_string();
        assert!(error.contains("'Name', 'Department'") && error.contains("--column"), "{error}");
        let error = entries(b"", None).unwrap_err().to_string();
        assert!(error.contains("empty"), "{error}");
    }

    #[test]
    fn addresses() {
        assert!(check_address("o'brien@contoso.com").is_ok());
        assert!(check_address("jo_fabrikam.com#EXT#@contoso.onmicrosoft.com").is_ok());
        assert!(check_address("a@b").is_err());
        assert!(check_address("a b@c.com").is_err());
        assert!(check_address("a@b@c.com").is_err());
        for invisible in ["ad\u{200B}ele@contoso.com", "\u{FEFF}adele@contoso.com", "adele@contoso.com\u{202E}moc"] {
            let error = check_address(invisible).unwrap_err();
            assert!(error.contains("invisible character U+"), "{error}");
        }
    }
}
