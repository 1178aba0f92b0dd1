//! One file per lifecycle operation, each a plan builder: a pure function of
//! the cluster (and the request) that returns the [`Plan`] the executor runs.
//! Each step cites the seed's step it implements
//! (`../shared/seeds/instance-lifecycle.en.md`; for the flows the seed shows
//! only as pictures, `../shared/notes/appcenter-spec.md` §5).

mod create;
mod delete;
mod start;
mod stop;

pub use create::create;
pub use delete::delete;
pub use start::start;
pub use stop::stop;

use crate::engine::plan::Plan;
use crate::spec::ServiceSpec;
use crate::state::{Cluster, Node};

/// The nodes whose role defines `service` and passes `filter`, in creation order.
fn nodes_with(cluster: &Cluster, service: &str, filter: impl Fn(&ServiceSpec) -> bool) -> Vec<String> {
    cluster
        .nodes
        .iter()
        .filter(|n: &&Node| {
            cluster
                .spec
                .role(&n.role)
                .and_then(|r| r.service(service))
                .is_some_and(&filter)
        })
        .map(|n| n.node_id.clone())
        .collect()
}

/// Adds a service step when some node runs it.
fn push_service(
    plan: &mut Plan,
    service: &str,
    nodes: Vec<String>,
    on_failure: crate::engine::plan::OnFailure,
    seed: &str,
) {
    if !nodes.is_empty() {
        plan.push(
            crate::engine::plan::Action::RunService {
                service: service.into(),
                nodes,
                on_failure,
            },
            seed,
        );
    }
}

#[cfg(test)]
mod tests;
