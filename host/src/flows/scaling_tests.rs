//! The plans and admission of add nodes, delete nodes, resize and update env.

use super::add_nodes::AddNodes;
use super::delete_nodes::DeleteNodes;
use super::resize::Resize;
use super::update_env::UpdateEnv;
use super::*;
use crate::cluster::Node;
use crate::plan::{Action, NodeSet, OnFailure, Reply, ServiceStep, TempEntry};
use crate::request::ResourceChange;
use crate::spec::Spec;
use serde_json::json;
use std::path::Path;

/// Three roles that scale horizontally: `db` (2 nodes, destroy before stop,
/// scale_out with a pre-check), `cache` (1 node, destroy after stop,
/// scale_in with a pre-check), `web` (2 nodes, order 1, no destroy).
fn cluster() -> Cluster {
    cluster_of(json!({"advanced_actions": ["scale_horizontal"], "nodes": [
        {"role": "db", "count": 2, "plugin": "app.wasm", "volume": {"size": 10}, "services": {
            "init": {"post_start_service": true}, "start": {}, "stop": {}, "destroy": {},
            "scale_out": {"pre_check": true}, "scale_in": {}}},
        {"role": "cache", "count": 1, "plugin": "app.wasm", "services": {
            "init": {}, "start": {}, "stop": {}, "destroy": {"post_stop_service": true},
            "scale_in": {"pre_check": true}}},
        {"role": "web", "count": 2, "plugin": "app.wasm", "services": {
            "init": {"order": 1}, "start": {"order": 1}, "stop": {"order": 1}, "scale_out": {"order": 1}}}
    ]}))
}

fn cluster_of(spec: serde_json::Value) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.wasm"), b"").unwrap();
    let spec = Spec::parse(Path::new("spec.json"), &spec.to_string(), dir.path()).unwrap();
    let mut c = Cluster::new(crate::apps::AppRef::default(), spec, "spec.json".into(), "test".into());
    c.status = ClusterStatus::Active;
    c
}

/// A step as `service[roles] policy` (pre-checks marked), or its kind.
fn shape(c: &Cluster, extra: &[Node], action: &Action) -> String {
    let role_of = |id: &str| {
        c.node(id)
            .or_else(|| extra.iter().find(|n| n.node_id == id))
            .map_or("?".to_string(), |n| n.role.clone())
    };
    match action {
        Action::RunService(ServiceStep {
            service,
            nodes,
            on_failure,
            pre_check,
            ..
        }) => {
            let roles = match nodes {
                NodeSet::Ids(ids) => {
                    let mut roles: Vec<String> = ids.iter().map(|id| role_of(id)).collect();
                    roles.dedup();
                    roles.join(",")
                }
                NodeSet::Order { order, skip, .. } => format!("${order}#{skip}"),
            };
            let policy = match on_failure {
                OnFailure::Fail => "",
                OnFailure::Refuse => " refuse",
                OnFailure::Continue => " continue",
                OnFailure::Guard { force: false } => " guard",
                OnFailure::Guard { force: true } => " guard+force",
            };
            let check = if *pre_check { "pre-check " } else { "" };
            format!("{check}{service}[{roles}]{policy}")
        }
        Action::RenderConfig {
            nodes: NodeSet::Ids(ids),
        } => format!("render[{}]", ids.len()),
        Action::ResizeNodes {
            nodes: NodeSet::Ids(ids),
            ..
        } => format!("resize[{}]", ids.len()),
        Action::ResizeNodes {
            nodes: NodeSet::Order { skip, .. },
            ..
        } => format!("resize[$order#{skip}]"),
        other => serde_json::to_value(other).unwrap()["kind"]
            .as_str()
            .unwrap()
            .to_string(),
    }
}

