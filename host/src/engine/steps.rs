//! The steps that call hooks: running a service by role order, and
//! rendering config with reload-on-change. Each invocation is an event,
//! stored as `running` before the hook starts and with its outcome after,
//! so that a resume knows what completed (skipped), what was cut off
//! (`interrupted`, run again with the next attempt) and what never ran.

use super::plan::OnFailure;
use super::{Engine, EngineError};
use crate::hook::{Operation as WitOperation, parse_service};
use crate::metadata::{ClusterView, MetadataStore, NodeRef, Snapshot, cluster_root};
use crate::runtime::{Call, Failure, Limits, Outcome, Plugin, Request};
use crate::spec::DEFAULT_SERVICE_TIMEOUT;
use crate::state::{Cluster, Event, InvocationOutcome, Node, Operation, now};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// How a step ended.
pub(super) enum StepResult {
    /// It did its work.
    Ok,
    /// Hooks failed, and the step's policy tolerates it.
    Tolerated(String),
    /// It failed.
    Failed(String),
    /// A guard refused.
    Aborted(String),
}

/// Log lines kept in an event (the last ones).
const EVENT_LOG_LINES: usize = 20;
/// Characters kept of one log line or message in an event.
const EVENT_LINE_CHARS: usize = 1000;

fn clip(line: &str) -> String {
    match line.char_indices().nth(EVENT_LINE_CHARS) {
        Some((cut, _)) => format!("{}[... {} more bytes]", &line[..cut], line.len() - cut),
        None => line.to_string(),
    }
}

/// What the journal says about one step, per node and service: the attempts
/// made, whether one ended (any outcome but cut off), and what the last
/// finished render changed.
#[derive(Default)]
struct Past {
    by_key: HashMap<(String, String), Tried>,
}

#[derive(Default)]
struct Tried {
    attempts: u32,
    ended: bool,
    cut_off: bool,
    changed: Vec<String>,
    /// Its ending, when that was not ok: a resumed step still weighs it.
    failure: Option<Event>,
}

impl Past {
    async fn load(engine: &Engine, op: &Operation, step: usize) -> Result<Past, EngineError> {
        let mut events = engine.db.events(&op.id)?;
        events.retain(|e| e.step == step);
        // Hooks cut off by a crash: say so, they run again with the next attempt.
        let cut_off: Vec<Event> = events
            .iter()
            .filter(|e| e.outcome == InvocationOutcome::Running)
            .map(|e| Event {
                outcome: InvocationOutcome::Interrupted,
                ended_at: Some(now()),
                message: Some("the host stopped while the hook ran".into()),
                ..e.clone()
            })
            .collect();
        if !cut_off.is_empty() {
            engine.db.put_events(cut_off).await?;
        }
        let mut past = Past::default();
        for e in events {
            let tried = past.by_key.entry((e.node_id.clone(), e.service.clone())).or_default();
            tried.attempts = tried.attempts.max(e.attempt);
            match e.outcome {
                InvocationOutcome::Running | InvocationOutcome::Interrupted => tried.cut_off = true,
                outcome => {
                    tried.ended = true;
                    tried.failure = (outcome != InvocationOutcome::Ok).then(|| e.clone());
                    tried.changed = e.changed.clone();
                }
            }
        }
        Ok(past)
    }

    fn get(&self, node: &str, service: &str) -> Option<&Tried> {
        self.by_key.get(&(node.to_string(), service.to_string()))
    }

    /// It ran to an end (ok, or a failure the step already dealt with): not again.
    fn done(&self, node: &str, service: &str) -> bool {
        self.get(node, service).is_some_and(|t| t.ended)
    }

    fn next_attempt(&self, node: &str, service: &str) -> u32 {
        self.get(node, service).map(|t| t.attempts + 1).unwrap_or(1)
    }
}

/// What a step shares with each of its invocations (which run as their own tasks).
struct StepCtx {
    engine: Engine,
    op_id: String,
    operation: WitOperation,
    step: usize,
    cluster: Cluster,
    snapshot: Arc<Snapshot>,
    plugins: BTreeMap<String, Plugin>,
}

