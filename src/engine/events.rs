//! What the engine tells its reporters: typed events, one per thing that happened. The progress
//! bar, the log, the results file and the summary each consume them; the engine knows none of them.

use crate::engine::Reason;
use crate::settings::{Setting, Value};
use crate::targets::Problem;

/// How one (target, setting) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Outcome {
    Changed,
    Compliant,
    WouldChange,
    /// Held at the value of an owned, unexpired exception (`--exceptions`), and at it.
    Excepted,
    Skipped,
    /// Rollback: the value is no longer what we set, so it was left alone.
    Conflict,
    Failed,
    /// `smtp-auth-effective`: the run's settings are done, but the device is not where the run
    /// wants it, and a layer the run does not change decides (the message names it and its fix).
    Blocked,
    /// Owed, and not finished when the run ended (interrupted, or stopped by an error that
    /// stops everything): a resume finishes it.
    Unfinished,
}

impl Outcome {
    pub(crate) const ALL: [Outcome; 9] = [
        Outcome::Changed,
        Outcome::Compliant,
        Outcome::WouldChange,
        Outcome::Excepted,
        Outcome::Skipped,
        Outcome::Conflict,
        Outcome::Failed,
        Outcome::Blocked,
        Outcome::Unfinished,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Outcome::Changed => "changed",
            Outcome::Compliant => "compliant",
            Outcome::WouldChange => "would-change",
            Outcome::Excepted => "excepted",
            Outcome::Skipped => "skipped",
            Outcome::Conflict => "conflict",
            Outcome::Failed => "failed",
            Outcome::Blocked => "blocked",
            Outcome::Unfinished => "unfinished",
        }
    }
}

/// One finished (target, setting): the report's row. Tenant settings have line 0 and identity
/// "(tenant)".
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Row {
    pub line: u64,
    pub identity: String,
    pub user_id: String,
    pub setting: Setting,
    pub before: Option<Value>,
    pub desired: Value,
    pub after: Option<Value>,
    pub outcome: Outcome,
    pub attempts: u32,
    pub error_code: Reason,
    /// Why it failed, or why it was skipped.
    pub error_message: String,
    pub request_id: String,
    pub client_request_id: String,
    pub duration_ms: u64,
    /// The tenant the target belongs to.
    #[serde(default)]
    pub tenant: String,
    /// The benchmark control the row's value implements, when the run's profile names one
    /// (`CIS 6.5.4`, `MS.EXO.5.1v1`).
    #[serde(default)]
    pub control: String,
}

#[derive(Clone, Debug)]
pub(crate) enum Event {
    /// The run begins; `total` is the number of CSV rows when known.
    Started { total: Option<u64> },
    /// Something the user must know before trusting the result.
    Warning(String),
    /// A standing note, the same every run (the Exchange route in use, the Basic-authentication
    /// timeline): kept in the summary, logged at info, never in cron's mail.
    Note(String),
    /// A CSV row that is not a target.
    InputProblem(Problem),
    /// Boxed: a row is many times the size of the other events.
    Row(Box<Row>),
    /// Every setting of one target is done.
    TargetFinished,
}

/// Receives the engine's events. Implementations must be cheap: they are called from workers.
pub(crate) trait EventSink: Send + Sync {
    fn emit(&self, event: Event);
}
