//! Start / resume cluster — a picture in the seed; the steps follow
//! `notes/appcenter-spec.md` §5.4: new instances (new instance ids) on the
//! kept volumes, registered in the metadata, config rendered, then `start`
//! by order. `init` ran once, at creation, and does not run again; a node
//! that never joined (its add-nodes failed before its `init` and `start`
//! were done) boots, but runs no `start`: it waits to be deleted. Each
//! node boots from the cluster's app version, except while a failed upgrade
//! is not undone: then each boots the version it has (§5.13: "stop, then
//! downgrade or start").

use super::Flow;
use super::admit::{Refusal, by_status};
use super::select::{nodes_among, push_service};
use crate::cluster::{Cluster, ClusterStatus};
use crate::plan::{Action, OnFailure, Plan, ServiceStep};
use crate::request::OperationKind;

/// Starting a stopped cluster.
pub(super) struct Start;

impl Flow for Start {
    fn kind(&self) -> OperationKind {
        OperationKind::StartCluster
    }

    fn admit(&self, cluster: &Cluster) -> Result<ClusterStatus, Refusal> {
        match cluster.status {
            ClusterStatus::Stopped => Ok(ClusterStatus::Starting),
            ClusterStatus::Active => Err(Refusal::new(self.kind(), Some(cluster), "it is already running")),
            _ => Err(by_status(self.kind(), cluster)),
        }
    }

    fn plan(&self, cluster: &Cluster) -> Plan {
        let all = cluster.live_node_ids();
        let mut plan = Plan::default();
        // An in-place upgrade's new image is booted at the next start after
        // it succeeded (§5.14); a failed upgrade's nodes keep theirs.
        let stale: Vec<String> = cluster
            .live_nodes()
            .filter(|n| n.version.is_some())
            .map(|n| n.node_id.clone())
            .collect();
        if cluster.upgrade.is_none() && !stale.is_empty() {
            plan.push(
                Action::SwitchVersion {
                    nodes: stale.into(),
                    version: None,
                },
                format!(
                    "start 1: nodes an in-place upgrade left on their old image boot from version {}'s",
                    cluster.app.version
                ),
            );
        }
        plan.push(
            Action::StartInstances {
                nodes: all.clone().into(),
            },
            "start 1: boot new instances (new instance ids) on the kept volumes",
        );
        plan.push(
            Action::RegisterMetadata,
            "start 2: register the nodes and their new instance ids in the metadata",
        );
        plan.push(
            Action::RenderConfig { nodes: all.into() },
            "start 3: start every node's confd agent: render the configuration, run reload where it really changed",
        );
        push_service(
            &mut plan,
            ServiceStep::new(
                "start",
                nodes_among(cluster, |n| !n.joining, "start", |_| true),
                OnFailure::Fail,
            ),
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
}
