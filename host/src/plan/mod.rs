//! Plans: what an operation will do, step by step, before anything runs.
//!
//! A flow turns (cluster, request) into a [`Plan`]; the one executor runs
//! any plan; printing a plan without running it is the dry run. A plan is
//! data (serde), stored with its operation, so a resumed operation runs the
//! plan it started with.
//!
//! - The *main* part runs first; the *recovery* part runs only when the main
//!   part fails, is refused or is cancelled after a step ran (clear
//!   `/deleting-hosts`, boot the old version). Which part ran is journaled.
//! - A step may name an `output`: the value it produced (a hook's reply, a
//!   node order) is journaled with the step and read by later steps through
//!   [`NodeSet::Order`], so a plan stays pure even when a hook decides the
//!   node order at run time, and a resumed operation never asks again.
//!
//! This module imports only the records its actions carry (`cluster`,
//! `request`); nothing it imports imports it back.

mod display;

use crate::cluster::{ClusterStatus, Node, Upgrade};
use crate::request::{BackupOrder, ResourceChange};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use thiserror::Error;

/// The values steps produced, by the name of the step's `output`.
pub type Vars = BTreeMap<String, Value>;

/// An operation's steps: the main part, and what recovers from its failure.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Plan {
    /// The main part, in order.
    pub steps: Vec<Step>,
    /// Run, in order, when the main part did not succeed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recovery: Vec<Step>,
    /// What the user is told, after the error, when the recovery part ran
    /// (what stays behind, and how to remove it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_note: Option<String>,
    /// How many first steps of the main part the recovery part undoes
    /// entirely: when the main part stopped within them and the recovery ran
    /// to its end, the cluster is as it was, and takes its prior status back.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reversible: usize,
    /// The step from which a cancel is no longer honoured: past it, stopping
    /// halfway would do more harm than finishing (a guard said yes, data
    /// went); the operation runs to its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_cancel_from: Option<usize>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Step {
    /// A step of the operation's own cluster, producing nothing kept.
    pub fn new(action: Action, seed: impl Into<String>) -> Step {
        Step {
            action,
            seed: seed.into(),
            output: None,
            on_peer: false,
        }
    }
}

/// One step and where it comes from in the seed.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Step {
    /// What the step does.
    pub action: Action,
    /// The seed's step it implements (`create 4: run init and start ...`).
    pub seed: String,
    /// The variable its output is kept in, for later steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// It acts on the operation's peer (the other cluster of an IP
    /// exchange), not on its own cluster.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub on_peer: bool,
}

/// What a hook failure does to the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case", tag = "policy")]
pub enum OnFailure {
    /// The step and the operation fail.
    Fail,
    /// A refusal (a pre-check, a hook that says no): the operation is
    /// aborted with the hook's error, and nothing it would change is changed.
    Refuse,
    /// The data-loss guard (`destroy` before `stop`): a failure aborts the
    /// operation and the cluster stays as it was, unless `force` is set and
    /// the failing node's role allows forcing (`allow_force`).
    Guard {
        /// The user asked to force the deletion.
        force: bool,
    },
    /// The failure is recorded and the operation goes on (`stop` while
    /// deleting, a forced `destroy`).
    Continue,
}

/// The nodes a step acts on, by `node_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum NodeSet {
    /// These nodes.
    Ids(Vec<String>),
    /// Nodes of a node order an earlier step produced (its `output`): the
    /// order's `take` nodes after its first `skip` (all the rest when `take` is absent).
    Order {
        /// The variable holding the order (a list of node ids).
        order: String,
        /// Nodes of the order passed over.
        #[serde(default)]
        skip: usize,
        /// How many nodes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        take: Option<usize>,
    },
}

impl From<Vec<String>> for NodeSet {
    fn from(ids: Vec<String>) -> Self {
        NodeSet::Ids(ids)
    }
}

