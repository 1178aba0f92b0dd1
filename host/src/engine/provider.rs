//! Provider actions: create, start, stop and delete nodes' resources (off
//! the async threads), and what they change in the record (instance ids,
//! IP addresses). Every provider method is idempotent: a resumed step may
//! call it again for the same node.

use super::EngineError;
use super::step::{StepEnd, StepRun};
use crate::cluster::{Cluster, Node, new_id};
use crate::plan::NodeSet;
use crate::provider::Provider;
use crate::request::ResourceChange;
use std::collections::HashSet;

type NodeAction = fn(&dyn Provider, &Cluster, &Node) -> std::io::Result<()>;

/// Runs a provider method on each node of the set.
async fn on_nodes(run: &StepRun<'_>, nodes: &NodeSet, action: NodeAction) -> Result<Vec<String>, EngineError> {
    let targets: Vec<Node> = run.nodes(nodes)?.into_iter().cloned().collect();
    let (provider, cluster) = (run.engine.provider.clone(), run.cluster.clone());
    let ids = targets.iter().map(|n| n.node_id.clone()).collect();
    tokio::task::spawn_blocking(move || {
        targets.iter().try_for_each(|node| {
            action(provider.as_ref(), &cluster, node).map_err(|source| EngineError::Provider {
                node: node.node_id.clone(),
                source,
            })
        })
    })
    .await??;
    Ok(ids)
}

/// Records what became of each listed node.
async fn mark(run: &StepRun<'_>, ids: &[String], change: fn(&mut Node)) -> Result<(), EngineError> {
    let listed: HashSet<String> = ids.iter().cloned().collect();
    run.engine
        .store
        .update_cluster(
            &run.cluster.id,
            Box::new(move |c| {
                c.nodes
                    .iter_mut()
                    .filter(|n| listed.contains(&n.node_id))
                    .for_each(change);
                Ok(())
            }),
        )
        .await?;
    Ok(())
}

/// The nodes' lasting resources (their volumes).
pub(super) async fn create(run: &StepRun<'_>, nodes: &NodeSet) -> Result<StepEnd, EngineError> {
    on_nodes(run, nodes, |p, c, n| p.create_node(c, n)).await?;
    Ok(StepEnd::Ok(None))
}

/// The nodes' instances stop; the record forgets their instance ids.
pub(super) async fn stop(run: &StepRun<'_>, nodes: &NodeSet) -> Result<StepEnd, EngineError> {
    let ids = on_nodes(run, nodes, |p, c, n| p.stop_instance(c, n)).await?;
    mark(run, &ids, |n| n.instance_id = None).await?;
    Ok(StepEnd::Ok(None))
}

/// The nodes boot fresh instances, each with a new instance id.
pub(super) async fn start(run: &StepRun<'_>, nodes: &NodeSet) -> Result<StepEnd, EngineError> {
    let ids = on_nodes(run, nodes, |p, c, n| p.start_instance(c, n)).await?;
    mark(run, &ids, |n| n.instance_id = Some(new_id("i"))).await?;
    Ok(StepEnd::Ok(None))
}

/// The nodes are resized, each to its resources with the change; the
/// record takes them as each node is done (a resumed step resizes again,
/// to the same size).
pub(super) async fn resize(
    run: &StepRun<'_>,
    nodes: &NodeSet,
    change: &ResourceChange,
) -> Result<StepEnd, EngineError> {
    let targets: Vec<Node> = run.nodes(nodes)?.into_iter().cloned().collect();
    let (provider, cluster) = (run.engine.provider.clone(), run.cluster.clone());
    let resized: Vec<Node> = targets
        .into_iter()
        .map(|mut node| {
            node.resources.apply(change);
            node
        })
        .collect();
    let ids: Vec<String> = resized.iter().map(|n| n.node_id.clone()).collect();
    tokio::task::spawn_blocking(move || {
        resized.iter().try_for_each(|node| {
            provider
                .resize_node(&cluster, node)
                .map_err(|source| EngineError::Provider {
                    node: node.node_id.clone(),
                    source,
                })
        })
    })
    .await??;
    let change = change.clone();
    let listed: HashSet<String> = ids.into_iter().collect();
    run.engine
        .store
        .update_cluster(
            &run.cluster.id,
            Box::new(move |c| {
                c.nodes
                    .iter_mut()
                    .filter(|n| listed.contains(&n.node_id))
                    .for_each(|n| n.resources.apply(&change));
                Ok(())
            }),
        )
        .await?;
    Ok(StepEnd::Ok(None))
}

/// Everything of the nodes goes, volumes included; the record keeps them,
/// marked deleted (which gives their IP addresses back).
pub(super) async fn delete(run: &StepRun<'_>, nodes: &NodeSet) -> Result<StepEnd, EngineError> {
    let ids = on_nodes(run, nodes, |p, c, n| p.delete_node(c, n)).await?;
    mark(run, &ids, |n| {
        n.instance_id = None;
        n.deleted = true;
    })
    .await?;
    Ok(StepEnd::Ok(None))
}
