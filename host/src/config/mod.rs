//! Render-on-change, the confd equivalent: a node's component renders its
//! config files; only files whose content or mode changed are written, each
//! atomically (a temporary file renamed over the old one), and the caller
//! learns which changed so it can run the node's `reload` service.
//!
//! Paths come from a hook, so every file operation is resolved inside the
//! node's mount with `cap-primitives`: `..` and symlinks cannot lead out.

use crate::hook::ConfigFile;
use crate::metadata::path;
use crate::runtime::Mount;
use cap_primitives::fs::{DirOptions, OpenOptions};
use cap_primitives::{ambient_authority, fs as capfs};
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Most files one render may return.
pub const MAX_FILES: usize = 1000;
/// Most bytes one render may return, all files together.
pub const MAX_BYTES: usize = 16 << 20;

/// A rendered file that cannot be written.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The path is not an absolute path of plain segments.
    #[error("rendered file {path:?}: {message}")]
    BadPath {
        /// The path the hook gave.
        path: String,
        /// Why it is refused.
        message: String,
    },
    /// The render returned too many files.
    #[error("the render returned {0} files; at most {MAX_FILES} are allowed")]
    TooMany(usize),
    /// The render returned too many bytes.
    #[error("the render returned {0} bytes; at most {MAX_BYTES} are allowed")]
    TooLarge(usize),
    /// Writing failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The path in the node.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Writes the files that differ from what the node has; returns their paths.
pub fn write_changed(mounts: &[Mount], files: &[ConfigFile]) -> Result<Vec<String>, ConfigError> {
    if files.len() > MAX_FILES {
        return Err(ConfigError::TooMany(files.len()));
    }
    let total: usize = files.iter().map(|f| f.content.len()).sum();
    if total > MAX_BYTES {
        return Err(ConfigError::TooLarge(total));
    }
    let mut seen = BTreeSet::new();
    let mut changed = Vec::new();
    for file in files {
        let bad = |message: &str| ConfigError::BadPath {
            path: file.path.clone(),
            message: message.to_string(),
        };
        let segments = path::segments(&file.path).map_err(|e| bad(&e.to_string()))?;
        if segments.is_empty() {
            return Err(bad("is a directory"));
        }
        if !seen.insert(file.path.clone()) {
            return Err(bad("is rendered twice"));
        }
        // No setuid, setgid or sticky bits: the host may run as root.
        if file.mode & !0o777 != 0 {
            return Err(bad(&format!(
                "mode {:o} is refused: only permission bits (0o777) are allowed",
                file.mode
            )));
        }
        let (mount, rel) = resolve(mounts, &segments).ok_or_else(|| bad("is outside the node's directories"))?;
        let io = |source| ConfigError::Io {
            path: file.path.clone(),
            source,
        };
        if write_if_changed(&mount.host, &rel, &file.content, file.mode).map_err(io)? {
            changed.push(file.path.clone());
        }
    }
    Ok(changed)
}

/// The mount holding a path (the longest matching mount point) and the path inside it.
fn resolve<'m>(mounts: &'m [Mount], segments: &[&str]) -> Option<(&'m Mount, PathBuf)> {
    mounts
        .iter()
        .filter_map(|m| {
            let point = path::segments(&m.guest).ok()?;
            let rest = segments.strip_prefix(point.as_slice())?;
            (!rest.is_empty() && m.writable).then(|| (m, point.len(), rest.iter().collect::<PathBuf>()))
        })
        .max_by_key(|(_, depth, _)| *depth)
        .map(|(m, _, rel)| (m, rel))
}

/// Writes `rel` under `root` unless it already has this content and mode.
fn write_if_changed(root: &Path, rel: &Path, content: &[u8], mode: u32) -> std::io::Result<bool> {
    let base = capfs::open_ambient_dir(root, ambient_authority())?;
    if let Some((old, old_mode)) = read_existing(&base, rel, content.len())?
        && old == content
        && old_mode == mode
    {
        return Ok(false);
    }
    let parent = rel.parent().unwrap_or(Path::new(""));
    let mut dir = PathBuf::new();
    for component in parent.components() {
        dir.push(component);
        match capfs::create_dir(&base, &dir, &DirOptions::new()) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
    }
    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{name}.hookhost-tmp"));
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    let mut file: File = capfs::open(&base, &tmp, &options)?;
    file.write_all(content)?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    file.sync_data()?;
    capfs::rename(&base, &tmp, &base, rel)?;
    Ok(true)
}

