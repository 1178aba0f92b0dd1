//! Vertical scaling — the seed's "Vertical scaling / change server type",
//! steps 1 to 7 (`notes/appcenter-spec.md` §5.7), for one role and its
//! replicas:
//!
//! 1. `/vertical-scaling-roles` = the role (`db,db-replica` with replicas).
//! 2. Only the volume grows (what really changes: sizes a node already has
//!    do not count): every node's volume grows online, at once; no hook
//!    runs (then 6, 7).
//! 3. The role defines `stop`: step 4; else step 5.
//! 4. By `vertical_scaling_policy`, `sequential` (one node at a time:
//!    `stop` → resize → `start`, in the order `get_nodes_order` replies to
//!    `{"event": "scale_vertical"}` when the role lists that event, asked of
//!    the role's first node; else in creation order) or `parallel` (all
//!    nodes: `stop`, resize, `start`).
//! 5. The seed's text ("stop on the nodes not being scaled") reads as a slip
//!    for the nodes without `stop`; chosen here: such nodes are resized,
//!    then run `start` (when the role defines it), by the same policy.
//! 6. The record and the metadata take the new sizes; the temporary subtree goes.
//! 7. Every node re-renders; reload where the files changed.
//!
//! The seed's note: when scaling fails midway, `/vertical-scaling-roles` is
//! removed too. The recovery part registers what was resized (those nodes
//! show their new size), removes it, and every node re-renders; the cluster
//! is failed when a node was touched (it may be stopped): stop and start
//! it, or delete it; stopped before that, it stays active.
//! Hooks read the new sizes in `/host` from step 6 on: a `start` during
//! step 4 still sees the old ones (as the seed orders it).
//! Instances keep their ids across a resize (as a cloud's resize does).

use super::Flow;
use super::admit::{Refusal, active, all_joined, role_spec};
use super::select::ids;
use crate::cluster::{Cluster, ClusterStatus, Node};
use crate::plan::{Action, NodeSet, OnFailure, Plan, Reply, ServiceStep, TempEntry, TempTree};
use crate::request::{OperationKind, ResourceChange};
use crate::spec::{NodesOrderEvent, RoleSpec, ScalingPolicy};

/// Most CPU cores a node may ask for.
pub const MAX_CPU: u32 = 1024;
/// Most memory a node may ask for, MiB (16 TiB).
pub const MAX_MEMORY: u64 = 16 << 20;
/// Largest volume, GiB (64 TiB).
pub const MAX_VOLUME: u64 = 64 << 10;

/// Resizing a role's nodes (and its replicas).
pub(super) struct Resize {
    pub(super) role: String,
    pub(super) change: ResourceChange,
}

impl Resize {
    /// The role's nodes and its replicas, in creation order.
    fn nodes<'c>(cluster: &'c Cluster, role: &RoleSpec) -> Vec<&'c Node> {
        let roles = role.node_roles();
        cluster.live_nodes().filter(|n| roles.contains(&n.role)).collect()
    }

    /// What really changes: the sizes asked for that some node does not have yet.
    fn effective(&self, nodes: &[&Node]) -> ResourceChange {
        let c = &self.change;
        let differs = |has: fn(&crate::cluster::Resources) -> u64, wants: Option<u64>| {
            wants.filter(|w| nodes.iter().any(|n| has(&n.resources) != *w))
        };
        ResourceChange {
            cpu: differs(|r| u64::from(r.cpu), c.cpu.map(u64::from)).map(|v| v as u32),
            memory: differs(|r| r.memory, c.memory),
            volume_size: differs(|r| r.volume_size, c.volume_size),
            instance_class: differs(|r| u64::from(r.instance_class), c.instance_class.map(u64::from)).map(|v| v as u32),
        }
    }

    /// Bad sizes, in the request's words.
    fn check_sizes(&self, role: &RoleSpec, nodes: &[&Node]) -> Result<(), String> {
        let c = &self.change;
        if c.is_empty() {
            return Err("name what changes: --cpu, --memory, --volume-size or --instance-class".into());
        }
        if nodes.is_empty() {
            return Err(format!("role {} has no nodes to resize", role.role));
        }
        if c.volume_size.is_some() && role.volume.is_none() {
            return Err(format!(
                "--volume-size: role {} has no data volume (its spec names none)",
                role.role
            ));
        }
        if let Some(cpu) = c.cpu
            && !(1..=MAX_CPU).contains(&cpu)
        {
            return Err(format!("--cpu {cpu}: a node has 1 to {MAX_CPU} cores"));
        }
        if let Some(memory) = c.memory
            && !(1..=MAX_MEMORY).contains(&memory)
        {
            return Err(format!("--memory {memory}: a node has 1 to {MAX_MEMORY} MiB"));
        }
        if let Some(size) = c.volume_size {
            if size > MAX_VOLUME {
                return Err(format!("--volume-size {size}: a volume has at most {MAX_VOLUME} GiB"));
            }
            if let Some(node) = nodes.iter().find(|n| n.resources.volume_size > size) {
                return Err(format!(
                    "--volume-size {size}: volumes never shrink, and node {} has {} GiB",
                    node.node_id, node.resources.volume_size
                ));
            }
        }
        if self.effective(nodes).is_empty() {
            return Err(format!("nothing changes: every node of the role already has {c}"));
        }
        Ok(())
    }
}

