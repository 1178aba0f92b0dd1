//! A directory tree as a backup keeps it: every file, directory and link
//! listed (a file with its size, SHA-256 and mode), copied into the
//! backup's directory; an incremental copy hard-links the files the
//! previous point of its chain holds with the same content, so it stores
//! only what changed. Restoring copies the tree back and checks every
//! file's checksum on the way: a corrupt backup is never restored silently.
//! Links are kept as links and never followed.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// One entry of a tree, by its path relative to the tree's root (`/`-separated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Entry {
    /// The path beneath the root.
    pub path: String,
    /// What it is.
    #[serde(flatten)]
    pub kind: EntryKind,
}

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum EntryKind {
    /// A directory, with its permission bits.
    Dir {
        /// Permission bits.
        mode: u32,
    },
    /// A regular file.
    File {
        /// Bytes.
        size: u64,
        /// SHA-256 of its content (hex).
        sha256: String,
        /// Permission bits.
        mode: u32,
    },
    /// A symbolic link, kept as it is.
    Link {
        /// Where it points.
        target: String,
    },
}

/// What copying a tree took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Copied {
    /// Bytes of every file of the tree.
    pub bytes: u64,
    /// Bytes written anew (the rest are links to the previous point).
    pub stored: u64,
}

/// Copies the tree at `from` into the new directory `to`, listing it; with
/// `base` (the previous point's directory and entries), files whose content
/// is unchanged are hard links to the previous point's copies.
pub fn snapshot(from: &Path, to: &Path, base: Option<(&Path, &[Entry])>) -> io::Result<(Vec<Entry>, Copied)> {
    let known: HashMap<&str, &EntryKind> = base
        .map(|(_, entries)| entries.iter().map(|e| (e.path.as_str(), &e.kind)).collect())
        .unwrap_or_default();
    let mut entries = Vec::new();
    let mut copied = Copied::default();
    std::fs::create_dir(to)?;
    let mut dirs = Vec::new();
    let mut written = vec![to.to_path_buf()];
    walk(from, "", &mut |rel, path, meta| {
        let target = to.join(rel);
        let mode = meta.permissions().mode() & 0o7777;
        let kind = if meta.file_type().is_symlink() {
            let link = std::fs::read_link(path)?;
            std::os::unix::fs::symlink(&link, &target)?;
            EntryKind::Link {
                target: utf8(&link, rel)?,
            }
        } else if meta.is_dir() {
            std::fs::create_dir(&target)?;
            written.push(target.clone());
            dirs.push((target, mode));
            EntryKind::Dir { mode }
        } else if meta.is_file() {
            // Only a file the previous point holds at this size may be linked:
            // it is hashed first; any other is hashed as it is copied.
            let linked = match (base, known.get(rel)) {
                (Some((dir, _)), Some(EntryKind::File { sha256, size, .. })) if *size == meta.len() => {
                    let now = hash(&mut crate::files::open_file(path)?)?;
                    // The previous point's copy is linked only when it still holds that content.
                    let intact = |p: &Path| {
                        crate::files::open_file(p)
                            .and_then(|mut f| hash(&mut f))
                            .is_ok_and(|h| h == now)
                    };
                    let from = dir.join(rel);
                    (now == (sha256.clone(), *size) && intact(&from) && std::fs::hard_link(&from, &target).is_ok())
                        .then_some(now)
                }
                _ => None,
            };
            let (sha256, size) = match linked {
                Some(same) => same,
                None => {
                    let (sha256, size) = copy(path, &target)?;
                    written.push(target.clone());
                    copied.stored += size;
                    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))?;
                    (sha256, size)
                }
            };
            copied.bytes += size;
            EntryKind::File { size, sha256, mode }
        } else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{rel}: not a regular file, directory or link; a backup cannot hold it"),
            ));
        };
        entries.push(Entry {
            path: rel.to_string(),
            kind,
        });
        Ok(())
    })?;
    // Directories take their modes last: a read-only one could not be filled.
    for (dir, mode) in dirs.into_iter().rev() {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o700))?;
    }
    sync(&written)?;
    Ok((entries, copied))
}

/// Whether the copy at `dir` still holds what `entries` list: every file
/// there, a regular file, with its size and checksum.
pub fn verify(dir: &Path, entries: &[Entry]) -> io::Result<()> {
    for entry in entries {
        if let EntryKind::File { size, sha256, .. } = &entry.kind {
            let path = beneath(dir, &entry.path)?;
            let (got, len) = hash(&mut crate::files::open_file(&path).map_err(|e| corrupt(&entry.path, e))?)?;
            if got != *sha256 || len != *size {
                return Err(corrupt(&entry.path, "its checksum differs from the backup's"));
            }
        }
    }
    Ok(())
}

