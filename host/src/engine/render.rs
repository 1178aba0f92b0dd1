//! Render steps, the confd equivalent: every listed node's component
//! renders its config files from one snapshot of the cluster, the files that
//! changed are written, and the node's `reload` service runs where
//! something changed (if its role defines `reload`). A node without a
//! running instance has no confd: it is skipped, and renders when it starts.

use super::EngineError;
use super::invocation::{Invocations, spawn_all};
use super::journal::Past;
use super::step::{StepEnd, StepRun};
use super::versions::Versions;
use crate::cluster::Node;
use crate::config::ConfigError;
use crate::hook::Service;
use crate::plan::NodeSet;
use crate::runtime::{Failure, Outcome, Request};
use crate::store::InvocationOutcome;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Renders the nodes' config, writes what changed, reloads where it changed.
pub(super) async fn run(run: &StepRun<'_>, nodes: &NodeSet) -> Result<StepEnd, EngineError> {
    let targets = run.nodes(nodes)?;
    let ctx = Invocations::new(run, &targets, Versions::of(run.engine, &run.cluster, &targets, None)?).await?;
    let past = Arc::new(Past::load(run).await?);
    let first_seq = run.engine.store.next_seqs(&run.op.id, targets.len() as u64).await?;
    run.engine.observer.invocations_started(targets.len());
    let cores = Arc::new(Semaphore::new(
        std::thread::available_parallelism().map_or(2, usize::from),
    ));
    let work = targets.into_iter().enumerate().map(|(i, node)| {
        let (ctx, past, node, cores) = (ctx.clone(), past.clone(), node.clone(), cores.clone());
        async move { render_and_reload(&ctx, &past, &node, first_seq + i as u64, &cores).await }
    });
    let results = spawn_all(work).await?;
    let failed = results.iter().filter(|ok| !**ok).count();
    Ok(if failed == 0 {
        StepEnd::Ok(None)
    } else {
        StepEnd::Failed(format!(
            "config rendering or reload failed on {failed} node(s); see `hookhost op events {}`",
            run.op.id
        ))
    })
}

/// One node: its render (unless an earlier run finished it), then its
/// reload where files changed; whether all went well.
///
/// Renders only compute, so at most one per core runs (`cores`): more would
/// not end sooner and would queue ahead of every other task on the cores
/// (other clusters', other tenants'). Reloads may wait, and are not held back.
async fn render_and_reload(
    ctx: &Invocations,
    past: &Past,
    node: &Node,
    render_seq: u64,
    cores: &Semaphore,
) -> Result<bool, EngineError> {
    // No instance, no confd: a stopped node renders when it starts. (A node
    // the record says runs, but the provider lacks, fails below.)
    if node.instance_id.is_none() {
        if !past.done(&node.node_id, "render") {
            ctx.skipped(render_seq, node, "render", "the node has no running instance")
                .await?;
        }
        return Ok(true);
    }
    let Some(component) = ctx.component(node) else {
        ctx.skipped(render_seq, node, "render", "its role has no component")
            .await?;
        return Ok(false);
    };
    let earlier = past.get(&node.node_id, "render");
    let changed = match earlier {
        // It failed in an earlier run (before a crash): it still counts.
        Some(t) if t.ended && t.failure.is_some() => return Ok(false),
        // It finished in an earlier run: what it changed then.
        Some(t) if t.ended => t.changed.clone(),
        _ => {
            // A render cut off may have written its files already, and a
            // reload cut off in an earlier step (then cancelled) never ran:
            // then nothing looks changed now, yet a reload is owed.
            let cut_off = earlier.is_some_and(|t| t.cut_off) || past.reload_owed(&node.node_id);
            let attempt = past.next_attempt(&node.node_id, "render");
            match render_one(ctx, component.as_ref(), node, (render_seq, attempt), cut_off, cores).await? {
                Some(changed) => changed,
                None => return Ok(false),
            }
        }
    };
    let has_reload = ctx.service(node, "reload").is_some();
    if changed.is_empty() || !has_reload {
        return Ok(true);
    }
    if let Some(reload) = past.get(&node.node_id, "reload").filter(|t| t.ended) {
        return Ok(reload.failure.is_none());
    }
    let attempt = past.next_attempt(&node.node_id, "reload");
    let reload_seq = ctx.engine.store.next_seqs(ctx.op_id(), 1).await?;
    let event = ctx.event(reload_seq, node, "reload", attempt);
    ctx.engine.store.put_events(vec![event.clone()]).await?;
    let call = ctx.call(node, "reload", attempt);
    let request = Request {
        service: Service::Reload,
        params: serde_json::json!({ "changed": changed }).to_string(),
        pre_check: false,
    };
    let outcome = component.run(&call, &request).await;
    Ok(ctx.ended(event, &outcome).await?.outcome == InvocationOutcome::Ok)
}

/// Renders one node's config and writes what changed; `None` when it failed.
async fn render_one(
    ctx: &Invocations,
    component: &dyn super::runner::Component,
    node: &Node,
    (seq, attempt): (u64, u32),
    assume_changed: bool,
    cores: &Semaphore,
) -> Result<Option<Vec<String>>, EngineError> {
    let mut event = ctx.event(seq, node, "render", attempt);
    event.order = 0;
    ctx.engine.store.put_events(vec![event.clone()]).await?;
    // A render runs with its node's reload timeout: it is the reload's first half.
    let call = ctx.call(node, "reload", attempt);
    // The render and its writes hold a core (never closed: a permit always comes).
    let core = cores.acquire().await.ok();
    let outcome = component.render(&call).await;
    let written = match &outcome.result {
        Ok(files) => {
            let all: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
            let (mounts, files) = (call.mounts.clone(), files.clone());
            let written = tokio::task::spawn_blocking(move || crate::config::write_changed(&mounts, &files)).await?;
            Some(written.map(|changed| if assume_changed { all } else { changed }))
        }
        Err(_) => None,
    };
    drop(core);
    let outcome = match written {
        Some(Ok(changed)) => {
            event.changed = changed;
            outcome
        }
        Some(Err(e)) => Outcome {
            result: Err(config_failure(e)),
            ..outcome
        },
        None => outcome,
    };
    let ok = outcome.result.is_ok();
    let event = ctx.ended(event, &outcome).await?;
    Ok(ok.then_some(event.changed))
}

/// Whose fault a file that cannot be written is: the component's for what
/// it rendered, the node's disk (or links) for the rest.
fn config_failure(e: ConfigError) -> Failure {
    match e {
        ConfigError::Io { .. } => Failure::ConfigWrite { message: e.to_string() },
        _ => Failure::BadRender { message: e.to_string() },
    }
}
