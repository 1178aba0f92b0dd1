use super::*;
use std::path::Path;

/// A directory with a component file named `app.wasm`.
fn base() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.wasm"), b"\0asm").unwrap();
    dir
}

fn parse(json: &str) -> Result<Spec, SpecError> {
    let dir = base();
    Spec::parse(Path::new("spec.json"), json, dir.path())
}

fn problems(json: &str) -> Vec<String> {
    match parse(json) {
        Ok(_) => Vec::new(),
        Err(SpecError::Invalid { problems, .. }) => problems.iter().map(|p| p.to_string()).collect(),
        Err(other) => vec![other.to_string()],
    }
}

#[test]
fn a_single_role_gets_a_default_name_and_an_absolute_plugin() {
    let dir = base();
    let spec = Spec::parse(
        Path::new("spec.json"),
        r#"{"name": "zk", "nodes": [{"count": 3, "plugin": "app.wasm", "services": {"init": {"post_start_service": true}}}]}"#,
        dir.path(),
    )
    .unwrap();
    assert_eq!(spec.nodes[0].role, "node");
    assert!(spec.nodes[0].plugin.is_absolute());
    assert_eq!(spec.vxnet, "vxnet-default");
    let init = spec.nodes[0].service("init").unwrap();
    assert!(init.runs_after_start());
    assert_eq!(init.timeout_secs(), 600);
    assert_eq!(init.order, 0);
}

#[test]
fn every_shape_problem_is_named_at_its_json_path_in_one_run() {
    let found = problems(
        r#"{"nodes": [
            {"role": "a", "count": 1, "plugin": "app.wasm", "services": {"init": {"timout": 5}, "start": {"order": -1}}},
            {"role": "b", "count": "two"},
            {"role": "c", "count": 1, "plugin": "app.wasm", "cpu": 0}
        ], "upgrading_policy": "sideways"}"#,
    );
    assert_eq!(
        found,
        [
            "nodes[0].services.init.timout: unknown key `timout`, expected one of `order`, `timeout`, `post_start_service`, `post_stop_service`, `nodes_to_execute_on`, `pre_check`, `allow_force`, `service_params`, `with_replica`, `type`, `event`, `selector`",
            "nodes[0].services.start.order: invalid value: integer `-1`, expected u32",
            "nodes[1].count: invalid type: string \"two\", expected u32",
            "nodes[1].plugin: required key `plugin` is missing",
            "upgrading_policy: unknown variant `sideways`, expected one of `parallel`, `sequential`, `in-place-parallel`, `in-place-sequential`",
            // The rules are judged too, where the document is the user's.
            "nodes[2].cpu: must be at least 1",
        ]
    );
    // Not JSON: the place it stops, with line and column.
    let err = parse("{\n  \"nodes\": [\n").unwrap_err().to_string();
    assert!(err.contains("spec.json:3:0: nodes: EOF while parsing a list"), "{err}");
}

/// A spec in the original platform's words (what `app import` reads once rendered).
const ORIGINAL: &str = r#"{
    "name": "legacy", "links": {"etcd_service": ""}, "custom_tags": {"team": "db"},
    "add_links": ["etcd_service"], "upgrade_roles": {"add": ["b"]},
    "health_check": {"enable": true, "check_cmd": "appctl check", "action_cmd": "appctl revive"},
    "monitor": {"enable": true, "cmd": "appctl measure", "items": {"qps": {"unit": "count"}}},
    "display_tabs": {"Node Roles": {"cmd": "appctl roles", "roles_to_execute_on": ["a"]}},
    "advanced_services": {"update_names": {"cmd": "appctl names", "timeout": 10}},
    "nodes": [{
        "role": "a", "count": 2, "plugin": "app.wasm", "unsupported_actions": ["change_instance_class"],
        "custom_metadata": {"cmd": "appctl token"},
        "services": {
            "start": {"cmd": "appctl start"},
            "scale_in": {"pre_check": "appctl preScaleIn", "cmd": "appctl scaleIn"},
            "backup": {"selector": "appctl findLeader", "nodes_to_execute_on": 1},
            "changeFCV": {"type": "custom", "cmd": "appctl changeFCV"}
        }
    }]
}"#;

