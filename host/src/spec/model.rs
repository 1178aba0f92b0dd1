//! The spec's shape, key for key (see `../shared/notes/appcenter-spec.md` §2).
//! Keys the engine does not act on yet are still parsed and checked, so a
//! typo is never silently ignored.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Default service timeout in seconds.
pub const DEFAULT_SERVICE_TIMEOUT: u32 = 600;
/// Longest service timeout in seconds.
pub const MAX_SERVICE_TIMEOUT: u32 = 86_400;

/// An app's cluster spec.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The cluster's name (may be empty).
    #[serde(default)]
    pub name: String,
    /// A description (may be empty).
    #[serde(default)]
    pub description: String,
    /// The network the nodes' IPs come from.
    #[serde(default = "default_vxnet")]
    pub vxnet: String,
    /// The roles.
    pub nodes: Vec<RoleSpec>,
    /// Cluster-wide app parameters, visible to hooks under `/env`.
    #[serde(default)]
    pub env: Map<String, Value>,
    /// Operations the app supports beyond the basic ones.
    #[serde(default)]
    pub advanced_actions: Vec<AdvancedAction>,
    /// How an upgrade runs.
    #[serde(default)]
    pub upgrading_policy: UpgradingPolicy,
    /// App versions that may upgrade to this one.
    #[serde(default)]
    pub upgrade_policy: Vec<String>,
    /// How backups are taken.
    #[serde(default)]
    pub backup_policy: Option<BackupPolicy>,
    /// Whether backups may be incremental.
    #[serde(default)]
    pub incremental_backup_supported: bool,
    /// Named service endpoints (`{"client": {"port": 2181, "protocol": "tcp"}}`).
    #[serde(default)]
    pub endpoints: Map<String, Value>,
    /// Cluster-reserved IPs (`{"vip": {"value": ""}}`).
    #[serde(default)]
    pub reserved_ips: Map<String, Value>,
    /// Default health check of every role.
    #[serde(default)]
    pub health_check: Option<HealthCheck>,
    /// Monitoring items (parsed, not acted on yet).
    #[serde(default)]
    pub monitor: Option<Value>,
    /// Custom console tabs (parsed, not acted on yet).
    #[serde(default)]
    pub display_tabs: Option<Value>,
    /// External clusters this one depends on, by service name; an empty
    /// one (what the form sends when the user picks none) is no link.
    #[serde(default)]
    pub links: BTreeMap<String, String>,
    /// Whether the cluster gets a tag id.
    #[serde(default)]
    pub need_tag: bool,
    /// Whether the cluster needs the intranet API server.
    #[serde(default)]
    pub need_intranet_api_server: bool,
    /// Console columns to hide.
    #[serde(default)]
    pub exclude_node_columns: Vec<String>,
    /// Refused: hooks only ever see their own cluster.
    #[serde(default)]
    pub metadata_root_access: bool,
    /// How nodes spread over zones.
    #[serde(default)]
    pub multi_zone_policy: Option<String>,
    /// Operations the console should not offer.
    #[serde(default)]
    pub unsupported_actions: Vec<String>,
    /// What an in-place upgrade copies from the version's payload into the nodes.
    #[serde(default, rename = "in-place-upgrade-nodes")]
    pub in_place_upgrade_nodes: Vec<InPlaceUpgrade>,
    /// Messages by language (`{"en": {"err_code21": "..."}}`): a hook's
    /// error code N is shown with `err_code<N>`.
    #[serde(default)]
    pub locale: BTreeMap<String, BTreeMap<String, String>>,
    /// Env keys set once, at create (`config.json`'s `changeable: false`).
    #[serde(default)]
    pub unchangeable_env: Vec<String>,
    /// The vendor's tags of the cluster: kept and shown, never interpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_tags: Option<Value>,
    /// Links the user may add after create (kept, not acted on yet).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_links: Vec<String>,
    /// Roles an upgrade adds (`{"add": [...]}`; kept, not acted on yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_roles: Option<Value>,
}

