//! What a run leaves for people: the report directory (`results.csv`, `rejected-rows.csv`,
//! `summary.json`), the log lines, the progress display, and the recap at the end. All of it is
//! built from the engine's events.
//!
//! Files are written under a `.partial` name and renamed when complete, so a reader never sees
//! half a report (see [`crate::support::files`]), for the owner alone.

pub(crate) mod baseline;
mod cells;
mod columns;
pub(crate) mod diagnosis;
pub(crate) mod drift;
pub(crate) mod html;
mod progress;
pub(crate) mod story;
pub(crate) mod summary;
pub(crate) mod usage;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::engine::Reason;
use crate::engine::events::{Event, EventSink, Outcome, Row};
use crate::error::{Error, Result};
use crate::settings::Setting;
pub(crate) use cells::safe;
use progress::Progress;

/// What stdout carries when a run ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// The story and the recap, for a person.
    Text,
    /// The summary as one JSON object, for a script.
    Json,
}

/// Counts kept while the run goes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tally {
    pub by_setting: BTreeMap<Setting, BTreeMap<Outcome, u64>>,
    pub by_tenant: BTreeMap<String, BTreeMap<Outcome, u64>>,
    pub targets: u64,
    pub rejected_rows: u64,
    pub warnings: Vec<String>,
    /// Standing notes, the same every run.
    pub notes: Vec<String>,
    /// Writes whose intent is in the journal with no row that says how they ended.
    pub pending_writes: u64,
    /// Damaged places in the journal, skipped.
    pub damaged_records: u64,
    /// Targets whose user the directory does not hold (looked up by UPN, mail and proxy address).
    pub not_found: u64,
    /// Failed rows the service refused for want of a permission or role.
    pub refused: u64,
}

impl Tally {
    pub(crate) fn count(&self, outcome: Outcome) -> u64 {
        self.by_setting.values().filter_map(|m| m.get(&outcome)).sum()
    }
}

type CsvFile = csv::Writer<BufWriter<File>>;

/// The live side of a run's report: progress, log lines and warnings. The files are rendered
/// from the journal at the end ([`render`]).
pub(crate) struct Report {
    live: Mutex<Tally>,
    progress: Progress,
    /// Bad CSV rows seen this session: the first few are logged, all are in rejected-rows.csv.
    input_problems: AtomicU64,
    /// Failed rows this session: the first few are logged, the end of the run groups them all.
    failures: AtomicU64,
}

/// Bad rows logged one by one before the log only counts them.
const LOGGED_INPUT_PROBLEMS: u64 = 10;

/// Failed rows logged as warnings before the rest go to the debug log: a missing permission fails
/// every row alike, and a screen of the same line hides the one that says what to grant.
const LOGGED_FAILURES: u64 = 5;

pub(crate) fn create_csv(directory: &Path, name: &str, header: &[&str]) -> Result<CsvFile> {
    let path = crate::support::files::partial_path(directory, name);
    let file = crate::support::files::create_partial(directory, name)
        .map_err(Error::io(format!("cannot create {}", path.display())))?;
    // The header is written here, once, even for a file with no rows; serde must not add its own.
    let mut writer = csv::WriterBuilder::new().has_headers(false).from_writer(BufWriter::new(file));
    writer.write_record(header).map_err(|e| Error::Io { context: path.display().to_string(), source: e.into() })?;
    Ok(writer)
}

pub(crate) fn close_csv(directory: &Path, name: &str, writer: CsvFile) -> Result<()> {
    let context = || format!("cannot write {}", crate::support::files::partial_path(directory, name).display());
    let file = writer.into_inner().map_err(|e| Error::Io { context: context(), source: e.into_error() })?;
    let file = file.into_inner().map_err(|e| Error::Io { context: context(), source: e.into_error() })?;
    crate::support::files::commit_partial(directory, name, file).map_err(Error::io(context()))
}

/// Refuses a report directory that already holds a report (checked before anything happens).
pub(crate) fn check_directory(directory: &Path) -> Result<()> {
    if directory.join("summary.json").exists() || directory.join(crate::engine::journal::FILE_NAME).exists() {
        return Err(Error::ReportDirectory(format!(
            "--report-dir {}: it already holds a report; choose a new directory so that report is kept (or --resume it)",
            directory.display()
        )));
    }
    Ok(())
}

