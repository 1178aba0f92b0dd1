//! The executor and every action's handler, with a fake hook runner on
//! in-memory stores: no wasm, no CLI.

use super::testing::{Harness, Script, Seen, THREE_ROLES};
use crate::cluster::{ClusterStatus, Node};
use crate::plan::{Action, NodeSet, OnFailure, Plan, Reply, ServiceStep, TempEntry, TempTree};
use crate::provider::LocalProvider;
use crate::request::ResourceChange;
use crate::store::{InvocationOutcome, OperationStatus, StepOutcome};
use serde_json::json;

fn ids(v: &[String]) -> NodeSet {
    NodeSet::Ids(v.to_vec())
}

fn run_service(service: &str, nodes: NodeSet) -> Action {
    Action::RunService(ServiceStep::new(service, nodes, OnFailure::Fail))
}

fn order(skip: usize, take: Option<usize>) -> NodeSet {
    NodeSet::Order {
        order: "order".into(),
        skip,
        take,
    }
}

fn nodes_of(seen: &[Seen]) -> Vec<String> {
    seen.iter().map(|s| s.node.clone()).collect()
}

fn overlap(a: &Seen, b: &Seen) -> bool {
    a.started < b.ended.unwrap() && b.started < a.ended.unwrap()
}

#[tokio::test]
async fn roles_run_by_ascending_order_equal_orders_at_once() {
    let h = Harness::new(THREE_ROLES);
    for role in ["db", "cache", "web"] {
        h.runner.script(role, "start", Script::sleeps(80));
    }
    let cluster = h.create().await;
    let mut plan = Plan::default();
    plan.push(run_service("start", ids(&cluster.node_ids())), "test");
    let op = h.begin(&cluster, plan).await;
    assert_eq!(h.run(&op).await.status, OperationStatus::Succeeded);
    let starts = h.runner.calls("start");
    assert_eq!(starts.len(), 5);
    let of = |role: &str| starts.iter().filter(|s| s.role == role).cloned().collect::<Vec<_>>();
    let (db, cache, web) = (of("db"), of("cache"), of("web"));
    // db and cache (order 0) overlap, and all nodes of a role run at once.
    assert!(overlap(&db[0], &cache[0]) && overlap(&db[0], &db[1]));
    // web (order 1) starts after every order-0 hook ended.
    let last_zero = db.iter().chain(&cache).map(|s| s.ended.unwrap()).max().unwrap();
    assert!(web.iter().all(|s| s.started >= last_zero));
    assert!(overlap(&web[0], &web[1]));
}

#[tokio::test]
async fn the_create_flow_runs_init_around_start_as_each_role_asks() {
    let h = Harness::new(THREE_ROLES);
    let op = h
        .engine
        .submit(crate::request::OperationRequest::CreateCluster {
            spec: Some(h.dir.path().join("spec.json")),
            app: None,
            name: None,
        })
        .await
        .unwrap();
    assert_eq!(h.run(&op).await.status, OperationStatus::Succeeded);
    let services: Vec<(String, String)> = h
        .runner
        .seen()
        .into_iter()
        .filter(|s| s.service != "render" && s.service != "reload")
        .map(|s| (s.service, s.role))
        .collect();
    let phases: Vec<String> = services
        .chunk_by(|a, b| a.0 == b.0)
        .map(|run| {
            let mut roles: Vec<&str> = run.iter().map(|(_, r)| r.as_str()).collect();
            roles.sort();
            roles.dedup();
            format!("{}: {}", run[0].0, roles.join("+"))
        })
        .collect();
    assert_eq!(phases, ["init: cache+web", "start: cache+db+web", "init: db"]);
    // Every init saw the whole cluster under /hosts (create 2 came first).
    let init = h.runner.calls("init");
    assert!(init.iter().all(|s| {
        s.view["hosts"]
            .as_object()
            .unwrap()
            .values()
            .map(|r| r.as_object().unwrap().len())
            .sum::<usize>()
            == 5
    }));
}

#[tokio::test]
async fn a_refusing_pre_check_needs_no_recovery_and_the_note_follows_a_recovery() {
    let h = Harness::new(THREE_ROLES);
    let cluster = h.create().await;
    let db = h.role(&cluster, "db");
    h.runner.script(&db[0], "stop", Script::fails(5));
    let mut plan = Plan::default();
    plan.push(
        Action::RunService(ServiceStep::new("stop", ids(&db), OnFailure::Refuse).pre_check()),
        "0: pre-check",
    );
    plan.push(
        Action::ClearTemp {
            tree: TempTree::AddingHosts,
        },
        "1: never runs",
    );
    plan.recover(
        Action::SetStatus {
            status: ClusterStatus::Failed,
        },
        "recovery: would mark the cluster failed",
    );
    plan.recovery_note = Some("the new nodes stay".into());
    let op = h.begin(&cluster, plan.clone()).await;
    let ended = h.run(&op).await;
    assert_eq!(ended.status, OperationStatus::Aborted);
    assert!(ended.recovery.is_none(), "a pre-check changes nothing: no recovery");
    assert!(!ended.error.unwrap().contains("the new nodes stay"));
    assert_eq!(h.engine.cluster(&cluster.id).unwrap().status, ClusterStatus::Active);

    // A pre-check that cannot even run (its component is gone) fails the
    // operation, but nothing changed: the cluster keeps its status.
    let plugin = cluster.plugin_of(cluster.node(&db[0]).unwrap()).unwrap().to_path_buf();
    let kept = std::fs::read(&plugin).unwrap();
    std::fs::remove_file(&plugin).unwrap();
    let op = h.begin(&cluster, plan.clone()).await;
    let ended = h.run(&op).await;
    assert_eq!(ended.status, OperationStatus::Failed);
    assert!(ended.recovery.is_none());
    assert_eq!(h.engine.cluster(&cluster.id).unwrap().status, ClusterStatus::Active);
    std::fs::write(&plugin, kept).unwrap();

    // A failure past the pre-check runs the recovery, and the note is told.
    h.runner.script(&db[0], "stop", Script::replies(""));
    h.runner.script(&db[1], "init", Script::fails(7));
    plan.steps[1] = crate::plan::Step::new(run_service("init", ids(&db)), "1: init");
    let op = h.begin(&cluster, plan).await;
    let ended = h.run(&op).await;
    assert_eq!(ended.status, OperationStatus::Failed);
    assert!(ended.recovery.is_some());
    assert!(ended.error.unwrap().ends_with("; the new nodes stay"));
}

