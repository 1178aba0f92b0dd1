//! Delete cluster — the seed's "Delete cluster", steps 1 to 8, per role:
//! roles without `destroy` take steps 2 and 8; roles whose `destroy` runs
//! before `stop` take steps 5 to 8 (the data-loss guard); roles whose
//! `destroy` runs after `stop` take steps 4 and 8, where the seed checks no
//! exit status. All guards run before anything is stopped, so an aborted
//! delete leaves every node as it was.
//!
//! A stopped cluster has no instance to run hooks on (as on the original
//! platform, hooks only run on an active cluster): it goes straight to step
//! 8, which admission allows only where no guard is lost: with `--force`
//! when a role has a guard, and never when a guard's role sets
//! `allow_force: false` (its data is deleted only with its guard's consent:
//! start the cluster first).

use super::Flow;
use super::admit::{Refusal, by_status};
use super::select::{nodes_with, push_service};
use crate::cluster::{Cluster, ClusterStatus};
use crate::plan::{Action, OnFailure, Plan, ServiceStep};
use crate::request::OperationKind;

/// Deleting a cluster; `force` lets a refusing `destroy` be overridden
/// where the role's `allow_force` permits.
pub(super) struct Delete {
    pub(super) force: bool,
}

/// The roles whose `destroy` runs before `stop`: the data-loss guards.
fn guard_roles(cluster: &Cluster) -> impl Iterator<Item = (&str, bool)> {
    cluster.spec.nodes.iter().filter_map(|r| {
        let destroy = r.service("destroy").filter(|s| !s.runs_after_stop())?;
        Some((r.role.as_str(), destroy.force_allowed()))
    })
}

impl Flow for Delete {
    fn kind(&self) -> OperationKind {
        OperationKind::DeleteCluster
    }

    fn admit(&self, cluster: &Cluster) -> Result<ClusterStatus, Refusal> {
        let refuse = |why: String| Err(Refusal::new(self.kind(), Some(cluster), why));
        match cluster.status {
            ClusterStatus::Active | ClusterStatus::Failed => Ok(ClusterStatus::Deleting),
            ClusterStatus::Stopped => {
                let guards: Vec<(&str, bool)> = guard_roles(cluster).collect();
                if let Some((role, _)) = guards.iter().find(|(_, forcible)| !forcible) {
                    return refuse(format!(
                        "it is stopped, so the destroy guard of role {role} cannot run, and the role does not allow forcing (allow_force: false); start the cluster so that its guard can run, then delete it"
                    ));
                }
                if !self.force && !guards.is_empty() {
                    return refuse(
                        "it is stopped, so its destroy guard cannot run; start it first, or delete it with --force"
                            .into(),
                    );
                }
                Ok(ClusterStatus::Deleting)
            }
            _ => Err(by_status(self.kind(), cluster)),
        }
    }

    fn plan(&self, cluster: &Cluster) -> Plan {
        let all = cluster.node_ids();
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
            Action::DeleteResources { nodes: all.into() },
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
