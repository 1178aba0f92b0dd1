//! Stop cluster — a picture in the seed; the steps follow
//! `notes/appcenter-spec.md` §5.3: `stop` by order (failures allowed, as in
//! OpenPitrix), then the instances go (volumes stay) and the metadata no
//! longer lists them.

use super::Flow;
use super::admit::{Refusal, by_status};
use super::select::{nodes_with, push_service};
use crate::cluster::{Cluster, ClusterStatus};
use crate::plan::{Action, OnFailure, Plan, ServiceStep};
use crate::request::OperationKind;

/// Stopping a running cluster.
pub(super) struct Stop;

impl Flow for Stop {
    fn kind(&self) -> OperationKind {
        OperationKind::StopCluster
    }

    fn admit(&self, cluster: &Cluster) -> Result<ClusterStatus, Refusal> {
        match (cluster.status, cluster.failed_during) {
            (ClusterStatus::Active, _) => Ok(ClusterStatus::Stopping),
            // A failed operation on a running cluster (stop, start, add or
            // delete nodes, resize, env) left instances in doubt: stopping settles them.
            (ClusterStatus::Failed, Some(kind))
                if !matches!(kind, OperationKind::CreateCluster | OperationKind::DeleteCluster) =>
            {
                Ok(ClusterStatus::Stopping)
            }
            (ClusterStatus::Stopped, _) => Err(Refusal::new(self.kind(), Some(cluster), "it is already stopped")),
            _ => Err(by_status(self.kind(), cluster)),
        }
    }

    fn plan(&self, cluster: &Cluster) -> Plan {
        let mut plan = Plan::default();
        push_service(
            &mut plan,
            ServiceStep::new("stop", nodes_with(cluster, "stop", |_| true), OnFailure::Continue),
            "stop 1: run stop, roles in ascending order (failures are recorded, the stop goes on)",
        );
        plan.push(
            Action::StopInstances {
                nodes: cluster.live_node_ids().into(),
            },
            "stop 2: stop the instances; volumes persist, instance state does not",
        );
        plan.push(
            Action::RegisterMetadata,
            "stop 3: the metadata lists no stopped instance",
        );
        plan.push(
            Action::SetStatus {
                status: ClusterStatus::Stopped,
            },
            "stop: the cluster is stopped",
        );
        plan
    }
}
