//! The lifecycle's cost on each store, in the same run: creating and
//! deleting a 1,000-node cluster in three roles (orders 0, 0 and 1) with
//! hooks that do nothing, on the embedded redb store and on etcd (a local
//! single-member etcd started by the bench), interleaved embedded / etcd
//! twice so that drift hits both. What the etcd store adds is its round
//! trips and etcd's fsync per transaction; the engine writes the same
//! records either way.
//!
//! `cargo bench --features etcd --bench stores` (release; needs etcd and
//! protoc). The last line is:
//! `stores: embedded_create_1000_s=<s> etcd_create_1000_s=<s> ratio=<etcd/embedded>`

use hookhost::engine::Engine;
use hookhost::etcd::LocalEtcd;
use hookhost::runtime::{Runtime, RuntimeConfig};
use hookhost_test_support as support;

const NODES: u32 = 1000;
const ROUNDS: usize = 2;

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
    let etcd = LocalEtcd::start().expect("etcd starts (apt-get install etcd-server)");
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(support::cache_dir()),
        max_instances: 64,
        ..RuntimeConfig::default()
    })
    .expect("the runtime starts");
    let (mut embedded, mut over_etcd) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        for on_etcd in [false, true] {
            let state = tempfile::tempdir().expect("a temp dir");
            let store = on_etcd.then(|| etcd.url(&format!("bench-{round}")));
            let engine = Engine::builder()
                .state_dir(state.path())
                .etcd(store)
                .runner(std::sync::Arc::new(runtime.clone()))
                .build()
                .expect("the engine opens");
            let (create, delete, _) =
                tokio.block_on(support::create_then_delete(&engine, &support::three_roles(NODES)));
            let name = if on_etcd { "etcd" } else { "embedded" };
            println!("{name:>8}: create {create:.3} s · delete {delete:.3} s ({NODES} nodes)");
            if on_etcd { &mut over_etcd } else { &mut embedded }.push(create);
        }
    }
    let best = |all: &[f64]| all.iter().copied().fold(f64::INFINITY, f64::min);
    let (embedded, over_etcd) = (best(&embedded), best(&over_etcd));
    println!(
        "stores: embedded_create_1000_s={embedded:.3} etcd_create_1000_s={over_etcd:.3} ratio={:.2}",
        over_etcd / embedded
    );
}
