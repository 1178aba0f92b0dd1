//! App versions and upgrades through the CLI, with real components: the
//! recorder built as 1.0.0 and again as 2.0.0, so every hook's line says
//! which version's component ran it. Parallel, rolling (with
//! `get_nodes_order`, canaries, a failure part-way, kill -9) and in-place
//! upgrades, each recovery, and the bad input that changes nothing.

mod common;

use common::op_ok as ok;
use common::*;
use hookhost_test_support as support;
use serde_json::{Value, json};
use std::path::Path;

/// The base spec of the upgrade tests: db ×3 (order 0), web ×2 (order 1).
fn base_spec() -> Value {
    json!({
        "name": "Upgrades",
        "vxnet": "vxnet-up",
        "nodes": [
            {"role": "db", "count": 3, "plugin": "hooks.wasm", "volume": {"size": 1},
             "services": {"init": {}, "start": {}, "stop": {}, "reload": {},
                          "upgrade": {"post_start_service": true}, "rollback": {}}},
            {"role": "web", "count": 2, "plugin": "hooks.wasm",
             "services": {"init": {"order": 1}, "start": {"order": 1}, "stop": {"order": 1},
                          "upgrade": {"order": 1}}}
        ],
        "env": {"sleep_ms": "0", "x": "0", "sleep_ms_start": "", "sleep_ms_upgrade": "", "fail_start": ""}
    })
}

/// A host with app `rec` registered: version 1.0 (the recorder 1.0.0, `v1`
/// applied to the base spec) and 2.0 (the recorder 2.0.0, upgradable from
/// 1.0, `v2` applied); the app directories live as long as it does.
struct Versions {
    host: Host,
    dirs: Vec<tempfile::TempDir>,
}

impl Versions {
    fn new(v1: impl FnOnce(&mut Value), v2: impl FnOnce(&mut Value)) -> Versions {
        let mut versions = Versions {
            host: Host::new(),
            dirs: Vec::new(),
        };
        versions.add("1.0", support::RECORDER, v1);
        versions.add("2.0", support::RECORDER_V2, |spec| {
            spec["upgrade_policy"] = json!(["1.0"]);
            v2(spec)
        });
        versions
    }

