//! Change network — the original platform's "切换网络"
//! (`ChangeClusterVxnet(cluster, vxnet, private_ips)`,
//! `notes/appcenter-spec.md` §5.8, a flow the seed shows only as a picture).
//! Only for an app that lists `change_vxnet` in `advanced_actions`.
//!
//! 0. The `change_vxnet` pre-check (a role's `pre_check: true`, as Redis
//!    uses it for a health check) asks the nodes whether the move may
//!    happen, with `{"vxnet", "ips"}`; a refusal changes nothing.
//! 1. The record moves: every node takes the address pinned for it
//!    (`--ip cln-x=ip`, refused at submit when another holds it) or the
//!    lowest free one of the new network's pool, the reserved IPs take new
//!    ones too, and the old addresses go back — one store transaction.
//! 2. The metadata takes the new `/cluster/vxnet` and `/hosts/*/ip`.
//! 3. Every node re-renders its configuration (confd reacts to the change)
//!    and reloads where its files really changed.
//! 4. `change_vxnet` runs after, on the nodes whose role defines it (by
//!    role order), with `{"vxnet", "from_vxnet", "from_ips"}`, so the app
//!    can rewire what it keeps outside its rendered files.
//!
//! Choices the notes leave open: instances are neither stopped nor
//! restarted (a local node's address is metadata; the real platform's
//! stop/start is not documented), so an active cluster stays serving; only
//! an active cluster moves. A failure past step 1 leaves the cluster failed
//! in the new network; change-vxnet again (to the same network, which
//! re-renders and runs the hook again, or back) is admitted then, as are
//! stop and delete. Run again, the hook's `from_vxnet` and `from_ips` are
//! where the cluster is then (the new network), not where it came from.
//! A pool that refuses the move (a pinned address taken since the request
//! was checked, a full network) aborts the operation: nothing moved.

use super::Flow;
use super::admit::{Refusal, all_joined, by_status, no_upgrade};
use super::select::{nodes_with, push_service};
use crate::cluster::{Cluster, ClusterStatus};
use crate::plan::{Action, OnFailure, Plan, ServiceStep};
use crate::request::OperationKind;
use crate::spec::AdvancedAction;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Moving a cluster to another network.
pub(super) struct ChangeVxnet {
    pub(super) vxnet: String,
    /// Pinned addresses, by node id.
    pub(super) ips: BTreeMap<String, String>,
    /// Who holds each pinned address in the new network now, if anyone.
    pub(super) holders: BTreeMap<String, String>,
}

impl ChangeVxnet {
    /// Why the move is bad input, if it is.
    fn check(&self, cluster: &Cluster, again: bool) -> Result<(), String> {
        let allowed = cluster
            .spec
            .advanced_actions
            .iter()
            .chain(cluster.spec.nodes.iter().flat_map(|r| &r.advanced_actions))
            .any(|a| *a == AdvancedAction::ChangeVxnet);
        if !allowed {
            return Err("its app does not list change_vxnet in advanced_actions".into());
        }
        if !crate::metadata::path::is_valid_segment(&self.vxnet) || self.vxnet.chars().count() > 128 {
            return Err(format!(
                "--vxnet {:?} is not a network name: 1 to 128 characters, no '/', not . or ..",
                crate::text::clip(&self.vxnet, 64)
            ));
        }
        if self.vxnet == cluster.spec.vxnet && !again {
            return Err(format!("it is already in network {}", self.vxnet));
        }
        let mut seen = BTreeMap::new();
        for (node, ip) in &self.ips {
            let shown = crate::text::clip(node, 64);
            if !cluster.live_nodes().any(|n| &n.node_id == node) {
                let ids: Vec<&str> = cluster.live_nodes().take(20).map(|n| n.node_id.as_str()).collect();
                return Err(format!("--ip {shown}: no such node; its nodes are {}", ids.join(", ")));
            }
            crate::store::check_pinned(ip)
                .map_err(|why| format!("--ip {shown}={}: {why}", crate::text::clip(ip, 64)))?;
            if let Some(other) = seen.insert(ip, node) {
                return Err(format!("--ip: {ip} is pinned for two nodes, {other} and {shown}"));
            }
            // The cluster's own addresses move within the one transaction: two nodes may swap.
            if let Some(holder) = self.holders.get(ip)
                && !holder.starts_with(&format!("{}/", cluster.id))
            {
                return Err(format!(
                    "--ip {shown}={ip}: network {} already gives it to {holder}",
                    self.vxnet
                ));
            }
        }
        Ok(())
    }

    /// What the hooks get: the move, as asked.
    fn asked(&self) -> Map<String, Value> {
        let mut params = Map::new();
        params.insert("vxnet".into(), json!(self.vxnet));
        params.insert("ips".into(), json!(self.ips));
        params
    }
}

impl Flow for ChangeVxnet {
    fn kind(&self) -> OperationKind {
        OperationKind::ChangeVxnet
    }

    /// An active cluster, or one whose last change-vxnet failed.
    fn admit(&self, cluster: &Cluster) -> Result<ClusterStatus, Refusal> {
        let again = cluster.status == ClusterStatus::Failed && cluster.failed_during == Some(self.kind());
        if cluster.status != ClusterStatus::Active && !again {
            return Err(by_status(self.kind(), cluster));
        }
        no_upgrade(self.kind(), cluster)?;
        all_joined(self.kind(), cluster)?;
        self.check(cluster, again)
            .map_err(|why| Refusal::new(self.kind(), Some(cluster), why))?;
        Ok(ClusterStatus::ChangingVxnet)
    }

    fn plan(&self, cluster: &Cluster) -> Plan {
        let mut plan = Plan::default();
        push_service(
            &mut plan,
            ServiceStep::new(
                "change_vxnet",
                nodes_with(cluster, "change_vxnet", |s| s.pre_check == Some(true)),
                OnFailure::Refuse,
            )
            .pre_check()
            .params(self.asked()),
            "change-vxnet 0: the change_vxnet pre-check; a refusal changes nothing",
        );
        plan.push(
            Action::MoveNetwork {
                vxnet: self.vxnet.clone(),
                ips: self.ips.clone(),
            },
            "change-vxnet 1: the nodes and reserved IPs take addresses of the new network (pinned, or from its pool); the old ones go back",
        );
        plan.push(
            Action::RegisterMetadata,
            "change-vxnet 2: register the new network and addresses in the metadata service",
        );
        plan.push(
            Action::RenderConfig {
                nodes: cluster.live_node_ids().into(),
            },
            "change-vxnet 3: every node refreshes its configuration; reload where it really changed",
        );
        let mut after = Map::new();
        after.insert("vxnet".into(), json!(self.vxnet));
        after.insert("from_vxnet".into(), json!(cluster.spec.vxnet));
        let from: BTreeMap<&str, &str> = cluster
            .live_nodes()
            .map(|n| (n.node_id.as_str(), n.ip.as_str()))
            .collect();
        after.insert("from_ips".into(), json!(from));
        push_service(
            &mut plan,
            ServiceStep::new(
                "change_vxnet",
                nodes_with(cluster, "change_vxnet", |_| true),
                OnFailure::Fail,
            )
            .params(after),
            "change-vxnet 4: run change_vxnet after the move, roles in ascending order",
        );
        plan.push(
            Action::SetStatus {
                status: ClusterStatus::Active,
            },
            "change-vxnet: the cluster is active in its new network",
        );
        plan
    }
}