#[test]
fn shell_commands_are_refused_naming_the_service_that_replaces_each() {
    let found = problems(ORIGINAL);
    let expect = [
        "health_check.check_cmd: shell commands do not run here: the `health_check` service of each role's component replaces this one",
        "health_check.action_cmd: shell commands do not run here: the `health_action` service of each role's component",
        "monitor.cmd: shell commands do not run here: the `monitor` service of each role's component",
        "display_tabs.Node Roles.cmd: shell commands do not run here: a display tab is a custom service replying the table; declare `tab_Node_Roles`",
        "nodes[0].custom_metadata.cmd: shell commands do not run here: the `custom_metadata` service of the role's component",
        "nodes[0].services.backup.selector: a selector names a service here: declare `backup_selector`",
        "nodes[0].services.changeFCV.cmd: shell commands do not run here: the `changeFCV` service of the role's component",
        "nodes[0].services.scale_in.cmd: shell commands do not run here: the `scale_in` service",
        "nodes[0].services.scale_in.pre_check: a pre-check is `\"pre_check\": true` here: the role's component answers it in its `scale_in` service",
        "nodes[0].services.start.cmd: shell commands do not run here: the `start` service",
        "advanced_services: not supported: declare each as a custom service",
    ];
    assert_eq!(found.len(), expect.len(), "{found:#?}");
    for (got, want) in found.iter().zip(expect) {
        assert!(got.starts_with(want), "{got}\n  expected: {want}");
    }
    // Without them the rest is accepted as it is: camelCase custom services,
    // an empty link, custom tags, a role's unsupported actions.
    let mut doc: serde_json::Value = serde_json::from_str(ORIGINAL).unwrap();
    for command in legacy::shell_commands(&doc.clone()) {
        legacy::remove(&mut doc, &command);
    }
    doc.as_object_mut().unwrap().remove("advanced_services");
    doc["nodes"][0]["services"]["backup"]["selector"] = "changeFCV".into();
    let spec = parse(&doc.to_string()).unwrap();
    assert!(spec.links.is_empty(), "an empty link is no link");
    assert_eq!(spec.custom_tags, Some(serde_json::json!({"team": "db"})));
    assert_eq!(spec.nodes[0].unsupported_actions, ["change_instance_class"]);
    assert_eq!(spec.nodes[0].service("scale_in").unwrap().pre_check, Some(true));
    assert!(spec.nodes[0].service("changeFCV").is_some());
}

#[test]
fn rules_are_checked_and_every_problem_is_reported() {
    let found = problems(
        r#"{
          "metadata_root_access": true,
          "nodes": [
            {"role": "zk", "count": 3, "plugin": "app.wasm", "server_id_upper_bound": 2,
             "services": {
               "init": {"timeout": 100000, "post_stop_service": true},
               "start": {"post_start_service": true, "nodes_to_execute_on": 4},
               "destroy": {"allow_force": false, "post_stop_service": true},
               "run_query": {"service_params": {"db": 0}},
               "backup": {"type": "custom"}
             }},
            {"role": "zk", "count": 1, "plugin": "missing.wasm"},
            {"count": 1, "plugin": "app.wasm"},
            {"role": "db-replica", "count": 0, "plugin": "app.wasm", "replica": 1, "env": {"list": [1]}}
          ]
        }"#,
    );
    let expected = [
        "metadata_root_access: not supported: hooks only ever see their own cluster",
        "nodes[0].server_id_upper_bound: 2 leaves no sid for some of the role's 3 nodes",
        "nodes[0].services.backup.type: backup is a system service; a custom service needs another name",
        "nodes[0].services.init.timeout: 100000 is out of range: give 1 to 86400 seconds",
        "nodes[0].services.init.post_stop_service: applies to destroy only",
        "nodes[0].services.run_query: \"run_query\" is not a system service; mark a custom service with \"type\": \"custom\"",
        "nodes[0].services.start.post_start_service: applies to init, upgrade only",
        "nodes[0].services.start.nodes_to_execute_on: 4 is out of range: the role has 3 node(s)",
        "nodes[1].plugin:",
        "nodes[1].role: role \"zk\" is defined twice",
        "nodes[2].role: required when the app has more than one role",
        "nodes[3].role: names ending in -replica are reserved for replicas",
        "nodes[3].env.list: values are strings, numbers, booleans or objects of those",
    ];
    for e in expected {
        assert!(
            found.iter().any(|f| f.starts_with(e)),
            "missing {e:?} in:\n{}",
            found.join("\n")
        );
    }
    assert_eq!(found.len(), expected.len(), "{}", found.join("\n"));
    assert!(found.iter().any(|f| f.contains("missing.wasm: no such component file")));
}

