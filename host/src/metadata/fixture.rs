//! The JSON fixture format: one cluster's tree, as hooks will see it.
//!
//! ```json
//! {
//!   "cluster": {"cluster_id": "cl-zk", "app_id": "app-zookeeper", "zone": "pek3"},
//!   "hosts": {"zk_node": {"i-1": {"node_id": "cln-1", "ip": "10.0.0.1", "sid": 1}}},
//!   "env": {"tickTime": 2000}
//! }
//! ```
//! Top-level keys are those of the view (`hosts`, `cluster`, `env`, `links`,
//! `adding-hosts`, `deleting-hosts`, `vertical-scaling-roles`, `upgrade-audit`);
//! `/host` is derived from `--node`. Leaves are strings, numbers or booleans,
//! stored as strings. Every node under `hosts` (and `adding-hosts`,
//! `deleting-hosts`) is `<role>/<instance_id>` and needs a `node_id`; its
//! `role` and `instance_id` leaves are filled in from its place.

use super::{VISIBLE_KEYS, Write, cluster_root, path};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Largest fixture file accepted.
const MAX_FIXTURE_BYTES: u64 = 16 << 20;

/// A parsed fixture: the cluster it describes and the writes that load it.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The cluster id (`cluster.cluster_id`).
    pub cluster_id: String,
    /// Puts of every leaf, as full paths.
    pub writes: Vec<Write>,
}

