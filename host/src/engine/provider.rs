//! Provider actions: create, add, start, stop, resize and delete nodes'
//! resources (off the async threads), and what they change in the record
//! (instance ids, sizes, new nodes and their IP addresses). Every provider
//! method is idempotent: a resumed step may call it again for the same
//! node. When the provider fails on a node, the nodes done before it are
//! recorded first, so the record never misses what the provider did.

use super::EngineError;
use super::step::{StepEnd, StepRun};
use crate::cluster::{Cluster, Node, new_id};
use crate::plan::NodeSet;
use crate::provider::Provider;
use crate::request::ResourceChange;
use std::collections::HashSet;

/// The nodes a provider method was done on, in order, and the failure that stopped it.
struct Done {
    nodes: Vec<Node>,
    failure: Option<EngineError>,
}

impl Done {
    fn ids(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.node_id.clone()).collect()
    }

    /// The step's end once what was done is recorded.
    fn end(self) -> Result<StepEnd, EngineError> {
        match self.failure {
            Some(failure) => Err(failure),
            None => Ok(StepEnd::Ok(None)),
        }
    }
}

/// Runs a provider method on each node, in order, until one fails.
async fn each_node(
    run: &StepRun<'_>,
    targets: Vec<Node>,
    action: impl Fn(&dyn Provider, &Cluster, &Node) -> std::io::Result<()> + Send + 'static,
) -> Result<Done, EngineError> {
    let (provider, cluster) = (run.engine.provider.clone(), run.cluster.clone());
    let done = tokio::task::spawn_blocking(move || {
        let mut done = Done {
            nodes: Vec::new(),
            failure: None,
        };
        for node in targets {
            if let Err(source) = action(provider.as_ref(), &cluster, &node) {
                done.failure = Some(EngineError::Provider {
                    node: node.node_id.clone(),
                    source,
                });
                break;
            }
            done.nodes.push(node);
        }
        done
    })
    .await?;
    Ok(done)
}

/// [`each_node`] on the record's nodes of a set.
async fn on_nodes(
    run: &StepRun<'_>,
    nodes: &NodeSet,
    action: impl Fn(&dyn Provider, &Cluster, &Node) -> std::io::Result<()> + Send + 'static,
) -> Result<Done, EngineError> {
    let targets: Vec<Node> = run.nodes(nodes)?.into_iter().cloned().collect();
    each_node(run, targets, action).await
}

/// Records what became of each listed node.
async fn mark(
    run: &StepRun<'_>,
    ids: Vec<String>,
    change: impl Fn(&mut Node) + Send + 'static,
) -> Result<(), EngineError> {
    if ids.is_empty() {
        return Ok(());
    }
    let listed: HashSet<String> = ids.into_iter().collect();
    run.engine
        .store
        .update_cluster(
            &run.cluster.id,
            Box::new(move |c| {
                c.nodes
                    .iter_mut()
                    .filter(|n| listed.contains(&n.node_id))
                    .for_each(&change);
                Ok(())
            }),
        )
        .await?;
    Ok(())
}

/// The nodes' lasting resources (their volumes).
pub(super) async fn create(run: &StepRun<'_>, nodes: &NodeSet) -> Result<StepEnd, EngineError> {
    on_nodes(run, nodes, |p, c, n| p.create_node(c, n)).await?.end()
}

/// New nodes: each one's resources are created, then it joins the record
/// (once; the store gives it an IP address). A node whose resources could
/// not be created never joins and leaves nothing behind; nodes that cannot
/// join (the network's pool is exhausted) lose their resources.
pub(super) async fn add(run: &StepRun<'_>, nodes: &[Node]) -> Result<StepEnd, EngineError> {
    let known: HashSet<String> = run.cluster.node_ids().into_iter().collect();
    let done = each_node(run, nodes.to_vec(), |p, c, n| p.create_node(c, n)).await?;
    let joining: Vec<Node> = done
        .nodes
        .iter()
        .filter(|n| !known.contains(&n.node_id))
        .cloned()
        .collect();
    if !joining.is_empty() {
        let adding = joining.clone();
        let joined = run
            .engine
            .store
            .update_cluster(
                &run.cluster.id,
                Box::new(move |c| {
                    let known: HashSet<String> = c.node_ids().into_iter().collect();
                    c.nodes
                        .extend(adding.iter().filter(|n| !known.contains(&n.node_id)).cloned());
                    Ok(())
                }),
            )
            .await;
        if let Err(e) = joined {
            // At worst a resumed step deletes them again.
            let _ = each_node(run, joining, |p, c, n| p.delete_node(c, n)).await;
            return Err(e.into());
        }
    }
    if done.failure.is_some()
        && let Some(failed) = nodes.get(done.nodes.len()).filter(|n| !known.contains(&n.node_id))
    {
        // Whatever its creation left goes too (best effort: the failure is what counts).
        let _ = each_node(run, vec![failed.clone()], |p, c, n| p.delete_node(c, n)).await;
    }
    done.end()
}

