use super::create::Create;
use super::delete::Delete;
use super::start::Start;
use super::stop::Stop;
use super::*;
use crate::plan::{Action, NodeSet, OnFailure, ServiceStep};
use crate::spec::Spec;
use std::path::Path;

/// Three roles: `db` (order 0, init after start, destroy before stop),
/// `cache` (order 0, destroy after stop), `web` (order 1, no destroy).
fn cluster() -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.wasm"), b"").unwrap();
    let spec = Spec::parse(
        Path::new("spec.json"),
        r#"{"nodes": [
            {"role": "db", "count": 2, "plugin": "app.wasm", "services": {
                "init": {"post_start_service": true}, "start": {}, "stop": {}, "destroy": {}}},
            {"role": "cache", "count": 1, "plugin": "app.wasm", "services": {
                "init": {}, "start": {}, "stop": {}, "destroy": {"post_stop_service": true}}},
            {"role": "web", "count": 1, "plugin": "app.wasm", "services": {
                "init": {"order": 1}, "start": {"order": 1}, "stop": {"order": 1}}}
        ]}"#,
        dir.path(),
    )
    .unwrap();
    Cluster::new(crate::apps::AppRef::default(), spec, "spec.json".into(), "test".into())
}

/// The cluster's spec as a registered app version.
pub(super) fn version_of(c: &Cluster) -> crate::apps::AppVersion {
    crate::apps::AppVersion {
        app: "app".into(),
        version: "1".into(),
        digest: String::new(),
        spec: c.spec.clone(),
        payload: None,
        source: "spec.json".into(),
        added_at: String::new(),
    }
}

fn create(c: &Cluster) -> Plan {
    Create::new(version_of(c), None).plan(c)
}

fn delete(c: &Cluster, force: bool) -> Plan {
    Delete { force }.plan(c)
}

fn stop(c: &Cluster) -> Plan {
    Stop.plan(c)
}

fn start(c: &Cluster) -> Plan {
    Start.plan(c)
}

/// The plan as (kind, service, roles) triples.
fn shape(cluster: &Cluster, plan: &Plan) -> Vec<String> {
    plan.steps
        .iter()
        .map(|step| match &step.action {
            Action::RunService(ServiceStep {
                service,
                nodes: NodeSet::Ids(nodes),
                on_failure,
                ..
            }) => {
                let mut roles: Vec<&str> = nodes.iter().map(|n| cluster.node(n).unwrap().role.as_str()).collect();
                roles.dedup();
                format!(
                    "{service}[{}]{}",
                    roles.join(","),
                    match on_failure {
                        OnFailure::Fail => "",
                        OnFailure::Refuse => " refuse",
                        OnFailure::Continue => " continue",
                        OnFailure::Guard { force: false } => " guard",
                        OnFailure::Guard { force: true } => " guard+force",
                    }
                )
            }
            other => serde_json::to_value(other).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string(),
        })
        .collect()
}

#[test]
fn create_runs_init_around_start_as_each_role_asks() {
    let c = cluster();
    let plan = create(&c);
    assert_eq!(
        shape(&c, &plan),
        [
            "create-resources",
            "register-metadata",
            "render-config",
            "init[cache,web]",
            "start[db,cache,web]",
            "init[db]",
            "set-status"
        ]
    );
    assert!(plan.steps.iter().all(|s| s.seed.starts_with("create")));
}

#[test]
fn delete_guards_before_stopping_and_checks_no_post_stop_destroy() {
    let mut c = cluster();
    c.status = ClusterStatus::Active;
    assert_eq!(
        shape(&c, &delete(&c, false)),
        [
            "destroy[db] guard",
            "stop[db,cache,web] continue",
            "destroy[cache] continue",
            "delete-resources",
            "deregister-metadata",
            "set-status"
        ]
    );
    assert_eq!(shape(&c, &delete(&c, true))[0], "destroy[db] guard+force");
    c.status = ClusterStatus::Stopped;
    assert_eq!(
        shape(&c, &delete(&c, false)),
        ["delete-resources", "deregister-metadata", "set-status"]
    );
}

