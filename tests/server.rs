//! `hookhost serve` as tenants meet it: the real binary on a loopback port,
//! spoken to over HTTP. Two tenants cannot see or touch each other's apps,
//! clusters, operations, events or metadata through any route; tokens,
//! quotas and bad bodies are refused with the documented status; a server
//! killed with -9 mid-operation finishes it when it starts again.

mod common;

use base64::Engine as _;
use common::server::{Server, create, hookhost};
use hookhost_test_support as support;
use serde_json::{Value, json};
use std::io::{Read as _, Write as _};
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn two_tenants_cannot_see_or_touch_each_others_things() {
    let server = Server::start(tempfile::tempdir().unwrap());
    let a = server.tenant("acme", &[]);
    let b = server.tenant("globex", &[]);
    assert_eq!(
        server
            .upload(&a, "rec", |spec| spec["backup_policy"] = json!("device"))
            .0,
        201
    );
    let op = server.run(&a, create("rec"));
    assert_eq!(op["status"], "succeeded", "{op}");
    let (cluster, op_id) = (op["cluster_id"].as_str().unwrap(), op["id"].as_str().unwrap());
    let node = server.ok("GET", &format!("/api/v1/clusters/{cluster}"), &a, None)["nodes"][0]["node_id"]
        .as_str()
        .unwrap()
        .to_string();

    // Every route that takes an id answers 404 to the other tenant, and changes nothing.
    let gets = [
        format!("/api/v1/clusters/{cluster}"),
        format!("/api/v1/clusters/{cluster}/metadata"),
        format!("/api/v1/clusters/{cluster}/metadata?path=/host&node={node}"),
        format!("/api/v1/operations/{op_id}"),
        format!("/api/v1/operations/{op_id}/events"),
    ];
    for path in &gets {
        let (status, doc) = server.call("GET", path, Some(&b), None);
        assert_eq!(status, 404, "GET {path}: {doc}");
        assert_eq!(doc["kind"], "not-found");
        assert!(!doc.to_string().contains("acme"), "{doc}");
    }
    let (status, _) = server.call("POST", &format!("/api/v1/operations/{op_id}/cancel"), Some(&b), None);
    assert_eq!(status, 404);
    for request in [
        json!({"kind": "stop-cluster", "cluster": cluster}),
        json!({"kind": "delete-cluster", "cluster": cluster, "force": true}),
        json!({"kind": "add-nodes", "cluster": cluster, "role": "web", "count": 1}),
        json!({"kind": "update-env", "cluster": cluster, "env": {"x": "1"}}),
        json!({"kind": "backup", "cluster": cluster}),
    ] {
        for route in ["/api/v1/operations", "/api/v1/plans"] {
            let (status, doc) = server.call("POST", route, Some(&b), Some(&request));
            assert_eq!(status, 404, "POST {route} {request}: {doc}");
        }
    }
    // Nor can it use the other tenant's app.
    let (status, doc) = server.call("POST", "/api/v1/operations", Some(&b), Some(&create("rec")));
    assert_eq!(status, 404, "{doc}");
    // Its lists are empty.
    for list in ["/api/v1/clusters?all=true", "/api/v1/operations", "/api/v1/apps"] {
        assert_eq!(server.ok("GET", list, &b, None), json!([]), "{list}");
    }
    // The owner still sees it all, as it was, and no path of the server.
    let shown = server.ok("GET", &format!("/api/v1/clusters/{cluster}"), &a, None);
    assert_eq!(shown["status"], "active");
    let text = shown.to_string();
    let state = server.state.path().to_string_lossy().to_string();
    assert!(!text.contains(&state) && text.contains("<tenant>"), "{text}");
    let events = server.ok("GET", &format!("/api/v1/operations/{op_id}/events"), &a, None);
    assert!(events.as_array().unwrap().len() >= 10, "{events}");
    let me = server.ok(
        "GET",
        &format!("/api/v1/clusters/{cluster}/metadata?path=/host&node={node}"),
        &a,
        None,
    );
    assert_eq!(me["tree"]["node_id"], node.as_str());

    // No token, a wrong one, or another scheme: 401 on every route.
    for token in [None, Some("hh_0000"), Some("")] {
        for path in ["/api/v1/whoami", "/api/v1/clusters", &gets[0]] {
            let (status, doc) = server.call("GET", path, token, None);
            assert_eq!(status, 401, "{path} with {token:?}: {doc}");
        }
    }
    let (status, _) = server.call("GET", "/healthz", None, None);
    assert_eq!(status, 200);

    // Every route of the OpenAPI document (served without a token, the
    // checked-in one): 401 without a token; with the other tenant's ids, 404
    // (or an empty list), naming nothing of the owner's.
    let (status, doc) = server.call("GET", "/openapi.json", None, None);
    assert_eq!(status, 200);
    assert_eq!(
        doc,
        serde_json::from_str::<Value>(&hookhost::server::openapi::document()).unwrap()
    );
    let backup = server.run(&a, json!({"kind": "backup", "cluster": cluster}));
    assert_eq!(backup["status"], "succeeded", "{backup}");
    let backup = server.ok("GET", "/api/v1/backups", &a, None)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut tried = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            let (status, refusal) = server.call(&method, path, None, Some(&json!({})));
            assert_eq!(status, 401, "{method} {path} without a token: {refusal}");
            if !path.contains('{') {
                continue;
            }
            let id = if path.contains("/clusters/") {
                cluster
            } else if path.contains("/operations/") {
                op_id
            } else {
                &backup
            };
            let theirs = path
                .replace("{id}", id)
                .replace("{app}", "rec")
                .replace("{version}", "1.0");
            let (status, doc) = server.call(&method, &theirs, Some(&b), Some(&json!({})));
            let nothing = status == 404 || (status == 200 && doc == json!([]));
            assert!(nothing, "{method} {theirs} as the other tenant: {status} {doc}");
            assert!(!doc.to_string().contains("acme"), "{doc}");
            tried += 1;
        }
    }
    assert_eq!(tried, 10, "routes with ids");
}

