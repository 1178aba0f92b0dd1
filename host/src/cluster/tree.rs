//! A cluster record as a metadata tree (the seed's "register all information
//! about the cluster in the metadata service"), laid out as
//! `notes/appcenter-spec.md` §3.1 describes:
//! `/cluster/{cluster_id, app_id, app_version, name, vxnet, zone, global_uuid, endpoints/..., reserved_ips/...}`,
//! `/hosts/<role>/<instance_id>/{ip, eip, mac, sid, gid, gsid, node_id, instance_id, role, cpu,
//! memory, volume_size, gpu, instance_class, volume_class, physical_machine}`
//! for every node with a running instance, `/env/...` from the spec, each
//! role's own `env` under `/role-env/<role>/...` (a node's view shows it over
//! the cluster's), and `/links/<name>`.

use super::{Cluster, Node};
use crate::metadata::{Snapshot, Write, cluster_root, path};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The top-level keys the record owns: registering replaces them, and
/// leaves the temporary subtrees of a running operation (`/adding-hosts`, ...) alone.
pub const OWNED_KEYS: &[&str] = &["cluster", "hosts", "env", "role-env", "links"];

/// The writes that make the tree describe `cluster`, replacing what it said before.
pub fn cluster_tree(cluster: &Cluster) -> Vec<Write> {
    let root = cluster_root(&cluster.id);
    OWNED_KEYS
        .iter()
        .map(|key| Write::DeleteTree {
            path: path::join(&root, [*key]),
        })
        .chain(
            leaves(cluster, OWNED_KEYS)
                .into_iter()
                .map(|(path, value)| Write::Put { path, value }),
        )
        .collect()
}

/// The leaves (full path, value) the record puts under the top-level `keys`.
fn leaves(cluster: &Cluster, keys: &[&str]) -> Vec<(String, String)> {
    let root = cluster_root(&cluster.id);
    let mut out = Vec::new();
    let mut put = |rel: &[&str], value: String| {
        if keys.contains(&rel[0]) {
            out.push((path::join(&root, rel.iter().copied()), value));
        }
    };
    let spec = &cluster.spec;
    put(&["cluster", "cluster_id"], cluster.id.clone());
    if cluster.app.app.is_empty() {
        put(&["cluster", "app_id"], app_id(&spec.name));
    } else {
        put(&["cluster", "app_id"], cluster.app.app.clone());
        put(&["cluster", "app_version"], cluster.app.version.clone());
    }
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
    if keys.contains(&"hosts") {
        let machine = machine();
        for node in &cluster.nodes {
            out.extend(
                host_entry(&root, "hosts", node, &machine)
                    .into_iter()
                    .filter_map(|w| match w {
                        Write::Put { path, value } => Some((path, value)),
                        Write::DeleteTree { .. } => None,
                    }),
            );
        }
    }
    out
}

/// The writes that make the top-level `keys` of a tree now holding
/// `current` (a snapshot of the cluster's root, or of its one key) describe
/// `cluster`: only what differs, so that a change of one env key writes one
/// leaf, not the whole tree, and watchers see only what changed. The
/// temporary subtrees are left alone.
pub fn tree_changes(cluster: &Cluster, current: &Snapshot, keys: &[&str]) -> Vec<Write> {
    let root = cluster_root(&cluster.id);
    let desired: BTreeMap<String, String> = leaves(cluster, keys).into_iter().collect();
    // Deletions first: a leaf may become a directory (an env value an object).
    let mut writes: Vec<Write> = keys
        .iter()
        .flat_map(|key| {
            current
                .under(&path::join(&root, [*key]))
                .map(|(p, _)| p.to_string())
                .collect::<Vec<_>>()
        })
        .chain(
            keys.iter()
                .map(|key| path::join(&root, [*key]))
                .filter(|p| current.get(p).is_some()),
        )
        .filter(|p| !desired.contains_key(p))
        .map(|path| Write::DeleteTree { path })
        .collect();
    writes.extend(
        desired
            .into_iter()
            .filter(|(p, v)| current.get(p) != Some(v.as_str()))
            .map(|(path, value)| Write::Put { path, value }),
    );
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
    let token = node.token.as_ref().map(|t| ("token", t.clone()));
    leaves
        .into_iter()
        .chain(token)
        .map(|(key, value)| Write::Put {
            path: path::join(root, [under, node.role.as_str(), iid.as_str(), key]),
            value,
        })
        .collect()
}

/// The app id the tree shows: `app-` and the spec's name, made path-safe.
fn app_id(name: &str) -> String {
    let slug = crate::text::slug(name);
    format!("app-{}", if slug.is_empty() { "unnamed" } else { &slug })
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
        let mut cluster = Cluster::new(crate::apps::AppRef::default(), spec, "spec.json".into(), "zk1".into());
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

    #[test]
    fn registering_again_writes_only_what_changed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.wasm"), b"").unwrap();
        let spec = Spec::parse(
            std::path::Path::new("spec.json"),
            r#"{"env": {"a": "1", "b": "2"}, "nodes": [{"role": "zk", "count": 3, "plugin": "app.wasm"}]}"#,
            dir.path(),
        )
        .unwrap();
        let mut cluster = Cluster::new(crate::apps::AppRef::default(), spec, "spec.json".into(), "zk".into());
        let store = MemoryStore::new();
        let root = cluster_root(&cluster.id);
        let snapshot = |store: &MemoryStore| store.snapshot_now(&root);
        let first = tree_changes(&cluster, &snapshot(&store), OWNED_KEYS);
        assert!(first.iter().all(|w| matches!(w, Write::Put { .. })));
        store.apply_now(&first).unwrap();
        store
            .apply_now(&host_writes(&cluster, "adding-hosts", &cluster.nodes[..1]))
            .unwrap();
        assert!(
            tree_changes(&cluster, &snapshot(&store), OWNED_KEYS).is_empty(),
            "nothing changed"
        );
        // One env key: one leaf; a value that becomes an object: the leaf goes first.
        cluster.spec.env.insert("a".into(), serde_json::json!("9"));
        cluster.spec.env.insert("b".into(), serde_json::json!({"x": "1"}));
        let env = |k: &str| path::join(&root, ["env", k]);
        assert_eq!(
            tree_changes(&cluster, &snapshot(&store), OWNED_KEYS),
            [
                Write::DeleteTree { path: env("b") },
                Write::Put {
                    path: env("a"),
                    value: "9".into()
                },
                Write::Put {
                    path: format!("{}/x", env("b")),
                    value: "1".into()
                },
            ]
        );
        // A node that leaves: its leaves go, the temporary subtree stays.
        let gone = cluster.nodes.remove(2);
        let writes = tree_changes(&cluster, &snapshot(&store), OWNED_KEYS);
        store.apply_now(&writes).unwrap();
        let after = snapshot(&store);
        let iid = gone.instance_id.unwrap();
        assert!(!after.exists(&path::join(&root, ["hosts", "zk", iid.as_str()])));
        assert!(after.exists(&path::join(&root, ["adding-hosts"])));
        assert_eq!(after.get(&env("a")), Some("9"));
        let fresh = MemoryStore::new();
        fresh.apply_now(&cluster_tree(&cluster)).unwrap();
        let fresh = fresh.snapshot_now(&root);
        let ours: Vec<_> = after
            .under(&root)
            .filter(|(p, _)| !p.contains("/adding-hosts/"))
            .collect();
        assert_eq!(
            ours,
            fresh.under(&root).collect::<Vec<_>>(),
            "the same tree as written whole"
        );
    }
}