#[test]
fn a_role_without_destroy_just_stops() {
    let mut c = cluster();
    c.status = ClusterStatus::Active;
    for role in &mut c.spec.nodes {
        role.services.remove("destroy");
    }
    assert_eq!(
        shape(&c, &delete(&c, false)),
        [
            "stop[db,cache,web] continue",
            "delete-resources",
            "deregister-metadata",
            "set-status"
        ]
    );
}

#[test]
fn stop_and_start_follow_the_reconstruction() {
    let c = cluster();
    assert_eq!(
        shape(&c, &stop(&c)),
        [
            "stop[db,cache,web] continue",
            "stop-instances",
            "register-metadata",
            "set-status"
        ]
    );
    assert_eq!(
        shape(&c, &start(&c)),
        [
            "start-instances",
            "register-metadata",
            "render-config",
            "start[db,cache,web]",
            "set-status"
        ]
    );
}

#[test]
fn every_plan_reads_only_what_it_produced() {
    let mut c = cluster();
    for plan in [create(&c), stop(&c), start(&c)] {
        assert_eq!(plan.check(), Ok(()));
    }
    c.status = ClusterStatus::Active;
    assert_eq!(delete(&c, true).check(), Ok(()));
}

#[test]
fn nodes_to_execute_on_keeps_each_roles_lowest_sids() {
    let mut c = cluster();
    for role in &mut c.spec.nodes {
        if let Some(start) = role.services.get_mut("start") {
            start.nodes_to_execute_on = Some(1);
        }
    }
    let plan = start(&c);
    let Action::RunService(step) = &plan.steps[3].action else {
        panic!("{:?}", plan.steps[3]);
    };
    let sids: Vec<u32> = match &step.nodes {
        NodeSet::Ids(ids) => ids.iter().map(|id| c.node(id).unwrap().sid).collect(),
        other => panic!("{other:?}"),
    };
    assert_eq!(sids, [1, 1, 1], "one node per role, the one of sid 1");
}

/// Admission, for every status a cluster can be in.
#[test]
fn each_flow_admits_only_the_states_it_can_run_in() {
    use ClusterStatus::*;
    let c = cluster();
    let at = |status: ClusterStatus, failed: Option<OperationKind>| {
        let mut c = c.clone();
        c.status = status;
        c.failed_during = failed;
        c
    };
    let outcome = |flow: &dyn Flow, c: &Cluster| flow.admit(c).map_err(|r| r.to_string());
    assert_eq!(outcome(&Stop, &at(Active, None)), Ok(Stopping));
    assert_eq!(outcome(&Start, &at(Stopped, None)), Ok(Starting));
    assert_eq!(outcome(&Delete { force: false }, &at(Active, None)), Ok(Deleting));
    assert_eq!(
        outcome(&Stop, &at(Failed, Some(OperationKind::StartCluster))),
        Ok(Stopping)
    );
    let id = &c.id;
    for status in [Creating, Stopping, Starting, Deleting] {
        for flow in [&Stop as &dyn Flow, &Start, &Delete { force: true }] {
            let err = outcome(flow, &at(status, None)).unwrap_err();
            assert!(err.ends_with(&format!("cluster {id}: it is {status}")), "{err}");
        }
    }
    for flow in [&Stop as &dyn Flow, &Start, &Delete { force: true }] {
        let err = outcome(flow, &at(Deleted, None)).unwrap_err();
        assert!(err.ends_with("it is deleted"), "{err}");
    }
    assert_eq!(
        outcome(&Start, &at(Failed, Some(OperationKind::CreateCluster))).unwrap_err(),
        format!("cannot start cluster {id}: its creation failed; delete it")
    );
    assert_eq!(
        outcome(&Stop, &at(Failed, Some(OperationKind::DeleteCluster))).unwrap_err(),
        format!("cannot stop cluster {id}: its deletion failed; delete it again")
    );
    assert_eq!(
        outcome(&Start, &at(Active, None)).unwrap_err(),
        format!("cannot start cluster {id}: it is already running")
    );
    let creating = Create::new(version_of(&c), None);
    assert!(creating.admit(&at(Active, None)).is_err());
}

