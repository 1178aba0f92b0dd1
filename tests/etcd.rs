//! The lifecycle over etcd (`--store etcd://...`, the `etcd` feature): the
//! same flows with the same hook order as on the embedded store, one store
//! seen by two hosts, namespaces apart, a process killed with -9 whose claim
//! ends with its lease, and etcd itself killed and restarted mid-operation.
//! Each test starts its own etcd (Debian's `etcd-server`) on free loopback ports.

#[path = "common/mod.rs"]
mod common;

use common::*;
use hookhost::etcd::LocalEtcd;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn url(etcd: &LocalEtcd, namespace: &str) -> String {
    etcd.url(namespace).to_string()
}

#[test]
fn the_lifecycle_over_etcd_runs_the_hooks_as_the_embedded_store_does() {
    let etcd = LocalEtcd::start().unwrap();
    let app = app(|_| {});
    let (embedded, over_etcd) = (Host::new(), Host::on_store(&url(&etcd, "lifecycle")));
    let mut timelines = Vec::new();
    for host in [&embedded, &over_etcd] {
        let (cluster, create) = host.create(&app);
        let mut ops = vec![create];
        for verb in ["stop", "start", "delete"] {
            let doc = op_ok(host, &["cluster", verb, &cluster], 0);
            ops.push(doc["operation"].as_str().unwrap().to_string());
        }
        let timeline: Vec<Vec<String>> = ops.iter().map(|op| waves(&host.events(op))).collect();
        timelines.push(timeline);
        assert_eq!(host.cluster(&cluster)["status"], "deleted");
    }
    assert_eq!(timelines[0], timelines[1], "the same hooks, in the same waves");
    assert_eq!(
        timelines[1][0],
        ["init: cache | web", "start: cache+db | web", "init: db"],
        "create: db's init is a post-start service"
    );
    // Nothing of the store is in the state directory: no redb file, no lock files.
    let kept: Vec<String> = std::fs::read_dir(over_etcd.state.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        kept.iter().all(|name| !name.ends_with(".redb") && name != "locks"),
        "{kept:?}"
    );
}

