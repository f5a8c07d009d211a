//! One run per tenant at a time: an exclusive lock on a file in the state directory. The
//! operating system drops the lock when the holder dies, so a crashed run blocks nobody; the file
//! says who holds it so the one refused can say so. The shards of one run (`--shard K/N`) work on
//! disjoint targets: each holds the tenant's lock shared and its own shard's lock exclusively, so
//! they run side by side and a run of the whole tenant waits for all of them.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Held for the life of a run.
#[derive(Debug)]
pub struct TenantLock {
    _files: Vec<File>,
    pub path: PathBuf,
}

/// The default state directory: `$XDG_CACHE_HOME/remediate`, else `~/.cache/remediate`.
pub fn default_state_dir() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("remediate")
}

/// A tenant's id or domain as part of a file name: nothing in it can leave the state directory.
pub fn safe_tenant(tenant: &str) -> String {
    let safe: String =
        tenant.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
    safe.to_lowercase()
}

fn file_name(tenant: &str) -> String {
    format!("tenant-{}.lock", safe_tenant(tenant))
}

/// Takes the lock for `tenant` (its id, so that every name of one tenant is one lock), or for one
/// shard of it, or says who holds it.
pub fn acquire(state_dir: &Path, tenant: &str, command: &str, shard: Option<(u32, u32)>) -> Result<TenantLock> {
    crate::files::create_private_dir(state_dir)
        .map_err(Error::io(format!("--state-dir {}: cannot create it", state_dir.display())))?;
    let whole = state_dir.join(file_name(tenant));
    let Some((k, n)) = shard else {
        return Ok(TenantLock { _files: vec![take(&whole, tenant, command, true)?], path: whole });
    };
    let shared = take(&whole, tenant, command, false)?;
    let path = state_dir.join(format!("tenant-{}.shard-{k}-of-{n}.lock", safe_tenant(tenant)));
    let own = take(&path, tenant, command, true)?;
    Ok(TenantLock { _files: vec![shared, own], path })
}

/// Locks `path`, exclusively (and says who holds it) or shared with the other shards.
fn take(path: &Path, tenant: &str, command: &str, exclusive: bool) -> Result<File> {
    let mut file =
        crate::files::open_private(path).map_err(Error::io(format!("cannot open the lock file {}", path.display())))?;
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
        let started = crate::timestamp::now_rfc3339();
        let holder = format!("remediate {command} (pid {}, started {started})", std::process::id());
        let _ =
            file.set_len(0).and_then(|_| file.seek(SeekFrom::Start(0))).and_then(|_| file.write_all(holder.as_bytes()));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let first = acquire(dir.path(), tenant, "apply", Some((0, 3))).unwrap();
        let second = acquire(dir.path(), tenant, "apply", Some((1, 3))).unwrap();
        assert!(acquire(dir.path(), tenant, "apply", Some((1, 3))).is_err(), "one run per shard");
        assert!(acquire(dir.path(), tenant, "apply", None).is_err(), "the whole tenant waits for its shards");
        drop((first, second));
        let whole = acquire(dir.path(), tenant, "apply", None).unwrap();
        assert!(acquire(dir.path(), tenant, "apply", Some((2, 3))).is_err(), "and a shard for the whole");
        drop(whole);
    }
}
