//! Hostile hooks really attack the sandbox: each attack fails with its own
//! specific error, and the runtime keeps serving normal calls afterwards.

use hookhost::hook::{Operation, Service};
use hookhost::runtime::{Failure, Limits, Outcome, OutputLimitExceeded, Request, Runtime, RuntimeConfig, Stream};
use hookhost_test_support as support;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

fn attack(name: &str) -> Request {
    Request {
        service: Service::Custom(name.into()),
        params: json!({"cluster": "cl-other"}).to_string(),
        pre_check: false,
    }
}

/// Runs one attack as node cln-zk1 of the ZooKeeper cluster, with the
/// neighbouring tenant's cluster in the same store.
async fn run_attack(runtime: &Runtime, name: &str, workdir: &Path, limits: Limits) -> Outcome<Option<String>> {
    let store = support::store(&[
        &support::repo("example-plugins/zookeeper/fixtures/cluster.json"),
        &support::repo("tests/fixtures/neighbour.json"),
    ]);
    let call = support::call(
        support::view(&store, "cl-zk", "cln-zk1"),
        Operation::Manual,
        workdir,
        limits,
    );
    let hostile = runtime.load(&support::guest(support::HOSTILE)).await.unwrap();
    runtime.run(&hostile, &call, &attack(name)).await
}

/// After every attack the same runtime still runs a normal hook correctly.
async fn assert_still_healthy(runtime: &Runtime) {
    let store = support::store(&[&support::repo("example-plugins/zookeeper/fixtures/cluster.json")]);
    let dir = tempfile::tempdir().unwrap();
    let call = support::call(
        support::view(&store, "cl-zk", "cln-zk3"),
        Operation::Manual,
        dir.path(),
        Limits::default(),
    );
    let zk = runtime.load(&support::guest(support::ZOOKEEPER)).await.unwrap();
    let init = Request {
        service: Service::Init,
        params: "{}".into(),
        pre_check: false,
    };
    assert_eq!(runtime.run(&zk, &call, &init).await.result, Ok(None));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("data/zookeeper/myid")).unwrap(),
        "3\n"
    );
}

fn short(timeout_ms: u64) -> Limits {
    Limits {
        timeout: Duration::from_millis(timeout_ms),
        ..Limits::default()
    }
}

#[tokio::test]
async fn an_infinite_loop_is_stopped_at_its_timeout() {
    let runtime = support::runtime();
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_attack(&runtime, "spin", dir.path(), short(300)).await;
    assert_eq!(outcome.result, Err(Failure::Timeout { limit_ms: 300 }));
    assert!(outcome.report.elapsed >= Duration::from_millis(300));
    assert_still_healthy(&runtime).await;
}

#[tokio::test]
async fn a_hook_blocked_in_the_host_is_stopped_at_its_timeout() {
    let runtime = support::runtime();
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_attack(&runtime, "sleep", dir.path(), short(300)).await;
    assert_eq!(outcome.result, Err(Failure::Timeout { limit_ms: 300 }));
    assert_still_healthy(&runtime).await;
}

#[tokio::test]
async fn a_memory_bomb_hits_the_memory_limit() {
    let runtime = support::runtime();
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        memory: 32 << 20,
        ..Limits::default()
    };
    let outcome = run_attack(&runtime, "hog", dir.path(), limits).await;
    match outcome.result {
        Err(Failure::MemoryLimit(e)) => {
            assert_eq!(e.limit, 32 << 20);
            assert!(e.requested > e.limit);
        }
        other => panic!("{other:?}"),
    }
    assert!(outcome.report.peak_memory <= 32 << 20);
    assert!(outcome.report.peak_memory > 16 << 20, "it did get most of its memory");
    assert_still_healthy(&runtime).await;
}

