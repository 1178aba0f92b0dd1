//! Service steps: one service on nodes, visited by role order (the seed's
//! rule: roles in ascending `order`, equal orders and all nodes of a role at
//! once, a group starting when the previous one ended) or in a listed order
//! in batches; with the spec's or the plan's `service_params`; for real or
//! as a pre-check; a failure handled as the step's policy says; replies kept
//! as the step's output.

use super::EngineError;
use super::invocation::{Invocations, spawn_all};
use super::journal::Past;
use super::runner::Component;
use super::step::{StepEnd, StepRun};
use super::versions::Versions;
use crate::cluster::{Cluster, Node};
use crate::hook::{Service, parse_service};
use crate::plan::{OnFailure, Reply, Schedule, ServiceStep};
use crate::runtime::Request;
use crate::store::{Event, InvocationOutcome};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// Runs a service step.
pub(super) async fn run(run: &StepRun<'_>, step: &ServiceStep) -> Result<StepEnd, EngineError> {
    let service = parse_service(&step.service)?;
    let nodes = run.nodes(&step.nodes)?;
    let versions = Versions::of(run.engine, &run.cluster, &nodes, step.version.as_deref())?;
    // Roles without the service (in the version a node runs) are skipped.
    let targets: Vec<&Node> = nodes
        .into_iter()
        .filter(|n| versions.service(n, &step.service).is_some())
        .filter(|n| step.among.as_ref().is_none_or(|among| among.contains(&n.node_id)))
        .collect();
    let ctx = Invocations::new(run, &targets, versions).await?;
    let past = Past::load(run).await?;
    let mut replies: HashMap<String, String> = HashMap::new();
    let mut tolerated = Vec::new();
    for wave in waves(&ctx, step, &targets) {
        for node in &wave {
            if let Some(reply) = past.get(&node.node_id, &step.service).and_then(|t| t.reply.clone()) {
                replies.insert(node.node_id.clone(), reply);
            }
        }
        let ended = run_wave(&ctx, &past, step, &service, wave).await?;
        for event in &ended.ended {
            if let Some(reply) = &event.reply {
                replies.insert(event.node_id.clone(), reply.clone());
            }
        }
        if let Some(end) = judge(&run.cluster, step, &ended.failed, &mut tolerated) {
            return Ok(end);
        }
    }
    let output = match output(step, &targets, &replies) {
        Ok(output) => output,
        Err(message) => return Ok(StepEnd::Failed(message)),
    };
    Ok(if tolerated.is_empty() {
        StepEnd::Ok(output)
    } else {
        StepEnd::Tolerated(tolerated.join("; "), output)
    })
}

/// The groups of nodes that run together, in order.
fn waves<'a>(ctx: &Invocations, step: &ServiceStep, targets: &[&'a Node]) -> Vec<Vec<&'a Node>> {
    match step.schedule {
        Schedule::RoleOrder => {
            let mut groups: BTreeMap<u32, Vec<&Node>> = BTreeMap::new();
            for node in targets {
                let order = ctx.service(node, &step.service).map_or(0, |s| s.order);
                groups.entry(order).or_default().push(node);
            }
            groups.into_values().collect()
        }
        Schedule::Listed { at_once } => targets.chunks(at_once.max(1) as usize).map(<[&Node]>::to_vec).collect(),
    }
}

/// What a wave left to judge: the invocations that ended now, and every
/// failure that counts (an earlier run's too).
struct WaveEnd {
    ended: Vec<Event>,
    failed: Vec<Event>,
}

/// A hook about to run: its event, its node, its component.
type Ready = (Event, Node, Arc<dyn Component>);

