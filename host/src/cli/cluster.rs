//! `hookhost cluster ...`: the operations (each run in the foreground), and
//! looking at clusters and their metadata.

use super::op::{foreground, involves};
use super::operation::OperationCommand;
use super::target::Target;
use super::{Global, print::clean, print::emit};
use anyhow::bail;
use clap::Subcommand;
use hookhost::cluster::{ClusterStatus, HealthTransition};
use hookhost::server::bodies::OperationState;
use hookhost::spec::UpgradingPolicy;
use serde_json::json;
use std::fmt::Write as _;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum ClusterCommand {
    #[command(flatten)]
    Operation(OperationCommand),
    /// List clusters.
    List {
        /// Include deleted clusters.
        #[arg(long)]
        all: bool,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Show a cluster, its nodes and its operations.
    Show {
        /// The cluster id (cl-...).
        cluster: String,
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Run one health-check round now: every checked node's `health_check`
    /// (and `health_action` where a node becomes unhealthy) and `monitor`.
    ///
    /// `hookhost serve` runs rounds by itself at each role's `interval_sec`;
    /// this runs one at once, e.g. to try an app's health hooks. A node is
    /// marked unhealthy after `unhealthy_threshold` failed checks in a row and
    /// healthy after `healthy_threshold` passes; the status shows in `cluster show`.
    /// Exit code 1 when a check failed, 0 otherwise (also when the cluster is
    /// not active or an operation holds it: nothing runs then).
    Check {
        /// The cluster id (cl-...).
        cluster: String,
        /// Only these roles (repeat or comma-separate).
        #[arg(long, value_delimiter = ',')]
        role: Vec<String>,
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Print a cluster's metadata tree, or the part at PATH (e.g. /hosts, /env/port).
    Metadata {
        /// The cluster id (cl-...).
        cluster: String,
        /// A path as hooks read it (/hosts/..., /cluster/..., /env/...).
        path: Option<String>,
        /// Show it as this node's hooks see it (/host, its role's /env).
        #[arg(long, value_name = "NODE_ID")]
        node: Option<String>,
        /// The subtree as JSON.
        #[arg(long)]
        json: bool,
    },
}

impl ClusterCommand {
    /// Whether the command was asked for JSON output.
    pub fn wants_json(&self) -> bool {
        match self {
            ClusterCommand::Operation(op) => op.json(),
            ClusterCommand::List { json, .. }
            | ClusterCommand::Show { json, .. }
            | ClusterCommand::Check { json, .. }
            | ClusterCommand::Metadata { json, .. } => *json,
        }
    }
}

/// Runs a `cluster` subcommand.
pub async fn run(global: &Global, cmd: ClusterCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ClusterCommand::Operation(op) => {
            let target = global.target(false)?;
            let json = op.json();
            let op = target.submit(op.request()?).await?;
            foreground(&target, &op.id, json).await
        }
        ClusterCommand::List { all, json } => list(&global.target(true)?, all, json).await,
        ClusterCommand::Show { cluster, json } => show(&global.target(true)?, &cluster, json).await,
        ClusterCommand::Check { cluster, role, json } => check(&global.target(false)?, &cluster, role, json).await,
        ClusterCommand::Metadata {
            cluster,
            path,
            node,
            json,
        } => metadata(&global.target(true)?, &cluster, path, node, json).await,
    }
}

/// `cluster list`: a line (or a JSON object) per cluster.
async fn list(target: &Target, all: bool, json: bool) -> anyhow::Result<ExitCode> {
    let clusters: Vec<_> = target
        .clusters()
        .await?
        .into_iter()
        .filter(|c| all || c.status != ClusterStatus::Deleted)
        .collect();
    let mut out = String::new();
    if !json {
        let _ = writeln!(
            out,
            "{:<12} {:<20} {:<11} {:>5}  CREATED",
            "CLUSTER", "NAME", "STATUS", "NODES"
        );
    }
    for c in clusters {
        if json {
            let _ = writeln!(
                out,
                "{}",
                json!({"id": c.id, "name": c.name, "status": c.status, "nodes": c.nodes.len(), "created_at": c.created_at, "operation": c.operation})
            );
        } else {
            let _ = writeln!(
                out,
                "{:<12} {:<20} {:<11} {:>5}  {}",
                c.id,
                clean(&c.name),
                c.status.to_string(),
                c.nodes.len(),
                c.created_at
            );
        }
    }
    emit(&out);
    Ok(ExitCode::SUCCESS)
}

/// `cluster show`: the cluster, its nodes and its operations.
async fn show(target: &Target, cluster: &str, json: bool) -> anyhow::Result<ExitCode> {
    let c = target.cluster(cluster).await?;
    let ops: Vec<OperationState> = target
        .operations()
        .await?
        .into_iter()
        .filter(|s| involves(&s.operation, &c.id))
        .collect();
    if json {
        let doc = json!({"cluster": c, "operations": ops.iter().map(|s| json!({"id": s.operation.id, "kind": s.operation.kind(), "status": s.status(), "created_at": s.operation.created_at})).collect::<Vec<_>>()});
        emit(&format!("{doc:#}\n"));
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = format!("cluster   {} ({}) · {}\n", c.id, clean(&c.name), c.status);
    if !c.app.app.is_empty() {
        let _ = writeln!(out, "app       {} version {}", c.app.app, c.app.version);
    }
    let _ = writeln!(out, "spec      {}", c.spec_file.display());
    if let Some(u) = &c.upgrade {
        let how = hookhost::request::kebab_name(&u.policy);
        let (done, all) = (u.done.len(), c.live_nodes().count());
        let (id, to) = (&c.id, &u.to);
        let again = format!("upgrade it again (`hookhost cluster upgrade {id} --version {to}`)");
        let down = format!("downgrade it (`hookhost cluster downgrade {id}`)");
        let stop = format!("stop it (`hookhost cluster stop {id}`)");
        let start = format!("start it (`hookhost cluster start {id}`)");
        let in_place = matches!(
            u.policy,
            UpgradingPolicy::InPlaceParallel | UpgradingPolicy::InPlaceSequential
        );
        // What the flows admit now, status by status.
        let next = match (c.status, u.policy) {
            (ClusterStatus::Upgrading | ClusterStatus::Downgrading, _) => format!("in progress ({})", c.status),
            (ClusterStatus::Active, _) if in_place => format!("{again} or {down}"),
            (ClusterStatus::Active, UpgradingPolicy::Sequential) => format!("{again}, or {stop} and {down}"),
            (ClusterStatus::Active, _) => format!("{stop}, then {again} or {down}"),
            (ClusterStatus::Stopped, UpgradingPolicy::Parallel) => format!("{again} or {down}"),
            (ClusterStatus::Stopped, _) if in_place => format!("{start}, then {again} or {down}"),
            (ClusterStatus::Stopped, _) => format!("{down}, or {start} and {again}"),
            (_, UpgradingPolicy::Sequential) => format!("{stop} first, then {down}, or {start} and {again}"),
            _ => format!("{stop} first, then {again} or {down}"),
        };
        let state = if next.starts_with("in progress") {
            next
        } else {
            format!("did not finish: {next}")
        };
        let _ = writeln!(
            out,
            "upgrade   {} → {} ({how}), {done} of {all} nodes done: {state}",
            u.from, u.to
        );
    }
    let _ = writeln!(
        out,
        "network   {} · zone {} · created {}",
        c.spec.vxnet, c.zone, c.created_at
    );
    let reserved = hookhost::cluster::reserved_ips(&c.spec);
    if !reserved.is_empty() {
        let shown: Vec<String> = reserved
            .iter()
            .map(|(name, ip)| format!("{name} {}", if ip.is_empty() { "-" } else { ip }))
            .collect();
        let _ = writeln!(out, "reserved  {}", shown.join(" · "));
    }
    let _ = writeln!(
        out,
        "\n{:<14} {:<14} {:<12} {:<15} {:>4}  {:<9}  VERSION",
        "NODE", "ROLE", "INSTANCE", "IP", "SID", "HEALTH"
    );
    for n in &c.nodes {
        let instance = n.instance_id.as_deref().unwrap_or("-");
        let note = match (n.deleted, n.joining) {
            (true, _) => "  deleted",
            (_, true) => "  not joined: its add-nodes did not finish (delete-nodes removes it)",
            _ => "",
        };
        let version = c.version_of(n);
        let version = if version.is_empty() { "-" } else { version };
        let health = match c.health.nodes.get(&n.node_id) {
            Some(h) => h.status.to_string(),
            None => "-".into(),
        };
        let _ = writeln!(
            out,
            "{:<14} {:<14} {:<12} {:<15} {:>4}  {health:<9}  {version}{note}",
            n.node_id, n.role, instance, n.ip, n.sid
        );
    }
    if !c.health.transitions.is_empty() {
        let _ = writeln!(out, "\nhealth changes (latest last)");
        let skip = c.health.transitions.len().saturating_sub(10);
        for t in c.health.transitions.iter().skip(skip) {
            let _ = writeln!(out, "  {}", transition_line(t));
        }
    }
    let _ = writeln!(out, "\noperations");
    for shown in ops {
        let o = &shown.operation;
        let _ = writeln!(
            out,
            "  {} {:<15} {:<10} {}",
            o.id,
            o.kind().to_string(),
            shown.status(),
            o.created_at
        );
    }
    emit(&out);
    Ok(ExitCode::SUCCESS)
}

/// A health transition as one line.
fn transition_line(t: &HealthTransition) -> String {
    let mut line = format!("{} {} ({}) {} → {}", t.at, t.node_id, t.role, t.from, t.to);
    if let Some(message) = &t.message {
        let _ = write!(line, ": {}", clean(message));
    }
    if let Some(action) = &t.action {
        let _ = write!(line, " · health_action: {}", clean(action));
    }
    line
}

/// `cluster check`: one health round now.
async fn check(target: &Target, cluster: &str, roles: Vec<String>, json: bool) -> anyhow::Result<ExitCode> {
    let c = target.cluster(cluster).await?;
    let watched = hookhost::engine::watched_roles(&c);
    if let Some(role) = roles.iter().find(|r| !watched.iter().any(|(w, _)| w == *r)) {
        let names: Vec<&str> = watched.iter().map(|(r, _)| r.as_str()).collect();
        bail!(
            "role {role:?} of cluster {} has no health check or monitor enabled; checked roles: {}",
            c.id,
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        );
    }
    let roles = (!roles.is_empty()).then_some(roles);
    let round = target.check(&c.id, roles).await?;
    let failed = round.checked.iter().any(|r| !r.ok);
    if json {
        emit(&format!("{:#}\n", json!(round)));
    } else {
        let mut out = String::new();
        if let Some(why) = &round.skipped {
            let _ = writeln!(out, "nothing checked: {why}");
        }
        if round.checked.is_empty() && round.samples.is_empty() && round.skipped.is_none() {
            let _ = writeln!(
                out,
                "nothing checked: no role of cluster {} has a health check or monitor enabled",
                c.id
            );
        }
        for r in &round.checked {
            let result = match &r.message {
                None => "ok".to_string(),
                Some(m) => format!("failed: {}", clean(m)),
            };
            let h = &r.health;
            let _ = writeln!(
                out,
                "{:<14} {:<14} {:<9} ({} passed, {} failed in a row)  {result}",
                r.node_id,
                r.role,
                h.status.to_string(),
                h.successes,
                h.failures
            );
        }
        for t in &round.transitions {
            let _ = writeln!(out, "changed  {}", transition_line(t));
        }
        for s in &round.samples {
            let values = match &s.error {
                Some(e) => format!("no values: {}", clean(e)),
                None => serde_json::to_string(&s.values).unwrap_or_default(),
            };
            let _ = writeln!(out, "monitor  {:<14} {values}", s.node_id);
        }
        emit(&out);
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// `cluster metadata`: the tree, or part of it, as one node or the cluster sees it.
async fn metadata(
    target: &Target,
    cluster: &str,
    path: Option<String>,
    node: Option<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let at = path.unwrap_or_else(|| "/".into());
    let (revision, tree) = target.metadata(cluster, &at, node.as_deref()).await?;
    if json {
        emit(&format!("{tree:#}\n"));
    } else {
        let mut out = format!("# revision {revision}\n");
        flat(&mut out, at.trim_end_matches('/'), &tree);
        emit(&out);
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints a JSON tree as `path value` lines.
fn flat(out: &mut String, at: &str, value: &serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map {
                flat(out, &format!("{at}/{key}"), child);
            }
        }
        serde_json::Value::String(s) => {
            let _ = writeln!(out, "{at} {}", clean(s));
        }
        other => {
            let _ = writeln!(out, "{at} {other}");
        }
    }
}
