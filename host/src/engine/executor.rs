//! The run loop: one step after another, each journaled durably when it
//! starts and when it ends, so that a resumed operation starts at the first
//! step that has not ended.

use super::lock::OpLock;
use super::plan::Action;
use super::steps::{self, StepResult};
use super::{Engine, EngineError};
use crate::metadata::{MetadataStore, Write, cluster_root, cluster_tree};
use crate::state::{
    CLUSTERS, Cluster, ClusterStatus, DbError, OPERATIONS, Operation, OperationKind, OperationStatus, STEPS,
    StepOutcome, StepRecord, get_json, new_id, now, put_json, release_ips, step_key,
};

/// The node ids of a step, for lookups.
pub(super) fn listed(nodes: &[String]) -> std::collections::HashSet<&str> {
    nodes.iter().map(String::as_str).collect()
}

impl Engine {
    /// Runs (or resumes) an operation to its end, in this process, holding its lock.
    pub async fn run(&self, op_id: &str) -> Result<Operation, EngineError> {
        self.operation(op_id)?;
        let _lock = OpLock::acquire(self.db.dir(), op_id).map_err(EngineError::State)?;
        // Read again under the lock: another process may have just ended it.
        let op = self.operation(op_id)?;
        if op.status != OperationStatus::Running {
            return Err(EngineError::State(format!(
                "operation {op_id} has already ended: it {}",
                op.status
            )));
        }
        let journal = self.db.steps(op_id)?;
        // A step that failed or was refused ends the operation, even when the
        // process died before it could say so.
        if let Some(step) = journal
            .iter()
            .find(|s| matches!(s.outcome, Some(StepOutcome::Failed | StepOutcome::Aborted)))
        {
            let status = if step.outcome == Some(StepOutcome::Aborted) {
                OperationStatus::Aborted
            } else {
                OperationStatus::Failed
            };
            return finish(self, op, status, step.message.clone(), None).await;
        }
        let ended = |index: usize| journal.iter().any(|s| s.index == index && s.outcome.is_some());
        for index in 0..op.plan.steps.len() {
            if ended(index) {
                continue;
            }
            let op = self.operation(op_id)?;
            if op.cancel_requested {
                let message = format!("cancelled before step {} of {}", index + 1, op.plan.steps.len());
                return finish(self, op, OperationStatus::Cancelled, Some(message), None).await;
            }
            let started_at = now();
            let start = StepRecord {
                index,
                started_at: started_at.clone(),
                ended_at: None,
                outcome: None,
                message: None,
            };
            self.db.put_step(op_id, start).await?;
            self.observer.step_started(&op, index);
            let (outcome, message) = match self.execute(&op, index).await {
                Ok(StepResult::Ok) => (StepOutcome::Ok, None),
                Ok(StepResult::Tolerated(m)) => (StepOutcome::Tolerated, Some(m)),
                Ok(StepResult::Failed(m)) => (StepOutcome::Failed, Some(m)),
                Ok(StepResult::Aborted(m)) => (StepOutcome::Aborted, Some(m)),
                Err(e) => (StepOutcome::Failed, Some(e.to_string())),
            };
            let end = StepRecord {
                index,
                started_at,
                ended_at: Some(now()),
                outcome: Some(outcome),
                message: message.clone(),
            };
            self.observer.step_ended(&op, index, outcome);
            match outcome {
                StepOutcome::Ok | StepOutcome::Tolerated => self.db.put_step(op_id, end).await?,
                StepOutcome::Failed => {
                    let why = format!(
                        "step {} ({}) failed: {}",
                        index + 1,
                        op.plan.steps[index].action,
                        message.unwrap_or_default()
                    );
                    return finish(self, op, OperationStatus::Failed, Some(why), Some(end)).await;
                }
                StepOutcome::Aborted => return finish(self, op, OperationStatus::Aborted, message, Some(end)).await,
            }
        }
        let op = self.operation(op_id)?;
        finish(self, op, OperationStatus::Succeeded, None, None).await
    }

