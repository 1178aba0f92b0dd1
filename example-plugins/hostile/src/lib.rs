//! A component that attacks its sandbox, one custom service per attack.
//!
//! Resource attacks (`spin`, `sleep`, `hog`, `recurse`, `flood`, `log-flood`, `log-empty`,
//! `panic`) never return: the host must stop them. Escape attempts return
//! `Err(code, "denied: ...")` when the sandbox held and `Ok("ESCAPED: ...")`
//! when it did not, so a test sees exactly what the hook saw.

use hookhost_sdk::{Context, Hooks, Result, Service, fail, log, meta};
use std::hint::black_box;

/// Each attack's own code when it is denied.
const EC_FS: u32 = 40;
const EC_DOTDOT: u32 = 41;
const EC_NET: u32 = 42;
const EC_OTHER_CLUSTER: u32 = 43;
const EC_AMBIENT: u32 = 44;

const ATTACKS: &[&str] = &[
    "spin",
    "sleep",
    "hog",
    "recurse",
    "flood",
    "log-flood",
    "log-empty",
    "panic",
    "read-passwd",
    "dotdot",
    "socket",
    "other-cluster",
    "ambient",
];

struct Hostile;

impl Hooks for Hostile {
    fn services() -> Vec<Service> {
        ATTACKS.iter().map(|a| Service::Custom(a.to_string())).collect()
    }

    fn run(ctx: &Context) -> Result<()> {
        let Service::Custom(attack) = ctx.service() else {
            return Err(fail(1, "only custom services"));
        };
        match attack.as_str() {
            "spin" => spin(),
            "sleep" => std::thread::sleep(std::time::Duration::from_secs(3600)),
            "hog" => hog(),
            "recurse" => {
                black_box(recurse(1));
            }
            "flood" => flood(),
            "log-flood" => loop {
                log::info(&"x".repeat(4096));
            },
            "log-empty" => loop {
                log::info("");
            },
            "panic" => panic!("hostile hook panicked on purpose"),
            "read-passwd" => return read_passwd(ctx),
            "dotdot" => return dotdot(ctx),
            "socket" => return socket(ctx),
            "other-cluster" => return other_cluster(ctx),
            "ambient" => return ambient(ctx),
            other => return Err(fail(1, format!("unknown attack {other}"))),
        }
        Ok(())
    }
}

hookhost_sdk::export_hooks!(Hostile);

fn spin() {
    let mut x: u64 = 0;
    loop {
        x = black_box(x.wrapping_add(1));
    }
}

fn hog() {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![1u8; 1 << 20]);
        black_box(&hoard);
    }
}

/// Recursion that lives on the wasm call stack (no frame in linear memory).
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if depth == u64::MAX {
        return 0;
    }
    recurse(black_box(depth + 1)).wrapping_mul(black_box(depth))
}

fn flood() {
    let line = "y".repeat(1023);
    for _ in 0..10 * 1024 {
        println!("{line}");
    }
}

fn escaped(ctx: &Context, what: String) -> Result<()> {
    ctx.reply(format!("ESCAPED: {what}"));
    Ok(())
}

/// Reads the host's `/etc/passwd`.
fn read_passwd(ctx: &Context) -> Result<()> {
    match std::fs::read_to_string("/etc/passwd") {
        Ok(text) => escaped(ctx, format!("read /etc/passwd ({} bytes)", text.len())),
        Err(e) => Err(fail(EC_FS, format!("denied: /etc/passwd: {e}"))),
    }
}

/// Walks out of the node's directory with `..`, planted symlinks and a hard link.
fn dotdot(ctx: &Context) -> Result<()> {
    let mut denied = Vec::new();
    for path in ["/../etc/passwd", "../../../../etc/passwd", "/data/../../../etc/passwd"] {
        match std::fs::read_to_string(path) {
            Ok(_) => return escaped(ctx, format!("read {path}")),
            Err(e) => denied.push(format!("{path}: {e}")),
        }
    }
    // Links someone planted in the node's directory, pointing out of it.
    for path in ["/planted-abs/passwd", "/planted-rel/passwd"] {
        match std::fs::read_to_string(path) {
            Ok(_) => return escaped(ctx, format!("read {path}")),
            Err(e) => denied.push(format!("{path}: {e}")),
        }
    }
    match std::fs::hard_link("/planted-abs/passwd", "/stolen-passwd") {
        Ok(()) => return escaped(ctx, "hard-linked /etc/passwd into the node".into()),
        Err(e) => denied.push(format!("hard_link: {e}")),
    }
    Err(fail(EC_DOTDOT, format!("denied: {}", denied.join("; "))))
}

/// Opens TCP and UDP sockets to the host's loopback.
fn socket(ctx: &Context) -> Result<()> {
    let mut denied = Vec::new();
    match std::net::TcpStream::connect("127.0.0.1:22") {
        Ok(_) => return escaped(ctx, "connected to 127.0.0.1:22".into()),
        Err(e) => denied.push(format!("tcp: {e}")),
    }
    match std::net::UdpSocket::bind("0.0.0.0:0") {
        Ok(s) => {
            if s.send_to(b"x", "127.0.0.1:53").is_ok() {
                return escaped(ctx, "sent a UDP datagram".into());
            }
            denied.push("udp: send refused".into());
        }
        Err(e) => denied.push(format!("udp: {e}")),
    }
    Err(fail(EC_NET, format!("denied: {}", denied.join("; "))))
}

/// Tries every path that might reach another cluster's tree.
fn other_cluster(ctx: &Context) -> Result<()> {
    let target: String = ctx
        .params::<std::collections::BTreeMap<String, String>>()?
        .remove("cluster")
        .unwrap_or_else(|| "cl-other".into());
    let attempts = [
        format!("/clusters/{target}/env/secret"),
        format!("/../{target}/env/secret"),
        format!("/host/../../../{target}/env/secret"),
        format!("/hosts/../../{target}/env/secret"),
        format!("//clusters/{target}/env/secret"),
        format!("/{target}/env/secret"),
        "/self/../../clusters".into(),
    ];
    let mut denied = Vec::new();
    for path in &attempts {
        match meta::get(path) {
            Ok(Some(v)) => return escaped(ctx, format!("{path} = {v}")),
            Ok(None) => denied.push(format!("{path}: absent")),
            Err(e) => denied.push(format!("{path}: {}", e.message)),
        }
    }
    // The whole visible tree must not mention the other cluster either.
    let everything = meta::subtree::<hookhost_sdk::meta::Json>("/")?
        .map(|v| v.to_string())
        .unwrap_or_default();
    if everything.contains(&target) {
        return escaped(ctx, format!("the tree mentions {target}"));
    }
    Err(fail(EC_OTHER_CLUSTER, format!("denied: {}", denied.join("; "))))
}

/// Looks for ambient authority: environment variables and arguments.
fn ambient(ctx: &Context) -> Result<()> {
    let vars: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
    let args: Vec<String> = std::env::args().collect();
    if !vars.is_empty() || !args.is_empty() {
        return escaped(ctx, format!("env {vars:?} args {args:?}"));
    }
    Err(fail(EC_AMBIENT, "denied: no environment variables, no arguments"))
}
