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
//!   event, else by sid. With canaries (BOSH's semantics, per role as per
//!   instance group) each role's first N nodes go one at a time, then at
//!   most `max_in_flight` at once; a failure stops the upgrade where it is. Every node renders once more at the end
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
//! - What only asks comes first and changes nothing: `upgrade`'s pre-check
//!   and `get_nodes_order` run before the record or the tree changes (so
//!   they see the old `/cluster/app_version` and no audit), and a refusal
//!   or failure there leaves the cluster as it was.
//! - `/upgrade-audit/{from_app_version,to_app_version}` is at the tree's
//!   root (where real apps read it, §7) from then on to the last step,
//!   and removed when the upgrade fails too; `/cluster/app_version` is the
//!   new version from then on.
//! - The cluster's env values carry over; keys the new version adds come
//!   with their defaults.
//! - A failed upgrade stays begun ([`crate::cluster::Upgrade`]): the
//!   operation says how to recover; upgrading to the same version again
//!   runs it again, skipping the nodes whose upgrade completed (a failed
//!   batch's recovery records the ones whose last hook ended ok), and
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
    /// The versions with the content of the one the cluster runs.
    pub(super) same_content: Vec<String>,
    pub(super) canaries: u32,
    pub(super) max_in_flight: u32,
}

impl Flow for Upgrade {
    fn kind(&self) -> OperationKind {
        OperationKind::Upgrade
    }

