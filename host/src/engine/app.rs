//! Loading an app: its spec, and each role's component checked against it
//! (it loads, and implements every service the spec gives its role); and
//! registering it as an app version: its components kept as images (the
//! very bytes that were checked), its `payload/` directory kept, the
//! version recorded in the catalog under its content's digest.

use super::{Engine, EngineError};
use crate::apps::{AppVersion, check_name};
use crate::hook::{Service, parse_service, service_name};
use crate::spec::{Problem, Spec, SpecError};
use sha2::Digest;
use std::path::{Path, PathBuf};

/// The directory beside a spec an app version's payload comes from.
pub const PAYLOAD_DIR: &str = "payload";

/// The spec file a path names: itself, or `spec.json` in a directory.
pub fn spec_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("spec.json")
    } else {
        path.to_path_buf()
    }
}

/// The app id a spec file's directory gives (its name, made a valid id).
pub fn app_id_of(file: &Path) -> String {
    let dir = file
        .canonicalize()
        .ok()
        .and_then(|f| {
            f.parent()
                .and_then(|d| d.file_name())
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    let id: String = dir
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .skip_while(|c| !c.is_ascii_alphanumeric())
        .take(crate::apps::MAX_NAME_CHARS)
        .collect();
    if id.is_empty() { "app".into() } else { id }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// An app version read and checked, not kept yet.
pub(super) struct Prepared {
    /// What it is (or is already, when `fresh` is none).
    pub(super) version: AppVersion,
    /// What keeping it keeps; none when the version is registered already.
    fresh: Option<Fresh>,
}

/// A version's files as they were checked.
struct Fresh {
    file: PathBuf,
    checked: App,
    /// The payload directory and its digest.
    payload: Option<(PathBuf, String)>,
}

/// An app spec whose components were checked: each role's, as the bytes
/// that were checked and their SHA-256.
pub(super) struct App {
    pub(super) spec: Spec,
    checked: Vec<(String, Vec<u8>)>,
}

impl Engine {
    /// Loads a spec and checks its components; keeps nothing.
    pub async fn load_app(&self, file: &Path) -> Result<Spec, EngineError> {
        Ok(self.check_app(file).await?.spec)
    }

    /// Loads a spec and checks its components. Every path is checked before
    /// anything is read (`Spec::load`), and each component is read once,
    /// beneath the app's directory (nothing swapped in after the check can
    /// lead out of it); errors name the user's files and never echo their content.
    pub(super) async fn check_app(&self, file: &Path) -> Result<App, EngineError> {
        let spec = Spec::load(file)?;
        let dir = match file.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let dir = dir.canonicalize().map_err(|error| SpecError::Read {
            file: file.to_path_buf(),
            error,
        })?;
        let mut problems = Vec::new();
        let mut checked = Vec::new();
        for (i, role) in spec.nodes.iter().enumerate() {
            let at = format!("nodes[{i}].plugin");
            let rel = role.plugin.strip_prefix(&dir).unwrap_or(&role.plugin);
            let bytes = match crate::files::read_beneath(&dir, rel, crate::runtime::MAX_COMPONENT_BYTES) {
                Ok(bytes) => bytes,
                Err(e) => {
                    let message = format!("{}: cannot read: {e}", role.plugin.display());
                    problems.push(Problem { at, message });
                    continue;
                }
            };
            let component = match self.runner.load_bytes(&role.plugin, bytes.clone()).await {
                Ok(component) => component,
                Err(e) => {
                    problems.push(Problem {
                        at,
                        message: e.without_content(),
                    });
                    continue;
                }
            };
            for name in role.services.keys() {
                let implemented = parse_service(name).is_ok_and(|s| component.services().contains(&s));
                if !implemented {
                    let offered: Vec<String> = component.services().iter().map(service_name).collect();
                    problems.push(Problem {
                        at: format!("nodes[{i}].services.{name}"),
                        message: format!(
                            "{} does not implement {name} (it implements: {})",
                            file_name(&role.plugin),
                            offered.join(", ")
                        ),
                    });
                }
            }
            // Checks and monitoring the spec turns on need their services too.
            let watched = [
                (
                    crate::cluster::HealthPolicy::of(&spec, &role.role).is_some(),
                    Service::HealthCheck,
                    "health_check",
                    role.health_check.is_some(),
                ),
                (
                    crate::cluster::monitor_items(&spec, &role.role).is_some(),
                    Service::Monitor,
                    "monitor",
                    role.monitor.is_some(),
                ),
            ];
            for (on, service, key, own) in watched {
                if on && !component.services().contains(&service) {
                    problems.push(Problem {
                        at: if own {
                            format!("nodes[{i}].{key}")
                        } else {
                            key.to_string()
                        },
                        message: format!(
                            "{key} is enabled for role {}, but {} does not implement {}",
                            role.role,
                            file_name(&role.plugin),
                            service_name(&service)
                        ),
                    });
                }
            }
            checked.push((component.sha256(), bytes));
        }
        if !problems.is_empty() {
            return Err(EngineError::Components {
                file: file.to_path_buf(),
                problems,
            });
        }
        Ok(App { spec, checked })
    }

    /// Registers the app of a spec file (or of a directory holding
    /// `spec.json`) as version `version` of app `app` (by default: the
    /// directory's name, and the version with this content, else
    /// `d-<digest>`). Returns the version and whether it is new; the same
    /// content under a taken name is no change, other content is refused.
    pub async fn add_app(
        &self,
        path: &Path,
        app: Option<&str>,
        version: Option<&str>,
    ) -> Result<(AppVersion, bool), EngineError> {
        let prepared = self.prepare_version(path, app, version).await?;
        self.keep_version(prepared)
    }

    /// What [`Engine::add_app`] would register, read and checked once;
    /// nothing is kept yet.
    pub(super) async fn prepare_version(
        &self,
        path: &Path,
        app: Option<&str>,
        version: Option<&str>,
    ) -> Result<Prepared, EngineError> {
        let file = spec_file(path);
        let app_id = match app {
            Some(app) => {
                check_name("app id", app)?;
                app.to_string()
            }
            None => app_id_of(&file),
        };
        if let Some(version) = version {
            check_name("version name", version)?;
        }
        let checked = self.check_app(&file).await?;
        let payload = file
            .parent()
            .map(|d| d.join(PAYLOAD_DIR))
            .filter(|d| std::fs::symlink_metadata(d).is_ok());
        let payload_digest = match &payload {
            Some(dir) => crate::files::tree_digest(dir).map_err(|error| SpecError::Read {
                file: dir.clone(),
                error,
            })?,
            None => String::new(),
        };
        self.check_fit(&file, &app_id, &checked.spec, payload.as_deref())?;
        let digest = digest(&checked, &payload_digest);
        let name = match version {
            Some(v) => v.to_string(),
            None => match self.catalog.with_digest(&app_id, &digest)? {
                // Registered already: nothing to keep.
                Some(found) => {
                    return Ok(Prepared {
                        version: found,
                        fresh: None,
                    });
                }
                None => format!("d-{}", &digest[..12]),
            },
        };
        let source = file.canonicalize().unwrap_or_else(|_| file.clone());
        Ok(Prepared {
            version: AppVersion {
                app: app_id,
                version: name,
                digest,
                spec: checked.spec.clone(),
                payload: payload.clone(),
                source,
                added_at: crate::cluster::now(),
            },
            fresh: Some(Fresh {
                file,
                checked,
                payload: payload.map(|dir| (dir, payload_digest)),
            }),
        })
    }

    /// Keeps what [`Engine::prepare_version`] read: the very component bytes
    /// that were checked, the payload (refused when it changed meanwhile),
    /// and the version; the version, and whether it is new.
    pub(super) fn keep_version(&self, prepared: Prepared) -> Result<(AppVersion, bool), EngineError> {
        let Prepared { mut version, fresh } = prepared;
        let Some(Fresh { file, checked, payload }) = fresh else {
            return Ok((version, false));
        };
        self.keep_images(&file, &checked, &mut version.spec)?;
        if let Some((dir, digest)) = payload {
            let (kept, kept_digest) = self.catalog.keep_payload(&dir)?;
            if kept_digest != digest {
                return Err(SpecError::Read {
                    file: dir,
                    error: std::io::Error::other("it changed while it was being registered; register it again"),
                }
                .into());
            }
            version.payload = Some(kept);
        }
        Ok(self.catalog.add(version)?)
    }

    /// What a version must hold to be upgraded to: the payload its in-place
    /// copies read, and the shape of each registered version its
    /// `upgrade_policy` names (the same roles, replicas and volumes).
    fn check_fit(&self, file: &Path, app: &str, spec: &Spec, payload: Option<&Path>) -> Result<(), EngineError> {
        let mut problems = Vec::new();
        for (i, entry) in spec.in_place_upgrade_nodes.iter().enumerate() {
            for (j, copy) in entry.copy.iter().enumerate() {
                let at = format!("in-place-upgrade-nodes[{i}].copy[{j}].source");
                let found = match (payload, copy.source_in_payload()) {
                    (Some(dir), Some(rel)) => {
                        std::fs::symlink_metadata(dir.join(&rel)).is_ok_and(|m| m.is_dir() || m.is_file())
                    }
                    _ => false,
                };
                if !found {
                    let message = match payload {
                        None => format!(
                            "{} copies {}, but the app has no {PAYLOAD_DIR}/ directory beside its spec",
                            file_name(file),
                            copy.source
                        ),
                        Some(_) => format!("{} is not in {PAYLOAD_DIR}/ (a file or directory there)", copy.source),
                    };
                    problems.push(Problem { at, message });
                }
            }
        }
        for (i, from) in spec.upgrade_policy.iter().enumerate() {
            if let Ok(old) = self.catalog.get(app, from)
                && let Err(why) = crate::flows::same_shape(&old.spec, spec)
            {
                problems.push(Problem {
                    at: format!("upgrade_policy[{i}]"),
                    message: format!("version {from} of app {app} cannot be upgraded to this one: {why}"),
                });
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SpecError::Invalid {
                file: file.to_path_buf(),
                problems,
            }
            .into())
        }
    }

    /// Keeps a checked app's components as images (the provider's), the
    /// very bytes that were checked, and points `spec` (a cluster's copy of
    /// the app's) at them.
    fn keep_images(&self, file: &Path, app: &App, spec: &mut Spec) -> Result<(), EngineError> {
        for (role, (sha, bytes)) in spec.nodes.iter_mut().zip(&app.checked) {
            role.plugin = self
                .provider
                .store_image(sha, bytes)
                .map_err(|source| EngineError::Images {
                    file: file.to_path_buf(),
                    source,
                })?;
        }
        Ok(())
    }
}

/// A checked app's digest: its spec with each plugin named by its
/// component's SHA-256 (where the files lay does not count), and its payload's digest.
fn digest(app: &App, payload: &str) -> String {
    let mut spec = app.spec.clone();
    for (role, (sha, _)) in spec.nodes.iter_mut().zip(&app.checked) {
        role.plugin = PathBuf::from(sha);
    }
    let mut hasher = sha2::Sha256::new();
    hasher.update(serde_json::to_vec(&spec).unwrap_or_default());
    hasher.update(b"\npayload ");
    hasher.update(payload.as_bytes());
    crate::files::hex(&hasher.finalize())
}
