//! A `hookhost serve` for the tests: the real binary on a loopback port,
//! over its own state directory, spoken to over HTTP (tests/server.rs,
//! tests/console.rs).

use hookhost_test_support as support;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `hookhost serve` over its own state directory.
pub struct Server {
    pub state: tempfile::TempDir,
    child: Child,
    /// `127.0.0.1:port`.
    pub addr: String,
}

impl Server {
    /// Starts it on a free loopback port.
    pub fn start(state: tempfile::TempDir) -> Server {
        Server::start_with(state, &[])
    }

    /// Starts it with more `serve` flags.
    pub fn start_with(state: tempfile::TempDir, flags: &[&str]) -> Server {
        let mut child = hookhost(&state)
            .args(["serve", "--listen", "127.0.0.1:0", "--hook-slots", "8"])
            .args(flags)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("hookhost serve starts");
        let mut first = String::new();
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        out.read_line(&mut first).expect("the server says where it listens");
        // Keep reading what else it says, so that it never writes to a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let addr = first
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {first:?}"))
            .to_string();
        Server { state, child, addr }
    }

    /// Adds a tenant (with quota flags); returns its token.
    pub fn tenant(&self, name: &str, flags: &[&str]) -> String {
        let out = hookhost(&self.state)
            .args(["tenant", "add", name, "--json"])
            .args(flags)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        doc["token"].as_str().unwrap().to_string()
    }

    /// A request with a JSON body; the status and the JSON reply.
    pub fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.raw(method, path, token, body.as_bytes())
    }

    /// A request with any body.
    pub fn raw(&self, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> (u16, Value) {
        support::http(&self.addr, method, path, token, body)
    }

    /// A request that must succeed (2xx); its reply.
    pub fn ok(&self, method: &str, path: &str, token: &str, body: Option<&Value>) -> Value {
        let (status, doc) = self.call(method, path, Some(token), body);
        assert!((200..300).contains(&status), "{method} {path}: {status} {doc}");
        doc
    }

    /// Uploads the recorder app (spec edited) as `app` 1.0.
    pub fn upload(&self, token: &str, app: &str, edit: impl FnOnce(&mut Value)) -> (u16, Value) {
        let text = std::fs::read_to_string(support::repo("tests/fixtures/lifecycle/spec.json")).unwrap();
        let mut spec: Value = serde_json::from_str(&text).unwrap();
        edit(&mut spec);
        let body = support::app_upload(app, &spec, support::RECORDER, "recorder_hooks.wasm");
        self.call("POST", "/api/v1/apps", Some(token), Some(&body))
    }

    /// Submits a request; waits for its operation to end; returns it.
    pub fn run(&self, token: &str, request: Value) -> Value {
        let op = self.ok("POST", "/api/v1/operations", token, Some(&request));
        self.wait_ended(token, op["id"].as_str().unwrap())
    }

    /// Waits for an operation to end (at most 120 s); returns it.
    pub fn wait_ended(&self, token: &str, op: &str) -> Value {
        let start = Instant::now();
        loop {
            let doc = self.ok("GET", &format!("/api/v1/operations/{op}"), token, None);
            if doc["operation"]["status"] != "running" {
                return doc["operation"].clone();
            }
            assert!(start.elapsed() < Duration::from_secs(120), "{op} never ended");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the server (-9); returns its state directory.
    pub fn kill(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let state = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.state, state)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `hookhost` over a state directory.
pub fn hookhost(state: &tempfile::TempDir) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookhost"));
    cmd.arg("--state-dir")
        .arg(state.path())
        .env("HOOKHOST_CACHE_DIR", support::cache_dir())
        .env("RUST_LIB_BACKTRACE", "0")
        .env_remove("HOOKHOST_LOG");
    cmd
}

/// A create-cluster request of `app` 1.0, named `c`.
pub fn create(app: &str) -> Value {
    json!({"kind": "create-cluster", "app": {"app": app, "version": "1.0"}, "name": "c"})
}
