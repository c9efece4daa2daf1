//! The gRPC client: attempts as gRPC calls, written straight onto the HTTP/2 streams of
//! [`super::http2`].
//!
//! Each attempt carries what a gRPC client library would send: `grpc-timeout` (the time left
//! until the attempt's deadline, written as grpc-go writes it) and, on retries and hedges,
//! `grpc-previous-rpc-attempts` (gRFC A6). Warmup attempts carry `resilbench-warmup` so the
//! backend leaves them out of its figures.
//!
//! The wire format is gRPC over HTTP/2 (grpc/grpc doc/PROTOCOL-HTTP2.md): a POST to
//! `/resilbench.v1.Backend/<Method>` with `content-type: application/grpc` and `te: trailers`,
//! each message a 5-byte prefix (compressed flag, big-endian length) and its protobuf bytes,
//! the status in `grpc-status` in the trailers, or in the headers of a Trailers-Only response.
//! Statuses the server did not send are derived as gRPC clients derive them: an HTTP status
//! other than 200 as doc/http-grpc-status-mapping.md says, an HTTP/2 reset as
//! PROTOCOL-HTTP2.md's "Errors" table says (tonic's mapping of h2 errors), a broken connection
//! as UNAVAILABLE.
//!
//! Why not tonic's generated client over a `Channel`: the channel hands every request to a
//! buffer task and then to hyper's dispatch task, which spawns one more task per request body,
//! and it enforces `grpc-timeout` again on tokio's 1 ms timer. Here the attempt's own task
//! opens the stream, writes the message and reads the answer, over the lean HTTP/2 client of
//! [`super::http2`]; the strategy stack already enforces every deadline on the precise clock.
//! The measured differences are in docs/PERFORMANCE.md. The server side (`resilbench serve`,
//! the embedded backend) is tonic's generated services on hyper's HTTP/2 server
//! (`backend::server`).
//!
//! Here: the transport and what each attempt sends. Where calls go (an address's authority,
//! the backend's paths): `address.rs`; one stream on the wire, its headers written and its
//! answer read: `stream.rs`; what the answer means as a gRPC client reads it (statuses,
//! trailers, the reply's attempt): `answer.rs`.

mod address;
mod answer;
mod stream;

use std::sync::Arc;

use bytes::Bytes;
use tonic::Code;

use super::connection::Connections;
use super::own::OwnService;
use crate::call::BoxFuture;
use crate::call::{Call, Failure, NotProcessed, Outcome, call_service};
use crate::clock::Clock;
use crate::pb;
use crate::profile::Method;
use crate::protocol::{message, timeout};
use address::Paths;
pub use address::{authority, endpoint};
use answer::deadline_status;
pub use answer::status_to_failure;
use stream::Stream;

/// Sends attempts as gRPC calls over HTTP/2 connections to one replica.
#[derive(Clone)]
pub struct GrpcTransport {
    /// What every attempt to this replica shares, behind one reference an attempt's future
    /// takes with it.
    target: Arc<Target>,
    clock: Clock,
}

/// The replica's connections, what its calls send, and its name.
struct Target {
    connections: Connections,
    requests: Requests,
    replica: Option<Box<str>>,
    /// Calls to the user's own service carry resilbench's request id, attempt and warmup
    /// headers: the target is a `resilbench proxy`, which keys its draws by them.
    tagged: bool,
}

/// What the calls send.
enum Requests {
    /// resilbench's own backend: `Call`, `Mutate` or `Stream`, with a payload.
    Backend { paths: Paths, payload: Bytes },
    /// The user's own service (`[target]`).
    Own(Arc<OwnService>),
}

impl std::fmt::Debug for GrpcTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("GrpcTransport");
        match &self.target.requests {
            Requests::Backend { paths, .. } => d.field("paths", paths),
            Requests::Own(own) => d.field("service", own),
        };
        d.field("replica", &self.target.replica)
            .finish_non_exhaustive()
    }
}

impl GrpcTransport {
    /// A transport over `connections` to the server at `authority` (`host:port`), sending
    /// `payload_bytes` of payload per request; `clock` tells how much time is left before a
    /// deadline. `replica` names the replica (by index, in the `resilbench-replica` header)
    /// when the server hosts several.
    pub fn new(
        connections: Connections,
        authority: &str,
        payload_bytes: u32,
        clock: Clock,
        replica: Option<usize>,
    ) -> Result<Self, String> {
        let target = Target {
            connections,
            requests: Requests::Backend {
                paths: Paths::new(authority)?,
                payload: Bytes::from(vec![0u8; payload_bytes as usize]),
            },
            replica: replica.map(|r| r.to_string().into()),
            tagged: false,
        };
        Ok(Self {
            target: Arc::new(target),
            clock,
        })
    }

