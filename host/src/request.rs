//! Operation requests: what a user asks for, as data. The request is stored
//! with its operation, so `op show` and a resumed run see what was asked.

use crate::apps::AppRef;
use crate::spec::UpgradingPolicy;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// One request, as the CLI (and later the server) submits it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum OperationRequest {
    /// Create a cluster from an app spec (registered as a version of its
    /// app when it is new) or from a registered app version.
    CreateCluster {
        /// The app spec file (the CLI's; a server refuses it: upload the app and name it in `app`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<String>)]
        spec: Option<PathBuf>,
        /// The registered app version.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        app: Option<AppRef>,
        /// The cluster's name; the spec's name when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// Delete a cluster.
    DeleteCluster {
        /// The cluster id.
        cluster: String,
        /// Go on where a refusing `destroy` may be forced (`allow_force`).
        #[serde(default)]
        force: bool,
    },
    /// Stop a cluster.
    StopCluster {
        /// The cluster id.
        cluster: String,
    },
    /// Start (resume) a stopped cluster.
    StartCluster {
        /// The cluster id.
        cluster: String,
    },
    /// Add nodes to a role (`scale_horizontal`).
    AddNodes {
        /// The cluster id.
        cluster: String,
        /// The role that grows.
        role: String,
        /// How many nodes (each with the role's replicas).
        count: u32,
    },
    /// Delete nodes (`scale_horizontal`); a node's replicas go with it.
    DeleteNodes {
        /// The cluster id.
        cluster: String,
        /// The nodes, by `node_id`.
        nodes: Vec<String>,
        /// Go on where a refusing `destroy` may be forced (`allow_force`).
        #[serde(default)]
        force: bool,
    },
    /// Resize a role's nodes (vertical scaling).
    Resize {
        /// The cluster id.
        cluster: String,
        /// The role resized (its replicas with it).
        role: String,
        /// The new resources.
        change: ResourceChange,
    },
    /// Change the cluster's env (or a role's); every node re-renders its config.
    UpdateEnv {
        /// The cluster id.
        cluster: String,
        /// The keys set, each one the spec declares.
        env: serde_json::Map<String, serde_json::Value>,
        /// The role whose own env changes; the cluster's when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<String>,
    },
    /// Run a custom service (`"type": "custom"`) of the app.
    RunService {
        /// The cluster id.
        cluster: String,
        /// The service's name.
        service: String,
        /// The parameters given (the spec's defaults fill the rest).
        #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
        params: serde_json::Map<String, serde_json::Value>,
        /// Only this role's nodes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<String>,
        /// Only these nodes.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        nodes: Vec<String>,
    },
    /// Back a cluster up, as its spec's `backup_policy` says.
    Backup {
        /// The cluster id.
        cluster: String,
        /// The backup's name; its id when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// The user's parameters of the `backup` hook.
        #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
        params: serde_json::Map<String, serde_json::Value>,
        /// Build on the cluster's latest backup (store only what changed).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        incremental: bool,
        /// The backup to make (its id, the point it builds on), fixed when submitted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(read_only)]
        order: Option<BackupOrder>,
    },
    /// Restore a backup: a `device` one into a new cluster, a `custom` one in place.
    Restore {
        /// The backup id.
        backup: String,
        /// The new cluster's name (a `device` backup); its cluster's when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// The cluster restored in place (a `custom` backup), filled in when submitted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(read_only)]
        cluster: Option<String>,
    },
    /// Delete backups of a cluster (a point and the points built on it).
    DeleteBackup {
        /// The backup id asked for.
        backup: String,
        /// Delete the points built on it too.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        chain: bool,
        /// The cluster it was taken of, filled in when submitted.
        #[serde(default)]
        #[schema(read_only)]
        cluster: String,
        /// The backups deleted, latest first, filled in when submitted.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[schema(read_only)]
        backups: Vec<String>,
    },
    /// Move a cluster to another network (`advanced_actions: change_vxnet`).
    ChangeVxnet {
        /// The cluster id.
        cluster: String,
        /// The network it moves to.
        vxnet: String,
        /// Addresses pinned in the new network, by node id; the others get the pool's.
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        ips: std::collections::BTreeMap<String, String>,
    },
    /// Swap the reserved IPs of two clusters of one app version in one network.
    ExchangeIps {
        /// The cluster id.
        cluster: String,
        /// The other cluster (held read-only while the addresses move).
        with: String,
        /// The other cluster's last operation when the exchange was checked,
        /// filled in when submitted: one begun on it since refuses the start.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(read_only)]
        with_last: Option<String>,
    },
    /// Restart the app (its `restart` service) on every node, or a role's.
    Restart {
        /// The cluster id.
        cluster: String,
        /// Only this role's nodes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<String>,
    },
    /// Upgrade to another version of the cluster's app, the way that
    /// version's `upgrading_policy` says; a failed one is run again the same way.
    Upgrade {
        /// The cluster id.
        cluster: String,
        /// The version upgraded to.
        version: String,
        /// The version's `upgrading_policy`, filled in when it is submitted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(read_only)]
        policy: Option<UpgradingPolicy>,
        /// A rolling upgrade's canaries: nodes upgraded first, one at a time.
        #[serde(default, skip_serializing_if = "is_zero")]
        canaries: u32,
        /// A rolling upgrade's nodes at once after the canaries (1 when 0).
        #[serde(default, skip_serializing_if = "is_zero")]
        max_in_flight: u32,
    },
    /// Go back from a failed upgrade to the version it started from.
    Downgrade {
        /// The cluster id.
        cluster: String,
    },
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl OperationRequest {
    /// What kind of operation it asks for.
    pub fn kind(&self) -> OperationKind {
        match self {
            OperationRequest::CreateCluster { .. } => OperationKind::CreateCluster,
            OperationRequest::DeleteCluster { .. } => OperationKind::DeleteCluster,
            OperationRequest::StopCluster { .. } => OperationKind::StopCluster,
            OperationRequest::StartCluster { .. } => OperationKind::StartCluster,
            OperationRequest::AddNodes { .. } => OperationKind::AddNodes,
            OperationRequest::DeleteNodes { .. } => OperationKind::DeleteNodes,
            OperationRequest::Resize { .. } => OperationKind::Resize,
            OperationRequest::UpdateEnv { .. } => OperationKind::UpdateEnv,
            OperationRequest::RunService { .. } => OperationKind::RunService,
            OperationRequest::Restart { .. } => OperationKind::Restart,
            OperationRequest::ChangeVxnet { .. } => OperationKind::ChangeVxnet,
            OperationRequest::ExchangeIps { .. } => OperationKind::ExchangeIps,
            OperationRequest::Backup { .. } => OperationKind::Backup,
            OperationRequest::Restore { .. } => OperationKind::Restore,
            OperationRequest::DeleteBackup { .. } => OperationKind::DeleteBackup,
            OperationRequest::Upgrade { .. } => OperationKind::Upgrade,
            OperationRequest::Downgrade { .. } => OperationKind::Downgrade,
        }
    }

    /// The WIT operation hooks are told about (an upgrade's, by its policy).
    pub fn wit(&self) -> crate::hook::Operation {
        use crate::hook::Operation as W;
        match self {
            OperationRequest::Upgrade { policy, .. } => match policy.unwrap_or_default() {
                UpgradingPolicy::Parallel => W::ParallelUpgrade,
                UpgradingPolicy::Sequential => W::RollingUpgrade,
                UpgradingPolicy::InPlaceParallel | UpgradingPolicy::InPlaceSequential => W::InPlaceUpgrade,
            },
            other => other.kind().wit(),
        }
    }

    /// The existing cluster it targets; `None` for a request that makes a new one.
    pub fn cluster_id(&self) -> Option<&str> {
        match self {
            OperationRequest::CreateCluster { .. } => None,
            OperationRequest::Restore { cluster, .. } => cluster.as_deref(),
            OperationRequest::DeleteCluster { cluster, .. }
            | OperationRequest::StopCluster { cluster }
            | OperationRequest::StartCluster { cluster }
            | OperationRequest::AddNodes { cluster, .. }
            | OperationRequest::DeleteNodes { cluster, .. }
            | OperationRequest::Resize { cluster, .. }
            | OperationRequest::UpdateEnv { cluster, .. }
            | OperationRequest::RunService { cluster, .. }
            | OperationRequest::Restart { cluster, .. }
            | OperationRequest::ChangeVxnet { cluster, .. }
            | OperationRequest::ExchangeIps { cluster, .. }
            | OperationRequest::Backup { cluster, .. }
            | OperationRequest::DeleteBackup { cluster, .. }
            | OperationRequest::Upgrade { cluster, .. }
            | OperationRequest::Downgrade { cluster } => Some(cluster),
        }
    }

    /// A field set that only the engine fills in (when it is submitted), if
    /// any: a request from outside (the server's tenants) must leave them out.
    pub fn filled_by_engine(&self) -> Option<&'static str> {
        match self {
            OperationRequest::Backup { order: Some(_), .. } => Some("order"),
            OperationRequest::Restore { cluster: Some(_), .. } => Some("cluster"),
            OperationRequest::DeleteBackup { cluster, .. } if !cluster.is_empty() => Some("cluster"),
            OperationRequest::DeleteBackup { backups, .. } if !backups.is_empty() => Some("backups"),
            OperationRequest::ExchangeIps { with_last: Some(_), .. } => Some("with_last"),
            OperationRequest::Upgrade { policy: Some(_), .. } => Some("policy"),
            _ => None,
        }
    }

    /// The other cluster it holds while it runs (an IP exchange's).
    pub fn peer_id(&self) -> Option<&str> {
        self.peer().map(|(id, _)| id)
    }

    /// The other cluster it holds, with the last operation it had when the request was checked.
    pub fn peer(&self) -> Option<(&str, Option<&str>)> {
        match self {
            OperationRequest::ExchangeIps { with, with_last, .. } => Some((with, with_last.as_deref())),
            _ => None,
        }
    }

    /// The app spec it names, if any.
    pub fn spec(&self) -> Option<&Path> {
        match self {
            OperationRequest::CreateCluster { spec, .. } => spec.as_deref(),
            _ => None,
        }
    }
}

