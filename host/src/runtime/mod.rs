//! Runs hook components in a sandbox.
//!
//! One [`Runtime`] per process holds the wasmtime engine (pooling allocator,
//! epoch interruption), the linker (WASI p2 without sockets, plus the
//! `metadata` and `log` imports) and the compile cache. Every call gets a
//! fresh store and instance, its own limits and its own captured output, so
//! calls share nothing and many run at once on tokio.

mod cache;
mod component;
mod failure;
mod sandbox;
mod state;

pub use cache::{CacheStatus, default_cache_dir};
pub use component::{LoadError, Plugin};
pub use failure::{Failure, HookFailure};
pub use sandbox::{
    Captured, DEFAULT_MEMORY, DEFAULT_OUTPUT, DEFAULT_TIMEOUT, Limits, LogLine, MAX_TIMEOUT, MemoryLimitExceeded,
    Mount, OutputLimitExceeded, Stream, human_bytes,
};

use crate::hook::bindings::RoleHooks;
use crate::hook::{ConfigFile, HookContext, HookError, NodeContext, Operation, Service, context_of, service_name};
use crate::metadata::ClusterView;
use cache::ComponentCache;
use failure::{Phase, TimedOut};
use sandbox::{Capture, LogSink, MemoryLimiter};
use serde::Serialize;
use state::HostState;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use thiserror::Error;
use tokio::sync::Semaphore;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline,
    WasmBacktraceDetails,
};

/// How often the epoch ticks: the granularity of timeouts and of yielding.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Largest component file accepted.
pub const MAX_COMPONENT_BYTES: u64 = 64 << 20;
/// WASI resources (files, streams) one invocation may hold at once.
const MAX_RESOURCES: usize = 1000;

/// Process-wide runtime settings.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled components are cached; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// Instances that may exist at once; more calls wait for a slot.
    pub max_instances: u32,
    /// The largest memory limit any call may ask for (sizes the pool's slots).
    pub max_memory: u64,
    /// Meter fuel, so that [`Limits::fuel`] applies (slower code).
    pub fuel: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: default_cache_dir(),
            max_instances: 128,
            max_memory: 1 << 30,
            fuel: false,
        }
    }
}

/// The runtime could not start.
#[derive(Debug, Error)]
#[error("cannot start the wasm runtime: {what}: {source}")]
pub struct RuntimeError {
    /// What failed.
    what: &'static str,
    /// Why.
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl RuntimeError {
    fn at(what: &'static str) -> impl FnOnce(wasmtime::Error) -> RuntimeError {
        move |e| RuntimeError { what, source: e.into() }
    }
}

/// What to run: a service with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The service.
    pub service: Service,
    /// `service_params`, a JSON object.
    pub params: String,
    /// Only ask whether the service may run (the spec's `pre_check`).
    pub pre_check: bool,
}

/// Who runs it and with what: the node, its view, its directories, its limits.
#[derive(Debug, Clone)]
pub struct Call {
    /// The calling node and operation; the runtime sets the deadline.
    pub node: NodeContext,
    /// The node's view of its cluster.
    pub view: ClusterView,
    /// The node's directories.
    pub mounts: Vec<Mount>,
    /// The call's limits.
    pub limits: Limits,
}

/// Everything an invocation left behind besides its result.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Report {
    /// Captured standard output.
    pub stdout: Captured,
    /// Captured standard error.
    pub stderr: Captured,
    /// Lines of the `log` import.
    pub logs: Vec<LogLine>,
    /// Wall-clock time of the call, from instantiation to return.
    #[serde(rename = "elapsed_us", serialize_with = "micros")]
    #[schema(value_type = u64)]
    pub elapsed: Duration,
    /// Peak linear memory of the instance, in bytes.
    pub peak_memory: u64,
    /// Fuel used, when fuel is metered.
    pub fuel_consumed: Option<u64>,
    /// The metadata revision the hook read.
    pub revision: u64,
    /// Where the time of the invocation went.
    pub phases: Phases,
}