#[tokio::test]
async fn a_failed_main_part_takes_the_recovery_branch_and_journals_it() {
    let h = Harness::new(THREE_ROLES);
    let cluster = h.create().await;
    let db = h.role(&cluster, "db");
    h.runner.script(&db[1], "init", Script::fails(7));
    let mut plan = Plan::default();
    plan.push(
        Action::WriteTemp {
            entry: TempEntry::AddingHosts { nodes: ids(&db) },
        },
        "add 2: list the new nodes",
    );
    plan.push(run_service("init", ids(&db)), "add 5: init");
    plan.push(run_service("start", ids(&db)), "add 5: start");
    plan.recover(
        Action::ClearTemp {
            tree: TempTree::AddingHosts,
        },
        "recovery: clear /adding-hosts",
    );
    plan.recover(
        Action::SetStatus {
            status: ClusterStatus::Active,
        },
        "recovery: the cluster is active",
    );
    let op = h.begin(&cluster, plan).await;
    let ended = h.run(&op).await;
    assert_eq!(ended.status, OperationStatus::Failed);
    let error = ended.error.unwrap();
    assert!(
        error.starts_with("step 2 (run init on 2 nodes by role order) failed: init on node"),
        "{error}"
    );
    assert!(error.contains("error 7: init scripted to fail"), "{error}");
    let branch = ended.recovery.expect("the branch is journaled");
    assert_eq!(branch.after, OperationStatus::Failed);
    let journal = h.engine.store().steps(&op.id).unwrap();
    let outcomes: Vec<(usize, Option<StepOutcome>)> = journal.iter().map(|s| (s.index, s.outcome)).collect();
    assert_eq!(
        outcomes,
        [
            (0, Some(StepOutcome::Ok)),
            (1, Some(StepOutcome::Failed)),
            (3, Some(StepOutcome::Ok)),
            (4, Some(StepOutcome::Ok))
        ],
        "step 3 never ran; both recovery steps did"
    );
    assert!(h.runner.calls("start").is_empty());
    assert_eq!(
        h.tree_at(&cluster, "/adding-hosts").await,
        None,
        "the recovery cleared it"
    );
    assert_eq!(
        h.engine.cluster(&cluster.id).unwrap().status,
        ClusterStatus::Active,
        "the recovery set the status"
    );
}

#[tokio::test]
async fn a_refusal_recovers_too_and_a_failing_recovery_fails_the_operation() {
    let h = Harness::new(THREE_ROLES);
    let cluster = h.create().await;
    let db = h.role(&cluster, "db");
    h.runner.script(&db[0], "scale_in", Script::fails(3));
    let mut plan = Plan::default();
    plan.push(
        Action::WriteTemp {
            entry: TempEntry::DeletingHosts { nodes: ids(&db[..1]) },
        },
        "delete 1",
    );
    plan.push(
        Action::RunService(ServiceStep::new("scale_in", ids(&db), OnFailure::Fail).pre_check()),
        "delete 0",
    );
    plan.recover(
        Action::ClearTemp {
            tree: TempTree::DeletingHosts,
        },
        "delete 8: clear /deleting-hosts",
    );
    let op = h.begin(&cluster, plan).await;
    let ended = h.run(&op).await;
    assert_eq!(ended.status, OperationStatus::Aborted);
    assert!(
        ended
            .error
            .as_deref()
            .unwrap()
            .starts_with("the scale_in pre-check refused: scale_in on node"),
        "{:?}",
        ended.error
    );
    assert_eq!(ended.recovery.unwrap().after, OperationStatus::Aborted);
    assert_eq!(h.tree_at(&cluster, "/deleting-hosts").await, None);
    assert_eq!(
        h.engine.cluster(&cluster.id).unwrap().status,
        ClusterStatus::Active,
        "a refusal leaves the cluster as it was"
    );

    // A recovery that fails: the operation fails and says both.
    h.runner.script("db", "stop", Script::fails(9));
    let mut plan = Plan::default();
    plan.push(run_service("scale_in", ids(&db)), "main");
    plan.recover(run_service("stop", ids(&db)), "recovery");
    let op = h.begin(&cluster, plan).await;
    let ended = h.run(&op).await;
    assert_eq!(ended.status, OperationStatus::Failed);
    let error = ended.error.unwrap();
    assert!(
        error.contains("; then the recovery failed: recovery step 1 (run stop"),
        "{error}"
    );
    let cluster = h.engine.cluster(&cluster.id).unwrap();
    assert_eq!(cluster.status, ClusterStatus::Failed);
}

#[tokio::test]
async fn a_succeeding_main_part_skips_the_recovery_and_a_cancel_before_any_step_too() {
    let h = Harness::new(THREE_ROLES);
    let cluster = h.create().await;
    let db = h.role(&cluster, "db");
    let plan = || {
        let mut plan = Plan::default();
        plan.push(run_service("start", ids(&db)), "main");
        plan.recover(run_service("stop", ids(&db)), "recovery");
        plan
    };
    let op = h.begin(&cluster, plan()).await;
    let ended = h.run(&op).await;
    assert_eq!((ended.status, ended.recovery), (OperationStatus::Succeeded, None));
    assert!(h.runner.calls("stop").is_empty());

    // Cancelled before its first step (nobody runs it): nothing to recover, the cluster as it was.
    h.runner.clear();
    let op = h.begin(&cluster, plan()).await;
    let cancelled = h.engine.cancel(&op.id).await.unwrap();
    assert_eq!(cancelled.status, OperationStatus::Cancelled);
    assert_eq!(cancelled.error.as_deref(), Some("cancelled before step 1 of 1"));
    assert!(h.runner.seen().is_empty(), "no hook ran");
    assert_eq!(h.engine.cluster(&cluster.id).unwrap().status, ClusterStatus::Active);
}

