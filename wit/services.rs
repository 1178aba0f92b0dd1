// The spec name of every system service of `hooks.wit`, in one table that
// both the host (`hookhost::hook`) and the SDK (`hookhost_sdk`) `include!`;
// `Service` is the including crate's binding of the WIT `service` variant.
// The spec writes `scale_out` where WIT writes `scale-out`.

/// The system services, by their spec names.
pub const SYSTEM_SERVICES: &[(&str, Service)] = &[
    ("init", Service::Init),
    ("start", Service::Start),
    ("stop", Service::Stop),
    ("restart", Service::Restart),
    ("scale_out", Service::ScaleOut),
    ("scale_in", Service::ScaleIn),
    ("destroy", Service::Destroy),
    ("upgrade", Service::Upgrade),
    ("rollback", Service::Rollback),
    ("get_nodes_order", Service::GetNodesOrder),
    ("backup", Service::Backup),
    ("restore", Service::Restore),
    ("delete_snapshot", Service::DeleteSnapshot),
    ("change_vxnet", Service::ChangeVxnet),
    ("reload", Service::Reload),
    ("health_check", Service::HealthCheck),
    ("health_action", Service::HealthAction),
    ("monitor", Service::Monitor),
    ("custom_metadata", Service::CustomMetadata),
];

/// The spec name of a service: its table name, or a custom service's own name.
pub fn service_name(service: &Service) -> String {
    match service {
        Service::Custom(name) => name.clone(),
        other => SYSTEM_SERVICES
            .iter()
            .find(|(_, s)| std::mem::discriminant(s) == std::mem::discriminant(other))
            .map(|(n, _)| n.to_string())
            .unwrap_or_default(),
    }
}
