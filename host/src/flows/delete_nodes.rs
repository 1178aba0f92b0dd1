//! Delete nodes — the seed's "Delete nodes", steps 1 to 12, after the
//! `scale_in` pre-check (`notes/appcenter-spec.md` §5.6, step 0: on the
//! remaining nodes, before anything changes; a refusal changes nothing; its
//! `service_params` are `{"nodes": [<the leaving node ids>]}`, since
//! `/deleting-hosts` does not exist yet).
//!
//! The seed branches on the leaving nodes' `destroy`, per role here (as in
//! "Delete cluster"): roles without it take step 4, roles whose `destroy`
//! runs after `stop` take step 6, roles whose `destroy` runs before `stop`
//! take steps 7 to 9 (the data-loss guard). Every branch runs `scale_in` on
//! the remaining nodes, then `stop` on the leaving ones, so the plan is one
//! sequence: guard `destroy` (7) → `scale_in` (4/6/9) → `stop` (4/6/9) →
//! post-stop `destroy` (6) → resources (10) → deregister, `/deleting-hosts`
//! removed (11) → remaining nodes re-render (12).
//!
//! A guard that refuses, without `--force` or where `allow_force: false`,
//! aborts the operation (step 8): the recovery part removes
//! `/deleting-hosts` and every node re-renders, so every node is as it was,
//! running. The same recovery runs when the operation fails or is
//! cancelled: stopped before the guard, the cluster stays active; later
//! (a `destroy` may have cleaned up, a node may be half scaled in, stopped
//! or gone), it is failed: stop it to settle it, or delete it. A cancel
//! that comes once the guards said yes is not honoured: the deletion runs
//! to its end rather than leave a node destroyed but still a member. A node's replicas leave with it. A role keeps at
//! least one node.

use super::Flow;
use super::admit::{Refusal, active, scales_horizontally};
use super::select::{ids, nodes_among, push_service};
use crate::cluster::{Cluster, ClusterStatus, Node};
use crate::plan::{Action, OnFailure, Plan, ServiceStep, TempEntry, TempTree};
use crate::request::OperationKind;
use crate::spec::{AdvancedAction, is_replica_role};
use std::collections::{HashMap, HashSet};

/// Deleting `nodes` (and their replicas); `force` lets a refusing `destroy`
/// be overridden where the role's `allow_force` permits.
pub(super) struct DeleteNodes {
    pub(super) nodes: Vec<String>,
    pub(super) force: bool,
}

impl DeleteNodes {
    /// The leaving nodes: the named ones and their replicas, in creation order.
    fn leaving<'c>(&self, cluster: &'c Cluster) -> Vec<&'c Node> {
        let named: HashSet<&str> = self.nodes.iter().map(String::as_str).collect();
        let groups: HashSet<(&str, u32)> = cluster
            .live_nodes()
            .filter(|n| named.contains(n.node_id.as_str()))
            .map(|n| (n.role.as_str(), n.gid))
            .collect();
        let primary_leaves = |n: &Node| {
            n.role
                .strip_suffix(crate::spec::REPLICA_SUFFIX)
                .is_some_and(|role| groups.contains(&(role, n.gid)))
        };
        cluster
            .live_nodes()
            .filter(|n| named.contains(n.node_id.as_str()) || primary_leaves(n))
            .collect()
    }
}

/// Whether `node` is one of `primary`'s replicas (its role's replica role, its gid).
fn replica_of(node: &Node, primary: &Node) -> bool {
    node.role.strip_suffix(crate::spec::REPLICA_SUFFIX) == Some(primary.role.as_str()) && node.gid == primary.gid
}

impl Flow for DeleteNodes {
    fn kind(&self) -> OperationKind {
        OperationKind::DeleteNodes
    }

    /// An active cluster; named nodes that exist in it once each, none a
    /// replica, of roles that scale horizontally; each role keeps a node.
    fn admit(&self, cluster: &Cluster) -> Result<ClusterStatus, Refusal> {
        active(self.kind(), cluster)?;
        let refuse = |why: String| Err(Refusal::new(self.kind(), Some(cluster), why));
        if self.nodes.is_empty() {
            return refuse("--nodes names no node".into());
        }
        let live: HashMap<&str, &Node> = cluster.live_nodes().map(|n| (n.node_id.as_str(), n)).collect();
        let mut seen = HashSet::new();
        let mut leaving_by_role: HashMap<&str, usize> = HashMap::new();
        for id in &self.nodes {
            let shown = crate::text::clip(id, 64);
            if !seen.insert(id.as_str()) {
                return refuse(format!("node {shown} is named twice"));
            }
            let Some(node) = live.get(id.as_str()) else {
                return refuse(format!("it has no node {shown:?}"));
            };
            if is_replica_role(&node.role) {
                let primary = cluster
                    .live_nodes()
                    .find(|n| replica_of(node, n))
                    .map_or_else(|| "its node".to_string(), |n| format!("node {}", n.node_id));
                return refuse(format!(
                    "node {shown} is a replica (role {}): it leaves with its node; name {primary}",
                    node.role
                ));
            }
            let Some(role) = cluster.spec.role(&node.role) else {
                return refuse(format!(
                    "node {shown} has role {}, which the app does not define",
                    node.role
                ));
            };
            if !scales_horizontally(cluster, role, &[AdvancedAction::ScaleHorizontal]) {
                return refuse(format!(
                    "role {} does not scale horizontally: neither the app's nor the role's advanced_actions has scale_horizontal",
                    role.role
                ));
            }
            // Nodes that never joined may all go; a role keeps one node that did.
            if !node.joining {
                *leaving_by_role.entry(node.role.as_str()).or_default() += 1;
            }
        }
        for (role, leaving) in leaving_by_role {
            let has = cluster.live_nodes().filter(|n| n.role == role && !n.joining).count();
            if leaving >= has {
                return refuse(format!(
                    "it would delete every node of role {role} ({has}); a role keeps at least one node (delete the cluster instead)"
                ));
            }
        }
        Ok(ClusterStatus::ScalingIn)
    }

