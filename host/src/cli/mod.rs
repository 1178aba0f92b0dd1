//! Command-line parsing and dispatch. Exit codes: 0 success, 1 the hook
//! failed, 2 bad input (or the hook could not be run at all).

mod app;
mod backup;
mod cluster;
mod hook;
mod inspect;
mod op;
mod operation;
mod plan;
mod print;
mod progress;
mod remote;
mod serve;
mod target;

use clap::{Args, Parser, Subcommand};
use hookhost::engine::Engine;
use hookhost::metadata::MemoryStore;
use hookhost::provider::LocalProvider;
use hookhost::runtime::{Runtime, RuntimeConfig, default_cache_dir};
use hookhost::store::MemoryOps;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Exit code when the hook ran and failed.
const EXIT_HOOK_FAILED: u8 = 1;
/// Exit code for bad input.
const EXIT_BAD_INPUT: u8 = 2;

#[derive(Parser)]
#[command(
    name = "hookhost",
    version,
    about = "Run cluster lifecycle hooks as sandboxed WebAssembly components",
    long_about = "Hookhost runs the lifecycle of cluster applications and calls each role's hooks \
(init, start, stop, destroy, scale_in, scale_out, upgrade, ...) as sandboxed WebAssembly components.\n\n\
Run a cluster's lifecycle:\n  \
hookhost cluster create spec.json   # then: cluster stop/start/delete <id>, op show <op>\n\n\
Test a hook locally:\n  \
hookhost hook run --plugin zk.wasm --service init --metadata cluster.json --node cln-1\n\n\
Exit codes: 0 success; 1 a hook failed, or an operation failed, was refused (aborted) or cancelled; \
2 bad input (and a busy or missing cluster); 130 when a second Ctrl-C leaves an operation interrupted.",
    after_help = "Environment: HOOKHOST_STATE (state directory), HOOKHOST_CACHE_DIR (compile cache), HOOKHOST_LOG (log filter, e.g. debug), \
HOOKHOST_STORE (--store), HOOKHOST_LEASE_TTL (seconds an etcd claim outlives a killed process, default 10), \
HOOKHOST_SERVER and HOOKHOST_TOKEN (--server, --token)."
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
#[command(next_help_heading = "Global options")]
struct Global {
    /// Where compiled components are cached [default: $HOOKHOST_CACHE_DIR or ~/.cache/hookhost].
    #[arg(long, global = true, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Where apps, backups, nodes and (without --store) clusters, operations and the metadata
    /// live [default: $HOOKHOST_STATE or ~/.local/share/hookhost].
    #[arg(long, global = true, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Compile components every time instead of caching them.
    #[arg(long, global = true, conflicts_with = "cache_dir")]
    no_cache: bool,
    /// Log more (repeat for more detail); logs go to stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Keep clusters, operations and the metadata in etcd
    /// (etcd://host:port[,host:port...][/namespace], e.g. etcd://127.0.0.1:2379/prod) instead
    /// of the state directory's file; the state directory still holds this host's apps,
    /// backups, nodes and compile cache. Needs a hookhost built with `--features etcd`;
    /// ignored with --server (the server has its own).
    #[arg(long, global = true, value_name = "URL", env = "HOOKHOST_STORE")]
    store: Option<hookhost::etcd::EtcdUrl>,
    /// Send cluster, op, plan, app and backup commands to this `hookhost serve`
    /// (http://host:port) instead of the local state directory; same output and exit codes.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "HOOKHOST_SERVER",
        conflicts_with = "state_dir"
    )]
    server: Option<String>,
    /// The tenant's token for --server (printed by `hookhost tenant add`).
    #[arg(
        long,
        global = true,
        value_name = "TOKEN",
        env = "HOOKHOST_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Create, delete, stop, start, scale, back up and restore clusters, run their services, change their env; look at them.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Operations: their steps, hook events and timeline; resume or cancel them.
    #[command(subcommand)]
    Op(op::OpCommand),
    /// Print the plan an operation would run, without running it.
    #[command(subcommand)]
    Plan(operation::OperationCommand),
    /// Register, list and show app versions; check an app spec and its components.
    #[command(subcommand)]
    App(app::AppCommand),
    /// List, show and delete backups (take one with `cluster backup`, restore with `cluster restore`).
    #[command(subcommand)]
    Backup(backup::BackupCommand),
    /// Run or render one component's hooks as one node of a metadata fixture.
    #[command(subcommand)]
    Hook(hook::HookCommand),
    /// Show what a component implements: its services, WIT package and imports.
    Inspect(inspect::InspectArgs),
    /// Serve the HTTP API to many tenants (each sees only its own apps and clusters).
    ///
    /// Example: hookhost tenant add acme && hookhost serve --listen 127.0.0.1:7411
    Serve(serve::ServeArgs),
    /// Add, list and change the server's tenants (their tokens and quotas).
    #[command(subcommand)]
    Tenant(serve::TenantCommand),
}