/// A plan that cannot run as written (a flow's bug, or a corrupt record).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlanError {
    /// A step reads a variable no earlier step produces.
    #[error("step {step} reads ${var}, which no earlier step produces")]
    UnknownVar {
        /// The step, from 1.
        step: usize,
        /// The variable.
        var: String,
    },
    /// Two steps produce the same variable.
    #[error("step {step} produces ${var} a second time")]
    DuplicateVar {
        /// The step, from 1.
        step: usize,
        /// The variable.
        var: String,
    },
    /// A variable holds no node list.
    #[error("${var} is not a list of node ids (it is {found})")]
    NotANodeList {
        /// The variable.
        var: String,
        /// What it holds, shortened.
        found: String,
    },
    /// A variable read at run time has no value (its step did not run).
    #[error("${var} has no value: the step producing it did not run")]
    Unset {
        /// The variable.
        var: String,
    },
}

impl NodeSet {
    /// The node ids, in order, with `vars` for node orders produced at run time.
    pub fn resolve(&self, vars: &Vars) -> Result<Vec<String>, PlanError> {
        match self {
            NodeSet::Ids(ids) => Ok(ids.clone()),
            NodeSet::Order { order, skip, take } => {
                let value = vars.get(order).ok_or_else(|| PlanError::Unset { var: order.clone() })?;
                let ids = node_list(value).ok_or_else(|| PlanError::NotANodeList {
                    var: order.clone(),
                    found: value.to_string().chars().take(60).collect(),
                })?;
                Ok(ids.into_iter().skip(*skip).take(take.unwrap_or(usize::MAX)).collect())
            }
        }
    }

    /// The variable it reads, if any.
    pub fn var(&self) -> Option<&str> {
        match self {
            NodeSet::Ids(_) => None,
            NodeSet::Order { order, .. } => Some(order),
        }
    }
}

fn node_list(value: &Value) -> Option<Vec<String>> {
    value.as_array()?.iter().map(|v| v.as_str().map(String::from)).collect()
}

/// How a service step visits its nodes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case", tag = "by")]
pub enum Schedule {
    /// The seed's rule: roles in ascending `order`, equal orders and all
    /// nodes of a role at once; a group starts when the previous one ended.
    #[default]
    RoleOrder,
    /// The step's nodes in their listed order, at most `at_once` at a time
    /// (1: one after another); a batch starts when the previous one ended.
    Listed {
        /// Nodes running at once, at least 1.
        at_once: u32,
    },
}

/// What a service step makes of its hooks' replies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case", tag = "as")]
pub enum Reply {
    /// Nothing: the step's output is null.
    #[default]
    Ignore,
    /// The replies by node id (a JSON object of strings).
    ByNode,
    /// A node order (`get_nodes_order`): the first reply, comma-separated
    /// node ids, each one of `of` (or of `passed`, which the order leaves
    /// out) and none twice; the nodes of `of` it leaves out follow in `of`'s
    /// order. No reply leaves `of` as it is.
    NodeOrder {
        /// The nodes to order, in their default order.
        of: Vec<String>,
        /// Nodes the reply may name that are not ordered (a run again's finished ones).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        passed: Vec<String>,
    },
}

/// Running one service on nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServiceStep {
    /// The service's spec name.
    pub service: String,
    /// The nodes it may run on (roles without the service are skipped).
    pub nodes: NodeSet,
    /// What a failure does.
    pub on_failure: OnFailure,
    /// The `service_params` the hooks get; the spec's when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Map<String, Value>>,
    /// Only ask whether the service may run (the spec's `pre_check`): the
    /// node's directories are read-only, and a refusal is the service's error.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pre_check: bool,
    /// How the nodes are visited.
    #[serde(default, skip_serializing_if = "is_default")]
    pub schedule: Schedule,
    /// What the replies become.
    #[serde(default, skip_serializing_if = "is_default")]
    pub reply: Reply,
    /// Only these of its nodes run it (a role's `nodes_to_execute_on`, when
    /// the node order is known only at run time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub among: Option<Vec<String>>,
    /// The app version whose spec and components run it on every node,
    /// whatever version a node was booted from (an upgrade's new hooks);
    /// each node's own when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

impl ServiceStep {
    /// `service` on `nodes` by role order, with the spec's parameters.
    pub fn new(service: &str, nodes: impl Into<NodeSet>, on_failure: OnFailure) -> ServiceStep {
        ServiceStep {
            service: service.to_string(),
            nodes: nodes.into(),
            on_failure,
            params: None,
            pre_check: false,
            schedule: Schedule::RoleOrder,
            reply: Reply::Ignore,
            among: None,
            version: None,
        }
    }

