//! What the operation store keeps besides clusters: operations with their
//! request and plan, the step journal and the hook events.

use crate::cluster::ClusterStatus;
use crate::plan::Plan;
use crate::request::{OperationKind, OperationRequest, kebab_name};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// Where an operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OperationStatus {
    /// Running, or interrupted (no process holds its claim).
    Running,
    /// Every step of the main part succeeded.
    Succeeded,
    /// A step failed; the cluster is left as the failed step (and the
    /// recovery part, if any) left it.
    Failed,
    /// A guard or a pre-check refused: the cluster is as it was before.
    Aborted,
    /// Cancelled at a step boundary.
    Cancelled,
}

impl OperationStatus {
    /// As a verb after "it" (`it succeeded`, `it was cancelled`).
    pub fn past(self) -> &'static str {
        match self {
            OperationStatus::Running => "is running",
            OperationStatus::Succeeded => "succeeded",
            OperationStatus::Failed => "failed",
            OperationStatus::Aborted => "was aborted",
            OperationStatus::Cancelled => "was cancelled",
        }
    }
}

impl fmt::Display for OperationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&kebab_name(self))
    }
}

/// Why the recovery part runs: how the main part ended. Journaled before
/// the first recovery step, so that a resume goes on with the recovery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Recovery {
    /// How the main part ended (failed, aborted or cancelled).
    pub after: OperationStatus,
    /// Why.
    pub reason: String,
}

/// One operation on one cluster: what was asked, its plan and where it is.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Operation {
    /// Id (`op-xxxxxxxx`).
    pub id: String,
    /// What was asked.
    pub request: OperationRequest,
    /// The cluster.
    pub cluster_id: String,
    /// Where it is.
    pub status: OperationStatus,
    /// The steps.
    pub plan: Plan,
    /// The cluster's status before it began (restored when a guard aborts
    /// it); none when the operation made the cluster.
    pub prior_status: Option<ClusterStatus>,
    /// Why it failed, aborted or was cancelled.
    pub error: Option<String>,
    /// A cancel was asked for; the executor stops at the next step boundary.
    pub cancel_requested: bool,
    /// Set when the main part did not succeed and the recovery part runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<Recovery>,
    /// When it was created.
    pub created_at: String,
    /// When it ended.
    pub ended_at: Option<String>,
    /// The host it runs on, when the store is shared by many (etcd): its
    /// cluster's nodes are there, so it and the cluster's next operations run there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl Operation {
    /// What kind of operation it is.
    pub fn kind(&self) -> OperationKind {
        self.request.kind()
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StepOutcome {
    /// It did its work.
    Ok,
    /// Hooks failed but the step's policy is to go on (e.g. `stop` while deleting).
    Tolerated,
    /// It failed; the operation failed.
    Failed,
    /// A guard or pre-check refused; the operation was aborted.
    Aborted,
    /// The host stopped while it ran, and it never ran again: its operation
    /// was cancelled (or ended) before a resume could finish it.
    Interrupted,
}

/// One step in the journal: written when it starts and when it ends.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepRecord {
    /// Index in the plan (the main part, then the recovery part).
    pub index: usize,
    /// When it started (last start, after a resume).
    pub started_at: String,
    /// When it ended.
    pub ended_at: Option<String>,
    /// How it ended.
    pub outcome: Option<StepOutcome>,
    /// What went wrong, if anything.
    pub message: Option<String>,
    /// What it produced for later steps (its plan variable's value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
}

/// How one hook invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum InvocationOutcome {
    /// Still running (or the process died while it ran).
    Running,
    /// It succeeded.
    Ok,
    /// It returned an error (or could not be run).
    Failed,
    /// It ran past its timeout.
    Timeout,
    /// It trapped.
    Trap,
    /// It hit its memory, output or fuel limit.
    Limit,
    /// It was not run (its node has no running instance).
    Skipped,
    /// The host stopped while it ran; a resume runs it again.
    Interrupted,
}

/// One hook invocation of an operation.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    /// The operation.
    pub op: String,
    /// Order of the event within the operation.
    pub seq: u64,
    /// The plan step.
    pub step: usize,
    /// The service (`render` for config rendering).
    pub service: String,
    /// The node's role.
    pub role: String,
    /// The role's `order` for this service.
    pub order: u32,
    /// The node.
    pub node_id: String,
    /// The node's instance at the time.
    pub instance_id: String,
    /// The app version whose component ran it (empty for clusters made
    /// before versions were kept).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// 1 on the first try of this step on this node.
    pub attempt: u32,
    /// When it started.
    pub started_at: String,
    /// When it ended.
    pub ended_at: Option<String>,
    /// How it ended.
    pub outcome: InvocationOutcome,
    /// The hook's error code.
    pub code: Option<u32>,
    /// What went wrong.
    pub message: Option<String>,
    /// The hook's reply, for services whose reply a step uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// The last log lines (`level message`) and captured output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<String>,
    /// For `render`: the config files it changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
}
