//! The errors a run can end with, and the exit codes cron and CI scripts rely on.
//!
//! One place maps an error to an exit code: [`Error::exit_code`]. The codes are the contract in
//! README ("Exit codes"); change them only with it.

/// Every code `remediate` exits with.
pub mod exit {
    /// Everything done, or already compliant.
    pub const SUCCESS: u8 = 0;
    /// Some rows failed or are unfinished, or a local failure (a full disk) came after work
    /// began: the report and the recap say which, and the command that finishes the run.
    pub const TARGETS_FAILED: u8 = 1;
    /// Nothing was changed: bad arguments, unreadable input, bad configuration, authentication
    /// refused.
    pub const NOTHING_DONE: u8 = 2;
    /// `plan --detailed-exitcode` (or `audit`): drift found, nothing changed.
    pub const DRIFT: u8 = 3;
    /// Interrupted: in-flight work was finished or recorded and the report written.
    pub const INTERRUPTED: u8 = 130;
    /// Standard output closed by its reader (`remediate profiles | head`): what was printed was
    /// cut short; what the command did is on disk. The status a shell gives for SIGPIPE.
    pub const OUTPUT_CLOSED: u8 = 141;
}

/// How a command that did its work ended, decided once from what it did (as nextest's final run
/// stats are); its exit code comes from [`FinalOutcome::exit_code`] alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FinalOutcome {
    /// Every (target, setting) has its final row, or every mailbox can send.
    Done,
    /// Done, and drift found (`plan --detailed-exitcode`, `audit`), or devices that cannot send
    /// (`diagnose`): nothing was changed.
    Drift,
    /// Rows failed or are unfinished, targets were never started or are mostly missing, or the
    /// journal changed under the run: the recap says which and how to finish.
    Unfinished,
    /// Nothing was changed: every failure was a permission the app lacks, or the service
    /// stopped taking the app's token before any change.
    NothingDone,
    /// Stopped by a signal after finishing or recording what was under way.
    Interrupted,
}

impl FinalOutcome {
    pub(crate) fn exit_code(self) -> u8 {
        match self {
            FinalOutcome::Done => exit::SUCCESS,
            FinalOutcome::Drift => exit::DRIFT,
            FinalOutcome::Unfinished => exit::TARGETS_FAILED,
            FinalOutcome::NothingDone => exit::NOTHING_DONE,
            FinalOutcome::Interrupted => exit::INTERRUPTED,
        }
    }

    /// Whether the run finished its work (a later sweep may take its report as a baseline).
    pub(crate) fn is_complete(self) -> bool {
        matches!(self, FinalOutcome::Done | FinalOutcome::Drift)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A mistake in the command line, said in the words of its flags: the commands compose these
    /// (each library module has its own typed error below).
    #[error("{0}")]
    Usage(String),
    /// The mailbox CSV cannot be used at all.
    #[error(transparent)]
    Input(#[from] crate::targets::InputError),
    #[error(transparent)]
    Profile(#[from] crate::settings::profile::ProfileError),
    #[error(transparent)]
    Exclusions(#[from] crate::run::scope::ExclusionError),
    #[error(transparent)]
    Certificate(#[from] crate::cloud::auth::CertificateError),
    #[error(transparent)]
    Record(#[from] crate::run::record::RecordError),
    /// The sign-in log cannot be read (no Entra ID P1/P2, no AuditLog.Read.All).
    #[error(transparent)]
    SignInLog(#[from] crate::sign_ins::SignInLogError),
    /// Another run holds the tenant's lock.
    #[error("{0}")]
    Busy(String),
    /// A report directory that cannot take this run, or an earlier report that cannot be read.
    #[error("{0}")]
    ReportDirectory(String),
    /// The identity platform refused our credentials, or the app lacks a permission it needs.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The report or another local file could not be written.
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    /// Something the tool could not go on from after work began (the service failed a tenant-wide
    /// step, the report could not be written); the message says how to finish.
    #[error("{0}")]
    Fatal(String),
    /// Stopped by a signal before any work began.
    #[error("{0}")]
    Interrupted(String),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_)
            | Error::Input(_)
            | Error::Profile(_)
            | Error::Exclusions(_)
            | Error::SignInLog(_)
            | Error::Certificate(_)
            | Error::Record(_)
            | Error::Busy(_)
            | Error::ReportDirectory(_)
            | Error::Auth(_)
            | Error::Io { .. } => exit::NOTHING_DONE,
            Error::Fatal(_) => exit::TARGETS_FAILED,
            Error::Interrupted(_) => exit::INTERRUPTED,
        }
    }

    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
