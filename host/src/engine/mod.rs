//! The one executor: runs any plan, journals every step before and after it
//! runs, records one event per hook invocation, and is the only place that
//! knows about ordering, parallelism, timeouts and failure branches.
//!
//! An operation goes request → plan (`flows`) → [`Engine::run`] → runtime.
//! The operation, its plan and its journal are durable, so a killed process
//! resumes at the first unfinished step (`hookhost op resume`).

mod executor;
mod lock;
pub mod plan;
mod steps;

pub use lock::holder as lock_holder;

use crate::metadata::RedbStore;
use crate::provider::{LocalProvider, Provider};
use crate::runtime::Runtime;
use crate::spec::{Problem, Spec, SpecError};
use crate::state::{
    Cluster, ClusterStatus, Db, DbError, Event, Operation, OperationKind, OperationStatus, StepOutcome, allocate_ips,
    busy_message, mac_of, new_id, now,
};
use plan::Plan;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

/// Why an operation could not be started or run.
#[derive(Debug, Error)]
pub enum EngineError {
    /// The spec is unusable.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The spec's components do not fit it.
    #[error("{file}: {}", problems.iter().map(Problem::to_string).collect::<Vec<_>>().join(&format!("\n{}: ", file.display())))]
    Components {
        /// The spec file.
        file: PathBuf,
        /// Every problem found.
        problems: Vec<Problem>,
    },
    /// The state store failed or refused (e.g. the cluster is busy).
    #[error(transparent)]
    Db(#[from] DbError),
    /// No such cluster or operation.
    #[error("no {kind} {id}")]
    NotFound {
        /// `cluster` or `operation`.
        kind: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The request does not fit the cluster's or operation's state.
    #[error("{0}")]
    State(String),
    /// Files of the state directory could not be written.
    #[error("{0}")]
    Io(String),
}

/// Watches an operation as it runs (progress bars, tests). Every method has a no-op default.
pub trait Observer: Send + Sync {
    /// A step starts.
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

/// The lifecycle engine of one state directory.
#[derive(Clone)]
pub struct Engine {
    db: Db,
    tree: RedbStore,
    runtime: Runtime,
    provider: Arc<dyn Provider>,
    observer: Arc<dyn Observer>,
}

impl Engine {
    /// Opens the state directory: its store, and the local provider's nodes under `nodes/`.
    pub fn open(state_dir: &Path, runtime: Runtime) -> Result<Engine, EngineError> {
        let db = Db::open(state_dir)?;
        Ok(Engine {
            tree: RedbStore::new(db.clone()),
            provider: Arc::new(LocalProvider::new(state_dir.join("nodes"))),
            db,
            runtime,
            observer: Arc::new(Quiet),
        })
    }

    /// The same engine, reporting to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Engine {
        self.observer = observer;
        self
    }

    /// The state store.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The metadata tree.
    pub fn tree(&self) -> &RedbStore {
        &self.tree
    }

    /// The local provider's directory of a node.
    pub fn node_dir(&self, cluster: &str, node: &str) -> PathBuf {
        self.db.dir().join("nodes").join(cluster).join(node)
    }

    /// A cluster, or a clear error.
    pub fn cluster(&self, id: &str) -> Result<Cluster, EngineError> {
        self.db.cluster(id)?.ok_or_else(|| EngineError::NotFound {
            kind: "cluster",
            id: id.to_string(),
        })
    }

    /// An operation, or a clear error.
    pub fn operation(&self, id: &str) -> Result<Operation, EngineError> {
        self.db.operation(id)?.ok_or_else(|| EngineError::NotFound {
            kind: "operation",
            id: id.to_string(),
        })
    }

    /// Whether a running operation has no process running it (it can be resumed).
    pub fn is_interrupted(&self, op: &Operation) -> bool {
        op.status == OperationStatus::Running && lock::holder(self.db.dir(), &op.id).is_none()
    }

    /// Loads a spec and checks its components: each loads, and implements
    /// every service the spec gives its role.
    pub async fn load_app(&self, spec_file: &Path) -> Result<Spec, EngineError> {
        let spec = Spec::load(spec_file)?;
        let names: Vec<String> = spec.nodes.iter().map(|r| file_name(&r.plugin)).collect();
        self.check_components(spec_file, &spec, &names).await?;
        Ok(spec)
    }

    /// Each role's component loads and implements every service the spec
    /// gives the role; `names` are the components' names in the spec.
    async fn check_components(&self, spec_file: &Path, spec: &Spec, names: &[String]) -> Result<(), EngineError> {
        let mut problems = Vec::new();
        for (i, role) in spec.nodes.iter().enumerate() {
            let plugin = match self.runtime.load(&role.plugin).await {
                Ok(plugin) => plugin,
                Err(e) => {
                    problems.push(Problem {
                        at: format!("nodes[{i}].plugin"),
                        message: e.to_string(),
                    });
                    continue;
                }
            };
            for name in role.services.keys() {
                let implemented = crate::hook::parse_service(name).is_ok_and(|s| plugin.services().contains(&s));
                if !implemented {
                    let implemented: Vec<String> = plugin.services().iter().map(crate::hook::service_name).collect();
                    problems.push(Problem {
                        at: format!("nodes[{i}].services.{name}"),
                        message: format!(
                            "{} does not implement {name} (it implements: {})",
                            names[i],
                            implemented.join(", ")
                        ),
                    });
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(EngineError::Components {
                file: spec_file.to_path_buf(),
                problems,
            })
        }
    }

    /// The plan `kind` would run, without running or storing anything.
    pub async fn plan(&self, kind: OperationKind, target: &str, force: bool) -> Result<(Cluster, Plan), EngineError> {
        let cluster = match kind {
            OperationKind::CreateCluster => {
                let spec = self.load_app(Path::new(target)).await?;
                Cluster::new(spec, PathBuf::from(target), None)
            }
            _ => {
                let cluster = self.cluster(target)?;
                self.check_allowed(kind, &cluster, force)?;
                cluster
            }
        };
        let plan = plan_of(kind, &cluster, force);
        Ok((cluster, plan))
    }

    /// Starts creating a cluster from a spec; [`Engine::run`] then runs it.
    pub async fn submit_create(&self, spec_file: &Path, name: Option<String>) -> Result<Operation, EngineError> {
        // The components are checked as stored, so what runs is what was checked.
        let mut spec = Spec::load(spec_file)?;
        let names: Vec<String> = spec.nodes.iter().map(|r| file_name(&r.plugin)).collect();
        self.store_images(&mut spec)?;
        self.check_components(spec_file, &spec, &names).await?;
        let spec_file = spec_file.canonicalize().unwrap_or_else(|_| spec_file.to_path_buf());
        let cluster = Cluster::new(spec, spec_file, name);
        let op = new_operation(OperationKind::CreateCluster, &cluster, ClusterStatus::Creating, false);
        let (vxnet, owners): (String, Vec<String>) = (
            cluster.spec.vxnet.clone(),
            cluster
                .nodes
                .iter()
                .map(|n| format!("{}/{}", cluster.id, n.node_id))
                .collect(),
        );
        self.db
            .begin_operation(cluster, op.clone(), move |txn, cluster| {
                let ips = allocate_ips(txn, &vxnet, &owners)?;
                for (node, ip) in cluster.nodes.iter_mut().zip(ips) {
                    node.mac = mac_of(&ip);
                    node.ip = ip;
                }
                cluster.status = ClusterStatus::Creating;
                Ok(())
            })
            .await?;
        Ok(op)
    }

    /// Starts deleting, stopping or starting a cluster; [`Engine::run`] then runs it.
    pub async fn submit(&self, kind: OperationKind, cluster_id: &str, force: bool) -> Result<Operation, EngineError> {
        let cluster = self.cluster(cluster_id)?;
        let during = self.check_allowed(kind, &cluster, force)?;
        let op = new_operation(kind, &cluster, cluster.status, force);
        self.db
            .begin_operation(cluster, op.clone(), move |_, cluster| {
                cluster.status = during;
                Ok(())
            })
            .await?;
        Ok(op)
    }

    /// Whether `kind` may run on `cluster` now; the status it takes meanwhile.
    fn check_allowed(&self, kind: OperationKind, cluster: &Cluster, force: bool) -> Result<ClusterStatus, EngineError> {
        // A busy cluster says which operation holds it (the store checks again, atomically).
        if let Some(busy) = &cluster.operation
            && let Some(running) = self
                .db
                .operation(busy)?
                .filter(|o| o.status == OperationStatus::Running)
        {
            let state = if self.is_interrupted(&running) {
                "interrupted"
            } else {
                "running"
            };
            return Err(EngineError::State(busy_message(&cluster.id, &running, Some(state))));
        }
        use ClusterStatus::*;
        let verb = kind.to_string().trim_end_matches("-cluster").to_string();
        let refuse = |why: String| {
            Err(EngineError::State(format!(
                "cannot {verb} cluster {}: {why}",
                cluster.id
            )))
        };
        let failed_during = cluster.failed_during;
        match (kind, cluster.status) {
            (OperationKind::CreateCluster, _) => Ok(Creating),
            (_, Deleted) => refuse("it is deleted".into()),
            (OperationKind::DeleteCluster, Stopped) if !force && has_destroy_guard(cluster) => refuse(
                "it is stopped, so its destroy guard cannot run; start it first, or delete it with --force".into(),
            ),
            (OperationKind::DeleteCluster, Active | Stopped | Failed) => Ok(Deleting),
            (OperationKind::StopCluster, Active) => Ok(Stopping),
            // A failed stop or start left instances in doubt: stopping again settles them.
            (OperationKind::StopCluster, Failed)
                if matches!(
                    failed_during,
                    Some(OperationKind::StopCluster | OperationKind::StartCluster)
                ) =>
            {
                Ok(Stopping)
            }
            (OperationKind::StartCluster, Stopped) => Ok(Starting),
            (OperationKind::StartCluster, Active) => refuse("it is already running".into()),
            (OperationKind::StopCluster, Stopped) => refuse("it is already stopped".into()),
            (_, Failed) => match failed_during {
                Some(OperationKind::CreateCluster) | None => refuse("its creation failed; delete it".into()),
                Some(OperationKind::DeleteCluster) => refuse("its deletion failed; delete it again".into()),
                Some(_) => refuse(format!(
                    "a {} failed; stop it (or delete it) first",
                    failed_during.map(|k| k.to_string()).unwrap_or_default()
                )),
            },
            (_, status) => refuse(format!("it is {status}")),
        }
    }

    /// Asks an operation to stop at its next step boundary. An operation no
    /// process runs (interrupted) is cancelled at once.
    pub async fn cancel(&self, op_id: &str) -> Result<Operation, EngineError> {
        self.operation(op_id)?;
        // Check and set at once: a finished operation must not come back to life.
        let op = self
            .db
            .update_operation(op_id, |op| {
                if op.status != OperationStatus::Running {
                    return Err(DbError::Conflict(format!(
                        "operation {} has already ended: it {}",
                        op.id, op.status
                    )));
                }
                op.cancel_requested = true;
                Ok(())
            })
            .await?;
        if lock::holder(self.db.dir(), op_id).is_some() {
            return Ok(op);
        }
        // Nobody runs it: cancel it here, unless a resume took it meanwhile.
        let Ok(_lock) = lock::OpLock::acquire(self.db.dir(), op_id) else {
            return Ok(op);
        };
        let op = self.operation(op_id)?;
        if op.status != OperationStatus::Running {
            return Ok(op);
        }
        executor::finish(
            self,
            op,
            OperationStatus::Cancelled,
            Some("cancelled while interrupted".into()),
            None,
        )
        .await
    }

    /// Copies each role's component into the state directory (`images/<sha256>.wasm`),
    /// so that the cluster keeps running the version it was created with.
    fn store_images(&self, spec: &mut Spec) -> Result<(), EngineError> {
        let images = self.db.dir().join("images");
        std::fs::create_dir_all(&images)
            .map_err(|e| EngineError::Io(format!("cannot create {}: {e}", images.display())))?;
        for role in &mut spec.nodes {
            let bytes = crate::files::read_limited(&role.plugin, crate::runtime::MAX_COMPONENT_BYTES)
                .map_err(|e| EngineError::Io(format!("{}: cannot read: {e}", role.plugin.display())))?;
            let sha = crate::runtime::sha256_hex(&bytes);
            let image = images.join(format!("{sha}.wasm"));
            if !image.exists() {
                let write = || -> std::io::Result<()> {
                    let mut tmp = tempfile::NamedTempFile::new_in(&images)?;
                    std::io::Write::write_all(&mut tmp, &bytes)?;
                    tmp.persist(&image).map_err(|e| e.error)?;
                    Ok(())
                };
                write().map_err(|e| EngineError::Io(format!("cannot store {}: {e}", image.display())))?;
            }
            role.plugin = image;
        }
        Ok(())
    }
}

/// The plan of an operation on a cluster.
pub fn plan_of(kind: OperationKind, cluster: &Cluster, force: bool) -> Plan {
    match kind {
        OperationKind::CreateCluster => crate::flows::create(cluster),
        OperationKind::DeleteCluster => crate::flows::delete(cluster, force),
        OperationKind::StopCluster => crate::flows::stop(cluster),
        OperationKind::StartCluster => crate::flows::start(cluster),
    }
}

/// Whether some role's `destroy` runs before `stop` (the data-loss guard).
fn has_destroy_guard(cluster: &Cluster) -> bool {
    cluster
        .spec
        .nodes
        .iter()
        .any(|r| r.service("destroy").is_some_and(|s| !s.runs_after_stop()))
}

fn new_operation(kind: OperationKind, cluster: &Cluster, prior: ClusterStatus, force: bool) -> Operation {
    Operation {
        id: new_id("op"),
        kind,
        cluster_id: cluster.id.clone(),
        status: OperationStatus::Running,
        plan: plan_of(kind, cluster, force),
        prior_status: prior,
        error: None,
        cancel_requested: false,
        created_at: now(),
        ended_at: None,
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
