//! What a run leaves for people: the report directory (`results.csv`, `rejected-rows.csv`,
//! `summary.json`), the log lines, the progress display, and the recap at the end. All of it is
//! built from the engine's events.
//!
//! Files are written under a `.partial` name and renamed when complete, so a reader never sees
//! half a report.

mod cells;
mod progress;
pub mod summary;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::engine::events::{Event, EventSink, Outcome, Row};
use crate::error::{Error, Result};
use crate::settings::Setting;
pub use cells::safe;
use progress::Progress;

pub const RESULTS_HEADER: [&str; 14] = [
    "line",
    "identity",
    "user_id",
    "setting",
    "before",
    "desired",
    "after",
    "outcome",
    "attempts",
    "error_code",
    "error_message",
    "request_id",
    "client_request_id",
    "duration_ms",
];

/// Counts kept while the run goes.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub by_setting: BTreeMap<Setting, BTreeMap<Outcome, u64>>,
    pub targets: u64,
    pub rejected_rows: u64,
    pub warnings: Vec<String>,
}

impl Tally {
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.by_setting.values().filter_map(|m| m.get(&outcome)).sum()
    }
}

type CsvFile = csv::Writer<BufWriter<File>>;

/// The report directory being written, and the live progress display.
pub struct Report {
    directory: PathBuf,
    results: Mutex<CsvFile>,
    rejected: Mutex<CsvFile>,
    tally: Mutex<Tally>,
    progress: Progress,
    write_error: Mutex<Option<String>>,
}

fn partial(directory: &Path, name: &str) -> PathBuf {
    directory.join(format!("{name}.partial"))
}

fn create_csv(directory: &Path, name: &str, header: &[&str]) -> Result<CsvFile> {
    let path = partial(directory, name);
    let file = File::create(&path).map_err(Error::io(format!("cannot create {}", path.display())))?;
    let mut writer = csv::Writer::from_writer(BufWriter::new(file));
    writer.write_record(header).map_err(|e| Error::Io { context: path.display().to_string(), source: e.into() })?;
    Ok(writer)
}

/// Creates the report directory; refuses one that already holds a report.
pub fn prepare_directory(directory: &Path) -> Result<()> {
    if directory.join("summary.json").exists() || directory.join("results.csv").exists() {
        return Err(Error::Config(format!(
            "--report-dir {}: it already holds a report; choose a new directory so that report is kept",
            directory.display()
        )));
    }
    std::fs::create_dir_all(directory)
        .map_err(Error::io(format!("cannot create the report directory {}", directory.display())))
}

impl Report {
    pub fn create(directory: &Path, quiet: bool) -> Result<Report> {
        prepare_directory(directory)?;
        Ok(Report {
            results: Mutex::new(create_csv(directory, "results.csv", &RESULTS_HEADER)?),
            rejected: Mutex::new(create_csv(directory, "rejected-rows.csv", &["line", "reason"])?),
            directory: directory.to_path_buf(),
            tally: Mutex::new(Tally::default()),
            progress: Progress::new(quiet),
            write_error: Mutex::new(None),
        })
    }

    pub fn directory(&self) -> &Path {
        &self.directory
    }

    pub fn tally(&self) -> Tally {
        self.tally.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn write_row(&self, row: &Row) {
        let fields = [
            row.line.to_string(),
            safe(&row.identity).into_owned(),
            row.user_id.clone(),
            row.setting.name().into(),
            row.before.map(|v| v.name()).unwrap_or_default().into(),
            row.desired.name().into(),
            row.after.map(|v| v.name()).unwrap_or_default().into(),
            row.outcome.name().into(),
            row.attempts.to_string(),
            safe(&row.error_code).into_owned(),
            safe(&row.error_message).into_owned(),
            row.request_id.clone(),
            row.client_request_id.clone(),
            row.duration_ms.to_string(),
        ];
        let result = self.results.lock().unwrap_or_else(|e| e.into_inner()).write_record(&fields);
        if let Err(error) = result {
            self.write_error.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(error.to_string());
        }
    }

    /// Flushes and renames the files into place; returns the tally.
    pub fn finish(&self) -> Result<Tally> {
        self.progress.finish();
        if let Some(error) = self.write_error.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return Err(Error::Io {
                context: format!("cannot write {}", self.directory.join("results.csv").display()),
                source: std::io::Error::other(error),
            });
        }
        for (writer, name) in [(&self.results, "results.csv"), (&self.rejected, "rejected-rows.csv")] {
            let mut writer = writer.lock().unwrap_or_else(|e| e.into_inner());
            writer.flush().map_err(Error::io(format!("cannot write {}", partial(&self.directory, name).display())))?;
            writer.get_ref().get_ref().sync_all().map_err(Error::io(format!("cannot sync {}", name)))?;
            std::fs::rename(partial(&self.directory, name), self.directory.join(name))
                .map_err(Error::io(format!("cannot move {} into place", name)))?;
        }
        Ok(self.tally())
    }
}

impl EventSink for Report {
    fn emit(&self, event: Event) {
        match event {
            Event::Started { total } => self.progress.started(total),
            Event::Warning(text) => {
                tracing::warn!("{text}");
                self.tally.lock().unwrap_or_else(|e| e.into_inner()).warnings.push(text);
            }
            Event::InputProblem(problem) => {
                tracing::warn!(line = problem.line, "row skipped: {}", problem.message);
                let line = problem.line.to_string();
                let reason = safe(&problem.message).into_owned();
                let _ = self
                    .rejected
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .write_record([line.as_str(), reason.as_str()]);
                self.tally.lock().unwrap_or_else(|e| e.into_inner()).rejected_rows += 1;
                self.progress.advance();
            }
            Event::Row(row) => {
                match row.outcome {
                    Outcome::Failed => {
                        tracing::warn!(identity = %row.identity, setting = %row.setting, code = %row.error_code, "failed: {}", row.error_message)
                    }
                    Outcome::Changed => {
                        tracing::debug!(identity = %row.identity, setting = %row.setting, "changed")
                    }
                    _ => {}
                }
                self.write_row(&row);
                self.progress.row(row.outcome == Outcome::Changed, row.outcome == Outcome::Failed);
                let mut tally = self.tally.lock().unwrap_or_else(|e| e.into_inner());
                *tally.by_setting.entry(row.setting).or_default().entry(row.outcome).or_default() += 1;
            }
            Event::TargetFinished => {
                self.tally.lock().unwrap_or_else(|e| e.into_inner()).targets += 1;
                self.progress.advance();
            }
        }
    }
}
