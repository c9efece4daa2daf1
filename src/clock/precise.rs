//! The precise real-time timer: one thread, a heap of deadlines, `park_timeout` until the next.
//!
//! `park_timeout` is a futex wait with a timeout, an hrtimer on Linux: it wakes within the
//! kernel's timer slack (50 µs by default) of the deadline. Waking the waiting task then costs
//! one cross-thread wake. Measured on the 2-core CI machine: generator lag p50 0.09 ms, p99
//! 0.16 ms at 200 calls/s (see docs/PERFORMANCE.md for the command).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::thread::Thread;

use tokio::time::Instant;

use super::heap::{Entry, TimerHeap, cancel_entry, poll_entry};

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
    entry: Option<Arc<Entry>>,
}

impl PreciseSleep {
    /// A wait until `deadline`.
    pub fn new(deadline: Instant) -> Self {
        Self {
            deadline,
            entry: None,
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
        poll_entry(&mut self.entry, cx, |waker| {
            let timer = precise();
            let (entry, earliest) = timer
                .heap
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .register(deadline, waker);
            if earliest {
                timer.thread.unpark();
            }
            entry
        })
    }
}

impl Drop for PreciseSleep {
    fn drop(&mut self) {
        cancel_entry(&self.entry);
    }
}
