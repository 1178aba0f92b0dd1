//! The per-invocation store data and the host side of the WIT imports.

use super::sandbox::{LogSink, MemoryLimiter};
use crate::hook::bindings::hookhost::hooks::{log, metadata, types};
use crate::metadata::{ClusterView, ViewError};
use std::time::Instant;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Everything one store holds; dropped with the store after the call.
pub(crate) struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) view: ClusterView,
    pub(crate) logs: LogSink,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) deadline: Instant,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for HostState {}

impl From<ViewError> for metadata::MetadataError {
    fn from(e: ViewError) -> Self {
        match e {
            ViewError::NotVisible(path) => metadata::MetadataError::NotVisible(path),
            ViewError::InvalidPath(e) => metadata::MetadataError::InvalidPath(e.to_string()),
            other => metadata::MetadataError::InvalidPath(other.to_string()),
        }
    }
}

type Read<T> = wasmtime::Result<Result<T, metadata::MetadataError>>;

impl metadata::Host for HostState {
    fn get(&mut self, path: String) -> Read<Option<String>> {
        Ok(self.view.get(&path).map_err(Into::into))
    }

    fn children(&mut self, path: String) -> Read<Vec<String>> {
        Ok(self.view.children(&path).map_err(Into::into))
    }

    fn subtree(&mut self, path: String) -> Read<Option<String>> {
        Ok(self
            .view
            .subtree(&path)
            .map(|v| v.map(|v| v.to_string()))
            .map_err(Into::into))
    }

    fn revision(&mut self) -> wasmtime::Result<u64> {
        Ok(self.view.revision())
    }
}

impl log::Host for HostState {
    fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            log::Level::Trace => "trace",
            log::Level::Debug => "debug",
            log::Level::Info => "info",
            log::Level::Warn => "warn",
            log::Level::Error => "error",
        };
        tracing::debug!(target: "hookhost::hook", level, "{message}");
        self.logs.push(level, message).map_err(wasmtime::Error::new)
    }
}
