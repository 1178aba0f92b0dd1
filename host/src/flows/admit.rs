//! Refusals: why an operation may not run on a cluster as it is, and the
//! refusals every flow shares (a deleted cluster, a failed one).

use crate::cluster::{Cluster, ClusterStatus};
use crate::request::OperationKind;
use std::fmt;

/// An operation that may not run: what, on which cluster, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Refusal {
    /// The operation refused.
    pub kind: OperationKind,
    /// The cluster, when it exists.
    pub cluster: Option<String>,
    /// Why, and what to do instead.
    pub reason: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cluster {
            Some(id) => write!(f, "cannot {} cluster {id}: {}", self.kind.verb(), self.reason),
            None => write!(f, "cannot {} the cluster: {}", self.kind.verb(), self.reason),
        }
    }
}

impl Refusal {
    /// A refusal of `kind` on `cluster`.
    pub fn new(kind: OperationKind, cluster: Option<&Cluster>, reason: impl Into<String>) -> Refusal {
        Refusal {
            kind,
            cluster: cluster.map(|c| c.id.clone()),
            reason: reason.into(),
        }
    }
}

/// Why `kind` cannot run on `cluster` in its status, when no flow rule takes it.
pub(super) fn by_status(kind: OperationKind, cluster: &Cluster) -> Refusal {
    let reason = match (cluster.status, cluster.failed_during) {
        (ClusterStatus::Deleted, _) => "it is deleted".to_string(),
        (ClusterStatus::Failed, Some(OperationKind::CreateCluster) | None) => "its creation failed; delete it".into(),
        (ClusterStatus::Failed, Some(OperationKind::DeleteCluster)) => "its deletion failed; delete it again".into(),
        (ClusterStatus::Failed, Some(failed)) => format!("a {failed} failed; stop it (or delete it) first"),
        (status, _) => format!("it is {status}"),
    };
    Refusal::new(kind, Some(cluster), reason)
}
