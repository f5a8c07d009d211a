//! The run's ledger: every (target, setting) a started target owes until its row is recorded,
//! so that nothing is silently dropped when a run is stopped (what is still owed at the end is
//! recorded as `unfinished`); and which directory user each line claimed, so that two rows naming
//! one user (a UPN and an alias) are one target, not two writers.

use std::collections::HashMap;
use std::sync::Mutex;

use super::events::Row;
use super::journal::user_key;
use crate::settings::{Setting, Value};

/// What a line wants of a user: the desired value of each setting a row may give its own value for
/// ([`Setting::PER_ROW`], in its order).
pub(super) type Wants = [Option<Value>; Setting::PER_ROW.len()];

/// The answer to a claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Claimed {
    /// This line is the user's target.
    First,
    /// Another line names the same user and wants the same: that line does the work. Its
    /// number is known unless it was claimed long ago in a large run (only the user is kept).
    Same { line: Option<u64> },
    /// Another line names the same user and wants something else.
    Disagrees { line: Option<u64>, theirs: Wants },
}

/// How many recent claims keep their line before they are folded into the compact set.
const RECENT: usize = 8 * 1024;

/// Which directory users lines have claimed, in little memory: a million users take 8 MB. The
/// latest claims keep their line in a map; older ones are folded into a sorted vector of user
/// keys. Lines that carry values of their own (per-row CSV columns) keep them, to tell rows that
/// disagree.
#[derive(Debug, Default)]
struct Claims {
    folded: Vec<u64>,
    recent: HashMap<u64, u64>,
    own_values: HashMap<u64, (u64, Wants)>,
    /// Users earlier sessions of the run worked on, and the line that did.
    earlier: HashMap<u64, u64>,
}

impl Claims {
    /// The line that claimed `user`, if one did (`Some(None)`: a line whose number is forgotten).
    fn holder(&self, user: u64) -> Option<Option<u64>> {
        if let Some(&(line, _)) = self.own_values.get(&user) {
            return Some(Some(line));
        }
        if let Some(&line) = self.recent.get(&user).or_else(|| self.earlier.get(&user)) {
            return Some(Some(line));
        }
        self.folded.binary_search(&user).ok().map(|_| None)
    }

    fn insert(&mut self, user: u64, line: u64, own: Option<Wants>) {
        if let Some(wants) = own {
            self.own_values.insert(user, (line, wants));
        }
        self.recent.insert(user, line);
        if self.recent.len() >= RECENT {
            self.fold();
        }
    }

    /// Moves the recent claims into the sorted vector, in place.
    fn fold(&mut self) {
        let mut keys: Vec<u64> = self.recent.drain().map(|(user, _)| user).collect();
        keys.sort_unstable();
        let old = self.folded.len();
        self.folded.reserve_exact(keys.len());
        self.folded.extend_from_slice(&keys);
        // Merge the two sorted runs from the back, so no second copy is ever made.
        let (mut i, mut j, mut at) = (old, keys.len(), self.folded.len());
        while j > 0 {
            at -= 1;
            if i > 0 && self.folded[i - 1] > keys[j - 1] {
                self.folded[at] = self.folded[i - 1];
                i -= 1;
            } else {
                self.folded[at] = keys[j - 1];
                j -= 1;
            }
        }
        self.recent.shrink_to(RECENT);
    }
}

#[derive(Debug, Default)]
pub(crate) struct Ledger {
    owed: Mutex<HashMap<(u64, Setting), Row>>,
    claims: Mutex<Claims>,
    /// What a line without values of its own wants: the run's desired state.
    run_wants: Wants,
}

impl Ledger {
    /// A ledger that knows the users earlier sessions of the run worked on (user key → line),
    /// for a run whose lines want `run_wants` unless they say otherwise.
    pub(crate) fn new(earlier: HashMap<u64, u64>, run_wants: Wants) -> Ledger {
        let claims = Claims { earlier, ..Claims::default() };
        Ledger { owed: Mutex::default(), claims: Mutex::new(claims), run_wants }
    }

