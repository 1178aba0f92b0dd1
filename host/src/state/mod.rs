//! Durable state: the redb store holding the metadata tree, the clusters,
//! the operations with their plans, the step journal and the hook events.

mod db;
mod ips;
mod records;

pub use db::{DB_FILE, Db, DbError};
pub use ips::{allocate_ips, mac_of, release_ips};
pub use records::*;

pub(crate) use db::{CLUSTERS, COUNTERS, EVENTS, OPERATIONS, STEPS, TREE, decode, encode};
use redb::{ReadableTable, WriteTransaction};

/// A serde enum's name (`create-cluster`).
pub fn kebab_name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// Why a cluster cannot take another operation; `state` says whether the
/// running one is running or interrupted, when known.
pub fn busy_message(cluster: &str, running: &Operation, state: Option<&str>) -> String {
    let state = state.map(|s| format!(" ({s})")).unwrap_or_default();
    let id = &running.id;
    format!(
        "cluster {cluster} is busy: operation {id} ({}) is unfinished{state}; wait for it, or `hookhost op resume {id}` / `hookhost op cancel {id}`",
        running.kind
    )
}

/// A fresh id: `prefix-` and 8 lowercase letters or digits.
pub fn new_id(prefix: &str) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let tail: String = (0..8).map(|_| CHARS[fastrand::usize(..CHARS.len())] as char).collect();
    format!("{prefix}-{tail}")
}

/// Zero-padded so that keys sort in numeric order.
pub(crate) fn step_key(op: &str, index: usize) -> String {
    format!("{op}/{index:06}")
}

fn event_key(op: &str, seq: u64) -> String {
    format!("{op}/{seq:012}")
}

fn read_all<T: serde::de::DeserializeOwned>(
    txn: &redb::ReadTransaction,
    table: redb::TableDefinition<&str, &str>,
    prefix: &str,
) -> Result<Vec<T>, DbError> {
    let table = txn.open_table(table)?;
    let mut out = Vec::new();
    for row in table.range::<&str>(prefix..)? {
        let (k, v) = row?;
        if !k.value().starts_with(prefix) {
            break;
        }
        out.push(decode(k.value(), v.value())?);
    }
    Ok(out)
}

/// Writes a JSON record in a write transaction.
pub(crate) fn put_json<T: serde::Serialize>(
    txn: &WriteTransaction,
    table: redb::TableDefinition<&str, &str>,
    key: &str,
    value: &T,
) -> Result<(), DbError> {
    txn.open_table(table)?.insert(key, encode(value).as_str())?;
    Ok(())
}

/// Reads a JSON record in a write transaction.
pub(crate) fn get_json<T: serde::de::DeserializeOwned>(
    txn: &WriteTransaction,
    table: redb::TableDefinition<&str, &str>,
    key: &str,
) -> Result<Option<T>, DbError> {
    let table = txn.open_table(table)?;
    let value = table.get(key)?;
    value.map(|v| decode(key, v.value())).transpose()
}

impl Db {
    /// The cluster `id`.
    pub fn cluster(&self, id: &str) -> Result<Option<Cluster>, DbError> {
        self.read(|txn| {
            let table = txn.open_table(CLUSTERS)?;
            let value = table.get(id)?;
            value.map(|v| decode(id, v.value())).transpose()
        })
    }

    /// Every cluster, deleted ones included, by id.
    pub fn clusters(&self) -> Result<Vec<Cluster>, DbError> {
        self.read(|txn| read_all(txn, CLUSTERS, ""))
    }

    /// Stores a cluster record.
    pub async fn put_cluster(&self, cluster: Cluster) -> Result<(), DbError> {
        self.write(move |txn| put_json(txn, CLUSTERS, &cluster.id.clone(), &cluster))
            .await
    }

    /// The operation `id`.
    pub fn operation(&self, id: &str) -> Result<Option<Operation>, DbError> {
        self.read(|txn| {
            let table = txn.open_table(OPERATIONS)?;
            let value = table.get(id)?;
            value.map(|v| decode(id, v.value())).transpose()
        })
    }