    /// Run only on these of its nodes.
    pub fn among(mut self, nodes: Vec<String>) -> ServiceStep {
        self.among = Some(nodes);
        self
    }

    /// Run by this app version's spec and components on every node.
    pub fn of_version(mut self, version: &str) -> ServiceStep {
        self.version = Some(version.to_string());
        self
    }

    /// Only asks whether the service may run; a refusal aborts the operation.
    pub fn pre_check(mut self) -> ServiceStep {
        self.pre_check = true;
        self.on_failure = OnFailure::Refuse;
        self
    }

    /// With these `service_params` instead of the spec's.
    pub fn params(mut self, params: Map<String, Value>) -> ServiceStep {
        self.params = Some(params);
        self
    }

    /// In the nodes' listed order, at most `at_once` at a time.
    pub fn listed(mut self, at_once: u32) -> ServiceStep {
        self.schedule = Schedule::Listed {
            at_once: at_once.max(1),
        };
        self
    }

    /// Keeping the replies as the step's output.
    pub fn reply(mut self, reply: Reply) -> ServiceStep {
        self.reply = reply;
        self
    }
}

/// The temporary subtrees an operation shows hooks while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TempTree {
    /// `/adding-hosts`: the nodes being added.
    AddingHosts,
    /// `/deleting-hosts`: the nodes being deleted.
    DeletingHosts,
    /// `/vertical-scaling-roles`: the roles being resized.
    VerticalScalingRoles,
    /// `/upgrade-audit`: the versions of an upgrade.
    UpgradeAudit,
}

impl TempTree {
    /// Its top-level key in the cluster's tree.
    pub fn key(self) -> &'static str {
        match self {
            TempTree::AddingHosts => "adding-hosts",
            TempTree::DeletingHosts => "deleting-hosts",
            TempTree::VerticalScalingRoles => "vertical-scaling-roles",
            TempTree::UpgradeAudit => "upgrade-audit",
        }
    }
}

/// What a temporary subtree holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case", tag = "tree")]
pub enum TempEntry {
    /// The nodes' host entries (the keys of `/hosts`) under `/adding-hosts`.
    AddingHosts {
        /// The nodes.
        nodes: NodeSet,
    },
    /// The nodes' host entries under `/deleting-hosts`.
    DeletingHosts {
        /// The nodes.
        nodes: NodeSet,
    },
    /// `/vertical-scaling-roles` = the roles, comma separated.
    VerticalScalingRoles {
        /// The roles.
        roles: Vec<String>,
    },
    /// `/upgrade-audit/{from_app_version,to_app_version}`.
    UpgradeAudit {
        /// The version upgraded from.
        from_app_version: String,
        /// The version upgraded to.
        to_app_version: String,
    },
}

impl TempEntry {
    /// The subtree it fills.
    pub fn tree(&self) -> TempTree {
        match self {
            TempEntry::AddingHosts { .. } => TempTree::AddingHosts,
            TempEntry::DeletingHosts { .. } => TempTree::DeletingHosts,
            TempEntry::VerticalScalingRoles { .. } => TempTree::VerticalScalingRoles,
            TempEntry::UpgradeAudit { .. } => TempTree::UpgradeAudit,
        }
    }
}