impl Flow for Resize {
    fn kind(&self) -> OperationKind {
        OperationKind::Resize
    }

    fn admit(&self, cluster: &Cluster) -> Result<ClusterStatus, Refusal> {
        active(self.kind(), cluster)?;
        all_joined(self.kind(), cluster)?;
        let role = role_spec(self.kind(), cluster, &self.role)?;
        self.check_sizes(role, &Resize::nodes(cluster, role))
            .map_err(|why| Refusal::new(self.kind(), Some(cluster), why))?;
        Ok(ClusterStatus::Resizing)
    }

    fn plan(&self, cluster: &Cluster) -> Plan {
        let Some(role) = cluster.spec.role(&self.role) else {
            return Plan::default();
        };
        let targets = Resize::nodes(cluster, role);
        let change = self.effective(&targets);
        let nodes = ids(targets);
        let Some(first) = nodes.first().cloned() else {
            return Plan::default();
        };
        let mut plan = Plan::default();
        plan.push(
            Action::WriteTemp {
                entry: TempEntry::VerticalScalingRoles {
                    roles: role.node_roles(),
                },
            },
            "resize 1: register the roles being scaled under /vertical-scaling-roles",
        );
        let resize = |nodes: NodeSet| Action::ResizeNodes {
            nodes,
            change: change.clone(),
        };
        // Stopped before a node is touched, the recovery undoes everything.
        plan.reversible = plan.steps.len();
        if change.only_volume() {
            plan.push(
                resize(nodes.clone().into()),
                "resize 2: only the volumes grow: expand them online, every node at once",
            );
        } else {
            let has_stop = role.service("stop").is_some();
            let batches: Vec<NodeSet> = match role.vertical_scaling_policy {
                ScalingPolicy::Parallel => vec![nodes.clone().into()],
                ScalingPolicy::Sequential if asks_order(role) => {
                    let mut params = serde_json::Map::new();
                    params.insert("event".into(), "scale_vertical".into());
                    plan.push_output(
                        Action::RunService(
                            ServiceStep::new("get_nodes_order", vec![first], OnFailure::Fail)
                                .params(params)
                                .reply(Reply::NodeOrder {
                    of: nodes.clone(),
                    passed: Vec::new(),
                }),
                        ),
                        "resize 4: get_nodes_order ({\"event\": \"scale_vertical\"}) on the role's first node decides the order",
                        "order",
                    );
                    (0..nodes.len())
                        .map(|skip| NodeSet::Order {
                            order: "order".into(),
                            skip,
                            take: Some(1),
                        })
                        .collect()
                }
                ScalingPolicy::Sequential => nodes.iter().map(|id| vec![id.clone()].into()).collect(),
            };
            plan.reversible = plan.steps.len();
            let one_by_one = batches.len() > 1 || role.vertical_scaling_policy == ScalingPolicy::Sequential;
            let (how, who, runs) = if one_by_one {
                ("one node after another", "the node", "the node runs")
            } else {
                ("every node at once", "the nodes", "the nodes run")
            };
            for batch in batches {
                let service = |name: &str| Action::RunService(ServiceStep::new(name, batch.clone(), OnFailure::Fail));
                if has_stop {
                    plan.push(service("stop"), format!("resize 4 ({how}): {runs} stop"));
                    plan.push(resize(batch.clone()), format!("resize 4 ({how}): resize {who}"));
                } else {
                    plan.push(
                        resize(batch.clone()),
                        format!("resize 5 ({how}; the role defines no stop): resize {who}"),
                    );
                }
                if role.service("start").is_some() {
                    let seed = if has_stop { "resize 4" } else { "resize 5" };
                    plan.push(service("start"), format!("{seed} ({how}): {runs} start"));
                }
            }
        }
        plan.push(
            Action::RegisterMetadata,
            "resize 6: update the scaled nodes' information in the metadata service",
        );
        plan.push(
            Action::ClearTemp {
                tree: TempTree::VerticalScalingRoles,
            },
            "resize 6: remove /vertical-scaling-roles",
        );
        plan.push(
            Action::RenderConfig {
                nodes: cluster.live_node_ids().into(),
            },
            "resize 7: every node refreshes its configuration; reload where it really changed",
        );
        plan.push(
            Action::SetStatus {
                status: ClusterStatus::Active,
            },
            "resize: the cluster is active",
        );
        plan.recover(
            Action::RegisterMetadata,
            "resize (failed): the nodes resized so far show their new size",
        );
        plan.recover(
            Action::ClearTemp {
                tree: TempTree::VerticalScalingRoles,
            },
            "resize (failed): /vertical-scaling-roles is removed even when scaling fails midway",
        );
        plan.recover(
            Action::RenderConfig {
                nodes: cluster.live_node_ids().into(),
            },
            "resize (failed): every node refreshes its configuration",
        );
        plan
    }
}

/// Whether the role's `get_nodes_order` decides the order of vertical scaling.
fn asks_order(role: &RoleSpec) -> bool {
    role.service("get_nodes_order")
        .and_then(|s| s.event.as_ref())
        .is_some_and(|events| events.contains(&NodesOrderEvent::ScaleVertical))
}
