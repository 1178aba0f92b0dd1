//! The one test suite every [`OperationStore`] passes (memory and redb now,
//! etcd later), run on a fresh store. It returns the operation it finished,
//! for a durable store to check after reopening.

use super::*;
use crate::cluster::{ClusterStatus, now};
use crate::plan::Plan;
use crate::request::OperationRequest;
use crate::spec::Spec;

fn spec() -> Spec {
    serde_json::from_value(serde_json::json!({
        "vxnet": "net-a",
        "nodes": [{"role": "db", "count": 3, "plugin": "app.wasm"}]
    }))
    .unwrap()
}

fn operation(cluster: &Cluster, id: &str) -> Operation {
    Operation {
        id: id.to_string(),
        request: OperationRequest::StopCluster {
            cluster: cluster.id.clone(),
        },
        cluster_id: cluster.id.clone(),
        status: OperationStatus::Running,
        plan: Plan::default(),
        prior_status: Some(ClusterStatus::Active),
        error: None,
        cancel_requested: false,
        recovery: None,
        created_at: now(),
        ended_at: None,
        host: None,
    }
}

fn ips(cluster: &Cluster) -> Vec<&str> {
    cluster.nodes.iter().map(|n| n.ip.as_str()).collect()
}

fn step(index: usize, outcome: Option<StepOutcome>) -> StepRecord {
    StepRecord {
        index,
        started_at: now(),
        ended_at: outcome.map(|_| now()),
        outcome,
        message: None,
        output: outcome.map(|_| serde_json::json!(["cln-b", "cln-a"])),
    }
}

fn event(op: &str, seq: u64) -> Event {
    Event {
        op: op.to_string(),
        seq,
        step: 0,
        service: "init".into(),
        role: "db".into(),
        order: 0,
        node_id: "cln-a".into(),
        instance_id: "i-a".into(),
        version: "1.0".into(),
        attempt: 1,
        started_at: now(),
        ended_at: None,
        outcome: InvocationOutcome::Running,
        code: None,
        message: None,
        reply: None,
        log: Vec::new(),
        changed: Vec::new(),
    }
}

