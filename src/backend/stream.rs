//! Server streaming: `messages` messages, the first after the service time, then one every
//! `interval`; a failure before the first message (a call gRFC A6 may still retry) or right
//! after message k (the call is committed: no retry).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio::sync::mpsc;
use tonic::Code;

use super::attempt::Active;
use super::{Answer, Backend, Incoming, StreamEvent};
use crate::keyed::{KeyedStream, Purpose};
use crate::status::parse_code;

impl Backend {
    /// Serves a streaming attempt into `tx`, always ending with [`StreamEvent::End`]. If the
    /// receiver goes away, the work stops with `on_cancel = "stop"` and goes on (wasted) with
    /// `"continue"`.
    pub(super) async fn serve_stream(
        self: Arc<Self>,
        req: Incoming,
        tx: mpsc::Sender<StreamEvent>,
    ) {
        let _active = Active::new(&self.counters);
        let gone = AtomicBool::new(false);
        let stop = self.plan.on_cancel == crate::profile::backend::OnCancel::Stop;
        let end = |answer: Answer| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(StreamEvent::End(answer)).await;
            }
        };
        let admitted = match self.admit(&req).await {
            Ok(a) => a,
            Err(answer) => return end(answer).await,
        };
        let count = admitted.count;
        self.clock.sleep(admitted.draw.latency).await;
        let plan = &self.plan.stream;
        let (key, attempt) = (req.request_key, req.previous_attempts);
        let failure = |code: Option<&str>| {
            Answer::new(
                code.and_then(parse_code).unwrap_or(Code::Unavailable),
                count,
            )
        };
        if admitted.draw.code != Code::Ok {
            self.finish_work(&req, &gone);
            let mut answer = Answer::new(admitted.draw.code, count);
            answer.pushback = admitted.draw.pushback.clone();
            return end(answer).await;
        }
        if let Some(f) = &plan.fail_before_first
            && self.model.chance(key, attempt, Purpose::StreamBeforeFirst) < f.rate
        {
            self.finish_work(&req, &gone);
            return end(failure(Some(&f.status))).await;
        }
        let fail_at = plan.fail_after.as_ref().and_then(|f| {
            (self.model.chance(key, attempt, Purpose::StreamAfter) < f.rate)
                .then_some((f.message, f.status.as_str()))
        });
        let mut intervals = KeyedStream::new(0, key, attempt, Purpose::StreamInterval);
        for n in 1..=plan.messages {
            if n > 1 {
                let wait = plan.interval.sample(&mut intervals);
                self.clock.sleep(wait).await;
            }
            if tx.send(StreamEvent::Message(n)).await.is_err() {
                gone.store(true, std::sync::atomic::Ordering::Release);
                if stop {
                    return;
                }
            }
            if let Some((k, status)) = fail_at
                && n == k
            {
                self.finish_work(&req, &gone);
                return end(failure(Some(status))).await;
            }
        }
        self.finish_work(&req, &gone);
        drop(admitted.worker);
        end(Answer::new(Code::Ok, count)).await;
    }
}
