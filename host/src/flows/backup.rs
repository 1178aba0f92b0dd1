//! Backup (`notes/appcenter-spec.md` §5.10, §2.1, §2.3, §6.4; the seed
//! shows it only as a picture). The spec's `backup_policy` says how:
//!
//! - `device`: (1) on an active cluster, the `backup` hook prepares the
//!   nodes of the roles that define it (quiesce, flush: the real ZooKeeper
//!   and Redis apps do) with `{"snapshot_id": ...}` and the user's params,
//!   by role order, `nodes_to_execute_on` and a role's `selector` honoured
//!   (replicas only `with_replica`); (2) every node's volume is copied into
//!   the backup — an incremental one (`--incremental`, only with
//!   `incremental_backup_supported`) builds on the cluster's latest backup
//!   and stores only what changed; (3) the cluster is as it was. A stopped
//!   cluster is backed up too: its volumes are at rest, no hook runs.
//! - `custom`: (1) the `backup` hook runs with `{"snapshot_id": ...}` merged
//!   with the user's params (it keeps the data, the app's way); (2) the
//!   backup's record is kept; (3) the cluster is active again. It needs an
//!   active cluster and a role that defines `backup`.
//!
//! A failure removes what was made of the backup and leaves the cluster as
//! it was: a backup changes nothing the cluster holds.

use super::Flow;
use super::admit::{Refusal, by_status, no_upgrade};
use super::select::{nodes_with, push_selected};
use crate::cluster::{Cluster, ClusterStatus, check_name};
use crate::plan::{Action, NodeSet, Plan};
use crate::request::{BackupOrder, OperationKind};
use crate::spec::BackupPolicy;
use serde_json::Value;

/// Backing a cluster up.
pub(super) struct Backup {
    pub(super) order: BackupOrder,
    pub(super) incremental: bool,
}

impl Flow for Backup {
    fn kind(&self) -> OperationKind {
        OperationKind::Backup
    }

    fn admit(&self, cluster: &Cluster) -> Result<ClusterStatus, Refusal> {
        let refuse = |why: String| Err(Refusal::new(self.kind(), Some(cluster), why));
        let Some(policy) = cluster.spec.backup_policy else {
            return refuse("its app does not support backups (its spec sets no backup_policy)".into());
        };
        match (cluster.status, policy) {
            (ClusterStatus::Active, _) | (ClusterStatus::Stopped, BackupPolicy::Device) => {}
            (ClusterStatus::Stopped, BackupPolicy::Custom) => {
                return refuse(
                    "it is stopped, and its app backs up with its backup hook (backup_policy custom): start it first"
                        .into(),
                );
            }
            _ => return Err(by_status(self.kind(), cluster)),
        }
        no_upgrade(self.kind(), cluster)?;
        let hooks = nodes_with(cluster, "backup", |_| true);
        if policy == BackupPolicy::Custom && hooks.is_empty() {
            return refuse("its backup_policy is custom, but no role defines the backup service".into());
        }
        if self.incremental && !cluster.spec.incremental_backup_supported {
            return refuse(
                "its app does not support incremental backups (incremental_backup_supported is false)".into(),
            );
        }
        if self.incremental && self.order.parent.is_none() {
            return refuse("it has no backup to build an incremental one on: take a full backup first".into());
        }
        check_name(&self.order.name).map_err(|why| {
            Refusal::new(
                self.kind(),
                Some(cluster),
                format!("--name: {}", why.replace("cluster name", "backup name")),
            )
        })?;
        if self.order.params.contains_key("snapshot_id") {
            return refuse("service_params.snapshot_id: set by hookhost (the backup's id), not by you".into());
        }
        for role in cluster.spec.nodes.iter().filter(|r| r.service("backup").is_some()) {
            // snapshot_id is hookhost's to give, whatever the spec declares.
            let declared = role
                .service("backup")
                .and_then(|s| s.service_params.clone())
                .map(|mut d| {
                    d.remove("snapshot_id");
                    d
                });
            super::params::check("backup", declared.as_ref(), &self.order.params)
                .map_err(|why| Refusal::new(self.kind(), Some(cluster), why))?;
        }
        if hooks.is_empty() && !self.order.params.is_empty() {
            return refuse("--params: no role defines the backup service, so no hook takes them".into());
        }
        Ok(ClusterStatus::BackingUp)
    }

    fn plan(&self, cluster: &Cluster) -> Plan {
        let order = &self.order;
        let device = order.policy == BackupPolicy::Device;
        let active = cluster.status == ClusterStatus::Active;
        let mut plan = Plan::default();
        if active {
            let mut params = order.params.clone();
            params.insert("snapshot_id".into(), Value::String(order.id.clone()));
            let seed = if device {
                "backup 1: the backup hook prepares the nodes of the roles that define it, roles in ascending order"
            } else {
                "backup 1: run backup with the snapshot id and the user's params (backup_policy custom), roles in ascending order"
            };
            push_selected(
                &mut plan,
                cluster,
                "backup",
                nodes_with(cluster, "backup", |_| true),
                |step| step.params(params.clone()),
                seed,
            );
        }
        let (nodes, seed) = if device {
            let what = match &order.parent {
                Some(parent) => format!("only what changed since {parent}"),
                None => "a full copy".into(),
            };
            (
                NodeSet::Ids(cluster.live_node_ids()),
                format!(
                    "backup 2: snapshot every node's volume ({what}), checksums kept; the backup is whole once its record is"
                ),
            )
        } else {
            (
                NodeSet::Ids(Vec::new()),
                "backup 2: keep the backup's record".to_string(),
            )
        };
        plan.push(
            Action::KeepBackup {
                order: order.clone(),
                nodes,
            },
            seed,
        );
        let status = cluster.status;
        plan.push(
            Action::SetStatus { status },
            format!("backup 3: the cluster is {status} again"),
        );
        plan.recover(
            Action::DiscardBackup { id: order.id.clone() },
            "backup: a failed backup leaves nothing behind",
        );
        plan.recover(
            Action::SetStatus { status },
            format!("backup: the cluster is {status} again: a backup changes nothing it holds"),
        );
        plan
    }
}