#[tokio::test]
async fn a_node_order_produced_at_run_time_is_journaled_and_survives_a_crash() {
    let h = Harness::new(THREE_ROLES);
    let cluster = h.create().await;
    let (db, web) = (h.role(&cluster, "db"), h.role(&cluster, "web"));
    let all: Vec<String> = db.iter().chain(&web).cloned().collect();
    // db[0] decides the order: web[1], db[1], then the ones it leaves out.
    h.runner.script(
        &db[0],
        "get_nodes_order",
        Script::replies(format!("{},{}", web[1], db[1])),
    );
    // The third node in the order hangs: the host "crashes" there.
    h.runner.script(&db[0], "stop", Script::hangs());
    let mut plan = Plan::default();
    plan.push_output(
        Action::RunService(
            ServiceStep::new("get_nodes_order", ids(&db[..1]), OnFailure::Fail)
                .params(json!({"event": "upgrade"}).as_object().unwrap().clone())
                .reply(Reply::NodeOrder {
                    of: all.clone(),
                    passed: Vec::new(),
                }),
        ),
        "ask the order",
        "order",
    );
    for i in 0..all.len() {
        plan.push(
            run_service("stop", order(i, Some(1))),
            format!("node {} of the order", i + 1),
        );
    }
    let op = h.begin(&cluster, plan).await;
    h.crash_when(&op, |seen| seen.iter().any(|s| s.service == "stop" && s.node == db[0]))
        .await;
    h.runner.script(&db[0], "stop", Script::default());
    let ended = h.run(&op).await;
    assert_eq!(ended.status, OperationStatus::Succeeded, "{:?}", ended.error);
    let asked = h.runner.calls("get_nodes_order");
    assert_eq!(
        asked.len(),
        1,
        "the resumed run read the journaled order instead of asking again"
    );
    assert_eq!(asked[0].params, json!({"event": "upgrade"}));
    let expected = [web[1].clone(), db[1].clone(), db[0].clone(), web[0].clone()];
    let stops = h.runner.calls("stop");
    assert_eq!(
        nodes_of(&stops),
        [&expected[..3], &expected[2..]].concat(),
        "one at a time in the replied order; the cut-off stop ran again, the finished ones did not"
    );
    assert_eq!(stops[3].attempt, 2);
    let journal = h.engine.store().steps(&op.id).unwrap();
    assert_eq!(journal[0].output, Some(json!(expected)));
    let events = h.engine.store().events(&op.id).unwrap();
    let cut: Vec<_> = events
        .iter()
        .filter(|e| e.outcome == InvocationOutcome::Interrupted)
        .collect();
    assert_eq!(cut.len(), 1);
    assert_eq!(cut[0].node_id, db[0]);
}

#[tokio::test]
async fn a_bad_node_order_fails_its_step() {
    let h = Harness::new(THREE_ROLES);
    let cluster = h.create().await;
    let db = h.role(&cluster, "db");
    h.runner
        .script(&db[0], "get_nodes_order", Script::replies("cln-nobody"));
    let mut plan = Plan::default();
    plan.push_output(
        Action::RunService(
            ServiceStep::new("get_nodes_order", ids(&db[..1]), OnFailure::Fail).reply(Reply::NodeOrder {
                of: db.clone(),
                passed: Vec::new(),
            }),
        ),
        "ask",
        "order",
    );
    plan.push(run_service("stop", order(0, None)), "stop in order");
    let op = h.begin(&cluster, plan).await;
    let ended = h.run(&op).await;
    assert_eq!(ended.status, OperationStatus::Failed);
    assert!(
        ended
            .error
            .unwrap()
            .ends_with("replied \"cln-nobody\", which is not one of the 2 nodes being ordered"),
    );
    assert!(h.runner.calls("stop").is_empty());
}

#[tokio::test]
async fn a_listed_order_runs_at_most_n_at_once() {
    let h = Harness::new(THREE_ROLES);
    for role in ["db", "cache", "web"] {
        h.runner.script(role, "stop", Script::sleeps(60));
    }
    let cluster = h.create().await;
    let all = cluster.node_ids();
    let mut plan = Plan::default();
    plan.push(
        Action::RunService(ServiceStep::new("stop", ids(&all), OnFailure::Fail).listed(2)),
        "two at a time",
    );
    let op = h.begin(&cluster, plan).await;
    assert_eq!(h.run(&op).await.status, OperationStatus::Succeeded);
    let stops = h.runner.calls("stop");
    assert_eq!(stops.len(), 5);
    for s in &stops {
        let at_once = stops.iter().filter(|o| overlap(s, o)).count();
        assert!(at_once <= 2, "{at_once} ran at once");
    }
    // Batches in the listed order: the first two end before the next two start.
    let batch = |i: usize| {
        stops
            .iter()
            .filter(|s| all[2 * i..(2 * i + 2).min(5)].contains(&s.node))
            .collect::<Vec<_>>()
    };
    let first_end = batch(0).iter().map(|s| s.ended.unwrap()).max().unwrap();
    assert!(batch(1).iter().all(|s| s.started >= first_end));
}

