//! The rules a parsed spec must follow, each problem with its JSON path.

use super::Problem;
use super::model::*;
use crate::hook::{SYSTEM_SERVICES, parse_service};
use crate::metadata::path::is_valid_segment;
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

/// The role name of a single-role app that does not name its role.
pub const DEFAULT_ROLE: &str = "node";
/// Most nodes a cluster may have (all roles together): what one network's
/// IP pool and one host's engine serve well.
pub const MAX_CLUSTER_NODES: u64 = 10_000;
/// Longest app name and description, in characters.
const MAX_NAME_CHARS: usize = 128;
const MAX_DESCRIPTION_CHARS: usize = 4096;

/// Which services accept which optional keys.
const POST_START: &[&str] = &["init", "upgrade"];
const POST_STOP: &[&str] = &["destroy"];
const PRE_CHECK: &[&str] = &["scale_in", "scale_out", "upgrade", "change_vxnet"];
const WITH_PARAMS: &[&str] = &["backup", "restore", "delete_snapshot"];
const WITH_REPLICA: &[&str] = &["backup", "restore"];

/// Checks `spec`, fills in defaults (the single role's name, absolute
/// plugin paths) and returns every problem found.
pub(super) fn check(spec: &mut Spec, base: &Path) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut report = |at: String, message: String| problems.push(Problem { at, message });
    // An optional link left empty is no link.
    spec.links.retain(|_, cluster| !cluster.is_empty());
    check_cluster(spec, &mut report);
    check_counts(spec, &mut report);
    check_roles(spec, base, &mut report);
    check_upgrades(spec, &mut report);
    problems
}

/// `upgrade_policy` names versions; each in-place copy names a role, a
/// source beneath its mount point and an absolute destination that is no
/// mount point (a failed copy removes the destination).
fn check_upgrades(spec: &Spec, report: &mut impl FnMut(String, String)) {
    for (i, version) in spec.upgrade_policy.iter().enumerate() {
        if let Err(why) = crate::text::check_token(version, 64) {
            report(
                format!("upgrade_policy[{i}]"),
                format!("{version:?} is no version name: it {why}"),
            );
        }
    }
    for (i, entry) in spec.in_place_upgrade_nodes.iter().enumerate() {
        for (j, copy) in entry.copy.iter().enumerate() {
            let at = format!("in-place-upgrade-nodes[{i}].copy[{j}]");
            let Some(role) = spec.nodes.iter().find(|r| r.role == copy.mount_role) else {
                let roles: Vec<&str> = spec.nodes.iter().map(|r| r.role.as_str()).collect();
                report(
                    format!("{at}.mount_role"),
                    format!(
                        "{:?} is no role of the app (its roles: {})",
                        copy.mount_role,
                        roles.join(", ")
                    ),
                );
                continue;
            };
            if !copy.mount_point.starts_with('/') || copy.source_in_payload().is_none() {
                report(
                    format!("{at}.source"),
                    format!(
                        "{:?} is not {:?} or a path beneath it (the payload is seen at mount_point; no `..`)",
                        copy.source, copy.mount_point
                    ),
                );
            }
            // A failed copy removes its destination: it must hold nothing else.
            let dest = Path::new(&copy.destination);
            let plain = dest.is_absolute()
                && dest.components().count() >= 3
                && dest.components().skip(1).all(|c| matches!(c, Component::Normal(_)));
            let mount = role.volume_mount();
            let mounts = match role.volume.as_ref().and_then(|v| v.mount_point.as_ref()) {
                Some(MountPoint::Many(all)) => all.clone(),
                _ => vec![mount.clone()],
            };
            if !plain || mounts.iter().any(|m| Path::new(m).starts_with(dest)) {
                report(
                    format!("{at}.destination"),
                    format!(
                        "{:?} is not a directory of its own: give an absolute path at least two levels deep, without `..`, that is not {mount} or above it (e.g. {}/upgrade)",
                        copy.destination,
                        mount.trim_end_matches('/')
                    ),
                );
            }
        }
    }
}

/// The cluster-wide keys.
fn check_cluster(spec: &Spec, report: &mut impl FnMut(String, String)) {
    check_text("name", &spec.name, MAX_NAME_CHARS, false, report);
    check_text("description", &spec.description, MAX_DESCRIPTION_CHARS, true, report);
    if spec.metadata_root_access {
        report(
            "metadata_root_access".into(),
            "not supported: hooks only ever see their own cluster".into(),
        );
    }
    if !is_valid_segment(&spec.vxnet) {
        report("vxnet".into(), format!("{:?} is not a usable network name", spec.vxnet));
    }
    check_env("env", &spec.env, report);
    check_unchangeable("", &spec.unchangeable_env, &spec.env, report);
    check_locale(spec, report);
    check_tree("endpoints", &spec.endpoints, report);
    check_tree("reserved_ips", &spec.reserved_ips, report);
    for (name, cluster) in &spec.links {
        if !is_valid_segment(name) || !is_valid_segment(cluster) {
            report(
                format!("links.{name}"),
                format!("{name:?} → {cluster:?}: names and cluster ids are single path segments"),
            );
        }
    }
    if let Some(hc) = &spec.health_check {
        check_health("health_check", hc, report);
    }
}

