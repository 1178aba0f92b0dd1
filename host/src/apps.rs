//! App versions: an app's spec, its components and its in-place upgrade
//! payload, registered under an app id and a version name. A version is
//! immutable: registering the same name again is a no-op when the content
//! is the same and refused when it differs; its components are images (by
//! their SHA-256) and its payload a directory named by its digest, so equal
//! content is kept once.
//!
//! Laid out under the state directory as `apps/<app>/<version>.json` (the
//! record, the spec's plugins pointing at the images) and
//! `payloads/<digest>/` (the payload tree).

use crate::spec::Spec;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Longest app id and version name.
pub const MAX_NAME_CHARS: usize = 64;

/// An app version, by app id and version name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AppRef {
    /// The app id (`zookeeper`).
    pub app: String,
    /// The version name (`3.5.9`).
    pub version: String,
}

impl fmt::Display for AppRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.app, self.version)
    }
}

/// A registered app version.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AppVersion {
    /// The app id.
    pub app: String,
    /// The version name.
    pub version: String,
    /// SHA-256 (hex) of its content: the spec with each component named by
    /// its own SHA-256, and the payload's digest.
    pub digest: String,
    /// Its spec; plugins point at the kept images.
    pub spec: Spec,
    /// Its payload tree (copied into nodes by an in-place upgrade).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub payload: Option<PathBuf>,
    /// The spec file it was registered from.
    #[schema(value_type = String)]
    pub source: PathBuf,
    /// When it was registered.
    pub added_at: String,
}

impl AppVersion {
    /// Its id and name.
    pub fn reference(&self) -> AppRef {
        AppRef {
            app: self.app.clone(),
            version: self.version.clone(),
        }
    }
}

/// Why the catalog refused or failed.
#[derive(Debug, Error)]
pub enum CatalogError {
    /// An app id or version name that is not one.
    #[error("{what} {name:?} {why}")]
    BadName {
        /// `app id` or `version name`.
        what: &'static str,
        /// The name, clipped.
        name: String,
        /// What is wrong.
        why: String,
    },
    /// No such version.
    #[error("app {app} has no version {version}{}", known_versions(known))]
    Unknown {
        /// The app id.
        app: String,
        /// The version asked for.
        version: String,
        /// The versions it has.
        known: Vec<String>,
    },
    /// The name is taken by other content.
    #[error(
        "app {app} already has a version {version} with other content (digest {existing}); a version never changes: register this one under a new version name"
    )]
    Taken {
        /// The app id.
        app: String,
        /// The version name.
        version: String,
        /// The digest it has.
        existing: String,
    },
    /// A file of the catalog cannot be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

fn known_versions(known: &[String]) -> String {
    if known.is_empty() {
        " (it has no versions: register one with `hookhost app add`)".into()
    } else {
        format!(" (its versions: {})", known.join(", "))
    }
}

/// Checks an app id or version name: 1 to [`MAX_NAME_CHARS`] letters,
/// digits, `.`, `_` or `-`, starting with a letter or digit (it names a
/// file and a metadata value).
pub fn check_name(what: &'static str, name: &str) -> Result<(), CatalogError> {
    crate::text::check_token(name, MAX_NAME_CHARS).map_err(|why| CatalogError::BadName {
        what,
        name: crate::text::clip(name, MAX_NAME_CHARS),
        why,
    })
}

