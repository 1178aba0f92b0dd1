//! Restart (`notes/appcenter-spec.md` §5.15, the platform's
//! `RestartClusterService(cluster, role?)`): the `restart` service runs on
//! every node of the roles that define it (or of one role), roles in
//! ascending `order`, equal orders in parallel; then the cluster is active.
//! Nothing else changes: no instance is replaced and nothing re-renders. A
//! failed restart leaves the cluster failed (its app may be down); restart
//! it again, or stop and start it.

use super::Flow;
use super::admit::{Refusal, by_status, no_upgrade};
use super::select::nodes_with;
use crate::cluster::{Cluster, ClusterStatus};
use crate::plan::{Action, OnFailure, Plan, ServiceStep};
use crate::request::OperationKind;

/// Restarting the app.
pub(super) struct Restart {
    pub(super) role: Option<String>,
}

impl Restart {
    fn targets(&self, cluster: &Cluster) -> Vec<String> {
        nodes_with(cluster, "restart", |_| true)
            .into_iter()
            .filter(|id| {
                cluster
                    .node(id)
                    .is_some_and(|n| self.role.as_deref().is_none_or(|r| r == n.role))
            })
            .collect()
    }
}

impl Flow for Restart {
    fn kind(&self) -> OperationKind {
        OperationKind::Restart
    }

    /// An active cluster, or one whose last restart failed.
    fn admit(&self, cluster: &Cluster) -> Result<ClusterStatus, Refusal> {
        let again = cluster.status == ClusterStatus::Failed && cluster.failed_during == Some(OperationKind::Restart);
        if cluster.status != ClusterStatus::Active && !again {
            return Err(by_status(self.kind(), cluster));
        }
        no_upgrade(self.kind(), cluster)?;
        let refuse = |why: String| Err(Refusal::new(self.kind(), Some(cluster), why));
        if let Some(role) = &self.role {
            let roles = cluster.role_counts();
            if !roles.contains_key(role.as_str()) {
                let names: Vec<&str> = roles.keys().copied().collect();
                return refuse(format!(
                    "it has no role {:?}; its roles are {}",
                    crate::text::clip(role, 64),
                    names.join(", ")
                ));
            }
            if cluster.service(role, "restart").is_none() {
                return refuse(format!("role {role} defines no restart service"));
            }
        }
        if self.targets(cluster).is_empty() {
            return refuse("no role of its app defines a restart service".into());
        }
        Ok(ClusterStatus::Restarting)
    }

    fn plan(&self, cluster: &Cluster) -> Plan {
        let mut plan = Plan::default();
        plan.push(
            Action::RunService(ServiceStep::new("restart", self.targets(cluster), OnFailure::Fail)),
            "restart 1: run restart, roles in ascending order, equal orders in parallel",
        );
        plan.push(
            Action::SetStatus {
                status: ClusterStatus::Active,
            },
            "restart 2: the cluster is active again",
        );
        plan
    }
}