/// Runs a wave's hooks that have not ended yet, all at once.
async fn run_wave(
    ctx: &Arc<Invocations>,
    past: &Past,
    step: &ServiceStep,
    service: &Service,
    wave: Vec<&Node>,
) -> Result<WaveEnd, EngineError> {
    let name = &step.service;
    // Failures of an earlier run of this step (before a crash) still count.
    let earlier: Vec<Event> = wave
        .iter()
        .filter_map(|n| past.get(&n.node_id, name).and_then(|t| t.failure.clone()))
        .collect();
    let todo: Vec<&Node> = wave.into_iter().filter(|n| !past.done(&n.node_id, name)).collect();
    let (ready, not_run) = sort_out(ctx, past, name, todo).await?;
    let engine = &ctx.engine;
    // Durable before the hooks start: a crash from here on shows them as cut off.
    engine
        .store
        .put_events(ready.iter().map(|(e, _, _)| e.clone()).collect())
        .await?;
    engine.observer.invocations_started(ready.len());
    let keep_reply = step.reply != Reply::Ignore;
    let calls = ready.into_iter().map(|(event, node, component)| {
        let (ctx, name) = (ctx.clone(), name.clone());
        let request = Request {
            service: service.clone(),
            params: params(&ctx, step, &node),
            pre_check: step.pre_check,
        };
        async move {
            let call = ctx.call(&node, &name, event.attempt);
            let outcome = component.run(&call, &request).await;
            let mut event = event;
            if keep_reply && let Ok(Some(reply)) = &outcome.result {
                event.reply = Some(reply.clone());
            }
            ctx.ended(event, &outcome).await
        }
    });
    let ended = spawn_all(calls).await?;
    let mut failed: Vec<Event> = ended
        .iter()
        .filter(|e| e.outcome != InvocationOutcome::Ok)
        .cloned()
        .collect();
    // A guard or pre-check that could not run did not say yes.
    let must_answer = matches!(step.on_failure, OnFailure::Guard { .. } | OnFailure::Refuse);
    if must_answer {
        failed.extend(not_run);
    }
    failed.extend(
        earlier
            .into_iter()
            .filter(|e| e.outcome != InvocationOutcome::Skipped || must_answer),
    );
    Ok(WaveEnd { ended, failed })
}

/// The hooks that can run (their node has a running instance), and the
/// events of those that cannot (stored as skipped).
async fn sort_out(
    ctx: &Invocations,
    past: &Past,
    name: &str,
    todo: Vec<&Node>,
) -> Result<(Vec<Ready>, Vec<Event>), EngineError> {
    let (mut ready, mut not_run) = (Vec::new(), Vec::new());
    if todo.is_empty() {
        return Ok((ready, not_run));
    }
    let engine = &ctx.engine;
    let first_seq = engine.store.next_seqs(ctx.op_id(), todo.len() as u64).await?;
    for (i, node) in todo.into_iter().enumerate() {
        let seq = first_seq + i as u64;
        match ctx.component(node) {
            Some(component) if node.instance_id.is_some() && engine.provider.instance_exists(&ctx.cluster, node) => {
                let attempt = past.next_attempt(&node.node_id, name);
                ready.push((ctx.event(seq, node, name, attempt), node.clone(), component));
            }
            _ => not_run.push(ctx.skipped(seq, node, name, "the node has no running instance").await?),
        }
    }
    Ok((ready, not_run))
}

/// The `service_params` the hooks get, as JSON text: the spec's defaults
/// for the node's role (a `null` default is a required parameter, not a
/// value) with the plan's over them.
fn params(ctx: &Invocations, step: &ServiceStep, node: &Node) -> String {
    let mut params: serde_json::Map<String, Value> = ctx
        .service(node, &step.service)
        .and_then(|s| s.service_params.clone())
        .unwrap_or_default();
    params.retain(|_, v| !v.is_null());
    params.extend(step.params.clone().unwrap_or_default());
    Value::Object(params).to_string()
}

/// What the failures of a wave do to the step; `None`: it goes on.
fn judge(cluster: &Cluster, step: &ServiceStep, failed: &[Event], tolerated: &mut Vec<String>) -> Option<StepEnd> {
    if failed.is_empty() {
        return None;
    }
    let summary = summarize(&cluster.spec, failed);
    let service = &step.service;
    match step.on_failure {
        OnFailure::Fail => Some(StepEnd::Failed(summary)),
        OnFailure::Continue => {
            tolerated.push(summary);
            None
        }
        OnFailure::Refuse if step.pre_check => {
            Some(StepEnd::Refused(format!("the {service} pre-check refused: {summary}")))
        }
        OnFailure::Refuse => Some(StepEnd::Refused(format!("{service} refused: {summary}"))),
        OnFailure::Guard { force } => {
            let forced = |e: &&Event| force && cluster.service(&e.role, service).is_some_and(|s| s.force_allowed());
            let refused: Vec<Event> = failed.iter().filter(|e| !forced(e)).cloned().collect();
            if refused.is_empty() {
                tolerated.push(format!("forced past: {summary}"));
                return None;
            }
            let hint = if force {
                " (its role does not allow forcing)"
            } else {
                "; force it with --force"
            };
            Some(StepEnd::Refused(format!(
                "{service} refused: {}{hint}",
                summarize(&cluster.spec, &refused)
            )))
        }
    }
}

