//! Which process runs an operation: it holds an exclusive lock on the
//! operation's lock file for as long as it runs it. A lock nobody holds
//! means the operation was interrupted (its process died) and may be resumed.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// A held operation lock; dropping it releases it.
#[derive(Debug)]
pub struct OpLock {
    _file: File,
}

/// Extra tries to take a lock another process may hold only to look at it.
const LOCK_TRIES: u32 = 5;

fn lock_path(state_dir: &Path, op: &str) -> PathBuf {
    state_dir.join("locks").join(format!("{op}.lock"))
}

/// Who holds an operation's lock, if anyone.
pub fn holder(state_dir: &Path, op: &str) -> Option<u32> {
    let path = lock_path(state_dir, op);
    let mut file = OpenOptions::new().read(true).write(true).open(&path).ok()?;
    match file.try_lock() {
        Ok(()) => None,
        Err(TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            Some(pid.trim().parse().unwrap_or(0))
        }
        Err(TryLockError::Error(_)) => None,
    }
}

impl OpLock {
    /// Takes the lock, or says which process holds it.
    pub fn acquire(state_dir: &Path, op: &str) -> Result<OpLock, String> {
        let path = lock_path(state_dir, op);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        // `holder` takes the lock for an instant to look: try a few times.
        let mut tries = 0;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if tries < LOCK_TRIES => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(TryLockError::WouldBlock) => {
                    let mut pid = String::new();
                    let _ = file.read_to_string(&mut pid);
                    return Err(format!("operation {op} is being run by process {}", pid.trim()));
                }
                Err(TryLockError::Error(e)) => return Err(format!("cannot lock {}: {e}", path.display())),
            }
        }
        file.set_len(0)
            .and_then(|()| write!(file, "{}", std::process::id()))
            .map_err(|e| e.to_string())?;
        Ok(OpLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(holder(dir.path(), "op-1"), None);
        let lock = OpLock::acquire(dir.path(), "op-1").unwrap();
        assert_eq!(holder(dir.path(), "op-1"), Some(std::process::id()));
        let err = OpLock::acquire(dir.path(), "op-1").unwrap_err();
        assert!(err.contains("is being run by process"), "{err}");
        drop(lock);
        assert_eq!(holder(dir.path(), "op-1"), None);
    }
}
