//! What a hook is, as the WIT contract (`wit/hooks.wit`) defines it: the
//! generated types, the services and operations by the names the spec and
//! the CLI use, and the context every call gets.
//!
//! The spec writes `scale_out`; WIT writes `scale-out`; both parse. A name
//! that is not a system service is a custom service (`"type": "custom"`).

pub mod bindings;

use crate::metadata::ClusterView;
pub use bindings::hookhost::hooks::types::{ConfigFile, HookContext, HookError, NodeContext, Operation, Service};
use thiserror::Error;

include!("../../../wit/services.rs");

/// The operations, by their CLI names.
pub const OPERATIONS: &[(&str, Operation)] = &[
    ("create-cluster", Operation::CreateCluster),
    ("delete-cluster", Operation::DeleteCluster),
    ("stop-cluster", Operation::StopCluster),
    ("start-cluster", Operation::StartCluster),
    ("add-nodes", Operation::AddNodes),
    ("delete-nodes", Operation::DeleteNodes),
    ("vertical-scaling", Operation::VerticalScaling),
    ("change-network", Operation::ChangeNetwork),
    ("exchange-reserved-ips", Operation::ExchangeReservedIps),
    ("backup", Operation::Backup),
    ("restore", Operation::Restore),
    ("delete-backup", Operation::DeleteBackup),
    ("parallel-upgrade", Operation::ParallelUpgrade),
    ("rolling-upgrade", Operation::RollingUpgrade),
    ("in-place-upgrade", Operation::InPlaceUpgrade),
    ("upgrade-recovery", Operation::UpgradeRecovery),
    ("restart-service", Operation::RestartService),
    ("update-env", Operation::UpdateEnv),
    ("custom-service", Operation::CustomService),
    ("health-check", Operation::HealthCheck),
    ("manual", Operation::Manual),
];

/// A name that is not a usable service or operation.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    /// Custom service names are letters, digits, `_` and `-`.
    #[error("{0:?} is not a service name: use letters, digits, '_' and '-' (at most 64), starting with a letter")]
    BadService(String),
    /// Not one of [`OPERATIONS`].
    #[error("{0:?} is not an operation; expected one of {1}")]
    BadOperation(String, String),
}

/// Parses a spec or WIT service name; other valid names are custom services.
pub fn parse_service(name: &str) -> Result<Service, NameError> {
    let spec_name = name.replace('-', "_");
    if let Some((_, service)) = SYSTEM_SERVICES.iter().find(|(n, _)| *n == spec_name) {
        return Ok(service.clone());
    }
    let mut chars = name.chars();
    // Vendors write names their way (`changeFCV`, `update-yarn-scheduler`);
    // each stays one safe metadata path segment.
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && name.len() <= 64;
    if valid {
        Ok(Service::Custom(name.to_string()))
    } else {
        Err(NameError::BadService(name.to_string()))
    }
}

/// Whether `name` is a system service's spec name.
pub fn is_system_service(name: &str) -> bool {
    SYSTEM_SERVICES.iter().any(|(n, _)| *n == name)
}

/// Parses an operation name (`add-nodes`; `add_nodes` also works).
pub fn parse_operation(name: &str) -> Result<Operation, NameError> {
    let cli_name = name.replace('_', "-");
    OPERATIONS
        .iter()
        .find(|(n, _)| *n == cli_name)
        .map(|(_, op)| *op)
        .ok_or_else(|| {
            let names: Vec<&str> = OPERATIONS.iter().map(|(n, _)| *n).collect();
            NameError::BadOperation(name.to_string(), names.join(", "))
        })
}

/// The CLI name of an operation.
pub fn operation_name(op: Operation) -> &'static str {
    OPERATIONS
        .iter()
        .find(|(_, o)| *o == op)
        .map(|(n, _)| *n)
        .unwrap_or("manual")
}

/// The context of a call made through `view`: as its node, or as no node in
/// particular when the view has none (asking a component for its services).
/// The one place a [`NodeContext`] is made; the runtime sets the deadline.
pub fn context_of(view: &ClusterView, operation: Operation, operation_id: &str, attempt: u32) -> NodeContext {
    let node = view.node();
    let field = |f: fn(&crate::metadata::NodeRef) -> &String| node.map(|n| f(n).clone()).unwrap_or_default();
    NodeContext {
        operation,
        operation_id: operation_id.to_string(),
        cluster_id: if node.is_some() {
            view.cluster_id().to_string()
        } else {
            String::new()
        },
        node_id: field(|n| &n.node_id),
        instance_id: field(|n| &n.instance_id),
        role: field(|n| &n.role),
        attempt,
        deadline_unix_ms: 0,
    }
}

/// The context of a call made as `view`'s node; `None` when the view has no node.
pub fn node_context(view: &ClusterView, operation: Operation, operation_id: &str, attempt: u32) -> Option<NodeContext> {
    view.node().map(|_| context_of(view, operation, operation_id, attempt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for (name, service) in SYSTEM_SERVICES {
            assert_eq!(parse_service(name).unwrap(), *service);
            assert_eq!(service_name(service), *name);
        }
        assert_eq!(parse_service("scale-out").unwrap(), Service::ScaleOut);
        assert_eq!(
            parse_service("run_command").unwrap(),
            Service::Custom("run_command".into())
        );
        assert_eq!(service_name(&Service::Custom("run_command".into())), "run_command");
        assert!(parse_service("Run Command").is_err());
        assert_eq!(parse_service("changeFCV").unwrap(), Service::Custom("changeFCV".into()));
        assert!(parse_service("a/b").is_err() && parse_service("1st").is_err());
        assert!(parse_service("").is_err());
        for (name, op) in OPERATIONS {
            assert_eq!(parse_operation(name).unwrap(), *op);
            assert_eq!(operation_name(*op), *name);
        }
        assert!(
            parse_operation("explode")
                .unwrap_err()
                .to_string()
                .contains("add-nodes")
        );
    }

    #[test]
    fn a_context_without_a_node_names_no_node() {
        let ctx = context_of(&ClusterView::empty(), Operation::Manual, "", 1);
        assert_eq!((ctx.cluster_id.as_str(), ctx.node_id.as_str()), ("", ""));
        assert!(node_context(&ClusterView::empty(), Operation::Manual, "", 1).is_none());
    }
}
