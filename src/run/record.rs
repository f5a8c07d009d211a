//! `run.json`: what a run was asked to do, kept in its report directory so `--resume` can carry
//! on with exactly the same targets: the same input (checked by content), profile, options,
//! exclusions (by content) and shard; for `--all-mailboxes`, the listing taken when the run began,
//! kept beside it.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::run::tuning::Tuning;

pub(crate) const FILE_NAME: &str = "run.json";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct RunRecord {
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
    /// The tenants' ids (GUIDs), one per lane (since version 3).
    #[serde(default)]
    pub tenant_ids: Vec<String>,
    /// The tenant's id when there is one (as typed before version 2; joined by commas for
    /// several tenants before version 3): read from older records, written for readers of them.
    #[serde(default)]
    pub tenant_id: String,
    pub tuning: Tuning,
    pub started_at: String,
    /// The exclusions in force: every entry, and the file they came from with its SHA-256.
    #[serde(default)]
    pub exclusions: Option<ExclusionRecord>,
    #[serde(default)]
    pub shard: Option<crate::run::shard::Shard>,
    /// The targets came from the tenant's listing (kept as `input` in the report directory).
    #[serde(default)]
    pub all_mailboxes: bool,
    /// Targets chosen by the SMTP AUTH sign-in log; the users it found are kept in the report
    /// directory (`smtp-auth-usage.csv`), so a resume works on the same set.
    #[serde(default)]
    pub smtp_auth_targeting: Option<SignInTargeting>,
    /// The SMTP AUTH layers the run opens or judges: its opt-in steps and what it was told of
    /// the tenant's Basic authentication.
    #[serde(default)]
    pub smtp_layers: SmtpLayers,
    /// The exceptions file the run holds to, with its SHA-256: a resume after it changed is refused.
    #[serde(default)]
    pub exceptions: Option<FileRecord>,
    /// The profile, when it is a file: its absolute path and SHA-256 (a resume after it changed is
    /// refused, and it is read from there whatever the directory a resume starts in).
    #[serde(default)]
    pub profile_file: Option<FileRecord>,
    /// Where the run's tenant, credentials, locks and budgets were: a resume (and the command the
    /// run prints to finish it) needs none of these flags again.
    #[serde(default)]
    pub connection: ConnectionRecord,
}

/// The connection flags of a run (never a secret: a secret file by its path), and its state
/// directory.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ConnectionRecord {
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub credential: Option<crate::cloud::auth::CredentialKind>,
    pub cloud: crate::cloud::CloudName,
    pub login_url: Option<String>,
    pub authority_host: Option<String>,
    pub graph_url: Option<String>,
    pub exchange_url: Option<String>,
    pub state_dir: Option<PathBuf>,
}

impl ConnectionRecord {
    /// What `session` was given (files and directories made absolute).
    pub(crate) fn of(session: &crate::cli::SessionArgs) -> ConnectionRecord {
        let absolute = |path: &PathBuf| std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
        let args = &session.connection;
        ConnectionRecord {
            tenant_id: args.tenant_id.clone(),
            client_id: args.client_id.clone(),
            client_secret_file: args.client_secret_file.as_ref().map(absolute),
            credential: args.credential,
            cloud: args.cloud,
            login_url: args.login_url.clone(),
            authority_host: args.authority_host.clone(),
            graph_url: args.graph_url.clone(),
            exchange_url: args.exchange_url.clone(),
            state_dir: session.state_dir.as_ref().map(absolute),
        }
    }

    /// `session`'s flags, each taken from the record where the command line (or the
    /// environment) left it out.
    pub(crate) fn fill(&self, session: &mut crate::cli::SessionArgs) {
        let args = &mut session.connection;
        let keep = |given: &mut Option<String>, kept: &Option<String>| {
            if given.is_none() {
                given.clone_from(kept);
            }
        };
        keep(&mut args.tenant_id, &self.tenant_id);
        keep(&mut args.client_id, &self.client_id);
        keep(&mut args.login_url, &self.login_url);
        keep(&mut args.authority_host, &self.authority_host);
        keep(&mut args.graph_url, &self.graph_url);
        keep(&mut args.exchange_url, &self.exchange_url);
        if args.client_secret_file.is_none() {
            args.client_secret_file.clone_from(&self.client_secret_file);
        }
        if args.credential.is_none() {
            args.credential = self.credential;
        }
        if args.cloud == crate::cloud::CloudName::default() {
            args.cloud = self.cloud;
        }
        if session.state_dir.is_none() {
            session.state_dir.clone_from(&self.state_dir);
        }
    }
}

/// A file a run read, by its absolute path and content.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct FileRecord {
    pub path: PathBuf,
    pub sha256: String,
}