/// Parses the command line, runs it and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Asked for JSON, a bad command line is one JSON line too.
        Err(e) if e.use_stderr() && std::env::args().any(|a| a == "--json") => {
            let first = e.to_string();
            let first = first.lines().next().unwrap_or_default().trim_start_matches("error: ");
            let doc = serde_json::json!({"ok": false, "kind": "bad-input", "error": print::clean(first)});
            print::emit(&format!("{doc}\n"));
            return ExitCode::from(EXIT_BAD_INPUT);
        }
        Err(e) => e.exit(),
    };
    init_logging(cli.global.verbose);
    let json = cli.command.wants_json();
    let tokio = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    let result = tokio.block_on(async {
        match cli.command {
            Command::Cluster(cmd) => cluster::run(&cli.global, cmd).await,
            Command::Op(cmd) => op::run(&cli.global, cmd).await,
            Command::Plan(cmd) => plan::run(&cli.global, cmd).await,
            Command::App(cmd) => app::run(&cli.global, cmd).await,
            Command::Backup(cmd) => backup::run(&cli.global, cmd).await,
            Command::Hook(cmd) => hook::run(&cli.global, cmd).await,
            Command::Inspect(args) => inspect::run(&cli.global, args).await,
            Command::Serve(args) => serve::serve(&cli.global, args).await,
            Command::Tenant(cmd) => serve::tenant(&cli.global, cmd),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) if json => {
            // One line: commands that print JSON lines stay parseable.
            let doc = serde_json::json!({"ok": false, "kind": "bad-input", "error": chain(&e)});
            print::emit(&format!("{doc}\n"));
            ExitCode::from(EXIT_BAD_INPUT)
        }
        Err(e) => fail(e),
    }
}

/// An error with its causes, each said once (a cause whose words its
/// error already holds is not repeated).
fn chain(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let said = cause.to_string();
        if !text.contains(&said) {
            text = format!("{text}: {said}");
        }
    }
    text
}

impl Command {
    /// Whether the command was asked for JSON output.
    fn wants_json(&self) -> bool {
        match self {
            Command::Cluster(cmd) => cmd.wants_json(),
            Command::Op(cmd) => cmd.wants_json(),
            Command::Plan(cmd) => cmd.json(),
            Command::App(cmd) => cmd.wants_json(),
            Command::Backup(cmd) => cmd.wants_json(),
            Command::Hook(cmd) => cmd.wants_json(),
            Command::Inspect(args) => args.json,
            Command::Serve(_) => false,
            Command::Tenant(cmd) => cmd.wants_json(),
        }
    }
}

/// `$HOOKHOST_STATE`, else `$XDG_DATA_HOME/hookhost`, else `~/.local/share/hookhost`.
fn default_state_dir() -> Option<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    env("HOOKHOST_STATE")
        .or_else(|| env("XDG_DATA_HOME").map(|d| d.join("hookhost")))
        .or_else(|| env("HOME").map(|d| d.join(".local/share/hookhost")))
}

