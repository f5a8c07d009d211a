//! `journal.jsonl`: the append-only record of a run. Before each write an `intent` (target,
//! setting, before, desired); after every (target, setting) its `row`; and every CSV row that was
//! not a target. The report is rendered from it, and resume and rollback read it.
//!
//! Records are queued in memory on the caller's thread, and a thread of their own writes and
//! syncs (`fdatasync`) them in groups: one `write` and one sync for all that came meanwhile, not
//! a system call per record (a throttled run spends its CPU on waking up, not on work).
//! An intent is on disk before its write goes out: the write waits for it past its turn at the
//! pacer, and while writes wait in the pacer's line, one sync covers every intent in it. Rows are
//! written and synced by the next sync, within a second in any case: a crash in that second (of
//! the process or the machine) can lose only rows a resume tells again by reading, for any write
//! behind them has its intent on disk. Dropping the journal writes what is queued (a run that
//! fails or panics keeps its rows); the end of a run makes everything durable before the report.
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
use tokio::sync::Notify;

use super::events::{Outcome, Row};
use crate::error::{Error, Result};
use crate::settings::{Setting, Value};

pub const FILE_NAME: &str = "journal.jsonl";

/// One line of the journal.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "kebab-case", try_from = "Fields")]
pub enum Record {
    /// About to write `desired` over `before`.
    Intent { line: u64, identity: String, user_id: String, setting: Setting, before: Option<Value>, desired: Value },
    /// A finished (target, setting); with the outcome `unfinished`, one the run owed and could
    /// not finish (a resume does it).
    Row(Row),
    /// A CSV row that is not a target.
    Rejected { line: u64, reason: String },
}

/// Every field a record may have, read in one pass: serde reads an internally tagged enum by
/// first copying each record into a tree of its own, and reading a journal (each report, resume
/// and rollback) did little else.
#[derive(Deserialize)]
struct Fields {
    record: Kind,
    line: u64,
    #[serde(default)]
    identity: String,
    #[serde(default)]
    user_id: String,
    setting: Option<Setting>,
    #[serde(default)]
    before: Option<Value>,
    desired: Option<Value>,
    #[serde(default)]
    after: Option<Value>,
    outcome: Option<Outcome>,
    #[serde(default)]
    attempts: u32,
    #[serde(default)]
    error_code: String,
    #[serde(default)]
    error_message: String,
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    client_request_id: String,
    #[serde(default)]
    duration_ms: u64,
    #[serde(default)]
    tenant: String,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Kind {
    Intent,
    Row,
    Rejected,
}

impl TryFrom<Fields> for Record {
    type Error = &'static str;

    fn try_from(fields: Fields) -> std::result::Result<Record, &'static str> {
        let Fields { line, identity, user_id, before, after, .. } = fields;
        let setting = fields.setting.ok_or("a record without its setting");
        let desired = fields.desired.ok_or("a record without the desired value");
        Ok(match fields.record {
            Kind::Intent => Record::Intent { line, identity, user_id, setting: setting?, before, desired: desired? },
            Kind::Row => Record::Row(Row {
                line,
                identity,
                user_id,
                setting: setting?,
                before,
                desired: desired?,
                after,
                outcome: fields.outcome.ok_or("a row without its outcome")?,
                attempts: fields.attempts,
                error_code: fields.error_code,
                error_message: fields.error_message,
                request_id: fields.request_id,
                client_request_id: fields.client_request_id,
                duration_ms: fields.duration_ms,
                tenant: fields.tenant,
            }),
            Kind::Rejected => {
                Record::Rejected { line, reason: fields.reason.ok_or("a rejected row without its reason")? }
            }
        })
    }
}

/// Why the journal can no longer vouch for what the run does: the first write or sync that failed.
#[derive(Clone, Debug)]
struct Broken(std::io::ErrorKind, String);

/// Appends records; makes them durable in groups.
pub struct Journal {
    /// The state shared with the thread that writes and syncs.
    shared: Arc<Shared>,
    /// Asks the syncing thread to sync every record up to a number.
    demands: std_mpsc::Sender<u64>,
    /// Wakes, from the runtime's own thread, everybody waiting on the disk (see
    /// [`Journal::durable`]).
    nearby: Notify,
    path: PathBuf,
    /// Records appended so far (queued or written); a record's number is the count after it.
    pub records: Arc<AtomicU64>,
    pub syncs: Arc<AtomicU64>,
    /// The file as opened: which it is, and how long it was.
    identity: FileIdentity,
}

/// Which file the journal is (device and inode), and its length when this run opened it.
#[derive(Clone, Copy, Debug)]
struct FileIdentity {
    device: u64,
    inode: u64,
    length: u64,
}

