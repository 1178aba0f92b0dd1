//! Network actions: a cluster moved to another network, and reserved IPs
//! set on a cluster and its peer at once. The store gives and takes the
//! addresses with the record (`store/ips.rs`).

use super::EngineError;
use super::record::change;
use super::step::{StepEnd, StepRun};
use crate::cluster::{clear_reserved_ips, set_reserved_ip, tree_changes};
use crate::metadata::{cluster_root, path};
use crate::store::StoreError;
use std::collections::BTreeMap;

/// The cluster moves to `vxnet`: each live node takes its pinned address or
/// a free one, the reserved IPs free ones. Done again (the cluster already
/// there), only pins that differ change. A pool that refuses refuses the
/// step (the operation ends aborted, the cluster as it was).
pub(super) async fn move_network(
    run: &StepRun<'_>,
    vxnet: &str,
    ips: &BTreeMap<String, String>,
) -> Result<StepEnd, EngineError> {
    let (vxnet, ips) = (vxnet.to_string(), ips.clone());
    let moved = change(run, move |c| {
        let moving = c.spec.vxnet != vxnet;
        c.spec.vxnet = vxnet.clone();
        if moving {
            clear_reserved_ips(&mut c.spec);
        }
        for node in c.nodes.iter_mut().filter(|n| !n.deleted) {
            match ips.get(&node.node_id) {
                Some(ip) => node.ip = ip.clone(),
                None if moving => node.ip.clear(),
                None => {}
            }
        }
        Ok(())
    })
    .await;
    // The pool refused (a pinned address taken since the request was
    // checked, a full network): nothing moved, the cluster is as it was.
    match moved {
        Err(EngineError::Store(e @ (StoreError::IpTaken { .. } | StoreError::PoolExhausted { .. }))) => {
            Ok(StepEnd::Refused(format!("{e}; nothing moved")))
        }
        other => other,
    }
}

/// The cluster's reserved IPs take `mine`, its peer's `theirs`, in one
/// store transaction (addresses may swap); then both trees' `/cluster`
/// subtrees take them in one metadata revision.
pub(super) async fn set_reserved_ips(
    run: &StepRun<'_>,
    mine: &BTreeMap<String, String>,
    theirs: &BTreeMap<String, String>,
) -> Result<StepEnd, EngineError> {
    let Some(peer) = run.op.request.peer_id() else {
        return Ok(StepEnd::Failed("the operation names no other cluster".into()));
    };
    let (mine, theirs) = (mine.clone(), theirs.clone());
    let clusters = run
        .engine
        .store
        .update_clusters(
            vec![run.cluster.id.clone(), peer.to_string()],
            Box::new(move |clusters| {
                for (cluster, ips) in clusters.iter_mut().zip([&mine, &theirs]) {
                    for (name, ip) in ips {
                        set_reserved_ip(&mut cluster.spec, name, ip);
                    }
                }
                Ok(())
            }),
        )
        .await?;
    let mut writes = Vec::new();
    for cluster in &clusters {
        let current = run
            .engine
            .tree
            .snapshot(&path::join(&cluster_root(&cluster.id), ["cluster"]))
            .await?;
        writes.extend(tree_changes(cluster, &current, &["cluster"]));
    }
    if !writes.is_empty() {
        run.engine.tree.apply(&writes).await?;
    }
    Ok(StepEnd::Ok(None))
}
