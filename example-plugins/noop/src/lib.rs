//! Hooks that do nothing: what the lifecycle benchmark runs, so that it
//! measures the engine, not the app.

use hookhost_sdk::{Context, Hooks, Result, Service};

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
        Ok(())
    }
}

hookhost_sdk::export_hooks!(Noop);
