//! The `hookhost` command line.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    // Backtraces inside wasmtime errors double the cost of every hook call;
    // panics keep theirs (RUST_BACKTRACE). Set before any thread starts.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: single-threaded here, nothing reads the environment concurrently.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
    cli::main()
}
