//! Fair sharing of the hook slots between tenants.
//!
//! The process has a fixed number of hook slots (the runtime's instances).
//! A tenant's hook waits in its tenant's queue; whenever a slot is free it
//! goes to the next tenant in turn that has a hook waiting and is under its
//! own limit of concurrent hooks: deficit round-robin with every hook
//! costing one slot. A tenant with 2,000 hooks waiting therefore delays
//! another tenant's next hook by at most one slot turnover per other
//! waiting tenant, never by its whole queue.
//!
//! A slot turnover can be a whole hook's time: hooks started together end
//! together. So the last eighth of the slots ([`FairScheduler::reserve`]) is
//! kept for tenants running fewer hooks than that: a tenant busy with many
//! hooks leaves them free, and another tenant's first hooks start at once
//! instead of waiting for one of them to end. A lone busy tenant gives up
//! that eighth of the slots.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// The shared slots and the tenants' queues.
pub struct FairScheduler {
    state: Mutex<State>,
}

struct State {
    free: usize,
    /// The last free slots only a tenant running fewer hooks than this may take.
    reserve: usize,
    /// Tenants in turn order; one with nothing waiting leaves the rotation.
    turn: VecDeque<String>,
    tenants: HashMap<String, TenantQueue>,
}

#[derive(Default)]
struct TenantQueue {
    waiting: VecDeque<oneshot::Sender<Slot>>,
    running: usize,
    limit: usize,
}

/// One hook slot, held while a hook runs; dropping it gives it back.
pub struct Slot {
    /// `None` once the slot was given back by hand.
    scheduler: Option<Arc<FairScheduler>>,
    tenant: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(scheduler) = self.scheduler.take() else { return };
        let mut state = scheduler.lock();
        state.free += 1;
        if let Some(queue) = state.tenants.get_mut(&self.tenant) {
            queue.running = queue.running.saturating_sub(1);
        }
        FairScheduler::hand_out(&scheduler, &mut state);
    }
}

impl FairScheduler {
    /// A scheduler of `slots` hook slots.
    pub fn new(slots: usize) -> Arc<FairScheduler> {
        Arc::new(FairScheduler {
            state: Mutex::new(State {
                free: slots.max(1),
                reserve: Self::reserve(slots),
                turn: VecDeque::new(),
                tenants: HashMap::new(),
            }),
        })
    }

