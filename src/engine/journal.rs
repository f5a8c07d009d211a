//! `journal.jsonl`: the append-only record of a run. Before each write an `intent` (target,
//! setting, before, desired); after every (target, setting) its `row`; and every CSV row that was
//! not a target. The report is rendered from it, and resume and rollback read it.
//!
//! A record reaches the disk (write, then `fdatasync`) before the run counts it done. Records are
//! written by one thread in groups: everything queued while the previous group was being synced
//! goes out in the next write and shares one sync, so with many workers a sync covers many rows.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::events::Row;
use crate::error::{Error, Result};
use crate::settings::{Setting, Value};

pub const FILE_NAME: &str = "journal.jsonl";

/// One line of the journal.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "kebab-case")]
pub enum Record {
    /// About to write `desired` over `before`.
    Intent { line: u64, identity: String, user_id: String, setting: Setting, before: Option<Value>, desired: Value },
    /// A finished (target, setting).
    Row(Row),
    /// A CSV row that is not a target.
    Rejected { line: u64, reason: String },
}

type Pending = (Vec<u8>, oneshot::Sender<std::io::Result<()>>);

/// Appends records durably, in groups.
pub struct Journal {
    sender: mpsc::UnboundedSender<Pending>,
    path: PathBuf,
    pub records: Arc<AtomicU64>,
    pub syncs: Arc<AtomicU64>,
}

impl Journal {
    /// Opens (or creates) the journal in `directory` for appending.
    pub fn open(directory: &Path) -> Result<Journal> {
        let path = directory.join(FILE_NAME);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(Error::io(format!("cannot open the journal {}", path.display())))?;
        // A crash can leave a torn last line; start ours on a fresh one.
        if file.metadata().map(|m| m.len() > 0).unwrap_or(false) && !ends_with_newline(&path) {
            file.write_all(b"\n").map_err(Error::io("cannot write the journal"))?;
        }
        let (sender, receiver) = mpsc::unbounded_channel();
        let records = Arc::new(AtomicU64::new(0));
        let syncs = Arc::new(AtomicU64::new(0));
        let (r, s) = (records.clone(), syncs.clone());
        std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || write_groups(file, receiver, &r, &s))
            .map_err(Error::io("cannot start the journal writer"))?;
        Ok(Journal { sender, path, records, syncs })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends a record and returns once it is on disk.
    pub async fn append(&self, record: &Record) -> Result<()> {
        let mut line = serde_json::to_vec(record).unwrap_or_default();
        line.push(b'\n');
        let (done, wait) = oneshot::channel();
        let gone = || Error::Fatal(format!("the journal writer for {} stopped", self.path.display()));
        self.sender.send((line, done)).map_err(|_| gone())?;
        wait.await.map_err(|_| gone())?.map_err(Error::io(format!("cannot write the journal {}", self.path.display())))
    }
}

fn ends_with_newline(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let mut last = [0u8; 1];
    File::open(path).and_then(|mut f| f.seek(SeekFrom::End(-1)).and_then(|_| f.read_exact(&mut last))).is_ok()
        && last[0] == b'\n'
}

fn write_groups(
    mut file: File,
    mut receiver: mpsc::UnboundedReceiver<Pending>,
    records: &AtomicU64,
    syncs: &AtomicU64,
) {
    while let Some(first) = receiver.blocking_recv() {
        let mut group = vec![first];
        while let Ok(more) = receiver.try_recv() {
            group.push(more);
        }
        let bytes: Vec<u8> = group.iter().flat_map(|(line, _)| line.iter().copied()).collect();
        let result = file.write_all(&bytes).and_then(|_| file.sync_data());
        records.fetch_add(group.len() as u64, Ordering::Relaxed);
        syncs.fetch_add(1, Ordering::Relaxed);
        for (_, done) in group {
            let _ = done.send(result.as_ref().map(|_| ()).map_err(|e| std::io::Error::new(e.kind(), e.to_string())));
        }
    }
}

