//! A cluster record as a metadata tree (the seed's "register all information
//! about the cluster in the metadata service"), laid out as
//! `notes/appcenter-spec.md` §3.1 describes:
//! `/cluster/{cluster_id, app_id, name, vxnet, zone, endpoints/..., reserved_ips/...}`,
//! `/hosts/<role>/<instance_id>/{ip, mac, sid, gid, gsid, node_id, instance_id, role, cpu, memory, volume_size}`
//! for every node with a running instance, `/env/...` from the spec, each
//! role's own `env` under `/role-env/<role>/...` (a node's view shows it over
//! the cluster's), and `/links/<name>`.

use super::{Write, cluster_root, path};
use crate::state::Cluster;
use serde_json::{Map, Value};

/// The writes that make the tree describe `cluster`, replacing what was there.
pub fn cluster_tree(cluster: &Cluster) -> Vec<Write> {
    let root = cluster_root(&cluster.id);
    let mut writes = vec![Write::DeleteTree { path: root.clone() }];
    let mut put = |rel: &[&str], value: String| {
        writes.push(Write::Put {
            path: path::join(&root, rel.iter().copied()),
            value,
        });
    };
    let spec = &cluster.spec;
    put(&["cluster", "cluster_id"], cluster.id.clone());
    put(&["cluster", "app_id"], app_id(&spec.name));
    put(&["cluster", "name"], cluster.name.clone());
    put(&["cluster", "vxnet"], spec.vxnet.clone());
    put(&["cluster", "zone"], cluster.zone.clone());
    flatten(&mut put, &["cluster", "endpoints"], &spec.endpoints);
    flatten(&mut put, &["cluster", "reserved_ips"], &spec.reserved_ips);
    flatten(&mut put, &["env"], &spec.env);
    for role in &spec.nodes {
        flatten(&mut put, &["role-env", &role.role], &role.env);
    }
    for (name, linked) in &spec.links {
        put(&["links", name], linked.clone());
    }
    for node in &cluster.nodes {
        let Some(iid) = &node.instance_id else { continue };
        let at = |key: &'static str| ["hosts", node.role.as_str(), iid.as_str(), key];
        put(&at("node_id"), node.node_id.clone());
        put(&at("instance_id"), iid.clone());
        put(&at("role"), node.role.clone());
        put(&at("ip"), node.ip.clone());
        put(&at("mac"), node.mac.clone());
        put(&at("eip"), String::new());
        put(&at("sid"), node.sid.to_string());
        put(&at("gid"), node.gid.to_string());
        put(&at("gsid"), node.gsid.to_string());
        put(&at("cpu"), node.cpu.to_string());
        put(&at("memory"), node.memory.to_string());
        put(&at("volume_size"), node.volume_size.to_string());
    }
    writes
}

/// The app id the tree shows: `app-` and the spec's name, made path-safe.
fn app_id(name: &str) -> String {
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let slug = slug.trim_matches('-');
    format!("app-{}", if slug.is_empty() { "unnamed" } else { slug })
}

/// Puts JSON values as leaves (strings as they are, other scalars as JSON text).
fn flatten(put: &mut impl FnMut(&[&str], String), at: &[&str], map: &Map<String, Value>) {
    for (key, value) in map {
        let mut here = at.to_vec();
        here.push(key);
        match value {
            Value::Object(inner) => flatten(put, &here, inner),
            Value::String(s) => put(&here, s.clone()),
            Value::Null => {}
            other => put(&here, other.to_string()),
        }
    }
}
