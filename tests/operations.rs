//! The operations beyond the lifecycle's core, driven through the CLI with
//! real components: custom services (`cluster run`) with their params,
//! pre-checks and `err_code` messages, restart, env updates of a role,
//! `custom_metadata` tokens, backups and restores, network changes and
//! reserved-IP exchanges; each with its hook order, what hooks saw, and
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

/// The backup app: `device` backups, incremental allowed; db's `backup`
/// runs on one node chosen by its `find_leader` selector (the highest sid),
/// db restores with `restore`, cache and web with `start`.
fn backup_app(edit: impl FnOnce(&mut Value)) -> App {
    ops_app(|spec| {
        spec["backup_policy"] = json!("device");
        spec["incremental_backup_supported"] = json!(true);
        let db = &mut spec["nodes"][0]["services"];
        db["find_leader"] = json!({"type": "custom", "timeout": 30});
        db["backup"] = json!({"selector": "find_leader", "nodes_to_execute_on": 1, "service_params": {"level": 1}});
        db["restore"] = json!({});
        edit(spec);
    })
}

/// Every entry beneath a directory: files by content, links by target.
fn tree(dir: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                out.insert(rel, format!("link → {}", std::fs::read_link(&path).unwrap().display()));
            } else if meta.is_dir() {
                out.insert(rel, "dir".into());
                stack.push(path);
            } else {
                out.insert(
                    rel,
                    String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned(),
                );
            }
        }
    }
    out
}

/// A cluster's volumes by (role, sid), as trees.
fn volumes(
    host: &Host,
    cluster: &str,
) -> std::collections::BTreeMap<(String, u64), std::collections::BTreeMap<String, String>> {
    host.cluster(cluster)["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let key = (n["role"].as_str().unwrap().to_string(), n["sid"].as_u64().unwrap());
            (key, tree(&host.volume(cluster, n["node_id"].as_str().unwrap())))
        })
        .collect()
}

/// The trees without the recorder's own log (the hooks of a restore append to it).
fn without_calls(
    mut trees: std::collections::BTreeMap<(String, u64), std::collections::BTreeMap<String, String>>,
) -> std::collections::BTreeMap<(String, u64), std::collections::BTreeMap<String, String>> {
    for t in trees.values_mut() {
        t.remove("calls.jsonl");
    }
    trees
}

