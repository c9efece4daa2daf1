//! The backend's per-second view: what arrived, what ran, how deep the queue got.
//!
//! A row per second since the backend's start. Queue depth and requests in service are the
//! highest seen during the second (read at every arrival, admission and release).

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One second of the backend's life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendSecond {
    /// Second since the backend's start (the strategy's start).
    pub t: u64,
    /// Attempts that arrived.
    pub received: u64,
    /// Attempts that started executing.
    pub executed: u64,
    /// Attempts turned away (queue full, quota).
    pub rejected: u64,
    /// Most attempts waiting for a worker.
    pub queue_max: u64,
    /// Most attempts in service.
    pub in_service_max: u64,
}

/// What happened, for [`Timeline::record`].
#[derive(Debug, Clone, Copy)]
pub enum Seen {
    /// An attempt arrived.
    Received,
    /// An attempt started executing.
    Executed,
    /// An attempt was turned away.
    Rejected,
    /// Only the queue depth and in-service count changed.
    Levels,
}

/// The rows so far, and the levels last seen (a second without events keeps them).
#[derive(Debug, Default)]
pub struct Timeline {
    rows: Mutex<(Vec<BackendSecond>, (u64, u64))>,
}

impl Timeline {
    /// Records an event at `second`, with the queue depth and in-service count now.
    pub fn record(&self, second: u64, seen: Seen, queued: u64, in_service: u64) {
        let mut guard = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        let (rows, last) = &mut *guard;
        // Rows are indexed by second; a bound keeps a bad clock from allocating without limit.
        let index = second.min(10_000_000) as usize;
        while rows.len() <= index {
            // A new second starts with the levels the last one ended with: requests waiting
            // or in service through a quiet second were there all along.
            let t = rows.len() as u64;
            rows.push(BackendSecond {
                t,
                queue_max: last.0,
                in_service_max: last.1,
                ..Default::default()
            });
        }
        *last = (queued, in_service);
        let row = &mut rows[index];
        match seen {
            Seen::Received => row.received += 1,
            Seen::Executed => row.executed += 1,
            Seen::Rejected => row.rejected += 1,
            Seen::Levels => {}
        }
        row.queue_max = row.queue_max.max(queued);
        row.in_service_max = row.in_service_max.max(in_service);
    }

    /// A copy of the rows.
    pub fn rows(&self) -> Vec<BackendSecond> {
        self.rows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }
}
