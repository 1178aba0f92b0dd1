//! Update env — the original platform's "modify configuration parameters"
//! (`notes/appcenter-spec.md` §3.2, §5.15): the cluster's `/env` takes the
//! new values, and, as confd does on any metadata change, every node
//! re-renders its configuration and reloads where the files really changed.
//! The change is in the record from the start: a failed render leaves the
//! new env in place (the nodes that rendered it use it).

use super::Flow;
use super::admit::{Refusal, by_status};
use crate::cluster::{Cluster, ClusterStatus};
use crate::plan::{Action, Plan};
use crate::request::OperationKind;
use serde_json::{Map, Value};

/// Longest env key, in characters.
const MAX_KEY_CHARS: usize = 128;

/// Setting (or, with `null`, removing) keys of the cluster's env.
pub(super) struct UpdateEnv {
    pub(super) env: Map<String, Value>,
}

impl Flow for UpdateEnv {
    fn kind(&self) -> OperationKind {
        OperationKind::UpdateEnv
    }

    fn admit(&self, cluster: &Cluster) -> Result<ClusterStatus, Refusal> {
        if cluster.status != ClusterStatus::Active {
            return Err(by_status(self.kind(), cluster));
        }
        let refuse = |why: String| Err(Refusal::new(self.kind(), Some(cluster), why));
        if self.env.is_empty() {
            return refuse("name at least one KEY=VALUE".into());
        }
        for key in self.env.keys() {
            let shown = crate::text::clip(key, 64);
            if let Err(why) = crate::text::check_name(key, MAX_KEY_CHARS) {
                return refuse(format!("env key {shown:?}: a key {why}"));
            }
            if key.contains('/') || key == "." || key == ".." {
                return refuse(format!("env key {shown:?}: a key is one name, without '/'"));
            }
        }
        for role in &cluster.spec.nodes {
            for (key, value) in &self.env {
                if let Some(own) = role.env.get(key)
                    && !value.is_null()
                    && own.is_object() != value.is_object()
                {
                    return refuse(format!(
                        "env key {}: role {} has it as {}, so it cannot be {} (the role's env and the cluster's merge)",
                        crate::text::clip(key, 64),
                        role.role,
                        if own.is_object() { "an object" } else { "a value" },
                        if value.is_object() { "an object" } else { "a value" },
                    ));
                }
            }
        }
        if self.apply(&cluster.spec.env) == cluster.spec.env {
            return refuse("nothing changes: the env already has these values".into());
        }
        Ok(ClusterStatus::Updating)
    }

    fn prepare(&self, mut cluster: Cluster) -> Result<Cluster, Refusal> {
        cluster.spec.env = self.apply(&cluster.spec.env);
        Ok(cluster)
    }

    fn plan(&self, cluster: &Cluster) -> Plan {
        let mut plan = Plan::default();
        plan.push(
            Action::RegisterMetadata,
            "update-env 1: register the new env in the metadata service",
        );
        plan.push(
            Action::RenderConfig {
                nodes: cluster.live_node_ids().into(),
            },
            "update-env 2: every node refreshes its configuration; reload where it really changed",
        );
        plan.push(
            Action::SetStatus {
                status: ClusterStatus::Active,
            },
            "update-env: the cluster is active",
        );
        plan
    }
}

impl UpdateEnv {
    /// `env` with the change: keys set, `null` keys removed.
    fn apply(&self, env: &Map<String, Value>) -> Map<String, Value> {
        let mut env = env.clone();
        for (key, value) in &self.env {
            match value {
                Value::Null => {
                    env.remove(key);
                }
                value => {
                    env.insert(key.clone(), value.clone());
                }
            }
        }
        env
    }
}