#[tokio::test]
async fn a_resume_reruns_only_the_hooks_a_crash_cut_off() {
    let h = Harness::new(THREE_ROLES);
    let cluster = h.create().await;
    let (db, web) = (h.role(&cluster, "db"), h.role(&cluster, "web"));
    h.runner.script(&web[1], "start", Script::hangs());
    let mut plan = Plan::default();
    plan.push(run_service("stop", ids(&cluster.node_ids())), "stop all");
    plan.push(run_service("start", ids(&cluster.node_ids())), "start all");
    let op = h.begin(&cluster, plan).await;
    // Crash when web[1]'s start hangs: every order-0 start and web[0]'s have run.
    h.crash_when(&op, |seen| {
        seen.iter().any(|s| s.service == "start" && s.node == web[1])
    })
    .await;
    h.runner.script(&web[1], "start", Script::default());
    h.runner.clear();
    let ended = h.run(&op).await;
    assert_eq!(ended.status, OperationStatus::Succeeded);
    assert!(h.runner.calls("stop").is_empty(), "the ended step is not run again");
    let starts = h.runner.calls("start");
    // web[0] may or may not have finished before the crash; db never runs again.
    assert!(starts.iter().all(|s| s.role == "web"), "{:?}", nodes_of(&starts));
    assert!(starts.iter().any(|s| s.node == web[1] && s.attempt == 2));
    assert!(!nodes_of(&starts).contains(&db[0]));
}

#[tokio::test]
async fn service_params_are_the_specs_defaults_with_the_plans_over_them() {
    let h = Harness::new(THREE_ROLES);
    let cluster = h.create().await;
    let db = h.role(&cluster, "db");
    let mut plan = Plan::default();
    plan.push(run_service("backup", ids(&db[..1])), "the spec's");
    plan.push(
        Action::RunService(
            ServiceStep::new("backup", ids(&db[1..]), OnFailure::Fail)
                .params(json!({"snapshot_id": "s-1"}).as_object().unwrap().clone()),
        ),
        "the plan's",
    );
    let op = h.begin(&cluster, plan).await;
    assert_eq!(h.run(&op).await.status, OperationStatus::Succeeded);
    let params: Vec<_> = h.runner.calls("backup").into_iter().map(|s| s.params).collect();
    assert_eq!(
        params,
        [json!({"from": "spec"}), json!({"from": "spec", "snapshot_id": "s-1"})]
    );
}

#[tokio::test]
async fn a_pre_check_is_asked_as_one_and_its_refusal_changes_nothing() {
    let h = Harness::new(THREE_ROLES);
    let cluster = h.create().await;
    let db = h.role(&cluster, "db");
    let mut plan = Plan::default();
    plan.push(
        Action::RunService(ServiceStep::new("scale_in", ids(&db), OnFailure::Fail).pre_check()),
        "delete 0: pre-check",
    );
    plan.push(run_service("scale_in", ids(&db)), "delete 4: scale_in");
    let op = h.begin(&cluster, plan.clone()).await;
    assert_eq!(h.run(&op).await.status, OperationStatus::Succeeded);
    // (The runtime makes a pre-check's directories read-only: tests/hooks.rs.)
    let calls = h.runner.calls("scale_in");
    assert_eq!(
        calls.iter().map(|s| s.pre_check).collect::<Vec<_>>(),
        [true, true, false, false]
    );

    h.runner.clear();
    h.runner.script(&db[1], "scale_in", Script::fails(42));
    let op = h.begin(&cluster, plan).await;
    let ended = h.run(&op).await;
    assert_eq!(ended.status, OperationStatus::Aborted);
    assert!(ended.error.unwrap().contains("error 42: scale_in scripted to fail"));
    assert!(
        h.runner.calls("scale_in").iter().all(|s| s.pre_check),
        "nothing ran after the refusal"
    );
    assert_eq!(h.engine.cluster(&cluster.id).unwrap().status, ClusterStatus::Active);
}

#[tokio::test]
async fn temporary_subtrees_are_written_seen_by_hooks_and_cleared() {
    let h = Harness::new(THREE_ROLES);
    let cluster = h.create().await;
    let db = h.role(&cluster, "db");
    let mut plan = Plan::default();
    plan.push(
        Action::WriteTemp {
            entry: TempEntry::AddingHosts { nodes: ids(&db) },
        },
        "adding",
    );
    plan.push(
        Action::WriteTemp {
            entry: TempEntry::VerticalScalingRoles {
                roles: vec!["db".into(), "web".into()],
            },
        },
        "roles",
    );
    plan.push(
        Action::WriteTemp {
            entry: TempEntry::UpgradeAudit {
                from_app_version: "v1".into(),
                to_app_version: "v2".into(),
            },
        },
        "audit",
    );
    // Registering again leaves the temporary subtrees alone.
    plan.push(Action::RegisterMetadata, "register");
    plan.push(run_service("start", ids(&db[..1])), "a hook looks");
    plan.push(
        Action::ClearTemp {
            tree: TempTree::AddingHosts,
        },
        "clear",
    );
    let op = h.begin(&cluster, plan).await;
    assert_eq!(h.run(&op).await.status, OperationStatus::Succeeded);
    let view = &h.runner.calls("start")[0].view;
    let adding = view["adding-hosts"]["db"].as_object().unwrap();
    assert_eq!(adding.len(), 2);
    let entry = adding.values().next().unwrap();
    for key in ["ip", "node_id", "sid", "instance_id", "cpu", "memory"] {
        assert!(entry.get(key).is_some(), "{key} missing from {entry}");
    }
    assert_eq!(view["vertical-scaling-roles"], "db,web");
    assert_eq!(
        view["upgrade-audit"],
        json!({"from_app_version": "v1", "to_app_version": "v2"})
    );
    assert_eq!(h.tree_at(&cluster, "/adding-hosts").await, None);
    assert_eq!(
        h.tree_at(&cluster, "/vertical-scaling-roles").await,
        Some(json!("db,web"))
    );
}

