//! Stop cluster — a picture in the seed; the steps follow
//! `notes/appcenter-spec.md` §5.3: `stop` by order (failures allowed, as in
//! OpenPitrix), then the instances go (volumes stay) and the metadata no
//! longer lists them.

use super::{nodes_with, push_service};
use crate::engine::plan::{Action, OnFailure, Plan};
use crate::state::{Cluster, ClusterStatus};

/// The plan that stops `cluster`.
pub fn stop(cluster: &Cluster) -> Plan {
    let mut plan = Plan::default();
    push_service(
        &mut plan,
        "stop",
        nodes_with(cluster, "stop", |_| true),
        OnFailure::Continue,
        "stop 1: run stop, roles in ascending order (failures are recorded, the stop goes on)",
    );
    plan.push(
        Action::StopInstances {
            nodes: cluster.node_ids(),
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
