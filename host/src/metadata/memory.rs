//! An in-memory store: fixtures, tests and the CLI's `hook run`.

use super::{MetadataStore, Snapshot, StoreError, StoreFuture, Tree, Write, apply_writes, path};
use std::collections::BTreeMap;
use std::sync::RwLock;

/// The tree in a `BTreeMap`, guarded by one lock; writes are atomic per batch.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: RwLock<State>,
}

#[derive(Debug, Default, Clone)]
struct State {
    revision: u64,
    leaves: BTreeMap<String, String>,
}

impl MemoryStore {
    /// An empty store at revision 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies `writes` atomically (all or none) and returns the new revision.
    pub fn apply_now(&self, writes: &[Write]) -> Result<u64, StoreError> {
        let mut guard = self.state.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut next = guard.clone();
        apply_writes(&mut next.leaves, writes)?;
        next.revision += 1;
        *guard = next;
        Ok(guard.revision)
    }

    /// The snapshot of everything under `prefix`, now.
    pub fn snapshot_now(&self, prefix: &str) -> Snapshot {
        let guard = self.state.read().unwrap_or_else(|poisoned| poisoned.into_inner());
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

impl MetadataStore for MemoryStore {
    fn apply<'a>(&'a self, writes: &'a [Write]) -> StoreFuture<'a, u64> {
        Box::pin(async move { self.apply_now(writes) })
    }

    fn snapshot<'a>(&'a self, prefix: &'a str) -> StoreFuture<'a, Snapshot> {
        Box::pin(async move { Ok(self.snapshot_now(prefix)) })
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

    #[test]
    fn batches_are_atomic_and_bump_the_revision() {
        let store = MemoryStore::new();
        assert_eq!(
            store
                .apply_now(&[put("/clusters/a/env/x", "1"), put("/clusters/b/env/x", "2")])
                .unwrap(),
            1
        );
        let err = store
            .apply_now(&[put("/clusters/a/env/y", "3"), put("/clusters/a/env/x/z", "4")])
            .unwrap_err();
        assert!(matches!(err, StoreError::LeafConflict { .. }), "{err}");
        let snap = store.snapshot_now("/clusters/a");
        assert_eq!(snap.revision(), 1);
        assert_eq!(snap.get("/clusters/a/env/y"), None, "a failed batch writes nothing");
        assert_eq!(
            snap.get("/clusters/b/env/x"),
            None,
            "the snapshot holds only its prefix"
        );
        assert!(store.apply_now(&[put("/clusters/a/env", "leaf")]).is_err());
        assert_eq!(
            store
                .apply_now(&[Write::DeleteTree {
                    path: "/clusters/a".into()
                }])
                .unwrap(),
            2
        );
        assert!(store.snapshot_now("/clusters/a").under("/clusters/a").next().is_none());
    }
}