#[tokio::test]
async fn nodes_join_and_leave_the_record_with_their_addresses() {
    let h = Harness::new(THREE_ROLES);
    let cluster = h.create().await;
    let mut new = cluster.nodes[0].clone();
    new.node_id = "cln-new".into();
    new.instance_id = Some("i-new".into());
    new.sid = 3;
    new.ip = String::new();
    let mut plan = Plan::default();
    plan.push(
        Action::AddNodes {
            nodes: vec![new.clone()],
        },
        "add 1",
    );
    // Twice, as a resumed step would: the node joins once.
    plan.push(
        Action::AddNodes {
            nodes: vec![new.clone()],
        },
        "again",
    );
    plan.push(
        Action::CreateResources {
            nodes: ids(&["cln-new".into()]),
        },
        "add 1",
    );
    plan.push(Action::RegisterMetadata, "add 2");
    let op = h.begin(&cluster, plan).await;
    assert_eq!(h.run(&op).await.status, OperationStatus::Succeeded);
    let grown = h.engine.cluster(&cluster.id).unwrap();
    assert_eq!(grown.nodes.len(), 6);
    let added: &Node = grown.node("cln-new").unwrap();
    assert!(added.ip.starts_with("192.168.") && !cluster.nodes.iter().any(|n| n.ip == added.ip));
    let iid = added.instance_id.clone().unwrap();
    assert_eq!(
        h.tree_at(&grown, &format!("/hosts/db/{iid}/ip")).await,
        Some(json!(added.ip))
    );

    let mut plan = Plan::default();
    plan.push(
        Action::DeleteResources {
            nodes: ids(&["cln-new".into()]),
        },
        "delete 10",
    );
    plan.push(
        Action::RemoveNodes {
            nodes: ids(&["cln-new".into()]),
        },
        "delete 11",
    );
    plan.push(Action::RegisterMetadata, "delete 11");
    let op = h.begin(&grown, plan).await;
    assert_eq!(h.run(&op).await.status, OperationStatus::Succeeded);
    let shrunk = h.engine.cluster(&cluster.id).unwrap();
    assert_eq!(shrunk.nodes.len(), 5);
    assert_eq!(h.tree_at(&shrunk, &format!("/hosts/db/{iid}")).await, None);
    // Its address went back to the pool: the next node gets it.
    let mut next = new.clone();
    next.node_id = "cln-next".into();
    next.instance_id = Some("i-next".into());
    let mut plan = Plan::default();
    plan.push(Action::AddNodes { nodes: vec![next] }, "add 1");
    let op = h.begin(&shrunk, plan).await;
    h.run(&op).await;
    assert_eq!(
        h.engine.cluster(&cluster.id).unwrap().node("cln-next").unwrap().ip,
        added.ip
    );
}

#[tokio::test]
async fn resources_and_versions_change_in_the_record_and_in_what_runs() {
    let h = Harness::new(THREE_ROLES);
    let cluster = h.create().await;
    let db = h.role(&cluster, "db");
    // Version v2 of the app runs another component on role db.
    let mut spec = cluster.spec.clone();
    for role in spec.nodes.iter_mut().filter(|r| r.role == "db") {
        role.plugin = h.dir.path().join("v2.wasm");
    }
    h.engine
        .catalog()
        .add(crate::apps::AppVersion {
            app: cluster.app.app.clone(),
            version: "v2".into(),
            digest: "v2".into(),
            spec,
            payload: None,
            source: h.dir.path().join("spec.json"),
            added_at: crate::cluster::now(),
        })
        .unwrap();
    let mut plan = Plan::default();
    plan.push(
        Action::ResizeNodes {
            nodes: ids(&db[..1]),
            change: ResourceChange {
                cpu: Some(8),
                memory: Some(16384),
                ..ResourceChange::default()
            },
        },
        "vertical 6",
    );
    plan.push(
        Action::SwitchVersion {
            nodes: ids(&db),
            version: Some("v2".into()),
        },
        "upgrade 2",
    );
    plan.push(Action::RegisterMetadata, "register");
    plan.push(run_service("start", ids(&cluster.node_ids())), "start");
    let op = h.begin(&cluster, plan).await;
    assert_eq!(h.run(&op).await.status, OperationStatus::Succeeded);
    let after = h.engine.cluster(&cluster.id).unwrap();
    let resized = after.node(&db[0]).unwrap();
    assert_eq!((resized.resources.cpu, resized.resources.memory), (8, 16384));
    assert_eq!(
        after.node(&db[1]).unwrap().resources.cpu,
        cluster.node(&db[1]).unwrap().resources.cpu
    );
    let iid = resized.instance_id.clone().unwrap();
    assert_eq!(
        h.tree_at(&after, &format!("/hosts/db/{iid}/cpu")).await,
        Some(json!("8"))
    );
    for call in h.runner.calls("start") {
        // The others run their role's component, kept as an image at creation.
        let v2 = call.component.ends_with("v2.wasm");
        assert_eq!(v2, call.role == "db", "{} ran {:?}", call.node, call.component);
    }
    assert_eq!(after.node(&db[1]).unwrap().version.as_deref(), Some("v2"));

    // Back to the role's version.
    let mut plan = Plan::default();
    plan.push(
        Action::SwitchVersion {
            nodes: ids(&db),
            version: None,
        },
        "downgrade",
    );
    let op = h.begin(&after, plan).await;
    h.run(&op).await;
    assert!(
        h.engine
            .cluster(&cluster.id)
            .unwrap()
            .nodes
            .iter()
            .all(|n| n.version.is_none())
    );
}

#[tokio::test]
async fn a_guard_that_cannot_run_refuses_and_stop_failures_are_tolerated() {
    let h = Harness::new(THREE_ROLES);
    let cluster = h.create().await;
    let db = h.role(&cluster, "db");
    h.runner.script(&db[0], "stop", Script::fails(5));
    let mut plan = Plan::default();
    plan.push(
        Action::RunService(ServiceStep::new("stop", ids(&db), OnFailure::Continue)),
        "tolerated",
    );
    plan.push(
        Action::StopInstances { nodes: ids(&db[1..]) },
        "db[1] loses its instance",
    );
    plan.push(
        Action::RunService(ServiceStep::new("destroy", ids(&db), OnFailure::Guard { force: false })),
        "the guard",
    );
    let op = h.begin(&cluster, plan).await;
    let ended = h.run(&op).await;
    let journal = h.engine.store().steps(&op.id).unwrap();
    assert_eq!(journal[0].outcome, Some(StepOutcome::Tolerated));
    assert!(journal[0].message.as_deref().unwrap().contains("error 5"));
    assert_eq!(ended.status, OperationStatus::Aborted, "{:?}", ended.error);
    let error = ended.error.unwrap();
    assert!(error.contains("the node has no running instance"), "{error}");
    assert_eq!(h.runner.calls("destroy").len(), 1, "only db[0] could run it");
}

