//! Reading files users hand us: only regular files, never blocking on a FIFO
//! or a device, with a size limit so that `/dev/zero` or a huge file cannot
//! exhaust the host's memory.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Reads a regular file of at most `limit` bytes; opening it never blocks
/// (a FIFO would wait for a writer).
pub fn read_limited(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    read_open(file, limit)
}

/// Opens a regular file for reading without blocking or following a final link.
pub fn open_file(path: &Path) -> std::io::Result<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(file)
}

/// Reads the regular file `rel` beneath the directory `dir`, of at most
/// `limit` bytes: every step of the path is resolved inside `dir`, so
/// neither `..` nor a link (even one swapped in after a check) leads out.
pub fn read_beneath(dir: &Path, rel: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    read_open(open_beneath(dir, rel)?, limit)
}

/// Opens the regular file `rel` beneath the directory `dir` without
/// blocking; `..` and links may not lead out of `dir` (absolute links are
/// refused, relative ones followed inside), which is [`LEADS_OUT`].
pub fn open_beneath(dir: &Path, rel: &Path) -> std::io::Result<std::fs::File> {
    use cap_primitives::fs::{OpenOptions, OpenOptionsExt};
    let base = cap_primitives::fs::open_ambient_dir(dir, cap_primitives::ambient_authority())?;
    let mut options = OpenOptions::new();
    options.read(true).custom_flags(libc::O_NONBLOCK);
    let file = cap_primitives::fs::open(&base, rel, &options).map_err(|e| {
        // cap-std says so as a permission error; say it plainly.
        if e.kind() == std::io::ErrorKind::PermissionDenied && e.to_string().contains("outside") {
            std::io::Error::new(std::io::ErrorKind::PermissionDenied, LEADS_OUT)
        } else {
            e
        }
    })?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(file)
}

/// The error of a path that leads out of its directory.
pub const LEADS_OUT: &str =
    "a link (or `..`) that leads out of the app's directory; links must be relative and stay inside";

/// Reads an open file: a regular one of at most `limit` bytes.
fn read_open(file: std::fs::File, limit: u64) -> std::io::Result<Vec<u8>> {
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let len = meta.len();
    if len > limit {
        return Err(std::io::Error::other(format!("{len} bytes; the limit is {limit}")));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::other(format!("more than {limit} bytes")));
    }
    Ok(bytes)
}

/// Makes `dir` (private: 0700) if it is missing; an existing one must be a
/// directory of this user that nobody else may write to. `follow`: a
/// symlink to such a directory will do (the state directory; never the
/// compile cache, which holds native code).
pub fn private_dir(dir: &Path, follow: bool) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let meta = if follow {
        std::fs::metadata(dir)
    } else {
        std::fs::symlink_metadata(dir)
    };
    let meta = match meta {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| format!("cannot create it: {e}"));
        }
        Err(e) => return Err(e.to_string()),
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if !meta.is_dir() {
        Err(if follow {
            "it is not a directory"
        } else {
            "it is not a directory (or is a symlink)"
        }
        .into())
    } else if meta.uid() != me {
        Err(format!("it belongs to uid {}, not to this user ({me})", meta.uid()))
    } else if meta.mode() & 0o022 != 0 {
        Err(format!(
            "others may write to it (mode {:o}); chmod go-w it",
            meta.mode() & 0o777
        ))
    } else {
        Ok(())
    }
}

/// Reads a UTF-8 text file of at most `limit` bytes.
pub fn read_text_limited(path: &Path, limit: u64) -> std::io::Result<String> {
    String::from_utf8(read_limited(path, limit)?).map_err(|_| std::io::Error::other("not UTF-8 text"))
}

/// Most entries (files and directories) a copied tree may hold.
pub const MAX_TREE_ENTRIES: usize = 10_000;
/// Most bytes a copied tree's files may hold together.
pub const MAX_TREE_BYTES: u64 = 1 << 30;

/// Copies the directory tree `from` to `to` (made here; its parent must
/// exist): directories and regular files only, a link, FIFO or device
/// anywhere is refused by its path, at most [`MAX_TREE_ENTRIES`] entries and
/// [`MAX_TREE_BYTES`]. Returns the tree's digest: SHA-256 (hex) over each
/// entry's path, kind and content, in path order. On error `to` may hold
/// part of the tree; the caller removes it.
pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<String> {
    walk_tree(from, Some(to))
}

/// The digest [`copy_tree`] would return, with the same checks, copying nothing.
pub fn tree_digest(dir: &Path) -> std::io::Result<String> {
    walk_tree(dir, None)
}

