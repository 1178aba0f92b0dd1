//! Which nodes a step acts on, as the spec says: the nodes whose role
//! defines a service, `nodes_to_execute_on` keeping each role's first nodes.

use crate::cluster::{Cluster, Node};
use crate::plan::{Action, OnFailure, Plan, Reply, ServiceStep};
use crate::spec::{ServiceSpec, is_replica_role};
use std::collections::{BTreeMap, HashSet};

/// The nodes whose role defines `service` and passes `filter`, in creation
/// order; a role's `nodes_to_execute_on: N` keeps its N nodes of lowest sid.
pub(super) fn nodes_with(cluster: &Cluster, service: &str, filter: impl Fn(&ServiceSpec) -> bool) -> Vec<String> {
    nodes_among(cluster, |_| true, service, filter)
}

/// [`nodes_with`] among the nodes `among` keeps (the existing nodes of an
/// add, the remaining ones of a delete). Nodes whose resources a failed
/// deletion already deleted are never kept. For a replica role, as
/// OpenPitrix does (`notes/appcenter-spec.md` §2.3), `nodes_to_execute_on`
/// below its role's node count leaves every replica out. A node booted
/// from another app version than the cluster's is kept whenever `filter`
/// keeps a service without options: whether its version defines the
/// service is decided when the step runs, by that version's spec.
pub(super) fn nodes_among(
    cluster: &Cluster,
    among: impl Fn(&Node) -> bool,
    service: &str,
    filter: impl Fn(&ServiceSpec) -> bool,
) -> Vec<String> {
    let mut by_role: BTreeMap<&str, Vec<(u32, &str)>> = BTreeMap::new();
    let mut kept = HashSet::new();
    let plain = filter(&ServiceSpec::default());
    for node in cluster.live_nodes().filter(|n| among(n)) {
        if node.version.is_some() {
            if plain {
                kept.insert(node.node_id.as_str());
            }
        } else if cluster.service(&node.role, service).is_some_and(&filter) {
            by_role.entry(&node.role).or_default().push((node.sid, &node.node_id));
        }
    }
    for (role, mut members) in by_role {
        members.sort();
        let limit = cluster
            .service(role, service)
            .and_then(|s| s.nodes_to_execute_on)
            .map_or(usize::MAX, |n| n as usize);
        let limit = match cluster.spec.role(role) {
            Some(spec)
                if is_replica_role(role) && limit < cluster.live_nodes().filter(|n| n.role == spec.role).count() =>
            {
                0
            }
            _ => limit,
        };
        kept.extend(members.into_iter().take(limit).map(|(_, id)| id));
    }
    cluster
        .nodes
        .iter()
        .filter(|n| kept.contains(n.node_id.as_str()))
        .map(|n| n.node_id.clone())
        .collect()
}

/// Adds a service step when some node runs it.
pub(super) fn push_service(plan: &mut Plan, step: ServiceStep, seed: &str) {
    let empty = matches!(&step.nodes, crate::plan::NodeSet::Ids(ids) if ids.is_empty());
    if !empty {
        plan.push(Action::RunService(step), seed);
    }
}

/// The seed's `init` and `start` ("create" 4, "add nodes" 5) on the nodes
/// `among` keeps: `init` before `start` for roles whose
/// `init.post_start_service` is false, after it for the others; each by
/// role order. `step` cites the seed's step, `who` says whose hooks they are.
pub(super) fn push_init_and_start(
    plan: &mut Plan,
    cluster: &Cluster,
    among: impl Fn(&Node) -> bool + Copy,
    step: &str,
    who: &str,
) {
    push_around_start(plan, cluster, "init", among, |s| s, step, who);
}

/// The plan variable `custom_metadata`'s replies are kept in.
const TOKENS: &str = "tokens";

/// `custom_metadata` on the nodes `among` keeps (`notes/appcenter-spec.md`
/// §2.2: after `init` when init runs before `start`, and before `start`),
/// its replies registered as each node's `/host/token`.
fn push_custom_metadata(plan: &mut Plan, cluster: &Cluster, among: impl Fn(&Node) -> bool, step: &str, who: &str) {
    let nodes = nodes_among(cluster, among, "custom_metadata", |_| true);
    if nodes.is_empty() {
        return;
    }
    plan.push_output(
        Action::RunService(ServiceStep::new("custom_metadata", nodes.clone(), OnFailure::Fail).reply(Reply::ByNode)),
        format!("{step}: {who}run custom_metadata (after init, before start); its reply is the node's token"),
        TOKENS,
    );
    plan.push(
        Action::SetTokens { from: TOKENS.into() },
        format!("{step}: the replies become /host/token in the cluster record"),
    );
    plan.push(
        Action::RegisterMetadata,
        format!("{step}: register the tokens in the metadata service"),
    );
    plan.push(
        Action::RenderConfig { nodes: nodes.into() },
        format!("{step}: those nodes render again, their tokens in /host/token; reload where it really changed"),
    );
}