#[tokio::test]
async fn a_resumed_render_step_still_counts_the_failures_before_the_crash() {
    let h = Harness::new(THREE_ROLES);
    let cluster = h.create().await;
    let db = h.role(&cluster, "db");
    // db[0]'s rendered file is gone: its render writes it again, and its reload fails.
    let file = |node: &str| {
        h.dir
            .path()
            .join("state/nodes")
            .join(&cluster.id)
            .join(node)
            .join("instance/etc/fake/hosts")
    };
    std::fs::remove_file(file(&db[0])).unwrap();
    h.runner.script(&db[0], "reload", Script::fails(4));
    h.runner.script(&db[1], "render", Script::hangs());
    let mut plan = Plan::default();
    plan.push(Action::RenderConfig { nodes: ids(&db) }, "render");
    let op = h.begin(&cluster, plan).await;
    // The crash comes once db[0]'s failed reload is journaled and db[1]'s render hangs.
    h.crash_at(&op, |h| {
        let events = h.engine.store().events(&op.id).unwrap();
        events
            .iter()
            .any(|e| e.service == "reload" && e.outcome == InvocationOutcome::Failed)
            && events.iter().any(|e| e.service == "render" && e.node_id == db[1])
    })
    .await;
    h.runner.script(&db[1], "render", Script::default());
    let ended = h.run(&op).await;
    assert_eq!(ended.status, OperationStatus::Failed, "{:?}", ended.error);
    assert!(
        ended
            .error
            .unwrap()
            .contains("config rendering or reload failed on 1 node(s)"),
        "the reload that failed before the crash still counts"
    );
    let reloads: Vec<String> = h.runner.calls("reload").into_iter().map(|s| s.node).collect();
    // db[1]'s render was cut off: it may have written its file, so it reloads.
    assert_eq!(
        reloads,
        [db[0].clone(), db[1].clone()],
        "db[0]'s reload did not run again"
    );
}

#[tokio::test]
async fn a_deletion_that_failed_half_way_is_retried_without_its_deleted_nodes() {
    let spec = THREE_ROLES.replace(
        r#""destroy": {}, "reload""#,
        r#""destroy": {"allow_force": false}, "reload""#,
    );
    let h = Harness::new(&spec);
    let cluster = h.create().await;
    let db = h.role(&cluster, "db");
    // A deletion got as far as db[0]'s resources, then failed.
    h.runner.script("web", "stop", Script::fails(1));
    let mut plan = Plan::default();
    plan.push(Action::DeleteResources { nodes: ids(&db[..1]) }, "delete 8");
    plan.push(run_service("stop", ids(&h.role(&cluster, "web"))), "fails");
    let op = h.begin(&cluster, plan).await;
    assert_eq!(h.run(&op).await.status, OperationStatus::Failed);
    let failed = h.engine.cluster(&cluster.id).unwrap();
    assert_eq!(failed.status, ClusterStatus::Failed);
    let gone = failed.node(&db[0]).unwrap();
    assert!(gone.deleted && gone.instance_id.is_none(), "{gone:?}");
    // Deleting again asks the guards of what is left, and only them.
    h.runner.script("web", "stop", Script::default());
    h.runner.clear();
    let op = h
        .engine
        .submit(crate::request::OperationRequest::DeleteCluster {
            cluster: cluster.id.clone(),
            force: false,
        })
        .await
        .unwrap();
    let ended = h.run(&op).await;
    assert_eq!(ended.status, OperationStatus::Succeeded, "{:?}", ended.error);
    let guards: Vec<Seen> = h
        .runner
        .calls("destroy")
        .into_iter()
        .filter(|s| s.role == "db")
        .collect();
    assert_eq!(nodes_of(&guards), [db[1].clone()]);
    assert_eq!(h.engine.cluster(&cluster.id).unwrap().status, ClusterStatus::Deleted);
}

#[tokio::test]
async fn a_tolerated_failure_keeps_the_steps_output() {
    let h = Harness::new(THREE_ROLES);
    let cluster = h.create().await;
    let db = h.role(&cluster, "db");
    h.runner.script(&db[0], "get_nodes_order", Script::fails(2));
    h.runner.script(
        &db[1],
        "get_nodes_order",
        Script::replies(format!("{},{}", db[1], db[0])),
    );
    let mut plan = Plan::default();
    plan.push_output(
        Action::RunService(
            ServiceStep::new("get_nodes_order", ids(&db), OnFailure::Continue).reply(Reply::NodeOrder {
                of: db.clone(),
                passed: Vec::new(),
            }),
        ),
        "ask both; one fails",
        "order",
    );
    plan.push(
        Action::RunService(ServiceStep::new("stop", order(0, None), OnFailure::Fail).listed(1)),
        "stop in the order",
    );
    let op = h.begin(&cluster, plan).await;
    let ended = h.run(&op).await;
    assert_eq!(ended.status, OperationStatus::Succeeded, "{:?}", ended.error);
    let journal = h.engine.store().steps(&op.id).unwrap();
    assert_eq!(journal[0].outcome, Some(StepOutcome::Tolerated));
    assert_eq!(journal[0].output, Some(json!([db[1], db[0]])));
    assert_eq!(nodes_of(&h.runner.calls("stop")), [db[1].clone(), db[0].clone()]);
}

