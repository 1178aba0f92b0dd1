//! `hookhost app validate`: check an app spec and its components.

use super::{Global, print::emit};
use clap::Subcommand;
use serde_json::json;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum AppCommand {
    /// Check a spec: its keys and values, and that each role's component loads and implements the role's services.
    Validate {
        /// The app spec.
        spec: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

impl AppCommand {
    /// Whether the command was asked for JSON output.
    pub fn wants_json(&self) -> bool {
        matches!(self, AppCommand::Validate { json: true, .. })
    }
}

/// Validates a spec; problems are bad input (exit 2).
pub async fn run(global: &Global, cmd: AppCommand) -> anyhow::Result<ExitCode> {
    let AppCommand::Validate { spec: file, json } = cmd;
    let engine = global.reader(false)?;
    let spec = engine.load_app(&file).await?;
    if json {
        let roles: Vec<_> = spec
            .nodes
            .iter()
            .map(|r| json!({"role": r.role, "count": r.count, "plugin": r.plugin, "services": r.services.keys().collect::<Vec<_>>()}))
            .collect();
        emit(&format!("{:#}\n", json!({"ok": true, "spec": file, "roles": roles})));
    } else {
        let mut out = format!("{}: ok\n", file.display());
        for r in &spec.nodes {
            let services: Vec<&str> = r.services.keys().map(String::as_str).collect();
            let _ = writeln!(
                out,
                "  {} ×{} · {} · {}",
                r.role,
                r.count,
                r.plugin.display(),
                services.join(", ")
            );
        }
        emit(&out);
    }
    Ok(ExitCode::SUCCESS)
}
