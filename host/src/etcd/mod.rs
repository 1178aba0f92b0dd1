//! etcd as the store of a deployment that outgrows one machine: where it
//! is (`--store etcd://...`, always parsed, so that a build without the
//! `etcd` feature can say what is missing) and, with the feature, the
//! connection the etcd stores share ([`Etcd`]).

#[cfg(feature = "etcd")]
mod client;
#[cfg(feature = "etcd")]
mod local;

#[cfg(feature = "etcd")]
pub use client::{Etcd, EtcdError};
#[cfg(feature = "etcd")]
pub use local::LocalEtcd;

use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// This machine's name, as claims and operations on a shared store name their host.
pub fn machine_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_default()
}

/// The namespace keys live under when the URL names none.
pub const DEFAULT_NAMESPACE: &str = "/hookhost/";

/// Where an etcd store is: `etcd://host:port[,host:port...][/namespace]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdUrl {
    /// The members' client endpoints, as `http://host:port`.
    pub endpoints: Vec<String>,
    /// The key prefix of this deployment (starts and ends with `/`).
    pub namespace: String,
}

/// Why a `--store` URL was refused.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("bad store URL {url:?}: {reason} (expected etcd://host:port[,host:port...][/namespace])")]
pub struct EtcdUrlError {
    url: String,
    reason: String,
}

impl FromStr for EtcdUrl {
    type Err = EtcdUrlError;

    fn from_str(url: &str) -> Result<EtcdUrl, EtcdUrlError> {
        let bad = |reason: &str| EtcdUrlError {
            url: url.chars().take(200).collect(),
            reason: reason.to_string(),
        };
        if url.len() > 2000 {
            return Err(bad(&format!("it is {} characters long; the limit is 2000", url.len())));
        }
        let rest = url
            .strip_prefix("etcd://")
            .ok_or_else(|| bad("it does not start with etcd://"))?;
        let (hosts, namespace) = match rest.split_once('/') {
            Some((hosts, ns)) => (hosts, ns.trim_end_matches('/')),
            None => (rest, ""),
        };
        let mut endpoints: Vec<String> = hosts
            .split(',')
            .map(|member| {
                let (host, port) = member
                    .rsplit_once(':')
                    .ok_or_else(|| bad(&format!("member {member:?} has no :port")))?;
                let port_ok = port.parse::<u16>().is_ok_and(|p| p > 0);
                // A name, an IPv4 address, or an IPv6 one in brackets.
                let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
                    Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
                    None => !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || "-.".contains(c)),
                };
                if !port_ok || !host_ok {
                    return Err(bad(&format!("member {member:?} is not host:port")));
                }
                Ok(format!("http://{member}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        endpoints.dedup();
        if endpoints.len() > 16 {
            return Err(bad(&format!("it names {} members; the limit is 16", endpoints.len())));
        }
        let namespace = if namespace.is_empty() {
            DEFAULT_NAMESPACE.to_string()
        } else {
            if namespace.len() > 200 {
                return Err(bad(&format!(
                    "the namespace is {} characters long; the limit is 200",
                    namespace.len()
                )));
            }
            let segments_ok = namespace.split('/').all(|s| {
                !s.is_empty()
                    && s != "."
                    && s != ".."
                    && s.chars().all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
            });
            if !segments_ok {
                return Err(bad(&format!(
                    "namespace {namespace:?} is not a/b/c of names of letters, digits, '-', '.', '_' and '~'"
                )));
            }
            // The store's own keys start with `_`: no namespace may hold a name like them.
            if namespace.split('/').any(|s| s.starts_with('_')) {
                return Err(bad(&format!(
                    "namespace {namespace:?} has a name starting with _ (kept for the store's own keys)"
                )));
            }
            format!("/{namespace}/")
        };
        Ok(EtcdUrl { endpoints, namespace })
    }
}

impl fmt::Display for EtcdUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let members: Vec<&str> = self.endpoints.iter().map(|e| e.trim_start_matches("http://")).collect();
        write!(
            f,
            "etcd://{}{}",
            members.join(","),
            self.namespace.trim_end_matches('/')
        )
    }
}

impl EtcdUrl {
    /// The same store with keys under `namespace/<name>/` (a tenant's: `tenants/<tenant>`).
    pub fn nested(&self, name: &str) -> EtcdUrl {
        EtcdUrl {
            endpoints: self.endpoints.clone(),
            namespace: format!("{}{name}/", self.namespace),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_name_members_and_a_namespace() {
        let url: EtcdUrl = "etcd://127.0.0.1:2379,h2:2379/prod/eu".parse().unwrap();
        assert_eq!(url.endpoints, ["http://127.0.0.1:2379", "http://h2:2379"]);
        assert_eq!(url.namespace, "/prod/eu/");
        assert_eq!(url.to_string(), "etcd://127.0.0.1:2379,h2:2379/prod/eu");
        let v6: EtcdUrl = "etcd://[::1]:2379,[::1]:2379".parse().unwrap();
        assert_eq!(v6.endpoints, ["http://[::1]:2379"], "a member named twice is one");
        let long = format!("etcd://h:1/{}", "a".repeat(100_000));
        let err = long.parse::<EtcdUrl>().unwrap_err().to_string();
        assert!(
            err.contains("the limit is 2000") && err.len() < 500,
            "{}",
            &err[..200.min(err.len())]
        );
        let plain: EtcdUrl = "etcd://localhost:2379".parse().unwrap();
        assert_eq!(plain.namespace, DEFAULT_NAMESPACE);
        assert_eq!(plain.nested("t1").namespace, "/hookhost/t1/");
        for bad in [
            "http://h:1",
            "etcd://",
            "etcd://h",
            "etcd://h:0",
            "etcd://h:99999",
            "etcd://h:1,",
            "etcd://h:1/a/../b",
            "etcd://h:1/a//b",
            "etcd://h:1/a b",
            "etcd://h h:1",
            "etcd://h:1/a/_tree",
            "etcd://h:1/ns?x=1",
            "etcd://h:1/ns#frag",
            "etcd://h:1/ns%2f1",
            "etcd://[::1]:127.0.0.1:5",
            "etcd://[nothex]:5",
        ] {
            let err = bad.parse::<EtcdUrl>().unwrap_err().to_string();
            assert!(
                err.contains("bad store URL") && err.contains("expected etcd://"),
                "{bad}: {err}"
            );
        }
    }
}
