//! Fairness between tenants of one `hookhost serve`: tenant A creates a
//! 2,000-node cluster whose hooks each sleep 5 ms while tenant B creates
//! 3-node clusters one after another; B's create times beside A are
//! compared with B's alone, in the same run.
//!
//! The server runs in this process on a loopback port and both tenants
//! speak HTTP to it. A create's time is the operation's own (from submit to
//! end, as the server records it). `HOOKHOST_BENCH_B_CREATES` sets how many
//! creates B runs alone (default 30); beside A, B runs while A's create does.
//! `HOOKHOST_BENCH_STEPS=1` prints each of B's creates with its steps' times.
//!
//! `cargo bench --bench tenants` (release). The last line is:
//! `tenants: b_alone_p50_ms=<ms> b_beside_a_p50_ms=<ms> b_beside_a_p99_ms=<ms> ratio_p99=<x>`
//! where `ratio_p99` is B's p99 beside A over B's p99 alone.

use hookhost::server::{Quotas, Server, ServerConfig, Tenants};
use hookhost_test_support as support;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Hook slots of the server: what the tenants share.
const SLOTS: u32 = 16;
/// Nodes of A's cluster (`HOOKHOST_BENCH_A_NODES` sets another number).
const A_NODES: u32 = 2000;

fn main() {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
    let b_creates: usize = std::env::var("HOOKHOST_BENCH_B_CREATES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let state = tempfile::tempdir().expect("a temp dir");
    let tenants = Tenants::new(state.path());
    let roomy = Quotas {
        max_hooks: SLOTS,
        max_clusters: 100_000,
        max_nodes: 1_000_000,
        max_operations: 100,
        ..Quotas::default()
    };
    let (_, token_a) = tenants.add("a", roomy).expect("tenant a");
    let (_, token_b) = tenants.add("b", roomy).expect("tenant b");

    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio starts");
    let server = Server::open(ServerConfig {
        store: None,
        state_dir: state.path().to_path_buf(),
        cache_dir: Some(support::cache_dir()),
        hook_slots: SLOTS,
        health_interval: None,
    })
    .expect("the server opens");
    let listener = tokio
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("a loopback port");
    let addr = listener.local_addr().expect("its address").to_string();
    tokio.spawn(async move { axum::serve(listener, server.router()).await });

    let upload = |token: &str, app: &str, nodes: u32| {
        let body = support::app_upload(app, &spec(nodes), support::NOOP, "noop_hooks.wasm");
        let (status, doc) = support::http(&addr, "POST", "/api/v1/apps", Some(token), body.to_string().as_bytes());
        assert!(status == 201 || status == 200, "upload: {status} {doc}");
    };
    let a_nodes: u32 = std::env::var("HOOKHOST_BENCH_A_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(A_NODES);
    upload(&token_a, "big", a_nodes);
    upload(&token_b, "small", 3);

    let create = |token: &str, app: &str| -> String {
        let request = json!({"kind": "create-cluster", "app": {"app": app, "version": "1.0"}});
        let (status, op) = support::http(
            &addr,
            "POST",
            "/api/v1/operations",
            Some(token),
            request.to_string().as_bytes(),
        );
        assert_eq!(status, 202, "{op}");
        op["id"].as_str().expect("an op id").to_string()
    };
    // An ended operation's time, and where it went (`HOOKHOST_BENCH_STEPS`).
    let ended = |token: &str, op: &str| -> Option<(Duration, String)> {
        let (_, doc) = support::http(&addr, "GET", &format!("/api/v1/operations/{op}"), Some(token), b"");
        let op = &doc["operation"];
        if op["status"] == "running" {
            return None;
        }
        assert_eq!(op["status"], "succeeded", "{op}");
        let at = |v: &Value| humantime::parse_rfc3339(v.as_str().expect("a time")).expect("RFC 3339");
        let since = |from, to| ms(at(to).duration_since(at(from)).unwrap_or_default());
        let mut steps = vec![format!(
            "submit→first {:.1}",
            since(&op["created_at"], &doc["steps"][0]["started_at"])
        )];
        for step in doc["steps"].as_array().expect("steps") {
            let action = &op["plan"]["steps"][step["index"].as_u64().expect("an index") as usize]["action"];
            let name = action["kind"].as_str().unwrap_or("?");
            let name = match action["service"].as_str() {
                Some(service) => format!("{name}({service})"),
                None => name.to_string(),
            };
            steps.push(format!("{name} {:.1}", since(&step["started_at"], &step["ended_at"])));
        }
        Some((
            at(&op["ended_at"])
                .duration_since(at(&op["created_at"]))
                .unwrap_or_default(),
            steps.join(" · "),
        ))
    };
    let breakdowns = std::env::var_os("HOOKHOST_BENCH_STEPS").is_some();
    let b_once = |label: &str| -> Duration {
        let op = create(&token_b, "small");
        loop {
            if let Some((took, steps)) = ended(&token_b, &op) {
                if breakdowns {
                    println!("{label} {:.1} ms: {steps}", ms(took));
                }
                return took;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    };

    // Warm up (compile, caches), then B alone.
    b_once("warm-up");
    let mut alone: Vec<Duration> = (0..b_creates).map(|_| b_once("alone")).collect();

    // B beside A: as many creates as fit while A's create runs.
    let started = Instant::now();
    let a_op = create(&token_a, "big");
    let mut beside = Vec::new();
    let a_took = loop {
        beside.push(b_once(&format!("beside at {:.0} ms", ms(started.elapsed()))));
        if let Some((took, steps)) = ended(&token_a, &a_op) {
            if breakdowns {
                println!("A {:.1} ms: {steps}", ms(took));
            }
            break took;
        }
    };
    println!(
        "A: {a_nodes}-node create with 5 ms hooks took {:.2} s ({:.2} s wall with B beside it)",
        a_took.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    let (alone_p50, alone_p99) = (percentile(&mut alone, 50.0), percentile(&mut alone, 99.0));
    let (beside_p50, beside_p99) = (percentile(&mut beside, 50.0), percentile(&mut beside, 99.0));
    println!(
        "B: 3-node creates: alone {} · p50 {:.1} ms · p99 {:.1} ms; beside A {} · p50 {:.1} ms · p99 {:.1} ms",
        alone.len(),
        ms(alone_p50),
        ms(alone_p99),
        beside.len(),
        ms(beside_p50),
        ms(beside_p99)
    );
    println!(
        "tenants: b_alone_p50_ms={:.1} b_beside_a_p50_ms={:.1} b_beside_a_p99_ms={:.1} ratio_p99={:.2}",
        ms(alone_p50),
        ms(beside_p50),
        ms(beside_p99),
        ms(beside_p99) / ms(alone_p99)
    );
}

/// Three roles splitting `nodes` (two at order 0, one at order 1), every hook sleeping 5 ms.
fn spec(nodes: u32) -> Value {
    let third = nodes / 3;
    let services = |order: u32| json!({"init": {"order": order}, "start": {"order": order}});
    json!({
        "name": "slow",
        "env": {"sleep_ms": "5"},
        "nodes": [
            {"role": "a", "count": nodes - 2 * third, "plugin": "noop_hooks.wasm", "services": services(0)},
            {"role": "b", "count": third, "plugin": "noop_hooks.wasm", "services": services(0)},
            {"role": "c", "count": third, "plugin": "noop_hooks.wasm", "services": services(1)},
        ],
    })
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    let rank = ((p / 100.0) * (samples.len() - 1) as f64).round() as usize;
    samples[rank]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
