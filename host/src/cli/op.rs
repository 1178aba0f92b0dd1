//! `hookhost op ...`: operations, their journal, events and timeline; and
//! running an operation in the foreground for the `cluster` commands.

use super::remote::Remote;
use super::target::Target;
use super::{EXIT_HOOK_FAILED, Global, print::clean, print::emit, progress::Progress};
use clap::Subcommand;
use hookhost::cluster::Cluster;
use hookhost::engine::Engine;
use hookhost::engine::Observer as _;
use hookhost::request::OperationRequest;
use hookhost::request::kebab_name;
use hookhost::server::bodies::OperationState;
use hookhost::store::{Event, InvocationOutcome, Operation, OperationStatus, StepOutcome, StepRecord};
use serde_json::json;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::SystemTime;

#[derive(Subcommand)]
pub enum OpCommand {
    /// List operations, newest last.
    List {
        /// Only this cluster's.
        #[arg(long, value_name = "CLUSTER_ID")]
        cluster: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Show an operation: its steps with their seed step, outcome and duration, and a timeline of its hooks.
    Show {
        /// The operation id (op-...).
        op: String,
        /// One JSON object with the operation, its journal and its events.
        #[arg(long)]
        json: bool,
    },
    /// Print an operation's hook invocations as JSON lines, in order.
    Events {
        /// The operation id (op-...).
        op: String,
    },
    /// Finish an interrupted operation (its process died): completed hooks are not run again.
    Resume {
        /// The operation id (op-...).
        op: String,
        /// Print the outcome as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Stop an operation at its next step boundary (at once if it is interrupted).
    Cancel {
        /// The operation id (op-...).
        op: String,
        /// Print the outcome as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

impl OpCommand {
    /// Whether the command was asked for JSON output.
    pub fn wants_json(&self) -> bool {
        matches!(
            self,
            OpCommand::List { json: true, .. }
                | OpCommand::Show { json: true, .. }
                | OpCommand::Resume { json: true, .. }
                | OpCommand::Cancel { json: true, .. }
                | OpCommand::Events { .. }
        )
    }
}

/// Runs an `op` subcommand.
pub async fn run(global: &Global, cmd: OpCommand) -> anyhow::Result<ExitCode> {
    let target = global.target(true)?;
    match cmd {
        OpCommand::List { cluster, json } => list(&target, cluster, json).await,
        OpCommand::Show { op, json } => {
            let (shown, steps) = target.operation(&op).await?;
            let events = target.events(&shown.operation.id).await?;
            if json {
                let doc =
                    json!({"operation": shown.operation, "status": shown.status(), "steps": steps, "events": events});
                emit(&format!("{doc:#}\n"));
            } else {
                emit(&show(&shown, &steps, &events));
            }
            Ok(ExitCode::SUCCESS)
        }
        OpCommand::Events { op } => {
            let mut out = String::new();
            for event in target.events(&op).await? {
                let _ = writeln!(out, "{}", serde_json::to_string(&event)?);
            }
            emit(&out);
            Ok(ExitCode::SUCCESS)
        }
        OpCommand::Resume { op, json } => {
            let (shown, _) = target.operation(&op).await?;
            let op = shown.operation;
            if op.status != OperationStatus::Running {
                anyhow::bail!("operation {} has already ended: it {}", op.id, op.status.past());
            }
            foreground(&target, &op.id, json).await
        }
        OpCommand::Cancel { op, json } => {
            let op = target.cancel(&op).await?;
            let cluster = target.cluster(&op.cluster_id).await?;
            // Nobody ran it: it ended here (after its recovery part, if it needed one).
            let ended = op.status != OperationStatus::Running;
            let text = if json {
                let doc = json!({"operation": op.id, "status": op.status, "ended": ended, "error": op.error,
                    "cluster_id": cluster.id, "cluster_status": cluster.status});
                format!("{doc:#}\n")
            } else if ended {
                format!(
                    "operation {} {}; cluster {} is {}\n",
                    op.id, op.status, cluster.id, cluster.status
                )
            } else {
                format!("operation {} will stop at its next step boundary\n", op.id)
            };
            emit(&text);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `op list`: a line (or a JSON object) per operation, oldest first.
async fn list(target: &Target, cluster: Option<String>, json: bool) -> anyhow::Result<ExitCode> {
    if let Some(id) = &cluster {
        target.cluster(id).await?;
    }
    let ops: Vec<OperationState> = target
        .operations()
        .await?
        .into_iter()
        .filter(|s| cluster.as_ref().is_none_or(|c| involves(&s.operation, c)))
        .collect();
    let mut out = String::new();
    if !json {
        let _ = writeln!(
            out,
            "{:<12} {:<15} {:<12} {:<12} CREATED",
            "OPERATION", "KIND", "CLUSTER", "STATUS"
        );
    }
    for shown in &ops {
        let (op, status) = (&shown.operation, shown.status());
        if json {
            let _ = writeln!(
                out,
                "{}",
                json!({"id": op.id, "kind": op.kind(), "cluster_id": op.cluster_id, "status": status, "created_at": op.created_at, "ended_at": op.ended_at, "error": op.error})
            );
        } else {
            let _ = writeln!(
                out,
                "{:<12} {:<15} {:<12} {:<12} {}",
                op.id,
                op.kind().to_string(),
                op.cluster_id,
                status,
                op.created_at
            );
        }
    }
    emit(&out);
    Ok(ExitCode::SUCCESS)
}

/// Whether an operation runs on `cluster` (or holds it as an IP exchange's other cluster).
pub(super) fn involves(op: &Operation, cluster: &str) -> bool {
    op.cluster_id == cluster || op.request.peer_id() == Some(cluster)
}

/// Runs an operation until it ends — here, or on the server, followed —
/// with progress, Ctrl-C as cancel, and a summary; exit 0 when it
/// succeeded, 1 when it did not.
pub async fn foreground(target: &Target, op_id: &str, as_json: bool) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let op = match target {
        Target::Local(engine) => run_here(engine, op_id).await?,
        Target::Server(remote) => follow(target, remote, op_id).await?,
    };
    let cluster = target.cluster(&op.cluster_id).await?;
    let events = target.events(&op.id).await?;
    summary(&op, &cluster, &events, started.elapsed(), as_json)
}

/// Runs an operation in this process.
async fn run_here(engine: &Engine, op_id: &str) -> anyhow::Result<Operation> {
    let engine = engine.clone().with_observer(Arc::new(Progress::new()));
    let canceller = {
        let (engine, op_id) = (engine.clone(), op_id.to_string());
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\ncancelling {op_id} at the next step boundary (Ctrl-C again to leave it interrupted)");
                let _ = engine.cancel(&op_id).await;
                if tokio::signal::ctrl_c().await.is_ok() {
                    eprintln!(
                        "left {op_id} interrupted, its cancel pending: `hookhost op resume {op_id}` (or `op cancel`) ends it as cancelled"
                    );
                    std::process::exit(130);
                }
            }
        })
    };
    let result = engine.run(op_id).await;
    canceller.abort();
    Ok(result?)
}

/// How often a followed operation is asked about.
const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_millis(200);
/// How long an operation may stay unclaimed on the server before following it gives up.
const UNCLAIMED_FOR: std::time::Duration = std::time::Duration::from_secs(15);

/// Follows an operation the server runs until it ends, drawing the same
/// progress; Ctrl-C asks the server to cancel it, a second one leaves.
async fn follow(target: &Target, remote: &Remote, op_id: &str) -> anyhow::Result<Operation> {
    let progress = Progress::new();
    let canceller = {
        let (remote, op_id) = (remote.clone(), op_id.to_string());
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\ncancelling {op_id} at the next step boundary (Ctrl-C again to stop following it)");
                let _ = remote
                    .post::<serde_json::Value>(&format!("/api/v1/operations/{op_id}/cancel"), &json!({}))
                    .await;
                if tokio::signal::ctrl_c().await.is_ok() {
                    eprintln!("stopped following {op_id}; the server ends it: `hookhost op show {op_id}`");
                    std::process::exit(130);
                }
            }
        })
    };
    let mut step: Option<usize> = None;
    let (mut begun, mut ended) = (HashSet::new(), HashSet::new());
    let mut unclaimed_since: Option<std::time::Instant> = None;
    let op = loop {
        let (shown, steps) = target.operation(op_id).await?;
        let op = shown.operation;
        if let Some(current) = steps.iter().map(|s| s.index).max()
            && step != Some(current)
        {
            if let Some(last) = step {
                progress.step_ended(&op, last, StepOutcome::Ok);
            }
            progress.step_started(&op, current);
            step = Some(current);
        }
        for event in target.events(op_id).await? {
            if Some(event.step) == step && begun.insert(event.seq) {
                progress.invocations_started(1);
            }
            if event.outcome != InvocationOutcome::Running && ended.insert(event.seq) {
                progress.invocation_ended(&event);
            }
        }
        if op.status != OperationStatus::Running {
            if let Some(last) = step {
                progress.step_ended(&op, last, StepOutcome::Ok);
            }
            break op;
        }
        // Just submitted, a run is not claimed yet; one that stays so was lost.
        match (shown.interrupted, unclaimed_since) {
            (false, _) => unclaimed_since = None,
            (true, None) => unclaimed_since = Some(std::time::Instant::now()),
            (true, Some(since)) if since.elapsed() > UNCLAIMED_FOR => {
                canceller.abort();
                anyhow::bail!(
                    "operation {op_id} is interrupted on the server (no task runs it); it resumes when the server starts again, or cancel it: `hookhost op cancel {op_id}`"
                );
            }
            _ => {}
        }
        tokio::time::sleep(FOLLOW_EVERY).await;
    };
    canceller.abort();
    Ok(op)
}