/// Copies the tree a backup holds at `from` into the directory `to`
/// (emptied first), checking every file's checksum as it goes.
pub fn restore(from: &Path, to: &Path, entries: &[Entry]) -> io::Result<()> {
    if to.exists() {
        std::fs::remove_dir_all(to)?;
    }
    std::fs::create_dir_all(to)?;
    let mut dirs = Vec::new();
    let mut written = vec![to.to_path_buf()];
    // Entries go only into directories this restore made: never through a link.
    let mut made = std::collections::HashSet::new();
    for entry in entries {
        let target = beneath(to, &entry.path)?;
        if let Some((parent, _)) = entry.path.rsplit_once('/')
            && !made.contains(parent)
        {
            return Err(corrupt(
                &entry.path,
                "its directory is not listed before it (or is a link)",
            ));
        }
        if matches!(entry.kind, EntryKind::Dir { .. }) {
            made.insert(entry.path.as_str());
        }
        match &entry.kind {
            EntryKind::Dir { mode } => {
                std::fs::create_dir(&target)?;
                written.push(target.clone());
                dirs.push((target, *mode));
            }
            EntryKind::Link { target: link } => std::os::unix::fs::symlink(link, &target)?,
            EntryKind::File { size, sha256, mode } => {
                let source = beneath(from, &entry.path)?;
                let (got, len) = copy(&source, &target).map_err(|e| corrupt(&entry.path, e))?;
                written.push(target.clone());
                if got != *sha256 || len != *size {
                    let _ = std::fs::remove_file(&target);
                    return Err(corrupt(&entry.path, "its checksum differs from the backup's"));
                }
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(*mode & 0o777))?;
            }
        }
    }
    for (dir, mode) in dirs.into_iter().rev() {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o777))?;
    }
    sync(&written)
}

/// Flushes the files and directories a copy wrote, after all of them are
/// written (the kernel writes most back meanwhile, and only this copy's
/// data is waited for): the copies are on disk before any record names them.
fn sync(written: &[PathBuf]) -> io::Result<()> {
    for path in written {
        std::fs::File::open(path)?.sync_all()?;
    }
    Ok(())
}

/// A listed path beneath `dir`: plain names only (a tampered list cannot lead out).
fn beneath(dir: &Path, rel: &str) -> io::Result<PathBuf> {
    let path = Path::new(rel);
    let plain = !rel.is_empty() && path.components().all(|c| matches!(c, std::path::Component::Normal(_)));
    if !plain {
        return Err(corrupt(rel, "the list names a path that is not beneath the tree"));
    }
    Ok(dir.join(path))
}

fn corrupt(rel: &str, why: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{rel}: {why}: the backup is corrupt"),
    )
}

fn utf8(path: &Path, rel: &str) -> io::Result<String> {
    path.to_str()
        .map(String::from)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("{rel}: a name that is not UTF-8")))
}

/// Visits every entry beneath `dir`, depth first, names sorted, links not followed.
fn walk(
    dir: &Path,
    rel: &str,
    visit: &mut impl FnMut(&str, &Path, &std::fs::Metadata) -> io::Result<()>,
) -> io::Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(dir)?.collect::<io::Result<Vec<_>>>()?;
    names.sort_by_key(|e| e.file_name());
    for entry in names {
        let name = entry.file_name();
        let name = name.to_str().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{rel}/{name:?}: a name that is not UTF-8"),
            )
        })?;
        let here = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path)?;
        visit(&here, &path, &meta)?;
        if meta.is_dir() {
            walk(&path, &here, visit)?;
        }
    }
    Ok(())
}

/// A reader's SHA-256 (hex) and length.
fn hash(reader: &mut impl Read) -> io::Result<(String, u64)> {
    let mut sha = Sha256::new();
    let mut buf = vec![0; 64 << 10];
    let mut len = 0;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok((crate::files::hex(&sha.finalize()), len));
        }
        sha.update(&buf[..n]);
        len += n as u64;
    }
}

