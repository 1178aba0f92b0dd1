//! Hooks that do nothing: what the lifecycle benchmark runs, so that it
//! measures the engine, not the app. `/env/sleep_ms`, when set, makes every
//! hook take that long (the tenants benchmark's slow app); one metadata read.

use hookhost_sdk::{Context, Hooks, Result, Service, meta};

struct Noop;

impl Hooks for Noop {
    fn services() -> Vec<Service> {
        vec![
            Service::Init,
            Service::Start,
            Service::Stop,
            Service::Destroy,
            Service::ScaleOut,
            Service::ScaleIn,
        ]
    }

    fn run(_ctx: &Context) -> Result<()> {
        if let Some(ms) = meta::get("/env/sleep_ms")?.and_then(|ms| ms.parse().ok()) {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        Ok(())
    }
}

hookhost_sdk::export_hooks!(Noop);
