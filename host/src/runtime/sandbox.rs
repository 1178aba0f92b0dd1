//! What one invocation may use: its limits, its directories, and the
//! captured output it leaves behind.

use serde::Serialize;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

/// Default per-invocation timeout: the spec's service default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// Longest timeout a service may ask for: the spec's maximum.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(86_400);
/// Default memory limit of one instance (all its linear memories together).
pub const DEFAULT_MEMORY: u64 = 128 << 20;
/// Default cap of each captured stream (stdout, stderr, log).
pub const DEFAULT_OUTPUT: u64 = 1 << 20;

/// The limits of one invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time before the hook is stopped.
    pub timeout: Duration,
    /// Bytes of linear memory the instance may hold in all.
    pub memory: u64,
    /// Fuel units, when the runtime meters fuel; `None` is unlimited.
    pub fuel: Option<u64>,
    /// Bytes each of stdout, stderr and the log may take.
    pub output: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: DEFAULT_TIMEOUT,
            memory: DEFAULT_MEMORY,
            fuel: None,
            output: DEFAULT_OUTPUT,
        }
    }
}

/// A host directory the hook sees at `guest` (the node's own directories).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The directory on the host.
    pub host: PathBuf,
    /// Where the hook sees it, e.g. `/` or `/data`.
    pub guest: String,
    /// Whether the hook may write there.
    pub writable: bool,
}

/// Builds the WASI context: the mounts, captured stdio, and nothing else
/// (no environment, no arguments, no network, empty stdin).
pub(crate) fn wasi_ctx(mounts: &[Mount], stdout: &Capture, stderr: &Capture) -> Result<WasiCtx, String> {
    let mut builder = WasiCtxBuilder::new();
    // No network, said explicitly rather than left to defaults.
    builder
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }));
    builder.stdout(stdout.clone()).stderr(stderr.clone());
    for mount in mounts {
        let perms = if mount.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        builder
            .preopened_dir(&mount.host, &mount.guest, perms)
            .map_err(|e| format!("cannot mount {} at {}: {e}", mount.host.display(), mount.guest))?;
    }
    Ok(builder.build())
}

/// A captured stream of the hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// The `log` import.
    Log,
    /// The hook's reply.
    Reply,
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::Log => "the log",
            Stream::Reply => "its reply",
        })
    }
}

/// The hook wrote more than its output limit to one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, thiserror::Error, utoipa::ToSchema)]
#[error("the hook wrote more than {} to {stream}", human_bytes(*limit))]
pub struct OutputLimitExceeded {
    /// The stream.
    pub stream: Stream,
    /// The limit in bytes.
    pub limit: u64,
}

/// What a stream captured: the first `limit` bytes, and whether more came.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Captured {
    /// The bytes kept (serialized as lossy UTF-8 text).
    #[serde(rename = "text", serialize_with = "lossy")]
    pub bytes: Vec<u8>,
    /// True when the hook wrote more than was kept.
    pub truncated: bool,
}

fn lossy<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(bytes))
}

impl Captured {
    /// The text, with a marker line when it was truncated.
    pub fn text(&self) -> String {
        let mut text = String::from_utf8_lossy(&self.bytes).into_owned();
        if self.truncated {
            if !text.ends_with('\n') && !text.is_empty() {
                text.push('\n');
            }
            text.push_str("[... truncated: output limit reached]\n");
        }
        text
    }
}

/// A capped in-memory stdout/stderr: writing past the cap traps the hook.
#[derive(Clone)]
pub(crate) struct Capture {
    stream: Stream,
    limit: u64,
    buf: Arc<Mutex<Captured>>,
}

/// Largest single write the hook is offered.
const WRITE_PERMIT: usize = 64 << 10;

