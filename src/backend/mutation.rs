//! Mutations: a side effect per execution, lost responses, and deduplication by idempotency key
//! (Google AIP-155: "a request with the same request ID as a previous request ... should return
//! the same response as the previous request").
//!
//! The backend knows which executions are repeats of the same logical mutation (it sees the
//! request id), so it counts **duplicate side effects** whatever the client does. A client that
//! attaches an idempotency key lets a backend with `dedup = true` answer a repeat with the stored
//! result instead of executing it again; a repeat that arrives while the first is still running
//! waits for its result. Results are kept `dedup_ttl`, at most `dedup_capacity` of them.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::watch;
use tonic::Code;

use super::{Answer, Backend, Incoming, Seen};
use crate::keyed::Purpose;
use crate::status::parse_code;

/// A stored (or pending) result for an idempotency key.
pub(super) type Stored = Arc<watch::Sender<Option<Answer>>>;

/// How a mutation proceeds after the dedup check.
pub(super) enum Begin {
    /// Answered from the store: nothing is executed.
    Answered(Answer),
    /// Execute it; publish the result under its key, if it has one and dedup is on.
    Execute(Option<Stored>),
}

impl Backend {
    /// Looks the idempotency key up: a stored result answers at once, a running first execution
    /// is waited for, an unknown key proceeds (and is reserved for this execution).
    pub(super) async fn dedup_begin(&self, req: &Incoming) -> Begin {
        let (true, Some(key)) = (self.plan.mutation.dedup, req.idempotency_key.clone()) else {
            return Begin::Execute(None);
        };
        loop {
            let now = self.clock.now();
            let (stored, first) = {
                let mut store = self.dedup.lock().unwrap_or_else(|e| e.into_inner());
                match store.get(&key, now) {
                    Some(s) => (Arc::clone(s), false),
                    None => {
                        let s: Stored = Arc::new(watch::channel(None).0);
                        store.entry(Arc::clone(&key), now, || Arc::clone(&s));
                        (s, true)
                    }
                }
            };
            if first {
                return Begin::Execute(Some(stored));
            }
            let mut rx = stored.subscribe();
            drop(stored);
            let waited = rx.wait_for(|a| a.is_some()).await.map(|a| a.clone());
            match waited {
                Ok(Some(mut answer)) => {
                    answer.attempt = req.previous_attempts.saturating_add(1);
                    return Begin::Answered(answer);
                }
                // The first execution was stopped before it finished: try again.
                _ => {
                    self.dedup
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&key);
                }
            }
        }
    }

    /// The side effect of an executed mutation: counted (a repeat is a duplicate), its result
    /// stored for its key, and then its reply perhaps lost.
    pub(super) async fn side_effect(
        &self,
        req: &Incoming,
        answer: Answer,
        publish: Option<Stored>,
    ) -> Answer {
        let effects = {
            let now = self.clock.now();
            let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
            let seen = requests.entry(req.request_key, now, Seen::default);
            seen.effects = seen.effects.saturating_add(1);
            seen.effects
        };
        if effects > 1 && !req.warmup {
            self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(stored) = publish {
            stored.send_replace(Some(answer.clone()));
        }
        let Some(lost) = &self.plan.mutation.lost_response else {
            return answer;
        };
        if self.model.chance(
            req.request_key,
            req.previous_attempts,
            Purpose::LostResponse,
        ) >= lost.rate
        {
            return answer;
        }
        if lost.fail == "timeout" {
            // The reply never arrives: the caller waits until its deadline.
            self.clock.sleep_until(self.deadline_or_hour(req)).await;
            return Answer::new(Code::DeadlineExceeded, answer.attempt);
        }
        Answer::new(
            parse_code(&lost.fail).unwrap_or(Code::Unavailable),
            answer.attempt,
        )
    }
}
