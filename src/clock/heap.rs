//! The deadlines shared by the precise, the reactor and the simulated clocks, and the polling of
//! one registered deadline.
//!
//! Every call registers a deadline (its timeout) and almost every one is dropped unfired (the
//! call finished first), so registering and forgetting must cost no allocation in a steady run:
//! the waits live in a slab of slots reused through a free list, ordered by a binary min-heap
//! of (instant, registration number) that knows each slot's place, so a dropped wait is taken
//! out at once (O(log n)) and the heap holds only deadlines someone still waits for: memory
//! follows the calls in flight (its peak: the slab does not shrink), not the rate times the
//! deadline. The registration number is unique for the heap's life; a slot holding another
//! number than a wait's own means that wait fired (or was removed), so no flag is shared
//! outside the heap's lock.

use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use tokio::time::Instant;

/// The key of a registered deadline: ties fire in registration order.
pub type Key = (Instant, u64);

/// A registered wait: its slot and its key.
#[derive(Debug, Clone, Copy)]
pub struct Handle {
    slot: u32,
    key: Key,
}

/// The registration number of a free slot (no wait's: numbers count up from zero).
const FREE: u64 = u64::MAX;

#[derive(Debug)]
struct Slot {
    /// The registration number of the wait in this slot, or [`FREE`].
    seq: u64,
    /// Its place in `order`.
    pos: u32,
    waker: Option<Waker>,
}

/// Registered deadlines, earliest first.
#[derive(Debug, Default)]
pub struct TimerHeap {
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// A binary min-heap of (key, slot).
    order: Vec<(Key, u32)>,
    next_seq: u64,
    /// When the timer serving this heap will next expire, if it is armed ([`TimerHeap::arm_for`]).
    armed: Option<Instant>,
}

impl TimerHeap {
    /// Registers `deadline`, woken through `waker`. Returns the wait's handle, and whether it is
    /// now the earliest deadline (the one the timer must wake for).
    pub fn register(&mut self, deadline: Instant, waker: &Waker) -> (Handle, bool) {
        let earliest = self.next().is_none_or(|next| deadline < next);
        let key = (deadline, self.next_seq);
        self.next_seq += 1;
        let pos = self.order.len() as u32;
        let slot = match self.free.pop() {
            Some(i) => {
                let s = &mut self.slots[i as usize];
                (s.seq, s.pos) = (key.1, pos);
                s.waker = Some(waker.clone());
                i
            }
            None => {
                self.slots.push(Slot {
                    seq: key.1,
                    pos,
                    waker: Some(waker.clone()),
                });
                (self.slots.len() - 1) as u32
            }
        };
        self.order.push((key, slot));
        self.sift_up(pos as usize);
        (Handle { slot, key }, earliest)
    }

    /// Whether `handle`'s wait is still registered (neither fired nor removed).
    fn holds(&self, handle: &Handle) -> bool {
        self.slots[handle.slot as usize].seq == handle.key.1
    }

    /// Forgets a wait nobody waits for any more (nothing if it fired).
    pub fn remove(&mut self, handle: &Handle) {
        if self.holds(handle) {
            let pos = self.slots[handle.slot as usize].pos as usize;
            self.take(pos);
        }
    }

    /// Whether `handle`'s deadline fired; if not, `waker` is the one it will wake.
    pub fn poll(&mut self, handle: &Handle, waker: &Waker) -> Poll<()> {
        if !self.holds(handle) {
            return Poll::Ready(());
        }
        let slot = &mut self.slots[handle.slot as usize].waker;
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
        Poll::Pending
    }

    /// Whether the timer serving this heap must be armed (again) to wake by `at`: it is not
    /// armed, or armed for later. If so, records it armed for `at`. A timer armed for earlier
    /// is left as it is, even if the wait it was armed for is gone: it will wake for nothing
    /// once, and be armed then for what is left. Each arm is a `timerfd_settime`; a wait
    /// registered after the earliest (a call's timeout, in a run whose calls fall due in
    /// order) costs none, where arming for every new earliest deadline of a heap the finished
    /// calls had emptied cost one per batch of calls.
    pub fn arm_for(&mut self, at: Instant) -> bool {
        let arm = self.armed.is_none_or(|armed| at < armed);
        if arm {
            self.armed = Some(at);
        }
        arm
    }