impl Capture {
    pub(crate) fn new(stream: Stream, limit: u64) -> Self {
        Capture {
            stream,
            limit,
            buf: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Captured> {
        self.buf.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// What was captured so far.
    pub(crate) fn take(&self) -> Captured {
        std::mem::take(&mut *self.lock())
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(tokio::io::sink())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

impl OutputStream for Capture {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        let mut buf = self.lock();
        let room = (self.limit as usize).saturating_sub(buf.bytes.len());
        if bytes.len() <= room {
            buf.bytes.extend_from_slice(&bytes);
            return Ok(());
        }
        buf.bytes.extend_from_slice(&bytes[..room]);
        buf.truncated = true;
        Err(StreamError::Trap(wasmtime::Error::new(OutputLimitExceeded {
            stream: self.stream,
            limit: self.limit,
        })))
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

/// One line of the `log` import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LogLine {
    /// trace, debug, info, warn or error.
    pub level: &'static str,
    /// The message.
    pub message: String,
}

/// What one log line costs against the limit besides its text, so that
/// millions of empty lines cannot exhaust the host.
const LOG_LINE_COST: u64 = 64;

/// The `log` import's lines, capped like the other streams.
#[derive(Debug, Default)]
pub(crate) struct LogSink {
    pub(crate) lines: Vec<LogLine>,
    bytes: u64,
    limit: u64,
}

impl LogSink {
    pub(crate) fn new(limit: u64) -> Self {
        LogSink {
            lines: Vec::new(),
            bytes: 0,
            limit,
        }
    }

    /// Keeps a line, or refuses it when the log is over its limit.
    pub(crate) fn push(&mut self, level: &'static str, message: String) -> Result<(), OutputLimitExceeded> {
        self.bytes += message.len() as u64 + LOG_LINE_COST;
        if self.bytes > self.limit {
            return Err(OutputLimitExceeded {
                stream: Stream::Log,
                limit: self.limit,
            });
        }
        self.lines.push(LogLine { level, message });
        Ok(())
    }
}

/// The hook's memory grew past its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, thiserror::Error, utoipa::ToSchema)]
#[error("the hook asked for {} of memory; its limit is {}", human_bytes(*requested), human_bytes(*limit))]
pub struct MemoryLimitExceeded {
    /// The limit in bytes.
    pub limit: u64,
    /// The total the hook asked for.
    pub requested: u64,
}

/// Caps the instance's linear memories in all and records the peak.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    limit: u64,
    current: u64,
    pub(crate) peak: u64,
}

/// Table elements one table may hold.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl MemoryLimiter {
    pub(crate) fn new(limit: u64) -> Self {
        MemoryLimiter {
            limit,
            current: 0,
            peak: 0,
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let requested = self.current + (desired.saturating_sub(current)) as u64;
        if requested > self.limit {
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                limit: self.limit,
                requested,
            }));
        }
        self.current = requested;
        self.peak = self.peak.max(requested);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// Bytes for people: `512 B`, `1.5 KiB`, `128.0 MiB`.
pub fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_keeps_the_head_and_traps_past_the_limit() {
        let capture = Capture::new(Stream::Stdout, 8);
        let mut stream = capture.clone();
        assert!(stream.write(bytes::Bytes::from_static(b"hello")).is_ok());
        let err = stream.write(bytes::Bytes::from_static(b" world")).unwrap_err();
        assert!(matches!(err, StreamError::Trap(e) if e.is::<OutputLimitExceeded>()));
        let captured = capture.take();
        assert_eq!(captured.bytes, b"hello wo");
        assert!(captured.truncated);
        assert_eq!(captured.text(), "hello wo\n[... truncated: output limit reached]\n");
    }

    #[test]
    fn empty_log_lines_still_cost_their_share() {
        let mut sink = LogSink::new(10 * LOG_LINE_COST);
        for _ in 0..10 {
            sink.push("info", String::new()).unwrap();
        }
        assert!(sink.push("info", String::new()).is_err());
        assert_eq!(sink.lines.len(), 10);
    }

    #[test]
    fn limiter_counts_all_memories_and_the_peak() {
        let mut limiter = MemoryLimiter::new(100);
        assert!(limiter.memory_growing(0, 60, None).unwrap());
        assert!(limiter.memory_growing(0, 30, None).unwrap());
        let err = limiter.memory_growing(60, 80, None).unwrap_err();
        assert!(err.is::<MemoryLimitExceeded>());
        assert_eq!(
            err.to_string(),
            "the hook asked for 110 B of memory; its limit is 100 B"
        );
        assert_eq!(limiter.peak, 90);
    }
}
