//! One run per tenant at a time: an exclusive lock on a file in the state directory. The
//! operating system drops the lock when the holder dies, so a crashed run blocks nobody; the file
//! says who holds it so the one refused can say so. The shards of one run (`--shard K/N`) work on
//! disjoint targets: each holds the tenant's lock shared and its own shard's lock exclusively, so
//! they run side by side and a run of the whole tenant waits for all of them. A shard that ends
//! says so in its lock file, so that the shards still at work can take up the budget it spent.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::run::shard::Shard;

/// Held for the life of a run.
#[derive(Debug)]
pub struct TenantLock {
    /// The tenant's lock, then (for a shard) the shard's own.
    files: Vec<File>,
    pub path: PathBuf,
    /// The tenant it locks (its id).
    pub tenant: String,
    shard: Option<Seat>,
}

/// Where a shard sits among the shards of its run.
#[derive(Debug)]
struct Seat {
    state_dir: PathBuf,
    shard: Shard,
    /// When it took its lock (milliseconds since 1970): an end a sibling wrote before that was an
    /// earlier run's.
    since: u128,
}

/// How a shard's lock file says that the shard ended: this, then the time (milliseconds since
/// 1970). Read by its siblings; written, like the holder line, by `remediate` alone.
const ENDED: &str = "ended at unix-ms ";

/// The default state directory: `$XDG_CACHE_HOME/remediate`, else `~/.cache/remediate`.
pub(crate) fn default_state_dir() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("remediate")
}

/// A tenant's id or domain as part of a file name: nothing in it can leave the state directory.
pub(crate) fn safe_tenant(tenant: &str) -> String {
    let safe: String =
        tenant.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
    safe.to_lowercase()
}

fn file_name(tenant: &str) -> String {
    format!("tenant-{}.lock", safe_tenant(tenant))
}

/// Held shared by every shard of a run cut into `n`: shards of another count cover other targets
/// with the same hash, so two counts never run at once.
fn count_file(state_dir: &Path, tenant: &str, n: u32) -> PathBuf {
    state_dir.join(format!("tenant-{}.shards-{n}.lock", safe_tenant(tenant)))
}

/// Taken for a moment while a shard checks the other counts and takes its own, so that two
/// shards of different counts starting together cannot both pass the check.
fn gate_file(state_dir: &Path, tenant: &str) -> PathBuf {
    state_dir.join(format!("tenant-{}.gate.lock", safe_tenant(tenant)))
}

fn shard_file(state_dir: &Path, tenant: &str, shard: Shard) -> PathBuf {
    let (k, n) = (shard.index(), shard.count());
    state_dir.join(format!("tenant-{}.shard-{k}-of-{n}.lock", safe_tenant(tenant)))
}

fn unix_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_millis())
}

/// Takes the lock for `tenant` (its id, so that every name of one tenant is one lock), or for one
/// shard of it, or says who holds it.
pub fn acquire(state_dir: &Path, tenant: &str, command: &str, shard: Option<Shard>) -> Result<TenantLock> {
    crate::support::files::create_private_dir(state_dir)
        .map_err(Error::io(format!("--state-dir {}: cannot create it", state_dir.display())))?;
    let whole = state_dir.join(file_name(tenant));
    let Some(shard) = shard else {
        let files = vec![take(&whole, tenant, command, true)?];
        return Ok(TenantLock { files, path: whole, tenant: tenant.to_string(), shard: None });
    };
    let shared = take(&whole, tenant, command, false)?;
    let path = shard_file(state_dir, tenant, shard);
    let own = take(&path, tenant, command, true)?;
    let count = take_count(state_dir, tenant, command, shard.count())?;
    let seat = Seat { state_dir: state_dir.to_path_buf(), shard, since: unix_ms() };
    Ok(TenantLock { files: vec![shared, own, count], path, tenant: tenant.to_string(), shard: Some(seat) })
}

