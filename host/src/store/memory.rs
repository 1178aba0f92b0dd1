//! The operation store in memory: executor tests, and embedding without a
//! state directory. Writes are atomic: a transaction works on an overlay
//! that lands only when it succeeds.

use super::backend::{Backend, Overlay, Read, Table, Write};
use super::claim::Claims;
use super::kv::KvStore;
use super::{Claim, StoreError};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

type Tables = BTreeMap<Table, BTreeMap<String, String>>;

/// The in-memory backend; clones share it.
#[derive(Clone, Default)]
pub struct MemoryBackend {
    tables: Arc<Mutex<Tables>>,
    claims: Claims,
}

/// The operation store in memory.
pub type MemoryOps = KvStore<MemoryBackend>;

impl MemoryOps {
    /// An empty store.
    pub fn new() -> MemoryOps {
        KvStore {
            backend: MemoryBackend::default(),
        }
    }
}

impl Default for MemoryOps {
    fn default() -> Self {
        Self::new()
    }
}

fn scan_map(map: Option<&BTreeMap<String, String>>, prefix: &str) -> BTreeMap<String, String> {
    map.map(|m| {
        m.range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    })
    .unwrap_or_default()
}

impl Read for Tables {
    fn get(&self, table: Table, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.get(&table).and_then(|t| t.get(key)).cloned())
    }

    fn scan(&self, table: Table, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        Ok(scan_map(self.get(&table), prefix).into_iter().collect())
    }
}

impl MemoryBackend {
    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Backend for MemoryBackend {
    fn read<T>(&self, f: impl FnOnce(&dyn Read) -> Result<T, StoreError>) -> Result<T, StoreError> {
        f(&*self.lock())
    }

    fn write<T: Send + 'static>(
        &self,
        mut f: impl FnMut(&mut dyn Write) -> Result<T, StoreError> + Send + 'static,
    ) -> impl Future<Output = Result<T, StoreError>> + Send {
        // One lock for the whole transaction: reads, then the changes landing.
        let mut tables = self.lock();
        let done = {
            let mut overlay = Overlay::new(&*tables);
            f(&mut overlay).map(|out| (out, overlay.changes))
        };
        let result = done.map(|(out, changes)| {
            for ((table, key), change) in changes {
                let rows = tables.entry(table).or_default();
                match change {
                    Some(value) => rows.insert(key, value),
                    None => rows.remove(&key),
                };
            }
            out
        });
        drop(tables);
        std::future::ready(result)
    }

    fn claim(&self, op: &str) -> Result<Claim, StoreError> {
        self.claims.claim(op)
    }

    fn claimant(&self, op: &str) -> Option<u32> {
        self.claims.claimant(op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_memory_store_conforms() {
        super::super::conformance::operation_store(&MemoryOps::new()).await;
    }
}
