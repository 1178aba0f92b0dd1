//! `hookhost hook run` and `hookhost hook render`: one component, one node,
//! one metadata fixture, in the same sandbox the engine uses.

use super::{EXIT_HOOK_FAILED, Global, print};
use anyhow::{Context as _, anyhow, bail};
use clap::{Args, Subcommand};
use hookhost::hook::{Operation, Service, node_context, parse_operation, parse_service, service_name};
use hookhost::metadata::{ClusterView, Fixture, MemoryStore, MetadataStore};
use hookhost::runtime::{Call, EPOCH_TICK, Limits, MAX_TIMEOUT, Mount, Outcome, Plugin, Request, Runtime};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Subcommand)]
pub enum HookCommand {
    /// Run one service of a component as one node of a metadata fixture.
    ///
    /// The hook sees the fixture's cluster from the node's point of view
    /// (/host is the node), the work directory as its whole filesystem
    /// (mounted at /), no network and no environment.
    ///
    /// Example: hookhost hook run --plugin zk.wasm --service init --metadata zk.json --node cln-1
    Run(RunArgs),
    /// Print the config files a component renders for one node (the confd equivalent).
    ///
    /// Example: hookhost hook render --plugin zk.wasm --metadata zk.json --node cln-1
    Render(NodeArgs),
}

#[derive(Args)]
pub struct RunArgs {
    /// The service to run: init, start, stop, destroy, scale_out, scale_in, upgrade, ... or a custom name.
    #[arg(long, value_name = "NAME", value_parser = parse_service)]
    service: Service,
    /// service_params: a JSON object, or @FILE to read it from a file.
    #[arg(long, value_name = "JSON")]
    params: Option<String>,
    /// Only ask whether the service may run (the spec's pre_check); the work directory is read-only.
    #[arg(long)]
    pre_check: bool,
    #[command(flatten)]
    node: NodeArgs,
}

