//! The operation store on etcd (the `etcd` feature): every table row is a
//! key `<namespace>ops/<table>/<key>`. Reads are linearizable and pinned to
//! one etcd revision; a write transaction reads at one revision, then
//! commits its changes only if no other write landed since (a compare on
//! the key `ops-rev`, which every write sets), else runs again: writes are
//! serializable across every process on the store, as in the embedded
//! store. A claim is a key under this process's lease, so a process that
//! dies loses its claims when the lease runs out (10 s).

use super::backend::{Backend, Changes, Overlay, Read, Table, Write};
use super::kv::KvStore;
use super::{Claim, StoreError};
use crate::etcd::{Etcd, EtcdError};
use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use std::cell::Cell;
use std::future::Future;
use std::sync::Arc;

/// The key every write sets: its revision orders the writes.
const REV: &str = "ops-rev";

/// The etcd backend; clones share the connection.
#[derive(Clone)]
pub struct EtcdBackend {
    etcd: Etcd,
    /// One write of this process at a time: they would only conflict.
    writer: Arc<tokio::sync::Mutex<()>>,
}

/// The operation store on etcd.
pub type EtcdOps = KvStore<EtcdBackend>;

impl EtcdOps {
    /// The operation store under `etcd`'s namespace.
    pub fn etcd(etcd: Etcd) -> EtcdOps {
        KvStore {
            backend: EtcdBackend {
                etcd,
                writer: Arc::default(),
            },
        }
    }
}

fn failed(e: EtcdError) -> StoreError {
    StoreError::Etcd(e.to_string())
}

fn row_key(table: Table, key: &str) -> String {
    format!("ops/{}/{key}", table.name())
}

/// Reads pinned to the revision of the first.
struct Reading<'a> {
    etcd: &'a Etcd,
    revision: Cell<Option<i64>>,
}

impl<'a> Reading<'a> {
    fn new(etcd: &'a Etcd) -> Reading<'a> {
        Reading {
            etcd,
            revision: Cell::new(None),
        }
    }

    /// The value at a namespace key, with its mod revision.
    fn versioned(&self, rel: &str) -> Result<Option<(String, i64)>, StoreError> {
        let (value, at) = self
            .etcd
            .get(&self.etcd.key(rel), self.revision.get())
            .map_err(failed)?;
        self.revision.set(Some(at));
        Ok(value)
    }
}

impl Read for Reading<'_> {
    fn get(&self, table: Table, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.versioned(&row_key(table, key))?.map(|(value, _)| value))
    }

    fn scan(&self, table: Table, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        let base = self.etcd.key(&row_key(table, ""));
        let (rows, at) = self
            .etcd
            .scan(&format!("{base}{prefix}"), self.revision.get())
            .map_err(failed)?;
        self.revision.set(Some(at));
        Ok(rows
            .into_iter()
            .map(|(key, value)| (key[base.len()..].to_string(), value))
            .collect())
    }
}

/// One attempt of a write: the function's result, its changes, and the
/// revision of `ops-rev` it read (0: never written).
type Attempt<T> = Result<(T, Changes, i64), StoreError>;

/// Runs `f` once over a fresh read of the store.
fn attempt<T>(etcd: &Etcd, f: &mut impl FnMut(&mut dyn Write) -> Result<T, StoreError>) -> Attempt<T> {
    let reading = Reading::new(etcd);
    let seen = reading.versioned(REV)?.map(|(_, rev)| rev).unwrap_or(0);
    let mut overlay = Overlay::new(&reading);
    let out = f(&mut overlay)?;
    Ok((out, overlay.changes, seen))
}

impl EtcdBackend {
    /// The transaction that lands `changes` if `ops-rev` is still at `seen`.
    fn transaction(&self, changes: &Changes, seen: i64, write_id: &str) -> Txn {
        let rev = self.etcd.key(REV);
        let mut ops = vec![TxnOp::put(rev.clone(), write_id, None)];
        for ((table, key), change) in changes {
            let key = self.etcd.key(&row_key(*table, key));
            ops.push(match change {
                Some(value) => TxnOp::put(key, value.as_str(), None),
                None => TxnOp::delete(key, None),
            });
        }
        Txn::new()
            .when([Compare::mod_revision(rev, CompareOp::Equal, seen)])
            .and_then(ops)
    }

    /// Whether the write `write_id` landed (its answer was lost): it did if
    /// `ops-rev` still holds its id.
    fn landed(&self, write_id: &str) -> Result<bool, StoreError> {
        let (value, _) = self.etcd.get(&self.etcd.key(REV), None).map_err(failed)?;
        Ok(value.is_some_and(|(value, _)| value == write_id))
    }
}

