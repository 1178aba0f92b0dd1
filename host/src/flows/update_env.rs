//! Update env — the original platform's "modify configuration parameters"
//! (`UpdateClusterEnvironment(cluster, role?)`, `notes/appcenter-spec.md`
//! §2.7, §3.2, §5.15): the record's env (the cluster's, or one role's)
//! takes the new values (a journaled step: a cancel before it leaves the
//! env as it was), the metadata takes them in one revision, and, as confd
//! does on any metadata change, every node re-renders its configuration
//! and reloads where the files really changed.
//!
//! Only keys the spec declares change (the keys of its `env`, or of the
//! role's), and not those it lists in `unchangeable_env` (`config.json`'s
//! `changeable: false`); a key keeps its shape (a value stays a value, an
//! object an object), and keys neither come nor go. A failed render leaves
//! the new env in place (the nodes that rendered it use it) and the cluster
//! failed; another update-env may then fix the value. On a stopped cluster
//! only the record and the metadata change: its nodes render when it starts.

use super::Flow;
use super::admit::{Refusal, by_status, no_upgrade, role_spec};
use crate::cluster::{Cluster, ClusterStatus, merge_env};
use crate::plan::{Action, Plan};
use crate::request::OperationKind;
use serde_json::{Map, Value};

/// Most keys one update may change.
pub const MAX_ENV_KEYS: usize = 256;
/// Largest env a cluster may have, as JSON text (bytes).
pub const MAX_ENV_BYTES: usize = 1 << 20;

/// Setting keys of the cluster's env, or of a role's.
pub(super) struct UpdateEnv {
    pub(super) env: Map<String, Value>,
    pub(super) role: Option<String>,
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
        let (declared, fixed, whose) = match &self.role {
            Some(role) => {
                let spec = role_spec(OperationKind::UpdateEnv, cluster, role).map_err(|r| r.reason)?;
                (&spec.env, &spec.unchangeable_env, format!("role {role}'s env"))
            }
            None => (&cluster.spec.env, &cluster.spec.unchangeable_env, "the env".to_string()),
        };
        if let Some((key, _)) = self.env.iter().find(|(_, v)| v.is_null()) {
            return Err(format!(
                "env.{}: a key the spec declares cannot be removed; give it a value",
                crate::text::clip(key, 64)
            ));
        }
        if let Some((place, what)) = crate::spec::env_problems("env", &self.env).into_iter().next() {
            return Err(format!("{}: {what}", crate::text::clip(&place, 80)));
        }
        for (key, value) in &self.env {
            let shown = crate::text::clip(key, 64);
            let Some(now) = declared.get(key) else {
                let keys: Vec<String> = declared.keys().take(20).map(|k| crate::text::clip(k, 64)).collect();
                let keys = if keys.is_empty() {
                    "it declares none".to_string()
                } else {
                    format!("its keys are {}", keys.join(", "))
                };
                return Err(format!("env.{shown}: the spec declares no such key in {whose}; {keys}"));
            };
            if fixed.contains(key) {
                return Err(format!(
                    "env.{shown}: set once, at create (the spec lists it in unchangeable_env)"
                ));
            }
            if value.as_object().is_some_and(|o| o.is_empty()) {
                return Err(format!("env.{shown}: an empty object sets nothing"));
            }
            if now.is_object() != value.is_object() {
                return Err(format!(
                    "env.{shown}: the spec has it as {}, so it cannot be {}",
                    if now.is_object() { "an object" } else { "a value" },
                    if value.is_object() { "an object" } else { "a value" },
                ));
            }
        }
        let merged = merge_env(declared, &self.env);
        if &merged == declared && !fixing {
            return Err(format!("nothing changes: {whose} already has these values"));
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
            Action::SetEnv {
                env: self.env.clone(),
                role: self.role.clone(),
            },
            "update-env 1: the cluster record takes the new env",
        );
        plan.push(
            Action::RegisterEnv,
            "update-env 1: register the new env in the metadata service, in one revision",
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
