//! The local provider's IP pools: one `192.168.0.0/16` per network, lowest
//! free address first, allocated and released inside store transactions.

use super::db::{DbError, IPS};
use redb::{ReadableTable, WriteTransaction};
use std::net::Ipv4Addr;

/// First and last host address handed out (`.1` is the gateway).
const FIRST: u32 = u32::from_be_bytes([192, 168, 0, 2]);
const LAST: u32 = u32::from_be_bytes([192, 168, 255, 254]);

/// Allocates `n` free addresses of `vxnet` to `owners` (`<cluster>/<node>`).
pub fn allocate_ips(txn: &WriteTransaction, vxnet: &str, owners: &[String]) -> Result<Vec<String>, DbError> {
    let mut table = txn.open_table(IPS)?;
    let prefix = format!("{vxnet}/");
    let mut used = std::collections::BTreeSet::new();
    for row in table.range::<&str>(prefix.as_str()..)? {
        let (key, _) = row?;
        let Some(ip) = key.value().strip_prefix(&prefix).map(String::from) else {
            break;
        };
        if let Ok(addr) = ip.parse::<Ipv4Addr>() {
            used.insert(u32::from(addr));
        }
    }
    let mut free = (FIRST..=LAST).filter(|a| !used.contains(a) && a & 0xff != 0xff && a & 0xff != 0);
    let mut out = Vec::with_capacity(owners.len());
    for owner in owners {
        let addr = free
            .next()
            .ok_or_else(|| DbError::Conflict(format!("network {vxnet} has no free address left")))?;
        let ip = Ipv4Addr::from(addr).to_string();
        table.insert(format!("{prefix}{ip}").as_str(), owner.as_str())?;
        out.push(ip);
    }
    Ok(out)
}

/// Returns addresses of `vxnet` to the pool, each only if `owner` still holds
/// it: releasing twice (a resumed delete) must not free another node's address.
pub fn release_ips(txn: &WriteTransaction, vxnet: &str, owned: &[(String, String)]) -> Result<(), DbError> {
    let mut table = txn.open_table(IPS)?;
    for (ip, owner) in owned {
        let key = format!("{vxnet}/{ip}");
        let held = table.get(key.as_str())?.is_some_and(|v| v.value() == owner);
        if held {
            table.remove(key.as_str())?;
        }
    }
    Ok(())
}

/// A locally administered MAC derived from the address.
pub fn mac_of(ip: &str) -> String {
    let octets = ip.parse::<Ipv4Addr>().map(|a| a.octets()).unwrap_or_default();
    format!("52:54:00:{:02x}:{:02x}:{:02x}", octets[1], octets[2], octets[3])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Db;

    #[tokio::test]
    async fn addresses_are_unique_per_network_and_reused_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let owners = |n: usize| (0..n).map(|i| format!("cl/n{i}")).collect::<Vec<_>>();
        let a = db
            .write(move |txn| allocate_ips(txn, "net-a", &owners(3)))
            .await
            .unwrap();
        assert_eq!(a, ["192.168.0.2", "192.168.0.3", "192.168.0.4"]);
        let b = db
            .write(move |txn| allocate_ips(txn, "net-b", &owners(1)))
            .await
            .unwrap();
        assert_eq!(b, ["192.168.0.2"], "another network, another pool");
        let released = vec![(a[1].clone(), "cl/n1".to_string())];
        let again = released.clone();
        db.write(move |txn| release_ips(txn, "net-a", &released)).await.unwrap();
        let c = db
            .write(move |txn| allocate_ips(txn, "net-a", &["other/n0".to_string()]))
            .await
            .unwrap();
        assert_eq!(c, ["192.168.0.3"], "the freed address is reused");
        // A second release by the old owner leaves the new owner's address alone.
        db.write(move |txn| release_ips(txn, "net-a", &again)).await.unwrap();
        let d = db
            .write(move |txn| allocate_ips(txn, "net-a", &owners(1)))
            .await
            .unwrap();
        assert_eq!(d, ["192.168.0.5"]);
        assert_eq!(mac_of("192.168.1.7"), "52:54:00:a8:01:07");
    }
}
