//! The operation store's logic, written once over the key-value
//! transactions each backend (memory, redb) provides: records are JSON
//! strings in a few tables, and every rule (a busy cluster refuses, nodes get
//! IPs, an operation ends atomically) lives here, not in the backends.

use super::backend::{Backend, Read, Table, Write};
use super::records::{Event, Operation, OperationStatus, StepRecord};
use super::{Claim, ClusterChange, OperationChange, OperationStore, StoreError, StoreFuture, ips};
use crate::cluster::Cluster;
use crate::durable::{decode, encode};

/// Zero-padded so that keys sort in numeric order.
fn step_key(op: &str, index: usize) -> String {
    format!("{op}/{index:06}")
}

fn event_key(op: &str, seq: u64) -> String {
    format!("{op}/{seq:012}")
}

pub(crate) fn get_record<T: serde::de::DeserializeOwned>(
    r: &(impl Read + ?Sized),
    table: Table,
    key: &str,
) -> Result<Option<T>, StoreError> {
    r.get(table, key)?
        .map(|v| decode(key, &v).map_err(StoreError::from))
        .transpose()
}

fn put_record<T: serde::Serialize>(
    w: &mut (impl Write + ?Sized),
    table: Table,
    key: &str,
    value: &T,
) -> Result<(), StoreError> {
    w.put(table, key, &encode(value))
}

pub(crate) fn all_records<T: serde::de::DeserializeOwned>(
    r: &(impl Read + ?Sized),
    table: Table,
    prefix: &str,
) -> Result<Vec<T>, StoreError> {
    r.scan(table, prefix)?
        .iter()
        .map(|(k, v)| decode(k, v).map_err(StoreError::from))
        .collect()
}

/// The steps of an operation, by index.
pub(crate) fn steps(r: &(impl Read + ?Sized), op: &str) -> Result<Vec<StepRecord>, StoreError> {
    all_records(r, Table::Steps, &format!("{op}/"))
}

/// The events of an operation, in order.
pub(crate) fn events(r: &(impl Read + ?Sized), op: &str) -> Result<Vec<Event>, StoreError> {
    all_records(r, Table::Events, &format!("{op}/"))
}

pub(crate) fn put_step(w: &mut (impl Write + ?Sized), op: &str, step: &StepRecord) -> Result<(), StoreError> {
    put_record(w, Table::Steps, &step_key(op, step.index), step)
}

pub(crate) fn put_events(w: &mut (impl Write + ?Sized), events: &[Event]) -> Result<(), StoreError> {
    for event in events {
        put_record(w, Table::Events, &event_key(&event.op, event.seq), event)?;
    }
    Ok(())
}

/// Reserves `n` event sequence numbers of an operation; returns the first.
pub(crate) fn next_seqs(w: &mut (impl Write + ?Sized), op: &str, n: u64) -> Result<u64, StoreError> {
    let key = format!("seq/{op}");
    let last: u64 = w.get(Table::Counters, &key)?.and_then(|v| v.parse().ok()).unwrap_or(0);
    w.put(Table::Counters, &key, &(last + n).to_string())?;
    Ok(last + 1)
}

fn stored_cluster(r: &(impl Read + ?Sized), id: &str) -> Result<Cluster, StoreError> {
    get_record(r, Table::Clusters, id)?.ok_or_else(|| StoreError::NotFound {
        kind: "cluster",
        id: id.to_string(),
    })
}

/// Stores a cluster, giving its nodes without an address one from its network's pool.
fn put_cluster(w: &mut (impl Write + ?Sized), mut cluster: Cluster) -> Result<Cluster, StoreError> {
    ips::allocate_missing(w, &mut cluster)?;
    put_record(w, Table::Clusters, &cluster.id.clone(), &cluster)?;
    Ok(cluster)
}

/// Changes a stored cluster; `change` may refuse.
pub(crate) fn update_cluster(
    w: &mut (impl Write + ?Sized),
    id: &str,
    change: &mut ClusterChange,
) -> Result<Cluster, StoreError> {
    let before = stored_cluster(w, id)?;
    let mut cluster = before.clone();
    change(&mut cluster)?;
    ips::release_departed(w, &before, &cluster)?;
    put_cluster(w, cluster)
}

/// Changes a stored operation; `change` may refuse.
pub(crate) fn update_operation(
    w: &mut (impl Write + ?Sized),
    id: &str,
    change: &mut OperationChange,
) -> Result<Operation, StoreError> {
    let mut op: Operation = get_record(w, Table::Operations, id)?.ok_or_else(|| StoreError::NotFound {
        kind: "operation",
        id: id.to_string(),
    })?;
    change(&mut op)?;
    put_record(w, Table::Operations, id, &op)?;
    Ok(op)
}

