//! The server's tenants: who may call it and what each may use.
//!
//! Kept in `<state>/server/tenants.json` (0600, replaced atomically). A
//! token is shown once, when its tenant is added; only its SHA-256 is kept.

use crate::files::hex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Longest tenant name (it names the tenant's directory).
pub const MAX_TENANT_CHARS: usize = 32;
/// Largest tenants file read.
const MAX_FILE_BYTES: u64 = 16 << 20;

/// What one tenant may use at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Quotas {
    /// Hooks running at once.
    pub max_hooks: u32,
    /// Memory one hook may take, in MiB.
    pub max_hook_memory_mib: u64,
    /// Clusters kept (not deleted).
    pub max_clusters: u32,
    /// Nodes in all its clusters.
    pub max_nodes: u32,
    /// Operations running at once.
    pub max_operations: u32,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            max_hooks: 16,
            max_hook_memory_mib: 256,
            max_clusters: 20,
            max_nodes: 200,
            max_operations: 4,
        }
    }
}

/// A tenant as kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// Its name.
    pub name: String,
    /// SHA-256 (hex) of its token.
    pub token_sha256: String,
    /// What it may use.
    pub quotas: Quotas,
    /// When it was added.
    pub added_at: String,
}

/// Why the tenants could not be read, changed or written.
#[derive(Debug, Error)]
pub enum TenantError {
    /// A name that cannot be a tenant's.
    #[error("tenant name {name:?} {why}")]
    BadName {
        /// The name, clipped.
        name: String,
        /// What is wrong.
        why: String,
    },
    /// The name is taken.
    #[error("tenant {0} exists already")]
    Exists(String),
    /// A removed tenant's state still holds the name.
    #[error("{} holds the state of a removed tenant of this name: move it away, or choose another name", .0.display())]
    Leftover(PathBuf),
    /// No tenant has this name.
    #[error("no tenant {0} (see `hookhost tenant list`)")]
    Unknown(String),
    /// The tenants file is unreadable or unwritable.
    #[error("{}: {why}", file.display())]
    File {
        /// The file.
        file: PathBuf,
        /// Why.
        why: String,
    },
}

/// The tenants of a state directory.
#[derive(Debug, Clone)]
pub struct Tenants {
    file: PathBuf,
}

impl Tenants {
    /// The tenants kept under `state_dir`.
    pub fn new(state_dir: &Path) -> Tenants {
        Tenants {
            file: state_dir.join("server").join("tenants.json"),
        }
    }

    /// Every tenant, by name.
    pub fn list(&self) -> Result<Vec<Tenant>, TenantError> {
        let bytes = match crate::files::read_limited(&self.file, MAX_FILE_BYTES) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.error(e)),
        };
        let mut tenants: Vec<Tenant> = serde_json::from_slice(&bytes).map_err(|e| self.error(e))?;
        tenants.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(tenants)
    }

    /// Adds a tenant; returns it and its token (shown once, never kept).
    pub fn add(&self, name: &str, quotas: Quotas) -> Result<(Tenant, String), TenantError> {
        check_name(name)?;
        let mut tenants = self.list()?;
        if tenants.iter().any(|t| t.name == name) {
            return Err(TenantError::Exists(name.to_string()));
        }
        // A removed tenant's state stays on disk: a new tenant must not inherit it.
        let left = self.state_dir().join("tenants").join(name);
        if std::fs::symlink_metadata(&left).is_ok() {
            return Err(TenantError::Leftover(left));
        }
        let token = new_token().map_err(|e| self.error(e))?;
        let tenant = Tenant {
            name: name.to_string(),
            token_sha256: token_hash(&token),
            quotas,
            added_at: crate::cluster::now(),
        };
        tenants.push(tenant.clone());
        self.write(&tenants)?;
        Ok((tenant, token))
    }

    /// Changes a tenant's quotas.
    pub fn set_quotas(&self, name: &str, change: impl FnOnce(&mut Quotas)) -> Result<Tenant, TenantError> {
        let mut tenants = self.list()?;
        let tenant = tenants
            .iter_mut()
            .find(|t| t.name == name)
            .ok_or_else(|| TenantError::Unknown(name.to_string()))?;
        change(&mut tenant.quotas);
        let changed = tenant.clone();
        self.write(&tenants)?;
        Ok(changed)
    }

    /// Removes a tenant's access (its clusters stay on disk).
    pub fn remove(&self, name: &str) -> Result<(), TenantError> {
        let mut tenants = self.list()?;
        let before = tenants.len();
        tenants.retain(|t| t.name != name);
        if tenants.len() == before {
            return Err(TenantError::Unknown(name.to_string()));
        }
        self.write(&tenants)
    }

    fn state_dir(&self) -> &Path {
        self.file.parent().and_then(Path::parent).unwrap_or(Path::new("."))
    }

    fn write(&self, tenants: &[Tenant]) -> Result<(), TenantError> {
        let dir = self.file.parent().unwrap_or(Path::new("."));
        crate::files::private_dir(dir, true).map_err(|why| TenantError::File {
            file: dir.to_path_buf(),
            why,
        })?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| self.error(e))?;
        let text = serde_json::to_vec_pretty(tenants).map_err(|e| self.error(e))?;
        tmp.write_all(&text)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| self.error(e))?;
        tmp.persist(&self.file).map_err(|e| self.error(e.error))?;
        Ok(())
    }

    fn error(&self, why: impl std::fmt::Display) -> TenantError {
        TenantError::File {
            file: self.file.clone(),
            why: why.to_string(),
        }
    }
}

