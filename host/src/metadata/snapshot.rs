//! An immutable, consistent copy of part of the tree at one revision.

use super::path::dir_prefix;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Leaves under one prefix at one revision; cheap to share behind an `Arc`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    revision: u64,
    leaves: BTreeMap<String, String>,
}

impl Snapshot {
    /// A snapshot of `leaves` (full paths) taken at `revision`.
    pub fn new(revision: u64, leaves: BTreeMap<String, String>) -> Self {
        Snapshot { revision, leaves }
    }

    /// The store revision this snapshot was taken at.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The value of the leaf at a full path.
    pub fn get(&self, path: &str) -> Option<&str> {
        self.leaves.get(path).map(String::as_str)
    }

    /// The leaves strictly under a full path, as (path, value).
    pub fn under<'a>(&'a self, path: &str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let prefix = dir_prefix(path);
        self.leaves
            .range(prefix.clone()..)
            .take_while(move |(k, _)| k.starts_with(&prefix))
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether anything (leaf or inner node) exists at a full path.
    pub fn exists(&self, path: &str) -> bool {
        self.get(path).is_some() || self.under(path).next().is_some()
    }

    /// The sorted names of the children of a full path.
    pub fn children(&self, path: &str) -> Vec<String> {
        let cut = dir_prefix(path).len();
        let names: BTreeSet<&str> = self
            .under(path)
            .map(|(k, _)| k[cut..].split('/').next().unwrap_or_default())
            .collect();
        names.into_iter().map(String::from).collect()
    }

    /// The subtree at a full path as JSON: a string for a leaf, an object for
    /// an inner node, `None` when nothing is there.
    pub fn subtree(&self, path: &str) -> Option<Value> {
        if let Some(leaf) = self.get(path) {
            return Some(Value::String(leaf.to_string()));
        }
        let cut = dir_prefix(path).len();
        let mut root = Map::new();
        let mut any = false;
        for (key, value) in self.under(path) {
            any = true;
            insert(&mut root, &key[cut..], value);
        }
        any.then_some(Value::Object(root))
    }
}

fn insert(map: &mut Map<String, Value>, rel: &str, value: &str) {
    match rel.split_once('/') {
        None => {
            map.insert(rel.to_string(), Value::String(value.to_string()));
        }
        Some((head, rest)) => {
            let child = map.entry(head.to_string()).or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(child) = child {
                insert(child, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn snap() -> Snapshot {
        let leaves = [
            ("/c/hosts/zk/i-1/ip", "10.0.0.1"),
            ("/c/hosts/zk/i-1/sid", "1"),
            ("/c/hosts/zk/i-2/ip", "10.0.0.2"),
            ("/c/hosts/zk-x/i-9/ip", "10.0.0.9"),
            ("/c/env/port", "2181"),
        ];
        Snapshot::new(7, leaves.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }

    #[test]
    fn reads_leaves_children_and_subtrees() {
        let s = snap();
        assert_eq!(s.revision(), 7);
        assert_eq!(s.get("/c/env/port"), Some("2181"));
        assert_eq!(s.get("/c/env"), None);
        assert_eq!(s.children("/c/hosts"), vec!["zk", "zk-x"]);
        assert_eq!(s.children("/c/hosts/zk/"), vec!["i-1", "i-2"]);
        assert!(s.children("/c/env/port").is_empty());
        assert_eq!(
            s.subtree("/c/hosts/zk"),
            Some(json!({"i-1": {"ip": "10.0.0.1", "sid": "1"}, "i-2": {"ip": "10.0.0.2"}}))
        );
        assert_eq!(s.subtree("/c/env/port"), Some(json!("2181")));
        assert_eq!(s.subtree("/c/nothing"), None);
        // `/c/hosts/zk` must not pick up the sibling `zk-x`.
        assert_eq!(s.under("/c/hosts/zk").count(), 3);
        assert!(s.exists("/c/hosts") && !s.exists("/c/host"));
    }
}
