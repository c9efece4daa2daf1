//! The precise real-time timer: one thread, a heap of deadlines, `park_timeout` until the next.
//!
//! `park_timeout` is a futex wait with a timeout, an hrtimer on Linux: it wakes within the
//! kernel's timer slack (50 µs by default) of the deadline. Waking the waiting task then costs
//! one cross-thread wake. Figures and the command that measured them: docs/PERFORMANCE.md.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::thread::Thread;

use tokio::time::Instant;

use super::heap::{Registration, TimerHeap, drop_registration, poll_entry};

/// The timer thread's shared state.
struct Precise {
    heap: Mutex<TimerHeap>,
    thread: Thread,
}

fn precise() -> &'static Precise {
    static TIMER: OnceLock<Precise> = OnceLock::new();
    TIMER.get_or_init(|| {
        // The state needs the thread's handle and the thread needs the state: the thread waits
        // until this initialisation has published it.
        let handle = std::thread::Builder::new()
            .name("resilbench-timer".into())
            .spawn(|| run(TIMER.wait()))
            .expect("the timer thread starts");
        Precise {
            heap: Mutex::default(),
            thread: handle.thread().clone(),
        }
    })
}

/// The timer thread: fire what is due, park until the next deadline.
#[allow(clippy::disallowed_methods)]
fn run(timer: &'static Precise) -> ! {
    let mut ready: Vec<Waker> = Vec::new();
    loop {
        let next = {
            let mut heap = timer.heap.lock().unwrap_or_else(|e| e.into_inner());
            heap.fire_due(Instant::now(), &mut ready);
            heap.next()
        };
        for waker in ready.drain(..) {
            waker.wake();
        }
        match next {
            Some(at) => std::thread::park_timeout(at.saturating_duration_since(Instant::now())),
            None => std::thread::park(),
        }
    }
}

/// A wait on the precise timer.
#[derive(Debug)]
pub struct PreciseSleep {
    deadline: Instant,
    registration: Registration,
}

impl PreciseSleep {
    /// A wait until `deadline`.
    pub fn new(deadline: Instant) -> Self {
        Self {
            deadline,
            registration: None,
        }
    }
}

impl Future for PreciseSleep {
    type Output = ();

    #[allow(clippy::disallowed_methods)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        let deadline = self.deadline;
        let timer = precise();
        poll_entry(&mut self.registration, &timer.heap, cx, |waker| {
            let (handle, earliest) = timer
                .heap
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .register(deadline, waker);
            if earliest {
                timer.thread.unpark();
            }
            handle
        })
    }
}

impl Drop for PreciseSleep {
    fn drop(&mut self) {
        drop_registration(&self.registration, &precise().heap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Wall-clock behaviour only: never early, and forgotten when dropped. (How late is a
    /// performance figure, measured in benches, not asserted here.)
    #[test]
    #[allow(clippy::disallowed_methods)]
    fn never_wakes_early_and_forgets_dropped_waits() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let start = Instant::now();
            let mut tasks = Vec::new();
            for us in [2_000u64, 300, 1_500, 50, 700, 700, 10] {
                tasks.push(tokio::spawn(async move {
                    let deadline = start + Duration::from_micros(us);
                    PreciseSleep::new(deadline).await;
                    Instant::now() >= deadline
                }));
            }
            for t in tasks {
                assert!(
                    t.await.unwrap(),
                    "a precise sleep ended before its deadline"
                );
            }
            // A wait dropped before its deadline leaves nothing behind. (Asked of this wait's
            // own deadline: other tests share the process's timer, so counts move under us.)
            let hour = Instant::now() + Duration::from_secs(3600);
            let won = tokio::select! {
                _ = PreciseSleep::new(Instant::now() + Duration::from_millis(1)) => true,
                _ = PreciseSleep::new(hour) => false,
            };
            assert!(won);
            let still = precise()
                .heap
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .waits_for(hour);
            assert!(!still, "the hour-long wait was forgotten");
        });
    }
}
