//! Progress of a running operation on the terminal: a bar per step, shown
//! only when stderr is a terminal and the operation has run for a second.

use hookhost::engine::Observer;
use hookhost::store::{Event, InvocationOutcome, Operation, StepOutcome};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an operation runs before progress appears.
const QUIET_FOR: Duration = Duration::from_secs(1);

/// Draws one bar for the current step.
pub struct Progress {
    started: Instant,
    enabled: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress {
    /// Progress on stderr, if it is a terminal.
    pub fn new() -> Progress {
        Progress {
            started: Instant::now(),
            enabled: std::io::stderr().is_terminal(),
            bar: Mutex::new(None),
        }
    }

    fn with_bar(&self, f: impl FnOnce(&ProgressBar)) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            if bar.is_hidden() && self.started.elapsed() >= QUIET_FOR {
                bar.set_draw_target(ProgressDrawTarget::stderr());
            }
            f(bar);
        }
    }
}

impl Observer for Progress {
    fn step_started(&self, op: &Operation, index: usize) {
        if !self.enabled {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
        let style = ProgressStyle::with_template("{prefix} {msg} [{bar:30}] {pos}/{len} hooks · {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        let main = op.plan.steps.len();
        bar.set_prefix(if op.plan.is_recovery(index) {
            format!("recovery {}/{}", index + 1 - main, op.plan.recovery.len())
        } else {
            format!("step {}/{main}", index + 1)
        });
        bar.set_message(op.plan.step(index).map(|s| s.action.to_string()).unwrap_or_default());
        if self.started.elapsed() >= QUIET_FOR {
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        bar.enable_steady_tick(Duration::from_millis(200));
        *self.bar.lock().unwrap_or_else(|p| p.into_inner()) = Some(bar);
    }

    fn invocations_started(&self, count: usize) {
        self.with_bar(|bar| bar.inc_length(count as u64));
    }

    fn invocation_ended(&self, event: &Event) {
        if event.outcome != InvocationOutcome::Running {
            self.with_bar(|bar| bar.inc(1));
        }
    }

    fn step_ended(&self, _op: &Operation, _index: usize, _outcome: StepOutcome) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).take() {
            bar.finish_and_clear();
        }
    }
}