impl StepCtx {
    async fn new(engine: &Engine, op: &Operation, step: usize, cluster: &Cluster) -> Result<Arc<StepCtx>, EngineError> {
        let snapshot = Arc::new(
            engine
                .tree
                .snapshot(&cluster_root(&cluster.id))
                .await
                .map_err(|e| EngineError::State(e.to_string()))?,
        );
        let mut plugins = BTreeMap::new();
        for role in &cluster.spec.nodes {
            let plugin = engine
                .runtime
                .load(&role.plugin)
                .await
                .map_err(|e| EngineError::State(format!("role {}: {e}", role.role)))?;
            plugins.insert(role.role.clone(), plugin);
        }
        Ok(Arc::new(StepCtx {
            engine: engine.clone(),
            op_id: op.id.clone(),
            operation: op.kind.wit(),
            step,
            cluster: cluster.clone(),
            snapshot,
            plugins,
        }))
    }

    /// The call of a hook on `node`.
    fn call(&self, node: &Node, timeout_secs: u32, attempt: u32) -> Call {
        let instance_id = node.instance_id.clone().unwrap_or_default();
        let node_ref = NodeRef {
            node_id: node.node_id.clone(),
            role: node.role.clone(),
            instance_id: instance_id.clone(),
        };
        Call {
            node: crate::hook::NodeContext {
                operation: self.operation,
                operation_id: self.op_id.clone(),
                cluster_id: self.cluster.id.clone(),
                node_id: node.node_id.clone(),
                instance_id,
                role: node.role.clone(),
                attempt,
                deadline_unix_ms: 0,
            },
            view: ClusterView::with_node(self.snapshot.clone(), &self.cluster.id, node_ref),
            mounts: self.engine.provider.mounts(&self.cluster, node),
            limits: Limits {
                timeout: Duration::from_secs(u64::from(timeout_secs)),
                ..Limits::default()
            },
        }
    }

    fn timeout(&self, role: &str, service: &str) -> u32 {
        self.cluster
            .spec
            .role(role)
            .and_then(|r| r.service(service))
            .map(|s| s.timeout_secs())
            .unwrap_or(DEFAULT_SERVICE_TIMEOUT)
    }

    fn order(&self, role: &str, service: &str) -> u32 {
        self.cluster
            .spec
            .role(role)
            .and_then(|r| r.service(service))
            .map(|s| s.order)
            .unwrap_or(0)
    }

    /// The event of an invocation about to start.
    fn event(&self, seq: u64, node: &Node, service: &str, attempt: u32) -> Event {
        Event {
            op: self.op_id.clone(),
            seq,
            step: self.step,
            service: service.to_string(),
            role: node.role.clone(),
            order: self.order(&node.role, service),
            node_id: node.node_id.clone(),
            instance_id: node.instance_id.clone().unwrap_or_default(),
            attempt,
            started_at: now(),
            ended_at: None,
            outcome: InvocationOutcome::Running,
            code: None,
            message: None,
            log: Vec::new(),
            changed: Vec::new(),
        }
    }

    /// Stores the end of an invocation and tells the observer.
    async fn ended<T>(&self, mut event: Event, outcome: &Outcome<T>) -> Result<Event, EngineError> {
        event.ended_at = Some(now());
        let (kind, code, message) = match &outcome.result {
            Ok(_) => (InvocationOutcome::Ok, None, None),
            Err(failure) => describe(failure),
        };
        event.outcome = kind;
        event.code = code;
        event.message = message;
        let report = &outcome.report;
        let lines: Vec<String> = report
            .logs
            .iter()
            .map(|l| format!("{} {}", l.level, l.message))
            .chain(report.stdout.text().lines().map(|l| format!("stdout {l}")))
            .chain(report.stderr.text().lines().map(|l| format!("stderr {l}")))
            .collect();
        event.log = lines[lines.len().saturating_sub(EVENT_LOG_LINES)..]
            .iter()
            .map(|l| clip(l))
            .collect();
        event.message = event.message.map(|m| clip(&m));
        self.engine.db.put_events(vec![event.clone()]).await?;
        self.engine.observer.invocation_ended(&event);
        Ok(event)
    }

