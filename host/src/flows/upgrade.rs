//! Upgrade to another version of the cluster's app. The new version's
//! `upgrading_policy` picks the way, as `notes/appcenter-spec.md` §5.12–5.14
//! reconstructs the seed's "Parallel upgrade" and its picture-only flows:
//!
//! - `parallel` (the seed's "Parallel upgrade", steps 1–4, all nodes at
//!   once): on a stopped cluster ([SPEC]: "需要关闭集群"); the nodes boot the
//!   new version, render, then run `start` and `upgrade` by
//!   `upgrade.post_start_service` and role order. The cluster ends active.
//! - `sequential` (rolling, §5.13): on an active cluster, one node at a time
//!   (steps 1–4 per node, [LIFE]'s note): the node runs `stop`, its instance
//!   goes, it boots the new version, the tree is registered again, it
//!   renders, then runs `start` and `upgrade` as above. Roles go in
//!   ascending `upgrade` order; within a role the nodes go in the order its
//!   `get_nodes_order` replies to `{"event": "upgrade"}` when it lists that
//!   event, else by sid. With canaries (BOSH's semantics) the first N nodes
//!   go one at a time, then at most `max_in_flight` at once; a failure
//!   stops the upgrade where it is. Every node renders once more at the end
//!   (their confd sees the new instance ids).
//! - `in-place-parallel` / `in-place-sequential` (§5.14): on an active
//!   cluster, no node reboots: `upgrade`'s `pre_check` asks first (a refusal
//!   changes nothing), the version's payload is copied as its
//!   `in-place-upgrade-nodes` say, then `upgrade` runs, by role order at
//!   once or one node at a time per `get_nodes_order`. The nodes keep the
//!   old version's image (and hooks) until their next start.
//!
//! Choices the notes leave open, made here:
//! - The hooks that belong to the upgrade itself — `upgrade` (and its
//!   pre-check) and `get_nodes_order` — are the new version's, run on every
//!   node whatever it was booted from; all others are the node's own
//!   version's.
//! - `/upgrade-audit/{from_app_version,to_app_version}` is at the tree's
//!   root (where real apps read it, §7) from the first step to the last,
//!   and removed when the upgrade fails too; `/cluster/app_version` is the
//!   new version from the start.
//! - The cluster's env values carry over; keys the new version adds come
//!   with their defaults.
//! - A failed upgrade stays begun ([`crate::cluster::Upgrade`]): the
//!   operation says how to recover; upgrading to the same version again
//!   runs it again (a rolling one skips the nodes it finished) and
//!   `downgrade` goes back. A failed parallel or rolling upgrade leaves the
//!   cluster failed: stop it first (§5.12 step 5, §5.13). A failed in-place
//!   upgrade leaves it active, as §5.14 needs for its recovery.

use super::Flow;
use super::admit::{Refusal, all_joined, by_status};
use super::select::{nodes_among, push_around_start, push_service};
use crate::apps::AppVersion;
use crate::cluster::{Cluster, ClusterStatus, Node, Upgrade as Begun};
use crate::plan::{Action, NodeSet, OnFailure, Plan, Reply, ServiceStep, TempEntry, TempTree};
use crate::request::OperationKind;
use crate::spec::{NodesOrderEvent, RoleSpec, Spec, UpgradingPolicy};

/// Upgrading to a loaded, checked app version.
pub(super) struct Upgrade {
    pub(super) target: AppVersion,
    pub(super) canaries: u32,
    pub(super) max_in_flight: u32,
}

impl Flow for Upgrade {
    fn kind(&self) -> OperationKind {
        OperationKind::Upgrade
    }

