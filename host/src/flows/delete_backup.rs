//! Delete a backup (`notes/appcenter-spec.md` §2.1, §2.3, §5.10): the
//! original platform deletes the later points of a chain with a point
//! (they build on it); here they go only when asked (`--chain`), else the
//! deletion is refused and names them. For each backup, latest first: (1)
//! on an active cluster whose roles define `delete_snapshot`, it runs with
//! `{"snapshot_id": ...}` (a `custom` backup's data is the app's to
//! delete); (2) the backup's record and data go. Then the cluster is as it
//! was. Backups of a deleted cluster (or one whose roles define no
//! `delete_snapshot`) only lose their record and data; a custom backup of a
//! stopped cluster waits for its start (its hook must run).

use super::Flow;
use super::admit::Refusal;
use super::select::{nodes_with, push_service};
use crate::cluster::{Cluster, ClusterStatus};
use crate::plan::{Action, OnFailure, Plan, ServiceStep};
use crate::request::OperationKind;
use crate::spec::BackupPolicy;
use serde_json::Value;

/// Deleting backups, latest first.
pub(super) struct DeleteBackup {
    pub(super) backups: Vec<String>,
    pub(super) policy: BackupPolicy,
}

impl DeleteBackup {
    /// Whether the hooks run: an active cluster whose roles define `delete_snapshot`.
    fn hooks(cluster: &Cluster) -> bool {
        cluster.status == ClusterStatus::Active && !nodes_with(cluster, "delete_snapshot", |_| true).is_empty()
    }
}

impl Flow for DeleteBackup {
    fn kind(&self) -> OperationKind {
        OperationKind::DeleteBackup
    }

    fn admit(&self, cluster: &Cluster) -> Result<ClusterStatus, Refusal> {
        // A failed cluster keeps what failed (a deletion would end as a success).
        if cluster.status == ClusterStatus::Failed {
            return Err(super::admit::by_status(self.kind(), cluster));
        }
        let defines = cluster
            .spec
            .nodes
            .iter()
            .any(|r| r.service("delete_snapshot").is_some());
        let waits = self.policy == BackupPolicy::Custom
            && defines
            && !matches!(cluster.status, ClusterStatus::Active | ClusterStatus::Deleted);
        if waits {
            return Err(Refusal::new(
                self.kind(),
                Some(cluster),
                format!(
                    "it is {}, and its app deletes its own backups with its delete_snapshot hook: start it first",
                    cluster.status
                ),
            ));
        }
        Ok(if DeleteBackup::hooks(cluster) {
            ClusterStatus::BackingUp
        } else {
            cluster.status
        })
    }

    fn plan(&self, cluster: &Cluster) -> Plan {
        let mut plan = Plan::default();
        let hooks = DeleteBackup::hooks(cluster);
        for id in &self.backups {
            if hooks {
                let params = [("snapshot_id".to_string(), Value::String(id.clone()))]
                    .into_iter()
                    .collect();
                push_service(
                    &mut plan,
                    ServiceStep::new(
                        "delete_snapshot",
                        nodes_with(cluster, "delete_snapshot", |_| true),
                        OnFailure::Fail,
                    )
                    .params(params),
                    &format!("delete backup 1: run delete_snapshot with snapshot id {id}, roles in ascending order"),
                );
            }
            plan.push(
                Action::DiscardBackup { id: id.clone() },
                format!("delete backup 2: backup {id}'s record and data go"),
            );
        }
        let status = cluster.status;
        plan.push(
            Action::SetStatus { status },
            format!("delete backup: the cluster is {status} again"),
        );
        plan.recover(
            Action::SetStatus { status },
            format!("delete backup: the cluster is {status} again; the backups not yet deleted stay"),
        );
        plan
    }
}