/// Creates the report directory, for the owner alone, when the run first writes to it: a run
/// refused for its arguments or its credentials leaves no empty directory behind.
pub(crate) fn ensure_directory(directory: &Path) -> Result<()> {
    crate::support::files::create_private_dir(directory)
        .map_err(Error::io(format!("cannot create the report directory {}", directory.display())))
}

/// Writes one row of `results.csv`, its columns in [`Row`]'s order.
fn write_row<W: std::io::Write>(results: &mut csv::Writer<W>, row: &Row) -> csv::Result<()> {
    results.serialize(neutralised(row))
}

/// A row as `results.csv` holds it: every text that came from a user's file or a server made safe
/// for a spreadsheet ([`safe`]); the journal keeps it as it came.
fn neutralised(row: &Row) -> Row {
    let cell = |text: &str| safe(text).into_owned();
    Row {
        identity: cell(&row.identity),
        user_id: cell(&row.user_id),
        error_code: match &row.error_code {
            Reason::Service(code) => Reason::Service(cell(code)),
            ours => ours.clone(),
        },
        error_message: cell(&row.error_message),
        request_id: cell(&row.request_id),
        client_request_id: cell(&row.client_request_id),
        tenant: cell(&row.tenant),
        control: cell(&row.control),
        ..row.clone()
    }
}

/// The identities of `results.csv` that an exclusion left alone, in any session of the run.
pub(crate) fn excluded_identities(directory: &Path) -> Vec<String> {
    let Ok(mut reader) = csv::Reader::from_path(directory.join("results.csv")) else { return Vec::new() };
    let rows = reader.deserialize::<Row>().map_while(std::result::Result::ok);
    rows.filter(|row| row.error_code == Reason::Excluded).map(|row| row.identity).collect()
}

/// Rows a later record can replace: a failed row retried (`--retry-failed`), an unfinished one
/// that a resume finished, or a verdict that found the device blocked, judged again.
fn replaceable(outcome: Outcome) -> bool {
    matches!(outcome, Outcome::Failed | Outcome::Unfinished | Outcome::Blocked)
}

/// For every (line, setting) whose row a later row replaced, the index of the record that counts.
fn latest_rows(journal: &Path) -> Result<HashMap<(u64, Setting), usize>> {
    use crate::engine::journal::{self, Record};
    let mut latest = HashMap::new();
    for (index, record) in journal::read(journal)?.enumerate() {
        if let Record::Row(row) = record {
            let key = (row.line, row.setting);
            if replaceable(row.outcome) || latest.contains_key(&key) {
                latest.insert(key, index);
            }
        }
    }
    Ok(latest)
}

/// Writes `results.csv` and `rejected-rows.csv` from the journal, each to a temporary file then
/// renamed into place, and returns the tally of the whole run (every session of it). Each
/// (target, setting) has one row: the last the journal holds for it.
pub(crate) fn render(directory: &Path) -> Result<Tally> {
    use crate::engine::journal::{self, Record};
    let path = directory.join(journal::FILE_NAME);
    let latest = latest_rows(&path)?;
    let mut results = create_csv(directory, "results.csv", columns::results_header())?;
    let mut rejected = create_csv(directory, "rejected-rows.csv", &["line", "reason"])?;
    let mut tally = Tally::default();
    // Distinct lines as bits: a million targets in 125 kB.
    let mut targets = LineSet::default();
    let mut not_found = LineSet::default();
    let mut rejected_lines = LineSet::default();
    let mut pending: HashSet<(u64, Setting)> = HashSet::new();
    let io = |e: csv::Error| Error::Io {
        context: format!("cannot write the report in {}", directory.display()),
        source: e.into(),
    };
    let mut records = journal::read(&path)?;
    for (index, record) in records.by_ref().enumerate() {
        match record {
            Record::Row(row) => {
                if !replaceable(row.outcome) {
                    pending.remove(&(row.line, row.setting));
                }
                if latest.get(&(row.line, row.setting)).is_some_and(|&last| last != index) {
                    continue;
                }
                write_row(&mut results, &row).map_err(io)?;
                if row.outcome == Outcome::Failed && row.error_code.is_permission_refusal() {
                    tally.refused += 1;
                }
                if row.line > 0 {
                    targets.insert(row.line);
                    if row.error_code == Reason::NotFound {
                        not_found.insert(row.line);
                    }
                }
                *tally.by_setting.entry(row.setting).or_default().entry(row.outcome).or_default() += 1;
                *tally.by_tenant.entry(row.tenant).or_default().entry(row.outcome).or_default() += 1;
            }
            Record::Rejected { line, reason } => {
                if rejected_lines.insert(line) {
                    rejected.write_record([line.to_string(), safe(&reason).into_owned()]).map_err(io)?;
                }
            }
            Record::Intent { line, setting, .. } => {
                pending.insert((line, setting));
            }
        }
    }
    tally.targets = targets.count;
    tally.not_found = not_found.count;
    tally.rejected_rows = rejected_lines.count;
    tally.pending_writes = pending.len() as u64;
    tally.damaged_records = records.damaged;
    close_csv(directory, "results.csv", results)?;
    close_csv(directory, "rejected-rows.csv", rejected)?;
    Ok(tally)
}

