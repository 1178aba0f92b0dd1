//! `hookhost op ...`: operations, their journal, events and timeline; and
//! running an operation in the foreground for the `cluster` commands.

use super::{EXIT_HOOK_FAILED, Global, print::clean, print::emit, progress::Progress};
use clap::Subcommand;
use hookhost::engine::Engine;
use hookhost::request::OperationRequest;
use hookhost::request::kebab_name;
use hookhost::store::{Event, InvocationOutcome, Operation, OperationStatus, StepRecord};
use serde_json::json;
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
    let engine = global.reader(true)?;
    match cmd {
        OpCommand::List { cluster, json } => list(&engine, cluster, json),
        OpCommand::Show { op, json } => {
            let op = engine.operation(&op)?;
            let steps = engine.store().steps(&op.id)?;
            let events = engine.store().events(&op.id)?;
            if json {
                let doc = json!({"operation": op, "status": status_of(&engine, &op), "steps": steps, "events": events});
                emit(&format!("{doc:#}\n"));
            } else {
                emit(&show(&engine, &op, &steps, &events));
            }
            Ok(ExitCode::SUCCESS)
        }
        OpCommand::Events { op } => {
            let op = engine.operation(&op)?;
            let mut out = String::new();
            for event in engine.store().events(&op.id)? {
                let _ = writeln!(out, "{}", serde_json::to_string(&event)?);
            }
            emit(&out);
            Ok(ExitCode::SUCCESS)
        }
        OpCommand::Resume { op, json } => {
            let op = engine.operation(&op)?;
            if op.status != OperationStatus::Running {
                anyhow::bail!("operation {} has already ended: it {}", op.id, op.status.past());
            }
            foreground(&engine, &op.id, json).await
        }
        OpCommand::Cancel { op, json } => {
            let op = engine.cancel(&op).await?;
            let cluster = engine.cluster(&op.cluster_id)?;
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
fn list(engine: &Engine, cluster: Option<String>, json: bool) -> anyhow::Result<ExitCode> {
    if let Some(id) = &cluster {
        engine.cluster(id)?;
    }
    let ops: Vec<Operation> = engine
        .store()
        .operations()?
        .into_iter()
        .filter(|op| {
            cluster
                .as_ref()
                .is_none_or(|c| &op.cluster_id == c || op.request.peer_id() == Some(c.as_str()))
        })
        .collect();
    let mut out = String::new();
    if !json {
        let _ = writeln!(
            out,
            "{:<12} {:<15} {:<12} {:<12} CREATED",
            "OPERATION", "KIND", "CLUSTER", "STATUS"
        );
    }
    for op in &ops {
        let status = status_of(engine, op);
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

/// `running`, `interrupted` (no process runs it), or how it ended.
pub(super) fn status_of(engine: &Engine, op: &Operation) -> String {
    if engine.is_interrupted(op) {
        "interrupted".into()
    } else {
        op.status.to_string()
    }
}

/// Runs an operation here until it ends, with progress, Ctrl-C as cancel,
/// and a summary; exit 0 when it succeeded, 1 when it did not.
pub async fn foreground(engine: &Engine, op_id: &str, as_json: bool) -> anyhow::Result<ExitCode> {
    let engine = engine.clone().with_observer(Arc::new(Progress::new()));
    let started = std::time::Instant::now();
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
    let op = result?;
    let cluster = engine.cluster(&op.cluster_id)?;
    let events = engine.store().events(&op.id)?;
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
            "hooks": events.len(), "hooks_ok": ok, "elapsed_ms": started.elapsed().as_millis() as u64,
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
            started.elapsed().as_secs_f64()
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
fn show(engine: &Engine, op: &Operation, steps: &[StepRecord], events: &[Event]) -> String {
    let mut out = format!(
        "operation {} · {} · cluster {} · {}\n",
        op.id,
        op.kind(),
        op.cluster_id,
        status_of(engine, op)
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
