//! A client flavor: what one gRPC library release does where it departs from gRFC A6.
//!
//! One [`Flavor`] is a set of named behaviours, each a departure a library's source shows
//! (docs/strategies.md, "Client flavors", cites the file and line of each). The A6 strategies
//! (`strategy::retry::grpc`, `strategy::hedge`) consult it at their decision points; the A6
//! text itself is [`Flavor::A6`], every behaviour at its A6 value, so a strategy without a
//! `client` runs exactly as before.

use tonic::Code;

use super::client::{Library, Version};
pub use super::timers::Timers;

/// The backoff jitter: retry n waits `b_n × (low + span × u)`, `u` uniform in [0, 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Jitter {
    /// The lowest factor.
    pub low: f64,
    /// The width of the factor's range (the highest factor, never reached, is `low + span`).
    pub span: f64,
    /// The first retry waits exactly `initialBackoff`, without jitter (old C-core).
    pub first_exact: bool,
}

impl Jitter {
    /// A6 as amended in 2024: × random(0.8, 1.2).
    pub const A6: Jitter = Jitter {
        low: 0.8,
        span: 0.4,
        first_exact: false,
    };
    /// A6 as written in 2017: random(0, 1) × the backoff.
    pub const LEGACY: Jitter = Jitter {
        low: 0.0,
        span: 1.0,
        first_exact: false,
    };
}

/// How the backoff before jitter, `b_n` for retry n, grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackoffRule {
    /// A6 (and grpc-go): `b_n = min(initialBackoff × multiplier^(n−1), maxBackoff)`.
    Exponent,
    /// A running product: `b_{n+1} = min(b_n × multiplier, maxBackoff)`, from `b_1 =
    /// initialBackoff` as it is (`cap_first = false`: grpc-java, grpc-js, old C-core) or capped
    /// at maxBackoff (newer C-core). It differs from [`BackoffRule::Exponent`] only when
    /// initialBackoff exceeds maxBackoff.
    Running {
        /// `b_1 = min(initialBackoff, maxBackoff)`.
        cap_first: bool,
    },
}

/// Which value a library reads when `grpc-retry-pushback-ms` comes more than once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeveralPushbacks {
    /// None: several values say "do not retry" (A6's "more than one value"; grpc-go).
    DontRetry,
    /// The first (grpc-js: `metadata.get(...)[0]`).
    First,
    /// The last (grpc-java's `Metadata.get`; C-core's metadata map, where each value set
    /// replaces the one before).
    Last,
}

/// How a library turns the `grpc-retry-pushback-ms` value it reads into a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushbackNumber {
    /// A signed 32-bit integer: a wait if not negative; anything else, a negative value or
    /// one beyond 32 bits, says "do not retry" (A6; grpc-java's `Integer.valueOf`, whose
    /// `NumberFormatException` reads as −1).
    Int32,
    /// grpc-go: `strconv.Atoi` (64 bits), waiting `time.Millisecond * time.Duration(n)`, a
    /// product in int64 nanoseconds that wraps: one that wraps to zero or below fires at once.
    GoInt64,
    /// C-core: `absl::SimpleAtoi` into 64 bits, a wait of that many milliseconds (longer than
    /// any deadline when huge: its conversion to nanoseconds clamps).
    Int64,
    /// grpc-js: JavaScript's `parseInt` over anything: `"50ms"` waits 50 ms, NaN waits no time
    /// (`setTimeout(f, NaN)`), a negative number says "do not retry".
    ParseInt,
}

/// How a library's retry throttle keeps its tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bookkeeping {
    /// A6: failures take 1 (not below 0), successes add tokenRatio (not above maxTokens).
    A6,
    /// grpc-js 1.8.0–1.13.0: `min` and `max` swapped, so a failure sets the count to at most 0
    /// and a success to at least maxTokens: retries are allowed iff the last event was a success.
    SwappedMinMax,
}

/// Where a hedge's pushback sends the next hedge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HedgePushback {
    /// A6: the next hedge goes after exactly the pushback's delay (the timer is moved).
    Reschedule,
    /// grpc-java 1.57+: a positive pushback is zeroed, the next hedge goes at once.
    Immediate,
    /// grpc-js: a one-shot timer at the pushback's delay; the hedging timer keeps running.
    ExtraTimer,
}

