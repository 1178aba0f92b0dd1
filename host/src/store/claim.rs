//! Who runs an operation: a process holds the operation's claim for as long
//! as it runs it. A claim nobody holds means the operation was interrupted
//! (its process died) and may be resumed. The durable store claims with a
//! lock file per operation (the kernel drops the lock with the process);
//! the memory store with a set in the process.

use super::StoreError;
use std::collections::HashSet;
use std::fs::{OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A held claim; dropping it releases it.
pub struct Claim {
    _held: Box<dyn Send + Sync>,
}

impl Claim {
    /// A claim held for as long as `held` lives.
    pub(crate) fn holding(held: impl Send + Sync + 'static) -> Claim {
        Claim { _held: Box::new(held) }
    }
}

impl std::fmt::Debug for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Claim")
    }
}

/// Extra tries to take a lock another process may hold only to look at it.
const LOCK_TRIES: u32 = 5;

fn lock_path(state_dir: &Path, op: &str) -> PathBuf {
    state_dir.join("locks").join(format!("{op}.lock"))
}

/// Which process holds an operation's lock file, if any.
pub(crate) fn file_claimant(state_dir: &Path, op: &str) -> Option<u32> {
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

/// Takes an operation's lock file, or says which process holds it.
pub(crate) fn claim_file(state_dir: &Path, op: &str) -> Result<Claim, StoreError> {
    let path = lock_path(state_dir, op);
    let io = |source| StoreError::Lock {
        path: path.clone(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    // `file_claimant` takes the lock for an instant to look: try a few times.
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
                return Err(StoreError::Claimed {
                    operation: op.to_string(),
                    pid: pid.trim().parse().unwrap_or(0),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
    }
    file.set_len(0)
        .and_then(|()| write!(file, "{}", std::process::id()))
        .map_err(io)?;
    Ok(Claim::holding(file))
}

/// Claims held by this process (the memory store's).
#[derive(Debug, Default, Clone)]
pub(crate) struct Claims {
    held: Arc<Mutex<HashSet<String>>>,
}

/// Releases an in-process claim when dropped.
struct Held {
    claims: Claims,
    op: String,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.claims.lock().remove(&self.op);
    }
}

impl Claims {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes the claim of `op`, or says this process holds it.
    pub(crate) fn claim(&self, op: &str) -> Result<Claim, StoreError> {
        if !self.lock().insert(op.to_string()) {
            return Err(StoreError::Claimed {
                operation: op.to_string(),
                pid: std::process::id(),
            });
        }
        Ok(Claim::holding(Held {
            claims: self.clone(),
            op: op.to_string(),
        }))
    }

    /// This process, when it holds the claim of `op`.
    pub(crate) fn claimant(&self, op: &str) -> Option<u32> {
        self.lock().contains(op).then(std::process::id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_lock_file_holder_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(file_claimant(dir.path(), "op-1"), None);
        let claim = claim_file(dir.path(), "op-1").unwrap();
        assert_eq!(file_claimant(dir.path(), "op-1"), Some(std::process::id()));
        let err = claim_file(dir.path(), "op-1").unwrap_err();
        assert!(err.to_string().contains("is being run by process"), "{err}");
        drop(claim);
        assert_eq!(file_claimant(dir.path(), "op-1"), None);
    }
}
