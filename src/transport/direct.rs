//! The backend called in process, as a service: the transport of virtual-time runs.

use std::sync::Arc;
use std::task::{Context, Poll};

use tower::Service;

use super::BoxFuture;
use crate::backend::{Answer, Backend, Incoming};
use crate::call::{Call, Failure, FailureSource, Outcome, Reply};
use crate::keyed::call_key;
use crate::status::parse_pushback;

/// Calls [`Backend::handle`] directly with what the wire would have carried.
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

/// Turns a backend answer into what a gRPC client would have seen.
pub fn answer_to_outcome(answer: Answer) -> Outcome {
    if answer.code == tonic::Code::Ok {
        return Ok(Reply {
            backend_attempt: answer.attempt,
        });
    }
    Err(Failure {
        code: answer.code,
        pushback: answer.pushback.map(|p| parse_pushback(p.as_bytes())),
        source: FailureSource::Backend,
    })
}

impl Service<Call> for DirectTransport {
    type Response = Reply;
    type Error = Failure;
    type Future = BoxFuture<Outcome>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Failure>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Call) -> Self::Future {
        let backend = Arc::clone(&self.backend);
        let incoming = Incoming {
            request_key: call_key(call.id),
            previous_attempts: call.previous_attempts,
            warmup: call.warmup,
        };
        Box::pin(async move { answer_to_outcome(backend.handle(incoming).await) })
    }
}