/// An id no other write has: this process, a counter and a random part.
fn write_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}-{:016x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        fastrand::u64(..)
    )
}

impl Backend for EtcdBackend {
    fn read<T>(&self, f: impl FnOnce(&dyn Read) -> Result<T, StoreError>) -> Result<T, StoreError> {
        f(&Reading::new(&self.etcd))
    }

    fn write<T: Send + 'static>(
        &self,
        mut f: impl FnMut(&mut dyn Write) -> Result<T, StoreError> + Send + 'static,
    ) -> impl Future<Output = Result<T, StoreError>> + Send {
        let this = self.clone();
        async move {
            let _turn = this.writer.lock().await;
            loop {
                // The function's reads wait on etcd: off the async workers.
                let etcd = this.etcd.clone();
                let (back, tried) = tokio::task::spawn_blocking(move || {
                    let tried = attempt(&etcd, &mut f);
                    (f, tried)
                })
                .await
                .map_err(|e| StoreError::Etcd(format!("a store write stopped: {e}")))?;
                f = back;
                let (out, changes, seen) = tried?;
                if changes.is_empty() {
                    return Ok(out);
                }
                let id = write_id();
                match this.etcd.commit(this.transaction(&changes, seen, &id)).await {
                    Ok(reply) if reply.succeeded() => return Ok(out),
                    // Another process wrote since the read: read again.
                    Ok(_) => continue,
                    Err(e) => {
                        let this = this.clone();
                        let landed = tokio::task::spawn_blocking(move || this.landed(&id))
                            .await
                            .map_err(|e| StoreError::Etcd(format!("a store write stopped: {e}")))?;
                        match landed {
                            Ok(true) => return Ok(out),
                            Ok(false) => tracing::debug!("a store write failed, trying again: {e}"),
                            Err(_) => return Err(failed(e)),
                        }
                    }
                }
            }
        }
    }

    fn claim(&self, op: &str) -> Result<Claim, StoreError> {
        let key = self.etcd.key(&format!("claims/{op}"));
        let me = format!("{} {}", std::process::id(), host_name());
        match self.etcd.create_leased(&key, &me).map_err(failed)? {
            Ok(()) => Ok(Claim::holding(Release {
                etcd: self.etcd.clone(),
                key,
            })),
            Err(holder) => Err(StoreError::Claimed {
                operation: op.to_string(),
                pid: pid_of(&holder),
            }),
        }
    }

    fn claimant(&self, op: &str) -> Option<u32> {
        let key = self.etcd.key(&format!("claims/{op}"));
        match self.etcd.get(&key, None) {
            Ok((value, _)) => value.map(|(holder, _)| pid_of(&holder)),
            // Unknown is not "nobody": an unreachable store must not make an operation look interrupted.
            Err(_) => Some(0),
        }
    }
}

/// The process id a claim's value (`<pid> <host>`) names.
fn pid_of(holder: &str) -> u32 {
    holder.split(' ').next().and_then(|pid| pid.parse().ok()).unwrap_or(0)
}

/// This machine's name, for the claims it holds.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_default()
}

/// Deletes a claim's key when dropped.
struct Release {
    etcd: Etcd,
    key: String,
}

impl Drop for Release {
    fn drop(&mut self) {
        if let Err(e) = self.etcd.delete(&self.key) {
            tracing::warn!(
                "releasing the claim {} failed (it ends with this process's lease): {e}",
                self.key
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::LocalEtcd;
    use crate::store::OperationStore;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_etcd_store_conforms_and_keeps_what_it_acknowledged() {
        let server = LocalEtcd::start().unwrap();
        let url = server.url("ops");
        let kept = {
            let store = EtcdOps::etcd(Etcd::connect(&url).unwrap());
            super::super::conformance::operation_store(&store).await
        };
        // A new connection (another process) reads what the first wrote.
        let store = EtcdOps::etcd(Etcd::connect(&url).unwrap());
        let cluster = store.cluster(&kept.cluster_id).unwrap().unwrap();
        assert_eq!(cluster.operation.as_deref(), Some("op-6"), "the last operation begun");
        assert_eq!(store.operation(&kept.id).unwrap().unwrap().status, kept.status);
        assert!(!store.steps(&kept.id).unwrap().is_empty());
        // Its claim is another process's: refused, naming this process.
        let claim = store.claim("op-x").unwrap();
        let first = EtcdOps::etcd(Etcd::connect(&url).unwrap());
        let err = first.claim("op-x").unwrap_err();
        assert!(
            err.to_string().contains(&format!("process {}", std::process::id())),
            "{err}"
        );
        drop(claim);
        assert_eq!(first.claimant("op-x"), None);
    }
}