/// One entry of `in-place-upgrade-nodes` (`notes/appcenter-spec.md` §5.14):
/// the original platform mounts a disk snapshot on the nodes; here the
/// version's payload directory plays that disk.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InPlaceUpgrade {
    /// The snapshot's place on the original platform (kept, not used: the payload is the version's).
    #[serde(default)]
    pub container: Option<Value>,
    /// What is copied where.
    pub copy: Vec<PayloadCopy>,
}

/// One copy of an in-place upgrade: the payload is seen at `mount_point`,
/// and `source` (beneath it) is copied to `destination` on every node of
/// `mount_role`; a failed copy removes `destination`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayloadCopy {
    /// The role whose nodes get the copy.
    pub mount_role: String,
    /// Where the payload is seen (`/upgrade` by default).
    #[serde(default = "default_payload_mount")]
    pub mount_point: String,
    /// Mount options of the original platform (kept, not used).
    #[serde(default)]
    pub mount_options: Option<String>,
    /// File system of the original platform's disk (kept, not used).
    #[serde(default)]
    pub filesystem: Option<String>,
    /// What is copied: `mount_point` itself or a path beneath it.
    pub source: String,
    /// Where it goes in the node: an absolute path.
    pub destination: String,
}

fn default_payload_mount() -> String {
    "/upgrade".into()
}

impl PayloadCopy {
    /// `source` relative to the payload's root; `None` when it is not beneath `mount_point`.
    pub fn source_in_payload(&self) -> Option<PathBuf> {
        let rel = std::path::Path::new(&self.source)
            .strip_prefix(&self.mount_point)
            .ok()?
            .to_path_buf();
        rel.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
            .then_some(rel)
    }
}

fn default_vxnet() -> String {
    "vxnet-default".into()
}

/// One role: its nodes, its resources, its component and services.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    /// The role's name; may be left out when the app has one role (it is then `node`).
    #[serde(default)]
    pub role: String,
    /// How many nodes.
    pub count: u32,
    /// The hook component, relative to the spec file (absolute after loading).
    #[schema(value_type = String)]
    pub plugin: PathBuf,
    /// CPU cores per node.
    #[serde(default = "one")]
    pub cpu: u32,
    /// Memory per node, MiB.
    #[serde(default = "default_memory")]
    pub memory: u64,
    /// GPUs per node.
    #[serde(default)]
    pub gpu: u32,
    /// CPU model.
    #[serde(default)]
    pub cpu_model: Option<String>,
    /// GPU class.
    #[serde(default)]
    pub gpu_class: Option<u32>,
    /// Instance class.
    #[serde(default)]
    pub instance_class: Option<u32>,
    /// The data volume.
    #[serde(default)]
    pub volume: Option<Volume>,
    /// The role's lifecycle services, by name.
    #[serde(default)]
    pub services: BTreeMap<String, ServiceSpec>,
    /// Role parameters, visible to this role's hooks under `/env` (over the cluster's).
    #[serde(default)]
    pub env: Map<String, Value>,
    /// How vertical scaling visits this role's nodes.
    #[serde(default)]
    pub vertical_scaling_policy: ScalingPolicy,
    /// Replicas per node (sharded apps).
    #[serde(default)]
    pub replica: u32,
    /// Upper bound of `sid` (from 1).
    #[serde(default)]
    pub server_id_upper_bound: Option<u32>,
    /// Where the node runs (the image is the plugin here).
    #[serde(default)]
    pub container: Option<Value>,
    /// Extra quota to check at deploy.
    #[serde(default)]
    pub extra_quota: Option<Value>,
    /// Role-level reserved IPs.
    #[serde(default)]
    pub reserved_ips: Map<String, Value>,
    /// Generate an SSH key pair per node.
    #[serde(default)]
    pub passphraseless: Option<String>,
    /// Keep the node's instance across stop.
    #[serde(default)]
    pub user_access: bool,
    /// Bind a basic-network IP per node.
    #[serde(default)]
    pub eip_class: Option<String>,
    /// Whether the nodes run hooks at all.
    #[serde(default = "yes")]
    pub agent_installed: bool,
    /// The `custom_metadata` service (also accepted in `services`): runs
    /// after `init` and before `start`; its reply becomes `/host/token`.
    #[serde(default)]
    pub custom_metadata: Option<ServiceSpec>,
    /// Env keys of the role set once, at create.
    #[serde(default)]
    pub unchangeable_env: Vec<String>,
    /// The role's health check (over the cluster's).
    #[serde(default)]
    pub health_check: Option<HealthCheck>,
    /// Monitoring items (parsed, not acted on yet).
    #[serde(default)]
    pub monitor: Option<Value>,
    /// Role-level advanced actions.
    #[serde(default)]
    pub advanced_actions: Vec<AdvancedAction>,
    /// Load balancer attachment (parsed, not acted on yet).
    #[serde(default)]
    pub loadbalancer: Option<Value>,
    /// Operations the console should not offer for this role.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsupported_actions: Vec<String>,
}