    fn admit(&self, cluster: &Cluster) -> Result<ClusterStatus, Refusal> {
        let refuse = |why: String| Err(Refusal::new(self.kind(), Some(cluster), why));
        let to = &self.target.version;
        let policy = self.target.spec.upgrading_policy;
        let from = match &cluster.upgrade {
            Some(begun) if &begun.to == to => begun.from.clone(),
            Some(begun) => {
                return refuse(format!(
                    "its upgrade from version {0} to {1} did not finish: upgrade it to {1} again or downgrade it first",
                    begun.from, begun.to
                ));
            }
            None if &cluster.app.version == to => return refuse(format!("it already runs version {to}")),
            None => cluster.app.version.clone(),
        };
        if !self.target.spec.upgrade_policy.contains(&from) {
            let listed = if self.target.spec.upgrade_policy.is_empty() {
                "lists no version".to_string()
            } else {
                format!("lists {}", self.target.spec.upgrade_policy.join(", "))
            };
            return refuse(format!(
                "version {to} may not be upgraded to from version {from}: its upgrade_policy {listed}"
            ));
        }
        if let Err(why) = same_shape(&cluster.spec, &self.target.spec) {
            return refuse(format!("version {to} does not fit it: {why}"));
        }
        if (self.canaries > 0 || self.max_in_flight > 0) && policy != UpgradingPolicy::Sequential {
            return refuse(format!(
                "--canaries and --max-in-flight are for rolling upgrades; version {to} upgrades {}",
                crate::request::kebab_name(&policy)
            ));
        }
        all_joined(self.kind(), cluster)?;
        let needs = match policy {
            UpgradingPolicy::Parallel => ClusterStatus::Stopped,
            _ => ClusterStatus::Active,
        };
        match cluster.status {
            status if status == needs => Ok(ClusterStatus::Upgrading),
            ClusterStatus::Active => refuse(format!(
                "version {to} upgrades in parallel, which runs on a stopped cluster: stop it first"
            )),
            ClusterStatus::Stopped => refuse(format!(
                "version {to} upgrades {}, which runs on an active cluster: start it first",
                crate::request::kebab_name(&policy)
            )),
            _ => Err(by_status(self.kind(), cluster)),
        }
    }

    fn plan(&self, cluster: &Cluster) -> Plan {
        let from = cluster
            .upgrade
            .as_ref()
            .map_or_else(|| cluster.app.version.clone(), |b| b.from.clone());
        let to = self.target.version.clone();
        // The cluster as it will be: the plan reads the new version's services.
        let mut next = cluster.clone();
        next.take_version(&self.target);
        let begun = Begun {
            policy: self.target.spec.upgrading_policy,
            from: from.clone(),
            to: to.clone(),
            done: Default::default(),
        };
        let mut plan = Plan::default();
        let policy = match begun.policy {
            UpgradingPolicy::Parallel => "parallel",
            UpgradingPolicy::Sequential => "rolling",
            UpgradingPolicy::InPlaceParallel | UpgradingPolicy::InPlaceSequential => "in-place",
        };
        let pre_checked = |s: &crate::spec::ServiceSpec| s.pre_check == Some(true);
        if matches!(
            begun.policy,
            UpgradingPolicy::InPlaceParallel | UpgradingPolicy::InPlaceSequential
        ) {
            push_service(
                &mut plan,
                ServiceStep::new(
                    "upgrade",
                    nodes_among(&next, |_| true, "upgrade", pre_checked),
                    OnFailure::Fail,
                )
                .pre_check()
                .of_version(&to),
                "in-place upgrade (§5.14): upgrade's pre_check on every node whose role asks for it; a refusal changes nothing",
            );
        }
        plan.push(
            Action::WriteTemp {
                entry: TempEntry::UpgradeAudit {
                    from_app_version: from.clone(),
                    to_app_version: to.clone(),
                },
            },
            format!("{policy} upgrade: /upgrade-audit shows the versions while it runs"),
        );
        plan.push(
            Action::BeginUpgrade { upgrade: begun.clone() },
            format!("{policy} upgrade: the cluster record takes version {to}; nodes not yet upgraded keep {from}"),
        );
        plan.push(
            Action::RegisterMetadata,
            format!("{policy} upgrade: /cluster/app_version is {to} in the metadata"),
        );
        match begun.policy {
            UpgradingPolicy::Parallel => parallel(&mut plan, &next, &to),
            UpgradingPolicy::Sequential => self.rolling(&mut plan, &next),
            UpgradingPolicy::InPlaceParallel | UpgradingPolicy::InPlaceSequential => {
                in_place(&mut plan, &next, &to, begun.policy)
            }
        }
        plan.push(
            Action::ClearTemp {
                tree: TempTree::UpgradeAudit,
            },
            format!("{policy} upgrade: /upgrade-audit is removed"),
        );
        plan.push(Action::EndUpgrade, format!("{policy} upgrade: the upgrade is over"));
        plan.push(
            Action::SetStatus {
                status: ClusterStatus::Active,
            },
            format!("{policy} upgrade: the cluster is active on version {to}"),
        );
        plan.recover(
            Action::ClearTemp {
                tree: TempTree::UpgradeAudit,
            },
            format!("{policy} upgrade (failed): /upgrade-audit is removed"),
        );
        let id = &cluster.id;
        let again = format!("`hookhost cluster upgrade {id} --version {to}`");
        let downgrade = format!("`hookhost cluster downgrade {id}`");
        plan.recovery_note = Some(match begun.policy {
            UpgradingPolicy::Parallel => format!(
                "to recover (§5.12 step 5): stop it (`hookhost cluster stop {id}`), then downgrade it ({downgrade}) to boot version {from} again, or upgrade it again ({again})"
            ),
            UpgradingPolicy::Sequential => format!(
                "the nodes upgraded so far run version {to}, the others {from}; to recover (§5.13): stop it (`hookhost cluster stop {id}`), then downgrade it ({downgrade}) to boot version {from} on every node, or start it (`hookhost cluster start {id}`) and upgrade it again ({again}) to finish"
            ),
            _ => {
                plan.recover(
                    Action::SetStatus {
                        status: ClusterStatus::Active,
                    },
                    "in-place upgrade (failed, §5.14): the cluster runs on, on its old image",
                );
                format!(
                    "the nodes run version {from}'s image, as before; to recover (§5.14, while it is active): upgrade it again ({again}), or downgrade it ({downgrade}) to run the rollback hook"
                )
            }
        });
        plan
    }
}

