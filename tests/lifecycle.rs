//! The lifecycle flows, driven through the CLI with real components: the
//! exact hook order of every flow and branch (read from `op events`), what
//! hooks saw, the destroy guard, stop/start, busy clusters, cancel, and
//! resume after a real `kill -9`.

#[path = "common/mod.rs"]
mod common;

use common::*;
use serde_json::{Value, json};
use std::process::Command;

#[test]
fn create_runs_init_and_start_in_the_seeds_order_and_hooks_see_the_whole_cluster() {
    let host = Host::new();
    let app = app(|_| {});
    let (cluster, op) = host.create(&app);
    let events = host.events(&op);

    // cache's init comes before start, db's after (post_start_service); web (order 1) after db and cache.
    assert_eq!(
        waves(&events),
        ["init: cache | web", "start: cache+db | web", "init: db"]
    );
    for service in ["init", "start"] {
        assert_ordered(&events, service);
    }
    // db and cache (both order 0) start at the same time.
    let starts = of(&events, "start");
    let db = starts.iter().find(|e| e["role"] == "db").unwrap();
    let cache = starts.iter().find(|e| e["role"] == "cache").unwrap();
    assert!(overlap(db, cache), "same-order roles did not overlap: {db} {cache}");
    // Every node rendered its config first (step 3), then reloaded because the file was new.
    assert_eq!(of(&events, "render").len(), 5);
    assert_eq!(of(&events, "reload").len(), 2, "only db defines reload");
    assert!(
        events.iter().all(|e| e["outcome"] == "ok" && e["attempt"] == 1),
        "{events:#?}"
    );
    // Every event has the documented fields, times in RFC 3339 with microseconds.
    for key in [
        "seq",
        "step",
        "service",
        "role",
        "order",
        "node_id",
        "instance_id",
        "started_at",
        "ended_at",
        "outcome",
        "attempt",
    ] {
        assert!(events.iter().all(|e| !e[key].is_null()), "{key} missing");
    }
    assert_eq!(
        events[0]["started_at"].as_str().unwrap().len(),
        "2026-11-26T10:37:50.123456Z".len()
    );

    // During init, /hosts already holds all five nodes (create step 2 came first).
    let all: Vec<String> = ["db", "cache", "web"]
        .iter()
        .flat_map(|r| host.nodes(&cluster, r))
        .collect();
    for node in &all {
        let calls = host.calls(&cluster, node);
        let init = calls
            .iter()
            .find(|c| c["service"] == "init" && c["phase"] == "begin")
            .unwrap();
        let mut seen: Vec<&str> = init["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap())
            .collect();
        seen.sort();
        let mut expected: Vec<&str> = all.iter().map(String::as_str).collect();
        expected.sort();
        assert_eq!(seen, expected, "node {node} saw an incomplete /hosts during init");
        assert_eq!(init["operation"], "Operation::CreateCluster");
    }
    let members = std::fs::read_to_string(
        host.state
            .path()
            .join("nodes")
            .join(&cluster)
            .join(&all[0])
            .join("instance/etc/recorder/members"),
    )
    .unwrap();
    assert_eq!(members.lines().count(), 5, "{members}");
    assert_eq!(host.cluster(&cluster)["status"], "active");
}

#[test]
fn delete_guards_stops_then_destroys_after_stop_and_frees_everything() {
    let host = Host::new();
    let (cluster, _) = host.create(&app(|_| {}));
    let (code, doc) = host.op(&["cluster", "delete", &cluster]);
    assert_eq!(code, 0, "{doc:#}");
    let events = host.events(doc["operation"].as_str().unwrap());
    // delete 5: destroy (db, before stop); 2/4/7: stop by order; 4: destroy (cache, after stop).
    assert_eq!(
        waves(&events),
        ["destroy: db", "stop: cache+db | web", "destroy: cache"]
    );
    assert_ordered(&events, "stop");
    assert_eq!(host.cluster(&cluster)["status"], "deleted");
    assert!(
        !host.state.path().join("nodes").join(&cluster).exists(),
        "the nodes' directories are gone"
    );
    let metadata = host.run(&["cluster", "metadata", &cluster]);
    assert_eq!(metadata.status.code(), Some(2), "the metadata is deregistered");
    let stderr = String::from_utf8_lossy(&metadata.stderr);
    assert!(
        stderr.contains(&format!("cluster {cluster} (deleted) has no metadata at /")),
        "{stderr}"
    );
}

#[test]
fn a_refusing_destroy_aborts_the_delete_and_leaves_the_cluster_usable() {
    let host = Host::new();
    let (cluster, _) = host.create(&app(|_| {}));
    let db = host.nodes(&cluster, "db");
    std::fs::write(host.volume(&cluster, &db[1]).join("fail-destroy"), "21").unwrap();

    let (code, doc) = host.op(&["cluster", "delete", &cluster]);
    assert_eq!(code, 1);
    assert_eq!(doc["status"], "aborted");
    let error = doc["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("destroy on node {} (db) error 21: destroy refused", db[1])),
        "{error}"
    );
    assert!(error.ends_with("; force it with --force"), "{error}");
    let events = host.events(doc["operation"].as_str().unwrap());
    assert_eq!(waves(&events), ["destroy: db"], "nothing was stopped");
    assert_eq!(host.cluster(&cluster)["status"], "active");
    assert!(
        host.cluster(&cluster)["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["instance_id"].is_string())
    );

    // The cluster still works: stop and start run.
    assert_eq!(host.op(&["cluster", "stop", &cluster]).0, 0);
    assert_eq!(host.op(&["cluster", "start", &cluster]).0, 0);

    // Forced, where allow_force (default true) permits: the delete goes on.
    let (code, doc) = host.op(&["cluster", "delete", &cluster, "--force"]);
    assert_eq!(code, 0, "{doc:#}");
    let events = host.events(doc["operation"].as_str().unwrap());
    assert_eq!(
        waves(&events),
        ["destroy: db", "stop: cache+db | web", "destroy: cache"]
    );
    assert!(
        of(&events, "destroy")
            .iter()
            .any(|e| e["outcome"] == "failed" && e["code"] == 21)
    );
    assert_eq!(host.cluster(&cluster)["status"], "deleted");
}

#[test]
fn allow_force_false_cannot_be_forced() {
    let host = Host::new();
    let app = app(|spec| spec["nodes"][0]["services"]["destroy"]["allow_force"] = json!(false));
    let (cluster, _) = host.create(&app);
    let db = host.nodes(&cluster, "db");
    std::fs::write(host.volume(&cluster, &db[0]).join("fail-destroy"), "7").unwrap();
    let (code, doc) = host.op(&["cluster", "delete", &cluster, "--force"]);
    assert_eq!(code, 1);
    assert_eq!(doc["status"], "aborted");
    assert!(
        doc["error"]
            .as_str()
            .unwrap()
            .ends_with("(its role does not allow forcing)"),
        "{doc:#}"
    );
    assert_eq!(host.cluster(&cluster)["status"], "active");
}

#[test]
fn roles_without_destroy_are_just_stopped() {
    let host = Host::new();
    let app = app(|spec| {
        for role in spec["nodes"].as_array_mut().unwrap() {
            role["services"].as_object_mut().unwrap().remove("destroy");
        }
    });
    let (cluster, _) = host.create(&app);
    let (code, doc) = host.op(&["cluster", "delete", &cluster]);
    assert_eq!(code, 0);
    assert_eq!(
        waves(&host.events(doc["operation"].as_str().unwrap())),
        ["stop: cache+db | web"]
    );
}

#[test]
fn stop_and_start_keep_volumes_renew_instances_and_skip_init() {
    let host = Host::new();
    let (cluster, _) = host.create(&app(|_| {}));
    let before = host.cluster(&cluster);
    let db = host.nodes(&cluster, "db");

    let (code, doc) = host.op(&["cluster", "stop", &cluster]);
    assert_eq!(code, 0);
    assert_eq!(
        waves(&host.events(doc["operation"].as_str().unwrap())),
        ["stop: cache+db | web"]
    );
    let stopped = host.cluster(&cluster);
    assert_eq!(stopped["status"], "stopped");
    assert!(
        stopped["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["instance_id"].is_null())
    );
    assert!(
        !host
            .state
            .path()
            .join("nodes")
            .join(&cluster)
            .join(&db[0])
            .join("instance")
            .exists()
    );
    let tree = host.run(&["cluster", "metadata", &cluster, "/hosts"]);
    assert_eq!(tree.status.code(), Some(2), "no running instance is registered");
    assert!(String::from_utf8_lossy(&tree.stderr).contains("(stopped) has no metadata at /hosts"));

    let (code, doc) = host.op(&["cluster", "start", &cluster]);
    assert_eq!(code, 0, "{doc:#}");
    let events = host.events(doc["operation"].as_str().unwrap());
    assert_eq!(waves(&events), ["start: cache+db | web"], "init ran once, at creation");
    assert_eq!(of(&events, "render").len(), 5);
    assert_eq!(
        of(&events, "reload").len(),
        2,
        "members changed (new instance ids): db reloads"
    );
    let after = host.cluster(&cluster);
    for (old, new) in before["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .zip(after["nodes"].as_array().unwrap())
    {
        assert_eq!(old["node_id"], new["node_id"]);
        assert_eq!(old["ip"], new["ip"]);
        assert_ne!(old["instance_id"], new["instance_id"], "a start boots a new instance");
    }
    // The volume kept what the node wrote before the stop; start saw the new instance id.
    let calls = host.calls(&cluster, &db[0]);
    assert_eq!(
        calls
            .iter()
            .filter(|c| c["service"] == "init" && c["phase"] == "end")
            .count(),
        1
    );
    let last_start = calls.iter().rev().find(|c| c["service"] == "start").unwrap();
    let new_iid = after["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node_id"] == db[0].as_str())
        .unwrap()["instance_id"]
        .clone();
    assert_eq!(last_start["instance_id"], new_iid);
    let metadata = String::from_utf8(host.run(&["cluster", "metadata", &cluster, "/hosts"]).stdout).unwrap();
    assert!(metadata.contains(new_iid.as_str().unwrap()), "{metadata}");
}

#[test]
fn a_busy_cluster_refuses_a_second_operation_and_cancel_stops_at_a_step_boundary() {
    let host = Host::new();
    let app = app(|spec| spec["env"]["sleep_ms_start"] = json!("1500"));
    let child = spawn(&host, &["cluster", "create", app.spec.to_str().unwrap()]);
    wait_for("the cluster to exist", || {
        host.run(&["cluster", "list", "--json"]).stdout.len() > 2
    });
    let cluster = cluster_of(&host);
    let db = host.nodes(&cluster, "db");
    wait_for("start to begin", || {
        host.calls(&cluster, &db[0]).iter().any(|c| c["service"] == "start")
    });
    let op = op_of(&host, "create-cluster");

    let busy = host.run(&["cluster", "stop", &cluster]);
    assert_eq!(busy.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&busy.stderr);
    assert!(
        stderr.contains(&format!(
            "cluster {cluster} is busy: operation {op} (create-cluster) is unfinished"
        )),
        "{stderr}"
    );

    let cancel = host.run(&["op", "cancel", &op]);
    assert!(String::from_utf8_lossy(&cancel.stdout).contains("will stop at its next step boundary"));
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let show: Value = serde_json::from_slice(&host.run(&["op", "show", &op, "--json"]).stdout).unwrap();
    assert_eq!(show["status"], "cancelled");
    // The running step finished; the next did not start.
    let events = host.events(&op);
    assert!(of(&events, "start").iter().all(|e| e["outcome"] == "ok"));
    assert!(
        of(&events, "init").iter().all(|e| e["role"] != "db"),
        "db's init (after start) never ran"
    );
    assert_eq!(host.cluster(&cluster)["status"], "failed");
}

#[test]
fn kill_9_then_resume_reruns_only_the_hooks_that_were_cut_off() {
    let host = Host::new();
    // web (order 1) init is slow: cache's init (order 0) has completed when we kill.
    let app = app(|spec| spec["nodes"][2]["env"]["sleep_ms_init"] = json!("3000"));
    let mut child = spawn(&host, &["cluster", "create", app.spec.to_str().unwrap()]);
    wait_for("the cluster to exist", || {
        host.run(&["cluster", "list", "--json"]).stdout.len() > 2
    });
    let cluster = cluster_of(&host);
    let web = host.nodes(&cluster, "web");
    let cache = host.nodes(&cluster, "cache");
    wait_for("web's init to begin", || {
        web.iter().all(|n| {
            host.calls(&cluster, n)
                .iter()
                .any(|c| c["service"] == "init" && c["phase"] == "begin")
        })
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let op = op_of(&host, "create-cluster");
    let list = String::from_utf8(host.run(&["op", "list"]).stdout).unwrap();
    assert!(list.contains("interrupted"), "{list}");
    let refused = host.run(&["cluster", "delete", &cluster]);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "an interrupted operation still holds the cluster"
    );

    let (code, doc) = host.op(&["op", "resume", &op]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(host.cluster(&cluster)["status"], "active");
    let events = host.events(&op);
    // web's init was cut off: recorded as interrupted, run again as attempt 2.
    for node in &web {
        let inits: Vec<&Value> = of(&events, "init")
            .into_iter()
            .filter(|e| e["node_id"] == node.as_str())
            .collect();
        let outcomes: Vec<(&str, u64)> = inits
            .iter()
            .map(|e| (e["outcome"].as_str().unwrap(), e["attempt"].as_u64().unwrap()))
            .collect();
        assert_eq!(outcomes, [("interrupted", 1), ("ok", 2)], "{node}");
        let begun = host
            .calls(&cluster, node)
            .iter()
            .filter(|c| c["service"] == "init" && c["phase"] == "begin")
            .count();
        assert_eq!(begun, 2);
    }
    // Nothing that had completed ran again.
    for node in cache.iter().chain(&host.nodes(&cluster, "db")) {
        let calls = host.calls(&cluster, node);
        for service in ["init", "start"] {
            let n = calls
                .iter()
                .filter(|c| c["service"] == service && c["phase"] == "begin")
                .count();
            assert_eq!(n, 1, "{node} ran {service} {n} times");
        }
    }
    assert_eq!(of(&events, "render").len(), 5, "no render ran twice");
    // The rest of the flow ran after the resume: start of every role, then db's init.
    assert_eq!(waves(&events)[1..], ["start: cache+db | web", "init: db"]);
}

#[test]
fn kill_9_during_a_render_step_then_resume() {
    let host = Host::new();
    // db's reload is slow: renders have completed and db reloads are running when we kill.
    let app = app(|spec| spec["nodes"][0]["env"] = json!({"sleep_ms_reload": "3000"}));
    let mut child = spawn(&host, &["cluster", "create", app.spec.to_str().unwrap()]);
    wait_for("the cluster to exist", || {
        host.run(&["cluster", "list", "--json"]).stdout.len() > 2
    });
    let cluster = cluster_of(&host);
    let db = host.nodes(&cluster, "db");
    wait_for("db's reload to begin", || {
        db.iter()
            .all(|n| host.calls(&cluster, n).iter().any(|c| c["service"] == "reload"))
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let op = op_of(&host, "create-cluster");
    let (code, doc) = host.op(&["op", "resume", &op]);
    assert_eq!(code, 0, "{doc:#}");
    let events = host.events(&op);
    assert_eq!(of(&events, "render").len(), 5, "renders had completed: none ran again");
    for node in &db {
        let reloads: Vec<(&str, u64)> = of(&events, "reload")
            .iter()
            .filter(|e| e["node_id"] == node.as_str())
            .map(|e| (e["outcome"].as_str().unwrap(), e["attempt"].as_u64().unwrap()))
            .collect();
        assert_eq!(
            reloads,
            [("interrupted", 1), ("ok", 2)],
            "the cut-off reload runs again though the files no longer change"
        );
    }
}

#[test]
fn bad_specs_exit_2_and_change_nothing() {
    let host = Host::new();
    let cases: Vec<(App, &str)> = vec![
        (
            app(|s| s["nodes"][0]["services"]["init"]["timeout"] = json!(100000)),
            "nodes[0].services.init.timeout: 100000 is out of range",
        ),
        (
            app(|s| s["nodes"][1]["role"] = json!("db")),
            "nodes[1].role: role \"db\" is defined twice",
        ),
        (
            app(|s| s["nodes"][0]["plugin"] = json!("missing.wasm")),
            "missing.wasm: no such component file",
        ),
        (
            app(|s| s["nodes"][0]["servics"] = json!({})),
            "nodes[0].servics: unknown key `servics`",
        ),
        (
            app(|s| s["nodes"][0]["services"]["nope"] = json!({"type": "custom"})),
            "nodes[0].services.nope: recorder_hooks.wasm does not implement nope",
        ),
        (
            app(|s| s["nodes"][0]["services"]["start"]["order"] = json!(-1)),
            "nodes[0].services.start.order: invalid value",
        ),
    ];
    for (app, expected) in cases {
        for args in [&["app", "validate"][..], &["cluster", "create"][..]] {
            let mut args = args.to_vec();
            args.push(app.spec.to_str().unwrap());
            let out = host.run(&args);
            assert_eq!(out.status.code(), Some(2), "{args:?}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains(expected), "{stderr}\nexpected: {expected}");
        }
    }
    let list = host.run(&["cluster", "list", "--all", "--json"]);
    assert!(list.stdout.is_empty(), "no cluster was recorded");
    assert!(!host.state.path().join("nodes").exists(), "no node was created");
}

#[test]
fn plan_prints_the_steps_without_running_them() {
    let host = Host::new();
    let app = app(|_| {});
    let out = host.run(&["plan", "create", app.spec.to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    assert!(
        text.starts_with("create-cluster · a cluster of 5 nodes · 7 steps (nothing is run)\n"),
        "{text}"
    );
    assert!(
        text.contains("create 4: run init (init.post_start_service true: after start)"),
        "{text}"
    );
    assert!(host.run(&["cluster", "list", "--all", "--json"]).stdout.is_empty());
}

#[test]
fn a_failed_create_can_only_be_deleted() {
    let host = Host::new();
    let app = app(|spec| spec["nodes"][2]["env"]["fail_init"] = json!("9"));
    let (code, doc) = host.op(&["cluster", "create", app.spec.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(doc["status"], "failed");
    let error = doc["error"].as_str().unwrap();
    assert!(
        error.starts_with("step 4 (run init on 3 nodes by role order) failed: init on node"),
        "{error}"
    );
    assert!(error.contains("(web) error 9: init refused: asked to fail"), "{error}");
    let cluster = doc["cluster_id"].as_str().unwrap().to_string();
    assert_eq!(host.cluster(&cluster)["status"], "failed");
    for verb in ["start", "stop"] {
        let out = host.run(&["cluster", verb, &cluster]);
        assert_eq!(out.status.code(), Some(2), "{verb}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "cannot {verb} cluster {cluster}: its creation failed; delete it"
            )),
            "{stderr}"
        );
    }
    let (code, doc) = host.op(&["cluster", "delete", &cluster]);
    assert_eq!(code, 0, "{doc:#}");
}

#[test]
fn a_guard_that_cannot_run_does_not_let_the_delete_through() {
    let host = Host::new();
    let (cluster, _) = host.create(&app(|_| {}));
    let db = host.nodes(&cluster, "db");
    // db[0] lost its instance: its destroy cannot say whether deleting is safe.
    std::fs::remove_dir_all(
        host.state
            .path()
            .join("nodes")
            .join(&cluster)
            .join(&db[0])
            .join("instance"),
    )
    .unwrap();
    let (code, doc) = host.op(&["cluster", "delete", &cluster]);
    assert_eq!((code, doc["status"].as_str()), (1, Some("aborted")), "{doc:#}");
    assert!(
        doc["error"]
            .as_str()
            .unwrap()
            .contains("the node has no running instance"),
        "{doc:#}"
    );
    let events = host.events(doc["operation"].as_str().unwrap());
    let skipped: Vec<&Value> = events.iter().filter(|e| e["outcome"] == "skipped").collect();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["node_id"], db[0].as_str());
    let (code, doc) = host.op(&["cluster", "delete", &cluster, "--force"]);
    assert_eq!(code, 0, "{doc:#}");
}

#[test]
fn a_stopped_cluster_with_a_destroy_guard_is_deleted_only_with_force() {
    let host = Host::new();
    let (cluster, _) = host.create(&app(|_| {}));
    assert_eq!(host.op(&["cluster", "stop", &cluster]).0, 0);
    let out = host.run(&["cluster", "delete", &cluster]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("it is stopped, so its destroy guard cannot run; start it first, or delete it with --force"),
        "{stderr}"
    );
    let (code, doc) = host.op(&["cluster", "delete", &cluster, "--force"]);
    assert_eq!(code, 0, "{doc:#}");
    assert!(
        host.events(doc["operation"].as_str().unwrap()).is_empty(),
        "no hook runs on a stopped cluster"
    );
    assert_eq!(host.cluster(&cluster)["status"], "deleted");
}

#[test]
fn nodes_to_execute_on_keeps_the_first_nodes_of_a_role() {
    let host = Host::new();
    let app = app(|spec| spec["nodes"][2]["services"]["start"]["nodes_to_execute_on"] = json!(1));
    let (cluster, op) = host.create(&app);
    let web = host.nodes(&cluster, "web");
    let starts: Vec<String> = of(&host.events(&op), "start")
        .iter()
        .filter(|e| e["role"] == "web")
        .map(|e| e["node_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(starts, [web[0].clone()], "the web node with sid 1 only");
}

#[test]
fn a_crash_after_a_refused_step_ends_the_operation_as_refused() {
    use hookhost::cluster::ClusterStatus;
    use hookhost::request::OperationRequest;
    use hookhost::store::OperationStatus;
    let host = Host::new();
    let (cluster, _) = host.create(&app(|_| {}));
    let db = host.nodes(&cluster, "db");
    std::fs::write(host.volume(&cluster, &db[0]).join("fail-destroy"), "21").unwrap();

    let tokio = tokio::runtime::Runtime::new().unwrap();
    tokio.block_on(async {
        let engine = host.engine();
        let op = engine
            .submit(OperationRequest::DeleteCluster {
                cluster: cluster.clone(),
                force: false,
            })
            .await
            .unwrap();
        assert_eq!(engine.run(&op.id).await.unwrap().status, OperationStatus::Aborted);
        // As if the process had died after journaling the refused step, before ending the operation.
        engine
            .store()
            .update_operation(
                &op.id,
                Box::new(|op| {
                    op.status = OperationStatus::Running;
                    Ok(())
                }),
            )
            .await
            .unwrap();
        let resumed = engine.run(&op.id).await.unwrap();
        assert_eq!(
            resumed.status,
            OperationStatus::Aborted,
            "the resume must not run past the refusal"
        );
        assert_eq!(engine.cluster(&cluster).unwrap().status, ClusterStatus::Active);
    });
    assert!(host.volume(&cluster, &db[0]).exists(), "nothing was deleted");
}

#[test]
fn a_refusal_recorded_before_a_crash_still_stops_the_resumed_delete() {
    use hookhost::cluster::{ClusterStatus, now};
    use hookhost::request::OperationRequest;
    use hookhost::store::{Event, InvocationOutcome, OperationStatus};
    let host = Host::new();
    let (cluster, _) = host.create(&app(|_| {}));
    let db = host.nodes(&cluster, "db");
    let tokio = tokio::runtime::Runtime::new().unwrap();
    tokio.block_on(async {
        let engine = host.engine();
        let op = engine
            .submit(OperationRequest::DeleteCluster {
                cluster: cluster.clone(),
                force: false,
            })
            .await
            .unwrap();
        // As if an earlier run of step 1 had recorded db[0]'s refusal, then died
        // before journaling the step's end: the hook is not run again, its
        // refusal still counts.
        let node = engine.cluster(&cluster).unwrap().node(&db[0]).unwrap().clone();
        let seq = engine.store().next_seqs(&op.id, 1).await.unwrap();
        let refusal = Event {
            op: op.id.clone(),
            seq,
            step: 0,
            service: "destroy".into(),
            role: "db".into(),
            order: 0,
            node_id: node.node_id.clone(),
            instance_id: node.instance_id.clone().unwrap(),
            version: String::new(),
            attempt: 1,
            started_at: now(),
            ended_at: Some(now()),
            outcome: InvocationOutcome::Failed,
            code: Some(21),
            message: Some("holds data".into()),
            reply: None,
            log: Vec::new(),
            changed: Vec::new(),
        };
        engine.store().put_events(vec![refusal]).await.unwrap();
        let ended = engine.run(&op.id).await.unwrap();
        assert_eq!(ended.status, OperationStatus::Aborted);
        assert!(ended.error.unwrap().contains("error 21: holds data"));
        assert_eq!(engine.cluster(&cluster).unwrap().status, ClusterStatus::Active);
    });
    let destroys = host
        .calls(&cluster, &db[0])
        .iter()
        .filter(|c| c["service"] == "destroy")
        .count();
    assert_eq!(destroys, 0, "the refusing node's destroy did not run again");
}

#[test]
fn allow_force_false_keeps_a_stopped_clusters_data_until_its_guard_can_run() {
    let host = Host::new();
    let app = app(|spec| spec["nodes"][0]["services"]["destroy"]["allow_force"] = json!(false));
    let (cluster, _) = host.create(&app);
    assert_eq!(host.op(&["cluster", "stop", &cluster]).0, 0);
    let db = host.nodes(&cluster, "db");
    for args in [
        vec!["cluster", "delete", &cluster],
        vec!["cluster", "delete", &cluster, "--force"],
    ] {
        let out = host.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "cannot delete cluster {cluster}: it is stopped, so the destroy guard of role db cannot run, and the role does not allow forcing (allow_force: false); start the cluster so that its guard can run, then delete it"
            )),
            "{stderr}"
        );
    }
    assert!(
        db.iter().all(|n| host.volume(&cluster, n).exists()),
        "no volume was deleted"
    );
    assert_eq!(host.cluster(&cluster)["status"], "stopped");
    // Started, the guard runs, agrees, and the cluster goes.
    assert_eq!(host.op(&["cluster", "start", &cluster]).0, 0);
    let (code, doc) = host.op(&["cluster", "delete", &cluster]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(
        waves(&host.events(doc["operation"].as_str().unwrap()))[0],
        "destroy: db",
        "the guard ran before the data went"
    );
    assert_eq!(host.cluster(&cluster)["status"], "deleted");
}

#[test]
fn absurd_counts_and_escaping_components_are_refused_before_anything_is_read_or_kept() {
    let host = Host::new();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.wasm");
    std::fs::write(&secret, "root:x:0:0:secret-token").unwrap();
    let mut cases: Vec<(App, String)> = vec![
        (
            app(|s| s["nodes"][0]["count"] = json!(1_000_000_000u64)),
            "nodes[0].count: 1000000000 is more nodes than a cluster may have (10000)".into(),
        ),
        (
            app(|s| {
                s["nodes"][0]["count"] = json!(6000);
                s["nodes"][1]["count"] = json!(6000);
            }),
            "nodes: the roles' counts add up to 12002; a cluster has at most 10000 nodes".into(),
        ),
        (
            app(|s| s["nodes"][0]["plugin"] = json!("../../../../../../etc/passwd")),
            "nodes[0].plugin: \"../../../../../../etc/passwd\" uses `..`".into(),
        ),
        (
            app(|s| s["nodes"][0]["plugin"] = json!(secret.to_str().unwrap())),
            format!("nodes[0].plugin: {:?} is absolute", secret.to_str().unwrap()),
        ),
    ];
    // A link in the app's directory that leads out of it.
    let link = app(|s| s["nodes"][0]["plugin"] = json!("link.wasm"));
    std::os::unix::fs::symlink(&secret, link.spec.with_file_name("link.wasm")).unwrap();
    cases.push((
        link,
        "link.wasm: a link (or `..`) that leads out of the app's directory".into(),
    ));
    // A FIFO, and a directory, where a component should be.
    let fifo = app(|s| s["nodes"][0]["plugin"] = json!("fifo.wasm"));
    let status = Command::new("mkfifo")
        .arg(fifo.spec.with_file_name("fifo.wasm"))
        .status()
        .unwrap();
    assert!(status.success());
    cases.push((fifo, "fifo.wasm: not a regular file".into()));
    let dir = app(|s| s["nodes"][0]["plugin"] = json!("dir.wasm"));
    std::fs::create_dir(dir.spec.with_file_name("dir.wasm")).unwrap();
    cases.push((dir, "dir.wasm: not a regular file".into()));
    // A file of the app that is no component: named, never echoed.
    let text = app(|s| s["nodes"][0]["plugin"] = json!("text.wasm"));
    std::fs::copy(&secret, text.spec.with_file_name("text.wasm")).unwrap();
    cases.push((text, "text.wasm: not a WebAssembly file".into()));

    for (app, expected) in &cases {
        for verb in [
            &["app", "validate"][..],
            &["cluster", "create"][..],
            &["plan", "create"][..],
        ] {
            let mut args = verb.to_vec();
            args.push(app.spec.to_str().unwrap());
            let out = finishes(host.command(&args));
            assert_eq!(out.status.code(), Some(2), "{args:?}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains(expected.as_str()),
                "{args:?}: {stderr}\nexpected: {expected}"
            );
            assert!(
                !stderr.contains("secret-token") && !stderr.contains("root:x"),
                "{stderr}"
            );
        }
    }
    let list = host.run(&["cluster", "list", "--all", "--json"]);
    assert!(list.stdout.is_empty(), "no cluster was recorded");
    assert!(!host.state.path().join("images").exists(), "nothing was copied");
    assert!(!host.state.path().join("nodes").exists(), "no node was created");
}

#[test]
fn cluster_names_are_bounded() {
    let host = Host::new();
    let app = app(|_| {});
    let long = "n".repeat(100_000);
    for (name, expected) in [
        ("", "--name: a cluster name has 1 to 128 characters; this one has 0"),
        (
            long.as_str(),
            "--name: a cluster name has 1 to 128 characters; this one has 100000",
        ),
        (
            "a\u{1b}[2Jb",
            "--name: a cluster name cannot hold control or invisible formatting characters",
        ),
        ("  ", "--name: a cluster name has only spaces"),
    ] {
        let out = host.run(&["cluster", "create", app.spec.to_str().unwrap(), "--name", name]);
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("cannot create the cluster: {expected}")),
            "{stderr}"
        );
    }
    assert!(host.run(&["cluster", "list", "--all", "--json"]).stdout.is_empty());
    assert!(
        !host.state.path().join("images").exists(),
        "a refused create keeps nothing"
    );
    let (code, doc) = host.op(&[
        "cluster",
        "create",
        app.spec.to_str().unwrap(),
        "--name",
        &"n".repeat(128),
    ]);
    assert_eq!(code, 0, "{doc:#}");
}

#[test]
fn a_component_that_renders_a_bad_path_is_blamed_for_it() {
    let host = Host::new();
    let app = app(|spec| spec["env"]["render_path"] = json!("/../../outside"));
    let (code, doc) = host.op(&["cluster", "create", app.spec.to_str().unwrap()]);
    assert_eq!((code, doc["status"].as_str()), (1, Some("failed")), "{doc:#}");
    let error = doc["error"].as_str().unwrap();
    assert!(error.starts_with("step 3 (render config on 5 nodes"), "{error}");
    let events = host.events(doc["operation"].as_str().unwrap());
    let renders = of(&events, "render");
    assert_eq!(renders.len(), 5);
    for render in renders {
        assert_eq!(render["outcome"], "failed");
        let message = render["message"].as_str().unwrap();
        assert!(
            message.starts_with("the component rendered a bad config file: rendered file \"/../../outside\""),
            "{message}"
        );
        assert!(!message.contains("sandbox"), "{message}");
    }
}

#[test]
fn each_problem_of_a_spec_is_a_line_of_its_own() {
    let host = Host::new();
    let app = app(|s| {
        s["nodes"][0]["plugin"] = json!("missing-a.wasm");
        s["nodes"][1]["plugin"] = json!("missing-b.wasm");
    });
    let out = host.run(&["app", "validate", app.spec.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains("nodes[0].plugin"),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with("error: ") && lines[1].contains("nodes[1].plugin"),
        "{stderr}"
    );
    assert!(!stderr.contains("\\n"), "no escaped line breaks: {stderr}");
}

/// The recorder app with health checks on (thresholds 2; web's role turns
/// them off) and monitoring of one item on every role.
pub fn health_app() -> App {
    app(|spec| {
        spec["env"]["sleep_ms"] = json!("0");
        spec["health_check"] = json!({"enable": true, "healthy_threshold": 2, "unhealthy_threshold": 2});
        spec["nodes"][2]["health_check"] = json!({"enable": false});
        spec["monitor"] = json!({"enable": true, "items": {"load": {"unit": "count"}}});
    })
}

/// The services the recorder ran on a node, by name, in order.
fn services_run(host: &Host, cluster: &str, node: &str, service: &str) -> Vec<Value> {
    host.calls(cluster, node)
        .into_iter()
        .filter(|c| c["service"] == service && c["phase"] == "begin")
        .collect()
}

#[test]
fn cluster_check_counts_results_in_a_row_runs_the_action_once_and_keeps_the_status() {
    let host = Host::new();
    let (cluster, _) = host.create(&health_app());
    let (db, cache, web) = (
        host.nodes(&cluster, "db"),
        host.nodes(&cluster, "cache"),
        host.nodes(&cluster, "web"),
    );
    let check = |code: i32| -> Value {
        let out = host.run(&["cluster", "check", &cluster, "--json"]);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let statuses = |round: &Value| -> Vec<(String, String)> {
        let mut seen: Vec<(String, String)> = round["checked"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["node_id"].as_str().unwrap().to_string(),
                    c["health"]["status"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        seen.sort();
        seen
    };
    let checked: Vec<String> = db.iter().chain(&cache).cloned().collect();
    let all = |status: &str| {
        let mut want: Vec<(String, String)> = checked.iter().map(|n| (n.clone(), status.to_string())).collect();
        want.sort();
        want
    };

    // One pass is not yet healthy; web's role turned its checks off.
    let first = check(0);
    assert_eq!(statuses(&first), all("unknown"));
    assert!(first["transitions"].as_array().unwrap().is_empty());
    // Monitoring is on for every role: each node's `load` item (sid × 10), nothing the spec does not name.
    let samples = first["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 5);
    for s in samples {
        let node = host.cluster(&cluster)["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node_id"] == s["node_id"])
            .cloned()
            .unwrap();
        assert_eq!(s["values"], json!({"load": node["sid"].as_u64().unwrap() * 10}), "{s}");
    }
    let second = check(0);
    assert_eq!(statuses(&second), all("healthy"));
    let changes: Vec<(&str, &str)> = second["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["from"].as_str().unwrap(), t["to"].as_str().unwrap()))
        .collect();
    assert_eq!(changes, vec![("unknown", "healthy"); 3]);
    // What the check saw: the whole cluster, as a health-check operation, its own address.
    let seen = services_run(&host, &cluster, &db[0], "health_check");
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0]["operation"], "Operation::HealthCheck");
    assert_eq!(seen[0]["hosts"].as_array().unwrap().len(), 5);
    let ip = host.cluster(&cluster)["nodes"][0]["ip"].clone();
    assert_eq!(seen[0]["ip"], ip);
    assert!(services_run(&host, &cluster, &web[0], "health_check").is_empty());

    // db's first node fails on demand: one failure is not enough, two are; the action runs once.
    std::fs::write(host.volume(&cluster, &db[0]).join("fail-health_check"), "7").unwrap();
    let third = check(1);
    let failed = third["checked"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["node_id"] == db[0].as_str())
        .unwrap()
        .clone();
    assert_eq!(
        (failed["ok"].clone(), failed["health"]["status"].clone()),
        (json!(false), json!("healthy"))
    );
    assert!(failed["message"].as_str().unwrap().contains("code 7"), "{failed}");
    assert!(third["transitions"].as_array().unwrap().is_empty());
    let fourth = check(1);
    let t = &fourth["transitions"].as_array().unwrap()[..];
    assert_eq!(t.len(), 1, "{fourth:#}");
    assert_eq!(
        (
            t[0]["node_id"].as_str().unwrap(),
            t[0]["from"].as_str().unwrap(),
            t[0]["to"].as_str().unwrap()
        ),
        (db[0].as_str(), "healthy", "unhealthy")
    );
    assert_eq!(t[0]["action"], "ok");
    assert!(t[0]["message"].as_str().unwrap().contains("asked to fail"));
    check(1);
    assert_eq!(
        services_run(&host, &cluster, &db[0], "health_action").len(),
        1,
        "the action runs when the node becomes unhealthy, once"
    );
    for node in db.iter().skip(1).chain(&cache).chain(&web) {
        assert!(services_run(&host, &cluster, node, "health_action").is_empty());
    }
    let shown = String::from_utf8(host.run(&["cluster", "show", &cluster]).stdout).unwrap();
    let line = shown.lines().find(|l| l.starts_with(db[0].as_str())).unwrap();
    assert!(line.contains("unhealthy"), "{shown}");
    assert!(
        shown.contains("health changes") && shown.contains("healthy → unhealthy"),
        "{shown}"
    );

    // Back: two passes make it healthy again.
    std::fs::remove_file(host.volume(&cluster, &db[0]).join("fail-health_check")).unwrap();
    check(0);
    let back = check(0);
    assert_eq!(statuses(&back), all("healthy"));
    let stored = host.cluster(&cluster)["health"]["transitions"]
        .as_array()
        .unwrap()
        .clone();
    let last = stored.last().unwrap();
    assert_eq!(
        (last["node_id"].as_str().unwrap(), last["to"].as_str().unwrap()),
        (db[0].as_str(), "healthy")
    );
    assert_eq!(stored.len(), 5);

    // Only roles with checks or monitoring can be named.
    let out = host.run(&["cluster", "check", &cluster, "--role", "nope"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("\"nope\"") && stderr.contains("db, cache, web"),
        "{stderr}"
    );

    // A stopped cluster is not checked, and says so; no hook ran.
    op_ok(&host, &["cluster", "stop", &cluster], 0);
    let before = services_run(&host, &cluster, &db[1], "health_check").len();
    let skipped = check(0);
    assert!(skipped["skipped"].as_str().unwrap().contains("is stopped"), "{skipped}");
    assert_eq!(services_run(&host, &cluster, &db[1], "health_check").len(), before);
    // Started again: new instances start over from unknown.
    op_ok(&host, &["cluster", "start", &cluster], 0);
    assert_eq!(statuses(&check(0)), all("unknown"));
}