fn one() -> u32 {
    1
}

fn yes() -> bool {
    true
}

fn default_memory() -> u64 {
    1024
}

/// A role's data volume.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    /// Size in GiB.
    pub size: u64,
    /// Where it is mounted (one path, or up to three).
    #[serde(default)]
    pub mount_point: Option<MountPoint>,
    /// Mount options.
    #[serde(default)]
    pub mount_options: Option<String>,
    /// File system.
    #[serde(default)]
    pub filesystem: Option<Filesystem>,
    /// Volume class.
    #[serde(default)]
    pub class: Option<u32>,
}

/// One mount point or several.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum MountPoint {
    /// One path.
    One(String),
    /// Several paths.
    Many(Vec<String>),
}

/// A volume's file system.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Filesystem {
    /// ext4.
    Ext4,
    /// XFS.
    Xfs,
    /// NTFS.
    Ntfs,
}

/// One service of a role.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Roles run the same service in ascending order; equal orders run in parallel.
    #[serde(default)]
    pub order: u32,
    /// Seconds before the hook is stopped (default 600, at most 86400).
    #[serde(default)]
    pub timeout: Option<u32>,
    /// `init`/`upgrade`: run after `start` instead of before.
    #[serde(default)]
    pub post_start_service: Option<bool>,
    /// `destroy`: run after `stop` instead of before.
    #[serde(default)]
    pub post_stop_service: Option<bool>,
    /// Run on only this many of the role's nodes.
    #[serde(default)]
    pub nodes_to_execute_on: Option<u32>,
    /// Ask the nodes first whether the service may run.
    #[serde(default)]
    pub pre_check: Option<bool>,
    /// `destroy`: whether the user may force a deletion it refuses (default true).
    #[serde(default)]
    pub allow_force: Option<bool>,
    /// Parameters passed to the hook as `service_params`.
    #[serde(default)]
    pub service_params: Option<Map<String, Value>>,
    /// `backup`/`restore`: also run on replicas.
    #[serde(default)]
    pub with_replica: Option<bool>,
    /// `"custom"` for a vendor-defined service.
    #[serde(default, rename = "type")]
    pub kind: Option<ServiceType>,
    /// `get_nodes_order`: the operations whose node order it decides.
    #[serde(default)]
    pub event: Option<Vec<NodesOrderEvent>>,
    /// Another service of the role whose reply (a node id) picks the node
    /// that runs this one first (with `nodes_to_execute_on: 1`, the only one).
    #[serde(default)]
    pub selector: Option<String>,
}

impl ServiceSpec {
    /// The timeout in seconds.
    pub fn timeout_secs(&self) -> u32 {
        self.timeout.unwrap_or(DEFAULT_SERVICE_TIMEOUT)
    }

    /// Whether `init`/`upgrade` runs after `start`.
    pub fn runs_after_start(&self) -> bool {
        self.post_start_service.unwrap_or(false)
    }

    /// Whether `destroy` runs after `stop`.
    pub fn runs_after_stop(&self) -> bool {
        self.post_stop_service.unwrap_or(false)
    }

    /// Whether a refusing `destroy` may be forced.
    pub fn force_allowed(&self) -> bool {
        self.allow_force.unwrap_or(true)
    }
}

/// The only service type.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServiceType {
    /// A vendor-defined service.
    Custom,
}

/// Operations `get_nodes_order` can order.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodesOrderEvent {
    /// Upgrades.
    Upgrade,
    /// Downgrades.
    Rollback,
    /// Vertical scaling.
    ScaleVertical,
}

