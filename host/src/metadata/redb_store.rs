//! The durable metadata store: the tree in the embedded redb file, with a
//! bounded log of recent changes for watches.

use super::watch::{ChangeLog, KEPT_BYTES, KEPT_REVISIONS, filtered};
use super::{Change, MetadataStore, Snapshot, StoreError, StoreFuture, Tree, Watch, Write, apply_writes, path};
use crate::durable::{Counters, Db, DbError, Table, decode, encode};
use redb::{ReadableTable, ReadableTableMetadata, TableDefinition};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::watch;

/// Leaves: full path → value.
const TREE: Table = TableDefinition::new("tree");
/// Recent changes: zero-padded revision → the revision's writes as JSON.
const CHANGES: Table = TableDefinition::new("tree-changes");
/// The revision, and the bytes the change log holds.
const COUNTERS: Counters = TableDefinition::new("tree-counters");
const REVISION: &str = "revision";
const CHANGE_BYTES: &str = "change-bytes";

/// The metadata tree kept in the state store; every write bumps the revision.
#[derive(Clone)]
pub struct RedbStore {
    log: Arc<Log>,
}

struct Log {
    db: Db,
    applied: watch::Sender<u64>,
}

impl RedbStore {
    /// The tree of the store `db`.
    pub fn new(db: Db) -> Result<Self, StoreError> {
        db.ensure_tables(&[TREE, CHANGES], &[COUNTERS])?;
        Ok(RedbStore {
            log: Arc::new(Log {
                db,
                applied: watch::Sender::new(0),
            }),
        })
    }
}

impl From<DbError> for StoreError {
    fn from(e: DbError) -> Self {
        StoreError::Backend(Box::new(e))
    }
}

fn backend(e: impl Into<redb::Error>) -> StoreError {
    StoreError::from(DbError::Redb(e.into()))
}

fn change_key(revision: u64) -> String {
    format!("{revision:020}")
}

struct TableTree<'a, 'txn>(&'a mut redb::Table<'txn, &'static str, &'static str>);

impl Tree for TableTree<'_, '_> {
    fn has(&self, path: &str) -> bool {
        self.0.get(path).ok().flatten().is_some()
    }

    fn first_under(&self, dir: &str) -> Option<String> {
        let mut range = self.0.range::<&str>(dir..).ok()?;
        let (key, _) = range.next()?.ok()?;
        key.value().starts_with(dir).then(|| key.value().to_string())
    }

    fn put(&mut self, path: &str, value: &str) -> Result<(), StoreError> {
        self.0.insert(path, value).map(drop).map_err(backend)
    }

    fn delete_tree(&mut self, path: &str, dir: &str) -> Result<(), StoreError> {
        self.0.remove(path).map_err(backend)?;
        self.0
            .retain_in::<&str, _>(dir.., |k, _| !k.starts_with(dir))
            .map_err(backend)
    }
}

/// Applies writes, bumps the revision and logs the change, in one transaction.
fn apply_in(txn: &redb::WriteTransaction, writes: &[Write]) -> Result<u64, StoreError> {
    let mut tree = txn.open_table(TREE).map_err(backend)?;
    apply_writes(&mut TableTree(&mut tree), writes)?;
    let mut counters = txn.open_table(COUNTERS).map_err(backend)?;
    let revision = counters.get(REVISION).map_err(backend)?.map(|v| v.value()).unwrap_or(0) + 1;
    counters.insert(REVISION, revision).map_err(backend)?;
    // The log keeps the newest revisions that fit its bounds.
    let entry = encode(&writes);
    let mut bytes = counters
        .get(CHANGE_BYTES)
        .map_err(backend)?
        .map(|v| v.value())
        .unwrap_or(0)
        + entry.len() as u64;
    let mut changes = txn.open_table(CHANGES).map_err(backend)?;
    changes
        .insert(change_key(revision).as_str(), entry.as_str())
        .map_err(backend)?;
    let mut kept = changes.len().map_err(backend)?;
    while kept > 1 && (kept > KEPT_REVISIONS || bytes > KEPT_BYTES) {
        let Some((_, oldest)) = changes.pop_first().map_err(backend)? else {
            break;
        };
        bytes = bytes.saturating_sub(oldest.value().len() as u64);
        kept -= 1;
    }
    counters.insert(CHANGE_BYTES, bytes).map_err(backend)?;
    Ok(revision)
}

/// The revision of the last commit.
fn revision(txn: &redb::ReadTransaction) -> Result<u64, StoreError> {
    let counters = txn.open_table(COUNTERS).map_err(backend)?;
    Ok(counters.get(REVISION).map_err(backend)?.map(|v| v.value()).unwrap_or(0))
}