/// Whether two versions of an app fit one cluster: the same roles, with
/// the same replicas and volume mount points (`notes/appcenter-spec.md` §2.1).
pub(super) fn same_shape(now: &Spec, next: &Spec) -> Result<(), String> {
    let names = |s: &Spec| s.nodes.iter().map(|r| r.role.clone()).collect::<Vec<_>>();
    let (mut a, mut b) = (names(now), names(next));
    a.sort();
    b.sort();
    if a != b {
        return Err(format!(
            "its roles are {}, the version's {}; versions of an app have the same roles",
            a.join(", "),
            b.join(", ")
        ));
    }
    for role in &now.nodes {
        let Some(other) = next.nodes.iter().find(|r| r.role == role.role) else {
            continue;
        };
        if role.replica != other.replica {
            return Err(format!(
                "role {} has {} replicas per node, the version {}",
                role.role, role.replica, other.replica
            ));
        }
        if role.volume_mount() != other.volume_mount() {
            return Err(format!(
                "role {} mounts its volume at {}, the version at {}",
                role.role,
                role.volume_mount(),
                other.volume_mount()
            ));
        }
    }
    Ok(())
}

/// Parallel upgrade, the seed's steps 1–4 on every node at once.
fn parallel(plan: &mut Plan, next: &Cluster, to: &str) {
    let all = next.live_node_ids();
    plan.push(
        Action::StopInstances {
            nodes: all.clone().into(),
        },
        "parallel upgrade 1: shut the cluster's nodes down (it is stopped: no instance runs)",
    );
    plan.push(
        Action::SwitchVersion {
            nodes: all.clone().into(),
            version: None,
        },
        format!("parallel upgrade 2: the nodes boot from version {to}'s image"),
    );
    plan.push(
        Action::StartInstances {
            nodes: all.clone().into(),
        },
        format!("parallel upgrade 2: boot the nodes from version {to}'s image"),
    );
    plan.push(
        Action::RegisterMetadata,
        "parallel upgrade 2: register the new instances in the metadata",
    );
    plan.push(
        Action::RenderConfig { nodes: all.into() },
        "parallel upgrade 3: start every node's confd agent: render the configuration, reload where it really changed",
    );
    push_around_start(plan, next, "upgrade", |_| true, |s| s, "parallel upgrade 4", "");
}