    /// The timer serving this heap expired: it is armed for nothing now.
    pub fn expired(&mut self) {
        self.armed = None;
    }

    /// When the timer serving this heap is armed for (for tests).
    #[cfg(test)]
    pub fn armed(&self) -> Option<Instant> {
        self.armed
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.order.first().map(|(k, _)| k.0)
    }

    /// Deadlines registered and still waited for.
    pub fn pending(&self) -> usize {
        self.order.len()
    }

    /// Whether a wait for exactly `deadline` is still registered. (Tests ask this rather than
    /// compare `pending` counts: the precise timer is one per process, shared by every test
    /// running at the same time.)
    #[cfg(test)]
    pub fn waits_for(&self, deadline: Instant) -> bool {
        self.order.iter().any(|(k, _)| k.0 == deadline)
    }

    /// Fires every deadline at or before `now`, earliest first, collecting the wakers to wake
    /// (outside any lock).
    pub fn fire_due(&mut self, now: Instant, wake: &mut Vec<Waker>) {
        while self.next().is_some_and(|d| d <= now) {
            wake.extend(self.take(0));
        }
    }

    /// Takes the wait at `pos` of the order out, frees its slot, returns its waker.
    fn take(&mut self, pos: usize) -> Option<Waker> {
        let (_, slot) = self.order.swap_remove(pos);
        if pos < self.order.len() {
            self.slots[self.order[pos].1 as usize].pos = pos as u32;
            self.sift_down(pos);
            self.sift_up(pos);
        }
        let s = &mut self.slots[slot as usize];
        s.seq = FREE;
        self.free.push(slot);
        s.waker.take()
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.order.swap(a, b);
        self.slots[self.order[a].1 as usize].pos = a as u32;
        self.slots[self.order[b].1 as usize].pos = b as u32;
    }

    fn sift_up(&mut self, mut pos: usize) {
        while pos > 0 {
            let parent = (pos - 1) / 2;
            if self.order[pos].0 >= self.order[parent].0 {
                break;
            }
            self.swap(pos, parent);
            pos = parent;
        }
    }

    fn sift_down(&mut self, mut pos: usize) {
        let n = self.order.len();
        loop {
            let (l, r) = (2 * pos + 1, 2 * pos + 2);
            let mut least = pos;
            if l < n && self.order[l].0 < self.order[least].0 {
                least = l;
            }
            if r < n && self.order[r].0 < self.order[least].0 {
                least = r;
            }
            if least == pos {
                return;
            }
            self.swap(pos, least);
            pos = least;
        }
    }
}

/// A wait registered on a [`TimerHeap`], once first polled.
pub type Registration = Option<Handle>;

fn lock(heap: &Mutex<TimerHeap>) -> std::sync::MutexGuard<'_, TimerHeap> {
    heap.lock().unwrap_or_else(|e| e.into_inner())
}

/// Polls a wait on a deadline of `heap`: `register` is called on the first poll only.
pub fn poll_entry(
    registration: &mut Registration,
    heap: &Mutex<TimerHeap>,
    cx: &mut Context<'_>,
    register: impl FnOnce(&Waker) -> Handle,
) -> Poll<()> {
    match registration {
        None => {
            *registration = Some(register(cx.waker()));
            Poll::Pending
        }
        Some(handle) => {
            let poll = lock(heap).poll(handle, cx.waker());
            if poll.is_ready() {
                // Fired: nothing to remove when the future is dropped.
                *registration = None;
            }
            poll
        }
    }
}