/// Starts an operation on a cluster: refused while another operation of
/// the cluster is unfinished.
pub(crate) fn begin(w: &mut (impl Write + ?Sized), cluster: &Cluster, op: &Operation) -> Result<Cluster, StoreError> {
    if let Some(stored) = get_record::<Cluster>(w, Table::Clusters, &cluster.id)?
        && let Some(busy) = &stored.operation
        && let Some(running) = get_record::<Operation>(w, Table::Operations, busy)?
        && running.status == OperationStatus::Running
    {
        return Err(StoreError::busy(&cluster.id, &running, None));
    }
    let mut cluster = cluster.clone();
    cluster.operation = Some(op.id.clone());
    let cluster = put_cluster(w, cluster)?;
    put_record(w, Table::Operations, &op.id, op)?;
    Ok(cluster)
}

/// Ends an operation: its last step, the operation and the cluster's state at once.
pub(crate) fn finish(
    w: &mut (impl Write + ?Sized),
    op: &Operation,
    steps: &[StepRecord],
    settle: &mut ClusterChange,
) -> Result<Operation, StoreError> {
    for step in steps {
        put_step(w, &op.id, step)?;
    }
    update_cluster(w, &op.cluster_id, settle)?;
    put_record(w, Table::Operations, &op.id, op)?;
    Ok(op.clone())
}

/// Every operation, oldest first.
pub(crate) fn operations(r: &(impl Read + ?Sized)) -> Result<Vec<Operation>, StoreError> {
    let mut ops: Vec<Operation> = all_records(r, Table::Operations, "")?;
    ops.sort_by(|a, b| a.created_at.cmp(&b.created_at));
    Ok(ops)
}

/// The operation store over a backend.
#[derive(Clone)]
pub struct KvStore<B> {
    pub(super) backend: B,
}

impl<B: Backend> OperationStore for KvStore<B> {
    fn cluster(&self, id: &str) -> Result<Option<Cluster>, StoreError> {
        self.backend.read(|r| get_record(r, Table::Clusters, id))
    }

    fn clusters(&self) -> Result<Vec<Cluster>, StoreError> {
        self.backend.read(|r| all_records(r, Table::Clusters, ""))
    }

    fn update_cluster<'a>(&'a self, id: &'a str, mut change: ClusterChange) -> StoreFuture<'a, Cluster> {
        let id = id.to_string();
        Box::pin(self.backend.write(move |w| update_cluster(w, &id, &mut change)))
    }

    fn operation(&self, id: &str) -> Result<Option<Operation>, StoreError> {
        self.backend.read(|r| get_record(r, Table::Operations, id))
    }

    fn cancel_requested(&self, id: &str) -> Result<bool, StoreError> {
        /// The one field read; the plan and the rest are skipped unparsed.
        #[derive(serde::Deserialize)]
        struct Flag {
            #[serde(default)]
            cancel_requested: bool,
        }
        let flag: Option<Flag> = self.backend.read(|r| get_record(r, Table::Operations, id))?;
        Ok(flag.is_some_and(|f| f.cancel_requested))
    }

    fn operations(&self) -> Result<Vec<Operation>, StoreError> {
        self.backend.read(|r| operations(r))
    }

    fn update_operation<'a>(&'a self, id: &'a str, mut change: OperationChange) -> StoreFuture<'a, Operation> {
        let id = id.to_string();
        Box::pin(self.backend.write(move |w| update_operation(w, &id, &mut change)))
    }

    fn begin<'a>(&'a self, cluster: Cluster, op: Operation) -> StoreFuture<'a, Cluster> {
        Box::pin(self.backend.write(move |w| begin(w, &cluster, &op)))
    }

    fn finish<'a>(
        &'a self,
        op: Operation,
        steps: Vec<StepRecord>,
        mut settle: ClusterChange,
    ) -> StoreFuture<'a, Operation> {
        Box::pin(self.backend.write(move |w| finish(w, &op, &steps, &mut settle)))
    }

    fn steps(&self, op: &str) -> Result<Vec<StepRecord>, StoreError> {
        self.backend.read(|r| steps(r, op))
    }

    fn put_step<'a>(&'a self, op: &'a str, step: StepRecord) -> StoreFuture<'a, ()> {
        let op = op.to_string();
        Box::pin(self.backend.write(move |w| put_step(w, &op, &step)))
    }

    fn events(&self, op: &str) -> Result<Vec<Event>, StoreError> {
        self.backend.read(|r| events(r, op))
    }

    fn put_events(&self, events: Vec<Event>) -> StoreFuture<'_, ()> {
        Box::pin(self.backend.write(move |w| put_events(w, &events)))
    }

    fn next_seqs<'a>(&'a self, op: &'a str, n: u64) -> StoreFuture<'a, u64> {
        let op = op.to_string();
        Box::pin(self.backend.write(move |w| next_seqs(w, &op, n)))
    }

    fn claim(&self, op: &str) -> Result<Claim, StoreError> {
        self.backend.claim(op)
    }

    fn claimant(&self, op: &str) -> Option<u32> {
        self.backend.claimant(op)
    }
}