/// An ended operation's summary (JSON or text); its exit code.
fn summary(
    op: &Operation,
    cluster: &Cluster,
    events: &[Event],
    elapsed: std::time::Duration,
    as_json: bool,
) -> anyhow::Result<ExitCode> {
    let ok = events.iter().filter(|e| e.outcome == InvocationOutcome::Ok).count();
    // A backup's id, once it is kept.
    let backup = match &op.request {
        OperationRequest::Backup { order: Some(order), .. } if op.status == OperationStatus::Succeeded => {
            Some(order.id.clone())
        }
        _ => None,
    };
    if as_json {
        let mut doc = json!({
            "ok": op.status == OperationStatus::Succeeded,
            "operation": op.id, "kind": op.kind(), "status": op.status, "error": op.error,
            "cluster_id": cluster.id, "cluster_status": cluster.status,
            "hooks": events.len(), "hooks_ok": ok, "elapsed_ms": elapsed.as_millis() as u64,
        });
        if let Some(id) = &backup {
            doc["backup"] = json!(id);
        }
        emit(&format!("{doc:#}\n"));
    } else {
        let mut out = format!(
            "operation {} {}: {} in {:.2} s\n",
            op.id,
            op.kind(),
            op.status,
            elapsed.as_secs_f64()
        );
        if let Some(error) = &op.error {
            let _ = writeln!(out, "reason    {}", clean(error));
        }
        let roles: Vec<String> = cluster.role_counts().iter().map(|(r, n)| format!("{r} ×{n}")).collect();
        let _ = writeln!(
            out,
            "cluster   {} ({}) is {} · {}",
            cluster.id,
            cluster.name,
            cluster.status,
            roles.join(", ")
        );
        let failed = events
            .iter()
            .filter(|e| !matches!(e.outcome, InvocationOutcome::Ok | InvocationOutcome::Skipped))
            .count();
        let tolerated = if failed > 0 && op.status == OperationStatus::Succeeded {
            format!(", {failed} failed (tolerated: see op show)")
        } else {
            String::new()
        };
        if let Some(id) = &backup {
            let _ = writeln!(out, "backup    {id} (hookhost backup show {id})");
        }
        let _ = writeln!(out, "hooks     {} run, {ok} ok{tolerated}", events.len());
        let _ = writeln!(out, "details   hookhost op show {}", op.id);
        emit(&out);
    }
    Ok(if op.status == OperationStatus::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_HOOK_FAILED)
    })
}