    /// Runs one step of the plan.
    async fn execute(&self, op: &Operation, index: usize) -> Result<StepResult, EngineError> {
        let mut cluster = self.cluster(&op.cluster_id)?;
        match &op.plan.steps[index].action {
            Action::RunService {
                service,
                nodes,
                on_failure,
            } => steps::run_service(self, op, index, &cluster, service, nodes, *on_failure).await,
            Action::RenderConfig { nodes } => steps::render_config(self, op, index, &cluster, nodes).await,
            Action::RegisterMetadata => {
                self.tree
                    .apply(&cluster_tree(&cluster))
                    .await
                    .map_err(|e| EngineError::State(e.to_string()))?;
                Ok(StepResult::Ok)
            }
            Action::DeregisterMetadata => {
                let writes = [Write::DeleteTree {
                    path: cluster_root(&cluster.id),
                }];
                self.tree
                    .apply(&writes)
                    .await
                    .map_err(|e| EngineError::State(e.to_string()))?;
                Ok(StepResult::Ok)
            }
            Action::SetStatus { status } => {
                cluster.status = *status;
                self.db.put_cluster(cluster).await?;
                Ok(StepResult::Ok)
            }
            Action::CreateResources { nodes } => {
                self.on_nodes(&cluster, nodes, |p, c, n| p.create_node(c, n)).await?;
                Ok(StepResult::Ok)
            }
            Action::StopInstances { nodes } => {
                self.on_nodes(&cluster, nodes, |p, c, n| p.stop_instance(c, n)).await?;
                let listed = listed(nodes);
                for node in cluster.nodes.iter_mut().filter(|n| listed.contains(n.node_id.as_str())) {
                    node.instance_id = None;
                }
                self.db.put_cluster(cluster).await?;
                Ok(StepResult::Ok)
            }
            Action::StartInstances { nodes } => {
                let listed = listed(nodes);
                for node in cluster.nodes.iter_mut().filter(|n| listed.contains(n.node_id.as_str())) {
                    node.instance_id = Some(new_id("i"));
                }
                self.on_nodes(&cluster, nodes, |p, c, n| p.start_instance(c, n)).await?;
                self.db.put_cluster(cluster).await?;
                Ok(StepResult::Ok)
            }
            Action::DeleteResources { nodes } => {
                self.on_nodes(&cluster, nodes, |p, c, n| p.delete_node(c, n)).await?;
                let listed = listed(nodes);
                let owned: Vec<(String, String)> = cluster
                    .nodes
                    .iter()
                    .filter(|n| listed.contains(n.node_id.as_str()))
                    .map(|n| (n.ip.clone(), format!("{}/{}", cluster.id, n.node_id)))
                    .collect();
                let vxnet = cluster.spec.vxnet.clone();
                self.db.write(move |txn| release_ips(txn, &vxnet, &owned)).await?;
                Ok(StepResult::Ok)
            }
        }
    }

    /// Runs a provider action on the listed nodes, off the async threads.
    async fn on_nodes(
        &self,
        cluster: &Cluster,
        nodes: &[String],
        action: fn(&dyn crate::provider::Provider, &Cluster, &crate::state::Node) -> std::io::Result<()>,
    ) -> Result<(), EngineError> {
        let provider = self.provider.clone();
        let cluster = cluster.clone();
        let listed: std::collections::HashSet<String> = nodes.iter().cloned().collect();
        tokio::task::spawn_blocking(move || {
            cluster
                .nodes
                .iter()
                .filter(|n| listed.contains(&n.node_id))
                .try_for_each(|node| {
                    action(provider.as_ref(), &cluster, node).map_err(|e| format!("node {}: {e}", node.node_id))
                })
        })
        .await
        .map_err(|e| EngineError::Io(e.to_string()))?
        .map_err(EngineError::Io)
    }
}

/// Ends an operation and leaves the cluster in the state that follows:
/// as planned on success, as it was before on an abort, failed otherwise.
pub(super) async fn finish(
    engine: &Engine,
    op: Operation,
    status: OperationStatus,
    error: Option<String>,
    last_step: Option<StepRecord>,
) -> Result<Operation, EngineError> {
    let any_step_ran = last_step.is_some() || !engine.db.steps(&op.id)?.is_empty();
    let finished = engine
        .db
        .write(move |txn| {
            let mut cluster: Cluster = get_json(txn, CLUSTERS, &op.cluster_id)?
                .ok_or_else(|| DbError::Conflict(format!("no cluster {}", op.cluster_id)))?;
            (cluster.status, cluster.failed_during) = match status {
                OperationStatus::Succeeded => (cluster.status, None),
                OperationStatus::Aborted => (op.prior_status, cluster.failed_during),
                // Cancelled before it began: nothing changed (a create never got a cluster going).
                OperationStatus::Cancelled if !any_step_ran && op.kind != OperationKind::CreateCluster => {
                    (op.prior_status, cluster.failed_during)
                }
                _ => (ClusterStatus::Failed, Some(op.kind)),
            };
            let mut op = op.clone();
            op.status = status;
            op.error = error.clone();
            op.ended_at = Some(now());
            // The step's end, the operation's end and the cluster's state: one transaction.
            if let Some(step) = &last_step {
                put_json(txn, STEPS, &step_key(&op.id, step.index), step)?;
            }
            put_json(txn, CLUSTERS, &cluster.id, &cluster)?;
            put_json(txn, OPERATIONS, &op.id, &op)?;
            Ok(op)
        })
        .await?;
    Ok(finished)
}
