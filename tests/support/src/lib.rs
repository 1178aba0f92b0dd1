//! Shared by the end-to-end tests and the benchmark: the hook components
//! built from `example-plugins/` (by this crate's build script), the
//! example fixtures, and a runtime with a compile cache shared by the run.

use hookhost::hook::{Operation, node_context};
use hookhost::metadata::{ClusterView, Fixture, MemoryStore};
use hookhost::runtime::{Call, Limits, Mount, Plugin, Runtime, RuntimeConfig};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// The ZooKeeper example's component.
pub const ZOOKEEPER: &str = "zookeeper_hooks";
/// The component that attacks its sandbox.
pub const HOSTILE: &str = "hostile_hooks";
/// The component that reports what it sees.
pub const PROBE: &str = "probe_hooks";
/// Hooks that do nothing (the lifecycle benchmark).
pub const NOOP: &str = "noop_hooks";
/// The component that records what each lifecycle hook saw.
pub const RECORDER: &str = "recorder_hooks";
/// The recorder built as version 2.0.0 (an app's second version).
pub const RECORDER_V2: &str = "recorder_v2_hooks";
/// A valid component of another world.
pub const OTHER_WORLD: &str = "other_world";
/// A hook component built against a newer WIT package.
pub const FUTURE_CONTRACT: &str = "future_contract";
/// A hook component that exports only part of the hooks interface.
pub const PARTIAL_HOOKS: &str = "partial_hooks";

/// The built component `name` (e.g. [`ZOOKEEPER`]).
pub fn guest(name: &str) -> PathBuf {
    Path::new(env!("HOOKHOST_GUESTS_DIR")).join(format!("{name}.wasm"))
}

/// A file of the repository, by its path from the root.
pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("HOOKHOST_ROOT")).join(path)
}

/// The compile cache every test process of this run shares.
pub fn cache_dir() -> PathBuf {
    Path::new(env!("HOOKHOST_GUESTS_DIR")).join("../../hookhost-cache")
}

/// One runtime per test process, with the shared compile cache.
pub fn runtime() -> Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            Runtime::new(RuntimeConfig {
                cache_dir: Some(cache_dir()),
                ..RuntimeConfig::default()
            })
            .expect("the runtime starts")
        })
        .clone()
}

/// Loads a built component into [`runtime`].
pub async fn plugin(name: &str) -> Plugin {
    runtime().load(&guest(name)).await.unwrap_or_else(|e| panic!("{e}"))
}

/// A store loaded with fixture files.
pub fn store(fixtures: &[&Path]) -> MemoryStore {
    let store = MemoryStore::new();
    for file in fixtures {
        let fixture = Fixture::load(file).unwrap_or_else(|e| panic!("{e}"));
        store.apply_now(&fixture.writes).unwrap_or_else(|e| panic!("{e}"));
    }
    store
}

/// The view of `cluster_id` as `node_id` sees it, now. The snapshot holds the
/// whole store, so that only the view keeps other clusters out.
pub fn view(store: &MemoryStore, cluster_id: &str, node_id: &str) -> ClusterView {
    let snapshot = Arc::new(store.snapshot_now("/"));
    ClusterView::for_node(snapshot, cluster_id, node_id).unwrap_or_else(|e| panic!("{e}"))
}

/// A call as the view's node, in `operation`, with `workdir` mounted at `/`.
pub fn call(view: ClusterView, operation: Operation, workdir: &Path, limits: Limits) -> Call {
    Call {
        node: node_context(&view, operation, "op-test", 1).expect("a node view"),
        view,
        mounts: vec![Mount {
            host: workdir.to_path_buf(),
            guest: "/".into(),
            writable: true,
        }],
        limits,
    }
}

/// A benchmark's app: `spec` (JSON text) written as `spec.json` in `dir`,
/// beside the no-op component its roles name as `noop_hooks.wasm`; the spec's path.
pub fn noop_app(dir: &Path, spec: &str) -> PathBuf {
    let file = dir.join("spec.json");
    std::fs::write(&file, spec).expect("write the spec");
    std::fs::copy(guest(NOOP), dir.join("noop_hooks.wasm")).expect("copy the component");
    file
}

