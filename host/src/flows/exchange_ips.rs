//! Exchange reserved IPs — the original platform's "交换预留 IP"
//! (`notes/appcenter-spec.md` §5.9, a flow the seed shows only as a
//! picture): two active clusters of one app version in one network swap
//! the addresses of their reserved IPs (a MySQL primary's VIP moves to its
//! standby cluster). The operation belongs to the first cluster and holds
//! the other (its peer) too: the peer takes the same status, so every
//! other operation on it is refused — it is read-only — until the
//! exchange ends.
//!
//! 1. Both records take the swapped addresses in one store transaction
//!    (the pool's holders swap with them), then
//!    `/cluster/reserved_ips/*/value` and
//!    `/cluster/endpoints/reserved_ips/*/value` of both trees change in one
//!    metadata revision: no hook ever sees both clusters with one address.
//! 2. Every node of the cluster, then of the peer, re-renders its
//!    configuration (confd reacts to the change) and reloads where its
//!    files really changed.
//! 3. Both are active again.
//!
//! The notes name no hook of this flow, so none runs but `reload`. A
//! failure (or a cancel) runs the recovery: both records and trees take
//! their own addresses back, both re-render, both are active — a failure
//! leaves both as they were.

use super::Flow;
use super::admit::{Refusal, active, all_joined};
use crate::cluster::{Cluster, ClusterStatus, reserved_ips};
use crate::plan::{Action, Plan};
use crate::request::OperationKind;
use std::collections::BTreeMap;

/// Swapping reserved IPs with `peer`.
pub(super) struct ExchangeIps {
    pub(super) peer: Cluster,
}

impl ExchangeIps {
    /// Why the two clusters cannot swap, if they cannot.
    fn check(&self, cluster: &Cluster) -> Result<(), String> {
        let peer = &self.peer;
        if peer.id == cluster.id {
            return Err("a cluster cannot exchange reserved IPs with itself; name another cluster".into());
        }
        // A record from before app versions were kept names no version to compare.
        let version = |c: &Cluster| match c.app.app.is_empty() {
            true => "no registered app version".to_string(),
            false => format!("app {} version {}", c.app.app, c.app.version),
        };
        if cluster.app != peer.app || cluster.app.app.is_empty() {
            return Err(format!(
                "it runs {}, cluster {} runs {}: only clusters of one app version exchange reserved IPs",
                version(cluster),
                peer.id,
                version(peer)
            ));
        }
        if cluster.spec.vxnet != peer.spec.vxnet {
            return Err(format!(
                "it is in network {}, cluster {} in network {}: only clusters of one network exchange reserved IPs",
                cluster.spec.vxnet, peer.id, peer.spec.vxnet
            ));
        }
        let (mine, theirs) = (reserved_ips(&cluster.spec), reserved_ips(&peer.spec));
        if mine.is_empty() {
            return Err("its app declares no reserved IPs (reserved_ips, endpoints.reserved_ips)".into());
        }
        if mine.keys().ne(theirs.keys()) {
            let names = |ips: &BTreeMap<String, String>| ips.keys().cloned().collect::<Vec<_>>().join(", ");
            return Err(format!(
                "its reserved IPs are {}, cluster {}'s are {}",
                names(&mine),
                peer.id,
                names(&theirs)
            ));
        }
        for (c, ips) in [(cluster, &mine), (peer, &theirs)] {
            if let Some((name, _)) = ips.iter().find(|(_, ip)| ip.is_empty()) {
                return Err(format!("reserved IP {name} of cluster {} has no address", c.id));
            }
        }
        Ok(())
    }

    /// Both clusters' steps: the addresses set (one store transaction, one
    /// metadata revision), every node of both re-rendered, both active.
    fn push_all(
        plan: &mut Plan,
        recovery: bool,
        (cluster, peer): (&Cluster, &Cluster),
        (mine, theirs): (BTreeMap<String, String>, BTreeMap<String, String>),
        seed: &str,
    ) {
        let mut push = |action: Action, seed: String, on_peer: bool| {
            if recovery {
                plan.recover(action, seed);
            } else {
                plan.push(action, seed);
            }
            if on_peer {
                plan.on_peer(recovery);
            }
        };
        push(
            Action::SetReservedIps { mine, theirs },
            format!("{seed} 1: both records, then both metadata trees in one revision, take the addresses"),
            false,
        );
        for (c, on_peer) in [(cluster, false), (peer, true)] {
            push(
                Action::RenderConfig {
                    nodes: c.live_node_ids().into(),
                },
                format!(
                    "{seed} 2: every node of cluster {} refreshes its configuration; reload where it really changed",
                    c.id
                ),
                on_peer,
            );
        }
        for (c, on_peer) in [(cluster, false), (peer, true)] {
            push(
                Action::SetStatus {
                    status: ClusterStatus::Active,
                },
                format!("{seed} 3: cluster {} is active again", c.id),
                on_peer,
            );
        }
    }
}

impl Flow for ExchangeIps {
    fn kind(&self) -> OperationKind {
        OperationKind::ExchangeIps
    }

    /// Two active clusters (upgrades finished, every node joined) of one
    /// app version in one network, with the same reserved IPs.
    fn admit(&self, cluster: &Cluster) -> Result<ClusterStatus, Refusal> {
        for c in [cluster, &self.peer] {
            active(self.kind(), c)?;
            all_joined(self.kind(), c)?;
        }
        self.check(cluster)
            .map_err(|why| Refusal::new(self.kind(), Some(cluster), why))?;
        Ok(ClusterStatus::ExchangingIps)
    }

    fn plan(&self, cluster: &Cluster) -> Plan {
        let (mine, theirs) = (reserved_ips(&cluster.spec), reserved_ips(&self.peer.spec));
        let both = (cluster, &self.peer);
        let mut plan = Plan::default();
        Self::push_all(&mut plan, false, both, (theirs.clone(), mine.clone()), "exchange-ips");
        Self::push_all(&mut plan, true, both, (mine, theirs), "exchange-ips recovery");
        plan.recovery_note = Some("both clusters have their own reserved IPs again".into());
        plan
    }
}
