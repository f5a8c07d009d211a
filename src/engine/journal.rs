//! `journal.jsonl`: the append-only record of a run. Before each write an `intent` (target,
//! setting, before, desired); after every (target, setting) its `row`; and every CSV row that was
//! not a target. The report is rendered from it, and resume and rollback read it.
//!
//! An intent reaches the disk (write, then `fdatasync`) before its write goes out, and so does
//! the row of a (target, setting) a write may have changed before the run counts it done. Other
//! rows (nothing was written: a resume reads again what they say) and rejected CSV rows are
//! queued without waiting, and reach the disk with the next sync or within a second. Records are
//! written by one thread in groups: everything queued while the previous group was being synced
//! goes out in the next write and shares one sync, so with many workers a sync covers many rows.
//!
//! Each line carries a checksum of its record (`{"crc":"…",` then the record's own fields), so
//! a damaged journal (a disk that filled up mid-record, a flipped byte, a line break lost) costs
//! only the records actually damaged: they are counted and skipped, and every intact record
//! after them still counts, even two that lost the line break between them.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::events::{Outcome, Row};
use crate::error::{Error, Result};
use crate::settings::{Setting, Value};

pub const FILE_NAME: &str = "journal.jsonl";

/// One line of the journal.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "kebab-case")]
pub enum Record {
    /// About to write `desired` over `before`.
    Intent { line: u64, identity: String, user_id: String, setting: Setting, before: Option<Value>, desired: Value },
    /// A finished (target, setting); with the outcome `unfinished`, one the run owed and could
    /// not finish (a resume does it).
    Row(Row),
    /// A CSV row that is not a target.
    Rejected { line: u64, reason: String },
}

/// Somebody waiting for everything queued so far to reach the disk.
type Waiter = oneshot::Sender<std::io::Result<()>>;

/// Appends records durably, in groups.
pub struct Journal {
    /// Lines queued and not yet written, in the order they were appended.
    queued: Arc<Mutex<Vec<u8>>>,
    /// Wakes the writer for somebody who waits on the disk.
    waiters: std_mpsc::Sender<Waiter>,
    path: PathBuf,
    pub records: Arc<AtomicU64>,
    pub syncs: Arc<AtomicU64>,
}

/// What starts every checksummed line.
const MARKER: &[u8] = b"{\"crc\":\"";
/// The marker, 16 hex digits, `",`.
const PREFIX_LEN: usize = MARKER.len() + 16 + 2;

/// FNV-1a, 64 bits: any one changed byte changes it (each step is a bijection of the state).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// A record as one journal line, checksum first.
pub fn encode(record: &Record) -> Vec<u8> {
    let json = serde_json::to_vec(record).unwrap_or_default();
    let mut line = Vec::with_capacity(json.len() + PREFIX_LEN + 1);
    line.extend_from_slice(MARKER);
    line.extend_from_slice(format!("{:016x}\",", fnv1a(&json)).as_bytes());
    line.extend_from_slice(&json[1..]);
    line.push(b'\n');
    line
}

impl Journal {
    /// Opens (or creates) the journal in `directory` for appending.
    pub fn open(directory: &Path) -> Result<Journal> {
        let path = directory.join(FILE_NAME);
        let mut file = crate::files::open_append_private(&path)
            .map_err(Error::io(format!("cannot open the journal {}", path.display())))?;
        // A crash can leave a torn last line; start ours on a fresh one.
        if file.metadata().map(|m| m.len() > 0).unwrap_or(false) && !ends_with_newline(&path) {
            file.write_all(b"\n").map_err(Error::io("cannot write the journal"))?;
        }
        let (waiters, receiver) = std_mpsc::channel();
        let queued = Arc::new(Mutex::new(Vec::new()));
        let writer = Writer {
            file,
            queued: queued.clone(),
            records: Arc::new(AtomicU64::new(0)),
            syncs: Arc::new(AtomicU64::new(0)),
            broken: None,
        };
        let (records, syncs) = (writer.records.clone(), writer.syncs.clone());
        std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || writer.run(&receiver))
            .map_err(Error::io("cannot start the journal writer"))?;
        Ok(Journal { queued, waiters, path, records, syncs })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends a record and returns once it is on disk.
    pub async fn append(&self, record: &Record) -> Result<()> {
        self.queue(record);
        self.flush().await
    }

