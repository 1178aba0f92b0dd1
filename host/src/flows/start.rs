//! Start / resume cluster — a picture in the seed; the steps follow
//! `notes/appcenter-spec.md` §5.4: new instances (new instance ids) on the
//! kept volumes, registered in the metadata, config rendered, then `start`
//! by order. `init` ran once, at creation, and does not run again; a node
//! that never joined (its add-nodes failed before its `init` and `start`
//! were done) boots, but runs no `start`: it waits to be deleted. Each
//! node boots from the cluster's app version, except while a failed upgrade
//! is not undone (§5.13: "stop, then downgrade or start"): then a node whose
//! upgrade completed boots the new version and every other the old one.

use super::Flow;
use super::admit::{Refusal, by_status};
use super::select::{ids, nodes_among, push_service};
use crate::cluster::{Cluster, ClusterStatus};
use crate::plan::{Action, OnFailure, Plan, ServiceStep};
use crate::request::OperationKind;
use crate::spec::UpgradingPolicy;

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
        match &cluster.upgrade {
            // An in-place upgrade's new image is booted at the next start
            // after it succeeded (§5.14).
            None => {
                let stale = ids(cluster.live_nodes().filter(|n| n.version.is_some()));
                if !stale.is_empty() {
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
            }
            // After a failed parallel or rolling upgrade, a node whose
            // upgrade did not complete boots the old version again: the new
            // one's start may need what its upgrade would have done.
            Some(u)
                if !matches!(
                    u.policy,
                    UpgradingPolicy::InPlaceParallel | UpgradingPolicy::InPlaceSequential
                ) =>
            {
                let unfinished = ids(cluster
                    .live_nodes()
                    .filter(|n| !u.done.contains(&n.node_id) && n.version.as_deref() != Some(u.from.as_str())));
                if !unfinished.is_empty() {
                    plan.push(
                        Action::SwitchVersion {
                            nodes: unfinished.into(),
                            version: Some(u.from.clone()),
                        },
                        format!(
                            "start 1: nodes whose upgrade to {} did not complete boot version {} again",
                            u.to, u.from
                        ),
                    );
                }
            }
            Some(_) => {}
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
