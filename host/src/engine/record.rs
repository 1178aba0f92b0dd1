//! Record actions: changes to the cluster record, each one atomic in the
//! operation store and each idempotent (a resumed step may make it again).

use super::EngineError;
use super::step::{StepEnd, StepRun};
use crate::cluster::{Cluster, ClusterStatus, Image};
use crate::plan::NodeSet;
use crate::store::StoreError;
use std::collections::HashSet;

async fn change(
    run: &StepRun<'_>,
    f: impl FnMut(&mut Cluster) -> Result<(), StoreError> + Send + 'static,
) -> Result<StepEnd, EngineError> {
    run.engine.store.update_cluster(&run.cluster.id, Box::new(f)).await?;
    Ok(StepEnd::Ok(None))
}

/// The cluster takes a status.
pub(super) async fn set_status(run: &StepRun<'_>, status: ClusterStatus) -> Result<StepEnd, EngineError> {
    change(run, move |c| {
        c.status = status;
        Ok(())
    })
    .await
}

/// The nodes leave the record.
pub(super) async fn remove_nodes(run: &StepRun<'_>, nodes: &NodeSet) -> Result<StepEnd, EngineError> {
    let leaving: HashSet<String> = run.node_ids(nodes)?.into_iter().collect();
    change(run, move |c| {
        c.nodes.retain(|n| !leaving.contains(&n.node_id));
        Ok(())
    })
    .await
}

/// The nodes have joined.
pub(super) async fn joined(run: &StepRun<'_>, nodes: &NodeSet) -> Result<StepEnd, EngineError> {
    let listed: HashSet<String> = run.node_ids(nodes)?.into_iter().collect();
    change(run, move |c| {
        for node in c.nodes.iter_mut().filter(|n| listed.contains(&n.node_id)) {
            node.joining = false;
        }
        Ok(())
    })
    .await
}

/// The cluster's env takes the keys (`null` removes one); done again, the same env.
pub(super) async fn set_env(
    run: &StepRun<'_>,
    env: &serde_json::Map<String, serde_json::Value>,
) -> Result<StepEnd, EngineError> {
    let env = env.clone();
    change(run, move |c| {
        c.spec.env = crate::cluster::merge_env(&c.spec.env, &env);
        Ok(())
    })
    .await
}

/// The nodes run another app version (their role's spec when `None`).
pub(super) async fn switch_version(
    run: &StepRun<'_>,
    nodes: &NodeSet,
    image: &Option<Image>,
) -> Result<StepEnd, EngineError> {
    let (listed, image): (HashSet<String>, _) = (run.node_ids(nodes)?.into_iter().collect(), image.clone());
    change(run, move |c| {
        for node in c.nodes.iter_mut().filter(|n| listed.contains(&n.node_id)) {
            node.image = image.clone();
        }
        Ok(())
    })
    .await
}