fn shapes(c: &Cluster, plan: &Plan) -> (Vec<String>, Vec<String>) {
    let added = plan
        .steps
        .iter()
        .find_map(|s| match &s.action {
            Action::AddNodes { nodes } => Some(nodes.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let list = |steps: &[crate::plan::Step]| steps.iter().map(|s| shape(c, &added, &s.action)).collect();
    (list(&plan.steps), list(&plan.recovery))
}

/// The nodes a plan adds.
fn added(plan: &Plan) -> Vec<Node> {
    plan.steps
        .iter()
        .find_map(|s| match &s.action {
            Action::AddNodes { nodes } => Some(nodes.clone()),
            _ => None,
        })
        .unwrap()
}

fn ids_of(c: &Cluster, role: &str) -> Vec<String> {
    c.nodes
        .iter()
        .filter(|n| n.role == role)
        .map(|n| n.node_id.clone())
        .collect()
}

fn refusal(flow: &dyn Flow, c: &Cluster) -> String {
    flow.admit(c).unwrap_err().to_string()
}

#[test]
fn add_nodes_pre_checks_then_follows_steps_1_to_8() {
    let c = cluster();
    let flow = AddNodes {
        role: "web".into(),
        count: 2,
    };
    assert_eq!(flow.admit(&c), Ok(ClusterStatus::ScalingOut));
    let plan = flow.plan(&c);
    let (main, recovery) = shapes(&c, &plan);
    assert_eq!(
        main,
        [
            "pre-check scale_out[db] refuse",
            "add-nodes",
            "register-metadata",
            "write-temp",
            "render[5]",
            "render[2]",
            "init[web]",
            "start[web]",
            "scale_out[db,web]",
            "nodes-joined",
            "clear-temp",
            "render[7]",
            "set-status"
        ]
    );
    assert_eq!(
        recovery,
        ["discard-unrecorded", "clear-temp", "render[5]", "set-status"]
    );
    assert_eq!(plan.check(), Ok(()));
    // The pre-check is told what is coming; the new nodes take the next sids.
    let Action::RunService(check) = &plan.steps[0].action else {
        panic!()
    };
    assert_eq!(
        check.params,
        Some(json!({"role": "web", "count": 2}).as_object().unwrap().clone())
    );
    let Action::AddNodes { nodes } = &plan.steps[1].action else {
        panic!()
    };
    let sids: Vec<(u32, u32)> = nodes.iter().map(|n| (n.sid, n.gid)).collect();
    assert_eq!(sids, [(3, 3), (4, 4)]);
    let new: Vec<String> = nodes.iter().map(|n| n.node_id.clone()).collect();
    // scale_out runs on the existing nodes only; /adding-hosts lists the new ones.
    let Action::RunService(scale_out) = &plan.steps[8].action else {
        panic!()
    };
    let NodeSet::Ids(ran) = &scale_out.nodes else { panic!() };
    assert!(ran.iter().all(|id| !new.contains(id)) && ran.len() == 4, "{ran:?}");
    assert!(nodes.iter().all(|n| n.joining), "not joined until step 6 is done");
    assert!(
        matches!(&plan.steps[3].action, Action::WriteTemp { entry: TempEntry::AddingHosts { nodes: NodeSet::Ids(n) } } if *n == new)
    );
    let note = plan.recovery_note.unwrap();
    assert!(note.contains(&new.join(",")) && note.contains("delete-nodes"), "{note}");
    assert!(plan.steps.iter().all(|s| s.seed.starts_with("add")));
}

#[test]
fn add_nodes_reuses_freed_sids_within_the_upper_bound_and_brings_replicas() {
    let mut c = cluster();
    c.nodes.retain(|n| !(n.role == "db" && n.sid == 1));
    let nodes = added(
        &AddNodes {
            role: "db".into(),
            count: 2,
        }
        .plan(&c),
    );
    assert_eq!(nodes.iter().map(|n| n.sid).collect::<Vec<_>>(), [1, 3]);

    c.spec.nodes[0].server_id_upper_bound = Some(3);
    let three = AddNodes {
        role: "db".into(),
        count: 3,
    };
    assert_eq!(
        refusal(&three, &c),
        format!(
            "cannot add nodes to cluster {}: role db has server_id_upper_bound 3: only 2 sid(s) are free for 3 new node(s)",
            c.id
        )
    );

    let r = cluster_of(json!({"advanced_actions": ["scale_horizontal"], "nodes": [
        {"role": "shard", "count": 2, "replica": 2, "plugin": "app.wasm", "services": {"start": {}}}]}));
    let groups: Vec<(String, u32, u32)> = r.nodes.iter().map(|n| (n.role.clone(), n.sid, n.gid)).collect();
    let replica = |sid, gid| ("shard-replica".to_string(), sid, gid);
    assert_eq!(
        groups,
        [
            ("shard".to_string(), 1, 1),
            replica(1, 1),
            replica(2, 1),
            ("shard".to_string(), 2, 2),
            replica(3, 2),
            replica(4, 2)
        ]
    );
    let nodes = added(
        &AddNodes {
            role: "shard".into(),
            count: 1,
        }
        .plan(&r),
    );
    let added: Vec<(String, u32, u32)> = nodes.iter().map(|n| (n.role.clone(), n.sid, n.gid)).collect();
    assert_eq!(added, [("shard".to_string(), 3, 3), replica(5, 3), replica(6, 3)]);
    assert_eq!(
        refusal(
            &AddNodes {
                role: "shard-replica".into(),
                count: 1
            },
            &r
        ),
        format!(
            "cannot add nodes to cluster {}: role shard-replica holds the replicas of role shard, which come and go with their node: name role shard",
            r.id
        )
    );
}

#[test]
fn add_nodes_refuses_bad_input_with_its_reason() {
    let c = cluster();
    let id = &c.id;
    let add = |role: &str, count: u32| AddNodes {
        role: role.into(),
        count,
    };
    let cases = [
        (add("web", 0), "--count must be at least 1".to_string()),
        (
            add("nope", 1),
            "it has no role \"nope\"; its roles are db, cache, web".to_string(),
        ),
        (
            add("web", 1_000_000_000),
            "1000000000 more node(s) would make 1000000005 and a cluster has at most 10000".to_string(),
        ),
        (
            add(&"r".repeat(100_000), 1),
            format!(
                "it has no role \"{}[... 99936 more bytes]\"; its roles are db, cache, web",
                "r".repeat(64)
            ),
        ),
    ];
    for (flow, why) in cases {
        assert_eq!(refusal(&flow, &c), format!("cannot add nodes to cluster {id}: {why}"));
    }
    let mut fixed = c.clone();
    fixed.spec.advanced_actions.clear();
    assert!(refusal(&add("web", 1), &fixed).contains("role web does not scale horizontally"));
    fixed.spec.nodes[2].advanced_actions = vec![crate::spec::AdvancedAction::ScaleHorizontal];
    assert_eq!(add("web", 1).admit(&fixed), Ok(ClusterStatus::ScalingOut));
}

#[test]
fn delete_nodes_takes_each_roles_branch_of_steps_3_to_9() {
    let c = cluster();
    let (db, cache, web) = (ids_of(&c, "db"), ids_of(&c, "cache"), ids_of(&c, "web"));
    let delete = |nodes: Vec<String>, force| DeleteNodes { nodes, force };
    // db: destroy before stop, the guard (steps 7-9).
    let (main, recovery) = shapes(&c, &delete(vec![db[1].clone()], false).plan(&c));
    assert_eq!(
        main,
        [
            "pre-check scale_in[cache] refuse",
            "write-temp",
            "render[5]",
            "destroy[db] guard",
            "scale_in[db,cache]",
            "stop[db] continue",
            "delete-resources",
            "remove-nodes",
            "register-metadata",
            "clear-temp",
            "render[4]",
            "set-status"
        ]
    );
    assert_eq!(recovery, ["clear-temp", "render[5]"]);
    let plan = delete(vec![db[1].clone()], false).plan(&c);
    assert_eq!(plan.reversible, 3, "undone before the guard");
    assert_eq!(plan.no_cancel_from, Some(4), "not cancelled once the guard said yes");
    assert_eq!(
        shapes(&c, &delete(vec![db[1].clone()], true).plan(&c)).0[3],
        "destroy[db] guard+force"
    );
    // web: no destroy (step 4): scale_in, then stop. Its pre-check and scale_in
    // run on the remaining nodes only (db and cache define scale_in).
    let (main, _) = shapes(&c, &delete(vec![web[0].clone()], false).plan(&c));
    assert_eq!(
        main[..6],
        [
            "pre-check scale_in[cache] refuse",
            "write-temp",
            "render[5]",
            "scale_in[db,cache]",
            "stop[web] continue",
            "delete-resources"
        ]
    );
    // Add a second cache node to delete one: destroy after stop (step 6).
    let mut two = c.clone();
    let more = two.new_nodes(two.spec.role("cache").unwrap(), 1);
    two.nodes.extend(more);
    let (main, _) = shapes(&two, &delete(vec![cache[0].clone()], false).plan(&two));
    assert_eq!(
        main[..7],
        [
            "pre-check scale_in[cache] refuse",
            "write-temp",
            "render[6]",
            "scale_in[db,cache]",
            "stop[cache] continue",
            "destroy[cache] continue",
            "delete-resources"
        ]
    );
    let plan = delete(vec![cache[0].clone()], false).plan(&two);
    let Action::RunService(check) = &plan.steps[0].action else {
        panic!()
    };
    assert_eq!(
        check.params,
        Some(json!({"nodes": [cache[0]]}).as_object().unwrap().clone())
    );
    assert!(plan.steps.iter().all(|s| s.seed.starts_with("delete-nodes")));
}

#[test]
fn delete_nodes_refuses_what_it_cannot_delete() {
    let c = cluster();
    let (db, cache) = (ids_of(&c, "db"), ids_of(&c, "cache"));
    let id = &c.id;
    let delete = |nodes: &[&str]| DeleteNodes {
        nodes: nodes.iter().map(|s| s.to_string()).collect(),
        force: true,
    };
    let cases = [
        (delete(&[]), "--nodes names no node".to_string()),
        (delete(&[&db[0], &db[0]]), format!("node {} is named twice", db[0])),
        (
            delete(&["cln-elsewhere"]),
            "it has no node \"cln-elsewhere\"".to_string(),
        ),
        (
            delete(&[&cache[0]]),
            "it would delete every node of role cache (1); a role keeps at least one node (delete the cluster instead)"
                .to_string(),
        ),
        (
            delete(&[&db[0], &db[1]]),
            "it would delete every node of role db (2); a role keeps at least one node (delete the cluster instead)"
                .to_string(),
        ),
        (delete(&[""]), "it has no node \"\"".to_string()),
    ];
    for (flow, why) in cases {
        assert_eq!(
            refusal(&flow, &c),
            format!("cannot delete nodes of cluster {id}: {why}")
        );
    }
    let mut fixed = c.clone();
    fixed.spec.advanced_actions = vec![crate::spec::AdvancedAction::AddNodes];
    assert!(refusal(&delete(&[&db[0]]), &fixed).contains("role db does not scale horizontally"));

    // A replica leaves with its node, never alone.
    let r = cluster_of(json!({"advanced_actions": ["scale_horizontal"], "nodes": [
        {"role": "shard", "count": 2, "replica": 1, "plugin": "app.wasm", "services": {"stop": {}}}]}));
    let (shards, replicas) = (ids_of(&r, "shard"), ids_of(&r, "shard-replica"));
    assert_eq!(
        refusal(&delete(&[&replicas[1]]), &r),
        format!(
            "cannot delete nodes of cluster {}: node {} is a replica (role shard-replica): it leaves with its node; name node {}",
            r.id, replicas[1], shards[1]
        )
    );
    let plan = delete(&[&shards[1]]).plan(&r);
    let Action::DeleteResources {
        nodes: NodeSet::Ids(gone),
    } = &plan
        .steps
        .iter()
        .find(|s| matches!(s.action, Action::DeleteResources { .. }))
        .unwrap()
        .action
    else {
        panic!()
    };
    assert_eq!(*gone, [shards[1].clone(), replicas[1].clone()]);
}

#[test]
fn resize_picks_the_seeds_branch_and_the_policys_order() {
    let c = cluster();
    let resize = |role: &str, change: ResourceChange| Resize {
        role: role.into(),
        change,
    };
    let cpu = ResourceChange {
        cpu: Some(4),
        ..Default::default()
    };
    let volume = ResourceChange {
        volume_size: Some(50),
        ..Default::default()
    };
    // Step 2: only the volume grows, online, every node at once.
    let (main, recovery) = shapes(&c, &resize("db", volume).plan(&c));
    assert_eq!(
        main,
        [
            "write-temp",
            "resize[2]",
            "register-metadata",
            "clear-temp",
            "render[5]",
            "set-status"
        ]
    );
    assert_eq!(recovery, ["register-metadata", "clear-temp", "render[5]"]);
    // A size the nodes already have does not count: still step 2.
    let same_cpu = ResourceChange {
        cpu: Some(1),
        volume_size: Some(50),
        ..Default::default()
    };
    let plan = resize("db", same_cpu).plan(&c);
    assert_eq!(shapes(&c, &plan).0[..2], ["write-temp", "resize[2]"]);
    assert!(matches!(&plan.steps[1].action, Action::ResizeNodes { change, .. } if change.cpu.is_none()));
    assert_eq!(plan.reversible, 1, "stopped before a node is touched, it is undone");
    // Step 4, parallel (the default policy): stop all, resize, start all.
    let (main, _) = shapes(&c, &resize("db", cpu.clone()).plan(&c));
    assert_eq!(main[..4], ["write-temp", "stop[db]", "resize[2]", "start[db]"]);
    // Step 4, sequential: node after node.
    let mut seq = c.clone();
    seq.spec.nodes[0].vertical_scaling_policy = crate::spec::ScalingPolicy::Sequential;
    let (main, _) = shapes(&seq, &resize("db", cpu.clone()).plan(&seq));
    assert_eq!(
        main[..7],
        [
            "write-temp",
            "stop[db]",
            "resize[1]",
            "start[db]",
            "stop[db]",
            "resize[1]",
            "start[db]"
        ]
    );
    // ... in the order get_nodes_order gives for scale_vertical.
    seq.spec.nodes[0].services.insert(
        "get_nodes_order".into(),
        serde_json::from_value(json!({"event": ["scale_vertical"]})).unwrap(),
    );
    let plan = resize("db", cpu.clone()).plan(&seq);
    let (main, _) = shapes(&seq, &plan);
    assert_eq!(
        main[..8],
        [
            "write-temp",
            "get_nodes_order[db]",
            "stop[$order#0]",
            "resize[$order#0]",
            "start[$order#0]",
            "stop[$order#1]",
            "resize[$order#1]",
            "start[$order#1]"
        ]
    );
    let Action::RunService(ask) = &plan.steps[1].action else {
        panic!()
    };
    assert_eq!(
        ask.params,
        Some(json!({"event": "scale_vertical"}).as_object().unwrap().clone())
    );
    assert_eq!(
        ask.reply,
        Reply::NodeOrder {
            of: ids_of(&seq, "db"),
            passed: Vec::new(),
        }
    );
    assert_eq!(plan.steps[1].output.as_deref(), Some("order"));
    assert_eq!(plan.check(), Ok(()));
    // Step 5 (no stop): resize, then start.
    let mut no_stop = c.clone();
    no_stop.spec.nodes[2].services.remove("stop");
    let (main, _) = shapes(&no_stop, &resize("web", cpu).plan(&no_stop));
    assert_eq!(main[..3], ["write-temp", "resize[2]", "start[web]"]);
    let plan = resize("web", volume_or_cpu()).plan(&no_stop);
    assert!(plan.steps.iter().all(|s| s.seed.starts_with("resize")));
}

fn volume_or_cpu() -> ResourceChange {
    ResourceChange {
        cpu: Some(2),
        volume_size: Some(20),
        ..Default::default()
    }
}

#[test]
fn resize_refuses_shrinking_volumes_absurd_sizes_and_no_change() {
    let mut c = cluster();
    c.nodes.iter_mut().for_each(|n| n.resources.volume_size = 10);
    let id = &c.id;
    let resize = |change: ResourceChange| Resize {
        role: "db".into(),
        change,
    };
    let cases = [
        (
            ResourceChange::default(),
            "name what changes: --cpu, --memory, --volume-size or --instance-class".to_string(),
        ),
        (
            ResourceChange {
                volume_size: Some(5),
                ..Default::default()
            },
            format!(
                "--volume-size 5: volumes never shrink, and node {} has 10 GiB",
                ids_of(&c, "db")[0]
            ),
        ),
        (
            ResourceChange {
                cpu: Some(0),
                ..Default::default()
            },
            "--cpu 0: a node has 1 to 1024 cores".to_string(),
        ),
        (
            ResourceChange {
                memory: Some(u64::MAX),
                ..Default::default()
            },
            format!("--memory {}: a node has 1 to 16777216 MiB", u64::MAX),
        ),
        (
            ResourceChange {
                volume_size: Some(1 << 40),
                ..Default::default()
            },
            format!("--volume-size {}: a volume has at most 65536 GiB", 1u64 << 40),
        ),
        (
            ResourceChange {
                volume_size: Some(10),
                cpu: Some(1),
                ..Default::default()
            },
            "nothing changes: every node of the role already has cpu 1, volume 10 GiB".to_string(),
        ),
    ];
    for (change, why) in cases {
        assert_eq!(
            refusal(&resize(change), &c),
            format!("cannot resize cluster {id}: {why}")
        );
    }
    let web_volume = Resize {
        role: "web".into(),
        change: ResourceChange {
            volume_size: Some(5),
            ..Default::default()
        },
    };
    assert_eq!(
        refusal(&web_volume, &c),
        format!("cannot resize cluster {id}: --volume-size: role web has no data volume (its spec names none)")
    );
}

#[test]
fn the_scaling_flows_run_only_on_an_active_cluster() {
    use ClusterStatus::*;
    let mut c = cluster();
    c.spec.env.insert("k".into(), json!("old"));
    let db = ids_of(&c, "db");
    let flows: Vec<Box<dyn Flow>> = vec![
        Box::new(AddNodes {
            role: "db".into(),
            count: 1,
        }),
        Box::new(DeleteNodes {
            nodes: vec![db[0].clone()],
            force: false,
        }),
        Box::new(Resize {
            role: "db".into(),
            change: volume_or_cpu(),
        }),
        Box::new(UpdateEnv {
            env: json!({"k": "v"}).as_object().unwrap().clone(),
            role: None,
        }),
    ];
    let during = [ScalingOut, ScalingIn, Resizing, Updating];
    for (flow, during) in flows.iter().zip(during) {
        assert_eq!(flow.admit(&c), Ok(during));
        for status in [
            Creating, Stopping, Stopped, Starting, Deleting, Deleted, Failed, ScalingOut, ScalingIn, Resizing, Updating,
        ] {
            let mut other = c.clone();
            other.status = status;
            // The env of a stopped cluster may change: it renders when it starts.
            if flow.kind() == OperationKind::UpdateEnv && status == Stopped {
                assert_eq!(flow.admit(&other), Ok(Updating));
                continue;
            }
            let err = flow.admit(&other).unwrap_err().to_string();
            let why = match status {
                Deleted => "it is deleted".to_string(),
                Failed => "its creation failed; delete it".to_string(),
                other => format!("it is {other}"),
            };
            assert!(err.ends_with(&why), "{:?} on a {status} cluster: {err}", flow.kind());
        }
        assert_eq!(flow.plan(&c).check(), Ok(()));
    }
    // A failed update-env can be fixed by another.
    let mut broken = c.clone();
    (broken.status, broken.failed_during) = (Failed, Some(OperationKind::UpdateEnv));
    assert_eq!(flows[3].admit(&broken), Ok(Updating));
    // ... with the very values that failed (a reload may have failed for a while).
    broken.spec.env.insert("k".into(), json!("v"));
    assert_eq!(flows[3].admit(&broken), Ok(Updating));
    let mut fine = broken.clone();
    fine.status = Active;
    assert!(
        flows[3]
            .admit(&fine)
            .unwrap_err()
            .to_string()
            .contains("nothing changes")
    );
    assert!(
        flows[0]
            .admit(&broken)
            .unwrap_err()
            .to_string()
            .ends_with("its last update-env failed; fix the env with update-env, stop it, or delete it")
    );
    // A failed scaling is settled by stopping the cluster.
    let mut failed = c.clone();
    failed.status = Failed;
    failed.failed_during = Some(OperationKind::Resize);
    assert_eq!(stop::Stop.admit(&failed), Ok(Stopping));
    assert_eq!(
        flows[0].admit(&failed).unwrap_err().to_string(),
        format!(
            "cannot add nodes to cluster {}: its last operation (resize) failed or was cancelled half-way; stop it (or delete it) first",
            c.id
        )
    );
}

#[test]
fn update_env_changes_only_declared_changeable_keys() {
    let mut c = cluster();
    c.spec.env = json!({"a": "1", "b": "2", "fixed": "x", "obj": {"x": "1"}})
        .as_object()
        .unwrap()
        .clone();
    c.spec.unchangeable_env = vec!["fixed".into()];
    c.spec.nodes[0].env = json!({"heap": 512, "once": 1}).as_object().unwrap().clone();
    c.spec.nodes[0].unchangeable_env = vec!["once".into()];
    let update = |env: serde_json::Value| UpdateEnv {
        env: env.as_object().unwrap().clone(),
        role: None,
    };
    let of_role = |role: &str, env: serde_json::Value| UpdateEnv {
        env: env.as_object().unwrap().clone(),
        role: Some(role.into()),
    };
    let flow = update(json!({"a": 5, "obj": {"x": "2"}}));
    assert_eq!(flow.admit(&c), Ok(ClusterStatus::Updating));
    let plan = flow.plan(&c);
    let (main, _) = shapes(&c, &plan);
    assert_eq!(main, ["set-env", "register-env", "render[5]", "set-status"]);
    assert!(matches!(
        &plan.steps[3].action,
        Action::SetStatus {
            status: ClusterStatus::Active
        }
    ));
    let role_flow = of_role("db", json!({"heap": 1024}));
    assert_eq!(role_flow.admit(&c), Ok(ClusterStatus::Updating));
    assert!(matches!(&role_flow.plan(&c).steps[0].action, Action::SetEnv { role: Some(r), .. } if r == "db"));
    // On a stopped cluster only the record and the metadata change; it stays stopped.
    let mut stopped = c.clone();
    stopped.status = ClusterStatus::Stopped;
    stopped.nodes.iter_mut().for_each(|n| n.instance_id = None);
    let plan = flow.plan(&stopped);
    assert!(matches!(
        &plan.steps[3].action,
        Action::SetStatus {
            status: ClusterStatus::Stopped
        }
    ));
    let id = &c.id;
    let cases = [
        (json!({}), "name at least one KEY=VALUE"),
        (json!({"a": "1"}), "nothing changes: the env already has these values"),
        (
            json!({"c": "new"}),
            "env.c: the spec declares no such key in the env; its keys are a, b, fixed, obj",
        ),
        (
            json!({"b": null}),
            "env.b: a key the spec declares cannot be removed; give it a value",
        ),
        (
            json!({"fixed": "y"}),
            "env.fixed: set once, at create (the spec lists it in unchangeable_env)",
        ),
        (
            json!({"x/y": 1}),
            "env.x/y: \"x/y\" cannot be a key (no '/', '.', '..', nor empty)",
        ),
        (
            json!({"o": {"a": {"b": "1"}}}),
            "env.o: values are strings, numbers, booleans or objects of those",
        ),
        (
            json!({"a": [1]}),
            "env.a: values are strings, numbers, booleans or objects of those",
        ),
        (
            json!({"obj": 1}),
            "env.obj: the spec has it as an object, so it cannot be a value",
        ),
        (json!({"obj": {}}), "env.obj: an empty object sets nothing"),
    ];
    for (env, why) in cases {
        assert_eq!(
            refusal(&update(env), &c),
            format!("cannot update the env of cluster {id}: {why}")
        );
    }
    let role_cases = [
        (
            of_role("db", json!({"a": "9"})),
            "env.a: the spec declares no such key in role db's env; its keys are heap, once",
        ),
        (
            of_role("db", json!({"once": 2})),
            "env.once: set once, at create (the spec lists it in unchangeable_env)",
        ),
        (
            of_role("cache", json!({"heap": 1})),
            "env.heap: the spec declares no such key in role cache's env; it declares none",
        ),
        (
            of_role("nope", json!({"heap": 1})),
            "it has no role \"nope\"; its roles are db, cache, web",
        ),
    ];
    for (flow, why) in role_cases {
        assert_eq!(
            refusal(&flow, &c),
            format!("cannot update the env of cluster {id}: {why}")
        );
    }
    assert!(refusal(&update(json!({"": 1})), &c).contains("cannot be a key"));
    let many: serde_json::Map<String, serde_json::Value> = (0..300).map(|i| (format!("k{i}"), json!(i))).collect();
    assert!(refusal(&UpdateEnv { env: many, role: None }, &c).ends_with("300 keys in one update; at most 256"));
    let huge = update(json!({"a": "x".repeat(2 << 20)}));
    assert!(refusal(&huge, &c).contains("bytes; at most 1048576"));
}

#[test]
fn replicas_run_their_roles_services_but_backup_only_with_with_replica() {
    let r = cluster_of(json!({"nodes": [
        {"role": "shard", "count": 2, "replica": 1, "plugin": "app.wasm",
         "services": {"start": {}, "backup": {}, "restore": {"with_replica": true}}}]}));
    assert!(r.service("shard-replica", "start").is_some());
    assert!(r.service("shard-replica", "backup").is_none());
    assert!(r.service("shard-replica", "restore").is_some());
    assert_eq!(
        r.plugin_of(r.node(&ids_of(&r, "shard-replica")[0]).unwrap()),
        r.plugin_of(r.node(&ids_of(&r, "shard")[0]).unwrap())
    );
    // nodes_to_execute_on below the role's node count leaves the replicas out.
    let mut limited = r.clone();
    limited.spec.nodes[0]
        .services
        .get_mut("start")
        .unwrap()
        .nodes_to_execute_on = Some(1);
    let started = super::select::nodes_with(&limited, "start", |_| true);
    assert_eq!(started, [ids_of(&r, "shard")[0].clone()]);
    assert_eq!(super::select::nodes_with(&r, "start", |_| true).len(), 4);
}
