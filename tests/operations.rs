//! The operations beyond the lifecycle's core, driven through the CLI with
//! real components: custom services (`cluster run`) with their params,
//! pre-checks and `err_code` messages, restart, env updates of a role,
//! `custom_metadata` tokens; each with its hook order, what hooks saw, and
//! bad input refused (exit 2) with nothing changed.

#[path = "common/mod.rs"]
mod common;

use common::*;
use serde_json::{Value, json};

/// The lifecycle app with a custom service `echo` (db: one node, pre-checked,
/// a required and a defaulted param; web: after db), `restart` on db and
/// web, `custom_metadata` on db, no sleeps, and messages for error codes.
fn ops_app(edit: impl FnOnce(&mut Value)) -> App {
    app(|spec| {
        spec["env"]["sleep_ms"] = json!("0");
        let db = &mut spec["nodes"][0]["services"];
        db["echo"] = json!({"type": "custom", "nodes_to_execute_on": 1, "pre_check": true,
            "service_params": {"msg": null, "n": 1}});
        db["restart"] = json!({});
        db["custom_metadata"] = json!({"timeout": 30});
        spec["nodes"][2]["services"]["echo"] =
            json!({"type": "custom", "order": 1, "service_params": {"msg": null, "n": 1}});
        spec["nodes"][2]["services"]["restart"] = json!({"order": 1});
        spec["locale"] = json!({"en": {"err_code21": "The echo was refused by the app"}});
        edit(spec);
    })
}

/// The hook events of an operation, as `step:service@node` in the order they began.
fn begun(host: &Host, op: &str) -> Vec<String> {
    let mut events = host.events(op);
    events.retain(|e| e["service"] != "render" && e["service"] != "reload");
    events.sort_by_key(|e| (e["step"].as_u64(), e["seq"].as_u64()));
    events
        .iter()
        .map(|e| {
            format!(
                "{}:{}@{}",
                e["step"],
                e["service"].as_str().unwrap(),
                e["node_id"].as_str().unwrap()
            )
        })
        .collect()
}

/// The recorder's `begin` lines of one service on one node.
fn seen(host: &Host, cluster: &str, node: &str, service: &str) -> Vec<Value> {
    host.calls(cluster, node)
        .into_iter()
        .filter(|c| c["service"] == service && c["phase"] == "begin")
        .collect()
}

