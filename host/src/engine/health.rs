//! Health checks and monitoring between operations (the spec's
//! `health_check` and `monitor`; notes §2.5 and §5 "Health check loop").
//! One round calls `health_check` on every checked node of an active
//! cluster, counts results in a row, marks a node unhealthy after
//! `unhealthy_threshold` failures (and runs its `health_action`) and healthy
//! after `healthy_threshold` passes, and collects the `monitor` replies. A
//! loop (the server's) decides when a round is due; `cluster check` runs one now.
//!
//! Choices where the notes are silent:
//! - A node starts `unknown`, and starts over when its instance changes
//!   (a stop and start, an upgrade): old results say nothing about it.
//! - `health_action` runs once, when a node becomes unhealthy (the notes:
//!   "run when the node becomes unhealthy"), not on every later failure.
//! - A round never overlaps an operation: it holds the cluster's gate, which
//!   an operation's start takes too, and runs only on an active cluster that
//!   no operation (running or interrupted) holds.
//! - The record is read and written under the gate, so rounds of one
//!   process never lose each other's counts.

use super::invocation::{Invocations, describe, spawn_all};
use super::versions::Versions;
use super::{Engine, EngineError};
use crate::cluster::{
    ClusterHealth, ClusterStatus, HealthPolicy, HealthStatus, HealthTransition, MONITOR_TIMEOUT, Node, NodeHealth,
    monitor_items, now,
};
use crate::hook::{Operation as WitOperation, Service};
use crate::runtime::Request;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// What one round did.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Round {
    /// Why nothing ran (the cluster is not active, or an operation holds it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Each checked node's result and status after it.
    pub checked: Vec<Checked>,
    /// The nodes whose status changed.
    pub transitions: Vec<HealthTransition>,
    /// What the monitored nodes replied.
    pub samples: Vec<Sample>,
}

/// One node's health check in a round.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Checked {
    /// The node.
    pub node_id: String,
    /// Its role.
    pub role: String,
    /// Whether the check passed.
    pub ok: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The node's health after it.
    pub health: NodeHealth,
}

/// One node's `monitor` reply.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Sample {
    /// The node.
    pub node_id: String,
    /// Its role.
    pub role: String,
    /// When (Unix milliseconds).
    pub at_ms: u64,
    /// The items' values (only the spec's items, when it lists any).
    pub values: BTreeMap<String, Value>,
    /// Why there are no values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Longest monitor reply read, in bytes.
const MAX_MONITOR_REPLY: usize = 64 * 1024;

/// The roles of a cluster whose nodes a round checks or monitors, each
/// with how often (the health check's interval; monitoring alone: 60 s).
pub fn watched_roles(cluster: &crate::cluster::Cluster) -> Vec<(String, Duration)> {
    let mut roles: Vec<(String, Duration)> = Vec::new();
    for node in cluster.live_nodes() {
        if roles.iter().any(|(r, _)| *r == node.role) {
            continue;
        }
        let spec = &cluster.spec;
        let policy = HealthPolicy::of(spec, &node.role);
        if policy.is_some() || monitor_items(spec, &node.role).is_some() {
            let every = policy.map_or(Duration::from_secs(60), |p| p.interval);
            roles.push((node.role.clone(), every));
        }
    }
    roles
}