#[test]
fn a_device_backup_chain_restores_byte_for_byte_into_new_clusters() {
    let app = backup_app(|_| {});
    let host = Host::new();
    let (cluster, _) = host.create(&app);
    let db = host.nodes(&cluster, "db");
    // Data of every kind on the volumes: nested files, binary bytes, a link (never followed).
    for node in host.nodes(&cluster, "db").iter().chain(&host.nodes(&cluster, "web")) {
        let v = host.volume(&cluster, node);
        std::fs::create_dir_all(v.join("data/deep")).unwrap();
        std::fs::write(v.join("data/deep/big"), vec![b'z'; 300_000]).unwrap();
        std::fs::write(v.join("data/own"), format!("data of {node}")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", v.join("data/link")).unwrap();
    }
    let doc = op_ok(
        &host,
        &[
            "cluster",
            "backup",
            &cluster,
            "--name",
            "first",
            "--params",
            r#"{"level": 3}"#,
        ],
        0,
    );
    let full = doc["backup"].as_str().unwrap().to_string();
    // The selector asks db's first node; the leader it names (the highest sid) prepares the backup.
    let events = host.events(doc["operation"].as_str().unwrap());
    let hooks: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["service"].as_str().unwrap().into(),
                e["node_id"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        hooks,
        [("find_leader".into(), db[0].clone()), ("backup".into(), db[1].clone())]
    );
    let seen_backup = seen(&host, &cluster, &db[1], "backup");
    assert_eq!(seen_backup[0]["params"], json!({"level": 3, "snapshot_id": full}));
    assert_eq!(seen_backup[0]["operation"], "Operation::Backup");
    let at_full = volumes(&host, &cluster);
    assert_eq!(host.cluster(&cluster)["status"], "active");

    // An incremental point stores only what changed.
    std::fs::write(host.volume(&cluster, &db[0]).join("data/own"), "changed").unwrap();
    std::fs::write(host.volume(&cluster, &db[0]).join("data/new"), "new").unwrap();
    let doc = op_ok(&host, &["cluster", "backup", &cluster, "--incremental"], 0);
    let inc = doc["backup"].as_str().unwrap().to_string();
    let at_inc = volumes(&host, &cluster);
    let out = host.run(&["backup", "show", &inc, "--json"]);
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["parent"], full.as_str());
    let stored = shown["copied"]["stored"].as_u64().unwrap();
    let bytes = shown["copied"]["bytes"].as_u64().unwrap();
    assert!(bytes > 1_200_000 && stored < 20_000, "stored {stored} of {bytes} bytes");
    use std::os::unix::fs::MetadataExt;
    let kept = |id: &str| {
        host.state
            .path()
            .join("backups")
            .join(id)
            .join("nodes")
            .join(&db[1])
            .join("data/deep/big")
    };
    assert_eq!(
        std::fs::metadata(kept(&full)).unwrap().ino(),
        std::fs::metadata(kept(&inc)).unwrap().ino()
    );
    let list = String::from_utf8(host.run(&["backup", "list", "--json", "--cluster", &cluster]).stdout).unwrap();
    assert_eq!(list.lines().count(), 2);

    // The cluster goes; the incremental point restores it, byte for byte, with new node ids and the same sids.
    op_ok(&host, &["cluster", "delete", &cluster, "--force"], 0);
    let doc = op_ok(&host, &["cluster", "restore", &inc, "--name", "back"], 0);
    let restored = doc["cluster_id"].as_str().unwrap().to_string();
    assert_ne!(restored, cluster);
    let back = volumes(&host, &restored);
    assert_eq!(without_calls(back.clone()), without_calls(at_inc.clone()));
    for (key, files) in &at_inc {
        let log = files.get("calls.jsonl").cloned().unwrap_or_default();
        assert!(
            back[key]["calls.jsonl"].starts_with(&log),
            "the log goes on from the backup's"
        );
    }
    let c = host.cluster(&restored);
    assert_eq!(c["name"], "back");
    assert!(host.nodes(&restored, "db").iter().all(|n| !db.contains(n)));
    // db restores (with the snapshot id), the others start, by order; no init.
    let events = host.events(doc["operation"].as_str().unwrap());
    assert_eq!(
        waves(&events),
        ["restore: db", "start: cache", "start: web"],
        "{:?}",
        waves(&events)
    );
    let rdb = host.nodes(&restored, "db");
    assert_eq!(
        seen(&host, &restored, &rdb[0], "restore")[0]["params"],
        json!({"snapshot_id": inc})
    );

    // The full point still restores as it was.
    let doc = op_ok(&host, &["cluster", "restore", &full], 0);
    let first = doc["cluster_id"].as_str().unwrap().to_string();
    assert_eq!(without_calls(volumes(&host, &first)), without_calls(at_full));

    // A corrupted backup is refused before anything is made.
    let clusters = host.run(&["cluster", "list", "--json", "--all"]).stdout;
    std::fs::write(kept(&inc), vec![b'y'; 300_000]).unwrap();
    let stderr = bad_input(&host, &["cluster", "restore", &inc]);
    assert!(
        stderr.contains(&format!("backup {inc} cannot be used")) && stderr.contains("checksum differs"),
        "{stderr}"
    );
    assert_eq!(host.run(&["cluster", "list", "--json", "--all"]).stdout, clusters);

    // A point that a later one builds on goes only with it.
    let stderr = bad_input(&host, &["backup", "delete", &full]);
    assert!(
        stderr.contains(&format!("later points that build on it ({inc})")),
        "{stderr}"
    );
    op_ok(&host, &["backup", "delete", &full, "--chain"], 0);
    assert!(
        String::from_utf8(host.run(&["backup", "list", "--json"]).stdout)
            .unwrap()
            .is_empty()
    );
    let stderr = bad_input(&host, &["cluster", "restore", &full]);
    assert!(stderr.contains(&format!("no backup \"{full}\"")), "{stderr}");
}

