//! Command-line parsing and dispatch. Exit codes: 0 success, 1 the hook
//! failed, 2 bad input (or the hook could not be run at all).

mod hook;
mod inspect;
mod print;

use clap::{Args, Parser, Subcommand};
use hookhost::runtime::{Runtime, RuntimeConfig, default_cache_dir};
use std::path::PathBuf;
use std::process::ExitCode;

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
Test a hook locally:\n  \
hookhost hook run --plugin zk.wasm --service init --metadata cluster.json --node cln-1\n\n\
Exit codes: 0 success, 1 the hook failed, 2 bad input.",
    after_help = "Environment: HOOKHOST_CACHE_DIR (compile cache), HOOKHOST_LOG (log filter, e.g. debug)."
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
    /// Compile components every time instead of caching them.
    #[arg(long, global = true, conflicts_with = "cache_dir")]
    no_cache: bool,
    /// Log more (repeat for more detail); logs go to stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Subcommand)]
enum Command {
    /// Run or render one component's hooks as one node of a metadata fixture.
    #[command(subcommand)]
    Hook(hook::HookCommand),
    /// Show what a component implements: its services, WIT package and imports.
    Inspect(inspect::InspectArgs),
}

/// Parses the command line, runs it and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.global.verbose);
    let json = cli.command.wants_json();
    let tokio = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    let result = tokio.block_on(async {
        match cli.command {
            Command::Hook(cmd) => hook::run(&cli.global, cmd).await,
            Command::Inspect(args) => inspect::run(&cli.global, args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) if json => {
            let doc = serde_json::json!({"ok": false, "kind": "bad-input", "error": format!("{e:#}")});
            print::emit(&format!("{doc:#}\n"));
            ExitCode::from(EXIT_BAD_INPUT)
        }
        Err(e) => fail(e),
    }
}

impl Command {
    /// Whether the command was asked for JSON output.
    fn wants_json(&self) -> bool {
        match self {
            Command::Hook(cmd) => cmd.wants_json(),
            Command::Inspect(args) => args.json,
        }
    }
}

fn fail(e: anyhow::Error) -> ExitCode {
    eprintln!("error: {}", print::clean(&format!("{e:#}")));
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
    /// The runtime these flags ask for.
    fn runtime(&self, fuel: bool) -> anyhow::Result<Runtime> {
        let cache_dir = if self.no_cache {
            None
        } else {
            self.cache_dir.clone().or_else(default_cache_dir)
        };
        Ok(Runtime::new(RuntimeConfig {
            cache_dir,
            fuel,
            // One command runs few hooks at once; a small pool reserves little address space.
            max_instances: 8,
            ..RuntimeConfig::default()
        })?)
    }
}