impl FileIdentity {
    fn of(file: &File) -> std::io::Result<FileIdentity> {
        let metadata = file.metadata()?;
        #[cfg(unix)]
        let (device, inode) = {
            use std::os::unix::fs::MetadataExt;
            (metadata.dev(), metadata.ino())
        };
        #[cfg(not(unix))]
        let (device, inode) = (0, 0);
        Ok(FileIdentity { device, inode, length: metadata.len() })
    }

    /// What differs between the file as opened (plus `written` bytes) and `now`.
    fn compare(&self, now: &std::fs::Metadata, written: u64) -> Option<String> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            if (now.dev(), now.ino()) != (self.device, self.inode) {
                return Some("was replaced by another file".into());
            }
        }
        let expected = self.length + written;
        (now.len() < expected)
            .then(|| format!("was cut short: {} bytes where the run wrote up to {expected}", now.len()))
    }
}

struct Shared {
    /// Records appended and not yet written, in order.
    queue: Mutex<Queue>,
    /// Writes the queue; held from taking the queue to the end of its `write`, so that what is
    /// taken reaches the file in order.
    file: Mutex<File>,
    /// Records on disk: every record up to this number was written before its sync began.
    synced: AtomicU64,
    /// Wakes one of those waiting on the disk when a sync they asked for ends.
    sync_ended: Notify,
    broken: Mutex<Option<Broken>>,
    /// Bytes written to the file by this run.
    written: AtomicU64,
}

#[derive(Default)]
struct Queue {
    lines: Vec<u8>,
    /// The number of the last record in `lines` (or written before them).
    last: u64,
}

