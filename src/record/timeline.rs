//! The per-second timeline of a strategy's run.
//!
//! Calls are filed under the second of their *intended* start, attempts under the second they
//! were sent. So a row says what happened to the load offered in that second (how much of it
//! succeeded, its p99) and how many attempts the backend was sent then: the view that shows an
//! outage's victims and a retry storm's echo.
//!
//! Nothing is kept per call. A second's histogram is kept only while calls offered in it (or
//! before it) are outstanding; then the row is computed, the histogram is compressed for the
//! `.hlog` interval log (typically 100–300 bytes), and the interval is dropped. Open seconds are
//! bounded by the call deadline; what grows with the run's length is one small row and one
//! compressed histogram per second.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::histogram::Hist;
use crate::strategy::breaker::State;

/// One second of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineRow {
    /// Second since the start of the run (warmup included).
    pub t: u64,
    /// Calls whose intended start fell in this second.
    pub offered: u64,
    /// Of those, calls dropped by the in-flight cap.
    pub dropped: u64,
    /// Of those, calls that succeeded.
    pub succeeded: u64,
    /// Of those, calls that failed.
    pub failed: u64,
    /// Attempts sent in this second (of measured calls, whenever they were offered).
    pub attempts: u64,
    /// Median end-to-end latency of the calls offered in this second, ms.
    pub p50_ms: Option<f64>,
    /// 99th percentile end-to-end latency of the calls offered in this second, ms.
    pub p99_ms: Option<f64>,
    /// gRPC retry throttling's token count at the end of this second (throttled strategies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<f64>,
    /// The circuit breaker's state at the end of this second (strategies with a breaker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker: Option<State>,
}

/// A second's end-to-end histogram, compressed, for the interval log.
#[derive(Debug, Clone, PartialEq)]
pub struct IntervalHist {
    /// Second since the start of the run.
    pub t: u64,
    /// V2-deflate bytes of the histogram.
    pub bytes: Vec<u8>,
}

#[derive(Debug, Default)]
struct Interval {
    offered: u64,
    dropped: u64,
    succeeded: u64,
    failed: u64,
    attempts: u64,
    outstanding: u64,
    tokens: Option<f64>,
    breaker: Option<State>,
    e2e: Hist,
}

/// Open seconds, and the rows of closed ones.
#[derive(Debug)]
pub struct Timeline {
    /// Second of `open.front()`.
    first: u64,
    open: VecDeque<Interval>,
    /// No call will be offered in any second below this.
    offers_done_before: u64,
    rows: Vec<TimelineRow>,
    hists: Vec<IntervalHist>,
    /// The breaker's state as of the last closed second, carried into seconds without a
    /// change.
    breaker: Option<State>,
}

impl Timeline {
    /// A timeline whose first row is the second that contains `from` (the end of warmup).
    pub fn new(from: Duration) -> Self {
        Self {
            first: from.as_secs(),
            open: VecDeque::new(),
            offers_done_before: 0,
            rows: Vec::new(),
            hists: Vec::new(),
            breaker: None,
        }
    }

    fn slot(&mut self, second: u64) -> &mut Interval {
        let index = second.saturating_sub(self.first) as usize;
        while self.open.len() <= index {
            self.open.push_back(Interval::default());
        }
        &mut self.open[index]
    }

    /// A call offered at `second` was sent.
    pub fn offered(&mut self, second: u64) {
        let slot = self.slot(second);
        slot.offered += 1;
        slot.outstanding += 1;
        self.offers_done_before = self.offers_done_before.max(second);
        self.close_ready();
    }

    /// A call offered at `second` was dropped.
    pub fn dropped(&mut self, second: u64) {
        let slot = self.slot(second);
        slot.offered += 1;
        slot.dropped += 1;
        self.offers_done_before = self.offers_done_before.max(second);
        self.close_ready();
    }

    /// An attempt was sent at `second`.
    pub fn attempt(&mut self, second: u64) {
        self.slot(second).attempts += 1;
    }

    /// The breaker moved to `state` during `second`.
    pub fn breaker(&mut self, second: u64, state: State) {
        if second < self.first {
            // Before the first open second (the breaker was built before the run): it is the
            // state the timeline starts with.
            self.breaker = Some(state);
        } else {
            self.slot(second).breaker = Some(state);
        }
    }

    /// The throttle's token count was `tokens` during `second`.
    pub fn tokens(&mut self, second: u64, tokens: f64) {
        self.slot(second).tokens = Some(tokens);
    }

