//! A tonic client: attempts as real gRPC calls over HTTP/2.
//!
//! Each attempt carries what a gRPC client library would send: `grpc-timeout` (the time left
//! until the attempt's deadline) and, on retries and hedges, `grpc-previous-rpc-attempts`
//! (gRFC A6). Warmup attempts carry `resilbench-warmup` so the backend leaves them out of its
//! figures.

use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tonic::Request;
use tonic::transport::{Channel, Endpoint};
use tower::Service;

use super::BoxFuture;
use crate::backend::server::{PREVIOUS_ATTEMPTS_HEADER, WARMUP_HEADER};
use crate::call::{Call, Failure, FailureSource, Outcome, Reply};
use crate::clock::Clock;
use crate::pb;
use crate::status::{PUSHBACK_HEADER, parse_pushback};

/// An endpoint to `addr` (`host:port`) with the settings a load generator wants.
pub fn endpoint(addr: &str) -> Result<Endpoint, tonic::transport::Error> {
    let uri = if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    Ok(Endpoint::from_shared(uri)?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(2))
        .buffer_size(64 * 1024))
}

/// Sends attempts over a tonic channel.
#[derive(Debug, Clone)]
pub struct GrpcTransport {
    client: pb::backend_client::BackendClient<Channel>,
    payload: Bytes,
    clock: Clock,
}

impl GrpcTransport {
    /// A transport over `channel`, sending `payload_bytes` of payload per request; `clock`
    /// tells how much time is left before a deadline.
    pub fn new(channel: Channel, payload_bytes: u32, clock: Clock) -> Self {
        Self {
            client: pb::backend_client::BackendClient::new(channel)
                .max_decoding_message_size(16 * 1024 * 1024),
            payload: Bytes::from(vec![0u8; payload_bytes as usize]),
            clock,
        }
    }
}

/// What a client sees in a failed call's status.
pub fn status_to_failure(status: &tonic::Status) -> Failure {
    let pushback = status
        .metadata()
        .get(PUSHBACK_HEADER)
        .map(|v| parse_pushback(v.as_bytes()));
    // Connection-level failures carry the transport error as their source; a status the
    // server sent does not.
    let source = if std::error::Error::source(status).is_some() {
        FailureSource::Transport
    } else {
        FailureSource::Backend
    };
    Failure {
        code: status.code(),
        pushback,
        source,
    }
}

impl Service<Call> for GrpcTransport {
    type Response = Reply;
    type Error = Failure;
    type Future = BoxFuture<Outcome>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Failure>> {
        // The generated client waits for the channel's readiness inside each call.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Call) -> Self::Future {
        let mut client = self.client.clone();
        let mut request = Request::new(pb::CallRequest {
            request_id: call.id.to_string(),
            payload: self.payload.clone(),
        });
        request.set_timeout(call.deadline.saturating_duration_since(self.clock.now()));
        let meta = request.metadata_mut();
        if call.previous_attempts > 0 {
            meta.insert(PREVIOUS_ATTEMPTS_HEADER, call.previous_attempts.into());
        }
        if call.warmup {
            meta.insert(
                WARMUP_HEADER,
                tonic::metadata::MetadataValue::from_static("1"),
            );
        }
        Box::pin(async move {
            match client.call(request).await {
                Ok(reply) => Ok(Reply {
                    backend_attempt: reply.get_ref().attempt,
                }),
                Err(status) => Err(status_to_failure(&status)),
            }
        })
    }
}
