//! The run loop: one step after another, each journaled durably when it
//! starts and when it ends, so that a resumed operation starts at the first
//! step that has not ended, with the plan variables its ended steps produced.
//!
//! The main part runs first. When it fails, is refused, or is cancelled
//! after one of its steps ran, and the plan has a recovery part, the branch
//! is journaled on the operation and the recovery part runs (to its end: a
//! cancel does not stop it). The operation ends as its main part did; the
//! cluster's status follows from how it ended ([`settle`]).

use super::dispatch::execute;
use super::journal::close_cut_off;
use super::step::{StepEnd, StepRun};
use super::{Engine, EngineError};
use crate::cluster::{Cluster, ClusterStatus, now};
use crate::plan::{Action, Vars};
use crate::request::OperationKind;
use crate::store::{Operation, OperationStatus, Recovery, StepOutcome, StepRecord, StoreError};
use std::collections::BTreeMap;

/// How a part of the plan ended.
enum PartEnd {
    /// Every step did its work.
    Done,
    /// It stopped: failed, refused (aborted) or cancelled, with why, and the
    /// record of the step that stopped it (not journaled yet).
    Stopped {
        status: OperationStatus,
        reason: String,
        last: Option<StepRecord>,
    },
}

/// One run of an operation in this process.
struct Run<'e> {
    engine: &'e Engine,
    op: Operation,
    /// The journal, by step index.
    journal: BTreeMap<usize, StepRecord>,
    vars: Vars,
}

impl Engine {
    /// Runs (or resumes) an operation to its end, in this process, holding its claim.
    pub async fn run(&self, op_id: &str) -> Result<Operation, EngineError> {
        self.operation(op_id)?;
        let _claim = self.store.claim(op_id)?;
        // Read again under the claim: another process may have just ended it.
        let op = self.operation(op_id)?;
        if let Ok(cluster) = self.cluster(&op.cluster_id) {
            self.check_here(&cluster, Some(op_id))?;
        }
        if op.status != OperationStatus::Running {
            return Err(StoreError::Ended {
                operation: op.id,
                status: op.status,
            }
            .into());
        }
        let journal: BTreeMap<usize, StepRecord> = self.store.steps(op_id)?.into_iter().map(|s| (s.index, s)).collect();
        let mut run = Run {
            engine: self,
            op,
            journal,
            vars: Vars::new(),
        };
        run.vars = run.produced();
        run.go().await
    }
}

