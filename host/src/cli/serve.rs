//! `hookhost serve` and `hookhost tenant ...`: the multi-tenant server and
//! who may call it.

use super::{Global, print::emit};
use anyhow::Context as _;
use clap::{Args, Subcommand};
use hookhost::server::{Quotas, Server, ServerConfig, Tenants};
use serde_json::json;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;

#[derive(Args)]
pub struct ServeArgs {
    /// The address to listen on (a port of 0 picks a free one; the address is printed).
    #[arg(long, default_value = "127.0.0.1:7411")]
    listen: SocketAddr,
    /// Hooks running at once in the whole server, shared fairly between tenants.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1024))]
    hook_slots: u32,
    /// Run every cluster's health checks and monitor this often (e.g. `200ms`,
    /// `10s`) instead of each role's `interval_sec`: for trying health hooks.
    #[arg(long, value_name = "DURATION", value_parser = positive_duration)]
    health_interval: Option<std::time::Duration>,
}

/// A duration above zero (`200ms`, `1m`).
fn positive_duration(text: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("give a duration above zero".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("{e} (write e.g. 200ms, 10s, 1m)")),
    }
}

/// Runs the server until Ctrl-C or SIGTERM.
pub async fn serve(global: &Global, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let state_dir = global.state_dir()?;
    let server = Server::open(ServerConfig {
        state_dir: state_dir.clone(),
        store: global.store.clone(),
        cache_dir: global.cache_dir(),
        hook_slots: args.hook_slots,
        health_interval: args.health_interval,
    })?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let resumed = server.resume_all()?;
    let tenants = Tenants::new(&state_dir).list()?.len();
    let mut banner = format!(
        "hookhost serving http://{addr} · state {}{} · {tenants} tenants · {resumed} operations resumed\n",
        state_dir.display(),
        global
            .store
            .as_ref()
            .map(|url| format!(" · store {url}"))
            .unwrap_or_default()
    );
    if tenants == 0 {
        banner.push_str("no tenant yet: add one with `hookhost tenant add <name>` (its token is printed once)\n");
    }
    // A closed stdout (a supervisor that read the address and left) must not stop the server.
    let mut out = std::io::stdout();
    let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
    server.serve(listener).await?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Add a tenant and print its token (shown this once; only its hash is kept).
    ///
    /// Example: hookhost tenant add acme --max-clusters 5
    Add {
        /// The tenant's name: lowercase letters, digits, '.', '_' and '-', at most 32.
        name: String,
        #[command(flatten)]
        quotas: QuotaArgs,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List the tenants and their quotas.
    List {
        /// Print one JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Change a tenant's quotas (a running server applies them to its next requests).
    Set {
        /// The tenant.
        name: String,
        #[command(flatten)]
        quotas: QuotaArgs,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Take a tenant's access away; its clusters stay on disk.
    Remove {
        /// The tenant.
        name: String,
    },
}

/// Quotas given on the command line; the others keep their value.
#[derive(Args)]
#[command(next_help_heading = "Quotas")]
pub struct QuotaArgs {
    /// Hooks running at once [default for a new tenant: 16].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    max_hooks: Option<u32>,
    /// Memory one hook may take, MiB [default: 256].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    max_hook_memory_mib: Option<u64>,
    /// Clusters kept [default: 20].
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    max_clusters: Option<u32>,
    /// Nodes in all its clusters [default: 200].
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=10_000_000))]
    max_nodes: Option<u32>,
    /// Operations running at once [default: 4].
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    max_operations: Option<u32>,
}

impl QuotaArgs {
    fn apply(&self, quotas: &mut Quotas) {
        let set = |target: &mut u32, value: Option<u32>| *target = value.unwrap_or(*target);
        set(&mut quotas.max_hooks, self.max_hooks);
        set(&mut quotas.max_clusters, self.max_clusters);
        set(&mut quotas.max_nodes, self.max_nodes);
        set(&mut quotas.max_operations, self.max_operations);
        quotas.max_hook_memory_mib = self.max_hook_memory_mib.unwrap_or(quotas.max_hook_memory_mib);
    }
}

impl TenantCommand {
    /// Whether the command was asked for JSON output.
    pub fn wants_json(&self) -> bool {
        match self {
            TenantCommand::Add { json, .. } | TenantCommand::List { json } | TenantCommand::Set { json, .. } => *json,
            TenantCommand::Remove { .. } => false,
        }
    }
}

/// Runs a `tenant` subcommand.
pub fn tenant(global: &Global, cmd: TenantCommand) -> anyhow::Result<ExitCode> {
    let tenants = Tenants::new(&global.state_dir()?);
    match cmd {
        TenantCommand::Add { name, quotas, json } => {
            let mut q = Quotas::default();
            quotas.apply(&mut q);
            let (tenant, token) = tenants.add(&name, q)?;
            if json {
                emit(&format!(
                    "{:#}\n",
                    json!({"tenant": tenant.name, "token": token, "quotas": tenant.quotas})
                ));
            } else {
                emit(&format!(
                    "tenant {} added; its token (shown this once, keep it):\n{token}\n\
                     use it as `Authorization: Bearer <token>`, or HOOKHOST_TOKEN with --server\n",
                    tenant.name
                ));
            }
        }
        TenantCommand::List { json } => {
            let all = tenants.list()?;
            let mut out = String::new();
            for t in &all {
                if json {
                    let _ = writeln!(
                        out,
                        "{}",
                        json!({"tenant": t.name, "quotas": t.quotas, "added_at": t.added_at})
                    );
                } else {
                    let q = t.quotas;
                    let _ = writeln!(
                        out,
                        "{:<20} hooks {} · {} MiB a hook · clusters {} · nodes {} · operations {}",
                        t.name, q.max_hooks, q.max_hook_memory_mib, q.max_clusters, q.max_nodes, q.max_operations
                    );
                }
            }
            if all.is_empty() && !json {
                out.push_str("no tenants (hookhost tenant add <name>)\n");
            }
            emit(&out);
        }
        TenantCommand::Set { name, quotas, json } => {
            let tenant = tenants.set_quotas(&name, |q| quotas.apply(q))?;
            if json {
                emit(&format!(
                    "{:#}\n",
                    json!({"tenant": tenant.name, "quotas": tenant.quotas})
                ));
            } else {
                emit(&format!("tenant {}: {:?}\n", tenant.name, tenant.quotas));
            }
        }
        TenantCommand::Remove { name } => {
            tenants.remove(&name)?;
            let kept = match &global.store {
                Some(url) => format!("in {}", url.nested(&format!("tenants/{name}"))),
                None => "on disk".into(),
            };
            emit(&format!(
                "tenant {name} removed (its clusters stay {kept}; a tenant added again by this name has them)\n"
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}