#[tokio::test]
async fn unbounded_recursion_traps_with_a_backtrace() {
    let runtime = support::runtime();
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_attack(&runtime, "recurse", dir.path(), Limits::default()).await;
    match outcome.result {
        Err(Failure::Trap { message, backtrace }) => {
            assert_eq!(message, "wasm trap: call stack exhausted");
            assert!(!backtrace.is_empty() && backtrace.len() <= 8, "{backtrace:?}");
            assert!(
                backtrace.iter().all(|f| f.contains("hostile_hooks::recurse")),
                "{backtrace:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_still_healthy(&runtime).await;
}

#[tokio::test]
async fn a_panic_traps_and_reports_the_panic_message() {
    let runtime = support::runtime();
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_attack(&runtime, "panic", dir.path(), Limits::default()).await;
    match outcome.result {
        Err(Failure::Trap { message, .. }) => {
            assert!(
                message.starts_with("wasm trap: wasm `unreachable` instruction executed"),
                "{message}"
            );
            assert!(
                message.contains("the hook panicked: hostile hook panicked on purpose at hostile/src/lib.rs:"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(String::from_utf8_lossy(&outcome.report.stderr.bytes).contains("hostile hook panicked on purpose"));
}

#[tokio::test]
async fn printing_10_mib_hits_the_output_cap_and_keeps_the_head() {
    let runtime = support::runtime();
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        output: 64 << 10,
        ..Limits::default()
    };
    let outcome = run_attack(&runtime, "flood", dir.path(), limits).await;
    assert_eq!(
        outcome.result,
        Err(Failure::OutputLimit(OutputLimitExceeded {
            stream: Stream::Stdout,
            limit: 64 << 10
        }))
    );
    let stdout = &outcome.report.stdout;
    assert_eq!(stdout.bytes.len(), 64 << 10);
    assert!(stdout.truncated);
    assert!(stdout.bytes.starts_with(&[b'y'; 1023]) && stdout.bytes[1023] == b'\n');
    assert!(stdout.text().ends_with("[... truncated: output limit reached]\n"));
    assert_still_healthy(&runtime).await;
}

#[tokio::test]
async fn flooding_the_log_hits_the_output_cap() {
    let runtime = support::runtime();
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        output: 64 << 10,
        ..Limits::default()
    };
    let outcome = run_attack(&runtime, "log-flood", dir.path(), limits).await;
    assert_eq!(
        outcome.result,
        Err(Failure::OutputLimit(OutputLimitExceeded {
            stream: Stream::Log,
            limit: 64 << 10
        }))
    );
    assert_eq!(
        outcome.report.logs.len(),
        15,
        "15 lines of 4 KiB (and their overhead) fit in 64 KiB"
    );
}

#[tokio::test]
async fn millions_of_empty_log_lines_hit_the_output_cap() {
    let runtime = support::runtime();
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        output: 64 << 10,
        ..Limits::default()
    };
    let outcome = run_attack(&runtime, "log-empty", dir.path(), limits).await;
    assert!(matches!(outcome.result, Err(Failure::OutputLimit(e)) if e.stream == Stream::Log));
    assert_eq!(
        outcome.report.logs.len(),
        1024,
        "each line costs 64 bytes of the 64 KiB"
    );
    assert_still_healthy(&runtime).await;
}

#[tokio::test]
async fn reading_the_hosts_passwd_file_fails() {
    let runtime = support::runtime();
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_attack(&runtime, "read-passwd", dir.path(), Limits::default()).await;
    match outcome.result {
        Err(Failure::HookError { code: 40, message }) => {
            assert_eq!(message, "denied: /etc/passwd: No such file or directory (os error 44)")
        }
        other => panic!("the sandbox leaked: {other:?}"),
    }
}

#[tokio::test]
async fn climbing_out_with_dotdot_planted_links_or_a_hard_link_fails() {
    let runtime = support::runtime();
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/etc", dir.path().join("planted-abs")).unwrap();
    std::os::unix::fs::symlink("../../../../../../../../etc", dir.path().join("planted-rel")).unwrap();
    let outcome = run_attack(&runtime, "dotdot", dir.path(), Limits::default()).await;
    match outcome.result {
        Err(Failure::HookError { code: 41, message }) => {
            assert!(message.contains("/../etc/passwd: Operation not permitted"), "{message}");
            assert!(
                message.contains("../../../../etc/passwd: Operation not permitted"),
                "{message}"
            );
            assert!(
                message.contains("/planted-abs/passwd: Operation not permitted"),
                "{message}"
            );
            assert!(
                message.contains("/planted-rel/passwd: Operation not permitted"),
                "{message}"
            );
            assert!(message.contains("hard_link: Operation not permitted"), "{message}");
        }
        other => panic!("the sandbox leaked: {other:?}"),
    }
    assert!(!dir.path().join("stolen-passwd").exists());
}

#[tokio::test]
async fn opening_a_socket_fails() {
    let runtime = support::runtime();
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_attack(&runtime, "socket", dir.path(), Limits::default()).await;
    assert_eq!(
        outcome.result,
        Err(Failure::HookError {
            code: 42,
            message: "denied: tcp: Permission denied (os error 2); udp: Permission denied (os error 2)".into()
        })
    );
}

#[tokio::test]
async fn another_clusters_metadata_is_unreachable() {
    let runtime = support::runtime();
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_attack(&runtime, "other-cluster", dir.path(), Limits::default()).await;
    match outcome.result {
        Err(Failure::HookError { code: 43, message }) => {
            assert!(
                message.contains("/clusters/cl-other/env/secret: metadata path not visible"),
                "{message}"
            );
            assert!(
                message.contains("/cl-other/env/secret: metadata path not visible"),
                "{message}"
            );
            assert!(
                message.contains(r#"/host/../../../cl-other/env/secret: invalid metadata path"#),
                "{message}"
            );
            assert!(!message.contains("tenant-b-secret"), "{message}");
        }
        other => panic!("the sandbox leaked: {other:?}"),
    }
}

#[tokio::test]
async fn there_is_no_ambient_environment() {
    let runtime = support::runtime();
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_attack(&runtime, "ambient", dir.path(), Limits::default()).await;
    assert_eq!(
        outcome.result,
        Err(Failure::HookError {
            code: 44,
            message: "denied: no environment variables, no arguments".into()
        })
    );
}

#[tokio::test]
async fn fuel_stops_a_busy_hook_deterministically() {
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(support::cache_dir()),
        fuel: true,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        fuel: Some(5_000_000),
        ..Limits::default()
    };
    let outcome = run_attack(&runtime, "spin", dir.path(), limits).await;
    assert_eq!(outcome.result, Err(Failure::OutOfFuel { limit: 5_000_000 }));
    assert_eq!(outcome.report.fuel_consumed, Some(5_000_000));
    assert_still_healthy(&runtime).await;
}

#[tokio::test]
async fn a_missing_node_directory_is_a_sandbox_failure() {
    let runtime = support::runtime();
    let outcome = run_attack(
        &runtime,
        "ambient",
        Path::new("/nonexistent/hookhost-node"),
        Limits::default(),
    )
    .await;
    match outcome.result {
        Err(Failure::Sandbox { message }) => assert!(
            message.starts_with("cannot mount /nonexistent/hookhost-node at /"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacks_running_beside_a_normal_hook_do_not_disturb_it() {
    let runtime = support::runtime();
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut attacks = Vec::new();
    for (name, dir) in ["spin", "hog", "flood", "sleep"].into_iter().zip(&dirs) {
        let (runtime, path) = (runtime.clone(), dir.path().to_path_buf());
        let limits = Limits {
            timeout: Duration::from_secs(2),
            memory: 32 << 20,
            ..Limits::default()
        };
        attacks.push(tokio::spawn(async move {
            run_attack(&runtime, name, &path, limits).await.result
        }));
    }
    // A normal hook completes while the spinning and sleeping hooks still hold their slots.
    assert_still_healthy(&runtime).await;
    assert!(
        !attacks[0].is_finished() && !attacks[3].is_finished(),
        "the normal hook waited for the attackers"
    );
    let results: Vec<_> = futures_results(attacks).await;
    assert!(matches!(results[0], Err(Failure::Timeout { .. })), "{:?}", results[0]);
    assert!(
        matches!(results[1], Err(Failure::MemoryLimit { .. })),
        "{:?}",
        results[1]
    );
    assert!(
        matches!(results[2], Err(Failure::OutputLimit { .. })),
        "{:?}",
        results[2]
    );
    assert!(matches!(results[3], Err(Failure::Timeout { .. })), "{:?}", results[3]);
}

async fn futures_results<T>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}