/// What a library does with a stream the server did not process (gRFC A6, "Transparent
/// Retries"): it is sent again at once, on another stream (or connection), without counting
/// an attempt or touching the throttle, within these bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transparent {
    /// A stream that never left the client is sent again: at most this many times per call
    /// (then the call fails INTERNAL, grpc-java's "Too many transparent retries"), or, when
    /// `None`, until the call's deadline (A6, grpc-js, grpc-go, C-core).
    pub unsent_limit: Option<u32>,
    /// A stream the server refused with RST_STREAM(REFUSED_STREAM) counts as not seen by the
    /// server; otherwise (C-core) it fails the attempt UNAVAILABLE, to the policy, and only a
    /// stream above a GOAWAY's last id is sent again.
    pub refused_is_transparent: bool,
    /// When a stream that reached the server but not its application (refused, or above a
    /// GOAWAY's last id) is sent again: at most once per call, and only then.
    pub seen: SeenOnce,
}

/// When the one transparent retry of a call's stream that reached the server may be spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeenOnce {
    /// Once per call, whatever came before (A6's "retry it once", grpc-js, C-core).
    PerCall,
    /// Once per call, and only while no attempt of it has failed (grpc-java's
    /// `noMoreTransparentRetry`, also set by every ordinary failure).
    BeforeAnyFailure,
    /// Only on the call's first attempt (grpc-go's `firstAttempt`, cleared by any retry).
    FirstAttempt,
}

impl Transparent {
    /// The A6 text: never-sent streams until the deadline, a refused or gone-away one once.
    pub const A6: Transparent = Transparent {
        unsent_limit: None,
        refused_is_transparent: true,
        seen: SeenOnce::PerCall,
    };
}

/// The named behaviours of one library release (all at their A6 value in [`Flavor::A6`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Flavor {
    /// The library.
    pub library: Library,
    /// The backoff jitter.
    pub jitter: Jitter,
    /// How the backoff before jitter grows.
    pub backoff: BackoffRule,
    /// A valid pushback of 0 schedules a retry that never starts: the call waits for its
    /// deadline (newer C-core).
    pub zero_pushback_hangs: bool,
    /// Which of several pushback values it reads.
    pub several_pushbacks: SeveralPushbacks,
    /// How it reads a pushback value as a wait.
    pub pushback_number: PushbackNumber,
    /// A pushback value that is no integer fails the attempt with this status, replacing the
    /// server's (C-core: UNKNOWN from 1.53, INTERNAL from 1.81, as measured with grpcio);
    /// `None`: the value is read as [`Flavor::pushback_number`] says.
    pub malformed_pushback_fails: Option<Code>,
    /// A valid pushback makes any failed status retried, retryable or not, without a
    /// throttle token (grpc-java).
    pub pushback_retries_any_status: bool,
    /// A "don't retry" pushback takes a throttle token whatever the status (A6, grpc-java,
    /// grpc-go); otherwise only with a retryable or non-fatal status (C-core, grpc-js).
    pub dont_retry_pushback_counts: bool,
    /// The throttle is checked when the backoff ends, not when the attempt fails (grpc-js):
    /// a throttled failure reaches the caller one backoff late.
    pub throttle_after_backoff: bool,
    /// How the throttle keeps its tokens.
    pub bookkeeping: Bookkeeping,
    /// A retry refused by the throttle never reports its failure: the call waits for its
    /// deadline (grpc-js 1.8.0–1.13.0).
    pub throttled_retry_hangs: bool,
    /// A success is counted when response headers arrive (grpc-java), so a stream that fails
    /// after its first message counts as one too.
    pub success_on_headers: bool,
    /// How its timers wait (Node's `setTimeout` for grpc-js).
    pub timers: Timers,
    /// The library implements hedging; if not, a hedging policy is ignored (one attempt).
    pub hedging: bool,
    /// Hedges never consult the throttle (grpc-js).
    pub hedges_ignore_throttle: bool,
    /// The throttle is checked when the next hedge is scheduled, not when it goes, and a
    /// hedge refused then freezes hedging (grpc-java).
    pub hedge_throttle_when_scheduled: bool,
    /// A non-fatal status without pushback leaves the next hedge at its scheduled time
    /// (grpc-java) instead of sending it at once.
    pub non_fatal_waits_for_timer: bool,
    /// What a valid pushback on a non-fatal hedge does.
    pub hedge_pushback: HedgePushback,
    /// A non-fatal hedge failure refused by the throttle ends the call at once, cancelling the
    /// other attempts (grpc-java).
    pub throttled_hedge_ends_call: bool,
    /// A "don't retry" pushback on a non-fatal hedge ends the call at once, cancelling the
    /// other attempts (grpc-js).
    pub stop_pushback_ends_hedged_call: bool,
    /// Which streams the server did not process are sent again at once, and how often.
    pub transparent: Transparent,
}

