//! Restore (`notes/appcenter-spec.md` §5.11, §2.3; the seed shows it only
//! as a picture). The backup's policy says how:
//!
//! - `device`: a new cluster is made from the backup, of the same app
//!   version, with the same roles, nodes (each with its `sid`, `gid` and
//!   resources; new node ids) and env: (1) its resources are created; (2)
//!   every node's volume becomes the backup's copy, each file's checksum
//!   checked (the whole backup is checked before anything is made, too);
//!   (3) it is registered in the metadata service; (4) every node renders
//!   its configuration; (5) the roles that define `restore` run it with
//!   `{"snapshot_id": ...}`, the others `start` — roles in ascending order
//!   (of their `restore`, else their `start`), in each order the restoring
//!   roles first; `init` does not run: the data is the backup's.
//! - `custom`: the cluster the backup was taken of restores in place: (1)
//!   the roles that define `restore` run it with `{"snapshot_id": ...}`, by
//!   role order (replicas only `with_replica`); (2) it is active again.
//!
//! A failed restore leaves the new cluster failed (delete it), or the
//! cluster restored in place failed (restore it again, or stop it).

use super::Flow;
use super::admit::{Refusal, by_status, no_upgrade};
use super::select::{nodes_with, push_service};
use crate::apps::AppVersion;
use crate::backups::Backup;
use crate::cluster::{Cluster, ClusterStatus, Node, check_name};
use crate::plan::{Action, OnFailure, Plan, ServiceStep};
use crate::request::OperationKind;
use crate::spec::BackupPolicy;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Restoring a backup.
pub(super) struct Restore {
    pub(super) backup: Backup,
    pub(super) app: Option<AppVersion>,
    pub(super) name: Option<String>,
}

impl Restore {
    fn refuse(&self, cluster: Option<&Cluster>, why: impl Into<String>) -> Refusal {
        Refusal::new(OperationKind::Restore, cluster, why)
    }

    fn params(&self) -> Map<String, Value> {
        [("snapshot_id".to_string(), Value::String(self.backup.id.clone()))]
            .into_iter()
            .collect()
    }

    fn device(&self) -> bool {
        self.backup.policy == BackupPolicy::Device
    }
}

impl Flow for Restore {
    fn kind(&self) -> OperationKind {
        OperationKind::Restore
    }

    /// A device backup's new cluster: the backup's app version, env and
    /// network, its nodes as the backup has them (new ids).
    fn new_cluster(&self) -> Result<Cluster, Refusal> {
        if !self.device() {
            return Err(self.refuse(None, "a custom backup restores into the cluster it was taken of"));
        }
        let app = self
            .app
            .as_ref()
            .ok_or_else(|| self.refuse(None, "the backup's app version was not loaded"))?;
        if let Some(name) = &self.name {
            check_name(name).map_err(|why| self.refuse(None, format!("--name: {why}")))?;
        }
        let mut spec = app.spec.clone();
        spec.env = self.backup.spec.env.clone();
        spec.vxnet = self.backup.spec.vxnet.clone();
        for role in &mut spec.nodes {
            let kept = self.backup.nodes.iter().filter(|n| n.role == role.role).count();
            role.count = u32::try_from(kept).unwrap_or(u32::MAX);
            if let Some(old) = self.backup.spec.nodes.iter().find(|r| r.role == role.role) {
                role.env = old.env.clone();
            }
        }
        let name = self.name.clone().unwrap_or_else(|| self.backup.cluster_name.clone());
        let mut cluster = Cluster::new(app.reference(), spec, app.source.clone(), name);
        cluster.nodes = self
            .backup
            .nodes
            .iter()
            .map(|n| Node::new(&n.role, n.sid, n.gid, n.resources.clone()))
            .collect();
        if cluster.nodes.iter().any(|n| cluster.spec.role(&n.role).is_none()) {
            return Err(self.refuse(None, "the backup holds a role its app version does not have"));
        }
        Ok(cluster)
    }

    fn admit(&self, cluster: &Cluster) -> Result<ClusterStatus, Refusal> {
        if self.device() {
            return match cluster.status {
                ClusterStatus::Creating => Ok(ClusterStatus::Restoring),
                _ => Err(by_status(self.kind(), cluster)),
            };
        }
        let again = cluster.status == ClusterStatus::Failed && cluster.failed_during == Some(OperationKind::Restore);
        if cluster.status != ClusterStatus::Active && !again {
            return Err(by_status(self.kind(), cluster));
        }
        no_upgrade(self.kind(), cluster)?;
        if nodes_with(cluster, "restore", |_| true).is_empty() {
            return Err(self.refuse(
                Some(cluster),
                "its backups are the app's own (backup_policy custom), but no role defines the restore service",
            ));
        }
        Ok(ClusterStatus::Restoring)
    }

    fn plan(&self, cluster: &Cluster) -> Plan {
        let mut plan = Plan::default();
        let id = &self.backup.id;
        if !self.device() {
            plan.push(
                Action::RunService(
                    ServiceStep::new("restore", nodes_with(cluster, "restore", |_| true), OnFailure::Fail)
                        .params(self.params()),
                ),
                format!("restore 1: run restore with snapshot id {id} (backup_policy custom: in place), roles in ascending order"),
            );
            plan.push(
                Action::SetStatus {
                    status: ClusterStatus::Active,
                },
                "restore 2: the cluster is active again",
            );
            return plan;
        }
        let all = cluster.node_ids();
        plan.push(
            Action::CreateResources {
                nodes: all.clone().into(),
            },
            "restore 1: create the resources of every node of the new cluster",
        );
        plan.push(
            Action::RestoreVolumes { backup: id.clone() },
            format!("restore 2: every node's volume becomes backup {id}'s copy, each file's checksum checked"),
        );
        plan.push(
            Action::RegisterMetadata,
            "restore 3: register all information about the cluster in the metadata service",
        );
        plan.push(
            Action::RenderConfig { nodes: all.into() },
            "restore 4: every node renders its configuration; reload where it really changed",
        );
        // By order: the roles that define restore run it, the others start.
        let restoring = nodes_with(cluster, "restore", |_| true);
        let mut groups: BTreeMap<u32, (Vec<String>, Vec<String>)> = BTreeMap::new();
        for node in cluster.live_nodes() {
            let (service, list) = if restoring.contains(&node.node_id) {
                ("restore", 0)
            } else {
                ("start", 1)
            };
            let Some(spec) = cluster.service(&node.role, service) else {
                continue;
            };
            let group = groups.entry(spec.order).or_default();
            if list == 0 {
                group.0.push(node.node_id.clone());
            } else {
                group.1.push(node.node_id.clone());
            }
        }
        for (order, (restore, start)) in groups {
            push_service(
                &mut plan,
                ServiceStep::new("restore", restore, OnFailure::Fail).params(self.params()),
                &format!("restore 5: the roles of order {order} that define restore run it with snapshot id {id}"),
            );
            push_service(
                &mut plan,
                ServiceStep::new("start", start, OnFailure::Fail),
                &format!("restore 5: the other roles of order {order} run start"),
            );
        }
        plan.push(
            Action::SetStatus {
                status: ClusterStatus::Active,
            },
            "restore: the cluster is active",
        );
        plan
    }
}
