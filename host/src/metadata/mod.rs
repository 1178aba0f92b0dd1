//! The metadata tree: the cluster as hooks see it.
//!
//! The tree is stored as full paths (`/clusters/<cluster_id>/hosts/<role>/<instance_id>/ip`)
//! with string leaves, behind the [`MetadataStore`] trait. Every write bumps one
//! store-wide revision. A hook reads a [`ClusterView`]: one [`Snapshot`] of its own
//! cluster, rooted there (`/host`, `/hosts`, `/cluster`, ...), read-only.

mod cluster_tree;
mod fixture;
mod memory;
pub mod path;
mod redb_store;
mod snapshot;
mod view;

pub use cluster_tree::cluster_tree;
pub use fixture::{Fixture, FixtureError};
pub use memory::MemoryStore;
pub use redb_store::RedbStore;
pub use snapshot::Snapshot;
pub use view::{ClusterView, NodeRef, ViewError};

use std::future::Future;
use std::pin::Pin;
use thiserror::Error;

/// The top-level keys of a cluster's tree that hooks may read (`host` is derived).
pub const VISIBLE_KEYS: &[&str] = &[
    "hosts",
    "cluster",
    "env",
    "links",
    "adding-hosts",
    "deleting-hosts",
    "vertical-scaling-roles",
    "upgrade-audit",
];

/// The full path of a cluster's tree.
pub fn cluster_root(cluster_id: &str) -> String {
    path::join("/clusters", [cluster_id])
}

/// One change to the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Sets the leaf at a full path.
    Put {
        /// Full path of the leaf.
        path: String,
        /// Its value.
        value: String,
    },
    /// Removes the node at a full path and everything under it.
    DeleteTree {
        /// Full path of the subtree.
        path: String,
    },
}

/// Why a store refused or failed a request.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A path is malformed.
    #[error("bad metadata path: {0}")]
    Path(#[from] path::PathError),
    /// A write would make a path both a leaf and an inner node.
    #[error("{path} would be both a value and a directory (conflicts with {existing})")]
    LeafConflict {
        /// The path written.
        path: String,
        /// The existing path it collides with.
        existing: String,
    },
    /// The backing store failed.
    #[error("metadata store: {0}")]
    Backend(String),
}

/// What a store's backend offers [`apply_writes`], the one place that turns
/// writes into changes and keeps the tree a tree.
pub(crate) trait Tree {
    /// Whether a leaf sits at the full path.
    fn has(&self, path: &str) -> bool;
    /// The first leaf whose path starts with `dir` (which ends in `/`).
    fn first_under(&self, dir: &str) -> Option<String>;
    /// Sets a leaf.
    fn put(&mut self, path: &str, value: &str) -> Result<(), StoreError>;
    /// Removes the leaf at `path` and every leaf under `dir` (`path` + `/`).
    fn delete_tree(&mut self, path: &str, dir: &str) -> Result<(), StoreError>;
}

/// Applies writes in order: paths checked, no path both a leaf and a directory.
pub(crate) fn apply_writes(tree: &mut impl Tree, writes: &[Write]) -> Result<(), StoreError> {
    for write in writes {
        match write {
            Write::Put { path: p, value } => {
                path::segments(p)?;
                check_leaf(tree, p)?;
                tree.put(p, value)?;
            }
            Write::DeleteTree { path: p } => {
                path::segments(p)?;
                tree.delete_tree(p, &path::dir_prefix(p))?;
            }
        }
    }
    Ok(())
}

/// Refuses a leaf at `path` when it is an inner node or sits under a leaf.
fn check_leaf(tree: &impl Tree, path: &str) -> Result<(), StoreError> {
    let conflict = |existing: String| StoreError::LeafConflict {
        path: path.to_string(),
        existing,
    };
    if let Some(below) = tree.first_under(&format!("{path}/")) {
        return Err(conflict(below));
    }
    let mut ancestor = path;
    while let Some((parent, _)) = ancestor.rsplit_once('/') {
        if tree.has(parent) {
            return Err(conflict(parent.to_string()));
        }
        ancestor = parent;
    }
    Ok(())
}

/// A boxed future returned by [`MetadataStore`] methods.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A metadata store: the in-memory one here, durable and etcd-backed ones later.
pub trait MetadataStore: Send + Sync {
    /// Applies `writes` atomically and returns the new revision.
    fn apply<'a>(&'a self, writes: &'a [Write]) -> StoreFuture<'a, u64>;

    /// One consistent snapshot of every leaf under the full path `prefix`.
    fn snapshot<'a>(&'a self, prefix: &'a str) -> StoreFuture<'a, Snapshot>;
}
