//! The read-only view a hook gets: its own cluster, rooted at `/`, with `/host`
//! resolved to the calling node. Nothing outside the cluster is reachable.

use super::path::{self, PathError};
use super::{Snapshot, VISIBLE_KEYS, cluster_root};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::sync::Arc;
use thiserror::Error;

/// The calling node's place in the tree: `/hosts/<role>/<instance_id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRef {
    /// The node's stable id.
    pub node_id: String,
    /// The node's role.
    pub role: String,
    /// The node's current instance id.
    pub instance_id: String,
}

/// Why a view refused a read, or could not be made.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ViewError {
    /// The path is malformed.
    #[error("invalid path: {0}")]
    InvalidPath(#[from] PathError),
    /// The path is outside the cluster view.
    #[error("{0} is not visible to hooks: paths start at the cluster (/host, /hosts, /cluster, /env, ...)")]
    NotVisible(String),
    /// No node of the cluster has this node id.
    #[error("cluster {cluster_id} has no node {node_id} (its nodes: {known})")]
    UnknownNode {
        /// The cluster searched.
        cluster_id: String,
        /// The node id asked for.
        node_id: String,
        /// The node ids the cluster has, comma separated.
        known: String,
    },
}

/// One cluster of one snapshot, as seen by one node (or by no node in particular).
#[derive(Debug, Clone)]
pub struct ClusterView {
    snapshot: Arc<Snapshot>,
    cluster_id: String,
    root: String,
    node: Option<NodeRef>,
}

impl ClusterView {
    /// The view of `cluster_id` without a `/host` (for cluster-wide reads).
    pub fn new(snapshot: Arc<Snapshot>, cluster_id: &str) -> Self {
        ClusterView {
            snapshot,
            cluster_id: cluster_id.to_string(),
            root: cluster_root(cluster_id),
            node: None,
        }
    }

    /// A view that sees nothing (for calls that need no metadata).
    pub fn empty() -> Self {
        Self::new(Arc::new(Snapshot::default()), "none")
    }

    /// The view of `cluster_id` as the node `node_id` sees it.
    pub fn for_node(snapshot: Arc<Snapshot>, cluster_id: &str, node_id: &str) -> Result<Self, ViewError> {
        let mut view = Self::new(snapshot, cluster_id);
        let nodes = view.nodes();
        let found = nodes.iter().find(|n| n.node_id == node_id).cloned();
        match found {
            Some(node) => {
                view.node = Some(node);
                Ok(view)
            }
            None => Err(ViewError::UnknownNode {
                cluster_id: cluster_id.to_string(),
                node_id: node_id.to_string(),
                known: nodes.iter().map(|n| n.node_id.as_str()).collect::<Vec<_>>().join(", "),
            }),
        }
    }

    /// The view of `cluster_id` as a node the caller already knows (no search).
    pub fn with_node(snapshot: Arc<Snapshot>, cluster_id: &str, node: NodeRef) -> Self {
        let mut view = Self::new(snapshot, cluster_id);
        view.node = Some(node);
        view
    }

    /// Every node registered under `/hosts/<role>/<instance_id>/node_id`.
    pub fn nodes(&self) -> Vec<NodeRef> {
        let hosts = path::join(&self.root, ["hosts"]);
        let cut = hosts.len() + 1;
        self.snapshot
            .under(&hosts)
            .filter_map(|(key, value)| match key[cut..].split('/').collect::<Vec<_>>()[..] {
                [role, instance_id, "node_id"] => Some(NodeRef {
                    node_id: value.to_string(),
                    role: role.to_string(),
                    instance_id: instance_id.to_string(),
                }),
                _ => None,
            })
            .collect()
    }

    /// The cluster this view shows.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// The calling node, if the view has one.
    pub fn node(&self) -> Option<&NodeRef> {
        self.node.as_ref()
    }

    /// The revision of the snapshot behind this view.
    pub fn revision(&self) -> u64 {
        self.snapshot.revision()
    }

