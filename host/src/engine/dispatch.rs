//! Which handler runs which action: one arm per action, each to its
//! family's file (`provider`, `metadata`, `services`, `render`, `record`,
//! `backup`, `network`).

use super::EngineError;
use super::step::{StepEnd, StepRun};
use super::{backup, metadata, network, provider, record, render, services};
use crate::plan::{Action, Step};

/// Runs one step's action with its family's handler.
pub(super) async fn execute(run: &StepRun<'_>, step: &Step) -> Result<StepEnd, EngineError> {
    match &step.action {
        Action::CreateResources { nodes } => provider::create(run, nodes).await,
        Action::StopInstances { nodes } => provider::stop(run, nodes).await,
        Action::StartInstances { nodes } => provider::start(run, nodes).await,
        Action::DeleteResources { nodes } => provider::delete(run, nodes).await,
        Action::ResizeNodes { nodes, change } => provider::resize(run, nodes, change).await,
        Action::RegisterMetadata => metadata::register(run).await,
        Action::RegisterEnv => metadata::register_env(run).await,
        Action::DeregisterMetadata => metadata::deregister(run).await,
        Action::WriteTemp { entry } => metadata::write_temp(run, entry).await,
        Action::ClearTemp { tree } => metadata::clear_temp(run, *tree).await,
        Action::RunService(service) => services::run(run, service).await,
        Action::RenderConfig { nodes } => render::run(run, nodes).await,
        Action::SetStatus { status } => record::set_status(run, *status).await,
        Action::AddNodes { nodes } => provider::add(run, nodes).await,
        Action::DiscardUnrecorded { nodes } => provider::discard(run, nodes).await,
        Action::RemoveNodes { nodes } => record::remove_nodes(run, nodes).await,
        Action::NodesJoined { nodes } => record::joined(run, nodes).await,
        Action::KeepBackup { order, nodes } => backup::keep(run, order, nodes).await,
        Action::DiscardBackup { id } => backup::discard(run, id).await,
        Action::RestoreVolumes { backup } => backup::restore_volumes(run, backup).await,
        Action::SetTokens { from } => record::set_tokens(run, from).await,
        Action::MoveNetwork { vxnet, ips } => network::move_network(run, vxnet, ips).await,
        Action::SetReservedIps { mine, theirs } => network::set_reserved_ips(run, mine, theirs).await,
        Action::SetEnv { env, role } => record::set_env(run, env, role.as_deref()).await,
        Action::SwitchVersion { nodes, version } => record::switch_version(run, nodes, version).await,
        Action::CopyPayload { nodes, version } => provider::copy_payload(run, nodes, version).await,
        Action::BeginUpgrade { upgrade } => record::begin_upgrade(run, upgrade).await,
        Action::UpgradeDone { nodes, proven_by } => record::upgrade_done(run, nodes, proven_by.as_deref()).await,
        Action::EndUpgrade => record::end_upgrade(run).await,
        Action::RevertUpgrade => record::revert_upgrade(run).await,
    }
}