#[test]
fn custom_backups_run_the_apps_hooks_and_restore_in_place() {
    let app = ops_app(|spec| {
        spec["backup_policy"] = json!("custom");
        let db = &mut spec["nodes"][0]["services"];
        db["backup"] = json!({"service_params": {"target": null}});
        db["restore"] = json!({});
        db["delete_snapshot"] = json!({});
    });
    let host = Host::new();
    let (cluster, _) = host.create(&app);
    let db = host.nodes(&cluster, "db");
    let doc = op_ok(
        &host,
        &["cluster", "backup", &cluster, "--params", r#"{"target": "s3://b"}"#],
        0,
    );
    let id = doc["backup"].as_str().unwrap().to_string();
    for node in &db {
        assert_eq!(
            seen(&host, &cluster, node, "backup")[0]["params"],
            json!({"target": "s3://b", "snapshot_id": id})
        );
    }
    assert!(
        !host.state.path().join("backups").join(&id).join("nodes").exists(),
        "the data is the app's"
    );
    let doc = op_ok(&host, &["cluster", "restore", &id], 0);
    assert_eq!(doc["cluster_id"], cluster.as_str(), "in place");
    assert_eq!(waves(&host.events(doc["operation"].as_str().unwrap())), ["restore: db"]);
    assert_eq!(
        seen(&host, &cluster, &db[0], "restore")[0]["params"],
        json!({"snapshot_id": id})
    );
    assert_eq!(
        seen(&host, &cluster, &db[0], "restore")[0]["operation"],
        "Operation::Restore"
    );
    // A failing backup hook leaves no backup and the cluster active.
    std::fs::write(host.volume(&cluster, &db[0]).join("fail-backup"), "7").unwrap();
    op_ok(
        &host,
        &["cluster", "backup", &cluster, "--params", r#"{"target": "x"}"#],
        1,
    );
    assert_eq!(host.cluster(&cluster)["status"], "active");
    assert_eq!(
        String::from_utf8(host.run(&["backup", "list", "--json"]).stdout)
            .unwrap()
            .lines()
            .count(),
        1
    );
    // Bad input, nothing changes.
    for (args, why) in [
        (
            vec!["--params", r#"{"target": "x"}"#, "--incremental"],
            "does not support incremental backups",
        ),
        (vec![], "service_params.target: required"),
        (
            vec!["--params", r#"{"target": "x", "snapshot_id": "s-x"}"#],
            "snapshot_id: set by hookhost",
        ),
        (vec!["--params", r#"{"target": "x"}"#, "--name", ""], "--name"),
    ] {
        let mut all = vec!["cluster", "backup", cluster.as_str()];
        all.extend(args.iter().copied());
        let stderr = bad_input(&host, &all);
        assert!(stderr.contains(why), "{args:?}: {stderr}");
    }
    // Deleting it runs delete_snapshot with its id.
    let doc = op_ok(&host, &["backup", "delete", &id], 0);
    assert_eq!(
        waves(&host.events(doc["operation"].as_str().unwrap())),
        ["delete_snapshot: db"]
    );
    assert_eq!(
        seen(&host, &cluster, &db[1], "delete_snapshot")[0]["params"],
        json!({"snapshot_id": id})
    );
    assert!(
        String::from_utf8(host.run(&["backup", "list", "--json"]).stdout)
            .unwrap()
            .is_empty()
    );
    // A stopped cluster's custom backup needs its hooks.
    op_ok(&host, &["cluster", "stop", &cluster], 0);
    let stderr = bad_input(
        &host,
        &["cluster", "backup", &cluster, "--params", r#"{"target": "x"}"#],
    );
    assert!(stderr.contains("start it first"), "{stderr}");
    // An app without backup_policy takes no backups.
    let plain = ops_app(|_| {});
    let (other, _) = host.create(&plain);
    let stderr = bad_input(&host, &["cluster", "backup", &other]);
    assert!(stderr.contains("sets no backup_policy"), "{stderr}");
    let stderr = bad_input(&host, &["cluster", "backup", &other, "--incremental"]);
    assert!(stderr.contains("sets no backup_policy"), "{stderr}");
}

#[test]
fn kill_9_in_the_middle_of_a_backup_and_of_a_restore_then_resume() {
    let app = backup_app(|_| {});
    let host = Host::new();
    let (cluster, _) = host.create(&app);
    let db = host.nodes(&cluster, "db");
    std::fs::write(host.volume(&cluster, &db[0]).join("precious"), "data").unwrap();
    // Each hook sleeps 6 s, long enough that a loaded machine still cuts it
    // off mid-call; a restored cluster has the backup's env, so the restore's
    // sleep is set before the backup is taken.
    op_ok(
        &host,
        &[
            "cluster",
            "update-env",
            &cluster,
            "sleep_ms_restore=6000",
            "sleep_ms_backup=6000",
        ],
        0,
    );
    for (what, slow) in [("backup", "backup"), ("restore", "restore")] {
        let args: Vec<String> = if what == "backup" {
            vec!["cluster".into(), "backup".into(), cluster.clone()]
        } else {
            let id = host.run(&["backup", "list", "--json"]).stdout;
            let line = String::from_utf8(id).unwrap();
            let doc: Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
            vec!["cluster".into(), "restore".into(), doc["id"].as_str().unwrap().into()]
        };
        let all: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut child = spawn(&host, &all);
        let op = loop {
            if let Some(op) = ops_of(&host, what)
                .pop()
                .filter(|op| host.events(op).iter().any(|e| e["service"] == slow))
            {
                break op;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        child.kill().unwrap();
        child.wait().unwrap();
        if what == "restore" {
            // The interrupted restore keeps its backup from deletion.
            let stderr = bad_input(&host, &["backup", "delete", &args[2]]);
            assert!(
                stderr.contains(&format!("restore {op} of backup {} is unfinished", args[2])),
                "{stderr}"
            );
        }
        let doc = op_ok(&host, &["op", "resume", &op], 0);
        assert_eq!(doc["status"], "succeeded", "{what}: {doc:#}");
        let events = host.events(&op);
        assert!(
            of(&events, slow).iter().any(|e| e["outcome"] == "interrupted")
                && of(&events, slow)
                    .iter()
                    .any(|e| e["outcome"] == "ok" && e["attempt"] == 2),
            "{what}: the cut-off {slow} ran again"
        );
        op_ok(
            &host,
            &["cluster", "update-env", &cluster, &format!("sleep_ms_{slow}=")],
            0,
        );
        let target = doc["cluster_id"].as_str().unwrap();
        assert_eq!(host.cluster(target)["status"], "active", "{what}");
    }
    // The backup made after the crash holds the data; the restored cluster has it.
    let backups = String::from_utf8(host.run(&["backup", "list", "--json"]).stdout).unwrap();
    assert_eq!(backups.lines().count(), 1, "no partial backup is listed");
    assert!(
        !std::fs::read_dir(host.state.path().join("backups"))
            .unwrap()
            .any(|e| { e.unwrap().file_name().to_string_lossy().starts_with(".partial") })
    );
    let restored = ops_of(&host, "restore").pop().unwrap();
    let c = host.run(&["op", "show", &restored]);
    assert!(c.status.success());
    let clusters: Vec<Value> = String::from_utf8(host.run(&["cluster", "list", "--json"]).stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let new = clusters.iter().find(|c| c["id"] != cluster.as_str()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let first = host.nodes(&new, "db")[0].clone();
    assert_eq!(
        std::fs::read_to_string(host.volume(&new, &first).join("precious")).unwrap(),
        "data"
    );
}

#[test]
fn a_failed_device_restore_leaves_a_cluster_that_is_only_deleted() {
    let app = backup_app(|_| {});
    let host = Host::new();
    let (cluster, _) = host.create(&app);
    let db = host.nodes(&cluster, "db");
    // The backup carries a file that makes the restore hook fail on that node.
    std::fs::write(host.volume(&cluster, &db[0]).join("fail-restore"), "5").unwrap();
    let doc = op_ok(&host, &["cluster", "backup", &cluster], 0);
    let id = doc["backup"].as_str().unwrap().to_string();
    let doc = op_ok(&host, &["cluster", "restore", &id], 1);
    let restored = doc["cluster_id"].as_str().unwrap().to_string();
    assert_eq!(host.cluster(&restored)["status"], "failed");
    for args in [
        ["cluster", "stop", restored.as_str()],
        ["cluster", "start", restored.as_str()],
    ] {
        let stderr = bad_input(&host, &args);
        assert!(stderr.contains("its creation failed; delete it"), "{args:?}: {stderr}");
    }
    op_ok(&host, &["cluster", "delete", &restored], 0);
    assert_eq!(
        host.cluster(&cluster)["status"],
        "active",
        "the backed-up cluster is untouched"
    );
}

/// The network app: `change_vxnet` allowed, pre-checked on db, run after on
/// db and (order 1) web; one reserved IP `vip`, also an endpoint; reload
/// slowed or failed on demand.
fn net_app(edit: impl FnOnce(&mut Value)) -> App {
    ops_app(|spec| {
        spec["advanced_actions"] = json!(["change_vxnet"]);
        // A value in the spec is not kept: the system gives the address.
        spec["reserved_ips"] = json!({"vip": {"value": "10.9.9.9"}});
        spec["endpoints"] = json!({"client": {"port": 80}, "reserved_ips": {"vip": {"value": "10.9.9.9"}}});
        spec["nodes"][0]["services"]["change_vxnet"] = json!({"pre_check": true});
        spec["nodes"][2]["services"]["change_vxnet"] = json!({"order": 1});
        spec["env"]["sleep_ms_reload"] = json!("");
        edit(spec);
    })
}

/// Each live node's address, by node id, and the reserved IP `vip`'s.
fn addresses(host: &Host, cluster: &str) -> (std::collections::BTreeMap<String, String>, String) {
    let doc = host.cluster(cluster);
    let nodes = doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["node_id"].as_str().unwrap().to_string(),
                n["ip"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (
        nodes,
        doc["spec"]["reserved_ips"]["vip"]["value"]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

/// One metadata value, through the CLI.
fn meta_value(host: &Host, cluster: &str, path: &str) -> String {
    let out = host.run(&["cluster", "metadata", cluster, path, "--json"]);
    assert!(out.status.success(), "{path}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

/// What one node rendered at a path of its instance directory.
fn rendered_at(host: &Host, cluster: &str, node: &str, path: &str) -> String {
    let dir = host
        .state
        .path()
        .join("nodes")
        .join(cluster)
        .join(node)
        .join("instance");
    std::fs::read_to_string(dir.join(path)).unwrap()
}

#[test]
fn change_vxnet_is_pre_checked_moves_every_address_re_renders_and_runs_the_hook_after() {
    let app = net_app(|_| {});
    let host = Host::new();
    let (cluster, _) = host.create(&app);
    let (before, vip) = addresses(&host, &cluster);
    assert!(
        vip.starts_with("192.168.") && !before.values().any(|ip| *ip == vip),
        "the reserved IP has its own address"
    );
    assert_eq!(
        meta_value(&host, &cluster, "/cluster/endpoints/reserved_ips/vip/value"),
        vip
    );
    // Another app's cluster already holds the lowest address of vxnet-new.
    let other = net_app(|spec| {
        spec["vxnet"] = json!("vxnet-new");
        spec["advanced_actions"] = json!([]);
    });
    let (neighbour, _) = host.create(&other);
    let (mut theirs, their_vip) = addresses(&host, &neighbour);
    let taken = theirs.values().next().unwrap().clone();
    theirs.insert("vip".into(), their_vip);
    let (db, web) = (host.nodes(&cluster, "db"), host.nodes(&cluster, "web"));

    // Bad input: exit 2, nothing changes.
    let snapshot = host.cluster(&cluster);
    let pin = |ip: &str| format!("{}={ip}", db[0]);
    for (args, why) in [
        (
            vec!["--vxnet", "vxnet-test"],
            "already in network vxnet-test".to_string(),
        ),
        (vec!["--vxnet", "a/b"], "is not a network name".into()),
        (vec!["--vxnet", ""], "is not a network name".into()),
        (
            vec!["--vxnet", "vxnet-new", "--ip", "cln-nope=192.168.0.9"],
            "no such node".into(),
        ),
        (
            vec!["--vxnet", "vxnet-new", "--ip", &pin("10.0.0.1")],
            "outside the network's pool".into(),
        ),
        (
            vec!["--vxnet", "vxnet-new", "--ip", &pin("192.168.3.255")],
            "outside the network's pool".into(),
        ),
        (
            vec!["--vxnet", "vxnet-new", "--ip", &pin("banana")],
            "is not an IPv4 address".into(),
        ),
        (
            vec!["--vxnet", "vxnet-new", "--ip", &pin(&taken)],
            format!("already gives it to {neighbour}/"),
        ),
        (
            vec![
                "--vxnet",
                "vxnet-new",
                "--ip",
                &pin("192.168.9.9"),
                "--ip",
                &format!("{}=192.168.9.9", db[1]),
            ],
            "is pinned for two nodes".into(),
        ),
        (
            vec![
                "--vxnet",
                "vxnet-new",
                "--ip",
                &pin("192.168.9.9"),
                "--ip",
                &pin("192.168.9.8"),
            ],
            "pinned twice".into(),
        ),
    ] {
        let mut all = vec!["cluster", "change-vxnet", cluster.as_str()];
        all.extend(args.iter().copied());
        let stderr = bad_input(&host, &all);
        assert!(stderr.contains(&why), "{args:?}: {stderr}");
    }
    let stderr = bad_input(&host, &["cluster", "change-vxnet", &neighbour, "--vxnet", "vxnet-x"]);
    assert!(
        stderr.contains("does not list change_vxnet in advanced_actions"),
        "{stderr}"
    );
    assert_eq!(host.cluster(&cluster), snapshot, "nothing changed");

    // A refusing pre-check changes nothing.
    let refusal = host.volume(&cluster, &db[1]).join("fail-change_vxnet");
    std::fs::write(&refusal, "23").unwrap();
    let doc = op_ok(&host, &["cluster", "change-vxnet", &cluster, "--vxnet", "vxnet-new"], 1);
    std::fs::remove_file(&refusal).unwrap();
    assert_eq!(doc["status"], "aborted", "{doc:#}");
    assert!(doc["error"].as_str().unwrap().contains("error 23"), "{doc:#}");
    assert_eq!(host.cluster(&cluster)["spec"], snapshot["spec"]);
    assert_eq!(addresses(&host, &cluster), (before.clone(), vip.clone()));
    assert_eq!(host.cluster(&cluster)["status"], "active");

    let doc = op_ok(
        &host,
        &[
            "cluster",
            "change-vxnet",
            &cluster,
            "--vxnet",
            "vxnet-new",
            "--ip",
            &pin("192.168.7.7"),
        ],
        0,
    );
    let op = doc["operation"].as_str().unwrap();
    // 0: the pre-check on db; 4: change_vxnet on db, then (order 1) on web.
    assert_eq!(
        begun(&host, op),
        [
            format!("0:change_vxnet@{}", db[0]),
            format!("0:change_vxnet@{}", db[1]),
            format!("4:change_vxnet@{}", db[0]),
            format!("4:change_vxnet@{}", db[1]),
            format!("4:change_vxnet@{}", web[0]),
            format!("4:change_vxnet@{}", web[1]),
        ]
    );
    assert_ordered(&host.events(op), "change_vxnet");
    let events = host.events(op);
    let pre = events.iter().find(|e| e["step"] == 0).unwrap();
    assert!(
        pre["log"].to_string().contains(r#"\"vxnet\":\"vxnet-test\""#),
        "the pre-check ran before the move: {pre:#}"
    );
    assert_eq!(of(&events, "render").len(), 5, "every node re-renders");
    assert_eq!(of(&events, "reload").len(), 2, "db reloads: its addresses changed");

    let (after, new_vip) = addresses(&host, &cluster);
    assert_eq!(after[&db[0]], "192.168.7.7", "the pinned address");
    let mut all: Vec<&String> = after.values().chain([&new_vip]).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 6, "every address differs");
    assert!(
        !all.iter().any(|ip| theirs.values().any(|t| t == *ip)),
        "none is the neighbour's"
    );
    assert_eq!(host.cluster(&cluster)["spec"]["vxnet"], "vxnet-new");
    assert_eq!(meta_value(&host, &cluster, "/cluster/vxnet"), "vxnet-new");
    assert_eq!(
        meta_value(&host, &cluster, "/cluster/endpoints/reserved_ips/vip/value"),
        new_vip
    );
    assert_eq!(
        rendered_at(&host, &cluster, &db[1], "etc/recorder/network"),
        format!("vxnet vxnet-new\nreserved vip {new_vip}\n")
    );
    // The hook after saw the new network, and was told the old one.
    let got = seen(&host, &cluster, &db[0], "change_vxnet");
    let last = got.last().unwrap();
    assert_eq!(
        (last["vxnet"].as_str(), last["ip"].as_str()),
        (Some("vxnet-new"), Some("192.168.7.7"))
    );
    assert_eq!(last["reserved"], json!({"vip": new_vip}));
    assert_eq!(last["params"]["from_vxnet"], "vxnet-test");
    assert_eq!(last["params"]["from_ips"][&db[0]], before[&db[0]].as_str());
    assert_eq!(last["operation"], "Operation::ChangeNetwork");

    // The old addresses went back: a new cluster of vxnet-test gets the lowest ones again.
    let (fresh, _) = host.create(&app);
    let (fresh_ips, fresh_vip) = addresses(&host, &fresh);
    let mut old: Vec<&String> = before.values().chain([&vip]).collect();
    let mut again: Vec<&String> = fresh_ips.values().chain([&fresh_vip]).collect();
    old.sort();
    again.sort();
    assert_eq!(old, again);

    // A stopped cluster is refused.
    op_ok(&host, &["cluster", "stop", &fresh], 0);
    let stderr = bad_input(&host, &["cluster", "change-vxnet", &fresh, "--vxnet", "vxnet-x"]);
    assert!(stderr.contains("it is stopped"), "{stderr}");
}

#[test]
fn exchange_ips_swaps_reserved_ips_in_one_revision_holds_the_other_cluster_and_undoes_a_failure() {
    let app = net_app(|_| {});
    let host = Host::new();
    let (a, _) = host.create(&app);
    let (b, _) = host.create(&app);
    let (_, vip_a) = addresses(&host, &a);
    let (_, vip_b) = addresses(&host, &b);
    assert_ne!(vip_a, vip_b);
    let revision = || {
        let engine = host.engine();
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(engine.tree().revision())
            .unwrap()
    };
    let from = revision();

    let doc = op_ok(&host, &["cluster", "exchange-ips", &a, &b], 0);
    let op = doc["operation"].as_str().unwrap();
    assert_eq!(addresses(&host, &a).1, vip_b);
    assert_eq!(addresses(&host, &b).1, vip_a);
    for (c, vip) in [(&a, &vip_b), (&b, &vip_a)] {
        assert_eq!(meta_value(&host, c, "/cluster/endpoints/reserved_ips/vip/value"), *vip);
        assert_eq!(meta_value(&host, c, "/cluster/reserved_ips/vip/value"), *vip);
        assert_eq!(host.cluster(c)["status"], "active");
    }
    // Every node of both re-rendered; db's nodes of both reloaded and saw the swap.
    let events = host.events(op);
    assert_eq!(of(&events, "render").len(), 10);
    let reloaded: Vec<&str> = of(&events, "reload")
        .iter()
        .map(|e| e["node_id"].as_str().unwrap())
        .collect();
    let mut db = host.nodes(&a, "db");
    db.extend(host.nodes(&b, "db"));
    assert_eq!(reloaded.len(), 4);
    assert!(db.iter().all(|n| reloaded.contains(&n.as_str())), "{reloaded:?}");
    for (c, vip) in [(&a, &vip_b), (&b, &vip_a)] {
        let node = &host.nodes(c, "db")[0];
        let reload = seen(&host, c, node, "reload");
        assert_eq!(reload.last().unwrap()["reserved"], json!({"vip": vip}), "{c}");
        assert_eq!(reload.last().unwrap()["operation"], "Operation::ExchangeReservedIps");
    }
    // Both trees changed in one revision.
    let engine = host.engine();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let changes = rt.block_on(async {
        let now = engine.tree().revision().await.unwrap();
        let mut watch = engine.tree().watch("/", from + 1).await.unwrap();
        let mut all = Vec::new();
        while all.last().is_none_or(|c: &hookhost::metadata::Change| c.revision < now) {
            all.push(watch.next().await.unwrap());
        }
        all
    });
    let touching = |c: &str| {
        let prefix = format!("{}/cluster/endpoints/reserved_ips", hookhost::metadata::cluster_root(c));
        changes
            .iter()
            .filter(|ch| ch.writes.iter().any(|w| w.touches(&prefix)))
            .map(|ch| ch.revision)
            .collect::<Vec<_>>()
    };
    assert_eq!(touching(&a).len(), 1, "{changes:#?}");
    assert_eq!(touching(&a), touching(&b), "one revision for both");
    drop(engine);

    // The other cluster is read-only while an exchange runs; itself and a stopped one are refused.
    op_ok(&host, &["cluster", "update-env", &a, "sleep_ms_reload=1500"], 0);
    let child = spawn(&host, &["cluster", "exchange-ips", &a, &b]);
    wait_for("the exchange to hold b", || {
        host.cluster(&b)["status"] == "exchanging-ips"
    });
    let running = last_op(&host, "exchange-ips");
    let stderr = bad_input(&host, &["cluster", "restart", &b]);
    assert!(
        stderr.contains(&format!("cluster {b} is busy: operation {running}")),
        "{stderr}"
    );
    let stderr = bad_input(&host, &["cluster", "exchange-ips", &b, &a]);
    assert!(stderr.contains("is busy"), "{stderr}");
    // A cancel once the addresses moved gives both their own back.
    wait_for("the swap back", || addresses(&host, &a).1 == vip_a);
    host.run(&["op", "cancel", &running]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let shown: Value = serde_json::from_slice(&host.run(&["op", "show", &running, "--json"]).stdout).unwrap();
    assert_eq!(shown["operation"]["status"], "cancelled", "{shown:#}");
    for (c, vip) in [(&a, &vip_b), (&b, &vip_a)] {
        assert_eq!(addresses(&host, c).1, *vip, "{c} has what it had before again");
        assert_eq!(meta_value(&host, c, "/cluster/endpoints/reserved_ips/vip/value"), *vip);
        assert_eq!(host.cluster(c)["status"], "active");
    }
    op_ok(&host, &["cluster", "update-env", &a, "sleep_ms_reload="], 0);

    // A failing reload on the other cluster: the recovery swaps back.
    let b_db = host.nodes(&b, "db");
    std::fs::write(host.volume(&b, &b_db[0]).join("fail-once-reload"), "9").unwrap();
    let doc = op_ok(&host, &["cluster", "exchange-ips", &a, &b], 1);
    assert_eq!(doc["status"], "failed", "{doc:#}");
    assert!(
        doc["error"]
            .as_str()
            .unwrap()
            .contains("both clusters have their own reserved IPs again"),
        "{doc:#}"
    );
    for (c, vip) in [(&a, &vip_b), (&b, &vip_a)] {
        assert_eq!(addresses(&host, c).1, *vip, "{c} as it was");
        assert_eq!(meta_value(&host, c, "/cluster/endpoints/reserved_ips/vip/value"), *vip);
        assert_eq!(host.cluster(c)["status"], "active");
        assert_eq!(
            rendered_at(&host, c, &host.nodes(c, "db")[1], "etc/recorder/network"),
            format!("vxnet vxnet-test\nreserved vip {vip}\n")
        );
    }

    // Bad input: itself, an unknown one, another app version, another network, a stopped one.
    let other = net_app(|spec| spec["description"] = json!("another version"));
    let (c, _) = host.create(&other);
    let (d, _) = host.create(&app);
    op_ok(&host, &["cluster", "change-vxnet", &b, "--vxnet", "vxnet-other"], 0);
    op_ok(&host, &["cluster", "stop", &d], 0);
    let before: Vec<Value> = [&a, &b, &c, &d].iter().map(|id| host.cluster(id)).collect();
    for (x, y, why) in [
        (&a, &a, "with itself".to_string()),
        (&a, &"cl-nope".to_string(), "no cluster cl-nope".into()),
        (&a, &c, "only clusters of one app version".into()),
        (&a, &b, "only clusters of one network".into()),
        (
            &a,
            &d,
            format!("cannot exchange the reserved IPs of cluster {d}: it is stopped"),
        ),
        (
            &d,
            &a,
            format!("cannot exchange the reserved IPs of cluster {d}: it is stopped"),
        ),
    ] {
        let stderr = bad_input(&host, &["cluster", "exchange-ips", x, y]);
        assert!(stderr.contains(&why), "{x} {y}: {stderr}");
    }
    let after: Vec<Value> = [&a, &b, &c, &d].iter().map(|id| host.cluster(id)).collect();
    assert_eq!(after, before, "nothing changed");
    // The moved cluster's reserved IP came from its new network's pool.
    let (_, moved) = addresses(&host, &b);
    assert!(
        host.engine()
            .store()
            .ip_holder("vxnet-other", &moved)
            .unwrap()
            .is_some_and(|h| h == format!("{b}/reserved/vip"))
    );
    assert!(
        host.engine().store().ip_holder("vxnet-test", &vip_a).unwrap().is_none(),
        "b's old one went back"
    );
}

#[test]
fn a_custom_service_with_a_selector_runs_on_the_node_it_names_unless_nodes_are_given() {
    let app = ops_app(|spec| {
        let db = &mut spec["nodes"][0]["services"];
        db["find_leader"] = json!({"type": "custom"});
        db["echo"]["selector"] = json!("find_leader");
    });
    let host = Host::new();
    let (cluster, _) = host.create(&app);
    let (db, web) = (host.nodes(&cluster, "db"), host.nodes(&cluster, "web"));
    let doc = op_ok(
        &host,
        &["cluster", "run", &cluster, "echo", "--params", r#"{"msg": "hi"}"#],
        0,
    );
    // The pre-check asks db's first node; find_leader names the highest sid
    // (db[1]), which alone runs echo; then web, which has no selector.
    assert_eq!(
        begun(&host, doc["operation"].as_str().unwrap()),
        [
            format!("0:echo@{}", db[0]),
            format!("1:find_leader@{}", db[0]),
            format!("2:echo@{}", db[1]),
            format!("3:echo@{}", web[0]),
            format!("3:echo@{}", web[1]),
        ]
    );
    assert_eq!(
        seen(&host, &cluster, &db[1], "echo")[0]["params"],
        json!({"msg": "hi", "n": 1})
    );
    assert!(seen(&host, &cluster, &db[0], "echo").is_empty());
    // Named nodes are the user's choice: no selector is asked.
    let doc = op_ok(
        &host,
        &[
            "cluster",
            "run",
            &cluster,
            "echo",
            "--params",
            r#"{"msg": "x"}"#,
            "--nodes",
            &db[0],
        ],
        0,
    );
    assert_eq!(
        begun(&host, doc["operation"].as_str().unwrap()),
        [format!("0:echo@{}", db[0]), format!("1:echo@{}", db[0])]
    );
}
