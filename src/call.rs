//! The typed call that strategies work on, and its outcome.
//!
//! Strategies are tower layers over [`Call`] rather than over `http::Request`: a call must be
//! cloneable (a retry or a hedge sends it again), and a strategy needs to read and set a few
//! things a raw request hides (the deadline, how many attempts came before). The transport turns
//! a `Call` into a gRPC request at the bottom of the stack.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use tokio::time::Instant;
use tonic::Code;

use crate::profile::Method;
use crate::profile::flavor::Transparent;
use crate::protocol::Pushback;

/// One logical call of the schedule, as it travels down a strategy stack.
///
/// Cloning is cheap (the only shared part is the [`CallMeter`]); a layer that sends an attempt
/// clones the call and adjusts the clone.
#[derive(Debug, Clone)]
pub struct Call {
    /// Position in the plan's schedule. Sent as the request id, which keys the backend's draws.
    pub id: u64,
    /// When the open-loop schedule meant this call to start; end-to-end latency counts from here.
    pub intended: Instant,
    /// Deadline for what happens below this point of the stack. The call's deadline at the top;
    /// a layer may tighten it for its inner attempts (a per-try timeout). The transport sends the
    /// time left as `grpc-timeout`.
    pub deadline: Instant,
    /// Attempts made before this one by the retry layer sending it: the
    /// `grpc-previous-rpc-attempts` header.
    pub previous_attempts: u32,
    /// Attempts of this call sent to the transport before this one, whatever layer sent them
    /// (set by the instrument layer; the backend keys this attempt's draws by it).
    pub ordinal: u32,
    /// Why this attempt is being made.
    pub kind: AttemptKind,
    /// Warmup calls run like the others but are left out of every figure, the backend's included.
    pub warmup: bool,
    /// Size of the request payload in bytes.
    pub payload_bytes: u32,
    /// Which of the backend's methods the call uses.
    pub method: Method,
    /// Attach an idempotency key (the same on every attempt) to a mutation.
    pub idempotency_key: bool,
    /// The deadline to tell the backend (`grpc-timeout`), or none. The call's deadline less
    /// the strategy's `deadline_margin` (a child call's deadline leaves its parent time to
    /// answer); a per-attempt timeout below tightens it as it tightens `deadline`.
    pub sent_deadline: Option<Instant>,
    /// Counters shared by every attempt of this call.
    pub meter: Arc<CallMeter>,
    /// Told when this attempt's response headers arrive, which commits the call to it (gRFC
    /// A6); set by a hedging layer, which then cancels the other attempts. `None` when no
    /// layer above listens.
    pub commit: Option<Commit>,
    /// Which streams the server did not process the transport sends again at once, as the
    /// strategy's client library does (gRFC A6, "Transparent Retries").
    pub transparent: Transparent,
}

/// The attempts of one call racing to commit it: a hedging layer makes one per call and gives
/// each attempt a [`Commit`] handle.
///
/// gRFC A6 ("When Retries are Valid"): an RPC is committed once response headers arrive;
/// grpc-java's `RetriableStream` then commits to that attempt and cancels the others and any
/// hedge still to come. A server answers an error that comes before any message Trailers-Only
/// (no headers), so in practice a stream commits with its first message and a unary call only
/// with its reply.
///
/// A commit happens while the attempt's future is polled, usually by the hedging layer's own
/// task; the race also wakes the task last [registered](CommitRace::register), for attempts
/// driven elsewhere.
#[derive(Debug)]
pub struct CommitRace {
    winner: AtomicU32,
    waker: std::sync::Mutex<Option<std::task::Waker>>,
    parent: Option<Commit>,
}

/// No attempt has committed yet.
const NO_WINNER: u32 = u32::MAX;

impl CommitRace {
    /// A race whose winner also commits `parent` (the attempt of an outer hedging layer that
    /// this whole race runs inside).
    pub fn new(parent: Option<Commit>) -> Arc<Self> {
        Arc::new(Self {
            winner: AtomicU32::new(NO_WINNER),
            waker: std::sync::Mutex::new(None),
            parent,
        })
    }

