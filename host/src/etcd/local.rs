//! A throwaway single-member etcd on loopback: the tests', the benches' and
//! a laptop's. It runs Debian's `etcd` (package `etcd-server`) on two free
//! ports with its data in a temporary directory, and is stopped by its pid.

use super::EtcdUrl;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Operations one transaction may hold here: a large cluster's batch.
pub const MAX_TXN_OPS: u32 = 65_536;
/// Bytes one request may hold here (etcd's default is 1.5 MiB).
pub const MAX_REQUEST_BYTES: u32 = 32 << 20;

/// A running etcd; dropping it kills it and deletes its data.
pub struct LocalEtcd {
    child: Option<Child>,
    /// Flags after the defaults (a later flag wins).
    extra: Vec<String>,
    client_port: u16,
    peer_port: u16,
    dir: tempfile::TempDir,
}

impl LocalEtcd {
    /// Starts etcd and waits until it is healthy (up to 20 s).
    pub fn start() -> std::io::Result<LocalEtcd> {
        LocalEtcd::start_with(&[])
    }

    /// Starts etcd with more flags (`--max-txn-ops=128`: etcd's own default).
    pub fn start_with(flags: &[&str]) -> std::io::Result<LocalEtcd> {
        let dir = tempfile::Builder::new().prefix("hookhost-etcd.").tempdir()?;
        // Both held at once, so that they differ.
        let (client, peer) = (TcpListener::bind("127.0.0.1:0")?, TcpListener::bind("127.0.0.1:0")?);
        let mut etcd = LocalEtcd {
            child: None,
            extra: flags.iter().map(|f| f.to_string()).collect(),
            client_port: client.local_addr()?.port(),
            peer_port: peer.local_addr()?.port(),
            dir,
        };
        drop((client, peer));
        etcd.run()?;
        Ok(etcd)
    }

    /// The store's URL, under `namespace` (`a/b`).
    pub fn url(&self, namespace: &str) -> EtcdUrl {
        EtcdUrl {
            endpoints: vec![format!("http://127.0.0.1:{}", self.client_port)],
            namespace: format!("/{}/", namespace.trim_matches('/')),
        }
    }

    /// The process id of etcd.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills etcd with SIGKILL (its data stays).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts etcd again on the same ports and data (after [`LocalEtcd::kill`]).
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.kill();
        self.run()
    }

    fn run(&mut self) -> std::io::Result<()> {
        let (client, peer) = (
            format!("http://127.0.0.1:{}", self.client_port),
            format!("http://127.0.0.1:{}", self.peer_port),
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("etcd.log"))?;
        let child = Command::new("etcd")
            .args(["--name", "local", "--data-dir"])
            .arg(self.dir.path().join("data"))
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .arg(format!("--initial-cluster=local={peer}"))
            .args([
                "--initial-cluster-state",
                "new",
                "--log-level",
                "warn",
                "--logger",
                "zap",
            ])
            .arg(format!("--max-txn-ops={MAX_TXN_OPS}"))
            .arg(format!("--max-request-bytes={MAX_REQUEST_BYTES}"))
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot run etcd ({e}): install it (Debian: apt-get install etcd-server)"),
                )
            })?;
        self.child = Some(child);
        let start = Instant::now();
        while !healthy(self.client_port) {
            let exited = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || start.elapsed() > Duration::from_secs(20) {
                self.kill();
                let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
                return Err(std::io::Error::other(format!("etcd did not become healthy: {log}")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// etcd's own log.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    /// Where its data lives.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for LocalEtcd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether etcd's `/health` says so.
fn healthy(port: u16) -> bool {
    let ask = || -> std::io::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(1)))?;
        stream.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply)?;
        Ok(reply)
    };
    ask().is_ok_and(|reply| reply.contains("\"health\":\"true\""))
}
