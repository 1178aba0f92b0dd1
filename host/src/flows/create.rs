//! Create cluster — the seed's "Create cluster", steps 1 to 4.

use super::Flow;
use super::admit::{Refusal, by_status};
use super::select::push_init_and_start;
use crate::apps::AppVersion;
use crate::cluster::{Cluster, ClusterStatus, check_name};
use crate::plan::{Action, Plan};
use crate::request::OperationKind;

/// Creating a cluster of a loaded, checked app version.
pub(super) struct Create {
    app: AppVersion,
    name: Option<String>,
}

impl Create {
    pub(super) fn new(app: AppVersion, name: Option<String>) -> Create {
        Create { app, name }
    }
}

impl Flow for Create {
    fn kind(&self) -> OperationKind {
        OperationKind::CreateCluster
    }

    /// The record: its nodes with fresh ids and sids, named by `--name`,
    /// else by the spec (else by its id); IPs come when the operation begins.
    fn new_cluster(&self) -> Result<Cluster, Refusal> {
        if let Some(name) = &self.name {
            check_name(name).map_err(|why| Refusal::new(self.kind(), None, format!("--name: {why}")))?;
        }
        let name = self.name.clone().unwrap_or_else(|| self.app.spec.name.clone());
        let mut cluster = Cluster::new(
            self.app.reference(),
            self.app.spec.clone(),
            self.app.source.clone(),
            name,
        );
        if cluster.name.is_empty() {
            cluster.name = cluster.id.clone();
        }
        Ok(cluster)
    }

    fn admit(&self, cluster: &Cluster) -> Result<ClusterStatus, Refusal> {
        match cluster.status {
            ClusterStatus::Creating => Ok(ClusterStatus::Creating),
            _ => Err(by_status(self.kind(), cluster)),
        }
    }

    fn plan(&self, cluster: &Cluster) -> Plan {
        let all = cluster.node_ids();
        let mut plan = Plan::default();
        plan.push(
            Action::CreateResources {
                nodes: all.clone().into(),
            },
            "create 1: create the resources of every node (server, disks, IP addresses)",
        );
        plan.push(
            Action::RegisterMetadata,
            "create 2: register all information about the cluster in the metadata service",
        );
        plan.push(
            Action::RenderConfig { nodes: all.into() },
            "create 3: start every node's confd agent: render the configuration, run reload where it really changed",
        );
        push_init_and_start(&mut plan, cluster, |_| true, "create 4", "");
        plan.push(
            Action::SetStatus {
                status: ClusterStatus::Active,
            },
            "create: the cluster is active",
        );
        plan
    }
}
