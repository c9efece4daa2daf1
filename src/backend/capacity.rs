//! Capacity: N workers and a bounded waiting room in front of them.
//!
//! A request that finds a free worker starts at once; otherwise it waits in FIFO order if the
//! queue has room, and is turned away with RESOURCE_EXHAUSTED if not. This is what makes
//! overload visible: latency grows with the queue, then requests are shed.
//!
//! The number of workers may change over time (a brownout's `capacity_factor`): the limit is
//! read whenever a worker is handed out, and the backend calls [`Capacity::rebalance`] when it
//! rises, so waiting requests take the new workers at once. When it falls, requests in service
//! finish; no new one starts until the count is under the new limit.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// The worker limit in force now.
pub type Limit = Arc<dyn Fn() -> usize + Send + Sync>;

/// Told the queue depth and the requests in service whenever either changes.
pub type Levels = Arc<dyn Fn(u64, u64) + Send + Sync>;

#[derive(Debug, Default)]
struct State {
    in_service: usize,
    waiting: VecDeque<(u64, oneshot::Sender<()>)>,
    next_id: u64,
}

/// Workers and queue of one backend.
pub struct Capacity {
    limit: Limit,
    levels: Option<Levels>,
    queue_limit: Option<usize>,
    state: Mutex<State>,
    high_water: AtomicU64,
    /// Mirrors of the state, for readers that must not take the lock.
    in_service_now: AtomicU64,
    waiting_now: AtomicU64,
}

impl std::fmt::Debug for Capacity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capacity")
            .field("queue_limit", &self.queue_limit)
            .finish_non_exhaustive()
    }
}

/// A worker held by a request; freed when dropped.
#[derive(Debug)]
pub struct Worker<'a>(&'a Capacity);

impl Drop for Worker<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

impl<'a> Worker<'a> {
    /// Keeps the worker taken past this borrow of its capacity: the caller frees it with
    /// [`Capacity::release`], once (`Backend::hold`).
    pub(super) fn keep(self) -> &'a Capacity {
        let capacity = self.0;
        std::mem::forget(self);
        capacity
    }
}

/// A place in the queue; leaves it (or returns a worker granted too late) when dropped.
struct Waiting<'a> {
    cap: &'a Capacity,
    id: u64,
    rx: oneshot::Receiver<()>,
    granted: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.granted {
            return;
        }
        let mut s = self.cap.lock();
        if let Some(pos) = s.waiting.iter().position(|(id, _)| *id == self.id) {
            s.waiting.remove(pos);
            self.cap.mirror(&s);
        } else if self.rx.try_recv().is_ok() {
            // A worker was handed over (under the lock) but never taken: give it back.
            s.in_service -= 1;
            self.cap.dispatch(&mut s);
        }
    }
}

