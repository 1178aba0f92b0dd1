//! An in-memory store: fixtures, tests and the CLI's `hook run`.

use super::watch::{ChangeLog, RecentChanges};
use super::{Change, MetadataStore, Snapshot, StoreError, StoreFuture, Tree, Watch, Write, apply_writes, path};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use tokio::sync::watch;

/// The tree in a `BTreeMap`, guarded by one lock; writes are atomic per batch.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: RwLock<State>,
    applied: watch::Sender<u64>,
}

#[derive(Debug, Default, Clone)]
struct State {
    revision: u64,
    leaves: BTreeMap<String, String>,
    changes: RecentChanges,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore {
            inner: Arc::new(Inner {
                state: RwLock::default(),
                applied: watch::Sender::new(0),
            }),
        }
    }
}

impl MemoryStore {
    /// An empty store at revision 0.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.inner.state.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies `writes` atomically (all or none) and returns the new revision.
    pub fn apply_now(&self, writes: &[Write]) -> Result<u64, StoreError> {
        let mut guard = self
            .inner
            .state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut leaves = guard.leaves.clone();
        apply_writes(&mut leaves, writes)?;
        let revision = guard.revision + 1;
        guard.leaves = leaves;
        guard.revision = revision;
        guard.changes.record(revision, writes);
        drop(guard);
        self.inner.applied.send_replace(revision);
        Ok(revision)
    }

    /// The snapshot of everything under `prefix`, now.
    pub fn snapshot_now(&self, prefix: &str) -> Snapshot {
        let guard = self.read();
        let dir = path::dir_prefix(prefix);
        let leaves = guard
            .leaves
            .range(dir.clone()..)
            .take_while(|(k, _)| k.starts_with(&dir))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Snapshot::new(guard.revision, leaves)
    }
}

impl Tree for BTreeMap<String, String> {
    fn has(&self, path: &str) -> bool {
        self.contains_key(path)
    }

    fn first_under(&self, dir: &str) -> Option<String> {
        self.range(dir.to_string()..)
            .next()
            .filter(|(k, _)| k.starts_with(dir))
            .map(|(k, _)| k.clone())
    }

    fn put(&mut self, path: &str, value: &str) -> Result<(), StoreError> {
        self.insert(path.to_string(), value.to_string());
        Ok(())
    }

    fn delete_tree(&mut self, path: &str, dir: &str) -> Result<(), StoreError> {
        self.retain(|k, _| k != path && !k.starts_with(dir));
        Ok(())
    }
}

impl ChangeLog for Inner {
    fn changes(&self, prefix: &str, from: u64) -> Result<(Vec<Change>, u64), StoreError> {
        let guard = self.state.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        guard.changes.since(prefix, from, guard.revision)
    }
}

impl MetadataStore for MemoryStore {
    fn apply<'a>(&'a self, writes: &'a [Write]) -> StoreFuture<'a, u64> {
        Box::pin(async move { self.apply_now(writes) })
    }

    fn snapshot<'a>(&'a self, prefix: &'a str) -> StoreFuture<'a, Snapshot> {
        Box::pin(async move { Ok(self.snapshot_now(prefix)) })
    }

    fn revision(&self) -> StoreFuture<'_, u64> {
        Box::pin(async move { Ok(self.read().revision) })
    }

    fn watch<'a>(&'a self, prefix: &'a str, from_revision: u64) -> StoreFuture<'a, Watch> {
        Box::pin(async move {
            path::segments(prefix)?;
            let log: Arc<dyn ChangeLog> = self.inner.clone();
            // Fail now, not at the first read, when the revision is gone.
            log.changes(prefix, from_revision)?;
            Ok(Watch::new(log, prefix, from_revision, self.inner.applied.subscribe()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_memory_store_conforms() {
        super::super::conformance::metadata_store(&MemoryStore::new()).await;
    }
}
