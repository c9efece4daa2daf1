//! The backend called in process, as a service: the transport of virtual-time runs.

use std::sync::Arc;

use crate::backend::{Answer, Backend, Incoming, StreamEvent};
use crate::call::BoxFuture;
use crate::call::{Call, Failure, FailureSource, Outcome, Reply, call_service};
use crate::keyed::call_key;
use crate::profile::Method;
use crate::protocol::{Pushback, PushbackValue};

/// Calls one backend (replica) directly with what the wire would have carried.
#[derive(Debug, Clone)]
pub struct DirectTransport {
    backend: Arc<Backend>,
}

impl DirectTransport {
    /// A transport to `backend`.
    pub fn new(backend: Arc<Backend>) -> Self {
        Self { backend }
    }
}

/// Turns a backend answer into what a gRPC client would have seen, after `messages` stream
/// messages.
pub fn answer_to_outcome(answer: Answer, messages: u32) -> Outcome {
    if answer.code == tonic::Code::Ok {
        return Ok(Reply {
            backend_attempt: answer.attempt,
            messages,
            fallback: false,
        });
    }
    Err(Failure {
        code: answer.code,
        pushback: answer.pushback.as_ref().and_then(|values| {
            let mut values = values.iter().map(|v| PushbackValue::parse(v.as_bytes()));
            let first = Pushback::one(values.next()?);
            Some(values.fold(first, Pushback::and))
        }),
        source: FailureSource::Backend,
        messages,
        // The backend answers a failure before the first message Trailers-Only.
        committed: messages > 0,
    })
}

/// What the wire would carry for `call`.
pub fn incoming(call: &Call) -> Incoming {
    Incoming {
        method: call.method,
        request_key: call_key(call.id),
        id_number: Some(call.id),
        id_text: None,
        previous_attempts: (call.previous_attempts > 0).then_some(call.previous_attempts),
        ordinal: Some(call.ordinal),
        warmup: call.warmup,
        deadline: call.sent_deadline,
        script: None,
        idempotency_key: (call.idempotency_key && call.method == Method::Mutate)
            .then(|| Arc::from(call.id.to_string())),
    }
}

call_service! {
    for DirectTransport, ready = always
}

impl DirectTransport {
    /// Its work on one call (its `Service::call`).
    fn serve(&mut self, call: Call) -> BoxFuture<Outcome> {
        let backend = Arc::clone(&self.backend);
        let req = incoming(&call);
        let commit = call.commit;
        Box::pin(async move {
            if req.method != Method::Stream {
                return answer_to_outcome(backend.handle(req).await, 0);
            }
            let mut events = backend.stream(req);
            let mut messages = 0;
            while let Some(event) = events.recv().await {
                match event {
                    StreamEvent::Message(_) => {
                        // The backend's headers go with its first message.
                        if messages == 0
                            && let Some(c) = &commit
                        {
                            c.commit();
                        }
                        messages += 1;
                    }
                    StreamEvent::End(answer) => return answer_to_outcome(answer, messages),
                }
            }
            answer_to_outcome(
                Answer {
                    code: tonic::Code::Unavailable,
                    attempt: 0,
                    pushback: None,
                },
                messages,
            )
        })
    }
}
