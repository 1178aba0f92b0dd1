//! The operation store on etcd (the `etcd` feature): every table row is a
//! key `<namespace>_ops/<table>/<key>`. Reads are linearizable and pinned to
//! one etcd revision. Writes go to a writer thread that runs the writes
//! waiting together over one read and commits their changes in one
//! transaction, only if no other write landed since (a compare on the key
//! `_ops-rev`, which every write sets), else runs them again: writes are
//! serializable across every process on the store, and a thousand hooks
//! ending at once cost one transaction, as in the embedded store. A claim
//! is a key under this process's lease, so a process that dies loses its
//! claims when the lease runs out (10 s); while it holds claims, its writes
//! require the lease to be alive.

use super::backend::{Backend, Changes, Overlay, Read, Table, Write};
use super::kv::KvStore;
use super::{Claim, StoreError};
use crate::etcd::{Etcd, EtcdError};
use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use std::any::Any;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, mpsc};
use tokio::sync::oneshot;

/// The key every write sets: its revision orders the writes.
const REV: &str = "_ops-rev";

/// Writes committed together at most: one etcd transaction each batch.
const MAX_BATCH: usize = 64;

/// The etcd backend; clones share the connection and the writer.
#[derive(Clone)]
pub struct EtcdBackend {
    etcd: Etcd,
    /// To the writer thread, which commits the writes waiting together.
    jobs: mpsc::Sender<Job>,
    /// The claims this process holds (key → lease): the fence of its writes.
    held: Held,
}

/// Claim keys held, with their lease.
type Held = Arc<Mutex<BTreeMap<String, i64>>>;

fn lock(held: &Held) -> std::sync::MutexGuard<'_, BTreeMap<String, i64>> {
    held.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The operation store on etcd.
pub type EtcdOps = KvStore<EtcdBackend>;

impl EtcdOps {
    /// The operation store under `etcd`'s namespace, with its writer thread.
    pub fn etcd(etcd: Etcd) -> Result<EtcdOps, StoreError> {
        let (jobs, queue) = mpsc::channel();
        let (writer, held) = (etcd.clone(), Held::default());
        let fence = held.clone();
        std::thread::Builder::new()
            .name("etcd-writer".into())
            .spawn(move || write_loop(&writer, &queue, &fence))
            .map_err(|e| StoreError::Etcd(format!("cannot start the etcd writer: {e}")))?;
        Ok(KvStore {
            backend: EtcdBackend { etcd, jobs, held },
        })
    }
}

/// What a job's function returns, its type erased.
type Output = Result<Box<dyn Any + Send>, StoreError>;

/// A write's function, its result's type erased.
type JobFn = Box<dyn FnMut(&mut dyn Write) -> Output + Send>;

/// A write waiting for the writer.
struct Job {
    run: JobFn,
    reply: oneshot::Sender<Output>,
}

/// Commits the writes waiting together (group commit, as the embedded
/// store does): many hooks ending at once cost one etcd transaction.
fn write_loop(etcd: &Etcd, queue: &mpsc::Receiver<Job>, held: &Held) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        batch.extend(queue.try_iter().take(MAX_BATCH - 1));
        let outputs = commit(etcd, &mut batch, held);
        for (job, output) in batch.into_iter().zip(outputs) {
            let _ = job.reply.send(output);
        }
    }
}

/// Runs every job over one read, each on its own overlay over the jobs
/// before it (a job that refuses changes nothing), and lands their changes
/// in one transaction if `_ops-rev` has not moved since the read; else
/// reads again and runs them again. While this process holds claims, the
/// transaction also requires one of them to be still under its lease: a
/// process whose lease expired (and whose operations another may be
/// running now) writes nothing more of them.
fn commit(etcd: &Etcd, batch: &mut [Job], held: &Held) -> Vec<Output> {
    let jobs = batch.len();
    let all_failed = |e: &dyn std::fmt::Display| {
        (0..jobs)
            .map(|_| Err(StoreError::Etcd(e.to_string())))
            .collect::<Vec<Output>>()
    };
    loop {
        let reading = Reading::new(etcd);
        let seen = match reading.versioned(REV) {
            Ok(rev) => rev.map(|(_, rev)| rev).unwrap_or(0),
            Err(e) => return all_failed(&e),
        };
        let mut group = Overlay::new(&reading);
        let mut outputs = Vec::with_capacity(batch.len());
        for job in batch.iter_mut() {
            let mut own = Overlay::new(&group);
            let output = (job.run)(&mut own);
            let changes = own.changes;
            if output.is_ok() {
                group.changes.extend(changes);
            }
            outputs.push(output);
        }
        if group.changes.is_empty() {
            return outputs;
        }
        let id = write_id();
        let fence = lock(held).iter().next().map(|(key, lease)| (key.clone(), *lease));
        match etcd.commit_now(transaction(etcd, &group.changes, seen, &id, fence.as_ref())) {
            Ok(reply) if reply.succeeded() => return outputs,
            Ok(_) => match &fence {
                Some((key, lease)) if !still_held(etcd, key, *lease) => {
                    lock(held).retain(|_, l| l != lease);
                    return all_failed(
                        &"this process's etcd lease expired, and with it its claims: \
                        the operations it was running are interrupted (another process may resume them)",
                    );
                }
                // Another process wrote since the read: read again.
                _ => continue,
            },
            // Refused by etcd (too large, ...): nothing landed.
            Err(e) if !e.unreachable() => return all_failed(&e),
            // The answer was lost: it landed if it was the next change of `_ops-rev`.
            Err(e) => match landed(etcd, seen, &id) {
                Ok(true) => return outputs,
                Ok(false) => tracing::debug!("a store write did not land, trying again: {e}"),
                Err(_) => return all_failed(&e),
            },
        }
    }
}