    fn admit(&self, cluster: &Cluster) -> Result<ClusterStatus, Refusal> {
        let refuse = |why: String| Err(Refusal::new(self.kind(), Some(cluster), why));
        if cluster.status == ClusterStatus::Deleted {
            return Err(by_status(self.kind(), cluster));
        }
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
        let allowed = &self.target.spec.upgrade_policy;
        if !allowed.contains(&from) && !self.same_content.iter().any(|v| allowed.contains(v)) {
            let listed = if allowed.is_empty() {
                "lists no version, so no cluster may be upgraded to it".to_string()
            } else {
                format!("lists only {}", allowed.join(", "))
            };
            return refuse(format!(
                "it runs version {from}, and version {to}'s upgrade_policy {listed} (register the spec it runs under one of those names, or list {from} in {to}'s upgrade_policy as a new version)"
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
        let policy = self.target.spec.upgrading_policy;
        let begun = Begun {
            policy,
            from: from.clone(),
            to: to.clone(),
            done: Default::default(),
        };
        // A run again skips the nodes whose upgrade completed.
        let done = cluster.upgrade.as_ref().map(|b| b.done.clone()).unwrap_or_default();
        let todo = |n: &Node| !done.contains(&n.node_id);
        let passed: Vec<String> = done.iter().cloned().collect();
        let label = match policy {
            UpgradingPolicy::Parallel => "parallel",
            UpgradingPolicy::Sequential => "rolling",
            UpgradingPolicy::InPlaceParallel | UpgradingPolicy::InPlaceSequential => "in-place",
        };
        let in_place = matches!(
            policy,
            UpgradingPolicy::InPlaceParallel | UpgradingPolicy::InPlaceSequential
        );
        let mut plan = Plan::default();
        // First what only asks, and changes nothing: a refusal or a failed
        // get_nodes_order leaves the cluster as it was.
        if in_place {
            let pre_checked = |s: &crate::spec::ServiceSpec| s.pre_check == Some(true);
            // nodes_to_execute_on counts every node, done or not.
            let asked: Vec<String> = nodes_among(&next, |_| true, "upgrade", pre_checked)
                .into_iter()
                .filter(|id| !done.contains(id))
                .collect();
            push_service(
                &mut plan,
                ServiceStep::new("upgrade", asked, OnFailure::Fail)
                    .pre_check()
                    .of_version(&to),
                "in-place upgrade: upgrade's pre_check on every node whose role asks for it; a refusal changes nothing",
            );
        }
        let ordered = matches!(policy, UpgradingPolicy::Sequential | UpgradingPolicy::InPlaceSequential);
        let groups: Vec<(&RoleSpec, Vec<NodeSet>)> = if ordered {
            role_groups(&next, "upgrade", todo)
                .into_iter()
                .filter(|(role, _)| !in_place || role.service("upgrade").is_some())
                .map(|(role, nodes)| {
                    let slots = node_slots(
                        &mut plan,
                        role,
                        &nodes,
                        &passed,
                        NodesOrderEvent::Upgrade,
                        Some(&to),
                        &format!("{label} upgrade"),
                    );
                    (role, slots)
                })
                .collect()
        } else {
            Vec::new()
        };
        plan.push(
            Action::WriteTemp {
                entry: TempEntry::UpgradeAudit {
                    from_app_version: from.clone(),
                    to_app_version: to.clone(),
                },
            },
            format!("{label} upgrade: /upgrade-audit shows the versions while it runs"),
        );
        // Stopped before the record changed, nothing is left to undo.
        plan.reversible = plan.steps.len();
        plan.push(
            Action::BeginUpgrade { upgrade: begun.clone() },
            format!("{label} upgrade: the cluster record takes version {to}; nodes not yet upgraded keep {from}"),
        );
        plan.push(
            Action::RegisterMetadata,
            format!("{label} upgrade: /cluster/app_version is {to} in the metadata"),
        );
        match policy {
            UpgradingPolicy::Parallel => parallel(&mut plan, &next, &to),
            UpgradingPolicy::Sequential => {
                // The nodes' own (old) version runs their stop.
                let other_versions = cluster.live_nodes().any(|n| n.version.is_some());
                let stops = |role: &RoleSpec| {
                    other_versions || role.service("stop").is_some() || cluster.service(&role.role, "stop").is_some()
                };
                self.rolling(&mut plan, &next, groups, stops)
            }
            UpgradingPolicy::InPlaceParallel | UpgradingPolicy::InPlaceSequential => {
                in_place_steps(&mut plan, &next, &to, todo, groups)
            }
        }
        // Past the last node, stopping would only leave the upgrade unended.
        plan.no_cancel_from = Some(plan.steps.len());
        plan.push(
            Action::ClearTemp {
                tree: TempTree::UpgradeAudit,
            },
            format!("{label} upgrade: /upgrade-audit is removed"),
        );
        plan.push(Action::EndUpgrade, format!("{label} upgrade: the upgrade is over"));
        plan.push(
            Action::SetStatus {
                status: ClusterStatus::Active,
            },
            format!("{label} upgrade: the cluster is active on version {to}"),
        );
        if policy != UpgradingPolicy::Parallel {
            // A failed batch keeps what its nodes finished: a run again skips them.
            for (role, nodes) in role_groups(&next, "upgrade", todo) {
                if let Some(last) = last_service(role, in_place) {
                    plan.recover(
                        Action::UpgradeDone {
                            nodes: nodes.into(),
                            proven_by: Some(last.into()),
                        },
                        format!(
                            "{label} upgrade (failed): role {}'s nodes whose {last} ended ok are upgraded",
                            role.role
                        ),
                    );
                }
            }
        }
        plan.recover(
            Action::ClearTemp {
                tree: TempTree::UpgradeAudit,
            },
            format!("{label} upgrade (failed): /upgrade-audit is removed"),
        );
        let id = &cluster.id;
        let again = format!("`hookhost cluster upgrade {id} --version {to}`");
        let downgrade = format!("`hookhost cluster downgrade {id}`");
        plan.recovery_note = Some(match policy {
            UpgradingPolicy::Parallel => format!(
                "to recover, stop it (`hookhost cluster stop {id}`), then downgrade it ({downgrade}) to boot version {from} again, or upgrade it again ({again})"
            ),
            UpgradingPolicy::Sequential => format!(
                "the nodes upgraded so far run version {to}, the others {from}; to recover, stop it (`hookhost cluster stop {id}`), then downgrade it ({downgrade}) to boot version {from} on every node, or start it (`hookhost cluster start {id}`: the nodes not upgraded boot {from}) and upgrade it again ({again}) to finish"
            ),
            _ => {
                plan.recover(
                    Action::SetStatus {
                        status: ClusterStatus::Active,
                    },
                    "in-place upgrade (failed): the cluster runs on, on its old image",
                );
                let rollback = if self.target.spec.unsupported_actions.iter().any(|a| a == "rollback") {
                    String::new()
                } else {
                    format!(", or downgrade it ({downgrade}) to run the rollback hook")
                };
                format!(
                    "the nodes run version {from}'s image, as before; to recover while it is active, upgrade it again ({again}){rollback}"
                )
            }
        });
        plan
    }
}

/// The service a role's nodes end their upgrade with: what proves it done.
fn last_service(role: &RoleSpec, in_place: bool) -> Option<&'static str> {
    let upgrade = role.service("upgrade");
    if in_place {
        return upgrade.map(|_| "upgrade");
    }
    match (upgrade, role.service("start")) {
        (Some(u), _) if u.runs_after_start() => Some("upgrade"),
        (_, Some(_)) => Some("start"),
        (Some(_), None) => Some("upgrade"),
        (None, None) => None,
    }
}

/// The nodes of a service's role that run it, when `nodes_to_execute_on`
/// keeps fewer than all (a node order known at run time cannot say which).
fn limited(next: &Cluster, role: &RoleSpec, service: &str) -> Option<Vec<String>> {
    role.service(service)?.nodes_to_execute_on?;
    Some(nodes_among(next, |_| true, service, |_| true))
}

/// Whether two versions of an app fit one cluster: the same roles, with
/// the same replicas and volume mount points (`notes/appcenter-spec.md` §2.1).
pub fn same_shape(now: &Spec, next: &Spec) -> Result<(), String> {
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
        let mounts = |r: &RoleSpec| match r.volume.as_ref().map(|v| v.mount_point.clone()) {
            None => "no volume".to_string(),
            Some(None) => "a volume at /data".to_string(),
            Some(Some(crate::spec::MountPoint::One(p))) => format!("a volume at {p}"),
            Some(Some(crate::spec::MountPoint::Many(ps))) => format!("a volume at {}", ps.join(", ")),
        };
        if mounts(role) != mounts(other) {
            return Err(format!(
                "role {} has {}, the version {}; data-disk mount points must match",
                role.role,
                mounts(role),
                mounts(other)
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
    /// Rolling upgrade: steps 1–4 one node (or batch) at a time, each
    /// role's nodes in `groups`' slots; canaries per role (BOSH's per
    /// instance group).
    fn rolling(
        &self,
        plan: &mut Plan,
        next: &Cluster,
        groups: Vec<(&RoleSpec, Vec<NodeSet>)>,
        stops: impl Fn(&RoleSpec) -> bool,
    ) {
        for (role, slots) in groups {
            let canaries = (self.canaries as usize).min(slots.len());
            let mut at = 0;
            while at < slots.len() {
                let (size, how) = if at < canaries {
                    (1, format!("canary {} of {canaries}", at + 1))
                } else if self.max_in_flight <= 1 {
                    (1, "one node at a time".to_string())
                } else {
                    let n = self.max_in_flight as usize;
                    let left = slots.len() - at;
                    let how = if left < n {
                        format!("the last {left} of the role, at most {n} nodes at once")
                    } else {
                        format!("at most {n} nodes at once")
                    };
                    (n, how)
                };
                let batch: Vec<NodeSet> = slots[at..slots.len().min(at + size)].to_vec();
                at += batch.len();
                push_node_upgrade(plan, next, role, batch_set(&batch), &how, stops(role));
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

/// One batch's slots as one set: listed ids merge; slots of a node order
/// produced at run time are contiguous, so they merge into one slice.
fn batch_set(batch: &[NodeSet]) -> NodeSet {
    match batch.first() {
        Some(NodeSet::Order { order, skip, .. }) => NodeSet::Order {
            order: order.clone(),
            skip: *skip,
            take: Some(batch.len()),
        },
        _ => NodeSet::Ids(
            batch
                .iter()
                .flat_map(|set| match set {
                    NodeSet::Ids(ids) => ids.clone(),
                    NodeSet::Order { .. } => Vec::new(),
                })
                .collect(),
        ),
    }
}

/// Steps 1–4 of §5.12 for one batch of a role's nodes.
fn push_node_upgrade(plan: &mut Plan, next: &Cluster, role: &RoleSpec, nodes: NodeSet, how: &str, stops: bool) {
    let at_once = match &nodes {
        NodeSet::Ids(ids) => ids.len(),
        NodeSet::Order { take, .. } => take.unwrap_or(1),
    } as u32;
    let service = |name: &str| {
        let step = ServiceStep::new(name, nodes.clone(), OnFailure::Fail).listed(at_once);
        match limited(next, role, name) {
            Some(among) => step.among(among),
            None => step,
        }
    };
    let seed = |step: u32, what: &str| format!("rolling upgrade {step} ({how}): {what}");
    if stops {
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
    plan.push(
        Action::UpgradeDone { nodes, proven_by: None },
        seed(4, "the node's upgrade is done"),
    );
}

/// In-place upgrade (§5.14): the payload is copied, then `upgrade` runs,
/// all by role order at once, or serially in `groups`' slots (each role's
/// `get_nodes_order`); on the nodes `todo` keeps.
fn in_place_steps(
    plan: &mut Plan,
    next: &Cluster,
    to: &str,
    todo: impl Fn(&Node) -> bool + Copy,
    groups: Vec<(&RoleSpec, Vec<NodeSet>)>,
) {
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
            todo(n)
                && next
                    .spec
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
                "in-place upgrade: version {to}'s payload is copied into the nodes of each copy's mount_role (a failed copy removes its destination)"
            ),
        );
    }
    if groups.is_empty() {
        // nodes_to_execute_on counts every node, done or not.
        let upgraded: Vec<String> = nodes_among(next, |_| true, "upgrade", |_| true)
            .into_iter()
            .filter(|id| next.node(id).is_some_and(todo))
            .collect();
        push_service(
            plan,
            ServiceStep::new("upgrade", upgraded, OnFailure::Fail).of_version(to),
            "in-place upgrade (in-place-parallel): run upgrade by role order, equal orders in parallel",
        );
        return;
    }
    for (role, slots) in groups {
        push_one_by_one(
            plan,
            next,
            role,
            slots,
            "upgrade",
            Some(to),
            "in-place upgrade (in-place-sequential)",
        );
    }
}

/// `service` on a role's nodes one after another, slot by slot (with
/// `version`'s hooks when given); `nodes_to_execute_on` as `cluster`'s spec says.
pub(super) fn push_one_by_one(
    plan: &mut Plan,
    cluster: &Cluster,
    role: &RoleSpec,
    slots: Vec<NodeSet>,
    service: &str,
    version: Option<&str>,
    flow: &str,
) {
    for slot in slots {
        let mut step = ServiceStep::new(service, slot, OnFailure::Fail).listed(1);
        if let Some(version) = version {
            step = step.of_version(version);
        }
        if let Some(among) = limited(cluster, role, service) {
            step = step.among(among);
        }
        plan.push(
            Action::RunService(step),
            format!("{flow}: role {} runs {service} one node after another", role.role),
        );
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