/// Where one invocation's wall-clock time went, phase by phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Phases {
    /// The store, its WASI context (the node's directories opened) and host state.
    #[serde(rename = "setup_us", serialize_with = "micros")]
    #[schema(value_type = u64)]
    pub setup: Duration,
    /// The component instantiated in the store (a pooled slot taken).
    #[serde(rename = "instantiate_us", serialize_with = "micros")]
    #[schema(value_type = u64)]
    pub instantiate: Duration,
    /// The hook itself, its metadata reads included.
    #[serde(rename = "call_us", serialize_with = "micros")]
    #[schema(value_type = u64)]
    pub call: Duration,
    /// The store dropped: the instance's slot back in the pool.
    #[serde(rename = "teardown_us", serialize_with = "micros")]
    #[schema(value_type = u64)]
    pub teardown: Duration,
}

fn micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_micros() as u64)
}

/// The result of one invocation and its report.
#[derive(Debug, Clone)]
pub struct Outcome<T> {
    /// The component file.
    pub plugin: PathBuf,
    /// The call, e.g. `run init`.
    pub call: String,
    /// What the hook returned, or how it failed.
    pub result: Result<T, Failure>,
    /// Output, logs, time and memory.
    pub report: Report,
}

impl<T> Outcome<T> {
    /// The result, with failures naming the component and the call.
    pub fn into_result(self) -> Result<T, HookFailure> {
        self.result.map_err(|failure| HookFailure {
            plugin: self.plugin,
            call: self.call,
            failure,
        })
    }

    /// A failure before the hook could run.
    fn early(plugin: &Plugin, call: String, failure: Failure) -> Outcome<T> {
        Outcome {
            plugin: plugin.path().to_path_buf(),
            call,
            result: Err(failure),
            report: Report::default(),
        }
    }
}

