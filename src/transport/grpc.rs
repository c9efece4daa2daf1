//! A tonic client: attempts as real gRPC calls over HTTP/2.
//!
//! Each attempt carries what a gRPC client library would send: `grpc-timeout` (the time left
//! until the attempt's deadline) and, on retries and hedges, `grpc-previous-rpc-attempts`
//! (gRFC A6). Warmup attempts carry `resilbench-warmup` so the backend leaves them out of its
//! figures.

use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
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
use crate::status::{PUSHBACK_HEADER, Pushback, parse_pushback};

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
        if let Some(deadline) = call.sent_deadline {
            request.set_timeout(deadline.saturating_duration_since(self.clock.now()));
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

/// What a client sees in a failed call's status, after `messages` stream messages; `headers`
/// says whether response headers had arrived (the call was committed).
pub fn status_to_failure(status: &tonic::Status, messages: u32, headers: bool) -> Failure {
    // More than one value is malformed: grpc-go does not retry (and counts a throttle
    // failure), as for any value that does not parse.
    let mut values = status.metadata().get_all(PUSHBACK_HEADER).iter();
    let pushback = match (values.next(), values.next()) {
        (None, _) => None,
        (Some(v), None) => Some(parse_pushback(v.as_bytes())),
        (Some(_), Some(_)) => Some(Pushback::DontRetry),
    };
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
        committed: headers,
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
        let (deadline, clock) = (call.sent_deadline, self.clock.clone());
        let attempt = self.send(call);
        Box::pin(async move { deadline_status(attempt.await, deadline, &clock) })
    }
}

/// tonic enforces the `grpc-timeout` it sends and reports its expiry as CANCELLED ("Timeout
/// expired"), and a server past the deadline may reset the stream with CANCELLED too; gRPC
/// clients report an expired deadline as DEADLINE_EXCEEDED (grpc-go; grpc-dotnet turns a
/// CANCELLED received after its deadline into DEADLINE_EXCEEDED). So does this transport: a
/// CANCELLED at or after the deadline it sent is DEADLINE_EXCEEDED, decided locally.
fn deadline_status(outcome: Outcome, deadline: Option<Instant>, clock: &Clock) -> Outcome {
    match outcome {
        Err(f)
            if f.code == tonic::Code::Cancelled && deadline.is_some_and(|d| clock.now() >= d) =>
        {
            Err(Failure {
                code: tonic::Code::DeadlineExceeded,
                source: FailureSource::Local,
                ..f
            })
        }
        other => other,
    }
}

impl GrpcTransport {
    fn send(&mut self, call: Call) -> BoxFuture<Outcome> {
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
                let commit = call.commit.clone();
                Box::pin(async move {
                    let mut stream = match client.stream(request).await {
                        Ok(response) => response.into_inner(),
                        Err(status) => return Err(status_to_failure(&status, 0, false)),
                    };
                    // The response headers arrived: the call is committed (gRFC A6).
                    if let Some(c) = &commit {
                        c.commit();
                    }
                    let mut messages = 0;
                    loop {
                        match stream.message().await {
                            Ok(Some(_)) => messages += 1,
                            Ok(None) => {
                                return Ok(Reply {
                                    backend_attempt: 0,
                                    messages,
                                    fallback: false,
                                });
                            }
                            // The response (its headers) had arrived: the call is committed.
                            Err(status) => return Err(status_to_failure(&status, messages, true)),
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
            fallback: false,
        }),
        Err(status) => Err(status_to_failure(&status, 0, false)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_pushback(values: &[&str]) -> tonic::Status {
        let mut status = tonic::Status::unavailable("busy");
        for v in values {
            status
                .metadata_mut()
                .append(PUSHBACK_HEADER, v.parse().unwrap());
        }
        status
    }

    /// gRFC A6: one valid value is the wait; a negative or malformed one, or several, say
    /// "do not retry".
    #[test]
    fn pushback_values_are_read_as_grpc_go_reads_them() {
        let read = |values: &[&str]| status_to_failure(&with_pushback(values), 0, false).pushback;
        assert_eq!(read(&[]), None);
        assert_eq!(read(&["250"]), Some(Pushback::RetryAfterMs(250)));
        assert_eq!(read(&["-1"]), Some(Pushback::DontRetry));
        assert_eq!(read(&["soon"]), Some(Pushback::DontRetry));
        assert_eq!(read(&["10", "20"]), Some(Pushback::DontRetry));
    }
}
