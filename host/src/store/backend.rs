//! What a backend of the operation store provides: tables of string keys
//! and values, consistent reads, atomic durable writes, and claims.

use super::{Claim, StoreError};
use std::collections::BTreeMap;
use std::future::Future;

/// The tables, each of string keys and string values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Table {
    /// Cluster id → cluster JSON.
    Clusters,
    /// Operation id → operation JSON.
    Operations,
    /// `<op>/<index>` → step record JSON.
    Steps,
    /// `<op>/<seq>` → event JSON.
    Events,
    /// `<vxnet>/<ip>` → `<cluster>/<node>`.
    Ips,
    /// Counter name → decimal value.
    Counters,
}

impl Table {
    /// Every table.
    pub(crate) const ALL: [Table; 6] = [
        Table::Clusters,
        Table::Operations,
        Table::Steps,
        Table::Events,
        Table::Ips,
        Table::Counters,
    ];

    /// Its name in a backend.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Table::Clusters => "clusters",
            Table::Operations => "operations",
            Table::Steps => "steps",
            Table::Events => "events",
            Table::Ips => "ips",
            Table::Counters => "op-counters",
        }
    }
}

/// Reads of one consistent state.
pub trait Read {
    /// The value at a key.
    fn get(&self, table: Table, key: &str) -> Result<Option<String>, StoreError>;
    /// The rows whose key starts with `prefix`, in key order.
    fn scan(&self, table: Table, prefix: &str) -> Result<Vec<(String, String)>, StoreError>;
}

/// Reads and writes of one atomic transaction.
pub trait Write: Read {
    /// Sets a key.
    fn put(&mut self, table: Table, key: &str, value: &str) -> Result<(), StoreError>;
    /// Removes a key.
    fn remove(&mut self, table: Table, key: &str) -> Result<(), StoreError>;
}

/// What a backend gives the store's logic: reads and atomic writes of the
/// `kv` tables, and claims.
pub trait Backend: Send + Sync + 'static {
    /// Runs `f` on one consistent state.
    fn read<T>(&self, f: impl FnOnce(&dyn Read) -> Result<T, StoreError>) -> Result<T, StoreError>;
    /// Runs `f` in one atomic, durable transaction; all of it or none lands.
    /// `f` may run more than once.
    fn write<T: Send + 'static>(
        &self,
        f: impl FnMut(&mut dyn Write) -> Result<T, StoreError> + Send + 'static,
    ) -> impl Future<Output = Result<T, StoreError>> + Send;
    /// Claims an operation.
    fn claim(&self, op: &str) -> Result<Claim, StoreError>;
    /// Who holds an operation's claim.
    fn claimant(&self, op: &str) -> Option<u32>;
}

/// The changes of a transaction, by table and key (`None`: removed).
pub(crate) type Changes = BTreeMap<(Table, String), Option<String>>;

/// A transaction's view: its own changes over a consistent read of the
/// committed state; the changes land only if the transaction succeeds.
pub(crate) struct Overlay<'a> {
    base: &'a dyn Read,
    /// What the transaction changed.
    pub(crate) changes: Changes,
}

impl<'a> Overlay<'a> {
    /// No changes yet over `base`.
    pub(crate) fn new(base: &'a dyn Read) -> Overlay<'a> {
        Overlay {
            base,
            changes: BTreeMap::new(),
        }
    }
}

impl Read for Overlay<'_> {
    fn get(&self, table: Table, key: &str) -> Result<Option<String>, StoreError> {
        match self.changes.get(&(table, key.to_string())) {
            Some(change) => Ok(change.clone()),
            None => self.base.get(table, key),
        }
    }

    fn scan(&self, table: Table, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mut rows: BTreeMap<String, String> = self.base.scan(table, prefix)?.into_iter().collect();
        for ((t, key), change) in &self.changes {
            if *t == table && key.starts_with(prefix) {
                match change {
                    Some(value) => rows.insert(key.clone(), value.clone()),
                    None => rows.remove(key),
                };
            }
        }
        Ok(rows.into_iter().collect())
    }
}

impl Write for Overlay<'_> {
    fn put(&mut self, table: Table, key: &str, value: &str) -> Result<(), StoreError> {
        self.changes.insert((table, key.to_string()), Some(value.to_string()));
        Ok(())
    }

    fn remove(&mut self, table: Table, key: &str) -> Result<(), StoreError> {
        self.changes.insert((table, key.to_string()), None);
        Ok(())
    }
}
