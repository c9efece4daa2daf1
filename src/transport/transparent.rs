//! gRFC A6 "Transparent Retries": a stream the server did not process is sent again at once,
//! inside the same attempt, without counting an attempt or touching the retry throttle.
//!
//! A6 tells four ways an RPC can fail: at the load-balancing pick (here: no connection, the
//! call fails UNAVAILABLE to the policy), before it leaves the client, after it reached the
//! server but not its application, and in the application. "The second and third cases are
//! retried automatically by the gRPC client library, regardless of the retry configuration":
//! one that never left the client "until a success occurs, or the RPC's deadline passes"; one
//! that reached the server library (RST_STREAM(REFUSED_STREAM), or a stream id above a
//! GOAWAY's last stream id) is retried "once. If this fails, then the RPC will be handled by
//! the configured retry policy". Neither counts toward `maxAttempts` nor as a throttling
//! failure.
//!
//! The HTTP/2 client tells these apart ([`super::http2::Processed`]); the strategy's client
//! library ([`Transparent`], on the call) bounds them as that library does:
//!
//! | client | never left the client | reached the server, not its application |
//! |---|---|---|
//! | A6 text, grpc-js | until the deadline | once per call |
//! | grpc-java | 1,000 per call (10,000 in 1.45.0 only), then INTERNAL | once per call, before any failed attempt |
//! | grpc-go | until the deadline | once, on the call's first attempt only |
//! | C-core | until the deadline | once per call, after a GOAWAY only: RST_STREAM(REFUSED_STREAM) fails the attempt UNAVAILABLE |
//!
//! Each stream the server did not process, and each one sent again, is counted on the call's
//! meter; the instrument reports them with the attempt (`attempts.transparent` and
//! `attempts.not_processed` in results.json). The stream cap is not lowered after a refusal:
//! no gRPC client does (grpc-go's `handleRSTStream` only marks the stream unprocessed; its
//! limit changes with SETTINGS alone), and resilbench measures what a client would see.

use std::future::Future;

use tonic::Code;

use super::grpc::Sent;
use crate::call::{Call, Failure, FailureSource, NotProcessed, Outcome};
use crate::profile::flavor::{SeenOnce, Transparent};

/// One attempt of `call`: streams sent by `send` until one is processed, or one that was not
/// may not be sent again.
pub(super) async fn attempt<F, Fut>(call: &Call, mut send: F) -> Outcome
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Sent>,
{
    loop {
        match send().await {
            Sent::Done(outcome) => {
                if outcome.is_err() {
                    call.meter.attempt_failed();
                }
                return outcome;
            }
            Sent::NotProcessed(how) => {
                call.meter.count_unprocessed(how);
                match decide(&call.transparent, how, call) {
                    Decision::Again => {
                        call.meter.count_transparent(how == NotProcessed::Unsent);
                        if how == NotProcessed::Unsent {
                            // The connection's keeper replaces a connection that went away:
                            // let it run before the next stream is opened.
                            tokio::task::yield_now().await;
                        }
                    }
                    Decision::Fail(code) => {
                        call.meter.attempt_failed();
                        return Err(Failure {
                            code,
                            pushback: None,
                            source: FailureSource::Transport,
                            messages: 0,
                            committed: false,
                        });
                    }
                }
            }
        }
    }
}

/// What becomes of a stream the server did not process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decision {
    /// Sent again at once.
    Again,
    /// The attempt fails with this status (UNAVAILABLE, to the retry policy; INTERNAL when
    /// grpc-java's bound is passed).
    Fail(Code),
}