    /// Notes a row the run now owes (as it would be reported if never finished).
    pub(crate) fn owe(&self, row: Row) {
        self.owed.lock().unwrap_or_else(|e| e.into_inner()).insert((row.line, row.setting), row);
    }

    /// Notes that the row of (line, setting) is recorded.
    pub(crate) fn paid(&self, line: u64, setting: Setting) {
        self.owed.lock().unwrap_or_else(|e| e.into_inner()).remove(&(line, setting));
    }

    /// Everything still owed, in line order; the ledger is left empty.
    pub(crate) fn outstanding(&self) -> Vec<Row> {
        let mut rows: Vec<Row> =
            self.owed.lock().unwrap_or_else(|e| e.into_inner()).drain().map(|(_, row)| row).collect();
        rows.sort_by_key(|row| (row.line, row.setting));
        rows
    }

    /// Claims `user_id` for `line`, which wants `wants` of it (its own values when `own`).
    pub(crate) fn claim(&self, user_id: &str, line: u64, wants: Wants, own: bool) -> Claimed {
        let user = user_key(user_id);
        let mut claims = self.claims.lock().unwrap_or_else(|e| e.into_inner());
        let Some(holder) = claims.holder(user) else {
            claims.insert(user, line, own.then_some(wants));
            return Claimed::First;
        };
        if holder == Some(line) {
            return Claimed::First;
        }
        if claims.earlier.get(&user).is_some_and(|&earlier| Some(earlier) == holder) {
            // An earlier session's line: its values are not known here.
            return Claimed::Same { line: holder };
        }
        let theirs = claims.own_values.get(&user).map_or(self.run_wants, |&(_, wants)| wants);
        if theirs == wants { Claimed::Same { line: holder } } else { Claimed::Disagrees { line: holder, theirs } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_belongs_to_the_first_line_that_claims_it() {
        let on = [Some(Value::Enabled), None];
        let ledger = Ledger::new(HashMap::from([(user_key("EARLIER"), 3)]), on);
        assert_eq!(ledger.claim("u1", 10, on, false), Claimed::First);
        assert_eq!(ledger.claim("u1", 10, on, false), Claimed::First, "the same line again (a resume)");
        assert_eq!(ledger.claim("U1", 12, on, false), Claimed::Same { line: Some(10) }, "ids in any letter case");
        let off = [Some(Value::Disabled), None];
        assert_eq!(ledger.claim("u1", 14, off, true), Claimed::Disagrees { line: Some(10), theirs: on });
        assert_eq!(ledger.claim("earlier", 5, off, true), Claimed::Same { line: Some(3) });
        assert_eq!(ledger.claim("earlier", 3, off, true), Claimed::First);
        assert_eq!(ledger.claim("u2", 20, off, true), Claimed::First);
        assert_eq!(ledger.claim("u2", 21, on, false), Claimed::Disagrees { line: Some(20), theirs: off });
    }

    #[test]
    fn many_claims_fold_into_a_compact_set_and_are_still_found() {
        let on = [Some(Value::Enabled), None];
        let ledger = Ledger::new(HashMap::new(), on);
        let users = 3 * RECENT + 17;
        for i in 0..users {
            assert_eq!(ledger.claim(&format!("user-{i}"), i as u64 + 2, on, false), Claimed::First);
        }
        let claims = ledger.claims.lock().unwrap();
        assert!(claims.folded.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
        assert_eq!(claims.folded.len() + claims.recent.len(), users);
        drop(claims);
        assert_eq!(ledger.claim("user-0", 999_999, on, false), Claimed::Same { line: None }, "folded: line forgotten");
        let last = format!("user-{}", users - 1);
        assert_eq!(ledger.claim(&last, 999_999, on, false), Claimed::Same { line: Some(users as u64 + 1) });
    }
}