    /// Registers a version: its spec and component in a directory of their own.
    fn add(&mut self, version: &str, component: &str, edit: impl FnOnce(&mut Value)) -> std::path::PathBuf {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = base_spec();
        edit(&mut spec);
        std::fs::write(dir.path().join("spec.json"), spec.to_string()).unwrap();
        std::fs::copy(support::guest(component), dir.path().join("hooks.wasm")).unwrap();
        let path = dir.path().to_path_buf();
        let out = self.host.run(&[
            "app",
            "add",
            path.to_str().unwrap(),
            "--app",
            "rec",
            "--version",
            version,
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        self.dirs.push(dir);
        path
    }

    fn create(&self) -> String {
        let doc = ok(
            &self.host,
            &["cluster", "create", "--app", "rec", "--version", "1.0"],
            0,
        );
        doc["cluster_id"].as_str().unwrap().to_string()
    }
}

/// The recorder's lines of one service on a node, where it began.
fn begun(host: &Host, cluster: &str, node: &str, service: &str) -> Vec<Value> {
    host.calls(cluster, node)
        .into_iter()
        .filter(|c| c["service"] == service && c["phase"] == "begin")
        .collect()
}

/// Each node's id by role and sid.
fn node_by_sid(cluster: &Value, role: &str, sid: u64) -> String {
    cluster["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["role"] == role && n["sid"] == sid)
        .map(|n| n["node_id"].as_str().unwrap().to_string())
        .unwrap()
}

/// The version a node runs, as `cluster show --json` records it.
fn node_version(cluster: &Value, node: &str) -> String {
    let n = cluster["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node_id"] == node)
        .unwrap();
    n["version"]
        .as_str()
        .unwrap_or(cluster["app"]["version"].as_str().unwrap())
        .to_string()
}

fn metadata(host: &Host, cluster: &str, path: &str) -> Option<String> {
    let out = host.run(&["cluster", "metadata", cluster, path]);
    out.status.success().then(|| String::from_utf8(out.stdout).unwrap())
}

/// The events of the services that are not config rendering, in order.
fn hooks(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["service"] != "render" && e["service"] != "reload")
        .collect()
}

#[test]
fn a_parallel_upgrade_runs_the_new_version_with_the_audit_then_removes_it() {
    let v = Versions::new(|_| {}, |_| {});
    let host = &v.host;
    let cluster = v.create();
    let c = host.cluster(&cluster);
    assert_eq!(c["app"], json!({"app": "rec", "version": "1.0"}));
    assert_eq!(
        metadata(host, &cluster, "/cluster/app_version").unwrap().lines().nth(1),
        Some("/cluster/app_version 1.0")
    );
    // A parallel upgrade runs on a stopped cluster.
    let doc = ok(host, &["cluster", "upgrade", &cluster, "--version", "2.0"], 2);
    assert!(
        doc["error"]
            .as_str()
            .unwrap()
            .contains("runs on a stopped cluster: stop it first"),
        "{doc:#}"
    );
    ok(host, &["cluster", "stop", &cluster], 0);
    let doc = ok(host, &["cluster", "upgrade", &cluster, "--version", "2.0"], 0);
    assert_eq!(doc["status"], "succeeded", "{doc:#}");
    let op = last_op(host, "upgrade");
    let events = host.events(&op);
    // Steps 1-4: upgrade before start where post_start_service is false (web),
    // after it where true (db); roles by order.
    assert_eq!(
        waves(&events),
        ["upgrade: web", "start: db | web", "upgrade: db"],
        "{events:#?}"
    );
    // `op events` says which version's component ran each hook.
    for e in &events {
        assert_eq!(e["version"], "2.0", "{e:#}");
    }
    let stopped = host.events(&last_op(host, "stop-cluster"));
    assert!(stopped.iter().all(|e| e["version"] == "1.0"));
    let c = host.cluster(&cluster);
    assert_eq!(c["status"], "active");
    assert_eq!(c["app"]["version"], "2.0");
    assert!(c["upgrade"].is_null());
    for node in c["nodes"].as_array().unwrap() {
        let id = node["node_id"].as_str().unwrap();
        assert!(node["version"].is_null(), "{node:#}");
        // Every hook of the upgrade ran the 2.0.0 component and saw the audit.
        let during: Vec<Value> = host
            .calls(&cluster, id)
            .into_iter()
            .filter(|l| l["operation_id"] == op.as_str())
            .collect();
        assert!(!during.is_empty());
        for line in &during {
            assert_eq!(line["version"], "2.0.0", "{line:#}");
            assert_eq!(line["audit"], json!(["1.0", "2.0"]), "{line:#}");
            assert_eq!(line["app_version"], "2.0");
            assert_eq!(line["operation"], "Operation::ParallelUpgrade");
        }
        // The stop before it ran 1.0.0.
        assert_eq!(begun(host, &cluster, id, "stop")[0]["version"], "1.0.0");
    }
    assert!(
        metadata(host, &cluster, "/upgrade-audit").is_none(),
        "the audit is removed"
    );
    assert_eq!(
        metadata(host, &cluster, "/cluster/app_version").unwrap().lines().nth(1),
        Some("/cluster/app_version 2.0")
    );
    // The same version again is refused, and so is a downgrade with no upgrade to undo.
    let doc = ok(host, &["cluster", "upgrade", &cluster, "--version", "2.0"], 2);
    assert!(doc["error"].as_str().unwrap().contains("already runs version 2.0"));
    let doc = ok(host, &["cluster", "downgrade", &cluster], 2);
    assert!(doc["error"].as_str().unwrap().contains("is in no upgrade"), "{doc:#}");
}

#[test]
fn a_failed_parallel_upgrade_says_how_to_recover_and_a_downgrade_boots_the_old_version() {
    let v = Versions::new(|_| {}, |spec| spec["nodes"][0]["env"] = json!({"fail_upgrade": "71"}));
    let host = &v.host;
    let cluster = v.create();
    ok(host, &["cluster", "stop", &cluster], 0);
    let doc = ok(host, &["cluster", "upgrade", &cluster, "--version", "2.0"], 1);
    let error = doc["error"].as_str().unwrap();
    assert!(error.contains("error 71"), "{error}");
    assert!(
        error.contains(&format!("downgrade it (`hookhost cluster downgrade {cluster}`)")),
        "{error}"
    );
    let c = host.cluster(&cluster);
    assert_eq!(c["status"], "failed");
    assert_eq!(c["upgrade"]["from"], "1.0");
    // `cluster show` says what runs next, from where the cluster is.
    let shown = String::from_utf8(host.run(&["cluster", "show", &cluster]).stdout).unwrap();
    assert!(
        shown.contains(&format!(
            "did not finish: stop it (`hookhost cluster stop {cluster}`) first, then upgrade it again"
        )),
        "{shown}"
    );
    assert!(metadata(host, &cluster, "/upgrade-audit").is_none());
    // Nothing else runs on it meanwhile; a downgrade needs it stopped.
    let doc = ok(host, &["cluster", "downgrade", &cluster], 2);
    assert!(doc["error"].as_str().unwrap().contains("stop it first"), "{doc:#}");
    ok(host, &["cluster", "stop", &cluster], 0);
    let doc = ok(host, &["cluster", "update-env", &cluster, "x=1"], 2);
    assert!(doc["error"].as_str().unwrap().contains("did not finish"), "{doc:#}");
    let doc = ok(host, &["cluster", "downgrade", &cluster], 0);
    assert_eq!(doc["status"], "succeeded", "{doc:#}");
    let op = last_op(host, "downgrade");
    let events = host.events(&op);
    // Steps 6-8: boot the old version, render, start by order.
    assert_eq!(waves(&events), ["start: db | web"]);
    let c = host.cluster(&cluster);
    assert_eq!(
        (c["status"].as_str(), c["app"]["version"].as_str()),
        (Some("active"), Some("1.0"))
    );
    assert!(c["upgrade"].is_null());
    for node in c["nodes"].as_array().unwrap() {
        let id = node["node_id"].as_str().unwrap();
        let start = begun(host, &cluster, id, "start").pop().unwrap();
        assert_eq!(start["version"], "1.0.0");
        assert_eq!(start["operation"], "Operation::UpgradeRecovery");
        assert_eq!(
            start["audit"],
            json!(["1.0", "2.0"]),
            "the audit shows during the downgrade"
        );
    }
    assert!(metadata(host, &cluster, "/upgrade-audit").is_none());
}

/// One role of five nodes whose `get_nodes_order` orders upgrades and
/// rollbacks (the recorder replies by descending sid); rolling upgrades.
fn rolling() -> Versions {
    let one_role = |spec: &mut Value| {
        spec["nodes"] = json!([{
            "role": "db", "count": 5, "plugin": "hooks.wasm", "volume": {"size": 1},
            "services": {"init": {}, "start": {}, "stop": {}, "reload": {},
                         "upgrade": {"post_start_service": true},
                         "get_nodes_order": {"event": ["upgrade", "rollback"]}}
        }]);
    };
    Versions::new(one_role, move |spec| {
        one_role(spec);
        spec["upgrading_policy"] = json!("sequential");
    })
}

#[test]
fn a_rolling_upgrade_follows_get_nodes_order_and_stops_at_the_failed_node() {
    let v = rolling();
    let host = &v.host;
    let cluster = v.create();
    let c = host.cluster(&cluster);
    let sid = |s| node_by_sid(&c, "db", s);
    let instance = |c: &Value, id: &str| {
        c["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node_id"] == id)
            .unwrap()["instance_id"]
            .clone()
    };
    // The third node in the reply's order (sid 3 of 5,4,3,2,1) fails its upgrade.
    std::fs::write(host.volume(&cluster, &sid(3)).join("fail-upgrade"), "72").unwrap();
    let doc = ok(host, &["plan", "upgrade", &cluster, "--version", "2.0"], 0);
    let steps = doc["plan"]["steps"].to_string();
    assert!(steps.contains("decides its node order at run time"), "{doc:#}");
    let doc = ok(host, &["cluster", "upgrade", &cluster, "--version", "2.0"], 1);
    let error = doc["error"].as_str().unwrap();
    assert!(
        error.contains("error 72") && error.contains("the nodes not upgraded boot 1.0"),
        "{error}"
    );
    let op = last_op(host, "upgrade");
    let events = host.events(&op);
    let asked = hooks(&events)
        .into_iter()
        .filter(|e| e["service"] == "get_nodes_order")
        .count();
    assert_eq!(asked, 1, "asked once");
    let order: Vec<&str> = hooks(&events)
        .iter()
        .filter(|e| e["service"] == "upgrade")
        .map(|e| e["node_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        [sid(5), sid(4), sid(3)],
        "nodes 1-2 upgraded, node 3 failed, 4-5 untouched"
    );
    // One node at a time: each node's stop, start and upgrade before the next one's stop.
    let per_node: Vec<(&str, &str)> = hooks(&events)
        .iter()
        .filter(|e| e["service"] != "get_nodes_order")
        .map(|e| (e["node_id"].as_str().unwrap(), e["service"].as_str().unwrap()))
        .collect();
    let mut expected = Vec::new();
    for s in [5, 4, 3] {
        for service in ["stop", "start", "upgrade"] {
            expected.push((sid(s), service));
        }
    }
    let expected: Vec<(&str, &str)> = expected.iter().map(|(n, s)| (n.as_str(), *s)).collect();
    assert_eq!(per_node, expected);
    let after = host.cluster(&cluster);
    assert_eq!(after["status"], "failed");
    for s in [5, 4, 3] {
        assert_eq!(node_version(&after, &sid(s)), "2.0", "sid {s} booted 2.0");
        assert_ne!(instance(&after, &sid(s)), instance(&c, &sid(s)), "sid {s} rebooted");
    }
    for s in [2, 1] {
        assert_eq!(node_version(&after, &sid(s)), "1.0", "sid {s} untouched");
        assert_eq!(instance(&after, &sid(s)), instance(&c, &sid(s)), "sid {s} untouched");
        assert!(begun(host, &cluster, &sid(s), "upgrade").is_empty());
    }
    assert_eq!(
        after["upgrade"]["done"],
        json!([sid(4), sid(5)].iter().collect::<std::collections::BTreeSet<_>>())
    );
    assert_eq!(begun(host, &cluster, &sid(5), "upgrade")[0]["version"], "2.0.0");

    // §5.13: stop, start (each node on the version it has), upgrade again:
    // only the nodes not done are upgraded.
    std::fs::remove_file(host.volume(&cluster, &sid(3)).join("fail-upgrade")).unwrap();
    ok(host, &["cluster", "stop", &cluster], 0);
    ok(host, &["cluster", "start", &cluster], 0);
    let started = host.cluster(&cluster);
    // The failed node's upgrade did not complete: it boots the old version again.
    assert_eq!(node_version(&started, &sid(3)), "1.0");
    assert_eq!(
        begun(host, &cluster, &sid(3), "start").pop().unwrap()["version"],
        "1.0.0"
    );
    assert_eq!(node_version(&started, &sid(1)), "1.0");
    assert_eq!(
        begun(host, &cluster, &sid(1), "start").pop().unwrap()["version"],
        "1.0.0"
    );
    assert_eq!(
        begun(host, &cluster, &sid(5), "start").pop().unwrap()["version"],
        "2.0.0"
    );
    let doc = ok(host, &["cluster", "upgrade", &cluster, "--version", "2.0"], 0);
    assert_eq!(doc["status"], "succeeded");
    let events = host.events(&last_op(host, "upgrade"));
    let again = ran(&events, "upgrade");
    assert_eq!(again, [sid(3), sid(2), sid(1)], "finished nodes are not upgraded again");
    let done = host.cluster(&cluster);
    assert!(done["upgrade"].is_null());
    for s in 1..=5 {
        assert_eq!(node_version(&done, &sid(s)), "2.0");
    }
}

#[test]
fn after_a_failed_rolling_upgrade_a_downgrade_starts_the_nodes_in_rollback_order() {
    let v = rolling();
    let host = &v.host;
    let cluster = v.create();
    let c = host.cluster(&cluster);
    let sid = |s| node_by_sid(&c, "db", s);
    std::fs::write(host.volume(&cluster, &sid(4)).join("fail-upgrade"), "1").unwrap();
    ok(host, &["cluster", "upgrade", &cluster, "--version", "2.0"], 1);
    ok(host, &["cluster", "stop", &cluster], 0);
    ok(host, &["cluster", "downgrade", &cluster], 0);
    let events = host.events(&last_op(host, "downgrade"));
    let asked: Vec<&Value> = events.iter().filter(|e| e["service"] == "get_nodes_order").collect();
    assert_eq!(asked.len(), 1);
    let starts: Vec<&Value> = events.iter().filter(|e| e["service"] == "start").collect();
    let order: Vec<&str> = starts.iter().map(|e| e["node_id"].as_str().unwrap()).collect();
    assert_eq!(order, [sid(5), sid(4), sid(3), sid(2), sid(1)]);
    for pair in starts.windows(2) {
        assert!(
            time(&pair[0]["ended_at"]) <= time(&pair[1]["started_at"]),
            "one after another"
        );
    }
    // The order was the failed version's answer to {"event": "rollback"}.
    let asker = asked[0]["node_id"].as_str().unwrap();
    let line = begun(host, &cluster, asker, "get_nodes_order").pop().unwrap();
    assert_eq!(
        (line["params"].clone(), line["version"].clone()),
        (json!({"event": "rollback"}), json!("2.0.0"))
    );
    let after = host.cluster(&cluster);
    assert_eq!(
        (after["status"].as_str(), after["app"]["version"].as_str()),
        (Some("active"), Some("1.0"))
    );
    for s in 1..=5 {
        assert_eq!(
            begun(host, &cluster, &sid(s), "start").pop().unwrap()["version"],
            "1.0.0"
        );
    }
}

#[test]
fn canaries_go_one_at_a_time_then_batches_and_a_failed_canary_stops_the_upgrade() {
    let plain = |spec: &mut Value| {
        spec["nodes"] = json!([{"role": "db", "count": 5, "plugin": "hooks.wasm", "volume": {"size": 1},
            "services": {"start": {}, "stop": {}, "upgrade": {}}}]);
    };
    let v = Versions::new(plain, move |spec| {
        plain(spec);
        spec["upgrading_policy"] = json!("sequential");
    });
    let host = &v.host;
    let cluster = v.create();
    let c = host.cluster(&cluster);
    let sid = |s| node_by_sid(&c, "db", s);
    // The second canary fails: nothing after it runs.
    std::fs::write(host.volume(&cluster, &sid(2)).join("fail-upgrade"), "5").unwrap();
    let args = [
        "cluster",
        "upgrade",
        &cluster,
        "--version",
        "2.0",
        "--canaries",
        "2",
        "--max-in-flight",
        "2",
    ];
    ok(host, &args, 1);
    let events = host.events(&last_op(host, "upgrade"));
    let upgraded = ran(&events, "upgrade");
    assert_eq!(upgraded, [sid(1), sid(2)]);
    for s in 3..=5 {
        assert!(
            begun(host, &cluster, &sid(s), "stop").is_empty(),
            "sid {s} was not touched"
        );
    }
    // Recovered and run again, the rest go the same way: two canaries (sids
    // 2 and 3) one at a time, then two at once (4 and 5).
    std::fs::remove_file(host.volume(&cluster, &sid(2)).join("fail-upgrade")).unwrap();
    ok(host, &["cluster", "stop", &cluster], 0);
    ok(host, &["cluster", "start", &cluster], 0);
    let plan_args = [
        "plan",
        "upgrade",
        &cluster,
        "--version",
        "2.0",
        "--canaries",
        "2",
        "--max-in-flight",
        "2",
    ];
    let doc = ok(host, &plan_args, 0);
    let steps = doc["plan"]["steps"].to_string();
    assert!(
        steps.contains("canary 2 of 2") && steps.contains("at most 2 nodes at once"),
        "{doc:#}"
    );
    ok(host, &args, 0);
    let events = host.events(&last_op(host, "upgrade"));
    let mut batches: Vec<(u64, Vec<String>)> = Vec::new();
    for e in events.iter().filter(|e| e["service"] == "upgrade") {
        let (step, id) = (e["step"].as_u64().unwrap(), e["node_id"].as_str().unwrap().to_string());
        match batches.last_mut() {
            Some((s, ids)) if *s == step => ids.push(id),
            _ => batches.push((step, vec![id])),
        }
    }
    let mut batches: Vec<Vec<String>> = batches
        .into_iter()
        .map(|(_, mut ids)| {
            ids.sort();
            ids
        })
        .collect();
    let mut pair = vec![sid(4), sid(5)];
    pair.sort();
    assert_eq!(batches, [vec![sid(2)], vec![sid(3)], pair.clone()]);
    batches.clear();
}

#[test]
fn a_failed_batch_keeps_what_its_nodes_finished() {
    let plain = |spec: &mut Value| {
        spec["nodes"] = json!([{"role": "db", "count": 4, "plugin": "hooks.wasm", "volume": {"size": 1},
            "services": {"start": {}, "stop": {}, "upgrade": {"post_start_service": true}}}]);
    };
    let v = Versions::new(plain, move |spec| {
        plain(spec);
        spec["upgrading_policy"] = json!("sequential");
        spec["env"]["sleep_ms_upgrade"] = json!("400");
    });
    let host = &v.host;
    let cluster = v.create();
    let c = host.cluster(&cluster);
    let sid = |s| node_by_sid(&c, "db", s);
    // The first batch of two: sid 1 finishes, sid 2 fails.
    std::fs::write(host.volume(&cluster, &sid(2)).join("fail-upgrade"), "8").unwrap();
    let args = [
        "cluster",
        "upgrade",
        &cluster,
        "--version",
        "2.0",
        "--max-in-flight",
        "2",
    ];
    ok(host, &args, 1);
    let events = host.events(&last_op(host, "upgrade"));
    let pair: Vec<&Value> = events.iter().filter(|e| e["service"] == "upgrade").collect();
    assert_eq!(pair.len(), 2);
    assert!(overlap(pair[0], pair[1]), "the batch's two nodes ran at once");
    let after = host.cluster(&cluster);
    assert_eq!(
        after["upgrade"]["done"],
        json!([sid(1)]),
        "the node that finished is kept"
    );
    std::fs::remove_file(host.volume(&cluster, &sid(2)).join("fail-upgrade")).unwrap();
    ok(host, &["cluster", "stop", &cluster], 0);
    ok(host, &["cluster", "start", &cluster], 0);
    ok(host, &args, 0);
    let events = host.events(&last_op(host, "upgrade"));
    let mut again = ran(&events, "upgrade");
    again.sort();
    let mut rest = vec![sid(2), sid(3), sid(4)];
    rest.sort();
    assert_eq!(again, rest, "sid 1 is not upgraded again");
    assert_eq!(begun(host, &cluster, &sid(1), "upgrade").len(), 1);
}

/// Versions for in-place upgrades: 2.0 upgrades in place (`policy`,
/// `pre_check`: whether its upgrade asks first); 2.1 is 2.0 with a payload
/// that its `in-place-upgrade-nodes` copy to db's volume.
fn in_place(policy: &'static str, pre_check: bool) -> Versions {
    let v = Versions::new(
        |_| {},
        move |spec| {
            spec["upgrading_policy"] = json!(policy);
            spec["nodes"][0]["services"]["upgrade"]["pre_check"] = json!(pre_check);
            spec["nodes"][0]["services"]["get_nodes_order"] = json!({"event": ["upgrade", "rollback"]});
        },
    );
    let dir = v.dirs[1].path().to_path_buf();
    let path = dir.join("spec.json");
    let mut spec: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    spec["in-place-upgrade-nodes"] = json!([{"container": {"snapshot": "ss-1"},
        "copy": [{"mount_role": "db", "mount_point": "/upgrade", "source": "/upgrade/bin", "destination": "/data/upgrade/bin"}]}]);
    std::fs::write(&path, spec.to_string()).unwrap();
    let add = |version: &str| {
        v.host.run(&[
            "app",
            "add",
            dir.to_str().unwrap(),
            "--app",
            "rec",
            "--version",
            version,
        ])
    };
    // Copies from a payload it does not ship: refused when registered, not at upgrade time.
    let out = add("2.1");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("in-place-upgrade-nodes[0].copy[0].source") && stderr.contains("no payload/ directory"),
        "{stderr}"
    );
    std::fs::create_dir_all(dir.join("payload/bin")).unwrap();
    std::fs::write(dir.join("payload/bin/upgrade.sh"), "echo 2").unwrap();
    // 2.0's name is taken by other content.
    let out = add("2.0");
    assert_eq!(out.status.code(), Some(2), "2.0's content changed: refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("a version never changes"));
    let out = add("2.1");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    v
}

/// The nodes a service ran on, in the order the events list them.
fn ran<'a>(events: &'a [Value], service: &str) -> Vec<&'a str> {
    events
        .iter()
        .filter(|e| e["service"] == service)
        .map(|e| e["node_id"].as_str().unwrap())
        .collect()
}

