//! The embedded durable store: one redb file under the state directory.
//!
//! Every write is a job for one writer thread, which commits whatever jobs
//! are waiting in a single durable transaction (group commit): a thousand
//! hooks finishing at once cost a few fsyncs, not a thousand. A job's result
//! is only handed back once its transaction is on disk. Several processes may
//! open the file at once (`op show` while `cluster create` runs).

use redb::{ConcurrencyMode, Database, ReadTransaction, ReadableDatabase, TableDefinition, WriteTransaction};
use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use thiserror::Error;
use tokio::sync::oneshot;

/// Metadata leaves: full path → value.
pub(crate) const TREE: TableDefinition<&str, &str> = TableDefinition::new("tree");
/// Counters: the metadata revision, event sequences.
pub(crate) const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
/// Clusters: id → JSON.
pub(crate) const CLUSTERS: TableDefinition<&str, &str> = TableDefinition::new("clusters");
/// Operations: id → JSON.
pub(crate) const OPERATIONS: TableDefinition<&str, &str> = TableDefinition::new("operations");
/// The journal of steps: `<op>/<index>` → JSON.
pub(crate) const STEPS: TableDefinition<&str, &str> = TableDefinition::new("steps");
/// Hook invocation events: `<op>/<seq>` → JSON.
pub(crate) const EVENTS: TableDefinition<&str, &str> = TableDefinition::new("events");
/// IP allocations: `<vxnet>/<ip>` → `<cluster>/<node>`.
pub(crate) const IPS: TableDefinition<&str, &str> = TableDefinition::new("ips");

/// The store failed or refused.
#[derive(Debug, Error)]
pub enum DbError {
    /// redb failed (I/O, corruption, a lock).
    #[error("state store: {0}")]
    Redb(String),
    /// A record does not decode.
    #[error("state store: record {key} is unreadable: {message}")]
    Corrupt {
        /// The record's key.
        key: String,
        /// The decoder's message.
        message: String,
    },
    /// The request conflicts with the stored state.
    #[error("{0}")]
    Conflict(String),
    /// The writer thread is gone (the process is shutting down).
    #[error("state store: the writer stopped")]
    WriterGone,
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for DbError {
            fn from(e: $t) -> Self {
                DbError::Redb(redb::Error::from(e).to_string())
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

type Output = Box<dyn Any + Send>;
type JobFn = Box<dyn FnMut(&WriteTransaction) -> Result<Output, DbError> + Send>;

struct Job {
    run: JobFn,
    reply: oneshot::Sender<Result<Output, DbError>>,
}

/// The open store; clones share it.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    database: Arc<Database>,
    jobs: Option<mpsc::Sender<Job>>,
    writer: Option<std::thread::JoinHandle<()>>,
    dir: PathBuf,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue ends the writer; joining it closes the file before we return.
        self.jobs.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// The store's file name inside the state directory.
pub const DB_FILE: &str = "hookhost.redb";

impl Db {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Db, DbError> {
        // Tenants' env (access keys too) lives here: only this user may read it.
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| DbError::Redb(format!("cannot create {}: {e}", dir.display())))?;
        let file = dir.join(DB_FILE);
        let mut builder = Database::builder();
        builder.set_concurrency_mode(ConcurrencyMode::MultiWriter);
        let database = Arc::new(
            builder
                .create(&file)
                .map_err(|e| DbError::Redb(format!("cannot open {}: {}", file.display(), redb::Error::from(e))))?,
        );
        let _ = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600));
        // Tables exist from the start, so readers never meet a missing one;
        // a store that has them is opened without writing.
        let has_tables = database.begin_read().is_ok_and(|txn| txn.open_table(COUNTERS).is_ok());
        if !has_tables {
            let txn = database.begin_write()?;
            for table in [TREE, CLUSTERS, OPERATIONS, STEPS, EVENTS, IPS] {
                txn.open_table(table)?;
            }
            txn.open_table(COUNTERS)?;
            txn.commit()?;
        }

        let (jobs, queue) = mpsc::channel::<Job>();
        let writer = database.clone();
        let writer = std::thread::Builder::new()
            .name("hookhost-db-writer".into())
            .spawn(move || write_loop(&writer, &queue))
            .map_err(|e| DbError::Redb(format!("cannot start the writer thread: {e}")))?;
        Ok(Db {
            inner: Arc::new(Inner {
                database,
                jobs: Some(jobs),
                writer: Some(writer),
                dir: dir.to_path_buf(),
            }),
        })
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Runs `f` in a durable write transaction (batched with other writes).
    ///
    /// `f` may run more than once if another job of its batch fails, so it
    /// must only touch the transaction.
    pub async fn write<T: Send + 'static>(
        &self,
        mut f: impl FnMut(&WriteTransaction) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        let (reply, done) = oneshot::channel();
        let run: JobFn = Box::new(move |txn| f(txn).map(|v| Box::new(v) as Output));
        let jobs = self.inner.jobs.as_ref().ok_or(DbError::WriterGone)?;
        jobs.send(Job { run, reply }).map_err(|_| DbError::WriterGone)?;
        let output = done.await.map_err(|_| DbError::WriterGone)??;
        output
            .downcast::<T>()
            .map(|v| *v)
            .map_err(|_| DbError::Redb("writer returned the wrong type".into()))
    }

