//! Capacity: N workers and a bounded waiting room in front of them.
//!
//! A request that finds a free worker starts at once; otherwise it waits in FIFO order (tokio's
//! semaphore is fair) if the queue has room, and is turned away with RESOURCE_EXHAUSTED if not.
//! This is what makes overload visible: latency grows with the queue, then requests are shed.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::{Semaphore, SemaphorePermit};

/// Workers and queue of one backend.
#[derive(Debug)]
pub struct Capacity {
    workers: Semaphore,
    queue_limit: Option<usize>,
    waiting: AtomicUsize,
    high_water: AtomicU64,
}

/// Decrements the waiting count when a queued request leaves the queue, however it leaves.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Capacity {
    /// `workers` served at once; `queue_limit` waiting (`None`: unlimited).
    pub fn new(workers: u32, queue_limit: Option<u32>) -> Self {
        Self {
            workers: Semaphore::new(workers as usize),
            queue_limit: queue_limit.map(|q| q as usize),
            waiting: AtomicUsize::new(0),
            high_water: AtomicU64::new(0),
        }
    }

    /// Waits for a worker. `None` when the queue is full: the request must be rejected. The
    /// high-water mark is read when a measured (non-warmup) request joins the queue.
    pub async fn admit(&self, measured: bool) -> Option<SemaphorePermit<'_>> {
        if let Ok(permit) = self.workers.try_acquire() {
            return Some(permit);
        }
        let now_waiting = self.waiting.fetch_add(1, Ordering::Relaxed) + 1;
        let guard = Waiting(&self.waiting);
        if self.queue_limit.is_some_and(|limit| now_waiting > limit) {
            return None;
        }
        if measured {
            self.high_water
                .fetch_max(now_waiting as u64, Ordering::Relaxed);
        }
        let permit = self.workers.acquire().await.ok();
        drop(guard);
        permit
    }

    /// Most requests that waited at one time.
    pub fn queue_high_water(&self) -> u64 {
        self.high_water.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_rejects_and_the_high_water_mark_is_kept() {
        let cap = Capacity::new(2, Some(1));
        let a = cap.admit(true).await.expect("worker 1");
        let _b = cap.admit(true).await.expect("worker 2");
        let queued = cap.admit(true);
        tokio::pin!(queued);
        assert!(
            futures_poll_pending(queued.as_mut()).await,
            "third request waits"
        );
        assert!(
            cap.admit(true).await.is_none(),
            "fourth finds the queue full"
        );
        drop(a);
        assert!(
            queued.await.is_some(),
            "the waiting request gets the freed worker"
        );
        assert_eq!(cap.queue_high_water(), 1);
        assert_eq!(cap.waiting.load(Ordering::Relaxed), 0);
    }

    /// Polls a future once; true if it is still pending.
    async fn futures_poll_pending<F: std::future::Future>(f: std::pin::Pin<&mut F>) -> bool {
        let mut f = Some(f);
        std::future::poll_fn(|cx| {
            let pending = f.take().unwrap().poll(cx).is_pending();
            std::task::Poll::Ready(pending)
        })
        .await
    }
}