impl ChangeLog for Log {
    fn changes(&self, prefix: &str, from: u64) -> Result<(Vec<Change>, u64), StoreError> {
        // No change has revision 0.
        let from = from.max(1);
        self.db.read(|txn| {
            let current = revision(txn)?;
            let changes = txn.open_table(CHANGES).map_err(backend)?;
            let oldest = match changes.first().map_err(backend)? {
                Some((key, _)) => key.value().parse().unwrap_or(0),
                None => current + 1,
            };
            if from < oldest && from <= current {
                return Err(StoreError::Compacted {
                    requested: from,
                    oldest,
                });
            }
            let mut out = Vec::new();
            for row in changes.range::<&str>(change_key(from).as_str()..).map_err(backend)? {
                let (key, value) = row.map_err(backend)?;
                let writes: Vec<Write> = decode(key.value(), value.value())?;
                let revision = key.value().parse().unwrap_or(0);
                out.extend(filtered(revision, &writes, prefix));
            }
            Ok((out, current))
        })
    }
}

impl MetadataStore for RedbStore {
    fn apply<'a>(&'a self, writes: &'a [Write]) -> StoreFuture<'a, u64> {
        let writes = writes.to_vec();
        Box::pin(async move {
            let revision = self.log.db.write(move |txn| apply_in(txn, &writes)).await?;
            self.log.applied.send_replace(revision);
            Ok(revision)
        })
    }

    fn snapshot<'a>(&'a self, prefix: &'a str) -> StoreFuture<'a, Snapshot> {
        Box::pin(async move {
            self.log.db.read(|txn| {
                let revision = revision(txn)?;
                let tree = txn.open_table(TREE).map_err(backend)?;
                let dir = path::dir_prefix(prefix);
                let mut leaves = BTreeMap::new();
                for row in tree.range::<&str>(dir.as_str()..).map_err(backend)? {
                    let (k, v) = row.map_err(backend)?;
                    if !k.value().starts_with(&dir) {
                        break;
                    }
                    leaves.insert(k.value().to_string(), v.value().to_string());
                }
                Ok(Snapshot::new(revision, leaves))
            })
        })
    }

    fn revision(&self) -> StoreFuture<'_, u64> {
        Box::pin(async move { self.log.db.read(revision) })
    }

    fn watch<'a>(&'a self, prefix: &'a str, from_revision: u64) -> StoreFuture<'a, Watch> {
        Box::pin(async move {
            path::segments(prefix)?;
            let log: Arc<dyn ChangeLog> = self.log.clone();
            log.changes(prefix, from_revision)?;
            Ok(Watch::new(log, prefix, from_revision, self.log.applied.subscribe()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(p: &str, v: &str) -> Write {
        Write::Put {
            path: p.into(),
            value: v.into(),
        }
    }

    #[tokio::test]
    async fn the_durable_store_conforms_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = RedbStore::new(Db::open(dir.path()).unwrap()).unwrap();
            super::super::conformance::metadata_store(&store).await;
            store.apply(&[put("/clusters/z/env/x", "kept")]).await.unwrap();
        }
        let store = RedbStore::new(Db::open(dir.path()).unwrap()).unwrap();
        let z = store.snapshot("/clusters/z").await.unwrap();
        assert_eq!(z.get("/clusters/z/env/x"), Some("kept"));
        // The change log survives too: a watch replays the write.
        let mut watch = store.watch("/clusters/z", z.revision()).await.unwrap();
        let change = watch.next().await.unwrap();
        assert_eq!(
            (change.revision, change.writes),
            (z.revision(), vec![put("/clusters/z/env/x", "kept")])
        );
    }

    #[tokio::test]
    async fn the_change_log_forgets_old_revisions() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::new(Db::open(dir.path()).unwrap()).unwrap();
        // One revision bigger than the whole log's budget pushes out the older ones.
        store.apply(&[put("/a/x", "1")]).await.unwrap();
        let big = "x".repeat(KEPT_BYTES as usize + 1);
        let last = store.apply(&[put("/a/y", &big)]).await.unwrap();
        let err = store.watch("/a", 1).await.err().unwrap();
        assert!(
            matches!(err, StoreError::Compacted { requested: 1, oldest } if oldest == last),
            "{err}"
        );
        assert!(store.watch("/a", last).await.is_ok());
    }

    #[tokio::test]
    async fn a_watch_on_a_quiet_prefix_is_not_compacted_away() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::new(Db::open(dir.path()).unwrap()).unwrap();
        let mut quiet = store.watch("/quiet", 1).await.unwrap();
        let wait = std::time::Duration::from_millis(20);
        // Revisions 1 to 3 touch another prefix; the waiting watch sees them go by.
        let part = "x".repeat(200 << 10);
        for key in ["a", "b", "c"] {
            store.apply(&[put(&format!("/busy/{key}"), &part)]).await.unwrap();
        }
        assert!(tokio::time::timeout(wait, quiet.next()).await.is_err());
        // Revision 4 pushes 1 to 3 out of the log; revision 5 is the quiet prefix's.
        let most = "x".repeat(KEPT_BYTES as usize - (300 << 10));
        store.apply(&[put("/busy/d", &most)]).await.unwrap();
        let last = store.apply(&[put("/quiet/x", "1")]).await.unwrap();
        assert!(matches!(
            store.watch("/quiet", 1).await,
            Err(StoreError::Compacted { .. })
        ));
        let change = quiet.next().await.expect("not compacted: the watch missed nothing");
        assert_eq!(change.revision, last);
    }
}
