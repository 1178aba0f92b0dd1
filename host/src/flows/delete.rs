//! Delete cluster — the seed's "Delete cluster", steps 1 to 8, per role:
//! roles without `destroy` take steps 2 and 8; roles whose `destroy` runs
//! before `stop` take steps 5 to 8 (the data-loss guard); roles whose
//! `destroy` runs after `stop` take steps 4 and 8, where the seed checks no
//! exit status. All guards run before anything is stopped, so an aborted
//! delete leaves every node as it was.
//!
//! A stopped cluster has no instance to run hooks on (as on the original
//! platform, hooks only run on an active cluster): it goes straight to step
//! 8. Admission allows a deletion only where no guard is lost: a node that
//! holds its data but has no running instance (a stopped cluster, or a
//! failed start or stop) needs `--force` when its role has a guard, and is
//! never deleted when that role sets `allow_force: false` (its data goes
//! only with its guard's consent: start the cluster first). Nodes a failed
//! deletion already deleted are left out of a retry.

use super::Flow;
use super::admit::{Refusal, by_status};
use super::select::{nodes_with, push_service};
use crate::cluster::{Cluster, ClusterStatus, Node};
use crate::plan::{Action, OnFailure, Plan, ServiceStep};
use crate::request::OperationKind;

/// Deleting a cluster; `force` lets a refusing `destroy` be overridden
/// where the role's `allow_force` permits.
pub(super) struct Delete {
    pub(super) force: bool,
}

/// Whether a role's `destroy` runs before `stop` (a data-loss guard), and
/// whether a refusal may be forced.
fn guard(cluster: &Cluster, role: &str) -> Option<bool> {
    cluster
        .service(role, "destroy")
        .filter(|s| !s.runs_after_stop())
        .map(|s| s.force_allowed())
}

impl Flow for Delete {
    fn kind(&self) -> OperationKind {
        OperationKind::DeleteCluster
    }

    /// Active, stopped and failed clusters may be deleted, where no guard
    /// is lost: a node that still has its data but no running instance
    /// cannot run its guard, so deleting it needs `--force`, and is refused
    /// outright when its role does not allow forcing.
    fn admit(&self, cluster: &Cluster) -> Result<ClusterStatus, Refusal> {
        if !matches!(
            cluster.status,
            ClusterStatus::Active | ClusterStatus::Stopped | ClusterStatus::Failed
        ) {
            return Err(by_status(self.kind(), cluster));
        }
        let unguarded: Vec<(&Node, bool)> = cluster
            .nodes
            .iter()
            .filter(|n| !n.deleted && n.instance_id.is_none())
            .filter_map(|n| Some((n, guard(cluster, &n.role)?)))
            .collect();
        let stopped = cluster.status == ClusterStatus::Stopped;
        let refuse = |why: String| Err(Refusal::new(self.kind(), Some(cluster), why));
        if let Some((node, _)) = unguarded.iter().find(|(_, forcible)| !forcible) {
            let (what, how) = if stopped {
                ("it is stopped".to_string(), "start the cluster")
            } else {
                (
                    format!("node {} has no running instance", node.node_id),
                    "stop and start the cluster",
                )
            };
            return refuse(format!(
                "{what}, so the destroy guard of role {} cannot run, and the role does not allow forcing (allow_force: false); {how} so that its guard can run, then delete it",
                node.role
            ));
        }
        if let Some((node, _)) = unguarded.first()
            && !self.force
        {
            return refuse(if stopped {
                "it is stopped, so its destroy guard cannot run; start it first, or delete it with --force".into()
            } else {
                format!(
                    "node {} has no running instance, so its destroy guard cannot run; stop and start the cluster first, or delete it with --force",
                    node.node_id
                )
            });
        }
        Ok(ClusterStatus::Deleting)
    }

    fn plan(&self, cluster: &Cluster) -> Plan {
        // Nodes an earlier, failed deletion already deleted are gone for good
        // (`nodes_with` and `live_node_ids` leave them out).
        let mut plan = Plan::default();
        // A stopped cluster has no running instance to run hooks on: step 8 only.
        if cluster.status != ClusterStatus::Stopped {
            let destroy = |filter: fn(&crate::spec::ServiceSpec) -> bool| nodes_with(cluster, "destroy", filter);
            push_service(
                &mut plan,
                ServiceStep::new(
                    "destroy",
                    destroy(|s| !s.runs_after_stop()),
                    OnFailure::Guard { force: self.force },
                ),
                "delete 5-6: run destroy (post_stop_service false), roles in ascending order; a failure stops the deletion unless forced",
            );
            push_service(
                &mut plan,
                ServiceStep::new("stop", nodes_with(cluster, "stop", |_| true), OnFailure::Continue),
                "delete 2/4/7: run stop, roles in ascending order",
            );
            push_service(
                &mut plan,
                ServiceStep::new("destroy", destroy(|s| s.runs_after_stop()), OnFailure::Continue),
                "delete 4: run destroy (post_stop_service true) after stop, roles in ascending order; its status is not checked",
            );
        }
        plan.push(
            Action::DeleteResources {
                nodes: cluster.live_node_ids().into(),
            },
            "delete 8: delete all resources of the cluster",
        );
        plan.push(
            Action::DeregisterMetadata,
            "delete 8: deregister all its information from the metadata service",
        );
        plan.push(
            Action::SetStatus {
                status: ClusterStatus::Deleted,
            },
            "delete: the cluster is deleted",
        );
        plan
    }
}
