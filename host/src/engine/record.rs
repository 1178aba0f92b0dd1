//! Record actions: changes to the cluster record, each one atomic in the
//! operation store and each idempotent (a resumed step may make it again).

use super::EngineError;
use super::step::{StepEnd, StepRun};
use crate::cluster::{Cluster, ClusterStatus, Upgrade};
use crate::plan::NodeSet;
use crate::spec::UpgradingPolicy;
use crate::store::StoreError;
use std::collections::HashSet;

pub(super) async fn change(
    run: &StepRun<'_>,
    f: impl FnMut(&mut Cluster) -> Result<(), StoreError> + Send + 'static,
) -> Result<StepEnd, EngineError> {
    run.engine.store.update_cluster(&run.cluster.id, Box::new(f)).await?;
    Ok(StepEnd::Ok(None))
}

/// The cluster takes a status.
pub(super) async fn set_status(run: &StepRun<'_>, status: ClusterStatus) -> Result<StepEnd, EngineError> {
    change(run, move |c| {
        c.status = status;
        Ok(())
    })
    .await
}

/// The nodes leave the record.
pub(super) async fn remove_nodes(run: &StepRun<'_>, nodes: &NodeSet) -> Result<StepEnd, EngineError> {
    let leaving: HashSet<String> = run.node_ids(nodes)?.into_iter().collect();
    change(run, move |c| {
        c.nodes.retain(|n| !leaving.contains(&n.node_id));
        Ok(())
    })
    .await
}

/// The nodes have joined.
pub(super) async fn joined(run: &StepRun<'_>, nodes: &NodeSet) -> Result<StepEnd, EngineError> {
    let listed: HashSet<String> = run.node_ids(nodes)?.into_iter().collect();
    change(run, move |c| {
        for node in c.nodes.iter_mut().filter(|n| listed.contains(&n.node_id)) {
            node.joining = false;
        }
        Ok(())
    })
    .await
}

/// Longest token a node may have (bytes).
const MAX_TOKEN: usize = 64 << 10;

/// Each node takes its token from the replies by node in `from`; a node
/// that did not reply keeps none.
pub(super) async fn set_tokens(run: &StepRun<'_>, from: &str) -> Result<StepEnd, EngineError> {
    let replies = run
        .vars
        .get(from)
        .and_then(|v| v.as_object())
        .cloned()
        .unwrap_or_default();
    let mut tokens = std::collections::HashMap::new();
    for (node, reply) in replies {
        let token = reply.as_str().unwrap_or_default().to_string();
        if token.len() > MAX_TOKEN {
            return Ok(StepEnd::Failed(format!(
                "custom_metadata on node {node} replied {} bytes; a token is at most {MAX_TOKEN}",
                token.len()
            )));
        }
        tokens.insert(node, token);
    }
    change(run, move |c| {
        for node in &mut c.nodes {
            if let Some(token) = tokens.get(&node.node_id) {
                node.token = Some(token.clone());
            }
        }
        Ok(())
    })
    .await
}

/// The cluster's env (or a role's) takes the keys (`null` removes one);
/// done again, the same env.
pub(super) async fn set_env(
    run: &StepRun<'_>,
    env: &serde_json::Map<String, serde_json::Value>,
    role: Option<&str>,
) -> Result<StepEnd, EngineError> {
    let (env, role) = (env.clone(), role.map(String::from));
    change(run, move |c| {
        let target = match &role {
            Some(role) => match c.spec.nodes.iter_mut().find(|r| &r.role == role) {
                Some(spec) => &mut spec.env,
                None => return Ok(()),
            },
            None => &mut c.spec.env,
        };
        *target = crate::cluster::merge_env(target, &env);
        Ok(())
    })
    .await
}