#[test]
fn two_hosts_share_one_store_and_namespaces_keep_stores_apart() {
    let etcd = LocalEtcd::start().unwrap();
    let app = app(|_| {});
    let (a, b) = (
        Host::on_store(&url(&etcd, "shared")),
        Host::on_store(&url(&etcd, "shared")),
    );
    let (cluster, op) = a.create(&app);
    // Host b (its own state directory) sees a's cluster, operation and events.
    assert_eq!(b.cluster(&cluster)["status"], "active");
    assert_eq!(waves(&b.events(&op)), waves(&a.events(&op)));
    // The metadata tree is shared too: b reads what a's create wrote.
    let out = b.run(&["cluster", "metadata", &cluster, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tree: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        tree["hosts"]["db"].as_object().map(|nodes| nodes.len()),
        Some(2),
        "{tree:#}"
    );
    // The nodes are a's: b may not act on the cluster.
    for args in [
        vec!["cluster", "stop", cluster.as_str()],
        vec!["cluster", "delete", cluster.as_str(), "--force"],
    ] {
        let out = b.run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        let host = a.state.path().display().to_string();
        assert!(
            stderr.contains("runs on host") && stderr.contains(&host),
            "{args:?}: {stderr}"
        );
    }
    assert_eq!(b.cluster(&cluster)["status"], "active", "nothing changed");
    // a's change is seen by b at once, in the metadata tree too.
    op_ok(&a, &["cluster", "update-env", &cluster, "x=7"], 0);
    let out = b.run(&["cluster", "metadata", &cluster, "/env/x", "--json"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "\"7\"");
    // Another namespace on the same etcd is another, empty store.
    let other = Host::on_store(&url(&etcd, "shared/other"));
    let out = other.run(&["cluster", "list", "--json"]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
    let out = other.run(&["cluster", "show", &cluster]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("no cluster {cluster}")));
}

#[test]
fn bad_and_unreachable_stores_are_named_before_anything_runs() {
    let host = Host::new();
    let app = app(|_| {});
    for (store, says) in [
        ("redis://127.0.0.1:1", "does not start with etcd://"),
        ("etcd://127.0.0.1", "has no :port"),
        ("etcd://127.0.0.1:2379/a/../b", "namespace"),
    ] {
        let out = host
            .command(&["cluster", "list"])
            .env("HOOKHOST_STORE", store)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{store}: {stderr}");
        assert!(stderr.contains(says) && stderr.contains("--store"), "{store}: {stderr}");
    }
    // Nobody listens there: the create fails at once, naming the endpoint, and leaves nothing.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let out = host
        .command(&["cluster", "create", app.spec.to_str().unwrap()])
        .env("HOOKHOST_STORE", format!("etcd://127.0.0.1:{closed}"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr.contains(&format!("etcd at http://127.0.0.1:{closed}")),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(40), "it gives up");
    assert!(!host.state.path().join("nodes").exists(), "no node was made");
}

/// The recorder app with each `init` sleeping `ms`.
fn slow_init(ms: u64) -> App {
    app(|spec| {
        spec["env"]["sleep_ms"] = json!("0");
        spec["nodes"][2]["env"]["sleep_ms"] = json!("0");
        spec["env"]["sleep_ms_init"] = json!(ms.to_string());
    })
}

/// Waits until some `init` hook of the host's only create has begun; returns the operation.
fn init_begun(host: &Host) -> String {
    let mut op = String::new();
    wait_for("an init hook", || {
        if let Some(found) = ops_of(host, "create-cluster").pop() {
            op = found;
            return host.events(&op).iter().any(|e| e["service"] == "init");
        }
        false
    });
    op
}

#[test]
fn a_process_killed_mid_hook_holds_its_claim_until_its_lease_ends_then_the_operation_resumes() {
    let etcd = LocalEtcd::start().unwrap();
    let store = url(&etcd, "kill9");
    let app = slow_init(5000);
    let host = Host::on_store(&store);
    let mut child = spawn_with(&host, &["cluster", "create", app.spec.to_str().unwrap()], "5");
    let pid = child.id();
    let op = init_begun(&host);
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = Instant::now();
    // Until its lease ends (5 s after its last keep-alive), the dead process still holds the claim.
    let out = host
        .command(&["op", "resume", &op])
        .env("HOOKHOST_LEASE_TTL", "2")
        .output()
        .unwrap();
    if killed.elapsed() < Duration::from_secs(3) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(&format!("is being run by process {pid}")), "{stderr}");
    }
    // Then it is interrupted, and resuming runs the cut-off hooks again.
    wait_for("the claim to end with the lease", || {
        let out = host.run(&["op", "show", &op, "--json"]);
        serde_json::from_slice::<Value>(&out.stdout).is_ok_and(|doc| doc["status"] == "interrupted")
    });
    // Another host of the store may not resume it: the nodes are this one's.
    let other = Host::on_store(&url(&etcd, "kill9"));
    let out = other.run(&["op", "resume", &op]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("runs on host"), "{stderr}");
    let out = host
        .command(&["op", "resume", &op, "--json"])
        .env("HOOKHOST_LEASE_TTL", "2")
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!("{}", String::from_utf8_lossy(&out.stderr));
    });
    assert_eq!(doc["status"], "succeeded", "{doc:#}");
    let events = host.events(&op);
    let inits = of(&events, "init");
    assert!(inits.iter().any(|e| e["outcome"] == "interrupted"), "{inits:#?}");
    assert!(
        inits.iter().any(|e| e["outcome"] == "ok" && e["attempt"] == 2),
        "the cut-off init ran again: {inits:#?}"
    );
}

/// Starts a command in the background with a lease of `ttl` seconds.
fn spawn_with(host: &Host, args: &[&str], ttl: &str) -> std::process::Child {
    host.command(args)
        .env("HOOKHOST_LEASE_TTL", ttl)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn etcd_killed_and_restarted_mid_operation_loses_nothing_and_the_operation_finishes() {
    let mut etcd = LocalEtcd::start().unwrap();
    let host = Host::on_store(&url(&etcd, "restart"));
    let app = slow_init(3000);
    let child = spawn_with(
        &host,
        &["cluster", "create", app.spec.to_str().unwrap(), "--json"],
        "10",
    );
    let op = init_begun(&host);
    let before = host.events(&op).len();
    etcd.kill();
    std::thread::sleep(Duration::from_millis(1500));
    etcd.restart().unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["status"], "succeeded", "{doc:#}");
    let events = host.events(&op);
    assert!(events.len() >= before);
    assert_eq!(
        waves(&events),
        ["init: cache | web", "start: cache+db | web", "init: db"],
        "every hook ran once, in order"
    );
    assert!(
        events.iter().all(|e| e["outcome"] == "ok" && e["attempt"] == 1),
        "{events:#?}"
    );
    assert_eq!(host.cluster(doc["cluster_id"].as_str().unwrap())["status"], "active");
}