/// A fixture that cannot be used, with the file and the place in it.
#[derive(Debug, Error)]
pub enum FixtureError {
    /// The file cannot be read (missing, not a regular file, too large).
    #[error("{file}: cannot read: {error}")]
    Read {
        /// The fixture file.
        file: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The file is not valid JSON.
    #[error("{file}:{line}:{column}: invalid JSON: {message}")]
    Syntax {
        /// The fixture file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// The JSON does not describe a cluster tree.
    #[error("{file}: at {at}: {message}")]
    Invalid {
        /// The fixture file.
        file: PathBuf,
        /// The place in the tree, as a path (`/hosts/zk_node/i-1`).
        at: String,
        /// What is wrong there.
        message: String,
    },
}

impl Fixture {
    /// Reads and checks a fixture file.
    pub fn load(file: &Path) -> Result<Fixture, FixtureError> {
        let text = crate::files::read_text_limited(file, MAX_FIXTURE_BYTES).map_err(|error| FixtureError::Read {
            file: file.to_path_buf(),
            error,
        })?;
        Self::parse(file, &text)
    }

    /// Checks fixture text; `file` only names it in errors.
    pub fn parse(file: &Path, text: &str) -> Result<Fixture, FixtureError> {
        let root: Value = serde_json::from_str(text).map_err(|e| FixtureError::Syntax {
            file: file.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message: e.to_string().split(" at line").next().unwrap_or_default().to_string(),
        })?;
        let invalid = |at: &str, message: String| FixtureError::Invalid {
            file: file.to_path_buf(),
            at: if at.is_empty() { "/".into() } else { at.into() },
            message,
        };
        let Value::Object(root) = root else {
            return Err(invalid("", "a fixture is a JSON object of the cluster's tree".into()));
        };
        if root.contains_key("nodes") {
            return Err(invalid(
                "/nodes",
                "this looks like an app spec (it has \"nodes\"); a fixture is one cluster's metadata tree (see the README)".into(),
            ));
        }
        for key in root.keys() {
            if key == "host" {
                return Err(invalid(
                    "/host",
                    "/host is derived from the node you run as; put nodes under /hosts".into(),
                ));
            }
            if !VISIBLE_KEYS.contains(&key.as_str()) {
                return Err(invalid(
                    &format!("/{key}"),
                    format!("unknown key; expected one of {}", VISIBLE_KEYS.join(", ")),
                ));
            }
        }
        let cluster_id = match root.get("cluster").and_then(|c| c.get("cluster_id")) {
            Some(Value::String(id)) if path::is_valid_segment(id) => id.clone(),
            Some(other) => {
                return Err(invalid(
                    "/cluster/cluster_id",
                    format!("{other} is not a usable cluster id"),
                ));
            }
            None => {
                return Err(invalid(
                    "/cluster/cluster_id",
                    "missing: every fixture names its cluster".into(),
                ));
            }
        };

        let mut leaves = BTreeMap::new();
        for (key, value) in &root {
            let at = format!("/{key}");
            if matches!(key.as_str(), "hosts" | "adding-hosts" | "deleting-hosts") {
                check_hosts(&at, value).map_err(|(at, m)| invalid(&at, m))?;
            }
            flatten(&at, value, &mut leaves).map_err(|(at, m)| invalid(&at, m))?;
        }
        check_unique_node_ids(&leaves).map_err(|(at, m)| invalid(&at, m))?;

        let base = cluster_root(&cluster_id);
        let writes = leaves
            .into_iter()
            .map(|(at, value)| Write::Put {
                path: format!("{base}{at}"),
                value,
            })
            .collect();
        Ok(Fixture { cluster_id, writes })
    }
}

type Problem = (String, String);

/// Checks `<role>/<instance_id>/{node_id, ...}` and fills in `role` and `instance_id`.
fn check_hosts(at: &str, value: &Value) -> Result<(), Problem> {
    let Value::Object(roles) = value else {
        return Err((at.into(), "expected an object of roles".into()));
    };
    for (role, nodes) in roles {
        let Value::Object(nodes) = nodes else {
            return Err((
                format!("{at}/{role}"),
                "expected an object of nodes keyed by instance id".into(),
            ));
        };
        for (instance_id, node) in nodes {
            let here = format!("{at}/{role}/{instance_id}");
            let Value::Object(node) = node else {
                return Err((here, "expected the node's object (node_id, ip, sid, ...)".into()));
            };
            match node.get("node_id") {
                Some(Value::String(id)) if path::is_valid_segment(id) => {}
                Some(Value::String(id)) => {
                    let message = format!("{id:?} is not a usable node id (no '/', '.', '..')");
                    return Err((format!("{here}/node_id"), message));
                }
                _ => {
                    let message = "missing: every node needs a node_id string".to_string();
                    return Err((format!("{here}/node_id"), message));
                }
            }
            for (key, expected) in [("role", role), ("instance_id", instance_id)] {
                if let Some(found) = node.get(key).filter(|v| v.as_str() != Some(expected)) {
                    return Err((
                        format!("{here}/{key}"),
                        format!("is {found} but the node sits under {expected:?}"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Flattens JSON into leaf paths (relative to the cluster root).
fn flatten(at: &str, value: &Value, out: &mut BTreeMap<String, String>) -> Result<(), Problem> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => return Err((at.into(), "null is not a value; leave the key out".into())),
        Value::Array(_) => {
            return Err((
                at.into(),
                "arrays are not supported; use an object keyed by name".into(),
            ));
        }
        Value::Object(map) => return flatten_object(at, map, out),
    };
    out.insert(at.to_string(), text);
    Ok(())
}

fn flatten_object(at: &str, map: &Map<String, Value>, out: &mut BTreeMap<String, String>) -> Result<(), Problem> {
    if map.is_empty() {
        return Err((at.into(), "empty objects hold nothing; leave the key out".into()));
    }
    for (key, value) in map {
        if !path::is_valid_segment(key) {
            return Err((
                format!("{at}/{key}"),
                format!("{key:?} cannot be a key (no '/', '.', '..', control characters)"),
            ));
        }
        flatten(&format!("{at}/{key}"), value, out)?;
    }
    // Nodes under the host trees learn their own role and instance id.
    if let [_, tree, role, instance_id] = at.split('/').collect::<Vec<_>>()[..]
        && matches!(tree, "hosts" | "adding-hosts" | "deleting-hosts")
    {
        out.insert(format!("{at}/role"), role.to_string());
        out.insert(format!("{at}/instance_id"), instance_id.to_string());
    }
    Ok(())
}

fn check_unique_node_ids(leaves: &BTreeMap<String, String>) -> Result<(), Problem> {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (at, value) in leaves {
        if at.starts_with("/hosts/")
            && at.ends_with("/node_id")
            && let Some(first) = seen.insert(value, at)
        {
            return Err((at.clone(), format!("node_id {value:?} is also used at {first}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Fixture, FixtureError> {
        Fixture::parse(Path::new("f.json"), text)
    }

    #[test]
    fn flattens_into_full_paths() {
        let f = parse(r#"{"cluster": {"cluster_id": "cl-1"}, "hosts": {"zk": {"i-1": {"node_id": "cln-1", "sid": 1, "ok": true}}}}"#).unwrap();
        assert_eq!(f.cluster_id, "cl-1");
        let puts: Vec<(String, String)> = f
            .writes
            .iter()
            .map(|w| match w {
                Write::Put { path, value } => (path.clone(), value.clone()),
                other => panic!("{other:?}"),
            })
            .collect();
        let expect = [
            ("/clusters/cl-1/cluster/cluster_id", "cl-1"),
            ("/clusters/cl-1/hosts/zk/i-1/instance_id", "i-1"),
            ("/clusters/cl-1/hosts/zk/i-1/node_id", "cln-1"),
            ("/clusters/cl-1/hosts/zk/i-1/ok", "true"),
            ("/clusters/cl-1/hosts/zk/i-1/role", "zk"),
            ("/clusters/cl-1/hosts/zk/i-1/sid", "1"),
        ];
        assert_eq!(puts, expect.map(|(p, v)| (p.to_string(), v.to_string())));
    }

    #[test]
    fn errors_name_the_place() {
        let cases = [
            (
                r#"{"cluster": {"cluster_id": "c"}, "hostz": {}}"#,
                "f.json: at /hostz: unknown key",
            ),
            (r#"{"env": {}}"#, "f.json: at /cluster/cluster_id: missing"),
            (
                r#"{"cluster": {"cluster_id": "c", "tags": [1]}}"#,
                "f.json: at /cluster/tags: arrays are not supported",
            ),
            (
                r#"{"cluster": {"cluster_id": "c"}, "hosts": {"zk": {"i-1": {"ip": "x"}}}}"#,
                "f.json: at /hosts/zk/i-1/node_id: missing",
            ),
            (
                r#"{"cluster": {"cluster_id": "c"}, "hosts": {"zk": {"i-1": {"node_id": "n", "role": "db"}}}}"#,
                "f.json: at /hosts/zk/i-1/role: is \"db\" but the node sits under \"zk\"",
            ),
            (
                r#"{"cluster": {"cluster_id": "c"}, "hosts": {"zk": {"i-1": {"node_id": "n"}, "i-2": {"node_id": "n"}}}}"#,
                "f.json: at /hosts/zk/i-2/node_id: node_id \"n\" is also used at /hosts/zk/i-1/node_id",
            ),
            (
                r#"{"cluster": {"cluster_id": "c", "..": "x"}}"#,
                "f.json: at /cluster/..: \"..\" cannot be a key",
            ),
            ("{\n  \"cluster\": }", "f.json:2:14: invalid JSON: expected value"),
            (
                r#"{"cluster": {"cluster_id": "c"}, "hosts": {"zk": {"i-1": {"node_id": "../../etc"}}}}"#,
                "f.json: at /hosts/zk/i-1/node_id: \"../../etc\" is not a usable node id",
            ),
            (r#"{"nodes": []}"#, "f.json: at /nodes: this looks like an app spec"),
        ];
        for (text, expected) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.starts_with(expected), "{err}\n  expected: {expected}");
        }
    }
}
