//! Scaling on the durable store with hooks that do nothing: adding one node
//! to a 1,000-node cluster and deleting one of 1,001 (every step of the
//! seed's flows: pre-check, resources, `/adding-hosts` or `/deleting-hosts`,
//! the renders of every node, `scale_out`/`scale_in`, ...), and a config
//! refresh: one env change (`update-env`) until every node has rendered and
//! every needed reload is dispatched, on 1,000 and 10,000 nodes; and a
//! rolling upgrade of 200 nodes against a sequential resize of the same
//! nodes (the same stop, new instance, start per node), its baseline.
//!
//! Each figure is the median of several runs. The baseline measured in the
//! same run is the creation of the 1,000-node cluster; ratios to it are
//! printed beside the figures, since machines differ.
//!
//! `cargo bench --bench scale` (release). The last line is:
//! `scale: add_1_to_1000_s=<s> delete_1_of_1001_s=<s> refresh_1000_ms=<ms> refresh_10000_ms=<ms>`

use hookhost::engine::Engine;
use hookhost::request::OperationRequest;
use hookhost::store::OperationStatus;
use hookhost_test_support as support;
use serde_json::json;
use std::time::Instant;

/// Runs of each measurement; the median is reported.
const RUNS: usize = 5;

fn main() {
    // As the `hookhost` binary does: no backtrace capture inside wasmtime errors.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio starts");
    tokio.block_on(async {
        let small = Bench::new(1000).await;
        println!("baseline: create_1000_s={:.3}", small.created_in);
        let (mut adds, mut deletes, mut refreshes) = (Vec::new(), Vec::new(), Vec::new());
        for run in 0..RUNS {
            let (added, node) = small.add_one().await;
            adds.push(added);
            deletes.push(small.delete(&node).await);
            refreshes.push(small.refresh(run).await);
        }
        let (add, delete, refresh_1000) = (median(adds), median(deletes), median(refreshes));
        println!(
            "1000 nodes: add 1 {add:.3} s ({:.2}× create) · delete 1 of 1001 {delete:.3} s ({:.2}× create) · refresh {:.1} ms",
            add / small.created_in,
            delete / small.created_in,
            refresh_1000 * 1e3
        );
        drop(small);
        let large = Bench::new(10_000).await;
        let refreshes: Vec<f64> = {
            let mut all = Vec::new();
            for run in 0..3 {
                all.push(large.refresh(run).await);
            }
            all
        };
        let refresh_10000 = median(refreshes);
        println!(
            "10000 nodes: created in {:.3} s · refresh {:.1} ms ({:.2}× the 1000-node refresh)",
            large.created_in,
            refresh_10000 * 1e3,
            refresh_10000 / refresh_1000
        );
        drop(large);
        // A rolling upgrade visits each node as a sequential resize does
        // (stop, new instance, start) and more (render, register, upgrade
        // done): the resize of the same nodes is its baseline.
        let (rolling, resize) = upgrade_vs_resize(UPGRADED).await;
        println!(
            "{UPGRADED} nodes: rolling upgrade {rolling:.3} s · sequential resize {resize:.3} s ({:.2}× the resize)",
            rolling / resize
        );
        println!(
            "scale: add_1_to_1000_s={add:.3} delete_1_of_1001_s={delete:.3} refresh_1000_ms={:.1} refresh_10000_ms={:.1} rolling_upgrade_{UPGRADED}_s={rolling:.3} upgrade_over_resize={:.2}",
            refresh_1000 * 1e3,
            refresh_10000 * 1e3,
            rolling / resize
        );
    });
}

/// Nodes of the rolling upgrade measured.
const UPGRADED: u32 = 200;