/// The tenant a bearer token belongs to.
pub fn find_by_token<'t>(tenants: &'t [Tenant], token: &str) -> Option<&'t Tenant> {
    let hash = token_hash(token);
    tenants.iter().find(|t| t.token_sha256 == hash)
}

/// Checks that `name` can name a tenant (and its directory).
pub fn check_name(name: &str) -> Result<(), TenantError> {
    let bad = |why: String| TenantError::BadName {
        name: crate::text::clip(name, MAX_TENANT_CHARS),
        why,
    };
    crate::text::check_token(name, MAX_TENANT_CHARS).map_err(bad)?;
    if name.starts_with('.') || name.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(bad("must be lowercase".into()));
    }
    Ok(())
}

fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// `hh_` and 48 hex digits from the kernel's random source.
fn new_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(format!("hh_{}", hex(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_shown_once_and_kept_only_as_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let tenants = Tenants::new(dir.path());
        let (acme, token) = tenants.add("acme", Quotas::default()).unwrap();
        let (_, other) = tenants.add("globex", Quotas::default()).unwrap();
        assert!(token.starts_with("hh_") && token.len() == 51 && token != other);
        let kept = std::fs::read_to_string(dir.path().join("server/tenants.json")).unwrap();
        assert!(!kept.contains(&token) && kept.contains(&acme.token_sha256));
        let all = tenants.list().unwrap();
        assert_eq!(find_by_token(&all, &token).map(|t| t.name.as_str()), Some("acme"));
        assert_eq!(find_by_token(&all, "hh_guess"), None);
        assert!(matches!(
            tenants.add("acme", Quotas::default()),
            Err(TenantError::Exists(_))
        ));
    }

    #[test]
    fn names_that_could_lead_out_or_collide_are_refused() {
        let long = "a".repeat(100);
        for bad in ["", "..", ".hidden", "a/b", "Acme", "a b", &long] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        check_name("acme-2").unwrap();
    }

    #[test]
    fn quotas_change_and_a_removed_tenant_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let tenants = Tenants::new(dir.path());
        tenants.add("acme", Quotas::default()).unwrap();
        let changed = tenants.set_quotas("acme", |q| q.max_clusters = 1).unwrap();
        assert_eq!(changed.quotas.max_clusters, 1);
        assert_eq!(tenants.list().unwrap()[0].quotas.max_clusters, 1);
        tenants.remove("acme").unwrap();
        assert!(tenants.list().unwrap().is_empty());
        assert!(matches!(tenants.remove("acme"), Err(TenantError::Unknown(_))));
        // Its state left on disk keeps the name from a new tenant.
        std::fs::create_dir_all(dir.path().join("tenants/acme")).unwrap();
        assert!(matches!(
            tenants.add("acme", Quotas::default()),
            Err(TenantError::Leftover(_))
        ));
    }
}
