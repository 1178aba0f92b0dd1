//! A test component that reports what a hook sees, so tests can assert it.
//!
//! - `seen`: replies with a JSON object of its context, `/host`, the root's
//!   children, the whole visible tree and the snapshot revision.
//! - `twice`: reads `/env/key`, waits `params.wait_ms`, reads it again and
//!   replies `first,second` (one invocation must see one snapshot).
//! - `fail`: returns `params.code` and `params.message` as its error.
//! - `render` returns `params`-free files built from `/env`.

use hookhost_sdk::{ConfigFile, Context, Hooks, NodeContext, Result, Service, fail, log, meta};
use serde_json::{Value, json};

struct Probe;

impl Hooks for Probe {
    fn services() -> Vec<Service> {
        ["seen", "twice", "fail"]
            .iter()
            .map(|s| Service::Custom(s.to_string()))
            .collect()
    }

    fn run(ctx: &Context) -> Result<()> {
        let Service::Custom(name) = ctx.service() else {
            return Err(fail(1, "only custom services"));
        };
        let params: Value = ctx.params()?;
        match name.as_str() {
            "seen" => {
                let node = ctx.node();
                let seen = json!({
                    "service": name,
                    "pre_check": ctx.is_pre_check(),
                    "params": params,
                    "operation": format!("{:?}", node.operation),
                    "operation_id": node.operation_id,
                    "cluster_id": node.cluster_id,
                    "node_id": node.node_id,
                    "instance_id": node.instance_id,
                    "role": node.role,
                    "attempt": node.attempt,
                    "deadline_unix_ms": node.deadline_unix_ms,
                    "host": meta::subtree::<Value>("/host")?,
                    "root_children": meta::children("/")?,
                    "tree": meta::subtree::<Value>("/")?,
                    "revision": meta::revision(),
                });
                log::info("reporting what I see");
                ctx.reply(seen.to_string());
            }
            "twice" => {
                let first = meta::get("/env/key")?.unwrap_or_default();
                let wait = params.get("wait_ms").and_then(Value::as_u64).unwrap_or(100);
                std::thread::sleep(std::time::Duration::from_millis(wait));
                let second = meta::get("/env/key")?.unwrap_or_default();
                ctx.reply(format!("{first},{second}"));
            }
            "fail" => {
                let code = params.get("code").and_then(Value::as_u64).unwrap_or(1) as u32;
                let message = params.get("message").and_then(Value::as_str).unwrap_or("failed");
                return Err(fail(code, message));
            }
            other => return Err(fail(1, format!("unknown service {other}"))),
        }
        Ok(())
    }

    fn render(node: &NodeContext) -> Result<Vec<ConfigFile>> {
        let port = meta::env_or("port", "80")?;
        Ok(vec![
            ConfigFile::text("/etc/probe/probe.conf", format!("node={}\nport={port}\n", node.node_id)),
            ConfigFile::text("/etc/probe/run.sh", "#!/bin/sh\n").with_mode(0o755),
        ])
    }
}

hookhost_sdk::export_hooks!(Probe);
