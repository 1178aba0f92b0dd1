//! `hookhost serve`: many tenants drive their clusters' lifecycles over
//! HTTP through one process.
//!
//! Isolation is by construction: each tenant has its own engine over its
//! own state directory (`<state>/tenants/<name>/`: its apps, clusters,
//! operations, events, metadata tree and backups), so no id of one tenant
//! can name anything of another's; a request for another tenant's id finds
//! nothing and answers 404. What tenants share is the process's wasm
//! runtime, whose hook slots the fair scheduler ([`fair`]) hands out in
//! turn, each tenant within its own quotas ([`tenants::Quotas`]).
//!
//! A health loop ([`health`]) runs each active cluster's health checks and
//! monitor between its operations.
//!
//! On start the server resumes every operation of every tenant that was
//! running when it last stopped (the journal says where each was).

mod api;
pub mod bodies;
mod console;
mod error;
pub mod fair;
mod health;
pub mod openapi;
mod runner;
pub mod tenants;

pub use error::ApiError;
pub use tenants::{Quotas, Tenant, TenantError, Tenants};

use crate::engine::{Engine, EngineError};
use crate::runtime::{Runtime, RuntimeConfig, RuntimeError};
use crate::store::OperationStatus;
use fair::FairScheduler;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use thiserror::Error;

/// How a server is set up.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The state directory: tenants, and each tenant's state.
    pub state_dir: PathBuf,
    /// Keep each tenant's operations and metadata in this etcd (under
    /// `<namespace>tenants/<name>/`) instead of its state directory's file.
    pub store: Option<crate::etcd::EtcdUrl>,
    /// Where compiled components are cached.
    pub cache_dir: Option<PathBuf>,
    /// Hooks running at once in the whole process (shared fairly).
    pub hook_slots: u32,
    /// Health rounds this often instead of each role's `interval_sec` (tests, demos).
    pub health_interval: Option<std::time::Duration>,
}

/// Why the server could not start or serve.
#[derive(Debug, Error)]
pub enum ServerError {
    /// The tenants could not be read.
    #[error(transparent)]
    Tenants(#[from] TenantError),
    /// A tenant's engine could not be opened.
    #[error("tenant {tenant}: {source}")]
    Engine {
        /// The tenant.
        tenant: String,
        /// Why.
        #[source]
        source: Box<EngineError>,
    },
    /// The wasm runtime could not start.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The state directory is unusable.
    #[error("state directory {}: {why}", dir.display())]
    StateDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        why: String,
    },
}

/// The server: its tenants, their engines, the shared runtime.
#[derive(Clone)]
pub struct Server {
    shared: Arc<Shared>,
}

struct Shared {
    state_dir: PathBuf,
    store: Option<crate::etcd::EtcdUrl>,
    tenants: Tenants,
    runtime: Runtime,
    fair: Arc<FairScheduler>,
    /// The tenants file as last read, by its identity (a write replaces the file).
    known: Mutex<(Option<FileId>, Vec<Tenant>)>,
    open: Mutex<HashMap<String, Arc<TenantCtx>>>,
    health_interval: Option<std::time::Duration>,
}

/// One tenant's engine and what its requests share.
pub(crate) struct TenantCtx {
    pub(crate) name: String,
    pub(crate) engine: Engine,
    /// Its state directory (never shown to it).
    pub(crate) dir: PathBuf,
    pub(crate) quotas: Arc<Mutex<Quotas>>,
    /// Held while a request is checked against the quotas and submitted.
    pub(crate) admit: tokio::sync::Mutex<()>,
    /// Its clusters' latest monitor samples.
    pub(crate) monitor: health::MonitorWindow,
}

impl TenantCtx {
    /// Its quotas now.
    pub(crate) fn quotas(&self) -> Quotas {
        *self.quotas.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Server {
    /// Opens the state directory and starts the shared runtime.
    pub fn open(config: ServerConfig) -> Result<Server, ServerError> {
        crate::files::private_dir(&config.state_dir, true).map_err(|why| ServerError::StateDir {
            dir: config.state_dir.clone(),
            why,
        })?;
        // Canonical: replies are redacted by this path, and the engine's paths are canonical.
        let state_dir = config.state_dir.canonicalize().map_err(|e| ServerError::StateDir {
            dir: config.state_dir.clone(),
            why: e.to_string(),
        })?;
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: config.cache_dir,
            max_instances: config.hook_slots.max(1),
            ..RuntimeConfig::default()
        })?;
        Ok(Server {
            shared: Arc::new(Shared {
                tenants: Tenants::new(&state_dir),
                state_dir,
                store: config.store,
                runtime,
                fair: FairScheduler::new(config.hook_slots.max(1) as usize),
                known: Mutex::new((None, Vec::new())),
                open: Mutex::default(),
                health_interval: config.health_interval,
            }),
        })
    }