#[test]
fn an_in_place_upgrade_asks_first_copies_the_payload_and_keeps_the_image_until_the_next_start() {
    let v = in_place("in-place-parallel", true);
    let host = &v.host;
    let cluster = v.create();
    let c = host.cluster(&cluster);
    let (db, web) = (host.nodes(&cluster, "db"), host.nodes(&cluster, "web"));
    // The pre-check refuses on one node: nothing changes.
    std::fs::write(host.volume(&cluster, &db[1]).join("fail-upgrade"), "9").unwrap();
    let doc = ok(host, &["cluster", "upgrade", &cluster, "--version", "2.1"], 1);
    assert_eq!(doc["status"], "aborted", "{doc:#}");
    let same = host.cluster(&cluster);
    assert_eq!(
        (same["status"].as_str(), same["app"]["version"].as_str()),
        (Some("active"), Some("1.0"))
    );
    assert!(same["upgrade"].is_null());
    assert!(!host.volume(&cluster, &db[0]).join("upgrade").exists());
    std::fs::remove_file(host.volume(&cluster, &db[1]).join("fail-upgrade")).unwrap();

    let doc = ok(host, &["cluster", "upgrade", &cluster, "--version", "2.1"], 0);
    assert_eq!(doc["status"], "succeeded");
    for id in &db {
        let copied = host.volume(&cluster, id).join("upgrade/bin/upgrade.sh");
        assert_eq!(std::fs::read_to_string(copied).unwrap(), "echo 2");
        let upgrade = begun(host, &cluster, id, "upgrade").pop().unwrap();
        assert_eq!(upgrade["version"], "2.0.0", "the new version's upgrade hook");
        assert_eq!(upgrade["operation"], "Operation::InPlaceUpgrade");
        assert_eq!(upgrade["audit"], json!(["1.0", "2.1"]));
    }
    for id in &web {
        assert!(
            !host.volume(&cluster, id).join("upgrade").exists(),
            "web is no mount_role"
        );
    }
    // The new version's upgrade ran on nodes still booted from the old one.
    let events = host.events(&last_op(host, "upgrade"));
    let upgrades: Vec<&Value> = events.iter().filter(|e| e["service"] == "upgrade").collect();
    assert!(!upgrades.is_empty() && upgrades.iter().all(|e| e["version"] == "2.1"));
    let after = host.cluster(&cluster);
    assert_eq!(after["app"]["version"], "2.1");
    // No reboot: the nodes keep 1.0's image (and hooks) until their next start.
    assert_eq!(node_version(&after, &db[0]), "1.0");
    assert_eq!(after["nodes"][0]["instance_id"], c["nodes"][0]["instance_id"]);
    ok(host, &["cluster", "stop", &cluster], 0);
    assert_eq!(begun(host, &cluster, &db[0], "stop").pop().unwrap()["version"], "1.0.0");
    ok(host, &["cluster", "start", &cluster], 0);
    assert_eq!(
        begun(host, &cluster, &db[0], "start").pop().unwrap()["version"],
        "2.0.0"
    );
    assert_eq!(node_version(&host.cluster(&cluster), &db[0]), "2.1");
}