#[test]
fn every_key_that_becomes_metadata_is_a_path_segment() {
    let found = problems(
        r#"{"env": {"ok": 1, "key": {"a/b": "x"}, "mode": "x"}, "endpoints": {"": {"port": 1}},
            "links": {"db": "../cl"},
            "nodes": [{"count": 1, "plugin": "app.wasm", "env": {"mode": {"deep": "y"}}}]}"#,
    );
    assert_eq!(
        found,
        vec![
            "env.key.a/b: \"a/b\" cannot be a key (no '/', '.', '..', nor empty)",
            "endpoints.: \"\" cannot be a key (no '/', '.', '..', nor empty)",
            "links.db: \"db\" → \"../cl\": names and cluster ids are single path segments",
            "nodes[0].env.mode: is an object in one env and a value in the other (the role's and the cluster's env merge)",
        ]
    );
}

#[test]
fn counts_must_add_up_to_a_node() {
    assert_eq!(
        problems(r#"{"nodes": [{"count": 0, "plugin": "app.wasm"}]}"#),
        vec!["nodes: the roles' counts add up to 0; a cluster needs at least one node"]
    );
}

#[test]
fn parts_parse_on_their_own() {
    let svc: ServiceSpec = parse_part(r#"{"order": 2, "timeout": 30, "allow_force": false}"#).unwrap();
    assert_eq!((svc.order, svc.timeout_secs(), svc.force_allowed()), (2, 30, false));
    let err = parse_part::<HealthCheck>(r#"{"enable": "yes"}"#).unwrap_err();
    assert!(
        err.starts_with("enable: invalid type: string \"yes\", expected a boolean"),
        "{err}"
    );
}

#[test]
fn counts_are_bounded_by_what_a_cluster_may_have() {
    let role = |count: u64| format!(r#"{{"role": "r{count}", "count": {count}, "plugin": "app.wasm"}}"#);
    assert_eq!(
        problems(&format!(r#"{{"nodes": [{}]}}"#, role(1_000_000_000))),
        ["nodes[0].count: 1000000000 is more nodes than a cluster may have (10000)"]
    );
    assert_eq!(
        problems(&format!(
            r#"{{"nodes": [{}, {}]}}"#,
            role(4_000_000_000),
            role(4_000_000_001)
        )),
        [
            "nodes[0].count: 4000000000 is more nodes than a cluster may have (10000)",
            "nodes[1].count: 4000000001 is more nodes than a cluster may have (10000)"
        ],
        "counts that overflow a u32 sum are still told apart"
    );
    assert_eq!(
        problems(&format!(r#"{{"nodes": [{}, {}]}}"#, role(6000), role(6001))),
        ["nodes: the roles' counts add up to 12001; a cluster has at most 10000 nodes"]
    );
    let replicated =
        |count: u32, replica: u64| format!(r#"{{"count": {count}, "plugin": "app.wasm", "replica": {replica}}}"#);
    assert!(problems(&format!(r#"{{"nodes": [{}]}}"#, replicated(5000, 1))).is_empty());
    assert_eq!(
        problems(&format!(r#"{{"nodes": [{}]}}"#, replicated(5001, 1))),
        ["nodes[0].replica: 5001 nodes with 1 replicas each make 10002 nodes; a cluster has at most 10000"]
    );
    assert_eq!(
        problems(&format!(r#"{{"nodes": [{}]}}"#, replicated(1, 4_000_000_000))),
        ["nodes[0].replica: 4000000000 replicas per node is more nodes than a cluster may have (10000)"]
    );
    assert!(problems(&format!(r#"{{"nodes": [{}]}}"#, role(10_000))).is_empty());
}

#[test]
fn components_stay_inside_the_apps_directory() {
    let app = base();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("x.wasm"), b"\0asm").unwrap();
    std::os::unix::fs::symlink(outside.path().join("x.wasm"), app.path().join("out.wasm")).unwrap();
    std::os::unix::fs::symlink("app.wasm", app.path().join("in.wasm")).unwrap();
    std::os::unix::fs::symlink(app.path().join("app.wasm"), app.path().join("absolute.wasm")).unwrap();
    std::fs::create_dir(app.path().join("sub")).unwrap();
    std::fs::write(app.path().join("sub/ok.wasm"), b"\0asm").unwrap();
    let check = |plugin: &str| {
        let json = format!(r#"{{"nodes": [{{"count": 1, "plugin": {plugin:?}}}]}}"#);
        match Spec::parse(Path::new("spec.json"), &json, app.path()) {
            Ok(spec) => Ok(spec.nodes[0].plugin.clone()),
            Err(SpecError::Invalid { problems, .. }) => Err(problems[0].to_string()),
            Err(other) => Err(other.to_string()),
        }
    };
    assert!(check("sub/ok.wasm").unwrap().ends_with("sub/ok.wasm"));
    assert!(
        check("in.wasm").unwrap().ends_with("in.wasm"),
        "a relative link inside is fine"
    );
    assert!(check("../x.wasm").unwrap_err().contains("\"../x.wasm\" uses `..`"));
    assert!(check("sub/../app.wasm").unwrap_err().contains("uses `..`"));
    assert!(
        check("/etc/passwd")
            .unwrap_err()
            .contains("\"/etc/passwd\" is absolute")
    );
    for out in ["out.wasm", "absolute.wasm"] {
        let err = check(out).unwrap_err();
        assert!(err.ends_with(&format!("{out}: {}", crate::files::LEADS_OUT)), "{err}");
    }
    assert!(check("sub").unwrap_err().ends_with("sub: not a regular file"));
    assert!(
        check("missing.wasm")
            .unwrap_err()
            .ends_with("missing.wasm: no such component file")
    );
    assert!(check("").unwrap_err().ends_with("names no component file"));
}

#[test]
fn names_and_descriptions_are_bounded_text() {
    let spec = |name: &str| {
        let name = serde_json::to_string(name).unwrap();
        format!(r#"{{"name": {name}, "nodes": [{{"count": 1, "plugin": "app.wasm"}}]}}"#)
    };
    assert_eq!(
        problems(&spec(&"n".repeat(129))),
        ["name: 129 characters; at most 128 are allowed"]
    );
    assert_eq!(
        problems(&spec("a\u{7}b")),
        ["name: holds control or invisible formatting characters"]
    );
    assert!(problems(&spec("")).is_empty(), "a name may be empty");
    let described = r#"{"description": "two\nlines", "nodes": [{"count": 1, "plugin": "app.wasm"}]}"#;
    assert!(problems(described).is_empty());
}

#[test]
fn in_place_copies_name_a_role_a_source_in_the_payload_and_a_plain_destination() {
    let copy = |c: &str| {
        format!(
            r#"{{"upgrade_policy": ["1.0", "../x"], "nodes": [{{"role": "db", "count": 1, "plugin": "app.wasm",
                "volume": {{"size": 1, "mount_point": "/data"}}}}],
                "in-place-upgrade-nodes": [{{"copy": [{c}]}}]}}"#
        )
    };
    let good = parse(&copy(
        r#"{"mount_role": "db", "mount_point": "/upgrade", "source": "/upgrade/bin", "destination": "/data/new"}"#,
    ));
    let Err(SpecError::Invalid { problems: found, .. }) = good else {
        panic!("upgrade_policy holds a bad name")
    };
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].at == "upgrade_policy[1]", "{found:?}");
    let found = problems(&copy(
        r#"{"mount_role": "web", "source": "/upgrade/x", "destination": "/opt/x"},
           {"mount_role": "db", "source": "/elsewhere/x", "destination": "/data"},
           {"mount_role": "db", "source": "/upgrade/../x", "destination": "/opt/../etc"},
           {"mount_role": "db", "source": "/upgrade", "destination": "relative"}"#,
    ));
    let at: Vec<&str> = found.iter().map(|p| p.split(": ").next().unwrap()).collect();
    assert_eq!(
        at,
        [
            "upgrade_policy[1]",
            "in-place-upgrade-nodes[0].copy[0].mount_role",
            "in-place-upgrade-nodes[0].copy[1].source",
            "in-place-upgrade-nodes[0].copy[1].destination",
            "in-place-upgrade-nodes[0].copy[2].source",
            "in-place-upgrade-nodes[0].copy[2].destination",
            "in-place-upgrade-nodes[0].copy[3].destination",
        ],
        "{found:#?}"
    );
    assert!(
        found[3].contains("that is not /data or above it"),
        "a failed copy would remove the volume: {}",
        found[3]
    );
}