fn walk_tree(from: &Path, to: Option<&Path>) -> std::io::Result<String> {
    use sha2::Digest;
    let mut walk = TreeWalk {
        hasher: sha2::Sha256::new(),
        entries: 0,
        bytes: 0,
    };
    if !std::fs::symlink_metadata(from)?.is_dir() {
        return Err(std::io::Error::other(format!("{}: not a directory", from.display())));
    }
    if let Some(to) = to {
        std::fs::create_dir(to)?;
    }
    walk.copy_dir(from, to, Path::new(""))?;
    Ok(hex(&walk.hasher.finalize()))
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct TreeWalk {
    hasher: sha2::Sha256,
    entries: usize,
    bytes: u64,
}

impl TreeWalk {
    fn copy_dir(&mut self, from: &Path, to: Option<&Path>, rel: &Path) -> std::io::Result<()> {
        use sha2::Digest;
        let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(from)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for name in names {
            let (src, dst, rel) = (from.join(&name), to.map(|to| to.join(&name)), rel.join(&name));
            self.entries += 1;
            if self.entries > MAX_TREE_ENTRIES {
                return Err(std::io::Error::other(format!(
                    "more than {MAX_TREE_ENTRIES} files and directories"
                )));
            }
            let meta = std::fs::symlink_metadata(&src)?;
            let shown = rel.display();
            if meta.is_dir() {
                self.hasher.update(format!("d {shown}\n"));
                if let Some(dst) = &dst {
                    std::fs::create_dir(dst)?;
                }
                self.copy_dir(&src, dst.as_deref(), &rel)?;
            } else if meta.is_file() {
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
                    .open(&src)?;
                let len = file.metadata()?.len();
                self.bytes += len;
                if self.bytes > MAX_TREE_BYTES {
                    return Err(std::io::Error::other(format!("more than {MAX_TREE_BYTES} bytes")));
                }
                self.hasher.update(format!("f {shown} {len}\n"));
                let mut out = dst.as_ref().map(std::fs::File::create).transpose()?;
                let mut reader = file.take(len);
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = reader.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    self.hasher.update(&buf[..n]);
                    if let Some(out) = &mut out {
                        std::io::Write::write_all(out, &buf[..n])?;
                    }
                }
            } else {
                let what = if meta.file_type().is_symlink() {
                    "a link"
                } else {
                    "not a regular file or directory"
                };
                return Err(std::io::Error::other(format!(
                    "{shown}: {what}; only files and directories are copied"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_devices_directories_fifos_and_big_files() {
        assert_eq!(
            read_limited(Path::new("/dev/zero"), 10).unwrap_err().to_string(),
            "not a regular file"
        );
        assert_eq!(
            read_limited(Path::new("/"), 10).unwrap_err().to_string(),
            "not a regular file"
        );
        let dir = tempfile::tempdir().unwrap();
        // A FIFO nobody writes to: refused at once instead of waiting forever.
        let fifo = dir.path().join("x.wasm");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        assert_eq!(read_limited(&fifo, 10).unwrap_err().to_string(), "not a regular file");
        let f = dir.path().join("f");
        std::fs::write(&f, "hello").unwrap();
        assert_eq!(read_limited(&f, 5).unwrap(), b"hello");
        assert_eq!(read_limited(&f, 4).unwrap_err().to_string(), "5 bytes; the limit is 4");
        std::fs::write(&f, [0xff, 0xfe]).unwrap();
        assert_eq!(read_text_limited(&f, 5).unwrap_err().to_string(), "not UTF-8 text");
    }

    #[test]
    fn reading_beneath_a_directory_never_leaves_it() {
        let (app, outside) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        std::fs::write(app.path().join("ok.wasm"), "c").unwrap();
        std::fs::create_dir(app.path().join("sub")).unwrap();
        std::os::unix::fs::symlink("../ok.wasm", app.path().join("sub/in.wasm")).unwrap();
        std::os::unix::fs::symlink(app.path().join("ok.wasm"), app.path().join("absolute.wasm")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), app.path().join("out.wasm")).unwrap();
        std::os::unix::fs::symlink(outside.path(), app.path().join("elsewhere")).unwrap();
        let read = |rel: &str| read_beneath(app.path(), Path::new(rel), 10);
        assert_eq!(read("ok.wasm").unwrap(), b"c");
        assert_eq!(read("sub/in.wasm").unwrap(), b"c", "a relative link inside is followed");
        for escaping in [
            "out.wasm",
            "elsewhere/secret",
            "../secret",
            "sub/../../secret",
            "absolute.wasm",
        ] {
            assert_eq!(read(escaping).unwrap_err().to_string(), LEADS_OUT, "{escaping}");
        }
        assert_eq!(read("sub").unwrap_err().to_string(), "not a regular file");
    }

    #[test]
    fn a_tree_copies_files_and_directories_and_refuses_links_and_fifos() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("bin")).unwrap();
        std::fs::write(src.join("bin/run.sh"), "echo hi").unwrap();
        std::fs::write(src.join("VERSION"), "2").unwrap();
        let digest = copy_tree(&src, &dir.path().join("a")).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a/bin/run.sh")).unwrap(),
            "echo hi"
        );
        assert_eq!(
            copy_tree(&src, &dir.path().join("b")).unwrap(),
            digest,
            "the same tree, the same digest"
        );
        assert_eq!(tree_digest(&src).unwrap(), digest);
        std::fs::write(src.join("VERSION"), "3").unwrap();
        assert_ne!(copy_tree(&src, &dir.path().join("c")).unwrap(), digest);
        std::os::unix::fs::symlink("/etc/passwd", src.join("bin/passwd")).unwrap();
        let e = copy_tree(&src, &dir.path().join("d")).unwrap_err().to_string();
        assert!(e.contains("bin/passwd: a link"), "{e}");
        std::fs::remove_file(src.join("bin/passwd")).unwrap();
        let c_path = std::ffi::CString::new(src.join("fifo").to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let e = copy_tree(&src, &dir.path().join("e")).unwrap_err().to_string();
        assert!(e.contains("fifo: not a regular file"), "{e}");
        assert!(copy_tree(&src.join("VERSION"), &dir.path().join("f")).is_err());
    }
}