/// Removes a wait from `heap` when its future is dropped before its deadline fired.
pub fn drop_registration(registration: &Registration, heap: &Mutex<TimerHeap>) {
    if let Some(handle) = registration {
        lock(heap).remove(handle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;
    use std::time::Duration;

    /// A waker that counts its wakes under a name.
    struct Named(usize, Arc<Mutex<Vec<usize>>>);

    impl Wake for Named {
        fn wake(self: Arc<Self>) {
            self.1.lock().unwrap().push(self.0);
        }
    }

    /// Registering, dropping and firing in any order fires exactly the waits still registered,
    /// in (deadline, registration) order, as the ordered map this heap replaced did; and the
    /// slots are reused, so a steady churn does not grow it.
    #[test]
    #[allow(clippy::disallowed_methods)]
    fn fires_what_is_left_in_deadline_order_and_reuses_slots() {
        let t0 = Instant::now();
        let fired = Arc::new(Mutex::new(Vec::new()));
        let mut heap = TimerHeap::default();
        let mut model = std::collections::BTreeMap::new();
        let mut handles = Vec::new();
        let mut peak = 0;
        // A fixed pseudo-random sequence (an LCG): registrations with ties, removals anywhere.
        let mut x: u64 = 12345;
        let mut rand = |n: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % n
        };
        for i in 0..2_000usize {
            if rand(3) > 0 || handles.is_empty() {
                let at = t0 + Duration::from_micros(rand(500));
                let waker = Waker::from(Arc::new(Named(i, Arc::clone(&fired))));
                let expect_earliest = model.keys().next().is_none_or(|&(d, _)| at < d);
                let (h, earliest) = heap.register(at, &waker);
                assert_eq!(earliest, expect_earliest);
                model.insert((at, i), h);
                handles.push((at, i, h));
            } else {
                let (at, i, h) = handles.swap_remove(rand(handles.len() as u64) as usize);
                heap.remove(&h);
                model.remove(&(at, i));
            }
            assert_eq!(heap.pending(), model.len());
            peak = peak.max(model.len());
            assert_eq!(heap.next(), model.keys().next().map(|k| k.0));
        }
        assert_eq!(
            heap.slots.len(),
            peak,
            "a freed slot is reused before the slab grows"
        );
        let mut wake = Vec::new();
        heap.fire_due(t0 + Duration::from_micros(250), &mut wake);
        for w in wake.drain(..) {
            w.wake();
        }
        let expected: Vec<usize> = model
            .keys()
            .filter(|k| k.0 <= t0 + Duration::from_micros(250))
            .map(|k| k.1)
            .collect();
        assert_eq!(*fired.lock().unwrap(), expected);
        // A fired wait polls ready, one still registered does not, and removing a fired one
        // is harmless.
        let noop = Waker::from(Arc::new(Named(
            usize::MAX,
            Arc::new(Mutex::new(Vec::new())),
        )));
        for (at, _, h) in &handles {
            let due = *at <= t0 + Duration::from_micros(250);
            assert_eq!(heap.poll(h, &noop).is_ready(), due);
            heap.remove(h);
        }
        assert_eq!(heap.pending(), 0);
    }

    /// The steady state of a run (one wait registered and one dropped per call) allocates
    /// nothing once the slab and the order have grown to the waits in flight.
    #[test]
    #[allow(clippy::disallowed_methods)]
    fn a_steady_churn_keeps_its_capacity() {
        let t0 = Instant::now();
        let count = Arc::new(AtomicUsize::new(0));
        struct Count(Arc<AtomicUsize>);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        let waker = Waker::from(Arc::new(Count(Arc::clone(&count))));
        let mut heap = TimerHeap::default();
        let mut in_flight = std::collections::VecDeque::new();
        for i in 0..100u64 {
            in_flight.push_back(heap.register(t0 + Duration::from_micros(i), &waker).0);
        }
        let churn =
            |heap: &mut TimerHeap, in_flight: &mut std::collections::VecDeque<Handle>, i| {
                let oldest = in_flight.pop_front().unwrap();
                heap.remove(&oldest);
                in_flight.push_back(heap.register(t0 + Duration::from_micros(i), &waker).0);
            };
        for i in 100..200u64 {
            churn(&mut heap, &mut in_flight, i);
        }
        let caps = (
            heap.slots.capacity(),
            heap.free.capacity(),
            heap.order.capacity(),
        );
        for i in 200..10_000u64 {
            churn(&mut heap, &mut in_flight, i);
        }
        let after = (
            heap.slots.capacity(),
            heap.free.capacity(),
            heap.order.capacity(),
        );
        assert_eq!(caps, after);
        assert_eq!(heap.slots.len(), 100);
        assert_eq!(count.load(Ordering::Relaxed), 0);
    }
}
