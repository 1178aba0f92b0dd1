//! Backups (`notes/appcenter-spec.md` §2.1, §5.10–5.11): what a backup of a
//! cluster holds and where it is kept. A `device` backup holds a copy of
//! every node's volume ([`tree`]); a `custom` one only its record (the
//! app's `backup` hook keeps the data). Incremental backups form chains: a
//! full backup starts one, each incremental point builds on the one before
//! and stores only what changed (hard links to the unchanged files).
//!
//! Laid out under the state directory as `backups/<id>/backup.json` (the
//! record) and `backups/<id>/nodes/<node_id>/...` (the volumes). A backup
//! is written under `backups/.partial-<id>/` and renamed into place once
//! its record is on disk, so a listed backup is always whole.

pub mod tree;

use crate::apps::AppRef;
use crate::cluster::Resources;
pub use crate::request::BackupOrder;
use crate::spec::{BackupPolicy, Spec};
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};
use thiserror::Error;
pub use tree::{Copied, Entry, EntryKind};

/// One node's part of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackupNode {
    /// The node it was taken of.
    pub node_id: String,
    /// Its role.
    pub role: String,
    /// Its server id.
    pub sid: u32,
    /// Its group id.
    pub gid: u32,
    /// Its resources.
    pub resources: Resources,
    /// Its volume's entries (a `device` backup).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<Entry>,
}

/// A backup, as kept.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Backup {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The cluster it was taken of.
    pub cluster: String,
    /// That cluster's name.
    pub cluster_name: String,
    /// The app version the cluster ran.
    pub app: AppRef,
    /// The cluster's spec then (its env included).
    pub spec: Spec,
    /// How it was taken.
    pub policy: BackupPolicy,
    /// The point it builds on; none for a full backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The user's parameters of the `backup` hook.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub params: serde_json::Map<String, serde_json::Value>,
    /// Its nodes, with their volumes' entries (a `device` backup).
    pub nodes: Vec<BackupNode>,
    /// What copying the volumes took.
    #[serde(default)]
    pub copied: Copied,
    /// When it was taken.
    pub created_at: String,
}

impl Backup {
    /// Whether it is an incremental point.
    pub fn incremental(&self) -> bool {
        self.parent.is_some()
    }
}

/// Why a backup cannot be found, kept or used.
#[derive(Debug, Error)]
pub enum BackupError {
    /// No backup has this id.
    #[error("no backup {0:?} (see `hookhost backup list`)")]
    NotFound(String),
    /// A backup's data does not match its record.
    #[error("backup {id} cannot be used: {why}")]
    Corrupt {
        /// The backup.
        id: String,
        /// What is wrong.
        why: String,
    },
    /// A file of the backups cannot be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Largest backup record read (bytes).
const MAX_RECORD: u64 = 256 << 20;
/// The record's file in a backup's directory.
const RECORD: &str = "backup.json";

/// The backups of a state directory.
#[derive(Debug, Clone)]
pub struct Backups {
    root: PathBuf,
}

impl Backups {
    /// The backups under `<state_dir>/backups`.
    pub fn new(state_dir: &Path) -> Backups {
        Backups {
            root: state_dir.join("backups"),
        }
    }

    /// Whether `id` can name a backup (`s-` and letters or digits).
    pub fn is_id(id: &str) -> bool {
        id.len() <= 64
            && id
                .strip_prefix("s-")
                .is_some_and(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric()))
    }

    /// A kept backup's directory.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Where a backup is written before it is whole.
    pub fn partial_dir(&self, id: &str) -> PathBuf {
        self.root.join(format!(".partial-{id}"))
    }

    /// A node's volume in a backup's directory (kept or partial).
    pub fn node_dir(dir: &Path, node: &str) -> PathBuf {
        dir.join("nodes").join(node)
    }

