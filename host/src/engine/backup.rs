//! Backup actions: a backup made whole (the nodes' volumes copied, off the
//! async threads, into its partial directory; its record kept, which makes
//! it whole), a backup removed, and nodes' volumes restored from one.

use super::EngineError;
use super::step::{StepEnd, StepRun};
use crate::backups::{Backup, BackupError, BackupNode, Backups, Copied};
use crate::cluster::now;
use crate::plan::NodeSet;
use crate::request::BackupOrder;

/// The backup is made: a `device` one copies each node's volume (building
/// on the previous point's copies), then its record makes it whole.
/// Started over after a crash; found made, nothing happens.
pub(super) async fn keep(run: &StepRun<'_>, order: &BackupOrder, nodes: &NodeSet) -> Result<StepEnd, EngineError> {
    let backups = run.engine.backups.clone();
    if backups.get(&order.id).is_ok() {
        return Ok(StepEnd::Ok(None));
    }
    let parent = match &order.parent {
        Some(id) => match backups.get(id) {
            Ok(parent) => Some(parent),
            Err(BackupError::NotFound(_)) => {
                return Ok(StepEnd::Failed(format!(
                    "backup {id}, the point this one builds on, was deleted meanwhile; take a full backup"
                )));
            }
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let targets: Vec<_> = run.nodes(nodes)?.into_iter().cloned().collect();
    let (provider, cluster, order) = (run.engine.provider.clone(), run.cluster.clone(), order.clone());
    let made = tokio::task::spawn_blocking(move || -> Result<Result<Backup, String>, EngineError> {
        let partial = backups.partial_dir(&order.id);
        if partial.exists() {
            std::fs::remove_dir_all(&partial).map_err(|source| BackupError::Io {
                path: partial.clone(),
                source,
            })?;
        }
        let data = if targets.is_empty() {
            partial.clone()
        } else {
            partial.join("nodes")
        };
        std::fs::create_dir_all(&data).map_err(|source| BackupError::Io {
            path: partial.clone(),
            source,
        })?;
        let mut kept = Vec::new();
        let mut copied = Copied::default();
        for node in &targets {
            let base_dir = parent
                .as_ref()
                .map(|p| Backups::node_dir(&backups.dir(&p.id), &node.node_id));
            let base = parent
                .as_ref()
                .and_then(|p| p.nodes.iter().find(|n| n.node_id == node.node_id))
                .zip(base_dir.as_deref())
                .map(|(n, dir)| (dir, n.files.as_slice()));
            let to = Backups::node_dir(&partial, &node.node_id);
            let (files, took) = match provider.snapshot_volume(&cluster, node, &to, base) {
                Ok(done) => done,
                Err(e) => {
                    return Ok(Err(format!(
                        "node {}: its volume cannot be backed up: {e}",
                        node.node_id
                    )));
                }
            };
            copied.bytes += took.bytes;
            copied.stored += took.stored;
            kept.push(BackupNode {
                node_id: node.node_id.clone(),
                role: node.role.clone(),
                sid: node.sid,
                gid: node.gid,
                resources: node.resources.clone(),
                files,
            });
        }
        // A custom backup's nodes are listed too: a restore makes them again.
        if kept.is_empty() {
            kept = cluster
                .live_nodes()
                .map(|n| BackupNode {
                    node_id: n.node_id.clone(),
                    role: n.role.clone(),
                    sid: n.sid,
                    gid: n.gid,
                    resources: n.resources.clone(),
                    files: Vec::new(),
                })
                .collect();
        }
        let backup = Backup {
            id: order.id.clone(),
            name: order.name.clone(),
            cluster: cluster.id.clone(),
            cluster_name: cluster.name.clone(),
            app: cluster.app.clone(),
            spec: cluster.spec.clone(),
            policy: order.policy,
            parent: order.parent.clone(),
            params: order.params.clone(),
            nodes: kept,
            copied,
            created_at: now(),
        };
        backups.commit(&backup)?;
        Ok(Ok(backup))
    })
    .await??;
    Ok(match made {
        Ok(_) => StepEnd::Ok(None),
        Err(why) => StepEnd::Failed(why),
    })
}

/// The backup goes, whole or partial.
pub(super) async fn discard(run: &StepRun<'_>, id: &str) -> Result<StepEnd, EngineError> {
    let (backups, id) = (run.engine.backups.clone(), id.to_string());
    tokio::task::spawn_blocking(move || backups.remove(&id)).await??;
    Ok(StepEnd::Ok(None))
}

/// Each node's volume becomes the backup's copy of the node with its role
/// and `sid` (a restored cluster's nodes keep them); checksums checked.
pub(super) async fn restore_volumes(run: &StepRun<'_>, id: &str) -> Result<StepEnd, EngineError> {
    let backup = run.engine.backups.get(id)?;
    let dir = run.engine.backups.dir(id);
    let (provider, cluster) = (run.engine.provider.clone(), run.cluster.clone());
    let failed = tokio::task::spawn_blocking(move || {
        for node in cluster.live_nodes() {
            let Some(kept) = backup.nodes.iter().find(|b| b.role == node.role && b.sid == node.sid) else {
                continue;
            };
            let from = Backups::node_dir(&dir, &kept.node_id);
            if let Err(e) = provider.restore_volume(&cluster, node, &from, &kept.files) {
                return Some(format!(
                    "node {}: its volume cannot be restored from backup {} (node {}): {e}",
                    node.node_id, backup.id, kept.node_id
                ));
            }
        }
        None
    })
    .await?;
    Ok(match failed {
        Some(why) => StepEnd::Failed(why),
        None => StepEnd::Ok(None),
    })
}
