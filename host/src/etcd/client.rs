//! The connection to etcd the stores share: a client driven by a thread of
//! its own (so that the stores' synchronous reads can wait on it from any
//! thread, async or not), every key under the deployment's namespace, reads
//! pinned to one revision, and this process's lease for its claims.

use super::EtcdUrl;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, KvClient, PutOptions, Txn, TxnOp, TxnOpResponse,
    TxnResponse,
};
use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;
use thiserror::Error;
use tokio::runtime::{Handle, RuntimeFlavor};

/// How long a call waits for etcd to answer, retries included, before it
/// fails: long enough for etcd to restart.
const PATIENCE: Duration = Duration::from_secs(30);
/// How long connecting waits: a wrong address should not take half a minute.
const CONNECT_PATIENCE: Duration = Duration::from_secs(5);
/// Seconds a process's lease (and so its claims) outlives its last
/// keep-alive, unless `HOOKHOST_LEASE_TTL` says otherwise.
const LEASE_TTL: i64 = 10;

/// The lease's time to live: `HOOKHOST_LEASE_TTL` (1 to 3600 s) or [`LEASE_TTL`].
fn lease_ttl() -> i64 {
    let Some(given) = std::env::var_os("HOOKHOST_LEASE_TTL") else {
        return LEASE_TTL;
    };
    match given.to_str().and_then(|v| v.trim().parse::<i64>().ok()) {
        Some(ttl) if (1..=3600).contains(&ttl) => ttl,
        _ => {
            tracing::warn!("HOOKHOST_LEASE_TTL={given:?} is not 1 to 3600 seconds: using {LEASE_TTL}");
            LEASE_TTL
        }
    }
}
/// Largest message read from etcd (a large cluster's tree in one range).
const MAX_MESSAGE: usize = 256 << 20;

/// Why a call to etcd failed.
#[derive(Debug, Error)]
#[error("etcd at {endpoints}: {message}")]
pub struct EtcdError {
    endpoints: String,
    message: String,
    /// etcd could not be reached (rather than refusing the request).
    unreachable: bool,
}

impl EtcdError {
    /// Whether etcd could not be reached: a write may or may not have landed.
    pub fn unreachable(&self) -> bool {
        self.unreachable
    }
}

/// One value read, with the etcd revision that last changed it.
pub(crate) type Versioned = (String, i64);

/// A connection to etcd under one namespace; clones share it.
#[derive(Clone)]
pub struct Etcd {
    inner: Arc<Inner>,
}

