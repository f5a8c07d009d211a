//! The mailbox CSV of a run, surveyed once before the run starts: its rows, its content hash (the
//! run record keeps it, so a resume knows the file), the tenants its rows name, and which
//! identities repeat. The engine then streams it once more per tenant; nothing else reads it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use std::fs::File;
use std::io::{self, Read};

use super::duplicates::Duplicates;
use super::{Error, InputError, Problem, TargetReader, broken_file, open_once};

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
        let reader = open_once(path, column)?;
        if let Some(note) = reader.note() {
            tracing::info!("{}: {note}", path.display());
        }
        let survey = reader.survey(bytes);
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

    /// The rows shard `shard` of a run takes (one more pass over the file; the rows of a run
    /// without shards are [`Input::rows`]).
    pub fn rows_in_shard(&self, shard: Option<crate::run::shard::Shard>) -> Result<u64, Error> {
        let Some(shard) = shard else { return Ok(self.rows) };
        Ok(self.entries()?.filter(|entry| crate::run::scope::entry_in_shard(entry, shard)).count() as u64)
    }

    /// Streams the rows as targets and problems.
    pub fn entries(&self) -> Result<TargetReader, Error> {
        let mut reader = open_once(&self.path, self.column.as_deref())?;
        reader.duplicates = self.duplicates.clone();
        Ok(reader)
    }
}

/// Whether `path` can be read twice (a regular file), unlike a pipe, a FIFO, `<(…)` or `-`.
pub(crate) fn is_regular_file(path: &Path) -> bool {
    !is_stdin(path) && std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

/// `-`: the standard input, as the mailbox CSV (`Get-Mailbox … | ConvertTo-Csv | remediate …`).
pub(crate) fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// The largest input copied from a pipe.
pub(super) const MAX_STREAMED_INPUT: u64 = 16 * 1024 * 1024 * 1024;

/// A pipe, FIFO or `<(…)` can be read only once, and a run reads its input more than once (and a
/// resume reads it again later): copy it into `copy` first and work on the copy. A regular file
/// is used where it is.
pub(crate) fn settle_input(path: &Path, copy: &Path) -> Result<PathBuf, Error> {
    if is_regular_file(path) {
        return Ok(path.to_path_buf());
    }
    let (path, copy) = (path.to_path_buf(), copy.to_path_buf());
    let mut source: Box<dyn Read> = if is_stdin(&path) {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(&path).map_err(|source| InputError::Open { path: path.clone(), source })?)
    };
    let kept = |source| InputError::Copy { path: path.clone(), copy: copy.clone(), source };
    let mut target = crate::support::files::create_new_private(&copy).map_err(kept)?;
    let copied = io::copy(&mut (&mut source).take(MAX_STREAMED_INPUT + 1), &mut target)
        .map_err(|source| InputError::Read { path: path.clone(), source })?;
    if copied > MAX_STREAMED_INPUT {
        return Err(InputError::PipeTooLarge { path }.into());
    }
    target.sync_all().map_err(kept)?;
    Ok(copy)
}