impl Run<'_> {
    /// The plan variables the steps that did their work produced.
    fn produced(&self) -> Vars {
        self.op
            .plan
            .all()
            .filter_map(|(index, step)| {
                let record = self
                    .journal
                    .get(&index)
                    .filter(|r| matches!(r.outcome, Some(StepOutcome::Ok | StepOutcome::Tolerated)))?;
                Some((step.output.clone()?, record.output.clone().unwrap_or_default()))
            })
            .collect()
    }

    fn ended(&self, index: usize) -> bool {
        self.journal.get(&index).is_some_and(|r| r.outcome.is_some())
    }

    async fn go(mut self) -> Result<Operation, EngineError> {
        let main = match self.op.recovery.clone() {
            Some(branch) => PartEnd::Stopped {
                status: branch.after,
                reason: branch.reason,
                last: None,
            },
            None => self.main().await?,
        };
        let PartEnd::Stopped { status, reason, last } = main else {
            return self.finish(OperationStatus::Succeeded, None, None, false).await;
        };
        // Pre-checks change nothing: a main part they alone ran needs no recovery.
        let main_ran = self.changed_anything(last.as_ref());
        if self.op.plan.recovery.is_empty() || !main_ran {
            return self.finish(status, Some(reason), last, false).await;
        }
        if self.op.recovery.is_none() {
            // The branch taken is journaled before the first recovery step.
            if let Some(step) = last {
                self.engine.store.put_step(&self.op.id, step.clone()).await?;
                self.journal.insert(step.index, step);
            }
            let branch = Recovery {
                after: status,
                reason: reason.clone(),
            };
            self.op = self
                .engine
                .store
                .update_operation(
                    &self.op.id,
                    Box::new(move |op| {
                        op.recovery = Some(branch.clone());
                        Ok(())
                    }),
                )
                .await?;
        }
        let reason = match &self.op.plan.recovery_note {
            Some(note) => format!("{reason}; {note}"),
            None => reason,
        };
        match self.recovery().await? {
            PartEnd::Done => self.finish(status, Some(reason), None, true).await,
            PartEnd::Stopped {
                reason: failure, last, ..
            } => {
                let reason = format!("{reason}; then the recovery failed: {failure}");
                self.finish(OperationStatus::Failed, Some(reason), last, false).await
            }
        }
    }

    /// Whether a step that may change something ran (began): any step but
    /// one that only asks (a pre-check, `get_nodes_order`). `last`: a step
    /// whose end is not journaled yet.
    fn changed_anything(&self, last: Option<&StepRecord>) -> bool {
        let changes = |index: usize| {
            self.op.plan.step(index).is_some_and(|s| match &s.action {
                Action::RunService(step) => !step.pre_check && step.service != "get_nodes_order",
                _ => true,
            })
        };
        last.is_some_and(|l| changes(l.index)) || self.journal.keys().any(|&i| changes(i))
    }

    /// The main part, from its first step that has not ended.
    async fn main(&mut self) -> Result<PartEnd, EngineError> {
        // A step that failed or was refused ends the main part, even when the
        // process died before it could say so.
        let stopped = (0..self.op.plan.steps.len()).find_map(|i| {
            let record = self.journal.get(&i)?;
            matches!(record.outcome, Some(StepOutcome::Failed | StepOutcome::Aborted)).then(|| record.clone())
        });
        if let Some(record) = stopped {
            return Ok(self.stopped_by(record, false));
        }
        let total = self.op.plan.steps.len();
        for index in 0..total {
            if self.ended(index) {
                continue;
            }
            let committed = self.op.plan.no_cancel_from.is_some_and(|from| index >= from);
            if !committed && self.engine.store.cancel_requested(&self.op.id)? {
                let reason = if self.journal.contains_key(&index) {
                    format!(
                        "cancelled at step {} of {total}, which the host stopped in: it did not run again",
                        index + 1
                    )
                } else {
                    format!("cancelled before step {} of {total}", index + 1)
                };
                return Ok(PartEnd::Stopped {
                    status: OperationStatus::Cancelled,
                    reason,
                    last: None,
                });
            }
            if let Some(record) = self.step(index).await? {
                return Ok(self.stopped_by(record, true));
            }
        }
        Ok(PartEnd::Done)
    }

    /// The recovery part, from its first step that has not ended.
    async fn recovery(&mut self) -> Result<PartEnd, EngineError> {
        for index in self.op.plan.steps.len()..self.op.plan.all().count() {
            if self.ended(index) {
                continue;
            }
            if let Some(record) = self.step(index).await? {
                return Ok(self.stopped_by(record, true));
            }
        }
        Ok(PartEnd::Done)
    }

    /// How a part ended at a step that failed or refused; `fresh`: its end is
    /// not journaled yet (it lands with the operation's end, or the branch).
    fn stopped_by(&self, record: StepRecord, fresh: bool) -> PartEnd {
        let message = record.message.clone().unwrap_or_default();
        let (status, reason) = if record.outcome == Some(StepOutcome::Aborted) {
            (OperationStatus::Aborted, message)
        } else {
            let action = self
                .op
                .plan
                .step(record.index)
                .map(|s| s.action.to_string())
                .unwrap_or_default();
            let part = if self.op.plan.is_recovery(record.index) {
                "recovery step"
            } else {
                "step"
            };
            let number = record.index + 1
                - if self.op.plan.is_recovery(record.index) {
                    self.op.plan.steps.len()
                } else {
                    0
                };
            (
                OperationStatus::Failed,
                format!("{part} {number} ({action}) failed: {message}"),
            )
        };
        PartEnd::Stopped {
            status,
            reason,
            last: fresh.then_some(record),
        }
    }

    /// Runs one step, journaling its start and (when it did its work) its
    /// end; the record of a step that stopped its part.
    async fn step(&mut self, index: usize) -> Result<Option<StepRecord>, EngineError> {
        let engine = self.engine;
        let op_id = self.op.id.clone();
        let Some(step) = self.op.plan.step(index).cloned() else {
            return Ok(None);
        };
        let started_at = now();
        let start = StepRecord {
            index,
            started_at: started_at.clone(),
            ended_at: None,
            outcome: None,
            message: None,
            output: None,
        };
        engine.store.put_step(&op_id, start).await?;
        engine.observer.step_started(&self.op, index);
        let run = StepRun {
            engine,
            op: &self.op,
            index,
            cluster: engine.cluster(match (step.on_peer, self.op.request.peer_id()) {
                (false, _) => &self.op.cluster_id,
                (true, Some(peer)) => peer,
                (true, None) => "",
            })?,
            vars: &self.vars,
        };
        let (outcome, message, output) = match execute(&run, &step).await {
            Ok(StepEnd::Ok(output)) => (StepOutcome::Ok, None, output),
            Ok(StepEnd::Tolerated(m, output)) => (StepOutcome::Tolerated, Some(m), output),
            Ok(StepEnd::Failed(m)) => (StepOutcome::Failed, Some(m), None),
            Ok(StepEnd::Refused(m)) => (StepOutcome::Aborted, Some(m), None),
            Err(e) => (StepOutcome::Failed, Some(e.to_string()), None),
        };
        engine.observer.step_ended(&self.op, index, outcome);
        let end = StepRecord {
            index,
            started_at,
            ended_at: Some(now()),
            outcome: Some(outcome),
            message,
            output: step.output.as_ref().map(|_| output.clone().unwrap_or_default()),
        };
        if matches!(outcome, StepOutcome::Failed | StepOutcome::Aborted) {
            return Ok(Some(end));
        }
        engine.store.put_step(&op_id, end.clone()).await?;
        if let Some(var) = &step.output {
            self.vars.insert(var.clone(), output.unwrap_or_default());
        }
        self.journal.insert(index, end);
        Ok(None)
    }

    /// Ends the operation: its last step, its status and the cluster's, at once.
    async fn finish(
        &self,
        status: OperationStatus,
        error: Option<String>,
        last: Option<StepRecord>,
        recovered: bool,
    ) -> Result<Operation, EngineError> {
        let ending = Ending {
            status,
            kind: self.op.kind(),
            prior: self.op.prior_status,
            any_change: self.changed_anything(last.as_ref()),
            reversed: recovered
                && self
                    .journal
                    .keys()
                    .chain(last.as_ref().map(|l| &l.index))
                    .filter(|&&i| !self.op.plan.is_recovery(i))
                    .all(|&i| i < self.op.plan.reversible),
            recovery_set_status: recovered
                && self
                    .op
                    .plan
                    .recovery
                    .iter()
                    .any(|s| matches!(s.action, Action::SetStatus { .. })),
        };
        // A step a crash cut off, and never run again, ends here, as do its hooks.
        let mut ends: Vec<StepRecord> = self
            .journal
            .values()
            .filter(|r| r.outcome.is_none() && last.as_ref().is_none_or(|l| l.index != r.index))
            .map(|r| StepRecord {
                ended_at: Some(now()),
                outcome: Some(StepOutcome::Interrupted),
                message: Some("the host stopped while it ran, and it did not run again".into()),
                ..r.clone()
            })
            .collect();
        if !ends.is_empty() {
            close_cut_off(self.engine, &self.op.id, None).await?;
        }
        ends.extend(last);
        let mut op = self.op.clone();
        op.status = status;
        op.error = error;
        op.ended_at = Some(now());
        let finished = self
            .engine
            .store
            .finish(
                op,
                ends,
                Box::new(move |cluster| {
                    settle(&ending, cluster);
                    Ok(())
                }),
            )
            .await?;
        Ok(finished)
    }
}

