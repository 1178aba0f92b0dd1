//! Delete cluster — the seed's "Delete cluster", steps 1 to 8, per role:
//! roles without `destroy` take steps 2 and 8; roles whose `destroy` runs
//! before `stop` take steps 5 to 8 (the data-loss guard); roles whose
//! `destroy` runs after `stop` take steps 4 and 8, where the seed checks no
//! exit status. All guards run before anything is stopped, so an aborted
//! delete leaves every node as it was. A stopped cluster has no instance to
//! run hooks on (as on the original platform, hooks only run on an active
//! cluster): it goes straight to step 8, and the engine asks for `--force`
//! when a role has a guard that therefore cannot run.

use super::{nodes_with, push_service};
use crate::engine::plan::{Action, OnFailure, Plan};
use crate::state::{Cluster, ClusterStatus};

/// The plan that deletes `cluster`; `force` lets a refusing `destroy` be
/// overridden where the role's `allow_force` permits.
pub fn delete(cluster: &Cluster, force: bool) -> Plan {
    let all = cluster.node_ids();
    let mut plan = Plan::default();
    // A stopped cluster has no running instance to run hooks on: step 8 only.
    if cluster.status != ClusterStatus::Stopped {
        push_service(
            &mut plan,
            "destroy",
            nodes_with(cluster, "destroy", |s| !s.runs_after_stop()),
            OnFailure::Guard { force },
            "delete 5-6: run destroy (post_stop_service false), roles in ascending order; a failure stops the deletion unless forced",
        );
        push_service(
            &mut plan,
            "stop",
            nodes_with(cluster, "stop", |_| true),
            OnFailure::Continue,
            "delete 2/4/7: run stop, roles in ascending order",
        );
        push_service(
            &mut plan,
            "destroy",
            nodes_with(cluster, "destroy", |s| s.runs_after_stop()),
            OnFailure::Continue,
            "delete 4: run destroy (post_stop_service true) after stop, roles in ascending order; its status is not checked",
        );
    }
    plan.push(
        Action::DeleteResources { nodes: all },
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
