//! Which app version's spec and components a node's hooks run: the version
//! its instance was booted from (`Node::version`, else the cluster's), or the
//! one a step names for every node (an upgrade's new hooks). Versions other
//! than the cluster's come from the catalog; they never change once registered.

use super::{Engine, EngineError};
use crate::cluster::{Cluster, Node, role_service};
use crate::spec::{ServiceSpec, Spec};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// The specs a step's nodes run, by version name.
pub(super) struct Versions {
    cluster_version: String,
    forced: Option<String>,
    specs: HashMap<String, Arc<Spec>>,
}

impl Versions {
    /// The versions of `nodes` in this step; `forced`: the version every node runs.
    pub(super) fn of(
        engine: &Engine,
        cluster: &Cluster,
        nodes: &[&Node],
        forced: Option<&str>,
    ) -> Result<Versions, EngineError> {
        let mut specs = HashMap::new();
        specs.insert(cluster.app.version.clone(), Arc::new(cluster.spec.clone()));
        let wanted = match forced {
            Some(version) => vec![version],
            None => nodes.iter().map(|n| cluster.version_of(n)).collect(),
        };
        for version in wanted {
            if !specs.contains_key(version) {
                let spec = engine.version_spec(&cluster.app.app, version)?;
                specs.insert(version.to_string(), Arc::new(spec));
            }
        }
        Ok(Versions {
            cluster_version: cluster.app.version.clone(),
            forced: forced.map(String::from),
            specs,
        })
    }

    /// The version a node's hooks run in this step.
    pub(super) fn version_of<'a>(&'a self, node: &'a Node) -> &'a str {
        self.forced
            .as_deref()
            .or(node.version.as_deref())
            .unwrap_or(&self.cluster_version)
    }

    /// The spec a node's hooks run by.
    pub(super) fn spec_of(&self, node: &Node) -> Option<&Spec> {
        self.specs.get(self.version_of(node)).map(Arc::as_ref)
    }

    /// The node's role's spec of a service, if it defines it.
    pub(super) fn service(&self, node: &Node, service: &str) -> Option<&ServiceSpec> {
        role_service(self.spec_of(node)?, &node.role, service)
    }

    /// The component a node's hooks run.
    pub(super) fn plugin(&self, node: &Node) -> Option<&Path> {
        self.spec_of(node)?.role(&node.role).map(|r| r.plugin.as_path())
    }
}

impl Engine {
    /// The spec of a registered version of `app`.
    pub(super) fn version_spec(&self, app: &str, version: &str) -> Result<Spec, EngineError> {
        Ok(self.catalog.get(app, version)?.spec)
    }
}