/// The benchmarks' cluster: three roles splitting `nodes` (two at order 0,
/// one at order 1), each with init, start, stop and destroy of the no-op component.
pub fn three_roles(nodes: u32) -> String {
    let third = nodes / 3;
    let services = |order: u32| serde_json::json!({"init": {"order": order}, "start": {"order": order}, "stop": {"order": order}, "destroy": {"order": order}});
    serde_json::json!({
        "name": "bench",
        "nodes": [
            {"role": "a", "count": nodes - 2 * third, "plugin": "noop_hooks.wasm", "services": services(0)},
            {"role": "b", "count": third, "plugin": "noop_hooks.wasm", "services": services(0)},
            {"role": "c", "count": third, "plugin": "noop_hooks.wasm", "services": services(1)},
        ],
    })
    .to_string()
}

/// Creates a cluster of `spec` (the no-op app) with `engine`, then deletes
/// it, checking both succeed; returns (create seconds, delete seconds, hook calls).
pub async fn create_then_delete(engine: &hookhost::engine::Engine, spec: &str) -> (f64, f64, usize) {
    use hookhost::request::OperationRequest;
    use hookhost::store::OperationStatus;
    let app = tempfile::tempdir().expect("a temp dir");
    let spec = noop_app(app.path(), spec);
    let started = std::time::Instant::now();
    let op = engine
        .submit(OperationRequest::CreateCluster {
            spec: Some(spec),
            app: None,
            name: None,
        })
        .await
        .expect("create starts");
    let created = engine.run(&op.id).await.expect("create runs");
    let create = started.elapsed().as_secs_f64();
    assert_eq!(created.status, OperationStatus::Succeeded, "{:?}", created.error);
    let hooks = engine.store().events(&op.id).expect("events").len();
    let started = std::time::Instant::now();
    let op = engine
        .submit(OperationRequest::DeleteCluster {
            cluster: created.cluster_id.clone(),
            force: false,
        })
        .await
        .expect("delete starts");
    let deleted = engine.run(&op.id).await.expect("delete runs");
    let delete = started.elapsed().as_secs_f64();
    assert_eq!(deleted.status, OperationStatus::Succeeded, "{:?}", deleted.error);
    assert_eq!(
        engine.cluster(&created.cluster_id).expect("cluster").status,
        hookhost::cluster::ClusterStatus::Deleted
    );
    (
        create,
        delete,
        hooks + engine.store().events(&op.id).expect("events").len(),
    )
}

/// A benchmark's engine on the embedded stores of `state_dir`, with room
/// for 64 hooks at once.
pub fn bench_engine(state_dir: &Path) -> hookhost::engine::Engine {
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache_dir()),
        max_instances: 64,
        ..RuntimeConfig::default()
    })
    .expect("the runtime starts");
    hookhost::engine::Engine::open(state_dir, runtime).expect("the engine opens")
}

/// One HTTP/1.1 request to a `hookhost serve` at `addr` (the tests' and the
/// benchmark's client: one connection a request); the status and the JSON
/// body (`null` when it is not JSON).
pub fn http(addr: &str, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("the server accepts");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("the request is sent");
    stream.write_all(body).expect("the request is sent");
    let mut reply = Vec::new();
    if let Err(e) = stream.read_to_end(&mut reply) {
        panic!("{method} {path}: {e}");
    }
    let text = String::from_utf8_lossy(&reply);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, serde_json::from_str(body).unwrap_or(serde_json::Value::Null))
}

/// The upload body of an app version: `spec` with one component, `component.wasm` of `guest`.
pub fn app_upload(app: &str, spec: &serde_json::Value, guest_name: &str, component: &str) -> serde_json::Value {
    use base64::Engine as _;
    let wasm = std::fs::read(guest(guest_name)).expect("the component is built");
    serde_json::json!({
        "app": app, "version": "1.0", "spec": spec,
        "components": {component: base64::engine::general_purpose::STANDARD.encode(wasm)},
    })
}