    /// The leaf at a view path.
    pub fn get(&self, path: &str) -> Result<Option<String>, ViewError> {
        // The hot read of every hook: no path is collected, one buffer is reused.
        Ok(match self.resolve(path)? {
            Some((first, rest)) => self.find_in_layers(first, rest, |full| self.snapshot.get(full).map(String::from)),
            None => None,
        })
    }

    /// The sorted children of a view path.
    pub fn children(&self, path: &str) -> Result<Vec<String>, ViewError> {
        Ok(match self.full_paths(path)? {
            Some(layers) => {
                let names: BTreeSet<String> = layers.iter().flat_map(|full| self.snapshot.children(full)).collect();
                names.into_iter().collect()
            }
            None => self.top_level().into_iter().map(|(name, _)| name).collect(),
        })
    }

    /// The subtree at a view path as JSON.
    pub fn subtree(&self, path: &str) -> Result<Option<Value>, ViewError> {
        Ok(match self.full_paths(path)? {
            Some(layers) => self.merged(&layers),
            None => {
                let map: Map<String, Value> = self
                    .top_level()
                    .into_iter()
                    .filter_map(|(name, layers)| self.merged(&layers).map(|v| (name, v)))
                    .collect();
                Some(Value::Object(map))
            }
        })
    }

    /// The subtrees of `layers` (most specific first), the specific ones over the general.
    fn merged(&self, layers: &[String]) -> Option<Value> {
        layers
            .iter()
            .rev()
            .filter_map(|full| self.snapshot.subtree(full))
            .reduce(overlay)
    }

    /// Checks a view path and splits it into its visible top-level key and
    /// the rest; `None` is the view's root.
    fn resolve<'p>(&self, view_path: &'p str) -> Result<Option<(&'p str, &'p str)>, ViewError> {
        let Some((first, rest)) = path::split_first(view_path)? else {
            return Ok(None);
        };
        let visible = VISIBLE_KEYS.contains(&first) || (first == "host" && self.node.is_some());
        if !visible {
            return Err(ViewError::NotVisible(view_path.to_string()));
        }
        Ok(Some((first, rest)))
    }

    /// The full paths of a view path, most specific first; `None` is the view's root.
    fn full_paths(&self, view_path: &str) -> Result<Option<Vec<String>>, ViewError> {
        Ok(self
            .resolve(view_path)?
            .map(|(first, rest)| self.layers_under(first, rest)))
    }

    /// Where a top-level key lives, most specific first.
    fn layers(&self, key: &str) -> Vec<String> {
        self.layers_under(key, "")
    }

    fn layers_under(&self, key: &str, rest: &str) -> Vec<String> {
        let mut all = Vec::with_capacity(2);
        self.find_in_layers(key, rest, |full| {
            all.push(full.to_string());
            None::<()>
        });
        all
    }

    /// The first answer of `f` over the full paths of `key` + `rest`, most
    /// specific first: `/host` is the node's entry under `/hosts`; a node's
    /// `/env` is its role's env over the cluster's.
    fn find_in_layers<T>(&self, key: &str, rest: &str, mut f: impl FnMut(&str) -> Option<T>) -> Option<T> {
        let mut full = String::with_capacity(self.root.len() + 96 + rest.len());
        let mut under = |parts: &[&str]| {
            full.clear();
            full.push_str(&self.root);
            for part in parts.iter().copied().chain((!rest.is_empty()).then_some(rest)) {
                full.push('/');
                full.push_str(part);
            }
            f(&full)
        };
        match (key, &self.node) {
            ("host", Some(node)) => under(&["hosts", &node.role, &node.instance_id]),
            ("env", Some(node)) => under(&["role-env", &node.role]).or_else(|| under(&["env"])),
            (key, _) => under(&[key]),
        }
    }

    /// The visible top-level entries that exist, with their layers, sorted.
    fn top_level(&self) -> Vec<(String, Vec<String>)> {
        let mut keys: Vec<&str> = VISIBLE_KEYS.to_vec();
        if self.node.is_some() {
            keys.push("host");
        }
        let mut entries: Vec<(String, Vec<String>)> = keys
            .into_iter()
            .map(|key| (key.to_string(), self.layers(key)))
            .filter(|(_, layers)| layers.iter().any(|full| self.snapshot.exists(full)))
            .collect();
        entries.sort();
        entries
    }
}