    /// Stores an invocation that did not run.
    async fn skipped(&self, seq: u64, node: &Node, service: &str, why: &str) -> Result<Event, EngineError> {
        let mut event = self.event(seq, node, service, 1);
        event.outcome = InvocationOutcome::Skipped;
        event.ended_at = Some(now());
        event.message = Some(why.to_string());
        self.engine.db.put_events(vec![event.clone()]).await?;
        self.engine.observer.invocation_ended(&event);
        Ok(event)
    }
}

/// A failure as an event's outcome, code and message.
fn describe(failure: &Failure) -> (InvocationOutcome, Option<u32>, Option<String>) {
    let outcome = match failure {
        Failure::HookError { .. } | Failure::NotImplemented { .. } | Failure::Sandbox { .. } => {
            InvocationOutcome::Failed
        }
        Failure::Trap { .. } => InvocationOutcome::Trap,
        Failure::Timeout { .. } => InvocationOutcome::Timeout,
        Failure::MemoryLimit(_) | Failure::OutputLimit(_) | Failure::OutOfFuel { .. } => InvocationOutcome::Limit,
    };
    let code = match failure {
        Failure::HookError { code, .. } => Some(*code),
        _ => None,
    };
    let message = match failure {
        Failure::HookError { message, .. } => message.clone(),
        other => other.to_string(),
    };
    (outcome, code, Some(message))
}

/// Runs `service` on `nodes`: roles in ascending `order`, equal orders and
/// all targeted nodes of a role at once; a group starts when the previous
/// one has ended. `nodes_to_execute_on` keeps the role's first N nodes (by sid).
pub(super) async fn run_service(
    engine: &Engine,
    op: &Operation,
    step: usize,
    cluster: &Cluster,
    service: &str,
    nodes: &[String],
    on_failure: OnFailure,
) -> Result<StepResult, EngineError> {
    let ctx = StepCtx::new(engine, op, step, cluster).await?;
    let past = Past::load(engine, op, step).await?;
    let wit_service =
        parse_service(service).map_err(|e| EngineError::State(format!("the plan names a bad service: {e}")))?;

    // Group the targeted nodes by order; keep each role's first N nodes.
    let mut groups: BTreeMap<u32, Vec<&Node>> = BTreeMap::new();
    let mut by_role: BTreeMap<&str, Vec<&Node>> = BTreeMap::new();
    let listed = super::executor::listed(nodes);
    for node in cluster.nodes.iter().filter(|n| listed.contains(n.node_id.as_str())) {
        by_role.entry(node.role.as_str()).or_default().push(node);
    }
    for (role, mut members) in by_role {
        let spec = cluster.spec.role(role).and_then(|r| r.service(service));
        let Some(spec) = spec else { continue };
        members.sort_by_key(|n| n.sid);
        if let Some(n) = spec.nodes_to_execute_on {
            members.truncate(n as usize);
        }
        groups.entry(spec.order).or_default().extend(members);
    }

    let mut tolerated = Vec::new();
    for (_, group) in groups {
        // Failures of an earlier run of this step (before a crash) still count.
        let earlier: Vec<Event> = group
            .iter()
            .filter_map(|n| past.get(&n.node_id, service).and_then(|t| t.failure.clone()))
            .collect();
        let todo: Vec<&Node> = group.into_iter().filter(|n| !past.done(&n.node_id, service)).collect();
        if todo.is_empty() && earlier.is_empty() {
            continue;
        }
        let first_seq = engine.db.next_seqs(&op.id, todo.len() as u64).await?;
        let mut running = Vec::new();
        let mut skipped = Vec::new();
        for (i, node) in todo.iter().enumerate() {
            let seq = first_seq + i as u64;
            if node.instance_id.is_none() || !engine.provider.instance_exists(cluster, node) {
                skipped.push((seq, *node));
                continue;
            }
            running.push((
                ctx.event(seq, node, service, past.next_attempt(&node.node_id, service)),
                (*node).clone(),
            ));
        }
        let mut not_run = Vec::new();
        for (seq, node) in skipped {
            not_run.push(
                ctx.skipped(seq, node, service, "the node has no running instance")
                    .await?,
            );
        }
        // Durable before the hooks start: a crash from here on shows them as cut off.
        engine
            .db
            .put_events(running.iter().map(|(e, _)| e.clone()).collect())
            .await?;
        engine.observer.invocations_started(running.len());
        let calls = running.into_iter().map(|(event, node)| {
            let (ctx, wit_service, service) = (ctx.clone(), wit_service.clone(), service.to_string());
            async move {
                let call = ctx.call(&node, ctx.timeout(&node.role, &service), event.attempt);
                let request = Request {
                    service: wit_service,
                    params: service_params(&ctx.cluster, &node.role, &service),
                    pre_check: false,
                };
                let outcome = ctx.engine.runtime.run(&ctx.plugins[&node.role], &call, &request).await;
                ctx.ended(event, &outcome).await
            }
        });
        let ended = spawn_all(calls).await?;
        let mut failed: Vec<&Event> = ended.iter().filter(|e| e.outcome != InvocationOutcome::Ok).collect();
        // A guard that could not run did not say yes.
        if matches!(on_failure, OnFailure::Guard { .. }) {
            failed.extend(not_run.iter());
        }
        failed.extend(
            earlier
                .iter()
                .filter(|e| e.outcome != InvocationOutcome::Skipped || matches!(on_failure, OnFailure::Guard { .. })),
        );
        if failed.is_empty() {
            continue;
        }
        let summary = summarize(&failed);
        match on_failure {
            OnFailure::Fail => return Ok(StepResult::Failed(summary)),
            OnFailure::Continue => tolerated.push(summary),
            OnFailure::Guard { force } => {
                let forced = |e: &&Event| {
                    force
                        && cluster
                            .spec
                            .role(&e.role)
                            .and_then(|r| r.service(service))
                            .is_some_and(|s| s.force_allowed())
                };
                let refused: Vec<&Event> = failed.iter().copied().filter(|e| !forced(e)).collect();
                if !refused.is_empty() {
                    let hint = if force {
                        " (its role does not allow forcing)"
                    } else {
                        "; force it with --force"
                    };
                    return Ok(StepResult::Aborted(format!(
                        "{service} refused: {}{hint}",
                        summarize(&refused)
                    )));
                }
                tolerated.push(format!("forced past: {summary}"));
            }
        }
    }
    Ok(if tolerated.is_empty() {
        StepResult::Ok
    } else {
        StepResult::Tolerated(tolerated.join("; "))
    })
}

