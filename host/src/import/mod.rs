//! `hookhost app import`: an app of the original platform
//! (`cluster.json.mustache` + `config.json`, optionally `locale/*.json`)
//! becomes a Hookhost app: the template rendered with the config's defaults
//! (and the user's overrides), every shell command turned into the service
//! that replaces it ([`crate::spec::legacy`], the same list `app validate`
//! refuses), and one Rust hook crate per role whose services are exactly
//! the role's, each arm quoting the command to port.

mod hooks;
pub mod template;

use crate::spec::legacy::{self, Replacement};
use crate::spec::{DEFAULT_ROLE, MAX_SERVICE_TIMEOUT};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Largest template, config or locale file read.
const MAX_FILE_BYTES: u64 = 16 << 20;
/// Longest locale message kept (the spec's limit).
const MAX_MESSAGE_CHARS: usize = 1000;

/// An app that cannot be imported.
#[derive(Debug, Error)]
pub enum ImportError {
    /// A file of the app cannot be read.
    #[error("{}: cannot read: {error}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// A file is not what the original platform reads.
    #[error("{}: {message}", file.display())]
    Bad {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The output cannot be written.
    #[error("{}: cannot write: {error}", file.display())]
    Write {
        /// The file or directory.
        file: PathBuf,
        /// Why.
        error: std::io::Error,
    },
}

/// What to import and how.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Overrides of the config's defaults, by full path (`env.port`); a
    /// value that parses as JSON is that JSON, else a string.
    pub set: Vec<(String, String)>,
    /// The SDK's directory; the crates depend on it by version without one.
    pub sdk_path: Option<PathBuf>,
}

/// What an import did, for people and machines.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// The spec written.
    pub spec: PathBuf,
    /// Each role's crate and the component file cargo writes for it.
    pub crates: Vec<RoleCrate>,
    /// What became a service (`path → role's service`).
    pub converted: Vec<String>,
    /// Commands to port, by crate and service.
    pub to_port: Vec<String>,
    /// What was dropped, and why.
    pub dropped: Vec<String>,
}

/// One role's hook crate.
#[derive(Debug, Clone, Serialize)]
pub struct RoleCrate {
    /// The role.
    pub role: String,
    /// The crate's directory.
    pub dir: PathBuf,
    /// The component file cargo writes for it (what `plugin` names).
    pub component: String,
}

/// One service of a role, and the commands it replaces.
#[derive(Debug, Default, Clone)]
struct Port {
    /// The command the service ran.
    command: Option<String>,
    /// The command its pre-check ran.
    pre_check: Option<String>,
}

/// Imports the app at `dir` into the new (or empty) directory `out`.
pub fn import(dir: &Path, out: &Path, options: &ImportOptions) -> Result<Summary, ImportError> {
    let template_file = dir.join("cluster.json.mustache");
    let config_file = dir.join("config.json");
    let template = read(&template_file)?;
    let config: Value = serde_json::from_str(&read(&config_file)?).map_err(|e| ImportError::Bad {
        file: config_file.clone(),
        message: format!("not JSON: {e}"),
    })?;
    let mut values = template::defaults(&config);
    for (key, value) in &options.set {
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.clone()));
        values.insert(key.clone(), value);
    }
    let (text, missing) = template::render(&template, &values).map_err(|e| ImportError::Bad {
        file: template_file.clone(),
        message: e.to_string(),
    })?;
    let mut summary = Summary::default();
    for name in missing {
        summary.dropped.push(format!(
            "{{{{{name}}}}}: config.json gives it no default; rendered as \"\" (give it with --set {name}=...)"
        ));
    }
    let mut doc: Value = serde_json::from_str(&text).map_err(|e| ImportError::Bad {
        file: template_file.clone(),
        message: format!("rendered with the defaults, it is not JSON: {e}"),
    })?;
    if !doc.get("nodes").is_some_and(Value::is_array) {
        return Err(ImportError::Bad {
            file: template_file,
            message: "rendered, it has no \"nodes\" list: this is no cluster.json".into(),
        });
    }
    let roles = doc["nodes"].as_array().cloned().unwrap_or_default();
    if roles.is_empty() {
        return Err(ImportError::Bad {
            file: template_file,
            message: "rendered, its \"nodes\" list is empty: an app needs a role".into(),
        });
    }
    // A role's name names its crate's directory: plain names only, checked before anything is written.
    for (i, role) in roles.iter().enumerate() {
        let name = role.get("role").and_then(Value::as_str).unwrap_or_default();
        let plain = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !plain || (name.is_empty() && roles.len() > 1) {
            return Err(ImportError::Bad {
                file: template_file,
                message: format!(
                    "rendered, its nodes[{i}].role {name:?} is not a role name: give each role one of letters, digits, '_' and '-'"
                ),
            });
        }
    }
    if let Some(i) = doc["nodes"]
        .as_array()
        .and_then(|n| n.iter().position(|r| !r.is_object()))
    {
        return Err(ImportError::Bad {
            file: template_file,
            message: format!("rendered, its nodes[{i}] is not an object"),
        });
    }
    // The network is the user's choice at create: an empty one is the default.
    if doc.get("vxnet").is_some_and(|v| v.as_str() == Some("")) {
        doc.as_object_mut().map(|d| d.remove("vxnet"));
        summary
            .dropped
            .push("vxnet: empty (the user picks it at create); the default network is used".into());
    }
    let ports = convert(&mut doc, &mut summary);
    add_locale(&mut doc, &dir.join("locale"), &mut summary)?;
    write(&mut doc, &ports, out, options, &mut summary)?;
    Ok(summary)
}

