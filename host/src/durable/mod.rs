//! The embedded durable file: one redb database under the state directory,
//! shared by the metadata tree and the operation store.
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

/// A table of JSON records (or strings) by key.
pub type Table = TableDefinition<'static, &'static str, &'static str>;
/// A table of counters by key.
pub type Counters = TableDefinition<'static, &'static str, u64>;

/// The file failed.
#[derive(Debug, Error)]
pub enum DbError {
    /// redb failed (I/O, corruption, a lock).
    #[error("state store: {0}")]
    Redb(#[source] redb::Error),
    /// The file cannot be opened or created.
    #[error("cannot open the state store {file}: {source}")]
    Open {
        /// The file (or its directory).
        file: PathBuf,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A record does not decode.
    #[error("state store: record {key} is unreadable: {source}")]
    Corrupt {
        /// The record's key.
        key: String,
        /// The decoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// The writer thread is gone (the process is shutting down).
    #[error("state store: the writer stopped")]
    WriterGone,
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for DbError {
            fn from(e: $t) -> Self {
                DbError::Redb(redb::Error::from(e))
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

/// Why a job failed: the file, or the job's own error (of its caller's type).
enum JobError {
    Db(DbError),
    Own(Box<dyn Any + Send>),
}

type JobFn = Box<dyn FnMut(&WriteTransaction) -> Result<Output, JobError> + Send>;

struct Job {
    run: JobFn,
    reply: oneshot::Sender<Result<Output, JobError>>,
}

/// The open file; clones share it.
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

/// The file's name inside the state directory.
pub const DB_FILE: &str = "hookhost.redb";

impl Db {
    /// Opens (or creates) the file in `dir`, private to this user.
    pub fn open(dir: &Path) -> Result<Db, DbError> {
        // Tenants' env (access keys too) lives here: only this user may read
        // it, and nobody else may swap the store or the images under us.
        use std::os::unix::fs::PermissionsExt;
        crate::files::private_dir(dir, true).map_err(|why| DbError::Open {
            file: dir.to_path_buf(),
            source: why.into(),
        })?;
        let file = dir.join(DB_FILE);
        let mut builder = Database::builder();
        builder.set_concurrency_mode(ConcurrencyMode::MultiWriter);
        let database = Arc::new(builder.create(&file).map_err(|e| DbError::Open {
            file: file.clone(),
            source: Box::new(redb::Error::from(e)),
        })?);
        let _ = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600));

        let (jobs, queue) = mpsc::channel::<Job>();
        let writer = database.clone();
        let writer = std::thread::Builder::new()
            .name("hookhost-db-writer".into())
            .spawn(move || write_loop(&writer, &queue))
            .map_err(|e| DbError::Open {
                file: file.clone(),
                source: Box::new(e),
            })?;
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

    /// Makes the tables exist, so that readers never meet a missing one; a
    /// file that has them all is not written to.
    pub fn ensure_tables(&self, tables: &[Table], counters: &[Counters]) -> Result<(), DbError> {
        let have = self.inner.database.begin_read().is_ok_and(|txn| {
            tables.iter().all(|t| txn.open_table(*t).is_ok()) && counters.iter().all(|t| txn.open_table(*t).is_ok())
        });
        if !have {
            let txn = self.inner.database.begin_write()?;
            for table in tables {
                txn.open_table(*table)?;
            }
            for table in counters {
                txn.open_table(*table)?;
            }
            txn.commit()?;
        }
        Ok(())
    }

    /// Runs `f` in a durable write transaction (batched with other writes);
    /// `f` may refuse with an error of its own type.
    ///
    /// `f` may run more than once if another job of its batch fails, so it
    /// must only touch the transaction.
    pub async fn write<T, E>(
        &self,
        mut f: impl FnMut(&WriteTransaction) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let (reply, done) = oneshot::channel();
        let run: JobFn = Box::new(move |txn| match f(txn) {
            Ok(v) => Ok(Box::new(v) as Output),
            Err(e) => Err(JobError::Own(Box::new(e))),
        });
        let jobs = self.inner.jobs.as_ref().ok_or(DbError::WriterGone)?;
        jobs.send(Job { run, reply }).map_err(|_| DbError::WriterGone)?;
        match done.await.map_err(|_| DbError::WriterGone)? {
            Ok(output) => Ok(*output.downcast::<T>().map_err(|_| DbError::WriterGone)?),
            Err(JobError::Db(e)) => Err(E::from(e)),
            Err(JobError::Own(e)) => Err(*e.downcast::<E>().map_err(|_| DbError::WriterGone)?),
        }
    }

    /// Runs `f` on a read transaction of the latest commit.
    pub fn read<T, E: From<DbError>>(&self, f: impl FnOnce(&ReadTransaction) -> Result<T, E>) -> Result<T, E> {
        let txn = self.inner.database.begin_read().map_err(DbError::from)?;
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

fn commit(database: &Database, batch: &mut [Job]) -> Result<Vec<Output>, JobError> {
    let db = |e: DbError| JobError::Db(e);
    let txn = database.begin_write().map_err(|e| db(e.into()))?;
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
    txn.commit().map_err(|e| db(e.into()))?;
    Ok(outputs)
}

/// Decodes a JSON record.
pub fn decode<T: serde::de::DeserializeOwned>(key: &str, json: &str) -> Result<T, DbError> {
    serde_json::from_str(json).map_err(|source| DbError::Corrupt {
        key: key.to_string(),
        source,
    })
}

/// Encodes a record as JSON.
pub fn encode<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| format!("{{\"unencodable\": {:?}}}", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const COUNTERS: Counters = TableDefinition::new("test-counters");

    #[derive(Debug)]
    enum Refused {
        No,
        Db,
    }

    impl From<DbError> for Refused {
        fn from(_: DbError) -> Self {
            Refused::Db
        }
    }

    #[tokio::test]
    async fn writes_are_durable_batched_and_isolated_from_failing_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        db.ensure_tables(&[], &[COUNTERS]).unwrap();
        // Hold the writer so that everything below lands in one batch.
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = std::sync::Mutex::new(Some(hold));
        let blocker = {
            let db = db.clone();
            tokio::spawn(async move {
                db.write(move |_txn| -> Result<(), DbError> {
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
                db.write(move |txn| -> Result<u64, DbError> {
                    let mut t = txn.open_table(COUNTERS)?;
                    t.insert(format!("k{i}").as_str(), i)?;
                    Ok(i)
                })
                .await
            }));
        }
        let failing = {
            let db = db.clone();
            tokio::spawn(async move { db.write(|_txn| -> Result<(), Refused> { Err(Refused::No) }).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        assert!(
            matches!(failing.await.unwrap(), Err(Refused::No)),
            "a job's own error comes back as it was"
        );
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
            .read(|txn| -> Result<usize, DbError> { Ok(txn.open_table(COUNTERS)?.range::<&str>(..)?.count()) })
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