/// The spec's `service_params` of a role's service, as JSON text.
fn service_params(cluster: &Cluster, role: &str, service: &str) -> String {
    cluster
        .spec
        .role(role)
        .and_then(|r| r.service(service))
        .and_then(|s| s.service_params.as_ref())
        .map(|p| serde_json::Value::Object(p.clone()).to_string())
        .unwrap_or_else(|| "{}".into())
}

/// Renders every node's config, writes the files that changed, and runs the
/// node's `reload` service (if its role has one) where something changed.
pub(super) async fn render_config(
    engine: &Engine,
    op: &Operation,
    step: usize,
    cluster: &Cluster,
    nodes: &[String],
) -> Result<StepResult, EngineError> {
    let ctx = StepCtx::new(engine, op, step, cluster).await?;
    let past = Past::load(engine, op, step).await?;
    let listed: std::collections::HashSet<&str> = nodes.iter().map(String::as_str).collect();
    let targets: Vec<&Node> = cluster
        .nodes
        .iter()
        .filter(|n| listed.contains(n.node_id.as_str()))
        .collect();
    let first_seq = engine.db.next_seqs(&op.id, 2 * targets.len() as u64).await?;
    engine.observer.invocations_started(targets.len());
    let past = Arc::new(past);
    let work = targets.iter().enumerate().map(|(i, node)| {
        let (ctx, past, node) = (ctx.clone(), past.clone(), (*node).clone());
        async move {
            let (render_seq, reload_seq) = (first_seq + 2 * i as u64, first_seq + 2 * i as u64 + 1);
            let has_reload = ctx
                .cluster
                .spec
                .role(&node.role)
                .is_some_and(|r| r.service("reload").is_some());
            let earlier = past.get(&node.node_id, "render");
            let changed = match earlier {
                // It finished in an earlier run: what it changed then.
                Some(t) if t.ended => t.changed.clone(),
                _ => {
                    // A render cut off may have written its files already: then
                    // nothing looks changed now, yet the reload never ran.
                    let cut_off = earlier.is_some_and(|t| t.cut_off);
                    let attempt = past.next_attempt(&node.node_id, "render");
                    match render_one(&ctx, &node, render_seq, attempt, cut_off).await? {
                        Some(changed) => changed,
                        None => return Ok(false),
                    }
                }
            };
            if changed.is_empty() || !has_reload || past.done(&node.node_id, "reload") {
                return Ok(true);
            }
            let attempt = past.next_attempt(&node.node_id, "reload");
            let event = ctx.event(reload_seq, &node, "reload", attempt);
            ctx.engine.db.put_events(vec![event.clone()]).await?;
            let call = ctx.call(&node, ctx.timeout(&node.role, "reload"), attempt);
            let request = Request {
                service: crate::hook::Service::Reload,
                params: serde_json::json!({ "changed": changed }).to_string(),
                pre_check: false,
            };
            let outcome = ctx.engine.runtime.run(&ctx.plugins[&node.role], &call, &request).await;
            Ok(ctx.ended(event, &outcome).await?.outcome == InvocationOutcome::Ok)
        }
    });
    let results = spawn_all(work).await?;
    let failed = results.iter().filter(|ok| !**ok).count();
    Ok(if failed == 0 {
        StepResult::Ok
    } else {
        StepResult::Failed(format!(
            "config rendering or reload failed on {failed} node(s); see `hookhost op events {}`",
            op.id
        ))
    })
}

