//! A test component for lifecycle flows: every service records what it saw
//! and does what the node's files tell it to.
//!
//! - Each call appends one JSON line to `/data/calls.jsonl` when it begins
//!   (`"phase": "begin"`) and when it ends (`"phase": "end"`) (a pre-check,
//!   whose directories are read-only, logs the lines instead), with the
//!   service, attempt, operation, this node, the `/hosts` it saw, the
//!   `/adding-hosts` and `/deleting-hosts`, its `/host/ip`, the network and
//!   reserved IPs, and the metadata revision.
//! - Knobs of `/env` (an empty value is no value):
//!   `/env/sleep_ms` (default 0) makes every call take that long;
//!   `/env/sleep_ms_<service>` overrides it for one service.
//! - A file `/data/fail-<service>` makes that service fail with the code the
//!   file holds (default 66); so does `/env/fail_<service>` (its value is the code);
//!   `/data/fail-once-<service>` fails it once (the file is removed).
//! - `render` writes `/etc/recorder/members` listing `/hosts`, so it changes
//!   whenever membership or instance ids do, and `/etc/recorder/network`
//!   with `/cluster/vxnet` and the endpoints' reserved IPs; `/env/render_mode` = `self`
//!   lists only this node (so it changes only with the node itself);
//!   `/env/render_path` renders it to another path (a hostile one, for tests).
//! - `get_nodes_order` replies with its role's nodes by descending `sid`
//!   (replicas after them), so an order that is followed shows.
//! - `monitor` replies `{"load": <sid × 10>, "role": "<role>"}`; `health_check`
//!   and `health_action` only record (fail them with the files above).
//! - `custom_metadata` replies `token-<node_id>`; the custom service
//!   `find_leader` replies the node id of its role's highest sid (the
//!   leader, as ZooKeeper elects it); the custom service `echo` records its
//!   params like any other call; `backup`, `restore`, `delete_snapshot` and
//!   `change_vxnet` only record.
//! - Each line says which build ran (`"version"`: the crate's version; the
//!   `recorder-v2` crate builds this same source as 2.0.0), with the
//!   `/cluster/app_version` and `/upgrade-audit` it saw.

use hookhost_sdk::{ConfigFile, Context, Hooks, NodeContext, Result, Service, fail, meta};
use serde_json::json;
use std::io::Write;

const SERVICES: &[Service] = &[
    Service::Init,
    Service::Start,
    Service::Stop,
    Service::Restart,
    Service::Destroy,
    Service::ScaleOut,
    Service::ScaleIn,
    Service::Upgrade,
    Service::Rollback,
    Service::Reload,
    Service::HealthCheck,
    Service::HealthAction,
    Service::Monitor,
    Service::GetNodesOrder,
    Service::Backup,
    Service::Restore,
    Service::DeleteSnapshot,
    Service::ChangeVxnet,
    Service::CustomMetadata,
];

/// The custom services it implements.
const CUSTOM: &[&str] = &["echo", "find_leader"];

struct Recorder;

impl Hooks for Recorder {
    fn services() -> Vec<Service> {
        let custom = CUSTOM.iter().map(|name| Service::Custom(name.to_string()));
        SERVICES.iter().cloned().chain(custom).collect()
    }

    fn run(ctx: &Context) -> Result<()> {
        let name = ctx.service_name();
        record(ctx, &name, "begin")?;
        let sleep = match knob(&format!("sleep_ms_{name}"))? {
            Some(ms) => ms,
            None => meta::env_or("sleep_ms", "0")?,
        };
        let ms: u64 = sleep
            .parse()
            .map_err(|_| fail(2, format!("/env/sleep_ms is {sleep:?}, not a number")))?;
        std::thread::sleep(std::time::Duration::from_millis(ms));
        let once = format!("/data/fail-once-{name}");
        let asked = std::fs::read_to_string(format!("/data/fail-{name}"))
            .ok()
            .or_else(|| {
                std::fs::read_to_string(&once)
                    .ok()
                    .filter(|_| std::fs::remove_file(&once).is_ok())
            })
            .or(knob(&format!("fail_{name}"))?);
        if let Some(code) = asked {
            record(ctx, &name, "failed")?;
            let code = code.trim().parse().unwrap_or(66);
            return Err(fail(code, format!("{name} refused: asked to fail")));
        }
        match ctx.service() {
            Service::GetNodesOrder => ctx.reply(nodes_order()?.join(",")),
            Service::CustomMetadata => ctx.reply(format!("token-{}", ctx.node_id())),
            Service::Monitor => {
                let sid: u64 = meta::require("/host/sid")?.parse().unwrap_or(0);
                ctx.reply(json!({"load": sid * 10, "role": ctx.node().role}).to_string());
            }
            Service::Custom(name) if name == "find_leader" => {
                let leader = nodes_order()?.into_iter().next().unwrap_or_default();
                ctx.reply(leader);
            }
            _ => {}
        }
        record(ctx, &name, "end")
    }

