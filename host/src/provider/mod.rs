//! Node resources and images. The local provider makes a node a directory
//! and an image a file; cloud providers plug in behind the same trait.

mod local;

pub use local::LocalProvider;

use crate::backups::{Copied, Entry};
use crate::cluster::{Cluster, Node};
use crate::runtime::Mount;
use std::io;
use std::path::{Path, PathBuf};

/// Creates, starts, stops and deletes nodes' resources. Every method is
/// idempotent: a resumed operation may call it again for the same node.
pub trait Provider: Send + Sync {
    /// Creates the node's lasting resources (its data volume).
    fn create_node(&self, cluster: &Cluster, node: &Node) -> io::Result<()>;
    /// Boots a fresh instance for the node (its instance state starts empty).
    fn start_instance(&self, cluster: &Cluster, node: &Node) -> io::Result<()>;
    /// Stops the node's instance: its instance state is gone, its volume stays.
    fn stop_instance(&self, cluster: &Cluster, node: &Node) -> io::Result<()>;
    /// Resizes the node to its record's resources (instance and volume,
    /// online; a volume only grows).
    fn resize_node(&self, cluster: &Cluster, node: &Node) -> io::Result<()>;
    /// Deletes everything of the node, its volume included.
    fn delete_node(&self, cluster: &Cluster, node: &Node) -> io::Result<()>;
    /// Whether the node has a running instance to run hooks on.
    fn instance_exists(&self, cluster: &Cluster, node: &Node) -> bool;
    /// The node's directories, as its hooks see them.
    fn mounts(&self, cluster: &Cluster, node: &Node) -> Vec<Mount>;
    /// Copies a file or directory tree of this machine to `destination`
    /// (an absolute path as the node's hooks see it), replacing what is
    /// there; on failure the destination is removed.
    fn copy_in(&self, cluster: &Cluster, node: &Node, from: &Path, destination: &str) -> io::Result<()>;
    /// Copies the node's volume into the new directory `to`, as a backup
    /// keeps it (every entry listed); `base`, the previous point of an
    /// incremental chain (its copy of this volume and its entries): files
    /// that did not change are not stored again.
    fn snapshot_volume(
        &self,
        cluster: &Cluster,
        node: &Node,
        to: &Path,
        base: Option<(&Path, &[Entry])>,
    ) -> io::Result<(Vec<Entry>, Copied)>;
    /// The node's volume becomes the copy a backup holds at `from` (its
    /// `entries`), every file's checksum checked on the way.
    fn restore_volume(&self, cluster: &Cluster, node: &Node, from: &Path, entries: &[Entry]) -> io::Result<()>;
    /// Keeps a component as an image, by its content's SHA-256 (hex), so
    /// that a cluster keeps running what it was created with; where it is.
    fn store_image(&self, sha256: &str, bytes: &[u8]) -> io::Result<PathBuf>;
}