/// At least one role and one node; at most [`MAX_CLUSTER_NODES`] nodes.
fn check_counts(spec: &Spec, report: &mut impl FnMut(String, String)) {
    if spec.nodes.is_empty() {
        report("nodes".into(), "an app needs at least one role".into());
        return;
    }
    let total: u64 = spec.nodes.iter().map(RoleSpec::nodes_with_replicas).sum();
    if total == 0 {
        report(
            "nodes".into(),
            "the roles' counts add up to 0; a cluster needs at least one node".into(),
        );
    }
    // A role over the bound is reported at the role.
    if total > MAX_CLUSTER_NODES && spec.nodes.iter().all(|r| r.nodes_with_replicas() <= MAX_CLUSTER_NODES) {
        report(
            "nodes".into(),
            format!(
                "the roles' counts{} add up to {total}; a cluster has at most {MAX_CLUSTER_NODES} nodes",
                if spec.nodes.iter().any(|r| r.replica > 0) {
                    " (with their replicas)"
                } else {
                    ""
                }
            ),
        );
    }
}

/// Each role (a single one gets the default name), names unique, and each
/// role's env fitting the cluster's.
fn check_roles(spec: &mut Spec, base: &Path, report: &mut impl FnMut(String, String)) {
    let single = spec.nodes.len() == 1;
    let mut seen = BTreeSet::new();
    for (i, role) in spec.nodes.iter_mut().enumerate() {
        let at = format!("nodes[{i}]");
        if role.role.is_empty() {
            if single {
                role.role = DEFAULT_ROLE.into();
            } else {
                report(
                    format!("{at}.role"),
                    "required when the app has more than one role".into(),
                );
                continue;
            }
        }
        check_role(&at, role, base, report);
        if !seen.insert(role.role.clone()) {
            report(format!("{at}.role"), format!("role {:?} is defined twice", role.role));
        }
    }
    // A node's /env is its role's env over the cluster's: a key cannot be a
    // value in one and an object in the other.
    for (i, role) in spec.nodes.iter().enumerate() {
        for (key, value) in &role.env {
            if let Some(cluster) = spec.env.get(key)
                && cluster.is_object() != value.is_object()
            {
                report(
                    format!("nodes[{i}].env.{key}"),
                    "is an object in one env and a value in the other (the role's and the cluster's env merge)".into(),
                );
            }
        }
    }
}

fn check_role(at: &str, role: &mut RoleSpec, base: &Path, report: &mut impl FnMut(String, String)) {
    let name = &role.role;
    if !is_valid_segment(name) || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        report(
            format!("{at}.role"),
            format!("{name:?} is not a role name: use letters, digits, '_' and '-'"),
        );
    } else if name.ends_with("-replica") {
        report(
            format!("{at}.role"),
            "names ending in -replica are reserved for replicas".into(),
        );
    }
    if u64::from(role.count) > MAX_CLUSTER_NODES {
        report(
            format!("{at}.count"),
            format!(
                "{} is more nodes than a cluster may have ({MAX_CLUSTER_NODES})",
                role.count
            ),
        );
    } else if u64::from(role.replica) >= MAX_CLUSTER_NODES {
        report(
            format!("{at}.replica"),
            format!(
                "{} replicas per node is more nodes than a cluster may have ({MAX_CLUSTER_NODES})",
                role.replica
            ),
        );
    } else if role.nodes_with_replicas() > MAX_CLUSTER_NODES {
        report(
            format!("{at}.replica"),
            format!(
                "{} nodes with {} replicas each make {} nodes; a cluster has at most {MAX_CLUSTER_NODES}",
                role.count,
                role.replica,
                role.nodes_with_replicas()
            ),
        );
    }
    if let Some(bound) = role.server_id_upper_bound
        && bound < role.count
    {
        report(
            format!("{at}.server_id_upper_bound"),
            format!("{bound} leaves no sid for some of the role's {} nodes", role.count),
        );
    }
    if role.cpu == 0 {
        report(format!("{at}.cpu"), "must be at least 1".into());
    }
    if role.memory == 0 {
        report(format!("{at}.memory"), "must be at least 1 (MiB)".into());
    }
    if let Some(volume) = &role.volume {
        check_volume(&format!("{at}.volume"), volume, report);
    }
    check_env(&format!("{at}.env"), &role.env, report);
    check_tree(&format!("{at}.reserved_ips"), &role.reserved_ips, report);
    if let Some(hc) = &role.health_check {
        check_health(&format!("{at}.health_check"), hc, report);
    }

    match component_path(&role.plugin, base) {
        Ok(plugin) => role.plugin = plugin,
        Err(message) => report(format!("{at}.plugin"), message),
    }

    // The original platform's role-level `custom_metadata` is that service.
    if let Some(service) = role.custom_metadata.take() {
        if role.services.contains_key("custom_metadata") {
            report(
                format!("{at}.custom_metadata"),
                "given twice: here and in services; keep one".into(),
            );
        }
        role.services.entry("custom_metadata".into()).or_insert(service);
    }
    for (service, spec) in &role.services {
        check_service(&format!("{at}.services.{service}"), service, spec, role.count, report);
        if let Some(selector) = &spec.selector
            && !role.services.contains_key(selector)
        {
            report(
                format!("{at}.services.{service}.selector"),
                format!("{selector:?} is no service of the role; the selector is a service whose reply is a node id"),
            );
        }
    }
    check_unchangeable(at, &role.unchangeable_env, &role.env, report);
}

