//! The `hookhost` command line, driven as a user would: exit codes, output,
//! files written, and clear errors for bad input.

use hookhost_test_support as support;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// Runs hookhost; kills it if it has not ended in 60 s (nothing may hang it, not even a FIFO).
fn hookhost(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookhost"))
        .args(args)
        .env("HOOKHOST_CACHE_DIR", support::cache_dir())
        .env_remove("HOOKHOST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("hookhost runs");
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("hookhost {args:?} hung");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

const ZK_FIXTURE: &str = "example-plugins/zookeeper/fixtures/cluster.json";

#[test]
fn hook_run_init_writes_myid_and_reports_success() {
    let zk = support::guest(support::ZOOKEEPER);
    let fixture = support::repo(ZK_FIXTURE);
    let work = tempfile::tempdir().unwrap();
    let out = hookhost(&[
        "hook",
        "run",
        "--plugin",
        path(&zk),
        "--service",
        "init",
        "--metadata",
        path(&fixture),
        "--node",
        "cln-zk3",
        "--workdir",
        path(work.path()),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.starts_with("run init · node cln-zk3 (zk_node/i-zk3) · cluster cl-zk · manual\n"),
        "{stdout}"
    );
    assert!(stdout.contains("\nresult    ok\n"), "{stdout}");
    assert!(
        stdout.contains("\nlog       info  wrote /data/zookeeper/myid = 3\n"),
        "{stdout}"
    );
    assert!(stdout.contains("peak memory"), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(work.path().join("data/zookeeper/myid")).unwrap(),
        "3\n"
    );
}

#[test]
fn hook_run_json_reports_a_hook_error_with_exit_1() {
    let zk = support::guest(support::ZOOKEEPER);
    let fixture = support::repo(ZK_FIXTURE);
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data/zookeeper/version-2");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("log.1"), "txn").unwrap();
    let out = hookhost(&[
        "hook",
        "run",
        "--plugin",
        path(&zk),
        "--service",
        "destroy",
        "--metadata",
        path(&fixture),
        "--node",
        "cln-zk1",
        "--operation",
        "delete-cluster",
        "--workdir",
        path(work.path()),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["call"], "run destroy");
    assert_eq!(doc["failure"]["kind"], "hook-error");
    assert_eq!(doc["failure"]["code"], 21);
    assert_eq!(
        doc["error"],
        "the hook returned error 21: node cln-zk1 holds 1 transaction file(s) (log.1) that no surviving node has; \
         back up first or force the deletion"
    );
    assert_eq!(doc["node"]["operation"], "delete-cluster");
    assert_eq!(doc["node"]["role"], "zk_node");
    assert!(doc["report"]["elapsed_us"].as_u64().unwrap() > 0);
    assert!(doc["report"]["peak_memory"].as_u64().unwrap() > 0);
}

#[test]
fn hook_run_a_timeout_exits_1_and_says_so() {
    let hostile = support::guest(support::HOSTILE);
    let fixture = support::repo(ZK_FIXTURE);
    let work = tempfile::tempdir().unwrap();
    let out = hookhost(&[
        "hook",
        "run",
        "--plugin",
        path(&hostile),
        "--service",
        "spin",
        "--metadata",
        path(&fixture),
        "--node",
        "cln-zk1",
        "--timeout",
        "0.3",
        "--workdir",
        path(work.path()),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("\nresult    FAILED: the hook ran past its timeout of 300ms\n"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn hook_run_passes_service_params_and_a_neighbour_stays_invisible() {
    let probe = support::guest(support::PROBE);
    let fixture = support::repo(ZK_FIXTURE);
    let neighbour = support::repo("tests/fixtures/neighbour.json");
    let work = tempfile::tempdir().unwrap();
    let out = hookhost(&[
        "hook",
        "run",
        "--plugin",
        path(&probe),
        "--service",
        "seen",
        "--params",
        r#"{"db": 3}"#,
        "--metadata",
        path(&fixture),
        "--metadata",
        path(&neighbour),
        "--node",
        "cln-zk2",
        "--workdir",
        path(work.path()),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let seen: Value = serde_json::from_str(doc["result"].as_str().unwrap()).unwrap();
    assert_eq!(seen["params"]["db"], 3);
    assert_eq!(seen["host"]["ip"], "192.168.0.12");
    assert!(!seen["tree"].to_string().contains("tenant-b-secret"));
}

#[test]
fn hook_render_prints_the_config_files() {
    let zk = support::guest(support::ZOOKEEPER);
    let fixture = support::repo(ZK_FIXTURE);
    let work = tempfile::tempdir().unwrap();
    let out = hookhost(&[
        "hook",
        "render",
        "--plugin",
        path(&zk),
        "--metadata",
        path(&fixture),
        "--node",
        "cln-zk1",
        "--workdir",
        path(work.path()),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("\n# /opt/zookeeper/conf/zoo.cfg (mode 0644, 175 bytes)\ntickTime=2000\n"),
        "{stdout}"
    );
    assert!(stdout.ends_with("server.3=192.168.0.13:2888:3888\n"), "{stdout}");
}

#[test]
fn inspect_lists_services_and_the_wit_package() {
    let zk = support::guest(support::ZOOKEEPER);
    let out = hookhost(&["inspect", path(&zk), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["package"], "hookhost:hooks@0.1.0");
    assert_eq!(
        doc["services"],
        serde_json::json!([
            "init",
            "start",
            "stop",
            "destroy",
            "scale_out",
            "scale_in",
            "reload",
            "health_check",
            "backup",
            "restore",
            "find_leader"
        ])
    );
    assert!(
        doc["imports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i == "hookhost:hooks/metadata@0.1.0")
    );
    assert_eq!(doc["sha256"].as_str().unwrap().len(), 64);
}

/// Runs `hook run` with the given plugin and fixture, expecting exit 2 and an error.
fn bad_input(plugin: &Path, fixture: &Path, node: &str, service: &str) -> String {
    let work = tempfile::tempdir().unwrap();
    let out = hookhost(&[
        "hook",
        "run",
        "--plugin",
        path(plugin),
        "--service",
        service,
        "--metadata",
        path(fixture),
        "--node",
        node,
        "--workdir",
        path(work.path()),
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    text(&out.stderr)
}

#[test]
fn bad_fixtures_exit_2_naming_the_file_and_place() {
    let zk = support::guest(support::ZOOKEEPER);
    let cases = [
        (
            "tests/fixtures/bad-unknown-key.json",
            "bad-unknown-key.json: at /hots: unknown key; expected one of hosts, cluster",
        ),
        (
            "tests/fixtures/bad-syntax.json",
            "bad-syntax.json:3:52: invalid JSON: trailing comma",
        ),
        (
            "tests/fixtures/bad-no-node-id.json",
            "bad-no-node-id.json: at /hosts/zk_node/i-1/node_id: missing",
        ),
        (
            "tests/fixtures/does-not-exist.json",
            "does-not-exist.json: cannot read: No such file or directory",
        ),
    ];
    for (fixture, expected) in cases {
        let stderr = bad_input(&zk, &support::repo(fixture), "cln-1", "init");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(expected),
            "{stderr}\nexpected: {expected}"
        );
    }
}

#[test]
fn an_unknown_node_or_service_exits_2_with_the_choices() {
    let zk = support::guest(support::ZOOKEEPER);
    let fixture = support::repo(ZK_FIXTURE);
    let stderr = bad_input(&zk, &fixture, "cln-zk9", "init");
    assert!(
        stderr.contains(
            "no node cln-zk9 in the metadata: cluster cl-zk has no node cln-zk9 (its nodes: cln-zk1, cln-zk2, cln-zk3)"
        ),
        "{stderr}"
    );
    let stderr = bad_input(&zk, &fixture, "cln-zk1", "upgrade");
    assert!(
        stderr.contains("does not implement upgrade; it implements: init, start, stop, destroy, scale_out, scale_in, reload, health_check, backup, restore, find_leader"),
        "{stderr}"
    );
    let stderr = bad_input(&zk, &fixture, "cln-zk1", "Bad Name");
    assert!(stderr.contains("\"Bad Name\" is not a service name"), "{stderr}");
}

#[test]
fn files_that_are_not_hook_components_exit_2_with_a_clear_error() {
    let fixture = support::repo(ZK_FIXTURE);
    let cases = [
        (
            support::repo("tests/fixtures/not-wasm.wasm"),
            "not-wasm.wasm: not a WebAssembly file (it starts with \"not wasm\")",
        ),
        (
            support::repo("tests/fixtures/core-module.wasm"),
            "core-module.wasm: a core WebAssembly module, not a component",
        ),
        (
            support::guest(support::OTHER_WORLD),
            "other_world.wasm: not a hook component: it exports [acme:widgets/widget@1.0.0], not hookhost:hooks/hooks@0.1.0",
        ),
        (
            support::guest(support::FUTURE_CONTRACT),
            "future_contract.wasm: built against hookhost:hooks/hooks@0.2.0, but this host speaks hookhost:hooks@0.1.0",
        ),
        (
            support::guest(support::PARTIAL_HOOKS),
            "partial_hooks.wasm: exports hookhost:hooks/hooks@0.1.0 but not as this host defines it",
        ),
    ];
    for (plugin, expected) in cases {
        let stderr = bad_input(&plugin, &fixture, "cln-zk1", "init");
        assert!(stderr.contains(expected), "{stderr}\nexpected: {expected}");
        let out = hookhost(&["inspect", path(&plugin)]);
        assert_eq!(out.status.code(), Some(2));
        assert!(text(&out.stderr).contains(expected), "{}", text(&out.stderr));
    }
}

#[test]
fn bad_flags_exit_2() {
    let zk = support::guest(support::ZOOKEEPER);
    let fixture = support::repo(ZK_FIXTURE);
    for (flag, value, expected) in [
        ("--timeout", "0", "out of range"),
        ("--timeout", "-1", "out of range"),
        ("--timeout", "100000", "out of range"),
        ("--params", "[1]", "service_params must be a JSON object"),
        ("--params", "{bad", "--params: invalid JSON"),
        (
            "--operation",
            "explode",
            "is not an operation; expected one of create-cluster",
        ),
    ] {
        let out = hookhost(&[
            "hook",
            "run",
            "--plugin",
            path(&zk),
            "--service",
            "init",
            "--metadata",
            path(&fixture),
            "--node",
            "cln-zk1",
            flag,
            value,
        ]);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        assert!(
            text(&out.stderr).contains(expected),
            "{flag} {value}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn help_teaches_the_commands() {
    let out = hookhost(&["hook", "run", "--help"]);
    let help = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    for needle in [
        "--plugin",
        "--service",
        "--metadata",
        "--node",
        "--params",
        "--timeout",
        "--workdir",
        "--json",
        "Example:",
    ] {
        assert!(help.contains(needle), "{needle} missing from:\n{help}");
    }
}

#[test]
fn a_fifo_where_a_component_should_be_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("x.wasm");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let fixture = support::repo(ZK_FIXTURE);
    let work = tempfile::tempdir().unwrap();
    for args in [
        vec!["inspect", path(&fifo)],
        vec![
            "hook",
            "run",
            "--plugin",
            path(&fifo),
            "--service",
            "init",
            "--metadata",
            path(&fixture),
            "--node",
            "cln-zk1",
            "--workdir",
            path(work.path()),
        ],
        vec![
            "hook",
            "render",
            "--plugin",
            path(&fifo),
            "--metadata",
            path(&fixture),
            "--node",
            "cln-zk1",
            "--workdir",
            path(work.path()),
        ],
    ] {
        let out = hookhost(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains("x.wasm: cannot read: not a regular file"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn a_missing_work_directory_is_refused_not_made() {
    let zk = support::guest(support::ZOOKEEPER);
    let fixture = support::repo(ZK_FIXTURE);
    let base = tempfile::tempdir().unwrap();
    let missing = base.path().join("nonexistent/a/b");
    let out = hookhost(&[
        "hook",
        "run",
        "--plugin",
        path(&zk),
        "--service",
        "init",
        "--metadata",
        path(&fixture),
        "--node",
        "cln-zk1",
        "--workdir",
        path(&missing),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(&format!(
            "--workdir {}: does not exist; create it first",
            missing.display()
        )),
        "{}",
        text(&out.stderr)
    );
    assert!(!base.path().join("nonexistent").exists(), "nothing was made");
}

#[test]
fn the_node_directory_is_never_the_hosts_root() {
    let zk = support::guest(support::ZOOKEEPER);
    let fixture = support::repo(ZK_FIXTURE);
    let links = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/", links.path().join("root")).unwrap();
    for workdir in [Path::new("/"), &links.path().join("root")] {
        let out = hookhost(&[
            "hook",
            "run",
            "--plugin",
            path(&zk),
            "--service",
            "init",
            "--metadata",
            path(&fixture),
            "--node",
            "cln-zk1",
            "--workdir",
            path(workdir),
        ]);
        assert_eq!(out.status.code(), Some(2), "{workdir:?}");
        assert!(
            text(&out.stderr).contains("is the host's whole filesystem (/)"),
            "{}",
            text(&out.stderr)
        );
    }
    assert!(!Path::new("/data/zookeeper/myid").exists());
}

#[test]
fn a_state_directory_others_may_write_is_refused_and_a_missing_one_is_not_made() {
    use std::os::unix::fs::PermissionsExt;
    let base = tempfile::tempdir().unwrap();
    let open = base.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = hookhost(&["cluster", "list", "--state-dir", path(&open)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("others may write to it (mode 777); chmod go-w it"),
        "{}",
        text(&out.stderr)
    );
    let file = base.path().join("file");
    std::fs::write(&file, "").unwrap();
    let out = hookhost(&["cluster", "list", "--state-dir", path(&file)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("it is not a directory"),
        "{}",
        text(&out.stderr)
    );
    // Reading a state directory that does not exist makes nothing.
    let typo = base.path().join("typo");
    for args in [
        vec!["cluster", "list", "--state-dir", path(&typo)],
        vec!["op", "list", "--state-dir", path(&typo)],
    ] {
        let out = hookhost(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(
            text(&out.stderr).contains("nothing has run in"),
            "{}",
            text(&out.stderr)
        );
    }
    let out = hookhost(&["cluster", "show", "cl-nope", "--state-dir", path(&typo)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no cluster cl-nope"));
    assert!(!typo.exists(), "nothing was made");
    let long = "c".repeat(100_000);
    let out = hookhost(&["cluster", "show", &long, "--state-dir", path(&typo)]);
    assert!(
        text(&out.stderr).contains("... (100000 characters)"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stderr.len() < 1000, "the id is not echoed whole");
}

#[test]
fn a_bad_command_line_asked_for_json_answers_in_json() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().to_str().unwrap();
    for args in [
        vec![
            "--state-dir",
            dir,
            "cluster",
            "add-nodes",
            "cl-x",
            "--role",
            "a",
            "--count",
            "abc",
            "--json",
        ],
        vec!["--state-dir", dir, "cluster", "update-env", "cl-x", "--json"],
        vec!["--state-dir", dir, "cluster", "resize", "cl-x", "--json"],
    ] {
        let out = hookhost(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let doc: Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", text(&out.stdout)));
        assert_eq!(doc["ok"], false);
        assert_eq!(doc["kind"], "bad-input");
        assert!(!doc["error"].as_str().unwrap().is_empty());
    }
    // Without --json, clap's own message and exit code.
    let out = hookhost(&["cluster", "add-nodes", "cl-x", "--role", "a", "--count", "abc"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("invalid value 'abc' for '--count <COUNT>'"));
}

/// An app of the original platform (`tests/fixtures/original-app`: every
/// key real apps use that Hookhost replaces) imported, built, validated,
/// created and deleted; what each shell command became, checked.
#[test]
fn an_original_app_is_imported_built_validated_created_and_deleted() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("app");
    let state = work.path().join("state");
    let sdk = support::repo("plugin-sdk");
    let fixture = support::repo("tests/fixtures/original-app");
    let args = [
        "app",
        "import",
        path(&fixture),
        "--out",
        path(&out),
        "--sdk-path",
        path(&sdk),
        "--set",
        "env.access_key_id=AKID",
        "--set",
        "cluster.db_node.count=3",
        "--json",
    ];
    // Not an app of the original platform: named, nothing written.
    let none = hookhost(&["app", "import", path(work.path()), "--out", path(&out)]);
    assert_eq!(none.status.code(), Some(2));
    let said = text(&none.stderr);
    assert!(said.contains("cluster.json.mustache: cannot read"), "{said}");
    assert!(!out.exists());
    let done = hookhost(&args);
    assert_eq!(done.status.code(), Some(0), "{}", text(&done.stderr));
    let summary: Value = serde_json::from_slice(&done.stdout).unwrap();
    let summary = &summary["summary"];
    let components: Vec<&str> = summary["crates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["component"].as_str().unwrap())
        .collect();
    assert_eq!(components, ["db_node_hooks.wasm", "web_proxy_hooks.wasm"]);
    let lines = |key: &str| -> Vec<String> {
        summary[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect()
    };
    for line in [
        "health_check.check_cmd → role web-proxy's `health_check` service",
        "display_tabs.Node Roles.cmd → role db_node's `tab_Node_Roles` service",
        "nodes[0].services.backup.selector → role db_node's `backup_selector` service",
        "advanced_services.update_nodes_names → role db_node's custom `update_nodes_names` service",
    ] {
        assert!(lines("converted").iter().any(|l| l == line), "{line}");
    }
    for line in [
        "hooks/db-node-hooks: `scale_in`: /opt/app/bin/ctl.sh preScaleIn",
        "hooks/db-node-hooks: `upgrade`: bash -c 'test -f /data/ok'",
        "hooks/db-node-hooks: `monitor`: /opt/app/bin/ctl.sh measure",
        "hooks/web-proxy-hooks: `stop`: /opt/proxy/stop.sh",
    ] {
        assert!(lines("to_port").iter().any(|l| l == line), "{line}");
    }
    assert_eq!(lines("to_port").len(), 24);
    assert!(lines("dropped").iter().any(|l| l.starts_with("vxnet: empty")));

    // The spec: no shell command left; each became its service.
    let text_of = |p: &Path| std::fs::read_to_string(p).unwrap();
    let spec_text = text_of(&out.join("spec.json"));
    assert!(!spec_text.contains("cmd\""), "{spec_text}");
    let spec: Value = serde_json::from_str(&spec_text).unwrap();
    let db = &spec["nodes"][0];
    assert_eq!(db["plugin"], "db_node_hooks.wasm");
    assert_eq!(db["count"], 3, "--set overrides a default");
    assert_eq!(db["env"]["log-level"], "info");
    assert_eq!(spec["env"]["access_key_id"], "AKID");
    assert_eq!(db["services"]["scale_in"]["pre_check"], true);
    assert_eq!(db["services"]["backup"]["selector"], "backup_selector");
    assert_eq!(
        db["services"]["tab_Node_Roles"],
        serde_json::json!({"type": "custom", "timeout": 10})
    );
    assert_eq!(spec["nodes"][1]["services"]["health_action"], serde_json::json!({}));
    assert_eq!(spec["locale"]["zh-cn"]["err_code21"], "找不到主节点");
    let source = text_of(&out.join("hooks/db-node-hooks/src/lib.rs"));
    assert!(
        source.contains("            Service::Custom(\"changeFCV\".into()),\n"),
        "{source}"
    );
    assert!(
        source.contains(
            "            // The pre-check ran:\n            //     /opt/app/bin/ctl.sh preScaleIn\n            Service::ScaleIn if ctx.is_pre_check() =>"
        ),
        "{source}"
    );

    // Nothing is overwritten.
    let again = hookhost(&args);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stdout).contains("not empty"), "{}", text(&again.stdout));

    // Built as the summary says (the lock file pins what the tests built already).
    std::fs::copy(support::repo("example-plugins/Cargo.lock"), out.join("Cargo.lock")).unwrap();
    let noop = support::guest(support::NOOP);
    let guests = noop.parent().unwrap();
    let target = guests.ancestors().nth(2).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--offline",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(out.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target)
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", text(&built.stderr));
    for component in components {
        std::fs::copy(guests.join(component), out.join(component)).unwrap();
    }
    let state_args = |rest: &[&str]| -> Vec<String> {
        let mut all = vec!["--state-dir".to_string(), path(&state).to_string()];
        all.extend(rest.iter().map(|s| s.to_string()));
        all
    };
    let run = |rest: &[&str]| {
        let all = state_args(rest);
        hookhost(&all.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let valid = run(&["app", "validate", path(&out), "--json"]);
    assert_eq!(valid.status.code(), Some(0), "{}", text(&valid.stdout));
    // The vendor's tags are kept and shown.
    let added = run(&["app", "add", path(&out), "--app", "legacy", "--version", "1.0"]);
    assert_eq!(added.status.code(), Some(0), "{}", text(&added.stderr));
    let shown = text(&run(&["app", "show", "legacy", "1.0"]).stdout);
    assert!(
        shown.contains("\n  custom tags     {\"team\":\"storage\",\"tier\":\"gold\"}\n"),
        "{shown}"
    );
    let created = run(&["cluster", "create", path(&out), "--json"]);
    assert_eq!(created.status.code(), Some(0), "{}", text(&created.stdout));
    let created: Value = serde_json::from_slice(&created.stdout).unwrap();
    let cluster = created["cluster_id"].as_str().unwrap().to_string();
    let shown: Value = serde_json::from_slice(&run(&["cluster", "show", &cluster, "--json"]).stdout).unwrap();
    assert_eq!(shown["cluster"]["status"], "active");
    assert_eq!(shown["cluster"]["nodes"].as_array().unwrap().len(), 4);
    let deleted = run(&["cluster", "delete", &cluster, "--json"]);
    assert_eq!(deleted.status.code(), Some(0), "{}", text(&deleted.stdout));
}

/// `app validate` names every problem of a spec in one run, each at its JSON path.
#[test]
fn app_validate_reports_every_problem_at_once() {
    let work = tempfile::tempdir().unwrap();
    std::fs::copy(support::guest(support::NOOP), work.path().join("noop.wasm")).unwrap();
    let spec = work.path().join("spec.json");
    std::fs::write(
        &spec,
        r#"{"vxnet": "", "nodes": [
            {"role": "a", "count": "three", "plugin": "noop.wasm", "cpu": 0,
             "health_check": {"enable": true, "check_cmd": "check.sh"},
             "services": {"start": {"cmd": "start.sh", "timout": 3}, "Bad Name": {"type": "custom"}}},
            {"role": "b", "plugin": "noop.wasm", "replicas": 1}
        ], "advanced_services": {"x": {"cmd": "x.sh"}}, "links": {"etcd": ""}}"#,
    )
    .unwrap();
    let out = hookhost(&["app", "validate", path(&spec), "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let found: Vec<String> = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{}: {}", p["at"].as_str().unwrap(), p["message"].as_str().unwrap()))
        .collect();
    let expect = [
        "nodes[0].health_check.check_cmd: shell commands do not run here: the `health_check` service",
        "nodes[0].services.start.cmd: shell commands do not run here: the `start` service",
        "advanced_services: not supported: declare each as a custom service",
        "nodes[0].count: invalid type: string \"three\", expected u32",
        "nodes[0].services.start.timout: unknown key `timout`",
        "nodes[1].replicas: unknown key `replicas`",
        "nodes[1].count: required key `count` is missing",
        "vxnet: \"\" is not a usable network name",
        "nodes[0].cpu: must be at least 1",
        "nodes[0].services.Bad Name: \"Bad Name\" is not a service name",
    ];
    assert_eq!(found.len(), expect.len(), "{found:#?}");
    for want in expect {
        assert!(found.iter().any(|f| f.starts_with(want)), "{want}\n{found:#?}");
    }
}