/// The kinds of step, by family: provider, metadata, services, render, record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Action {
    /// Provider: the resources of these nodes that the record does not hold
    /// are deleted (an add cut off between creating a node and recording it).
    DiscardUnrecorded {
        /// The nodes an add planned.
        nodes: Vec<Node>,
    },
    /// Provider: create the nodes' resources (volume, instance, IP).
    CreateResources {
        /// The nodes.
        nodes: NodeSet,
    },
    /// Provider: stop the nodes' instances (volumes stay).
    StopInstances {
        /// The nodes.
        nodes: NodeSet,
    },
    /// Provider: start new instances for the nodes.
    StartInstances {
        /// The nodes.
        nodes: NodeSet,
    },
    /// Provider: resize the nodes (their instances and volumes, online);
    /// the record takes their new resources.
    ResizeNodes {
        /// The nodes.
        nodes: NodeSet,
        /// What changes.
        change: ResourceChange,
    },
    /// Provider: delete the nodes' resources, volumes and IPs included.
    DeleteResources {
        /// The nodes.
        nodes: NodeSet,
    },
    /// Metadata: the cluster's tree is written from its record (the
    /// temporary subtrees are left alone).
    RegisterMetadata,
    /// Metadata: the tree's `/env` and `/role-env` are written from the
    /// record's envs (only they are compared: an env change costs the same
    /// on any number of nodes).
    RegisterEnv,
    /// Metadata: the cluster's tree is removed.
    DeregisterMetadata,
    /// Metadata: a temporary subtree is written (replacing what it held).
    WriteTemp {
        /// What it holds.
        entry: TempEntry,
    },
    /// Metadata: a temporary subtree is removed.
    ClearTemp {
        /// The subtree.
        tree: TempTree,
    },
    /// Services: run a service on nodes.
    RunService(ServiceStep),
    /// Render: each node's component renders its config files; changed files
    /// are written and the node's `reload` service runs.
    RenderConfig {
        /// The nodes.
        nodes: NodeSet,
    },
    /// Record: the cluster takes a status.
    SetStatus {
        /// The status.
        status: ClusterStatus,
    },
    /// Provider and record: each new node's resources are created, then it
    /// joins the cluster record (IPs are allocated for it); a node whose
    /// resources could not be created never joins.
    AddNodes {
        /// The nodes, as the flow prepared them.
        nodes: Vec<Node>,
    },
    /// Record: nodes leave the cluster. Steps find their nodes in the
    /// record, so a removed node is in no later step: remove nodes after
    /// their `DeleteResources`.
    RemoveNodes {
        /// The nodes.
        nodes: NodeSet,
    },
    /// Record: added nodes have joined (their add-nodes got past their
    /// `init`, `start` and the others' `scale_out`).
    NodesJoined {
        /// The nodes.
        nodes: NodeSet,
    },
    /// Provider and backups: a backup is made whole: for a `device`
    /// backup every listed node's volume is copied (an incremental one
    /// stores only what changed since the point it builds on); then its
    /// record is kept. Done again, it starts over, or finds it made.
    KeepBackup {
        /// The backup to make.
        order: BackupOrder,
        /// The nodes whose volumes it holds (none for a `custom` backup).
        nodes: NodeSet,
    },
    /// Backups: a backup (whole or partial) is removed.
    DiscardBackup {
        /// The backup.
        id: String,
    },
    /// Provider: each node's volume becomes the copy a backup holds of the
    /// node with its role and `sid`, every file's checksum checked.
    RestoreVolumes {
        /// The backup.
        backup: String,
    },
    /// Record: nodes take their tokens (`/host/token`) from a step's
    /// replies by node (`custom_metadata`'s).
    SetTokens {
        /// The variable holding the replies.
        from: String,
    },
    /// Record: the cluster moves to another network: its nodes take the
    /// addresses pinned for them, the others and its reserved IPs the
    /// lowest free ones of the new network's pool; the old ones go back
    /// (one store transaction; done again, it finds the cluster moved).
    MoveNetwork {
        /// The network.
        vxnet: String,
        /// Pinned addresses, by node id.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        ips: BTreeMap<String, String>,
    },
    /// Record and metadata: the cluster's reserved IPs take `mine`, the
    /// peer's take `theirs`, in one store transaction, then both trees in
    /// one metadata revision (done again, the same addresses).
    SetReservedIps {
        /// The cluster's reserved IPs, by name.
        mine: BTreeMap<String, String>,
        /// The peer's, by name.
        theirs: BTreeMap<String, String>,
    },
    /// Record: the cluster's env (or a role's) takes these keys (`null` removes one).
    SetEnv {
        /// The keys changed.
        env: Map<String, Value>,
        /// The role whose env it is; the cluster's when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<String>,
    },
    /// Record: nodes are booted from another app version next (`None`: the cluster's).
    SwitchVersion {
        /// The nodes.
        nodes: NodeSet,
        /// The version.
        version: Option<String>,
    },
    /// Provider: the app version's payload is copied into the nodes, as its
    /// `in-place-upgrade-nodes` say; a failed copy removes its destination.
    CopyPayload {
        /// The nodes.
        nodes: NodeSet,
        /// The app version whose payload it is.
        version: String,
    },
    /// Record: an upgrade begins (once: a run again of the same upgrade
    /// finds it begun): the cluster takes the new version (its spec, with
    /// the cluster's env and network), and every node not yet upgraded keeps
    /// the old one (`Node::version`).
    BeginUpgrade {
        /// The upgrade.
        upgrade: Upgrade,
    },
    /// Record: these nodes' upgrade completed.
    UpgradeDone {
        /// The nodes.
        nodes: NodeSet,
        /// Only the nodes whose `<service>` ended ok in this operation's
        /// main part (a failed batch's recovery keeps what it finished).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        proven_by: Option<String>,
    },
    /// Record: the upgrade is over (its nodes keep the version they were
    /// booted from until their next start).
    EndUpgrade,
    /// Record: the cluster goes back to the version the upgrade started
    /// from; every node runs it; the upgrade is over.
    RevertUpgrade,
}

