//! `hookhost plan ...`: the steps an operation would run, each with the seed
//! step it implements, without running anything (the dry run).

use super::operation::OperationCommand;
use super::target::Target;
use super::{Global, print::emit};
use hookhost::plan::Plan;
use hookhost::server::bodies::Planned;
use serde_json::json;
use std::fmt::Write as _;
use std::process::ExitCode;

/// Prints a plan.
pub async fn run(global: &Global, cmd: OperationCommand) -> anyhow::Result<ExitCode> {
    let target = match global.server {
        Some(_) => global.target(true)?,
        // A dry run makes no state directory, and says nothing of one missing.
        None => Target::Local(global.reader(false)?),
    };
    let json = cmd.json();
    let request = cmd.request()?;
    let Planned {
        kind,
        cluster,
        nodes,
        request,
        plan,
    } = target.plan(request).await?;
    if json {
        emit(&format!(
            "{:#}\n",
            // A create's cluster id does not exist yet: the real one is made when it runs.
            json!({"kind": kind, "cluster": cluster, "request": request, "plan": plan})
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = format!(
        "{kind} · a cluster of {nodes} nodes · {} steps (nothing is run)\n",
        plan.steps.len()
    );
    out.push_str(&steps(&plan));
    emit(&out);
    Ok(ExitCode::SUCCESS)
}

/// The main part's steps, then what recovers from its failure.
pub fn steps(plan: &Plan) -> String {
    let mut out = String::new();
    for (i, step) in plan.steps.iter().enumerate() {
        let _ = writeln!(out, "  {:>2}. {}\n      {}", i + 1, step, step.seed);
    }
    if !plan.recovery.is_empty() {
        let _ = writeln!(out, "  if it fails, is refused or is cancelled, the recovery:");
        for (i, step) in plan.recovery.iter().enumerate() {
            let _ = writeln!(out, "  r{:>1}. {}\n      {}", i + 1, step, step.seed);
        }
    }
    out
}