/// A short account of failed invocations; a hook's error code comes with
/// the spec's message for it (`locale`, `err_code<N>`), when it has one.
fn summarize(spec: &crate::spec::Spec, failed: &[Event]) -> String {
    let first = &failed[0];
    let what = match (first.code, &first.message) {
        (Some(code), Some(m)) => match spec.error_message(code) {
            Some(meaning) => format!("error {code} ({}): {m}", crate::text::clip(meaning, 200)),
            None => format!("error {code}: {m}"),
        },
        (_, Some(m)) => m.clone(),
        _ => format!("{:?}", first.outcome),
    };
    let more = if failed.len() > 1 {
        format!(" (and {} more node(s))", failed.len() - 1)
    } else {
        String::new()
    };
    format!(
        "{} on node {} ({}) {what}{more}",
        first.service, first.node_id, first.role
    )
}

/// The step's output, from its nodes' replies.
fn output(step: &ServiceStep, targets: &[&Node], replies: &HashMap<String, String>) -> Result<Option<Value>, String> {
    match &step.reply {
        Reply::Ignore => Ok(None),
        Reply::ByNode => Ok(Some(Value::Object(
            targets
                .iter()
                .filter_map(|n| Some((n.node_id.clone(), Value::String(replies.get(&n.node_id)?.clone()))))
                .collect(),
        ))),
        Reply::NodeOrder { of, passed } => {
            let first = targets
                .iter()
                .find_map(|n| replies.get(&n.node_id).map(|r| (n.node_id.as_str(), r.as_str())));
            node_order(first, of, passed, &step.service).map(|order| Some(Value::from(order)))
        }
    }
}

/// A node order from a reply (`cln-3,cln-2,cln-1`): each id one of `of`
/// (or of `passed`, left out), none twice; the ones of `of` it leaves out
/// follow in `of`'s order.
fn node_order(
    reply: Option<(&str, &str)>,
    of: &[String],
    passed: &[String],
    service: &str,
) -> Result<Vec<String>, String> {
    let Some((node, reply)) = reply else {
        return Ok(of.to_vec());
    };
    let known: HashSet<&str> = of.iter().map(String::as_str).collect();
    let mut seen = HashSet::new();
    let mut order = Vec::new();
    for id in reply.split(',').map(str::trim).filter(|id| !id.is_empty()) {
        let shown: String = id.chars().take(64).collect();
        if !known.contains(id) && !passed.iter().any(|p| p == id) {
            return Err(format!(
                "{service} on node {node} replied {shown:?}, which is not one of the {} nodes being ordered",
                of.len()
            ));
        }
        if !seen.insert(id) {
            return Err(format!("{service} on node {node} named {shown:?} twice"));
        }
        if passed.iter().any(|p| p == id) {
            continue;
        }
        order.push(id.to_string());
    }
    order.extend(of.iter().filter(|id| !seen.contains(id.as_str())).cloned());
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_order_is_checked_and_completed() {
        let of: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        assert_eq!(node_order(None, &of, &[], "get_nodes_order").unwrap(), ["a", "b", "c"]);
        assert_eq!(
            node_order(Some(("a", " c, a ,")), &of, &[], "get_nodes_order").unwrap(),
            ["c", "a", "b"],
            "spaces and empty entries are ignored; b, left out, comes last"
        );
        let err = node_order(Some(("a", "c,x")), &of, &[], "get_nodes_order").unwrap_err();
        assert_eq!(
            err,
            "get_nodes_order on node a replied \"x\", which is not one of the 3 nodes being ordered"
        );
        let err = node_order(Some(("a", "c,c")), &of, &[], "get_nodes_order").unwrap_err();
        assert!(err.ends_with("named \"c\" twice"), "{err}");
        let passed = vec!["z".to_string()];
        assert_eq!(
            node_order(Some(("a", "z,b")), &of, &passed, "get_nodes_order").unwrap(),
            ["b", "a", "c"],
            "a passed node may be named; it is left out"
        );
    }
}
