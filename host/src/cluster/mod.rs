//! The cluster record: its nodes, their resources and images, and where the
//! cluster is in its life; and the metadata tree it is registered as
//! ([`cluster_tree`]).

mod health;
mod reserved;
mod tree;

pub use health::{
    ClusterHealth, HealthPolicy, HealthStatus, HealthTransition, KEPT_TRANSITIONS, MONITOR_TIMEOUT, NodeHealth,
    monitor_items,
};
pub use reserved::{clear_reserved_ips, reserved_ips, set_reserved_ip};
pub use tree::{OWNED_KEYS, cluster_tree, host_writes, tree_changes};

use crate::apps::AppRef;
use crate::request::{OperationKind, kebab_name};
use crate::spec::{ServiceSpec, Spec, UpgradingPolicy};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// Longest cluster name, in characters.
pub const MAX_NAME_CHARS: usize = 128;

/// The current time as RFC 3339 with microseconds (`2026-11-26T10:37:50.123456Z`).
pub fn now() -> String {
    humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string()
}

/// A fresh id: `prefix-` and 8 lowercase letters or digits.
pub fn new_id(prefix: &str) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let tail: String = (0..8).map(|_| CHARS[fastrand::usize(..CHARS.len())] as char).collect();
    format!("{prefix}-{tail}")
}

/// Checks a cluster name: 1 to [`MAX_NAME_CHARS`] characters, some visible, nothing hidden.
pub fn check_name(name: &str) -> Result<(), String> {
    crate::text::check_name(name, MAX_NAME_CHARS).map_err(|why| format!("a cluster name {why}"))
}

/// `env` with `change` applied: keys set, `null` keys removed.
pub fn merge_env(
    env: &serde_json::Map<String, serde_json::Value>,
    change: &serde_json::Map<String, serde_json::Value>,
) -> serde_json::Map<String, serde_json::Value> {
    let mut env = env.clone();
    for (key, value) in change {
        if value.is_null() {
            env.remove(key);
        } else {
            env.insert(key.clone(), value.clone());
        }
    }
    env
}

/// Where a cluster is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ClusterStatus {
    /// Being created.
    Creating,
    /// Running.
    Active,
    /// Being stopped.
    Stopping,
    /// Stopped: volumes kept, no instances.
    Stopped,
    /// Being started.
    Starting,
    /// Being deleted.
    Deleting,
    /// Nodes being added.
    ScalingOut,
    /// Nodes being deleted.
    ScalingIn,
    /// A role being resized (vertical scaling).
    Resizing,
    /// Its env being changed.
    Updating,
    /// Running a custom service.
    RunningService,
    /// Its app being restarted.
    Restarting,
    /// Being backed up (or its backups deleted).
    BackingUp,
    /// Being restored from a backup.
    Restoring,
    /// Moving to another network.
    ChangingVxnet,
    /// Swapping reserved IPs with another cluster (either one of the two).
    ExchangingIps,
    /// Being upgraded to another app version.
    Upgrading,
    /// Going back to the app version a failed upgrade left.
    Downgrading,
    /// Gone; the record stays for history.
    Deleted,
    /// An operation failed half-way; delete it, or start/stop it again.
    Failed,
}

impl fmt::Display for ClusterStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&kebab_name(self))
    }
}

/// An upgrade a cluster is in: begun, not yet finished or undone. From its
/// start the cluster's app version is the one upgraded to; a node still
/// booted from the old version says so (`Node::version`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Upgrade {
    /// How it runs (the new version's `upgrading_policy`).
    pub policy: UpgradingPolicy,
    /// The version upgraded from.
    pub from: String,
    /// The version upgraded to.
    pub to: String,
    /// The nodes whose upgrade completed (the same upgrade run again skips them).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub done: BTreeSet<String>,
}

/// A node's resources.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Resources {
    /// CPU cores.
    pub cpu: u32,
    /// Memory, MiB.
    pub memory: u64,
    /// Data volume, GiB.
    pub volume_size: u64,
    /// GPUs.
    #[serde(default)]
    pub gpu: u32,
    /// Instance class.
    #[serde(default)]
    pub instance_class: u32,
    /// Volume class.
    #[serde(default)]
    pub volume_class: u32,
}

impl Resources {
    /// Takes what a change asks for; what it leaves out stays.
    pub fn apply(&mut self, change: &crate::request::ResourceChange) {
        if let Some(cpu) = change.cpu {
            self.cpu = cpu;
        }
        if let Some(memory) = change.memory {
            self.memory = memory;
        }
        if let Some(size) = change.volume_size {
            self.volume_size = size;
        }
        if let Some(class) = change.instance_class {
            self.instance_class = class;
        }
    }
}

