//! The metadata tree on etcd (the `etcd` feature). Each leaf is a key
//! `<namespace>_tree<path>`; the key `<namespace>_tree-log` holds the writes
//! of the last batch applied, so its versions are the change log and its
//! mod revision is the tree's revision: an etcd revision. A snapshot is one
//! read at one revision; a watch is etcd's watch of the log key from a
//! revision on. A batch reads the subtree it writes (and that subtree's
//! ancestors) at one revision, applies the writes with the rules every
//! store shares (`apply_writes`), and commits the difference only if no
//! other batch landed since, else reads again.

use super::watch::filtered;
use super::{MetadataStore, Snapshot, StoreError, StoreFuture, Watch, Write, apply_writes, path};
use crate::etcd::{Etcd, EtcdError};
use etcd_client::{Compare, CompareOp, DeleteOptions, EventType, Txn, TxnOp, WatchOptions};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The key whose versions are the change log.
const LOG: &str = "_tree-log";

/// One version of the log key.
#[derive(serde::Serialize, serde::Deserialize)]
struct Entry {
    /// Unique per batch: tells a batch whose answer was lost whether it landed.
    id: String,
    writes: Vec<Write>,
}

/// The metadata tree under an etcd namespace; clones share the connection.
#[derive(Clone)]
pub struct EtcdTree {
    etcd: Etcd,
    /// One batch of this process at a time: they would only conflict.
    writer: Arc<tokio::sync::Mutex<()>>,
}

impl EtcdTree {
    /// The tree under `etcd`'s namespace.
    pub fn new(etcd: Etcd) -> EtcdTree {
        EtcdTree {
            etcd,
            writer: Arc::default(),
        }
    }

    fn leaf_key(&self, path: &str) -> String {
        self.etcd.key(&format!("_tree{path}"))
    }

    /// The leaves of rows read under the tree's keys, by full path.
    fn leaves(&self, rows: Vec<(String, (String, i64))>) -> BTreeMap<String, String> {
        let base = self.etcd.key("_tree");
        rows.into_iter()
            .filter_map(|(key, (value, _))| key.strip_prefix(&base).map(|p| (p.to_string(), value)))
            .collect()
    }

    /// The log key's revision in rows read of it (0: never written).
    fn revision_in(rows: &[(String, (String, i64))]) -> u64 {
        rows.first().map(|(_, (_, rev))| *rev as u64).unwrap_or(0)
    }

    async fn apply_batch(&self, writes: &[Write]) -> Result<u64, StoreError> {
        let mut paths = Vec::new();
        for write in writes {
            let (Write::Put { path: p, .. } | Write::DeleteTree { path: p }) = write;
            paths.push(path::segments(p)?);
        }
        // What the batch can touch or be refused by: the subtree of the
        // paths' common ancestor, and that ancestor's own ancestors (leaves).
        let common: Vec<&str> = match paths.split_first() {
            Some((first, rest)) => {
                let mut common = first.clone();
                for other in rest {
                    let same = common.iter().zip(other).take_while(|(a, b)| a == b).count();
                    common.truncate(same);
                }
                common
            }
            None => Vec::new(),
        };
        let mut reads = vec![(self.etcd.key(LOG), false)];
        for depth in 1..=common.len() {
            reads.push((self.leaf_key(&path::join("/", common[..depth].iter().copied())), false));
        }
        reads.push((
            self.leaf_key(&path::dir_prefix(&path::join("/", common.iter().copied()))),
            true,
        ));
        let entry = Entry {
            id: batch_id(),
            writes: writes.to_vec(),
        };
        let logged = serde_json::to_string(&entry).map_err(|e| StoreError::Backend(Box::new(e)))?;

        let _turn = self.writer.lock().await;
        loop {
            let (mut rows, _) = self.etcd.read_at_once(reads.clone()).await.map_err(failed)?;
            let log = rows.remove(0);
            let seen = Self::revision_in(&log);
            let before = self.leaves(rows.into_iter().flatten().collect());
            let mut after = before.clone();
            apply_writes(&mut after, writes)?;
            let log_key = self.etcd.key(LOG);
            let mut ops = vec![TxnOp::put(log_key.clone(), logged.as_str(), None)];
            for (path, value) in &after {
                if before.get(path) != Some(value) {
                    ops.push(TxnOp::put(self.leaf_key(path), value.as_str(), None));
                }
            }
            // A subtree deleted whole is one range delete, not one per leaf.
            let ranged = whole_deletes(writes, &after);
            for dir in &ranged {
                ops.push(TxnOp::delete(
                    self.leaf_key(dir),
                    Some(DeleteOptions::new().with_prefix()),
                ));
            }
            let covered = |p: &str| ranged.iter().any(|dir| p.starts_with(dir.as_str()));
            for path in before.keys().filter(|p| !after.contains_key(*p) && !covered(p)) {
                ops.push(TxnOp::delete(self.leaf_key(path), None));
            }
            let txn = Txn::new()
                .when([Compare::mod_revision(log_key.clone(), CompareOp::Equal, seen as i64)])
                .and_then(ops);
            match self.etcd.commit(txn).await {
                Ok(reply) if reply.succeeded() => {
                    return Ok(reply.header().map(|h| h.revision()).unwrap_or(0) as u64);
                }
                // Another batch landed since the read: read again.
                Ok(_) => continue,
                // Refused by etcd (too large, ...): nothing landed.
                Err(e) if !e.unreachable() => return Err(failed(e)),
                Err(e) => {
                    // The answer was lost: the batch landed if it was the log's next change.
                    let (etcd, id) = (self.etcd.clone(), entry.id.clone());
                    let next = tokio::task::spawn_blocking(move || etcd.next_value(&log_key, seen as i64, LANDING))
                        .await
                        .map_err(|e| StoreError::Backend(Box::new(e)))?
                        .map_err(failed)?;
                    match next {
                        Some((value, rev)) if serde_json::from_str::<Entry>(&value).is_ok_and(|e| e.id == id) => {
                            return Ok(rev as u64);
                        }
                        _ => tracing::debug!("a metadata batch did not land, trying again: {e}"),
                    }
                }
            }
        }
    }