    /// Every operation, oldest first.
    pub fn operations(&self) -> Result<Vec<Operation>, DbError> {
        let mut ops: Vec<Operation> = self.read(|txn| read_all(txn, OPERATIONS, ""))?;
        ops.sort_by(|a, b| a.created_at.cmp(&b.created_at));
        Ok(ops)
    }

    /// Stores an operation record.
    pub async fn put_operation(&self, op: Operation) -> Result<(), DbError> {
        self.write(move |txn| put_json(txn, OPERATIONS, &op.id.clone(), &op))
            .await
    }

    /// The journal of an operation, by step index.
    pub fn steps(&self, op: &str) -> Result<Vec<StepRecord>, DbError> {
        self.read(|txn| read_all(txn, STEPS, &format!("{op}/")))
    }

    /// Journals a step (its start, or its end).
    pub async fn put_step(&self, op: &str, step: StepRecord) -> Result<(), DbError> {
        let key = step_key(op, step.index);
        self.write(move |txn| put_json(txn, STEPS, &key, &step)).await
    }

    /// The hook events of an operation, in order.
    pub fn events(&self, op: &str) -> Result<Vec<Event>, DbError> {
        self.read(|txn| read_all(txn, EVENTS, &format!("{op}/")))
    }

    /// Stores events (new ones, or the end of running ones) in one batch.
    pub async fn put_events(&self, events: Vec<Event>) -> Result<(), DbError> {
        self.write(move |txn| {
            let mut table = txn.open_table(EVENTS)?;
            for event in &events {
                table.insert(event_key(&event.op, event.seq).as_str(), encode(event).as_str())?;
            }
            Ok(())
        })
        .await
    }

    /// Reserves `n` event sequence numbers of an operation; returns the first.
    pub async fn next_seqs(&self, op: &str, n: u64) -> Result<u64, DbError> {
        let key = format!("seq/{op}");
        self.write(move |txn| {
            let mut table = txn.open_table(COUNTERS)?;
            let first = table.get(key.as_str())?.map(|v| v.value()).unwrap_or(0) + 1;
            table.insert(key.as_str(), first + n - 1)?;
            Ok(first)
        })
        .await
    }

    /// Changes a stored operation atomically; `f` may refuse.
    pub async fn update_operation(
        &self,
        id: &str,
        mut f: impl FnMut(&mut Operation) -> Result<(), DbError> + Send + 'static,
    ) -> Result<Operation, DbError> {
        let id = id.to_string();
        self.write(move |txn| {
            let mut op: Operation =
                get_json(txn, OPERATIONS, &id)?.ok_or_else(|| DbError::Conflict(format!("no operation {id}")))?;
            f(&mut op)?;
            put_json(txn, OPERATIONS, &id, &op)?;
            Ok(op)
        })
        .await
    }

    /// Starts an operation on a cluster, atomically: refused while another
    /// operation of the cluster is unfinished. `setup` may change the cluster
    /// in the same transaction (allocations).
    pub async fn begin_operation(
        &self,
        cluster: Cluster,
        op: Operation,
        mut setup: impl FnMut(&WriteTransaction, &mut Cluster) -> Result<(), DbError> + Send + 'static,
    ) -> Result<Cluster, DbError> {
        self.write(move |txn| {
            if let Some(stored) = get_json::<Cluster>(txn, CLUSTERS, &cluster.id)?
                && let Some(busy) = &stored.operation
                && let Some(running) = get_json::<Operation>(txn, OPERATIONS, busy)?
                && running.status == OperationStatus::Running
            {
                return Err(DbError::Conflict(busy_message(&cluster.id, &running, None)));
            }
            let mut cluster = cluster.clone();
            setup(txn, &mut cluster)?;
            cluster.operation = Some(op.id.clone());
            put_json(txn, CLUSTERS, &cluster.id, &cluster)?;
            put_json(txn, OPERATIONS, &op.id, &op)?;
            Ok(cluster)
        })
        .await
    }
}