impl Action {
    /// The nodes it acts on, when it acts on a set of nodes.
    pub fn nodes(&self) -> Option<&NodeSet> {
        match self {
            Action::CreateResources { nodes }
            | Action::StopInstances { nodes }
            | Action::StartInstances { nodes }
            | Action::DeleteResources { nodes }
            | Action::RenderConfig { nodes }
            | Action::RemoveNodes { nodes }
            | Action::NodesJoined { nodes }
            | Action::ResizeNodes { nodes, .. }
            | Action::SwitchVersion { nodes, .. }
            | Action::CopyPayload { nodes, .. }
            | Action::UpgradeDone { nodes, .. }
            | Action::KeepBackup { nodes, .. }
            | Action::RunService(ServiceStep { nodes, .. })
            | Action::WriteTemp {
                entry: TempEntry::AddingHosts { nodes } | TempEntry::DeletingHosts { nodes },
            } => Some(nodes),
            _ => None,
        }
    }
}

impl Action {
    /// The plan variable it reads, if any.
    pub fn var(&self) -> Option<&str> {
        match self {
            Action::SetTokens { from } => Some(from),
            other => other.nodes().and_then(NodeSet::var),
        }
    }
}

impl Plan {
    /// Adds a step to the main part.
    pub fn push(&mut self, action: Action, seed: impl Into<String>) {
        self.steps.push(Step::new(action, seed));
    }

    /// Adds a step to the main part whose output later steps read as `output`.
    pub fn push_output(&mut self, action: Action, seed: impl Into<String>, output: &str) {
        self.steps.push(Step {
            output: Some(output.to_string()),
            ..Step::new(action, seed)
        });
    }

    /// Adds a step to the recovery part.
    pub fn recover(&mut self, action: Action, seed: impl Into<String>) {
        self.recovery.push(Step::new(action, seed));
    }

    /// The last step added (to the main or the recovery part) acts on the
    /// operation's peer.
    pub fn on_peer(&mut self, recovery: bool) {
        let part = if recovery { &mut self.recovery } else { &mut self.steps };
        if let Some(step) = part.last_mut() {
            step.on_peer = true;
        }
    }

    /// Every step with its journal index: the main part, then the recovery part.
    pub fn all(&self) -> impl Iterator<Item = (usize, &Step)> {
        self.steps.iter().chain(&self.recovery).enumerate()
    }

    /// The step at a journal index.
    pub fn step(&self, index: usize) -> Option<&Step> {
        self.all().nth(index).map(|(_, s)| s)
    }

    /// Whether a journal index is in the recovery part.
    pub fn is_recovery(&self, index: usize) -> bool {
        index >= self.steps.len()
    }