fn failed(e: EtcdError) -> StoreError {
    StoreError::Etcd(e.to_string())
}

fn row_key(table: Table, key: &str) -> String {
    format!("_ops/{}/{key}", table.name())
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

/// Whether the claim `key` is still under `lease` (true when that cannot be read).
fn still_held(etcd: &Etcd, key: &str, lease: i64) -> bool {
    match etcd.lease_of(key) {
        Ok(now) => now == Some(lease),
        Err(_) => true,
    }
}

/// The transaction that lands `changes` if `_ops-rev` is still at `seen`
/// (and the `fence` claim still under its lease).
fn transaction(etcd: &Etcd, changes: &Changes, seen: i64, write_id: &str, fence: Option<&(String, i64)>) -> Txn {
    let rev = etcd.key(REV);
    let mut ops = vec![TxnOp::put(rev.clone(), write_id, None)];
    for ((table, key), change) in changes {
        let key = etcd.key(&row_key(*table, key));
        ops.push(match change {
            Some(value) => TxnOp::put(key, value.as_str(), None),
            None => TxnOp::delete(key, None),
        });
    }
    let mut compares = vec![Compare::mod_revision(rev, CompareOp::Equal, seen)];
    if let Some((key, lease)) = fence {
        compares.push(Compare::lease(key.as_str(), CompareOp::Equal, *lease));
    }
    Txn::new().when(compares).and_then(ops)
}

/// Whether the write `write_id`, made over `_ops-rev` at `seen`, landed: it
/// did if it was the next change of `_ops-rev` (no other write can land
/// after `seen` and let it land too). Waits a while for a write still in
/// flight; one that never shows did not land.
fn landed(etcd: &Etcd, seen: i64, write_id: &str) -> Result<bool, StoreError> {
    let next = etcd.next_value(&etcd.key(REV), seen, LANDING).map_err(failed)?;
    Ok(next.is_some_and(|(value, _)| value == write_id))
}

/// How long a write whose answer was lost may still land.
const LANDING: std::time::Duration = std::time::Duration::from_secs(5);

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
        let (reply, done) = oneshot::channel();
        let job = Job {
            run: Box::new(move |w| f(w).map(|out| Box::new(out) as Box<dyn Any + Send>)),
            reply,
        };
        let sent = self.jobs.send(job);
        async move {
            let gone = || StoreError::Etcd("the etcd writer stopped".into());
            sent.map_err(|_| gone())?;
            let out = done.await.map_err(|_| gone())??;
            out.downcast::<T>().map(|out| *out).map_err(|_| gone())
        }
    }

    fn claim(&self, op: &str) -> Result<Claim, StoreError> {
        let key = self.etcd.key(&format!("_claims/{op}"));
        // Unique to this claim: a retry whose first answer was lost knows its own.
        let me = format!(
            "{} {} {:016x}",
            std::process::id(),
            crate::etcd::machine_name(),
            fastrand::u64(..)
        );
        match self.etcd.create_leased(&key, &me).map_err(failed)? {
            Ok(lease) => {
                lock(&self.held).insert(key.clone(), lease);
                Ok(Claim::holding(Release {
                    etcd: self.etcd.clone(),
                    held: self.held.clone(),
                    key,
                }))
            }
            Err(holder) => Err(StoreError::Claimed {
                operation: op.to_string(),
                pid: pid_of(&holder),
            }),
        }
    }

    fn claimant(&self, op: &str) -> Option<u32> {
        let key = self.etcd.key(&format!("_claims/{op}"));
        match self.etcd.get(&key, None) {
            Ok((value, _)) => value.map(|(holder, _)| pid_of(&holder)),
            // Unknown is not "nobody": an unreachable store must not make an operation look interrupted.
            Err(_) => Some(0),
        }
    }
}

/// The process id a claim's value (`<pid> <host> <token>`) names.
fn pid_of(holder: &str) -> u32 {
    holder.split(' ').next().and_then(|pid| pid.parse().ok()).unwrap_or(0)
}

/// Deletes a claim's key when dropped.
struct Release {
    etcd: Etcd,
    held: Held,
    key: String,
}

