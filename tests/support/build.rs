//! Builds every component of `example-plugins/` for wasm32-wasip2, once per
//! test run (cargo reruns this only when the guests, the SDK or the WIT change).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir.join("../..");
    for watched in ["example-plugins", "plugin-sdk", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    // OUT_DIR is <target>/<profile>/build/<pkg>/out: share one guest build across profiles.
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target = out_dir.ancestors().nth(4).unwrap_or(&out_dir).join("guests");

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(root.join("example-plugins/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        // The outer build's flags are for the host, not for wasm guests.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .output()
        .expect("cannot run cargo to build the hook components");
    if !output.status.success() {
        panic!(
            "building the hook components failed{}\n{}",
            hint(&output.stderr),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let dir = target.join("wasm32-wasip2/release");
    println!("cargo:rustc-env=HOOKHOST_GUESTS_DIR={}", dir.display());
    println!("cargo:rustc-env=HOOKHOST_ROOT={}", canonical(&root).display());
}

fn hint(stderr: &[u8]) -> &'static str {
    if String::from_utf8_lossy(stderr).contains("wasm32-wasip2") {
        " (is the target installed? run `rustup target add wasm32-wasip2`)"
    } else {
        ""
    }
}

fn canonical(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}