/// What a backup operation is asked to make: fixed when it is submitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackupOrder {
    /// The backup's id (`s-xxxxxxxx`).
    pub id: String,
    /// Its name.
    pub name: String,
    /// How it is taken.
    pub policy: crate::spec::BackupPolicy,
    /// The point it builds on (an incremental backup); none for a full one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The user's parameters of the `backup` hook.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub params: serde_json::Map<String, serde_json::Value>,
}

/// New resources asked for a node; what is left out stays as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResourceChange {
    /// CPU cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
    /// Memory, MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// Data volume, GiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_size: Option<u64>,
    /// Instance class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_class: Option<u32>,
}

impl fmt::Display for ResourceChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(cpu) = self.cpu {
            parts.push(format!("cpu {cpu}"));
        }
        if let Some(memory) = self.memory {
            parts.push(format!("memory {memory} MiB"));
        }
        if let Some(size) = self.volume_size {
            parts.push(format!("volume {size} GiB"));
        }
        if let Some(class) = self.instance_class {
            parts.push(format!("instance class {class}"));
        }
        f.write_str(&parts.join(", "))
    }
}

impl ResourceChange {
    /// Whether it asks for nothing.
    pub fn is_empty(&self) -> bool {
        *self == ResourceChange::default()
    }

