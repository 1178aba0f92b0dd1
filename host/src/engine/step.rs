//! One step as its handler sees it, and how a handler says it ended.

use super::{Engine, EngineError};
use crate::cluster::{Cluster, Node};
use crate::plan::{NodeSet, Vars};
use crate::store::Operation;
use serde_json::Value;
use std::collections::HashMap;

/// How a step ended.
pub(super) enum StepEnd {
    /// It did its work; what it produced, for its plan variable.
    Ok(Option<Value>),
    /// Hooks failed, and the step's policy tolerates it; what it produced.
    Tolerated(String, Option<Value>),
    /// It failed.
    Failed(String),
    /// A guard or pre-check refused.
    Refused(String),
}

/// A step being run: its operation, its place in the journal, the cluster
/// as the step finds it, and the plan variables produced so far.
pub(super) struct StepRun<'a> {
    pub(super) engine: &'a Engine,
    pub(super) op: &'a Operation,
    pub(super) index: usize,
    pub(super) cluster: Cluster,
    pub(super) vars: &'a Vars,
}

impl StepRun<'_> {
    /// The nodes of a set, as the cluster's records, in the set's order
    /// (the one lookup every handler uses); ids the cluster lacks are left out.
    pub(super) fn nodes(&self, set: &NodeSet) -> Result<Vec<&Node>, EngineError> {
        let by_id: HashMap<&str, &Node> = self.cluster.nodes.iter().map(|n| (n.node_id.as_str(), n)).collect();
        Ok(set
            .resolve(self.vars)?
            .iter()
            .filter_map(|id| by_id.get(id.as_str()).copied())
            .collect())
    }

    /// The ids of a set's nodes, in the set's order.
    pub(super) fn node_ids(&self, set: &NodeSet) -> Result<Vec<String>, EngineError> {
        Ok(self.nodes(set)?.into_iter().map(|n| n.node_id.clone()).collect())
    }
}
