//! `hookhost plan ...`: the steps an operation would run, each with the seed
//! step it implements, without running anything (the dry run).

use super::{Global, print::emit};
use clap::Subcommand;
use hookhost::state::OperationKind;
use serde_json::json;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum PlanCommand {
    /// The plan of `cluster create`.
    Create {
        /// The app spec.
        spec: PathBuf,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The plan of `cluster delete`.
    Delete {
        /// The cluster id.
        cluster: String,
        /// As with `cluster delete --force`.
        #[arg(long)]
        force: bool,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The plan of `cluster stop`.
    Stop {
        /// The cluster id.
        cluster: String,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The plan of `cluster start`.
    Start {
        /// The cluster id.
        cluster: String,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
    },
}

impl PlanCommand {
    /// Whether the command was asked for JSON output.
    pub fn wants_json(&self) -> bool {
        match self {
            PlanCommand::Create { json, .. }
            | PlanCommand::Delete { json, .. }
            | PlanCommand::Stop { json, .. }
            | PlanCommand::Start { json, .. } => *json,
        }
    }
}

/// Prints a plan.
pub async fn run(global: &Global, cmd: PlanCommand) -> anyhow::Result<ExitCode> {
    let engine = global.engine()?;
    let json = cmd.wants_json();
    let (kind, target, force) = match cmd {
        PlanCommand::Create { spec, .. } => (OperationKind::CreateCluster, spec.display().to_string(), false),
        PlanCommand::Delete { cluster, force, .. } => (OperationKind::DeleteCluster, cluster, force),
        PlanCommand::Stop { cluster, .. } => (OperationKind::StopCluster, cluster, false),
        PlanCommand::Start { cluster, .. } => (OperationKind::StartCluster, cluster, false),
    };
    let (cluster, plan) = engine.plan(kind, &target, force).await?;
    if json {
        emit(&format!(
            "{:#}\n",
            // A create's cluster id does not exist yet: the real one is made when it runs.
            json!({"kind": kind, "cluster": (kind != OperationKind::CreateCluster).then_some(&cluster.id), "plan": plan})
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = format!(
        "{kind} · {} nodes · {} steps (nothing is run)\n",
        cluster.nodes.len(),
        plan.steps.len()
    );
    for (i, step) in plan.steps.iter().enumerate() {
        let _ = writeln!(out, "  {:>2}. {}\n      {}", i + 1, step.action, step.seed);
    }
    emit(&out);
    Ok(ExitCode::SUCCESS)
}