/// Begins, changes, journals and finishes operations as the trait promises.
pub(crate) async fn operation_store(store: &dyn OperationStore) -> Operation {
    // Beginning stores the cluster with an address for each node and takes the cluster.
    let cluster = Cluster::new(crate::apps::AppRef::default(), spec(), "spec.json".into(), "one".into());
    let begun = store.begin(cluster.clone(), operation(&cluster, "op-1")).await.unwrap();
    assert_eq!(ips(&begun), ["192.168.0.2", "192.168.0.3", "192.168.0.4"]);
    assert_eq!(begun.nodes[0].mac, "52:54:00:a8:00:02");
    assert_eq!(begun.operation.as_deref(), Some("op-1"));
    assert_eq!(ips(&store.cluster(&cluster.id).unwrap().unwrap()), ips(&begun));
    assert_eq!(
        store.operation("op-1").unwrap().unwrap().status,
        OperationStatus::Running
    );

    // A second operation waits for the first: refused, and not stored.
    let err = store.begin(begun.clone(), operation(&begun, "op-2")).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Busy { operation, .. } if operation == "op-1"),
        "{err}"
    );
    assert!(err.to_string().contains("`hookhost op resume op-1`"), "{err}");
    assert!(store.operation("op-2").unwrap().is_none());

    // Another cluster of the network gets other addresses.
    let other = Cluster::new(crate::apps::AppRef::default(), spec(), "spec.json".into(), "two".into());
    let other = store.begin(other.clone(), operation(&other, "op-3")).await.unwrap();
    assert_eq!(ips(&other), ["192.168.0.5", "192.168.0.6", "192.168.0.7"]);

    // A change adds a node: it gets the next free address. A refusing change changes nothing.
    let mut extra = begun.nodes[0].clone();
    extra.node_id = "cln-extra".into();
    extra.ip = String::new();
    let grown = store
        .update_cluster(
            &begun.id,
            Box::new(move |c| {
                c.nodes.push(extra.clone());
                Ok(())
            }),
        )
        .await
        .unwrap();
    assert_eq!(grown.nodes.len(), 4);
    assert_eq!(grown.nodes[3].ip, "192.168.0.8");
    let refused = store
        .update_cluster(
            &begun.id,
            Box::new(|c| {
                c.nodes.clear();
                Err(StoreError::PoolExhausted { vxnet: "net-a".into() })
            }),
        )
        .await;
    assert!(matches!(refused, Err(StoreError::PoolExhausted { .. })));
    assert_eq!(store.cluster(&begun.id).unwrap().unwrap().nodes.len(), 4);
    let missing = store.update_cluster("cl-none", Box::new(|_| Ok(()))).await;
    assert!(matches!(missing, Err(StoreError::NotFound { kind: "cluster", .. })));

    // A node that leaves the record gives its address back, and it is reused.
    let leave = |id: &'static str| -> ClusterChange {
        Box::new(move |c| {
            c.nodes.retain(|n| n.node_id != id);
            Ok(())
        })
    };
    store.update_cluster(&begun.id, leave("cln-extra")).await.unwrap();
    let third = Cluster::new(
        crate::apps::AppRef::default(),
        spec(),
        "spec.json".into(),
        "three".into(),
    );
    let third = store.begin(third.clone(), operation(&third, "op-4")).await.unwrap();
    assert_eq!(ips(&third), ["192.168.0.8", "192.168.0.9", "192.168.0.10"]);
    // So does a node marked deleted, once: marking it again frees nothing of
    // the address's next holder.
    let first = begun.nodes[0].node_id.clone();
    let delete_first = move || -> ClusterChange {
        let first = first.clone();
        Box::new(move |c| {
            c.nodes
                .iter_mut()
                .filter(|n| n.node_id == first)
                .for_each(|n| n.deleted = true);
            Ok(())
        })
    };
    store.update_cluster(&begun.id, delete_first()).await.unwrap();
    let mut fourth = Cluster::new(
        crate::apps::AppRef::default(),
        spec(),
        "spec.json".into(),
        "four".into(),
    );
    fourth.nodes.truncate(1);
    let fourth = store.begin(fourth.clone(), operation(&fourth, "op-5")).await.unwrap();
    assert_eq!(ips(&fourth), ["192.168.0.2"], "the deleted node's address");
    store.update_cluster(&begun.id, delete_first()).await.unwrap();
    let mut fifth = Cluster::new(
        crate::apps::AppRef::default(),
        spec(),
        "spec.json".into(),
        "five".into(),
    );
    fifth.nodes.truncate(1);
    let fifth = store.begin(fifth.clone(), operation(&fifth, "op-7")).await.unwrap();
    assert_eq!(
        ips(&fifth),
        ["192.168.0.11"],
        "192.168.0.2 is still the fourth cluster's"
    );

    // A move to another network: a pinned address is claimed, the old one goes back.
    let pin = |vxnet: &'static str, ip: &'static str| -> ClusterChange {
        Box::new(move |c| {
            c.spec.vxnet = vxnet.into();
            c.nodes[0].ip = ip.into();
            Ok(())
        })
    };
    let moved = store
        .update_cluster(&fourth.id, pin("net-b", "192.168.5.5"))
        .await
        .unwrap();
    assert_eq!(ips(&moved), ["192.168.5.5"]);
    assert_eq!(moved.nodes[0].mac, mac_of("192.168.5.5"));
    assert_eq!(store.ip_holder("net-a", "192.168.0.2").unwrap(), None);
    let holder = store.ip_holder("net-b", "192.168.5.5").unwrap();
    assert_eq!(holder, Some(moved.ip_owner(&moved.nodes[0])));
    // Pinning another's address is refused, and changes nothing.
    let taken = store.update_cluster(&fifth.id, pin("net-b", "192.168.5.5")).await;
    assert!(matches!(taken, Err(StoreError::IpTaken { holder: h, .. }) if Some(h.clone()) == holder));
    let kept = store.cluster(&fifth.id).unwrap().unwrap();
    assert_eq!((kept.spec.vxnet.as_str(), ips(&kept)), ("net-a", ips(&fifth)));

    // Reserved IPs get addresses of their own; two clusters swap theirs in one write.
    let with_vip = |name: &str| {
        let mut spec = spec();
        spec.reserved_ips = serde_json::json!({"vip": {"value": "10.0.0.1"}})
            .as_object()
            .unwrap()
            .clone();
        spec.vxnet = "net-c".into();
        let mut c = Cluster::new(crate::apps::AppRef::default(), spec, "spec.json".into(), name.into());
        c.nodes.truncate(1);
        c
    };
    fn vip(c: &Cluster) -> String {
        crate::cluster::reserved_ips(&c.spec)["vip"].clone()
    }
    let x = with_vip("x");
    let x = store.begin(x.clone(), operation(&x, "op-x")).await.unwrap();
    assert_eq!((ips(&x), vip(&x)), (vec!["192.168.0.2"], "192.168.0.3".to_string()));
    let y = with_vip("y");
    // An exchange's operation holds its peer too, which takes its status.
    let mut exchange = operation(&y, "op-y");
    exchange.request = OperationRequest::ExchangeIps {
        cluster: y.id.clone(),
        with: x.id.clone(),
        with_last: Some("op-x".into()),
    };
    let busy = store.begin(y.clone(), exchange.clone()).await;
    assert!(
        matches!(busy, Err(StoreError::Busy { cluster, .. }) if cluster == x.id),
        "x's op-x runs"
    );
    let mut done = operation(&x, "op-x");
    done.status = OperationStatus::Succeeded;
    store.finish(done, Vec::new(), Box::new(|_| Ok(()))).await.unwrap();
    let mut y = y;
    y.status = ClusterStatus::ExchangingIps;
    // A peer checked before an operation it has since had is refused.
    let mut stale = exchange.clone();
    stale.request = OperationRequest::ExchangeIps {
        cluster: y.id.clone(),
        with: x.id.clone(),
        with_last: None,
    };
    let changed = store.begin(y.clone(), stale).await;
    assert!(matches!(changed, Err(StoreError::Changed { operation, .. }) if operation == "op-x"));
    let y = store.begin(y, exchange.clone()).await.unwrap();
    let held = store.cluster(&x.id).unwrap().unwrap();
    assert_eq!(
        (held.status, held.operation.as_deref()),
        (ClusterStatus::ExchangingIps, Some("op-y"))
    );
    assert_eq!(vip(&y), "192.168.0.5");
    let swapped = store
        .update_clusters(
            vec![x.id.clone(), y.id.clone()],
            Box::new(|cs| {
                let (a, b) = (vip(&cs[0]), vip(&cs[1]));
                crate::cluster::set_reserved_ip(&mut cs[0].spec, "vip", &b);
                crate::cluster::set_reserved_ip(&mut cs[1].spec, "vip", &a);
                Ok(())
            }),
        )
        .await
        .unwrap();
    assert_eq!(
        (vip(&swapped[0]), vip(&swapped[1])),
        ("192.168.0.5".into(), "192.168.0.3".into())
    );
    let holder = |ip| store.ip_holder("net-c", ip).unwrap().unwrap();
    assert_eq!(holder("192.168.0.5"), x.reserved_ip_owner("vip"));
    assert_eq!(holder("192.168.0.3"), y.reserved_ip_owner("vip"));
    // Finishing settles both; a deleted cluster gives its reserved IP back.
    exchange.status = OperationStatus::Succeeded;
    store
        .finish(
            exchange,
            Vec::new(),
            Box::new(|c| {
                c.status = ClusterStatus::Deleted;
                Ok(())
            }),
        )
        .await
        .unwrap();
    assert_eq!(store.cluster(&x.id).unwrap().unwrap().status, ClusterStatus::Deleted);
    assert_eq!(store.ip_holder("net-c", "192.168.0.5").unwrap(), None);
    assert_eq!(store.ip_holder("net-c", "192.168.0.3").unwrap(), None);

    // The journal: steps by index, events by sequence, sequences never reused.
    store.put_step("op-1", step(10, None)).await.unwrap();
    store.put_step("op-1", step(2, Some(StepOutcome::Ok))).await.unwrap();
    let steps = store.steps("op-1").unwrap();
    assert_eq!(steps.iter().map(|s| s.index).collect::<Vec<_>>(), [2, 10]);
    assert_eq!(steps[0].output, Some(serde_json::json!(["cln-b", "cln-a"])));
    assert!(store.steps("op-3").unwrap().is_empty(), "another operation's journal");
    assert_eq!(store.next_seqs("op-1", 3).await.unwrap(), 1);
    assert_eq!(store.next_seqs("op-1", 2).await.unwrap(), 4);
    assert_eq!(store.next_seqs("op-3", 1).await.unwrap(), 1);
    store
        .put_events(vec![event("op-1", 5), event("op-1", 1)])
        .await
        .unwrap();
    let mut ended = event("op-1", 5);
    ended.outcome = InvocationOutcome::Ok;
    store.put_events(vec![ended]).await.unwrap();
    let events = store.events("op-1").unwrap();
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 5]);
    assert_eq!(
        events[1].outcome,
        InvocationOutcome::Ok,
        "an event's end replaces its start"
    );

    // A refusing operation change changes nothing.
    let refused = store
        .update_operation(
            "op-1",
            Box::new(|op| {
                op.cancel_requested = true;
                Err(StoreError::Ended {
                    operation: op.id.clone(),
                    status: OperationStatus::Failed,
                })
            }),
        )
        .await;
    assert!(matches!(refused, Err(StoreError::Ended { .. })));
    assert!(!store.operation("op-1").unwrap().unwrap().cancel_requested);
    assert!(!store.cancel_requested("op-1").unwrap());
    store
        .update_operation(
            "op-1",
            Box::new(|op| {
                op.cancel_requested = true;
                Ok(())
            }),
        )
        .await
        .unwrap();
    assert!(store.cancel_requested("op-1").unwrap(), "read without the plan");
    assert!(!store.cancel_requested("op-none").unwrap());
    store
        .update_operation(
            "op-1",
            Box::new(|op| {
                op.cancel_requested = false;
                Ok(())
            }),
        )
        .await
        .unwrap();

    // Finishing writes the last step, the operation and the cluster at once;
    // the cluster then takes another operation.
    let mut done = store.operation("op-1").unwrap().unwrap();
    done.status = OperationStatus::Succeeded;
    done.ended_at = Some(now());
    let finished = store
        .finish(
            done,
            vec![step(10, Some(StepOutcome::Ok))],
            Box::new(|c| {
                c.status = ClusterStatus::Stopped;
                Ok(())
            }),
        )
        .await
        .unwrap();
    assert_eq!(finished.status, OperationStatus::Succeeded);
    assert_eq!(
        store.operation("op-1").unwrap().unwrap().status,
        OperationStatus::Succeeded
    );
    assert_eq!(
        store.cluster(&begun.id).unwrap().unwrap().status,
        ClusterStatus::Stopped
    );
    assert_eq!(store.steps("op-1").unwrap()[1].outcome, Some(StepOutcome::Ok));
    let again = store.cluster(&begun.id).unwrap().unwrap();
    store.begin(again.clone(), operation(&again, "op-6")).await.unwrap();

    // Claims: one holder at a time, released when dropped.
    assert_eq!(store.claimant("op-6"), None);
    let claim = store.claim("op-6").unwrap();
    assert_eq!(store.claimant("op-6"), Some(std::process::id()));
    assert!(matches!(store.claim("op-6"), Err(StoreError::Claimed { .. })));
    drop(claim);
    assert_eq!(store.claimant("op-6"), None);

    // Every cluster and operation, operations oldest first.
    assert_eq!(store.clusters().unwrap().len(), 7);
    let ids: Vec<String> = store.operations().unwrap().into_iter().map(|o| o.id).collect();
    assert_eq!(ids, ["op-1", "op-3", "op-4", "op-5", "op-7", "op-y", "op-x", "op-6"]);
    finished
}
