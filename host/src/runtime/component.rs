//! Loading a hook component: read, check, compile (or take from the cache),
//! check its world, and pre-link it for fast instantiation.

use super::cache::{CacheStatus, ComponentCache, hex};
use super::failure::HookFailure;
use super::state::HostState;
use crate::hook::Service;
use crate::hook::bindings::{HOOKS_EXPORT, PACKAGE, RoleHooksPre};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;
use wasmtime::Engine;
use wasmtime::component::Linker;

/// A loaded, checked and pre-linked hook component; cheap to clone.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

struct PluginInner {
    path: PathBuf,
    sha256: [u8; 32],
    size: usize,
    cache: CacheStatus,
    imports: Vec<String>,
    services: Vec<Service>,
    pre: RoleHooksPre<HostState>,
}

impl Plugin {
    /// The component file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The file's SHA-256, hex.
    pub fn sha256(&self) -> String {
        hex(&self.inner.sha256)
    }

    pub(crate) fn sha256_bytes(&self) -> &[u8; 32] {
        &self.inner.sha256
    }

    /// The file's size in bytes.
    pub fn size(&self) -> usize {
        self.inner.size
    }

    /// Whether it came from the compile cache.
    pub fn cache_status(&self) -> CacheStatus {
        self.inner.cache
    }

    /// The WIT package it was built against (loading checks it is this host's).
    pub fn package(&self) -> &'static str {
        PACKAGE
    }

    /// The interfaces it imports (WASI and `hookhost:hooks`).
    pub fn imports(&self) -> &[String] {
        &self.inner.imports
    }

    /// The services it implements (asked once, when it was loaded).
    pub fn services(&self) -> &[Service] {
        &self.inner.services
    }

    /// The same component, knowing its services.
    pub(crate) fn with_services(&self, services: Vec<Service>) -> Plugin {
        let inner = &self.inner;
        Plugin {
            inner: Arc::new(PluginInner {
                path: inner.path.clone(),
                sha256: inner.sha256,
                size: inner.size,
                cache: inner.cache,
                imports: inner.imports.clone(),
                services,
                pre: inner.pre.clone(),
            }),
        }
    }

    pub(crate) fn pre(&self) -> &RoleHooksPre<HostState> {
        &self.inner.pre
    }

    pub(crate) fn engine(&self) -> &Engine {
        self.inner.pre.engine()
    }
}

/// Why a file is not a usable hook component; every variant names the file.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The file cannot be read (missing, not a regular file, too large).
    #[error("{path}: cannot read: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The file is not WebAssembly at all.
    #[error("{path}: not a WebAssembly file (it starts with {head})")]
    NotWasm {
        /// The file.
        path: PathBuf,
        /// Its first bytes, escaped.
        head: String,
    },
    /// A core module, not a component.
    #[error(
        "{path}: a core WebAssembly module, not a component; build hooks with `--target wasm32-wasip2` (the output is a component)"
    )]
    CoreModule {
        /// The file.
        path: PathBuf,
    },
    /// The binary does not validate or compile.
    #[error("{path}: invalid component: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The validator's message.
        message: String,
    },
    /// A component of another world.
    #[error("{path}: not a hook component: it exports [{exports}], not {HOOKS_EXPORT}")]
    WrongWorld {
        /// The file.
        path: PathBuf,
        /// What it exports, comma separated.
        exports: String,
    },
    /// A hook component built against another version of the WIT package.
    #[error("{path}: built against {found}, but this host speaks {PACKAGE}; rebuild it with a matching hookhost-sdk")]
    WrongVersion {
        /// The file.
        path: PathBuf,
        /// The interface it exports or imports.
        found: String,
    },
    /// It exports the hooks interface, but not all of it or with other types.
    #[error("{path}: exports {HOOKS_EXPORT} but not as this host defines it: {detail}")]
    BadExports {
        /// The file.
        path: PathBuf,
        /// What is missing or different.
        detail: String,
    },
    /// It cannot say which services it implements.
    #[error("{0}")]
    Services(HookFailure),
    /// It imports something the host does not provide.
    #[error("{path}: imports {detail}, which the hook sandbox does not provide")]
    UnsupportedImport {
        /// The file.
        path: PathBuf,
        /// The import.
        detail: String,
    },
}