#[test]
fn a_stopped_cluster_loses_no_guard() {
    let mut c = cluster();
    c.status = ClusterStatus::Stopped;
    c.nodes.iter_mut().for_each(|n| n.instance_id = None);
    // db's destroy is a guard: deleting needs --force.
    let err = Delete { force: false }.admit(&c).unwrap_err().to_string();
    assert!(err.contains("start it first, or delete it with --force"), "{err}");
    assert_eq!(Delete { force: true }.admit(&c), Ok(ClusterStatus::Deleting));
    // A guard that may not be forced: nobody deletes the data without it.
    c.spec.nodes[0].services.get_mut("destroy").unwrap().allow_force = Some(false);
    for force in [false, true] {
        let err = Delete { force }.admit(&c).unwrap_err().to_string();
        assert!(
            err.contains("the destroy guard of role db cannot run, and the role does not allow forcing"),
            "{err}"
        );
        assert!(err.contains("start the cluster so that its guard can run"), "{err}");
    }
    // A destroy after stop is no guard: nothing to lose by skipping it.
    c.spec.nodes[0].services.remove("destroy");
    assert_eq!(Delete { force: false }.admit(&c), Ok(ClusterStatus::Deleting));
}

#[test]
fn a_new_cluster_is_named_by_its_request_or_its_spec() {
    let c = cluster();
    let named = |name: Option<&str>| {
        Create::new(version_of(&c), name.map(String::from))
            .new_cluster()
            .map(|c| c.name)
            .map_err(|r| r.to_string())
    };
    assert_eq!(named(Some("zk")), Ok("zk".to_string()));
    let err = named(Some("")).unwrap_err();
    assert_eq!(
        err,
        "cannot create the cluster: --name: a cluster name has 1 to 128 characters; this one has 0"
    );
    assert!(
        named(Some(&"x".repeat(100_000)))
            .unwrap_err()
            .contains("this one has 100000")
    );
    assert!(
        named(Some("a\u{1b}[2J"))
            .unwrap_err()
            .contains("cannot hold control or invisible formatting characters")
    );
    // The spec has no name: the cluster is called by its id.
    let fresh = Create::new(version_of(&c), None).new_cluster().unwrap();
    assert_eq!(fresh.name, fresh.id);
    assert_eq!(fresh.status, ClusterStatus::Creating);
}

#[test]
fn a_failed_deletion_is_retried_on_what_is_left() {
    let mut c = cluster();
    c.status = ClusterStatus::Failed;
    c.failed_during = Some(OperationKind::DeleteCluster);
    c.spec.nodes[0].services.get_mut("destroy").unwrap().allow_force = Some(false);
    // The first attempt deleted db's first node before it failed.
    let gone = c.nodes[0].node_id.clone();
    c.nodes[0].instance_id = None;
    c.nodes[0].deleted = true;
    assert_eq!(Delete { force: false }.admit(&c), Ok(ClusterStatus::Deleting));
    let plan = delete(&c, false);
    assert!(
        plan.steps
            .iter()
            .all(|s| !matches!(s.action.nodes(), Some(NodeSet::Ids(ids)) if ids.contains(&gone))),
        "the deleted node is in no step"
    );
    assert_eq!(
        shape(&c, &plan)[0],
        "destroy[db] guard",
        "the other db node still runs its guard"
    );
    // A failed stop left db's other node without an instance: its guard cannot run.
    c.failed_during = Some(OperationKind::StopCluster);
    let other = c.nodes[1].node_id.clone();
    c.nodes[1].instance_id = None;
    let err = Delete { force: true }.admit(&c).unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "node {other} has no running instance, so the destroy guard of role db cannot run"
        )),
        "{err}"
    );
    assert!(
        err.contains("stop and start the cluster so that its guard can run"),
        "{err}"
    );
}