struct Inner {
    url: EtcdUrl,
    kv: KvClient,
    client: Client,
    io: Handle,
    /// This process's lease for its claims, once granted (and while alive).
    lease: std::sync::Mutex<Option<i64>>,
    /// Dropped with the last clone: ends the I/O thread.
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Etcd {
    /// Connects to the etcd `url` names (waiting up to 5 s for it to answer).
    pub fn connect(url: &EtcdUrl) -> Result<Etcd, EtcdError> {
        let fail = |message: String| EtcdError {
            endpoints: url.endpoints.join(","),
            message,
            unreachable: true,
        };
        let (io, stop) = io_thread().map_err(|e| fail(format!("cannot start its I/O thread: {e}")))?;
        let endpoints = url.endpoints.clone();
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        let client = wait(&io, async move {
            tokio::time::timeout(CONNECT_PATIENCE, Client::connect(endpoints, Some(options))).await
        })
        .ok_or_else(|| fail("its I/O thread stopped".into()))?
        .map_err(|_| fail(format!("no answer in {}s", CONNECT_PATIENCE.as_secs())))?
        .map_err(|e| fail(describe(&e)))?;
        let kv = client
            .kv_client()
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        let etcd = Etcd {
            inner: Arc::new(Inner {
                url: url.clone(),
                kv,
                client,
                io,
                lease: std::sync::Mutex::new(None),
                _stop: stop,
            }),
        };
        // Fail now, not at the first command, when nobody answers.
        let ping = etcd.key("_ping");
        let kv = etcd.inner.kv.clone();
        let call = move || {
            let (mut kv, ping) = (kv.clone(), ping.clone());
            async move { kv.get(ping, None).await }
        };
        wait(&etcd.inner.io, retrying(CONNECT_PATIENCE, call))
            .ok_or_else(|| fail("its I/O thread stopped".into()))?
            .map_err(|e| {
                fail(if transient(&e) {
                    format!("{} (tried for {}s)", describe(&e), CONNECT_PATIENCE.as_secs())
                } else {
                    format!("{} (is this an etcd client URL?)", describe(&e))
                })
            })?;
        Ok(etcd)
    }

    /// The store's URL.
    pub fn url(&self) -> &EtcdUrl {
        &self.inner.url
    }

    /// The full key of `rel` in this namespace.
    pub(crate) fn key(&self, rel: &str) -> String {
        format!("{}{rel}", self.inner.url.namespace)
    }

    fn error(&self, message: impl Describe) -> EtcdError {
        let unreachable = message.unreachable();
        let mut message = message.describe();
        // etcd's own limits, which a large batch may pass: say which flag raises them.
        if message.contains("too many operations in txn request") {
            message.push_str(" (start etcd with a larger --max-txn-ops)");
        } else if message.contains("request is too large") {
            message.push_str(" (start etcd with a larger --max-request-bytes)");
        }
        EtcdError {
            endpoints: self.inner.url.endpoints.join(","),
            message,
            unreachable,
        }
    }

    /// Runs `call` on the I/O thread and waits for it here, retrying while
    /// etcd is unreachable (it is idempotent).
    fn block<T, F>(&self, call: impl Fn(KvClient) -> F + Send + 'static) -> Result<T, EtcdError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
    {
        let kv = self.inner.kv.clone();
        wait(&self.inner.io, retrying(PATIENCE, move || call(kv.clone())))
            .ok_or_else(|| self.error("its I/O thread stopped"))?
            .map_err(|e| self.error(e))
    }

    /// Runs `call` on the I/O thread and awaits it, retrying while etcd is unreachable.
    pub(crate) async fn run<T, F>(&self, call: impl Fn(KvClient) -> F + Send + 'static) -> Result<T, EtcdError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
    {
        let kv = self.inner.kv.clone();
        self.inner
            .io
            .spawn(retrying(PATIENCE, move || call(kv.clone())))
            .await
            .map_err(|e| self.error(e))?
            .map_err(|e| self.error(e))
    }

    /// Commits `txn` once, waiting here (a lost answer is the caller's to resolve).
    pub(crate) fn commit_now(&self, txn: Txn) -> Result<TxnResponse, EtcdError> {
        let mut kv = self.inner.kv.clone();
        wait(&self.inner.io, async move { kv.txn(txn).await })
            .ok_or_else(|| self.error("its I/O thread stopped"))?
            .map_err(|e| self.error(e))
    }

    /// Commits `txn` once (a lost answer is the caller's to resolve).
    pub(crate) async fn commit(&self, txn: Txn) -> Result<TxnResponse, EtcdError> {
        let mut kv = self.inner.kv.clone();
        self.inner
            .io
            .spawn(async move { kv.txn(txn).await })
            .await
            .map_err(|e| self.error(e))?
            .map_err(|e| self.error(e))
    }

    /// The value at `key` (a full key) and the revision the read was made
    /// at; at `revision` when given, else now.
    pub(crate) fn get(&self, key: &str, revision: Option<i64>) -> Result<(Option<Versioned>, i64), EtcdError> {
        let (key, options) = (key.to_string(), at(GetOptions::new(), revision));
        let reply = self.block(move |mut kv| {
            let (key, options) = (key.clone(), options.clone());
            async move { kv.get(key, Some(options)).await }
        })?;
        let value = match reply.kvs().first() {
            Some(kv) => Some((self.text(kv.value())?, kv.mod_revision())),
            None => None,
        };
        Ok((value, header_revision(reply.header())))
    }

    /// The keys and values under the full key prefix `prefix`, in key
    /// order, and the revision the read was made at.
    pub(crate) fn scan(&self, prefix: &str, revision: Option<i64>) -> Result<(Vec<(String, String)>, i64), EtcdError> {
        let (prefix, options) = (prefix.to_string(), at(GetOptions::new().with_prefix(), revision));
        let reply = self.block(move |mut kv| {
            let (prefix, options) = (prefix.clone(), options.clone());
            async move { kv.get(prefix, Some(options)).await }
        })?;
        let rows = reply
            .kvs()
            .iter()
            .map(|kv| Ok((self.text(kv.key())?, self.text(kv.value())?)))
            .collect::<Result<_, EtcdError>>()?;
        Ok((rows, header_revision(reply.header())))
    }

    /// Reads several things at one revision: each `(key, prefix?)` gives its
    /// rows with their mod revisions; returns them and the revision.
    pub(crate) async fn read_at_once(
        &self,
        reads: Vec<(String, bool)>,
    ) -> Result<(Vec<Vec<(String, Versioned)>>, i64), EtcdError> {
        let ops: Vec<TxnOp> = reads
            .iter()
            .map(|(key, prefix)| {
                let options = if *prefix {
                    GetOptions::new().with_prefix()
                } else {
                    GetOptions::new()
                };
                TxnOp::get(key.clone(), Some(options))
            })
            .collect();
        let reply = self
            .run(move |mut kv| {
                let txn = Txn::new().and_then(ops.clone());
                async move { kv.txn(txn).await }
            })
            .await?;
        let mut out = Vec::new();
        for response in reply.op_responses() {
            let TxnOpResponse::Get(got) = response else {
                return Err(self.error("a read transaction answered something other than reads"));
            };
            let rows = got
                .kvs()
                .iter()
                .map(|kv| Ok((self.text(kv.key())?, (self.text(kv.value())?, kv.mod_revision()))))
                .collect::<Result<_, EtcdError>>()?;
            out.push(rows);
        }
        Ok((out, header_revision(reply.header())))
    }

    /// Deletes `key` if it is still under this process's lease (a claim
    /// that expired may be another process's now), waiting for it.
    pub(crate) fn delete_leased(&self, key: &str) -> Result<(), EtcdError> {
        let Some(lease) = *self.lease_slot() else {
            return Ok(());
        };
        let key = key.to_string();
        self.block(move |mut kv| {
            let txn = Txn::new()
                .when([Compare::lease(key.clone(), CompareOp::Equal, lease)])
                .and_then([TxnOp::delete(key.clone(), None)]);
            async move { kv.txn(txn).await }
        })
        .map(drop)
    }

    /// Puts `key` = `value` under this process's lease unless the key
    /// exists (the lease's id when it did not); the current value when it does. `value` is unique to the
    /// claim: finding it there means a retried put whose answer was lost.
    pub(crate) fn create_leased(&self, key: &str, value: &str) -> Result<Result<i64, String>, EtcdError> {
        let lease = self.lease()?;
        let (key, value, value_again) = (key.to_string(), value.to_string(), value.to_string());
        let reply = self.block(move |mut kv| {
            let txn = Txn::new()
                .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(
                    key.clone(),
                    value.clone(),
                    Some(PutOptions::new().with_lease(lease)),
                )])
                .or_else([TxnOp::get(key.clone(), None)]);
            async move { kv.txn(txn).await }
        })?;
        if reply.succeeded() {
            return Ok(Ok(lease));
        }
        let holder = reply.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Get(got) => got
                .kvs()
                .first()
                .map(|kv| String::from_utf8_lossy(kv.value()).into_owned()),
            _ => None,
        });
        match holder {
            Some(holder) if holder == value_again => Ok(Ok(lease)),
            Some(holder) => Ok(Err(holder)),
            // Released between the compare and the read: say so rather than loop.
            None => Ok(Err("nobody (released just now; try again)".into())),
        }
    }

    /// The lease `key` (a full key) is under, if it exists (0: none).
    pub(crate) fn lease_of(&self, key: &str) -> Result<Option<i64>, EtcdError> {
        let key = key.to_string();
        let reply = self.block(move |mut kv| {
            let key = key.clone();
            async move { kv.get(key, None).await }
        })?;
        Ok(reply.kvs().first().map(|kv| kv.lease()))
    }

    fn lease_slot(&self) -> std::sync::MutexGuard<'_, Option<i64>> {
        self.inner.lease.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// This process's lease, granted at the first claim and kept alive by
    /// the I/O thread; a lease that expired (etcd unreachable for longer
    /// than its time to live) is replaced at the next claim.
    fn lease(&self) -> Result<i64, EtcdError> {
        let mut slot = self.lease_slot();
        if let Some(id) = *slot {
            return Ok(id);
        }
        let mut client = self.inner.client.lease_client();
        let ttl = lease_ttl();
        let inner = Arc::downgrade(&self.inner);
        let id = wait(&self.inner.io, async move {
            let id = client.grant(ttl, None).await?.id();
            tokio::spawn(keep_alive(client, id, ttl, inner));
            Ok::<i64, etcd_client::Error>(id)
        })
        .ok_or_else(|| self.error("its I/O thread stopped"))?
        .map_err(|e| self.error(e))?;
        *slot = Some(id);
        Ok(id)
    }

    /// A client of etcd's watches, for a task on the I/O thread ([`Etcd::spawn`]).
    pub(crate) fn watcher(&self) -> etcd_client::WatchClient {
        self.inner.client.watch_client().max_decoding_message_size(MAX_MESSAGE)
    }

    /// The value `key` (a full key) took at its first change after
    /// `revision`, waiting up to `patience` for one: whether a transaction
    /// that compared its mod revision to `revision` landed. `None` when
    /// nothing changed it in that time.
    pub(crate) fn next_value(
        &self,
        key: &str,
        revision: i64,
        patience: Duration,
    ) -> Result<Option<Versioned>, EtcdError> {
        let (watcher, key) = (self.watcher(), key.to_string());
        let found = wait(&self.inner.io, async move {
            // etcd may be restarting (that is how answers get lost): wait for it.
            let watch = || {
                let (mut watcher, key) = (watcher.clone(), key.clone());
                let options = etcd_client::WatchOptions::new().with_start_revision(revision + 1);
                async move { watcher.watch(key, Some(options)).await }
            };
            let mut stream = retrying(PATIENCE, watch).await?;
            let first = async {
                while let Some(reply) = stream.message().await? {
                    if reply.compact_revision() > 0 {
                        return Err(etcd_client::Error::WatchError("the revision is compacted".into()));
                    }
                    if let Some(kv) = reply.events().first().and_then(|e| e.kv()) {
                        return Ok(Some((
                            String::from_utf8_lossy(kv.value()).into_owned(),
                            kv.mod_revision(),
                        )));
                    }
                }
                Ok(None)
            };
            tokio::time::timeout(patience, first).await.unwrap_or(Ok(None))
        });
        found
            .ok_or_else(|| self.error("its I/O thread stopped"))?
            .map_err(|e| self.error(e))
    }

    /// Spawns `task` on the I/O thread.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.inner.io.spawn(task);
    }

    fn text(&self, bytes: &[u8]) -> Result<String, EtcdError> {
        String::from_utf8(bytes.to_vec()).map_err(|_| self.error("a key or value is not UTF-8"))
    }
}

