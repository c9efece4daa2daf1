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
use crate::profile::backend::LostFail;

/// A stored (or pending) result for an idempotency key.
pub(super) type Stored = Arc<watch::Sender<Option<Answer>>>;

/// The right, and duty, to publish a key's result. Dropped without publishing (the execution
/// failed before its side effect, or was stopped), it forgets the key, so waiting repeats wake
/// up and one of them executes instead.
pub(super) struct Publisher<'a> {
    backend: &'a Backend,
    key: Arc<str>,
    stored: Stored,
    published: bool,
}

impl Publisher<'_> {
    fn publish(mut self, answer: &Answer) {
        self.stored.send_replace(Some(answer.clone()));
        self.published = true;
    }
}

impl Drop for Publisher<'_> {
    fn drop(&mut self) {
        if self.published {
            return;
        }
        let mut store = self.backend.dedup.lock().unwrap_or_else(|e| e.into_inner());
        // Only this execution's own entry: a newer one may have replaced it after expiry.
        if store
            .peek(&self.key)
            .is_some_and(|s| Arc::ptr_eq(s, &self.stored))
        {
            store.remove(&self.key);
        }
    }
}

/// How a mutation proceeds after the dedup check.
pub(super) enum Begin<'a> {
    /// Answered from the store: nothing is executed.
    Answered(Answer),
    /// Execute it; publish the result under its key, if it has one and dedup is on.
    Execute(Option<Publisher<'a>>),
}

impl Backend {
    /// Looks the idempotency key up: a stored result answers at once, a running first execution
    /// is waited for, an unknown key proceeds (and is reserved for this execution). `count` is
    /// the attempt number the backend reports for this attempt.
    pub(super) async fn dedup_begin(&self, req: &Incoming, count: u32) -> Begin<'_> {
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
                return Begin::Execute(Some(Publisher {
                    backend: self,
                    key,
                    stored,
                    published: false,
                }));
            }
            let mut rx = stored.subscribe();
            drop(stored);
            if let Ok(answer) = rx.wait_for(|a| a.is_some()).await.map(|a| a.clone())
                && let Some(mut answer) = answer
            {
                answer.attempt = count;
                return Begin::Answered(answer);
            }
            // The first execution ended without a result and forgot the key: try again.
        }
    }

    /// The side effect of an executed mutation: counted (a repeat is a duplicate), its result
    /// stored for its key, and then its reply perhaps lost.
    pub(super) async fn side_effect(
        &self,
        req: &Incoming,
        answer: Answer,
        publish: Option<Publisher<'_>>,
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
        if let Some(publisher) = publish {
            publisher.publish(&answer);
        }
        let Some(lost) = &self.plan.mutation.lost_response else {
            return answer;
        };
        if self
            .model
            .chance(req.request_key, req.previous(), Purpose::LostResponse)
            >= lost.rate
        {
            return answer;
        }
        match lost.fail {
            LostFail::Timeout => {
                // The reply never arrives: the caller waits until its deadline.
                self.clock.sleep_until(self.deadline_or_hour(req)).await;
                Answer::new(Code::DeadlineExceeded, answer.attempt)
            }
            LostFail::Status(status) => Answer::new(status.code(), answer.attempt),
        }
    }
}