/// A set of line numbers, one bit each.
#[derive(Default)]
struct LineSet {
    bits: Vec<u64>,
    count: u64,
}

impl LineSet {
    /// Adds `line`; false when it was already there.
    fn insert(&mut self, line: u64) -> bool {
        let (word, bit) = ((line / 64) as usize, 1u64 << (line % 64));
        if self.bits.len() <= word {
            self.bits.resize(word + 1, 0);
        }
        let new = self.bits[word] & bit == 0;
        self.bits[word] |= bit;
        self.count += u64::from(new);
        new
    }
}

impl Report {
    pub(crate) fn create(quiet: bool) -> Report {
        Report {
            live: Mutex::new(Tally::default()),
            progress: Progress::new(quiet),
            input_problems: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    /// Bad CSV rows seen this session.
    pub(crate) fn input_problems(&self) -> u64 {
        self.input_problems.load(Ordering::Relaxed)
    }

    /// Stops the progress display; returns what this session said and counted: its warnings and
    /// notes, and its rows by setting and outcome (what the run knows, whatever the journal says).
    pub(crate) fn finish(&self) -> Tally {
        self.progress.finish();
        self.live.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl EventSink for Report {
    fn emit(&self, event: Event) {
        match event {
            Event::Started { total } => self.progress.started(total),
            Event::Note(text) => {
                tracing::info!("{text}");
                let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
                if !live.notes.contains(&text) {
                    live.notes.push(text);
                }
            }
            Event::Warning(text) => {
                tracing::warn!("{text}");
                let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
                if !live.warnings.contains(&text) {
                    live.warnings.push(text);
                }
            }
            Event::InputProblem(problem) => {
                let seen = self.input_problems.fetch_add(1, Ordering::Relaxed) + 1;
                if seen <= LOGGED_INPUT_PROBLEMS {
                    tracing::warn!(line = problem.line, "row skipped: {}", problem.message);
                }
                if seen == LOGGED_INPUT_PROBLEMS {
                    tracing::warn!("further bad rows are counted, not logged: every one is in rejected-rows.csv");
                }
                self.progress.advance();
            }
            Event::Row(row) => {
                {
                    let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
                    *live.by_setting.entry(row.setting).or_default().entry(row.outcome).or_default() += 1;
                }
                match row.outcome {
                    Outcome::Failed => {
                        let seen = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
                        if seen <= LOGGED_FAILURES {
                            tracing::warn!(identity = %row.identity, setting = %row.setting, code = %row.error_code, "failed: {}", row.error_message);
                        } else {
                            tracing::debug!(identity = %row.identity, setting = %row.setting, code = %row.error_code, "failed: {}", row.error_message);
                        }
                        if seen == LOGGED_FAILURES {
                            tracing::warn!(
                                "further failures go to the debug log (-v); the end of the run groups them all by cause, and results.csv has each"
                            );
                        }
                    }
                    Outcome::Conflict => {
                        tracing::warn!(identity = %row.identity, setting = %row.setting, "conflict: {}", row.error_message)
                    }
                    Outcome::Changed => tracing::debug!(identity = %row.identity, setting = %row.setting, "changed"),
                    _ => {}
                }
                self.progress.row(row.outcome == Outcome::Changed, row.outcome == Outcome::Failed);
            }
            Event::TargetFinished => self.progress.advance(),
        }
    }
}

#[cfg(test)]
mod tests;
