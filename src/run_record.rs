//! `run.json`: what a run was asked to do, kept in its report directory so `--resume` can carry
//! on with exactly the same targets: the same input (checked by content), profile, options,
//! exclusions (by content) and shard; for `--all-mailboxes`, the listing taken when the run began,
//! kept beside it.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cli::TuningArgs;
use crate::error::{Error, Result};

pub const FILE_NAME: &str = "run.json";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRecord {
    pub version: u32,
    /// What kind of run it was.
    pub command: RunKind,
    pub input: Option<PathBuf>,
    pub input_sha256: Option<String>,
    pub column: Option<String>,
    pub profile: Option<String>,
    pub sets: Vec<String>,
    /// For a rollback: the report directory of the apply it undoes.
    pub rollback_of: Option<PathBuf>,
    /// The tenant's id (a GUID) since version 2; as typed before.
    pub tenant_id: String,
    pub tuning: TuningArgs,
    pub started_at: String,
    /// The exclusions in force: every entry, and the file they came from with its SHA-256.
    #[serde(default)]
    pub exclusions: Option<ExclusionRecord>,
    #[serde(default)]
    pub shard: Option<(u32, u32)>,
    /// The targets came from the tenant's listing (kept as `input` in the report directory).
    #[serde(default)]
    pub all_mailboxes: bool,
}

/// The kinds of run: each command that talks to a tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    Plan,
    Audit,
    Apply,
    Rollback,
}

impl RunKind {
    /// The command's name, as typed and as stored in `run.json`.
    pub fn name(self) -> &'static str {
        match self {
            RunKind::Plan => "plan",
            RunKind::Audit => "audit",
            RunKind::Apply => "apply",
            RunKind::Rollback => "rollback",
        }
    }

    /// Whether the run only reads, or changes.
    pub fn mode(self) -> crate::engine::Mode {
        match self {
            RunKind::Plan | RunKind::Audit => crate::engine::Mode::Plan,
            RunKind::Apply | RunKind::Rollback => crate::engine::Mode::Apply,
        }
    }
}

impl std::fmt::Display for RunKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The exclusions of a run, as they were when it began.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ExclusionRecord {
    pub file: Option<PathBuf>,
    pub file_sha256: Option<String>,
    pub entries: Vec<String>,
}

/// The version of `run.json` this build writes.
pub const VERSION: u32 = 2;

impl RunRecord {
    pub fn save(&self, directory: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        crate::files::write_atomic(directory, FILE_NAME, text.as_bytes())
            .map_err(Error::io(format!("cannot write {}", directory.join(FILE_NAME).display())))
    }

    pub fn load(directory: &Path) -> Result<RunRecord> {
        let path = directory.join(FILE_NAME);
        let text = crate::files::read_text_capped(&path, crate::files::cap::MEDIUM).map_err(|e| {
            Error::Config(format!("--resume {}: no run to resume there ({}: {e})", directory.display(), path.display()))
        })?;
        serde_json::from_str(&text).map_err(|e| {
            Error::Config(format!("--resume {}: {} is not a run record: {e}", directory.display(), path.display()))
        })
    }
}

/// SHA-256 of a file, hex; read in blocks so a large CSV is never held whole. (A pipe is copied
/// into the report directory before anything reads it: see `targets::settle_input`.)
pub fn fingerprint(path: &Path) -> Result<String> {
    let mut file =
        std::fs::File::open(path).map_err(|e| Error::Config(format!("{}: cannot open it: {e}", path.display())))?;
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut block = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut block).map_err(|e| Error::Config(format!("{}: cannot read it: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        context.update(&block[..n]);
    }
    Ok(context.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect())
}