/// The nodes boot from another app version next (the cluster's when `None`).
pub(super) async fn switch_version(
    run: &StepRun<'_>,
    nodes: &NodeSet,
    version: &Option<String>,
) -> Result<StepEnd, EngineError> {
    let (listed, version): (HashSet<String>, _) = (run.node_ids(nodes)?.into_iter().collect(), version.clone());
    change(run, move |c| {
        let cluster_version = c.app.version.clone();
        for node in c.nodes.iter_mut().filter(|n| listed.contains(&n.node_id)) {
            node.version = version.clone().filter(|v| *v != cluster_version);
        }
        Ok(())
    })
    .await
}

/// The upgrade begins: the cluster takes the new version, its nodes keep
/// the old one. Done again for the same upgrade (a run again, a resumed
/// step), it changes nothing: the nodes upgraded since stay so.
pub(super) async fn begin_upgrade(run: &StepRun<'_>, upgrade: &Upgrade) -> Result<StepEnd, EngineError> {
    if run
        .cluster
        .upgrade
        .as_ref()
        .is_some_and(|u| u.from == upgrade.from && u.to == upgrade.to)
    {
        return Ok(StepEnd::Ok(None));
    }
    let version = run.engine.catalog.get(&run.cluster.app.app, &upgrade.to)?;
    let upgrade = upgrade.clone();
    change(run, move |c| {
        if c.upgrade.is_some() {
            return Ok(());
        }
        for node in c.nodes.iter_mut().filter(|n| n.version.is_none()) {
            node.version = Some(upgrade.from.clone());
        }
        c.take_version(&version);
        c.upgrade = Some(upgrade.clone());
        Ok(())
    })
    .await
}

/// The nodes' upgrade is done (an upgrade run again skips them); with
/// `proven_by`, only those whose that service ended ok in the main part.
pub(super) async fn upgrade_done(
    run: &StepRun<'_>,
    nodes: &NodeSet,
    proven_by: Option<&str>,
) -> Result<StepEnd, EngineError> {
    let mut listed = run.node_ids(nodes)?;
    if let Some(service) = proven_by {
        let main = run.op.plan.steps.len();
        let ok: HashSet<String> = run
            .engine
            .store
            .events(&run.op.id)?
            .into_iter()
            .filter(|e| e.step < main && e.service == service && e.outcome == crate::store::InvocationOutcome::Ok)
            // A pre-check's yes is no upgrade.
            .filter(|e| {
                matches!(run.op.plan.step(e.step).map(|s| &s.action),
                    Some(crate::plan::Action::RunService(step)) if !step.pre_check)
            })
            .map(|e| e.node_id)
            .collect();
        listed.retain(|id| ok.contains(id));
    }
    change(run, move |c| {
        if let Some(upgrade) = &mut c.upgrade {
            upgrade.done.extend(listed.iter().cloned());
        }
        Ok(())
    })
    .await
}

/// The upgrade is over.
pub(super) async fn end_upgrade(run: &StepRun<'_>) -> Result<StepEnd, EngineError> {
    change(run, |c| {
        c.upgrade = None;
        Ok(())
    })
    .await
}

/// The cluster goes back to the version its upgrade started from. Every
/// node runs it, except that after an in-place upgrade (nothing rebooted)
/// a node booted from a still older version keeps it.
pub(super) async fn revert_upgrade(run: &StepRun<'_>) -> Result<StepEnd, EngineError> {
    let Some(upgrade) = run.cluster.upgrade.clone() else {
        // Done already (a resumed step).
        return Ok(StepEnd::Ok(None));
    };
    let version = run.engine.catalog.get(&run.cluster.app.app, &upgrade.from)?;
    let in_place = matches!(
        upgrade.policy,
        UpgradingPolicy::InPlaceParallel | UpgradingPolicy::InPlaceSequential
    );
    change(run, move |c| {
        if c.upgrade.is_none() {
            return Ok(());
        }
        for node in &mut c.nodes {
            if !in_place || node.version.as_deref() == Some(&upgrade.from) {
                node.version = None;
            }
        }
        c.take_version(&version);
        c.upgrade = None;
        Ok(())
    })
    .await
}