/// Reads a journal, skipping lines that do not parse (a torn last line after a crash).
pub fn read(path: &Path) -> Result<impl Iterator<Item = Record>> {
    let file = File::open(path).map_err(Error::io(format!("cannot read the journal {}", path.display())))?;
    Ok(BufReader::new(file).lines().map_while(|line| line.ok()).filter_map(|line| serde_json::from_str(&line).ok()))
}

/// What an earlier session of this run got done, for resuming it.
#[derive(Debug, Default)]
pub struct Done {
    /// Settings finished per CSV line (a bit per setting).
    finished: HashMap<u64, u8>,
    /// Writes that were about to happen when the run stopped: the value before each.
    pending: HashMap<(u64, Setting), Option<Value>>,
    rejected: HashSet<u64>,
}

fn bit(setting: Setting) -> u8 {
    1 << (setting as u8)
}

impl Done {
    pub fn load(path: &Path) -> Result<Done> {
        let mut done = Done::default();
        if !path.exists() {
            return Ok(done);
        }
        for record in read(path)? {
            match record {
                Record::Intent { line, setting, before, .. } => {
                    done.pending.insert((line, setting), before);
                }
                Record::Row(row) => {
                    *done.finished.entry(row.line).or_default() |= bit(row.setting);
                    done.pending.remove(&(row.line, row.setting));
                }
                Record::Rejected { line, .. } => {
                    done.rejected.insert(line);
                }
            }
        }
        Ok(done)
    }

    pub fn is_finished(&self, line: u64, setting: Setting) -> bool {
        self.finished.get(&line).is_some_and(|bits| bits & bit(setting) != 0)
    }

    /// The `before` of a write whose outcome was never recorded.
    pub fn pending_before(&self, line: u64, setting: Setting) -> Option<Option<Value>> {
        self.pending.get(&(line, setting)).copied()
    }

    pub fn was_rejected(&self, line: u64) -> bool {
        self.rejected.contains(&line)
    }

    pub fn finished_rows(&self) -> usize {
        self.finished.values().map(|bits| bits.count_ones() as usize).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::events::Outcome;

    fn row(line: u64, setting: Setting) -> Row {
        Row {
            line,
            identity: format!("u{line}@contoso.com"),
            user_id: String::new(),
            setting,
            before: Some(Value::Disabled),
            desired: Value::Enabled,
            after: Some(Value::Enabled),
            outcome: Outcome::Changed,
            attempts: 1,
            error_code: String::new(),
            error_message: String::new(),
            request_id: String::new(),
            client_request_id: String::new(),
            duration_ms: 1,
            tenant: String::new(),
        }
    }

    #[tokio::test]
    async fn records_survive_a_torn_line_and_tell_what_was_done() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        let intent = |line| Record::Intent {
            line,
            identity: String::new(),
            user_id: String::new(),
            setting: Setting::SmtpAuth,
            before: Some(Value::Inherit),
            desired: Value::Enabled,
        };
        journal.append(&intent(2)).await.unwrap();
        journal.append(&Record::Row(row(2, Setting::SmtpAuth))).await.unwrap();
        journal.append(&intent(3)).await.unwrap();
        journal.append(&Record::Rejected { line: 4, reason: "bad".into() }).await.unwrap();
        drop(journal);
        // A crash in the middle of a line.
        let mut file = OpenOptions::new().append(true).open(dir.path().join(FILE_NAME)).unwrap();
        file.write_all(br#"{"record":"row","line":9"#).unwrap();
        let done = Done::load(&dir.path().join(FILE_NAME)).unwrap();
        assert!(done.is_finished(2, Setting::SmtpAuth));
        assert!(!done.is_finished(2, Setting::PerUserMfa));
        assert_eq!(done.pending_before(3, Setting::SmtpAuth), Some(Some(Value::Inherit)));
        assert_eq!(done.pending_before(2, Setting::SmtpAuth), None);
        assert!(done.was_rejected(4));
        // Appending after the torn line starts a fresh line.
        let journal = Journal::open(dir.path()).unwrap();
        journal.append(&Record::Row(row(5, Setting::PerUserMfa))).await.unwrap();
        assert!(Done::load(&dir.path().join(FILE_NAME)).unwrap().is_finished(5, Setting::PerUserMfa));
    }
}