/// Takes this count's lock shared, once no shard of another count holds theirs: `0/2` and `1/3`
/// would both work on the targets whose hash is 4 mod 6.
fn take_count(state_dir: &Path, tenant: &str, command: &str, n: u32) -> Result<File> {
    let _gate = take(&gate_file(state_dir, tenant), tenant, command, true)?;
    let prefix = format!("tenant-{}.shards-", safe_tenant(tenant));
    let entries = std::fs::read_dir(state_dir).map_err(Error::io(format!("cannot read {}", state_dir.display())))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let other = name.strip_prefix(&prefix).and_then(|rest| rest.strip_suffix(".lock"));
        if other.is_some_and(|other| other != n.to_string()) {
            let taken = take(&entry.path(), tenant, command, true).map_err(|_| {
                Error::Busy(format!(
                    "tenant {tenant} is busy: shards of another count ({} of them) are at work on it, and shards of two counts would work on the same targets; run the same --shard K/{} as they do, or wait for them",
                    other.unwrap_or_default(),
                    other.unwrap_or_default()
                ))
            })?;
            drop(taken);
        }
    }
    take(&count_file(state_dir, tenant, n), tenant, command, false)
}

impl TenantLock {
    /// For a shard: its siblings, to follow how many are still at work.
    /// (The count's lock, taken last, is the third file: the shard's own is the second.)
    pub fn siblings(&self) -> Option<Siblings> {
        let seat = self.shard.as_ref()?;
        let (k, n) = (seat.shard.index(), seat.shard.count());
        let others = (0..n).filter(|&other| other != k);
        let files = others
            .filter_map(|other| Shard::new(other, n))
            .map(|other| shard_file(&seat.state_dir, &self.tenant, other))
            .collect();
        Some(Siblings { files, since: seat.since })
    }
}

impl Drop for TenantLock {
    /// A shard says it ended while it still holds its lock: its siblings then spend its share of
    /// the budget. A shard that dies says nothing, and its siblings go on sparing its share.
    fn drop(&mut self) {
        if let (Some(_), Some(own)) = (&self.shard, self.files.get_mut(1)) {
            let ended = format!("{ENDED}{} (pid {})", unix_ms(), std::process::id());
            let _ =
                own.set_len(0).and_then(|_| own.seek(SeekFrom::Start(0))).and_then(|_| own.write_all(ended.as_bytes()));
        }
    }
}

/// The other shards of a run, as their lock files tell.
#[derive(Clone, Debug)]
pub struct Siblings {
    files: Vec<PathBuf>,
    since: u128,
}

impl Siblings {
    /// The shards of the run, this one included.
    pub fn shards(&self) -> u32 {
        1 + self.files.len() as u32
    }

    /// The shards at work on the tenant, this one included: all but those whose lock file says
    /// they ended after this one began. A sibling not started yet, or one that died, counts as at
    /// work, so its share is spared.
    pub fn at_work(&self) -> u32 {
        let ended = self.files.iter().filter(|file| self.ended_since(file)).count();
        1 + self.files.len().saturating_sub(ended) as u32
    }

    fn ended_since(&self, file: &Path) -> bool {
        let Ok(text) = crate::support::files::read_text_capped(file, crate::support::files::cap::SMALL) else {
            return false;
        };
        let at = text.strip_prefix(ENDED).and_then(|rest| rest.split_whitespace().next());
        at.and_then(|at| at.parse::<u128>().ok()).is_some_and(|at| at >= self.since)
    }
}

