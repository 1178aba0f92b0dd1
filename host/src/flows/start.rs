//! Start / resume cluster — a picture in the seed; the steps follow
//! `notes/appcenter-spec.md` §5.4: new instances (new instance ids) on the
//! kept volumes, registered in the metadata, config rendered, then `start`
//! by order. `init` ran once, at creation, and does not run again.

use super::{nodes_with, push_service};
use crate::engine::plan::{Action, OnFailure, Plan};
use crate::state::{Cluster, ClusterStatus};

/// The plan that starts the stopped `cluster`.
pub fn start(cluster: &Cluster) -> Plan {
    let all = cluster.node_ids();
    let mut plan = Plan::default();
    plan.push(
        Action::StartInstances { nodes: all.clone() },
        "start 1: boot new instances (new instance ids) on the kept volumes",
    );
    plan.push(
        Action::RegisterMetadata,
        "start 2: register the nodes and their new instance ids in the metadata",
    );
    plan.push(
        Action::RenderConfig { nodes: all },
        "start 3: start every node's confd agent: render the configuration, run reload where it really changed",
    );
    push_service(
        &mut plan,
        "start",
        nodes_with(cluster, "start", |_| true),
        OnFailure::Fail,
        "start 4: run start, roles in ascending order, equal orders in parallel",
    );
    plan.push(
        Action::SetStatus {
            status: ClusterStatus::Active,
        },
        "start: the cluster is active",
    );
    plan
}
