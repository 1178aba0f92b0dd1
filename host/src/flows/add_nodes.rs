//! Add nodes — the seed's "Add nodes", steps 1 to 8, after the `scale_out`
//! pre-check (`notes/appcenter-spec.md` §5.5, step 0: it runs on the
//! existing nodes before anything is created, and a refusal changes nothing;
//! its `service_params` are `{"role": <role>, "count": <nodes added>}`,
//! since `/adding-hosts` does not exist yet).
//!
//! Only a role whose cluster or role `advanced_actions` has
//! `scale_horizontal` (or `add_nodes`) grows; new nodes take the lowest free
//! `sid`s, within `server_id_upper_bound`, and each brings the role's replicas.
//!
//! The seed says nothing of a failure. Chosen here: when any step fails (a
//! new node's `init` or `start`, an existing node's `scale_out`, ...), the
//! operation fails and its recovery part removes `/adding-hosts`, lets the
//! existing nodes re-render (as confd would on that change) and leaves the
//! cluster active; the new nodes stay, as they are, marked as not joined in
//! the record until step 6 is done, and the failure message names them so
//! that the user deletes them with `delete-nodes` (nothing is deleted behind
//! the user's back: a half-joined node may hold data the app already relies
//! on). A node whose resources could not be created never joins the record.

use super::Flow;
use super::admit::{Refusal, active, all_joined, role_spec, scales_horizontally};
use super::select::{ids, nodes_among, nodes_with, push_init_and_start, push_service};
use crate::cluster::{Cluster, ClusterStatus, Node};
use crate::plan::{Action, OnFailure, Plan, ServiceStep, TempEntry, TempTree};
use crate::request::OperationKind;
use crate::spec::{AdvancedAction, MAX_CLUSTER_NODES};
use std::collections::HashSet;

/// Most new node ids a failure message lists.
const SHOWN_IDS: usize = 8;

/// Adding `count` nodes (and their replicas) to `role`.
pub(super) struct AddNodes {
    pub(super) role: String,
    pub(super) count: u32,
}

impl Flow for AddNodes {
    fn kind(&self) -> OperationKind {
        OperationKind::AddNodes
    }

    /// An active cluster, a role that scales horizontally, a count that
    /// fits the cluster's bound and the role's `server_id_upper_bound`.
    fn admit(&self, cluster: &Cluster) -> Result<ClusterStatus, Refusal> {
        active(self.kind(), cluster)?;
        all_joined(self.kind(), cluster)?;
        let refuse = |why: String| Err(Refusal::new(self.kind(), Some(cluster), why));
        let role = role_spec(self.kind(), cluster, &self.role)?;
        if !scales_horizontally(
            cluster,
            role,
            &[AdvancedAction::ScaleHorizontal, AdvancedAction::AddNodes],
        ) {
            return refuse(format!(
                "role {} does not scale horizontally: neither the app's nor the role's advanced_actions has scale_horizontal (or add_nodes)",
                role.role
            ));
        }
        if self.count == 0 {
            return refuse("--count must be at least 1".into());
        }
        let live = cluster.live_nodes().count() as u64;
        let adding = u64::from(self.count) * (1 + u64::from(role.replica));
        if live + adding > MAX_CLUSTER_NODES {
            return refuse(format!(
                "{adding} more node(s) would make {} and a cluster has at most {MAX_CLUSTER_NODES}",
                live + adding
            ));
        }
        if let Some(bound) = role.server_id_upper_bound {
            let new = cluster.new_nodes(role, self.count);
            let within = new.iter().filter(|n| n.role == role.role && n.sid <= bound).count();
            if within < self.count as usize {
                return refuse(format!(
                    "role {} has server_id_upper_bound {bound}: only {within} sid(s) are free for {} new node(s)",
                    role.role, self.count
                ));
            }
        }
        Ok(ClusterStatus::ScalingOut)
    }

