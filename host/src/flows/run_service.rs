//! Custom services (`notes/appcenter-spec.md` §5.15, §2.3, §6.3–6.4): the
//! app's own actions (`"type": "custom"`), run on the nodes the user picks
//! or on every node of the roles that define the service
//! (`nodes_to_execute_on` keeps each role's first nodes), roles in ascending
//! `order`, with the service's `timeout`. Chosen steps:
//! 1. when the service has `pre_check`, the same nodes are asked first; a
//!    refusal changes nothing;
//! 2. the service runs with the user's `service_params` over the spec's
//!    defaults (checked against what the spec declares); a role whose
//!    service names a `selector` (§2.3) first asks it which of its nodes
//!    runs it (the reply first, `nodes_to_execute_on` of them), unless the
//!    user named the nodes (`--nodes`), as backup does. The pre-check of
//!    step 1 asks the role's first nodes by sid: the selection is made
//!    after it, so that a refusal comes before anything runs;
//! 3. the cluster is active again.
//!
//! A failed service fails the operation (its error code with the spec's
//! `err_code<N>` message) but not the cluster: nothing the record holds
//! changed, so the cluster stays active.

use super::Flow;
use super::admit::{Refusal, active};
use super::select::{nodes_with, push_selected, push_service};
use crate::cluster::{Cluster, ClusterStatus};
use crate::plan::{Action, OnFailure, Plan, ServiceStep};
use crate::request::OperationKind;
use crate::spec::ServiceType;
use serde_json::{Map, Value};

/// Running a custom service.
pub(super) struct RunService {
    pub(super) service: String,
    pub(super) params: Map<String, Value>,
    pub(super) role: Option<String>,
    pub(super) nodes: Vec<String>,
}

impl RunService {
    fn refuse(&self, cluster: &Cluster, why: impl Into<String>) -> Refusal {
        Refusal::new(OperationKind::RunService, Some(cluster), why)
    }

    /// The nodes it runs on, in creation order.
    fn targets(&self, cluster: &Cluster) -> Result<Vec<String>, Refusal> {
        let service = &self.service;
        let shown = crate::text::clip(service, 64);
        let custom = |role: &str| {
            cluster
                .service(role, service)
                .is_some_and(|s| s.kind == Some(ServiceType::Custom))
        };
        if !cluster.spec.nodes.iter().any(|r| custom(&r.role)) {
            let names: Vec<&str> = cluster
                .spec
                .nodes
                .iter()
                .flat_map(|r| r.services.iter())
                .filter(|(_, s)| s.kind == Some(ServiceType::Custom))
                .map(|(n, _)| n.as_str())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let have = if names.is_empty() {
                "the app has no custom services".to_string()
            } else {
                format!("its custom services are {}", names.join(", "))
            };
            let system = if crate::hook::is_system_service(service) {
                format!(" ({shown} is a lifecycle service: it runs within its operations)")
            } else {
                String::new()
            };
            return Err(self.refuse(
                cluster,
                format!("no role defines a custom service {shown:?}{system}; {have}"),
            ));
        }
        if let Some(role) = &self.role {
            let roles = cluster.role_counts();
            if !roles.contains_key(role.as_str()) {
                let names: Vec<&str> = roles.keys().copied().collect();
                return Err(self.refuse(
                    cluster,
                    format!(
                        "it has no role {:?}; its roles are {}",
                        crate::text::clip(role, 64),
                        names.join(", ")
                    ),
                ));
            }
            if !custom(role) {
                return Err(self.refuse(cluster, format!("role {role} does not define {shown}")));
            }
        }
        let in_role = |role: &str| self.role.as_deref().is_none_or(|r| r == role);
        if self.nodes.is_empty() {
            let nodes = nodes_with(cluster, service, |s| s.kind == Some(ServiceType::Custom));
            return Ok(nodes
                .into_iter()
                .filter(|id| cluster.node(id).is_some_and(|n| in_role(&n.role)))
                .collect());
        }
        let mut per_role = std::collections::BTreeMap::<&str, u32>::new();
        let mut listed = std::collections::BTreeSet::new();
        for id in self.nodes.iter().filter(|id| listed.insert(id.as_str())) {
            let shown_id = crate::text::clip(id, 64);
            let Some(node) = cluster.live_nodes().find(|n| &n.node_id == id) else {
                return Err(self.refuse(cluster, format!("it has no node {shown_id:?}")));
            };
            if !in_role(&node.role) {
                return Err(self.refuse(
                    cluster,
                    format!(
                        "node {id} is of role {}, not {}",
                        node.role,
                        self.role.as_deref().unwrap_or_default()
                    ),
                ));
            }
            if !custom(&node.role) {
                return Err(self.refuse(
                    cluster,
                    format!("node {id}'s role {} does not define {shown}", node.role),
                ));
            }
            let count = per_role.entry(&node.role).or_default();
            *count += 1;
            if let Some(limit) = cluster.service(&node.role, service).and_then(|s| s.nodes_to_execute_on)
                && *count > limit
            {
                return Err(self.refuse(
                    cluster,
                    format!(
                        "{shown} runs on at most {limit} node(s) of role {} (nodes_to_execute_on)",
                        node.role
                    ),
                ));
            }
        }
        Ok(cluster
            .nodes
            .iter()
            .filter(|n| self.nodes.contains(&n.node_id))
            .map(|n| n.node_id.clone())
            .collect())
    }
}

