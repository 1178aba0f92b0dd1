//! A cluster record as a metadata tree (the seed's "register all information
//! about the cluster in the metadata service"), laid out as
//! `notes/appcenter-spec.md` §3.1 describes:
//! `/cluster/{cluster_id, app_id, name, vxnet, zone, global_uuid, endpoints/..., reserved_ips/...}`,
//! `/hosts/<role>/<instance_id>/{ip, eip, mac, sid, gid, gsid, node_id, instance_id, role, cpu,
//! memory, volume_size, gpu, instance_class, volume_class, physical_machine}`
//! for every node with a running instance, `/env/...` from the spec, each
//! role's own `env` under `/role-env/<role>/...` (a node's view shows it over
//! the cluster's), and `/links/<name>`.

use super::{Cluster, Node};
use crate::metadata::{Write, cluster_root, path};
use serde_json::{Map, Value};

/// The top-level keys the record owns: registering replaces them, and
/// leaves the temporary subtrees of a running operation (`/adding-hosts`, ...) alone.
const OWNED_KEYS: &[&str] = &["cluster", "hosts", "env", "role-env", "links"];

/// The writes that make the tree describe `cluster`, replacing what it said before.
pub fn cluster_tree(cluster: &Cluster) -> Vec<Write> {
    let root = cluster_root(&cluster.id);
    let mut writes: Vec<Write> = OWNED_KEYS
        .iter()
        .map(|key| Write::DeleteTree {
            path: path::join(&root, [*key]),
        })
        .collect();
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
    put(&["cluster", "global_uuid"], cluster.global_uuid.clone());
    flatten(&mut put, &["cluster", "endpoints"], &spec.endpoints);
    flatten(&mut put, &["cluster", "reserved_ips"], &spec.reserved_ips);
    flatten(&mut put, &["env"], &spec.env);
    for role in &spec.nodes {
        flatten(&mut put, &["role-env", &role.role], &role.env);
    }
    for (name, linked) in &spec.links {
        put(&["links", name], linked.clone());
    }
    let machine = machine();
    for node in &cluster.nodes {
        writes.extend(host_entry(&root, "hosts", node, &machine));
    }
    writes
}

/// The entries of `nodes` under the top-level key `under` of the cluster's
/// tree (`hosts`, `adding-hosts`, `deleting-hosts`): the same keys everywhere.
pub fn host_writes<'a>(cluster: &Cluster, under: &str, nodes: impl IntoIterator<Item = &'a Node>) -> Vec<Write> {
    let (root, machine) = (cluster_root(&cluster.id), machine());
    nodes
        .into_iter()
        .flat_map(|node| host_entry(&root, under, node, &machine))
        .collect()
}

/// The local provider's nodes all run on this machine.
fn machine() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// One node's entry, `<under>/<role>/<instance_id>/...`; none while it has no instance.
fn host_entry(root: &str, under: &str, node: &Node, machine: &str) -> Vec<Write> {
    let Some(iid) = &node.instance_id else {
        return Vec::new();
    };
    let r = &node.resources;
    let leaves = [
        ("node_id", node.node_id.clone()),
        ("instance_id", iid.clone()),
        ("role", node.role.clone()),
        ("ip", node.ip.clone()),
        ("mac", node.mac.clone()),
        ("eip", String::new()),
        ("sid", node.sid.to_string()),
        ("gid", node.gid.to_string()),
        ("gsid", node.gsid.to_string()),
        ("cpu", r.cpu.to_string()),
        ("memory", r.memory.to_string()),
        ("volume_size", r.volume_size.to_string()),
        ("gpu", r.gpu.to_string()),
        ("instance_class", r.instance_class.to_string()),
        ("volume_class", r.volume_class.to_string()),
        ("physical_machine", machine.to_string()),
    ];
    leaves
        .into_iter()
        .map(|(key, value)| Write::Put {
            path: path::join(root, [under, node.role.as_str(), iid.as_str(), key]),
            value,
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{ClusterView, MemoryStore};
    use crate::spec::Spec;
    use std::sync::Arc;

    #[test]
    fn a_node_sees_the_keys_of_the_original_metadata_service() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.wasm"), b"").unwrap();
        let spec = Spec::parse(
            std::path::Path::new("spec.json"),
            r#"{"name": "My App!", "vxnet": "net-1", "env": {"port": 2181, "key": {"access_key_id": "a"}},
                "endpoints": {"client": {"port": 2181, "protocol": "tcp"}}, "links": {"db": "cl-db"},
                "nodes": [{"role": "zk", "count": 2, "plugin": "app.wasm", "cpu": 2, "memory": 4096,
                           "volume": {"size": 20}, "env": {"port": 9999}}]}"#,
            dir.path(),
        )
        .unwrap();
        let mut cluster = Cluster::new(spec, "spec.json".into(), "zk1".into());
        cluster.nodes[1].instance_id = None; // stopped nodes are not listed
        let store = MemoryStore::new();
        store.apply_now(&cluster_tree(&cluster)).unwrap();
        let node = cluster.nodes[0].clone();
        let view = ClusterView::for_node(Arc::new(store.snapshot_now("/")), &cluster.id, &node.node_id).unwrap();
        let get = |p: &str| view.get(p).unwrap().unwrap_or_else(|| panic!("{p} missing"));
        assert_eq!(get("/cluster/app_id"), "app-my-app");
        assert_eq!(get("/cluster/vxnet"), "net-1");
        assert_eq!(get("/cluster/endpoints/client/protocol"), "tcp");
        assert_eq!(get("/links/db"), "cl-db");
        assert_eq!(get("/env/port"), "9999", "the role's env wins");
        assert_eq!(get("/env/key/access_key_id"), "a");
        for key in [
            "ip",
            "mac",
            "eip",
            "sid",
            "gid",
            "gsid",
            "node_id",
            "instance_id",
            "role",
            "cpu",
            "memory",
            "volume_size",
            "gpu",
            "instance_class",
            "volume_class",
            "physical_machine",
        ] {
            get(&format!("/host/{key}"));
        }
        assert_eq!(
            (get("/host/cpu"), get("/host/memory"), get("/host/volume_size")),
            ("2".into(), "4096".into(), "20".into())
        );
        assert_eq!(
            view.children("/hosts/zk").unwrap(),
            vec![node.instance_id.clone().unwrap()]
        );
        // Writing it again replaces it: nothing stale stays, and the
        // temporary subtree of a running operation is left alone.
        store
            .apply_now(&host_writes(&cluster, "adding-hosts", [&node]))
            .unwrap();
        cluster.nodes[0].ip = "10.9.9.9".into();
        cluster.spec.links.clear();
        store.apply_now(&cluster_tree(&cluster)).unwrap();
        let view = ClusterView::for_node(Arc::new(store.snapshot_now("/")), &cluster.id, &node.node_id).unwrap();
        assert_eq!(view.get("/host/ip").unwrap().as_deref(), Some("10.9.9.9"));
        assert_eq!(view.get("/links/db").unwrap(), None);
        let iid = node.instance_id.clone().unwrap();
        assert_eq!(
            view.get(&format!("/adding-hosts/zk/{iid}/node_id")).unwrap(),
            Some(node.node_id.clone())
        );
    }
}