    fn plan(&self, cluster: &Cluster) -> Plan {
        let Some(role) = cluster.spec.role(&self.role) else {
            return Plan::default();
        };
        let mut new: Vec<Node> = cluster.new_nodes(role, self.count);
        new.iter_mut().for_each(|n| n.joining = true);
        let new_ids = ids(&new);
        let existing: HashSet<String> = cluster.live_node_ids().into_iter().collect();
        let is_existing = |n: &Node| existing.contains(&n.node_id);
        let mut grown = cluster.clone();
        grown.nodes.extend(new.iter().cloned());
        let mut plan = Plan::default();
        let mut params = serde_json::Map::new();
        params.insert("role".into(), role.role.clone().into());
        params.insert("count".into(), self.count.into());
        push_service(
            &mut plan,
            ServiceStep::new(
                "scale_out",
                nodes_with(cluster, "scale_out", |s| s.pre_check == Some(true)),
                OnFailure::Refuse,
            )
            .pre_check()
            .params(params),
            "add 0: the scale_out pre-check on the existing nodes; a refusal changes nothing",
        );
        plan.push(
            Action::AddNodes { nodes: new.clone() },
            "add 1: create the new nodes' resources; each joins the cluster record (IP addresses from the network's pool)",
        );
        plan.push(Action::RegisterMetadata, "add 2: register the new nodes under /hosts");
        plan.push(
            Action::WriteTemp {
                entry: TempEntry::AddingHosts {
                    nodes: new_ids.clone().into(),
                },
            },
            "add 2: and under the temporary /adding-hosts",
        );
        plan.push(
            Action::RenderConfig {
                nodes: ids(cluster.live_nodes()).into(),
            },
            "add 3: existing nodes refresh their configuration; reload where it really changed",
        );
        plan.push(
            Action::RenderConfig {
                nodes: new_ids.clone().into(),
            },
            "add 4: start the new nodes' confd agents: render, reload where it changed",
        );
        push_init_and_start(&mut plan, &grown, |n| !is_existing(n), "add 5", "the new nodes ");
        push_service(
            &mut plan,
            ServiceStep::new(
                "scale_out",
                nodes_among(cluster, is_existing, "scale_out", |_| true),
                OnFailure::Fail,
            ),
            "add 6: the existing nodes run scale_out, roles in ascending order (nodes_to_execute_on keeps some)",
        );
        plan.push(
            Action::NodesJoined {
                nodes: new_ids.clone().into(),
            },
            "add 6: the new nodes have joined the cluster",
        );
        plan.push(
            Action::ClearTemp {
                tree: TempTree::AddingHosts,
            },
            "add 7: remove the content of /adding-hosts",
        );
        plan.push(
            Action::RenderConfig {
                nodes: ids(grown.live_nodes()).into(),
            },
            "add 8: every node refreshes its configuration; reload where it really changed",
        );
        plan.push(
            Action::SetStatus {
                status: ClusterStatus::Active,
            },
            "add: the cluster is active",
        );
        plan.recover(
            Action::DiscardUnrecorded { nodes: new.clone() },
            "add (failed): a new node created but never recorded (a crash cut step 1 off) leaves nothing",
        );
        plan.recover(
            Action::ClearTemp {
                tree: TempTree::AddingHosts,
            },
            "add (failed): remove /adding-hosts; the new nodes in the record stay",
        );
        plan.recover(
            Action::RenderConfig {
                nodes: ids(cluster.live_nodes()).into(),
            },
            "add (failed): the existing nodes refresh their configuration without /adding-hosts",
        );
        plan.recover(
            Action::SetStatus {
                status: ClusterStatus::Active,
            },
            "add (failed): the cluster is active, with the new nodes as far as they got",
        );
        // Replicas leave with their node: the user names the primaries.
        let primaries: Vec<&str> = new
            .iter()
            .filter(|n| n.role == role.role)
            .map(|n| n.node_id.as_str())
            .collect();
        let planned = if primaries.len() <= SHOWN_IDS {
            primaries.join(",")
        } else {
            format!("{},... ({} in all)", primaries[..SHOWN_IDS].join(","), primaries.len())
        };
        plan.recovery_note = Some(format!(
            "the new nodes that were created stay in the cluster, marked not joined in `hookhost cluster show {0}`; delete them with `hookhost cluster delete-nodes {0} --nodes <ids>` (the nodes planned: {planned})",
            cluster.id
        ));
        plan
    }
}