/// `top` over `base`: objects merge key by key, anything else replaces.
fn overlay(base: Value, top: Value) -> Value {
    match (base, top) {
        (Value::Object(mut base), Value::Object(top)) => {
            for (key, value) in top {
                let merged = match base.remove(&key) {
                    Some(old) => overlay(old, value),
                    None => value,
                };
                base.insert(key, merged);
            }
            Value::Object(base)
        }
        (_, top) => top,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn snapshot() -> Arc<Snapshot> {
        let leaves = [
            ("/clusters/a/hosts/zk/i-1/node_id", "cln-1"),
            ("/clusters/a/hosts/zk/i-1/ip", "10.0.0.1"),
            ("/clusters/a/hosts/zk/i-2/node_id", "cln-2"),
            ("/clusters/a/env/port", "2181"),
            ("/clusters/a/cmd/secret", "scheduler only"),
            ("/clusters/b/env/secret", "tenant b"),
        ];
        Arc::new(Snapshot::new(
            3,
            leaves.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
        ))
    }

    #[test]
    fn resolves_host_and_hides_everything_else() {
        let view = ClusterView::for_node(snapshot(), "a", "cln-1").unwrap();
        assert_eq!(view.node().unwrap().instance_id, "i-1");
        assert_eq!(view.get("/host/ip").unwrap().as_deref(), Some("10.0.0.1"));
        assert_eq!(view.get("/hosts/zk/i-2/node_id").unwrap().as_deref(), Some("cln-2"));
        assert_eq!(view.children("/").unwrap(), vec!["env", "host", "hosts"]);
        assert_eq!(
            view.subtree("/host").unwrap(),
            Some(json!({"ip": "10.0.0.1", "node_id": "cln-1"}))
        );
        let everything = view.subtree("/").unwrap().unwrap().to_string();
        assert!(!everything.contains("tenant b") && !everything.contains("scheduler only"));
        for hidden in ["/clusters/b/env/secret", "/cmd/secret", "/b/env/secret", "/self"] {
            assert!(matches!(view.get(hidden), Err(ViewError::NotVisible(_))), "{hidden}");
        }
        for bad in ["/hosts/../../b/env/secret", "env/port", "//clusters"] {
            assert!(matches!(view.get(bad), Err(ViewError::InvalidPath(_))), "{bad}");
        }
    }

    #[test]
    fn a_nodes_env_is_its_roles_env_over_the_clusters() {
        let leaves = [
            ("/clusters/a/hosts/zk/i-1/node_id", "cln-1"),
            ("/clusters/a/env/port", "2181"),
            ("/clusters/a/env/mode", "cluster"),
            ("/clusters/a/role-env/zk/mode", "role"),
            ("/clusters/a/role-env/other/mode", "other role"),
        ];
        let snap = Arc::new(Snapshot::new(
            1,
            leaves.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
        ));
        let view = ClusterView::for_node(snap.clone(), "a", "cln-1").unwrap();
        assert_eq!(view.get("/env/mode").unwrap().as_deref(), Some("role"));
        assert_eq!(view.get("/env/port").unwrap().as_deref(), Some("2181"));
        assert_eq!(view.children("/env").unwrap(), vec!["mode", "port"]);
        assert_eq!(
            view.subtree("/env").unwrap(),
            Some(json!({"mode": "role", "port": "2181"}))
        );
        assert!(matches!(
            view.get("/role-env/other/mode"),
            Err(ViewError::NotVisible(_))
        ));
        let cluster_wide = ClusterView::new(snap, "a");
        assert_eq!(cluster_wide.get("/env/mode").unwrap().as_deref(), Some("cluster"));
    }

    #[test]
    fn unknown_node_lists_the_known_ones() {
        let err = ClusterView::for_node(snapshot(), "a", "cln-9").unwrap_err();
        assert_eq!(err.to_string(), "cluster a has no node cln-9 (its nodes: cln-1, cln-2)");
        let cluster_wide = ClusterView::new(snapshot(), "a");
        assert!(matches!(cluster_wide.get("/host/ip"), Err(ViewError::NotVisible(_))));
    }
}
