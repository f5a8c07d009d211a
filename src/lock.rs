//! One run per tenant at a time: an exclusive lock on a file in the state directory. The
//! operating system drops the lock when the holder dies, so a crashed run blocks nobody; the file
//! says who holds it so the one refused can say so.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Held for the life of a run.
#[derive(Debug)]
pub struct TenantLock {
    _file: File,
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

fn file_name(tenant: &str) -> String {
    let safe: String =
        tenant.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
    format!("tenant-{}.lock", safe.to_lowercase())
}

/// Takes the lock for `tenant` (its id, so that every name of one tenant is one lock), or says
/// who holds it.
pub fn acquire(state_dir: &Path, tenant: &str, command: &str) -> Result<TenantLock> {
    crate::files::create_private_dir(state_dir)
        .map_err(Error::io(format!("--state-dir {}: cannot create it", state_dir.display())))?;
    let path = state_dir.join(file_name(tenant));
    let mut file = crate::files::open_private(&path)
        .map_err(Error::io(format!("cannot open the lock file {}", path.display())))?;
    match file.try_lock() {
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
    let started = crate::timestamp::now_rfc3339();
    let holder = format!("remediate {command} (pid {}, started {started})", std::process::id());
    let _ = file.set_len(0).and_then(|_| file.seek(SeekFrom::Start(0))).and_then(|_| file.write_all(holder.as_bytes()));
    Ok(TenantLock { _file: file, path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_told_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(dir.path(), "contoso.onmicrosoft.com", "apply").unwrap();
        let refused = acquire(dir.path(), "contoso.onmicrosoft.com", "apply").unwrap_err().to_string();
        assert!(refused.contains(&format!("pid {}", std::process::id())), "{refused}");
        assert!(acquire(dir.path(), "fabrikam.onmicrosoft.com", "apply").is_ok(), "other tenants are free");
        drop(first);
        assert!(acquire(dir.path(), "contoso.onmicrosoft.com", "apply").is_ok(), "released when dropped");
    }
}
