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
use crate::backups::{Copied, Entry};
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

impl LocalProvider {
    /// Where an absolute path of the node's hooks is on this machine: under
    /// the mount holding it, its parents made; no step of the way may be a
    /// link (a hook may have left one) and none may be `..`.
    fn host_path(&self, cluster: &Cluster, node: &Node, guest: &str) -> io::Result<PathBuf> {
        let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("{guest}: {why}"));
        let guest_path = Path::new(guest);
        let mounts = self.mounts(cluster, node);
        let mount = mounts
            .iter()
            .filter(|m| guest_path.starts_with(&m.guest))
            .max_by_key(|m| m.guest.len())
            .ok_or_else(|| bad("not beneath any of the node's mounts"))?;
        let rel = guest_path
            .strip_prefix(&mount.guest)
            .map_err(|_| bad("not beneath its mount"))?;
        let parts: Vec<_> = rel.components().collect();
        if parts.is_empty() || !parts.iter().all(|c| matches!(c, std::path::Component::Normal(_))) {
            return Err(bad("must name a path beneath a mount point, without `..`"));
        }
        let mut at = mount.host.clone();
        std::fs::create_dir_all(&at)?;
        for (i, part) in parts.iter().enumerate() {
            at.push(part);
            match std::fs::symlink_metadata(&at) {
                Ok(meta) if meta.file_type().is_symlink() => return Err(bad("a step of the way is a link")),
                Ok(meta) if i + 1 < parts.len() && !meta.is_dir() => {
                    return Err(bad("a step of the way is not a directory"));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound && i + 1 < parts.len() => std::fs::create_dir(&at)?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(at)
    }
}

/// Removes a file or a directory tree, if there is one.
fn remove_any(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
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

    fn copy_in(&self, cluster: &Cluster, node: &Node, from: &Path, destination: &str) -> io::Result<()> {
        // Nothing is touched before the source is known to be there.
        let meta = std::fs::symlink_metadata(from)?;
        let target = self.host_path(cluster, node, destination)?;
        remove_any(&target)?;
        let copied = if meta.is_dir() {
            crate::files::copy_tree(from, &target).map(|_| ())
        } else if meta.is_file() {
            crate::files::open_file(from)
                .and_then(|mut file| std::io::copy(&mut file, &mut std::fs::File::create(&target)?).map(|_| ()))
        } else {
            Err(io::Error::other("not a regular file or directory"))
        };
        if copied.is_err() {
            let _ = remove_any(&target);
        }
        copied
    }

    fn snapshot_volume(
        &self,
        cluster: &Cluster,
        node: &Node,
        to: &Path,
        base: Option<(&Path, &[Entry])>,
    ) -> io::Result<(Vec<Entry>, Copied)> {
        let volume = self.volume(cluster, node);
        std::fs::create_dir_all(&volume)?;
        crate::backups::tree::snapshot(&volume, to, base)
    }

    fn restore_volume(&self, cluster: &Cluster, node: &Node, from: &Path, entries: &[Entry]) -> io::Result<()> {
        crate::backups::tree::restore(from, &self.volume(cluster, node), entries)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> (tempfile::TempDir, LocalProvider, Cluster, Node) {
        let state = tempfile::tempdir().unwrap();
        std::fs::write(state.path().join("x.wasm"), "").unwrap();
        let spec = crate::spec::Spec::parse(
            Path::new("spec.json"),
            r#"{"nodes": [{"role": "db", "count": 1, "plugin": "x.wasm"}]}"#,
            state.path(),
        )
        .unwrap();
        let cluster = Cluster::new(crate::apps::AppRef::default(), spec, "spec.json".into(), "c".into());
        let node = cluster.nodes[0].clone();
        let provider = LocalProvider::new(state.path());
        provider.create_node(&cluster, &node).unwrap();
        (state, provider, cluster, node)
    }

    #[test]
    fn a_copy_in_replaces_its_destination_and_a_failed_one_leaves_none() {
        let (state, provider, cluster, node) = node();
        let payload = state.path().join("payload");
        std::fs::create_dir_all(payload.join("bin")).unwrap();
        std::fs::write(payload.join("bin/up.sh"), "2").unwrap();
        provider
            .copy_in(&cluster, &node, &payload.join("bin"), "/data/up/bin")
            .unwrap();
        let volume = provider.volume(&cluster, &node);
        assert_eq!(std::fs::read_to_string(volume.join("up/bin/up.sh")).unwrap(), "2");
        // Copied again, it replaces what was there.
        std::fs::write(volume.join("up/bin/stale"), "").unwrap();
        provider
            .copy_in(&cluster, &node, &payload.join("bin"), "/data/up/bin")
            .unwrap();
        assert!(!volume.join("up/bin/stale").exists());
        // A payload that cannot be copied (a FIFO in it) leaves no destination.
        let fifo = std::ffi::CString::new(payload.join("bin/zz-fifo").to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let e = provider
            .copy_in(&cluster, &node, &payload.join("bin"), "/data/up/bin")
            .unwrap_err();
        assert!(e.to_string().contains("zz-fifo"), "{e}");
        assert!(
            !volume.join("up/bin").exists(),
            "the failed copy's destination is removed"
        );
        // A file lands in the instance too.
        provider
            .copy_in(&cluster, &node, &payload.join("bin/up.sh"), "/opt/up.sh")
            .unwrap();
        assert!(provider.instance(&cluster, &node).join("opt/up.sh").is_file());
    }

    #[test]
    fn a_copy_in_never_follows_a_link_a_hook_left_or_climbs_out() {
        let (state, provider, cluster, node) = node();
        let outside = state.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let volume = provider.volume(&cluster, &node);
        std::os::unix::fs::symlink(&outside, volume.join("link")).unwrap();
        std::fs::write(state.path().join("f"), "x").unwrap();
        for dest in ["/data/link/f", "/data/../escape", "/data", "/"] {
            // (The spec refuses these; the provider refuses them anyway.)
            assert!(
                provider
                    .copy_in(&cluster, &node, &state.path().join("f"), dest)
                    .is_err(),
                "{dest}"
            );
        }
        assert!(
            std::fs::read_dir(&outside).unwrap().next().is_none(),
            "nothing landed outside"
        );
        assert!(!provider.node_dir(&cluster.id, &node.node_id).join("escape").exists());
    }
}