/// Advanced operations.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AdvancedAction {
    /// Add and delete nodes.
    ScaleHorizontal,
    /// Add nodes only.
    AddNodes,
    /// Move to another network.
    ChangeVxnet,
    /// Bind elastic IPs.
    AssociateEip,
    /// Attach key pairs.
    AttachKeypairs,
}

/// How an upgrade visits the nodes.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum UpgradingPolicy {
    /// All nodes at once (cluster stopped).
    #[default]
    Parallel,
    /// One node after another (rolling).
    Sequential,
    /// In place, all at once.
    InPlaceParallel,
    /// In place, one after another.
    InPlaceSequential,
}

/// How vertical scaling visits a role's nodes.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ScalingPolicy {
    /// All at once.
    #[default]
    Parallel,
    /// One after another.
    Sequential,
}

/// How backups are taken.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackupPolicy {
    /// Snapshot the data volumes.
    Device,
    /// Run the backup service.
    Custom,
}

/// A health check (the checking itself is the component's `health_check` service).
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// Whether it runs.
    #[serde(default)]
    pub enable: bool,
    /// Seconds between checks (at least 60).
    #[serde(default)]
    pub interval_sec: Option<u32>,
    /// Seconds a check may take (3 to interval).
    #[serde(default)]
    pub timeout_sec: Option<u32>,
    /// Seconds the health action may take (at least 3).
    #[serde(default)]
    pub action_timeout_sec: Option<u32>,
    /// Successes in a row that make a node healthy (at least 2).
    #[serde(default)]
    pub healthy_threshold: Option<u32>,
    /// Failures in a row that make a node unhealthy (at least 2).
    #[serde(default)]
    pub unhealthy_threshold: Option<u32>,
}

/// The suffix of a replica role's name (`db-replica` holds `db`'s replicas).
pub const REPLICA_SUFFIX: &str = "-replica";

impl Spec {
    /// The message the spec's `locale` has for a hook's error code (`err_code<N>`):
    /// English first, else the first language that has one.
    pub fn error_message(&self, code: u32) -> Option<&str> {
        let key = format!("err_code{code}");
        self.locale
            .get("en")
            .and_then(|m| m.get(&key))
            .or_else(|| self.locale.values().find_map(|m| m.get(&key)))
            .map(String::as_str)
    }

    /// The spec of a node's role: the role named `role`, or for a replica
    /// role (`db-replica`) the role whose replicas it holds.
    pub fn role(&self, role: &str) -> Option<&RoleSpec> {
        self.nodes.iter().find(|r| r.role == role).or_else(|| {
            let primary = role.strip_suffix(REPLICA_SUFFIX)?;
            self.nodes.iter().find(|r| r.role == primary && r.replica > 0)
        })
    }
}

/// Whether a node role is a replica role (`db-replica`).
pub fn is_replica_role(role: &str) -> bool {
    role.ends_with(REPLICA_SUFFIX)
}

impl RoleSpec {
    /// Its nodes with their replicas.
    pub fn nodes_with_replicas(&self) -> u64 {
        u64::from(self.count) * (1 + u64::from(self.replica))
    }

    /// The name its replicas' role has (`db-replica`).
    pub fn replica_role(&self) -> String {
        format!("{}{REPLICA_SUFFIX}", self.role)
    }

    /// The node roles it makes: itself, and its replica role when it has replicas.
    pub fn node_roles(&self) -> Vec<String> {
        let mut roles = vec![self.role.clone()];
        if self.replica > 0 {
            roles.push(self.replica_role());
        }
        roles
    }

    /// The role's spec of a service, by spec name.
    pub fn service(&self, name: &str) -> Option<&ServiceSpec> {
        self.services.get(name)
    }

    /// Where the data volume is mounted in the node (`/data` by default).
    pub fn volume_mount(&self) -> String {
        match self.volume.as_ref().and_then(|v| v.mount_point.as_ref()) {
            Some(MountPoint::One(p)) => p.clone(),
            Some(MountPoint::Many(ps)) => ps.first().cloned().unwrap_or_else(|| "/data".into()),
            None => "/data".into(),
        }
    }
}