    /// Queues a record without waiting for it to reach the disk: for records a crash may lose
    /// because the run can tell again what they say (a row with no write behind it is read
    /// again by a resume; a rejected CSV row is rejected again). They reach the disk with the
    /// next sync, within [`LAZY_WRITE`] in any case, and [`Journal::flush`] makes them durable.
    /// Nothing wakes the writer for them: on a throttled run that was a thread switch a row.
    pub fn append_later(&self, record: &Record) {
        self.queue(record);
    }

    fn queue(&self, record: &Record) {
        let line = encode(record);
        self.queued.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(&line);
        self.records.fetch_add(1, Ordering::Relaxed);
    }

    /// Returns once every record queued so far is on disk.
    pub async fn flush(&self) -> Result<()> {
        let gone = || Error::Fatal(format!("the journal writer for {} stopped", self.path.display()));
        let (done, answer) = oneshot::channel();
        self.waiters.send(done).map_err(|_| gone())?;
        answer
            .await
            .map_err(|_| gone())?
            .map_err(Error::io(format!("cannot write the journal {}", self.path.display())))
    }
}

fn ends_with_newline(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let mut last = [0u8; 1];
    File::open(path).and_then(|mut f| f.seek(SeekFrom::End(-1)).and_then(|_| f.read_exact(&mut last))).is_ok()
        && last[0] == b'\n'
}

/// How long a record somebody waits on may wait for company before its group is synced: at most
/// this much later is each write sent.
const GROUP_LINGER: Duration = Duration::from_millis(20);

/// Records nobody waits on are written (not synced) at least this often, so the file on disk
/// stays close to the run.
const LAZY_WRITE: Duration = Duration::from_secs(1);

/// The thread that writes the journal.
struct Writer {
    file: File,
    queued: Arc<Mutex<Vec<u8>>>,
    records: Arc<AtomicU64>,
    syncs: Arc<AtomicU64>,
    /// The first write that failed: every later sync reports it (the file may have lost a
    /// record in between).
    broken: Option<(std::io::ErrorKind, String)>,
}

impl Writer {
    /// Until the journal is dropped: whenever somebody waits, waits a moment for company, then
    /// writes what is queued and syncs it for all of them; meanwhile writes lazily.
    fn run(mut self, receiver: &std_mpsc::Receiver<Waiter>) {
        loop {
            let first = match receiver.recv_timeout(LAZY_WRITE) {
                Ok(waiter) => waiter,
                // A failed lazy write is kept in `broken`, and the next sync reports it.
                Err(std_mpsc::RecvTimeoutError::Timeout) => {
                    let _ = self.write(false);
                    continue;
                }
                Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = self.write(false);
                    return;
                }
            };
            // Writes come paced, one at a time: waiting a moment for the next intents lets one
            // sync make several durable (a sync costs a tenth of a millisecond of CPU and a disk
            // flush).
            std::thread::sleep(GROUP_LINGER);
            // Waiters first, then the lines: a waiter's line was queued before it asked.
            let group: Vec<Waiter> = std::iter::once(first).chain(receiver.try_iter()).collect();
            let result = self.write(true);
            for waiter in group {
                let _ = waiter.send(
                    result.as_ref().map(|_| ()).map_err(|(kind, message)| std::io::Error::new(*kind, message.clone())),
                );
            }
        }
    }

    /// Writes what is queued, and syncs it when `durable`.
    fn write(&mut self, durable: bool) -> std::result::Result<(), (std::io::ErrorKind, String)> {
        let bytes = std::mem::take(&mut *self.queued.lock().unwrap_or_else(|e| e.into_inner()));
        if let Some(broken) = &self.broken {
            return Err(broken.clone());
        }
        let result = self.file.write_all(&bytes).and_then(|_| if durable { self.file.sync_data() } else { Ok(()) });
        self.syncs.fetch_add(u64::from(durable), Ordering::Relaxed);
        result.map_err(|error| {
            let broken = (error.kind(), error.to_string());
            self.broken = Some(broken.clone());
            broken
        })
    }
}

/// The records of a journal, in order; damaged ones are counted in `damaged` and skipped.
pub struct Records {
    lines: BufReader<File>,
    buffer: Vec<u8>,
    ready: std::collections::VecDeque<Record>,
    /// Places where the bytes were not an intact record.
    pub damaged: u64,
}

