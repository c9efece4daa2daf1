//! What the proxy holds for its clients, bounded: calls in progress over every connection,
//! and request bytes held in the proxy, per connection and in all.
//!
//! A call holds what it read of its request before it was forwarded (its first message, when
//! the fault decision needs it: up to gRPC's 4 MiB limit) until its attempt ends, and each
//! frame relayed after that until it has been written upstream (`body`). With only the
//! message limit and a stream limit, one connection could make the proxy hold streams × 4 MiB.
//! Here every DATA frame read from a client is counted against its connection's budget
//! ([`Options::connection_bytes`](super::Options)) and the proxy's
//! ([`Options::total_bytes`](super::Options)) while it is held; the frame that would go
//! over either ends its call with RESOURCE_EXHAUSTED at once (its unread bytes are dropped
//! with its stream, so hyper gives their connection window back). No call waits for budget:
//! waiting would let the unread frames of the waiting streams fill the connection's window
//! and starve the streams that hold the budget until their deadlines.
//!
//! What is not counted here is bounded elsewhere: bytes a client sent that the proxy has not
//! read yet by hyper's connection window (1 MiB, HTTP/2 flow control); response bytes by the
//! relay's few frames per call and the upstream connections' windows
//! (`transport::http2::conn`); streams per connection by SETTINGS_MAX_CONCURRENT_STREAMS
//! ([`Options::max_streams`](super::Options)); and calls, with their tasks and upstream
//! streams, by [`Options::max_calls`](super::Options).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The proxy's counters of what it holds (shared by every connection).
#[derive(Debug, Default)]
pub struct Held {
    /// Calls in progress (Control's excepted).
    pub calls: AtomicUsize,
    /// Request bytes held now, over every connection.
    pub bytes: AtomicUsize,
    /// The most request bytes one connection has held at once.
    pub connection_high_water: AtomicUsize,
    /// Calls answered RESOURCE_EXHAUSTED at `max_calls`.
    pub refused_calls: AtomicU64,
    /// Calls answered RESOURCE_EXHAUSTED because their request bytes would have gone over a
    /// budget (the connection's or the proxy's).
    pub refused_bytes: AtomicU64,
}

/// One call's place among the calls in progress, given back when dropped.
pub(super) struct CallSlot(Arc<Held>);

impl CallSlot {
    /// A place, or `None` when `max` calls are in progress (the refusal is counted).
    pub(super) fn take(held: &Arc<Held>, max: usize) -> Option<Self> {
        if held.calls.fetch_add(1, Ordering::Relaxed) >= max {
            held.calls.fetch_sub(1, Ordering::Relaxed);
            held.refused_calls.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(Self(Arc::clone(held)))
    }
}

impl Drop for CallSlot {
    fn drop(&mut self) {
        self.0.calls.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Which budget a request would have gone over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Over {
    /// Its connection's.
    Connection(usize),
    /// The proxy's, over every connection.
    Total(usize),
}

/// The request bytes one call holds against its connection's and the proxy's budgets,
/// given back when dropped.
pub(super) struct Bytes {
    held: Arc<Held>,
    connection: Arc<AtomicUsize>,
    limits: (usize, usize),
    bytes: usize,
}

impl Bytes {
    /// Nothing held yet, against `connection`'s count; `limits` are (per connection, total).
    pub(super) fn new(
        held: &Arc<Held>,
        connection: &Arc<AtomicUsize>,
        limits: (usize, usize),
    ) -> Self {
        Self {
            held: Arc::clone(held),
            connection: Arc::clone(connection),
            limits,
            bytes: 0,
        }
    }

    /// Holds `n` more bytes, unless that goes over a budget (then nothing more is held and
    /// the refusal is counted).
    pub(super) fn hold(&mut self, n: usize) -> Result<(), Over> {
        let on_connection = self.connection.fetch_add(n, Ordering::Relaxed) + n;
        if on_connection > self.limits.0 {
            self.connection.fetch_sub(n, Ordering::Relaxed);
            self.held.refused_bytes.fetch_add(1, Ordering::Relaxed);
            return Err(Over::Connection(self.limits.0));
        }
        if self.held.bytes.fetch_add(n, Ordering::Relaxed) + n > self.limits.1 {
            self.held.bytes.fetch_sub(n, Ordering::Relaxed);
            self.connection.fetch_sub(n, Ordering::Relaxed);
            self.held.refused_bytes.fetch_add(1, Ordering::Relaxed);
            return Err(Over::Total(self.limits.1));
        }
        self.held
            .connection_high_water
            .fetch_max(on_connection, Ordering::Relaxed);
        self.bytes += n;
        Ok(())
    }

    /// Gives back `n` of the bytes held (they have left the proxy).
    pub(super) fn release(&mut self, n: usize) {
        let n = n.min(self.bytes);
        self.connection.fetch_sub(n, Ordering::Relaxed);
        self.held.bytes.fetch_sub(n, Ordering::Relaxed);
        self.bytes -= n;
    }
}

impl Drop for Bytes {
    fn drop(&mut self) {
        self.connection.fetch_sub(self.bytes, Ordering::Relaxed);
        self.held.bytes.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection's budget and the proxy's are both enforced, what a call held is given
    /// back when it ends, and a refused frame holds nothing.
    #[test]
    fn request_bytes_are_held_within_both_budgets_and_given_back() {
        let held = Arc::new(Held::default());
        let (a, b) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut one = Bytes::new(&held, &a, (100, 150));
        one.hold(60).unwrap();
        let mut two = Bytes::new(&held, &a, (100, 150));
        assert_eq!(two.hold(41), Err(Over::Connection(100)));
        two.hold(40).unwrap();
        let mut three = Bytes::new(&held, &b, (100, 150));
        assert_eq!(three.hold(51), Err(Over::Total(150)));
        assert_eq!(b.load(Ordering::Relaxed), 0);
        three.hold(50).unwrap();
        assert_eq!(held.bytes.load(Ordering::Relaxed), 150);
        assert_eq!(held.connection_high_water.load(Ordering::Relaxed), 100);
        assert_eq!(held.refused_bytes.load(Ordering::Relaxed), 2);
        drop((one, two));
        assert_eq!(
            (
                a.load(Ordering::Relaxed),
                held.bytes.load(Ordering::Relaxed)
            ),
            (0, 50)
        );
        let slot = CallSlot::take(&held, 1).unwrap();
        assert!(CallSlot::take(&held, 1).is_none());
        drop(slot);
        assert!(CallSlot::take(&held, 1).is_some());
        assert_eq!(held.refused_calls.load(Ordering::Relaxed), 1);
    }
}