    /// The handle of attempt number `attempt`.
    pub fn handle(self: &Arc<Self>, attempt: u32) -> Commit {
        Commit {
            race: Arc::clone(self),
            attempt,
        }
    }

    /// The attempt that committed the call, if one has.
    pub fn winner(&self) -> Option<u32> {
        match self.winner.load(Ordering::Acquire) {
            NO_WINNER => None,
            n => Some(n),
        }
    }

    /// Wakes `waker` at the commit.
    pub fn register(&self, waker: &std::task::Waker) {
        let mut slot = self.waker.lock().unwrap_or_else(|e| e.into_inner());
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }
}

/// One attempt's entry in a [`CommitRace`].
#[derive(Debug, Clone)]
pub struct Commit {
    race: Arc<CommitRace>,
    attempt: u32,
}

impl Commit {
    /// The attempt's response headers arrived: the first attempt to say so wins the race.
    pub fn commit(&self) {
        if self
            .race
            .winner
            .compare_exchange(NO_WINNER, self.attempt, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            let waker = self
                .race
                .waker
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some(w) = waker {
                w.wake();
            }
            if let Some(parent) = &self.race.parent {
                parent.commit();
            }
        }
    }
}

/// Why an attempt is being sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptKind {
    /// The call's first attempt.
    Original,
    /// Sent after an earlier attempt failed.
    Retry,
    /// Sent while an earlier attempt is still outstanding.
    Hedge,
}

/// Counters kept per call across all of its attempts, including attempts that a strategy
/// cancelled and therefore never returned an outcome.
#[derive(Debug, Default)]
pub struct CallMeter {
    attempts: AtomicU32,
    decisions: AtomicU32,
    replicas: AtomicU64,
    /// Streams the server did not process, and transparent retries, not yet reported: by
    /// [`Unprocessed`]'s fields, in order.
    unprocessed: [AtomicU32; 4],
    /// Streams that never left the client sent again, over the whole call.
    unsent_retries: AtomicU32,
    /// The call's one transparent retry of a stream that reached the server has been spent.
    seen_retry_spent: AtomicBool,
    /// An attempt of the call failed after reaching the server (or with its connection).
    failed: AtomicBool,
    /// Streams of the call that waited for a slot under the server's limit of concurrent
    /// streams, not yet reported.
    slot_waits: AtomicU32,
}

/// How it is known that the server did not process a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotProcessed {
    /// RST_STREAM(REFUSED_STREAM) before any response.
    Refused,
    /// Above the last stream id of the server's GOAWAY.
    GoneAway,
    /// It never left the client.
    Unsent,
}

/// Streams of a call the server did not process, and what became of them: each was sent
/// again at once (a transparent retry, not an attempt), or failed its attempt UNAVAILABLE.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unprocessed {
    /// Streams sent again at once (gRFC A6's transparent retries).
    pub retried: u32,
    /// Streams refused with RST_STREAM(REFUSED_STREAM) before any response.
    pub refused: u32,
    /// Streams above the last stream id of the server's GOAWAY.
    pub gone_away: u32,
    /// Streams that never left the client (the connection ended, or went away, first).
    pub unsent: u32,
}

impl Unprocessed {
    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        *self == Unprocessed::default()
    }
}

