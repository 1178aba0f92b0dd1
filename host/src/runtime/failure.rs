//! How an invocation can fail, each way distinct, and how errors from
//! wasmtime are sorted into those ways.

use super::sandbox::{MemoryLimitExceeded, OutputLimitExceeded};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;
use wasmtime::{Trap, WasmBacktrace};

/// Why a hook invocation failed.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Failure {
    /// The hook ran and returned an error.
    #[error("the hook returned error {code}: {message}")]
    HookError {
        /// The hook's numeric code.
        code: u32,
        /// The hook's message.
        message: String,
    },
    /// The hook trapped (a panic, a stack overflow, a bad memory access, ...).
    #[error("the hook trapped: {message}")]
    Trap {
        /// What trapped.
        message: String,
        /// The innermost wasm frames.
        backtrace: Vec<String>,
    },
    /// The hook ran past its wall-clock timeout.
    #[error("the hook ran past its timeout of {}", human_duration(*limit_ms))]
    Timeout {
        /// The timeout in milliseconds.
        limit_ms: u64,
    },
    /// The hook's memory grew past its limit.
    #[error("{0}")]
    MemoryLimit(MemoryLimitExceeded),
    /// The hook wrote more than its output limit.
    #[error("{0}")]
    OutputLimit(OutputLimitExceeded),
    /// The hook used up its fuel.
    #[error("the hook ran out of fuel ({limit} units)")]
    OutOfFuel {
        /// The fuel it had.
        limit: u64,
    },
    /// The component does not implement the service asked for.
    #[error("the component does not implement {service}")]
    NotImplemented {
        /// The service's spec name.
        service: String,
    },
    /// The component rendered config files the host will not write (a path
    /// outside the node, too many or too large files): the component's fault.
    #[error("the component rendered a bad config file: {message}")]
    BadRender {
        /// What is wrong with it.
        message: String,
    },
    /// The rendered config could not be written to the node (its disk, or a
    /// link the node's own hooks planted).
    #[error("cannot write the rendered config: {message}")]
    ConfigWrite {
        /// What failed.
        message: String,
    },
    /// The sandbox could not be set up (a node directory is missing, the
    /// instance pool refused, the component is not from this runtime).
    #[error("the sandbox could not be set up: {message}")]
    Sandbox {
        /// What went wrong.
        message: String,
    },
}

/// A failed call, naming the component and the call.
#[derive(Debug, Clone, Error)]
#[error("{}: {call}: {failure}", plugin.display())]
pub struct HookFailure {
    /// The component file.
    pub plugin: PathBuf,
    /// The call, e.g. `run init` or `render`.
    pub call: String,
    /// How it failed.
    pub failure: Failure,
}

fn human_duration(ms: u64) -> String {
    let d = Duration::from_millis(ms);
    if ms.is_multiple_of(1000) {
        format!("{}s", d.as_secs())
    } else {
        format!("{ms}ms")
    }
}

/// Frames kept from a trap's backtrace.
const BACKTRACE_FRAMES: usize = 8;

/// Where an invocation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Making the instance.
    Instantiate,
    /// Running the hook.
    Call,
}

/// Sorts a wasmtime error from instantiating or calling a hook.
pub(crate) fn classify(
    err: &wasmtime::Error,
    phase: Phase,
    timeout: Duration,
    fuel: Option<u64>,
    stderr: &[u8],
) -> Failure {
    if err.is::<TimedOut>() || matches!(err.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
        return Failure::Timeout {
            limit_ms: timeout.as_millis() as u64,
        };
    }
    if let Some(e) = err.downcast_ref::<MemoryLimitExceeded>() {
        return Failure::MemoryLimit(*e);
    }
    if let Some(e) = err.downcast_ref::<OutputLimitExceeded>() {
        return Failure::OutputLimit(*e);
    }
    let trap = err.downcast_ref::<Trap>();
    if phase == Phase::Instantiate && trap.is_none() {
        // Not the hook's doing: the pool or the linker refused.
        return Failure::Sandbox {
            message: format!("cannot instantiate the component: {}", err.root_cause()),
        };
    }
    if let (Some(Trap::OutOfFuel), Some(limit)) = (trap, fuel) {
        return Failure::OutOfFuel { limit };
    }
    let mut message = match trap {
        Some(trap) => trap.to_string(),
        None => err.root_cause().to_string(),
    };
    if let Some(panic) = panic_message(stderr) {
        message = format!("{message} (the hook panicked: {panic})");
    }
    let backtrace = err
        .downcast_ref::<WasmBacktrace>()
        .map(short_backtrace)
        .unwrap_or_default();
    Failure::Trap { message, backtrace }
}

/// The innermost frames, after the panic and abort machinery of the guest's std.
fn short_backtrace(bt: &WasmBacktrace) -> Vec<String> {
    let text = bt.to_string();
    let frames: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.split(':').next().is_some_and(|n| n.parse::<u32>().is_ok()))
        .collect();
    let runtime_frame = |l: &&str| {
        ["!abort", "!std[", "!core[", "!__rustc[", "!std::", "!core::"]
            .iter()
            .any(|m| l.contains(m))
    };
    let own = frames.iter().position(|l| !runtime_frame(l)).unwrap_or(0);
    frames[own..]
        .iter()
        .take(BACKTRACE_FRAMES)
        .map(|l| l.to_string())
        .collect()
}

/// The wall-clock deadline passed while the hook was running.
#[derive(Debug, Clone, Copy, Error)]
#[error("deadline passed")]
pub(crate) struct TimedOut;

/// The message of a Rust panic printed to stderr, with its location.
fn panic_message(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let mut lines = text.lines().skip_while(|l| !l.contains(" panicked at "));
    let at = lines.next()?;
    let location = at.split(" panicked at ").nth(1)?.trim_end_matches(':');
    let message = lines.next().unwrap_or_default();
    Some(format!("{message} at {location}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_are_read_from_stderr() {
        let stderr =
            b"\nthread '<unnamed>' panicked at hostile/src/lib.rs:40:24:\nboom\nnote: run with RUST_BACKTRACE=1\n";
        assert_eq!(
            panic_message(stderr).as_deref(),
            Some("boom at hostile/src/lib.rs:40:24")
        );
        assert_eq!(panic_message(b"all fine"), None);
    }

    #[test]
    fn limits_are_sorted_by_their_error_type() {
        let t = Duration::from_secs(2);
        let call = Phase::Call;
        let err = wasmtime::Error::new(TimedOut).context("while calling");
        assert_eq!(classify(&err, call, t, None, b""), Failure::Timeout { limit_ms: 2000 });
        let limit = MemoryLimitExceeded { limit: 1, requested: 2 };
        let err = wasmtime::Error::new(limit);
        assert_eq!(
            classify(&err, Phase::Instantiate, t, None, b""),
            Failure::MemoryLimit(limit)
        );
        let err = wasmtime::Error::new(Trap::OutOfFuel);
        assert_eq!(classify(&err, call, t, Some(5), b""), Failure::OutOfFuel { limit: 5 });
        let err = wasmtime::Error::msg("maximum concurrent core instance limit of 8 reached");
        assert!(matches!(
            classify(&err, Phase::Instantiate, t, None, b""),
            Failure::Sandbox { .. }
        ));
        assert_eq!(
            Failure::Timeout { limit_ms: 1500 }.to_string(),
            "the hook ran past its timeout of 1500ms"
        );
    }
}
