//! A fake hook runner and an engine on in-memory stores, for executor tests
//! without wasm or the CLI. The fake records every call (service, node,
//! attempt, parameters, what the node's view showed, when it ran) and
//! follows a script per node or role: fail with a code, reply, sleep, or
//! hang until the test drops the run (a crash).

use super::Engine;
use super::runner::{Component, HookRunner, RunnerFuture};
use crate::cluster::{Cluster, ClusterStatus, now};
use crate::hook::{ConfigFile, Service, parse_service, service_name};
use crate::metadata::{MemoryStore, MetadataStore, StoreFuture};
use crate::plan::Plan;
use crate::provider::LocalProvider;
use crate::request::OperationRequest;
use crate::runtime::{Call, Failure, LoadError, Outcome, Report, Request};
use crate::store::{MemoryOps, Operation, OperationStatus};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a scripted hook does.
#[derive(Debug, Clone, Default)]
pub(super) struct Script {
    /// Fail with this code.
    pub(super) fail: Option<u32>,
    /// Reply this.
    pub(super) reply: Option<String>,
    /// Take this long.
    pub(super) sleep_ms: u64,
    /// Never end (the test drops the run, as a crash would).
    pub(super) hang: bool,
}

impl Script {
    /// Fails with `code`.
    pub(super) fn fails(code: u32) -> Script {
        Script {
            fail: Some(code),
            ..Script::default()
        }
    }

    /// Replies `reply`.
    pub(super) fn replies(reply: impl Into<String>) -> Script {
        Script {
            reply: Some(reply.into()),
            ..Script::default()
        }
    }

    /// Takes `ms` milliseconds.
    pub(super) fn sleeps(ms: u64) -> Script {
        Script {
            sleep_ms: ms,
            ..Script::default()
        }
    }

    /// Never ends.
    pub(super) fn hangs() -> Script {
        Script {
            hang: true,
            ..Script::default()
        }
    }
}

/// One call the fake received.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    /// `render`, or the service's spec name.
    pub(super) service: String,
    pub(super) node: String,
    pub(super) role: String,
    pub(super) attempt: u32,
    pub(super) pre_check: bool,
    pub(super) params: Value,
    /// The component that ran (its path).
    pub(super) component: PathBuf,
    /// The node's whole view of the metadata.
    pub(super) view: Value,
    pub(super) started: Instant,
    pub(super) ended: Option<Instant>,
}

#[derive(Default)]
struct Inner {
    services: Vec<Service>,
    scripts: Mutex<HashMap<(String, String), Script>>,
    seen: Mutex<Vec<Seen>>,
}

/// The fake runner; clones share their script and record.
#[derive(Clone)]
pub(super) struct FakeRunner {
    inner: Arc<Inner>,
}

struct FakeComponent {
    inner: Arc<Inner>,
    path: PathBuf,
    sha256: String,
}

impl FakeRunner {
    /// Components implementing these services (spec names).
    pub(super) fn new(services: &[&str]) -> FakeRunner {
        FakeRunner {
            inner: Arc::new(Inner {
                services: services.iter().map(|s| parse_service(s).unwrap()).collect(),
                ..Inner::default()
            }),
        }
    }

    /// What `service` does on a node (by node id) or on every node of a role.
    pub(super) fn script(&self, node_or_role: &str, service: &str, script: Script) {
        let mut scripts = self.inner.scripts.lock().unwrap();
        scripts.insert((node_or_role.to_string(), service.to_string()), script);
    }

    /// Every call so far, in the order they started.
    pub(super) fn seen(&self) -> Vec<Seen> {
        self.inner.seen.lock().unwrap().clone()
    }

    /// The calls of one service.
    pub(super) fn calls(&self, service: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.service == service).collect()
    }

    /// Forgets what it saw.
    pub(super) fn clear(&self) {
        self.inner.seen.lock().unwrap().clear();
    }
}

impl Inner {
    fn script_for(&self, call: &Call, service: &str) -> Script {
        let scripts = self.scripts.lock().unwrap();
        let key = |who: &str| (who.to_string(), service.to_string());
        scripts
            .get(&key(&call.node.node_id))
            .or_else(|| scripts.get(&key(&call.node.role)))
            .cloned()
            .unwrap_or_default()
    }

    fn begin(&self, call: &Call, service: &str, path: &Path, request: Option<&Request>) -> usize {
        let mut seen = self.seen.lock().unwrap();
        seen.push(Seen {
            service: service.to_string(),
            node: call.node.node_id.clone(),
            role: call.node.role.clone(),
            attempt: call.node.attempt,
            pre_check: request.is_some_and(|r| r.pre_check),
            params: request
                .map(|r| serde_json::from_str(&r.params).unwrap())
                .unwrap_or_default(),
            component: path.to_path_buf(),
            view: call.view.subtree("/").unwrap().unwrap_or_default(),
            started: Instant::now(),
            ended: None,
        });
        seen.len() - 1
    }

