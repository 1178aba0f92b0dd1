//! Create cluster — the seed's "Create cluster", steps 1 to 4.

use super::{nodes_with, push_service};
use crate::engine::plan::{Action, OnFailure, Plan};
use crate::state::{Cluster, ClusterStatus};

/// The plan that creates `cluster` (its record, with its nodes, already exists).
pub fn create(cluster: &Cluster) -> Plan {
    let all = cluster.node_ids();
    let mut plan = Plan::default();
    plan.push(
        Action::CreateResources { nodes: all.clone() },
        "create 1: create the resources of every node (server, disks, IP addresses)",
    );
    plan.push(
        Action::RegisterMetadata,
        "create 2: register all information about the cluster in the metadata service",
    );
    plan.push(
        Action::RenderConfig { nodes: all.clone() },
        "create 3: start every node's confd agent: render the configuration, run reload where it really changed",
    );
    // Step 4: `init` and `start`, in the order each role's `init.post_start_service` asks for.
    push_service(
        &mut plan,
        "init",
        nodes_with(cluster, "init", |s| !s.runs_after_start()),
        OnFailure::Fail,
        "create 4: run init (init.post_start_service false: before start), roles in ascending order",
    );
    push_service(
        &mut plan,
        "start",
        nodes_with(cluster, "start", |_| true),
        OnFailure::Fail,
        "create 4: run start, roles in ascending order, equal orders in parallel",
    );
    push_service(
        &mut plan,
        "init",
        nodes_with(cluster, "init", |s| s.runs_after_start()),
        OnFailure::Fail,
        "create 4: run init (init.post_start_service true: after start), roles in ascending order",
    );
    plan.push(
        Action::SetStatus {
            status: ClusterStatus::Active,
        },
        "create: the cluster is active",
    );
    plan
}