/// How an operation ended, as far as its cluster's status goes.
struct Ending {
    status: OperationStatus,
    kind: OperationKind,
    prior: Option<ClusterStatus>,
    any_change: bool,
    /// The recovery undid all the main part did (it stopped within the plan's reversible steps).
    reversed: bool,
    recovery_set_status: bool,
}

/// The cluster after its operation: as planned on success or after a
/// recovery that set its status; as it was before on a refusal, when no
/// step but a pre-check ran (cancelled, or a pre-check that could not run),
/// or when the recovery undid everything the main part did; failed
/// otherwise (remembering what failed; a failed new cluster, as a failed creation).
fn settle(ending: &Ending, cluster: &mut Cluster) {
    // An operation that made the cluster (a create, a device restore) failed as a creation: delete it.
    let kind = if ending.prior.is_none() {
        OperationKind::CreateCluster
    } else {
        ending.kind
    };
    let failed = (ClusterStatus::Failed, Some(kind));
    (cluster.status, cluster.failed_during) = match (ending.status, ending.prior) {
        (OperationStatus::Succeeded, _) => (cluster.status, None),
        _ if ending.recovery_set_status => (cluster.status, None),
        (_, Some(prior)) if ending.reversed => (prior, cluster.failed_during),
        (OperationStatus::Aborted, Some(prior)) => (prior, cluster.failed_during),
        (_, Some(prior)) if !ending.any_change => (prior, cluster.failed_during),
        _ => failed,
    };
}