    /// Whether it changes only the volume's size.
    pub fn only_volume(&self) -> bool {
        self.volume_size.is_some() && self.cpu.is_none() && self.memory.is_none() && self.instance_class.is_none()
    }
}

/// The kinds of operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OperationKind {
    /// Create a cluster.
    CreateCluster,
    /// Delete a cluster.
    DeleteCluster,
    /// Stop a cluster.
    StopCluster,
    /// Start (resume) a stopped cluster.
    StartCluster,
    /// Add nodes.
    AddNodes,
    /// Delete nodes.
    DeleteNodes,
    /// Vertical scaling.
    Resize,
    /// Change the env.
    UpdateEnv,
    /// Run a custom service.
    RunService,
    /// Restart the app.
    Restart,
    /// Move to another network.
    ChangeVxnet,
    /// Swap reserved IPs with another cluster.
    ExchangeIps,
    /// Back a cluster up.
    Backup,
    /// Restore a backup.
    Restore,
    /// Delete backups.
    DeleteBackup,
    /// Upgrade to another app version.
    Upgrade,
    /// Go back from a failed upgrade.
    Downgrade,
}

impl OperationKind {
    /// The verb of its messages (`delete` for `delete-cluster`).
    pub fn verb(self) -> &'static str {
        match self {
            OperationKind::CreateCluster => "create",
            OperationKind::DeleteCluster => "delete",
            OperationKind::StopCluster => "stop",
            OperationKind::StartCluster => "start",
            OperationKind::AddNodes => "add nodes to",
            OperationKind::DeleteNodes => "delete nodes of",
            OperationKind::Resize => "resize",
            OperationKind::UpdateEnv => "update the env of",
            OperationKind::RunService => "run a service on",
            OperationKind::Restart => "restart",
            OperationKind::ChangeVxnet => "change the network of",
            OperationKind::ExchangeIps => "exchange the reserved IPs of",
            OperationKind::Backup => "back up",
            OperationKind::Restore => "restore",
            OperationKind::DeleteBackup => "delete a backup of",
            OperationKind::Upgrade => "upgrade",
            OperationKind::Downgrade => "downgrade",
        }
    }

    /// The WIT operation hooks are told about.
    pub fn wit(self) -> crate::hook::Operation {
        use crate::hook::Operation as W;
        match self {
            OperationKind::CreateCluster => W::CreateCluster,
            OperationKind::DeleteCluster => W::DeleteCluster,
            OperationKind::StopCluster => W::StopCluster,
            OperationKind::StartCluster => W::StartCluster,
            OperationKind::AddNodes => W::AddNodes,
            OperationKind::DeleteNodes => W::DeleteNodes,
            OperationKind::Resize => W::VerticalScaling,
            OperationKind::UpdateEnv => W::UpdateEnv,
            OperationKind::RunService => W::CustomService,
            OperationKind::Restart => W::RestartService,
            OperationKind::ChangeVxnet => W::ChangeNetwork,
            OperationKind::ExchangeIps => W::ExchangeReservedIps,
            OperationKind::Backup => W::Backup,
            OperationKind::Restore => W::Restore,
            OperationKind::DeleteBackup => W::DeleteBackup,
            OperationKind::Upgrade => W::ParallelUpgrade,
            OperationKind::Downgrade => W::UpgradeRecovery,
        }
    }
}

impl fmt::Display for OperationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&kebab_name(self))
    }
}

/// A serde enum's name (`create-cluster`).
pub fn kebab_name<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_tagged_by_kind() {
        let request = OperationRequest::DeleteCluster {
            cluster: "cl-1".into(),
            force: true,
        };
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "delete-cluster", "cluster": "cl-1", "force": true})
        );
        assert_eq!(serde_json::from_value::<OperationRequest>(json).unwrap(), request);
        assert_eq!(request.kind().to_string(), "delete-cluster");
        assert_eq!(request.cluster_id(), Some("cl-1"));
        let create = OperationRequest::CreateCluster {
            spec: Some("app/spec.json".into()),
            app: None,
            name: None,
        };
        assert_eq!(
            (create.cluster_id(), create.spec()),
            (None, Some(Path::new("app/spec.json")))
        );
    }
}