/// `unchangeable_env` names keys of the env beside it.
fn check_unchangeable(at: &str, keys: &[String], env: &Map<String, Value>, report: &mut impl FnMut(String, String)) {
    let at = if at.is_empty() { String::new() } else { format!("{at}.") };
    for (i, key) in keys.iter().enumerate() {
        if !env.contains_key(key) {
            report(
                format!("{at}unchangeable_env[{i}]"),
                format!("{:?} is no key of the env beside it", crate::text::clip(key, 64)),
            );
        }
    }
}

/// `locale`: languages of messages, each a short text.
fn check_locale(spec: &Spec, report: &mut impl FnMut(String, String)) {
    for (lang, messages) in &spec.locale {
        if !is_valid_segment(lang) || lang.len() > 16 {
            report(
                format!("locale.{lang}"),
                format!("{lang:?} is not a language code (en, zh_CN)"),
            );
        }
        for (key, message) in messages {
            check_text(&format!("locale.{lang}.{key}"), message, 1000, true, report);
        }
    }
}

/// A role's component, checked to be a regular file inside the app's
/// directory (no absolute path, no `..`, no link leading out) before
/// anything reads it; its path under the app's canonical directory.
fn component_path(plugin: &Path, base: &Path) -> Result<PathBuf, String> {
    let shown = plugin.display();
    if plugin.as_os_str().is_empty() {
        return Err("names no component file".into());
    }
    if plugin.is_absolute() {
        return Err(format!(
            "{shown:?} is absolute: name the component relative to the spec file (it sits beside the spec or below it)"
        ));
    }
    if plugin.components().any(|c| c == Component::ParentDir) {
        return Err(format!(
            "{shown:?} uses `..`: name the component by its path below the spec's directory"
        ));
    }
    let base = if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    };
    let base = base.canonicalize().map_err(|e| format!("{}: {e}", base.display()))?;
    let path = base.join(plugin);
    match crate::files::open_beneath(&base, plugin) {
        Ok(_) => Ok(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("{}: no such component file", path.display()))
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// A name or description: at most `max` characters, no control characters
/// (but newlines, where `lines`).
fn check_text(at: &str, text: &str, max: usize, lines: bool, report: &mut impl FnMut(String, String)) {
    let chars = text.chars().count();
    if chars > max {
        report(at.into(), format!("{chars} characters; at most {max} are allowed"));
    }
    if text.chars().any(|c| crate::text::is_hidden(c) && !(lines && c == '\n')) {
        report(at.into(), "holds control or invisible formatting characters".into());
    }
}

fn check_service(at: &str, name: &str, spec: &ServiceSpec, count: u32, report: &mut impl FnMut(String, String)) {
    let system = SYSTEM_SERVICES.iter().any(|(n, _)| *n == name);
    match (system, spec.kind) {
        (true, Some(ServiceType::Custom)) => report(
            format!("{at}.type"),
            format!("{name} is a system service; a custom service needs another name"),
        ),
        (false, None) => {
            // Its other keys cannot be judged before we know what the service is.
            return report(
                at.to_string(),
                format!("{name:?} is not a system service; mark a custom service with \"type\": \"custom\""),
            );
        }
        (false, Some(ServiceType::Custom)) if parse_service(name).is_err() => report(
            at.to_string(),
            format!(
                "{name:?} is not a service name: use letters, digits, '_' and '-' (at most 64), starting with a letter"
            ),
        ),
        _ => {}
    }
    let custom = spec.kind == Some(ServiceType::Custom);
    if spec.selector.as_deref() == Some(name) {
        report(format!("{at}.selector"), "a service cannot select its own node".into());
    }
    if let Some(timeout) = spec.timeout
        && !(1..=MAX_SERVICE_TIMEOUT).contains(&timeout)
    {
        report(
            format!("{at}.timeout"),
            format!("{timeout} is out of range: give 1 to {MAX_SERVICE_TIMEOUT} seconds"),
        );
    }
    let mut only = |key: &str, set: bool, allowed: &[&str], also_custom: bool| {
        if set && !allowed.contains(&name) && !(also_custom && custom) {
            report(format!("{at}.{key}"), format!("applies to {} only", allowed.join(", ")));
        }
    };
    only(
        "post_start_service",
        spec.post_start_service.is_some(),
        POST_START,
        false,
    );
    only("post_stop_service", spec.post_stop_service.is_some(), POST_STOP, false);
    only("allow_force", spec.allow_force.is_some(), POST_STOP, false);
    only("pre_check", spec.pre_check.is_some(), PRE_CHECK, true);
    only("service_params", spec.service_params.is_some(), WITH_PARAMS, true);
    only("with_replica", spec.with_replica.is_some(), WITH_REPLICA, false);
    only("event", spec.event.is_some(), &["get_nodes_order"], false);
    if let Some(n) = spec.nodes_to_execute_on
        && (n == 0 || n > count)
    {
        report(
            format!("{at}.nodes_to_execute_on"),
            format!("{n} is out of range: the role has {count} node(s)"),
        );
    }
}

fn check_volume(at: &str, volume: &Volume, report: &mut impl FnMut(String, String)) {
    if volume.size == 0 {
        report(format!("{at}.size"), "must be at least 1 (GiB)".into());
    }
    let points = match &volume.mount_point {
        Some(MountPoint::One(p)) => vec![p.clone()],
        Some(MountPoint::Many(ps)) => ps.clone(),
        None => Vec::new(),
    };
    if points.len() > 3 {
        report(format!("{at}.mount_point"), "at most 3 mount points".into());
    }
    for p in points {
        let ok = crate::metadata::path::segments(&p).is_ok_and(|s| !s.is_empty());
        if !ok {
            report(
                format!("{at}.mount_point"),
                format!("{p:?} is not an absolute path below /"),
            );
        }
    }
}

/// The problems of an env by the spec's rules (keys that are path
/// segments, values that are scalars or objects of scalars), each as
/// (where, what); `at` names the env (`env`).
pub fn env_problems(at: &str, env: &Map<String, Value>) -> Vec<(String, String)> {
    let mut found = Vec::new();
    check_env(at, env, &mut |place, what| found.push((place, what)));
    found
}

/// Env values are scalars, or objects of scalars (access keys).
fn check_env(at: &str, env: &Map<String, Value>, report: &mut impl FnMut(String, String)) {
    check_tree(at, env, report);
    for (key, value) in env {
        let fine = match value {
            Value::Object(inner) => inner.values().all(|v| v.is_string() || v.is_number() || v.is_boolean()),
            Value::Array(_) | Value::Null => false,
            _ => true,
        };
        if !fine {
            report(
                format!("{at}.{key}"),
                "values are strings, numbers, booleans or objects of those".into(),
            );
        }
    }
}

/// Every key of a map that becomes part of the metadata tree must be a path segment.
fn check_tree(at: &str, map: &Map<String, Value>, report: &mut impl FnMut(String, String)) {
    for (key, value) in map {
        if !is_valid_segment(key) {
            report(
                format!("{at}.{key}"),
                format!("{key:?} cannot be a key (no '/', '.', '..', nor empty)"),
            );
        }
        if let Value::Object(inner) = value {
            check_tree(&format!("{at}.{key}"), inner, report);
        }
    }
}

fn check_health(at: &str, hc: &HealthCheck, report: &mut impl FnMut(String, String)) {
    let interval = hc.interval_sec.unwrap_or(60);
    let mut at_least = |key: &str, value: Option<u32>, min: u32| {
        if let Some(v) = value
            && v < min
        {
            report(format!("{at}.{key}"), format!("{v} is below the minimum of {min}"));
        }
    };
    at_least("interval_sec", hc.interval_sec, 60);
    at_least("timeout_sec", hc.timeout_sec, 3);
    at_least("action_timeout_sec", hc.action_timeout_sec, 3);
    at_least("healthy_threshold", hc.healthy_threshold, 2);
    at_least("unhealthy_threshold", hc.unhealthy_threshold, 2);
    if let Some(t) = hc.timeout_sec
        && t > interval
    {
        report(
            format!("{at}.timeout_sec"),
            format!("{t} is longer than interval_sec ({interval})"),
        );
    }
}