    fn plan(&self, cluster: &Cluster) -> Plan {
        let leaving_nodes = self.leaving(cluster);
        let leaving = ids(leaving_nodes.iter().copied());
        let gone: HashSet<&str> = leaving.iter().map(String::as_str).collect();
        let remaining = ids(cluster.live_nodes().filter(|n| !gone.contains(n.node_id.as_str())));
        let stays = |n: &Node| !gone.contains(n.node_id.as_str());
        let mut plan = Plan::default();
        let mut params = serde_json::Map::new();
        params.insert("nodes".into(), leaving.clone().into());
        push_service(
            &mut plan,
            ServiceStep::new(
                "scale_in",
                nodes_among(cluster, stays, "scale_in", |s| s.pre_check == Some(true)),
                OnFailure::Refuse,
            )
            .pre_check()
            .params(params),
            "delete-nodes 0: the scale_in pre-check on the remaining nodes; a refusal changes nothing",
        );
        plan.push(
            Action::WriteTemp {
                entry: TempEntry::DeletingHosts {
                    nodes: leaving.clone().into(),
                },
            },
            "delete-nodes 1: register the nodes to delete under the temporary /deleting-hosts",
        );
        plan.push(
            Action::RenderConfig {
                nodes: cluster.live_node_ids().into(),
            },
            "delete-nodes 2: every node refreshes its configuration; reload where it really changed",
        );
        // Leaving nodes' services ignore `nodes_to_execute_on`: every leaving node is guarded and stopped.
        let on_leaving = |service: &str, filter: fn(&crate::spec::ServiceSpec) -> bool| {
            leaving_nodes
                .iter()
                .filter(|n| cluster.service(&n.role, service).is_some_and(filter))
                .map(|n| n.node_id.clone())
                .collect::<Vec<_>>()
        };
        // Up to here the recovery undoes everything: stopped before this, the
        // cluster stays active. A destroy that ran may have cleaned up.
        plan.reversible = plan.steps.len();
        push_service(
            &mut plan,
            ServiceStep::new(
                "destroy",
                on_leaving("destroy", |s| !s.runs_after_stop()),
                OnFailure::Guard { force: self.force },
            ),
            "delete-nodes 7-8: the nodes to delete run destroy (post_stop_service false), roles in ascending order; a failure stops the task unless forced",
        );
        // Once the guards said yes (their destroy ran), a cancel would leave
        // nodes half gone: the deletion runs to its end.
        plan.no_cancel_from = Some(plan.steps.len());
        push_service(
            &mut plan,
            ServiceStep::new(
                "scale_in",
                nodes_among(cluster, stays, "scale_in", |_| true),
                OnFailure::Fail,
            ),
            "delete-nodes 4/6/9: the remaining nodes run scale_in, roles in ascending order",
        );
        push_service(
            &mut plan,
            ServiceStep::new("stop", on_leaving("stop", |_| true), OnFailure::Continue),
            "delete-nodes 4/6/9: the nodes to delete run stop, roles in ascending order",
        );
        push_service(
            &mut plan,
            ServiceStep::new(
                "destroy",
                on_leaving("destroy", |s| s.runs_after_stop()),
                OnFailure::Continue,
            ),
            "delete-nodes 6: the nodes to delete run destroy (post_stop_service true) after stop; its status is not checked",
        );
        plan.push(
            Action::DeleteResources {
                nodes: leaving.clone().into(),
            },
            "delete-nodes 10: delete these nodes' resources (their IP addresses go back to the pool)",
        );
        plan.push(
            Action::RemoveNodes {
                nodes: leaving.clone().into(),
            },
            "delete-nodes 11: the deleted nodes leave the cluster record",
        );
        plan.push(
            Action::RegisterMetadata,
            "delete-nodes 11: deregister the deleted nodes from the metadata service",
        );
        plan.push(
            Action::ClearTemp {
                tree: TempTree::DeletingHosts,
            },
            "delete-nodes 11: remove /deleting-hosts",
        );
        plan.push(
            Action::RenderConfig {
                nodes: remaining.into(),
            },
            "delete-nodes 12: the remaining nodes refresh their configuration; reload where it really changed",
        );
        plan.push(
            Action::SetStatus {
                status: ClusterStatus::Active,
            },
            "delete-nodes: the cluster is active",
        );
        plan.recover(
            Action::ClearTemp {
                tree: TempTree::DeletingHosts,
            },
            "delete-nodes 8 (stopped): remove the content of /deleting-hosts",
        );
        plan.recover(
            Action::RenderConfig {
                nodes: cluster.live_node_ids().into(),
            },
            "delete-nodes 8 (stopped): every node refreshes its configuration without /deleting-hosts",
        );
        plan
    }
}