impl Flavor {
    /// The gRFC A6 text.
    pub const A6: Flavor = Flavor {
        library: Library::A6,
        jitter: Jitter::A6,
        backoff: BackoffRule::Exponent,
        zero_pushback_hangs: false,
        several_pushbacks: SeveralPushbacks::DontRetry,
        pushback_number: PushbackNumber::Int32,
        malformed_pushback_fails: None,
        pushback_retries_any_status: false,
        dont_retry_pushback_counts: true,
        throttle_after_backoff: false,
        bookkeeping: Bookkeeping::A6,
        throttled_retry_hangs: false,
        success_on_headers: false,
        timers: Timers::Exact,
        hedging: true,
        hedges_ignore_throttle: false,
        hedge_throttle_when_scheduled: false,
        non_fatal_waits_for_timer: false,
        hedge_pushback: HedgePushback::Reschedule,
        throttled_hedge_ends_call: false,
        stop_pushback_ends_hedged_call: false,
        transparent: Transparent::A6,
    };

    /// The flavor of `library` at release `v` (the boundaries are cited in
    /// docs/strategies.md, "Client flavors"; [`super::client::eras`] lists the same ones).
    pub fn of(library: Library, v: Version) -> Flavor {
        let a6 = Flavor::A6;
        let at = |major, minor, patch| v >= Version(major, minor, patch);
        match library {
            Library::A6 => a6,
            Library::GrpcJava => Flavor {
                library,
                // × random(0, 1) to 1.70; 0.8 · r + 0.4 from 1.71 (#11858); A6's from 1.80.
                jitter: if at(1, 80, 0) {
                    Jitter::A6
                } else if at(1, 71, 0) {
                    Jitter {
                        low: 0.4,
                        span: 0.8,
                        first_exact: false,
                    }
                } else {
                    Jitter::LEGACY
                },
                backoff: BackoffRule::Running { cap_first: false },
                several_pushbacks: SeveralPushbacks::Last,
                pushback_retries_any_status: true,
                success_on_headers: true,
                hedge_throttle_when_scheduled: true,
                non_fatal_waits_for_timer: true,
                // `pushbackMillis = 0` in makeHedgingDecision from 1.57 (#10293).
                hedge_pushback: if at(1, 57, 0) {
                    HedgePushback::Immediate
                } else {
                    HedgePushback::Reschedule
                },
                throttled_hedge_ends_call: true,
                // RetriableStream.closed: MISCARRIED up to 1,000 per call (1.46+), REFUSED
                // once, unless an ordinary failure came first.
                transparent: Transparent {
                    unsent_limit: Some(1000),
                    refused_is_transparent: true,
                    seen: SeenOnce::BeforeAnyFailure,
                },
                ..a6
            },
            Library::GrpcJs => Flavor {
                library,
                // getNextRetryJitter() from 1.14.0 (grpc-node#2960).
                jitter: if at(1, 14, 0) {
                    Jitter::A6
                } else {
                    Jitter::LEGACY
                },
                backoff: BackoffRule::Running { cap_first: false },
                several_pushbacks: SeveralPushbacks::First,
                pushback_number: PushbackNumber::ParseInt,
                dont_retry_pushback_counts: false,
                throttle_after_backoff: true,
                // min and max swapped, and a refused retry never reported, to 1.13.0
                // (fixed by grpc-node#2927 in 1.13.1).
                bookkeeping: if at(1, 13, 1) {
                    Bookkeeping::A6
                } else {
                    Bookkeeping::SwappedMinMax
                },
                throttled_retry_hangs: !at(1, 13, 1),
                timers: Timers::Node,
                hedges_ignore_throttle: true,
                hedge_pushback: HedgePushback::ExtraTimer,
                stop_pushback_ends_hedged_call: true,
                ..a6
            },
            // Placed by measuring grpcio releases (docs/strategies.md, the C-core table).
            Library::CCore => Flavor {
                library,
                jitter: Jitter {
                    first_exact: !at(1, 67, 0),
                    ..Jitter::A6
                },
                backoff: BackoffRule::Running {
                    cap_first: at(1, 67, 0),
                },
                zero_pushback_hangs: at(1, 72, 0),
                several_pushbacks: SeveralPushbacks::Last,
                pushback_number: PushbackNumber::Int64,
                malformed_pushback_fails: if at(1, 81, 0) {
                    Some(Code::Internal)
                } else if at(1, 53, 0) {
                    Some(Code::Unknown)
                } else {
                    None
                },
                dont_retry_pushback_counts: false,
                hedging: false,
                // retry_filter: kNotSentOnWire always, kNotSeenByServer (GOAWAY only) once;
                // RST_STREAM(REFUSED_STREAM) is not marked, so it is UNAVAILABLE to the policy.
                transparent: Transparent {
                    refused_is_transparent: false,
                    ..Transparent::A6
                },
                ..a6
            },
            Library::GrpcGo => Flavor {
                library,
                // `0.8 + 0.4*rand.Float64()` from 1.69 (grpc-go#7869).
                jitter: if at(1, 69, 0) {
                    Jitter::A6
                } else {
                    Jitter::LEGACY
                },
                pushback_number: PushbackNumber::GoInt64,
                hedging: false,
                // csAttempt.shouldRetry: unprocessed streams only on the first attempt.
                transparent: Transparent {
                    seen: SeenOnce::FirstAttempt,
                    ..Transparent::A6
                },
                ..a6
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::client::eras;

    /// Each era's first release, as the newest release with what differs then. The table
    /// names every era of [`eras`], so a boundary moved in one place and not the other fails.
    #[test]
    fn each_era_first_release_has_its_behaviours() {
        use HedgePushback::{Immediate, Reschedule};
        let v = Version;
        let newest = |library| Flavor::of(library, eras(library).last().unwrap().last);
        let (java, js, c, go) = (
            newest(Library::GrpcJava),
            newest(Library::GrpcJs),
            newest(Library::CCore),
            newest(Library::GrpcGo),
        );
        let c_first_exact = Jitter {
            first_exact: true,
            ..Jitter::A6
        };
        let uncapped = BackoffRule::Running { cap_first: false };
        let unknown = Some(Code::Unknown);
        let rows = [
            (
                v(1, 41, 0),
                Flavor {
                    jitter: Jitter::LEGACY,
                    hedge_pushback: Reschedule,
                    ..java
                },
            ),
            (
                v(1, 57, 0),
                Flavor {
                    jitter: Jitter::LEGACY,
                    hedge_pushback: Immediate,
                    ..java
                },
            ),
            (
                v(1, 71, 0),
                Flavor {
                    jitter: Jitter {
                        low: 0.4,
                        span: 0.8,
                        first_exact: false,
                    },
                    ..java
                },
            ),
            (v(1, 80, 0), java),
            (
                v(1, 8, 0),
                Flavor {
                    jitter: Jitter::LEGACY,
                    bookkeeping: Bookkeeping::SwappedMinMax,
                    throttled_retry_hangs: true,
                    ..js
                },
            ),
            (
                v(1, 13, 1),
                Flavor {
                    jitter: Jitter::LEGACY,
                    ..js
                },
            ),
            (v(1, 14, 0), js),
            (
                v(1, 51, 0),
                Flavor {
                    jitter: c_first_exact,
                    backoff: uncapped,
                    zero_pushback_hangs: false,
                    malformed_pushback_fails: None,
                    ..c
                },
            ),
            (
                v(1, 53, 0),
                Flavor {
                    jitter: c_first_exact,
                    backoff: uncapped,
                    zero_pushback_hangs: false,
                    malformed_pushback_fails: unknown,
                    ..c
                },
            ),
            (
                v(1, 67, 0),
                Flavor {
                    zero_pushback_hangs: false,
                    malformed_pushback_fails: unknown,
                    ..c
                },
            ),
            (
                v(1, 72, 0),
                Flavor {
                    malformed_pushback_fails: unknown,
                    ..c
                },
            ),
            (v(1, 81, 0), c),
            (
                v(1, 41, 0),
                Flavor {
                    jitter: Jitter::LEGACY,
                    ..go
                },
            ),
            (v(1, 69, 0), go),
        ];
        let mut at = 0;
        for library in [
            Library::GrpcJava,
            Library::GrpcJs,
            Library::CCore,
            Library::GrpcGo,
        ] {
            for era in eras(library) {
                let (first, want) = rows[at];
                assert_eq!((want.library, first), (library, era.first), "row {at}");
                assert_eq!(
                    Flavor::of(library, first),
                    want,
                    "{} {first}",
                    library.name()
                );
                at += 1;
            }
        }
        assert_eq!(at, rows.len());
        assert_eq!(Flavor::of(Library::A6, v(1, 0, 0)), Flavor::A6);
    }
}
