//! Add nodes, delete nodes, vertical scaling and env updates, driven through
//! the CLI with real components: the exact hook order of every branch (from
//! `op events`), what hooks saw at each step (`/adding-hosts`,
//! `/deleting-hosts`, `/vertical-scaling-roles`), the pre-check refusals,
//! reloads only where files changed, replicas, kill -9 and resume in the
//! middle of each flow, and bad input refused with no change.

#[path = "common/mod.rs"]
mod common;

use common::*;
use hookhost_test_support as support;
use serde_json::{Value, json};

/// The lifecycle app made to scale: every role scales horizontally; db's
/// `scale_out` and cache's `scale_in` have pre-checks; web (order 1) runs
/// `scale_out`/`scale_in` after the others; cache has two nodes; no sleeps.
fn scaling_app(edit: impl FnOnce(&mut Value)) -> App {
    app(|spec| {
        spec["advanced_actions"] = json!(["scale_horizontal"]);
        spec["env"]["sleep_ms"] = json!("0");
        spec["nodes"][0]["services"]["scale_out"] = json!({"pre_check": true});
        spec["nodes"][0]["services"]["scale_in"] = json!({});
        spec["nodes"][1]["count"] = json!(2);
        spec["nodes"][1]["services"]["scale_in"] = json!({"pre_check": true});
        spec["nodes"][2]["services"]["scale_out"] = json!({"order": 1});
        spec["nodes"][2]["services"]["scale_in"] = json!({"order": 1});
        edit(spec);
    })
}

/// The recorder's calls of one service on one node.
fn calls_of(host: &Host, cluster: &str, node: &str, service: &str) -> Vec<Value> {
    host.calls(cluster, node)
        .into_iter()
        .filter(|c| c["service"] == service && c["phase"] == "begin")
        .collect()
}

/// What a pre-check saw on a node (the recorder logs it: its directories are read-only).
fn pre_check_seen(events: &[Value], node: &str) -> Value {
    let event = events
        .iter()
        .find(|e| e["node_id"] == node && e["step"] == 0)
        .unwrap_or_else(|| panic!("no pre-check on {node}: {events:#?}"));
    let line = event["log"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|l| l.as_str().unwrap().strip_prefix("info "))
        .unwrap();
    serde_json::from_str(line).unwrap()
}

/// A list of node ids as JSON.
fn list(ids: &[String]) -> Value {
    json!(ids)
}

/// The ids of the hook events of `service` at the step of its first event.
fn nodes_of_step(events: &[Value], service: &str, nth: usize) -> Vec<String> {
    let mut steps: Vec<u64> = of(events, service)
        .iter()
        .map(|e| e["step"].as_u64().unwrap())
        .collect();
    steps.dedup();
    of(events, service)
        .into_iter()
        .filter(|e| e["step"] == steps[nth])
        .map(|e| e["node_id"].as_str().unwrap().to_string())
        .collect()
}

fn metadata(host: &Host, cluster: &str, path: &str) -> String {
    let out = host.run(&["cluster", "metadata", cluster, path]);
    String::from_utf8(out.stdout).unwrap()
}

