//! The metadata tree: the cluster as hooks see it.
//!
//! The tree is stored as full paths (`/clusters/<cluster_id>/hosts/<role>/<instance_id>/ip`)
//! with string leaves, behind the [`MetadataStore`] trait. Every write bumps one
//! store-wide revision. A hook reads a [`ClusterView`]: one [`Snapshot`] of its own
//! cluster, rooted there (`/host`, `/hosts`, `/cluster`, ...), read-only.

#[cfg(test)]
pub(crate) mod conformance;
#[cfg(feature = "etcd")]
mod etcd_store;
mod fixture;
mod memory;
pub mod path;
mod redb_store;
mod snapshot;
mod view;
mod watch;

#[cfg(feature = "etcd")]
pub use etcd_store::EtcdTree;
pub use fixture::{Fixture, FixtureError};
pub use memory::MemoryStore;
pub use redb_store::RedbStore;
pub use snapshot::Snapshot;
pub use view::{ClusterView, NodeRef, ViewError};
pub use watch::{Change, Watch};

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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
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
    /// A watch asked for revisions the store no longer keeps: read a
    /// snapshot, then watch from its revision + 1.
    #[error("revision {requested} is compacted: the oldest change kept is revision {oldest}")]
    Compacted {
        /// The revision asked for.
        requested: u64,
        /// The oldest revision still kept.
        oldest: u64,
    },
    /// The backing store failed.
    #[error("metadata store: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Write {
    /// Whether this write changes something at or under the full path `prefix`.
    pub fn touches(&self, prefix: &str) -> bool {
        let dir = path::dir_prefix(prefix);
        match self {
            Write::Put { path, .. } => path == prefix.trim_end_matches('/') || path.starts_with(&dir),
            // Deleting an ancestor deletes the prefix too.
            Write::DeleteTree { path } => {
                path == prefix.trim_end_matches('/')
                    || path.starts_with(&dir)
                    || dir.starts_with(&path::dir_prefix(path))
            }
        }
    }
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

/// A metadata store: in memory, in the embedded durable file, and (for
/// deployments that outgrow one machine) etcd. Every implementation passes
/// the one conformance suite (`metadata::conformance`).
pub trait MetadataStore: Send + Sync {
    /// Applies `writes` atomically and returns the new revision.
    fn apply<'a>(&'a self, writes: &'a [Write]) -> StoreFuture<'a, u64>;

    /// One consistent snapshot of every leaf under the full path `prefix`.
    fn snapshot<'a>(&'a self, prefix: &'a str) -> StoreFuture<'a, Snapshot>;

    /// The store's revision now (of its last write, 0 before any), read
    /// without copying anything: a snapshot of that revision may be reused.
    fn revision(&self) -> StoreFuture<'_, u64>;

    /// The changes at or under `prefix` from revision `from_revision` on
    /// (inclusive, as etcd's watch): first those already made, then each new
    /// one as it is applied. A revision older than the store keeps is
    /// [`StoreError::Compacted`]: read a snapshot, watch from its revision + 1.
    fn watch<'a>(&'a self, prefix: &'a str, from_revision: u64) -> StoreFuture<'a, Watch>;
}