    fn end(&self, at: usize) {
        self.seen.lock().unwrap()[at].ended = Some(Instant::now());
    }
}

fn outcome<T>(path: &Path, result: Result<T, Failure>) -> Outcome<T> {
    Outcome {
        plugin: path.to_path_buf(),
        call: "fake".into(),
        result,
        report: Report::default(),
    }
}

impl HookRunner for FakeRunner {
    fn load<'a>(&'a self, path: &'a Path) -> RunnerFuture<'a, Result<Arc<dyn Component>, LoadError>> {
        Box::pin(async move {
            let bytes = std::fs::read(path).map_err(|error| LoadError::Read {
                path: path.to_path_buf(),
                error,
            })?;
            self.load_bytes(path, bytes).await
        })
    }

    fn load_bytes<'a>(
        &'a self,
        path: &'a Path,
        bytes: Vec<u8>,
    ) -> RunnerFuture<'a, Result<Arc<dyn Component>, LoadError>> {
        Box::pin(async move {
            Ok(Arc::new(FakeComponent {
                inner: self.inner.clone(),
                path: path.to_path_buf(),
                sha256: crate::runtime::sha256_hex(&bytes),
            }) as Arc<dyn Component>)
        })
    }
}

impl Component for FakeComponent {
    fn services(&self) -> &[Service] {
        &self.inner.services
    }

    fn sha256(&self) -> String {
        self.sha256.clone()
    }

    fn run<'a>(&'a self, call: &'a Call, request: &'a Request) -> RunnerFuture<'a, Outcome<Option<String>>> {
        Box::pin(async move {
            let service = service_name(&request.service);
            let script = self.inner.script_for(call, &service);
            let at = self.inner.begin(call, &service, &self.path, Some(request));
            if script.hang {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(Duration::from_millis(script.sleep_ms)).await;
            self.inner.end(at);
            let result = match script.fail {
                Some(code) => Err(Failure::HookError {
                    code,
                    message: format!("{service} scripted to fail"),
                }),
                None => Ok(script.reply),
            };
            outcome(&self.path, result)
        })
    }

    /// One file listing the node ids under `/hosts`: it changes with the membership.
    fn render<'a>(&'a self, call: &'a Call) -> RunnerFuture<'a, Outcome<Vec<ConfigFile>>> {
        Box::pin(async move {
            let at = self.inner.begin(call, "render", &self.path, None);
            let script = self.inner.script_for(call, "render");
            if script.hang {
                std::future::pending::<()>().await;
            }
            let hosts = call.view.subtree("/hosts").unwrap().unwrap_or_default().to_string();
            self.inner.end(at);
            let files = vec![ConfigFile {
                path: "/etc/fake/hosts".into(),
                content: hosts.into_bytes(),
                mode: 0o644,
            }];
            outcome(&self.path, Ok(files))
        })
    }
}

/// An engine on memory stores and a local provider in a temporary
/// directory, running hooks with a fake.
pub(super) struct Harness {
    pub(super) engine: Engine,
    pub(super) runner: FakeRunner,
    pub(super) tree: MemoryStore,
    pub(super) dir: tempfile::TempDir,
    /// How many snapshots the engine took of the tree.
    pub(super) snapshots: Arc<AtomicUsize>,
}

/// The memory store, counting the snapshots taken of it.
struct Counting {
    tree: MemoryStore,
    snapshots: Arc<AtomicUsize>,
}

impl MetadataStore for Counting {
    fn apply<'a>(&'a self, writes: &'a [crate::metadata::Write]) -> StoreFuture<'a, u64> {
        self.tree.apply(writes)
    }

    fn snapshot<'a>(&'a self, prefix: &'a str) -> StoreFuture<'a, crate::metadata::Snapshot> {
        self.snapshots.fetch_add(1, Ordering::SeqCst);
        self.tree.snapshot(prefix)
    }

    fn revision(&self) -> StoreFuture<'_, u64> {
        self.tree.revision()
    }

    fn watch<'a>(&'a self, prefix: &'a str, from_revision: u64) -> StoreFuture<'a, crate::metadata::Watch> {
        self.tree.watch(prefix, from_revision)
    }
}

/// Three roles, as the lifecycle tests have them: `db` ×2 and `cache` ×1 at
/// order 0 (db's init after start), `web` ×2 at order 1.
pub(super) const THREE_ROLES: &str = r#"{"name": "fake", "nodes": [
    {"role": "db", "count": 2, "plugin": "app.wasm", "services": {
        "init": {"post_start_service": true}, "start": {}, "stop": {}, "destroy": {}, "reload": {},
        "get_nodes_order": {"event": ["upgrade"]}, "scale_in": {"pre_check": true},
        "backup": {"service_params": {"from": "spec"}}}},
    {"role": "cache", "count": 1, "plugin": "app.wasm", "services": {
        "init": {}, "start": {}, "stop": {}, "destroy": {"post_stop_service": true}}},
    {"role": "web", "count": 2, "plugin": "app.wasm", "services": {
        "init": {"order": 1}, "start": {"order": 1}, "stop": {"order": 1}}}
]}"#;

