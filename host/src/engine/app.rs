//! Loading an app: its spec, and each role's component checked against it
//! (it loads, and implements every service the spec gives its role). Once
//! the operation's flow has admitted the request, the app's components are
//! kept as images, so that a cluster keeps running what was checked.

use super::{Engine, EngineError};
use crate::hook::{parse_service, service_name};
use crate::spec::{Problem, Spec, SpecError};
use std::path::Path;

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
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

    /// Keeps a checked app's components as images (the provider's), the
    /// very bytes that were checked, and points `spec` (a cluster's copy of
    /// the app's) at them.
    pub(super) fn keep_images(&self, file: &Path, app: &App, spec: &mut Spec) -> Result<(), EngineError> {
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