/// Runs a command that must be refused as bad input (exit 2) and returns its stderr.
fn bad_input(host: &Host, args: &[&str]) -> String {
    let out = host.run(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    stderr
}

#[test]
fn a_custom_service_runs_pre_checked_by_role_order_with_its_params_and_its_error_messages() {
    let app = ops_app(|_| {});
    let host = Host::new();
    let (cluster, _) = host.create(&app);
    let (db, web) = (host.nodes(&cluster, "db"), host.nodes(&cluster, "web"));
    let doc = op_ok(
        &host,
        &["cluster", "run", &cluster, "echo", "--params", r#"{"msg": "hi"}"#],
        0,
    );
    let op = doc["operation"].as_str().unwrap();
    // The pre-check (step 0) asks db's one node; then db's node, then (order 1) the web nodes.
    assert_eq!(
        begun(&host, op),
        [
            format!("0:echo@{}", db[0]),
            format!("1:echo@{}", db[0]),
            format!("1:echo@{}", web[0]),
            format!("1:echo@{}", web[1]),
        ]
    );
    let pre = host.events(op).into_iter().find(|e| e["step"] == 0).unwrap();
    assert!(pre["log"].to_string().contains(r#"\"pre_check\":true"#), "{pre:#}");
    assert_ordered(&host.events(op), "echo");
    let got = seen(&host, &cluster, &db[0], "echo");
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0]["params"],
        json!({"msg": "hi", "n": 1}),
        "the default fills what is not given"
    );
    assert_eq!(got[0]["operation"], "Operation::CustomService");
    assert!(
        seen(&host, &cluster, &db[1], "echo").is_empty(),
        "nodes_to_execute_on: 1"
    );

    // --role and --nodes pick the nodes.
    let doc = op_ok(
        &host,
        &[
            "cluster",
            "run",
            &cluster,
            "echo",
            "--params",
            r#"{"msg": "w", "n": 7}"#,
            "--nodes",
            &web[1],
        ],
        0,
    );
    assert_eq!(
        begun(&host, doc["operation"].as_str().unwrap()),
        [format!("0:echo@{}", web[1])]
    );
    assert_eq!(
        seen(&host, &cluster, &web[1], "echo")[1]["params"],
        json!({"msg": "w", "n": 7})
    );
    let doc = op_ok(
        &host,
        &[
            "cluster",
            "run",
            &cluster,
            "echo",
            "--params",
            r#"{"msg": "r"}"#,
            "--role",
            "web",
        ],
        0,
    );
    assert_eq!(
        begun(&host, doc["operation"].as_str().unwrap()),
        [format!("0:echo@{}", web[0]), format!("0:echo@{}", web[1])]
    );

    // A failing hook: its code with the spec's message; the cluster stays active.
    std::fs::write(host.volume(&cluster, &web[0]).join("fail-echo"), "21").unwrap();
    let doc = op_ok(
        &host,
        &["cluster", "run", &cluster, "echo", "--params", r#"{"msg": "x"}"#],
        1,
    );
    let error = doc["error"].as_str().unwrap();
    assert!(
        error.contains(&format!(
            "echo on node {} (web) error 21 (The echo was refused by the app): echo refused",
            web[0]
        )),
        "{error}"
    );
    assert_eq!(host.cluster(&cluster)["status"], "active");
    // A refusing pre-check changes nothing and says so.
    std::fs::remove_file(host.volume(&cluster, &web[0]).join("fail-echo")).unwrap();
    std::fs::write(host.volume(&cluster, &db[0]).join("fail-echo"), "5").unwrap();
    let doc = op_ok(
        &host,
        &["cluster", "run", &cluster, "echo", "--params", r#"{"msg": "x"}"#],
        1,
    );
    assert!(
        doc["error"].as_str().unwrap().contains("the echo pre-check refused"),
        "{doc:#}"
    );
    assert_eq!(host.cluster(&cluster)["status"], "active");

    // Bad input: exit 2, no operation.
    let ops_before = host.run(&["op", "list", "--json"]).stdout;
    let cases: [(&[&str], &str); 9] = [
        (&["echo"], "service_params.msg: required"),
        (
            &["echo", "--params", r#"{"msg": "x", "bogus": 1}"#],
            "unknown parameter \"bogus\"; echo takes msg, n",
        ),
        (
            &["echo", "--params", r#"{"msg": "x", "n": "one"}"#],
            "service_params.n: \"one\" is a string, but the parameter is a number",
        ),
        (&["echo", "--params", "[1]"], "give a JSON object"),
        (&["echo", "--params", "{"], "not JSON"),
        (
            &["nope"],
            "no role defines a custom service \"nope\"; its custom services are echo",
        ),
        (&["start"], "start is a lifecycle service"),
        (
            &["echo", "--params", r#"{"msg": "x"}"#, "--role", "cache"],
            "role cache does not define echo",
        ),
        (
            &[
                "echo",
                "--params",
                r#"{"msg": "x"}"#,
                "--nodes",
                &format!("{},{}", db[0], db[1]),
            ],
            "echo runs on at most 1 node(s) of role db",
        ),
    ];
    for (args, why) in cases {
        let mut all = vec!["cluster", "run", cluster.as_str()];
        all.extend_from_slice(args);
        let stderr = bad_input(&host, &all);
        assert!(stderr.contains(why), "{args:?}: {stderr}");
    }
    let stderr = bad_input(
        &host,
        &[
            "cluster",
            "run",
            &cluster,
            "echo",
            "--params",
            r#"{"msg": "x"}"#,
            "--nodes",
            "cln-nope",
        ],
    );
    assert!(stderr.contains("it has no node \"cln-nope\""), "{stderr}");
    let stderr = bad_input(&host, &["cluster", "run", "cl-nope", "echo"]);
    assert!(stderr.contains("cl-nope"), "{stderr}");
    assert_eq!(
        host.run(&["op", "list", "--json"]).stdout,
        ops_before,
        "no operation was stored"
    );
    // Not on a stopped cluster.
    op_ok(&host, &["cluster", "stop", &cluster], 0);
    let stderr = bad_input(
        &host,
        &["cluster", "run", &cluster, "echo", "--params", r#"{"msg": "x"}"#],
    );
    assert!(stderr.contains("it is stopped"), "{stderr}");
    let stderr = bad_input(&host, &["cluster", "restart", &cluster]);
    assert!(stderr.contains("it is stopped"), "{stderr}");
}

#[test]
fn restart_runs_by_role_order_and_a_failed_one_is_run_again() {
    let app = ops_app(|_| {});
    let host = Host::new();
    let (cluster, _) = host.create(&app);
    let (db, web) = (host.nodes(&cluster, "db"), host.nodes(&cluster, "web"));
    let doc = op_ok(&host, &["cluster", "restart", &cluster], 0);
    let op = doc["operation"].as_str().unwrap();
    assert_eq!(
        waves(&host.events(op)),
        ["restart: db | web"],
        "cache defines no restart"
    );
    assert_ordered(&host.events(op), "restart");
    assert_eq!(
        seen(&host, &cluster, &db[0], "restart")[0]["operation"],
        "Operation::RestartService"
    );
    let doc = op_ok(&host, &["cluster", "restart", &cluster, "--role", "web"], 0);
    assert_eq!(
        begun(&host, doc["operation"].as_str().unwrap()),
        [format!("0:restart@{}", web[0]), format!("0:restart@{}", web[1])]
    );
    // A failed restart leaves the cluster failed; restarting it again fixes it.
    std::fs::write(host.volume(&cluster, &db[1]).join("fail-restart"), "9").unwrap();
    op_ok(&host, &["cluster", "restart", &cluster], 1);
    assert_eq!(host.cluster(&cluster)["status"], "failed");
    let stderr = bad_input(
        &host,
        &["cluster", "run", &cluster, "echo", "--params", r#"{"msg": "x"}"#],
    );
    assert!(stderr.contains("its last restart failed; restart it again"), "{stderr}");
    std::fs::remove_file(host.volume(&cluster, &db[1]).join("fail-restart")).unwrap();
    op_ok(&host, &["cluster", "restart", &cluster], 0);
    assert_eq!(host.cluster(&cluster)["status"], "active");
    let stderr = bad_input(&host, &["cluster", "restart", &cluster, "--role", "cache"]);
    assert!(stderr.contains("role cache defines no restart service"), "{stderr}");
}

#[test]
fn custom_metadata_runs_after_init_and_before_start_and_becomes_the_token() {
    let app = ops_app(|spec| {
        spec["advanced_actions"] = json!(["scale_horizontal"]);
        // db's init runs before start here, so custom_metadata comes after it.
        spec["nodes"][0]["services"]["init"] = json!({});
    });
    let host = Host::new();
    let (cluster, create) = host.create(&app);
    let db = host.nodes(&cluster, "db");
    let steps = waves(&host.events(&create));
    assert_eq!(
        steps,
        ["init: cache+db | web", "custom_metadata: db", "start: cache+db | web"],
        "{steps:?}"
    );
    for node in &db {
        let out = host.run(&["cluster", "metadata", &cluster, "/host/token", "--node", node]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("/host/token token-{node}")));
    }
    // An added node gets its own.
    op_ok(&host, &["cluster", "add-nodes", &cluster, "--role", "db"], 0);
    let added = host
        .nodes(&cluster, "db")
        .into_iter()
        .find(|n| !db.contains(n))
        .unwrap();
    let c = host.cluster(&cluster);
    let node = c["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node_id"] == added.as_str())
        .unwrap();
    assert_eq!(node["token"], format!("token-{added}"));
    // A start keeps the tokens (custom_metadata runs only at creation).
    op_ok(&host, &["cluster", "stop", &cluster], 0);
    let doc = op_ok(&host, &["cluster", "start", &cluster], 0);
    assert!(
        host.events(doc["operation"].as_str().unwrap())
            .iter()
            .all(|e| e["service"] != "custom_metadata")
    );
    let out = host.run(&["cluster", "metadata", &cluster, "/host/token", "--node", &db[0]]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("token-{}", db[0])));
}

#[test]
fn update_env_of_a_role_changes_only_declared_keys_in_one_revision() {
    let app = ops_app(|spec| {
        spec["env"]["level"] = json!("info");
        spec["unchangeable_env"] = json!(["level"]);
    });
    let host = Host::new();
    let (cluster, _) = host.create(&app);
    let web = host.nodes(&cluster, "web");
    let doc = op_ok(
        &host,
        &["cluster", "update-env", &cluster, "--role", "web", "sleep_ms=1"],
        0,
    );
    let events = host.events(doc["operation"].as_str().unwrap());
    assert_eq!(of(&events, "render").len(), 5, "every node re-renders");
    let out = host.run(&[
        "cluster",
        "metadata",
        &cluster,
        "/env/sleep_ms",
        "--node",
        &web[0],
        "--json",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "\"1\"", "web's own value");
    let db = host.nodes(&cluster, "db");
    let out = host.run(&[
        "cluster",
        "metadata",
        &cluster,
        "/env/sleep_ms",
        "--node",
        &db[0],
        "--json",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "\"0\"",
        "the cluster's value"
    );
    let before = host.cluster(&cluster);
    for (args, why) in [
        (vec!["nope=1"], "the spec declares no such key in the env"),
        (vec!["level=debug"], "set once, at create"),
        (vec!["sleep_ms=null"], "cannot be removed"),
        (
            vec!["--role", "cache", "sleep_ms=1"],
            "role cache's env; it declares none",
        ),
        (vec!["--role", "web", "sleep_ms=1"], "nothing changes"),
    ] {
        let mut all = vec!["cluster", "update-env", cluster.as_str()];
        all.extend(args.iter().copied());
        let stderr = bad_input(&host, &all);
        assert!(stderr.contains(why), "{args:?}: {stderr}");
    }
    assert_eq!(host.cluster(&cluster), before, "nothing changed");
}