/// An operation as text: header, journal, timeline.
fn show(shown: &OperationState, steps: &[StepRecord], events: &[Event]) -> String {
    let op = &shown.operation;
    let mut out = format!(
        "operation {} · {} · cluster {} · {}\n",
        op.id,
        op.kind(),
        op.cluster_id,
        shown.status()
    );
    let _ = writeln!(out, "created   {}", op.created_at);
    if let Some(ended) = &op.ended_at {
        let _ = writeln!(out, "ended     {ended}");
    }
    if let Some(error) = &op.error {
        let _ = writeln!(out, "reason    {}", clean(error));
    }
    let _ = writeln!(out, "\nsteps");
    let main = op.plan.steps.len();
    for (i, step) in op.plan.all() {
        if i == main {
            let branch = match (&op.recovery, op.status) {
                (Some(r), _) => format!("ran: the main part {}", r.after),
                (None, OperationStatus::Running) => "runs if the main part fails, is refused or is cancelled".into(),
                (None, _) => "not run".into(),
            };
            let _ = writeln!(out, "recovery ({branch})");
        }
        let record = steps.iter().find(|s| s.index == i);
        let state = match record {
            Some(StepRecord { outcome: Some(o), .. }) => kebab_name(o),
            Some(_) => "running".into(),
            None => "pending".into(),
        };
        let took = record
            .and_then(|r| Some((parse(&r.started_at)?, parse(r.ended_at.as_deref()?)?)))
            .and_then(|(a, b)| b.duration_since(a).ok())
            .map(|d| format!(" {:.3}s", d.as_secs_f64()))
            .unwrap_or_default();
        let number = if i < main {
            format!("{:>3}", i + 1)
        } else {
            format!(" r{}", i + 1 - main)
        };
        let _ = writeln!(out, "  {number}. {state:<10}{took:<9} {step}");
        let _ = writeln!(out, "       {}", step.seed);
        if let Some(message) = record.and_then(|r| r.message.as_ref()) {
            let _ = writeln!(out, "       {}", clean(message));
        }
        if let Some(output) = record.and_then(|r| r.output.as_ref()) {
            let text: String = output.to_string();
            let shown: String = text.chars().take(OUTPUT_CHARS).collect();
            let more = if shown.len() < text.len() { " ..." } else { "" };
            let var = step.output.as_deref().unwrap_or("output");
            let _ = writeln!(out, "       ${var} = {}{more}", clean(&shown));
        }
    }
    out.push_str(&timeline(events));
    out
}