/// A rolling upgrade of `nodes` no-op nodes from version 1 to 2, and a
/// sequential resize of the same nodes; seconds each.
async fn upgrade_vs_resize(nodes: u32) -> (f64, f64) {
    let state = tempfile::tempdir().expect("a temp dir");
    let engine = support::bench_engine(state.path());
    let mut dirs = Vec::new();
    for (version, edit) in [("1", json!({})), ("2", json!({"upgrade_policy": ["1"]}))] {
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut spec: serde_json::Value = serde_json::from_str(&spec(nodes)).expect("json");
        spec["upgrading_policy"] = json!("sequential");
        spec["nodes"][0]["vertical_scaling_policy"] = json!("sequential");
        if let Some(policy) = edit.get("upgrade_policy") {
            spec["upgrade_policy"] = policy.clone();
        }
        let file = support::noop_app(dir.path(), &spec.to_string());
        engine
            .add_app(&file, Some("bench"), Some(version))
            .await
            .expect("the version registers");
        dirs.push(dir);
    }
    let app = hookhost::apps::AppRef {
        app: "bench".into(),
        version: "1".into(),
    };
    let cluster = run(
        &engine,
        OperationRequest::CreateCluster {
            spec: None,
            app: Some(app),
            name: None,
        },
    )
    .await;
    let started = Instant::now();
    run(
        &engine,
        OperationRequest::Resize {
            cluster: cluster.clone(),
            role: "a".into(),
            change: hookhost::request::ResourceChange {
                cpu: Some(2),
                ..Default::default()
            },
        },
    )
    .await;
    let resize = started.elapsed().as_secs_f64();
    let started = Instant::now();
    run(
        &engine,
        OperationRequest::Upgrade {
            cluster,
            version: "2".into(),
            policy: None,
            canaries: 0,
            max_in_flight: 0,
        },
    )
    .await;
    (started.elapsed().as_secs_f64(), resize)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A state directory with one cluster of `nodes` no-op nodes.
struct Bench {
    _app: tempfile::TempDir,
    _state: tempfile::TempDir,
    engine: Engine,
    cluster: String,
    created_in: f64,
}

impl Bench {
    async fn new(nodes: u32) -> Bench {
        let app = tempfile::tempdir().expect("a temp dir");
        let spec = support::noop_app(app.path(), &spec(nodes));
        let state = tempfile::tempdir().expect("a temp dir");
        let engine = support::bench_engine(state.path());
        let started = Instant::now();
        let cluster = run(
            &engine,
            OperationRequest::CreateCluster {
                spec: Some(spec),
                app: None,
                name: None,
            },
        )
        .await;
        Bench {
            _app: app,
            _state: state,
            engine,
            cluster,
            created_in: started.elapsed().as_secs_f64(),
        }
    }

    /// Adds one node; the seconds it took and the new node's id.
    async fn add_one(&self) -> (f64, String) {
        let before = self.engine.cluster(&self.cluster).expect("cluster").node_ids();
        let started = Instant::now();
        run(
            &self.engine,
            OperationRequest::AddNodes {
                cluster: self.cluster.clone(),
                role: "a".into(),
                count: 1,
            },
        )
        .await;
        let took = started.elapsed().as_secs_f64();
        let after = self.engine.cluster(&self.cluster).expect("cluster").node_ids();
        let new = after.into_iter().find(|id| !before.contains(id)).expect("a new node");
        (took, new)
    }

    /// Deletes a node; the seconds it took.
    async fn delete(&self, node: &str) -> f64 {
        let started = Instant::now();
        run(
            &self.engine,
            OperationRequest::DeleteNodes {
                cluster: self.cluster.clone(),
                nodes: vec![node.to_string()],
                force: false,
            },
        )
        .await;
        started.elapsed().as_secs_f64()
    }

    /// One env change until every node rendered; the seconds it took.
    async fn refresh(&self, run_no: usize) -> f64 {
        let mut env = serde_json::Map::new();
        env.insert("generation".into(), json!(run_no + 1));
        let started = Instant::now();
        run(
            &self.engine,
            OperationRequest::UpdateEnv {
                cluster: self.cluster.clone(),
                env,
                role: None,
            },
        )
        .await;
        started.elapsed().as_secs_f64()
    }
}

/// Submits and runs an operation that must succeed; the cluster's id.
async fn run(engine: &Engine, request: OperationRequest) -> String {
    let op = engine.submit(request).await.expect("the operation starts");
    let done = engine.run(&op.id).await.expect("the operation runs");
    assert_eq!(done.status, OperationStatus::Succeeded, "{:?}", done.error);
    done.cluster_id
}

/// One role of `nodes` that scales horizontally, with every hook a no-op.
fn spec(nodes: u32) -> String {
    json!({
        "name": "bench",
        "advanced_actions": ["scale_horizontal"],
        "nodes": [
            {"role": "a", "count": nodes, "plugin": "noop_hooks.wasm",
             "services": {"init": {}, "start": {}, "stop": {}, "destroy": {}, "scale_out": {}, "scale_in": {}}},
        ],
        "env": {"generation": 0},
    })
    .to_string()
}
