//! The example hooks, built with the SDK, run through the runtime and do what
//! they say: the files they write, the config they render, what they see.

use hookhost::hook::{Operation, Service};
use hookhost::metadata::{MetadataStore, Write};
use hookhost::runtime::{Failure, Limits, Request};
use hookhost_test_support as support;
use serde_json::{Value, json};
use std::fs;
use std::path::Path;

const CLUSTER: &str = "cl-zk";

fn zk_fixture() -> std::path::PathBuf {
    support::repo("example-plugins/zookeeper/fixtures/cluster.json")
}

fn request(service: Service) -> Request {
    Request {
        service,
        params: "{}".into(),
        pre_check: false,
    }
}

fn custom(name: &str, params: Value) -> Request {
    Request {
        service: Service::Custom(name.into()),
        params: params.to_string(),
        pre_check: false,
    }
}

#[tokio::test]
async fn zookeeper_lists_its_services() {
    let zk = support::plugin(support::ZOOKEEPER).await;
    assert_eq!(
        zk.services(),
        [
            Service::Init,
            Service::Start,
            Service::Stop,
            Service::Destroy,
            Service::ScaleOut,
            Service::ScaleIn,
            Service::Reload,
            Service::HealthCheck,
            Service::Backup,
            Service::Restore,
            Service::Custom("find_leader".into()),
        ]
    );
}

#[tokio::test]
async fn zookeeper_init_writes_myid_from_host_sid_and_start_checks_it() {
    let store = support::store(&[&zk_fixture()]);
    let runtime = support::runtime();
    let zk = support::plugin(support::ZOOKEEPER).await;
    let dir = tempfile::tempdir().unwrap();

    let call = support::call(
        support::view(&store, CLUSTER, "cln-zk2"),
        Operation::CreateCluster,
        dir.path(),
        Limits::default(),
    );
    let init = runtime.run(&zk, &call, &request(Service::Init)).await;
    assert_eq!(init.result, Ok(None));
    assert_eq!(
        fs::read_to_string(dir.path().join("data/zookeeper/myid")).unwrap(),
        "2\n"
    );
    assert_eq!(init.report.logs.len(), 1);
    assert_eq!(init.report.logs[0].message, "wrote /data/zookeeper/myid = 2");
    assert_eq!(init.report.revision, 1);
    assert!(init.report.peak_memory > 0);

    let start = runtime.run(&zk, &call, &request(Service::Start)).await;
    assert_eq!(start.result, Ok(None));
    assert_eq!(
        fs::read_to_string(dir.path().join("data/zookeeper/state")).unwrap(),
        "running"
    );

    // Another node's identity on this node's disk is caught.
    let other = support::call(
        support::view(&store, CLUSTER, "cln-zk3"),
        Operation::StartCluster,
        dir.path(),
        Limits::default(),
    );
    let mismatch = runtime.run(&zk, &other, &request(Service::Start)).await;
    assert_eq!(
        mismatch.result,
        Err(Failure::HookError {
            code: 11,
            message: "myid is 2 but /host/sid is 3".into()
        })
    );
}

