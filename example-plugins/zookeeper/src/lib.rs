//! Lifecycle hooks of a ZooKeeper ensemble (role `zk_node`).
//!
//! - `render`: `/opt/zookeeper/conf/zoo.cfg` with one `server.<sid>=<ip>:2888:3888`
//!   line per node of the ensemble.
//! - `init`: writes `/data/zookeeper/myid` from `/host/sid`.
//! - `start` / `stop`: check `myid` and record the server state.
//! - `destroy`: refuses (code 21) while this node holds transaction data that
//!   no surviving node has, and (code 22) to remove the leader from a
//!   running ensemble.
//! - `scale_in`: its pre-check refuses (code 22) when the leader is among the
//!   leaving nodes, as the real ZooKeeper app does; `scale_out` and `scale_in`
//!   log the ensemble's new members.
//!
//! The leader is modelled as ZooKeeper elects it among equally up-to-date
//! servers: the node with the highest `sid` (myid).
//! - `health-check`: checks this node's identity and port settings.
//! - `find_leader` (a custom service, the backup's `selector`): replies the
//!   leader's node id; `backup` on the leader writes a snapshot of the
//!   server's state (`/data/zookeeper/snapshot.<snapshot_id>`) before its
//!   volume is copied; `restore` (a new cluster from a backup) checks that
//!   `myid` still matches `/host/sid` and starts the server.
//!
//! Built as version 2 (the `zookeeper-v2` crate builds this source as 2.0.0),
//! the app changes as a real new release would: `zoo.cfg` purges old
//! snapshots (`autopurge.*`, from `/env`), the data directory has format 2,
//! which `upgrade` migrates to (after checking the new `zoo.cfg` is in
//! place) and `start` requires, and `get_nodes_order` upgrades the
//! followers first and the leader last.

use hookhost_sdk::meta::{self, Host};
use hookhost_sdk::{ConfigFile, Context, Hooks, NodeContext, Operation, Result, Service, fail, log};
use std::fs;

/// ZooKeeper's data directory on the node's volume.
const DATA_DIR: &str = "/data/zookeeper";
/// Where the rendered configuration goes.
const ZOO_CFG: &str = "/opt/zookeeper/conf/zoo.cfg";
/// ZooKeeper's `myid` is 1..=255.
const MAX_SID: u32 = 255;
/// Whether this build is the app's version 2.
const V2: bool = {
    let major = env!("CARGO_PKG_VERSION_MAJOR").as_bytes();
    major.len() == 1 && major[0] == b'2'
};
/// The data format version 2 keeps, in `/data/zookeeper/format`.
const FORMAT: &str = "2";

/// Codes this component fails with (the spec's `err_code<N>`).
const EC_BAD_SID: u32 = 11;
const EC_IO: u32 = 12;
const EC_NOT_INITIALISED: u32 = 13;
const EC_OLD_FORMAT: u32 = 14;
const EC_UNREPLICATED_DATA: u32 = 21;
const EC_LEADER_LEAVES: u32 = 22;
const EC_UNHEALTHY: u32 = 31;

struct ZooKeeper;

impl Hooks for ZooKeeper {
    fn services() -> Vec<Service> {
        let mut services = vec![
            Service::Init,
            Service::Start,
            Service::Stop,
            Service::Destroy,
            Service::ScaleOut,
            Service::ScaleIn,
            Service::Reload,
            Service::HealthCheck,
            Service::Backup,
            Service::Restore,
            Service::Custom("find_leader".into()),
        ];
        if V2 {
            services.extend([Service::Upgrade, Service::GetNodesOrder]);
        }
        services
    }

    fn run(ctx: &Context) -> Result<()> {
        match ctx.service() {
            Service::Init => init(),
            Service::Start if V2 => {
                check_format()?;
                set_state("running")
            }
            Service::Start => set_state("running"),
            Service::Upgrade if V2 => upgrade(),
            Service::GetNodesOrder if V2 => {
                ctx.reply(upgrade_order()?.join(","));
                Ok(())
            }
            Service::Stop => set_state("stopped"),
            Service::Destroy => destroy(ctx),
            Service::ScaleOut => {
                let joining: Vec<String> = meta::adding_hosts()?.into_iter().map(|h| h.node_id).collect();
                log::info(&format!("ensemble grows by {}", joining.join(", ")));
                Ok(())
            }
            Service::ScaleIn => scale_in(ctx),
            Service::Reload => {
                log::info("zoo.cfg changed: rolling restart of the server");
                Ok(())
            }
            Service::HealthCheck => health_check(),
            Service::Custom(name) if name == "find_leader" => {
                ctx.reply(leader()?.node_id);
                Ok(())
            }
            Service::Backup => backup(ctx),
            Service::Restore if V2 => {
                check_format()?;
                set_state("running")
            }
            Service::Restore => set_state("running"),
            other => Err(fail(1, format!("service {other:?} is not implemented"))),
        }
    }