fn read(file: &Path) -> Result<String, ImportError> {
    crate::files::read_text_limited(file, MAX_FILE_BYTES).map_err(|error| ImportError::Read {
        file: file.to_path_buf(),
        error,
    })
}

/// Every shell command becomes the service that replaces it; returns each
/// role's services with what they replace.
fn convert(doc: &mut Value, summary: &mut Summary) -> Vec<BTreeMap<String, Port>> {
    let roles = doc["nodes"].as_array().map_or(0, Vec::len);
    let mut ports: Vec<BTreeMap<String, Port>> = vec![BTreeMap::new(); roles];
    for command in legacy::shell_commands(doc) {
        legacy::remove(doc, &command);
        let (service, targets): (String, Vec<usize>) = match &command.becomes {
            Replacement::Tab(service) => {
                let tab = command
                    .at
                    .strip_prefix("display_tabs.")
                    .and_then(|t| t.strip_suffix(".cmd"))
                    .unwrap_or_default();
                let wanted: Vec<String> = doc["display_tabs"][tab]["roles_to_execute_on"]
                    .as_array()
                    .map(|r| r.iter().filter_map(Value::as_str).map(String::from).collect())
                    .unwrap_or_default();
                let mut targets: Vec<usize> = (0..roles).filter(|i| wanted.contains(&role_name(doc, *i))).collect();
                if targets.is_empty() {
                    targets.push(0);
                }
                let timeout = doc["display_tabs"][tab]["timeout"].as_u64();
                for &i in &targets {
                    let mut spec = json!({"type": "custom"});
                    if let Some(t) = timeout.filter(|t| (1..=u64::from(MAX_SERVICE_TIMEOUT)).contains(t)) {
                        spec["timeout"] = t.into();
                    }
                    add_service(doc, i, service, spec);
                }
                (service.clone(), targets)
            }
            Replacement::Selector(of, service) => {
                let i = command.role.unwrap_or(0);
                add_service(doc, i, service, json!({"type": "custom"}));
                doc["nodes"][i]["services"][of]["selector"] = service.clone().into();
                (service.clone(), vec![i])
            }
            Replacement::Service(service) | Replacement::PreCheck(service) => {
                let targets = command.role.map_or_else(|| (0..roles).collect(), |i| vec![i]);
                for &i in &targets {
                    // A role's custom_metadata is its own key; the others are services.
                    let own = service == "custom_metadata" && doc["nodes"][i].get("custom_metadata").is_some();
                    if !own {
                        add_service(doc, i, service, json!({}));
                    }
                }
                (service.clone(), targets)
            }
        };
        for &i in &targets {
            let port = ports[i].entry(service.clone()).or_default();
            if matches!(command.becomes, Replacement::PreCheck(_)) {
                port.pre_check = Some(command.command.clone());
            } else {
                port.command = Some(command.command.clone());
            }
            summary.converted.push(format!(
                "{} → role {}'s `{service}` service",
                command.at,
                role_name(doc, i)
            ));
        }
    }
    // advanced_services: each becomes a custom service of the first role.
    if let Some(Value::Object(advanced)) = doc.as_object_mut().and_then(|d| d.remove("advanced_services")) {
        for (name, spec) in advanced {
            let mut service = json!({"type": "custom"});
            if let Some(t) = spec.get("timeout").and_then(Value::as_u64) {
                service["timeout"] = t.into();
            }
            add_service(doc, 0, &name, service);
            ports[0].entry(name.clone()).or_default().command =
                spec.get("cmd").and_then(Value::as_str).map(String::from);
            summary.converted.push(format!(
                "advanced_services.{name} → role {}'s custom `{name}` service",
                role_name(doc, 0)
            ));
        }
    }
    // Every service the roles declare is in their crates, ported or not.
    for (i, port) in ports.iter_mut().enumerate() {
        let role = &doc["nodes"][i];
        for name in role["services"].as_object().into_iter().flat_map(|s| s.keys()) {
            port.entry(name.clone()).or_default();
        }
        if role.get("custom_metadata").is_some() {
            port.entry("custom_metadata".into()).or_default();
        }
    }
    ports
}

