//! The local provider's IP pools: one `192.168.0.0/16` per network, lowest
//! free address first. Addresses follow the record, inside its store
//! transactions: a node without one gets one, a node that leaves the record
//! or is marked deleted gives its own back.

use super::StoreError;
use super::backend::{Table, Write};
use crate::cluster::Cluster;
use std::collections::{BTreeSet, HashSet};
use std::net::Ipv4Addr;

/// First and last host address handed out (`.1` is the gateway).
const FIRST: u32 = u32::from_be_bytes([192, 168, 0, 2]);
const LAST: u32 = u32::from_be_bytes([192, 168, 255, 254]);

/// Gives every node of `cluster` without an address a free one of its network.
pub(crate) fn allocate_missing(w: &mut (impl Write + ?Sized), cluster: &mut Cluster) -> Result<(), StoreError> {
    let vxnet = cluster.spec.vxnet.clone();
    let wanting: Vec<usize> = (0..cluster.nodes.len())
        .filter(|&i| cluster.nodes[i].ip.is_empty())
        .collect();
    if wanting.is_empty() {
        return Ok(());
    }
    let prefix = format!("{vxnet}/");
    let used: BTreeSet<u32> = w
        .scan(Table::Ips, &prefix)?
        .iter()
        .filter_map(|(key, _)| key[prefix.len()..].parse::<Ipv4Addr>().ok())
        .map(u32::from)
        .collect();
    let mut free = (FIRST..=LAST).filter(|a| !used.contains(a) && a & 0xff != 0xff && a & 0xff != 0);
    for i in wanting {
        let addr = free
            .next()
            .ok_or_else(|| StoreError::PoolExhausted { vxnet: vxnet.clone() })?;
        let ip = Ipv4Addr::from(addr).to_string();
        w.put(
            Table::Ips,
            &format!("{prefix}{ip}"),
            &cluster.ip_owner(&cluster.nodes[i]),
        )?;
        let node = &mut cluster.nodes[i];
        node.mac = mac_of(&ip);
        node.ip = ip;
    }
    Ok(())
}

/// Returns to the pool the addresses of the nodes of `before` that `after`
/// no longer has, or has marked deleted; each only if the node still holds
/// it (a resumed step must not free an address another node got since).
pub(crate) fn release_departed(
    w: &mut (impl Write + ?Sized),
    before: &Cluster,
    after: &Cluster,
) -> Result<(), StoreError> {
    let staying: HashSet<&str> = after
        .nodes
        .iter()
        .filter(|n| !n.deleted)
        .map(|n| n.node_id.as_str())
        .collect();
    let departed = before
        .nodes
        .iter()
        .filter(|n| !n.deleted && !n.ip.is_empty() && !staying.contains(n.node_id.as_str()));
    for node in departed {
        let key = format!("{}/{}", before.spec.vxnet, node.ip);
        if w.get(Table::Ips, &key)?
            .is_some_and(|owner| owner == before.ip_owner(node))
        {
            w.remove(Table::Ips, &key)?;
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

    #[test]
    fn macs_follow_addresses() {
        assert_eq!(mac_of("192.168.1.7"), "52:54:00:a8:01:07");
    }
}
