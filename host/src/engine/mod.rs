//! The one engine: takes an operation request, asks the request's flow
//! whether it may run and for its plan, and runs any plan with the one
//! executor. It holds no rule about any operation (those are in `flows`).
//!
//! An operation goes request → flow (admit, prepare, plan) → executor →
//! hook runner. The engine talks to its collaborators through traits: an
//! [`OperationStore`], a [`MetadataStore`], a [`Provider`] and a
//! [`HookRunner`]; [`Engine::builder`] wires them, with the embedded
//! defaults (redb, the local provider) for a state directory.
//!
//! The executor's parts, each in its own file: `executor` (the run loop:
//! journal, recovery branch, plan variables, the end of an operation),
//! `step` (what a step's handler gets), `dispatch` (which handler runs an
//! action), and one handler file per action family: `provider`, `metadata`,
//! `services`, `render`, `record`; `invocation` and `journal` are what the
//! hook-calling handlers share.

mod app;
mod backup;
mod dispatch;
mod executor;
mod health;
mod invocation;
mod journal;
mod metadata;
mod network;
mod provider;
mod record;
mod render;
mod runner;
mod services;
mod step;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
mod versions;
mod view;

pub use app::{PAYLOAD_DIR, app_id_of, spec_file};
pub use health::{Checked, Round, Sample, watched_roles};

use app::Prepared;
pub use runner::{Component, HookRunner, RunnerFuture};