impl LoadError {
    /// The error without anything read from the file: what a tenant may be
    /// shown of a file it handed in (`cluster create` copies no bytes into messages).
    pub fn without_content(&self) -> String {
        match self {
            LoadError::NotWasm { path, .. } => format!("{}: not a WebAssembly file", path.display()),
            other => other.to_string(),
        }
    }
}

/// The SHA-256 of a component's bytes.
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Checks, compiles and pre-links the component read from `path`.
pub(crate) fn load(
    engine: &Engine,
    linker: &Linker<HostState>,
    cache: &ComponentCache,
    path: &Path,
    bytes: &[u8],
    sha256: [u8; 32],
) -> Result<Plugin, LoadError> {
    let path_buf = || path.to_path_buf();
    check_header(path, bytes)?;

    let (component, cache_status) = cache.load(engine, &sha256, bytes).map_err(|e| LoadError::Invalid {
        path: path_buf(),
        message: format!("{e:#}"),
    })?;

    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(engine).map(|(name, _)| name.to_string()).collect();
    if !exports.iter().any(|e| e == HOOKS_EXPORT) {
        return Err(match exports.iter().find(|e| e.starts_with("hookhost:hooks/")) {
            Some(found) => LoadError::WrongVersion {
                path: path_buf(),
                found: found.clone(),
            },
            None => LoadError::WrongWorld {
                path: path_buf(),
                exports: exports.join(", "),
            },
        });
    }
    let imports: Vec<String> = ty.imports(engine).map(|(name, _)| name.to_string()).collect();
    for import in &imports {
        if import.starts_with("hookhost:") && !import.ends_with(&format!("@{}", version_of(PACKAGE))) {
            return Err(LoadError::WrongVersion {
                path: path_buf(),
                found: import.clone(),
            });
        }
    }

    let instance_pre = linker
        .instantiate_pre(&component)
        .map_err(|e| LoadError::UnsupportedImport {
            path: path_buf(),
            detail: import_detail(&e),
        })?;
    let pre = RoleHooksPre::new(instance_pre).map_err(|e| LoadError::BadExports {
        path: path_buf(),
        detail: format!("{e:#}"),
    })?;
    Ok(Plugin {
        inner: Arc::new(PluginInner {
            path: path_buf(),
            sha256,
            size: bytes.len(),
            cache: cache_status,
            imports,
            services: Vec::new(),
            pre,
        }),
    })
}

/// Tells components from core modules and from files that are not wasm.
fn check_header(path: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    const MAGIC: &[u8] = b"\0asm";
    const COMPONENT: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];
    const CORE_MODULE: [u8; 4] = [0x01, 0x00, 0x00, 0x00];
    let path = path.to_path_buf();
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        let head: String = bytes
            .iter()
            .take(8)
            .flat_map(|b| std::ascii::escape_default(*b))
            .map(char::from)
            .collect();
        return Err(LoadError::NotWasm {
            path,
            head: format!("\"{head}\""),
        });
    }
    match [bytes[4], bytes[5], bytes[6], bytes[7]] {
        COMPONENT => Ok(()),
        CORE_MODULE => Err(LoadError::CoreModule { path }),
        v => Err(LoadError::Invalid {
            path,
            message: format!("unknown WebAssembly version/layer {v:02x?}"),
        }),
    }
}

fn version_of(package: &str) -> &str {
    package.rsplit_once('@').map(|(_, v)| v).unwrap_or_default()
}

/// The linker's complaint, without its generic preamble.
fn import_detail(e: &wasmtime::Error) -> String {
    let text = format!("{e:#}");
    text.strip_prefix("component imports ").unwrap_or(&text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_told_apart() {
        let refuse = |bytes: &[u8]| check_header(Path::new("x.wasm"), bytes).err().map(|e| e.to_string());
        assert_eq!(refuse(b"\0asm\x0d\x00\x01\x00rest"), None);
        assert!(
            refuse(b"\0asm\x01\x00\x00\x00")
                .unwrap()
                .contains("a core WebAssembly module")
        );
        assert_eq!(
            refuse(b"#!/bin/sh\n").unwrap(),
            "x.wasm: not a WebAssembly file (it starts with \"#!/bin/s\")"
        );
        assert!(refuse(b"\0asm").unwrap().contains("not a WebAssembly file"));
        assert!(
            refuse(b"\0asm\x02\x00\x00\x00")
                .unwrap()
                .contains("unknown WebAssembly version")
        );
    }
}