#[derive(Args)]
pub struct NodeArgs {
    /// The hook component (.wasm, built for wasm32-wasip2).
    #[arg(long, value_name = "FILE")]
    plugin: PathBuf,
    /// The cluster's metadata fixture (JSON; see the README). Repeat it to load
    /// neighbouring clusters into the same store, as on a shared host.
    #[arg(long = "metadata", value_name = "FILE", required = true)]
    metadata: Vec<PathBuf>,
    /// Run as this node (a node_id under /hosts).
    #[arg(long, value_name = "NODE_ID")]
    node: String,
    /// The node's directory, mounted read-write at / in the hook; it must
    /// exist [default: .hookhost/nodes/<cluster_id>/<node_id>, made if missing].
    #[arg(long, value_name = "DIR")]
    workdir: Option<PathBuf>,
    /// Stop the hook after this many seconds (0.01 to 86400; decimals allowed).
    #[arg(long, value_name = "SECS", default_value = "600", value_parser = parse_timeout, allow_negative_numbers = true)]
    timeout: Duration,
    /// Memory limit of the hook's instance, in MiB (1 to 1024).
    #[arg(long, value_name = "MIB", default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=1024))]
    memory: u64,
    /// Meter fuel and stop the hook after this many units (deterministic CPU budget).
    #[arg(long, value_name = "UNITS")]
    fuel: Option<u64>,
    /// The operation the hook is told it runs in.
    #[arg(long, value_name = "OP", default_value = "manual", value_parser = parse_operation)]
    operation: Operation,
    /// The operation id the hook is told.
    #[arg(long, value_name = "ID", default_value = "manual")]
    operation_id: String,
    /// The attempt number the hook is told (1 = first try).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    attempt: u32,
    /// Print the outcome as one JSON object.
    #[arg(long)]
    json: bool,
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    // Timeouts are enforced at the epoch tick's granularity.
    let min = EPOCH_TICK.as_secs_f64();
    if !(min..=MAX_TIMEOUT.as_secs_f64()).contains(&secs) {
        return Err(format!(
            "{text} is out of range: give {min} to {} seconds",
            MAX_TIMEOUT.as_secs()
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

impl HookCommand {
    /// Whether the command was asked for JSON output.
    pub fn wants_json(&self) -> bool {
        match self {
            HookCommand::Run(args) => args.node.json,
            HookCommand::Render(args) => args.json,
        }
    }
}

/// Runs a `hook` subcommand.
pub async fn run(global: &Global, cmd: HookCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        HookCommand::Run(args) => run_service(global, args).await,
        HookCommand::Render(args) => render(global, args).await,
    }
}

/// Everything prepared for a call as one node.
struct Prepared {
    runtime: Runtime,
    plugin: Plugin,
    call: Call,
    workdir: PathBuf,
}

async fn prepare(global: &Global, args: &NodeArgs) -> anyhow::Result<Prepared> {
    let view = node_view(&args.metadata, &args.node).await?;
    let runtime = global.runtime(args.fuel.is_some())?;
    let plugin = runtime.load(&args.plugin).await?;

    let node = node_context(&view, args.operation, &args.operation_id, args.attempt)
        .ok_or_else(|| anyhow!("node {} has no place in /hosts", args.node))?;
    // Ids are single path segments (the fixture checks), so this stays under .hookhost.
    let workdir = match &args.workdir {
        Some(dir) => {
            // A directory named by the user is used as it is, never made up.
            if !dir.is_dir() {
                let why = if dir.exists() {
                    "is not a directory"
                } else {
                    "does not exist"
                };
                bail!(
                    "--workdir {}: {why}; create it first (mkdir -p), or leave --workdir out to use .hookhost/nodes/<cluster>/<node>",
                    dir.display()
                );
            }
            // The node's `/` must not be the host's.
            let resolved = dir
                .canonicalize()
                .with_context(|| format!("--workdir {}", dir.display()))?;
            if resolved == Path::new("/") {
                bail!(
                    "--workdir {}: is the host's whole filesystem (/); give the node a directory of its own",
                    dir.display()
                );
            }
            resolved
        }
        None => {
            let dir = Path::new(".hookhost")
                .join("nodes")
                .join(&node.cluster_id)
                .join(&node.node_id);
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create the work directory {}", dir.display()))?;
            dir
        }
    };

    let call = Call {
        node,
        mounts: vec![Mount {
            host: workdir.clone(),
            guest: "/".into(),
            writable: true,
        }],
        limits: Limits {
            timeout: args.timeout,
            memory: args.memory << 20,
            fuel: args.fuel,
            ..Limits::default()
        },
        view,
    };
    Ok(Prepared {
        runtime,
        plugin,
        call,
        workdir,
    })
}

/// Loads the fixtures into one store and returns the view of the cluster holding `node_id`.
async fn node_view(fixtures: &[PathBuf], node_id: &str) -> anyhow::Result<ClusterView> {
    let store = MemoryStore::new();
    let mut clusters: Vec<(String, &Path)> = Vec::new();
    for file in fixtures {
        let fixture = Fixture::load(file)?;
        if let Some((_, first)) = clusters.iter().find(|(id, _)| *id == fixture.cluster_id) {
            bail!(
                "{}: cluster {} is already defined by {}",
                file.display(),
                fixture.cluster_id,
                first.display()
            );
        }
        store.apply(&fixture.writes).await?;
        clusters.push((fixture.cluster_id, file));
    }
    // The whole store, as on a shared host: the view alone keeps the neighbours out.
    let snapshot = Arc::new(store.snapshot("/").await?);
    let mut found = Vec::new();
    let mut misses = Vec::new();
    for (cluster_id, _) in &clusters {
        match ClusterView::for_node(snapshot.clone(), cluster_id, node_id) {
            Ok(view) => found.push(view),
            Err(e) => misses.push(e.to_string()),
        }
    }
    match found.len() {
        0 => bail!("no node {node_id} in the metadata: {}", misses.join("; ")),
        1 => Ok(found.remove(0)),
        _ => {
            let ids: Vec<&str> = found.iter().map(ClusterView::cluster_id).collect();
            bail!(
                "node {node_id} is in more than one cluster ({}); node ids must be unique",
                ids.join(", ")
            )
        }
    }
}

async fn run_service(global: &Global, args: RunArgs) -> anyhow::Result<ExitCode> {
    let params = service_params(args.params.as_deref())?;
    let prepared = prepare(global, &args.node).await?;
    let services = prepared.plugin.services();
    if !services.contains(&args.service) {
        let names: Vec<String> = services.iter().map(service_name).collect();
        bail!(
            "{} does not implement {}; it implements: {}",
            prepared.plugin.path().display(),
            service_name(&args.service),
            names.join(", ")
        );
    }
    let request = Request {
        service: args.service,
        params,
        pre_check: args.pre_check,
    };
    let outcome = prepared.runtime.run(&prepared.plugin, &prepared.call, &request).await;
    Ok(report(&args.node, &prepared, outcome, print::run_value))
}

async fn render(global: &Global, args: NodeArgs) -> anyhow::Result<ExitCode> {
    let prepared = prepare(global, &args).await?;
    let outcome = prepared.runtime.render(&prepared.plugin, &prepared.call).await;
    Ok(report(&args, &prepared, outcome, print::render_value))
}

/// Prints an outcome and returns its exit code.
fn report<T>(
    args: &NodeArgs,
    prepared: &Prepared,
    outcome: Outcome<T>,
    value: impl Fn(&T) -> print::Shown,
) -> ExitCode {
    let code = if outcome.result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_HOOK_FAILED)
    };
    print::emit(&print::outcome(
        &prepared.call,
        &prepared.workdir,
        &outcome,
        value,
        args.json,
    ));
    code
}

/// Largest `--params @FILE` accepted.
const MAX_PARAMS_BYTES: u64 = 1 << 20;

/// Reads `--params`: a JSON object, inline or from `@FILE`.
fn service_params(arg: Option<&str>) -> anyhow::Result<String> {
    let Some(arg) = arg else { return Ok("{}".into()) };
    let (text, source) = match arg.strip_prefix('@') {
        Some(file) => (
            hookhost::files::read_text_limited(Path::new(file), MAX_PARAMS_BYTES)
                .with_context(|| format!("--params: cannot read {file}"))?,
            file.to_string(),
        ),
        None => (arg.to_string(), "--params".to_string()),
    };
    let value: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{source}: invalid JSON"))?;
    if !value.is_object() {
        bail!("{source}: service_params must be a JSON object, like {{\"snapshot_id\": \"s-1\"}}");
    }
    Ok(value.to_string())
}
