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
    ///
    /// Every problem is reported in one run, each at its JSON path (`--json` lists them).
    Validate {
        /// The app spec (or its directory, holding spec.json).
        spec: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Convert an app of the original platform (cluster.json.mustache + config.json, locale/).
    ///
    /// Renders the template with config.json's defaults (and --set), turns each shell command
    /// into the service that replaces it, and writes OUT/spec.json plus one Rust hook crate
    /// per role (OUT/hooks/<role>-hooks) whose arms quote the commands to port. Then:
    ///
    ///   cargo build --release --target wasm32-wasip2 --manifest-path OUT/Cargo.toml
    ///   cp OUT/target/wasm32-wasip2/release/*.wasm OUT/ && hookhost app validate OUT
    ///
    /// Example: hookhost app import ./memcached/app --out ./memcached-hookhost --set env.-p=11211
    Import {
        /// The original app's directory (holding cluster.json.mustache and config.json).
        dir: PathBuf,
        /// A new or empty directory for the result.
        #[arg(long)]
        out: PathBuf,
        /// Override a default by its template path (`env.port=2181`, `cluster.zk_node.count=5`); JSON or text.
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = key_value)]
        set: Vec<(String, String)>,
        /// Depend on hookhost-sdk at this path [default: by version].
        #[arg(long, value_name = "PATH")]
        sdk_path: Option<PathBuf>,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `KEY=VALUE`, split at the first `=`.
fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

impl AppCommand {
    /// Whether the command was asked for JSON output.
    pub fn wants_json(&self) -> bool {
        match self {
            AppCommand::Validate { json, .. }
            | AppCommand::Import { json, .. }
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
        AppCommand::Import {
            dir,
            out,
            set,
            sdk_path,
            json,
        } => {
            let summary = hookhost::import::import(&dir, &out, &hookhost::import::ImportOptions { set, sdk_path })?;
            if json {
                emit(&format!("{:#}\n", json!({"ok": true, "summary": summary})));
            } else {
                emit(&import_report(&out, &summary));
            }
            Ok(ExitCode::SUCCESS)
        }
        AppCommand::Add {
            path,
            app,
            version,
            json,
        } => {
            let (found, new) = global.target(false)?.add_app(&path, app.as_deref(), &version).await?;
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
            let all = global.target(true)?.app_versions_all().await?;
            let mut out = String::new();
            if !json {
                out.push_str("APP                  VERSION          POLICY               UPGRADES FROM\n");
            }
            for v in all {
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
            emit(&out);
            Ok(ExitCode::SUCCESS)
        }
        AppCommand::Show { app, version, json } => {
            let target = global.target(true)?;
            let versions = match &version {
                Some(v) => vec![target.app_version(&app, v).await?],
                None => {
                    let all = target.app_versions(&app).await?;
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
                    if let Some(tags) = &v.spec.custom_tags {
                        let _ = writeln!(out, "  custom tags     {}", clean(&tags.to_string()));
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

/// What an import did, for people.
fn import_report(out: &std::path::Path, s: &hookhost::import::Summary) -> String {
    let mut text = format!("wrote {} and {} hook crate(s):\n", s.spec.display(), s.crates.len());
    for c in &s.crates {
        let _ = writeln!(text, "  role {:<12} {} → {}", c.role, c.dir.display(), c.component);
    }
    for (title, lines) in [
        ("converted", &s.converted),
        ("to port", &s.to_port),
        ("dropped", &s.dropped),
    ] {
        let _ = writeln!(text, "{title} ({}):", lines.len());
        for line in lines {
            let _ = writeln!(text, "  {}", clean(line));
        }
    }
    let out = out.display();
    let _ = writeln!(
        text,
        "next:\n  cargo build --release --target wasm32-wasip2 --manifest-path {out}/Cargo.toml\n  cp {out}/target/wasm32-wasip2/release/*.wasm {out}/ && hookhost app validate {out}"
    );
    text
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
        "custom_tags": v.spec.custom_tags,
        "source": v.source,
        "added_at": v.added_at,
        "roles": roles,
    })
}

/// Validates a spec; problems are bad input (exit 2).
async fn validate(global: &Global, file: PathBuf, json: bool) -> anyhow::Result<ExitCode> {
    let file = hookhost::engine::spec_file(&file);
    let engine = global.reader(false)?;
    let spec = match engine.load_app(&file).await {
        Ok(spec) => spec,
        Err(e) if json => {
            // Every problem, each with its JSON path.
            use hookhost::{engine::EngineError, spec::SpecError};
            let problems = match &e {
                EngineError::Spec(SpecError::Invalid { problems, .. }) | EngineError::Components { problems, .. } => {
                    problems
                        .iter()
                        .map(|p| json!({"at": p.at, "message": p.message}))
                        .collect()
                }
                other => vec![json!({"at": ".", "message": other.to_string()})],
            };
            emit(&format!(
                "{:#}\n",
                json!({"ok": false, "kind": "bad-input", "spec": file, "problems": problems})
            ));
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e.into()),
    };
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
