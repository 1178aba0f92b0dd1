//! Cost of one hook call against spawning a process, measured in one run.
//!
//! A call is what the engine pays per node and service: a fresh store and
//! instance of the ZooKeeper component (pooled), the node's directory mounted,
//! and its `health_check` hook, which reads three metadata keys. The baseline
//! is fork+exec of `/bin/true`, what a shell-command hook would cost at least.
//!
//! In the same run it measures where a call's time goes (the runtime's
//! phase timings: store and WASI context, instantiation, the call with its
//! metadata reads, teardown), the floor (the same call on one instance kept
//! from call to call, which the engine never does), and how throughput
//! scales from one task on one thread to two tasks on two threads.
//!
//! `cargo bench --bench dispatch` (release). `HOOKHOST_BENCH_CALLS` sets the
//! number of hook calls (default 10000). The last line is:
//! `dispatch: median_us=<x> p99_us=<y> fork_exec_median_us=<z> ratio=<z/x> floor_us=<f> threads2_speedup=<s>`

use hookhost::hook::{Operation, Service};
use hookhost::runtime::{Limits, Phases, Request};
use hookhost_test_support as support;
use std::process::Command;
use std::time::{Duration, Instant};

/// Rounds of interleaved measurement, so drift on a noisy machine hits both sides.
const ROUNDS: usize = 5;
/// fork+exec samples per round.
const FORKS_PER_ROUND: usize = 200;

fn main() {
    // As the `hookhost` binary does: no backtrace capture inside wasmtime errors.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
    let calls: usize = std::env::var("HOOKHOST_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio starts");

    let store = support::store(&[&support::repo("example-plugins/zookeeper/fixtures/cluster.json")]);
    let workdir = tempfile::tempdir().expect("a temp dir");
    let call = support::call(
        support::view(&store, "cl-zk", "cln-zk1"),
        Operation::HealthCheck,
        workdir.path(),
        Limits::default(),
    );
    let runtime = support::runtime();
    let zk = tokio.block_on(support::plugin(support::ZOOKEEPER));
    let request = Request {
        service: Service::HealthCheck,
        params: "{}".into(),
        pre_check: false,
    };
    let one_call = || async {
        let started = Instant::now();
        let outcome = runtime.run(&zk, &call, &request).await;
        let elapsed = started.elapsed();
        assert_eq!(outcome.result, Ok(None), "the benchmarked hook must succeed");
        (elapsed, outcome.report.phases)
    };

    tokio.block_on(async {
        for _ in 0..calls.min(1000) {
            one_call().await;
        }
    });
    let mut hook_samples = Vec::with_capacity(calls);
    let mut phases: Vec<Phases> = Vec::with_capacity(calls);
    let mut floor_samples = Vec::with_capacity(calls);
    let mut fork_samples = Vec::with_capacity(ROUNDS * FORKS_PER_ROUND);
    for round in 0..ROUNDS {
        let n = calls / ROUNDS + usize::from(round < calls % ROUNDS);
        tokio.block_on(async {
            for _ in 0..n {
                let (elapsed, phase) = one_call().await;
                hook_samples.push(elapsed);
                phases.push(phase);
            }
            let reused = runtime
                .time_reused(&zk, &call, &request, n)
                .await
                .expect("the reused instance answers");
            floor_samples.extend(reused);
        });
        for _ in 0..FORKS_PER_ROUND {
            let started = Instant::now();
            let status = Command::new("/bin/true").status().expect("/bin/true runs");
            fork_samples.push(started.elapsed());
            assert!(status.success());
        }
    }

    let one_thread = throughput(&runtime, &zk, &call, &request, calls, 1);
    let two_threads = throughput(&runtime, &zk, &call, &request, calls, 2);
    let floor = percentile(&mut floor_samples, 50.0);
    let phase = |pick: fn(&Phases) -> Duration| {
        let mut all: Vec<Duration> = phases.iter().map(pick).collect();
        percentile(&mut all, 50.0)
    };
    let table = [
        ("store + WASI context + host state", phase(|p| p.setup)),
        ("instantiate", phase(|p| p.instantiate)),
        ("call (with its metadata reads)", phase(|p| p.call)),
        ("teardown (slot back to the pool)", phase(|p| p.teardown)),
    ];
    println!("phase medians of a fresh-instance call:");
    for (name, d) in &table {
        println!("  {name:<36} {:>7.1} us", us(*d));
    }
    println!(
        "  {:<36} {:>7.1} us (the same call on an instance kept between calls)",
        "floor",
        us(floor)
    );
    let median = percentile(&mut hook_samples, 50.0);
    let p99 = percentile(&mut hook_samples, 99.0);
    let fork_median = percentile(&mut fork_samples, 50.0);
    println!(
        "hook calls: {} · min_us={:.1} median_us={:.1} p99_us={:.1} max_us={:.1}",
        hook_samples.len(),
        us(hook_samples[0]),
        us(median),
        us(p99),
        us(hook_samples[hook_samples.len() - 1])
    );
    println!(
        "fork+exec /bin/true: {} · median_us={:.1} p99_us={:.1}",
        fork_samples.len(),
        us(fork_median),
        us(percentile(&mut fork_samples, 99.0))
    );
    println!(
        "throughput: {one_thread:.0} calls/s with 1 task on 1 worker thread, {two_threads:.0} calls/s with 2 tasks on 2"
    );
    println!(
        "dispatch: median_us={:.1} p99_us={:.1} fork_exec_median_us={:.1} ratio={:.1} floor_us={:.1} threads2_speedup={:.2}",
        us(median),
        us(p99),
        us(fork_median),
        us(fork_median) / us(median),
        us(floor),
        two_threads / one_thread
    );
}

/// Calls per second with `tasks` tasks calling at once on as many worker threads.
fn throughput(
    runtime: &hookhost::runtime::Runtime,
    zk: &hookhost::runtime::Plugin,
    call: &hookhost::runtime::Call,
    request: &Request,
    calls: usize,
    tasks: usize,
) -> f64 {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(tasks)
        .enable_all()
        .build()
        .expect("tokio");
    let per_task = calls / tasks;
    let started = Instant::now();
    tokio.block_on(async {
        let running: Vec<_> = (0..tasks)
            .map(|_| {
                let (runtime, zk, call, request) = (runtime.clone(), zk.clone(), call.clone(), request.clone());
                tokio::spawn(async move {
                    for _ in 0..per_task {
                        assert_eq!(runtime.run(&zk, &call, &request).await.result, Ok(None));
                    }
                })
            })
            .collect();
        for task in running {
            task.await.expect("task finishes");
        }
    });
    (per_task * tasks) as f64 / started.elapsed().as_secs_f64()
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    let rank = ((p / 100.0) * (samples.len() - 1) as f64).round() as usize;
    samples[rank]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
