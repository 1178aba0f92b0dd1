//! Plans as people read them (`hookhost plan`, `op show`, progress bars).

use super::{Action, NodeSet, OnFailure, Reply, Schedule, ServiceStep, Step, TempEntry};
use std::fmt;

fn count(n: usize) -> String {
    format!("{n} node{}", if n == 1 { "" } else { "s" })
}

impl fmt::Display for NodeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeSet::Ids(ids) => f.write_str(&count(ids.len())),
            NodeSet::Order {
                order,
                skip,
                take: None,
            } if *skip == 0 => write!(f, "the nodes in ${order}"),
            NodeSet::Order {
                order,
                skip,
                take: None,
            } => write!(f, "the nodes of ${order} after the first {skip}"),
            NodeSet::Order {
                order,
                skip,
                take: Some(1),
            } => write!(f, "node #{} of ${order}", skip + 1),
            NodeSet::Order {
                order,
                skip,
                take: Some(n),
            } => write!(f, "nodes #{}-#{} of ${order}", skip + 1, skip + n),
        }
    }
}

impl fmt::Display for ServiceStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.pre_check { "pre-check" } else { "run" };
        let by = match self.schedule {
            Schedule::RoleOrder => " by role order".to_string(),
            Schedule::Listed { at_once: 1 } => ", one after another".to_string(),
            Schedule::Listed { at_once } => format!(", at most {at_once} at once"),
        };
        let policy = match self.on_failure {
            OnFailure::Fail => "",
            OnFailure::Refuse => ", a refusal aborts the operation",
            OnFailure::Guard { force: false } => ", a failure aborts the operation",
            OnFailure::Guard { force: true } => ", forced where allow_force permits",
            OnFailure::Continue => ", failures tolerated",
        };
        let reply = match self.reply {
            Reply::Ignore => "",
            Reply::ByNode => ", keeping the replies",
            Reply::NodeOrder { .. } => ", its reply is the node order",
        };
        let version = match &self.version {
            Some(v) => format!(" with version {v}'s hooks"),
            None => String::new(),
        };
        write!(
            f,
            "{verb} {}{version} on {}{by}{policy}{reply}",
            self.service, self.nodes
        )
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.action.fmt(f)?;
        if self.on_peer {
            f.write_str(" (of the other cluster)")?;
        }
        Ok(())
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::CreateResources { nodes } => write!(f, "create resources of {nodes}"),
            Action::StopInstances { nodes } => write!(f, "stop the instances of {nodes}"),
            Action::StartInstances { nodes } => write!(f, "start new instances of {nodes}"),
            Action::DeleteResources { nodes } => write!(f, "delete the resources of {nodes}"),
            Action::ResizeNodes { nodes, change } => write!(f, "resize {nodes} to {change}"),
            Action::DiscardUnrecorded { nodes } => write!(
                f,
                "delete the resources of any planned new node the record lacks ({} planned)",
                nodes.len()
            ),
            Action::RegisterMetadata => f.write_str("register the cluster in the metadata"),
            Action::RegisterEnv => f.write_str("register the cluster's env in the metadata"),
            Action::DeregisterMetadata => f.write_str("deregister the cluster from the metadata"),
            Action::WriteTemp { entry } => match entry {
                TempEntry::AddingHosts { nodes } => write!(f, "list {nodes} under /adding-hosts"),
                TempEntry::DeletingHosts { nodes } => write!(f, "list {nodes} under /deleting-hosts"),
                TempEntry::VerticalScalingRoles { roles } => {
                    write!(f, "set /vertical-scaling-roles to {}", roles.join(","))
                }
                TempEntry::UpgradeAudit {
                    from_app_version,
                    to_app_version,
                } => write!(f, "set /upgrade-audit: {from_app_version} → {to_app_version}"),
            },
            Action::ClearTemp { tree } => write!(f, "remove /{}", tree.key()),
            Action::RunService(step) => step.fmt(f),
            Action::RenderConfig { nodes } => write!(f, "render config on {nodes}, reload where it changed"),
            Action::SetStatus { status } => write!(f, "mark the cluster {status}"),
            Action::AddNodes { nodes } => {
                let mut roles: Vec<&str> = nodes.iter().map(|n| n.role.as_str()).collect();
                roles.dedup();
                write!(
                    f,
                    "create {} ({}) and add them to the cluster record",
                    count(nodes.len()),
                    roles.join(", ")
                )
            }
            Action::RemoveNodes { nodes } => write!(f, "remove {nodes} from the cluster record"),
            Action::NodesJoined { nodes } => write!(f, "mark {nodes} as joined in the cluster record"),
            Action::KeepBackup { order, nodes } => {
                match (&order.parent, matches!(nodes, NodeSet::Ids(ids) if ids.is_empty())) {
                    (_, true) => write!(f, "keep backup {} (its data is the backup hook's)", order.id),
                    (Some(parent), _) => write!(
                        f,
                        "back up the volumes of {nodes} as {}, storing only what changed since {parent}",
                        order.id
                    ),
                    (None, _) => write!(f, "back up the volumes of {nodes} as {} (a full backup)", order.id),
                }
            }
            Action::DiscardBackup { id } => write!(f, "remove backup {id}"),
            Action::RestoreVolumes { backup } => {
                write!(
                    f,
                    "restore every node's volume from backup {backup}, checking each file's checksum"
                )
            }
            Action::SetTokens { from } => write!(f, "keep ${from} as the nodes' tokens (/host/token)"),
            Action::MoveNetwork { vxnet, ips } => match ips.len() {
                0 => write!(f, "move the cluster to network {vxnet}, every address from its pool"),
                n => write!(
                    f,
                    "move the cluster to network {vxnet}, {n} node address{} pinned, the others from its pool",
                    if n == 1 { "" } else { "es" }
                ),
            },
            Action::SetReservedIps { mine, theirs } => {
                let shown = |ips: &std::collections::BTreeMap<String, String>| {
                    ips.iter()
                        .map(|(name, ip)| format!("{name}={ip}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                write!(
                    f,
                    "set the reserved IPs ({}; the other cluster's: {}) in both records, then in the metadata in one revision",
                    shown(mine),
                    shown(theirs)
                )
            }
            Action::SetEnv { env, role } => {
                let keys: Vec<&str> = env.keys().map(String::as_str).take(5).collect();
                let more = if env.len() > 5 { ", ..." } else { "" };
                let whose = role.as_ref().map(|r| format!(" of role {r}")).unwrap_or_default();
                write!(
                    f,
                    "set the env keys {}{more}{whose} in the cluster record",
                    keys.join(", ")
                )
            }
            Action::SwitchVersion { nodes, version } => match version {
                Some(version) => write!(f, "boot {nodes} from version {version} from now on"),
                None => write!(f, "boot {nodes} from the cluster's version from now on"),
            },
            Action::CopyPayload { nodes, version } => {
                write!(
                    f,
                    "copy version {version}'s payload into {nodes} (in-place-upgrade-nodes)"
                )
            }
            Action::BeginUpgrade { upgrade } => write!(
                f,
                "begin the upgrade {} → {} in the cluster record (nodes not yet upgraded keep {})",
                upgrade.from, upgrade.to, upgrade.from
            ),
            Action::UpgradeDone { nodes, proven_by: None } => write!(f, "mark {nodes} upgraded in the cluster record"),
            Action::UpgradeDone {
                nodes,
                proven_by: Some(service),
            } => write!(
                f,
                "mark those of {nodes} whose {service} ended ok upgraded in the cluster record"
            ),
            Action::EndUpgrade => f.write_str("end the upgrade in the cluster record"),
            Action::RevertUpgrade => {
                f.write_str("put the cluster back on the version its upgrade started from, every node with it")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_read_as_sentences() {
        let ids = |n: usize| NodeSet::Ids((0..n).map(|i| format!("n{i}")).collect());
        let run = ServiceStep::new("init", ids(3), OnFailure::Fail);
        assert_eq!(Action::RunService(run).to_string(), "run init on 3 nodes by role order");
        let guard = ServiceStep::new("destroy", ids(1), OnFailure::Guard { force: false });
        assert_eq!(
            Action::RunService(guard).to_string(),
            "run destroy on 1 node by role order, a failure aborts the operation"
        );
        let check = ServiceStep::new("scale_in", ids(2), OnFailure::Fail).pre_check();
        assert_eq!(
            Action::RunService(check).to_string(),
            "pre-check scale_in on 2 nodes by role order, a refusal aborts the operation"
        );
        let slot = NodeSet::Order {
            order: "order".into(),
            skip: 2,
            take: Some(1),
        };
        let upgrade = ServiceStep::new("upgrade", slot, OnFailure::Fail).listed(1);
        assert_eq!(
            Action::RunService(upgrade).to_string(),
            "run upgrade on node #3 of $order, one after another"
        );
    }
}