/// Locks `path`, exclusively (and says who holds it) or shared with the other shards.
fn take(path: &Path, tenant: &str, command: &str, exclusive: bool) -> Result<File> {
    let mut file = crate::support::files::open_private(path)
        .map_err(Error::io(format!("cannot open the lock file {}", path.display())))?;
    let locked = if exclusive { file.try_lock() } else { file.try_lock_shared() };
    match locked {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let holder = if holder.is_empty() { "another run".to_string() } else { holder.to_string() };
            return Err(Error::Busy(format!(
                "tenant {tenant} is busy: {holder} holds {}. Wait for it to finish (or stop it); a lock left by a dead process does not block",
                path.display()
            )));
        }
        Err(TryLockError::Error(error)) => {
            return Err(Error::Io { context: format!("cannot lock {}", path.display()), source: error });
        }
    }
    if exclusive {
        let started = crate::support::timestamp::now_rfc3339();
        let holder = format!("remediate {command} (pid {}, started {started})", std::process::id());
        let _ =
            file.set_len(0).and_then(|_| file.seek(SeekFrom::Start(0))).and_then(|_| file.write_all(holder.as_bytes()));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(index: u32, count: u32) -> Shard {
        Shard::new(index, count).unwrap()
    }

    #[test]
    fn a_second_holder_is_refused_and_told_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(dir.path(), "contoso.onmicrosoft.com", "apply", None).unwrap();
        let refused = acquire(dir.path(), "contoso.onmicrosoft.com", "apply", None).unwrap_err().to_string();
        assert!(refused.contains(&format!("pid {}", std::process::id())), "{refused}");
        assert!(acquire(dir.path(), "fabrikam.onmicrosoft.com", "apply", None).is_ok(), "other tenants are free");
        drop(first);
        assert!(acquire(dir.path(), "contoso.onmicrosoft.com", "apply", None).is_ok(), "released when dropped");
    }

    #[test]
    fn shards_run_side_by_side_and_the_whole_tenant_waits_for_them() {
        let dir = tempfile::tempdir().unwrap();
        let tenant = "contoso.onmicrosoft.com";
        let first = acquire(dir.path(), tenant, "apply", Some(shard(0, 3))).unwrap();
        let second = acquire(dir.path(), tenant, "apply", Some(shard(1, 3))).unwrap();
        assert!(acquire(dir.path(), tenant, "apply", Some(shard(1, 3))).is_err(), "one run per shard");
        assert!(acquire(dir.path(), tenant, "apply", None).is_err(), "the whole tenant waits for its shards");
        drop((first, second));
        let whole = acquire(dir.path(), tenant, "apply", None).unwrap();
        assert!(acquire(dir.path(), tenant, "apply", Some(shard(2, 3))).is_err(), "and a shard for the whole");
        drop(whole);
    }

    #[test]
    fn shards_of_different_counts_never_run_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let tenant = "contoso.onmicrosoft.com";
        let half = acquire(dir.path(), tenant, "apply", Some(shard(0, 2))).unwrap();
        let third = acquire(dir.path(), tenant, "apply", Some(shard(1, 3))).unwrap_err().to_string();
        assert!(third.contains("another count"), "{third}");
        assert!(acquire(dir.path(), tenant, "apply", Some(shard(0, 1))).is_err(), "0/1 covers what 0/2 does");
        let other_half = acquire(dir.path(), tenant, "apply", Some(shard(1, 2))).unwrap();
        drop((half, other_half));
        assert!(
            acquire(dir.path(), tenant, "apply", Some(shard(1, 3))).is_ok(),
            "once the halves end, thirds may start"
        );
    }

    #[test]
    fn a_shard_counts_the_siblings_still_at_work() {
        let dir = tempfile::tempdir().unwrap();
        let tenant = "contoso.onmicrosoft.com";
        // An earlier run's shard 2 ended long ago: this run's has not started yet, so it is at work.
        std::fs::write(shard_file(dir.path(), tenant, shard(2, 3)), format!("{ENDED}1000 (pid 1)")).unwrap();
        let first = acquire(dir.path(), tenant, "apply", Some(shard(0, 3))).unwrap();
        let second = acquire(dir.path(), tenant, "apply", Some(shard(1, 3))).unwrap();
        let siblings = first.siblings().unwrap();
        assert_eq!(siblings.at_work(), 3, "nobody ended during this run");
        drop(second);
        assert_eq!(siblings.at_work(), 2, "shard 1 ended");
        let second = acquire(dir.path(), tenant, "apply", Some(shard(1, 3))).unwrap();
        assert_eq!(siblings.at_work(), 3, "shard 1 is back (a resume)");
        drop(second);
        assert!(acquire(dir.path(), tenant, "apply", None).is_err(), "shard 0 still holds the tenant");
        assert!(acquire(dir.path(), "fabrikam.onmicrosoft.com", "apply", None).unwrap().siblings().is_none());
    }
}
