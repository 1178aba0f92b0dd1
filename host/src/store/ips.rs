//! The local provider's IP pools: one `192.168.0.0/16` per network, lowest
//! free address first. Addresses follow the record, inside its store
//! transactions: a node or reserved IP without one gets one, a pinned one is
//! claimed (refused when another holds it), and what the record no longer
//! holds (a node gone or deleted, a network left, a deleted cluster's
//! reserved IPs) goes back.

use super::StoreError;
use super::backend::{Table, Write};
use crate::cluster::{Cluster, ClusterStatus, reserved_ips, set_reserved_ip};
use std::collections::{BTreeSet, HashSet};
use std::net::Ipv4Addr;

/// First and last host address handed out (`.1` is the gateway).
const FIRST: u32 = u32::from_be_bytes([192, 168, 0, 2]);
const LAST: u32 = u32::from_be_bytes([192, 168, 255, 254]);

/// The addresses a record holds, as `(pool key, owner)`: each live node's,
/// and each reserved IP's (none once the cluster is deleted).
fn held(cluster: &Cluster) -> HashSet<(String, String)> {
    let vxnet = &cluster.spec.vxnet;
    let nodes = cluster
        .nodes
        .iter()
        .filter(|n| !n.deleted && !n.ip.is_empty())
        .map(|n| (format!("{vxnet}/{}", n.ip), cluster.ip_owner(n)));
    let reserved = reserved_ips(&cluster.spec)
        .into_iter()
        .filter(|(_, ip)| !ip.is_empty() && cluster.status != ClusterStatus::Deleted)
        .map(|(name, ip)| (format!("{vxnet}/{ip}"), cluster.reserved_ip_owner(&name)));
    nodes.chain(reserved).collect()
}

/// Returns to the pool what `before` held and `after` no longer holds (a
/// node gone or marked deleted, an address moved to another network, a
/// deleted cluster's reserved IPs); each only if it is still the holder's
/// (a resumed step must not free an address another got since).
pub(crate) fn release(w: &mut (impl Write + ?Sized), before: &Cluster, after: &Cluster) -> Result<(), StoreError> {
    let kept = held(after);
    for (key, owner) in held(before).difference(&kept) {
        if w.get(Table::Ips, key)?.as_deref() == Some(owner.as_str()) {
            w.remove(Table::Ips, key)?;
        }
    }
    Ok(())
}

/// Claims the addresses `after` holds and `before` did not (one a user
/// pinned, one another record gave back in the same transaction): refused
/// when another holds it.
pub(crate) fn claim(
    w: &mut (impl Write + ?Sized),
    before: Option<&Cluster>,
    after: &Cluster,
) -> Result<(), StoreError> {
    let had = before.map(held).unwrap_or_default();
    let vxnet = &after.spec.vxnet;
    for (key, owner) in held(after).difference(&had) {
        match w.get(Table::Ips, key)? {
            Some(holder) if holder != *owner => {
                return Err(StoreError::IpTaken {
                    vxnet: vxnet.clone(),
                    ip: key[vxnet.len() + 1..].to_string(),
                    holder,
                });
            }
            Some(_) => {}
            None => w.put(Table::Ips, key, owner)?,
        }
    }
    Ok(())
}

/// Gives every live node and reserved IP of `cluster` without an address
/// the lowest free one of its network (and each node the MAC of its address).
pub(crate) fn allocate(w: &mut (impl Write + ?Sized), cluster: &mut Cluster) -> Result<(), StoreError> {
    for node in cluster.nodes.iter_mut().filter(|n| !n.ip.is_empty()) {
        node.mac = mac_of(&node.ip);
    }
    let nodes: Vec<usize> = (0..cluster.nodes.len())
        .filter(|&i| !cluster.nodes[i].deleted && cluster.nodes[i].ip.is_empty())
        .collect();
    let reserved: Vec<String> = reserved_ips(&cluster.spec)
        .into_iter()
        .filter(|(_, ip)| ip.is_empty() && cluster.status != ClusterStatus::Deleted)
        .map(|(name, _)| name)
        .collect();
    if nodes.is_empty() && reserved.is_empty() {
        return Ok(());
    }
    let vxnet = cluster.spec.vxnet.clone();
    let prefix = format!("{vxnet}/");
    let used: BTreeSet<u32> = w
        .scan(Table::Ips, &prefix)?
        .iter()
        .filter_map(|(key, _)| key[prefix.len()..].parse::<Ipv4Addr>().ok())
        .map(u32::from)
        .collect();
    let mut free = (FIRST..=LAST)
        .filter(|a| !used.contains(a) && in_pool(*a))
        .map(|a| Ipv4Addr::from(a).to_string());
    let mut next = || {
        free.next()
            .ok_or_else(|| StoreError::PoolExhausted { vxnet: vxnet.clone() })
    };
    for i in nodes {
        let ip = next()?;
        w.put(
            Table::Ips,
            &format!("{prefix}{ip}"),
            &cluster.ip_owner(&cluster.nodes[i]),
        )?;
        let node = &mut cluster.nodes[i];
        node.mac = mac_of(&ip);
        node.ip = ip;
    }
    for name in reserved {
        let ip = next()?;
        w.put(Table::Ips, &format!("{prefix}{ip}"), &cluster.reserved_ip_owner(&name))?;
        set_reserved_ip(&mut cluster.spec, &name, &ip);
    }
    Ok(())
}

/// Whether an address is one the pool hands out (no `.0` or `.255`, as
/// the pool always kept them out).
fn in_pool(addr: u32) -> bool {
    (FIRST..=LAST).contains(&addr) && addr & 0xff != 0xff && addr & 0xff != 0
}

/// Why `ip` cannot be pinned in a local network, if it cannot.
pub fn check_pinned(ip: &str) -> Result<(), String> {
    let addr: Ipv4Addr = ip
        .parse()
        .map_err(|_| format!("{:?} is not an IPv4 address", crate::text::clip(ip, 64)))?;
    if !in_pool(u32::from(addr)) {
        return Err(format!(
            "{addr} is outside the network's pool: use 192.168.0.2 to 192.168.255.254, not a .0 or .255"
        ));
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

    #[test]
    fn macs_follow_addresses() {
        assert_eq!(mac_of("192.168.1.7"), "52:54:00:a8:01:07");
    }
}
