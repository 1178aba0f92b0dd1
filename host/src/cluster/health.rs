//! A cluster's health as the health-check loop keeps it in the cluster
//! record: each node's status and its run of results, the last transitions,
//! and the policy a role is checked by (the spec's `health_check`, notes
//! §2.5: defaults interval 60 s, timeout 10 s, action timeout 30 s, three in a
//! row either way; a role's values over the cluster's, field by field).

use crate::spec::{HealthCheck, Spec};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::Duration;

/// Transitions a cluster record keeps (the latest).
pub const KEPT_TRANSITIONS: usize = 100;

/// What the checks last concluded about a node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum HealthStatus {
    /// Not enough results in a row yet (a new, restarted or changed node).
    #[default]
    Unknown,
    /// `healthy_threshold` checks in a row passed.
    Healthy,
    /// `unhealthy_threshold` checks in a row failed.
    Unhealthy,
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::request::kebab_name(self))
    }
}

/// One node's health.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NodeHealth {
    /// What the checks concluded.
    pub status: HealthStatus,
    /// The instance the results are about: a new instance starts over.
    pub instance_id: String,
    /// Checks passed in a row.
    pub successes: u32,
    /// Checks failed in a row.
    pub failures: u32,
    /// When the last check ended.
    pub checked_at: String,
    /// The last failure's message (cleared by a pass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A node's status changed: the event of the health loop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HealthTransition {
    /// When.
    pub at: String,
    /// The node.
    pub node_id: String,
    /// Its role.
    pub role: String,
    /// The status before.
    pub from: HealthStatus,
    /// The status now.
    pub to: HealthStatus,
    /// The last check's failure, when it became unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// How the `health_action` it triggered ended (`ok`, or why not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

/// A cluster's health: every checked node's, and the latest transitions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClusterHealth {
    /// By node id.
    pub nodes: BTreeMap<String, NodeHealth>,
    /// The latest [`KEPT_TRANSITIONS`], oldest first.
    #[schema(value_type = Vec<HealthTransition>)]
    pub transitions: VecDeque<HealthTransition>,
}

impl ClusterHealth {
    /// Whether nothing was ever checked.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty() && self.transitions.is_empty()
    }

    /// Keeps a transition, dropping the oldest beyond [`KEPT_TRANSITIONS`].
    pub fn record(&mut self, transition: HealthTransition) {
        self.transitions.push_back(transition);
        while self.transitions.len() > KEPT_TRANSITIONS {
            self.transitions.pop_front();
        }
    }
}

/// How a role's nodes are checked: the spec's values with the defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthPolicy {
    /// Between two checks of a node.
    pub interval: Duration,
    /// A check may take this long.
    pub timeout: Duration,
    /// The health action may take this long.
    pub action_timeout: Duration,
    /// Passes in a row that make a node healthy.
    pub healthy_threshold: u32,
    /// Failures in a row that make a node unhealthy.
    pub unhealthy_threshold: u32,
}

impl HealthPolicy {
    /// The policy of `role`'s nodes, or none when its checks are off.
    pub fn of(spec: &Spec, role: &str) -> Option<HealthPolicy> {
        let own = spec.role(role).and_then(|r| r.health_check.as_ref());
        let cluster = spec.health_check.as_ref();
        // A role that says anything about its checks decides whether they run.
        let enabled = own.or(cluster).is_some_and(|hc| hc.enable);
        if !enabled {
            return None;
        }
        let pick = |field: fn(&HealthCheck) -> Option<u32>, default: u32| {
            own.and_then(field)
                .or_else(|| cluster.and_then(field))
                .unwrap_or(default)
        };
        let secs = |s: u32| Duration::from_secs(u64::from(s));
        Some(HealthPolicy {
            interval: secs(pick(|h| h.interval_sec, 60)),
            timeout: secs(pick(|h| h.timeout_sec, 10)),
            action_timeout: secs(pick(|h| h.action_timeout_sec, 30)),
            healthy_threshold: pick(|h| h.healthy_threshold, 3),
            unhealthy_threshold: pick(|h| h.unhealthy_threshold, 3),
        })
    }
}

/// A monitor call may take this long (the original's `monitor.cmd` limit, notes §2.5).
pub const MONITOR_TIMEOUT: Duration = Duration::from_secs(5);

/// What a role's `monitor` collects: its items, or none when monitoring is off.
/// A role's `monitor` replaces the cluster's as a whole (its items are its own).
pub fn monitor_items(spec: &Spec, role: &str) -> Option<Vec<String>> {
    let monitor = spec
        .role(role)
        .and_then(|r| r.monitor.as_ref())
        .or(spec.monitor.as_ref())?;
    if monitor.get("enable").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    let items = monitor.get("items").and_then(Value::as_object);
    Some(items.map(|i| i.keys().cloned().collect()).unwrap_or_default())
}
