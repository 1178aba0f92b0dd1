//! Typed reads of the calling node's cluster view.
//!
//! Every read of one invocation sees the same snapshot of the tree; paths are
//! rooted at the node's own cluster (`/host`, `/hosts/<role>/<instance_id>`,
//! `/cluster`, `/env`, ...).

use crate::bindings::hookhost::hooks::metadata;
use crate::error::SDK_ERROR_CODE;
use crate::{Result, fail};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A JSON value, as returned by [`subtree`].
pub use serde_json::Value as Json;

/// The leaf value at `path`, if any.
pub fn get(path: &str) -> Result<Option<String>> {
    Ok(metadata::get(path)?)
}

/// The leaf value at `path`; a missing leaf is an error naming the path.
pub fn require(path: &str) -> Result<String> {
    get(path)?.ok_or_else(|| fail(SDK_ERROR_CODE, format!("metadata {path} is missing")))
}

/// The names of the children of `path`, sorted.
pub fn children(path: &str) -> Result<Vec<String>> {
    Ok(metadata::children(path)?)
}

/// The subtree at `path` decoded into `T` (leaf values are JSON strings).
pub fn subtree<T: DeserializeOwned>(path: &str) -> Result<Option<T>> {
    let Some(json) = metadata::subtree(path)? else {
        return Ok(None);
    };
    serde_json::from_str(&json)
        .map(Some)
        .map_err(|e| fail(SDK_ERROR_CODE, format!("metadata {path}: {e}")))
}

/// The revision of the snapshot this invocation reads.
pub fn revision() -> u64 {
    metadata::revision()
}

/// The value of `/env/<key>`, if set.
pub fn env(key: &str) -> Result<Option<String>> {
    get(&format!("/env/{key}"))
}

/// The value of `/env/<key>`, or `default` when it is not set.
pub fn env_or(key: &str, default: &str) -> Result<String> {
    Ok(env(key)?.unwrap_or_else(|| default.to_string()))
}

/// One node as the metadata describes it (`/host`, `/hosts/<role>/<id>`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Host {
    /// The node's role.
    pub role: String,
    /// The node's current instance id (may change across stop/start).
    pub instance_id: String,
    /// The node's stable id.
    pub node_id: String,
    /// Private IP address.
    pub ip: String,
    /// Elastic IP, if bound.
    pub eip: Option<String>,
    /// MAC address.
    pub mac: Option<String>,
    /// Server id, from 1 (ZooKeeper's `myid`).
    pub sid: Option<u32>,
    /// Group id: a node and its replicas share it.
    pub gid: Option<u32>,
    /// Globally unique server id.
    pub gsid: Option<u64>,
    /// CPU cores.
    pub cpu: Option<u32>,
    /// Memory in MiB.
    pub memory: Option<u64>,
    /// Data volume size in GiB.
    pub volume_size: Option<u64>,
    /// Every other key of the node, as JSON (strings and objects).
    pub other: BTreeMap<String, Value>,
}

impl Host {
    /// Builds a host from its metadata subtree; `at` names it in errors.
    fn from_tree(at: &str, role: &str, instance_id: &str, tree: Map<String, Value>) -> Result<Host> {
        let mut host = Host {
            role: role.to_string(),
            instance_id: instance_id.to_string(),
            ..Host::default()
        };
        for (key, value) in tree {
            let text = value.as_str().map(str::to_string);
            match key.as_str() {
                "role" | "instance_id" => {}
                "node_id" => host.node_id = text.unwrap_or_default(),
                "ip" => host.ip = text.unwrap_or_default(),
                "eip" => host.eip = text.filter(|s| !s.is_empty()),
                "mac" => host.mac = text,
                "sid" => host.sid = Some(number(at, &key, &value)?),
                "gid" => host.gid = Some(number(at, &key, &value)?),
                "gsid" => host.gsid = Some(number(at, &key, &value)?),
                "cpu" => host.cpu = Some(number(at, &key, &value)?),
                "memory" => host.memory = Some(number(at, &key, &value)?),
                "volume_size" => host.volume_size = Some(number(at, &key, &value)?),
                _ => {
                    host.other.insert(key, value);
                }
            }
        }
        Ok(host)
    }

    /// Another key of the node as text, e.g. `token` or `pub_key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.other.get(key).and_then(Value::as_str)
    }
}