/// The registered app versions of a state directory.
#[derive(Debug, Clone)]
pub struct Catalog {
    apps: PathBuf,
    payloads: PathBuf,
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> CatalogError + '_ {
    move |source| CatalogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Catalog {
    /// The catalog under `<state_dir>/apps` and `<state_dir>/payloads`.
    pub fn new(state_dir: &Path) -> Catalog {
        Catalog {
            apps: state_dir.join("apps"),
            payloads: state_dir.join("payloads"),
        }
    }

    fn file(&self, app: &str, version: &str) -> PathBuf {
        self.apps.join(app).join(format!("{version}.json"))
    }

    /// A version, or an error that lists the app's versions.
    pub fn get(&self, app: &str, version: &str) -> Result<AppVersion, CatalogError> {
        check_name("app id", app)?;
        check_name("version name", version)?;
        match self.read(&self.file(app, version))? {
            Some(found) => Ok(found),
            None => Err(CatalogError::Unknown {
                app: app.into(),
                version: version.into(),
                known: self.versions(app)?.into_iter().map(|v| v.version).collect(),
            }),
        }
    }

    fn read(&self, path: &Path) -> Result<Option<AppVersion>, CatalogError> {
        let bytes = match crate::files::read_limited(path, 64 << 20) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(path)(e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io_error(path)(io::Error::new(io::ErrorKind::InvalidData, e)))
    }

    /// The app ids, sorted.
    pub fn apps(&self) -> Result<Vec<String>, CatalogError> {
        let mut apps = Vec::new();
        match std::fs::read_dir(&self.apps) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(&self.apps)(e)),
            Ok(entries) => {
                for entry in entries {
                    let name = entry.map_err(io_error(&self.apps))?.file_name();
                    if let Some(name) = name.to_str()
                        && check_name("app id", name).is_ok()
                    {
                        apps.push(name.to_string());
                    }
                }
            }
        }
        apps.sort();
        Ok(apps)
    }

    /// An app's versions, oldest first.
    pub fn versions(&self, app: &str) -> Result<Vec<AppVersion>, CatalogError> {
        check_name("app id", app)?;
        let dir = self.apps.join(app);
        let mut out = Vec::new();
        match std::fs::read_dir(&dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(&dir)(e)),
            Ok(entries) => {
                for entry in entries {
                    let path = entry.map_err(io_error(&dir))?.path();
                    if path.extension().is_some_and(|e| e == "json")
                        && let Some(found) = self.read(&path)?
                    {
                        out.push(found);
                    }
                }
            }
        }
        out.sort_by(|a, b| (&a.added_at, &a.version).cmp(&(&b.added_at, &b.version)));
        Ok(out)
    }

    /// The version of `app` with this content, if one is registered.
    pub fn with_digest(&self, app: &str, digest: &str) -> Result<Option<AppVersion>, CatalogError> {
        Ok(self.versions(app)?.into_iter().find(|v| v.digest == digest))
    }

    /// Registers a version: `(it, true)`; the same content under the same
    /// name again is `(the one registered, false)`; other content under a
    /// taken name is refused.
    pub fn add(&self, version: AppVersion) -> Result<(AppVersion, bool), CatalogError> {
        check_name("app id", &version.app)?;
        check_name("version name", &version.version)?;
        let path = self.file(&version.app, &version.version);
        let dir = self.apps.join(&version.app);
        std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(io_error(&dir))?;
        serde_json::to_writer_pretty(&mut tmp, &version).map_err(|e| io_error(&path)(e.into()))?;
        // On disk before it has a name: a crash never leaves an empty version.
        tmp.as_file().sync_all().map_err(io_error(&path))?;
        // Never replaces: two registrations racing for a name, one wins.
        match tmp.persist_noclobber(&path) {
            Ok(_) => Ok((version, true)),
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => {
                let existing = self
                    .read(&path)?
                    .ok_or_else(|| io_error(&path)(io::Error::other("vanished")))?;
                if existing.digest == version.digest {
                    Ok((existing, false))
                } else {
                    Err(CatalogError::Taken {
                        app: version.app,
                        version: version.version,
                        existing: existing.digest,
                    })
                }
            }
            Err(e) => Err(io_error(&path)(e.error)),
        }
    }

    /// Keeps a payload tree by its digest; where it is kept, and the digest.
    pub fn keep_payload(&self, dir: &Path) -> Result<(PathBuf, String), CatalogError> {
        std::fs::create_dir_all(&self.payloads).map_err(io_error(&self.payloads))?;
        let tmp = tempfile::tempdir_in(&self.payloads).map_err(io_error(&self.payloads))?;
        let staged = tmp.path().join("tree");
        let digest = crate::files::copy_tree(dir, &staged).map_err(io_error(dir))?;
        let kept = self.payloads.join(&digest);
        if !kept.is_dir() {
            match std::fs::rename(&staged, &kept) {
                Ok(()) => {}
                // Kept meanwhile by another registration of the same content.
                Err(_) if kept.is_dir() => {}
                Err(e) => return Err(io_error(&kept)(e)),
            }
        }
        Ok((kept, digest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(app: &str, name: &str, digest: &str) -> AppVersion {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.wasm"), "").unwrap();
        let spec = Spec::parse(
            Path::new("spec.json"),
            r#"{"nodes": [{"count": 1, "plugin": "x.wasm"}]}"#,
            dir.path(),
        )
        .unwrap();
        AppVersion {
            app: app.into(),
            version: name.into(),
            digest: digest.into(),
            spec,
            payload: None,
            source: "/app/spec.json".into(),
            added_at: crate::cluster::now(),
        }
    }

    #[test]
    fn a_version_is_registered_once_and_never_changes() {
        let state = tempfile::tempdir().unwrap();
        let catalog = Catalog::new(state.path());
        assert!(catalog.apps().unwrap().is_empty());
        let (v1, new) = catalog.add(version("zk", "1.0", "aaa")).unwrap();
        assert!(new && v1.version == "1.0");
        let (again, new) = catalog.add(version("zk", "1.0", "aaa")).unwrap();
        assert!(!new && again.digest == "aaa");
        let e = catalog.add(version("zk", "1.0", "bbb")).unwrap_err().to_string();
        assert!(e.contains("other content (digest aaa)"), "{e}");
        catalog.add(version("zk", "2.0", "bbb")).unwrap();
        assert_eq!(catalog.apps().unwrap(), ["zk"]);
        let names: Vec<String> = catalog.versions("zk").unwrap().into_iter().map(|v| v.version).collect();
        assert_eq!(names, ["1.0", "2.0"]);
        assert_eq!(catalog.get("zk", "2.0").unwrap().digest, "bbb");
        assert_eq!(catalog.with_digest("zk", "bbb").unwrap().unwrap().version, "2.0");
        let e = catalog.get("zk", "9").unwrap_err().to_string();
        assert_eq!(e, "app zk has no version 9 (its versions: 1.0, 2.0)");
        let e = catalog.get("kafka", "1").unwrap_err().to_string();
        assert!(e.contains("it has no versions"), "{e}");
    }

    #[test]
    fn names_are_safe_file_names() {
        for bad in ["", "../x", "a/b", ".hidden", "-x", "a b", "ü", &"v".repeat(65)] {
            assert!(check_name("version name", bad).is_err(), "{bad:?}");
        }
        for good in ["1.0", "v2", "3.5.9-beta_1", &"v".repeat(64)] {
            assert!(check_name("version name", good).is_ok(), "{good:?}");
        }
        let catalog = Catalog::new(Path::new("/nonexistent"));
        assert!(matches!(catalog.get("..", "1"), Err(CatalogError::BadName { .. })));
    }

    #[test]
    fn payloads_are_kept_by_digest() {
        let state = tempfile::tempdir().unwrap();
        let app = tempfile::tempdir().unwrap();
        std::fs::write(app.path().join("upgrade.sh"), "x").unwrap();
        let catalog = Catalog::new(state.path());
        let (kept, digest) = catalog.keep_payload(app.path()).unwrap();
        assert_eq!(kept, state.path().join("payloads").join(&digest));
        assert_eq!(std::fs::read_to_string(kept.join("upgrade.sh")).unwrap(), "x");
        assert_eq!(catalog.keep_payload(app.path()).unwrap().1, digest);
    }
}
