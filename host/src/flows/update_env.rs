//! Update env — the original platform's "modify configuration parameters"
//! (`notes/appcenter-spec.md` §3.2, §5.15): the record's env takes the new
//! values (a journaled step: a cancel before it leaves the env as it was),
//! the metadata takes them, and, as confd does on any metadata change, every
//! node re-renders its configuration and reloads where the files really
//! changed. The values follow the spec's env rules (keys are path segments;
//! values are scalars or objects of scalars). A failed render leaves the new
//! env in place (the nodes that rendered it use it) and the cluster failed;
//! another update-env may then fix the value. On a stopped cluster only the
//! record and the metadata change: its nodes render when it starts.

use super::Flow;
use super::admit::{Refusal, by_status, no_upgrade};
use crate::cluster::{Cluster, ClusterStatus, merge_env};
use crate::plan::{Action, Plan};
use crate::request::OperationKind;
use serde_json::{Map, Value};

/// Most keys one update may change.
pub const MAX_ENV_KEYS: usize = 256;
/// Largest env a cluster may have, as JSON text (bytes).
pub const MAX_ENV_BYTES: usize = 1 << 20;

/// Setting (or, with `null`, removing) keys of the cluster's env.
pub(super) struct UpdateEnv {
    pub(super) env: Map<String, Value>,
}

impl UpdateEnv {
    /// Why the change is bad input, if it is. Fixing a cluster whose last
    /// update-env failed, the same values may be given again.
    fn check(&self, cluster: &Cluster, fixing: bool) -> Result<(), String> {
        if self.env.is_empty() {
            return Err("name at least one KEY=VALUE".into());
        }
        if self.env.len() > MAX_ENV_KEYS {
            return Err(format!("{} keys in one update; at most {MAX_ENV_KEYS}", self.env.len()));
        }
        let set: Map<String, Value> = self
            .env
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let removed: Map<String, Value> = self
            .env
            .iter()
            .filter(|(_, v)| v.is_null())
            .map(|(k, _)| (k.clone(), Value::Bool(true)))
            .collect();
        let problems = crate::spec::env_problems("env", &set)
            .into_iter()
            .chain(crate::spec::env_problems("env", &removed));
        let empty = set.iter().find(|(_, v)| v.as_object().is_some_and(|o| o.is_empty()));
        if let Some((key, _)) = empty {
            return Err(format!(
                "env.{}: an empty object sets nothing; give null to remove the key",
                crate::text::clip(key, 64)
            ));
        }
        if let Some((place, what)) = problems.into_iter().next() {
            return Err(format!("{}: {what}", crate::text::clip(&place, 80)));
        }
        for role in &cluster.spec.nodes {
            for (key, value) in &set {
                if let Some(own) = role.env.get(key)
                    && own.is_object() != value.is_object()
                {
                    return Err(format!(
                        "env.{}: role {} has it as {}, so it cannot be {} (the role's env and the cluster's merge)",
                        crate::text::clip(key, 64),
                        role.role,
                        if own.is_object() { "an object" } else { "a value" },
                        if value.is_object() { "an object" } else { "a value" },
                    ));
                }
            }
        }
        let merged = merge_env(&cluster.spec.env, &self.env);
        if merged == cluster.spec.env && !fixing {
            return Err("nothing changes: the env already has these values".into());
        }
        let bytes = Value::Object(merged).to_string().len();
        if bytes > MAX_ENV_BYTES {
            return Err(format!("the env would take {bytes} bytes; at most {MAX_ENV_BYTES}"));
        }
        Ok(())
    }
}

impl Flow for UpdateEnv {
    fn kind(&self) -> OperationKind {
        OperationKind::UpdateEnv
    }

    /// An active or stopped cluster (whose nodes render when it starts), or
    /// one whose last update-env failed: a bad value can be fixed.
    fn admit(&self, cluster: &Cluster) -> Result<ClusterStatus, Refusal> {
        let fixing = cluster.status == ClusterStatus::Failed && cluster.failed_during == Some(OperationKind::UpdateEnv);
        if !matches!(cluster.status, ClusterStatus::Active | ClusterStatus::Stopped) && !fixing {
            return Err(by_status(self.kind(), cluster));
        }
        no_upgrade(self.kind(), cluster)?;
        self.check(cluster, fixing)
            .map_err(|why| Refusal::new(self.kind(), Some(cluster), why))?;
        Ok(ClusterStatus::Updating)
    }

    fn plan(&self, cluster: &Cluster) -> Plan {
        let mut plan = Plan::default();
        plan.push(
            Action::SetEnv { env: self.env.clone() },
            "update-env 1: the cluster record takes the new env",
        );
        plan.push(
            Action::RegisterEnv,
            "update-env 1: register the new env in the metadata service",
        );
        plan.push(
            Action::RenderConfig {
                nodes: cluster.live_node_ids().into(),
            },
            "update-env 2: every node refreshes its configuration; reload where it really changed",
        );
        // A stopped cluster (or one whose update-env failed while stopped) stays stopped.
        let after = if cluster.live_nodes().all(|n| n.instance_id.is_none()) {
            ClusterStatus::Stopped
        } else {
            ClusterStatus::Active
        };
        plan.push(
            Action::SetStatus { status: after },
            format!("update-env: the cluster is {after} again"),
        );
        plan
    }
}
