//! The hook runner: what the engine needs to load components and run their
//! hooks. The in-process wasmtime [`Runtime`] is one; tests use a fake, so
//! that the executor is tested without wasm. A hook may run more than once
//! for one step (a resumed operation re-runs a hook a crash cut off, with
//! `attempt` + 1): hooks, like providers, must be idempotent.

use crate::hook::{ConfigFile, Service};
use crate::runtime::{Call, LoadError, Outcome, Plugin, Request, Runtime};
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed future of the runner's methods.
pub type RunnerFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Loads hook components.
pub trait HookRunner: Send + Sync {
    /// Loads and checks the component at `path` (cheap when it is loaded already).
    fn load<'a>(&'a self, path: &'a Path) -> RunnerFuture<'a, Result<Arc<dyn Component>, LoadError>>;
    /// Loads and checks a component from bytes already read; `path` names it.
    fn load_bytes<'a>(
        &'a self,
        path: &'a Path,
        bytes: Vec<u8>,
    ) -> RunnerFuture<'a, Result<Arc<dyn Component>, LoadError>>;
}

/// A loaded component: what it implements, and its hooks.
pub trait Component: Send + Sync {
    /// The services it implements.
    fn services(&self) -> &[Service];
    /// The SHA-256 (hex) of its bytes.
    fn sha256(&self) -> String;
    /// Runs one service as the call's node.
    fn run<'a>(&'a self, call: &'a Call, request: &'a Request) -> RunnerFuture<'a, Outcome<Option<String>>>;
    /// Renders the call's node's config files.
    fn render<'a>(&'a self, call: &'a Call) -> RunnerFuture<'a, Outcome<Vec<ConfigFile>>>;
}

/// A component loaded by the wasmtime runtime.
struct Loaded {
    runtime: Runtime,
    plugin: Plugin,
}

impl Runtime {
    fn loaded(&self, plugin: Plugin) -> Arc<dyn Component> {
        Arc::new(Loaded {
            runtime: self.clone(),
            plugin,
        })
    }
}

impl HookRunner for Runtime {
    fn load<'a>(&'a self, path: &'a Path) -> RunnerFuture<'a, Result<Arc<dyn Component>, LoadError>> {
        Box::pin(async move { Ok(self.loaded(Runtime::load(self, path).await?)) })
    }

    fn load_bytes<'a>(
        &'a self,
        path: &'a Path,
        bytes: Vec<u8>,
    ) -> RunnerFuture<'a, Result<Arc<dyn Component>, LoadError>> {
        Box::pin(async move { Ok(self.loaded(Runtime::load_bytes(self, path, bytes).await?)) })
    }
}

impl Component for Loaded {
    fn services(&self) -> &[Service] {
        self.plugin.services()
    }

    fn sha256(&self) -> String {
        self.plugin.sha256()
    }

    fn run<'a>(&'a self, call: &'a Call, request: &'a Request) -> RunnerFuture<'a, Outcome<Option<String>>> {
        Box::pin(self.runtime.run(&self.plugin, call, request))
    }

    fn render<'a>(&'a self, call: &'a Call) -> RunnerFuture<'a, Outcome<Vec<ConfigFile>>> {
        Box::pin(self.runtime.render(&self.plugin, call))
    }
}
