//! What the CLI-driven lifecycle tests share: an app directory with the
//! recorder component, a state directory driven through the CLI, and ways
//! to read the hook timeline back (`op events`, the recorder's calls).
#![allow(dead_code)]

pub mod server;

use hookhost_test_support as support;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// An app directory: the test spec (edited) beside the recorder component.
pub struct App {
    pub _dir: tempfile::TempDir,
    pub spec: PathBuf,
}

pub fn app(edit: impl FnOnce(&mut Value)) -> App {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(support::repo("tests/fixtures/lifecycle/spec.json")).unwrap();
    let mut spec: Value = serde_json::from_str(&text).unwrap();
    edit(&mut spec);
    let path = dir.path().join("spec.json");
    std::fs::write(&path, serde_json::to_string_pretty(&spec).unwrap()).unwrap();
    std::fs::copy(
        support::guest(support::RECORDER),
        dir.path().join("recorder_hooks.wasm"),
    )
    .unwrap();
    App { _dir: dir, spec: path }
}

/// One state directory, driven through the CLI (its store there, or the `store` URL's).
pub struct Host {
    pub state: tempfile::TempDir,
    pub store: Option<String>,
}

impl Host {
    pub fn new() -> Host {
        Host {
            state: tempfile::tempdir().unwrap(),
            store: None,
        }
    }

    /// A host keeping its clusters and operations in the store at `url` (`--store`).
    pub fn on_store(url: &str) -> Host {
        Host {
            store: Some(url.to_string()),
            ..Host::new()
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookhost"));
        cmd.arg("--state-dir").arg(self.state.path()).args(args);
        cmd.env("HOOKHOST_CACHE_DIR", support::cache_dir())
            .env_remove("HOOKHOST_LOG")
            .env_remove("HOOKHOST_STORE");
        if let Some(url) = &self.store {
            cmd.env("HOOKHOST_STORE", url);
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("hookhost runs")
    }

    /// Runs an operation command with `--json`; returns (exit code, outcome).
    pub fn op(&self, args: &[&str]) -> (i32, Value) {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.run(&all);
        let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{e}: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), doc)
    }

    pub fn create(&self, app: &App) -> (String, String) {
        let (code, doc) = self.op(&["cluster", "create", app.spec.to_str().unwrap()]);
        assert_eq!(code, 0, "{doc:#}");
        (
            doc["cluster_id"].as_str().unwrap().into(),
            doc["operation"].as_str().unwrap().into(),
        )
    }

