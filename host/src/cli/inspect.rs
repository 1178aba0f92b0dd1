//! `hookhost inspect`: what a component is and what it implements.

use super::{Global, print::clean, print::emit};
use clap::Args;
use hookhost::hook::service_name;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct InspectArgs {
    /// The hook component (.wasm).
    #[arg(value_name = "FILE")]
    plugin: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Loads the component, asks it for its services and prints what it is.
pub async fn run(global: &Global, args: InspectArgs) -> anyhow::Result<ExitCode> {
    let runtime = global.runtime(false)?;
    let plugin = runtime.load(&args.plugin).await?;
    let services: Vec<String> = plugin.services().iter().map(service_name).collect();
    if args.json {
        let doc = json!({
            "plugin": plugin.path(),
            "size": plugin.size(),
            "sha256": plugin.sha256(),
            "package": plugin.package(),
            "cache": plugin.cache_status(),
            "services": services,
            "imports": plugin.imports(),
        });
        emit(&format!("{doc:#}\n"));
    } else {
        emit(&format!(
            "plugin    {}\nsize      {} bytes · sha256 {}\npackage   {}\nservices  {}\nimports   {}\n",
            plugin.path().display(),
            plugin.size(),
            plugin.sha256(),
            plugin.package(),
            clean(&services.join(", ")),
            plugin.imports().join("\n          ")
        ));
    }
    Ok(ExitCode::SUCCESS)
}
