//! `hookhost app ...`: check an app spec and its components; register app
//! versions and look at them.

use super::{Global, print::clean, print::emit};
use clap::Subcommand;
use hookhost::apps::AppVersion;
use serde_json::json;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum AppCommand {
    /// Register an app version: its spec, its components and its payload/ directory, immutable.
    ///
    /// DIR holds spec.json (or give the spec file); a payload/ directory beside it is what an
    /// in-place upgrade copies into the nodes. The same content under the same name again
    /// changes nothing; other content under a taken name is refused.
    ///
    /// Example: hookhost app add ./zookeeper-v2 --app zookeeper --version 2.0
    Add {
        /// The app's directory (holding spec.json), or its spec file.
        path: PathBuf,
        /// The app id [default: the directory's name].
        #[arg(long)]
        app: Option<String>,
        /// The version's name (letters, digits, '.', '_', '-'); other versions name it in upgrade_policy.
        #[arg(long)]
        version: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the registered app versions.
    List {
        /// One JSON object per version.
        #[arg(long)]
        json: bool,
    },
    /// Show an app's versions, or one version: its roles, services and upgrade rules.
    Show {
        /// The app id.
        app: String,
        /// One version.
        version: Option<String>,
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check a spec: its keys and values, and that each role's component loads and implements the role's services.
    Validate {
        /// The app spec (or its directory, holding spec.json).
        spec: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

impl AppCommand {
    /// Whether the command was asked for JSON output.
    pub fn wants_json(&self) -> bool {
        match self {
            AppCommand::Validate { json, .. }
            | AppCommand::Add { json, .. }
            | AppCommand::List { json }
            | AppCommand::Show { json, .. } => *json,
        }
    }
}

/// Runs an `app` subcommand; bad specs and unknown versions are bad input (exit 2).
pub async fn run(global: &Global, cmd: AppCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AppCommand::Validate { spec, json } => validate(global, spec, json).await,
        AppCommand::Add {
            path,
            app,
            version,
            json,
        } => {
            let engine = global.engine()?;
            let (found, new) = engine.add_app(&path, app.as_deref(), Some(&version)).await?;
            if json {
                let mut doc = describe(&found);
                doc["ok"] = json!(true);
                doc["new"] = json!(new);
                emit(&format!("{doc}\n"));
            } else if new {
                emit(&format!(
                    "registered {} {} (digest {}…){}\n",
                    found.app,
                    found.version,
                    &found.digest[..12],
                    if found.payload.is_some() {
                        ", with its payload"
                    } else {
                        ""
                    }
                ));
            } else {
                emit(&format!(
                    "{} {} is registered already, with this content (digest {}…)\n",
                    found.app,
                    found.version,
                    &found.digest[..12]
                ));
            }
            Ok(ExitCode::SUCCESS)
        }
        AppCommand::List { json } => {
            let engine = global.reader(true)?;
            let catalog = engine.catalog();
            let mut out = String::new();
            if !json {
                out.push_str("APP                  VERSION          POLICY               UPGRADES FROM\n");
            }
            for app in catalog.apps()? {
                for v in catalog.versions(&app)? {
                    if json {
                        let _ = writeln!(out, "{}", describe(&v));
                    } else {
                        let _ = writeln!(
                            out,
                            "{:<20} {:<16} {:<20} {}",
                            v.app,
                            v.version,
                            hookhost::request::kebab_name(&v.spec.upgrading_policy),
                            from_list(&v)
                        );
                    }
                }
            }
            emit(&out);
            Ok(ExitCode::SUCCESS)
        }
        AppCommand::Show { app, version, json } => {
            let engine = global.reader(true)?;
            let catalog = engine.catalog();
            let versions = match &version {
                Some(v) => vec![catalog.get(&app, v)?],
                None => {
                    let all = catalog.versions(&app)?;
                    if all.is_empty() {
                        anyhow::bail!("no app {} is registered (see `hookhost app list`)", clean(&app));
                    }
                    all
                }
            };
            if json {
                let docs: Vec<_> = versions.iter().map(describe).collect();
                let doc = if version.is_some() {
                    docs[0].clone()
                } else {
                    json!(docs)
                };
                emit(&format!("{doc:#}\n"));
            } else {
                let mut out = String::new();
                for v in &versions {
                    let _ = writeln!(out, "{} {}", v.app, v.version);
                    let _ = writeln!(out, "  digest          {}", v.digest);
                    let _ = writeln!(out, "  registered      {} from {}", v.added_at, v.source.display());
                    let _ = writeln!(
                        out,
                        "  upgrades        {} (upgrading_policy); from {}",
                        hookhost::request::kebab_name(&v.spec.upgrading_policy),
                        from_list(v)
                    );
                    if let Some(payload) = &v.payload {
                        let _ = writeln!(out, "  payload         {}", payload.display());
                    }
                    for r in &v.spec.nodes {
                        let services: Vec<&str> = r.services.keys().map(String::as_str).collect();
                        let _ = writeln!(out, "  role {:<10} ×{} · {}", r.role, r.count, services.join(", "));
                    }
                }
                emit(&out);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The versions an app version may be upgraded from, as a list for people.
fn from_list(v: &AppVersion) -> String {
    if v.spec.upgrade_policy.is_empty() {
        "-".into()
    } else {
        v.spec.upgrade_policy.join(", ")
    }
}

/// An app version as JSON.
fn describe(v: &AppVersion) -> serde_json::Value {
    let roles: Vec<_> = v
        .spec
        .nodes
        .iter()
        .map(|r| json!({"role": r.role, "count": r.count, "services": r.services.keys().collect::<Vec<_>>()}))
        .collect();
    json!({
        "app": v.app,
        "version": v.version,
        "digest": v.digest,
        "upgrading_policy": v.spec.upgrading_policy,
        "upgrade_policy": v.spec.upgrade_policy,
        "payload": v.payload,
        "source": v.source,
        "added_at": v.added_at,
        "roles": roles,
    })
}

/// Validates a spec; problems are bad input (exit 2).
async fn validate(global: &Global, file: PathBuf, json: bool) -> anyhow::Result<ExitCode> {
    let file = hookhost::engine::spec_file(&file);
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