impl Upgrade {
    /// Rolling upgrade (§5.13): steps 1–4 one node (or batch) at a time.
    fn rolling(&self, plan: &mut Plan, next: &Cluster) {
        let done = next.upgrade.as_ref().map(|b| b.done.clone()).unwrap_or_default();
        let mut upgraded = 0usize;
        for (role, nodes) in role_groups(next, "upgrade", |n| !done.contains(&n.node_id)) {
            let passed: Vec<String> = next
                .live_nodes()
                .filter(|n| done.contains(&n.node_id))
                .map(|n| n.node_id.clone())
                .collect();
            let slots = node_slots(
                plan,
                role,
                &nodes,
                &passed,
                NodesOrderEvent::Upgrade,
                Some(&next.app.version),
                "rolling upgrade",
            );
            let mut at = 0;
            while at < slots.len() {
                let size = if upgraded < self.canaries as usize {
                    1
                } else {
                    self.max_in_flight.max(1) as usize
                };
                let batch: Vec<NodeSet> = slots[at..slots.len().min(at + size)].to_vec();
                let how = if upgraded < self.canaries as usize {
                    format!("canary {} of {}", upgraded + 1, self.canaries)
                } else if size == 1 {
                    "one node at a time".to_string()
                } else {
                    format!("at most {size} nodes at once")
                };
                upgraded += batch.len();
                at += batch.len();
                for nodes in batch_sets(&batch) {
                    push_node_upgrade(plan, next, role, nodes, &how);
                }
            }
        }
        plan.push(
            Action::RenderConfig {
                nodes: next.live_node_ids().into(),
            },
            "rolling upgrade: every node's confd sees the new instances: render, reload where it really changed",
        );
    }
}

/// One batch's sets: listed ids merge into one set; slots of a node order
/// produced at run time are contiguous, so they merge into one slice.
fn batch_sets(batch: &[NodeSet]) -> Vec<NodeSet> {
    match batch.first() {
        Some(NodeSet::Order { order, skip, .. }) => vec![NodeSet::Order {
            order: order.clone(),
            skip: *skip,
            take: Some(batch.len()),
        }],
        _ => vec![NodeSet::Ids(
            batch
                .iter()
                .flat_map(|set| match set {
                    NodeSet::Ids(ids) => ids.clone(),
                    NodeSet::Order { .. } => Vec::new(),
                })
                .collect(),
        )],
    }
}

/// Steps 1–4 of §5.12 for one batch of a role's nodes.
fn push_node_upgrade(plan: &mut Plan, next: &Cluster, role: &RoleSpec, nodes: NodeSet, how: &str) {
    let at_once = match &nodes {
        NodeSet::Ids(ids) => ids.len(),
        NodeSet::Order { take, .. } => take.unwrap_or(1),
    } as u32;
    let service = |name: &str| ServiceStep::new(name, nodes.clone(), OnFailure::Fail).listed(at_once);
    let seed = |step: u32, what: &str| format!("rolling upgrade {step} ({how}): {what}");
    if role.service("stop").is_some() {
        plan.push(Action::RunService(service("stop")), seed(1, "the node runs stop"));
    }
    plan.push(
        Action::StopInstances { nodes: nodes.clone() },
        seed(1, "shut the node down"),
    );
    plan.push(
        Action::SwitchVersion {
            nodes: nodes.clone(),
            version: None,
        },
        seed(2, &format!("the node boots from version {}'s image", next.app.version)),
    );
    plan.push(
        Action::StartInstances { nodes: nodes.clone() },
        seed(2, "boot the node from the new version's image"),
    );
    plan.push(
        Action::RegisterMetadata,
        seed(2, "register its new instance in the metadata"),
    );
    plan.push(
        Action::RenderConfig { nodes: nodes.clone() },
        seed(
            3,
            "its confd agent renders the configuration, reload where it really changed",
        ),
    );
    let upgrade = role.service("upgrade");
    let after = upgrade.is_some_and(|s| s.runs_after_start());
    if upgrade.is_some() && !after {
        plan.push(
            Action::RunService(service("upgrade")),
            seed(
                4,
                "the node runs upgrade (upgrade.post_start_service false: before start)",
            ),
        );
    }
    if role.service("start").is_some() {
        plan.push(Action::RunService(service("start")), seed(4, "the node runs start"));
    }
    if upgrade.is_some() && after {
        plan.push(
            Action::RunService(service("upgrade")),
            seed(
                4,
                "the node runs upgrade (upgrade.post_start_service true: after start)",
            ),
        );
    }
    plan.push(Action::UpgradeDone { nodes }, seed(4, "the node's upgrade is done"));
}

