//! What a step's hook invocations share (they run as tasks of their own):
//! the operation, one metadata snapshot of the cluster, the nodes'
//! components; and how one invocation is set up (its call and context) and
//! recorded (an event stored as `running` before it starts and with its
//! outcome after, so a resume knows what completed, what was cut off and
//! what never ran).

use super::runner::Component;
use super::step::StepRun;
use super::versions::Versions;
use super::{Engine, EngineError};
use crate::cluster::{Cluster, Node, now};
use crate::hook::{Operation as WitOperation, context_of};
use crate::metadata::{ClusterView, NodeRef, Snapshot, cluster_root};
use crate::runtime::{Call, Failure, Limits, Outcome};
use crate::spec::DEFAULT_SERVICE_TIMEOUT;
use crate::store::{Event, InvocationOutcome};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Log lines kept in an event (the last ones).
const EVENT_LOG_LINES: usize = 20;
/// Characters kept of one log line or message in an event.
const EVENT_LINE_CHARS: usize = 1000;

fn clip(line: &str) -> String {
    crate::text::clip(line, EVENT_LINE_CHARS)
}

/// The shared part of a step's invocations.
pub(super) struct Invocations {
    pub(super) engine: Engine,
    op_id: String,
    operation: WitOperation,
    step: usize,
    pub(super) cluster: Cluster,
    snapshot: Arc<Snapshot>,
    versions: Versions,
    components: HashMap<PathBuf, Arc<dyn Component>>,
}

impl Invocations {
    /// Takes the cluster's snapshot and loads the components `versions`
    /// gives `nodes`.
    pub(super) async fn new(
        run: &StepRun<'_>,
        nodes: &[&Node],
        versions: Versions,
    ) -> Result<Arc<Invocations>, EngineError> {
        let of = (run.op.id.as_str(), run.op.request.wit(), run.index);
        Invocations::load(run.engine, &run.cluster, of, nodes, versions).await
    }

    /// [`Invocations::new`] outside an operation's step: `of` names the
    /// operation id, operation and step the calls say they belong to.
    pub(super) async fn load(
        engine: &Engine,
        cluster: &Cluster,
        (op_id, operation, step): (&str, WitOperation, usize),
        nodes: &[&Node],
        versions: Versions,
    ) -> Result<Arc<Invocations>, EngineError> {
        let snapshot = engine.snapshot_of(&cluster_root(&cluster.id)).await?;
        let mut components = HashMap::new();
        for node in nodes {
            let Some(path) = versions.plugin(node) else { continue };
            if components.contains_key(path) {
                continue;
            }
            let component = engine.runner.load(path).await.map_err(|source| EngineError::Load {
                role: node.role.clone(),
                source,
            })?;
            components.insert(path.to_path_buf(), component);
        }
        Ok(Arc::new(Invocations {
            engine: engine.clone(),
            op_id: op_id.to_string(),
            operation,
            step,
            cluster: cluster.clone(),
            snapshot,
            versions,
            components,
        }))
    }

    /// The spec of a service a node's hooks run by, if its role defines it.
    pub(super) fn service(&self, node: &Node, service: &str) -> Option<&crate::spec::ServiceSpec> {
        self.versions.service(node, service)
    }

    /// The spec a node's hooks run by.
    pub(super) fn spec_of(&self, node: &Node) -> Option<&crate::spec::Spec> {
        self.versions.spec_of(node)
    }

    /// The operation.
    pub(super) fn op_id(&self) -> &str {
        &self.op_id
    }

    /// The component a node's hooks run.
    pub(super) fn component(&self, node: &Node) -> Option<Arc<dyn Component>> {
        self.versions
            .plugin(node)
            .and_then(|path| self.components.get(path))
            .cloned()
    }

