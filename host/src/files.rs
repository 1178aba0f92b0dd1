//! Reading files users hand us: only regular files, never blocking on a FIFO
//! or a device, with a size limit so that `/dev/zero` or a huge file cannot
//! exhaust the host's memory.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Opens a file for reading without blocking (a FIFO would wait for a
/// writer) and refuses anything but a regular file.
fn open_regular(path: &Path) -> std::io::Result<(std::fs::File, u64)> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok((file, meta.len()))
}

/// Reads a regular file of at most `limit` bytes.
pub fn read_limited(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let (file, len) = open_regular(path)?;
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

/// Reads a UTF-8 text file of at most `limit` bytes.
pub fn read_text_limited(path: &Path, limit: u64) -> std::io::Result<String> {
    String::from_utf8(read_limited(path, limit)?).map_err(|_| std::io::Error::other("not UTF-8 text"))
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
}
