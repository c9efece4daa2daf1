//! What a client library does to a response before any policy sees it.
//!
//! Newer gRPC C-core parses `grpc-retry-pushback-ms` in its HPACK parser
//! (`GrpcRetryPushbackMsMetadata::ParseMemento`, `absl::SimpleAtoi`); a value that is no
//! integer calls the parser's error callback, which fails the stream with
//! `HpackParseResult::MetadataParseError`: the call sees INTERNAL ("Error parsing
//! 'grpc-retry-pushback-ms' metadata") instead of the server's status (measured with grpcio
//! 1.85.1; docs/strategies.md, "Client flavors"). [`ReadLayer`] does the same, below the
//! instrument, so the attempt is recorded with the status the library reported. Whether the
//! policy then still sees a pushback is not known; it is given none.

use tonic::Code;
use tower::Layer;

use crate::call::{BoxFuture, Call, CallService, Failure, FailureSource, Outcome, call_service};
use crate::profile::flavor::{Flavor, MalformedPushback};
use crate::protocol::status::Pushback;

/// Builds [`Read`] services.
#[derive(Debug, Clone, Copy)]
pub struct ReadLayer;

impl ReadLayer {
    /// The layer `flavor` needs, if it changes any response.
    pub fn for_flavor(flavor: &Flavor) -> Option<Self> {
        (flavor.malformed_pushback == MalformedPushback::Internal).then_some(ReadLayer)
    }
}

impl<S> Layer<S> for ReadLayer {
    type Service = Read<S>;

    fn layer(&self, inner: S) -> Read<S> {
        Read { inner }
    }
}

/// Fails an attempt whose pushback is malformed with INTERNAL, as newer C-core does.
#[derive(Debug, Clone)]
pub struct Read<S> {
    inner: S,
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
        let attempt = self.inner.call(call);
        Box::pin(async move { attempt.await.map_err(read) })
    }
}

/// The failure as newer C-core reports it.
pub fn read(failure: Failure) -> Failure {
    match failure.pushback {
        Some(Pushback::Malformed { .. }) => Failure {
            code: Code::Internal,
            pushback: None,
            source: FailureSource::Local,
            ..failure
        },
        _ => failure,
    }
}