    /// A transport over `connections` to the user's own service, sending what `service`
    /// says; `clock` tells how much time is left before a deadline.
    pub fn own(connections: Connections, service: Arc<OwnService>, clock: Clock) -> Self {
        Self::own_with(connections, service, clock, false)
    }

    /// [`GrpcTransport::own`] through a `resilbench proxy` when `tagged`: each call also
    /// carries resilbench's request id, attempt and warmup headers, for the proxy's draws.
    pub fn own_with(
        connections: Connections,
        service: Arc<OwnService>,
        clock: Clock,
        tagged: bool,
    ) -> Self {
        let target = Target {
            connections,
            requests: Requests::Own(service),
            replica: None,
            tagged,
        };
        Self {
            target: Arc::new(target),
            clock,
        }
    }
}

impl Target {
    /// The request message, framed; why not, if it cannot be encoded.
    fn body(&self, call: &Call) -> Result<Bytes, String> {
        let payload = match &self.requests {
            Requests::Own(own) => return own.body(call.id),
            Requests::Backend { payload, .. } => payload.clone(),
        };
        let request_id = call.id.to_string();
        Ok(match call.method {
            Method::Unary | Method::Stream => message::encode(&pb::CallRequest {
                request_id,
                payload,
                script: vec![],
            }),
            Method::Mutate => {
                let idempotency_key = if call.idempotency_key {
                    request_id.clone()
                } else {
                    String::new()
                };
                message::encode(&pb::MutateRequest {
                    request_id,
                    payload,
                    script: vec![],
                    idempotency_key,
                })
            }
        })
    }
}

// Each call waits for its connection inside its own future.
call_service! {
    for GrpcTransport, ready = always
}

impl GrpcTransport {
    /// Its work on one call (its `Service::call`): the attempt's streams, one unless the
    /// server did not process it and it is sent again at once ([`super::transparent`]).
    fn serve(&mut self, call: Call) -> BoxFuture<Outcome> {
        let mut body = match self.target.body(&call) {
            Ok(body) => Some(body),
            // A request the template cannot make (checked before the run; never expected):
            // the call fails as a gRPC client fails one it cannot serialize.
            Err(_) => return Box::pin(std::future::ready(Err(Failure::local(Code::Internal)))),
        };
        let (target, clock) = (Arc::clone(&self.target), self.clock.clone());
        Box::pin(async move {
            let call = &call;
            let outcome = super::transparent::attempt(call, || {
                // The time left is taken when each stream starts, as a gRPC library takes it.
                let timeout = call
                    .sent_deadline
                    .map(|d| timeout::write(d.saturating_duration_since(clock.now())));
                // The first stream takes the body made above; a stream sent again (rare)
                // makes it again, the same bytes, rather than every call cloning it (a clone
                // of a `Bytes` made from a `Vec` allocates).
                let body = body.take().map_or_else(|| target.body(call), Ok);
                let target = &target;
                async move {
                    match body {
                        Ok(body) => target.exchange(call, timeout.as_deref(), body).await,
                        Err(_) => Sent::Done(Err(Failure::local(Code::Internal))),
                    }
                }
            })
            .await;
            deadline_status(outcome, call.sent_deadline, &clock)
        })
    }
}

/// How one stream of an attempt ended.
pub(super) enum Sent {
    /// With the attempt's outcome.
    Done(Outcome),
    /// Without reaching the server's application: the stream can be sent again as if never
    /// sent (gRFC A6's transparent retry).
    NotProcessed(NotProcessed),
}

impl From<Outcome> for Sent {
    fn from(outcome: Outcome) -> Self {
        Sent::Done(outcome)
    }
}

impl Target {
    /// One stream on the wire: open it with the headers a gRPC client library sends, send the
    /// message, read the answer.
    async fn exchange(&self, call: &Call, timeout: Option<&str>, body: Bytes) -> Sent {
        match self.stream(call, timeout, body).await {
            Err(Stream::NotProcessed(how)) => Sent::NotProcessed(how),
            Err(Stream::Failed(failure)) => Sent::Done(Err(failure)),
            Ok(reply) => Sent::Done(Ok(reply)),
        }
    }
}