/// A leaf that must be a number of type `T` (out of range is an error, not a wrap).
fn number<T: std::str::FromStr>(at: &str, key: &str, value: &Value) -> Result<T> {
    value.as_str().and_then(|s| s.parse().ok()).ok_or_else(|| {
        fail(
            SDK_ERROR_CODE,
            format!("metadata {at}/{key} is {value}, not a usable number"),
        )
    })
}

/// The calling node (`/host`).
pub fn this_host() -> Result<Host> {
    let tree: Map<String, Value> =
        subtree("/host")?.ok_or_else(|| fail(SDK_ERROR_CODE, "metadata /host is missing"))?;
    let role = tree.get("role").and_then(Value::as_str).unwrap_or_default().to_string();
    let iid = tree
        .get("instance_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Host::from_tree("/host", &role, &iid, tree)
}

/// The nodes of `role`, sorted by `sid` then instance id.
pub fn hosts(role: &str) -> Result<Vec<Host>> {
    let mut hosts = role_hosts("/hosts", role, subtree(&format!("/hosts/{role}"))?.unwrap_or_default())?;
    sort(&mut hosts);
    Ok(hosts)
}

/// Every node of the cluster, all roles, sorted by role, `sid`, instance id.
pub fn all_hosts() -> Result<Vec<Host>> {
    grouped("/hosts")
}

/// The nodes being added (`/adding-hosts`), during an add-nodes operation.
pub fn adding_hosts() -> Result<Vec<Host>> {
    grouped("/adding-hosts")
}

/// The nodes being deleted (`/deleting-hosts`), during a delete-nodes operation.
pub fn deleting_hosts() -> Result<Vec<Host>> {
    grouped("/deleting-hosts")
}

/// The roles being resized (`/vertical-scaling-roles`), during vertical scaling.
pub fn vertical_scaling_roles() -> Result<Vec<String>> {
    Ok(get("/vertical-scaling-roles")?
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default())
}

/// During an upgrade, the app versions it goes from and to.
pub fn upgrade_audit() -> Result<Option<(String, String)>> {
    let from = get("/upgrade-audit/from_app_version")?;
    let to = get("/upgrade-audit/to_app_version")?;
    Ok(from.zip(to))
}

/// The cluster-wide facts (`/cluster`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cluster {
    /// The cluster id.
    pub cluster_id: String,
    /// The app id.
    pub app_id: Option<String>,
    /// The cluster's network.
    pub vxnet: Option<String>,
    /// The zone.
    pub zone: Option<String>,
    /// Every other key (endpoints, reserved_ips, ...), as JSON.
    pub other: BTreeMap<String, Value>,
}

/// The cluster-wide facts (`/cluster`).
pub fn cluster() -> Result<Cluster> {
    let tree: Map<String, Value> =
        subtree("/cluster")?.ok_or_else(|| fail(SDK_ERROR_CODE, "metadata /cluster is missing"))?;
    let mut cluster = Cluster::default();
    for (key, value) in tree {
        let text = value.as_str().map(str::to_string);
        match key.as_str() {
            "cluster_id" => cluster.cluster_id = text.unwrap_or_default(),
            "app_id" => cluster.app_id = text,
            "vxnet" => cluster.vxnet = text,
            "zone" => cluster.zone = text,
            _ => {
                cluster.other.insert(key, value);
            }
        }
    }
    Ok(cluster)
}

fn grouped(root: &str) -> Result<Vec<Host>> {
    let tree: Map<String, Value> = subtree(root)?.unwrap_or_default();
    let mut all = Vec::new();
    for (role, nodes) in tree {
        let Value::Object(nodes) = nodes else { continue };
        let mut hosts = role_hosts(root, &role, nodes)?;
        sort(&mut hosts);
        all.extend(hosts);
    }
    Ok(all)
}

fn role_hosts(root: &str, role: &str, nodes: Map<String, Value>) -> Result<Vec<Host>> {
    nodes
        .into_iter()
        .filter_map(|(iid, node)| match node {
            Value::Object(tree) => Some(Host::from_tree(&format!("{root}/{role}/{iid}"), role, &iid, tree)),
            _ => None,
        })
        .collect()
}

fn sort(hosts: &mut [Host]) {
    hosts.sort_by(|a, b| (a.sid, &a.instance_id).cmp(&(b.sid, &b.instance_id)));
}