/// Reads a journal, skipping (and counting) what is damaged.
pub fn read(path: &Path) -> Result<Records> {
    let file = File::open(path).map_err(Error::io(format!("cannot read the journal {}", path.display())))?;
    Ok(Records { lines: BufReader::new(file), buffer: Vec::new(), ready: Default::default(), damaged: 0 })
}

impl Iterator for Records {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        loop {
            if let Some(record) = self.ready.pop_front() {
                return Some(record);
            }
            self.buffer.clear();
            match self.lines.read_until(b'\n', &mut self.buffer) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(_) => {
                    self.damaged += 1;
                    return None;
                }
            }
            let line = std::mem::take(&mut self.buffer);
            self.parse_line(&line);
            self.buffer = line;
        }
    }
}

impl Records {
    /// Every intact record in `line`: normally one, two when a line break between them was lost.
    fn parse_line(&mut self, line: &[u8]) {
        let line = line.trim_ascii();
        if line.is_empty() {
            return;
        }
        let starts: Vec<usize> =
            line.windows(MARKER.len()).enumerate().filter(|(_, w)| *w == MARKER).map(|(i, _)| i).collect();
        if starts.is_empty() {
            // A journal written before records carried checksums.
            match serde_json::from_slice(line) {
                Ok(record) => self.ready.push_back(record),
                Err(_) => self.damaged += 1,
            }
            return;
        }
        if starts[0] > 0 {
            self.damaged += 1;
        }
        for (i, &start) in starts.iter().enumerate() {
            let end = starts.get(i + 1).copied().unwrap_or(line.len());
            match verified(&line[start..end]) {
                Some((record, clean)) => {
                    self.ready.push_back(record);
                    self.damaged += u64::from(!clean);
                }
                None => self.damaged += 1,
            }
        }
    }
}

/// The record in `segment` if its checksum holds, and whether nothing but it was there.
fn verified(segment: &[u8]) -> Option<(Record, bool)> {
    let hex = std::str::from_utf8(segment.get(MARKER.len()..MARKER.len() + 16)?).ok()?;
    let expected = u64::from_str_radix(hex, 16).ok()?;
    if segment.get(MARKER.len() + 16..PREFIX_LEN)? != b"\"," {
        return None;
    }
    let mut json = Vec::with_capacity(segment.len());
    json.push(b'{');
    json.extend_from_slice(&segment[PREFIX_LEN..]);
    let mut values = serde_json::Deserializer::from_slice(&json).into_iter::<serde::de::IgnoredAny>();
    values.next()?.ok()?;
    let end = values.byte_offset();
    let clean = json[end..].trim_ascii().is_empty();
    json.truncate(end);
    if fnv1a(&json) != expected {
        return None;
    }
    Some((serde_json::from_slice(&json).ok()?, clean))
}

/// What an earlier session of this run got done, for resuming it.
#[derive(Debug, Default)]
pub struct Done {
    /// Settings finished per CSV line (a bit per setting).
    finished: HashMap<u64, u8>,
    /// Writes that were about to happen when the run stopped: the value before each.
    pending: HashMap<(u64, Setting), Option<Value>>,
    rejected: HashSet<u64>,
    /// Directory users (a hash of the object id) the run has already worked on, and the line.
    users: HashMap<u64, u64>,
    /// Damaged places in the journal, skipped.
    pub damaged: u64,
}

fn bit(setting: Setting) -> u8 {
    1 << (setting as u8)
}

/// A directory object id as a compact key.
pub fn user_key(user_id: &str) -> u64 {
    fnv1a(user_id.to_ascii_lowercase().as_bytes())
}

impl Done {
    /// Reads what the journal says was done. With `retry_failed`, failed rows count as not done.
    pub fn load(path: &Path, retry_failed: bool) -> Result<Done> {
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
                    let open = row.outcome == Outcome::Unfinished || retry_failed && row.outcome == Outcome::Failed;
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

    /// The directory users earlier sessions worked on (hash of the object id → line), handed
    /// over once to the run's ledger.
    pub fn take_users(&mut self) -> HashMap<u64, u64> {
        std::mem::take(&mut self.users)
    }
}

#[cfg(test)]
mod tests;