    fn render(_node: &NodeContext) -> Result<Vec<ConfigFile>> {
        let mut cfg = format!(
            "tickTime={}\ninitLimit={}\nsyncLimit={}\ndataDir={DATA_DIR}\nclientPort={}\n",
            meta::env_or("tickTime", "2000")?,
            meta::env_or("initLimit", "10")?,
            meta::env_or("syncLimit", "5")?,
            meta::env_or("client_port", "2181")?,
        );
        if V2 {
            cfg.push_str(&format!(
                "autopurge.snapRetainCount={}\nautopurge.purgeInterval={}\n",
                meta::env_or("autopurge_snap_retain_count", "3")?,
                meta::env_or("autopurge_purge_interval", "24")?,
            ));
        }
        for host in meta::hosts(&meta::this_host()?.role)? {
            let sid = sid_of(&host)?;
            cfg.push_str(&format!("server.{sid}={}:2888:3888\n", host.ip));
        }
        Ok(vec![ConfigFile::text(ZOO_CFG, cfg)])
    }
}

hookhost_sdk::export_hooks!(ZooKeeper);

/// A node's `sid`, checked against ZooKeeper's bounds.
fn sid_of(host: &Host) -> Result<u32> {
    match host.sid {
        Some(sid @ 1..=MAX_SID) => Ok(sid),
        other => Err(fail(
            EC_BAD_SID,
            format!("node {} has sid {other:?}; ZooKeeper needs 1..={MAX_SID}", host.node_id),
        )),
    }
}

fn io(what: &str, e: std::io::Error) -> hookhost_sdk::Error {
    fail(EC_IO, format!("{what}: {e}"))
}

/// Writes `myid`, the node's identity in the ensemble.
fn init() -> Result<()> {
    let sid = sid_of(&meta::this_host()?)?;
    fs::create_dir_all(DATA_DIR).map_err(|e| io(DATA_DIR, e))?;
    fs::write(format!("{DATA_DIR}/myid"), format!("{sid}\n")).map_err(|e| io("myid", e))?;
    log::info(&format!("wrote {DATA_DIR}/myid = {sid}"));
    if V2 {
        fs::write(format!("{DATA_DIR}/format"), FORMAT).map_err(|e| io("format", e))?;
    }
    Ok(())
}

/// Version 2's `start` needs the data in its format.
fn check_format() -> Result<()> {
    let format = fs::read_to_string(format!("{DATA_DIR}/format")).unwrap_or_else(|_| "1".into());
    if format.trim() != FORMAT {
        return Err(fail(
            EC_OLD_FORMAT,
            format!("the data is in format {}: upgrade must migrate it first", format.trim()),
        ));
    }
    Ok(())
}

/// Migrates the data to format 2, once the new `zoo.cfg` (which purges
/// old snapshots) is in place.
fn upgrade() -> Result<()> {
    let cfg = fs::read_to_string(ZOO_CFG).map_err(|e| io(ZOO_CFG, e))?;
    if !cfg.contains("autopurge.snapRetainCount=") {
        return Err(fail(
            EC_IO,
            format!("{ZOO_CFG} has no autopurge settings: it was not rendered by 2.0"),
        ));
    }
    let from = meta::get("/upgrade-audit/from_app_version")?.unwrap_or_else(|| "?".into());
    fs::write(format!("{DATA_DIR}/format"), FORMAT).map_err(|e| io("format", e))?;
    log::info(&format!("migrated the data of version {from} to format {FORMAT}"));
    Ok(())
}

/// The order to upgrade the ensemble in: followers by sid, the leader last
/// (so it changes once, and the ensemble keeps a quorum throughout).
fn upgrade_order() -> Result<Vec<String>> {
    let me = meta::this_host()?;
    let mut hosts = meta::hosts(&me.role)?;
    hosts.sort_by_key(|h| h.sid);
    Ok(hosts.into_iter().map(|h| h.node_id).collect())
}

/// Records the server state after checking that `myid` matches `/host/sid`.
fn set_state(state: &str) -> Result<()> {
    let sid = sid_of(&meta::this_host()?)?;
    let myid = fs::read_to_string(format!("{DATA_DIR}/myid"))
        .map_err(|e| fail(EC_NOT_INITIALISED, format!("{DATA_DIR}/myid: {e}; was init run?")))?;
    if myid.trim() != sid.to_string() {
        return Err(fail(
            EC_BAD_SID,
            format!("myid is {} but /host/sid is {sid}", myid.trim()),
        ));
    }
    fs::write(format!("{DATA_DIR}/state"), state).map_err(|e| io("state", e))?;
    log::info(&format!("server {sid} {state}"));
    Ok(())
}

