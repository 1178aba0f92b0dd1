//! The local provider: a node is a directory on this machine, an image a
//! file of the state directory.
//!
//! `<root>/<cluster>/<node>/volume` is the data volume: it survives stop and
//! start, and hooks see it at the role's mount point (`/data`).
//! `<root>/<cluster>/<node>/instance` is the instance: recreated empty at every
//! start, removed at stop; hooks see it as `/`. `<state>/images/<sha256>.wasm`
//! is a component as a cluster keeps it. IPs come from the operation store's
//! per-network pools.

use super::Provider;
use crate::cluster::{Cluster, Node};
use crate::runtime::Mount;
use std::io;
use std::path::{Path, PathBuf};

/// Nodes as directories, images as files, under a state directory.
#[derive(Debug, Clone)]
pub struct LocalProvider {
    root: PathBuf,
    images: PathBuf,
}

impl LocalProvider {
    /// Nodes live under `<state_dir>/nodes`, images under `<state_dir>/images`.
    pub fn new(state_dir: &Path) -> Self {
        LocalProvider {
            root: state_dir.join("nodes"),
            images: state_dir.join("images"),
        }
    }

    /// The node's directory.
    pub fn node_dir(&self, cluster: &str, node: &str) -> PathBuf {
        self.root.join(cluster).join(node)
    }

    fn volume(&self, cluster: &Cluster, node: &Node) -> PathBuf {
        self.node_dir(&cluster.id, &node.node_id).join("volume")
    }

    fn instance(&self, cluster: &Cluster, node: &Node) -> PathBuf {
        self.node_dir(&cluster.id, &node.node_id).join("instance")
    }
}

fn remove_dir(dir: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

impl Provider for LocalProvider {
    fn create_node(&self, cluster: &Cluster, node: &Node) -> io::Result<()> {
        std::fs::create_dir_all(self.volume(cluster, node))?;
        if node.instance_id.is_some() {
            std::fs::create_dir_all(self.instance(cluster, node))?;
        }
        Ok(())
    }

    fn start_instance(&self, cluster: &Cluster, node: &Node) -> io::Result<()> {
        let instance = self.instance(cluster, node);
        remove_dir(&instance)?;
        std::fs::create_dir_all(self.volume(cluster, node))?;
        std::fs::create_dir_all(instance)
    }

    fn stop_instance(&self, cluster: &Cluster, node: &Node) -> io::Result<()> {
        remove_dir(&self.instance(cluster, node))
    }

    fn delete_node(&self, cluster: &Cluster, node: &Node) -> io::Result<()> {
        remove_dir(&self.node_dir(&cluster.id, &node.node_id))?;
        // The cluster's directory goes with its last node.
        let _ = std::fs::remove_dir(self.root.join(&cluster.id));
        Ok(())
    }

    fn instance_exists(&self, cluster: &Cluster, node: &Node) -> bool {
        node.instance_id.is_some() && self.instance(cluster, node).is_dir()
    }

    fn store_image(&self, sha256: &str, bytes: &[u8]) -> io::Result<PathBuf> {
        std::fs::create_dir_all(&self.images)?;
        let image = self.images.join(format!("{sha256}.wasm"));
        if !image.exists() {
            let mut tmp = tempfile::NamedTempFile::new_in(&self.images)?;
            std::io::Write::write_all(&mut tmp, bytes)?;
            tmp.persist(&image).map_err(|e| e.error)?;
        }
        Ok(image)
    }

    fn mounts(&self, cluster: &Cluster, node: &Node) -> Vec<Mount> {
        let mount_point = cluster
            .spec
            .role(&node.role)
            .map(|r| r.volume_mount())
            .unwrap_or_else(|| "/data".into());
        vec![
            Mount {
                host: self.instance(cluster, node),
                guest: "/".into(),
                writable: true,
            },
            Mount {
                host: self.volume(cluster, node),
                guest: mount_point,
                writable: true,
            },
        ]
    }
}