/// `start` and `around` (`init`, `upgrade`) on the nodes `among` keeps:
/// `around` before `start` for roles whose `<around>.post_start_service` is
/// false, after it for the others; each by role order. `shape` finishes
/// each step (another schedule, another version's hooks).
pub(super) fn push_around_start(
    plan: &mut Plan,
    cluster: &Cluster,
    around: &str,
    among: impl Fn(&Node) -> bool + Copy,
    shape: impl Fn(ServiceStep) -> ServiceStep,
    step: &str,
    who: &str,
) {
    let run = |service: &str, filter: fn(&ServiceSpec) -> bool| {
        shape(ServiceStep::new(
            service,
            nodes_among(cluster, among, service, filter),
            OnFailure::Fail,
        ))
    };
    push_service(
        plan,
        run(around, |s| !s.runs_after_start()),
        &format!(
            "{step}: {who}run {around} ({around}.post_start_service false: before start), roles in ascending order"
        ),
    );
    if around == "init" {
        push_custom_metadata(plan, cluster, among, step, who);
    }
    push_service(
        plan,
        run("start", |_| true),
        &format!("{step}: {who}run start, roles in ascending order, equal orders in parallel"),
    );
    push_service(
        plan,
        run(around, |s| s.runs_after_start()),
        &format!("{step}: {who}run {around} ({around}.post_start_service true: after start), roles in ascending order"),
    );
}

/// The ids of `nodes`.
pub(super) fn ids<'a>(nodes: impl IntoIterator<Item = &'a Node>) -> Vec<String> {
    nodes.into_iter().map(|n| n.node_id.clone()).collect()
}

/// `service` on `nodes` (the roles' nodes [`nodes_with`] keeps) by role
/// order. A role whose service names a `selector` (`notes/appcenter-spec.md`
/// §2.3, e.g. ZooKeeper's "find the leader") first asks it, on the role's
/// first node, which of its nodes runs the service: the reply (a node id)
/// comes first, and `nodes_to_execute_on` keeps that many from it. Without
/// selectors the service is one step; with them, a step per role, roles in
/// ascending order (equal orders one after another). `shape` finishes each
/// step (its params, its failure policy).
pub(super) fn push_selected(
    plan: &mut Plan,
    cluster: &Cluster,
    service: &str,
    nodes: Vec<String>,
    shape: impl Fn(ServiceStep) -> ServiceStep,
    seed: &str,
) {
    let selector = |role: &str| cluster.service(role, service).and_then(|s| s.selector.clone());
    let role_of = |id: &String| cluster.node(id).map(|n| n.role.clone()).unwrap_or_default();
    if nodes.iter().all(|id| selector(&role_of(id)).is_none()) {
        push_service(plan, shape(ServiceStep::new(service, nodes, OnFailure::Fail)), seed);
        return;
    }
    let mut groups: BTreeMap<(u32, String), Vec<String>> = BTreeMap::new();
    for id in &nodes {
        let role = role_of(id);
        let order = cluster.service(&role, service).map_or(0, |s| s.order);
        groups.entry((order, role)).or_default().push(id.clone());
    }
    for ((_, role), ids) in groups {
        let Some(selector) = selector(&role) else {
            push_service(plan, shape(ServiceStep::new(service, ids, OnFailure::Fail)), seed);
            continue;
        };
        let mut members: Vec<&Node> = cluster.live_nodes().filter(|n| n.role == role).collect();
        members.sort_by_key(|n| n.sid);
        let of = ids_of_nodes(&members);
        let var = format!("selected-{service}-{role}");
        plan.push_output(
            Action::RunService(
                ServiceStep::new(&selector, of[..1].to_vec(), OnFailure::Fail)
                    .reply(Reply::NodeOrder { of, passed: Vec::new() }),
            ),
            format!("{seed}: role {role}'s selector ({selector}) names the node that runs {service}"),
            &var,
        );
        let take = cluster
            .service(&role, service)
            .and_then(|s| s.nodes_to_execute_on)
            .map(|n| n as usize);
        plan.push(
            Action::RunService(shape(ServiceStep::new(
                service,
                crate::plan::NodeSet::Order {
                    order: var,
                    skip: 0,
                    take,
                },
                OnFailure::Fail,
            ))),
            format!("{seed} (role {role}: the selected node first)"),
        );
    }
}

fn ids_of_nodes(nodes: &[&Node]) -> Vec<String> {
    nodes.iter().map(|n| n.node_id.clone()).collect()
}
