//! `run.json`: what a run was asked to do, kept in its report directory so `--resume` can carry
//! on with exactly the same input, profile and options, and refuse a different input file.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cli::TuningArgs;
use crate::error::{Error, Result};

pub const FILE_NAME: &str = "run.json";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRecord {
    pub version: u32,
    /// `plan`, `apply` or `rollback`.
    pub command: String,
    pub input: Option<PathBuf>,
    pub input_sha256: Option<String>,
    pub column: Option<String>,
    pub profile: Option<String>,
    pub sets: Vec<String>,
    /// For a rollback: the report directory of the apply it undoes.
    pub rollback_of: Option<PathBuf>,
    pub tenant_id: String,
    pub tuning: TuningArgs,
    pub started_at: String,
}

impl RunRecord {
    pub fn save(&self, directory: &Path) -> Result<()> {
        let path = directory.join(FILE_NAME);
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        std::fs::write(&path, text).map_err(Error::io(format!("cannot write {}", path.display())))
    }

    pub fn load(directory: &Path) -> Result<RunRecord> {
        let path = directory.join(FILE_NAME);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::Config(format!("--resume {}: no run to resume there ({}: {e})", directory.display(), path.display()))
        })?;
        serde_json::from_str(&text).map_err(|e| {
            Error::Config(format!("--resume {}: {} is not a run record: {e}", directory.display(), path.display()))
        })
    }
}

/// SHA-256 of a file, hex; read in blocks so a large CSV is never held whole.
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