    /// A backup, by id.
    pub fn get(&self, id: &str) -> Result<Backup, BackupError> {
        if !Backups::is_id(id) {
            return Err(BackupError::NotFound(crate::text::clip(id, 64)));
        }
        let path = self.dir(id).join(RECORD);
        let bytes = match crate::files::read_limited(&path, MAX_RECORD) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(BackupError::NotFound(id.to_string())),
            other => other.map_err(io_at(&path))?,
        };
        let backup: Backup = serde_json::from_slice(&bytes).map_err(|e| BackupError::Corrupt {
            id: id.to_string(),
            why: format!("its record does not parse: {e}"),
        })?;
        // A record names directories beneath its own: nothing in it may lead out.
        let plain = |name: &str| !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        let parent_ok = backup.parent.as_deref().is_none_or(|p| Backups::is_id(p) && p != id);
        if backup.id != id || !parent_ok || !backup.nodes.iter().all(|n| plain(&n.node_id)) {
            return Err(BackupError::Corrupt {
                id: id.to_string(),
                why: "its record names another backup, or a node id that is no plain name".into(),
            });
        }
        Ok(backup)
    }

    /// Every backup, oldest first.
    pub fn list(&self) -> Result<Vec<Backup>, BackupError> {
        let entries = match std::fs::read_dir(&self.root) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            other => other.map_err(io_at(&self.root))?,
        };
        let mut all = Vec::new();
        for entry in entries {
            let name = entry.map_err(io_at(&self.root))?.file_name();
            if let Some(id) = name.to_str().filter(|n| Backups::is_id(n)) {
                // One unreadable backup does not hide the others.
                match self.get(id) {
                    Ok(backup) => all.push(backup),
                    Err(e) => tracing::warn!("skipping backup {id}: {e}"),
                }
            }
        }
        all.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
        Ok(all)
    }

    /// The latest backup of a cluster, the point an incremental one builds on.
    pub fn latest_of(&self, cluster: &str) -> Result<Option<Backup>, BackupError> {
        Ok(self.list()?.into_iter().rev().find(|b| b.cluster == cluster))
    }

    /// The points that build on `id`, directly or not, latest first.
    pub fn later_in_chain(&self, id: &str) -> Result<Vec<String>, BackupError> {
        let all = self.list()?;
        let mut later: Vec<String> = Vec::new();
        let mut frontier = vec![id.to_string()];
        while let Some(at) = frontier.pop() {
            for child in all.iter().filter(|b| b.parent.as_deref() == Some(at.as_str())) {
                // A tampered chain may loop: each point once.
                if child.id != id && !later.contains(&child.id) {
                    later.push(child.id.clone());
                    frontier.push(child.id.clone());
                }
            }
        }
        later.reverse();
        Ok(later)
    }

    /// Makes a backup whole: its record goes beside its data (fsynced), and
    /// the partial directory takes its place. Done already, nothing changes.
    pub fn commit(&self, backup: &Backup) -> Result<(), BackupError> {
        let dir = self.dir(&backup.id);
        if dir.join(RECORD).exists() {
            return Ok(());
        }
        let partial = self.partial_dir(&backup.id);
        std::fs::create_dir_all(&partial).map_err(io_at(&partial))?;
        let path = partial.join(RECORD);
        let bytes = serde_json::to_vec_pretty(backup).map_err(|e| io_at(&path)(io::Error::other(e)))?;
        let mut file = std::fs::File::create(&path).map_err(io_at(&path))?;
        io::Write::write_all(&mut file, &bytes).map_err(io_at(&path))?;
        file.sync_all().map_err(io_at(&path))?;
        std::fs::rename(&partial, &dir).map_err(io_at(&dir))?;
        if let Ok(root) = std::fs::File::open(&self.root) {
            let _ = root.sync_all();
        }
        Ok(())
    }

    /// Removes a backup, whole or partial; gone already, nothing changes.
    /// It stops being listed at once (renamed partial), then its data goes.
    pub fn remove(&self, id: &str) -> Result<(), BackupError> {
        let (dir, partial) = (self.dir(id), self.partial_dir(id));
        if dir.exists() {
            let _ = std::fs::remove_dir_all(&partial);
            std::fs::rename(&dir, &partial).map_err(io_at(&dir))?;
        }
        for dir in [partial, dir] {
            match std::fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_at(&dir)(e)),
                _ => {}
            }
        }
        Ok(())
    }

    /// Checks every file of a `device` backup against its checksum.
    pub fn verify(&self, backup: &Backup) -> Result<(), BackupError> {
        let dir = self.dir(&backup.id);
        for node in &backup.nodes {
            tree::verify(&Backups::node_dir(&dir, &node.node_id), &node.files).map_err(|e| BackupError::Corrupt {
                id: backup.id.clone(),
                why: format!("node {}: {e}", node.node_id),
            })?;
        }
        Ok(())
    }
}