#[test]
fn a_failed_in_place_upgrade_stays_active_and_its_downgrade_runs_rollback_in_order() {
    let v = in_place("in-place-sequential", false);
    let host = &v.host;
    let cluster = v.create();
    let c = host.cluster(&cluster);
    let sid = |s| node_by_sid(&c, "db", s);
    // The sequential upgrade goes 3, 2, 1 (get_nodes_order); 2 fails.
    std::fs::write(host.volume(&cluster, &sid(2)).join("fail-upgrade"), "12").unwrap();
    let doc = ok(host, &["cluster", "upgrade", &cluster, "--version", "2.1"], 1);
    let error = doc["error"].as_str().unwrap();
    assert!(
        error.contains("upgrade it again") && error.contains("rollback hook"),
        "{error}"
    );
    let events = host.events(&last_op(host, "upgrade"));
    let upgraded = ran(&events, "upgrade");
    assert_eq!(upgraded, [sid(3), sid(2)]);
    let after = host.cluster(&cluster);
    assert_eq!(after["status"], "active", "§5.14: recovery runs while it is active");
    assert_eq!(after["upgrade"]["to"], "2.1");
    assert!(metadata(host, &cluster, "/upgrade-audit").is_none());
    // Another version cannot start over it.
    let doc = ok(host, &["cluster", "upgrade", &cluster, "--version", "2.0"], 2);
    assert!(doc["error"].as_str().unwrap().contains("did not finish"), "{doc:#}");

    ok(host, &["cluster", "downgrade", &cluster], 0);
    let events = host.events(&last_op(host, "downgrade"));
    let rolled = ran(&events, "rollback");
    assert_eq!(rolled, [sid(3), sid(2), sid(1)], "serially per get_nodes_order");
    let line = begun(host, &cluster, &sid(1), "rollback").pop().unwrap();
    assert_eq!(line["version"], "2.0.0", "the failed version's rollback hook");
    assert_eq!(line["audit"], json!(["1.0", "2.1"]));
    let asked = begun(host, &cluster, &sid(1), "get_nodes_order");
    assert!(
        asked.iter().any(|l| l["params"] == json!({"event": "rollback"})),
        "{asked:#?}"
    );
    let back = host.cluster(&cluster);
    assert_eq!(
        (back["status"].as_str(), back["app"]["version"].as_str()),
        (Some("active"), Some("1.0"))
    );
    assert!(back["upgrade"].is_null());
    assert_eq!(node_version(&back, &sid(1)), "1.0");
    // Nothing rebooted.
    assert_eq!(back["nodes"][0]["instance_id"], c["nodes"][0]["instance_id"]);
}

