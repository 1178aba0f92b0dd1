//! The operation store in the embedded durable file (redb), beside the
//! metadata tree; operations are claimed with lock files in the state directory.

use super::backend::{Backend, Read, Table, Write};
use super::claim::{claim_file, file_claimant};
use super::kv::KvStore;
use super::{Claim, StoreError};
use crate::durable::{Db, DbError};
use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use std::future::Future;

/// The durable backend.
#[derive(Clone)]
pub struct RedbBackend {
    db: Db,
}

/// The operation store in the state directory's redb file.
pub type RedbOps = KvStore<RedbBackend>;

impl RedbOps {
    /// The operation store of the file `db`.
    pub fn new(db: Db) -> Result<RedbOps, StoreError> {
        let tables: Vec<_> = Table::ALL.iter().map(|t| definition(*t)).collect();
        db.ensure_tables(&tables, &[])?;
        Ok(KvStore {
            backend: RedbBackend { db },
        })
    }
}

fn definition(table: Table) -> TableDefinition<'static, &'static str, &'static str> {
    TableDefinition::new(table.name())
}

fn redb(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Db(DbError::Redb(e.into()))
}

fn scan_table(
    table: &impl ReadableTable<&'static str, &'static str>,
    prefix: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    let mut rows = Vec::new();
    for row in table.range::<&str>(prefix..).map_err(redb)? {
        let (k, v) = row.map_err(redb)?;
        if !k.value().starts_with(prefix) {
            break;
        }
        rows.push((k.value().to_string(), v.value().to_string()));
    }
    Ok(rows)
}

struct Reading<'a>(&'a ReadTransaction);

impl Read for Reading<'_> {
    fn get(&self, table: Table, key: &str) -> Result<Option<String>, StoreError> {
        let table = self.0.open_table(definition(table)).map_err(redb)?;
        Ok(table.get(key).map_err(redb)?.map(|v| v.value().to_string()))
    }

    fn scan(&self, table: Table, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        scan_table(&self.0.open_table(definition(table)).map_err(redb)?, prefix)
    }
}

/// A write transaction, each table opened once (redb allows no second opening).
struct Writing<'a> {
    txn: &'a WriteTransaction,
    open: Vec<(Table, redb::Table<'a, &'static str, &'static str>)>,
}

impl<'a> Writing<'a> {
    fn table(&mut self, table: Table) -> Result<&mut redb::Table<'a, &'static str, &'static str>, StoreError> {
        let at = match self.open.iter().position(|(t, _)| *t == table) {
            Some(at) => at,
            None => {
                let opened = self.txn.open_table(definition(table)).map_err(redb)?;
                self.open.push((table, opened));
                self.open.len() - 1
            }
        };
        Ok(&mut self.open[at].1)
    }
}

impl Read for Writing<'_> {
    fn get(&self, table: Table, key: &str) -> Result<Option<String>, StoreError> {
        match self.open.iter().find(|(t, _)| *t == table) {
            Some((_, opened)) => Ok(opened.get(key).map_err(redb)?.map(|v| v.value().to_string())),
            None => {
                let opened = self.txn.open_table(definition(table)).map_err(redb)?;
                Ok(opened.get(key).map_err(redb)?.map(|v| v.value().to_string()))
            }
        }
    }

    fn scan(&self, table: Table, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        match self.open.iter().find(|(t, _)| *t == table) {
            Some((_, opened)) => scan_table(opened, prefix),
            None => scan_table(&self.txn.open_table(definition(table)).map_err(redb)?, prefix),
        }
    }
}

impl Write for Writing<'_> {
    fn put(&mut self, table: Table, key: &str, value: &str) -> Result<(), StoreError> {
        self.table(table)?.insert(key, value).map_err(redb)?;
        Ok(())
    }

    fn remove(&mut self, table: Table, key: &str) -> Result<(), StoreError> {
        self.table(table)?.remove(key).map_err(redb)?;
        Ok(())
    }
}

impl Backend for RedbBackend {
    fn read<T>(&self, f: impl FnOnce(&dyn Read) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.db.read(|txn| f(&Reading(txn)))
    }

    fn write<T: Send + 'static>(
        &self,
        mut f: impl FnMut(&mut dyn Write) -> Result<T, StoreError> + Send + 'static,
    ) -> impl Future<Output = Result<T, StoreError>> + Send {
        let db = self.db.clone();
        async move {
            db.write(move |txn| {
                let mut writing = Writing { txn, open: Vec::new() };
                f(&mut writing)
            })
            .await
        }
    }

    fn claim(&self, op: &str) -> Result<Claim, StoreError> {
        claim_file(self.db.dir(), op)
    }

    fn claimant(&self, op: &str) -> Option<u32> {
        file_claimant(self.db.dir(), op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_durable_store_conforms_and_keeps_what_it_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let kept = {
            let store = RedbOps::new(Db::open(dir.path()).unwrap()).unwrap();
            super::super::conformance::operation_store(&store).await
        };
        use super::super::OperationStore;
        let store = RedbOps::new(Db::open(dir.path()).unwrap()).unwrap();
        let cluster = store.cluster(&kept.cluster_id).unwrap().unwrap();
        assert_eq!(cluster.operation.as_deref(), Some("op-6"), "the last operation begun");
        assert_eq!(store.operation(&kept.id).unwrap().unwrap().status, kept.status);
        assert!(!store.steps(&kept.id).unwrap().is_empty());
    }
}
