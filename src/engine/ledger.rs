//! The run's ledger: every (target, setting) a started target owes until its row is recorded,
//! so that nothing is silently dropped when a run is stopped (what is still owed at the end is
//! recorded as `unfinished`); and which directory user each line claimed, so that two rows naming
//! one user (a UPN and an alias) are one target, not two writers.

use std::collections::HashMap;
use std::sync::Mutex;

use super::events::Row;
use super::journal::user_key;
use crate::settings::{Setting, Value};

/// What a line wants of a user: the desired value of each per-target setting.
pub type Wants = [Option<Value>; 2];

/// A line's claim on a directory user.
#[derive(Clone, Copy, Debug)]
struct Claim {
    line: u64,
    /// `None` for a claim made by an earlier session of the run (its values are not known).
    wants: Option<Wants>,
}

/// The answer to a claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claimed {
    /// This line is the user's target.
    First,
    /// Another line names the same user and wants the same: that line does the work.
    Same { line: u64 },
    /// Another line names the same user and wants something else.
    Disagrees { line: u64, theirs: Wants },
}

#[derive(Debug, Default)]
pub struct Ledger {
    owed: Mutex<HashMap<(u64, Setting), Row>>,
    users: Mutex<HashMap<u64, Claim>>,
}

impl Ledger {
    /// A ledger that knows the users earlier sessions of the run worked on (user key → line).
    pub fn new(earlier: &HashMap<u64, u64>) -> Ledger {
        let users = earlier.iter().map(|(&user, &line)| (user, Claim { line, wants: None })).collect();
        Ledger { owed: Mutex::default(), users: Mutex::new(users) }
    }

    /// Notes a row the run now owes (as it would be reported if never finished).
    pub fn owe(&self, row: Row) {
        self.owed.lock().unwrap_or_else(|e| e.into_inner()).insert((row.line, row.setting), row);
    }

    /// Notes that the row of (line, setting) is recorded.
    pub fn paid(&self, line: u64, setting: Setting) {
        self.owed.lock().unwrap_or_else(|e| e.into_inner()).remove(&(line, setting));
    }

    /// Everything still owed, in line order; the ledger is left empty.
    pub fn outstanding(&self) -> Vec<Row> {
        let mut rows: Vec<Row> =
            self.owed.lock().unwrap_or_else(|e| e.into_inner()).drain().map(|(_, row)| row).collect();
        rows.sort_by_key(|row| (row.line, row.setting));
        rows
    }

    /// Claims `user_id` for `line`, which wants `wants` of it.
    pub fn claim(&self, user_id: &str, line: u64, wants: Wants) -> Claimed {
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        let claim = *users.entry(user_key(user_id)).or_insert(Claim { line, wants: Some(wants) });
        match claim.wants {
            _ if claim.line == line => Claimed::First,
            Some(theirs) if theirs != wants => Claimed::Disagrees { line: claim.line, theirs },
            _ => Claimed::Same { line: claim.line },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_belongs_to_the_first_line_that_claims_it() {
        let ledger = Ledger::new(&HashMap::from([(user_key("EARLIER"), 3)]));
        let on = [Some(Value::Enabled), None];
        assert_eq!(ledger.claim("u1", 10, on), Claimed::First);
        assert_eq!(ledger.claim("u1", 10, on), Claimed::First, "the same line again (a resume)");
        assert_eq!(ledger.claim("U1", 12, on), Claimed::Same { line: 10 }, "object ids in any letter case");
        let off = [Some(Value::Disabled), None];
        assert_eq!(ledger.claim("u1", 14, off), Claimed::Disagrees { line: 10, theirs: on });
        assert_eq!(ledger.claim("earlier", 5, off), Claimed::Same { line: 3 });
        assert_eq!(ledger.claim("earlier", 3, off), Claimed::First);
    }
}