/// Characters of a step's output shown by `op show`.
const OUTPUT_CHARS: usize = 200;

fn parse(rfc3339: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339(rfc3339).ok()
}

/// Width of the timeline's bars.
const TIMELINE_WIDTH: usize = 40;

/// One line per hook: when it ran within the operation, as a bar.
fn timeline(events: &[Event]) -> String {
    let spans: Vec<(&Event, SystemTime, SystemTime)> = events
        .iter()
        .filter_map(|e| {
            let start = parse(&e.started_at)?;
            // When a crash cut a hook off is not known: it shows where it began.
            let end = match e.outcome {
                InvocationOutcome::Interrupted => start,
                _ => e.ended_at.as_deref().and_then(parse).unwrap_or(start),
            };
            Some((e, start, end))
        })
        .collect();
    let (Some(first), Some(last)) = (spans.iter().map(|s| s.1).min(), spans.iter().map(|s| s.2).max()) else {
        return String::new();
    };
    let total = last.duration_since(first).unwrap_or_default().as_secs_f64().max(1e-6);
    let col = |t: SystemTime| {
        ((t.duration_since(first).unwrap_or_default().as_secs_f64() / total) * TIMELINE_WIDTH as f64) as usize
    };
    let mut out = format!("\nhooks ({} invocations over {:.3}s)\n", spans.len(), total);
    for (e, start, end) in spans {
        let (a, b) = (col(start).min(TIMELINE_WIDTH - 1), col(end).min(TIMELINE_WIDTH));
        let bar: String = (0..TIMELINE_WIDTH)
            .map(|i| if i >= a && i < b.max(a + 1) { '█' } else { '·' })
            .collect();
        let offset = start.duration_since(first).unwrap_or_default().as_secs_f64();
        let outcome = kebab_name(&e.outcome);
        let detail = match (&e.code, &e.message) {
            (Some(code), Some(m)) => format!(" error {code}: {}", clean(m)),
            (None, Some(m)) if e.outcome != InvocationOutcome::Ok => format!(" {}", clean(m)),
            _ => String::new(),
        };
        let version = if e.version.is_empty() {
            String::new()
        } else {
            format!(" v{}", e.version)
        };
        let _ = writeln!(
            out,
            "  +{offset:>7.3}s {bar} {:<14} {}/{} #{}{version} {outcome}{detail}",
            e.service, e.role, e.node_id, e.attempt
        );
    }
    out
}
