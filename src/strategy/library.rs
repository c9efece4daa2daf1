//! What a client library does to a response before any policy sees it.
//!
//! gRPC C-core parses `grpc-retry-pushback-ms` with its metadata parser
//! (`GrpcRetryPushbackMsMetadata::ParseMemento`, `absl::SimpleAtoi`); since 1.53 a value that
//! is no integer fails the stream instead of only being logged: the call sees UNKNOWN (grpcio
//! 1.53 to 1.80) or INTERNAL ("Error parsing 'grpc-retry-pushback-ms' metadata", the HPACK
//! parser's `HpackParseResult::MetadataParseError`, grpcio 1.81 on) instead of the server's
//! status (measured; docs/strategies.md, "Client flavors"). [`ReadLayer`] does the same, below
//! the instrument, so the attempt is recorded with the status the library reported. Whether the
//! policy then still sees a pushback is not known; it is given none. A malformed value among
//! several fails the stream too, whichever comes last (measured with grpcio 1.60 and 1.85).
//!
//! The failure keeps its source, [`crate::call::FailureSource::Backend`]: the backend did
//! answer, and the application above the library is handed the library's status as that
//! answer. So the SRE book's adaptive throttle counts it as an application's throttle above
//! grpcio does: an accept, unless the substituted status is one of its `rejections` (marking
//! it local would count a request the backend processed as accepted by no one).

use tonic::Code;
use tower::Layer;

use crate::call::{BoxFuture, Call, CallService, Failure, Outcome, call_service};
use crate::profile::flavor::Flavor;

/// Builds [`Read`] services that fail a malformed pushback with this status.
#[derive(Debug, Clone, Copy)]
pub struct ReadLayer(Code);

impl ReadLayer {
    /// The layer `flavor` needs, if it changes any response.
    pub fn for_flavor(flavor: &Flavor) -> Option<Self> {
        flavor.malformed_pushback_fails.map(ReadLayer)
    }
}

impl<S> Layer<S> for ReadLayer {
    type Service = Read<S>;

    fn layer(&self, inner: S) -> Read<S> {
        Read {
            inner,
            code: self.0,
        }
    }
}

/// Fails an attempt whose pushback is malformed with a status of its own, as C-core does.
#[derive(Debug, Clone)]
pub struct Read<S> {
    inner: S,
    code: Code,
}

call_service! {
    impl<S> for Read<S>, ready = inner,
    where
        S: CallService + Send + 'static,
}

impl<S> Read<S>
where
    S: CallService + Send + 'static,
{
    /// Its work on one call (its `Service::call`).
    fn serve(&mut self, call: Call) -> BoxFuture<Outcome> {
        let (attempt, code) = (self.inner.call(call), self.code);
        Box::pin(async move { attempt.await.map_err(|f| read(f, code)) })
    }
}

/// The failure as C-core reports it, failing a malformed pushback with `code`.
pub fn read(failure: Failure, code: Code) -> Failure {
    if failure.pushback.is_some_and(|p| p.any_malformed) {
        Failure {
            code,
            pushback: None,
            ..failure
        }
    } else {
        failure
    }
}