    fn render(node: &NodeContext) -> Result<Vec<ConfigFile>> {
        let only_self = knob("render_mode")?.as_deref() == Some("self");
        let members: Vec<String> = meta::all_hosts()?
            .into_iter()
            .filter(|h| !only_self || h.node_id == node.node_id)
            .map(|h| format!("{} {} {} {}", h.role, h.node_id, h.instance_id, h.ip))
            .collect();
        let path = knob("render_path")?.unwrap_or_else(|| "/etc/recorder/members".into());
        let mut network = format!("vxnet {}\n", meta::get("/cluster/vxnet")?.unwrap_or_default());
        for (name, ip) in reserved_ips()? {
            network.push_str(&format!("reserved {name} {ip}\n"));
        }
        Ok(vec![
            ConfigFile::text(path, members.join("\n") + "\n"),
            ConfigFile::text("/etc/recorder/network", network),
        ])
    }
}

hookhost_sdk::export_hooks!(Recorder);

/// A test knob of `/env`: absent when unset or empty (a spec declares its
/// knobs empty, and a test sets one and empties it again).
fn knob(key: &str) -> Result<Option<String>> {
    Ok(meta::env(key)?.filter(|v| !v.is_empty()))
}

/// The cluster's endpoint reserved IPs (`/cluster/endpoints/reserved_ips`), by name.
fn reserved_ips() -> Result<std::collections::BTreeMap<String, String>> {
    let tree: Option<serde_json::Map<String, serde_json::Value>> = meta::subtree("/cluster/endpoints/reserved_ips")?;
    Ok(tree
        .unwrap_or_default()
        .into_iter()
        .map(|(name, entry)| {
            let ip = entry["value"].as_str().unwrap_or_default().to_string();
            (name, ip)
        })
        .collect())
}

/// This node's role's nodes by descending sid, then their replicas the same way.
fn nodes_order() -> Result<Vec<String>> {
    let me = meta::this_host()?;
    let primary = me.role.trim_end_matches("-replica").to_string();
    let mut order = Vec::new();
    for role in [primary.clone(), format!("{primary}-replica")] {
        let mut hosts = meta::hosts(&role)?;
        hosts.sort_by_key(|h| std::cmp::Reverse(h.sid));
        order.extend(hosts.into_iter().map(|h| h.node_id));
    }
    Ok(order)
}

/// Appends what this call sees to `/data/calls.jsonl`.
fn record(ctx: &Context, service: &str, phase: &str) -> Result<()> {
    let ids = |hosts: Vec<meta::Host>| hosts.into_iter().map(|h| h.node_id).collect::<Vec<_>>();
    let line = json!({
        "phase": phase,
        "service": service,
        "attempt": ctx.attempt(),
        "operation": format!("{:?}", ctx.operation()),
        "operation_id": ctx.node().operation_id,
        "node_id": ctx.node_id(),
        "instance_id": ctx.node().instance_id,
        "role": ctx.role(),
        "hosts": ids(meta::all_hosts()?),
        "adding": ids(meta::adding_hosts()?),
        "deleting": ids(meta::deleting_hosts()?),
        "vertical": meta::vertical_scaling_roles()?,
        "pre_check": ctx.is_pre_check(),
        "params": serde_json::from_str::<serde_json::Value>(ctx.params_json()).unwrap_or_default(),
        "cpu": meta::get("/host/cpu")?,
        "ip": meta::get("/host/ip")?,
        "vxnet": meta::get("/cluster/vxnet")?,
        "reserved": reserved_ips()?,
        "version": env!("CARGO_PKG_VERSION"),
        "app_version": meta::get("/cluster/app_version")?,
        "audit": [meta::get("/upgrade-audit/from_app_version")?, meta::get("/upgrade-audit/to_app_version")?],
        "revision": meta::revision(),
        "time_ms": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0),
    });
    // A pre-check's directories are read-only: what it saw goes to its log.
    if ctx.is_pre_check() {
        hookhost_sdk::log::info(&line.to_string());
        return Ok(());
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open("/data/calls.jsonl")
        .map_err(|e| fail(3, format!("/data/calls.jsonl: {e}")))?;
    writeln!(file, "{line}").map_err(|e| fail(3, format!("/data/calls.jsonl: {e}")))
}