    /// A call offered at `second` completed.
    pub fn completed(&mut self, second: u64, ok: bool, e2e: Duration) {
        let slot = self.slot(second);
        if ok {
            slot.succeeded += 1;
        } else {
            slot.failed += 1;
        }
        slot.e2e.record(e2e);
        slot.outstanding = slot.outstanding.saturating_sub(1);
        self.close_ready();
    }

    /// No more calls will be offered.
    pub fn schedule_done(&mut self) {
        self.offers_done_before = u64::MAX;
        self.close_ready();
    }

    fn close_ready(&mut self) {
        while self
            .open
            .front()
            .is_some_and(|i| i.outstanding == 0 && self.first < self.offers_done_before)
        {
            self.close_front();
        }
    }

    fn close_front(&mut self) {
        let Some(i) = self.open.pop_front() else {
            return;
        };
        let summary = i.e2e.summary();
        self.rows.push(TimelineRow {
            t: self.first,
            offered: i.offered,
            dropped: i.dropped,
            succeeded: i.succeeded,
            failed: i.failed,
            attempts: i.attempts,
            p50_ms: summary.map(|s| s.p50),
            p99_ms: summary.map(|s| s.p99),
            tokens: i.tokens,
            breaker: i.breaker.or(self.breaker),
        });
        self.breaker = i.breaker.or(self.breaker);
        self.hists.push(IntervalHist {
            t: self.first,
            bytes: i.e2e.to_bytes(),
        });
        self.first += 1;
    }

    /// Seconds still open (for tests of the memory bound).
    pub fn open_seconds(&self) -> usize {
        self.open.len()
    }

    /// Closes every second, outstanding or not, and returns the rows and interval histograms.
    pub fn finish(mut self) -> (Vec<TimelineRow>, Vec<IntervalHist>) {
        while !self.open.is_empty() {
            self.close_front();
        }
        (self.rows, self.hists)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_second_closes_once_its_calls_are_done_and_later_offers_began() {
        let mut t = Timeline::new(Duration::ZERO);
        t.offered(0);
        t.offered(0);
        t.completed(0, true, MS);
        t.offered(1);
        assert_eq!(t.open_seconds(), 2, "second 0 still has a call outstanding");
        t.attempt(1);
        t.completed(0, false, 3 * MS);
        assert_eq!(t.open_seconds(), 1, "second 0 closed");
        t.completed(1, true, MS);
        assert_eq!(t.open_seconds(), 1, "second 1 may still get offers");
        t.schedule_done();
        assert_eq!(t.open_seconds(), 0);
        let (rows, hists) = t.finish();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].offered, rows[0].succeeded, rows[0].failed),
            (2, 1, 1)
        );
        assert_eq!((rows[1].t, rows[1].attempts), (1, 1));
        // HdrHistogram reports the highest value equivalent to 3 ms at 3 digits: 3.001.
        assert!((rows[0].p99_ms.unwrap() - 3.0).abs() <= 0.003);
        assert_eq!(hists.len(), 2);
        assert_eq!(Hist::from_bytes(&hists[0].bytes).unwrap().count(), 2);
    }

    #[test]
    fn open_seconds_stay_bounded_on_a_long_run() {
        // 1,000 seconds of 10 calls a second, each done 2.5 s after it was offered.
        let mut t = Timeline::new(Duration::ZERO);
        let mut pending = VecDeque::new();
        let mut most_open = 0;
        for tenth in 0..10_000u64 {
            let now = tenth / 10;
            while pending.front().is_some_and(|&(due, _)| due <= tenth) {
                let (_, sec) = pending.pop_front().unwrap();
                t.completed(sec, true, MS);
            }
            t.offered(now);
            pending.push_back((tenth + 25, now));
            most_open = most_open.max(t.open_seconds());
        }
        assert!(
            most_open <= 4,
            "at most the deadline's worth of seconds open, got {most_open}"
        );
        for (_, sec) in pending {
            t.completed(sec, true, MS);
        }
        t.schedule_done();
        let (rows, _) = t.finish();
        assert_eq!(rows.len(), 1000);
        assert!(rows.iter().all(|r| r.offered == 10 && r.succeeded == 10));
    }

    #[test]
    fn rows_start_at_the_end_of_warmup() {
        let mut t = Timeline::new(Duration::from_millis(2500));
        t.offered(2);
        t.completed(2, true, MS);
        let (rows, _) = t.finish();
        assert_eq!(rows[0].t, 2);
    }
}