    pub fn events(&self, op: &str) -> Vec<Value> {
        let out = self.run(&["op", "events", op]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub fn cluster(&self, id: &str) -> Value {
        let out = self.run(&["cluster", "show", id, "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["cluster"].clone()
    }

    pub fn nodes(&self, cluster: &str, role: &str) -> Vec<String> {
        let c = self.cluster(cluster);
        c["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["role"] == role)
            .map(|n| n["node_id"].as_str().unwrap().to_string())
            .collect()
    }

    /// The engine of this state directory, for what the CLI cannot stage (crashes at a chosen point).
    pub fn engine(&self) -> hookhost::engine::Engine {
        let runtime = hookhost::runtime::Runtime::new(hookhost::runtime::RuntimeConfig {
            cache_dir: Some(support::cache_dir()),
            max_instances: 8,
            ..Default::default()
        })
        .unwrap();
        hookhost::engine::Engine::open(self.state.path(), runtime).unwrap()
    }

    pub fn volume(&self, cluster: &str, node: &str) -> PathBuf {
        self.state.path().join("nodes").join(cluster).join(node).join("volume")
    }

    /// What the recorder component wrote on a node.
    pub fn calls(&self, cluster: &str, node: &str) -> Vec<Value> {
        let text = std::fs::read_to_string(self.volume(cluster, node).join("calls.jsonl")).unwrap_or_default();
        // The last line may still be being written.
        text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }
}

/// The operation `args` ran (with `--json`), which must end with `code`.
pub fn op_ok(host: &Host, args: &[&str], code: i32) -> Value {
    let (got, doc) = host.op(args);
    assert_eq!(got, code, "{args:?}: {doc:#}");
    doc
}

pub fn time(v: &Value) -> std::time::SystemTime {
    humantime::parse_rfc3339(v.as_str().unwrap()).unwrap()
}

/// The hook events of one service, with their role.
pub fn of<'a>(events: &'a [Value], service: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["service"] == service).collect()
}

/// The services of an operation's hooks, step by step, each step's roles as
/// the waves they ran in (`start: db+cache | web`).
pub fn waves(events: &[Value]) -> Vec<String> {
    let mut steps: Vec<(u64, String, Vec<&Value>)> = Vec::new();
    for e in events
        .iter()
        .filter(|e| e["service"] != "render" && e["service"] != "reload")
    {
        let step = e["step"].as_u64().unwrap();
        match steps.last_mut() {
            Some((s, _, list)) if *s == step => list.push(e),
            _ => steps.push((step, e["service"].as_str().unwrap().into(), vec![e])),
        }
    }
    steps
        .into_iter()
        .map(|(_, service, list)| {
            let mut orders: Vec<u64> = list.iter().map(|e| e["order"].as_u64().unwrap()).collect();
            orders.sort();
            orders.dedup();
            let groups: Vec<String> = orders
                .iter()
                .map(|o| {
                    let mut roles: Vec<&str> = list
                        .iter()
                        .filter(|e| e["order"] == *o)
                        .map(|e| e["role"].as_str().unwrap())
                        .collect();
                    roles.sort();
                    roles.dedup();
                    roles.join("+")
                })
                .collect();
            format!("{service}: {}", groups.join(" | "))
        })
        .collect()
}

/// Same-order roles overlap in time; a later order starts after the earlier ones end.
pub fn assert_ordered(events: &[Value], service: &str) {
    let list = of(events, service);
    let mut groups: Vec<(u64, u64)> = list
        .iter()
        .map(|e| (e["step"].as_u64().unwrap(), e["order"].as_u64().unwrap()))
        .collect();
    groups.sort();
    groups.dedup();
    let in_group = |g: (u64, u64)| list.iter().filter(move |e| e["step"] == g.0 && e["order"] == g.1);
    for pair in groups.windows(2).filter(|p| p[0].0 == p[1].0) {
        let last_end = in_group(pair[0]).map(|e| time(&e["ended_at"])).max().unwrap();
        let first_start = in_group(pair[1]).map(|e| time(&e["started_at"])).min().unwrap();
        assert!(
            first_start >= last_end,
            "{service}: order {} started at {first_start:?} before order {} ended at {last_end:?}",
            pair[1].1,
            pair[0].1
        );
    }
}

pub fn overlap(a: &Value, b: &Value) -> bool {
    time(&a["started_at"]) < time(&b["ended_at"]) && time(&b["started_at"]) < time(&a["ended_at"])
}

/// Starts an operation in the background; returns the child.
pub fn spawn(host: &Host, args: &[&str]) -> Child {
    host.command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until `ready` holds (the hook under test has begun), at most 60 s.
pub fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The ids of the operations of a kind, oldest first.
pub fn ops_of(host: &Host, kind: &str) -> Vec<String> {
    let out = host.run(&["op", "list", "--json"]);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|o| o["kind"] == kind)
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect()
}

/// The id of the only (the first) operation of a kind.
pub fn op_of(host: &Host, kind: &str) -> String {
    ops_of(host, kind).into_iter().next().unwrap()
}

/// The id of the last operation of a kind.
pub fn last_op(host: &Host, kind: &str) -> String {
    ops_of(host, kind).pop().unwrap()
}

/// The cluster of the only operation.
pub fn cluster_of(host: &Host) -> String {
    let out = host.run(&["cluster", "list", "--json"]);
    let line = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    serde_json::from_str::<Value>(&line).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Runs a command that must end by itself (no hang on a FIFO); kills it after 60 s.
pub fn finishes(mut cmd: Command) -> Output {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("{cmd:?} hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}
