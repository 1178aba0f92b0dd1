//! Refusals: why an operation may not run on a cluster as it is, and the
//! refusals every flow shares (a deleted cluster, a failed one).

use crate::cluster::{Cluster, ClusterStatus};
use crate::request::OperationKind;
use crate::spec::{AdvancedAction, RoleSpec};
use std::fmt;

/// An operation that may not run: what, on which cluster, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Refusal {
    /// The operation refused.
    pub kind: OperationKind,
    /// The cluster, when it exists.
    pub cluster: Option<String>,
    /// Why, and what to do instead.
    pub reason: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cluster {
            Some(id) => write!(f, "cannot {} cluster {id}: {}", self.kind.verb(), self.reason),
            None => write!(f, "cannot {} the cluster: {}", self.kind.verb(), self.reason),
        }
    }
}

impl Refusal {
    /// A refusal of `kind` on `cluster`.
    pub fn new(kind: OperationKind, cluster: Option<&Cluster>, reason: impl Into<String>) -> Refusal {
        Refusal {
            kind,
            cluster: cluster.map(|c| c.id.clone()),
            reason: reason.into(),
        }
    }

    /// The request field a refusal of bad input is about, as the request's
    /// JSON names it: such a reason starts with the CLI's flag (`--count must
    /// be at least 1`); a refusal by the cluster's state names none.
    pub fn input(&self) -> Option<String> {
        let flag = self.reason.strip_prefix("--")?;
        let end = flag
            .find(|c: char| !(c.is_ascii_lowercase() || c == '-'))
            .unwrap_or(flag.len());
        let field = flag[..end].replace('-', "_");
        Some(match field.as_str() {
            "" => return None,
            "ip" => "ips".to_string(),
            "cpu" | "memory" | "volume_size" => format!("change.{field}"),
            _ => field,
        })
    }
}

/// Why `kind` cannot run on `cluster` in its status, when no flow rule takes it.
pub(super) fn by_status(kind: OperationKind, cluster: &Cluster) -> Refusal {
    let reason = match (cluster.status, cluster.failed_during) {
        (ClusterStatus::Deleted, _) => "it is deleted".to_string(),
        (ClusterStatus::Failed, Some(OperationKind::CreateCluster) | None) => "its creation failed; delete it".into(),
        (ClusterStatus::Failed, Some(OperationKind::DeleteCluster)) => "its deletion failed; delete it again".into(),
        (ClusterStatus::Failed, Some(OperationKind::UpdateEnv)) => {
            "its last update-env failed; fix the env with update-env, stop it, or delete it".into()
        }
        (ClusterStatus::Failed, Some(OperationKind::Restore)) => {
            "its restore failed; restore it again, stop it, or delete it".into()
        }
        (ClusterStatus::Failed, Some(OperationKind::Restart)) => {
            "its last restart failed; restart it again, stop it, or delete it".into()
        }
        (ClusterStatus::Failed, Some(failed)) => {
            format!("its last operation ({failed}) failed or was cancelled half-way; stop it (or delete it) first")
        }
        (status, _) => format!("it is {status}"),
    };
    Refusal::new(kind, Some(cluster), reason)
}

/// Refuses, by its status, a cluster that is not active, and one whose
/// upgrade is not finished.
pub(super) fn active(kind: OperationKind, cluster: &Cluster) -> Result<(), Refusal> {
    match cluster.status {
        ClusterStatus::Active => no_upgrade(kind, cluster),
        _ => Err(by_status(kind, cluster)),
    }
}

/// Refuses while an upgrade is not finished: its nodes may run two versions.
pub(super) fn no_upgrade(kind: OperationKind, cluster: &Cluster) -> Result<(), Refusal> {
    match &cluster.upgrade {
        Some(upgrade) => Err(Refusal::new(
            kind,
            Some(cluster),
            format!(
                "its upgrade from version {0} to {1} did not finish: upgrade it to {1} again (`hookhost cluster upgrade {2} --version {1}`) or downgrade it (`hookhost cluster downgrade {2}`) first",
                upgrade.from, upgrade.to, cluster.id
            ),
        )),
        None => Ok(()),
    }
}

/// Refuses while a node has not joined (its add-nodes failed or was
/// cancelled): the cluster's membership is in doubt until it is deleted.
pub(super) fn all_joined(kind: OperationKind, cluster: &Cluster) -> Result<(), Refusal> {
    match cluster.live_nodes().find(|n| n.joining) {
        Some(node) => Err(Refusal::new(
            kind,
            Some(cluster),
            format!(
                "node {0} has not joined it (its add-nodes did not finish): delete it first with `hookhost cluster delete-nodes {1} --nodes {0}`",
                node.node_id, cluster.id
            ),
        )),
        None => Ok(()),
    }
}

/// The spec of a role a request names; a replica role is refused (its nodes
/// come and go with their role's).
pub(super) fn role_spec<'c>(kind: OperationKind, cluster: &'c Cluster, role: &str) -> Result<&'c RoleSpec, Refusal> {
    let refuse = |why: String| Err(Refusal::new(kind, Some(cluster), why));
    let shown = crate::text::clip(role, 64);
    match cluster.spec.role(role) {
        Some(spec) if spec.role == role => Ok(spec),
        Some(spec) => refuse(format!(
            "role {shown} holds the replicas of role {0}, which come and go with their node: name role {0}",
            spec.role
        )),
        None => {
            let roles: Vec<&str> = cluster.spec.nodes.iter().map(|r| r.role.as_str()).collect();
            refuse(format!("it has no role {shown:?}; its roles are {}", roles.join(", ")))
        }
    }
}

/// Whether the app or the role lists one of `actions` in `advanced_actions`.
pub(super) fn scales_horizontally(cluster: &Cluster, role: &RoleSpec, actions: &[AdvancedAction]) -> bool {
    cluster
        .spec
        .advanced_actions
        .iter()
        .chain(&role.advanced_actions)
        .any(|a| actions.contains(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_of_bad_input_names_the_requests_field() {
        let of = |reason: &str| Refusal::new(OperationKind::Resize, None, reason).input();
        assert_eq!(of("--count must be at least 1").as_deref(), Some("count"));
        assert_eq!(
            of("--volume-size 5: volumes never shrink").as_deref(),
            Some("change.volume_size")
        );
        assert_eq!(of("--ip n1=10.0.0.1: taken").as_deref(), Some("ips"));
        assert_eq!(
            of("--name: a cluster name has 1 to 128 characters").as_deref(),
            Some("name")
        );
        assert_eq!(of("an operation holds it"), None);
        assert_eq!(of("-- nothing"), None);
    }
}
