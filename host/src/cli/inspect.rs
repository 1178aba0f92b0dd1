//! `hookhost inspect`: what a component is and what it implements.

use super::{EXIT_HOOK_FAILED, Global, print::emit};
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
    json: bool,
}

/// Loads the component, asks it for its services and prints what it is.
pub async fn run(global: &Global, args: InspectArgs) -> anyhow::Result<ExitCode> {
    let runtime = global.runtime(false)?;
    let loader = runtime.clone();
    let file = args.plugin.clone();
    let plugin = tokio::task::spawn_blocking(move || loader.load(&file)).await??;
    let outcome = runtime.services(&plugin).await;
    let services: Option<Vec<String>> = outcome
        .result
        .as_ref()
        .ok()
        .map(|s| s.iter().map(service_name).collect());
    if args.json {
        let doc = json!({
            "plugin": plugin.path(),
            "size": plugin.size(),
            "sha256": plugin.sha256(),
            "package": plugin.package(),
            "cache": plugin.cache_status(),
            "services": services,
            "error": outcome.result.as_ref().err().map(|f| f.to_string()),
            "imports": plugin.imports(),
        });
        emit(&format!("{doc:#}\n"));
    } else {
        let services = match &services {
            Some(names) => names.join(", "),
            None => format!(
                "FAILED: {}",
                outcome.result.as_ref().err().map(|f| f.to_string()).unwrap_or_default()
            ),
        };
        emit(&format!(
            "plugin    {}\nsize      {} bytes · sha256 {}\npackage   {}\nservices  {services}\nimports   {}\n",
            plugin.path().display(),
            plugin.size(),
            plugin.sha256(),
            plugin.package(),
            plugin.imports().join("\n          ")
        ));
    }
    Ok(if outcome.result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_HOOK_FAILED)
    })
}
