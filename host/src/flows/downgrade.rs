//! Downgrade: back from a failed upgrade to the version it started from —
//! the recovery halves of `notes/appcenter-spec.md` §5.12–5.14:
//!
//! - after a parallel or rolling upgrade, on the stopped cluster (stop it
//!   first, §5.12 step 5, §5.13): the cluster takes the old version again,
//!   every node boots from its image (§5.12 step 6), renders (step 7) and
//!   runs `start` by role order (step 8) — after a rolling upgrade, a role
//!   whose (new version's) `get_nodes_order` lists `rollback` starts its
//!   nodes one after another in the order it replies to `{"event": "rollback"}`;
//! - after an in-place upgrade, on the active cluster (§5.14): the new
//!   version's `rollback` hook runs — by role order at once
//!   (`in-place-parallel`), or one node after another per `get_nodes_order`
//!   (`in-place-sequential`) — then the cluster takes the old version
//!   again; nothing reboots. An app whose `unsupported_actions` lists
//!   `rollback` refuses it ([QKE]).
//!
//! `/upgrade-audit` shows the upgrade being undone (its from and to) while
//! the downgrade runs; hooks are told the operation is `upgrade-recovery`.

use super::Flow;
use super::admit::{Refusal, by_status};
use super::select::{nodes_among, push_service};
use super::upgrade::{node_slots, push_one_by_one, role_groups};
use crate::apps::AppVersion;
use crate::cluster::{Cluster, ClusterStatus};
use crate::plan::{Action, OnFailure, Plan, ServiceStep, TempEntry, TempTree};
use crate::request::OperationKind;
use crate::spec::{NodesOrderEvent, UpgradingPolicy};

/// Going back to the version a failed upgrade started from (loaded; absent
/// when the cluster is in no upgrade).
pub(super) struct Downgrade {
    pub(super) back_to: Option<AppVersion>,
}

fn in_place(policy: UpgradingPolicy) -> bool {
    matches!(
        policy,
        UpgradingPolicy::InPlaceParallel | UpgradingPolicy::InPlaceSequential
    )
}

impl Flow for Downgrade {
    fn kind(&self) -> OperationKind {
        OperationKind::Downgrade
    }

    fn admit(&self, cluster: &Cluster) -> Result<ClusterStatus, Refusal> {
        let refuse = |why: String| Err(Refusal::new(self.kind(), Some(cluster), why));
        let (Some(begun), Some(_)) = (&cluster.upgrade, &self.back_to) else {
            if matches!(cluster.status, ClusterStatus::Deleted) {
                return Err(by_status(self.kind(), cluster));
            }
            return refuse(format!(
                "it is in no upgrade (it runs version {}): a downgrade goes back from a failed upgrade",
                cluster.app.version
            ));
        };
        if in_place(begun.policy) {
            if cluster.spec.unsupported_actions.iter().any(|a| a == "rollback") {
                return refuse(format!(
                    "version {} lists rollback in unsupported_actions; upgrade it to {} again instead",
                    begun.to, begun.to
                ));
            }
            return match cluster.status {
                ClusterStatus::Active => Ok(ClusterStatus::Downgrading),
                _ => refuse(format!(
                    "an in-place downgrade runs the rollback hook on the running cluster, and it is {}",
                    cluster.status
                )),
            };
        }
        match cluster.status {
            ClusterStatus::Stopped => Ok(ClusterStatus::Downgrading),
            ClusterStatus::Active | ClusterStatus::Failed => refuse(format!(
                "a downgrade boots every node from version {}'s image: stop it first (`hookhost cluster stop {}`)",
                begun.from, cluster.id
            )),
            _ => Err(by_status(self.kind(), cluster)),
        }
    }