impl Capacity {
    /// At most `limit()` requests served at once, `queue_limit` waiting (`None`: unlimited);
    /// `levels` hears of every change of the queue depth or the requests in service.
    pub fn new(limit: Limit, queue_limit: Option<u32>, levels: Option<Levels>) -> Self {
        Self {
            limit,
            levels,
            queue_limit: queue_limit.map(|q| q as usize),
            state: Mutex::default(),
            high_water: AtomicU64::new(0),
            in_service_now: AtomicU64::new(0),
            waiting_now: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn mirror(&self, s: &State) {
        let (in_service, waiting) = (s.in_service as u64, s.waiting.len() as u64);
        self.in_service_now.store(in_service, Ordering::Relaxed);
        self.waiting_now.store(waiting, Ordering::Relaxed);
        if let Some(levels) = &self.levels {
            levels(waiting, in_service);
        }
    }

    /// Hands free workers to waiting requests, first come first served.
    fn dispatch(&self, s: &mut State) {
        let limit = (self.limit)();
        while s.in_service < limit {
            let Some((_, tx)) = s.waiting.pop_front() else {
                break;
            };
            if tx.send(()).is_ok() {
                s.in_service += 1;
            }
        }
        self.mirror(s);
    }

    /// Frees a worker (one taken by [`Capacity::admit`], kept by [`Worker::keep`]).
    pub(super) fn release(&self) {
        let mut s = self.lock();
        s.in_service -= 1;
        self.dispatch(&mut s);
    }

    /// Re-reads the limit and lets waiting requests take workers it freed.
    pub fn rebalance(&self) {
        let mut s = self.lock();
        self.dispatch(&mut s);
    }

    /// Waits for a worker. `None` when the queue is full: the request must be rejected. The
    /// high-water mark is read when a measured (non-warmup) request joins the queue.
    pub async fn admit(&self, measured: bool) -> Option<Worker<'_>> {
        let (id, rx) = {
            let mut s = self.lock();
            if s.in_service < (self.limit)() && s.waiting.is_empty() {
                s.in_service += 1;
                self.mirror(&s);
                return Some(Worker(self));
            }
            if self
                .queue_limit
                .is_some_and(|limit| s.waiting.len() >= limit)
            {
                return None;
            }
            let (tx, rx) = oneshot::channel();
            let id = s.next_id;
            s.next_id += 1;
            s.waiting.push_back((id, tx));
            if measured {
                self.high_water
                    .fetch_max(s.waiting.len() as u64, Ordering::Relaxed);
            }
            self.mirror(&s);
            (id, rx)
        };
        let mut place = Waiting {
            cap: self,
            id,
            rx,
            granted: false,
        };
        (&mut place.rx).await.ok()?;
        place.granted = true;
        Some(Worker(self))
    }

    /// Most requests that waited at one time.
    pub fn queue_high_water(&self) -> u64 {
        self.high_water.load(Ordering::Relaxed)
    }

    /// Requests being served now.
    pub fn in_service(&self) -> u64 {
        self.in_service_now.load(Ordering::Relaxed)
    }

    /// Requests waiting now.
    pub fn waiting(&self) -> u64 {
        self.waiting_now.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn fixed(n: usize) -> Limit {
        Arc::new(move || n)
    }

    /// Polls a future once; true if it is still pending.
    async fn pending<F: std::future::Future>(f: std::pin::Pin<&mut F>) -> bool {
        let mut f = Some(f);
        std::future::poll_fn(|cx| std::task::Poll::Ready(f.take().unwrap().poll(cx).is_pending()))
            .await
    }

    #[tokio::test]
    async fn a_full_queue_rejects_and_waiters_are_served_in_order() {
        let cap = Capacity::new(fixed(2), Some(1), None);
        let a = cap.admit(true).await.expect("worker 1");
        let _b = cap.admit(true).await.expect("worker 2");
        let queued = cap.admit(true);
        tokio::pin!(queued);
        assert!(pending(queued.as_mut()).await, "third request waits");
        assert!(
            cap.admit(true).await.is_none(),
            "fourth finds the queue full"
        );
        assert_eq!((cap.in_service(), cap.waiting()), (2, 1));
        drop(a);
        let c = queued.await;
        assert!(c.is_some(), "the waiting request gets the freed worker");
        assert_eq!(cap.queue_high_water(), 1);
        assert_eq!((cap.in_service(), cap.waiting()), (2, 0));
    }

    #[tokio::test]
    async fn a_request_that_leaves_the_queue_frees_its_place() {
        let cap = Capacity::new(fixed(1), Some(1), None);
        let a = cap.admit(true).await.unwrap();
        {
            let gone = cap.admit(true);
            tokio::pin!(gone);
            assert!(pending(gone.as_mut()).await);
        }
        assert_eq!(cap.waiting(), 0, "the dropped request left the queue");
        drop(a);
        assert_eq!(
            cap.in_service(),
            0,
            "nothing was handed to the dropped request"
        );
        assert!(cap.admit(true).await.is_some());
    }

    #[tokio::test]
    async fn a_rising_limit_serves_waiters_on_rebalance() {
        let limit = Arc::new(AtomicUsize::new(1));
        let l = Arc::clone(&limit);
        let cap = Capacity::new(Arc::new(move || l.load(Ordering::Relaxed)), None, None);
        let _a = cap.admit(true).await.unwrap();
        let second = cap.admit(true);
        tokio::pin!(second);
        assert!(pending(second.as_mut()).await);
        limit.store(2, Ordering::Relaxed);
        cap.rebalance();
        let b = second.await;
        assert!(b.is_some());
        assert_eq!(cap.in_service(), 2);
    }
}