/// The resources of the nodes the record does not hold are deleted: an
/// add cut off between creating a node and recording it leaves nothing.
pub(super) async fn discard(run: &StepRun<'_>, nodes: &[Node]) -> Result<StepEnd, EngineError> {
    let known: HashSet<String> = run.cluster.node_ids().into_iter().collect();
    let strays: Vec<Node> = nodes.iter().filter(|n| !known.contains(&n.node_id)).cloned().collect();
    each_node(run, strays, |p, c, n| p.delete_node(c, n)).await?.end()
}

/// The nodes' instances stop; the record forgets their instance ids.
pub(super) async fn stop(run: &StepRun<'_>, nodes: &NodeSet) -> Result<StepEnd, EngineError> {
    let done = on_nodes(run, nodes, |p, c, n| p.stop_instance(c, n)).await?;
    mark(run, done.ids(), |n| n.instance_id = None).await?;
    done.end()
}

/// The nodes boot fresh instances, each with a new instance id.
pub(super) async fn start(run: &StepRun<'_>, nodes: &NodeSet) -> Result<StepEnd, EngineError> {
    let done = on_nodes(run, nodes, |p, c, n| p.start_instance(c, n)).await?;
    mark(run, done.ids(), |n| n.instance_id = Some(new_id("i"))).await?;
    done.end()
}

/// The nodes are resized, each to its resources with the change; the record
/// takes the new sizes of the nodes done (a resumed step resizes again, to
/// the same size).
pub(super) async fn resize(
    run: &StepRun<'_>,
    nodes: &NodeSet,
    change: &ResourceChange,
) -> Result<StepEnd, EngineError> {
    let resized: Vec<Node> = run
        .nodes(nodes)?
        .into_iter()
        .map(|node| {
            let mut node = node.clone();
            node.resources.apply(change);
            node
        })
        .collect();
    let done = each_node(run, resized, |p, c, n| p.resize_node(c, n)).await?;
    let change = change.clone();
    mark(run, done.ids(), move |n| n.resources.apply(&change)).await?;
    done.end()
}

/// Everything of the nodes goes, volumes included; the record keeps them,
/// marked deleted (which gives their IP addresses back).
pub(super) async fn delete(run: &StepRun<'_>, nodes: &NodeSet) -> Result<StepEnd, EngineError> {
    let done = on_nodes(run, nodes, |p, c, n| p.delete_node(c, n)).await?;
    mark(run, done.ids(), |n| {
        n.instance_id = None;
        n.deleted = true;
    })
    .await?;
    done.end()
}

/// The version's payload is copied into each node as its
/// `in-place-upgrade-nodes` say (every copy whose `mount_role` is the
/// node's role, or the role whose replica it is); a failed copy removes its
/// destination. A copy done again replaces what it copied before.
pub(super) async fn copy_payload(run: &StepRun<'_>, nodes: &NodeSet, version: &str) -> Result<StepEnd, EngineError> {
    let found = run.engine.catalog.get(&run.cluster.app.app, version)?;
    let copies: Vec<_> = found
        .spec
        .in_place_upgrade_nodes
        .iter()
        .flat_map(|e| e.copy.clone())
        .collect();
    let payload = found.payload.clone();
    let version = version.to_string();
    let spec = found.spec;
    on_nodes(run, nodes, move |p, c, n| {
        let role = spec.role(&n.role).map(|r| r.role.clone()).unwrap_or_default();
        for copy in copies.iter().filter(|copy| copy.mount_role == role) {
            let (Some(payload), Some(rel)) = (&payload, copy.source_in_payload()) else {
                return Err(std::io::Error::other(format!(
                    "version {version} ships no payload/ directory, yet its in-place-upgrade-nodes copy {}",
                    copy.source
                )));
            };
            p.copy_in(c, n, &payload.join(rel), &copy.destination).map_err(|e| {
                std::io::Error::new(e.kind(), format!("copy {} to {}: {e}", copy.source, copy.destination))
            })?;
        }
        Ok(())
    })
    .await?
    .end()
}
