//! The mailbox CSV of a run, surveyed once before the run starts: its rows, its content hash (the
//! run record keeps it, so a resume knows the file), the tenants its rows name, and which
//! identities repeat. The engine then streams it once more per tenant; nothing else reads it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::duplicates::Duplicates;
use super::{Error, Problem, TargetReader, broken_file, open_once};

/// What the first read of a file found.
pub(super) struct Survey {
    pub rows: u64,
    pub sha256: String,
    pub tenants: Option<BTreeSet<String>>,
    pub duplicates: Duplicates,
    pub broken: Option<Problem>,
}

/// A run's mailbox CSV, read through once.
#[derive(Debug)]
pub struct Input {
    pub path: PathBuf,
    pub column: Option<String>,
    /// Data rows, valid or not (the progress bar's total).
    pub rows: u64,
    /// The SHA-256 of the file's bytes, as hex.
    pub sha256: String,
    /// The tenants rows name in a `tenant` column (`""` for a row naming none); `None` when the
    /// file has no such column.
    pub tenants: Option<BTreeSet<String>>,
    duplicates: Duplicates,
}

impl Input {
    /// Reads `path` (a regular file: settle a pipe into one first) once through; refuses a file
    /// the reader cannot get through, naming the line, so a run never stops reading halfway.
    pub fn read(path: &Path, column: Option<&str>) -> Result<Input, Error> {
        let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let survey = open_once(path, column)?.survey(bytes);
        if let Some(problem) = &survey.broken {
            return Err(broken_file(path, problem));
        }
        Ok(Input {
            path: path.to_path_buf(),
            column: column.map(str::to_string),
            rows: survey.rows,
            sha256: survey.sha256,
            tenants: survey.tenants,
            duplicates: survey.duplicates,
        })
    }

    /// Streams the rows as targets and problems.
    pub fn entries(&self) -> Result<TargetReader, Error> {
        let mut reader = open_once(&self.path, self.column.as_deref())?;
        reader.duplicates = self.duplicates.clone();
        Ok(reader)
    }
}
