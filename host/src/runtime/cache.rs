//! Compiled components on disk, keyed by content hash and engine.
//!
//! Compiling a component takes 0.1–3 s; loading the serialized artifact takes
//! under a millisecond. Artifacts are only ever read from the host's own
//! cache directory (created 0700), which is why deserializing them is sound.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where a loaded component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheStatus {
    /// Read from the on-disk cache.
    Hit,
    /// Compiled now (and stored, if the cache is on).
    Compiled,
}

/// The on-disk cache of compiled components; `dir: None` turns it off.
pub(crate) struct ComponentCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

/// Feeds `Hash` output into SHA-256 so the key is stable across processes.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl ComponentCache {
    pub(crate) fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        let dir = dir.filter(|d| match trusted_dir(d) {
            Ok(()) => true,
            Err(why) => {
                tracing::warn!("not caching compiled components in {}: {why}", d.display());
                false
            }
        });
        let mut hasher = ShaHasher(Sha256::new());
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = hex(&hasher.0.finalize()[..8]);
        ComponentCache { dir, engine_key }
    }

    /// The compiled component for `bytes`, from the cache or compiled now.
    pub(crate) fn load(
        &self,
        engine: &Engine,
        sha256: &[u8; 32],
        bytes: &[u8],
    ) -> wasmtime::Result<(Component, CacheStatus)> {
        let Some(dir) = &self.dir else {
            return Ok((Component::new(engine, bytes)?, CacheStatus::Compiled));
        };
        let file = dir.join(format!("{}-{}.cwasm", hex(sha256), self.engine_key));
        // Read, not mapped: a cache file truncated while mapped would crash the host.
        if let Ok(artifact) = read_own_file(&file) {
            // SAFETY: the file is in our private cache directory and was
            // written by `store` below from this engine's own compilation;
            // wasmtime still checks its header and engine compatibility.
            match unsafe { Component::deserialize(engine, &artifact) } {
                Ok(component) => return Ok((component, CacheStatus::Hit)),
                Err(e) => tracing::warn!("discarding unusable cache entry {}: {e}", file.display()),
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Err(e) = store(dir, &file, &component) {
            tracing::warn!("cannot cache the compiled component in {}: {e}", dir.display());
        }
        Ok((component, CacheStatus::Compiled))
    }
}

/// Writes atomically: a crash leaves either no entry or a whole one.
fn store(dir: &Path, file: &Path, component: &Component) -> wasmtime::Result<()> {
    create_private_dir(dir)?;
    let artifact = component.serialize()?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(&artifact)?;
    tmp.persist(file)?;
    Ok(())
}

/// Only a directory this user alone can write may hold code we will run:
/// anyone else could plant native code there.
fn trusted_dir(dir: &Path) -> Result<(), String> {
    crate::files::private_dir(dir, false)
}

/// Reads a cache entry that is a regular file of ours, not through a symlink.
fn read_own_file(file: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(file)?;
    let meta = f.metadata()?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    if !meta.is_file() || meta.uid() != unsafe { libc::geteuid() } {
        return Err(std::io::Error::other("not a regular file of ours"));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    f.read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The default cache directory: `$HOOKHOST_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/hookhost`, else `~/.cache/hookhost`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    env("HOOKHOST_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("hookhost")))
        .or_else(|| env("HOME").map(|d| d.join(".cache").join("hookhost")))
}
