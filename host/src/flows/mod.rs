//! One file per lifecycle operation, each a [`Flow`]: whether the operation
//! may run on the cluster as it is (*admit*), the record it implies
//! (*prepare*: new nodes, new sizes), and its [`Plan`] — pure functions of
//! the cluster and the request. The engine holds no per-operation rule.
//! Each step cites the seed's step it implements
//! (`../shared/seeds/instance-lifecycle.en.md`; for the flows the seed shows
//! only as pictures, `../shared/notes/appcenter-spec.md` §5).

mod add_nodes;
mod admit;
mod backup;
mod change_vxnet;
mod create;
mod delete;
mod delete_backup;
mod delete_nodes;
mod downgrade;
mod exchange_ips;
mod params;
mod resize;
mod restart;
mod restore;
mod run_service;
mod select;
mod start;
mod stop;
mod update_env;
mod upgrade;

pub use resize::{MAX_CPU, MAX_MEMORY, MAX_VOLUME};

pub use admit::Refusal;
pub use upgrade::same_shape;

use crate::apps::AppVersion;
use crate::backups::Backup;
use crate::cluster::{Cluster, ClusterStatus};
use crate::plan::Plan;
use crate::request::{OperationKind, OperationRequest};

/// One operation, as the engine runs it.
pub trait Flow: Send + Sync {
    /// Which operation it is.
    fn kind(&self) -> OperationKind;

    /// The record a flow that makes a new cluster starts from (create).
    fn new_cluster(&self) -> Result<Cluster, Refusal> {
        Err(Refusal::new(self.kind(), None, "the request names no cluster"))
    }

    /// Whether it may run on `cluster` as it is now; the status the cluster
    /// has while it runs. (A busy cluster is refused before, by the engine.)
    fn admit(&self, cluster: &Cluster) -> Result<ClusterStatus, Refusal>;

    /// The record as the operation starts with it; unchanged by default.
    fn prepare(&self, cluster: Cluster) -> Result<Cluster, Refusal> {
        Ok(cluster)
    }

    /// The steps, from the prepared record.
    fn plan(&self, cluster: &Cluster) -> Plan;
}

/// What the engine loaded for a request's flow: `app`, the app version the
/// request names, loaded and checked (the one a create or a restore makes
/// a cluster of, the one an upgrade goes to, the one a downgrade goes back
/// to); `same_content`, the names of the versions with the content of the
/// one the cluster runs (an upgrade_policy may name any of them);
/// `backup`, the backup a restore or a deletion names; `peer`, the other
/// cluster of an IP exchange; `holders`, who holds each address a network
/// change pins.
#[derive(Default)]
pub struct Loaded {
    /// The app version.
    pub app: Option<AppVersion>,
    /// The versions with the content of the cluster's.
    pub same_content: Vec<String>,
    /// The backup.
    pub backup: Option<Backup>,
    /// The other cluster.
    pub peer: Option<Cluster>,
    /// The holders of pinned addresses, by address.
    pub holders: std::collections::BTreeMap<String, String>,
}

/// The flow of a request, with what the engine loaded for it.
pub fn flow_of(request: &OperationRequest, loaded: Loaded) -> Result<Box<dyn Flow>, Refusal> {
    let Loaded {
        app,
        same_content,
        backup,
        peer,
        holders,
    } = loaded;
    let missing = |what: &str| Refusal::new(request.kind(), None, format!("the request's {what} was not loaded"));
    let loaded = |app: Option<AppVersion>| app.ok_or_else(|| missing("app version"));
    Ok(match request {
        OperationRequest::CreateCluster { name, .. } => Box::new(create::Create::new(loaded(app)?, name.clone())),
        OperationRequest::Upgrade {
            canaries,
            max_in_flight,
            ..
        } => Box::new(upgrade::Upgrade {
            target: loaded(app)?,
            same_content,
            canaries: *canaries,
            max_in_flight: *max_in_flight,
        }),
        OperationRequest::Downgrade { .. } => Box::new(downgrade::Downgrade { back_to: app }),
        OperationRequest::DeleteCluster { force, .. } => Box::new(delete::Delete { force: *force }),
        OperationRequest::StopCluster { .. } => Box::new(stop::Stop),
        OperationRequest::StartCluster { .. } => Box::new(start::Start),
        OperationRequest::AddNodes { role, count, .. } => Box::new(add_nodes::AddNodes {
            role: role.clone(),
            count: *count,
        }),
        OperationRequest::DeleteNodes { nodes, force, .. } => Box::new(delete_nodes::DeleteNodes {
            nodes: nodes.clone(),
            force: *force,
        }),
        OperationRequest::Resize { role, change, .. } => Box::new(resize::Resize {
            role: role.clone(),
            change: change.clone(),
        }),
        OperationRequest::UpdateEnv { env, role, .. } => Box::new(update_env::UpdateEnv {
            env: env.clone(),
            role: role.clone(),
        }),
        OperationRequest::RunService {
            service,
            params,
            role,
            nodes,
            ..
        } => Box::new(run_service::RunService {
            service: service.clone(),
            params: params.clone(),
            role: role.clone(),
            nodes: nodes.clone(),
        }),
        OperationRequest::Restart { role, .. } => Box::new(restart::Restart { role: role.clone() }),
        OperationRequest::ChangeVxnet { vxnet, ips, .. } => Box::new(change_vxnet::ChangeVxnet {
            vxnet: vxnet.clone(),
            ips: ips.clone(),
            holders,
        }),
        OperationRequest::ExchangeIps { .. } => Box::new(exchange_ips::ExchangeIps {
            peer: peer.ok_or_else(|| missing("other cluster"))?,
        }),
        OperationRequest::Backup { order, incremental, .. } => Box::new(backup::Backup {
            order: order.clone().ok_or_else(|| missing("backup order"))?,
            incremental: *incremental,
        }),
        OperationRequest::Restore { name, .. } => Box::new(restore::Restore {
            backup: backup.ok_or_else(|| missing("backup"))?,
            app,
            name: name.clone(),
        }),
        OperationRequest::DeleteBackup { backups, .. } => Box::new(delete_backup::DeleteBackup {
            backups: backups.clone(),
            policy: backup.ok_or_else(|| missing("backup"))?.policy,
        }),
    })
}

#[cfg(test)]
mod scaling_tests;
#[cfg(test)]
mod tests;