    async fn snapshot_of(&self, prefix: &str) -> Result<Snapshot, StoreError> {
        let reads = vec![
            (self.etcd.key(LOG), false),
            (self.leaf_key(&path::dir_prefix(prefix)), true),
        ];
        let (mut rows, _) = self.etcd.read_at_once(reads).await.map_err(failed)?;
        let log = rows.remove(0);
        Ok(Snapshot::new(
            Self::revision_in(&log),
            self.leaves(rows.into_iter().flatten().collect()),
        ))
    }

    async fn watch_from(&self, prefix: &str, from: u64) -> Result<Watch, StoreError> {
        path::segments(prefix)?;
        let from = from.max(1) as i64;
        let key = self.etcd.key(LOG);
        // Fail now, not at the first change, when the revision is gone.
        let (_, now) = self
            .etcd
            .read_at_once(vec![(key.clone(), false)])
            .await
            .map_err(failed)?;
        if from <= now {
            let probe = key.clone();
            let read = self
                .etcd
                .run(move |mut kv| {
                    let probe = probe.clone();
                    async move {
                        kv.get(probe, Some(etcd_client::GetOptions::new().with_revision(from)))
                            .await
                    }
                })
                .await;
            if let Err(e) = read
                && e.to_string().contains("compacted")
            {
                return Err(StoreError::Compacted {
                    requested: from as u64,
                    oldest: self.compacted_up_to(&key, from).await.unwrap_or(from as u64 + 1),
                });
            }
        }
        let (tx, rx) = mpsc::channel(64);
        self.etcd
            .spawn(follow(self.etcd.watcher(), key, from, prefix.to_string(), tx));
        Ok(Watch::pushed(rx))
    }

    /// The oldest revision etcd still keeps, as its watch tells.
    async fn compacted_up_to(&self, key: &str, from: i64) -> Option<u64> {
        let mut watcher = self.etcd.watcher();
        let key = key.to_string();
        let (tx, mut rx) = mpsc::channel(1);
        self.etcd.spawn(async move {
            let options = WatchOptions::new().with_start_revision(from);
            let first = async {
                let mut stream = watcher.watch(key, Some(options)).await.ok()?;
                while let Ok(Some(reply)) = stream.message().await {
                    if reply.compact_revision() > 0 {
                        return Some(reply.compact_revision() as u64);
                    }
                }
                None
            };
            if let Ok(Some(oldest)) = tokio::time::timeout(Duration::from_secs(5), first).await {
                let _ = tx.send(oldest).await;
            }
        });
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .ok()
            .flatten()
    }
}