/// One node of a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Node {
    /// Stable id (`cln-xxxxxxxx`).
    pub node_id: String,
    /// The node's role.
    pub role: String,
    /// Current instance (`i-xxxxxxxx`), new at every start; none while stopped.
    pub instance_id: Option<String>,
    /// Private IP address; empty until the store allocates one.
    pub ip: String,
    /// MAC address.
    pub mac: String,
    /// Server id within the role, from 1.
    pub sid: u32,
    /// Group id (a node and its replicas share it).
    pub gid: u32,
    /// Globally unique server id (9 digits).
    pub gsid: u64,
    /// Its resources.
    #[serde(flatten)]
    pub resources: Resources,
    /// The app version its instance was booted from, when it is not the
    /// cluster's (an upgrade has not reached it, or an in-place upgrade's
    /// new image waits for the next start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// What its `custom_metadata` replied (`/host/token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Its resources are deleted (a cluster's deletion got past it); the
    /// record stays for history.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// Added by an add-nodes that has not finished: its `init` or `start`
    /// may not have run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub joining: bool,
}

impl Node {
    /// A node of `role` (a role or its replica role) sized as `spec` says.
    fn sized(role: &str, sid: u32, gid: u32, spec: &crate::spec::RoleSpec) -> Node {
        Node::new(
            role,
            sid,
            gid,
            Resources {
                cpu: spec.cpu,
                memory: spec.memory,
                volume_size: spec.volume.as_ref().map(|v| v.size).unwrap_or(0),
                gpu: spec.gpu,
                instance_class: spec.instance_class.unwrap_or(0),
                volume_class: spec.volume.as_ref().and_then(|v| v.class).unwrap_or(0),
            },
        )
    }

    /// A new node (fresh ids, no IP yet) of `role` with these ids and resources.
    pub fn new(role: &str, sid: u32, gid: u32, resources: Resources) -> Node {
        Node {
            node_id: new_id("cln"),
            role: role.to_string(),
            instance_id: Some(new_id("i")),
            ip: String::new(),
            mac: String::new(),
            sid,
            gid,
            gsid: fastrand::u64(100_000_000..1_000_000_000),
            resources,
            version: None,
            token: None,
            deleted: false,
            joining: false,
        }
    }
}

/// The `sid`s a role does not use, lowest first.
struct FreeSids {
    used: std::collections::HashSet<u32>,
    next: u32,
}

impl FreeSids {
    fn of(cluster: &Cluster, role: &str) -> FreeSids {
        FreeSids {
            used: cluster.nodes.iter().filter(|n| n.role == role).map(|n| n.sid).collect(),
            next: 1,
        }
    }

    fn take(&mut self) -> u32 {
        while self.used.contains(&self.next) {
            self.next += 1;
        }
        self.used.insert(self.next);
        self.next
    }
}

/// The spec of a role's service in `spec`, if the role defines it. Replicas
/// run their role's services, but `backup` and `restore` only with `with_replica`.
pub fn role_service<'a>(spec: &'a Spec, role: &str, service: &str) -> Option<&'a ServiceSpec> {
    let found = spec.role(role).and_then(|r| r.service(service))?;
    let replica_skips = crate::spec::is_replica_role(role)
        && matches!(service, "backup" | "restore")
        && found.with_replica != Some(true);
    (!replica_skips).then_some(found)
}

/// A cluster, as the engine keeps it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Cluster {
    /// Id (`cl-xxxxxxxx`).
    pub id: String,
    /// Name (from `--name`, else the spec's).
    pub name: String,
    /// The app version it runs.
    #[serde(default)]
    pub app: AppRef,
    /// That version's spec, plugins pointing at its images, with the
    /// cluster's own env and network.
    pub spec: Spec,
    /// The spec file it came from.
    #[schema(value_type = String)]
    pub spec_file: PathBuf,
    /// Where it is in its life.
    pub status: ClusterStatus,
    /// Its nodes, in creation order.
    pub nodes: Vec<Node>,
    /// The zone.
    pub zone: String,
    /// When it was created.
    pub created_at: String,
    /// The operation running on it, if any.
    pub operation: Option<String>,
    /// A globally unique id (`/cluster/global_uuid`).
    #[serde(default)]
    pub global_uuid: String,
    /// When `status` is failed: the kind of operation that failed.
    #[serde(default)]
    pub failed_during: Option<OperationKind>,
    /// The upgrade it is in, begun and not finished or undone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<Upgrade>,
    /// Its nodes' health, as the health-check loop last found it.
    #[serde(default, skip_serializing_if = "ClusterHealth::is_empty")]
    pub health: ClusterHealth,
}