fn read_existing(base: &File, rel: &Path, expected_len: usize) -> std::io::Result<Option<(Vec<u8>, u32)>> {
    let mut options = OpenOptions::new();
    options.read(true);
    let file = match capfs::open(base, rel, &options) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    let mode = meta.permissions().mode() & 0o7777;
    // Only a file of the new length can be the same; never read a huge one.
    if meta.len() != expected_len as u64 {
        return Ok(Some((Vec::new(), mode)));
    }
    let mut content = Vec::with_capacity(expected_len);
    file.take(expected_len as u64 + 1).read_to_end(&mut content)?;
    Ok(Some((content, mode)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, content: &str, mode: u32) -> ConfigFile {
        ConfigFile {
            path: path.into(),
            content: content.as_bytes().to_vec(),
            mode,
        }
    }

    fn mounts(instance: &Path, volume: &Path) -> Vec<Mount> {
        vec![
            Mount {
                host: instance.into(),
                guest: "/".into(),
                writable: true,
            },
            Mount {
                host: volume.into(),
                guest: "/data".into(),
                writable: true,
            },
        ]
    }

    #[test]
    fn only_changed_files_are_written_in_the_right_mount() {
        let (instance, volume) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let m = mounts(instance.path(), volume.path());
        let files = [
            file("/opt/app/app.cfg", "a=1\n", 0o644),
            file("/data/app/state.cfg", "s\n", 0o600),
        ];
        assert_eq!(
            write_changed(&m, &files).unwrap(),
            ["/opt/app/app.cfg", "/data/app/state.cfg"]
        );
        assert_eq!(
            std::fs::read_to_string(instance.path().join("opt/app/app.cfg")).unwrap(),
            "a=1\n"
        );
        let meta = std::fs::metadata(volume.path().join("app/state.cfg")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o600);

        assert!(
            write_changed(&m, &files).unwrap().is_empty(),
            "same content and mode: nothing written"
        );
        let changed = [
            file("/opt/app/app.cfg", "a=2\n", 0o644),
            file("/data/app/state.cfg", "s\n", 0o640),
        ];
        assert_eq!(
            write_changed(&m, &changed).unwrap(),
            ["/opt/app/app.cfg", "/data/app/state.cfg"]
        );
        let leftovers: Vec<_> = std::fs::read_dir(instance.path().join("opt/app")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn hostile_paths_and_symlinks_cannot_leave_the_node() {
        let (instance, volume, outside) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let m = mounts(instance.path(), volume.path());
        for path in ["/../etc/passwd", "relative", "/", "/opt//x"] {
            let err = write_changed(&m, &[file(path, "x", 0o644)]).unwrap_err();
            assert!(matches!(err, ConfigError::BadPath { .. }), "{path}: {err}");
        }
        let err = write_changed(&m, &[file("/a", "x", 0o644), file("/a", "y", 0o644)]).unwrap_err();
        assert!(err.to_string().contains("rendered twice"));
        for mode in [0o4755, 0o2755, 0o1777] {
            let err = write_changed(&m, &[file("/bin/tool", "#!", mode)]).unwrap_err();
            assert!(err.to_string().contains("only permission bits"), "{mode:o}: {err}");
        }
        assert!(!instance.path().join("bin").exists());
        let huge = ConfigFile {
            path: "/big".into(),
            content: vec![b'x'; MAX_BYTES + 1],
            mode: 0o644,
        };
        assert!(matches!(write_changed(&m, &[huge]), Err(ConfigError::TooLarge(_))));
        // A link planted in the node pointing outside it is not followed out.
        std::os::unix::fs::symlink(outside.path(), instance.path().join("etc")).unwrap();
        let err = write_changed(&m, &[file("/etc/passwd", "pwned", 0o644)]).unwrap_err();
        assert!(matches!(err, ConfigError::Io { .. }), "{err}");
        assert!(!outside.path().join("passwd").exists());
    }
}