impl Engine {
    /// Runs one round on the cluster's nodes of `roles` (every watched role
    /// when none): health checks, health actions, monitor replies.
    pub async fn check_health(&self, cluster_id: &str, roles: Option<&[String]>) -> Result<Round, EngineError> {
        // Known first: no gate is made for an id that names nothing.
        self.cluster(cluster_id)?;
        let _gate = self.gate(cluster_id).lock_owned().await;
        let cluster = self.cluster(cluster_id)?;
        if cluster.status != ClusterStatus::Active {
            let skipped = format!(
                "cluster {} is {}: only an active cluster is checked",
                cluster.id, cluster.status
            );
            return Ok(Round {
                skipped: Some(skipped),
                ..Round::default()
            });
        }
        if let Err(busy) = self.check_not_busy(&cluster) {
            return Ok(Round {
                skipped: Some(busy.to_string()),
                ..Round::default()
            });
        }
        let nodes: Vec<&Node> = cluster
            .live_nodes()
            .filter(|n| roles.is_none_or(|r| r.contains(&n.role)))
            .filter(|n| n.instance_id.is_some() && self.provider.instance_exists(&cluster, n))
            .collect();
        let versions = Versions::of(self, &cluster, &nodes, None)?;
        let round_id = crate::cluster::new_id("hc");
        let of = (round_id.as_str(), WitOperation::HealthCheck, 0);
        let ctx = Invocations::load(self, &cluster, of, &nodes, versions).await?;
        let policies: BTreeMap<&str, HealthPolicy> = nodes
            .iter()
            .filter_map(|n| Some((n.node_id.as_str(), HealthPolicy::of(ctx.spec_of(n)?, &n.role)?)))
            .collect();
        let checked_nodes: Vec<&Node> = nodes
            .iter()
            .copied()
            .filter(|n| policies.contains_key(n.node_id.as_str()))
            .collect();
        let results = run_all(&ctx, &checked_nodes, Service::HealthCheck, |n| {
            policies[n.node_id.as_str()].timeout
        })
        .await?;
        let mut round = Round::default();
        let mut health = cluster.health.clone();
        // Nodes that left take their health along.
        health
            .nodes
            .retain(|id, _| cluster.live_nodes().any(|n| n.node_id == *id));
        let mut unhealthy = Vec::new();
        for (node, result) in checked_nodes.iter().zip(results) {
            let instance = node.instance_id.clone().unwrap_or_default();
            let before = health.nodes.remove(&node.node_id).unwrap_or_default();
            let message = result.as_ref().err().cloned();
            let (after, changed) = judge(&before, &instance, message.clone(), &policies[node.node_id.as_str()]);
            if let Some((from, to)) = changed {
                tracing::info!(cluster = %cluster.id, node = %node.node_id, %from, %to, "health changed");
                if to == HealthStatus::Unhealthy {
                    unhealthy.push(round.transitions.len());
                }
                round.transitions.push(HealthTransition {
                    at: now(),
                    node_id: node.node_id.clone(),
                    role: node.role.clone(),
                    from,
                    to,
                    message: message.clone().filter(|_| to == HealthStatus::Unhealthy),
                    action: None,
                });
            }
            health.nodes.insert(node.node_id.clone(), after.clone());
            round.checked.push(Checked {
                node_id: node.node_id.clone(),
                role: node.role.clone(),
                ok: result.is_ok(),
                message,
                health: after,
            });
        }
        self.health_actions(&ctx, &checked_nodes, &policies, &unhealthy, &mut round.transitions)
            .await?;
        round.samples = self.monitor(&ctx, &nodes).await?;
        for transition in &round.transitions {
            health.record(transition.clone());
        }
        self.keep_health(&cluster.id, health).await?;
        Ok(round)
    }

    /// Runs `health_action` on the nodes that became unhealthy; notes how each ended.
    async fn health_actions(
        &self,
        ctx: &Arc<Invocations>,
        nodes: &[&Node],
        policies: &BTreeMap<&str, HealthPolicy>,
        unhealthy: &[usize],
        transitions: &mut [HealthTransition],
    ) -> Result<(), EngineError> {
        let targets: Vec<&Node> = unhealthy
            .iter()
            .filter_map(|&i| nodes.iter().copied().find(|n| n.node_id == transitions[i].node_id))
            .collect();
        let results = run_all(ctx, &targets, Service::HealthAction, |n| {
            policies[n.node_id.as_str()].action_timeout
        })
        .await?;
        for (&i, result) in unhealthy.iter().zip(results) {
            transitions[i].action = Some(match result {
                Ok(_) => "ok".to_string(),
                Err(message) => message,
            });
        }
        Ok(())
    }

    /// Collects the `monitor` replies of the monitored nodes.
    async fn monitor(&self, ctx: &Arc<Invocations>, nodes: &[&Node]) -> Result<Vec<Sample>, EngineError> {
        let watched: Vec<(&Node, Vec<String>)> = nodes
            .iter()
            .filter_map(|n| Some((*n, monitor_items(ctx.spec_of(n)?, &n.role)?)))
            .collect();
        let targets: Vec<&Node> = watched.iter().map(|(n, _)| *n).collect();
        let results = run_all(ctx, &targets, Service::Monitor, |_| MONITOR_TIMEOUT).await?;
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Ok(watched
            .iter()
            .zip(results)
            .map(|((node, items), result)| {
                let (values, error) = match result.and_then(|reply| parse_sample(reply.as_deref(), items)) {
                    Ok(values) => (values, None),
                    Err(error) => (BTreeMap::new(), Some(error)),
                };
                Sample {
                    node_id: node.node_id.clone(),
                    role: node.role.clone(),
                    at_ms,
                    values,
                    error,
                }
            })
            .collect())
    }

    /// Stores a cluster's health (its other fields as they are now).
    async fn keep_health(&self, cluster: &str, health: ClusterHealth) -> Result<(), EngineError> {
        self.store
            .update_cluster(
                cluster,
                Box::new(move |c| {
                    c.health = health.clone();
                    Ok(())
                }),
            )
            .await?;
        Ok(())
    }
}

/// Runs `service` on each node that implements it (others: an error saying
/// so), each within its timeout; results in the nodes' order.
async fn run_all(
    ctx: &Arc<Invocations>,
    nodes: &[&Node],
    service: Service,
    timeout: impl Fn(&Node) -> Duration,
) -> Result<Vec<Result<Option<String>, String>>, EngineError> {
    let name = crate::hook::service_name(&service);
    let calls = nodes.iter().map(|node| {
        let (ctx, node, service, name) = (ctx.clone(), (*node).clone(), service.clone(), name.clone());
        let timeout = timeout(&node);
        async move {
            let Some(component) = ctx.component(&node).filter(|c| c.services().contains(&service)) else {
                return Ok(Err(format!("role {}'s component does not implement {name}", node.role)));
            };
            let mut call = ctx.call(&node, &name, 1);
            call.limits.timeout = timeout;
            let request = Request {
                service,
                params: "{}".into(),
                pre_check: false,
            };
            let outcome = component.run(&call, &request).await;
            Ok(outcome.result.map_err(|failure| {
                let (_, code, message) = describe(&failure);
                let message = crate::text::clip(&message.unwrap_or_default(), 1000);
                match code {
                    Some(code) => format!("code {code}: {message}"),
                    None => message,
                }
            }))
        }
    });
    spawn_all(calls).await
}

