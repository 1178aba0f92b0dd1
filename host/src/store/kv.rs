//! The operation store's logic, written once over the key-value
//! transactions each backend (memory, redb) provides: records are JSON
//! strings in a few tables, and every rule (a busy cluster refuses, nodes get
//! IPs, an operation ends atomically) lives here, not in the backends.

use super::backend::{Backend, Read, Table, Write};
use super::records::{Event, Operation, OperationStatus, StepRecord};
use super::{Claim, ClusterChange, ClustersChange, OperationChange, OperationStore, StoreError, StoreFuture, ips};
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

/// Stores changed clusters at once, their addresses following them: first
/// every record gives back what it no longer holds, then every one claims
/// what it newly holds (so two records may swap addresses), then each gets
/// addresses where it lacks them. `before` is `None` for a cluster not stored yet.
fn store_clusters(
    w: &mut (impl Write + ?Sized),
    before: Vec<Option<Cluster>>,
    mut after: Vec<Cluster>,
) -> Result<Vec<Cluster>, StoreError> {
    for (before, after) in before.iter().zip(&mut after) {
        // A deleted cluster shows no address the pool may give another.
        if after.status == crate::cluster::ClusterStatus::Deleted {
            crate::cluster::clear_reserved_ips(&mut after.spec);
        }
        if let Some(before) = before {
            ips::release(w, before, after)?;
        }
    }
    for (before, after) in before.iter().zip(&after) {
        ips::claim(w, before.as_ref(), after)?;
    }
    for after in &mut after {
        ips::allocate(w, after)?;
        put_record(w, Table::Clusters, &after.id.clone(), &*after)?;
    }
    Ok(after)
}

/// Changes a stored cluster; `change` may refuse.
pub(crate) fn update_cluster(
    w: &mut (impl Write + ?Sized),
    id: &str,
    change: &mut ClusterChange,
) -> Result<Cluster, StoreError> {
    let mut all = update_clusters(w, &[id.to_string()], &mut |clusters: &mut [Cluster]| {
        change(&mut clusters[0])
    })?;
    Ok(all.remove(0))
}

/// Changes stored clusters in one transaction; `change` may refuse.
pub(crate) fn update_clusters(
    w: &mut (impl Write + ?Sized),
    ids: &[String],
    change: &mut dyn FnMut(&mut [Cluster]) -> Result<(), StoreError>,
) -> Result<Vec<Cluster>, StoreError> {
    let before = ids
        .iter()
        .map(|id| stored_cluster(w, id))
        .collect::<Result<Vec<_>, _>>()?;
    let mut after = before.clone();
    change(&mut after)?;
    store_clusters(w, before.into_iter().map(Some).collect(), after)
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

/// The clusters an operation holds: its own, and the peer it works with
/// (the other cluster of an IP exchange), which it holds too.
fn held_by(cluster: &str, op: &Operation) -> Vec<String> {
    std::iter::once(cluster.to_string())
        .chain(op.request.peer_id().map(String::from))
        .collect()
}

/// Starts an operation on a cluster (and its peer, which takes the same
/// status): refused while another operation of either is unfinished.
pub(crate) fn begin(w: &mut (impl Write + ?Sized), cluster: &Cluster, op: &Operation) -> Result<Cluster, StoreError> {
    let (mut before, mut after) = (Vec::new(), Vec::new());
    for id in held_by(&cluster.id, op) {
        let stored = get_record::<Cluster>(w, Table::Clusters, &id)?;
        if let Some(busy) = stored.as_ref().and_then(|s| s.operation.as_ref())
            && let Some(running) = get_record::<Operation>(w, Table::Operations, busy)?
            && running.status == OperationStatus::Running
        {
            return Err(StoreError::busy(&id, &running, None));
        }
        let mut next = if id == cluster.id {
            cluster.clone()
        } else {
            let mut peer = stored.clone().ok_or_else(|| StoreError::NotFound {
                kind: "cluster",
                id: id.clone(),
            })?;
            // Checked as it was: an operation begun on it since may have changed anything.
            let checked = op.request.peer().and_then(|(_, last)| last);
            if peer.operation.as_deref() != checked {
                return Err(StoreError::Changed {
                    cluster: id.clone(),
                    operation: peer.operation.unwrap_or_default(),
                });
            }
            peer.status = cluster.status;
            peer
        };
        next.operation = Some(op.id.clone());
        before.push(stored);
        after.push(next);
    }
    let mut stored = store_clusters(w, before, after)?;
    put_record(w, Table::Operations, &op.id, op)?;
    Ok(stored.remove(0))
}

/// Ends an operation: its last step, the operation and the state of the
/// clusters it held (each settled alike) at once.
pub(crate) fn finish(
    w: &mut (impl Write + ?Sized),
    op: &Operation,
    steps: &[StepRecord],
    settle: &mut ClusterChange,
) -> Result<Operation, StoreError> {
    for step in steps {
        put_step(w, &op.id, step)?;
    }
    update_clusters(w, &held_by(&op.cluster_id, op), &mut |clusters: &mut [Cluster]| {
        clusters.iter_mut().try_for_each(&mut *settle)
    })?;
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

    fn update_clusters<'a>(&'a self, ids: Vec<String>, mut change: ClustersChange) -> StoreFuture<'a, Vec<Cluster>> {
        Box::pin(self.backend.write(move |w| update_clusters(w, &ids, &mut change)))
    }

    fn ip_holder(&self, vxnet: &str, ip: &str) -> Result<Option<String>, StoreError> {
        self.backend.read(|r| r.get(Table::Ips, &format!("{vxnet}/{ip}")))
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