/// A file a node's render wrote, by its path in the node (without the leading `/`).
fn rendered(host: &Host, cluster: &str, node: &str, path: &str) -> String {
    let file = host
        .state
        .path()
        .join("nodes")
        .join(cluster)
        .join(node)
        .join("instance")
        .join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// Whether the cluster's tree has nothing at `path`.
fn absent(host: &Host, cluster: &str, path: &str) -> bool {
    let out = host.run(&["cluster", "metadata", cluster, path]);
    out.status.code() == Some(2) && String::from_utf8_lossy(&out.stderr).contains("has no metadata at")
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn add_nodes_runs_the_pre_check_then_steps_1_to_8_and_hooks_see_adding_hosts_until_step_7() {
    let host = Host::new();
    let app = scaling_app(|_| {});
    let (cluster, _) = host.create(&app);
    let before: Vec<String> = host.cluster(&cluster)["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node_id"].as_str().unwrap().to_string())
        .collect();
    let doc = op_ok(
        &host,
        &["cluster", "add-nodes", &cluster, "--role", "web", "--count", "2"],
        0,
    );
    let op = doc["operation"].as_str().unwrap().to_string();
    let web = host.nodes(&cluster, "web");
    let new: Vec<String> = web[2..].to_vec();
    assert_eq!(web.len(), 4);
    let events = host.events(&op);
    // Step 0 on db (its scale_out has the pre-check), 5 on the new nodes, 6 on
    // the existing nodes of every role defining scale_out, by order.
    assert_eq!(
        waves(&events),
        ["scale_out: db", "init: web", "start: web", "scale_out: db | web"]
    );
    assert_ordered(&events, "scale_out");
    assert_eq!(sorted(nodes_of_step(&events, "init", 0)), sorted(new.clone()));
    let existing_web = &web[..2];
    assert_eq!(
        sorted(nodes_of_step(&events, "scale_out", 1)),
        sorted(
            host.nodes(&cluster, "db")
                .into_iter()
                .chain(existing_web.iter().cloned())
                .collect()
        ),
        "scale_out ran on the existing nodes only"
    );
    // Renders: existing nodes (3), new nodes (4), every node (8).
    let renders: Vec<usize> = {
        let mut steps: Vec<u64> = of(&events, "render")
            .iter()
            .map(|e| e["step"].as_u64().unwrap())
            .collect();
        steps.dedup();
        steps
            .iter()
            .map(|s| of(&events, "render").iter().filter(|e| e["step"] == *s).count())
            .collect()
    };
    assert_eq!(renders, [6, 2, 8]);
    // What hooks saw: the pre-check what is coming (no /adding-hosts yet),
    // steps 5 and 6 the new nodes under /adding-hosts and /hosts.
    let db = host.nodes(&cluster, "db");
    let check = &pre_check_seen(&events, &db[0]);
    assert_eq!(check["pre_check"], true);
    assert_eq!(check["params"], json!({"role": "web", "count": 2}));
    assert_eq!(check["adding"], json!([]));
    assert_eq!(
        sorted(serde_json::from_value(check["hosts"].clone()).unwrap()),
        sorted(before)
    );
    for node in &new {
        for service in ["init", "start"] {
            let call = &calls_of(&host, &cluster, node, service)[0];
            assert_eq!(
                sorted(serde_json::from_value(call["adding"].clone()).unwrap()),
                sorted(new.clone())
            );
            assert_eq!(call["hosts"].as_array().unwrap().len(), 8);
        }
    }
    let scale_out = &calls_of(&host, &cluster, &existing_web[0], "scale_out")[0];
    assert_eq!(scale_out["pre_check"], false);
    assert_eq!(
        sorted(serde_json::from_value(scale_out["adding"].clone()).unwrap()),
        sorted(new.clone())
    );
    // Step 7 removed it; step 8 rendered every node with the new members.
    assert!(
        absent(&host, &cluster, "/adding-hosts"),
        "{} is still there",
        "/adding-hosts"
    );
    let members = rendered(&host, &cluster, &db[0], "etc/recorder/members");
    assert_eq!(members.lines().count(), 8, "{members}");
    let c = host.cluster(&cluster);
    assert_eq!(c["status"], "active");
    let sids: Vec<u64> = c["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["role"] == "web")
        .map(|n| n["sid"].as_u64().unwrap())
        .collect();
    assert_eq!(sids, [1, 2, 3, 4]);
    let ips: std::collections::HashSet<&str> = c["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["ip"].as_str().unwrap())
        .collect();
    assert_eq!(ips.len(), 8, "every node has its own address");
}

#[test]
fn a_refusing_pre_check_changes_nothing() {
    let host = Host::new();
    let app = scaling_app(|_| {});
    let (cluster, _) = host.create(&app);
    let db = host.nodes(&cluster, "db");
    let cache = host.nodes(&cluster, "cache");
    std::fs::write(host.volume(&cluster, &db[1]).join("fail-scale_out"), "31").unwrap();
    std::fs::write(host.volume(&cluster, &cache[0]).join("fail-scale_in"), "32").unwrap();
    let tree = metadata(&host, &cluster, "/");
    let nodes_dir = || {
        std::fs::read_dir(host.state.path().join("nodes").join(&cluster))
            .unwrap()
            .count()
    };
    let dirs = nodes_dir();
    let web = host.nodes(&cluster, "web");
    for (args, code) in [
        (vec!["cluster", "add-nodes", &cluster, "--role", "db"], "31"),
        (vec!["cluster", "delete-nodes", &cluster, "--nodes", &web[0]], "32"),
    ] {
        let doc = op_ok(&host, &args, 1);
        assert_eq!(doc["status"], "aborted", "{doc:#}");
        let error = doc["error"].as_str().unwrap();
        assert!(
            error.contains("pre-check refused") && error.contains(&format!("error {code}")),
            "{error}"
        );
        let op = host.run(&["op", "show", doc["operation"].as_str().unwrap(), "--json"]);
        let shown: Value = serde_json::from_slice(&op.stdout).unwrap();
        assert_eq!(shown["operation"]["recovery"], Value::Null, "no recovery ran");
        assert_eq!(
            metadata(&host, &cluster, "/"),
            tree,
            "the tree did not change, not even its revision"
        );
        assert_eq!(nodes_dir(), dirs);
        assert_eq!(host.cluster(&cluster)["status"], "active");
        assert_eq!(host.cluster(&cluster)["nodes"].as_array().unwrap().len(), 6);
    }
    // The refused deletion never touched web's node.
    assert!(calls_of(&host, &cluster, &web[0], "stop").is_empty());
}

#[test]
fn a_new_node_that_fails_init_fails_the_add_the_recovery_clears_adding_hosts_and_it_stays() {
    let host = Host::new();
    let app = scaling_app(|_| {});
    let (cluster, _) = host.create(&app);
    op_ok(&host, &["cluster", "update-env", &cluster, "fail_init=9"], 0);
    let doc = op_ok(&host, &["cluster", "add-nodes", &cluster, "--role", "web"], 1);
    assert_eq!(doc["status"], "failed");
    let web = host.nodes(&cluster, "web");
    assert_eq!(web.len(), 3, "the new node stays");
    let error = doc["error"].as_str().unwrap();
    assert!(error.contains("init on node"), "{error}");
    assert!(
        error.ends_with(&format!(
            "the new nodes that were created stay in the cluster, marked not joined in `hookhost cluster show {cluster}`; delete them with `hookhost cluster delete-nodes {cluster} --nodes <ids>` (the nodes planned: {})",
            web[2]
        )),
        "{error}"
    );
    let shown = String::from_utf8(host.run(&["cluster", "show", &cluster]).stdout).unwrap();
    let line = shown.lines().find(|l| l.starts_with(&web[2])).unwrap();
    assert!(
        line.ends_with("not joined: its add-nodes did not finish (delete-nodes removes it)"),
        "{line}"
    );
    let record = host.cluster(&cluster);
    let joining: Vec<&Value> = record["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["joining"] == true)
        .collect();
    assert_eq!(joining.len(), 1);
    let events = host.events(doc["operation"].as_str().unwrap());
    assert!(
        of(&events, "scale_out").iter().all(|e| e["step"] == 0),
        "step 6 never ran: {events:#?}"
    );
    assert!(
        absent(&host, &cluster, "/adding-hosts"),
        "{} is still there",
        "/adding-hosts"
    );
    assert_eq!(host.cluster(&cluster)["status"], "active");
    // Membership is in doubt until it goes: no more nodes, no resize.
    for args in [
        vec!["cluster", "add-nodes", &cluster, "--role", "db"],
        vec!["cluster", "resize", &cluster, "--role", "web", "--cpu", "2"],
    ] {
        let out = host.run(&args);
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "node {} has not joined it (its add-nodes did not finish)",
                web[2]
            )),
            "{stderr}"
        );
    }
    // A restart boots it but does not start what was never initialised.
    op_ok(&host, &["cluster", "stop", &cluster], 0);
    op_ok(&host, &["cluster", "start", &cluster], 0);
    let starts = calls_of(&host, &cluster, &web[2], "start");
    assert!(starts.is_empty(), "{starts:#?}");
    // The user removes it as told.
    op_ok(&host, &["cluster", "update-env", &cluster, "fail_init="], 0);
    op_ok(&host, &["cluster", "delete-nodes", &cluster, "--nodes", &web[2]], 0);
    assert_eq!(host.nodes(&cluster, "web").len(), 2);
}

#[test]
fn delete_nodes_takes_every_branch_and_hooks_see_deleting_hosts_until_step_11() {
    let host = Host::new();
    let app = scaling_app(|_| {});
    let (cluster, _) = host.create(&app);
    let (db, cache, web) = (
        host.nodes(&cluster, "db"),
        host.nodes(&cluster, "cache"),
        host.nodes(&cluster, "web"),
    );
    // db: destroy before stop, the guard (7-9).
    let doc = op_ok(&host, &["cluster", "delete-nodes", &cluster, "--nodes", &db[1]], 0);
    let events = host.events(doc["operation"].as_str().unwrap());
    assert_eq!(
        waves(&events),
        ["scale_in: cache", "destroy: db", "scale_in: cache+db | web", "stop: db"]
    );
    assert_ordered(&events, "scale_in");
    let check = &pre_check_seen(&events, &cache[0]);
    assert_eq!(check["pre_check"], true);
    assert_eq!(check["params"], json!({"nodes": [db[1]]}));
    assert_eq!(check["deleting"], json!([]));
    let scale_in = &calls_of(&host, &cluster, &web[0], "scale_in")[0];
    assert_eq!(scale_in["deleting"], list(&db[1..2]));
    // The deleted node's own calls are gone with its volume: the survivors' tell.
    assert!(!host.volume(&cluster, &db[1]).exists());
    assert_eq!(host.nodes(&cluster, "db"), db[..1]);
    assert!(
        absent(&host, &cluster, "/deleting-hosts"),
        "{} is still there",
        "/deleting-hosts"
    );
    assert!(!metadata(&host, &cluster, "/hosts").contains(&db[1]));
    // Step 12: the remaining nodes re-rendered without it.
    assert_eq!(
        of(&events, "render")
            .iter()
            .filter(|e| e["node_id"] == db[1].as_str())
            .count(),
        1
    );
    assert_eq!(of(&events, "render").len(), 6 + 5);

    // cache: destroy after stop (6).
    let doc = op_ok(&host, &["cluster", "delete-nodes", &cluster, "--nodes", &cache[1]], 0);
    let events = host.events(doc["operation"].as_str().unwrap());
    assert_eq!(
        waves(&events),
        [
            "scale_in: cache",
            "scale_in: cache+db | web",
            "stop: cache",
            "destroy: cache"
        ]
    );
    // web: no destroy (4).
    let doc = op_ok(&host, &["cluster", "delete-nodes", &cluster, "--nodes", &web[1]], 0);
    let events = host.events(doc["operation"].as_str().unwrap());
    assert_eq!(
        waves(&events),
        ["scale_in: cache", "scale_in: cache+db | web", "stop: web"]
    );
    assert_eq!(
        host.cluster(&cluster)["nodes"].as_array().unwrap().len(),
        3,
        "one node of each role is left"
    );
    // What the leaving node saw, recorded on a node that stays: its stop is
    // in op events with /deleting-hosts still set (the recorder on web[1] is gone).
    let stopped = of(&events, "stop");
    assert_eq!(stopped.len(), 1);
    assert_eq!(stopped[0]["node_id"], web[1].as_str());
}

#[test]
fn a_refusing_guard_aborts_the_deletion_and_leaves_every_node_running() {
    let host = Host::new();
    let app = scaling_app(|spec| {
        spec["nodes"][0]["count"] = json!(3);
        spec["nodes"][0]["services"]["destroy"]["allow_force"] = json!(false);
    });
    let (cluster, _) = host.create(&app);
    let db = host.nodes(&cluster, "db");
    std::fs::write(host.volume(&cluster, &db[2]).join("fail-destroy"), "21").unwrap();
    let instances = |host: &Host| -> Vec<Value> {
        host.cluster(&cluster)["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["instance_id"].clone())
            .collect()
    };
    let running = instances(&host);
    for force in [false, true] {
        let mut args = vec!["cluster", "delete-nodes", &cluster, "--nodes", &db[2]];
        if force {
            args.push("--force");
        }
        let doc = op_ok(&host, &args, 1);
        assert_eq!(doc["status"], "aborted");
        let error = doc["error"].as_str().unwrap();
        assert!(error.starts_with("destroy refused: destroy on node"), "{error}");
        let hint = if force {
            "(its role does not allow forcing)"
        } else {
            "force it with --force"
        };
        assert!(error.contains(hint), "{error}");
        let events = host.events(doc["operation"].as_str().unwrap());
        assert_eq!(
            waves(&events),
            ["scale_in: cache", "destroy: db"],
            "no scale_in, no stop"
        );
        // The guard saw the node leaving; afterwards nothing is leaving.
        let guard = calls_of(&host, &cluster, &db[2], "destroy");
        assert_eq!(guard.last().unwrap()["deleting"], list(&db[2..3]));
        assert!(
            absent(&host, &cluster, "/deleting-hosts"),
            "{} is still there",
            "/deleting-hosts"
        );
        assert_eq!(host.cluster(&cluster)["status"], "active");
        assert_eq!(instances(&host), running, "every node runs as before");
        assert!(calls_of(&host, &cluster, &db[2], "stop").is_empty());
        // The recovery re-rendered every node.
        assert_eq!(of(&events, "render").len(), 7 * 2);
    }
    // A later operation sees no leaving node.
    op_ok(&host, &["cluster", "delete-nodes", &cluster, "--nodes", &db[1]], 0);
    let scale_in = calls_of(&host, &cluster, &db[2], "scale_in");
    assert_eq!(scale_in.last().unwrap()["deleting"], list(&db[1..2]));
}

#[test]
fn only_the_volume_grows_online_without_stop_or_start() {
    let host = Host::new();
    let app = scaling_app(|_| {});
    let (cluster, _) = host.create(&app);
    let db = host.nodes(&cluster, "db");
    let doc = op_ok(
        &host,
        &["cluster", "resize", &cluster, "--role", "db", "--volume-size", "25"],
        0,
    );
    let events = host.events(doc["operation"].as_str().unwrap());
    assert!(
        events
            .iter()
            .all(|e| e["service"] == "render" || e["service"] == "reload"),
        "{events:#?}"
    );
    for node in &db {
        let size: Value = serde_json::from_slice(
            &std::fs::read(
                host.state
                    .path()
                    .join("nodes")
                    .join(&cluster)
                    .join(node)
                    .join("resources.json"),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(size["volume_size"], 25);
    }
    let tree = metadata(&host, &cluster, "/hosts/db");
    assert_eq!(
        tree.lines().filter(|l| l.contains("/volume_size 25")).count(),
        2,
        "{tree}"
    );
    assert!(
        absent(&host, &cluster, "/vertical-scaling-roles"),
        "{} is still there",
        "/vertical-scaling-roles"
    );
    // A smaller volume is bad input.
    let out = host.run(&["cluster", "resize", &cluster, "--role", "db", "--volume-size", "24"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("volumes never shrink"));
}

#[test]
fn sequential_resizing_follows_get_nodes_order_node_after_node() {
    let host = Host::new();
    let app = scaling_app(|spec| {
        spec["nodes"][0]["count"] = json!(3);
        spec["nodes"][0]["vertical_scaling_policy"] = json!("sequential");
        spec["nodes"][0]["services"]["get_nodes_order"] = json!({"event": ["scale_vertical"]});
    });
    let (cluster, _) = host.create(&app);
    let db = host.nodes(&cluster, "db");
    let doc = op_ok(
        &host,
        &[
            "cluster", "resize", &cluster, "--role", "db", "--cpu", "4", "--memory", "2048",
        ],
        0,
    );
    let events = host.events(doc["operation"].as_str().unwrap());
    let hooks: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["service"] != "render" && e["service"] != "reload")
        .map(|e| {
            (
                e["service"].as_str().unwrap().into(),
                e["node_id"].as_str().unwrap().into(),
            )
        })
        .collect();
    // The recorder orders by descending sid.
    let step = |service: &str, node: &String| (service.to_string(), node.clone());
    assert_eq!(
        hooks,
        [
            step("get_nodes_order", &db[0]),
            step("stop", &db[2]),
            step("start", &db[2]),
            step("stop", &db[1]),
            step("start", &db[1]),
            step("stop", &db[0]),
            step("start", &db[0]),
        ]
    );
    let hook_events: Vec<&Value> = events
        .iter()
        .filter(|e| e["service"] != "render" && e["service"] != "reload")
        .collect();
    for pair in hook_events.windows(2) {
        assert!(
            time(&pair[0]["ended_at"]) <= time(&pair[1]["started_at"]),
            "one at a time"
        );
    }
    let asked = &calls_of(&host, &cluster, &db[0], "get_nodes_order")[0];
    assert_eq!(asked["params"], json!({"event": "scale_vertical"}));
    for node in &db {
        let stop = calls_of(&host, &cluster, node, "stop");
        let start = calls_of(&host, &cluster, node, "start");
        let (stop, start) = (stop.last().unwrap(), start.last().unwrap());
        assert_eq!(stop["vertical"], json!(["db"]));
        assert_eq!(start["vertical"], json!(["db"]));
        // The metadata takes the new size at step 6, after every node.
        assert_eq!(start["cpu"], "1");
    }
    assert!(
        absent(&host, &cluster, "/vertical-scaling-roles"),
        "{} is still there",
        "/vertical-scaling-roles"
    );
    let tree = metadata(&host, &cluster, "/hosts/db");
    assert_eq!(tree.lines().filter(|l| l.ends_with("/cpu 4")).count(), 3, "{tree}");
    assert_eq!(tree.lines().filter(|l| l.ends_with("/memory 2048")).count(), 3);
    let c = host.cluster(&cluster);
    let db_node = c["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["role"] == "db")
        .unwrap();
    assert_eq!(
        (db_node["cpu"].clone(), db_node["memory"].clone()),
        (json!(4), json!(2048))
    );
}

#[test]
fn parallel_resizing_and_a_role_without_stop() {
    let host = Host::new();
    let app = scaling_app(|spec| {
        spec["nodes"][2]["services"].as_object_mut().unwrap().remove("stop");
    });
    let (cluster, _) = host.create(&app);
    // db: parallel (the default): every node stops, is resized, starts.
    let doc = op_ok(&host, &["cluster", "resize", &cluster, "--role", "db", "--cpu", "2"], 0);
    let events = host.events(doc["operation"].as_str().unwrap());
    assert_eq!(waves(&events), ["stop: db", "start: db"]);
    assert_eq!(of(&events, "stop").len(), 2, "both nodes in one step: all at once");
    // web has no stop: resized, then start (step 5 as chosen).
    let doc = op_ok(
        &host,
        &["cluster", "resize", &cluster, "--role", "web", "--memory", "4096"],
        0,
    );
    let events = host.events(doc["operation"].as_str().unwrap());
    assert_eq!(waves(&events), ["start: web"]);
    let web = host.nodes(&cluster, "web");
    assert_eq!(
        calls_of(&host, &cluster, &web[0], "start").last().unwrap()["vertical"],
        json!(["web"])
    );
}

#[test]
fn a_failed_resize_removes_vertical_scaling_roles_too() {
    let host = Host::new();
    let app = scaling_app(|spec| spec["nodes"][0]["vertical_scaling_policy"] = json!("sequential"));
    let (cluster, _) = host.create(&app);
    let db = host.nodes(&cluster, "db");
    std::fs::write(host.volume(&cluster, &db[1]).join("fail-start"), "44").unwrap();
    let doc = op_ok(&host, &["cluster", "resize", &cluster, "--role", "db", "--cpu", "3"], 1);
    assert_eq!(doc["status"], "failed");
    let events = host.events(doc["operation"].as_str().unwrap());
    let hooks: Vec<String> = events
        .iter()
        .filter(|e| e["service"] == "stop" || e["service"] == "start")
        .map(|e| format!("{} {}", e["service"].as_str().unwrap(), e["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(hooks, ["stop ok", "start ok", "stop ok", "start failed"]);
    assert!(
        absent(&host, &cluster, "/vertical-scaling-roles"),
        "{} is still there",
        "/vertical-scaling-roles"
    );
    // The recovery registered what was resized: both nodes were, before the start failed.
    let tree = metadata(&host, &cluster, "/hosts/db");
    assert_eq!(tree.lines().filter(|l| l.ends_with("/cpu 3")).count(), 2, "{tree}");
    let c = host.cluster(&cluster);
    assert_eq!(c["status"], "failed");
    // Stopping and starting settles it.
    std::fs::remove_file(host.volume(&cluster, &db[1]).join("fail-start")).unwrap();
    op_ok(&host, &["cluster", "stop", &cluster], 0);
    op_ok(&host, &["cluster", "start", &cluster], 0);
    assert_eq!(host.cluster(&cluster)["status"], "active");
}

#[test]
fn a_refresh_reloads_only_the_nodes_whose_files_changed() {
    let host = Host::new();
    // db lists every host and reloads; web lists only itself and reloads too.
    let app = scaling_app(|spec| {
        spec["nodes"][2]["env"]["render_mode"] = json!("self");
        spec["nodes"][2]["services"]["reload"] = json!({});
    });
    let (cluster, _) = host.create(&app);
    let (db, web) = (host.nodes(&cluster, "db"), host.nodes(&cluster, "web"));
    let web_reloads = calls_of(&host, &cluster, &web[0], "reload").len();
    assert_eq!(web_reloads, 1, "its first render (at creation) changed its files");
    let doc = op_ok(&host, &["cluster", "add-nodes", &cluster, "--role", "cache"], 0);
    let events = host.events(doc["operation"].as_str().unwrap());
    let reloaded: Vec<String> = of(&events, "reload")
        .iter()
        .map(|e| e["node_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        sorted(reloaded),
        sorted(db.clone()),
        "only db's members changed (step 3)"
    );
    let changed: Vec<&Value> = of(&events, "render")
        .into_iter()
        .filter(|e| e["changed"].as_array().is_some_and(|a| !a.is_empty()))
        .collect();
    // db's and cache's nodes at step 3 (cache has no reload), the new cache
    // node's first render at step 4; web's files list only the node itself.
    assert_eq!(changed.len(), 5, "{changed:#?}");
    assert!(changed.iter().all(|e| e["role"] != "web"));
    // An env change that changes nothing rendered reloads nothing.
    let doc = op_ok(&host, &["cluster", "update-env", &cluster, "unrelated=1"], 0);
    let events = host.events(doc["operation"].as_str().unwrap());
    assert_eq!(of(&events, "render").len(), 7);
    assert!(of(&events, "reload").is_empty());
    assert_eq!(calls_of(&host, &cluster, &web[0], "reload").len(), web_reloads);
}

#[test]
fn replicas_are_created_started_and_deleted_with_their_node() {
    let host = Host::new();
    let app = scaling_app(|spec| {
        spec["nodes"][0]["replica"] = json!(1);
    });
    let (cluster, create) = host.create(&app);
    let (db, replicas) = (host.nodes(&cluster, "db"), host.nodes(&cluster, "db-replica"));
    assert_eq!(replicas.len(), 2);
    let events = host.events(&create);
    assert_eq!(
        waves(&events),
        [
            "init: cache | web",
            "start: cache+db+db-replica | web",
            "init: db+db-replica"
        ]
    );
    let c = host.cluster(&cluster);
    let gid = |id: &str| {
        c["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node_id"] == id)
            .unwrap()["gid"]
            .clone()
    };
    assert_eq!(gid(&db[1]), gid(&replicas[1]), "a replica shares its node's gid");
    let tree = metadata(&host, &cluster, "/hosts/db-replica");
    assert_eq!(
        tree.lines().filter(|l| l.ends_with("/role db-replica")).count(),
        2,
        "{tree}"
    );
    // Adding a node adds its replica; deleting it deletes both.
    op_ok(&host, &["cluster", "add-nodes", &cluster, "--role", "db"], 0);
    assert_eq!(host.nodes(&cluster, "db-replica").len(), 3);
    let new = host.nodes(&cluster, "db")[2].clone();
    let doc = op_ok(&host, &["cluster", "delete-nodes", &cluster, "--nodes", &new], 0);
    let events = host.events(doc["operation"].as_str().unwrap());
    let stopped: Vec<&str> = of(&events, "stop")
        .iter()
        .map(|e| e["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        sorted(stopped.iter().map(|s| s.to_string()).collect()),
        ["db", "db-replica"]
    );
    assert_eq!(host.nodes(&cluster, "db-replica"), replicas);
    let out = host.run(&["cluster", "delete-nodes", &cluster, "--nodes", &replicas[0]]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a replica"));
}

#[test]
fn bad_input_to_every_scaling_command_exits_2_and_changes_nothing() {
    let host = Host::new();
    let app = scaling_app(|_| {});
    let (cluster, _) = host.create(&app);
    let (other, _) = host.create(&app);
    let (cache, db) = (host.nodes(&cluster, "cache"), host.nodes(&cluster, "db"));
    let foreign = host.nodes(&other, "db")[0].clone();
    let long = "x".repeat(100_000);
    let snapshot = |host: &Host| {
        (
            host.cluster(&cluster),
            metadata(host, &cluster, "/"),
            host.run(&["op", "list", "--json"]).stdout,
        )
    };
    let before = snapshot(&host);
    let (twice, all_cache) = (format!("{},{}", db[0], db[0]), cache.join(","));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["add-nodes", &cluster, "--role", "web", "--count", "0"],
            "--count must be at least 1",
        ),
        (
            vec!["add-nodes", &cluster, "--role", "web", "--count", "1000000000"],
            "a cluster has at most 10000",
        ),
        (
            vec!["add-nodes", &cluster, "--role", "web", "--count", "99999999999"],
            "invalid value",
        ),
        (vec!["add-nodes", &cluster, "--role", "nope"], "it has no role \"nope\""),
        (vec!["add-nodes", &cluster, "--role", &long], "more bytes"),
        (vec!["add-nodes", "cl-nothere", "--role", "web"], "cl-nothere"),
        (vec!["delete-nodes", &cluster, "--nodes", &foreign], "it has no node"),
        (
            vec!["delete-nodes", &cluster, "--nodes", "cln-none"],
            "it has no node \"cln-none\"",
        ),
        (vec!["delete-nodes", &cluster, "--nodes", &twice], "is named twice"),
        (
            vec!["delete-nodes", &cluster, "--nodes", &all_cache],
            "every node of role cache",
        ),
        (
            vec!["delete-nodes", &cluster, "--nodes", "../../etc"],
            "it has no node \"../../etc\"",
        ),
        (vec!["delete-nodes", &cluster], "--nodes"),
        (vec!["resize", &cluster, "--role", "db"], "name what changes"),
        (
            vec!["resize", &cluster, "--role", "db", "--volume-size", "1"],
            "volumes never shrink",
        ),
        (
            vec!["resize", &cluster, "--role", "db", "--cpu", "0"],
            "1 to 1024 cores",
        ),
        (
            vec!["resize", &cluster, "--role", "db", "--cpu", "1", "--memory", "1024"],
            "nothing changes",
        ),
        (
            vec!["resize", &cluster, "--role", "db", "--memory", "-5"],
            "unexpected argument",
        ),
        (vec!["update-env", &cluster, "a/b=1"], "\"a/b\" cannot be a key"),
        (
            vec!["update-env", &cluster, r#"o={"..":1}"#],
            "env.o...: \"..\" cannot be a key",
        ),
        (vec!["update-env", &cluster, "a=1", "a=2"], "key \"a\" is given twice"),
        (
            vec!["update-env", &cluster, r#"o={"a":{"b":1}}"#],
            "values are strings, numbers, booleans",
        ),
        (
            vec!["update-env", &cluster, "o={}"],
            "the spec declares no such key in the env",
        ),
        (vec!["update-env", &cluster, "novalue"], "is not KEY=VALUE"),
    ];
    for (args, says) in cases {
        let mut all = vec!["cluster"];
        all.extend(&args);
        let out = host.run(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(stderr.len() < 2000, "the error stays short: {}", stderr.len());
    }
    assert_eq!(snapshot(&host), before, "nothing changed");
    // Every scaling operation on a stopped cluster is refused the same way
    // (an env update is not: the nodes render it when they start).
    op_ok(&host, &["cluster", "stop", &cluster], 0);
    for args in [
        vec!["add-nodes", &cluster, "--role", "web"],
        vec!["delete-nodes", &cluster, "--nodes", &db[0]],
        vec!["resize", &cluster, "--role", "db", "--cpu", "2"],
    ] {
        let mut all = vec!["cluster"];
        all.extend(&args);
        let out = host.run(&all);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("it is stopped"),
            "{args:?}"
        );
    }
}

#[test]
fn kill_9_in_the_middle_of_each_flow_then_resume() {
    let host = Host::new();
    let app = scaling_app(|spec| spec["nodes"][0]["vertical_scaling_policy"] = json!("sequential"));
    let (cluster, _) = host.create(&app);
    let db = host.nodes(&cluster, "db");
    // Each flow is killed while a slow hook runs, then resumed to its end.
    let cases: Vec<KillCase> = vec![
        (
            "add-nodes",
            vec!["add-nodes".into(), cluster.clone(), "--role".into(), "web".into()],
            "start",
            Box::new(|h: &Host| h.nodes(&cluster, "web")[2..].to_vec()),
        ),
        (
            "delete-nodes",
            vec!["delete-nodes".into(), cluster.clone(), "--nodes".into(), db[1].clone()],
            "scale_in",
            Box::new(|h: &Host| h.nodes(&cluster, "web")),
        ),
        (
            "resize",
            vec![
                "resize".into(),
                cluster.clone(),
                "--role".into(),
                "db".into(),
                "--cpu".into(),
                "2".into(),
            ],
            "start",
            Box::new(|_: &Host| db[..1].to_vec()),
        ),
    ];
    for (kind, args, slow, watched) in cases {
        op_ok(
            &host,
            &["cluster", "update-env", &cluster, &format!("sleep_ms_{slow}=2500")],
            0,
        );
        let mut all: Vec<&str> = vec!["cluster"];
        all.extend(args.iter().map(String::as_str));
        let mut child = spawn(&host, &all);
        wait_for(&format!("{kind}'s {slow} to begin"), || {
            let nodes = watched(&host);
            !nodes.is_empty()
                && nodes.iter().all(|n| {
                    host.calls(&cluster, n)
                        .iter()
                        .any(|c| c["service"] == slow && c["operation"].as_str().unwrap().contains(&kind_wit(kind)))
                })
        });
        child.kill().unwrap();
        child.wait().unwrap();
        op_ok(
            &host,
            &["cluster", "update-env", &cluster, &format!("sleep_ms_{slow}=")],
            2,
        );
        let op = last_op(&host, kind);
        let doc = op_ok(&host, &["op", "resume", &op], 0);
        assert_eq!(doc["status"], "succeeded", "{kind}: {doc:#}");
        let events = host.events(&op);
        let cut: Vec<(&str, u64)> = of(&events, slow)
            .iter()
            .filter(|e| e["outcome"] != "ok" || e["attempt"] != 1)
            .map(|e| (e["outcome"].as_str().unwrap(), e["attempt"].as_u64().unwrap()))
            .collect();
        assert!(
            cut.contains(&("interrupted", 1)) && cut.contains(&("ok", 2)),
            "{kind}: the cut-off {slow} ran again: {cut:?}"
        );
        // No hook that had ended ran twice.
        let mut seen = std::collections::HashSet::new();
        for e in events.iter().filter(|e| e["outcome"] == "ok") {
            let key = (e["step"].as_u64(), e["node_id"].as_str(), e["service"].as_str());
            assert!(seen.insert(key), "{kind}: {key:?} ran twice");
        }
        assert_eq!(host.cluster(&cluster)["status"], "active", "{kind}");
        for temp in ["/adding-hosts", "/deleting-hosts", "/vertical-scaling-roles"] {
            assert!(absent(&host, &cluster, temp), "{kind}: {temp} is still there");
        }
        op_ok(
            &host,
            &["cluster", "update-env", &cluster, &format!("sleep_ms_{slow}=")],
            0,
        );
    }
    assert_eq!(host.nodes(&cluster, "web").len(), 3);
    assert_eq!(host.nodes(&cluster, "db").len(), 1);
}

/// A flow to kill: its kind, its arguments, the slow service, the nodes it runs on.
type KillCase<'a> = (&'a str, Vec<String>, &'a str, Box<dyn Fn(&Host) -> Vec<String> + 'a>);

/// The operation's name as the recorder writes it (`AddNodes`).
fn kind_wit(kind: &str) -> String {
    match kind {
        "add-nodes" => "AddNodes",
        "delete-nodes" => "DeleteNodes",
        _ => "VerticalScaling",
    }
    .to_string()
}

#[test]
fn zookeeper_refuses_to_lose_its_leader() {
    let host = Host::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        support::repo("example-plugins/zookeeper/spec.json"),
        dir.path().join("spec.json"),
    )
    .unwrap();
    std::fs::copy(
        support::guest(support::ZOOKEEPER),
        dir.path().join("zookeeper_hooks.wasm"),
    )
    .unwrap();
    let (code, doc) = host.op(&["cluster", "create", dir.path().join("spec.json").to_str().unwrap()]);
    assert_eq!(code, 0, "{doc:#}");
    let cluster = doc["cluster_id"].as_str().unwrap().to_string();
    op_ok(
        &host,
        &["cluster", "add-nodes", &cluster, "--role", "zk_node", "--count", "2"],
        0,
    );
    let zk = host.nodes(&cluster, "zk_node");
    assert_eq!(zk.len(), 5);
    // The leader is the node of highest sid: the last one added.
    let leader = zk[4].clone();
    let doc = op_ok(&host, &["cluster", "delete-nodes", &cluster, "--nodes", &leader], 1);
    let error = doc["error"].as_str().unwrap();
    assert!(
        error.contains("the scale_in pre-check refused") && error.contains("error 22"),
        "{error}"
    );
    assert!(
        error.contains(&format!("node {leader} is the ensemble's leader (sid 5)")),
        "{error}"
    );
    let zoo = |node: &str| rendered(&host, &cluster, node, "opt/zookeeper/conf/zoo.cfg");
    assert_eq!(zoo(&zk[0]).lines().filter(|l| l.starts_with("server.")).count(), 5);
    op_ok(
        &host,
        &[
            "cluster",
            "delete-nodes",
            &cluster,
            "--nodes",
            &format!("{},{}", zk[0], zk[1]),
        ],
        0,
    );
    let servers: Vec<String> = zoo(&zk[2])
        .lines()
        .filter(|l| l.starts_with("server."))
        .map(String::from)
        .collect();
    assert_eq!(servers.len(), 3, "{servers:?}");
    assert!(servers[0].starts_with("server.3="), "{servers:?}");
}

#[test]
fn a_failing_scale_out_fails_the_add_at_step_6_and_the_new_nodes_stay_not_joined() {
    let host = Host::new();
    let app = scaling_app(|_| {});
    let (cluster, _) = host.create(&app);
    let web = host.nodes(&cluster, "web");
    std::fs::write(host.volume(&cluster, &web[0]).join("fail-scale_out"), "45").unwrap();
    let doc = op_ok(&host, &["cluster", "add-nodes", &cluster, "--role", "db"], 1);
    assert_eq!(doc["status"], "failed");
    let error = doc["error"].as_str().unwrap();
    assert!(
        error.contains("scale_out on node") && error.contains("error 45"),
        "{error}"
    );
    let events = host.events(doc["operation"].as_str().unwrap());
    // The new node ran init and start; db's scale_out ran (order 0), web's failed (order 1).
    assert_eq!(
        waves(&events),
        ["scale_out: db", "start: db", "init: db", "scale_out: db | web"]
    );
    let db = host.nodes(&cluster, "db");
    assert_eq!(db.len(), 3);
    assert!(absent(&host, &cluster, "/adding-hosts"));
    let record = host.cluster(&cluster);
    assert_eq!(record["status"], "active");
    let new = record["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node_id"] == db[2].as_str())
        .unwrap();
    assert_eq!(new["joining"], true, "step 6 did not end: not joined");
}

#[test]
fn cancelling_before_anything_irreversible_leaves_the_cluster_active() {
    let host = Host::new();
    let app = scaling_app(|spec| spec["nodes"][0]["count"] = json!(3));
    let (cluster, _) = host.create(&app);
    // add-nodes cancelled while its pre-check runs: nothing changed.
    op_ok(
        &host,
        &["cluster", "update-env", &cluster, "sleep_ms_scale_out=1500"],
        0,
    );
    let child = spawn(&host, &["cluster", "add-nodes", &cluster, "--role", "db"]);
    wait_for("the pre-check to start", || {
        host.run(&["op", "list", "--json"])
            .stdout
            .windows(9)
            .any(|w| w == b"add-nodes")
            && host
                .events(&last_op(&host, "add-nodes"))
                .iter()
                .any(|e| e["service"] == "scale_out")
    });
    let op = last_op(&host, "add-nodes");
    let cancel = host.run(&["op", "cancel", &op]);
    assert!(cancel.status.success(), "{}", String::from_utf8_lossy(&cancel.stderr));
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let shown: Value = serde_json::from_slice(&host.run(&["op", "show", &op, "--json"]).stdout).unwrap();
    assert_eq!(shown["operation"]["status"], "cancelled");
    assert_eq!(host.cluster(&cluster)["status"], "active", "only a pre-check ran");
    assert_eq!(host.nodes(&cluster, "db").len(), 3);
    op_ok(&host, &["cluster", "update-env", &cluster, "sleep_ms_scale_out="], 0);

    // resize cancelled while get_nodes_order runs: no node was touched, the recovery undoes step 1.
    let app = scaling_app(|spec| {
        spec["nodes"][0]["vertical_scaling_policy"] = json!("sequential");
        spec["nodes"][0]["services"]["get_nodes_order"] = json!({"event": ["scale_vertical"]});
        spec["nodes"][0]["env"] = json!({"sleep_ms_get_nodes_order": "1500"});
    });
    let (cluster, _) = host.create(&app);
    let db = host.nodes(&cluster, "db");
    let child = spawn(&host, &["cluster", "resize", &cluster, "--role", "db", "--cpu", "2"]);
    wait_for("get_nodes_order to begin", || {
        !calls_of(&host, &cluster, &db[0], "get_nodes_order").is_empty()
    });
    let op = last_op(&host, "resize");
    let cancel = host.run(&["op", "cancel", &op]);
    assert!(cancel.status.success(), "{}", String::from_utf8_lossy(&cancel.stderr));
    assert_eq!(child.wait_with_output().unwrap().status.code(), Some(1));
    let shown: Value = serde_json::from_slice(&host.run(&["op", "show", &op, "--json"]).stdout).unwrap();
    assert_eq!(shown["operation"]["status"], "cancelled");
    assert!(shown["operation"]["recovery"].is_object(), "the recovery ran");
    assert_eq!(host.cluster(&cluster)["status"], "active", "no node was touched");
    assert!(absent(&host, &cluster, "/vertical-scaling-roles"));
    assert!(calls_of(&host, &cluster, &db[0], "stop").is_empty());
}

#[test]
fn a_forced_guard_lets_the_node_go_where_allow_force_permits() {
    let host = Host::new();
    let app = scaling_app(|_| {});
    let (cluster, _) = host.create(&app);
    let db = host.nodes(&cluster, "db");
    std::fs::write(host.volume(&cluster, &db[1]).join("fail-destroy"), "21").unwrap();
    let doc = op_ok(
        &host,
        &["cluster", "delete-nodes", &cluster, "--nodes", &db[1], "--force"],
        0,
    );
    let events = host.events(doc["operation"].as_str().unwrap());
    assert_eq!(
        waves(&events),
        ["scale_in: cache", "destroy: db", "scale_in: cache+db | web", "stop: db"]
    );
    assert_eq!(
        of(&events, "destroy")[0]["outcome"],
        "failed",
        "refused, then forced past"
    );
    assert_eq!(host.nodes(&cluster, "db"), db[..1]);
}

#[test]
fn replicas_are_resized_with_their_role_and_sids_stay_within_the_bound() {
    let host = Host::new();
    let app = scaling_app(|spec| {
        spec["nodes"][0]["replica"] = json!(1);
        spec["nodes"][0]["server_id_upper_bound"] = json!(3);
    });
    let (cluster, _) = host.create(&app);
    op_ok(&host, &["cluster", "resize", &cluster, "--role", "db", "--cpu", "2"], 0);
    let replicas = host.nodes(&cluster, "db-replica");
    let stop = calls_of(&host, &cluster, &replicas[0], "stop");
    assert_eq!(stop.last().unwrap()["vertical"], json!(["db", "db-replica"]));
    let tree = metadata(&host, &cluster, "/hosts/db-replica");
    assert_eq!(tree.lines().filter(|l| l.ends_with("/cpu 2")).count(), 2, "{tree}");
    // sids 1 and 2 are taken, the bound is 3: one more node, not two.
    let out = host.run(&["cluster", "add-nodes", &cluster, "--role", "db", "--count", "2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("role db has server_id_upper_bound 3: only 1 sid(s) are free for 2 new node(s)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    op_ok(&host, &["cluster", "add-nodes", &cluster, "--role", "db"], 0);
    assert_eq!(host.nodes(&cluster, "db-replica").len(), 3);
}

#[test]
fn a_bad_env_value_is_fixed_by_another_update_and_a_stopped_cluster_takes_its_env_at_start() {
    let host = Host::new();
    let app = scaling_app(|spec| {
        for (key, value) in [
            ("v", json!("")),
            ("n", json!(0)),
            ("big", json!("")),
            ("on", json!(false)),
        ] {
            spec["env"][key] = value;
        }
    });
    let (cluster, _) = host.create(&app);
    // The recorder renders to /env/render_path: a path out of the node fails the render.
    let doc = op_ok(
        &host,
        &["cluster", "update-env", &cluster, "render_path=../../outside"],
        1,
    );
    assert_eq!(doc["status"], "failed");
    assert_eq!(host.cluster(&cluster)["status"], "failed");
    op_ok(&host, &["cluster", "update-env", &cluster, "render_path="], 0);
    assert_eq!(host.cluster(&cluster)["status"], "active");
    // Values stay as typed: JSON that would change a number is kept as text.
    op_ok(
        &host,
        &[
            "cluster",
            "update-env",
            &cluster,
            "v=1.10",
            "n=3000",
            "big=123456789012345678901234567890",
            "on=true",
        ],
        0,
    );
    let env = metadata(&host, &cluster, "/env");
    for line in [
        "/env/v 1.10",
        "/env/n 3000",
        "/env/big 123456789012345678901234567890",
        "/env/on true",
    ] {
        assert!(env.lines().any(|l| l == line), "{line} in {env}");
    }
    let record = host.cluster(&cluster);
    assert_eq!(record["spec"]["env"]["n"], 3000, "a number that survives JSON is one");
    // Stopped: the record and the metadata change, nothing renders; it renders at start.
    op_ok(&host, &["cluster", "stop", &cluster], 0);
    let doc = op_ok(&host, &["cluster", "update-env", &cluster, "render_mode=self"], 0);
    let events = host.events(doc["operation"].as_str().unwrap());
    assert!(events.iter().all(|e| e["outcome"] == "skipped"), "{events:#?}");
    assert_eq!(host.cluster(&cluster)["status"], "stopped");
    assert_eq!(
        metadata(&host, &cluster, "/env/render_mode").trim_end().lines().last(),
        Some("/env/render_mode self")
    );
    op_ok(&host, &["cluster", "start", &cluster], 0);
    let db = host.nodes(&cluster, "db");
    let members = rendered(&host, &cluster, &db[0], "etc/recorder/members");
    assert_eq!(members.lines().count(), 1, "it lists only itself now: {members}");
}