#[tokio::test]
async fn cancelling_an_interrupted_operation_ends_what_the_crash_cut_off() {
    let h = Harness::new(THREE_ROLES);
    let cluster = h.create().await;
    let db = h.role(&cluster, "db");
    h.runner.script(&db[0], "stop", Script::hangs());
    let mut plan = Plan::default();
    plan.push(run_service("start", ids(&db)), "start");
    plan.push(run_service("stop", ids(&db)), "stop");
    plan.push(run_service("start", ids(&db)), "start again");
    let op = h.begin(&cluster, plan).await;
    h.crash_when(&op, |seen| seen.iter().any(|s| s.service == "stop" && s.node == db[0]))
        .await;
    let cancelled = h.engine.cancel(&op.id).await.unwrap();
    assert_eq!(cancelled.status, OperationStatus::Cancelled);
    assert_eq!(
        cancelled.error.as_deref(),
        Some("cancelled at step 2 of 3, which the host stopped in: it did not run again")
    );
    let journal = h.engine.store().steps(&op.id).unwrap();
    let outcomes: Vec<_> = journal.iter().map(|s| s.outcome).collect();
    assert_eq!(outcomes, [Some(StepOutcome::Ok), Some(StepOutcome::Interrupted)]);
    let events = h.engine.store().events(&op.id).unwrap();
    assert!(
        events.iter().all(|e| e.outcome != InvocationOutcome::Running),
        "{events:#?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.node_id == db[0] && e.service == "stop" && e.outcome == InvocationOutcome::Interrupted)
    );
    assert_eq!(h.engine.cluster(&cluster.id).unwrap().status, ClusterStatus::Failed);
}

#[tokio::test]
async fn a_refresh_of_many_nodes_takes_one_snapshot_per_step() {
    let h = Harness::new(
        r#"{"nodes": [{"role": "a", "count": 60, "plugin": "app.wasm", "services": {"start": {}, "reload": {}}}], "env": {"k": "old"}}"#,
    );
    let cluster = h.create().await;
    let before = h.snapshots.load(std::sync::atomic::Ordering::SeqCst);
    let op = h
        .engine
        .submit(crate::request::OperationRequest::UpdateEnv {
            cluster: cluster.id.clone(),
            env: json!({"k": "v"}).as_object().unwrap().clone(),
            role: None,
        })
        .await
        .unwrap();
    assert_eq!(h.run(&op).await.status, OperationStatus::Succeeded);
    let events = h.engine.store().events(&op.id).unwrap();
    assert_eq!(events.iter().filter(|e| e.service == "render").count(), 60);
    let taken = h.snapshots.load(std::sync::atomic::Ordering::SeqCst) - before;
    assert_eq!(
        taken, 3,
        "two to register what differs (/env, /role-env), one shared by the 60 renders"
    );
    assert_eq!(h.tree_at(&cluster, "/env/k").await, Some(json!("v")));
}

#[tokio::test]
async fn record_and_provider_steps_cut_off_by_a_crash_run_again_to_the_same_end() {
    let h = Harness::new(THREE_ROLES);
    let cluster = h.create().await;
    let db = h.role(&cluster, "db");
    let web = h.role(&cluster, "web");
    let mut added = cluster.new_nodes(cluster.spec.role("db").unwrap(), 1);
    added[0].joining = true;
    let new = vec![added[0].node_id.clone()];
    let grow = ResourceChange {
        cpu: Some(6),
        ..ResourceChange::default()
    };
    let mut plan = Plan::default();
    plan.push(Action::AddNodes { nodes: added.clone() }, "add 1");
    plan.push(
        Action::ResizeNodes {
            nodes: ids(&db),
            change: grow.clone(),
        },
        "resize 4",
    );
    plan.push(Action::NodesJoined { nodes: ids(&new) }, "add 6");
    plan.push(
        Action::SetEnv {
            env: json!({"k": "v"}).as_object().unwrap().clone(),
            role: None,
        },
        "update-env 1",
    );
    plan.push(Action::DeleteResources { nodes: ids(&web[..1]) }, "delete-nodes 10");
    plan.push(Action::RemoveNodes { nodes: ids(&web[..1]) }, "delete-nodes 11");
    plan.push(run_service("start", ids(&db[..1])), "a hook to crash in");
    h.runner.script(&db[0], "start", Script::hangs());
    let op = h.begin(&cluster, plan).await;
    h.crash_when(&op, |seen| seen.iter().any(|s| s.service == "start"))
        .await;
    // As if the process died after each step did its work, before its end was journaled.
    for record in h
        .engine
        .store()
        .steps(&op.id)
        .unwrap()
        .into_iter()
        .filter(|r| r.index < 6)
    {
        let cut = crate::store::StepRecord {
            ended_at: None,
            outcome: None,
            message: None,
            ..record
        };
        h.engine.store().put_step(&op.id, cut).await.unwrap();
    }
    h.runner.script(&db[0], "start", Script::default());
    let ended = h.run(&op).await;
    assert_eq!(ended.status, OperationStatus::Succeeded, "{:?}", ended.error);
    let after = h.engine.cluster(&cluster.id).unwrap();
    assert_eq!(
        after.nodes.iter().filter(|n| n.node_id == new[0]).count(),
        1,
        "added once"
    );
    let joined = after.node(&new[0]).unwrap();
    assert!(!joined.joining && !joined.ip.is_empty());
    assert!(db.iter().all(|id| after.node(id).unwrap().resources.cpu == 6));
    assert_eq!(after.spec.env.get("k"), Some(&json!("v")));
    assert!(after.node(&web[0]).is_none(), "removed");
    let provider = LocalProvider::new(&h.dir.path().join("state"));
    assert_eq!(provider.resources(&cluster.id, &db[0]).unwrap().cpu, 6);
    assert!(!provider.node_dir(&cluster.id, &web[0]).exists());
    assert!(provider.node_dir(&cluster.id, &new[0]).join("volume").is_dir());
}