/// In-place upgrade (§5.14): the payload is copied, then `upgrade` runs,
/// all by role order at once, or serially per `get_nodes_order`.
fn in_place(plan: &mut Plan, next: &Cluster, to: &str, policy: UpgradingPolicy) {
    let copies: Vec<&str> = next
        .spec
        .in_place_upgrade_nodes
        .iter()
        .flat_map(|e| &e.copy)
        .map(|c| c.mount_role.as_str())
        .collect();
    let receivers: Vec<String> = next
        .live_nodes()
        .filter(|n| {
            next.spec
                .role(&n.role)
                .is_some_and(|r| copies.contains(&r.role.as_str()))
        })
        .map(|n| n.node_id.clone())
        .collect();
    if !receivers.is_empty() {
        plan.push(
            Action::CopyPayload {
                nodes: receivers.into(),
                version: to.to_string(),
            },
            format!(
                "in-place upgrade (§5.14): version {to}'s payload is copied into the nodes of each copy's mount_role (a failed copy removes its destination)"
            ),
        );
    }
    if policy == UpgradingPolicy::InPlaceParallel {
        push_service(
            plan,
            ServiceStep::new(
                "upgrade",
                nodes_among(next, |_| true, "upgrade", |_| true),
                OnFailure::Fail,
            )
            .of_version(to),
            "in-place upgrade (§5.14, in-place-parallel): run upgrade by role order, equal orders in parallel",
        );
        return;
    }
    for (role, nodes) in role_groups(next, "upgrade", |_| true) {
        if role.service("upgrade").is_none() {
            continue;
        }
        let slots = node_slots(
            plan,
            role,
            &nodes,
            &[],
            NodesOrderEvent::Upgrade,
            Some(to),
            "in-place upgrade",
        );
        for slot in slots {
            plan.push(
                Action::RunService(
                    ServiceStep::new("upgrade", slot, OnFailure::Fail)
                        .listed(1)
                        .of_version(to),
                ),
                format!(
                    "in-place upgrade (§5.14, in-place-sequential): role {} runs upgrade one node after another",
                    role.role
                ),
            );
        }
    }
}

/// A role's nodes in the order an operation visits them: a step asking
/// the role's `get_nodes_order` (with `{"event": <event>}`, the new
/// version's hook) when the role lists `event`, and the slots of its reply;
/// else the nodes as listed. `passed`: nodes the reply may name that are
/// not visited; `version`: the version whose hook asks.
pub(super) fn node_slots(
    plan: &mut Plan,
    role: &RoleSpec,
    nodes: &[String],
    passed: &[String],
    event: NodesOrderEvent,
    version: Option<&str>,
    flow: &str,
) -> Vec<NodeSet> {
    let asks = role
        .service("get_nodes_order")
        .and_then(|s| s.event.as_ref())
        .is_some_and(|events| events.contains(&event));
    let Some(first) = nodes.first().filter(|_| asks) else {
        return nodes.iter().map(|id| NodeSet::Ids(vec![id.clone()])).collect();
    };
    let event_name = crate::request::kebab_name(&event).replace('-', "_");
    let var = format!("order_{}", role.role);
    let mut params = serde_json::Map::new();
    params.insert("event".into(), event_name.clone().into());
    let mut ask = ServiceStep::new("get_nodes_order", vec![first.clone()], OnFailure::Fail)
        .params(params)
        .reply(Reply::NodeOrder {
            of: nodes.to_vec(),
            passed: passed.to_vec(),
        });
    if let Some(version) = version {
        ask = ask.of_version(version);
    }
    plan.push_output(
        Action::RunService(ask),
        format!(
            "{flow}: role {}'s get_nodes_order ({{\"event\": \"{event_name}\"}}) on its first node decides its node order at run time",
            role.role
        ),
        &var,
    );
    (0..nodes.len())
        .map(|skip| NodeSet::Order {
            order: var.clone(),
            skip,
            take: Some(1),
        })
        .collect()
}

/// The live nodes `keep` keeps, by role: roles in ascending order of
/// `service` (then as the spec lists them), each role's nodes by sid, its
/// replicas after them.
pub(super) fn role_groups<'c>(
    cluster: &'c Cluster,
    service: &str,
    keep: impl Fn(&Node) -> bool,
) -> Vec<(&'c RoleSpec, Vec<String>)> {
    let mut roles: Vec<(usize, &RoleSpec)> = cluster.spec.nodes.iter().enumerate().collect();
    roles.sort_by_key(|(i, r)| (r.service(service).map_or(0, |s| s.order), *i));
    roles
        .into_iter()
        .filter_map(|(_, role)| {
            let mut nodes: Vec<&Node> = cluster
                .live_nodes()
                .filter(|n| n.role == role.role || n.role == role.replica_role())
                .filter(|n| keep(n))
                .collect();
            nodes.sort_by_key(|n| (n.role != role.role, n.sid));
            let ids: Vec<String> = nodes.iter().map(|n| n.node_id.clone()).collect();
            (!ids.is_empty()).then_some((role, ids))
        })
        .collect()
}