impl CallMeter {
    /// Counts one more attempt sent to the transport; returns how many were sent before it.
    pub fn count_attempt(&self) -> u32 {
        self.attempts.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts `n` attempts made on this call's behalf by others (its fan-out sub-calls).
    pub fn add_attempts(&self, n: u32) {
        self.attempts.fetch_add(n, Ordering::Relaxed);
    }

    /// Attempts sent so far.
    pub fn attempts(&self) -> u32 {
        self.attempts.load(Ordering::Relaxed)
    }

    /// Replicas this call's attempts went to, as a bit set (replica i is bit i mod 64).
    pub fn replicas_tried(&self) -> u64 {
        self.replicas.load(Ordering::Relaxed)
    }

    /// Notes that an attempt went to replica `i`.
    pub fn tried_replica(&self, i: usize) {
        self.replicas.fetch_or(1 << (i % 64), Ordering::Relaxed);
    }

    /// Numbers a layer's random decision about this call (0 for the first): keyed draws use it
    /// so that two decisions about the same call, by the same or stacked layers, never share
    /// a draw.
    pub fn next_decision(&self) -> u32 {
        self.decisions.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts a stream the server did not process.
    pub fn count_unprocessed(&self, how: NotProcessed) {
        let i = match how {
            NotProcessed::Refused => 1,
            NotProcessed::GoneAway => 2,
            NotProcessed::Unsent => 3,
        };
        self.unprocessed[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a transparent retry; for a stream that never left the client, returns how many
    /// such retries the call has made before this one.
    pub fn count_transparent(&self, unsent: bool) -> u32 {
        self.unprocessed[0].fetch_add(1, Ordering::Relaxed);
        if unsent {
            self.unsent_retries.fetch_add(1, Ordering::Relaxed)
        } else {
            0
        }
    }

    /// Streams that never left the client sent again so far.
    pub fn unsent_retries(&self) -> u32 {
        self.unsent_retries.load(Ordering::Relaxed)
    }

    /// Spends the call's one transparent retry of a stream that reached the server: `true`
    /// if it was still there.
    pub fn spend_seen_retry(&self) -> bool {
        !self.seen_retry_spent.swap(true, Ordering::AcqRel)
    }

    /// An attempt of the call failed (grpc-java spends its transparent retry then).
    pub fn attempt_failed(&self) {
        self.failed.store(true, Ordering::Relaxed);
    }

    /// Whether an attempt of the call has failed.
    pub fn any_failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Counts a stream of the call that waited in the client for a slot under the server's
    /// limit of concurrent streams (SETTINGS_MAX_CONCURRENT_STREAMS).
    pub fn waited_for_slot(&self) {
        self.slot_waits.fetch_add(1, Ordering::Relaxed);
    }

    /// The streams that waited for a slot since this was last taken, and none left.
    pub fn take_slot_waits(&self) -> u32 {
        self.slot_waits.swap(0, Ordering::Relaxed)
    }

    /// What was counted since the last time, taken (each attempt's end reports its share).
    pub fn take_unprocessed(&self) -> Unprocessed {
        let take = |i: usize| self.unprocessed[i].swap(0, Ordering::Relaxed);
        Unprocessed {
            retried: take(0),
            refused: take(1),
            gone_away: take(2),
            unsent: take(3),
        }
    }
}

/// A successful reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// Which attempt of this request id the backend saw (1 = the first).
    pub backend_attempt: u32,
    /// Stream messages received (0 for unary calls).
    pub messages: u32,
    /// A circuit breaker answered with a fallback instead of calling: the caller gets a
    /// degraded answer, counted as `fallback` and not as a success.
    pub fallback: bool,
}

/// A failed attempt or call: a gRPC status other than OK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The status code.
    pub code: Code,
    /// The server's `grpc-retry-pushback-ms`, if it sent one.
    pub pushback: Option<Pushback>,
    /// Where the status came from.
    pub source: FailureSource,
    /// Stream messages received before the failure (0 for unary calls).
    pub messages: u32,
    /// Response headers had arrived before the failure: gRFC A6 calls the RPC *committed*
    /// ("When Retries are Valid"), and a committed RPC is never retried. A server answers an
    /// error that comes before any message with Trailers-Only (no headers), so in practice a
    /// failed stream is committed once it has started, and a failed unary call never is.
    pub committed: bool,
}

/// Where a failure status came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureSource {
    /// The backend answered with it.
    Backend,
    /// The connection failed (refused, reset, closed); gRPC reports these as UNAVAILABLE.
    Transport,
    /// The client decided it locally: a deadline passed, a layer refused to send.
    Local,
    /// A per-attempt timeout cut the attempt (a retryable failure for Envoy-style retriers).
    AttemptTimeout,
}

impl Failure {
    /// A failure decided on the client side.
    pub fn local(code: Code) -> Self {
        Self {
            code,
            pushback: None,
            source: FailureSource::Local,
            messages: 0,
            committed: false,
        }
    }
}

/// What a strategy stack returns for a call or an attempt.
pub type Outcome = Result<Reply, Failure>;

/// What a strategy layer wraps: a service that takes a [`Call`] and answers an [`Outcome`]
/// with a future it can send (every layer, every transport, and a boxed stack).
pub trait CallService:
    tower::Service<Call, Response = Reply, Error = Failure, Future: Send + 'static>
{
}

impl<S> CallService for S
where
    S: tower::Service<Call, Response = Reply, Error = Failure>,
    S::Future: Send + 'static,
{
}

/// A boxed, sendable future: the future type of the strategy layers and the transports.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Implements `tower::Service<Call>` for a strategy layer or a transport from its inherent
/// `fn serve(&mut self, call: Call) -> BoxFuture<Outcome>`: every one answers with a [`Reply`],
/// fails with a [`Failure`], and is ready either when its inner service is (`ready = inner`)
/// or always (`ready = always`: it sends each attempt through a clone of its inner service,
/// which waits for readiness itself, or waits inside its calls).
///
/// A layer whose whole work on a call is one `async fn run(self, call: Call) -> Outcome` on a
/// clone of itself (the retry, hedging and fan-out layers: each call owns its own state) says
/// `serve = run` instead of writing `serve`.
///
/// ```ignore
/// call_service! {
///     impl<S> for Timeout<S>, ready = inner,
///     where S: Service<Call, Response = Reply, Error = Failure>, S::Future: Send + 'static,
/// }
/// call_service! {
///     impl<S> for FanOut<S>, ready = always, serve = run,
///     where S: CallService + Clone + Send + 'static,
/// }
/// ```
macro_rules! call_service {
    (
        $(impl<$($g:ident),*>)? for $ty:ty, ready = $ready:ident, serve = run
        $(, where $($bounds:tt)*)?
    ) => {
        impl$(<$($g),*>)? $ty
        $(where $($bounds)*)?
        {
            /// Its work on one call (its `Service::call`): [`Self::run`] on a clone.
            fn serve(&mut self, call: $crate::call::Call) -> $crate::call::BoxFuture<$crate::call::Outcome> {
                let this = self.clone();
                Box::pin(async move { this.run(call).await })
            }
        }
        $crate::call::call_service! {
            $(impl<$($g),*>)? for $ty, ready = $ready $(, where $($bounds)*)?
        }
    };
    ($(impl<$($g:ident),*>)? for $ty:ty, ready = $ready:ident $(, where $($bounds:tt)*)?) => {
        impl$(<$($g),*>)? tower::Service<$crate::call::Call> for $ty
        $(where $($bounds)*)?
        {
            type Response = $crate::call::Reply;
            type Error = $crate::call::Failure;
            type Future = $crate::call::BoxFuture<$crate::call::Outcome>;

            fn poll_ready(
                &mut self,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), $crate::call::Failure>> {
                $crate::call::call_service!(@ready $ready, self, cx)
            }

            fn call(&mut self, call: $crate::call::Call) -> Self::Future {
                self.serve(call)
            }
        }
    };
    (@ready inner, $self:ident, $cx:ident) => {
        $self.inner.poll_ready($cx)
    };
    (@ready always, $self:ident, $cx:ident) => {{
        let _ = $cx;
        std::task::Poll::Ready(Ok(()))
    }};
}

pub(crate) use call_service;

/// The status code of an outcome (`OK` for a reply).
pub fn outcome_code(outcome: &Outcome) -> Code {
    match outcome {
        Ok(_) => Code::Ok,
        Err(f) => f.code,
    }
}
