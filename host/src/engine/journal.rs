//! What the journal says about the hooks of one step, per node and service:
//! the attempts made, whether one ended (any outcome but cut off), how it
//! ended when not ok, its reply and what a render changed. A resumed step
//! skips what ended, re-runs what a crash cut off (attempt + 1), and still
//! weighs the failures of its earlier run.

use super::step::StepRun;
use super::{Engine, EngineError};
use crate::cluster::now;
use crate::store::{Event, InvocationOutcome};
use std::collections::{HashMap, HashSet};

/// The events of an operation (of one step, when given), hooks a crash cut
/// off recorded as interrupted: they never end otherwise.
pub(super) async fn close_cut_off(engine: &Engine, op: &str, step: Option<usize>) -> Result<Vec<Event>, EngineError> {
    let mut events = engine.store.events(op)?;
    events.retain(|e| step.is_none_or(|s| e.step == s));
    let mut cut_off = Vec::new();
    for event in events.iter_mut().filter(|e| e.outcome == InvocationOutcome::Running) {
        event.outcome = InvocationOutcome::Interrupted;
        event.ended_at = Some(now());
        event.message = Some("the host stopped while the hook ran".into());
        cut_off.push(event.clone());
    }
    if !cut_off.is_empty() {
        engine.store.put_events(cut_off).await?;
    }
    Ok(events)
}

/// The nodes whose config changed, by the events of earlier steps (of roles
/// that reload), with no reload ended since: a render cut off (it may have
/// written its files), a render that changed files but whose reload never
/// came (the host died between them), or a reload cut off. A render that changed files is
/// followed by its reload in the same step, so only a crash leaves one owed.
fn reloads_owed<'a>(events: impl Iterator<Item = &'a Event>) -> HashSet<String> {
    let mut events: Vec<&Event> = events
        .filter(|e| e.service == "render" || e.service == "reload")
        .collect();
    events.sort_by_key(|e| e.seq);
    let mut owed = HashSet::new();
    for e in events {
        let changed = match (e.service.as_str(), e.outcome) {
            (_, InvocationOutcome::Interrupted) => true,
            ("render", InvocationOutcome::Ok) => !e.changed.is_empty(),
            ("render", _) => owed.contains(&e.node_id),
            // A reload that ended (ok or not) was the reload of those changes.
            _ => false,
        };
        if changed {
            owed.insert(e.node_id.clone());
        } else {
            owed.remove(&e.node_id);
        }
    }
    owed
}

/// The hooks a step has run so far.
#[derive(Default)]
pub(super) struct Past {
    by_key: HashMap<(String, String), Tried>,
    /// Nodes owed a reload by earlier steps of the operation ([`reloads_owed`]).
    reload_owed: HashSet<String>,
}

/// One node's tries of one service in the step.
#[derive(Default)]
pub(super) struct Tried {
    pub(super) attempts: u32,
    pub(super) ended: bool,
    pub(super) cut_off: bool,
    pub(super) changed: Vec<String>,
    /// Its ending, when that was not ok: a resumed step still weighs it.
    pub(super) failure: Option<Event>,
    /// Its reply, when it ended ok with one.
    pub(super) reply: Option<String>,
}

impl Past {
    /// Reads the step's events; hooks a crash cut off are recorded as interrupted.
    pub(super) async fn load(run: &StepRun<'_>) -> Result<Past, EngineError> {
        let mut events = close_cut_off(run.engine, &run.op.id, None).await?;
        let mut past = Past::default();
        let reloads = |role: &str| run.cluster.service(role, "reload").is_some();
        past.reload_owed = reloads_owed(events.iter().filter(|e| e.step != run.index && reloads(&e.role)));
        events.retain(|e| e.step == run.index);
        for e in events {
            let tried = past.by_key.entry((e.node_id.clone(), e.service.clone())).or_default();
            tried.attempts = tried.attempts.max(e.attempt);
            match e.outcome {
                InvocationOutcome::Running | InvocationOutcome::Interrupted => tried.cut_off = true,
                outcome => {
                    tried.ended = true;
                    tried.failure = (outcome != InvocationOutcome::Ok).then(|| e.clone());
                    tried.changed = e.changed.clone();
                    tried.reply = e.reply.clone();
                }
            }
        }
        Ok(past)
    }

    /// The tries of `service` on `node`, if any.
    pub(super) fn get(&self, node: &str, service: &str) -> Option<&Tried> {
        self.by_key.get(&(node.to_string(), service.to_string()))
    }

    /// It ran to an end (ok, or a failure the step already dealt with): not again.
    pub(super) fn done(&self, node: &str, service: &str) -> bool {
        self.get(node, service).is_some_and(|t| t.ended)
    }

    /// Whether earlier steps left the node owed a reload.
    pub(super) fn reload_owed(&self, node: &str) -> bool {
        self.reload_owed.contains(node)
    }

    /// The attempt number of its next run.
    pub(super) fn next_attempt(&self, node: &str, service: &str) -> u32 {
        self.get(node, service).map(|t| t.attempts + 1).unwrap_or(1)
    }
}
