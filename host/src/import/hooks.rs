//! The Rust hook crate written for each role: its manifest, and a `lib.rs`
//! whose `services()` lists exactly the role's services and whose `run` has
//! one arm per service, quoting the shell command it replaces.

use super::Port;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// The workspace holding every role's crate (one `cargo build` builds all).
pub(super) const WORKSPACE: &str = r#"# The hook crates of this app, one per role. Build them with
#   cargo build --release --target wasm32-wasip2
# and copy target/wasm32-wasip2/release/*.wasm beside spec.json.
[workspace]
resolver = "3"
members = ["hooks/*"]

# Small components.
[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
panic = "abort"
strip = "debuginfo"
"#;

/// A role's crate name (`zk_node` → `zk-node-hooks`): lowercase letters,
/// digits and `-`, starting with a letter, as cargo wants.
pub(super) fn package_name(role: &str) -> String {
    let name = crate::text::slug(role);
    if name.starts_with(|c: char| c.is_ascii_lowercase()) {
        format!("{name}-hooks")
    } else {
        format!("role-{name}-hooks")
    }
}

/// A crate's `Cargo.toml`: the SDK by path, or by version.
pub(super) fn manifest(package: &str, sdk: Option<&Path>) -> String {
    let sdk = match sdk {
        // A JSON string is a TOML basic string.
        Some(path) => format!("{{ path = {} }}", serde_json::Value::from(path.display().to_string())),
        None => format!("\"{}\"", env!("CARGO_PKG_VERSION")),
    };
    format!(
        r#"[package]
name = "{package}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
hookhost-sdk = {sdk}
"#
    )
}

/// The Rust pattern of a service (`scale_out` → `Service::ScaleOut`).
fn pattern(service: &str) -> String {
    if crate::hook::is_system_service(service) {
        let variant: String = service
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect();
        format!("Service::{variant}")
    } else {
        format!("Service::Custom(name) if name == {service:?}")
    }
}

/// A command as a comment, line by line.
fn comment(out: &mut String, indent: &str, what: &str, command: &str) {
    let _ = writeln!(out, "{indent}// {what}:");
    for line in command.lines() {
        // Control and direction characters would not compile in a comment.
        let line: String = line
            .chars()
            .map(|c| {
                if crate::text::is_hidden(c) {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect();
        let _ = writeln!(out, "{indent}//     {line}");
    }
}

/// A role's `lib.rs`.
pub(super) fn source(role: &str, services: &BTreeMap<String, Port>) -> String {
    let mut out = format!(
        r#"//! The hooks of role {role:?}, written by `hookhost app import`. Each arm
//! quotes the shell command it replaces: port it there (read the cluster
//! with `hookhost_sdk::meta`, write the node's files, reply with
//! `ctx.reply`). Until then the service logs that it is not ported and succeeds.

use hookhost_sdk::{{Context, Hooks, Result, Service, log}};

struct RoleHooks;

impl Hooks for RoleHooks {{
    fn services() -> Vec<Service> {{
        vec![
"#
    );
    for service in services.keys() {
        let item = if crate::hook::is_system_service(service) {
            pattern(service)
        } else {
            format!("Service::Custom({service:?}.into())")
        };
        let _ = writeln!(out, "            {item},");
    }
    out.push_str("        ]\n    }\n\n    fn run(ctx: &Context) -> Result<()> {\n        match ctx.service() {\n");
    for (service, port) in services {
        let arm = pattern(service);
        if let Some(command) = &port.pre_check {
            comment(&mut out, "            ", "The pre-check ran", command);
            let guard = if arm.contains(" if ") {
                format!("{arm} && ctx.is_pre_check()")
            } else {
                format!("{arm} if ctx.is_pre_check()")
            };
            let _ = writeln!(out, "            {guard} => not_ported(ctx, {command:?}),");
        }
        match &port.command {
            Some(command) => {
                comment(&mut out, "            ", "It ran", command);
                let _ = writeln!(out, "            {arm} => not_ported(ctx, {command:?}),");
            }
            None => {
                let _ = writeln!(out, "            // It ran no command on the original platform.");
                let _ = writeln!(out, "            {arm} => Ok(()),");
            }
        }
    }
    out.push_str(
        r#"            _ => Ok(()),
        }
    }
}

/// A service not ported yet: says so and succeeds.
fn not_ported(ctx: &Context, command: &str) -> Result<()> {
    log::warn(&format!("{} is not ported yet (it ran: {command})", ctx.service_name()));
    Ok(())
}

hookhost_sdk::export_hooks!(RoleHooks);
"#,
    );
    out
}