    /// Runs `f` on a read transaction of the latest commit.
    pub fn read<T>(&self, f: impl FnOnce(&ReadTransaction) -> Result<T, DbError>) -> Result<T, DbError> {
        let txn = self.inner.database.begin_read()?;
        f(&txn)
    }
}

/// Commits waiting jobs together; on a failed job, reruns each job alone so
/// that one bad job cannot take the others down with it.
fn write_loop(database: &Database, queue: &mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        batch.extend(queue.try_iter());
        match commit(database, &mut batch) {
            Ok(outputs) => {
                for (job, output) in batch.into_iter().zip(outputs) {
                    let _ = job.reply.send(Ok(output));
                }
            }
            Err(_) if batch.len() > 1 => {
                for mut job in batch {
                    let result = commit(database, std::slice::from_mut(&mut job)).map(|mut o| o.remove(0));
                    let _ = job.reply.send(result);
                }
            }
            Err(e) => {
                if let Some(job) = batch.pop() {
                    let _ = job.reply.send(Err(e));
                }
            }
        }
    }
}

fn commit(database: &Database, batch: &mut [Job]) -> Result<Vec<Output>, DbError> {
    let txn = database.begin_write()?;
    let mut outputs = Vec::with_capacity(batch.len());
    for job in batch.iter_mut() {
        match (job.run)(&txn) {
            Ok(output) => outputs.push(output),
            Err(e) => {
                let _ = txn.abort();
                return Err(e);
            }
        }
    }
    txn.commit()?;
    Ok(outputs)
}

/// Decodes a JSON record.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(key: &str, json: &str) -> Result<T, DbError> {
    serde_json::from_str(json).map_err(|e| DbError::Corrupt {
        key: key.to_string(),
        message: e.to_string(),
    })
}

/// Encodes a record as JSON.
pub(crate) fn encode<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| format!("{{\"unencodable\": {:?}}}", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_are_durable_batched_and_isolated_from_failing_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        // Hold the writer so that everything below lands in one batch.
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = std::sync::Mutex::new(Some(hold));
        let blocker = {
            let db = db.clone();
            tokio::spawn(async move {
                db.write(move |_txn| {
                    if let Some(rx) = hold.lock().unwrap().take() {
                        let _ = rx.recv();
                    }
                    Ok(())
                })
                .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut writes = Vec::new();
        for i in 0..50u64 {
            let db = db.clone();
            writes.push(tokio::spawn(async move {
                db.write(move |txn| {
                    let mut t = txn.open_table(COUNTERS)?;
                    t.insert(format!("k{i}").as_str(), i)?;
                    Ok(i)
                })
                .await
            }));
        }
        let failing = {
            let db = db.clone();
            tokio::spawn(async move {
                db.write(|_txn| -> Result<(), DbError> { Err(DbError::Conflict("no".into())) })
                    .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        assert!(matches!(failing.await.unwrap(), Err(DbError::Conflict(_))));
        for (i, w) in writes.into_iter().enumerate() {
            assert_eq!(
                w.await.unwrap().unwrap(),
                i as u64,
                "a failing job in the batch must not sink the others"
            );
        }
        drop(db);
        // Reopened, everything acknowledged is there, and the file is private.
        let db = Db::open(dir.path()).unwrap();
        let count = db
            .read(|txn| Ok(txn.open_table(COUNTERS)?.range::<&str>(..)?.count()))
            .unwrap();
        assert_eq!(count, 50);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(DB_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
