//! The operation store: clusters, operations with their request and plan,
//! the step journal, hook events, IP pools and who runs which operation.
//!
//! [`OperationStore`] is what the engine talks to; no storage engine's type
//! appears in it. Its rules are written once (`kv`) over the small key-value
//! transactions each backend provides (`backend`): [`MemoryOps`] (tests, embedding)
//! [`RedbOps`] (the embedded durable default) and, with the `etcd` feature,
//! `EtcdOps` (a deployment of many hosts). Every implementation
//! passes the one conformance suite (`store::conformance`).

mod backend;
mod claim;
#[cfg(test)]
pub(crate) mod conformance;
#[cfg(feature = "etcd")]
mod etcd;
mod ips;
mod kv;
mod memory;
mod records;
mod redb;

pub use claim::Claim;
#[cfg(feature = "etcd")]
pub use etcd::EtcdOps;
pub use ips::{check_pinned, mac_of};
pub use kv::KvStore;
pub use memory::MemoryOps;
pub use records::*;
pub use redb::RedbOps;

use crate::cluster::Cluster;
use crate::durable::DbError;
use crate::request::OperationKind;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use thiserror::Error;

/// Why the operation store failed or refused.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The backing file failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// etcd failed, or holds what this store cannot read.
    #[error("{0}")]
    Etcd(String),
    /// Another operation of the cluster is unfinished.
    #[error(
        "cluster {cluster} is busy: operation {operation} ({kind}) is unfinished{}; {}",
        state.map(|s| format!(" ({s})")).unwrap_or_default(),
        match state {
            Some("running") => format!("wait for it, or `hookhost op cancel {operation}`"),
            Some("interrupted") => format!("its process died: `hookhost op resume {operation}` finishes it, `hookhost op cancel {operation}` ends it"),
            _ => format!("wait for it, or `hookhost op resume {operation}` / `hookhost op cancel {operation}`"),
        }
    )]
    Busy {
        /// The cluster.
        cluster: String,
        /// The unfinished operation.
        operation: String,
        /// Its kind.
        kind: OperationKind,
        /// `running` or `interrupted`, when known.
        state: Option<&'static str>,
    },
    /// No such record.
    #[error("no {kind} {}", shown(id))]
    NotFound {
        /// `cluster` or `operation`.
        kind: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The operation has ended; it cannot change any more.
    #[error("operation {operation} has already ended: it {}", status.past())]
    Ended {
        /// The operation.
        operation: String,
        /// How it ended.
        status: OperationStatus,
    },
    /// The network's IP pool is used up.
    #[error("network {vxnet} has no free address left")]
    PoolExhausted {
        /// The network.
        vxnet: String,
    },
    /// An operation's other cluster changed after the request was checked.
    #[error("cluster {cluster} changed since the request was checked (operation {operation} ran on it); ask again")]
    Changed {
        /// The other cluster.
        cluster: String,
        /// The operation that ran on it.
        operation: String,
    },
    /// A pinned address is another's.
    #[error("address {ip} of network {vxnet} is held by {holder}")]
    IpTaken {
        /// The network.
        vxnet: String,
        /// The address.
        ip: String,
        /// Who holds it (`<cluster>/<node>` or `<cluster>/reserved/<name>`).
        holder: String,
    },
    /// Another process runs the operation.
    #[error("operation {operation} is being run by process {pid}")]
    Claimed {
        /// The operation.
        operation: String,
        /// The process holding it.
        pid: u32,
    },
    /// A claim's lock file cannot be used.
    #[error("cannot lock {path}: {source}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// An id as messages show it: an empty one visibly, a long one cut.
fn shown(id: &str) -> String {
    const MAX: usize = 64;
    match id.char_indices().nth(MAX) {
        _ if id.is_empty() => "\"\" (an empty id)".into(),
        Some((cut, _)) => format!("{}... ({} characters)", &id[..cut], id.chars().count()),
        None => id.to_string(),
    }
}

impl StoreError {
    /// The refusal of an operation on a cluster another operation holds.
    pub fn busy(cluster: &str, running: &Operation, state: Option<&'static str>) -> StoreError {
        StoreError::Busy {
            cluster: cluster.to_string(),
            operation: running.id.clone(),
            kind: running.kind(),
            state,
        }
    }
}

/// A boxed future returned by [`OperationStore`] methods.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A change to a stored cluster, made inside the store's transaction; it may
/// refuse. It may run more than once, so it must only change the cluster.
pub type ClusterChange = Box<dyn FnMut(&mut Cluster) -> Result<(), StoreError> + Send>;

/// A change to several stored clusters at once (in the order asked for).
pub type ClustersChange = Box<dyn FnMut(&mut [Cluster]) -> Result<(), StoreError> + Send>;

/// A change to a stored operation, made inside the store's transaction.
pub type OperationChange = Box<dyn FnMut(&mut Operation) -> Result<(), StoreError> + Send>;

/// Where the engine keeps clusters, operations, their journal and events.
/// Every write is durable (for the durable implementations) before it returns.
pub trait OperationStore: Send + Sync {
    /// The cluster `id`.
    fn cluster(&self, id: &str) -> Result<Option<Cluster>, StoreError>;
    /// Every cluster, deleted ones included, by id.
    fn clusters(&self) -> Result<Vec<Cluster>, StoreError>;
    /// Changes a cluster atomically. Addresses follow the record: nodes and
    /// reserved IPs without an address get one of their network's, pinned
    /// ones are claimed (refused when another holds them), and what the
    /// record no longer holds goes back.
    fn update_cluster<'a>(&'a self, id: &'a str, change: ClusterChange) -> StoreFuture<'a, Cluster>;
    /// Changes clusters in one atomic write (they may swap addresses).
    fn update_clusters<'a>(&'a self, ids: Vec<String>, change: ClustersChange) -> StoreFuture<'a, Vec<Cluster>>;
    /// Who holds an address of a network's pool (`<cluster>/<node>`,
    /// `<cluster>/reserved/<name>`), if anyone.
    fn ip_holder(&self, vxnet: &str, ip: &str) -> Result<Option<String>, StoreError>;

    /// The operation `id`.
    fn operation(&self, id: &str) -> Result<Option<Operation>, StoreError>;
    /// Whether a cancel was asked of the operation `id` (false when it does
    /// not exist): what a run checks before each step, without reading the
    /// whole operation and its plan.
    fn cancel_requested(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.operation(id)?.is_some_and(|op| op.cancel_requested))
    }
    /// Every operation, oldest first.
    fn operations(&self) -> Result<Vec<Operation>, StoreError>;
    /// Changes an operation atomically; `change` may refuse.
    fn update_operation<'a>(&'a self, id: &'a str, change: OperationChange) -> StoreFuture<'a, Operation>;
    /// Starts `op` on `cluster` (stored as given, IPs allocated) and on the
    /// peer its request names, atomically: refused while another operation
    /// of either is unfinished.
    fn begin<'a>(&'a self, cluster: Cluster, op: Operation) -> StoreFuture<'a, Cluster>;
    /// Ends an operation: the last records of its steps, the operation as
    /// given and its clusters as `settle` leaves each, in one atomic write.
    fn finish<'a>(&'a self, op: Operation, steps: Vec<StepRecord>, settle: ClusterChange)
    -> StoreFuture<'a, Operation>;

    /// The journal of an operation, by step index.
    fn steps(&self, op: &str) -> Result<Vec<StepRecord>, StoreError>;
    /// Journals a step (its start, or its end).
    fn put_step<'a>(&'a self, op: &'a str, step: StepRecord) -> StoreFuture<'a, ()>;
    /// The hook events of an operation, in order.
    fn events(&self, op: &str) -> Result<Vec<Event>, StoreError>;
    /// Stores events (new ones, or the end of running ones) in one batch.
    fn put_events(&self, events: Vec<Event>) -> StoreFuture<'_, ()>;
    /// Reserves `n` event sequence numbers of an operation; returns the first.
    fn next_seqs<'a>(&'a self, op: &'a str, n: u64) -> StoreFuture<'a, u64>;

    /// Claims an operation for this process while the claim is held.
    fn claim(&self, op: &str) -> Result<Claim, StoreError>;
    /// The process holding an operation's claim, if any.
    fn claimant(&self, op: &str) -> Option<u32>;
}
