//! Creating and deleting whole clusters on the durable store, at 100, 1,000
//! and 5,000 nodes in three roles (orders 0, 0 and 1), with hooks that do
//! nothing: what the engine itself costs per node (resources, metadata,
//! journal, events, config render, init/start/stop/destroy invocations).
//!
//! `cargo bench --bench lifecycle` (release). The last line is:
//! `lifecycle: create_1000_s=<s> delete_1000_s=<s> create_5000_over_1000=<ratio>`

use hookhost_test_support as support;

const SIZES: [u32; 3] = [100, 1000, 5000];

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
    let mut results = Vec::new();
    for nodes in SIZES {
        let (create, delete, hooks) = tokio.block_on(create_then_delete(nodes));
        println!(
            "{nodes:>5} nodes: create {create:.3} s ({:.0} µs/node) · delete {delete:.3} s ({:.0} µs/node) · {hooks} hook calls",
            create * 1e6 / f64::from(nodes),
            delete * 1e6 / f64::from(nodes)
        );
        results.push((nodes, create, delete));
    }
    let at = |n: u32| results.iter().find(|r| r.0 == n).copied().expect("measured");
    let (_, create_1000, delete_1000) = at(1000);
    let (_, create_5000, _) = at(5000);
    println!(
        "lifecycle: create_1000_s={create_1000:.3} delete_1000_s={delete_1000:.3} create_5000_over_1000={:.2}",
        create_5000 / create_1000
    );
}

/// One fresh state directory; returns (create seconds, delete seconds, hook calls).
async fn create_then_delete(nodes: u32) -> (f64, f64, usize) {
    let state = tempfile::tempdir().expect("a temp dir");
    let engine = support::bench_engine(state.path());
    support::create_then_delete(&engine, &support::three_roles(nodes)).await
}