    /// The slots kept for tenants running few hooks: an eighth, rounded down
    /// (none below 8 slots, where one slot would be too large a share).
    pub fn reserve(slots: usize) -> usize {
        slots / 8
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits for a slot for one hook of `tenant`, who may run at most `limit` at once.
    pub async fn acquire(self: &Arc<Self>, tenant: &str, limit: usize) -> Slot {
        let receiver = {
            let mut state = self.lock();
            let queue = state.tenants.entry(tenant.to_string()).or_default();
            queue.limit = limit.max(1);
            let (sender, receiver) = oneshot::channel();
            queue.waiting.push_back(sender);
            if !state.turn.iter().any(|t| t == tenant) {
                state.turn.push_back(tenant.to_string());
            }
            Self::hand_out(self, &mut state);
            receiver
        };
        match receiver.await {
            Ok(slot) => slot,
            // The sender lives in the queue until it is sent: unreachable.
            Err(_) => unreachable!("a waiting hook's sender is dropped only after sending"),
        }
    }

    /// Gives free slots to waiting hooks, one tenant after another.
    fn hand_out(this: &Arc<Self>, state: &mut State) {
        let mut passed = 0;
        while state.free > 0 && passed < state.turn.len() {
            let Some(tenant) = state.turn.pop_front() else { break };
            let Some(queue) = state.tenants.get_mut(&tenant) else {
                continue;
            };
            let reserved = state.free <= state.reserve && queue.running >= state.reserve;
            if queue.running >= queue.limit || reserved {
                // At its own limit, or busy and only reserved slots free:
                // its turn passes, it stays in the rotation.
                state.turn.push_back(tenant);
                passed += 1;
                continue;
            }
            let Some(waiter) = queue.waiting.pop_front() else {
                continue;
            };
            let slot = Slot {
                scheduler: Some(this.clone()),
                tenant: tenant.clone(),
            };
            queue.running += 1;
            state.free -= 1;
            let has_more = !queue.waiting.is_empty();
            if let Err(mut slot) = waiter.send(slot) {
                // The hook stopped waiting (its operation was cancelled): the
                // slot is free again (given back here: its drop would lock).
                slot.scheduler = None;
                queue.running -= 1;
                state.free += 1;
            }
            if has_more {
                state.turn.push_back(tenant);
            }
            passed = 0;
        }
        state
            .turn
            .retain(|t| state.tenants.get(t).is_some_and(|q| !q.waiting.is_empty()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_big_queue_does_not_hold_back_a_small_one() {
        // Nine slots: a holds eight, c the one kept in reserve.
        let fair = FairScheduler::new(9);
        let mut held = Vec::new();
        for _ in 0..8 {
            held.push(fair.acquire("a", 100).await);
        }
        held.push(fair.acquire("c", 100).await);
        // Tenant a queues 50 more hooks, then b queues one.
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiting = Vec::new();
        for i in 0..50 {
            let (fair, order) = (fair.clone(), order.clone());
            waiting.push(tokio::spawn(async move {
                let _slot = fair.acquire("a", 100).await;
                order.lock().unwrap().push(format!("a{i}"));
                tokio::time::sleep(Duration::from_millis(1)).await;
            }));
            tokio::task::yield_now().await;
        }
        let (fair2, order2) = (fair.clone(), order.clone());
        let b = tokio::spawn(async move {
            let _slot = fair2.acquire("b", 100).await;
            order2.lock().unwrap().push("b".to_string());
        });
        tokio::task::yield_now().await;
        drop(held);
        b.await.unwrap();
        for w in waiting {
            w.await.unwrap();
        }
        let order = order.lock().unwrap();
        let b_at = order.iter().position(|x| x == "b").unwrap();
        assert!(b_at <= 1, "b ran {b_at}th: {order:?}");
        assert_eq!(order.len(), 51);
    }

    #[tokio::test]
    async fn a_busy_tenant_leaves_the_reserve_and_a_newcomer_starts_at_once() {
        let fair = FairScheduler::new(16);
        assert_eq!(FairScheduler::reserve(16), 2);
        let mut a = Vec::new();
        for _ in 0..100 {
            let fair = fair.clone();
            a.push(tokio::spawn(async move {
                let _slot = fair.acquire("a", 100).await;
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(fair.lock().free, 2, "a runs 14 of 16 hooks");
        // b's first two hooks start with every slot of a still held.
        let first = tokio::time::timeout(Duration::from_secs(5), fair.acquire("b", 100)).await;
        let second = tokio::time::timeout(Duration::from_secs(5), fair.acquire("b", 100)).await;
        assert!(first.is_ok() && second.is_ok(), "b waited for a");
        assert_eq!(FairScheduler::reserve(7), 0, "no reserve below 8 slots");
        for task in a {
            task.abort();
        }
    }

    #[tokio::test]
    async fn a_tenant_never_runs_more_than_its_limit_and_slots_come_back() {
        let fair = FairScheduler::new(4);
        let first = fair.acquire("a", 1).await;
        let fair2 = fair.clone();
        let second = tokio::spawn(async move { fair2.acquire("a", 1).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!second.is_finished(), "a second hook of a tenant limited to one waits");
        // Another tenant is not held back by a's limit.
        drop(fair.acquire("b", 1).await);
        drop(first);
        drop(second.await.unwrap());
        assert_eq!(fair.lock().free, 4);
    }

    #[tokio::test]
    async fn a_cancelled_wait_loses_no_slot() {
        let fair = FairScheduler::new(1);
        let held = fair.acquire("a", 5).await;
        let fair2 = fair.clone();
        let waiter = tokio::spawn(async move { fair2.acquire("b", 5).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        waiter.abort();
        let _ = waiter.await;
        drop(held);
        drop(fair.acquire("c", 5).await);
        assert_eq!(fair.lock().free, 1);
    }
}