    fn plan(&self, cluster: &Cluster) -> Plan {
        let mut plan = Plan::default();
        let (Some(begun), Some(back_to)) = (&cluster.upgrade, &self.back_to) else {
            return plan;
        };
        let (from, to) = (begun.from.clone(), begun.to.clone());
        plan.push(
            Action::WriteTemp {
                entry: TempEntry::UpgradeAudit {
                    from_app_version: from.clone(),
                    to_app_version: to.clone(),
                },
            },
            "downgrade: /upgrade-audit shows the upgrade being undone",
        );
        // The cluster as it will be: the plan reads the old version's services.
        let mut prev = cluster.clone();
        prev.take_version(back_to);
        if in_place(begun.policy) {
            self.rollback(&mut plan, cluster, &to, begun.policy);
            plan.push(
                Action::RevertUpgrade,
                format!("in-place downgrade (§5.14): the cluster is back on version {from}"),
            );
            plan.push(
                Action::RegisterMetadata,
                "in-place downgrade: register it in the metadata",
            );
            plan.recover(
                Action::SetStatus {
                    status: ClusterStatus::Active,
                },
                "in-place downgrade (failed): the cluster runs on",
            );
            plan.recovery_note = Some(format!(
                "it runs on; downgrade it again (`hookhost cluster downgrade {0}`), or upgrade it to {to} again (`hookhost cluster upgrade {0} --version {to}`)",
                cluster.id
            ));
        } else {
            let all = cluster.live_node_ids();
            plan.push(
                Action::RevertUpgrade,
                format!("downgrade 6: the cluster record is back on version {from}; every node boots from its image"),
            );
            plan.push(
                Action::StartInstances {
                    nodes: all.clone().into(),
                },
                format!("downgrade 6: boot the nodes from version {from}'s image"),
            );
            plan.push(
                Action::RegisterMetadata,
                "downgrade 6: register the new instances in the metadata",
            );
            plan.push(
                Action::RenderConfig { nodes: all.into() },
                "downgrade 7: start every node's confd agent: render the configuration, reload where it really changed",
            );
            if begun.policy == UpgradingPolicy::Sequential {
                // The failed version's get_nodes_order says how to roll back (§5.13).
                for (role, nodes) in role_groups(&prev, "start", |_| true) {
                    let Some(asking) = cluster.spec.role(&role.role) else {
                        continue;
                    };
                    if role.service("start").is_none() {
                        continue;
                    }
                    let slots = node_slots(
                        &mut plan,
                        asking,
                        &nodes,
                        &[],
                        NodesOrderEvent::Rollback,
                        Some(&to),
                        "rolling downgrade (§5.13)",
                    );
                    push_one_by_one(&mut plan, &prev, role, slots, "start", None, "downgrade 8 (rolling)");
                }
            } else {
                push_service(
                    &mut plan,
                    ServiceStep::new(
                        "start",
                        nodes_among(&prev, |_| true, "start", |_| true),
                        OnFailure::Fail,
                    ),
                    "downgrade 8: roles run start in ascending order",
                );
            }
            plan.recovery_note = Some(format!(
                "it runs version {from}; stop it and start it again (`hookhost cluster stop {0}`, `hookhost cluster start {0}`)",
                cluster.id
            ));
        }
        plan.push(
            Action::ClearTemp {
                tree: TempTree::UpgradeAudit,
            },
            "downgrade: /upgrade-audit is removed",
        );
        plan.push(
            Action::SetStatus {
                status: ClusterStatus::Active,
            },
            format!("downgrade: the cluster is active on version {from}"),
        );
        plan.recover(
            Action::ClearTemp {
                tree: TempTree::UpgradeAudit,
            },
            "downgrade (failed): /upgrade-audit is removed",
        );
        plan
    }
}

impl Downgrade {
    /// The failed version's `rollback` hook (§5.14).
    fn rollback(&self, plan: &mut Plan, cluster: &Cluster, to: &str, policy: UpgradingPolicy) {
        if policy == UpgradingPolicy::InPlaceParallel {
            push_service(
                plan,
                ServiceStep::new(
                    "rollback",
                    nodes_among(cluster, |_| true, "rollback", |_| true),
                    OnFailure::Fail,
                )
                .of_version(to),
                "in-place downgrade (§5.14, in-place-parallel): run rollback by role order, equal orders in parallel",
            );
            return;
        }
        for (role, nodes) in role_groups(cluster, "rollback", |_| true) {
            if role.service("rollback").is_none() {
                continue;
            }
            let slots = node_slots(
                plan,
                role,
                &nodes,
                &[],
                NodesOrderEvent::Rollback,
                Some(to),
                "in-place downgrade",
            );
            push_one_by_one(
                plan,
                cluster,
                role,
                slots,
                "rollback",
                Some(to),
                "in-place downgrade (§5.14, in-place-sequential)",
            );
        }
    }
}