fn fail(e: anyhow::Error) -> ExitCode {
    // Several problems are several lines, each its own `error:` line.
    for line in chain(&e).lines() {
        eprintln!("error: {}", print::clean(line));
    }
    ExitCode::from(EXIT_BAD_INPUT)
}

fn init_logging(verbose: u8) {
    use std::io::IsTerminal;
    let default = match verbose {
        0 => "warn",
        1 => "hookhost=info,warn",
        _ => "hookhost=debug,warn",
    };
    let filter = match std::env::var("HOOKHOST_LOG") {
        Ok(text) => tracing_subscriber::EnvFilter::try_new(&text).unwrap_or_else(|e| {
            eprintln!("warning: HOOKHOST_LOG={text:?} is not a log filter ({e}); using {default:?}");
            tracing_subscriber::EnvFilter::new(default)
        }),
        Err(_) => tracing_subscriber::EnvFilter::new(default),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

impl Global {
    fn state_dir(&self) -> anyhow::Result<PathBuf> {
        self.state_dir.clone().or_else(default_state_dir).ok_or_else(|| {
            anyhow::anyhow!("no state directory: set --state-dir or HOOKHOST_STATE (HOME is not set either)")
        })
    }

    /// The runtime of lifecycle flows: they run many nodes' hooks at once.
    fn flow_runtime(&self) -> anyhow::Result<Runtime> {
        Ok(Runtime::new(RuntimeConfig {
            cache_dir: self.cache_dir(),
            max_instances: 64,
            ..RuntimeConfig::default()
        })?)
    }

    /// The lifecycle engine of the state directory these flags name, made if missing.
    fn engine(&self) -> anyhow::Result<Engine> {
        Ok(Engine::builder()
            .state_dir(self.state_dir()?)
            .etcd(self.store.clone())
            .runner(Arc::new(self.flow_runtime()?))
            .build()?)
    }

    /// The engine for commands that only read: a state directory that does
    /// not exist is not made (a typo in --state-dir leaves nothing behind);
    /// it reads as empty, and `say_so` tells the user. One that exists is
    /// checked as any other.
    fn reader(&self, say_so: bool) -> anyhow::Result<Engine> {
        let dir = self.state_dir()?;
        if std::fs::symlink_metadata(&dir).is_ok() || self.store.is_some() {
            return self.engine();
        }
        if say_so {
            eprintln!(
                "note: nothing has run in {} yet (see --state-dir, $HOOKHOST_STATE)",
                dir.display()
            );
        }
        Ok(Engine::builder()
            .operations(Arc::new(MemoryOps::new()))
            .metadata(Arc::new(MemoryStore::new()))
            .provider(Arc::new(LocalProvider::new(&dir)))
            .catalog(hookhost::apps::Catalog::new(&dir))
            .backups(hookhost::backups::Backups::new(&dir))
            .runner(Arc::new(self.flow_runtime()?))
            .build()?)
    }

    /// Where cluster, op, plan, app and backup commands go: the server
    /// (`--server`), or this state directory's engine (`reader`: one that
    /// only reads, see [`Global::reader`]).
    fn target(&self, reader: bool) -> anyhow::Result<target::Target> {
        Ok(match &self.server {
            Some(url) => target::Target::Server(Box::new(remote::Remote::new(url, self.token.clone())?)),
            None if reader => target::Target::Local(self.reader(true)?),
            None => target::Target::Local(self.engine()?),
        })
    }

    fn cache_dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            None
        } else {
            self.cache_dir.clone().or_else(default_cache_dir)
        }
    }

    /// The runtime these flags ask for.
    fn runtime(&self, fuel: bool) -> anyhow::Result<Runtime> {
        Ok(Runtime::new(RuntimeConfig {
            cache_dir: self.cache_dir(),
            fuel,
            // One command runs few hooks at once; a small pool reserves little address space.
            max_instances: 8,
            ..RuntimeConfig::default()
        })?)
    }
}