/// Writes the server's snapshot before the volume is copied: its state and
/// the backup it is for (`{"snapshot_id": ...}`).
fn backup(ctx: &Context) -> Result<()> {
    let params: serde_json::Value = ctx.params()?;
    let id = params["snapshot_id"].as_str().unwrap_or("manual");
    let state = fs::read_to_string(format!("{DATA_DIR}/state")).unwrap_or_default();
    let path = format!("{DATA_DIR}/snapshot.{id}");
    fs::write(&path, format!("state={state}\n")).map_err(|e| io(&path, e))?;
    log::info(&format!("wrote {path} for backup {id}"));
    Ok(())
}

/// The leader of the ensemble this node is in: the node of highest sid.
fn leader() -> Result<Host> {
    let me = meta::this_host()?;
    meta::hosts(&me.role)?
        .into_iter()
        .max_by_key(|h| h.sid)
        .ok_or_else(|| fail(EC_IO, "no node is listed under /hosts".to_string()))
}

/// Refuses when the leader is among the leaving nodes.
fn refuse_leader(leaving: &[String]) -> Result<()> {
    let leader = leader()?;
    if leaving.contains(&leader.node_id) {
        return Err(fail(
            EC_LEADER_LEAVES,
            format!(
                "node {} is the ensemble's leader (sid {}): delete followers only",
                leader.node_id,
                leader.sid.unwrap_or(0)
            ),
        ));
    }
    Ok(())
}

/// `scale_in`: the pre-check gets the leaving nodes as `{"nodes": [...]}`;
/// the service itself reads them from `/deleting-hosts`.
fn scale_in(ctx: &Context) -> Result<()> {
    let leaving: Vec<String> = if ctx.is_pre_check() {
        let params: serde_json::Value = ctx.params()?;
        params["nodes"]
            .as_array()
            .map(|ids| ids.iter().filter_map(|id| id.as_str().map(String::from)).collect())
            .unwrap_or_default()
    } else {
        meta::deleting_hosts()?.into_iter().map(|h| h.node_id).collect()
    };
    refuse_leader(&leaving)?;
    if !ctx.is_pre_check() {
        log::info(&format!("ensemble shrinks: {} leave", leaving.join(", ")));
    }
    Ok(())
}

/// The data-loss guard: refuse while this node holds transaction logs or
/// snapshots and no other node of the ensemble survives the operation.
fn destroy(ctx: &Context) -> Result<()> {
    let me = meta::this_host()?;
    if ctx.operation() == Operation::DeleteNodes {
        refuse_leader(std::slice::from_ref(&me.node_id))?;
    }
    let files = transaction_files()?;
    if files.is_empty() {
        log::info("no transaction data on this node");
        return Ok(());
    }
    let survivors: Vec<Host> = if ctx.operation() == Operation::DeleteCluster {
        Vec::new()
    } else {
        let leaving: Vec<String> = meta::deleting_hosts()?.into_iter().map(|h| h.node_id).collect();
        meta::hosts(&me.role)?
            .into_iter()
            .filter(|h| h.node_id != me.node_id && !leaving.contains(&h.node_id))
            .collect()
    };
    if survivors.is_empty() {
        return Err(fail(
            EC_UNREPLICATED_DATA,
            format!(
                "node {} holds {} transaction file(s) ({}) that no surviving node has; back up first or force the deletion",
                me.node_id,
                files.len(),
                files.join(", ")
            ),
        ));
    }
    log::info(&format!("data is replicated on {} surviving node(s)", survivors.len()));
    Ok(())
}

/// Names of the transaction logs and snapshots in `version-2`.
fn transaction_files() -> Result<Vec<String>> {
    let dir = format!("{DATA_DIR}/version-2");
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(&dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let name = entry
            .map_err(|e| io(&dir, e))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.starts_with("log.") || name.starts_with("snapshot.") {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Reads three keys and checks they describe a usable server.
fn health_check() -> Result<()> {
    let sid = meta::require("/host/sid")?;
    let ip = meta::require("/host/ip")?;
    let port = meta::env_or("client_port", "2181")?;
    let healthy = sid.parse::<u32>().is_ok_and(|s| (1..=MAX_SID).contains(&s))
        && !ip.is_empty()
        && port.parse::<u16>().is_ok_and(|p| p > 0);
    if healthy {
        Ok(())
    } else {
        Err(fail(
            EC_UNHEALTHY,
            format!("bad identity: sid={sid} ip={ip} port={port}"),
        ))
    }
}
