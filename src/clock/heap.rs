//! The deadline heap shared by the precise and the simulated clocks, and the polling of one
//! registered deadline.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
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

    /// The wait was dropped: the deadline no longer matters, and the timer may skip it.
    pub fn cancel(&self) {
        self.fired.store(true, Ordering::Release);
        self.waker.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// A deadline in the heap, ordered by time, then by registration.
#[derive(Debug)]
struct Due(Instant, u64, Arc<Entry>);

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        (self.0, self.1) == (other.0, other.1)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0, self.1).cmp(&(other.0, other.1))
    }
}

/// Registered deadlines, earliest first.
#[derive(Debug, Default)]
pub struct TimerHeap {
    due: BinaryHeap<Reverse<Due>>,
    next_seq: u64,
}

impl TimerHeap {
    /// Registers `deadline`, woken through `waker`. Returns the entry, and whether it is now
    /// the earliest deadline (the one the timer must wake for).
    pub fn register(&mut self, deadline: Instant, waker: &Waker) -> (Arc<Entry>, bool) {
        let entry = Arc::new(Entry::default());
        *entry.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(waker.clone());
        let earliest = self.next().is_none_or(|next| deadline < next);
        self.due
            .push(Reverse(Due(deadline, self.next_seq, Arc::clone(&entry))));
        self.next_seq += 1;
        (entry, earliest)
    }

    /// The earliest deadline still waited for (cancelled ones are dropped on the way).
    pub fn next(&mut self) -> Option<Instant> {
        while self.due.peek().is_some_and(|Reverse(d)| d.2.is_fired()) {
            self.due.pop();
        }
        self.due.peek().map(|Reverse(d)| d.0)
    }

    /// Fires every deadline at or before `now`, collecting the wakers to wake (outside any lock).
    pub fn fire_due(&mut self, now: Instant, wake: &mut Vec<Waker>) {
        while self.next().is_some_and(|d| d <= now) {
            let Reverse(Due(_, _, entry)) = self.due.pop().expect("peeked");
            wake.extend(entry.fire());
        }
    }
}

/// Cancels a registered wait when its future is dropped before the deadline.
pub fn cancel_entry(entry: &Option<Arc<Entry>>) {
    if let Some(e) = entry {
        e.cancel();
    }
}

/// Polls a wait on a registered deadline: `register` is called on the first poll only.
pub fn poll_entry(
    entry: &mut Option<Arc<Entry>>,
    cx: &mut Context<'_>,
    register: impl FnOnce(&Waker) -> Arc<Entry>,
) -> Poll<()> {
    match entry {
        None => {
            *entry = Some(register(cx.waker()));
            Poll::Pending
        }
        Some(e) => {
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