/// Follows the log key from `from` on, sending the changes under `prefix`
/// until the receiver goes; re-watches from where it was when the
/// connection breaks (etcd restarting).
async fn follow(
    mut watcher: etcd_client::WatchClient,
    key: String,
    from: i64,
    prefix: String,
    tx: mpsc::Sender<Result<Change, StoreError>>,
) {
    let mut next = from;
    let mut pause = Duration::from_millis(50);
    loop {
        let options = WatchOptions::new().with_start_revision(next);
        let mut stream = match watcher.watch(key.clone(), Some(options)).await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!("watching the metadata log failed, trying again: {e}");
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = tx.closed() => return,
                }
                pause = (pause * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        loop {
            let reply = tokio::select! {
                reply = stream.message() => reply,
                () = tx.closed() => return,
            };
            let reply = match reply {
                Ok(Some(reply)) => reply,
                // The connection broke: watch again from the next revision, after a pause.
                Ok(None) | Err(_) => {
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = tx.closed() => return,
                    }
                    pause = (pause * 2).min(Duration::from_secs(1));
                    break;
                }
            };
            if reply.compact_revision() > 0 {
                let _ = tx
                    .send(Err(StoreError::Compacted {
                        requested: next as u64,
                        oldest: reply.compact_revision() as u64,
                    }))
                    .await;
                return;
            }
            if reply.canceled() {
                let reason = format!("etcd cancelled the watch: {}", reply.cancel_reason());
                let _ = tx.send(Err(StoreError::Backend(reason.into()))).await;
                return;
            }
            pause = Duration::from_millis(50);
            for event in reply.events() {
                let Some(kv) = event.kv().filter(|_| event.event_type() == EventType::Put) else {
                    continue;
                };
                next = kv.mod_revision() + 1;
                let change = serde_json::from_slice::<Entry>(kv.value())
                    .map_err(|e| StoreError::Backend(Box::new(e)))
                    .map(|entry| filtered(kv.mod_revision() as u64, &entry.writes, &prefix));
                let sent = match change {
                    Ok(None) => continue,
                    Ok(Some(change)) => tx.send(Ok(change)).await,
                    Err(e) => tx.send(Err(e)).await,
                };
                if sent.is_err() {
                    return;
                }
            }
        }
    }
}

use super::Change;

fn failed(e: EtcdError) -> StoreError {
    StoreError::Backend(Box::new(e))
}

/// How long a batch whose answer was lost may still land.
const LANDING: Duration = Duration::from_secs(5);

/// The directories (`path/`) of the subtrees the batch deletes whole
/// (nothing put back under them), outermost only, `/` aside.
fn whole_deletes(writes: &[Write], after: &BTreeMap<String, String>) -> Vec<String> {
    let mut dirs: Vec<String> = Vec::new();
    for write in writes {
        let Write::DeleteTree { path: p } = write else { continue };
        let dir = path::dir_prefix(p);
        let survivor = after
            .range(dir.clone()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(&dir));
        if dir != "/" && !survivor && !after.contains_key(p.trim_end_matches('/')) {
            dirs.push(dir);
        }
    }
    dirs.sort();
    let mut outer: Vec<String> = Vec::new();
    for dir in dirs {
        if !outer.iter().any(|o| dir.starts_with(o.as_str())) {
            outer.push(dir);
        }
    }
    outer
}

/// An id no other batch has.
fn batch_id() -> String {
    format!(
        "{}-{:016x}{:016x}",
        std::process::id(),
        fastrand::u64(..),
        fastrand::u64(..)
    )
}

impl MetadataStore for EtcdTree {
    fn apply<'a>(&'a self, writes: &'a [Write]) -> StoreFuture<'a, u64> {
        Box::pin(self.apply_batch(writes))
    }

    fn snapshot<'a>(&'a self, prefix: &'a str) -> StoreFuture<'a, Snapshot> {
        Box::pin(self.snapshot_of(prefix))
    }