    /// The HTTP API, its OpenAPI document, the console and `/healthz`.
    pub fn router(&self) -> axum::Router {
        let document = openapi::document();
        let served = move || async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], document) };
        api::router(self.clone()).route("/openapi.json", axum::routing::get(served))
    }

    /// Serves on `listener` until Ctrl-C or SIGTERM, with the health loop;
    /// running operations stop where they are and resume when the server
    /// starts again.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        let watcher = tokio::spawn(health::watch(self.clone(), self.shared.health_interval));
        let served = self.serve_api(listener).await;
        watcher.abort();
        served
    }

    /// Serves the API alone (no health loop) until Ctrl-C or SIGTERM.
    pub async fn serve_api(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown_signal())
            .await
    }

    /// Resumes every tenant's interrupted operations in the background;
    /// returns how many.
    pub fn resume_all(&self) -> Result<usize, ServerError> {
        let mut resumed = 0;
        for tenant in self.shared.tenants.list()? {
            if !self.tenant_dir(&tenant.name).exists() {
                continue;
            }
            let ctx = self.tenant(&tenant)?;
            let store = ctx.engine.store();
            let ops = store.operations().map_err(|e| ServerError::Engine {
                tenant: tenant.name.clone(),
                source: Box::new(e.into()),
            })?;
            for op in ops {
                if op.status == OperationStatus::Running && ctx.engine.is_interrupted(&op) {
                    tracing::info!(tenant = %tenant.name, operation = %op.id, "resuming");
                    api::run_in_background(&ctx, op.id);
                    resumed += 1;
                }
            }
        }
        Ok(resumed)
    }

    /// The tenant a bearer token belongs to (the tenants file is read again when it changed).
    pub(crate) fn tenant_by_token(&self, token: &str) -> Result<Option<Arc<TenantCtx>>, ServerError> {
        let tenant = {
            let mut known = self.shared.known.lock().unwrap_or_else(|p| p.into_inner());
            let id = std::fs::metadata(self.shared.tenants_file())
                .ok()
                .map(|m| FileId::of(&m));
            if id != known.0 || id.is_none() {
                *known = (id, self.shared.tenants.list()?);
            }
            tenants::find_by_token(&known.1, token).cloned()
        };
        tenant.map(|t| self.tenant(&t)).transpose()
    }

    /// A tenant's context, its engine opened on first use; its quotas as kept now.
    fn tenant(&self, tenant: &Tenant) -> Result<Arc<TenantCtx>, ServerError> {
        let mut open = self.shared.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ctx) = open.get(&tenant.name) {
            *ctx.quotas.lock().unwrap_or_else(|p| p.into_inner()) = tenant.quotas;
            return Ok(ctx.clone());
        }
        let dir = self.tenant_dir(&tenant.name);
        let refuse = |why: String| ServerError::StateDir { dir: dir.clone(), why };
        crate::files::private_dir(&self.shared.state_dir.join("tenants"), false).map_err(refuse)?;
        crate::files::private_dir(&dir, false).map_err(refuse)?;
        let quotas = Arc::new(Mutex::new(tenant.quotas));
        let tenant_runner = runner::TenantRunner {
            shared: Arc::new(runner::Shared {
                runtime: self.shared.runtime.clone(),
                fair: self.shared.fair.clone(),
                tenant: tenant.name.clone(),
                quotas: quotas.clone(),
            }),
        };
        let store = self
            .shared
            .store
            .as_ref()
            .map(|url| url.nested(&format!("tenants/{}", tenant.name)));
        let engine = Engine::builder()
            .state_dir(&dir)
            .etcd(store)
            .runner(Arc::new(tenant_runner))
            .build()
            .map_err(|source| ServerError::Engine {
                tenant: tenant.name.clone(),
                source: Box::new(source),
            })?;
        let ctx = Arc::new(TenantCtx {
            name: tenant.name.clone(),
            engine,
            dir,
            quotas,
            admit: tokio::sync::Mutex::new(()),
            monitor: health::MonitorWindow::default(),
        });
        open.insert(tenant.name.clone(), ctx.clone());
        Ok(ctx)
    }

    fn tenant_dir(&self, name: &str) -> PathBuf {
        self.shared.state_dir.join("tenants").join(name)
    }
}

/// What tells one version of the tenants file from another: each write
/// replaces the file (a new inode), and the time and size change too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    inode: u64,
    modified: Option<SystemTime>,
    len: u64,
}

impl FileId {
    fn of(meta: &std::fs::Metadata) -> FileId {
        use std::os::unix::fs::MetadataExt;
        FileId {
            inode: meta.ino(),
            modified: meta.modified().ok(),
            len: meta.len(),
        }
    }
}

impl Shared {
    fn tenants_file(&self) -> PathBuf {
        self.state_dir.join("server").join("tenants.json")
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// `text` with a tenant's directory taken out: no reply names the server's files.
pub(crate) fn redact(text: &str, dir: &Path) -> String {
    let dir = dir.to_string_lossy();
    if dir.is_empty() {
        return text.to_string();
    }
    text.replace(&*dir, "<tenant>")
}