    /// Checks that every variable is produced once, before it is read. The
    /// recovery part reads only what it produces itself: it runs because the
    /// main part stopped, maybe before producing anything.
    pub fn check(&self) -> Result<(), PlanError> {
        let mut produced = std::collections::BTreeSet::new();
        for (index, step) in self.all() {
            if index == self.steps.len() {
                produced.clear();
            }
            if let Some(var) = step.action.var()
                && !produced.contains(var)
            {
                return Err(PlanError::UnknownVar {
                    step: index + 1,
                    var: var.to_string(),
                });
            }
            if let Some(var) = &step.output
                && !produced.insert(var.clone())
            {
                return Err(PlanError::DuplicateVar {
                    step: index + 1,
                    var: var.clone(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn node_sets_resolve_listed_ids_and_slices_of_a_produced_order() {
        let vars: Vars = [("order".to_string(), json!(["c", "b", "a"]))].into();
        let ids = NodeSet::Ids(vec!["x".into()]);
        assert_eq!(ids.resolve(&vars).unwrap(), ["x"]);
        let all = NodeSet::Order {
            order: "order".into(),
            skip: 0,
            take: None,
        };
        assert_eq!(all.resolve(&vars).unwrap(), ["c", "b", "a"]);
        let second = NodeSet::Order {
            order: "order".into(),
            skip: 1,
            take: Some(1),
        };
        assert_eq!(second.resolve(&vars).unwrap(), ["b"]);
        let past_the_end = NodeSet::Order {
            order: "order".into(),
            skip: 5,
            take: Some(1),
        };
        assert!(past_the_end.resolve(&vars).unwrap().is_empty());
        let unset = NodeSet::Order {
            order: "nope".into(),
            skip: 0,
            take: None,
        };
        assert_eq!(unset.resolve(&vars), Err(PlanError::Unset { var: "nope".into() }));
        let vars: Vars = [("order".to_string(), json!({"a": 1}))].into();
        assert!(matches!(all.resolve(&vars), Err(PlanError::NotANodeList { .. })));
        // Listed ids serialize as a plain array, as plans always did.
        assert_eq!(serde_json::to_value(&ids).unwrap(), json!(["x"]));
        assert_eq!(
            serde_json::from_value::<NodeSet>(json!({"order": "o"})).unwrap(),
            NodeSet::Order {
                order: "o".into(),
                skip: 0,
                take: None
            }
        );
    }

    #[test]
    fn a_plan_reads_only_variables_produced_before() {
        let order = || NodeSet::Order {
            order: "order".into(),
            skip: 0,
            take: None,
        };
        let ask = Action::RunService(ServiceStep::new(
            "get_nodes_order",
            vec!["a".to_string()],
            OnFailure::Fail,
        ));
        let mut plan = Plan::default();
        plan.push(Action::RenderConfig { nodes: order() }, "too early");
        plan.push_output(ask.clone(), "ask", "order");
        assert_eq!(
            plan.check(),
            Err(PlanError::UnknownVar {
                step: 1,
                var: "order".into()
            })
        );
        let mut plan = Plan::default();
        plan.push_output(ask.clone(), "ask", "order");
        plan.push(Action::RenderConfig { nodes: order() }, "after");
        plan.recover(
            Action::StopInstances { nodes: order() },
            "the main part may not have got that far",
        );
        assert_eq!(
            plan.check(),
            Err(PlanError::UnknownVar {
                step: 3,
                var: "order".into()
            })
        );
        plan.recovery.clear();
        plan.recovery.push(Step {
            output: Some("order".into()),
            ..Step::new(ask.clone(), "recovery asks its own")
        });
        plan.recover(Action::StopInstances { nodes: order() }, "recovery reads its own");
        assert_eq!(plan.check(), Ok(()));
        assert_eq!(plan.all().count(), 4);
        assert!(plan.is_recovery(2) && !plan.is_recovery(1));
        assert!(matches!(plan.step(3).unwrap().action, Action::StopInstances { .. }));
        plan.push_output(ask, "ask again", "order");
        assert!(matches!(plan.check(), Err(PlanError::DuplicateVar { step: 3, .. })));
        // A plan survives a round trip through its stored form.
        let back: Plan = serde_json::from_value(serde_json::to_value(&plan).unwrap()).unwrap();
        assert_eq!(back.steps.len(), 3);
        assert_eq!(back.recovery.len(), 2);
        assert_eq!(back.steps[0].output.as_deref(), Some("order"));
    }
}