    fn revision(&self) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let (rows, _) = self
                .etcd
                .read_at_once(vec![(self.etcd.key(LOG), false)])
                .await
                .map_err(failed)?;
            Ok(rows.first().map(|r| Self::revision_in(r)).unwrap_or(0))
        })
    }

    fn watch<'a>(&'a self, prefix: &'a str, from_revision: u64) -> StoreFuture<'a, Watch> {
        Box::pin(self.watch_from(prefix, from_revision))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::LocalEtcd;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_etcd_tree_conforms_and_its_revisions_are_etcds() {
        let server = LocalEtcd::start().unwrap();
        let etcd = Etcd::connect(&server.url("conformance")).unwrap();
        let tree = EtcdTree::new(etcd.clone());
        super::super::conformance::metadata_store(&tree).await;
        // Another namespace on the same etcd is another, empty tree.
        let other = EtcdTree::new(Etcd::connect(&server.url("conformance/other")).unwrap());
        assert!(other.snapshot("/").await.unwrap().under("/").next().is_none());
        assert_eq!(other.revision().await.unwrap(), 0);
        // A snapshot's revision is etcd's: the same keys read at it give the same leaves.
        let rev = tree
            .apply(&[Write::Put {
                path: "/clusters/c/env/k".into(),
                value: "v".into(),
            }])
            .await
            .unwrap();
        tree.apply(&[Write::Put {
            path: "/clusters/c/env/k".into(),
            value: "later".into(),
        }])
        .await
        .unwrap();
        let (at, _) = etcd.get(&tree.leaf_key("/clusters/c/env/k"), Some(rev as i64)).unwrap();
        assert_eq!(at.map(|(v, _)| v).as_deref(), Some("v"));
    }

    fn put(path: &str, value: &str) -> Write {
        Write::Put {
            path: path.into(),
            value: value.into(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_watch_outlives_an_etcd_restart_and_a_compacted_revision_is_refused() {
        let mut server = LocalEtcd::start().unwrap();
        let etcd = Etcd::connect(&server.url("watch")).unwrap();
        let tree = EtcdTree::new(etcd.clone());
        let r1 = tree.apply(&[put("/clusters/a/env/x", "1")]).await.unwrap();
        let mut watch = tree.watch("/clusters/a", r1 + 1).await.unwrap();
        server.kill();
        tokio::time::sleep(Duration::from_millis(300)).await;
        server.restart().unwrap();
        let r2 = tree.apply(&[put("/clusters/a/env/x", "2")]).await.unwrap();
        let change = tokio::time::timeout(Duration::from_secs(20), watch.next())
            .await
            .expect("the change made after the restart arrives")
            .unwrap();
        assert_eq!(
            (change.revision, change.writes),
            (r2, vec![put("/clusters/a/env/x", "2")])
        );
        // After etcd compacts, watching from before is refused, naming the oldest revision kept.
        let r3 = tree.apply(&[put("/clusters/a/env/x", "3")]).await.unwrap();
        etcd.run(move |mut kv| async move { kv.compact(r3 as i64, None).await })
            .await
            .unwrap();
        match tree.watch("/clusters/a", r1).await {
            Err(StoreError::Compacted { requested, oldest }) => assert_eq!((requested, oldest), (r1, r3)),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("a compacted revision was watched"),
        }
        let mut from_snapshot = tree.watch("/clusters/a", r3 + 1).await.unwrap();
        let r4 = tree.apply(&[put("/clusters/a/env/x", "4")]).await.unwrap();
        assert_eq!(from_snapshot.next().await.unwrap().revision, r4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_processes_batches_never_lose_each_others_writes() {
        let server = LocalEtcd::start().unwrap();
        let url = server.url("race");
        // Two connections stand for two processes: each has its own writer lock.
        let (a, b) = (
            EtcdTree::new(Etcd::connect(&url).unwrap()),
            EtcdTree::new(Etcd::connect(&url).unwrap()),
        );
        let write = |tree: EtcdTree, who: &'static str| async move {
            for i in 0..20 {
                tree.apply(&[Write::Put {
                    path: format!("/clusters/c/env/{who}{i}"),
                    value: "x".into(),
                }])
                .await
                .unwrap();
            }
        };
        tokio::join!(write(a.clone(), "a"), write(b, "b"));
        let all = a.snapshot("/clusters/c").await.unwrap();
        assert_eq!(all.children("/clusters/c/env").len(), 40);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_subtree_deleted_whole_is_one_operation_and_a_refused_batch_names_the_flag() {
        let server = LocalEtcd::start_with(&["--max-txn-ops=128"]).unwrap();
        let tree = EtcdTree::new(Etcd::connect(&server.url("limits")).unwrap());
        let many: Vec<Write> = (0..200)
            .map(|i| put(&format!("/clusters/c/hosts/n{i}/ip"), "x"))
            .collect();
        let err = tree.apply(&many).await.unwrap_err().to_string();
        assert!(err.contains("--max-txn-ops"), "{err}");
        for chunk in many.chunks(100) {
            tree.apply(chunk).await.unwrap();
        }
        // 200 leaves go in one range delete, well under etcd's 128 operations.
        let rev = tree
            .apply(&[Write::DeleteTree {
                path: "/clusters/c".into(),
            }])
            .await
            .unwrap();
        let left = tree.snapshot("/clusters").await.unwrap();
        assert_eq!((left.revision(), left.under("/clusters").count()), (rev, 0));
        // A subtree deleted and written again in one batch keeps what was written.
        tree.apply(&[put("/clusters/d/env/a", "1"), put("/clusters/d/env/b", "2")])
            .await
            .unwrap();
        tree.apply(&[
            Write::DeleteTree {
                path: "/clusters/d".into(),
            },
            put("/clusters/d/env/b", "3"),
        ])
        .await
        .unwrap();
        let d = tree.snapshot("/clusters/d").await.unwrap();
        assert_eq!(d.under("/clusters/d").collect::<Vec<_>>(), [("/clusters/d/env/b", "3")]);
    }
}