/// Copies a regular file (never following a link) to a new file, returning
/// the copy's SHA-256 and length.
fn copy(from: &Path, to: &Path) -> io::Result<(String, u64)> {
    let mut source = crate::files::open_file(from)?;
    let mut out = std::fs::OpenOptions::new().write(true).create_new(true).open(to)?;
    let mut sha = Sha256::new();
    let mut buf = vec![0; 64 << 10];
    let mut len = 0;
    loop {
        let n = source.read(&mut buf)?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        len += n as u64;
    }
    Ok((crate::files::hex(&sha.finalize()), len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        walk(dir, "", &mut |rel, path, meta| {
            if meta.is_file() {
                out.push((rel.to_string(), std::fs::read(path)?));
            }
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn an_incremental_copy_links_what_did_not_change_and_restores_byte_for_byte() {
        let tmp = tempfile::tempdir().unwrap();
        let volume = tmp.path().join("volume");
        std::fs::create_dir_all(volume.join("data/sub")).unwrap();
        std::fs::write(volume.join("data/big"), vec![7u8; 100_000]).unwrap();
        std::fs::write(volume.join("data/sub/small"), b"one").unwrap();
        std::os::unix::fs::symlink("../../etc/passwd", volume.join("data/link")).unwrap();
        let (full, copied) = snapshot(&volume, &tmp.path().join("s1"), None).unwrap();
        assert_eq!(
            copied,
            Copied {
                bytes: 100_003,
                stored: 100_003
            }
        );
        assert!(full.iter().any(|e| e.path == "data/link"
            && e.kind
                == EntryKind::Link {
                    target: "../../etc/passwd".into()
                }));
        std::fs::write(volume.join("data/sub/small"), b"two!").unwrap();
        std::fs::write(volume.join("new"), b"n").unwrap();
        let (inc, copied) = snapshot(&volume, &tmp.path().join("s2"), Some((&tmp.path().join("s1"), &full))).unwrap();
        assert_eq!(
            copied,
            Copied {
                bytes: 100_005,
                stored: 5
            },
            "only what changed is stored"
        );
        use std::os::unix::fs::MetadataExt;
        let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
        assert_eq!(
            ino(&tmp.path().join("s1/data/big")),
            ino(&tmp.path().join("s2/data/big"))
        );
        // Restored: the same bytes, the link a link (never followed).
        let back = tmp.path().join("back");
        restore(&tmp.path().join("s2"), &back, &inc).unwrap();
        assert_eq!(files(&back), files(&volume));
        assert_eq!(
            std::fs::read_link(back.join("data/link")).unwrap(),
            Path::new("../../etc/passwd")
        );
        // The first point still restores as it was, even with the second deleted.
        std::fs::remove_dir_all(tmp.path().join("s2")).unwrap();
        restore(&tmp.path().join("s1"), &back, &full).unwrap();
        assert_eq!(std::fs::read(back.join("data/sub/small")).unwrap(), b"one");
        assert!(!back.join("new").exists(), "restoring empties the target first");
        verify(&tmp.path().join("s1"), &full).unwrap();
        // A flipped byte is caught by verify and by restore.
        std::fs::write(tmp.path().join("s1/data/sub/small"), b"onE").unwrap();
        let err = verify(&tmp.path().join("s1"), &full).unwrap_err().to_string();
        assert_eq!(
            err,
            "data/sub/small: its checksum differs from the backup's: the backup is corrupt"
        );
        assert!(restore(&tmp.path().join("s1"), &back, &full).is_err());
        // A tampered list cannot lead out.
        let through = vec![
            Entry {
                path: "data".into(),
                kind: EntryKind::Link {
                    target: tmp.path().display().to_string(),
                },
            },
            Entry {
                path: "data/new".into(),
                kind: EntryKind::File {
                    size: 1,
                    sha256: String::new(),
                    mode: 0o644,
                },
            },
        ];
        let err = restore(&tmp.path().join("s1"), &back, &through)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not listed before it (or is a link)"), "{err}");
        assert!(!tmp.path().join("new").exists(), "nothing is written through a link");
        let evil = vec![Entry {
            path: "../x".into(),
            kind: EntryKind::Dir { mode: 0o755 },
        }];
        assert!(
            restore(&tmp.path().join("s1"), &back, &evil)
                .unwrap_err()
                .to_string()
                .contains("not beneath")
        );
    }

    #[test]
    fn a_fifo_cannot_be_backed_up() {
        let tmp = tempfile::tempdir().unwrap();
        let volume = tmp.path().join("v");
        std::fs::create_dir(&volume).unwrap();
        let fifo = std::ffi::CString::new(volume.join("pipe").to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let err = snapshot(&volume, &tmp.path().join("s"), None).unwrap_err().to_string();
        assert_eq!(
            err,
            "pipe: not a regular file, directory or link; a backup cannot hold it"
        );
    }
}