#[test]
fn quotas_and_bad_bodies_are_refused_naming_what_and_where() {
    let server = Server::start(tempfile::tempdir().unwrap());
    let t = server.tenant("small", &["--max-clusters", "1", "--max-nodes", "6"]);
    let scalable = |spec: &mut Value| spec["advanced_actions"] = json!(["scale_horizontal"]);
    assert_eq!(server.upload(&t, "rec", scalable).0, 201);
    // The same upload again is no change.
    assert_eq!(server.upload(&t, "rec", scalable).0, 200);
    assert_eq!(server.run(&t, create("rec"))["status"], "succeeded");

    let (status, doc) = server.call("POST", "/api/v1/operations", Some(&t), Some(&create("rec")));
    assert_eq!((status, doc["quota"].as_str()), (429, Some("max_clusters")), "{doc}");
    let cluster = server.ok("GET", "/api/v1/clusters", &t, None)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let grow = json!({"kind": "add-nodes", "cluster": cluster, "role": "web", "count": 2});
    let (status, doc) = server.call("POST", "/api/v1/operations", Some(&t), Some(&grow));
    assert_eq!((status, doc["quota"].as_str()), (429, Some("max_nodes")), "{doc}");
    let usage = server.ok("GET", "/api/v1/whoami", &t, None)["usage"].clone();
    assert_eq!(usage, json!({"clusters": 1, "nodes": 5, "operations": 0}));

    // Malformed and wrong bodies: 400 with the JSON path.
    let cases: [(&[u8], &str); 4] = [
        (b"{\"kind\": \"stop-cluster\",", ""),
        (b"[1, 2]", ""),
        (b"{\"kind\": \"create-cluster\", \"spec\": \"/etc/passwd\"}", "spec"),
        (
            b"{\"kind\": \"exchange-ips\", \"cluster\": \"cl-x\", \"with\": \"cl-y\", \"with_last\": \"op-z\"}",
            "with_last",
        ),
    ];
    for (body, at) in cases {
        let (status, doc) = server.raw("POST", "/api/v1/operations", Some(&t), body);
        assert_eq!(status, 400, "{}: {doc}", String::from_utf8_lossy(body));
        assert_eq!(doc["kind"], "bad-input");
        if !at.is_empty() {
            assert_eq!(doc["at"], at, "{doc}");
        }
    }
    // A field no request has, even beside a good one: 400 naming it, nothing run.
    let typo = json!({"kind": "stop-cluster", "cluster": cluster, "forse": true});
    let (status, doc) = server.call("POST", "/api/v1/operations", Some(&t), Some(&typo));
    assert_eq!(status, 400, "{doc}");
    assert!(doc["error"].as_str().unwrap().contains("forse"), "{doc}");
    assert_eq!(
        server.ok("GET", &format!("/api/v1/clusters/{cluster}"), &t, None)["status"],
        "active"
    );
    // Bad values the engine refuses: 400 at the request's field, not 409.
    let long_name =
        json!({"kind": "create-cluster", "app": {"app": "rec", "version": "1.0"}, "name": "n".repeat(100_000)});
    let bad = [
        (
            "/api/v1/operations",
            json!({"kind": "add-nodes", "cluster": cluster, "role": "web", "count": 0}),
            "count",
        ),
        (
            "/api/v1/operations",
            json!({"kind": "delete-nodes", "cluster": cluster, "nodes": []}),
            "nodes",
        ),
        (
            "/api/v1/plans",
            json!({"kind": "resize", "cluster": cluster, "role": "web", "change": {"cpu": 100_000}}),
            "change.cpu",
        ),
        ("/api/v1/plans", long_name, "name"),
    ];
    for (route, request, at) in bad {
        let (status, doc) = server.call("POST", route, Some(&t), Some(&request));
        assert_eq!((status, doc["at"].as_str()), (400, Some(at)), "{doc}");
    }
    // What axum refuses itself is a JSON refusal too.
    let big = vec![b' '; 2 << 20];
    let (status, doc) = server.raw("POST", "/api/v1/operations", Some(&t), &big);
    assert_eq!((status, doc["kind"].as_str()), (413, Some("too-large")), "{doc}");
    let (status, doc) = server.call("GET", "/api/v1/clusters?all=maybe", Some(&t), None);
    assert_eq!((status, doc["kind"].as_str()), (400, Some("bad-input")), "{doc}");
    let (status, doc) = server.call("DELETE", "/api/v1/clusters", Some(&t), None);
    assert_eq!(
        (status, doc["kind"].as_str()),
        (405, Some("method-not-allowed")),
        "{doc}"
    );
    // The scheme's case does not matter (RFC 9110).
    let mut stream = std::net::TcpStream::connect(&server.addr).unwrap();
    write!(
        stream,
        "GET /api/v1/whoami HTTP/1.1\r\nHost: x\r\nAuthorization: bearer {t}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // Uploads cannot name a file of the server.
    let (status, doc) = server.upload(&t, "evil", |spec| {
        spec["nodes"][0]["plugin"] = json!("../../../etc/x.wasm")
    });
    assert_eq!(
        (status, doc["at"].as_str()),
        (400, Some("spec.nodes[0].plugin")),
        "{doc}"
    );
    let wasm = base64::engine::general_purpose::STANDARD.encode(b"\0asm");
    for name in ["../evil.wasm", "/etc/evil.wasm", "a/b.wasm", "evil.sh", ".wasm"] {
        let body = json!({"app": "evil", "spec": {"nodes": []}, "components": {name: wasm}});
        let (status, doc) = server.call("POST", "/api/v1/apps", Some(&t), Some(&body));
        assert_eq!(status, 400, "{name}: {doc}");
        assert_eq!(doc["at"], format!("components.{name}"), "{doc}");
    }
    let body = json!({"app": "../evil", "spec": {}, "components": {}});
    let (status, doc) = server.call("POST", "/api/v1/apps", Some(&t), Some(&body));
    assert_eq!((status, doc["at"].as_str()), (400, Some("app")), "{doc}");
    // Bodies past the limit: 413.
    let big = vec![b' '; 2 << 20];
    assert_eq!(server.raw("POST", "/api/v1/operations", Some(&t), &big).0, 413);
    assert!(!server.state.path().join("tenants/small/apps/evil").exists());
}

#[test]
fn a_server_killed_mid_operation_finishes_it_when_it_starts_again() {
    let server = Server::start(tempfile::tempdir().unwrap());
    let t = server.tenant("acme", &[]);
    // Every start takes 2 s: the kill lands while starts run.
    let (status, _) = server.upload(&t, "rec", |spec| spec["env"]["sleep_ms_start"] = json!("2000"));
    assert_eq!(status, 201);
    let op = server.ok("POST", "/api/v1/operations", &t, Some(&create("rec")));
    let op_id = op["id"].as_str().unwrap().to_string();
    let started = Instant::now();
    loop {
        let events = server.ok("GET", &format!("/api/v1/operations/{op_id}/events"), &t, None);
        if events.as_array().unwrap().iter().any(|e| e["service"] == "init") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "init never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let state = server.kill();

    let server = Server::start(state);
    let op = server.wait_ended(&t, &op_id);
    assert_eq!(op["status"], "succeeded", "{op}");
    let cluster = server.ok(
        "GET",
        &format!("/api/v1/clusters/{}", op["cluster_id"].as_str().unwrap()),
        &t,
        None,
    );
    assert_eq!(cluster["status"], "active");
    // No hook that had completed ran again.
    let events = server.ok("GET", &format!("/api/v1/operations/{op_id}/events"), &t, None);
    let mut done = std::collections::BTreeMap::new();
    for e in events.as_array().unwrap().iter().filter(|e| e["outcome"] == "ok") {
        *done
            .entry((e["node_id"].to_string(), e["service"].to_string()))
            .or_insert(0) += 1;
    }
    assert!(done.values().all(|&n| n == 1), "{done:?}");
    assert!(done.keys().any(|(_, s)| s == "\"start\""), "{done:?}");
}

/// Waits up to 60 s for `ready` to give a value.
fn eventually<T>(what: &str, mut ready: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = ready() {
            return value;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "never: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_health_loop_marks_nodes_runs_actions_keeps_monitor_samples_and_waits_for_operations() {
    let server = Server::start_with(tempfile::tempdir().unwrap(), &["--health-interval", "100ms"]);
    let a = server.tenant("a", &[]);
    let (status, doc) = server.upload(&a, "rec", |spec| {
        spec["env"]["sleep_ms"] = json!("0");
        spec["env"]["sleep_ms_restart"] = json!("600");
        spec["nodes"][0]["services"]["restart"] = json!({});
        spec["health_check"] = json!({"enable": true, "healthy_threshold": 2, "unhealthy_threshold": 2});
        spec["nodes"][2]["health_check"] = json!({"enable": false});
        spec["monitor"] = json!({"enable": true, "items": {"load": {"unit": "count"}}});
    });
    assert_eq!(status, 201, "{doc}");
    let op = server.run(&a, create("rec"));
    assert_eq!(op["status"], "succeeded", "{op:#}");
    let cluster = op["cluster_id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/clusters/{cluster}");
    let node_ids = |role: &str| -> Vec<String> {
        let c = server.ok("GET", &path, &a, None);
        c["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["role"] == role)
            .map(|n| n["node_id"].as_str().unwrap().to_string())
            .collect()
    };
    let (db, cache) = (node_ids("db"), node_ids("cache"));
    let status_of = |node: &str| -> String {
        let c = server.ok("GET", &path, &a, None);
        c["health"]["nodes"][node]["status"]
            .as_str()
            .unwrap_or("none")
            .to_string()
    };
    // The loop checks by itself: every checked node becomes healthy.
    for node in db.iter().chain(&cache) {
        eventually("healthy", || (status_of(node) == "healthy").then_some(()));
    }
    let volume = |node: &str| {
        server
            .state
            .path()
            .join("tenants/a/nodes")
            .join(&cluster)
            .join(node)
            .join("volume")
    };
    let lines = |node: &str, service: &str| -> Vec<Value> {
        let text = std::fs::read_to_string(volume(node).join("calls.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["service"] == service && l["phase"] == "begin")
            .collect()
    };

    // A check that fails on demand: unhealthy after two, the action ran, the change kept.
    std::fs::write(volume(&db[0]).join("fail-health_check"), "9").unwrap();
    eventually("unhealthy", || (status_of(&db[0]) == "unhealthy").then_some(()));
    let transitions = server.ok("GET", &path, &a, None)["health"]["transitions"].clone();
    let down = transitions
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["to"] == "unhealthy")
        .unwrap()
        .clone();
    assert_eq!(
        (down["node_id"].as_str().unwrap(), down["from"].as_str().unwrap()),
        (db[0].as_str(), "healthy")
    );
    assert_eq!(down["action"], "ok", "{down}");
    assert_eq!(lines(&db[0], "health_action").len(), 1);
    std::fs::remove_file(volume(&db[0]).join("fail-health_check")).unwrap();
    eventually("healthy again", || (status_of(&db[0]) == "healthy").then_some(()));

    // Monitor samples: every node's `load`, kept in order.
    let monitor = server.ok("GET", &format!("{path}/monitor"), &a, None);
    assert_eq!(monitor["items"], json!(["load"]));
    let nodes = monitor["nodes"].as_object().unwrap();
    assert_eq!(nodes.len(), 5, "{monitor:#}");
    for points in nodes.values() {
        let points = points.as_array().unwrap();
        assert!(
            points.len() >= 2 && points.iter().all(|p| p["values"]["load"].is_u64()),
            "{points:?}"
        );
        assert!(
            points
                .windows(2)
                .all(|w| w[0]["at_ms"].as_u64() <= w[1]["at_ms"].as_u64())
        );
    }
    // Another tenant sees none of it.
    let b = server.tenant("b", &[]);
    assert_eq!(server.call("GET", &format!("{path}/monitor"), Some(&b), None).0, 404);

    // An operation: no check runs from its start to its end, and checks go on after it.
    let op = server.run(&a, json!({"kind": "restart", "cluster": cluster, "role": "db"}));
    assert_eq!(op["status"], "succeeded", "{op:#}");
    let restarts: Vec<Value> = db.iter().flat_map(|n| lines(n, "restart")).collect();
    assert_eq!(restarts.len(), 2);
    let began = restarts.iter().map(|l| l["time_ms"].as_u64().unwrap()).min().unwrap();
    let ended = began + 600;
    let checks_at = |node: &str| -> Vec<u64> {
        lines(node, "health_check")
            .iter()
            .map(|l| l["time_ms"].as_u64().unwrap())
            .collect()
    };
    for node in db.iter().chain(&cache) {
        let during: Vec<u64> = checks_at(node)
            .into_iter()
            .filter(|t| (began..ended).contains(t))
            .collect();
        assert!(
            during.is_empty(),
            "{node} was checked during the restart ({began}..{ended}): {during:?}"
        );
        eventually("checks after the operation", || {
            checks_at(node).iter().any(|t| *t > ended).then_some(())
        });
    }
}

/// Output with what differs between two runs made alike: ids, times,
/// durations and digests, and the spec file's place.
fn alike(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        // Where the spec was read from differs (a local directory, an upload), and so
        // do where components are kept and the random gsid.
        let differs = [
            "\"spec_file\"",
            "\"source\"",
            "\"plugin\"",
            "\"gsid\"",
            "/gsid ",
            "\"elapsed_ms\"",
        ];
        if line.starts_with("spec ") || differs.iter().any(|k| line.contains(k)) {
            continue;
        }
        // A timeline's bars are timings.
        if line.starts_with("  +") {
            continue;
        }
        let words: Vec<String> = line
            .split_inclusive(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '_')))
            .map(|piece| {
                let end = piece
                    .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '_')))
                    .unwrap_or(piece.len());
                // A trailing colon ends a sentence's id (`cluster cl-x: ...`).
                let end = piece[..end].trim_end_matches(':').len();
                let (word, rest) = piece.split_at(end);
                let id = ["cl-", "op-", "cln-", "i-", "s-"]
                    .iter()
                    .find(|p| word.starts_with(**p) && word.len() == p.len() + 8)
                    .map(|p| format!("{p}X"));
                let time = word.starts_with("20") && word.contains('T') && word.ends_with('Z');
                let number = word.contains('.') && word.chars().all(|c| c.is_ascii_digit() || c == '.' || c == 's');
                let hex = word.len() >= 12 && word.chars().all(|c| c.is_ascii_hexdigit());
                let word = match (id, time, number, hex) {
                    (Some(id), ..) => id,
                    (None, true, ..) => "T".into(),
                    (None, false, true, _) => "N".into(),
                    (None, false, false, true) => "H".into(),
                    _ => word.to_string(),
                };
                format!("{word}{rest}")
            })
            .collect();
        out.push_str(&words.concat());
        out.push('\n');
    }
    out
}

