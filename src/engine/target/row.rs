//! A target's rows: the blank row each (target, setting) starts as, and the ways a row ends
//! (failed, skipped, held at an exception, or left owed when the run must stop).

use crate::cloud::{CallError, RequestIds};
use crate::engine::Context;
use crate::engine::events::{Outcome, Row};
use crate::run::stop::StopReason;
use crate::settings::{Setting, Value};

use crate::engine::Reason;

/// A fresh row of `context`'s run: the control its profile implements goes with the value.
pub(super) fn row(context: &Context, line: u64, identity: &str, setting: Setting, desired: Value) -> Row {
    Row {
        line,
        identity: identity.to_string(),
        user_id: String::new(),
        setting,
        before: None,
        desired,
        after: None,
        outcome: Outcome::Skipped,
        attempts: 0,
        error_code: Reason::None,
        error_message: String::new(),
        request_id: String::new(),
        client_request_id: String::new(),
        duration_ms: 0,
        tenant: String::new(),
        control: context.desired.control_of(setting, desired).to_string(),
    }
}

impl Row {
    pub(super) fn failed(mut self, error: &CallError) -> Row {
        self.outcome = Outcome::Failed;
        self.attempts += error.attempts();
        self.error_code = Reason::of(error);
        self.error_message = match error {
            CallError::Refused { message, .. } => message.clone(),
            other => other.to_string(),
        };
        self.note_ids(&error.ids());
        self
    }

    pub(super) fn skipped(mut self, reason: Reason, message: &str) -> Row {
        self.outcome = Outcome::Skipped;
        self.error_code = reason;
        self.error_message = message.to_string();
        self
    }

    /// A row held at an exception's value: `excepted` where it is at it, and said either way.
    pub(super) fn note_exception(&mut self, exception: &crate::settings::exceptions::Exception) {
        if matches!(self.outcome, Outcome::Compliant | Outcome::Changed | Outcome::WouldChange) {
            if self.outcome == Outcome::Compliant {
                self.outcome = Outcome::Excepted;
            }
            self.error_code = Reason::Excepted;
            self.error_message = exception.describe();
        }
    }

    pub(super) fn note_ids(&mut self, ids: &RequestIds) {
        if !ids.client_request_id.is_empty() {
            self.client_request_id = ids.client_request_id.clone();
            self.request_id = ids.request_id.clone();
        }
    }
}

/// A row that failed because the service no longer takes the app's token stops the whole run
/// (every other request would fail the same way) and stays owed, for a resume with working
/// credentials; so does a row whose intent could not be journaled.
pub(super) fn concluded(context: &Context, mut row: Row) -> Row {
    if row.outcome == Outcome::Failed && row.error_code == Reason::AuthenticationFailed {
        context.stop.request(StopReason::Auth(row.error_message.clone()));
        row.outcome = Outcome::Unfinished;
    }
    row
}