/// Renders one node's config and writes what changed; `None` when it failed.
async fn render_one(
    ctx: &StepCtx,
    node: &Node,
    seq: u64,
    attempt: u32,
    assume_changed: bool,
) -> Result<Option<Vec<String>>, EngineError> {
    let mut event = ctx.event(seq, node, "render", attempt);
    event.order = 0;
    ctx.engine.db.put_events(vec![event.clone()]).await?;
    let call = ctx.call(node, ctx.timeout(&node.role, "reload"), attempt);
    let outcome = ctx.engine.runtime.render(&ctx.plugins[&node.role], &call).await;
    let written = match outcome.result {
        Ok(ref files) => {
            let all: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
            let (mounts, files) = (call.mounts.clone(), files.clone());
            let written = tokio::task::spawn_blocking(move || crate::config::write_changed(&mounts, &files))
                .await
                .map_err(|e| EngineError::Io(e.to_string()))?;
            written.map(|changed| if assume_changed { all } else { changed })
        }
        Err(_) => Ok(Vec::new()),
    };
    let outcome = match written {
        Ok(changed) => {
            event.changed = changed;
            outcome
        }
        Err(e) => Outcome {
            result: Err(Failure::Sandbox { message: e.to_string() }),
            ..outcome
        },
    };
    let ok = outcome.result.is_ok();
    let event = ctx.ended(event, &outcome).await?;
    Ok(ok.then_some(event.changed))
}

/// Runs each future as its own task (hooks run on every core; each waits
/// for a runtime slot) and returns their results in order.
async fn spawn_all<T: Send + 'static>(
    futures: impl IntoIterator<Item = impl std::future::Future<Output = Result<T, EngineError>> + Send + 'static>,
) -> Result<Vec<T>, EngineError> {
    let mut set = tokio::task::JoinSet::new();
    for (i, fut) in futures.into_iter().enumerate() {
        set.spawn(async move { (i, fut.await) });
    }
    let mut out = Vec::with_capacity(set.len());
    while let Some(joined) = set.join_next().await {
        let (i, result) = joined.map_err(|e| EngineError::State(format!("an invocation task failed: {e}")))?;
        out.push((i, result?));
    }
    out.sort_by_key(|(i, _)| *i);
    Ok(out.into_iter().map(|(_, v)| v).collect())
}

/// A short account of failed invocations.
fn summarize(failed: &[&Event]) -> String {
    let first = failed[0];
    let what = match (first.code, &first.message) {
        (Some(code), Some(m)) => format!("error {code}: {m}"),
        (_, Some(m)) => m.clone(),
        _ => format!("{:?}", first.outcome),
    };
    let more = if failed.len() > 1 {
        format!(" (and {} more node(s))", failed.len() - 1)
    } else {
        String::new()
    };
    format!(
        "{} on node {} ({}) {what}{more}",
        first.service, first.node_id, first.role
    )
}
