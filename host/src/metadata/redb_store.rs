//! The durable metadata store: the tree in the embedded redb file.

use super::{MetadataStore, Snapshot, StoreError, StoreFuture, Tree, Write, apply_writes, path};
use crate::state::{COUNTERS, Db, DbError, TREE};
use redb::{ReadableTable, Table};
use std::collections::BTreeMap;

/// The counter holding the tree's revision.
const REVISION: &str = "revision";

/// The metadata tree kept in the state store; every write bumps the revision.
#[derive(Clone)]
pub struct RedbStore {
    db: Db,
}

impl RedbStore {
    /// The tree of the store `db`.
    pub fn new(db: Db) -> Self {
        RedbStore { db }
    }
}

impl From<DbError> for StoreError {
    fn from(e: DbError) -> Self {
        StoreError::Backend(e.to_string())
    }
}

/// Carries a tree error through the store's error type.
fn refused(e: StoreError) -> DbError {
    DbError::Conflict(e.to_string())
}

struct TableTree<'a, 'txn>(&'a mut Table<'txn, &'static str, &'static str>);

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

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

impl MetadataStore for RedbStore {
    fn apply<'a>(&'a self, writes: &'a [Write]) -> StoreFuture<'a, u64> {
        let writes = writes.to_vec();
        Box::pin(async move {
            let revision = self
                .db
                .write(move |txn| {
                    let mut tree = txn.open_table(TREE)?;
                    apply_writes(&mut TableTree(&mut tree), &writes).map_err(refused)?;
                    let mut counters = txn.open_table(COUNTERS)?;
                    let revision = counters.get(REVISION)?.map(|v| v.value()).unwrap_or(0) + 1;
                    counters.insert(REVISION, revision)?;
                    Ok(revision)
                })
                .await?;
            Ok(revision)
        })
    }

    fn snapshot<'a>(&'a self, prefix: &'a str) -> StoreFuture<'a, Snapshot> {
        Box::pin(async move {
            let snapshot = self.db.read(|txn| {
                let revision = txn.open_table(COUNTERS)?.get(REVISION)?.map(|v| v.value()).unwrap_or(0);
                let tree = txn.open_table(TREE)?;
                let dir = path::dir_prefix(prefix);
                let mut leaves = BTreeMap::new();
                for row in tree.range::<&str>(dir.as_str()..)? {
                    let (k, v) = row?;
                    if !k.value().starts_with(&dir) {
                        break;
                    }
                    leaves.insert(k.value().to_string(), v.value().to_string());
                }
                Ok(Snapshot::new(revision, leaves))
            })?;
            Ok(snapshot)
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
    async fn the_durable_tree_behaves_like_the_memory_one_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = RedbStore::new(Db::open(dir.path()).unwrap());
            assert_eq!(
                store
                    .apply(&[put("/clusters/a/env/x", "1"), put("/clusters/b/env/x", "2")])
                    .await
                    .unwrap(),
                1
            );
            let err = store
                .apply(&[put("/clusters/a/env/y", "3"), put("/clusters/a/env/x/z", "4")])
                .await
                .unwrap_err();
            assert!(
                err.to_string().contains("would be both a value and a directory"),
                "{err}"
            );
            assert!(store.apply(&[put("/clusters/a/../b", "x")]).await.is_err());
            let snap = store.snapshot("/clusters/a").await.unwrap();
            assert_eq!(snap.revision(), 1, "failed writes change nothing");
            assert_eq!(snap.get("/clusters/a/env/y"), None);
            assert_eq!(snap.get("/clusters/b/env/x"), None);
            store
                .apply(&[Write::DeleteTree {
                    path: "/clusters/a".into(),
                }])
                .await
                .unwrap();
        }
        let store = RedbStore::new(Db::open(dir.path()).unwrap());
        assert_eq!(
            store
                .snapshot("/clusters/a")
                .await
                .unwrap()
                .under("/clusters/a")
                .count(),
            0
        );
        let b = store.snapshot("/clusters/b").await.unwrap();
        assert_eq!((b.revision(), b.get("/clusters/b/env/x")), (2, Some("2")));
    }
}