#[tokio::test]
async fn a_node_that_cannot_join_the_record_leaves_no_resources_behind() {
    let h = Harness::new(THREE_ROLES);
    let cluster = h.create().await;
    // Fill the network's pool (192.168.0.2 to .255.254, no .0 or .255): 65,023 addresses.
    let free = 65_023 - cluster.nodes.len();
    let filler = cluster.nodes[0].clone();
    h.engine
        .store()
        .update_cluster(
            &cluster.id,
            Box::new(move |c| {
                c.nodes.extend((0..free).map(|i| Node {
                    node_id: format!("cln-fill{i}"),
                    ip: String::new(),
                    instance_id: None,
                    ..filler.clone()
                }));
                Ok(())
            }),
        )
        .await
        .unwrap();
    let full = h.engine.cluster(&cluster.id).unwrap();
    let new = full.new_nodes(full.spec.role("db").unwrap(), 1);
    let mut plan = Plan::default();
    plan.push(Action::AddNodes { nodes: new.clone() }, "add 1");
    let op = h.begin(&full, plan).await;
    let ended = h.run(&op).await;
    assert_eq!(ended.status, OperationStatus::Failed);
    assert!(ended.error.unwrap().contains("vxnet"), "the pool is named");
    assert!(h.engine.cluster(&cluster.id).unwrap().node(&new[0].node_id).is_none());
    let provider = LocalProvider::new(&h.dir.path().join("state"));
    assert!(
        !provider.node_dir(&cluster.id, &new[0].node_id).exists(),
        "its resources went with the failed join"
    );
}

#[tokio::test]
async fn a_reload_cut_off_then_cancelled_is_owed_to_the_next_render() {
    for cut in ["reload", "render"] {
        let h = Harness::new(THREE_ROLES);
        let cluster = h.create().await;
        let db = h.role(&cluster, "db");
        if cut == "reload" {
            // The node's config file goes: the render rewrites it, its reload is cut off.
            let provider = LocalProvider::new(&h.dir.path().join("state"));
            let file = provider.node_dir(&cluster.id, &db[0]).join("instance/etc/fake/hosts");
            std::fs::remove_file(&file).unwrap();
        }
        h.runner.script(&db[0], cut, Script::hangs());
        let mut plan = Plan::default();
        plan.push(Action::RenderConfig { nodes: ids(&db[..1]) }, "render");
        plan.recover(Action::RenderConfig { nodes: ids(&db[..1]) }, "render again");
        let op = h.begin(&cluster, plan).await;
        h.crash_when(&op, |seen| seen.iter().any(|s| s.service == cut)).await;
        h.runner.script(&db[0], cut, Script::default());
        let ended = h.engine.cancel(&op.id).await.unwrap();
        assert_eq!(ended.status, OperationStatus::Cancelled, "{:?}", ended.error);
        assert!(ended.recovery.is_some());
        let events = h.engine.store().events(&op.id).unwrap();
        let recovery_render = events.iter().find(|e| e.step == 1 && e.service == "render").unwrap();
        assert_eq!(recovery_render.outcome, InvocationOutcome::Ok);
        let reloads: Vec<(usize, InvocationOutcome)> = events
            .iter()
            .filter(|e| e.service == "reload")
            .map(|e| (e.step, e.outcome))
            .collect();
        let expected = if cut == "reload" {
            vec![(0, InvocationOutcome::Interrupted), (1, InvocationOutcome::Ok)]
        } else {
            vec![(1, InvocationOutcome::Ok)]
        };
        assert_eq!(reloads, expected, "cut off in the {cut}: the recovery's render reloads");
    }
}

#[tokio::test]
async fn a_cancel_past_the_point_of_no_return_is_not_honoured() {
    let h = Harness::new(THREE_ROLES);
    let cluster = h.create().await;
    let db = h.role(&cluster, "db");
    h.runner.script(&db[0], "stop", Script::hangs());
    let mut plan = Plan::default();
    plan.push(
        Action::ClearTemp {
            tree: TempTree::AddingHosts,
        },
        "before",
    );
    plan.push(run_service("stop", ids(&db)), "the guard said yes: past here, finish");
    plan.push(
        Action::SetStatus {
            status: ClusterStatus::Stopped,
        },
        "the end",
    );
    plan.no_cancel_from = Some(1);
    let op = h.begin(&cluster, plan).await;
    h.crash_when(&op, |seen| seen.iter().any(|s| s.service == "stop")).await;
    h.runner.script(&db[0], "stop", Script::default());
    // Nobody runs it: the cancel runs it, and it runs to its end.
    let ended = h.engine.cancel(&op.id).await.unwrap();
    assert_eq!(ended.status, OperationStatus::Succeeded, "{:?}", ended.error);
    assert_eq!(h.engine.cluster(&cluster.id).unwrap().status, ClusterStatus::Stopped);
}

#[tokio::test]
async fn steps_that_write_no_metadata_share_one_snapshot() {
    let h = Harness::new(THREE_ROLES);
    let cluster = h.create().await;
    let all = cluster.node_ids();
    let mut plan = Plan::default();
    plan.push(
        Action::WriteTemp {
            entry: TempEntry::AddingHosts { nodes: ids(&all[..1]) },
        },
        "a write",
    );
    // A rolling operation: one node per step, nothing written to the tree between.
    for node in &all {
        plan.push(run_service("stop", ids(std::slice::from_ref(node))), "one node");
    }
    plan.push(
        Action::ClearTemp {
            tree: TempTree::AddingHosts,
        },
        "another write",
    );
    plan.push(run_service("start", ids(&all)), "after the write");
    let before = h.snapshots.load(std::sync::atomic::Ordering::SeqCst);
    let op = h.begin(&cluster, plan).await;
    assert_eq!(h.run(&op).await.status, OperationStatus::Succeeded);
    let taken = h.snapshots.load(std::sync::atomic::Ordering::SeqCst) - before;
    assert_eq!(taken, 2, "one for the {} rolling steps, one after the write", all.len());
}