#[test]
fn the_cli_pointed_at_a_server_prints_what_it_prints_here_and_exits_the_same() {
    let server = Server::start(tempfile::tempdir().unwrap());
    let token = server.tenant("a", &[]);
    let local = tempfile::tempdir().unwrap();
    let url = format!("http://{}", server.addr);
    // The same command, here (own state dir) and through the server.
    let both = |args: &[&str]| -> [(i32, String, String); 2] {
        let here = hookhost(&local).args(args).output().unwrap();
        let there = Command::new(env!("CARGO_BIN_EXE_hookhost"))
            .args(args)
            .env("HOOKHOST_SERVER", &url)
            .env("HOOKHOST_TOKEN", &token)
            .env("HOOKHOST_CACHE_DIR", support::cache_dir())
            .env("RUST_LIB_BACKTRACE", "0")
            .env_remove("HOOKHOST_LOG")
            .output()
            .unwrap();
        let shown = |o: &std::process::Output| {
            (
                o.status.code().unwrap_or(-1),
                alike(&String::from_utf8_lossy(&o.stdout)),
                alike(&String::from_utf8_lossy(&o.stderr)),
            )
        };
        [shown(&here), shown(&there)]
    };
    let same = |args: &[&str], code: i32| -> String {
        let [here, there] = both(args);
        assert_eq!(here.0, code, "{args:?} here: {here:?}");
        assert_eq!(here, there, "{args:?}: here, then through the server");
        here.1
    };
    // One app directory: the spec and the recorder component.
    let app = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(support::repo("tests/fixtures/lifecycle/spec.json")).unwrap();
    let mut spec: Value = serde_json::from_str(&text).unwrap();
    spec["backup_policy"] = json!("device");
    std::fs::write(app.path().join("spec.json"), spec.to_string()).unwrap();
    std::fs::copy(
        support::guest(support::RECORDER),
        app.path().join("recorder_hooks.wasm"),
    )
    .unwrap();
    let dir = app.path().to_str().unwrap();
    let failing = tempfile::tempdir().unwrap();
    spec["env"]["fail_init"] = json!("5");
    std::fs::write(failing.path().join("spec.json"), spec.to_string()).unwrap();
    std::fs::copy(
        support::guest(support::RECORDER),
        failing.path().join("recorder_hooks.wasm"),
    )
    .unwrap();

    assert!(same(&["app", "add", dir, "--app", "rec", "--version", "1.0"], 0).starts_with("registered rec "));
    same(
        &[
            "app",
            "add",
            failing.path().to_str().unwrap(),
            "--app",
            "rec",
            "--version",
            "bad",
        ],
        0,
    );
    same(&["app", "list"], 0);
    same(&["app", "show", "rec", "1.0", "--json"], 0);
    same(&["app", "show", "nope"], 2);
    let created = same(
        &["cluster", "create", "--app", "rec", "--version", "1.0", "--name", "c"],
        0,
    );
    assert!(created.contains("create-cluster: succeeded"), "{created}");
    // The ids differ; each side's own.
    let id_of = |cmd: &mut Command| -> String {
        let out = cmd.args(["cluster", "list", "--json"]).output().unwrap();
        let line = String::from_utf8(out.stdout).unwrap();
        serde_json::from_str::<Value>(line.lines().next().unwrap()).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let here_id = id_of(&mut hookhost(&local));
    let there_id = id_of(
        Command::new(env!("CARGO_BIN_EXE_hookhost"))
            .env("HOOKHOST_SERVER", &url)
            .env("HOOKHOST_TOKEN", &token),
    );
    // Entries keyed by random ids sort differently on each side: `sort` compares them as sets.
    let per_side_sorted = |args: &[&str], code: i32, sort: bool| -> String {
        let here_args: Vec<&str> = args
            .iter()
            .map(|a| if *a == "ID" { here_id.as_str() } else { a })
            .collect();
        let there_args: Vec<&str> = args
            .iter()
            .map(|a| if *a == "ID" { there_id.as_str() } else { a })
            .collect();
        let here = hookhost(&local).args(&here_args).output().unwrap();
        let there = Command::new(env!("CARGO_BIN_EXE_hookhost"))
            .args(&there_args)
            .env("HOOKHOST_SERVER", &url)
            .env("HOOKHOST_TOKEN", &token)
            .env("RUST_LIB_BACKTRACE", "0")
            .output()
            .unwrap();
        let (h, t) = (
            String::from_utf8_lossy(&here.stdout),
            String::from_utf8_lossy(&there.stdout),
        );
        assert_eq!(
            here.status.code(),
            Some(code),
            "{args:?}: {h} {}",
            String::from_utf8_lossy(&here.stderr)
        );
        assert_eq!(
            there.status.code(),
            Some(code),
            "{args:?} through the server: {t} {}",
            String::from_utf8_lossy(&there.stderr)
        );
        let lines = |text: &str| {
            let mut lines: Vec<String> = alike(text).lines().map(String::from).collect();
            if sort {
                lines.sort();
            }
            lines.join("\n")
        };
        assert_eq!(lines(&h), lines(&t), "{args:?}: here, then through the server");
        assert_eq!(
            alike(&String::from_utf8_lossy(&here.stderr)),
            alike(&String::from_utf8_lossy(&there.stderr))
        );
        alike(&h)
    };
    let per_side = |args: &[&str], code: i32| per_side_sorted(args, code, false);
    per_side(&["cluster", "list"], 0);
    let shown = per_side(&["cluster", "show", "ID"], 0);
    assert!(shown.contains("HEALTH") && shown.contains("create-cluster"), "{shown}");
    per_side(&["cluster", "show", "ID", "--json"], 0);
    per_side_sorted(&["cluster", "metadata", "ID", "/hosts"], 0, true);
    per_side(&["cluster", "metadata", "ID", "/host"], 2);
    per_side(&["cluster", "check", "ID"], 0);
    per_side(&["plan", "stop", "ID"], 0);
    per_side(&["op", "list"], 0);
    per_side(&["op", "list", "--cluster", "ID"], 0);
    let stopped = per_side(&["cluster", "stop", "ID"], 0);
    assert!(stopped.contains("stop-cluster: succeeded"), "{stopped}");
    per_side(&["cluster", "stop", "ID"], 2);
    per_side(&["cluster", "start", "ID", "--json"], 0);
    per_side(&["cluster", "backup", "ID"], 0);
    per_side(&["backup", "list"], 0);
    per_side(&["cluster", "show", "cl-nope"], 2);
    per_side(&["op", "show", "op-nope"], 2);
    // A failing operation: exit 1, the same summary.
    let failed = same(
        &["cluster", "create", "--app", "rec", "--version", "bad", "--name", "f"],
        1,
    );
    assert!(failed.contains("create-cluster: failed"), "{failed}");
    // Each side's last operation, shown in full.
    let last_op = |cmd: &mut Command| -> String {
        let out = cmd.args(["op", "list", "--json"]).output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        serde_json::from_str::<Value>(text.lines().last().unwrap()).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (here_op, there_op) = (
        last_op(&mut hookhost(&local)),
        last_op(
            Command::new(env!("CARGO_BIN_EXE_hookhost"))
                .env("HOOKHOST_SERVER", &url)
                .env("HOOKHOST_TOKEN", &token),
        ),
    );
    for args in [
        &["op", "show"][..],
        &["op", "show", "--json"][..],
        &["op", "events"][..],
    ] {
        let here = hookhost(&local).args(args).arg(&here_op).output().unwrap();
        let there = Command::new(env!("CARGO_BIN_EXE_hookhost"))
            .args(args)
            .arg(&there_op)
            .env("HOOKHOST_SERVER", &url)
            .env("HOOKHOST_TOKEN", &token)
            .output()
            .unwrap();
        assert_eq!(here.status.code(), there.status.code());
        let (h, t) = (
            String::from_utf8_lossy(&here.stdout),
            String::from_utf8_lossy(&there.stdout),
        );
        assert_eq!(alike(&h), alike(&t), "{args:?}");
    }

    // A bad token or no server: exit 2 with what to do.
    let out = Command::new(env!("CARGO_BIN_EXE_hookhost"))
        .args(["cluster", "list", "--server", &url, "--token", "hh_wrong"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused the token (401)"));
    let out = Command::new(env!("CARGO_BIN_EXE_hookhost"))
        .args(["cluster", "list", "--server", "http://127.0.0.1:9", "--token", &token])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the server at http://127.0.0.1:9"));
    let out = Command::new(env!("CARGO_BIN_EXE_hookhost"))
        .args(["cluster", "list", "--server", "https://example.com"])
        .env("HOOKHOST_TOKEN", &token)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("give an http:// address"));
}