/// Whether `rule` sends the stream again, given what the call has done so far (its meter,
/// its attempt number). Spends the call's one retry of a stream that reached the server.
pub(super) fn decide(rule: &Transparent, how: NotProcessed, call: &Call) -> Decision {
    let meter = &call.meter;
    match how {
        NotProcessed::Unsent => match rule.unsent_limit {
            Some(limit) if meter.unsent_retries() >= limit => Decision::Fail(Code::Internal),
            _ => Decision::Again,
        },
        NotProcessed::Refused if !rule.refused_is_transparent => Decision::Fail(Code::Unavailable),
        NotProcessed::Refused | NotProcessed::GoneAway => {
            let allowed = match rule.seen {
                SeenOnce::PerCall => true,
                SeenOnce::BeforeAnyFailure => !meter.any_failed(),
                // grpc-go's `firstAttempt`, cleared by any retry, a transparent one included.
                SeenOnce::FirstAttempt => call.ordinal == 0 && meter.unsent_retries() == 0,
            };
            if allowed && meter.spend_seen_retry() {
                Decision::Again
            } else {
                Decision::Fail(Code::Unavailable)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::{AttemptKind, CallMeter, Reply, Unprocessed};
    use crate::clock::Clock;
    use crate::profile::client::Library;
    use crate::profile::flavor::Flavor;
    use std::sync::Arc;
    use std::time::Duration;

    fn call(rule: Transparent, ordinal: u32, meter: &Arc<CallMeter>) -> Call {
        let now = Clock::Tokio.now();
        Call {
            id: 1,
            intended: now,
            deadline: now + Duration::from_secs(1),
            previous_attempts: ordinal,
            ordinal,
            kind: AttemptKind::Original,
            warmup: false,
            payload_bytes: 0,
            method: crate::profile::Method::Unary,
            idempotency_key: false,
            sent_deadline: None,
            meter: Arc::clone(meter),
            commit: None,
            transparent: rule,
        }
    }

    fn rule(library: Library) -> Transparent {
        // The newest release known of each library (A6 has no releases: the gRFC itself).
        crate::profile::client::eras(library)
            .last()
            .map_or(Flavor::A6, |era| Flavor::of(library, era.last))
            .transparent
    }

    /// Each client's rule for a stream that reached the server: A6 and grpc-js once per call;
    /// grpc-java once, and not after a failed attempt; grpc-go on the first attempt only;
    /// C-core never after REFUSED_STREAM, once after a GOAWAY.
    #[tokio::test(start_paused = true)]
    async fn each_client_spends_its_one_retry_of_a_stream_the_server_saw_as_its_library_does() {
        use Decision::{Again, Fail};
        use NotProcessed::{GoneAway, Refused};
        const U: Decision = Fail(Code::Unavailable);
        let cases: [(Library, NotProcessed, u32, bool, [Decision; 2]); 10] = [
            (Library::A6, Refused, 0, false, [Again, U]),
            (Library::A6, GoneAway, 2, true, [Again, U]),
            (Library::GrpcJs, Refused, 1, true, [Again, U]),
            (Library::GrpcJava, Refused, 0, false, [Again, U]),
            (Library::GrpcJava, Refused, 1, true, [U, U]),
            (Library::GrpcGo, Refused, 0, false, [Again, U]),
            (Library::GrpcGo, GoneAway, 1, false, [U, U]),
            (Library::CCore, Refused, 0, false, [U, U]),
            (Library::CCore, GoneAway, 0, false, [Again, U]),
            (Library::CCore, GoneAway, 3, true, [Again, U]),
        ];
        for (library, how, ordinal, failed_before, want) in cases {
            let meter = Arc::new(CallMeter::default());
            if failed_before {
                meter.attempt_failed();
            }
            let c = call(rule(library), ordinal, &meter);
            let got = [
                decide(&c.transparent, how, &c),
                decide(&c.transparent, how, &c),
            ];
            assert_eq!(got, want, "{library:?} {how:?} attempt {ordinal}");
        }
    }

    /// A stream that never left the client is sent again until the deadline, except by
    /// grpc-java, which stops at 1,000 per call with INTERNAL; for grpc-go such a retry ends
    /// the first attempt's right to a retry of a stream the server saw.
    #[tokio::test(start_paused = true)]
    async fn streams_that_never_left_are_sent_again_within_each_librarys_bound() {
        let meter = Arc::new(CallMeter::default());
        let java = call(rule(Library::GrpcJava), 0, &meter);
        for _ in 0..1000 {
            assert_eq!(
                decide(&java.transparent, NotProcessed::Unsent, &java),
                Decision::Again
            );
            meter.count_transparent(true);
        }
        assert_eq!(
            decide(&java.transparent, NotProcessed::Unsent, &java),
            Decision::Fail(Code::Internal)
        );
        let meter = Arc::new(CallMeter::default());
        let js = call(rule(Library::GrpcJs), 0, &meter);
        for _ in 0..5000 {
            meter.count_transparent(true);
        }
        assert_eq!(
            decide(&js.transparent, NotProcessed::Unsent, &js),
            Decision::Again
        );
        let meter = Arc::new(CallMeter::default());
        let go = call(rule(Library::GrpcGo), 0, &meter);
        meter.count_transparent(true);
        assert_eq!(
            decide(&go.transparent, NotProcessed::Refused, &go),
            Decision::Fail(Code::Unavailable)
        );
    }

    /// The loop: a refused stream is sent again once, counted apart, and the second refusal
    /// fails the attempt UNAVAILABLE; a processed answer ends it; the counts are taken once.
    #[tokio::test(start_paused = true)]
    async fn the_loop_sends_again_counts_and_stops() {
        let meter = Arc::new(CallMeter::default());
        let c = call(Transparent::A6, 0, &meter);
        let mut sent = 0;
        let outcome = attempt(&c, || {
            sent += 1;
            std::future::ready(Sent::NotProcessed(NotProcessed::Refused))
        })
        .await;
        assert_eq!(sent, 2);
        assert_eq!(outcome.unwrap_err().code, Code::Unavailable);
        assert_eq!(
            meter.take_unprocessed(),
            Unprocessed {
                retried: 1,
                refused: 2,
                gone_away: 0,
                unsent: 0
            }
        );
        assert!(meter.take_unprocessed().is_empty(), "taken once");
        let meter = Arc::new(CallMeter::default());
        let c = call(Transparent::A6, 0, &meter);
        let mut streams = vec![
            Sent::Done(Ok(Reply::default())),
            Sent::NotProcessed(NotProcessed::Unsent),
            Sent::NotProcessed(NotProcessed::Unsent),
            Sent::NotProcessed(NotProcessed::GoneAway),
        ];
        let outcome = attempt(&c, || std::future::ready(streams.pop().unwrap())).await;
        assert!(outcome.is_ok() && streams.is_empty());
        let counted = meter.take_unprocessed();
        assert_eq!(
            (counted.retried, counted.gone_away, counted.unsent),
            (3, 1, 2)
        );
    }
}