impl Shared {
    fn broken(&self) -> Option<Broken> {
        self.broken.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn break_with(&self, error: &std::io::Error) -> Broken {
        let mut broken = self.broken.lock().unwrap_or_else(|e| e.into_inner());
        broken.get_or_insert_with(|| Broken(error.kind(), error.to_string())).clone()
    }

    /// Writes every queued record in one `write`; returns the number of the last one written.
    fn write_queued(&self) -> std::result::Result<u64, Broken> {
        if let Some(broken) = self.broken() {
            return Err(broken);
        }
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let (lines, last) = {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            (std::mem::take(&mut queue.lines), queue.last)
        };
        file.write_all(&lines).map_err(|error| self.break_with(&error))?;
        self.written.fetch_add(lines.len() as u64, Ordering::Relaxed);
        Ok(last)
    }
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
        let (demands, receiver) = std_mpsc::channel();
        let shared = Arc::new(Shared {
            queue: Mutex::default(),
            file: Mutex::new(file),
            synced: AtomicU64::new(0),
            sync_ended: Notify::new(),
            broken: Mutex::new(None),
            written: AtomicU64::new(0),
        });
        let syncer = Syncer { shared: shared.clone(), syncs: Arc::new(AtomicU64::new(0)) };
        let syncs = syncer.syncs.clone();
        std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || syncer.run(&receiver))
            .map_err(Error::io("cannot start the journal writer"))?;
        let records = Arc::new(AtomicU64::new(0));
        let identity = FileIdentity::of(&shared.file.lock().unwrap_or_else(|e| e.into_inner()))
            .map_err(Error::io(format!("cannot read the journal {}", path.display())))?;
        Ok(Journal { shared, demands, nearby: Notify::new(), path, records, syncs, identity })
    }

    /// Whether the journal is still the file this run opened and wrote, whole: what the report
    /// is rendered from must be what the run recorded. Says what happened to it, if anything (a
    /// link put in its place, another file renamed over it, the file cut short).
    pub fn changed_under_us(&self) -> Option<String> {
        let now = match std::fs::symlink_metadata(&self.path) {
            Ok(now) => now,
            Err(error) => return Some(format!("{} is gone ({error})", self.path.display())),
        };
        if now.file_type().is_symlink() {
            return Some(format!("{} was replaced by a link", self.path.display()));
        }
        let written = self.shared.written.load(Ordering::Relaxed);
        self.identity.compare(&now, written).map(|problem| format!("{} {problem}", self.path.display()))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends a record and returns once it is on disk (the run itself appends, then waits
    /// only where something depends on the disk: see the write gate in `engine::target`).
    #[cfg(test)]
    pub async fn append(&self, record: &Record) -> Result<()> {
        let number = self.append_later(record)?;
        self.durable(number).await
    }

    /// Appends a record without waiting for the disk: it is queued, then written and synced by
    /// the next sync anybody waits on, within [`SYNC_AT_LEAST_EVERY`] in any case. Returns the
    /// record's number, for [`Journal::durable`].
    pub fn append_later(&self, record: &Record) -> Result<u64> {
        if let Some(Broken(kind, message)) = self.shared.broken() {
            return Err(self.error(std::io::Error::new(kind, message)));
        }
        let line = encode(record);
        let mut queue = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        queue.lines.extend_from_slice(&line);
        queue.last = self.records.fetch_add(1, Ordering::AcqRel) + 1;
        Ok(queue.last)
    }

    /// Returns once every record appended so far is on disk.
    pub async fn flush(&self) -> Result<()> {
        self.durable(self.records.load(Ordering::Acquire)).await
    }

    /// Returns once the record numbered `number` is on disk: at once when a sync already
    /// covered it. The syncing thread wakes one waiter when a sync ends, and that one wakes the
    /// rest from the runtime's thread: a wake-up from another thread costs a system call and a
    /// turn of the runtime each, and a sync often ends the wait of a dozen writes.
    pub async fn durable(&self, number: u64) -> Result<()> {
        loop {
            if let Some(Broken(kind, message)) = self.shared.broken() {
                return Err(self.error(std::io::Error::new(kind, message)));
            }
            if self.shared.synced.load(Ordering::Acquire) >= number {
                return Ok(());
            }
            let sync_ended = self.shared.sync_ended.notified();
            let nearby = self.nearby.notified();
            tokio::pin!(sync_ended, nearby);
            // Listening before asking: a sync that ends in between is not missed.
            sync_ended.as_mut().enable();
            nearby.as_mut().enable();
            if self.demands.send(number).is_err() {
                return Err(Error::Fatal(format!("the journal writer for {} stopped", self.path.display())));
            }
            tokio::select! {
                () = &mut sync_ended => self.nearby.notify_waiters(),
                () = &mut nearby => {}
            }
        }
    }

    fn error(&self, error: std::io::Error) -> Error {
        Error::io(format!("cannot write the journal {}", self.path.display()))(error)
    }
}

impl Drop for Journal {
    /// Writes what is queued, so that a run that ends early (an error, a panic) keeps its rows;
    /// the thread that syncs syncs it as it stops.
    fn drop(&mut self) {
        let _ = self.shared.write_queued();
    }
}

fn ends_with_newline(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let mut last = [0u8; 1];
    File::open(path).and_then(|mut f| f.seek(SeekFrom::End(-1)).and_then(|_| f.read_exact(&mut last))).is_ok()
        && last[0] == b'\n'
}

/// How long somebody who waits on the disk may wait for company before the sync: at most this
/// much later does an intent's write go out, and one sync covers all who came meanwhile.
const GROUP_LINGER: Duration = Duration::from_millis(20);

/// Records nobody waits on are synced at least this often: what a crash of the machine (not
/// of the process) can lose.
const SYNC_AT_LEAST_EVERY: Duration = Duration::from_secs(1);

/// The thread that writes and syncs the journal.
struct Syncer {
    shared: Arc<Shared>,
    syncs: Arc<AtomicU64>,
}

impl Syncer {
    /// Until the journal is dropped: whenever somebody waits on a record not yet synced, waits a
    /// moment for company, then syncs for all of them; meanwhile, once a second if anything is
    /// new.
    fn run(self, receiver: &std_mpsc::Receiver<u64>) {
        loop {
            let first = match receiver.recv_timeout(SYNC_AT_LEAST_EVERY) {
                Ok(number) => number,
                Err(std_mpsc::RecvTimeoutError::Timeout) => {
                    // A failed sync is kept in `broken`: the next one waited on reports it.
                    let _ = self.sync_if_behind();
                    continue;
                }
                Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = self.sync_if_behind();
                    return;
                }
            };
            if self.shared.synced.load(Ordering::Acquire) < first {
                std::thread::sleep(GROUP_LINGER);
            }
            // Everybody who asked meanwhile: their records were queued before they asked.
            receiver.try_iter().for_each(drop);
            // A failed sync is kept in `broken`, which the waiters read.
            let _ = self.sync_if_behind();
            self.shared.sync_ended.notify_one();
        }
    }

    /// Writes and syncs every record appended so far, unless a sync already covered them.
    fn sync_if_behind(&self) -> std::result::Result<(), Broken> {
        let written = self.shared.write_queued()?;
        if self.shared.synced.load(Ordering::Acquire) >= written {
            return Ok(());
        }
        let file = self.shared.file.lock().unwrap_or_else(|e| e.into_inner());
        file.sync_data().map_err(|error| self.shared.break_with(&error))?;
        drop(file);
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.shared.synced.fetch_max(written, Ordering::AcqRel);
        Ok(())
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
            (0..line.len()).filter(|&i| line[i] == MARKER[0] && line[i..].starts_with(MARKER)).collect();
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
    // Nearly every segment is one whole record: checked and parsed once. Only one that is not
    // is scanned for where its record ends.
    if fnv1a(&json) == expected
        && let Ok(record) = serde_json::from_slice(&json)
    {
        return Some((record, true));
    }
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