/// Role `i`'s name (a single unnamed role's is the default).
fn role_name(doc: &Value, i: usize) -> String {
    doc["nodes"][i]["role"]
        .as_str()
        .filter(|r| !r.is_empty())
        .unwrap_or(DEFAULT_ROLE)
        .to_string()
}

/// Declares `name` on role `i` unless it is declared (its keys kept).
fn add_service(doc: &mut Value, i: usize, name: &str, spec: Value) {
    let role = &mut doc["nodes"][i];
    if !role["services"].is_object() {
        role["services"] = Value::Object(Map::new());
    }
    let services = &mut role["services"];
    if services.get(name).is_none() {
        services[name] = spec;
    } else if let (Some(have), Value::Object(more)) = (services[name].as_object_mut(), spec) {
        for (k, v) in more {
            have.entry(k).or_insert(v);
        }
    }
}

/// `locale/<lang>.json` (flat maps of messages) become the spec's `locale`.
fn add_locale(doc: &mut Value, dir: &Path, summary: &mut Summary) -> Result<(), ImportError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    for file in files {
        let Some(lang) = file
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".json"))
            .map(String::from)
        else {
            continue;
        };
        let messages: Map<String, Value> = serde_json::from_str(&read(&file)?).map_err(|e| ImportError::Bad {
            file: file.clone(),
            message: format!("not a JSON object of messages: {e}"),
        })?;
        let mut kept = Map::new();
        for (key, message) in messages {
            match message.as_str() {
                Some(text) if text.chars().count() <= MAX_MESSAGE_CHARS => {
                    kept.insert(key, message);
                }
                _ => summary.dropped.push(format!(
                    "locale/{lang}.json: {key:?}: not a text of at most {MAX_MESSAGE_CHARS} characters"
                )),
            }
        }
        if !doc["locale"].is_object() {
            doc["locale"] = Value::Object(Map::new());
        }
        doc["locale"][&lang] = Value::Object(kept);
    }
    Ok(())
}

/// Writes `spec.json`, a workspace and one crate per role into `out`.
fn write(
    doc: &mut Value,
    ports: &[BTreeMap<String, Port>],
    out: &Path,
    options: &ImportOptions,
    summary: &mut Summary,
) -> Result<(), ImportError> {
    let write_err = |file: &Path| {
        let file = file.to_path_buf();
        move |error| ImportError::Write { file, error }
    };
    if std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some()) {
        return Err(ImportError::Write {
            file: out.to_path_buf(),
            error: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "not empty: give a new directory (nothing is overwritten)",
            ),
        });
    }
    let sdk = match &options.sdk_path {
        Some(path) => {
            let sdk = path.canonicalize().map_err(|error| ImportError::Read {
                file: path.clone(),
                error,
            })?;
            if !sdk.join("Cargo.toml").is_file() {
                return Err(ImportError::Bad {
                    file: sdk,
                    message: "holds no Cargo.toml: give the hookhost-sdk crate's directory".into(),
                });
            }
            Some(sdk)
        }
        None => None,
    };
    let mut packages: Vec<(String, String)> = Vec::new();
    for i in 0..ports.len() {
        let role = role_name(doc, i);
        let package = hooks::package_name(&role);
        if let Some((other, _)) = packages.iter().find(|(_, p)| *p == package) {
            return Err(ImportError::Bad {
                file: out.to_path_buf(),
                message: format!("roles {other:?} and {role:?} would share the crate {package}: rename one"),
            });
        }
        packages.push((role, package));
    }
    let mut crates = Vec::new();
    for (i, services) in ports.iter().enumerate() {
        let (role, package) = packages[i].clone();
        let component = format!("{}.wasm", package.replace('-', "_"));
        doc["nodes"][i]["plugin"] = component.clone().into();
        let dir = out.join("hooks").join(&package);
        std::fs::create_dir_all(dir.join("src")).map_err(write_err(&dir))?;
        let manifest = hooks::manifest(&package, sdk.as_deref());
        std::fs::write(dir.join("Cargo.toml"), manifest).map_err(write_err(&dir.join("Cargo.toml")))?;
        let source = hooks::source(&role, services);
        std::fs::write(dir.join("src/lib.rs"), source).map_err(write_err(&dir.join("src/lib.rs")))?;
        for (service, port) in services {
            for command in [&port.pre_check, &port.command].into_iter().flatten() {
                summary.to_port.push(format!("hooks/{package}: `{service}`: {command}"));
            }
        }
        crates.push(RoleCrate { role, dir, component });
    }
    std::fs::write(out.join("Cargo.toml"), hooks::WORKSPACE).map_err(write_err(&out.join("Cargo.toml")))?;
    let spec = out.join("spec.json");
    let text = serde_json::to_string_pretty(doc).map_err(|e| write_err(&spec)(std::io::Error::other(e)))?;
    std::fs::write(&spec, text + "\n").map_err(write_err(&spec))?;
    summary.spec = spec;
    summary.crates = crates;
    Ok(())
}
