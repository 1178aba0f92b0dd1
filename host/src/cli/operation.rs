//! The operations' arguments, one struct for both `cluster <op>` (which runs
//! it) and `plan <op>` (which prints its plan): each becomes an
//! [`OperationRequest`].

use clap::Subcommand;
use hookhost::request::OperationRequest;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum OperationCommand {
    /// A new cluster from an app spec: resources, metadata, config, then init/start by role order.
    ///
    /// Example: hookhost cluster create app/spec.json --name zk
    /// (and `hookhost plan create app/spec.json` prints its steps without running them)
    Create {
        /// The app spec (cluster.json keys; each role names its component with "plugin").
        spec: PathBuf,
        /// The cluster's name, 1 to 128 characters [default: the spec's name].
        #[arg(long)]
        name: Option<String>,
        /// Print one JSON object: the outcome (`cluster ...`), or the plan (`plan ...`).
        #[arg(long)]
        json: bool,
    },
    /// A cluster's deletion: destroy (the data-loss guard), stop, then its resources and metadata.
    Delete {
        /// The cluster id (cl-...).
        cluster: String,
        /// Go on when destroy refuses, where the role's allow_force permits.
        #[arg(long)]
        force: bool,
        /// Print one JSON object: the outcome (`cluster ...`), or the plan (`plan ...`).
        #[arg(long)]
        json: bool,
    },
    /// A cluster's stop: stop by role order, then its instances go (volumes stay).
    Stop {
        /// The cluster id (cl-...).
        cluster: String,
        /// Print one JSON object: the outcome (`cluster ...`), or the plan (`plan ...`).
        #[arg(long)]
        json: bool,
    },
    /// A stopped cluster's start: new instances, metadata, config, then start by role order.
    Start {
        /// The cluster id (cl-...).
        cluster: String,
        /// Print one JSON object: the outcome (`cluster ...`), or the plan (`plan ...`).
        #[arg(long)]
        json: bool,
    },
}

impl OperationCommand {
    /// Whether JSON output was asked for.
    pub fn json(&self) -> bool {
        match self {
            OperationCommand::Create { json, .. }
            | OperationCommand::Delete { json, .. }
            | OperationCommand::Stop { json, .. }
            | OperationCommand::Start { json, .. } => *json,
        }
    }

    /// The request it makes.
    pub fn request(self) -> OperationRequest {
        match self {
            OperationCommand::Create { spec, name, .. } => OperationRequest::CreateCluster { spec, name },
            OperationCommand::Delete { cluster, force, .. } => OperationRequest::DeleteCluster { cluster, force },
            OperationCommand::Stop { cluster, .. } => OperationRequest::StopCluster { cluster },
            OperationCommand::Start { cluster, .. } => OperationRequest::StartCluster { cluster },
        }
    }
}