#[test]
fn kill_9_in_a_rolling_upgrade_then_resume_upgrades_no_finished_node_again() {
    let v = rolling();
    let host = &v.host;
    let cluster = v.create();
    let c = host.cluster(&cluster);
    let sid = |s| node_by_sid(&c, "db", s);
    // Upgrades are slow: kill -9 while the second node's (sid 4's) runs.
    ok(host, &["cluster", "update-env", &cluster, "sleep_ms_upgrade=1500"], 0);
    let mut child = spawn(host, &["cluster", "upgrade", &cluster, "--version", "2.0"]);
    wait_for("the second node's upgrade to begin", || {
        !begun(host, &cluster, &sid(4), "upgrade").is_empty()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let op = last_op(host, "upgrade");
    let doc = ok(host, &["op", "resume", &op], 0);
    assert_eq!(doc["status"], "succeeded", "{doc:#}");
    let events = host.events(&op);
    let mut ended = std::collections::HashMap::new();
    for e in events
        .iter()
        .filter(|e| e["service"] == "upgrade" && e["outcome"] == "ok")
    {
        *ended.entry(e["node_id"].as_str().unwrap().to_string()).or_insert(0) += 1;
    }
    for s in 1..=5 {
        assert_eq!(ended.get(&sid(s)), Some(&1), "sid {s}'s upgrade ended once: {ended:?}");
    }
    assert_eq!(
        begun(host, &cluster, &sid(5), "upgrade").len(),
        1,
        "the finished node was not upgraded again"
    );
    let interrupted = events
        .iter()
        .any(|e| e["service"] == "upgrade" && e["node_id"] == sid(4).as_str() && e["outcome"] == "interrupted");
    assert!(interrupted);
    let after = host.cluster(&cluster);
    assert_eq!(
        (after["status"].as_str(), after["app"]["version"].as_str()),
        (Some("active"), Some("2.0"))
    );
    assert!(after["upgrade"].is_null());
}

#[test]
fn bad_upgrades_change_nothing() {
    let mut v = Versions::new(|_| {}, |_| {});
    // 3.0 may only be upgraded to from 2.0.
    v.add("3.0", support::RECORDER_V2, |spec| {
        spec["upgrade_policy"] = json!(["2.0"])
    });
    // A version with other roles cannot list 1.0: refused when registered.
    let other = tempfile::tempdir().unwrap();
    let mut spec = base_spec();
    spec["upgrade_policy"] = json!(["1.0"]);
    spec["nodes"][1]["role"] = json!("api");
    std::fs::write(other.path().join("spec.json"), spec.to_string()).unwrap();
    std::fs::copy(support::guest(support::RECORDER_V2), other.path().join("hooks.wasm")).unwrap();
    let out = v.host.run(&[
        "app",
        "add",
        other.path().to_str().unwrap(),
        "--app",
        "rec",
        "--version",
        "4.0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("upgrade_policy[0]: version 1.0 of app rec cannot be upgraded to this one"),
        "{stderr}"
    );
    let host = &v.host;

    let cluster = v.create();
    ok(host, &["cluster", "stop", &cluster], 0);
    let before = host.cluster(&cluster);
    let ops = ops_of(host, "upgrade").len();
    for (args, says) in [
        (
            vec!["--version", "9.9"],
            "app rec has no version 9.9 (its versions: 1.0, 2.0, 3.0)",
        ),
        (vec!["--version", "3.0"], "version 3.0's upgrade_policy lists only 2.0"),
        (vec!["--version", "../2.0"], "may hold only letters"),
        (
            vec!["--version", "2.0", "--canaries", "1"],
            "--canaries and --max-in-flight are for rolling upgrades",
        ),
    ] {
        let mut all = vec!["cluster", "upgrade", cluster.as_str()];
        all.extend(args);
        let doc = ok(host, &all, 2);
        assert!(doc["error"].as_str().unwrap().contains(says), "{all:?}: {doc:#}");
    }
    let doc = ok(host, &["cluster", "upgrade", "cl-nothere", "--version", "2.0"], 2);
    assert!(doc["error"].as_str().unwrap().contains("cl-nothere"), "{doc:#}");
    // A busy cluster: an operation holds it.
    ok(host, &["cluster", "update-env", &cluster, "sleep_ms_start=3000"], 0);
    let mut child = spawn(host, &["cluster", "start", &cluster]);
    wait_for("the start to begin", || host.cluster(&cluster)["status"] == "starting");
    let doc = ok(host, &["cluster", "upgrade", &cluster, "--version", "2.0"], 2);
    assert!(doc["error"].as_str().unwrap().contains("start-cluster"), "{doc:#}");
    assert!(child.wait().unwrap().success());
    // A failed cluster (its start failed) is not upgraded.
    ok(host, &["cluster", "stop", &cluster], 0);
    ok(
        host,
        &["cluster", "update-env", &cluster, "sleep_ms_start=", "fail_start=3"],
        0,
    );
    ok(host, &["cluster", "start", &cluster], 1);
    let doc = ok(host, &["cluster", "upgrade", &cluster, "--version", "2.0"], 2);
    assert!(doc["error"].as_str().unwrap().contains("failed"), "{doc:#}");
    assert_eq!(ops_of(host, "upgrade").len(), ops, "no upgrade operation was made");
    let after = host.cluster(&cluster);
    assert_eq!(after["app"], before["app"]);
    assert!(after["upgrade"].is_null());
    // Registering: bad names and a missing spec are bad input.
    for (args, says) in [
        (vec!["app", "add", "/nonexistent", "--version", "1"], "cannot read"),
        (
            vec!["app", "add", v.dirs[0].path().to_str().unwrap(), "--version", ""],
            "has 0 characters",
        ),
        (
            vec![
                "app",
                "add",
                v.dirs[0].path().to_str().unwrap(),
                "--app",
                "a/b",
                "--version",
                "1",
            ],
            "may hold only",
        ),
    ] {
        let out = host.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = host.run(&["app", "show", "rec", "--json"]);
    let versions: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(versions.as_array().unwrap().len(), 3);
}

#[test]
fn a_spec_path_is_registered_once_by_its_content() {
    let host = Host::new();
    let app = app(|_| {});
    let (first, _) = host.create(&app);
    let (second, _) = host.create(&app);
    let (a, b) = (host.cluster(&first), host.cluster(&second));
    assert_eq!(a["app"], b["app"], "the same content is the same version");
    let version = a["app"]["version"].as_str().unwrap();
    assert!(version.starts_with("d-"), "{version}");
    let out = host.run(&["app", "list", "--json"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 1);
    // Registered under a name, the same content is that version.
    let dir = app.spec.parent().unwrap();
    let out = host.run(&[
        "app",
        "add",
        dir.to_str().unwrap(),
        "--app",
        "recorder",
        "--version",
        "1.0",
    ]);
    assert!(out.status.success());
    let again = host.run(&[
        "app",
        "add",
        dir.to_str().unwrap(),
        "--app",
        "recorder",
        "--version",
        "1.0",
        "--json",
    ]);
    let doc: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(doc["new"], false);
    assert!(Path::new(&doc["source"].as_str().unwrap().to_string()).ends_with("spec.json"));
}

#[test]
fn a_failed_node_order_before_any_node_changes_nothing() {
    let one_role = |spec: &mut Value| {
        spec["nodes"] = json!([{
            "role": "db", "count": 3, "plugin": "hooks.wasm", "volume": {"size": 1},
            "services": {"start": {}, "stop": {}, "upgrade": {},
                         "get_nodes_order": {"event": ["upgrade"]}}
        }]);
    };
    let v = Versions::new(one_role, move |spec| {
        one_role(spec);
        spec["upgrading_policy"] = json!("sequential");
    });
    let host = &v.host;
    let cluster = v.create();
    for node in host.nodes(&cluster, "db") {
        std::fs::write(host.volume(&cluster, &node).join("fail-get_nodes_order"), "4").unwrap();
    }
    let doc = ok(host, &["cluster", "upgrade", &cluster, "--version", "2.0"], 1);
    assert!(doc["error"].as_str().unwrap().contains("error 4"), "{doc:#}");
    let c = host.cluster(&cluster);
    assert_eq!(c["status"], "active", "asking for the order changed nothing");
    assert_eq!(c["app"]["version"], "1.0");
    assert!(c["upgrade"].is_null());
    assert!(metadata(host, &cluster, "/upgrade-audit").is_none());
    ok(host, &["cluster", "update-env", &cluster, "x=1"], 0);
}

#[test]
fn a_failed_copy_marks_no_node_upgraded_and_never_follows_a_link_a_hook_left() {
    let v = in_place("in-place-parallel", true);
    let host = &v.host;
    let cluster = v.create();
    let db = host.nodes(&cluster, "db");
    // A link where the payload goes, as a hook could leave one.
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), host.volume(&cluster, &db[1]).join("upgrade")).unwrap();
    let doc = ok(host, &["cluster", "upgrade", &cluster, "--version", "2.1"], 1);
    assert!(doc["error"].as_str().unwrap().contains("a link"), "{doc:#}");
    assert!(
        std::fs::read_dir(outside.path()).unwrap().next().is_none(),
        "nothing went through the link"
    );
    let after = host.cluster(&cluster);
    assert_eq!(after["status"], "active");
    assert!(
        after["upgrade"]["done"].is_null(),
        "a pre-check's yes is no upgrade: {after:#}"
    );
    std::fs::remove_file(host.volume(&cluster, &db[1]).join("upgrade")).unwrap();
    ok(host, &["cluster", "upgrade", &cluster, "--version", "2.1"], 0);
    for id in &db {
        assert!(host.volume(&cluster, id).join("upgrade/bin/upgrade.sh").is_file());
        assert_eq!(
            begun(host, &cluster, id, "upgrade").len(),
            1,
            "upgrade ran once on {id}"
        );
    }
}
