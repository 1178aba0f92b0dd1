//! A cluster's metadata as a reader (`cluster metadata`, the API) asks for
//! it: the whole tree or a part, as the cluster or as one node sees it.

use super::{Engine, EngineError};
use crate::metadata::{ClusterView, cluster_root};
use serde_json::Value;
use std::sync::Arc;

impl Engine {
    /// The subtree at `path` (default `/`) of a cluster's metadata, as
    /// `node`'s hooks see it when given, with the snapshot's revision.
    pub async fn metadata_at(
        &self,
        cluster: &str,
        path: Option<&str>,
        node: Option<&str>,
    ) -> Result<(u64, Value), EngineError> {
        let c = self.cluster(cluster)?;
        let at = path.unwrap_or("/");
        if node.is_none() && (at == "/host" || at.starts_with("/host/")) {
            return Err(EngineError::View(
                "/host is a node's own entry: say which node (--node <node_id>; `node=` in the API)".into(),
            ));
        }
        if let Some(id) = node
            && c.node(id).is_some_and(|n| n.instance_id.is_none())
        {
            return Err(EngineError::View(format!(
                "node {id} of cluster {} ({}) has no running instance, so it has no place in the metadata",
                c.id, c.status
            )));
        }
        let snapshot = Arc::new(self.tree.snapshot(&cluster_root(&c.id)).await?);
        let view = match node {
            Some(node) => {
                ClusterView::for_node(snapshot.clone(), &c.id, node).map_err(|e| EngineError::View(e.to_string()))?
            }
            None => ClusterView::new(snapshot.clone(), &c.id),
        };
        let tree = view
            .subtree(at)
            .map_err(|e| EngineError::View(e.to_string()))?
            .filter(|t| t.as_object().is_none_or(|o| !o.is_empty()));
        match tree {
            Some(tree) => Ok((snapshot.revision(), tree)),
            None => Err(EngineError::View(format!(
                "cluster {} ({}) has no metadata at {at}",
                c.id, c.status
            ))),
        }
    }
}