impl Cluster {
    /// A new cluster record from a spec: fresh ids, each role's nodes with
    /// `sid` (and `gid`) from 1 and their replicas, a random 9-digit `gsid`,
    /// and an instance id. IPs (the nodes', the reserved ones) are allocated
    /// when the operation begins.
    pub fn new(app: AppRef, mut spec: Spec, spec_file: PathBuf, name: String) -> Cluster {
        clear_reserved_ips(&mut spec);
        let mut cluster = Cluster {
            id: new_id("cl"),
            name,
            app,
            spec,
            spec_file,
            status: ClusterStatus::Creating,
            nodes: Vec::new(),
            zone: "local".into(),
            created_at: now(),
            operation: None,
            global_uuid: format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)),
            failed_during: None,
            upgrade: None,
            health: ClusterHealth::default(),
        };
        for role in cluster.spec.nodes.clone() {
            let nodes = cluster.new_nodes(&role, role.count);
            cluster.nodes.extend(nodes);
        }
        cluster
    }

    /// `count` new nodes of `role` (not yet in the record), each followed by
    /// its replicas (role `<role>-replica`, sharing its `gid`): fresh ids,
    /// the lowest `sid`s the role does not use, sized as the spec says.
    pub fn new_nodes(&self, role: &crate::spec::RoleSpec, count: u32) -> Vec<Node> {
        let mut free = FreeSids::of(self, &role.role);
        let mut free_replica = FreeSids::of(self, &role.replica_role());
        let mut nodes = Vec::new();
        for _ in 0..count {
            let sid = free.take();
            nodes.push(Node::sized(&role.role, sid, sid, role));
            for _ in 0..role.replica {
                nodes.push(Node::sized(&role.replica_role(), free_replica.take(), sid, role));
            }
        }
        nodes
    }

    /// The node with `node_id`.
    pub fn node(&self, node_id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.node_id == node_id)
    }

    /// Every node id, in creation order.
    pub fn node_ids(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.node_id.clone()).collect()
    }

    /// Node counts by role.
    pub fn role_counts(&self) -> BTreeMap<&str, usize> {
        let mut counts = BTreeMap::new();
        for node in &self.nodes {
            *counts.entry(node.role.as_str()).or_default() += 1;
        }
        counts
    }

    /// The component of a node's role in the cluster's app version.
    pub fn plugin_of<'a>(&'a self, node: &'a Node) -> Option<&'a Path> {
        self.spec.role(&node.role).map(|r| r.plugin.as_path())
    }

    /// The app version a node's instance runs.
    pub fn version_of<'a>(&'a self, node: &'a Node) -> &'a str {
        node.version.as_deref().unwrap_or(&self.app.version)
    }

    /// The spec of a role's service in the cluster's app version, if the role defines it.
    pub fn service(&self, role: &str, service: &str) -> Option<&ServiceSpec> {
        role_service(&self.spec, role, service)
    }

    /// The nodes whose resources exist (a failed deletion may have deleted some).
    pub fn live_nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| !n.deleted)
    }

    /// The ids of [`Cluster::live_nodes`].
    pub fn live_node_ids(&self) -> Vec<String> {
        self.live_nodes().map(|n| n.node_id.clone()).collect()
    }

    /// The cluster takes another app version: its spec (and spec file), keeping the
    /// cluster's own env values (a key the version adds comes with its
    /// default; nothing the cluster's env holds is lost) and its network.
    pub fn take_version(&mut self, version: &crate::apps::AppVersion) {
        let mut spec = version.spec.clone();
        spec.env = merge_env(&spec.env, &self.spec.env);
        for role in &mut spec.nodes {
            if let Some(old) = self.spec.nodes.iter().find(|r| r.role == role.role) {
                role.env = merge_env(&role.env, &old.env);
            }
        }
        spec.vxnet = self.spec.vxnet.clone();
        // Reserved IPs the new version still declares keep their addresses.
        clear_reserved_ips(&mut spec);
        for (name, ip) in reserved_ips(&self.spec) {
            set_reserved_ip(&mut spec, &name, &ip);
        }
        self.spec = spec;
        self.app = version.reference();
        self.spec_file = version.source.clone();
    }

    /// The owner key of a node's IP address in its network's pool.
    pub fn ip_owner(&self, node: &Node) -> String {
        format!("{}/{}", self.id, node.node_id)
    }

    /// The owner key of a reserved IP's address in its network's pool.
    pub fn reserved_ip_owner(&self, name: &str) -> String {
        format!("{}/reserved/{name}", self.id)
    }
}
