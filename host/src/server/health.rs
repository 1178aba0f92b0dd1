//! The server's health loop: every tick it finds, for every tenant, the
//! active clusters whose watched roles are due (each role's `interval_sec`)
//! and runs a round on them ([`Engine::check_health`]: checks, actions,
//! monitor replies). Rounds of one cluster never overlap each other or an
//! operation (the engine's gate); the monitor replies are kept in memory for a
//! bounded window ([`KEPT_SAMPLES`] per node), for the API and the console.

use super::{Server, TenantCtx};
use crate::cluster::ClusterStatus;
use crate::engine::Sample;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Monitor samples kept per node (6 hours at the default 60 s).
pub const KEPT_SAMPLES: usize = 360;

/// One monitor sample as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct Point {
    /// When (Unix milliseconds).
    pub(crate) at_ms: u64,
    /// The items' values.
    pub(crate) values: BTreeMap<String, Value>,
}

/// A tenant's monitor samples: by cluster, then node, oldest first.
#[derive(Default)]
pub(crate) struct MonitorWindow {
    clusters: Mutex<HashMap<String, BTreeMap<String, VecDeque<Point>>>>,
}

impl MonitorWindow {
    /// Keeps a round's samples (those with values).
    pub(crate) fn keep(&self, cluster: &str, samples: &[Sample]) {
        let mut clusters = self.clusters.lock().unwrap_or_else(|p| p.into_inner());
        let nodes = clusters.entry(cluster.to_string()).or_default();
        for sample in samples.iter().filter(|s| s.error.is_none()) {
            let points = nodes.entry(sample.node_id.clone()).or_default();
            points.push_back(Point {
                at_ms: sample.at_ms,
                values: sample.values.clone(),
            });
            while points.len() > KEPT_SAMPLES {
                points.pop_front();
            }
        }
    }

    /// A cluster's samples, by node.
    pub(crate) fn of(&self, cluster: &str) -> BTreeMap<String, VecDeque<Point>> {
        let clusters = self.clusters.lock().unwrap_or_else(|p| p.into_inner());
        clusters.get(cluster).cloned().unwrap_or_default()
    }
}

/// A role of a cluster of a tenant: what is due on its own schedule.
type Watched = (String, String, String);

/// Runs rounds forever; `every` replaces each role's interval (tests, demos).
pub(super) async fn watch(server: Server, every: Option<Duration>) {
    let tick = every.map_or(Duration::from_secs(1), |e| (e / 4).max(Duration::from_millis(20)));
    let mut last: HashMap<Watched, Instant> = HashMap::new();
    let busy: Arc<Mutex<HashSet<(String, String)>>> = Arc::default();
    loop {
        tokio::time::sleep(tick).await;
        let tenants = match server.shared.tenants.list() {
            Ok(tenants) => tenants,
            Err(error) => {
                tracing::warn!(%error, "health loop: cannot read the tenants");
                continue;
            }
        };
        for tenant in tenants {
            if !server.tenant_dir(&tenant.name).exists() {
                continue;
            }
            let ctx = match server.tenant(&tenant) {
                Ok(ctx) => ctx,
                Err(error) => {
                    tracing::warn!(tenant = %tenant.name, %error, "health loop: cannot open the tenant");
                    continue;
                }
            };
            let clusters = match ctx.engine.store().clusters() {
                Ok(clusters) => clusters,
                Err(error) => {
                    tracing::warn!(tenant = %tenant.name, %error, "health loop: cannot list clusters");
                    continue;
                }
            };
            let now = Instant::now();
            for cluster in clusters {
                // (An operation's id stays on the cluster after it ends: the round checks whether it runs.)
                if cluster.status != ClusterStatus::Active {
                    continue;
                }
                let key = (tenant.name.clone(), cluster.id.clone());
                if busy.lock().unwrap_or_else(|p| p.into_inner()).contains(&key) {
                    continue;
                }
                let due: Vec<String> = crate::engine::watched_roles(&cluster)
                    .into_iter()
                    .filter(|(role, interval)| {
                        let at = (tenant.name.clone(), cluster.id.clone(), role.clone());
                        let interval = every.unwrap_or(*interval);
                        let due = last.get(&at).is_none_or(|t| now.duration_since(*t) >= interval);
                        if due {
                            last.insert(at, now);
                        }
                        due
                    })
                    .map(|(role, _)| role)
                    .collect();
                if due.is_empty() {
                    continue;
                }
                busy.lock().unwrap_or_else(|p| p.into_inner()).insert(key.clone());
                tokio::spawn(round(ctx.clone(), cluster.id, due, busy.clone(), key));
            }
        }
    }
}

/// One round on a cluster; its samples kept.
async fn round(
    ctx: Arc<TenantCtx>,
    cluster: String,
    roles: Vec<String>,
    busy: Arc<Mutex<HashSet<(String, String)>>>,
    key: (String, String),
) {
    match ctx.engine.check_health(&cluster, Some(&roles)).await {
        Ok(round) => ctx.monitor.keep(&cluster, &round.samples),
        Err(error) => tracing::warn!(tenant = %ctx.name, %cluster, %error, "health round failed"),
    }
    busy.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
}
