//! What an earlier session of a run got done, read from its journal, for resuming it.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::format::Record;
use super::reader::read;
use crate::engine::events::Outcome;
use crate::error::Result;
use crate::settings::{Setting, Value};
use crate::support::stable_hash::fnv1a;

/// What an earlier session of this run got done, for resuming it.
#[derive(Debug, Default)]
pub(crate) struct Done {
    /// Settings finished per CSV line (a bit per setting).
    finished: HashMap<u64, Bits>,
    /// Writes that were about to happen when the run stopped: the value before each.
    pending: HashMap<(u64, Setting), Option<Value>>,
    rejected: HashSet<u64>,
    /// Directory users (a hash of the object id) the run has already worked on, and the line.
    users: HashMap<u64, u64>,
    /// Damaged places in the journal, skipped.
    pub damaged: u64,
}

/// A bit per setting: as wide as the catalog needs (a test holds it so).
type Bits = u32;
#[cfg(test)]
pub(super) const BITS: usize = Bits::BITS as usize;

pub(super) fn bit(setting: Setting) -> Bits {
    1 << (setting as u32)
}

/// A directory object id as a compact key.
pub(crate) fn user_key(user_id: &str) -> u64 {
    fnv1a(user_id.to_ascii_lowercase().as_bytes())
}

impl Done {
    /// Reads what the journal says was done. With `retry_failed`, failed rows count as not done.
    pub(crate) fn load(path: &Path, retry_failed: bool) -> Result<Done> {
        let mut done = Done::default();
        if !path.exists() {
            return Ok(done);
        }
        let mut records = read(path)?;
        for record in records.by_ref() {
            match record {
                Record::Intent { line, setting, before, .. } => {
                    done.pending.insert((line, setting), before);
                }
                Record::Row(row) => {
                    if !row.user_id.is_empty() && row.line > 0 {
                        done.users.entry(user_key(&row.user_id)).or_insert(row.line);
                    }
                    // A verdict that found the device blocked is judged again: it only reads.
                    let open = matches!(row.outcome, Outcome::Unfinished | Outcome::Blocked)
                        || retry_failed && row.outcome == Outcome::Failed;
                    if open {
                        done.finished.entry(row.line).and_modify(|bits| *bits &= !bit(row.setting));
                    } else {
                        *done.finished.entry(row.line).or_default() |= bit(row.setting);
                        done.pending.remove(&(row.line, row.setting));
                    }
                }
                Record::Rejected { line, .. } => {
                    done.rejected.insert(line);
                }
            }
        }
        done.damaged = records.damaged;
        Ok(done)
    }

    pub(crate) fn is_finished(&self, line: u64, setting: Setting) -> bool {
        self.finished.get(&line).is_some_and(|bits| bits & bit(setting) != 0)
    }

    /// The `before` of a write whose outcome was never recorded.
    pub(crate) fn pending_before(&self, line: u64, setting: Setting) -> Option<Option<Value>> {
        self.pending.get(&(line, setting)).copied()
    }

    pub(crate) fn was_rejected(&self, line: u64) -> bool {
        self.rejected.contains(&line)
    }

    pub(crate) fn finished_rows(&self) -> usize {
        self.finished.values().map(|bits| bits.count_ones() as usize).sum()
    }

    /// The directory users earlier sessions worked on (hash of the object id → line), handed
    /// over once to the run's ledger.
    pub(crate) fn take_users(&mut self) -> HashMap<u64, u64> {
        std::mem::take(&mut self.users)
    }
}
