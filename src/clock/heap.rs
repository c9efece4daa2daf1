//! The deadlines shared by the precise and the simulated clocks, and the polling of one
//! registered deadline.
//!
//! Deadlines live in an ordered map keyed by (instant, registration number). A wait that is
//! dropped before its deadline (a call that finished long before its timeout: the common case)
//! removes its entry at once, so the map holds only deadlines someone still waits for: memory
//! follows the calls in flight, not the rate times the deadline.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use tokio::time::Instant;

/// One registered deadline: fired once, waking whoever waits on it.
#[derive(Debug, Default)]
pub struct Entry {
    fired: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Entry {
    fn fire(&self) -> Option<Waker> {
        self.fired.store(true, Ordering::Release);
        self.waker.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn is_fired(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }
}

/// The key of a registered deadline.
pub type Key = (Instant, u64);

/// Registered deadlines, earliest first.
#[derive(Debug, Default)]
pub struct TimerHeap {
    due: BTreeMap<Key, Arc<Entry>>,
    next_seq: u64,
}

impl TimerHeap {
    /// Registers `deadline`, woken through `waker`. Returns the entry and its key, and whether
    /// it is now the earliest deadline (the one the timer must wake for).
    pub fn register(&mut self, deadline: Instant, waker: &Waker) -> (Arc<Entry>, Key, bool) {
        let entry = Arc::new(Entry::default());
        *entry.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(waker.clone());
        let earliest = self.next().is_none_or(|next| deadline < next);
        let key = (deadline, self.next_seq);
        self.next_seq += 1;
        self.due.insert(key, Arc::clone(&entry));
        (entry, key, earliest)
    }

    /// Forgets a deadline nobody waits for any more.
    pub fn remove(&mut self, key: &Key) {
        self.due.remove(key);
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.due.first_key_value().map(|(k, _)| k.0)
    }

    /// Deadlines registered and still waited for.
    pub fn pending(&self) -> usize {
        self.due.len()
    }

    /// Whether a wait for exactly `deadline` is still registered. (Tests ask this rather than
    /// compare `pending` counts: the precise timer is one per process, shared by every test
    /// running at the same time.)
    #[cfg(test)]
    pub fn waits_for(&self, deadline: Instant) -> bool {
        self.due.keys().any(|k| k.0 == deadline)
    }

    /// Fires every deadline at or before `now`, collecting the wakers to wake (outside any lock).
    pub fn fire_due(&mut self, now: Instant, wake: &mut Vec<Waker>) {
        while self.next().is_some_and(|d| d <= now) {
            let (_, entry) = self.due.pop_first().expect("there is a first entry");
            wake.extend(entry.fire());
        }
    }
}

/// A wait registered on a [`TimerHeap`]: the entry and its key.
pub type Registration = Option<(Arc<Entry>, Key)>;

/// Polls a wait on a registered deadline: `register` is called on the first poll only.
pub fn poll_entry(
    registration: &mut Registration,
    cx: &mut Context<'_>,
    register: impl FnOnce(&Waker) -> (Arc<Entry>, Key),
) -> Poll<()> {
    match registration {
        None => {
            *registration = Some(register(cx.waker()));
            Poll::Pending
        }
        Some((e, _)) => {
            if e.is_fired() {
                return Poll::Ready(());
            }
            {
                let mut slot = e.waker.lock().unwrap_or_else(|p| p.into_inner());
                if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *slot = Some(cx.waker().clone());
                }
            }
            // The deadline may have fired between the first check and storing the waker.
            if e.is_fired() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }
    }
}

/// Removes a wait from `heap` when its future is dropped before its deadline fired.
pub fn drop_registration(registration: &Registration, heap: &Mutex<TimerHeap>) {
    if let Some((entry, key)) = registration
        && !entry.is_fired()
    {
        heap.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}
