//! Loading an app: its spec, and each role's component checked against it
//! (it loads, and implements every service the spec gives its role). Once
//! the operation's flow has admitted the request, the app's components are
//! kept as images, so that a cluster keeps running what was checked.

use super::{Engine, EngineError};
use crate::hook::{parse_service, service_name};
use crate::spec::{Problem, Spec};
use std::path::Path;

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// An app spec whose components were checked: the SHA-256 of each role's.
pub(super) struct App {
    pub(super) spec: Spec,
    checked: Vec<String>,
}

impl Engine {
    /// Loads a spec and checks its components; keeps nothing.
    pub async fn load_app(&self, file: &Path) -> Result<Spec, EngineError> {
        Ok(self.check_app(file).await?.spec)
    }

    /// Loads a spec and checks its components. Every path is checked before
    /// anything is read (`Spec::load`); errors name the user's files and
    /// never echo their content.
    pub(super) async fn check_app(&self, file: &Path) -> Result<App, EngineError> {
        let spec = Spec::load(file)?;
        let mut problems = Vec::new();
        let mut checked = Vec::new();
        for (i, role) in spec.nodes.iter().enumerate() {
            let component = match self.runner.load(&role.plugin).await {
                Ok(component) => component,
                Err(e) => {
                    problems.push(Problem {
                        at: format!("nodes[{i}].plugin"),
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
            checked.push(component.sha256());
        }
        if !problems.is_empty() {
            return Err(EngineError::Components {
                file: file.to_path_buf(),
                problems,
            });
        }
        Ok(App { spec, checked })
    }

    /// Keeps a checked app's components as images (the provider's) and
    /// points `spec` (a cluster's copy of the app's) at them, so that the
    /// cluster keeps running what was checked: the image is the checked bytes.
    pub(super) fn keep_images(&self, file: &Path, app: &App, spec: &mut Spec) -> Result<(), EngineError> {
        let images = |source| EngineError::Images {
            file: file.to_path_buf(),
            source,
        };
        for (i, (role, sha)) in spec.nodes.iter_mut().zip(&app.checked).enumerate() {
            let bytes =
                crate::files::read_limited(&role.plugin, crate::runtime::MAX_COMPONENT_BYTES).map_err(images)?;
            if crate::runtime::sha256_hex(&bytes) != *sha {
                return Err(EngineError::Components {
                    file: file.to_path_buf(),
                    problems: vec![Problem {
                        at: format!("nodes[{i}].plugin"),
                        message: format!("{} changed while it was checked; try again", role.plugin.display()),
                    }],
                });
            }
            role.plugin = self.provider.store_image(sha, &bytes).map_err(images)?;
        }
        Ok(())
    }
}
