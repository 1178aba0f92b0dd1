//! Plans: what an operation will do, step by step, before anything runs.
//!
//! A flow turns (cluster, request) into a [`Plan`]; the executor runs any
//! plan. Printing a plan without running it is the dry run.

use crate::state::ClusterStatus;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An operation's steps, in order.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Plan {
    /// The steps.
    pub steps: Vec<Step>,
}

/// One step and where it comes from in the seed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    /// What the step does.
    pub action: Action,
    /// The seed's step it implements (`create 4: run init and start ...`).
    pub seed: String,
}

/// What a hook failure does to the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "policy")]
pub enum OnFailure {
    /// The step and the operation fail.
    Fail,
    /// The data-loss guard (`destroy` before `stop`): a failure aborts the
    /// operation and the cluster stays as it was, unless `force` is set and
    /// the failing node's role allows forcing (`allow_force`).
    Guard {
        /// The user asked to force the deletion.
        force: bool,
    },
    /// The failure is recorded and the operation goes on (`stop` while
    /// deleting, a forced `destroy`).
    Continue,
}

/// The kinds of step. Node lists name nodes by `node_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Action {
    /// The provider creates the nodes' resources (volume, instance, IP).
    CreateResources {
        /// The nodes.
        nodes: Vec<String>,
    },
    /// The cluster's metadata tree is written from its record.
    RegisterMetadata,
    /// Each node's component renders its config files; changed files are
    /// written and the node's `reload` service runs.
    RenderConfig {
        /// The nodes.
        nodes: Vec<String>,
    },
    /// Run a service on nodes: roles by ascending `order`, equal orders and
    /// all nodes of a role in parallel.
    RunService {
        /// The service's spec name.
        service: String,
        /// The nodes it may run on (roles without the service are skipped).
        nodes: Vec<String>,
        /// What a failure does.
        on_failure: OnFailure,
    },
    /// The provider stops the nodes' instances (volumes stay).
    StopInstances {
        /// The nodes.
        nodes: Vec<String>,
    },
    /// The provider starts new instances for the nodes.
    StartInstances {
        /// The nodes.
        nodes: Vec<String>,
    },
    /// The provider deletes the nodes' resources, volumes included.
    DeleteResources {
        /// The nodes.
        nodes: Vec<String>,
    },
    /// The cluster's metadata tree is removed.
    DeregisterMetadata,
    /// The cluster record takes a status.
    SetStatus {
        /// The status.
        status: ClusterStatus,
    },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nodes = |n: &Vec<String>| format!("{} node{}", n.len(), if n.len() == 1 { "" } else { "s" });
        match self {
            Action::CreateResources { nodes: n } => write!(f, "create resources of {}", nodes(n)),
            Action::RegisterMetadata => f.write_str("register the cluster in the metadata"),
            Action::RenderConfig { nodes: n } => write!(f, "render config on {}, reload where it changed", nodes(n)),
            Action::RunService {
                service,
                nodes: n,
                on_failure,
            } => {
                let policy = match on_failure {
                    OnFailure::Fail => "",
                    OnFailure::Guard { force: false } => ", a failure aborts the operation",
                    OnFailure::Guard { force: true } => ", forced where allow_force permits",
                    OnFailure::Continue => ", failures tolerated",
                };
                write!(f, "run {service} on {} by role order{policy}", nodes(n))
            }
            Action::StopInstances { nodes: n } => write!(f, "stop the instances of {}", nodes(n)),
            Action::StartInstances { nodes: n } => write!(f, "start new instances of {}", nodes(n)),
            Action::DeleteResources { nodes: n } => write!(f, "delete the resources of {}", nodes(n)),
            Action::DeregisterMetadata => f.write_str("deregister the cluster from the metadata"),
            Action::SetStatus { status } => write!(f, "mark the cluster {status}"),
        }
    }
}

impl Plan {
    /// Adds a step.
    pub fn push(&mut self, action: Action, seed: impl Into<String>) {
        self.steps.push(Step {
            action,
            seed: seed.into(),
        });
    }
}