impl FileRecord {
    /// `path` as it is now.
    pub(crate) fn of(path: &Path) -> Result<FileRecord> {
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        Ok(FileRecord { sha256: fingerprint(&path)?, path })
    }

    /// Refuses a file that changed or went since it was recorded; `what` names it for the message.
    pub(crate) fn unchanged(&self, what: &str, directory: &Path) -> Result<()> {
        if fingerprint(&self.path).ok().as_ref() == Some(&self.sha256) {
            return Ok(());
        }
        Err(Error::Usage(format!(
            "--resume {}: {what} {} changed (or went) since the run began; put it back as it was, or start a new run",
            directory.display(),
            self.path.display()
        )))
    }
}

/// `--basic-auth-policy`, `--ca-exclusion-group` (by the group's id) and `--basic-auth-smtp`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct SmtpLayers {
    pub basic_auth_policy: Option<String>,
    pub ca_exclusion_group: Option<String>,
    pub basic_auth_smtp: Option<bool>,
}

/// `--only-smtp-auth-seen` or `--spare-smtp-auth-seen`, and the window as typed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct SignInTargeting {
    pub mode: crate::run::scope::SignInMode,
    pub window: String,
}

/// The kinds of run: each command that talks to a tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RunKind {
    Plan,
    Audit,
    Apply,
    Rollback,
}

impl RunKind {
    /// The command's name, as typed and as stored in `run.json`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            RunKind::Plan => "plan",
            RunKind::Audit => "audit",
            RunKind::Apply => "apply",
            RunKind::Rollback => "rollback",
        }
    }

    /// Whether the run only reads, or changes.
    pub(crate) fn mode(self) -> crate::engine::Mode {
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
pub(crate) struct ExclusionRecord {
    pub file: Option<PathBuf>,
    pub file_sha256: Option<String>,
    pub entries: Vec<String>,
}

/// A run record that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("--resume {}: {problem}", .directory.display())]
pub struct RecordError {
    pub directory: PathBuf,
    pub problem: String,
}

/// The version of `run.json` this build writes.
pub(crate) const VERSION: u32 = 3;

impl RunRecord {
    /// The record of a run of `kind` starting now; the command fills in what it was asked.
    pub(crate) fn new(command: RunKind, tuning: Tuning) -> RunRecord {
        RunRecord {
            version: VERSION,
            command,
            input: None,
            input_sha256: None,
            column: None,
            profile: None,
            sets: Vec::new(),
            rollback_of: None,
            tenant_ids: Vec::new(),
            tenant_id: String::new(),
            tuning,
            started_at: crate::support::timestamp::now_rfc3339(),
            exclusions: None,
            shard: None,
            all_mailboxes: false,
            smtp_auth_targeting: None,
            smtp_layers: SmtpLayers::default(),
            exceptions: None,
            profile_file: None,
            connection: ConnectionRecord::default(),
        }
    }

    pub(crate) fn save(&self, directory: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        crate::support::files::write_atomic(directory, FILE_NAME, text.as_bytes())
            .map_err(Error::io(format!("cannot write {}", directory.join(FILE_NAME).display())))
    }

    pub(crate) fn load(directory: &Path) -> Result<RunRecord> {
        let path = directory.join(FILE_NAME);
        let text = crate::support::files::read_text_capped(&path, crate::support::files::cap::MEDIUM).map_err(|e| {
            RecordError {
                directory: directory.to_path_buf(),
                problem: format!("no run to resume there ({}: {e})", path.display()),
            }
        })?;
        let mut record: RunRecord = serde_json::from_str(&text).map_err(|e| RecordError {
            directory: directory.to_path_buf(),
            problem: format!("{} is not a run record: {e}", path.display()),
        })?;
        if record.tenant_ids.is_empty() {
            record.tenant_ids = record.tenant_id.split(',').map(str::to_string).filter(|id| !id.is_empty()).collect();
        }
        Ok(record)
    }

    /// Keeps the tenants the run signed in to.
    pub(crate) fn set_tenants(&mut self, ids: Vec<String>) {
        self.tenant_id = if ids.len() == 1 { ids[0].clone() } else { String::new() };
        self.tenant_ids = ids;
    }
}

/// SHA-256 of a file, hex; read in blocks so a large CSV is never held whole. (A pipe is copied
/// into the report directory before anything reads it: see `targets::settle_input`.)
pub fn fingerprint(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(Error::io(format!("cannot open {}", path.display())))?;
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut block = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut block).map_err(Error::io(format!("cannot read {}", path.display())))?;
        if n == 0 {
            break;
        }
        context.update(&block[..n]);
    }
    Ok(context.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect())
}
