//! The app spec: the original platform's `cluster.json`, with each role naming
//! its hook component (`"plugin": "zk.wasm"`, relative to the spec file)
//! instead of shell commands. Parsing refuses unknown keys and shell
//! commands (naming the service that replaces each); [`Spec::load`] then
//! checks what types cannot: ranges, names, which keys fit which service.
//! Every problem of a spec is reported at once, each with its JSON path.

pub mod legacy;
mod model;
mod shape;
mod validate;

pub use model::*;
pub use validate::{DEFAULT_ROLE, MAX_CLUSTER_NODES, env_problems};

use std::fmt;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Largest spec file accepted.
const MAX_SPEC_BYTES: u64 = 16 << 20;

/// One problem of a spec, at a JSON path (`nodes[0].services.init.timeout`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where, as a JSON path; `.` is the whole document.
    pub at: String,
    /// What is wrong there.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

/// A spec that cannot be used: the file and every problem found in it.
#[derive(Debug, Error)]
pub enum SpecError {
    /// The file cannot be read (missing, not a regular file, too large).
    #[error("{file}: cannot read: {error}")]
    Read {
        /// The spec file.
        file: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The file is not JSON.
    #[error("{file}:{line}:{column}: {problem}")]
    Shape {
        /// The spec file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The path and the problem.
        problem: Problem,
    },
    /// The JSON does not fit the spec's shape, or breaks its rules.
    #[error("{file}: {}", problems.iter().map(Problem::to_string).collect::<Vec<_>>().join(&format!("\n{}: ", file.display())))]
    Invalid {
        /// The spec file.
        file: PathBuf,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

impl Spec {
    /// Reads, parses and checks a spec; plugin paths become absolute.
    pub fn load(file: &Path) -> Result<Spec, SpecError> {
        if file.is_dir() {
            let hint = format!(
                "is a directory; give the spec file, e.g. {}",
                file.join("spec.json").display()
            );
            return Err(SpecError::Read {
                file: file.to_path_buf(),
                error: std::io::Error::other(hint),
            });
        }
        let text = crate::files::read_text_limited(file, MAX_SPEC_BYTES).map_err(|error| SpecError::Read {
            file: file.to_path_buf(),
            error,
        })?;
        let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse(file, &text, &base)
    }

    /// Parses and checks spec text; `file` names it in errors, `base` resolves plugins.
    pub fn parse(file: &Path, text: &str, base: &Path) -> Result<Spec, SpecError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let mut doc: serde_json::Value = serde_path_to_error::deserialize(de).map_err(|e| {
            let at = e.path().to_string();
            let inner = e.into_inner();
            SpecError::Shape {
                file: file.to_path_buf(),
                line: inner.line(),
                column: inner.column(),
                problem: Problem {
                    message: shape::shape_message(&inner.to_string()),
                    at,
                },
            }
        })?;
        let mut problems = legacy::refuse(&mut doc);
        let mut parsed = shape::parse_all::<Spec>(doc);
        problems.append(&mut parsed.problems);
        let Some(mut spec) = parsed.value.take() else {
            return Err(SpecError::Invalid {
                file: file.to_path_buf(),
                problems,
            });
        };
        // Rules are judged where the document is the user's, at the user's paths.
        for mut problem in validate::check(&mut spec, base) {
            if let Some(at) = parsed.place(&problem.at) {
                problem.at = at;
                problems.push(problem);
            }
        }
        if problems.is_empty() {
            Ok(spec)
        } else {
            Err(SpecError::Invalid {
                file: file.to_path_buf(),
                problems,
            })
        }
    }
}

/// Parses spec JSON into any spec type, for tests of a single part.
#[cfg(test)]
fn parse_part<T: for<'de> serde::Deserialize<'de>>(json: &str) -> Result<T, String> {
    let de = &mut serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let at = e.path().to_string();
        format!("{at}: {}", shape::shape_message(&e.into_inner().to_string()))
    })
}

#[cfg(test)]
mod tests;