#[tokio::test]
async fn zookeeper_start_before_init_fails_with_its_code() {
    let store = support::store(&[&zk_fixture()]);
    let dir = tempfile::tempdir().unwrap();
    let call = support::call(
        support::view(&store, CLUSTER, "cln-zk1"),
        Operation::StartCluster,
        dir.path(),
        Limits::default(),
    );
    let outcome = support::runtime()
        .run(
            &support::plugin(support::ZOOKEEPER).await,
            &call,
            &request(Service::Start),
        )
        .await;
    match outcome.result {
        Err(Failure::HookError { code: 13, message }) => assert!(message.contains("was init run?"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn zookeeper_renders_zoo_cfg_from_hosts_and_env() {
    let store = support::store(&[&zk_fixture()]);
    let dir = tempfile::tempdir().unwrap();
    let runtime = support::runtime();
    let zk = support::plugin(support::ZOOKEEPER).await;
    let call = support::call(
        support::view(&store, CLUSTER, "cln-zk1"),
        Operation::CreateCluster,
        dir.path(),
        Limits::default(),
    );
    let files = runtime.render(&zk, &call).await.into_result().unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].path, "/opt/zookeeper/conf/zoo.cfg");
    assert_eq!(files[0].mode, 0o644);
    assert_eq!(
        String::from_utf8(files[0].content.clone()).unwrap(),
        "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/data/zookeeper\nclientPort=2181\n\
         server.1=192.168.0.11:2888:3888\nserver.2=192.168.0.12:2888:3888\nserver.3=192.168.0.13:2888:3888\n"
    );
    assert!(
        !dir.path().join("opt").exists(),
        "render returns files; it writes nothing"
    );

    // A node joins: the next render sees it, in sid order.
    let base = "/clusters/cl-zk/hosts/zk_node/i-zk4";
    let writes: Vec<Write> = [
        ("node_id", "cln-zk4"),
        ("ip", "192.168.0.14"),
        ("sid", "4"),
        ("role", "zk_node"),
    ]
    .iter()
    .map(|(k, v)| Write::Put {
        path: format!("{base}/{k}"),
        value: v.to_string(),
    })
    .chain([Write::Put {
        path: "/clusters/cl-zk/env/tickTime".into(),
        value: "3000".into(),
    }])
    .collect();
    store.apply(&writes).await.unwrap();
    let call = support::call(
        support::view(&store, CLUSTER, "cln-zk4"),
        Operation::AddNodes,
        dir.path(),
        Limits::default(),
    );
    let text = String::from_utf8(
        runtime.render(&zk, &call).await.into_result().unwrap()[0]
            .content
            .clone(),
    )
    .unwrap();
    assert!(text.starts_with("tickTime=3000\n"), "{text}");
    assert!(
        text.ends_with("server.3=192.168.0.13:2888:3888\nserver.4=192.168.0.14:2888:3888\n"),
        "{text}"
    );
}

/// Puts transaction files in a node's ZooKeeper data directory.
fn with_transactions(dir: &Path) {
    let data = dir.join("data/zookeeper/version-2");
    fs::create_dir_all(&data).unwrap();
    fs::write(data.join("log.100000001"), "txn").unwrap();
    fs::write(data.join("snapshot.100000000"), "snap").unwrap();
}

#[tokio::test]
async fn zookeeper_destroy_refuses_to_lose_unreplicated_data() {
    let store = support::store(&[&zk_fixture()]);
    let runtime = support::runtime();
    let zk = support::plugin(support::ZOOKEEPER).await;
    let dir = tempfile::tempdir().unwrap();
    let as_zk1 = |op| {
        support::call(
            support::view(&store, CLUSTER, "cln-zk1"),
            op,
            dir.path(),
            Limits::default(),
        )
    };

    // No data: nothing to lose.
    assert_eq!(
        runtime
            .run(&zk, &as_zk1(Operation::DeleteCluster), &request(Service::Destroy))
            .await
            .result,
        Ok(None)
    );

    with_transactions(dir.path());
    // Deleting the whole cluster: nobody else keeps the data.
    let refused = runtime
        .run(&zk, &as_zk1(Operation::DeleteCluster), &request(Service::Destroy))
        .await;
    assert_eq!(
        refused.result,
        Err(Failure::HookError {
            code: 21,
            message: "node cln-zk1 holds 2 transaction file(s) (log.100000001, snapshot.100000000) that no surviving node has; \
                      back up first or force the deletion"
                .into()
        })
    );
    // Deleting one node while two others stay: they have the data.
    let leaving = [("node_id", "cln-zk1"), ("ip", "192.168.0.11")].map(|(k, v)| Write::Put {
        path: format!("/clusters/cl-zk/deleting-hosts/zk_node/i-zk1/{k}"),
        value: v.into(),
    });
    store.apply(&leaving).await.unwrap();
    let allowed = runtime
        .run(&zk, &as_zk1(Operation::DeleteNodes), &request(Service::Destroy))
        .await;
    assert_eq!(allowed.result, Ok(None));
    assert_eq!(
        allowed.report.logs[0].message,
        "data is replicated on 2 surviving node(s)"
    );

    // Deleting all three nodes at once leaves no survivor either.
    let all_leaving: Vec<Write> = ["i-zk2", "i-zk3"]
        .iter()
        .map(|iid| Write::Put {
            path: format!("/clusters/cl-zk/deleting-hosts/zk_node/{iid}/node_id"),
            value: format!("cln-{}", &iid[2..]),
        })
        .collect();
    store.apply(&all_leaving).await.unwrap();
    let refused = runtime
        .run(&zk, &as_zk1(Operation::DeleteNodes), &request(Service::Destroy))
        .await;
    assert!(
        matches!(refused.result, Err(Failure::HookError { code: 21, .. })),
        "{:?}",
        refused.result
    );
}

#[tokio::test]
async fn a_report_says_where_the_time_went_and_a_kept_instance_gives_the_floor() {
    let store = support::store(&[&zk_fixture()]);
    let dir = tempfile::tempdir().unwrap();
    let runtime = support::runtime();
    let zk = support::plugin(support::ZOOKEEPER).await;
    let call = support::call(
        support::view(&store, CLUSTER, "cln-zk3"),
        Operation::HealthCheck,
        dir.path(),
        Limits::default(),
    );
    let outcome = runtime.run(&zk, &call, &request(Service::HealthCheck)).await;
    assert_eq!(outcome.result, Ok(None));
    let (report, p) = (&outcome.report, outcome.report.phases);
    assert!(
        [p.setup, p.instantiate, p.call, p.teardown]
            .iter()
            .all(|d| !d.is_zero()),
        "{p:?}"
    );
    // The phases up to the hook's return are the elapsed time; teardown comes after.
    let until_return = p.setup + p.instantiate + p.call;
    let gap = until_return.abs_diff(report.elapsed);
    assert!(
        gap < std::time::Duration::from_micros(2),
        "{p:?} vs {:?}",
        report.elapsed
    );
    let json = serde_json::to_value(report).unwrap();
    for key in ["setup_us", "instantiate_us", "call_us", "teardown_us"] {
        assert!(json["phases"][key].is_u64(), "{json}");
    }
    // The floor: one instance, called again and again.
    let times = runtime
        .time_reused(&zk, &call, &request(Service::HealthCheck), 5)
        .await
        .unwrap();
    assert_eq!(times.len(), 5);
    let refused = runtime
        .time_reused(&zk, &call, &request(Service::Upgrade), 1)
        .await
        .unwrap_err();
    assert!(matches!(refused, Failure::NotImplemented { .. }), "{refused:?}");
}

#[tokio::test]
async fn zookeeper_health_check_reads_three_keys() {
    let store = support::store(&[&zk_fixture()]);
    let dir = tempfile::tempdir().unwrap();
    let runtime = support::runtime();
    let zk = support::plugin(support::ZOOKEEPER).await;
    let call = support::call(
        support::view(&store, CLUSTER, "cln-zk3"),
        Operation::HealthCheck,
        dir.path(),
        Limits::default(),
    );
    assert_eq!(
        runtime.run(&zk, &call, &request(Service::HealthCheck)).await.result,
        Ok(None)
    );

    store
        .apply(&[Write::Put {
            path: "/clusters/cl-zk/env/client_port".into(),
            value: "99999".into(),
        }])
        .await
        .unwrap();
    let call = support::call(
        support::view(&store, CLUSTER, "cln-zk3"),
        Operation::HealthCheck,
        dir.path(),
        Limits::default(),
    );
    assert_eq!(
        runtime.run(&zk, &call, &request(Service::HealthCheck)).await.result,
        Err(Failure::HookError {
            code: 31,
            message: "bad identity: sid=3 ip=192.168.0.13 port=99999".into()
        })
    );
}

#[tokio::test]
async fn a_hook_sees_its_context_its_node_and_only_its_cluster() {
    let neighbour = support::repo("tests/fixtures/neighbour.json");
    let store = support::store(&[&zk_fixture(), &neighbour]);
    let dir = tempfile::tempdir().unwrap();
    let mut call = support::call(
        support::view(&store, CLUSTER, "cln-zk2"),
        Operation::AddNodes,
        dir.path(),
        Limits::default(),
    );
    call.node.attempt = 3;
    let mut probe_request = custom("seen", json!({"snapshot_id": "s-1"}));
    probe_request.pre_check = true;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let outcome = support::runtime()
        .run(&support::plugin(support::PROBE).await, &call, &probe_request)
        .await;
    let seen: Value = serde_json::from_str(&outcome.result.unwrap().unwrap()).unwrap();

    assert_eq!(seen["service"], "seen");
    assert_eq!(seen["pre_check"], true);
    assert_eq!(seen["params"], json!({"snapshot_id": "s-1"}));
    assert_eq!(seen["operation"], "Operation::AddNodes");
    assert_eq!(seen["operation_id"], "op-test");
    assert_eq!(seen["cluster_id"], "cl-zk");
    assert_eq!(seen["node_id"], "cln-zk2");
    assert_eq!(seen["instance_id"], "i-zk2");
    assert_eq!(seen["role"], "zk_node");
    assert_eq!(seen["attempt"], 3);
    let deadline = seen["deadline_unix_ms"].as_u64().unwrap();
    assert!(
        deadline >= before + 599_000 && deadline <= before + 601_000 + 60_000,
        "{deadline} vs {before}"
    );
    assert_eq!(
        seen["host"],
        json!({"node_id": "cln-zk2", "ip": "192.168.0.12", "sid": "2", "gid": "2", "cpu": "1", "memory": "2048",
               "volume_size": "10", "role": "zk_node", "instance_id": "i-zk2"})
    );
    assert_eq!(seen["root_children"], json!(["cluster", "env", "host", "hosts"]));
    assert_eq!(seen["revision"], 2, "both fixtures were written before the snapshot");
    let tree = seen["tree"].to_string();
    assert!(tree.contains("192.168.0.13"), "the whole own cluster is visible");
    assert!(
        !tree.contains("cl-other") && !tree.contains("tenant-b-secret"),
        "{tree}"
    );
    assert_eq!(outcome.report.logs[0].message, "reporting what I see");
}

#[tokio::test]
async fn one_invocation_reads_one_snapshot() {
    let store = support::store(&[&support::repo("tests/fixtures/neighbour.json")]);
    let put = |value: &str| Write::Put {
        path: "/clusters/cl-other/env/key".into(),
        value: value.into(),
    };
    store.apply(&[put("before")]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let call = support::call(
        support::view(&store, "cl-other", "cln-b1"),
        Operation::Manual,
        dir.path(),
        Limits::default(),
    );
    let runtime = support::runtime();
    let probe = support::plugin(support::PROBE).await;
    let request = custom("twice", json!({"wait_ms": 300}));
    let hook = tokio::spawn({
        let (runtime, probe, call, request) = (runtime.clone(), probe.clone(), call.clone(), request.clone());
        async move { runtime.run(&probe, &call, &request).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    store.apply(&[put("after")]).await.unwrap();
    let outcome = hook.await.unwrap();
    assert_eq!(outcome.result, Ok(Some("before,before".into())));

    let fresh = support::call(
        support::view(&store, "cl-other", "cln-b1"),
        Operation::Manual,
        dir.path(),
        Limits::default(),
    );
    let outcome = runtime
        .run(&probe, &fresh, &custom("twice", json!({"wait_ms": 0})))
        .await;
    assert_eq!(outcome.result, Ok(Some("after,after".into())));
}

#[tokio::test]
async fn hook_errors_carry_code_and_message_and_name_the_component() {
    let store = support::store(&[&zk_fixture()]);
    let dir = tempfile::tempdir().unwrap();
    let call = support::call(
        support::view(&store, CLUSTER, "cln-zk1"),
        Operation::Manual,
        dir.path(),
        Limits::default(),
    );
    let outcome = support::runtime()
        .run(
            &support::plugin(support::PROBE).await,
            &call,
            &custom("fail", json!({"code": 7, "message": "disk full"})),
        )
        .await;
    let err = outcome.into_result().unwrap_err();
    assert_eq!(
        err.failure,
        Failure::HookError {
            code: 7,
            message: "disk full".into()
        }
    );
    let text = err.to_string();
    assert!(
        text.ends_with("probe_hooks.wasm: run fail: the hook returned error 7: disk full"),
        "{text}"
    );
}

#[tokio::test]
async fn render_returns_every_file_with_its_mode() {
    let store = support::store(&[&zk_fixture()]);
    let dir = tempfile::tempdir().unwrap();
    let call = support::call(
        support::view(&store, CLUSTER, "cln-zk3"),
        Operation::Manual,
        dir.path(),
        Limits::default(),
    );
    let files = support::runtime()
        .render(&support::plugin(support::PROBE).await, &call)
        .await
        .into_result()
        .unwrap();
    let files: Vec<(String, u32, String)> = files
        .into_iter()
        .map(|f| (f.path, f.mode, String::from_utf8(f.content).unwrap()))
        .collect();
    assert_eq!(
        files,
        vec![
            ("/etc/probe/probe.conf".into(), 0o644, "node=cln-zk3\nport=80\n".into()),
            ("/etc/probe/run.sh".into(), 0o755, "#!/bin/sh\n".into()),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_nodes_run_at_once_each_in_its_own_sandbox() {
    let store = support::store(&[&zk_fixture()]);
    let runtime = support::runtime();
    let zk = support::plugin(support::ZOOKEEPER).await;
    let dirs: Vec<tempfile::TempDir> = (0..60).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut tasks = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let node = ["cln-zk1", "cln-zk2", "cln-zk3"][i % 3];
        let call = support::call(
            support::view(&store, CLUSTER, node),
            Operation::CreateCluster,
            dir.path(),
            Limits::default(),
        );
        let (runtime, zk) = (runtime.clone(), zk.clone());
        tasks.push(tokio::spawn(async move {
            runtime.run(&zk, &call, &request(Service::Init)).await.result
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), Ok(None));
    }
    for (i, dir) in dirs.iter().enumerate() {
        let myid = fs::read_to_string(dir.path().join("data/zookeeper/myid")).unwrap();
        assert_eq!(
            myid,
            format!("{}\n", i % 3 + 1),
            "node dir {i} holds only its own node's write"
        );
    }
}

#[tokio::test]
async fn a_component_rewritten_in_place_is_loaded_again() {
    let runtime = support::runtime();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.wasm");
    fs::copy(support::guest(support::PROBE), &file).unwrap();
    let first = runtime.load(&file).await.unwrap();
    assert_eq!(first.services()[0], Service::Custom("seen".into()));
    assert_eq!(
        runtime.load(&file).await.unwrap().sha256(),
        first.sha256(),
        "unchanged: the same plugin"
    );

    fs::copy(support::guest(support::ZOOKEEPER), &file).unwrap();
    let second = runtime.load(&file).await.unwrap();
    assert_ne!(second.sha256(), first.sha256());
    assert_eq!(second.services()[0], Service::Init);
}

#[tokio::test]
async fn compiled_components_are_cached_on_disk_and_bad_entries_are_replaced() {
    use hookhost::runtime::{CacheStatus, Runtime, RuntimeConfig};
    let cache = tempfile::tempdir().unwrap();
    let fresh_runtime = || {
        Runtime::new(RuntimeConfig {
            cache_dir: Some(cache.path().to_path_buf()),
            ..RuntimeConfig::default()
        })
        .unwrap()
    };
    let probe = support::guest(support::PROBE);
    assert_eq!(
        fresh_runtime().load(&probe).await.unwrap().cache_status(),
        CacheStatus::Compiled
    );
    let entries: Vec<_> = fs::read_dir(cache.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(entries.len(), 1, "one artifact, no temp files left: {entries:?}");
    let name = entries[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with(&support::plugin(support::PROBE).await.sha256()) && name.ends_with(".cwasm"),
        "{name}"
    );

    let runtime = fresh_runtime();
    let cached = runtime.load(&probe).await.unwrap();
    assert_eq!(cached.cache_status(), CacheStatus::Hit);
    assert_eq!(cached.services().len(), 3);
    let store = support::store(&[&zk_fixture()]);
    let dir = tempfile::tempdir().unwrap();
    let call = support::call(
        support::view(&store, CLUSTER, "cln-zk1"),
        Operation::Manual,
        dir.path(),
        Limits::default(),
    );
    let foreign = support::runtime().run(&cached, &call, &custom("fail", json!({}))).await;
    assert_eq!(
        foreign.result,
        Err(Failure::Sandbox {
            message: "the component was loaded by another runtime".into()
        })
    );

    // A torn or foreign entry is recompiled, not trusted.
    fs::write(&entries[0], b"garbage").unwrap();
    let recovered = fresh_runtime().load(&probe).await.unwrap();
    assert_eq!(recovered.cache_status(), CacheStatus::Compiled);
    assert_eq!(
        fresh_runtime().load(&probe).await.unwrap().cache_status(),
        CacheStatus::Hit
    );
}

#[tokio::test]
async fn a_cache_directory_others_can_write_is_not_used() {
    use hookhost::runtime::{CacheStatus, Runtime, RuntimeConfig};
    use std::os::unix::fs::PermissionsExt;
    let cache = tempfile::tempdir().unwrap();
    fs::set_permissions(cache.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let probe = runtime.load(&support::guest(support::PROBE)).await.unwrap();
    assert_eq!(probe.cache_status(), CacheStatus::Compiled);
    assert_eq!(
        fs::read_dir(cache.path()).unwrap().count(),
        0,
        "nothing was written into it"
    );
}

#[tokio::test]
async fn a_pre_check_sees_the_node_read_only() {
    let store = support::store(&[&zk_fixture()]);
    let dir = tempfile::tempdir().unwrap();
    let call = support::call(
        support::view(&store, CLUSTER, "cln-zk1"),
        Operation::AddNodes,
        dir.path(),
        Limits::default(),
    );
    let mut init = request(Service::Init);
    init.pre_check = true;
    let outcome = support::runtime()
        .run(&support::plugin(support::ZOOKEEPER).await, &call, &init)
        .await;
    match outcome.result {
        Err(Failure::HookError { code: 12, message }) => assert!(message.starts_with("/data/zookeeper:"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert!(!dir.path().join("data").exists(), "a pre-check changed the node");
}

#[tokio::test]
async fn a_service_the_component_lacks_is_refused_without_running_it() {
    let store = support::store(&[&zk_fixture()]);
    let dir = tempfile::tempdir().unwrap();
    let call = support::call(
        support::view(&store, CLUSTER, "cln-zk1"),
        Operation::RollingUpgrade,
        dir.path(),
        Limits::default(),
    );
    let outcome = support::runtime()
        .run(
            &support::plugin(support::ZOOKEEPER).await,
            &call,
            &request(Service::Upgrade),
        )
        .await;
    assert_eq!(
        outcome.result,
        Err(Failure::NotImplemented {
            service: "upgrade".into()
        })
    );
    assert_eq!(outcome.report.elapsed, std::time::Duration::ZERO);
}