impl Flow for RunService {
    fn kind(&self) -> OperationKind {
        OperationKind::RunService
    }

    fn admit(&self, cluster: &Cluster) -> Result<ClusterStatus, Refusal> {
        active(self.kind(), cluster)?;
        let targets = self.targets(cluster)?;
        if targets.is_empty() {
            return Err(self.refuse(cluster, "no node runs it"));
        }
        // The params are the targeted roles' to judge.
        let roles: std::collections::BTreeSet<&str> = targets
            .iter()
            .filter_map(|id| cluster.node(id))
            .filter_map(|n| cluster.spec.role(&n.role).map(|r| r.role.as_str()))
            .collect();
        for role in cluster.spec.nodes.iter().filter(|r| roles.contains(r.role.as_str())) {
            let declared = role.service(&self.service).and_then(|s| s.service_params.as_ref());
            super::params::check(&self.service, declared, &self.params).map_err(|why| self.refuse(cluster, why))?;
        }
        Ok(ClusterStatus::RunningService)
    }

    fn plan(&self, cluster: &Cluster) -> Plan {
        let targets = self.targets(cluster).unwrap_or_default();
        let service = self.service.as_str();
        let step = || ServiceStep::new(service, targets.clone(), OnFailure::Fail).params(self.params.clone());
        let mut plan = Plan::default();
        let checked: Vec<String> = targets
            .iter()
            .filter(|id| {
                cluster
                    .node(id)
                    .and_then(|n| cluster.service(&n.role, service))
                    .is_some_and(|s| s.pre_check == Some(true))
            })
            .cloned()
            .collect();
        push_service(
            &mut plan,
            ServiceStep::new(service, checked, OnFailure::Refuse)
                .params(self.params.clone())
                .pre_check(),
            &format!("custom service 1: the {service} pre-check asks its nodes first; a refusal changes nothing"),
        );
        let seed = format!("custom service 2: run {service} with its service_params, roles in ascending order");
        if self.nodes.is_empty() {
            let params = self.params.clone();
            push_selected(
                &mut plan,
                cluster,
                service,
                targets.clone(),
                |s| s.params(params.clone()),
                &seed,
            );
        } else {
            push_service(&mut plan, step(), &seed);
        }
        plan.push(
            Action::SetStatus {
                status: ClusterStatus::Active,
            },
            "custom service 3: the cluster is active again",
        );
        plan.recover(
            Action::SetStatus {
                status: ClusterStatus::Active,
            },
            "custom service: a failed service changed nothing the record holds; the cluster stays active",
        );
        plan
    }
}