#[test]
fn upgrades_and_downgrades_run_only_where_their_policy_says() {
    use crate::cluster::Upgrade as Begun;
    use crate::spec::UpgradingPolicy as P;
    let mut c = cluster();
    c.app = crate::apps::AppRef {
        app: "app".into(),
        version: "1".into(),
    };
    let target = |policy: P| {
        let mut v = version_of(&c);
        v.version = "2".into();
        v.spec.upgrading_policy = policy;
        v.spec.upgrade_policy = vec!["1".into()];
        v
    };
    let upgrade = |policy: P| super::upgrade::Upgrade {
        target: target(policy),
        same_content: Vec::new(),
        canaries: 0,
        max_in_flight: 0,
    };
    use ClusterStatus as S;
    for status in [
        S::Creating,
        S::Active,
        S::Stopping,
        S::Stopped,
        S::Starting,
        S::Deleting,
        S::ScalingOut,
        S::Upgrading,
        S::Downgrading,
        S::Deleted,
        S::Failed,
    ] {
        let mut at = c.clone();
        at.status = status;
        for (policy, runs_on) in [
            (P::Parallel, S::Stopped),
            (P::Sequential, S::Active),
            (P::InPlaceParallel, S::Active),
            (P::InPlaceSequential, S::Active),
        ] {
            let admitted = upgrade(policy).admit(&at);
            assert_eq!(
                admitted.is_ok(),
                status == runs_on,
                "{policy:?} on {status}: {admitted:?}"
            );
            if status == S::Deleted {
                assert!(admitted.unwrap_err().reason.contains("deleted"));
            }
        }
        // No upgrade to undo: a downgrade never runs.
        let down = super::downgrade::Downgrade {
            back_to: Some(version_of(&c)),
        };
        assert!(down.admit(&at).is_err(), "downgrade on {status}");
        // With one begun: on a stopped cluster, or an active one after in-place.
        for (policy, runs_on) in [(P::Sequential, S::Stopped), (P::InPlaceSequential, S::Active)] {
            let mut pending = at.clone();
            pending.upgrade = Some(Begun {
                policy,
                from: "0".into(),
                to: "1".into(),
                done: Default::default(),
            });
            assert_eq!(
                down.admit(&pending).is_ok(),
                status == runs_on,
                "downgrade {policy:?} on {status}"
            );
            // Nothing else of scale runs meanwhile, and no other upgrade.
            assert!(super::admit::active(OperationKind::AddNodes, &pending).is_err());
            assert!(
                upgrade(P::Sequential).admit(&pending).is_err(),
                "another version over a begun one"
            );
        }
    }
    // Bad versions: the one it runs, one whose policy lacks it, one of another shape.
    assert!(
        upgrade(P::Sequential)
            .admit(&{
                let mut a = c.clone();
                a.status = S::Active;
                a.app.version = "2".into();
                a
            })
            .is_err()
    );
    let mut active = c.clone();
    active.status = S::Active;
    let mut wrong = upgrade(P::Sequential);
    wrong.target.spec.upgrade_policy = vec!["0".into()];
    assert!(wrong.admit(&active).unwrap_err().reason.contains("lists only 0"));
    wrong.same_content = vec!["0".into()];
    assert!(wrong.admit(&active).is_ok(), "a version with the same content counts");
    let mut other = upgrade(P::Sequential);
    other.target.spec.nodes.pop();
    assert!(other.admit(&active).unwrap_err().reason.contains("same roles"));
}
