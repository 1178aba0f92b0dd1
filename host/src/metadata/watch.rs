//! Watching the tree: the changes under a prefix from a revision on, as
//! etcd's watch delivers them. A store keeps a bounded log of its recent
//! changes and says when a new revision is applied; a watch reads the log
//! past what it has delivered. Writes made by another process are seen by
//! polling the log now and then.

use super::{StoreError, Write};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// The writes of one revision that touch a watched prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The revision they made.
    pub revision: u64,
    /// The writes, in the order they were applied.
    pub writes: Vec<Write>,
}

/// Revisions of changes a store keeps, at most.
pub(crate) const KEPT_REVISIONS: u64 = 10_000;
/// Bytes of changes (as JSON) a store keeps, at most; the newest revision is always kept.
pub(crate) const KEPT_BYTES: u64 = 32 << 20;
/// How often a watch looks for changes made by other processes.
const POLL: Duration = Duration::from_millis(250);

/// A store's log of recent changes, as a watch reads it.
pub(crate) trait ChangeLog: Send + Sync {
    /// The changes with a revision at or after `from` (each with only the
    /// writes touching `prefix`; revisions that touch nothing left out),
    /// and the store's revision they were read at.
    fn changes(&self, prefix: &str, from: u64) -> Result<(Vec<Change>, u64), StoreError>;
}

/// Keeps the writes of a revision that touch `prefix`, if any.
pub(crate) fn filtered(revision: u64, writes: &[Write], prefix: &str) -> Option<Change> {
    let writes: Vec<Write> = writes.iter().filter(|w| w.touches(prefix)).cloned().collect();
    (!writes.is_empty()).then_some(Change { revision, writes })
}

/// The changes under one prefix, in revision order.
pub struct Watch {
    source: Source,
}

enum Source {
    /// Read from a store's change log, woken when it applies a revision.
    Log {
        log: Arc<dyn ChangeLog>,
        prefix: String,
        next: u64,
        pending: VecDeque<Change>,
        applied: watch::Receiver<u64>,
    },
    /// Pushed by a task that follows the store (etcd's watch).
    Pushed(mpsc::Receiver<Result<Change, StoreError>>),
}

impl Watch {
    pub(crate) fn new(log: Arc<dyn ChangeLog>, prefix: &str, from: u64, applied: watch::Receiver<u64>) -> Watch {
        Watch {
            source: Source::Log {
                log,
                prefix: prefix.to_string(),
                next: from,
                pending: VecDeque::new(),
                applied,
            },
        }
    }

    /// The changes a task sends; an error ends them.
    #[cfg_attr(not(feature = "etcd"), allow(dead_code))]
    pub(crate) fn pushed(changes: mpsc::Receiver<Result<Change, StoreError>>) -> Watch {
        Watch {
            source: Source::Pushed(changes),
        }
    }

    /// The next change; waits until there is one.
    pub async fn next(&mut self) -> Result<Change, StoreError> {
        let (log, prefix, next, pending, applied) = match &mut self.source {
            Source::Pushed(changes) => {
                return changes
                    .recv()
                    .await
                    .unwrap_or_else(|| Err(StoreError::Backend("the watch ended".into())));
            }
            Source::Log {
                log,
                prefix,
                next,
                pending,
                applied,
            } => (log, prefix, next, pending, applied),
        };
        loop {
            if let Some(change) = pending.pop_front() {
                return Ok(change);
            }
            let (changes, read_at) = log.changes(prefix, *next)?;
            // Revisions that touched other prefixes are seen too: a quiet
            // prefix must not fall behind the log and look compacted.
            *next = (*next).max(read_at + 1);
            if !changes.is_empty() {
                pending.extend(changes);
                continue;
            }
            // A closed sender (the store is gone) leaves only the poll.
            tokio::select! {
                changed = applied.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep(POLL).await;
                    }
                }
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }
}

/// An in-memory change log bounded like the durable one.
#[derive(Debug, Default, Clone)]
pub(crate) struct RecentChanges {
    entries: VecDeque<(u64, Vec<Write>, u64)>,
    bytes: u64,
}

impl RecentChanges {
    /// Records the writes of `revision` and forgets what no longer fits.
    pub(crate) fn record(&mut self, revision: u64, writes: &[Write]) {
        let size = serde_json::to_string(writes).map(|s| s.len() as u64).unwrap_or(0);
        self.entries.push_back((revision, writes.to_vec(), size));
        self.bytes += size;
        while self.entries.len() > 1
            && (self.entries.len() as u64 > KEPT_REVISIONS || self.bytes > KEPT_BYTES)
            && let Some((_, _, size)) = self.entries.pop_front()
        {
            self.bytes -= size;
        }
    }

    /// As [`ChangeLog::changes`]; `current` is the store's revision.
    pub(crate) fn since(&self, prefix: &str, from: u64, current: u64) -> Result<(Vec<Change>, u64), StoreError> {
        // No change has revision 0.
        let from = from.max(1);
        let oldest = self.entries.front().map(|e| e.0).unwrap_or(current + 1);
        if from < oldest && from <= current {
            return Err(StoreError::Compacted {
                requested: from,
                oldest,
            });
        }
        let changes = self
            .entries
            .iter()
            .filter(|(rev, _, _)| *rev >= from)
            .filter_map(|(rev, writes, _)| filtered(*rev, writes, prefix))
            .collect();
        Ok((changes, current))
    }
}
