//! Server streaming: `messages` messages, the first after the service time, then one every
//! `interval`; a failure before the first message (a call gRFC A6 may still retry) or right
//! after message k (the call is committed: no retry).
//!
//! A caller that goes away (it cancels, or its deadline passes) is noticed at once: with
//! `on_cancel = "stop"` the stream stops and frees its worker; with `"continue"` it runs to
//! its end, and the execution counts as wasted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tonic::Code;

use super::attempt::Active;
use super::{Answer, Backend, Incoming, StreamEvent};
use crate::keyed::Purpose;
use crate::profile::backend::OnCancel;
use crate::protocol::StatusCode;

impl Backend {
    /// Serves a streaming attempt into `tx`, ending with [`StreamEvent::End`] unless the
    /// caller went away and the backend stops for that.
    pub(super) async fn serve_stream(
        self: Arc<Self>,
        req: Incoming,
        tx: mpsc::Sender<StreamEvent>,
    ) {
        let _active = Active::new(&self.counters);
        let stop = self.plan.on_cancel == OnCancel::Stop;
        let gone = AtomicBool::new(false);
        // Waits `d`; false if the backend stops because its caller went away meanwhile.
        let wait = |d: Duration| {
            let (tx, clock, deadline) = (tx.clone(), self.clock.clone(), req.deadline);
            async move {
                if !stop {
                    clock.sleep(d).await;
                    return true;
                }
                let wake = clock.now() + d;
                // The caller's deadline comes first: it has gone by then.
                let cut = deadline.filter(|dl| *dl < wake);
                tokio::select! {
                    _ = clock.sleep_until(cut.unwrap_or(wake)) => cut.is_none(),
                    _ = tx.closed() => false,
                }
            }
        };
        let end = |answer: Answer| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(StreamEvent::End(answer)).await;
            }
        };
        let arrival = self.arrive(&req);
        let admitted = match self.admit(&req, arrival).await {
            Ok(a) => a,
            Err(answer) => return end(answer).await,
        };
        let count = admitted.count;
        if !wait(admitted.draw.latency).await {
            return;
        }
        let finish = |gone: &AtomicBool| {
            if tx.is_closed() {
                gone.store(true, Ordering::Release);
            }
            self.finish_work(&req, gone);
        };
        let plan = &self.plan.stream;
        let (key, attempt) = (req.request_key, req.draw_attempt());
        let failure = |status: StatusCode| Answer::new(status.code(), count);
        if admitted.draw.code != Code::Ok {
            finish(&gone);
            let mut answer = Answer::new(admitted.draw.code, count);
            answer.pushback = admitted.draw.pushback.clone();
            return end(answer).await;
        }
        if let Some(f) = &plan.fail_before_first
            && self.model.chance(key, attempt, Purpose::StreamBeforeFirst) < f.rate
        {
            finish(&gone);
            return end(failure(f.status)).await;
        }
        let fail_at = plan.fail_after.as_ref().and_then(|f| {
            (self.model.chance(key, attempt, Purpose::StreamAfter) < f.rate)
                .then_some((f.message, f.status))
        });
        let mut intervals = self.model.stream_of(key, attempt, Purpose::StreamInterval);
        for n in 1..=plan.messages {
            if n > 1 && !wait(plan.interval.sample(&mut intervals)).await {
                return;
            }
            if tx.send(StreamEvent::Message(n)).await.is_err() {
                gone.store(true, Ordering::Release);
                if stop {
                    return;
                }
            }
            if let Some((k, status)) = fail_at
                && n == k
            {
                finish(&gone);
                return end(failure(status)).await;
            }
        }
        finish(&gone);
        drop(admitted.worker);
        end(Answer::new(Code::Ok, count)).await;
    }
}