use crate::apps::{AppVersion, Catalog, CatalogError};
use crate::backups::{BackupError, Backups};
use crate::cluster::{Cluster, ClusterStatus, now};
use crate::durable::{Db, DbError};
use crate::flows::{Loaded, Refusal, flow_of};
use crate::hook::NameError;
use crate::metadata::{MetadataStore, RedbStore, Snapshot};
use crate::plan::{Plan, PlanError};
use crate::provider::{LocalProvider, Provider};
use crate::request::OperationRequest;
use crate::runtime::LoadError;
use crate::spec::{Problem, SpecError};
use crate::store::{Event, Operation, OperationStatus, OperationStore, RedbOps, StepOutcome, StoreError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

/// Why an operation could not be started or run.
#[derive(Debug, Error)]
pub enum EngineError {
    /// The spec is unusable.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The app catalog refused or failed (an unknown version, a taken name).
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// A backup cannot be found, kept or used.
    #[error(transparent)]
    Backup(#[from] BackupError),
    /// The spec's components do not fit it.
    #[error("{file}: {}", problems.iter().map(Problem::to_string).collect::<Vec<_>>().join(&format!("\n{}: ", file.display())))]
    Components {
        /// The spec file.
        file: PathBuf,
        /// Every problem found.
        problems: Vec<Problem>,
    },
    /// The request may not run on the cluster as it is.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The operation store failed or refused (a busy cluster, an unknown id).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The metadata store failed.
    #[error(transparent)]
    Metadata(#[from] crate::metadata::StoreError),
    /// The state directory's file cannot be opened.
    #[error(transparent)]
    Open(#[from] DbError),
    /// A role's component cannot be loaded.
    #[error("role {role}: {source}")]
    Load {
        /// The role.
        role: String,
        /// Why.
        #[source]
        source: LoadError,
    },
    /// The app's components cannot be kept as images.
    #[error("cannot keep the components of {file}: {source}")]
    Images {
        /// The spec file.
        file: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The provider failed on a node.
    #[error("node {node}: {source}")]
    Provider {
        /// The node.
        node: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The plan cannot run as written.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The plan names a service that is no service.
    #[error("the plan names a bad service: {0}")]
    Service(#[from] NameError),
    /// A task of the engine stopped (it panicked).
    #[error("an engine task stopped: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A metadata read cannot be answered (a bad path, an unknown node).
    #[error("{0}")]
    View(String),
    /// The etcd store cannot be used (unreachable, or not built in).
    #[error("{0}")]
    Etcd(String),
    /// The cluster's nodes are on another host of the shared store.
    #[error("{what} runs on host {host}, where the nodes of cluster {cluster} are: run this there")]
    Elsewhere {
        /// The operation, or the cluster's last operation.
        what: String,
        /// The cluster.
        cluster: String,
        /// Its host (`<machine>:<state directory>`).
        host: String,
    },
    /// The builder lacks a collaborator and has no state directory to make one.
    #[error("the engine needs {0}: give it, or a state directory")]
    Incomplete(&'static str),
}

/// Watches an operation as it runs (progress bars, tests). Every method has a no-op default.
pub trait Observer: Send + Sync {
    /// A step starts (its journal index: the main part, then the recovery part).
    fn step_started(&self, _op: &Operation, _index: usize) {}
    /// Hooks of a step are about to run.
    fn invocations_started(&self, _count: usize) {}
    /// A hook invocation ended.
    fn invocation_ended(&self, _event: &Event) {}
    /// A step ended.
    fn step_ended(&self, _op: &Operation, _index: usize, _outcome: StepOutcome) {}
}

struct Quiet;
impl Observer for Quiet {}

/// The lifecycle engine.
#[derive(Clone)]
pub struct Engine {
    store: Arc<dyn OperationStore>,
    tree: Arc<dyn MetadataStore>,
    provider: Arc<dyn Provider>,
    runner: Arc<dyn HookRunner>,
    catalog: Arc<Catalog>,
    backups: Arc<Backups>,
    observer: Arc<dyn Observer>,
    /// The last cluster snapshot hooks read, shared while the store's
    /// revision stays the same (a rolling operation's many steps read one).
    shared: Arc<std::sync::Mutex<Option<SharedSnapshot>>>,
    /// Per cluster: held by a health round, and by an operation's start (a
    /// round never overlaps an operation).
    gates: Arc<std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    /// This host (`<machine>:<state directory>`), when the store is shared
    /// by many (etcd): a cluster's operations run where its nodes are.
    host: Option<String>,
}

/// A snapshot hooks read, by the tree prefix it holds.
type SharedSnapshot = (String, Arc<Snapshot>);

/// Wires an [`Engine`]: each collaborator given, or the embedded default of
/// the state directory (the redb file, the local provider under `nodes/`).
#[derive(Default)]
pub struct EngineBuilder {
    state_dir: Option<PathBuf>,
    etcd: Option<crate::etcd::EtcdUrl>,
    store: Option<Arc<dyn OperationStore>>,
    tree: Option<Arc<dyn MetadataStore>>,
    provider: Option<Arc<dyn Provider>>,
    runner: Option<Arc<dyn HookRunner>>,
    catalog: Option<Arc<Catalog>>,
    backups: Option<Arc<Backups>>,
    observer: Option<Arc<dyn Observer>>,
}

impl EngineBuilder {
    /// The state directory the defaults live in.
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// Keeps operations and the metadata in etcd (`--store`) instead of the
    /// state directory's file; `None` leaves the default.
    pub fn etcd(mut self, url: Option<crate::etcd::EtcdUrl>) -> Self {
        self.etcd = url;
        self
    }

    /// The operation store [default: redb in the state directory].
    pub fn operations(mut self, store: Arc<dyn OperationStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The metadata store [default: redb in the state directory].
    pub fn metadata(mut self, tree: Arc<dyn MetadataStore>) -> Self {
        self.tree = Some(tree);
        self
    }

    /// The provider [default: the local provider in the state directory].
    pub fn provider(mut self, provider: Arc<dyn Provider>) -> Self {
        self.provider = Some(provider);
        self
    }

    /// What runs the hooks (required: usually the [`crate::runtime::Runtime`]).
    pub fn runner(mut self, runner: Arc<dyn HookRunner>) -> Self {
        self.runner = Some(runner);
        self
    }

    /// The registered app versions [default: the state directory's].
    pub fn catalog(mut self, catalog: Catalog) -> Self {
        self.catalog = Some(Arc::new(catalog));
        self
    }

    /// Where backups are kept [default: the state directory's].
    pub fn backups(mut self, backups: Backups) -> Self {
        self.backups = Some(Arc::new(backups));
        self
    }

    /// Who watches operations run [default: nobody].
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The engine.
    pub fn build(mut self) -> Result<Engine, EngineError> {
        let mut host = None;
        if let Some(url) = self.etcd.take() {
            let (store, tree) = etcd_stores(&url)?;
            self.store = self.store.or(Some(store));
            self.tree = self.tree.or(Some(tree));
            host = self.state_dir.as_deref().map(host_of);
        }
        let db = match (&self.state_dir, self.store.is_some() && self.tree.is_some()) {
            (Some(dir), false) => Some(Db::open(dir)?),
            _ => None,
        };
        let store: Arc<dyn OperationStore> = match (self.store, &db) {
            (Some(store), _) => store,
            (None, Some(db)) => Arc::new(RedbOps::new(db.clone())?),
            (None, None) => return Err(EngineError::Incomplete("an operation store")),
        };
        let tree: Arc<dyn MetadataStore> = match (self.tree, &db) {
            (Some(tree), _) => tree,
            (None, Some(db)) => Arc::new(RedbStore::new(db.clone())?),
            (None, None) => return Err(EngineError::Incomplete("a metadata store")),
        };
        let provider: Arc<dyn Provider> = match (self.provider, &self.state_dir) {
            (Some(provider), _) => provider,
            (None, Some(dir)) => Arc::new(LocalProvider::new(dir)),
            (None, None) => return Err(EngineError::Incomplete("a provider")),
        };
        let catalog = match (self.catalog, &self.state_dir) {
            (Some(catalog), _) => catalog,
            (None, Some(dir)) => Arc::new(Catalog::new(dir)),
            (None, None) => return Err(EngineError::Incomplete("an app catalog")),
        };
        let backups = match (self.backups, &self.state_dir) {
            (Some(backups), _) => backups,
            (None, Some(dir)) => Arc::new(Backups::new(dir)),
            (None, None) => return Err(EngineError::Incomplete("a place for backups")),
        };
        Ok(Engine {
            store,
            tree,
            provider,
            catalog,
            backups,
            runner: self.runner.ok_or(EngineError::Incomplete("a hook runner"))?,
            observer: self.observer.unwrap_or_else(|| Arc::new(Quiet)),
            shared: Arc::default(),
            gates: Arc::default(),
            host,
        })
    }
}

/// This host as a shared store names it: the machine and the state
/// directory (two state directories on one machine are two hosts).
fn host_of(state_dir: &Path) -> String {
    // Absolute, not canonical: the same before the directory exists as after.
    let dir = std::path::absolute(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
    format!("{}:{}", crate::etcd::machine_name(), dir.display())
}

/// An operation store and a metadata store, kept in one place.
type Stores = (Arc<dyn OperationStore>, Arc<dyn MetadataStore>);

/// The operation and metadata stores on the etcd at `url`.
#[cfg(feature = "etcd")]
fn etcd_stores(url: &crate::etcd::EtcdUrl) -> Result<Stores, EngineError> {
    let etcd = crate::etcd::Etcd::connect(url).map_err(|e| EngineError::Etcd(e.to_string()))?;
    Ok((
        Arc::new(crate::store::EtcdOps::etcd(etcd.clone())?),
        Arc::new(crate::metadata::EtcdTree::new(etcd)),
    ))
}

/// Without the `etcd` feature: says how to get it.
#[cfg(not(feature = "etcd"))]
fn etcd_stores(url: &crate::etcd::EtcdUrl) -> Result<Stores, EngineError> {
    Err(EngineError::Etcd(format!(
        "cannot use {url}: this hookhost was built without etcd; build it with `cargo build --release --features etcd` \
         (which needs protoc: apt-get install protobuf-compiler)"
    )))
}

impl Engine {
    /// A builder.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// The engine of a state directory with its embedded defaults, running hooks with `runner`.
    pub fn open(state_dir: &Path, runner: impl HookRunner + 'static) -> Result<Engine, EngineError> {
        Engine::builder().state_dir(state_dir).runner(Arc::new(runner)).build()
    }

    /// The same engine, reporting to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Engine {
        self.observer = observer;
        self
    }

    /// The operation store.
    pub fn store(&self) -> &dyn OperationStore {
        self.store.as_ref()
    }

    /// The metadata tree.
    pub fn tree(&self) -> &dyn MetadataStore {
        self.tree.as_ref()
    }

    /// The registered app versions.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The backups.
    pub fn backups(&self) -> &Backups {
        &self.backups
    }

    /// The snapshot of the tree under `root` at the store's revision now:
    /// the last one taken, while nothing was written since.
    async fn snapshot_of(&self, root: &str) -> Result<Arc<Snapshot>, EngineError> {
        let revision = self.tree.revision().await?;
        let cached = self
            .shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        if let Some((at, snapshot)) = cached
            && at == root
            && snapshot.revision() == revision
        {
            return Ok(snapshot);
        }
        let snapshot = Arc::new(self.tree.snapshot(root).await?);
        *self.shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) =
            Some((root.to_string(), snapshot.clone()));
        Ok(snapshot)
    }

    /// The gate of a cluster (see `gates`).
    fn gate(&self, cluster: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut gates = self.gates.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        gates.entry(cluster.to_string()).or_default().clone()
    }

    /// A cluster, or a clear error.
    pub fn cluster(&self, id: &str) -> Result<Cluster, EngineError> {
        Ok(self.store.cluster(id)?.ok_or_else(|| StoreError::NotFound {
            kind: "cluster",
            id: id.to_string(),
        })?)
    }

    /// An operation, or a clear error.
    pub fn operation(&self, id: &str) -> Result<Operation, EngineError> {
        Ok(self.store.operation(id)?.ok_or_else(|| StoreError::NotFound {
            kind: "operation",
            id: id.to_string(),
        })?)
    }

    /// Whether a running operation has no process running it (it can be resumed).
    pub fn is_interrupted(&self, op: &Operation) -> bool {
        op.status == OperationStatus::Running && self.store.claimant(&op.id).is_none()
    }

    /// The plan a request would run, on the cluster it would run on,
    /// without running or storing anything (the dry run).
    pub async fn plan(&self, request: &OperationRequest) -> Result<(Cluster, Plan), EngineError> {
        let admitted = self.admit(request, false).await?;
        Ok((admitted.cluster, admitted.plan))
    }

    /// Starts an operation; [`Engine::run`] then runs it.
    pub async fn submit(&self, request: OperationRequest) -> Result<Operation, EngineError> {
        let Admitted {
            cluster,
            during,
            plan,
            request,
        } = self.admit(&request, true).await?;
        let op = Operation {
            id: crate::cluster::new_id("op"),
            cluster_id: cluster.id.clone(),
            status: OperationStatus::Running,
            plan,
            prior_status: request.cluster_id().map(|_| cluster.status),
            error: None,
            cancel_requested: false,
            recovery: None,
            created_at: now(),
            ended_at: None,
            host: self.host.clone(),
            request,
        };
        let mut cluster = cluster;
        cluster.status = during;
        // Waits for a health round on the cluster (or its peer) to end.
        let mut held = Vec::new();
        let mut ids: Vec<&str> = op
            .request
            .cluster_id()
            .into_iter()
            .chain(op.request.peer_id())
            .collect();
        ids.sort_unstable();
        for id in ids {
            held.push(self.gate(id).lock_owned().await);
        }
        self.store.begin(cluster, op.clone()).await?;
        Ok(op)
    }

    /// The app version a request names: the one a create makes a cluster
    /// of (from a spec file: `prepared`, what it would be registered as),
    /// the one an upgrade goes to, the one a downgrade goes back to.
    fn app_of(
        &self,
        request: &OperationRequest,
        prepared: Option<&Prepared>,
    ) -> Result<Option<AppVersion>, EngineError> {
        let refuse = |why: &str| Refusal::new(request.kind(), None, why);
        Ok(match request {
            OperationRequest::CreateCluster { spec, app, .. } => match (spec, app) {
                (Some(_), None) => prepared.map(|p| p.version.clone()),
                (None, Some(app)) => Some(self.catalog.get(&app.app, &app.version)?),
                (Some(_), Some(_)) => return Err(refuse("give an app spec or an app version, not both").into()),
                (None, None) => return Err(refuse("give an app spec, or an app and its version").into()),
            },
            OperationRequest::Upgrade { cluster, version, .. } => {
                let cluster = self.cluster(cluster)?;
                if cluster.app.app.is_empty() {
                    return Err(Refusal::new(
                        request.kind(),
                        Some(&cluster),
                        "it was created before app versions were kept; it has no app to upgrade",
                    )
                    .into());
                }
                Some(self.catalog.get(&cluster.app.app, version)?)
            }
            OperationRequest::Downgrade { cluster } => {
                let cluster = self.cluster(cluster)?;
                match &cluster.upgrade {
                    Some(upgrade) => Some(self.catalog.get(&cluster.app.app, &upgrade.from)?),
                    None => None,
                }
            }
            OperationRequest::Restore { backup, .. } => {
                // Only a device backup makes a cluster of its app version.
                let backup = self.backups.get(backup)?;
                match backup.policy {
                    crate::spec::BackupPolicy::Device => Some(self.catalog.get(&backup.app.app, &backup.app.version)?),
                    crate::spec::BackupPolicy::Custom => None,
                }
            }
            _ => None,
        })
    }

    /// Fills in what a request's submission fixes (a backup's id and the
    /// point it builds on; the cluster a backup belongs to; the points a
    /// deletion takes along) and loads the backup it names.
    fn fill_backup(&self, request: &mut OperationRequest) -> Result<Option<crate::backups::Backup>, EngineError> {
        Ok(match request {
            OperationRequest::Backup {
                cluster,
                name,
                params,
                incremental,
                order,
            } => {
                let found = self.cluster(cluster)?;
                let policy = found.spec.backup_policy.unwrap_or(crate::spec::BackupPolicy::Device);
                let parent = if *incremental {
                    self.backups
                        .latest_of(&found.id)?
                        .filter(|b| b.policy == policy)
                        .map(|b| b.id)
                } else {
                    None
                };
                let id = crate::cluster::new_id("s");
                *order = Some(crate::request::BackupOrder {
                    name: name.clone().unwrap_or_else(|| id.clone()),
                    id,
                    policy,
                    parent,
                    params: params.clone(),
                });
                None
            }
            OperationRequest::Restore { backup, cluster, .. } => {
                let found = self.backups.get(backup)?;
                if found.policy == crate::spec::BackupPolicy::Custom {
                    *cluster = Some(found.cluster.clone());
                } else {
                    // A corrupt backup is refused before anything is made.
                    self.backups.verify(&found)?;
                }
                Some(found)
            }
            OperationRequest::DeleteBackup {
                backup,
                chain,
                cluster,
                backups,
            } => {
                let found = self.backups.get(backup)?;
                let later = self.backups.later_in_chain(&found.id)?;
                if !later.is_empty() && !*chain {
                    return Err(Refusal::new(
                        crate::request::OperationKind::DeleteBackup,
                        None,
                        format!(
                            "backup {} has later points that build on it ({}); delete them with it (--chain), or delete the latest first",
                            found.id,
                            later.join(", ")
                        ),
                    )
                    .into());
                }
                *cluster = found.cluster.clone();
                *backups = later.into_iter().chain([found.id.clone()]).collect();
                // A restore still reading one of them (running or interrupted) keeps it.
                let reading = self.store.operations()?.into_iter().find_map(|op| match op.request {
                    OperationRequest::Restore { backup, .. }
                        if op.status == OperationStatus::Running && backups.contains(&backup) =>
                    {
                        Some((op.id, backup))
                    }
                    _ => None,
                });
                if let Some((op, backup)) = reading {
                    return Err(Refusal::new(
                        crate::request::OperationKind::DeleteBackup,
                        None,
                        format!(
                            "restore {op} of backup {backup} is unfinished and reads it; let it end first (`hookhost op resume {op}` or `hookhost op cancel {op}`)"
                        ),
                    )
                    .into());
                }
                Some(found)
            }
            _ => None,
        })
    }

    /// What a network request's flow judges by: an IP exchange's other
    /// cluster (refused while busy; its last operation noted, so that the
    /// store refuses the start when another began on it since), and who
    /// holds each address a network change pins (the store claims them
    /// again, atomically, when it moves).
    fn load_network(
        &self,
        request: &mut OperationRequest,
    ) -> Result<(Option<Cluster>, std::collections::BTreeMap<String, String>), EngineError> {
        let mut holders = std::collections::BTreeMap::new();
        Ok(match request {
            OperationRequest::ExchangeIps { with, with_last, .. } => {
                let peer = self.cluster(with)?;
                self.check_not_busy(&peer)?;
                with_last.clone_from(&peer.operation);
                (Some(peer), holders)
            }
            OperationRequest::ChangeVxnet { vxnet, ips, .. } => {
                for ip in ips.values() {
                    if let Some(holder) = self.store.ip_holder(vxnet, ip)? {
                        holders.insert(ip.clone(), holder);
                    }
                }
                (None, holders)
            }
            _ => (None, holders),
        })
    }

    /// The names of the versions with the content of the one a cluster runs
    /// (or ran before its unfinished upgrade).
    fn same_content(&self, cluster: &str) -> Result<Vec<String>, EngineError> {
        let cluster = self.cluster(cluster)?;
        let from = cluster.upgrade.as_ref().map_or(&cluster.app.version, |u| &u.from);
        let Ok(current) = self.catalog.get(&cluster.app.app, from) else {
            return Ok(Vec::new());
        };
        Ok(self
            .catalog
            .versions(&cluster.app.app)?
            .into_iter()
            .filter(|v| v.digest == current.digest)
            .map(|v| v.version)
            .collect())
    }

    /// Asks the request's flow whether it may run, for the record it starts
    /// from and for its plan. `keep`: register the app a create names (a
    /// real submission, not a dry run).
    async fn admit(&self, request: &OperationRequest, keep: bool) -> Result<Admitted, EngineError> {
        // A create from a spec file reads and checks it once, and keeps it
        // only once admitted.
        let prepared = match request {
            OperationRequest::CreateCluster {
                spec: Some(file),
                app: None,
                ..
            } => Some(self.prepare_version(file, None, None).await?),
            _ => None,
        };
        let app = self.app_of(request, prepared.as_ref())?;
        let mut request = request.clone();
        let mut same_content = Vec::new();
        if let (OperationRequest::Upgrade { policy, cluster, .. }, Some(target)) = (&mut request, &app) {
            *policy = Some(target.spec.upgrading_policy);
            same_content = self.same_content(cluster)?;
        }
        let backup = self.fill_backup(&mut request)?;
        let (peer, holders) = self.load_network(&mut request)?;
        let flow = flow_of(
            &request,
            Loaded {
                app,
                same_content,
                backup,
                peer,
                holders,
            },
        )?;
        let current = match request.cluster_id() {
            Some(id) => {
                let cluster = self.cluster(id)?;
                self.check_not_busy(&cluster)?;
                self.check_here(&cluster, cluster.operation.as_deref())?;
                cluster
            }
            None => flow.new_cluster()?,
        };
        let during = flow.admit(&current)?;
        let mut cluster = flow.prepare(current)?;
        let plan = flow.plan(&cluster);
        plan.check()?;
        // Only an admitted request registers its app.
        if keep && let Some(prepared) = prepared {
            let kept = self.keep_version(prepared)?.0;
            cluster.app = kept.reference();
            cluster.spec = kept.spec;
            crate::cluster::clear_reserved_ips(&mut cluster.spec);
        }
        Ok(Admitted {
            cluster,
            during,
            plan,
            request,
        })
    }

    /// On a shared store, refuses to act on a cluster whose operation `op`
    /// (its last, or the one to resume) ran on another host: its nodes are there.
    pub(crate) fn check_here(&self, cluster: &Cluster, op: Option<&str>) -> Result<(), EngineError> {
        let (Some(mine), Some(op)) = (&self.host, op) else {
            return Ok(());
        };
        match self.store.operation(op)?.and_then(|op| op.host) {
            Some(theirs) if theirs != *mine => Err(EngineError::Elsewhere {
                what: format!("operation {op}"),
                cluster: cluster.id.clone(),
                host: theirs,
            }),
            _ => Ok(()),
        }
    }

    /// A busy cluster says which operation holds it, and whether that one
    /// runs or was interrupted (the store checks again, atomically, at begin).
    fn check_not_busy(&self, cluster: &Cluster) -> Result<(), EngineError> {
        if let Some(busy) = &cluster.operation
            && let Some(running) = self
                .store
                .operation(busy)?
                .filter(|o| o.status == OperationStatus::Running)
        {
            let state = if self.is_interrupted(&running) {
                "interrupted"
            } else {
                "running"
            };
            return Err(StoreError::busy(&cluster.id, &running, Some(state)).into());
        }
        Ok(())
    }

    /// Asks an operation to stop at its next step boundary. An operation no
    /// process runs (interrupted) is ended here: at once, or after its
    /// recovery part when a step of its main part ran.
    pub async fn cancel(&self, op_id: &str) -> Result<Operation, EngineError> {
        self.operation(op_id)?;
        // Check and set at once: a finished operation must not come back to life.
        let op = self
            .store
            .update_operation(
                op_id,
                Box::new(|op| {
                    if op.status != OperationStatus::Running {
                        return Err(StoreError::Ended {
                            operation: op.id.clone(),
                            status: op.status,
                        });
                    }
                    op.cancel_requested = true;
                    Ok(())
                }),
            )
            .await?;
        if self.store.claimant(op_id).is_some() {
            return Ok(op);
        }
        // Nobody runs it: end it here, unless a resume took it meanwhile.
        match self.run(op_id).await {
            Err(EngineError::Store(StoreError::Claimed { .. } | StoreError::Ended { .. })) => self.operation(op_id),
            other => other,
        }
    }
}

/// What admission yields: the record the operation starts from, the status
/// the cluster has meanwhile, and the plan.
struct Admitted {
    cluster: Cluster,
    during: ClusterStatus,
    plan: Plan,
    /// The request as stored (an upgrade's policy filled in).
    request: OperationRequest,
}
