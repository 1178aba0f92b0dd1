//! A tenant's hook runner: the process's wasm runtime behind the fair
//! scheduler, with the tenant's limits applied to every call.

use super::fair::{FairScheduler, Slot};
use super::tenants::Quotas;
use crate::engine::{Component, HookRunner, RunnerFuture};
use crate::hook::{ConfigFile, Service};
use crate::runtime::{Call, LoadError, Outcome, Request, Runtime};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Runs one tenant's hooks: a fair slot first, memory capped at its quota.
pub(crate) struct TenantRunner {
    pub(crate) shared: Arc<Shared>,
}

/// What a tenant's runner and its components share.
pub(crate) struct Shared {
    pub(crate) runtime: Runtime,
    pub(crate) fair: Arc<FairScheduler>,
    pub(crate) tenant: String,
    pub(crate) quotas: Arc<Mutex<Quotas>>,
}

impl Shared {
    fn quotas(&self) -> Quotas {
        *self.quotas.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A hook slot, in the tenant's turn and within its limit.
    async fn slot(&self) -> Slot {
        self.fair.acquire(&self.tenant, self.quotas().max_hooks as usize).await
    }

    /// The call with the tenant's memory quota as its ceiling.
    fn limited(&self, call: &Call) -> Call {
        let mut call = call.clone();
        let cap = self.quotas().max_hook_memory_mib.saturating_mul(1 << 20);
        call.limits.memory = call.limits.memory.min(cap);
        call
    }
}

struct FairComponent {
    inner: Arc<dyn Component>,
    shared: Arc<Shared>,
}

impl HookRunner for TenantRunner {
    fn load<'a>(&'a self, path: &'a Path) -> RunnerFuture<'a, Result<Arc<dyn Component>, LoadError>> {
        Box::pin(async move {
            let inner = HookRunner::load(&self.shared.runtime, path).await?;
            Ok(self.wrap(inner))
        })
    }

    fn load_bytes<'a>(
        &'a self,
        path: &'a Path,
        bytes: Vec<u8>,
    ) -> RunnerFuture<'a, Result<Arc<dyn Component>, LoadError>> {
        Box::pin(async move {
            let inner = HookRunner::load_bytes(&self.shared.runtime, path, bytes).await?;
            Ok(self.wrap(inner))
        })
    }
}

impl TenantRunner {
    fn wrap(&self, inner: Arc<dyn Component>) -> Arc<dyn Component> {
        Arc::new(FairComponent {
            inner,
            shared: self.shared.clone(),
        })
    }
}

impl Component for FairComponent {
    fn services(&self) -> &[Service] {
        self.inner.services()
    }

    fn sha256(&self) -> String {
        self.inner.sha256()
    }

    fn run<'a>(&'a self, call: &'a Call, request: &'a Request) -> RunnerFuture<'a, Outcome<Option<String>>> {
        Box::pin(async move {
            let shared = &self.shared;
            let _slot = shared.slot().await;
            self.inner.run(&shared.limited(call), request).await
        })
    }

    fn render<'a>(&'a self, call: &'a Call) -> RunnerFuture<'a, Outcome<Vec<ConfigFile>>> {
        Box::pin(async move {
            let shared = &self.shared;
            let _slot = shared.slot().await;
            self.inner.render(&shared.limited(call)).await
        })
    }
}
