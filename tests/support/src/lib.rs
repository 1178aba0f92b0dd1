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