    /// The call of `service` on `node`: its view, its context, its
    /// directories and the service's timeout.
    pub(super) fn call(&self, node: &Node, service: &str, attempt: u32) -> Call {
        let node_ref = NodeRef {
            node_id: node.node_id.clone(),
            role: node.role.clone(),
            instance_id: node.instance_id.clone().unwrap_or_default(),
        };
        let view = ClusterView::with_node(self.snapshot.clone(), &self.cluster.id, node_ref);
        let timeout = self
            .service(node, service)
            .map(|s| s.timeout_secs())
            .unwrap_or(DEFAULT_SERVICE_TIMEOUT);
        Call {
            node: context_of(&view, self.operation, &self.op_id, attempt),
            view,
            mounts: self.engine.provider.mounts(&self.cluster, node),
            limits: Limits {
                timeout: Duration::from_secs(u64::from(timeout)),
                ..Limits::default()
            },
        }
    }

    /// The event of an invocation about to start.
    pub(super) fn event(&self, seq: u64, node: &Node, service: &str, attempt: u32) -> Event {
        Event {
            op: self.op_id.clone(),
            seq,
            step: self.step,
            service: service.to_string(),
            role: node.role.clone(),
            order: self.service(node, service).map(|s| s.order).unwrap_or(0),
            node_id: node.node_id.clone(),
            instance_id: node.instance_id.clone().unwrap_or_default(),
            version: self.versions.version_of(node).to_string(),
            attempt,
            started_at: now(),
            ended_at: None,
            outcome: InvocationOutcome::Running,
            code: None,
            message: None,
            reply: None,
            log: Vec::new(),
            changed: Vec::new(),
        }
    }

    /// Stores the end of an invocation and tells the observer.
    pub(super) async fn ended<T>(&self, mut event: Event, outcome: &Outcome<T>) -> Result<Event, EngineError> {
        event.ended_at = Some(now());
        let (kind, code, message) = match &outcome.result {
            Ok(_) => (InvocationOutcome::Ok, None, None),
            Err(failure) => describe(failure),
        };
        event.outcome = kind;
        event.code = code;
        event.message = message.map(|m| clip(&m));
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
        self.engine.store.put_events(vec![event.clone()]).await?;
        self.engine.observer.invocation_ended(&event);
        Ok(event)
    }

    /// Stores an invocation that did not run.
    pub(super) async fn skipped(&self, seq: u64, node: &Node, service: &str, why: &str) -> Result<Event, EngineError> {
        let mut event = self.event(seq, node, service, 1);
        event.outcome = InvocationOutcome::Skipped;
        event.ended_at = Some(now());
        event.message = Some(why.to_string());
        self.engine.store.put_events(vec![event.clone()]).await?;
        self.engine.observer.invocation_ended(&event);
        Ok(event)
    }
}

/// A failure as an event's outcome, code and message.
pub(super) fn describe(failure: &Failure) -> (InvocationOutcome, Option<u32>, Option<String>) {
    let outcome = match failure {
        Failure::HookError { .. }
        | Failure::NotImplemented { .. }
        | Failure::Sandbox { .. }
        | Failure::BadRender { .. }
        | Failure::ConfigWrite { .. } => InvocationOutcome::Failed,
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

/// Invocations in flight at once in one step: enough to keep every hook
/// slot busy, few enough that a step of thousands of nodes does not flood the
/// scheduler's queue ahead of other operations' tasks (other tenants' in a server).
const MAX_IN_FLIGHT: usize = 128;

/// Runs each future as its own task (hooks run on every core; each waits
/// for a runtime slot), at most [`MAX_IN_FLIGHT`] at once, and returns their
/// results in order.
pub(super) async fn spawn_all<T: Send + 'static>(
    futures: impl IntoIterator<Item = impl std::future::Future<Output = Result<T, EngineError>> + Send + 'static>,
) -> Result<Vec<T>, EngineError> {
    let mut set = tokio::task::JoinSet::new();
    let mut out = Vec::new();
    // Made first: the iterator may borrow what must not be held across an await.
    let futures: Vec<_> = futures.into_iter().collect();
    let mut futures = futures.into_iter().enumerate();
    loop {
        while set.len() < MAX_IN_FLIGHT {
            let Some((i, fut)) = futures.next() else { break };
            set.spawn(async move { (i, fut.await) });
        }
        let Some(joined) = set.join_next().await else { break };
        let (i, result) = joined?;
        out.push((i, result?));
    }
    out.sort_by_key(|(i, _)| *i);
    Ok(out.into_iter().map(|(_, v)| v).collect())
}
