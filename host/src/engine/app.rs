//! Loading an app: its spec, and each role's component checked against it
//! (it loads, and implements every service the spec gives its role). A
//! submitted app's components are kept as images, so that a cluster keeps
//! running what was checked.

use super::{Engine, EngineError};
use crate::hook::{parse_service, service_name};
use crate::spec::{Problem, Spec};
use std::path::Path;

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl Engine {
    /// Loads a spec and checks its components; with `keep`, keeps them as
    /// images and points the spec at those. Every path is checked before
    /// anything is read (`Spec::load`), errors name the user's files and
    /// never echo their content, and nothing is kept unless all is well.
    pub async fn load_app(&self, file: &Path, keep: bool) -> Result<Spec, EngineError> {
        let mut spec = Spec::load(file)?;
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
        if keep {
            for (i, (role, sha)) in spec.nodes.iter_mut().zip(checked).enumerate() {
                let images = |source| EngineError::Images {
                    file: file.to_path_buf(),
                    source,
                };
                let bytes =
                    crate::files::read_limited(&role.plugin, crate::runtime::MAX_COMPONENT_BYTES).map_err(images)?;
                // What is kept is what was checked, byte for byte.
                if crate::runtime::sha256_hex(&bytes) != sha {
                    return Err(EngineError::Components {
                        file: file.to_path_buf(),
                        problems: vec![Problem {
                            at: format!("nodes[{i}].plugin"),
                            message: format!("{} changed while it was checked; try again", role.plugin.display()),
                        }],
                    });
                }
                role.plugin = self.provider.store_image(&sha, &bytes).map_err(images)?;
            }
        }
        Ok(spec)
    }
}
