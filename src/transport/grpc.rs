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
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tower::Service;

use super::BoxFuture;
use crate::backend::server::{
    ATTEMPT_HEADER, PREVIOUS_ATTEMPTS_HEADER, REPLICA_HEADER, WARMUP_HEADER,
};
use crate::call::{Call, Failure, FailureSource, Outcome, Reply};
use crate::clock::Clock;
use crate::pb;
use crate::profile::Method;
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

/// Sends attempts over a tonic channel, to one replica.
#[derive(Debug, Clone)]
pub struct GrpcTransport {
    client: pb::backend_client::BackendClient<Channel>,
    payload: Bytes,
    clock: Clock,
    replica: Option<usize>,
}

impl GrpcTransport {
    /// A transport over `channel`, sending `payload_bytes` of payload per request; `clock`
    /// tells how much time is left before a deadline. `replica` names the replica (by index,
    /// in the `resilbench-replica` header) when the server hosts several.
    pub fn new(channel: Channel, payload_bytes: u32, clock: Clock, replica: Option<usize>) -> Self {
        Self {
            client: pb::backend_client::BackendClient::new(channel)
                .max_decoding_message_size(16 * 1024 * 1024),
            payload: Bytes::from(vec![0u8; payload_bytes as usize]),
            clock,
            replica,
        }
    }

    /// A request with the headers a gRPC client library would send for this attempt.
    fn request<T>(&self, call: &Call, body: T) -> Request<T> {
        let mut request = Request::new(body);
        if call.propagate_deadline {
            request.set_timeout(call.deadline.saturating_duration_since(self.clock.now()));
        }
        let meta = request.metadata_mut();
        if call.previous_attempts > 0 {
            meta.insert(PREVIOUS_ATTEMPTS_HEADER, call.previous_attempts.into());
        }
        meta.insert(ATTEMPT_HEADER, call.ordinal.into());
        if call.warmup {
            meta.insert(WARMUP_HEADER, MetadataValue::from_static("1"));
        }
        if let Some(r) = self.replica {
            meta.insert(REPLICA_HEADER, MetadataValue::from(r as u64));
        }
        request
    }
}

/// What a client sees in a failed call's status, after `messages` stream messages.
pub fn status_to_failure(status: &tonic::Status, messages: u32) -> Failure {
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
        messages,
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
        let request_id = call.id.to_string();
        let payload = self.payload.clone();
        match call.method {
            Method::Unary => {
                let request = self.request(
                    &call,
                    pb::CallRequest {
                        request_id,
                        payload,
                        script: vec![],
                    },
                );
                Box::pin(async move { unary(client.call(request).await) })
            }
            Method::Mutate => {
                let idempotency_key = if call.idempotency_key {
                    request_id.clone()
                } else {
                    String::new()
                };
                let body = pb::MutateRequest {
                    request_id,
                    payload,
                    script: vec![],
                    idempotency_key,
                };
                let request = self.request(&call, body);
                Box::pin(async move { unary(client.mutate(request).await) })
            }
            Method::Stream => {
                let request = self.request(
                    &call,
                    pb::CallRequest {
                        request_id,
                        payload,
                        script: vec![],
                    },
                );
                Box::pin(async move {
                    let mut stream = match client.stream(request).await {
                        Ok(response) => response.into_inner(),
                        Err(status) => return Err(status_to_failure(&status, 0)),
                    };
                    let mut messages = 0;
                    loop {
                        match stream.message().await {
                            Ok(Some(_)) => messages += 1,
                            Ok(None) => {
                                return Ok(Reply {
                                    backend_attempt: 0,
                                    messages,
                                });
                            }
                            Err(status) => return Err(status_to_failure(&status, messages)),
                        }
                    }
                })
            }
        }
    }
}

fn unary(result: Result<tonic::Response<pb::CallReply>, tonic::Status>) -> Outcome {
    match result {
        Ok(reply) => Ok(Reply {
            backend_attempt: reply.get_ref().attempt,
            messages: 0,
        }),
        Err(status) => Err(status_to_failure(&status, 0)),
    }
}
