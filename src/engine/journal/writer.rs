//! The journal's writer: records queued in memory on the caller's thread, written and synced
//! (`fdatasync`) in groups by a thread of their own, and the check that the file is still the
//! one the run opened.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::time::Duration;

use tokio::sync::Notify;

use super::FILE_NAME;
use super::format::{Record, encode};
use crate::error::{Error, Result};

/// Why the journal can no longer vouch for what the run does: the first write or sync that failed.
#[derive(Clone, Debug)]
struct Broken(std::io::ErrorKind, String);

/// Appends records; makes them durable in groups.
pub(crate) struct Journal {
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

impl Journal {
    /// Opens (or creates) the journal in `directory` for appending.
    pub(crate) fn open(directory: &Path) -> Result<Journal> {
        let path = directory.join(FILE_NAME);
        let mut file = crate::support::files::open_append_private(&path)
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
    pub(crate) fn changed_under_us(&self) -> Option<String> {
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

    /// Appends a record and returns once it is on disk (the run itself appends, then waits
    /// only where something depends on the disk: see the write gate in `engine::target`).
    #[cfg(test)]
    pub(crate) async fn append(&self, record: &Record) -> Result<()> {
        let number = self.append_later(record)?;
        self.durable(number).await
    }

    /// Appends a record without waiting for the disk: it is queued, then written and synced by
    /// the next sync anybody waits on, within [`SYNC_AT_LEAST_EVERY`] in any case. Returns the
    /// record's number, for [`Journal::durable`].
    pub(crate) fn append_later(&self, record: &Record) -> Result<u64> {
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
    pub(crate) async fn flush(&self) -> Result<()> {
        self.durable(self.records.load(Ordering::Acquire)).await
    }

    /// Returns once the record numbered `number` is on disk: at once when a sync already
    /// covered it. The syncing thread wakes one waiter when a sync ends, and that one wakes the
    /// rest from the runtime's thread: a wake-up from another thread costs a system call and a
    /// turn of the runtime each, and a sync often ends the wait of a dozen writes.
    pub(crate) async fn durable(&self, number: u64) -> Result<()> {
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