/// A node's health after one check: `failure` is none when it passed. Says
/// the change of status, if any.
fn judge(
    before: &NodeHealth,
    instance: &str,
    failure: Option<String>,
    policy: &HealthPolicy,
) -> (NodeHealth, Option<(HealthStatus, HealthStatus)>) {
    let mut after = if before.instance_id == instance {
        before.clone()
    } else {
        NodeHealth {
            instance_id: instance.to_string(),
            ..NodeHealth::default()
        }
    };
    after.checked_at = now();
    match &failure {
        None => {
            after.successes = after.successes.saturating_add(1);
            after.failures = 0;
            after.message = None;
            if after.successes >= policy.healthy_threshold {
                after.status = HealthStatus::Healthy;
            }
        }
        Some(message) => {
            after.failures = after.failures.saturating_add(1);
            after.successes = 0;
            after.message = Some(message.clone());
            if after.failures >= policy.unhealthy_threshold {
                after.status = HealthStatus::Unhealthy;
            }
        }
    }
    let from = if before.instance_id == instance {
        before.status
    } else {
        HealthStatus::Unknown
    };
    let changed = (from != after.status).then_some((from, after.status));
    (after, changed)
}

/// A `monitor` reply's values: one JSON object; only `items` when it names any.
fn parse_sample(reply: Option<&str>, items: &[String]) -> Result<BTreeMap<String, Value>, String> {
    let reply = reply.ok_or("the monitor hook replied nothing")?;
    if reply.len() > MAX_MONITOR_REPLY {
        return Err(format!(
            "the monitor reply is {} bytes; at most {MAX_MONITOR_REPLY}",
            reply.len()
        ));
    }
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(reply) else {
        return Err("the monitor reply is not one JSON object of item values".into());
    };
    Ok(map
        .into_iter()
        .filter(|(k, v)| (items.is_empty() || items.contains(k)) && (v.is_number() || v.is_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> HealthPolicy {
        HealthPolicy {
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            action_timeout: Duration::from_secs(30),
            healthy_threshold: 2,
            unhealthy_threshold: 3,
        }
    }

    /// Runs checks in order (`true` = pass) and returns the status after each and the changes.
    fn run(results: &[bool]) -> Vec<(HealthStatus, Option<(HealthStatus, HealthStatus)>)> {
        let mut health = NodeHealth::default();
        results
            .iter()
            .map(|&ok| {
                let (after, changed) = judge(&health, "i-1", (!ok).then(|| "down".to_string()), &policy());
                health = after;
                (health.status, changed)
            })
            .collect()
    }

    #[test]
    fn thresholds_count_results_in_a_row() {
        use HealthStatus::*;
        let seen = run(&[true, true, false, false, true, false, false, false, false, true, true]);
        let statuses: Vec<HealthStatus> = seen.iter().map(|(s, _)| *s).collect();
        assert_eq!(
            statuses,
            [
                Unknown, Healthy, Healthy, Healthy, Healthy, Healthy, Healthy, Unhealthy, Unhealthy, Unhealthy, Healthy
            ]
        );
        let changes: Vec<(HealthStatus, HealthStatus)> = seen.iter().filter_map(|(_, c)| *c).collect();
        assert_eq!(
            changes,
            [(Unknown, Healthy), (Healthy, Unhealthy), (Unhealthy, Healthy)]
        );
    }

    #[test]
    fn a_new_instance_starts_over() {
        let policy = policy();
        let (healthy, _) = judge(
            &NodeHealth {
                status: HealthStatus::Healthy,
                instance_id: "i-1".into(),
                successes: 5,
                ..NodeHealth::default()
            },
            "i-2",
            None,
            &policy,
        );
        assert_eq!(
            (healthy.status, healthy.successes, healthy.instance_id.as_str()),
            (HealthStatus::Unknown, 1, "i-2")
        );
    }

    #[test]
    fn monitor_replies_keep_the_spec_items() {
        let items = vec!["qps".to_string(), "mode".to_string()];
        let values = parse_sample(Some(r#"{"qps": 12.5, "mode": "L", "other": 1, "bad": [1]}"#), &items).unwrap();
        assert_eq!(serde_json::to_string(&values).unwrap(), r#"{"mode":"L","qps":12.5}"#);
        let all = parse_sample(Some(r#"{"a": 1, "b": {"c": 2}}"#), &[]).unwrap();
        assert_eq!(all.keys().collect::<Vec<_>>(), ["a"]);
        assert!(
            parse_sample(Some("[1]"), &items)
                .unwrap_err()
                .contains("one JSON object")
        );
        assert!(parse_sample(None, &items).unwrap_err().contains("nothing"));
    }
}
