//! Metadata actions: the cluster's tree registered from its record,
//! deregistered, and the temporary subtrees an operation shows its hooks
//! (`/adding-hosts`, `/deleting-hosts`, `/vertical-scaling-roles`,
//! `/upgrade-audit`) written and cleared.

use super::EngineError;
use super::step::{StepEnd, StepRun};
use crate::cluster::{OWNED_KEYS, host_writes, tree_changes};
use crate::metadata::{Write, cluster_root, path};
use crate::plan::{TempEntry, TempTree};

async fn apply(run: &StepRun<'_>, writes: Vec<Write>) -> Result<StepEnd, EngineError> {
    run.engine.tree.apply(&writes).await?;
    Ok(StepEnd::Ok(None))
}

/// The tree describes the record (the temporary subtrees are left alone);
/// only what differs is written.
pub(super) async fn register(run: &StepRun<'_>) -> Result<StepEnd, EngineError> {
    register_keys(run, OWNED_KEYS).await
}

/// The tree's `/env` and `/role-env` describe the record's envs (what
/// differs is written, in one revision): only they are read and compared,
/// however many nodes the cluster has.
pub(super) async fn register_env(run: &StepRun<'_>) -> Result<StepEnd, EngineError> {
    let root = cluster_root(&run.cluster.id);
    let mut writes = Vec::new();
    for key in ["env", "role-env"] {
        let current = run.engine.tree.snapshot(&path::join(&root, [key])).await?;
        writes.extend(tree_changes(&run.cluster, &current, &[key]));
    }
    if writes.is_empty() {
        return Ok(StepEnd::Ok(None));
    }
    apply(run, writes).await
}

async fn register_keys(run: &StepRun<'_>, keys: &[&str]) -> Result<StepEnd, EngineError> {
    let root = cluster_root(&run.cluster.id);
    let read = match keys {
        [one] => path::join(&root, [*one]),
        _ => root,
    };
    let current = run.engine.tree.snapshot(&read).await?;
    let writes = tree_changes(&run.cluster, &current, keys);
    if writes.is_empty() {
        return Ok(StepEnd::Ok(None));
    }
    apply(run, writes).await
}

/// The cluster's whole tree goes.
pub(super) async fn deregister(run: &StepRun<'_>) -> Result<StepEnd, EngineError> {
    let root = cluster_root(&run.cluster.id);
    apply(run, vec![Write::DeleteTree { path: root }]).await
}

fn temp_path(run: &StepRun<'_>, tree: TempTree, rest: &[&str]) -> String {
    let root = cluster_root(&run.cluster.id);
    path::join(&path::join(&root, [tree.key()]), rest.iter().copied())
}

/// A temporary subtree holds the entry (and nothing it held before).
pub(super) async fn write_temp(run: &StepRun<'_>, entry: &TempEntry) -> Result<StepEnd, EngineError> {
    let tree = entry.tree();
    let mut writes = vec![Write::DeleteTree {
        path: temp_path(run, tree, &[]),
    }];
    match entry {
        TempEntry::AddingHosts { nodes } | TempEntry::DeletingHosts { nodes } => {
            writes.extend(host_writes(&run.cluster, tree.key(), run.nodes(nodes)?));
        }
        TempEntry::VerticalScalingRoles { roles } => writes.push(Write::Put {
            path: temp_path(run, tree, &[]),
            value: roles.join(","),
        }),
        TempEntry::UpgradeAudit {
            from_app_version,
            to_app_version,
        } => {
            for (key, value) in [
                ("from_app_version", from_app_version),
                ("to_app_version", to_app_version),
            ] {
                writes.push(Write::Put {
                    path: temp_path(run, tree, &[key]),
                    value: value.clone(),
                });
            }
        }
    }
    apply(run, writes).await
}

/// A temporary subtree goes.
pub(super) async fn clear_temp(run: &StepRun<'_>, tree: TempTree) -> Result<StepEnd, EngineError> {
    apply(
        run,
        vec![Write::DeleteTree {
            path: temp_path(run, tree, &[]),
        }],
    )
    .await
}