/// Keeps the lease `id` alive every third of its time to live while the
/// connection lives, re-opening the keep-alive stream when it breaks (etcd
/// restarting); when the lease is gone it says so and forgets it, so that
/// the next claim takes a new one.
async fn keep_alive(mut client: etcd_client::LeaseClient, id: i64, ttl: i64, owner: Weak<Inner>) {
    let every = Duration::from_millis(ttl as u64 * 1000 / 3);
    let mut failures = 0u32;
    while owner.strong_count() > 0 {
        let alive = async {
            let (mut keeper, mut answers) = client.keep_alive(id).await?;
            loop {
                keeper.keep_alive().await?;
                match answers.message().await? {
                    Some(answer) if answer.ttl() > 0 => tokio::time::sleep(every).await,
                    _ => return Ok::<bool, etcd_client::Error>(false),
                }
            }
        };
        match alive.await {
            Ok(_) => {
                tracing::error!(
                    lease = id,
                    "this process's etcd lease expired: the operations it claimed may be resumed elsewhere"
                );
                if let Some(inner) = owner.upgrade() {
                    let mut slot = inner.lease.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    if *slot == Some(id) {
                        *slot = None;
                    }
                }
                return;
            }
            Err(e) => {
                // Once loud, then quiet: etcd may be down for a while.
                if failures == 0 {
                    tracing::warn!(lease = id, "keeping the etcd lease alive failed, trying again: {e}");
                } else {
                    tracing::debug!(lease = id, "keeping the etcd lease alive failed again: {e}");
                }
                failures += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

impl Drop for Inner {
    /// Ends this process's lease at once: its claims go with it, rather
    /// than a time to live later.
    fn drop(&mut self) {
        let lease = *self.lease.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(id) = lease {
            let mut client = self.client.lease_client();
            let _ = wait(&self.io, async move {
                let _ = tokio::time::timeout(Duration::from_secs(1), client.revoke(id)).await;
            });
        }
    }
}

/// What a failure says, short: the gRPC message and its root cause, not
/// the client's debug dump.
fn describe(error: &etcd_client::Error) -> String {
    match error {
        etcd_client::Error::GRpcStatus(status) => {
            let mut root: Option<&dyn std::error::Error> = std::error::Error::source(status);
            while let Some(next) = root.and_then(|e| e.source()) {
                root = Some(next);
            }
            match root {
                Some(root) => format!("{}: {root}", status.message()),
                None => status.message().to_string(),
            }
        }
        other => other.to_string(),
    }
}

/// Anything an [`EtcdError`] can say.
trait Describe {
    fn describe(&self) -> String;
    /// Whether it means etcd was not reached.
    fn unreachable(&self) -> bool {
        false
    }
}

impl Describe for etcd_client::Error {
    fn describe(&self) -> String {
        describe(self)
    }

    fn unreachable(&self) -> bool {
        transient(self)
    }
}

impl Describe for &str {
    fn describe(&self) -> String {
        self.to_string()
    }
}

impl Describe for tokio::task::JoinError {
    fn describe(&self) -> String {
        format!("an etcd call stopped: {self}")
    }
}

fn at(options: GetOptions, revision: Option<i64>) -> GetOptions {
    match revision {
        Some(revision) => options.with_revision(revision),
        None => options,
    }
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> i64 {
    header.map(|h| h.revision()).unwrap_or(0)
}

/// Whether a failed call may succeed when tried again (etcd restarting,
/// electing a leader, the connection being re-made).
fn transient(error: &etcd_client::Error) -> bool {
    use tonic::Code;
    match error {
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        etcd_client::Error::GRpcStatus(status) => {
            matches!(
                status.code(),
                Code::Unavailable | Code::DeadlineExceeded | Code::Unknown
            ) && !status.message().contains("compacted")
        }
        _ => false,
    }
}

/// Calls `call` until it succeeds, fails for good, or `patience` runs out.
async fn retrying<T, F>(patience: Duration, call: impl Fn() -> F) -> Result<T, etcd_client::Error>
where
    F: Future<Output = Result<T, etcd_client::Error>>,
{
    let start = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(20);
    loop {
        match call().await {
            Err(e) if transient(&e) && start.elapsed() < patience => {
                tracing::debug!("etcd unreachable, trying again: {e}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            done => return done,
        }
    }
}

/// A thread running a runtime of its own; it ends when the sender is dropped.
fn io_thread() -> std::io::Result<(Handle, tokio::sync::oneshot::Sender<()>)> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let handle = runtime.handle().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new().name("etcd-io".into()).spawn(move || {
        runtime.block_on(async {
            let _ = stopped.await;
        });
    })?;
    Ok((handle, stop))
}

/// Runs `future` on `io` and waits for it on this thread: from a worker of
/// a multi-threaded runtime without starving its other tasks, from any
/// other thread plainly. `None` when the I/O thread is gone.
fn wait<T: Send + 'static>(io: &Handle, future: impl Future<Output = T> + Send + 'static) -> Option<T> {
    // On the I/O thread itself, waiting would block the thread the future needs.
    if Handle::try_current().is_ok_and(|current| current.id() == io.id()) {
        return None;
    }
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    io.spawn(async move {
        let _ = tx.send(future.await);
    });
    let receive = move || rx.recv().ok();
    match Handle::try_current() {
        Ok(current) if current.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(receive),
        _ => receive(),
    }
}