/// The one wasm runtime of a process; clones share it.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<HostState>,
    cache: ComponentCache,
    config: RuntimeConfig,
    slots: Semaphore,
    loaded: Mutex<HashMap<PathBuf, Plugin>>,
    stop_ticker: Arc<AtomicBool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    /// Starts the engine, the linker and the epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let engine = Engine::new(&engine_config(&config)).map_err(RuntimeError::at("the engine"))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(RuntimeError::at("WASI"))?;
        RoleHooks::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).map_err(RuntimeError::at("the hook imports"))?;

        let stop_ticker = Arc::new(AtomicBool::new(false));
        let (ticker_engine, stop) = (engine.clone(), stop_ticker.clone());
        std::thread::Builder::new()
            .name("hookhost-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticker_engine.increment_epoch();
                }
            })
            .map_err(|e| RuntimeError {
                what: "the epoch thread",
                source: Box::new(e),
            })?;

        Ok(Runtime {
            inner: Arc::new(Inner {
                cache: ComponentCache::new(&engine, config.cache_dir.clone()),
                slots: Semaphore::new(config.max_instances as usize),
                engine,
                linker,
                config,
                loaded: Mutex::default(),
                stop_ticker,
            }),
        })
    }

    /// Loads a component: checks it, compiles it (or takes it from the
    /// cache) and asks it for its services. Once per file content per process.
    pub async fn load(&self, path: &Path) -> Result<Plugin, LoadError> {
        let bytes = crate::files::read_limited(path, MAX_COMPONENT_BYTES).map_err(|error| LoadError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        self.load_bytes(path, bytes).await
    }

    /// Loads a component from bytes already read; `path` names it (in
    /// errors, and as the key of the loaded components).
    pub async fn load_bytes(&self, path: &Path, bytes: Vec<u8>) -> Result<Plugin, LoadError> {
        let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        let sha256 = component::sha256(&bytes);
        // A file rewritten in place must not run its old code: the content decides.
        if let Some(plugin) = self.lock_loaded().get(&key).filter(|p| p.sha256_bytes() == &sha256) {
            return Ok(plugin.clone());
        }
        let (runtime, file) = (self.clone(), path.to_path_buf());
        // Compiling takes up to seconds: off the async threads.
        let compiled = tokio::task::spawn_blocking(move || {
            let inner = &runtime.inner;
            component::load(&inner.engine, &inner.linker, &inner.cache, &file, &bytes, sha256)
        })
        .await
        .map_err(|e| LoadError::Invalid {
            path: path.to_path_buf(),
            message: format!("the compiler stopped: {e}"),
        })??;
        let services = self
            .services_of(&compiled)
            .await
            .into_result()
            .map_err(LoadError::Services)?;
        let plugin = compiled.with_services(services);
        self.lock_loaded().insert(key, plugin.clone());
        Ok(plugin)
    }

    fn lock_loaded(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Plugin>> {
        self.inner
            .loaded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Asks a component which services it implements.
    async fn services_of(&self, plugin: &Plugin) -> Outcome<Vec<Service>> {
        let view = ClusterView::empty();
        let call = Call {
            node: context_of(&view, Operation::Manual, "", 1),
            view,
            mounts: Vec::new(),
            limits: Limits {
                timeout: Duration::from_secs(10),
                ..Limits::default()
            },
        };
        self.invoke(plugin, &call, "services".into(), async |store, hooks, _| {
            Ok(Ok(hooks.hookhost_hooks_hooks().call_services(store).await?))
        })
        .await
    }

    /// Runs one service of a component as the call's node. A pre-check sees
    /// the node's directories read-only.
    pub async fn run(&self, plugin: &Plugin, call: &Call, request: &Request) -> Outcome<Option<String>> {
        let name = format!("run {}", service_name(&request.service));
        if !plugin.services().contains(&request.service) {
            let failure = Failure::NotImplemented {
                service: service_name(&request.service),
            };
            return Outcome::early(plugin, name, failure);
        }
        let call = if request.pre_check {
            let mut read_only = call.clone();
            read_only.mounts.iter_mut().for_each(|m| m.writable = false);
            std::borrow::Cow::Owned(read_only)
        } else {
            std::borrow::Cow::Borrowed(call)
        };
        let ctx = HookContext {
            service: request.service.clone(),
            pre_check: request.pre_check,
            service_params: request.params.clone(),
            node: call.node.clone(),
        };
        let outcome = self
            .invoke(plugin, &call, name, async move |store, hooks, deadline| {
                let ctx = HookContext {
                    node: NodeContext {
                        deadline_unix_ms: deadline,
                        ..ctx.node
                    },
                    ..ctx
                };
                hooks.hookhost_hooks_hooks().call_run(store, &ctx).await
            })
            .await;
        // A reply is kept (journaled, parsed): it is bounded like any output.
        let too_long = matches!(&outcome.result, Ok(Some(reply)) if reply.len() as u64 > call.limits.output);
        if too_long {
            let limit = OutputLimitExceeded {
                stream: Stream::Reply,
                limit: call.limits.output,
            };
            return Outcome {
                result: Err(Failure::OutputLimit(limit)),
                ..outcome
            };
        }
        outcome
    }

    /// Times `calls` runs of a service on one instance kept from call to
    /// call: the floor that a fresh instance per call is measured against.
    /// For benchmarks only: the engine never reuses an instance, so that
    /// nothing a hook leaves behind is seen by the next one.
    pub async fn time_reused(
        &self,
        plugin: &Plugin,
        call: &Call,
        request: &Request,
        calls: usize,
    ) -> Result<Vec<Duration>, Failure> {
        let sandbox = |message: String| Failure::Sandbox { message };
        if !plugin.services().contains(&request.service) {
            return Err(Failure::NotImplemented {
                service: service_name(&request.service),
            });
        }
        let Ok(_slot) = self.inner.slots.acquire().await else {
            unreachable!("the slot semaphore is never closed")
        };
        let deadline = Instant::now() + call.limits.timeout;
        let stdout = Capture::new(Stream::Stdout, call.limits.output);
        let stderr = Capture::new(Stream::Stderr, call.limits.output);
        let (mut store, _) = self.new_store(call, deadline, &stdout, &stderr).map_err(sandbox)?;
        let hooks = plugin
            .pre()
            .instantiate_async(&mut store)
            .await
            .map_err(|e| sandbox(e.to_string()))?;
        let ctx = HookContext {
            service: request.service.clone(),
            pre_check: request.pre_check,
            service_params: request.params.clone(),
            node: call.node.clone(),
        };
        let mut times = Vec::with_capacity(calls);
        for _ in 0..calls {
            let started = Instant::now();
            let result = hooks.hookhost_hooks_hooks().call_run(&mut store, &ctx).await;
            times.push(started.elapsed());
            match result {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    return Err(Failure::HookError {
                        code: e.code.max(1),
                        message: e.message,
                    });
                }
                Err(e) => return Err(sandbox(e.to_string())),
            }
        }
        Ok(times)
    }

    /// Asks a component for the call's node's config files.
    pub async fn render(&self, plugin: &Plugin, call: &Call) -> Outcome<Vec<ConfigFile>> {
        let node = call.node.clone();
        self.invoke(plugin, call, "render".into(), async move |store, hooks, deadline| {
            let node = NodeContext {
                deadline_unix_ms: deadline,
                ..node
            };
            hooks.hookhost_hooks_hooks().call_render(store, &node).await
        })
        .await
    }

    /// A fresh store for one call: its sandbox (WASI over the call's
    /// mounts, captured output), its view, its memory limit, its fuel (when
    /// metered, returned) and its deadline.
    fn new_store(
        &self,
        call: &Call,
        deadline: Instant,
        stdout: &Capture,
        stderr: &Capture,
    ) -> Result<(Store<HostState>, Option<u64>), String> {
        let limits = call.limits;
        let wasi = sandbox::wasi_ctx(&call.mounts, stdout, stderr)?;
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        let mut store = Store::new(
            &self.inner.engine,
            HostState {
                wasi,
                table,
                view: call.view.clone(),
                logs: LogSink::new(limits.output),
                limiter: MemoryLimiter::new(limits.memory.min(self.inner.config.max_memory)),
                deadline,
            },
        );
        store.limiter(|s| &mut s.limiter);
        let fuel = self.inner.config.fuel.then(|| limits.fuel.unwrap_or(u64::MAX));
        if let Some(fuel) = fuel {
            // Cannot fail: the engine meters fuel whenever `fuel` is Some.
            let _ = store.set_fuel(fuel);
        }
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                Err(wasmtime::Error::new(TimedOut))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        Ok((store, fuel))
    }

    /// One invocation: fresh store and instance, limits, capture, the call
    /// `f` makes on the instance (given the deadline in Unix ms), the report.
    async fn invoke<T>(
        &self,
        plugin: &Plugin,
        call: &Call,
        name: String,
        f: impl AsyncFnOnce(&mut Store<HostState>, &RoleHooks, u64) -> wasmtime::Result<Result<T, HookError>>,
    ) -> Outcome<T> {
        if !Engine::same(plugin.engine(), &self.inner.engine) {
            let message = "the component was loaded by another runtime".to_string();
            return Outcome::early(plugin, name, Failure::Sandbox { message });
        }
        let limits = call.limits;
        // Waiting for a slot is not part of the hook's time; closing is impossible.
        let Ok(_slot) = self.inner.slots.acquire().await else {
            unreachable!("the slot semaphore is never closed")
        };
        let started = Instant::now();
        let deadline = started + limits.timeout;
        let stdout = Capture::new(Stream::Stdout, limits.output);
        let stderr = Capture::new(Stream::Stderr, limits.output);
        let (mut store, fuel) = match self.new_store(call, deadline, &stdout, &stderr) {
            Ok(made) => made,
            Err(message) => return Outcome::early(plugin, name, Failure::Sandbox { message }),
        };
        let set_up = Instant::now();

        let deadline_ms = deadline_unix_ms(limits.timeout);
        let mut instantiated = None;
        let call_hook = async {
            let hooks = match plugin.pre().instantiate_async(&mut store).await {
                Ok(hooks) => hooks,
                Err(e) => return Err((Phase::Instantiate, e)),
            };
            instantiated = Some(Instant::now());
            f(&mut store, &hooks, deadline_ms).await.map_err(|e| (Phase::Call, e))
        };
        // Epoch interruption stops busy guests; this stops guests blocked in the host.
        let finished = tokio::time::timeout_at(deadline.into(), call_hook).await;
        let ended = Instant::now();
        let elapsed = ended - started;
        let instantiated = instantiated.unwrap_or(ended);

        let stderr_bytes = stderr.take();
        let result = match finished {
            Err(_elapsed) => Err(Failure::Timeout {
                limit_ms: limits.timeout.as_millis() as u64,
            }),
            Ok(Ok(Ok(value))) => Ok(value),
            // Codes are non-zero by contract; a 0 would read as success downstream.
            Ok(Ok(Err(e))) => Err(Failure::HookError {
                code: e.code.max(1),
                message: e.message,
            }),
            Ok(Err((phase, e))) => Err(failure::classify(&e, phase, limits.timeout, fuel, &stderr_bytes.bytes)),
        };
        let fuel_consumed = fuel.and_then(|f| store.get_fuel().ok().map(|left| f - left));
        let state = store.data_mut();
        let (logs, peak_memory) = (std::mem::take(&mut state.logs.lines), state.limiter.peak);
        let tearing_down = Instant::now();
        drop(store);
        let report = Report {
            stdout: stdout.take(),
            stderr: stderr_bytes,
            logs,
            elapsed,
            peak_memory,
            fuel_consumed,
            revision: call.view.revision(),
            phases: Phases {
                setup: set_up - started,
                instantiate: instantiated.saturating_duration_since(set_up),
                call: ended.saturating_duration_since(instantiated),
                teardown: tearing_down.elapsed(),
            },
        };
        Outcome {
            plugin: plugin.path().to_path_buf(),
            call: name,
            result,
            report,
        }
    }
}

/// The SHA-256 of bytes, hex (what identifies a component's content).
pub fn sha256_hex(bytes: &[u8]) -> String {
    cache::hex(&component::sha256(bytes))
}

fn deadline_unix_ms(timeout: Duration) -> u64 {
    (SystemTime::now() + timeout)
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A std-built Rust component holds a few core instances, tables and memories.
const CORE_INSTANCES_PER_COMPONENT: u32 = 16;
const MEMORIES_PER_COMPONENT: u32 = 2;
const TABLES_PER_COMPONENT: u32 = 8;

/// The engine: pooled instances sized for `max_instances`, epoch interruption, optional fuel.
fn engine_config(config: &RuntimeConfig) -> Config {
    let n = config.max_instances.max(1);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(n)
        .total_core_instances(n * CORE_INSTANCES_PER_COMPONENT)
        .total_memories(n * MEMORIES_PER_COMPONENT)
        .total_tables(n * TABLES_PER_COMPONENT)
        // One component cannot take more than its share of the pool.
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(MEMORIES_PER_COMPONENT)
        .max_tables_per_component(TABLES_PER_COMPONENT)
        .total_stacks(n)
        .max_memory_size(config.max_memory as usize)
        .max_unused_warm_slots(n.min(16))
        // Reset slots with memset and only touched pages: no madvise storms across threads.
        .linear_memory_keep_resident(1 << 20)
        .table_keep_resident(1 << 20)
        .pagemap_scan(Enabled::Auto);
    let mut cfg = Config::new();
    cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .epoch_interruption(true)
        .consume_fuel(config.fuel)
        .wasm_backtrace_details(WasmBacktraceDetails::Disable);
    cfg
}
