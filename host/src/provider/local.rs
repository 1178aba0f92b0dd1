//! The local provider: a node is a directory on this machine, an image a
//! file of the state directory.
//!
//! `<root>/<cluster>/<node>/volume` is the data volume: it survives stop and
//! start, and hooks see it at the role's mount point (`/data`).
//! `<root>/<cluster>/<node>/instance` is the instance: recreated empty at every
//! start, removed at stop; hooks see it as `/`.
//! `<root>/<cluster>/<node>/resources.json` is the size the node has (cpu,
//! memory, volume), as a cloud would report it: written at creation and at
//! every resize. `<state>/images/<sha256>.wasm`
//! is a component as a cluster keeps it. IPs come from the operation store's
//! per-network pools.

use super::Provider;
use crate::cluster::{Cluster, Node, Resources};
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

    /// The resources the node has, as last created or resized.
    pub fn resources(&self, cluster: &str, node: &str) -> io::Result<Resources> {
        let text = std::fs::read(self.node_dir(cluster, node).join(RESOURCES))?;
        serde_json::from_slice(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Writes the node's resources (whole or not at all).
    fn write_resources(&self, cluster: &Cluster, node: &Node) -> io::Result<()> {
        let dir = self.node_dir(&cluster.id, &node.node_id);
        let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
        serde_json::to_writer(&mut tmp, &node.resources)?;
        tmp.persist(dir.join(RESOURCES)).map_err(|e| e.error)?;
        Ok(())
    }
}

/// The file holding a node's size.
const RESOURCES: &str = "resources.json";

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
        self.write_resources(cluster, node)
    }

    fn resize_node(&self, cluster: &Cluster, node: &Node) -> io::Result<()> {
        // A node made before sizes were kept has none on file: its record's size stands.
        let had = match self.resources(&cluster.id, &node.node_id) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Resources::default(),
            other => other?,
        };
        if node.resources.volume_size < had.volume_size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a volume does not shrink ({} GiB to {} GiB)",
                    had.volume_size, node.resources.volume_size
                ),
            ));
        }
        self.write_resources(cluster, node)
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
