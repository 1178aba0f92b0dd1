use super::*;
use crate::engine::plan::{Action, OnFailure};
use crate::spec::Spec;
use crate::state::{Cluster, ClusterStatus};
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
    Cluster::new(spec, "spec.json".into(), None)
}

/// The plan as (kind, service, roles) triples.
fn shape(cluster: &Cluster, plan: &Plan) -> Vec<String> {
    plan.steps
        .iter()
        .map(|step| match &step.action {
            Action::RunService {
                service,
                nodes,
                on_failure,
            } => {
                let mut roles: Vec<&str> = nodes.iter().map(|n| cluster.node(n).unwrap().role.as_str()).collect();
                roles.dedup();
                format!(
                    "{service}[{}]{}",
                    roles.join(","),
                    match on_failure {
                        OnFailure::Fail => "",
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
