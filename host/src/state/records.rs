//! What the store keeps besides the metadata tree: clusters and their nodes,
//! operations with their plans, the step journal and the hook events.

use crate::engine::plan::Plan;
use crate::spec::Spec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// The current time as RFC 3339 with microseconds (`2026-11-26T10:37:50.123456Z`).
pub fn now() -> String {
    humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string()
}

/// Where a cluster is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClusterStatus {
    /// Being created.
    Creating,
    /// Running.
    Active,
    /// Being stopped.
    Stopping,
    /// Stopped: volumes kept, no instances.
    Stopped,
    /// Being started.
    Starting,
    /// Being deleted.
    Deleting,
    /// Gone; the record stays for history.
    Deleted,
    /// An operation failed half-way; delete it, or start/stop it again.
    Failed,
}

impl fmt::Display for ClusterStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::state::kebab_name(self))
    }
}

/// One node of a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Stable id (`cln-xxxxxxxx`).
    pub node_id: String,
    /// The node's role.
    pub role: String,
    /// Current instance (`i-xxxxxxxx`), new at every start; none while stopped.
    pub instance_id: Option<String>,
    /// Private IP address.
    pub ip: String,
    /// MAC address.
    pub mac: String,
    /// Server id within the role, from 1.
    pub sid: u32,
    /// Group id (a node and its replicas share it).
    pub gid: u32,
    /// Globally unique server id (9 digits).
    pub gsid: u64,
    /// CPU cores.
    pub cpu: u32,
    /// Memory, MiB.
    pub memory: u64,
    /// Data volume, GiB.
    pub volume_size: u64,
    /// GPUs.
    #[serde(default)]
    pub gpu: u32,
    /// Instance class.
    #[serde(default)]
    pub instance_class: u32,
    /// Volume class.
    #[serde(default)]
    pub volume_class: u32,
}

/// A cluster, as the engine keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cluster {
    /// Id (`cl-xxxxxxxx`).
    pub id: String,
    /// Name (from `--name`, else the spec's).
    pub name: String,
    /// The spec it was created from, plugins pointing at its images.
    pub spec: Spec,
    /// The spec file it came from.
    pub spec_file: PathBuf,
    /// Where it is in its life.
    pub status: ClusterStatus,
    /// Its nodes, in creation order.
    pub nodes: Vec<Node>,
    /// The zone.
    pub zone: String,
    /// When it was created.
    pub created_at: String,
    /// The operation running on it, if any.
    pub operation: Option<String>,
    /// A globally unique id (`/cluster/global_uuid`).
    #[serde(default)]
    pub global_uuid: String,
    /// When `status` is failed: the kind of operation that failed.
    #[serde(default)]
    pub failed_during: Option<OperationKind>,
}

impl Cluster {
    /// A new cluster record from a spec: fresh ids, each role's nodes with
    /// `sid` (and `gid`) from 1, a random 9-digit `gsid`, and an instance id.
    /// IPs are allocated when the operation begins.
    pub fn new(spec: Spec, spec_file: PathBuf, name: Option<String>) -> Cluster {
        let mut nodes = Vec::new();
        for role in &spec.nodes {
            for sid in 1..=role.count {
                nodes.push(Node {
                    node_id: super::new_id("cln"),
                    role: role.role.clone(),
                    instance_id: Some(super::new_id("i")),
                    ip: String::new(),
                    mac: String::new(),
                    sid,
                    gid: sid,
                    gsid: fastrand::u64(100_000_000..1_000_000_000),
                    cpu: role.cpu,
                    memory: role.memory,
                    volume_size: role.volume.as_ref().map(|v| v.size).unwrap_or(0),
                    gpu: role.gpu,
                    instance_class: role.instance_class.unwrap_or(0),
                    volume_class: role.volume.as_ref().and_then(|v| v.class).unwrap_or(0),
                });
            }
        }
        Cluster {
            id: super::new_id("cl"),
            name: name.unwrap_or_else(|| spec.name.clone()),
            spec,
            spec_file,
            status: ClusterStatus::Creating,
            nodes,
            zone: "local".into(),
            created_at: now(),
            operation: None,
            global_uuid: format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)),
            failed_during: None,
        }
    }

    /// The node with `node_id`.
    pub fn node(&self, node_id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.node_id == node_id)
    }

    /// Every node id, in creation order.
    pub fn node_ids(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.node_id.clone()).collect()
    }

    /// Node counts by role.
    pub fn role_counts(&self) -> BTreeMap<&str, usize> {
        let mut counts = BTreeMap::new();
        for node in &self.nodes {
            *counts.entry(node.role.as_str()).or_default() += 1;
        }
        counts
    }
}

/// The kinds of operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OperationKind {
    /// Create a cluster.
    CreateCluster,
    /// Delete a cluster.
    DeleteCluster,
    /// Stop a cluster.
    StopCluster,
    /// Start (resume) a stopped cluster.
    StartCluster,
}

impl fmt::Display for OperationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::state::kebab_name(self))
    }
}

impl OperationKind {
    /// The WIT operation hooks are told about.
    pub fn wit(self) -> crate::hook::Operation {
        use crate::hook::Operation as W;
        match self {
            OperationKind::CreateCluster => W::CreateCluster,
            OperationKind::DeleteCluster => W::DeleteCluster,
            OperationKind::StopCluster => W::StopCluster,
            OperationKind::StartCluster => W::StartCluster,
        }
    }
}

/// Where an operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OperationStatus {
    /// Running, or interrupted (no process holds its lock).
    Running,
    /// Every step succeeded.
    Succeeded,
    /// A step failed; the cluster is left as the failed step left it.
    Failed,
    /// A guard refused (e.g. `destroy`): the cluster is as it was before.
    Aborted,
    /// Cancelled at a step boundary.
    Cancelled,
}

impl fmt::Display for OperationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::state::kebab_name(self))
    }
}

/// One operation on one cluster: its plan and where it is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Operation {
    /// Id (`op-xxxxxxxx`).
    pub id: String,
    /// What it does.
    pub kind: OperationKind,
    /// The cluster.
    pub cluster_id: String,
    /// Where it is.
    pub status: OperationStatus,
    /// The steps.
    pub plan: Plan,
    /// The cluster's status before it began (restored when a guard aborts it).
    pub prior_status: ClusterStatus,
    /// Why it failed, aborted or was cancelled.
    pub error: Option<String>,
    /// A cancel was asked for; the executor stops at the next step boundary.
    pub cancel_requested: bool,
    /// When it was created.
    pub created_at: String,
    /// When it ended.
    pub ended_at: Option<String>,
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepOutcome {
    /// It did its work.
    Ok,
    /// Hooks failed but the step's policy is to go on (e.g. `stop` while deleting).
    Tolerated,
    /// It failed; the operation failed.
    Failed,
    /// A guard refused; the operation was aborted.
    Aborted,
}

/// One step in the journal: written when it starts and when it ends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    /// Index in the plan.
    pub index: usize,
    /// When it started (last start, after a resume).
    pub started_at: String,
    /// When it ended.
    pub ended_at: Option<String>,
    /// How it ended.
    pub outcome: Option<StepOutcome>,
    /// What went wrong, if anything.
    pub message: Option<String>,
}

/// How one hook invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    /// It was not run (its role does not define the service).
    Skipped,
    /// The host stopped while it ran; a resume runs it again.
    Interrupted,
}

/// One hook invocation of an operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// What went wrong, or the reply.
    pub message: Option<String>,
    /// The last log lines (`level message`) and captured output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<String>,
    /// For `render`: the config files it changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
}