impl Harness {
    /// A harness for the app spec `spec` (its roles name `app.wasm`).
    pub(super) fn new(spec: &str) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.wasm"), b"fake component").unwrap();
        std::fs::write(dir.path().join("v2.wasm"), b"fake component, version 2").unwrap();
        std::fs::write(dir.path().join("spec.json"), spec).unwrap();
        let runner = FakeRunner::new(&[
            "init",
            "start",
            "stop",
            "destroy",
            "reload",
            "get_nodes_order",
            "scale_in",
            "scale_out",
            "backup",
        ]);
        let tree = MemoryStore::new();
        let snapshots = Arc::new(AtomicUsize::new(0));
        let engine = Engine::builder()
            .operations(Arc::new(MemoryOps::new()))
            .metadata(Arc::new(Counting {
                tree: tree.clone(),
                snapshots: snapshots.clone(),
            }))
            .provider(Arc::new(LocalProvider::new(&dir.path().join("state"))))
            .catalog(crate::apps::Catalog::new(&dir.path().join("state")))
            .backups(crate::backups::Backups::new(&dir.path().join("state")))
            .runner(Arc::new(runner.clone()))
            .build()
            .unwrap();
        Harness {
            engine,
            runner,
            tree,
            dir,
            snapshots,
        }
    }

    /// Creates the cluster with the create flow; its id.
    pub(super) async fn create(&self) -> Cluster {
        let op = self
            .engine
            .submit(OperationRequest::CreateCluster {
                spec: Some(self.dir.path().join("spec.json")),
                app: None,
                name: None,
            })
            .await
            .unwrap();
        let done = self.engine.run(&op.id).await.unwrap();
        assert_eq!(done.status, OperationStatus::Succeeded, "{:?}", done.error);
        self.runner.clear();
        self.engine.cluster(&done.cluster_id).unwrap()
    }

    /// Starts an operation running `plan` on an active cluster, past the
    /// flows: what the executor does with any plan.
    pub(super) async fn begin(&self, cluster: &Cluster, plan: Plan) -> Operation {
        plan.check().unwrap();
        let op = Operation {
            id: crate::cluster::new_id("op"),
            request: OperationRequest::StopCluster {
                cluster: cluster.id.clone(),
            },
            cluster_id: cluster.id.clone(),
            status: OperationStatus::Running,
            plan,
            prior_status: Some(ClusterStatus::Active),
            error: None,
            cancel_requested: false,
            recovery: None,
            created_at: now(),
            ended_at: None,
            host: None,
        };
        let current = self.engine.cluster(&cluster.id).unwrap();
        self.engine.store().begin(current, op.clone()).await.unwrap();
        op
    }

    /// Runs an operation to its end.
    pub(super) async fn run(&self, op: &Operation) -> Operation {
        self.engine.run(&op.id).await.unwrap()
    }

    /// Runs an operation until `ready` holds (a hook hangs), then drops the
    /// run as a crash would: the hooks running are cut off.
    pub(super) async fn crash_when(&self, op: &Operation, ready: impl Fn(&[Seen]) -> bool) {
        self.crash_at(op, |h| ready(&h.runner.seen())).await;
    }

    /// As [`Harness::crash_when`], with the whole harness to look at (the journal too).
    pub(super) async fn crash_at(&self, op: &Operation, ready: impl Fn(&Harness) -> bool) {
        let engine = self.engine.clone();
        let id = op.id.clone();
        let task = tokio::spawn(async move { engine.run(&id).await });
        let started = Instant::now();
        while !ready(self) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the crash point never came"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        task.abort();
        let _ = task.await;
        assert_eq!(
            self.engine.operation(&op.id).unwrap().status,
            OperationStatus::Running,
            "interrupted, not ended"
        );
    }

    /// The cluster's tree at a view path, as its first node sees it.
    pub(super) async fn tree_at(&self, cluster: &Cluster, path: &str) -> Option<Value> {
        let snapshot = Arc::new(
            self.tree
                .snapshot(&crate::metadata::cluster_root(&cluster.id))
                .await
                .unwrap(),
        );
        crate::metadata::ClusterView::new(snapshot, &cluster.id)
            .subtree(path)
            .unwrap()
    }

    /// The ids of a role's nodes, by sid.
    pub(super) fn role(&self, cluster: &Cluster, role: &str) -> Vec<String> {
        let mut nodes: Vec<_> = cluster.nodes.iter().filter(|n| n.role == role).collect();
        nodes.sort_by_key(|n| n.sid);
        nodes.into_iter().map(|n| n.node_id.clone()).collect()
    }
}