impl Drop for Release {
    fn drop(&mut self) {
        lock(&self.held).remove(&self.key);
        if let Err(e) = self.etcd.delete_leased(&self.key) {
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
    use crate::store::{Event, OperationStore};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_etcd_store_conforms_and_keeps_what_it_acknowledged() {
        let server = LocalEtcd::start().unwrap();
        let url = server.url("ops");
        let kept = {
            let store = EtcdOps::etcd(Etcd::connect(&url).unwrap()).unwrap();
            super::super::conformance::operation_store(&store).await
        };
        // A new connection (another process) reads what the first wrote.
        let store = EtcdOps::etcd(Etcd::connect(&url).unwrap()).unwrap();
        let cluster = store.cluster(&kept.cluster_id).unwrap().unwrap();
        assert_eq!(cluster.operation.as_deref(), Some("op-6"), "the last operation begun");
        assert_eq!(store.operation(&kept.id).unwrap().unwrap().status, kept.status);
        assert!(!store.steps(&kept.id).unwrap().is_empty());
        // Its claim is another process's: refused, naming this process.
        let claim = store.claim("op-x").unwrap();
        let first = EtcdOps::etcd(Etcd::connect(&url).unwrap()).unwrap();
        let err = first.claim("op-x").unwrap_err();
        assert!(
            err.to_string().contains(&format!("process {}", std::process::id())),
            "{err}"
        );
        drop(claim);
        assert_eq!(first.claimant("op-x"), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_waiting_together_land_together_and_a_refusal_sinks_only_itself() {
        let server = LocalEtcd::start().unwrap();
        let store = std::sync::Arc::new(EtcdOps::etcd(Etcd::connect(&server.url("batch")).unwrap()).unwrap());
        let writes: Vec<_> = (0..40)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.next_seqs("op-a", 1).await })
            })
            .collect();
        let refused = store.update_operation("no-such-op", Box::new(|_| Ok(())));
        assert!(matches!(refused.await, Err(StoreError::NotFound { .. })));
        let mut seqs = Vec::new();
        for write in writes {
            seqs.push(write.await.unwrap().unwrap());
        }
        seqs.sort();
        assert_eq!(seqs, (1..=40).collect::<Vec<u64>>(), "every write landed once");
        assert_eq!(store.next_seqs("op-a", 1).await.unwrap(), 41);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_etcd_refuses_fails_at_once_naming_the_flag_and_the_store_goes_on() {
        let server = LocalEtcd::start_with(&["--max-txn-ops=128"]).unwrap();
        let store = EtcdOps::etcd(Etcd::connect(&server.url("limits")).unwrap()).unwrap();
        let events: Vec<Event> = (1..=200)
            .map(|seq| {
                serde_json::from_value(serde_json::json!({
                    "op": "op-l", "seq": seq, "step": 0, "service": "init", "role": "db", "order": 0,
                    "node_id": "cln-a", "instance_id": "i-a", "version": "v", "attempt": 1,
                    "started_at": "2026-01-01T00:00:00Z", "outcome": "running"
                }))
                .unwrap()
            })
            .collect();
        let started = std::time::Instant::now();
        let err = store.put_events(events).await.unwrap_err().to_string();
        assert!(err.contains("--max-txn-ops"), "{err}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "no retrying a refusal"
        );
        assert!(store.events("op-l").unwrap().is_empty(), "nothing of it landed");
        assert_eq!(store.next_seqs("op-l", 1).await.unwrap(), 1, "the store goes on");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_process_whose_lease_ended_writes_nothing_more_and_another_takes_its_operation() {
        let server = LocalEtcd::start().unwrap();
        let url = server.url("fence");
        let (a, b) = (
            EtcdOps::etcd(Etcd::connect(&url).unwrap()).unwrap(),
            EtcdOps::etcd(Etcd::connect(&url).unwrap()).unwrap(),
        );
        let claim = a.claim("op-f").unwrap();
        a.next_seqs("op-f", 1).await.unwrap();
        // Its lease ends behind its back (a partition, a long pause).
        let key = format!("{}_claims/op-f", url.namespace);
        let mut raw = etcd_client::Client::connect(url.endpoints.clone(), None).await.unwrap();
        let lease = raw.get(key.as_str(), None).await.unwrap().kvs()[0].lease();
        raw.lease_revoke(lease).await.unwrap();
        let err = a.next_seqs("op-f", 1).await.unwrap_err().to_string();
        assert!(err.contains("lease expired"), "{err}");
        // Another process claims the operation and runs it; the first one's release takes nothing from it.
        let taken = b.claim("op-f").unwrap();
        assert_eq!(
            b.next_seqs("op-f", 1).await.unwrap(),
            2,
            "the refused write left nothing"
        );
        drop(claim);
        assert_eq!(a.claimant("op-f"), Some(std::process::id()), "b's claim stands");
        drop(taken);
        // Holding nothing any more, the first process writes again.
        assert_eq!(a.next_seqs("op-f", 1).await.unwrap(), 3);
    }
}
