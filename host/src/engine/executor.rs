//! The run loop: one step after another, each journaled durably when it
//! starts and when it ends, so that a resumed operation starts at the first
//! step that has not ended.

use super::lock::OpLock;
use super::plan::Action;
use super::steps::{self, StepResult};
use super::{Engine, EngineError};
use crate::metadata::{MetadataStore, Write, cluster_root, cluster_tree};
use crate::state::{
    ClusterStatus, Operation, OperationKind, OperationStatus, StepOutcome, StepRecord, new_id, now, release_ips,
};

impl Engine {
    /// Runs (or resumes) an operation to its end, in this process.
    pub async fn run(&self, op_id: &str) -> Result<Operation, EngineError> {
        let _lock = OpLock::acquire(self.db.dir(), op_id).map_err(EngineError::State)?;
        let mut op = self.operation(op_id)?;
        if op.status != OperationStatus::Running {
            return Err(EngineError::State(format!(
                "operation {op_id} has already ended: it {}",
                op.status
            )));
        }
        let journal = self.db.steps(op_id)?;
        let done = |index: usize| journal.iter().any(|s| s.index == index && s.outcome.is_some());
        for index in 0..op.plan.steps.len() {
            if done(index) {
                continue;
            }
            op = self.operation(op_id)?;
            if op.cancel_requested {
                let message = format!("cancelled before step {} of {}", index + 1, op.plan.steps.len());
                return finish(self, op, OperationStatus::Cancelled, Some(message)).await;
            }
            self.db
                .put_step(
                    op_id,
                    StepRecord {
                        index,
                        started_at: now(),
                        ended_at: None,
                        outcome: None,
                        message: None,
                    },
                )
                .await?;
            self.observer.step_started(&op, index);
            let result = self.execute(&op, index).await;
            let (outcome, message) = match &result {
                Ok(StepResult::Ok) => (StepOutcome::Ok, None),
                Ok(StepResult::Tolerated(m)) => (StepOutcome::Tolerated, Some(m.clone())),
                Ok(StepResult::Failed(m)) => (StepOutcome::Failed, Some(m.clone())),
                Ok(StepResult::Aborted(m)) => (StepOutcome::Aborted, Some(m.clone())),
                Err(e) => (StepOutcome::Failed, Some(e.to_string())),
            };
            let started_at = self
                .db
                .steps(op_id)?
                .into_iter()
                .find(|s| s.index == index)
                .map(|s| s.started_at);
            self.db
                .put_step(
                    op_id,
                    StepRecord {
                        index,
                        started_at: started_at.unwrap_or_else(now),
                        ended_at: Some(now()),
                        outcome: Some(outcome),
                        message: message.clone(),
                    },
                )
                .await?;
            self.observer.step_ended(&op, index, outcome);
            let failed = |why: String| format!("step {} ({}) failed: {why}", index + 1, op.plan.steps[index].action);
            match outcome {
                StepOutcome::Ok | StepOutcome::Tolerated => {}
                StepOutcome::Failed => {
                    let message = failed(message.unwrap_or_default());
                    return finish(self, op, OperationStatus::Failed, Some(message)).await;
                }
                StepOutcome::Aborted => {
                    return finish(self, op, OperationStatus::Aborted, message).await;
                }
            }
        }
        let op = self.operation(op_id)?;
        finish(self, op, OperationStatus::Succeeded, None).await
    }

    /// Runs one step of the plan.
    async fn execute(&self, op: &Operation, index: usize) -> Result<StepResult, EngineError> {
        let mut cluster = self.cluster(&op.cluster_id)?;
        let action = &op.plan.steps[index].action;
        let listed = |nodes: &[String]| nodes.iter().cloned().collect::<std::collections::HashSet<String>>();
        match action {
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
            Action::CreateResources { nodes } | Action::DeleteResources { nodes } | Action::StopInstances { nodes } => {
                let nodes = listed(nodes);
                let provider = self.provider.clone();
                let kind = action.clone();
                let targets: Vec<_> = cluster
                    .nodes
                    .iter()
                    .filter(|n| nodes.contains(&n.node_id))
                    .cloned()
                    .collect();
                let snapshot = cluster.clone();
                tokio::task::spawn_blocking(move || {
                    for node in &targets {
                        match kind {
                            Action::CreateResources { .. } => provider.create_node(&snapshot, node),
                            Action::DeleteResources { .. } => provider.delete_node(&snapshot, node),
                            _ => provider.stop_instance(&snapshot, node),
                        }
                        .map_err(|e| format!("node {}: {e}", node.node_id))?;
                    }
                    Ok::<(), String>(())
                })
                .await
                .map_err(|e| EngineError::Io(e.to_string()))?
                .map_err(EngineError::Io)?;
                match action {
                    Action::StopInstances { .. } => {
                        for node in cluster.nodes.iter_mut().filter(|n| nodes.contains(&n.node_id)) {
                            node.instance_id = None;
                        }
                        self.db.put_cluster(cluster).await?;
                    }
                    Action::DeleteResources { .. } => {
                        let (vxnet, ips): (String, Vec<String>) = (
                            cluster.spec.vxnet.clone(),
                            cluster
                                .nodes
                                .iter()
                                .filter(|n| nodes.contains(&n.node_id))
                                .map(|n| n.ip.clone())
                                .collect(),
                        );
                        self.db.write(move |txn| release_ips(txn, &vxnet, &ips)).await?;
                    }
                    _ => {}
                }
                Ok(StepResult::Ok)
            }
            Action::StartInstances { nodes } => {
                let nodes = listed(nodes);
                for node in cluster.nodes.iter_mut().filter(|n| nodes.contains(&n.node_id)) {
                    node.instance_id = Some(new_id("i"));
                }
                let provider = self.provider.clone();
                let started = cluster.clone();
                let targets: Vec<_> = started
                    .nodes
                    .iter()
                    .filter(|n| nodes.contains(&n.node_id))
                    .cloned()
                    .collect();
                tokio::task::spawn_blocking(move || {
                    targets.iter().try_for_each(|node| {
                        provider
                            .start_instance(&started, node)
                            .map_err(|e| format!("node {}: {e}", node.node_id))
                    })
                })
                .await
                .map_err(|e| EngineError::Io(e.to_string()))?
                .map_err(EngineError::Io)?;
                self.db.put_cluster(cluster).await?;
                Ok(StepResult::Ok)
            }
        }
    }
}

/// Ends an operation and leaves the cluster in the state that follows:
/// as planned on success, as it was before on an abort, failed otherwise.
pub(super) async fn finish(
    engine: &Engine,
    mut op: Operation,
    status: OperationStatus,
    error: Option<String>,
) -> Result<Operation, EngineError> {
    let mut cluster = engine.cluster(&op.cluster_id)?;
    let any_step_ran = !engine.db.steps(&op.id)?.is_empty();
    cluster.status = match status {
        OperationStatus::Succeeded => cluster.status,
        OperationStatus::Aborted => op.prior_status,
        // Cancelled before it began: nothing changed (a create never got a cluster going).
        OperationStatus::Cancelled if !any_step_ran && op.kind != OperationKind::CreateCluster => op.prior_status,
        _ => ClusterStatus::Failed,
    };
    engine.db.put_cluster(cluster).await?;
    op.status = status;
    op.error = error;
    op.ended_at = Some(now());
    engine.db.put_operation(op.clone()).await?;
    Ok(op)
}
