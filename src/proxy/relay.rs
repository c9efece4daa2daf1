//! A forwarded attempt's response, after its head: relayed to the client as the upstream
//! sends it.
//!
//! The common call's whole response (a unary call's message and trailers) has come with its
//! head, in the same read from the upstream: it is taken at once, the attempt ends there (its
//! worker given back, its upstream stream done), and the response body hands the client those
//! frames from memory ([`Relayed`]): no task, no channel. Otherwise (a response still
//! streaming, a request still being relayed, a brownout stretching the upstream's time) a task
//! of its own relays the rest ([`drive`]) through a channel of a few frames, so an upstream
//! faster than the client is held back by HTTP/2 flow control, not by memory; every wait ends
//! at the call's limit (its deadline, or `--max-call`), even while the client reads nothing.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::Code;

use super::attempt::{Attempt, Outcome, expiry};
use super::body::{RequestBody, Stopped};
use super::wire;
use crate::clock::{Clock, Elapsed};
use crate::protocol::header;
use crate::protocol::status::from_reset;
use crate::transport::http2::{BodyWriter, Event, Exchange};

/// Frames of a response held between the upstream and the client (each at most one DATA
/// frame's worth or a message): beyond them the upstream waits, by HTTP/2 flow control.
const RELAYED: usize = 4;

type Frames = mpsc::Sender<Frame<Bytes>>;

/// The body of the response whose head the upstream gave on `stream`: what has come already
/// at once (the whole response, usually, when the attempt ends here), the rest relayed by a
/// task of its own.
pub(super) fn start(
    mut attempt: Attempt,
    mut stream: Exchange,
    writer: BodyWriter,
    (stretch, held): (Stretch, Held),
) -> tonic::body::Body {
    let mut ready = Relayed::default();
    if attempt.body.finished() && stretch.factor <= 1.0 {
        let mut now = Context::from_waker(Waker::noop());
        while ready.len < RELAYED {
            let Poll::Ready(event) = stream.poll_next(&mut now) else {
                break;
            };
            match release(attempt.incoming.deadline.is_some(), Ok(event)) {
                Step::Skip => {}
                Step::End(outcome) => {
                    attempt.end(outcome);
                    return tonic::body::Body::new(ready);
                }
                Step::Frame(frame, end) => {
                    ready.push(frame);
                    if let Some(outcome) = end {
                        attempt.end(outcome);
                        return tonic::body::Body::new(ready);
                    }
                }
            }
        }
    }
    let (tx, rx) = mpsc::channel(RELAYED);
    ready.rest = Some(rx);
    tokio::spawn(drive(attempt, stream, writer, (stretch, held), tx));
    tonic::body::Body::new(ready)
}

/// A response body: frames in hand, then those of the relay's channel, if any.
#[derive(Default)]
struct Relayed {
    frames: [Option<Frame<Bytes>>; RELAYED],
    /// The next frame to give, and the frames held.
    next: usize,
    len: usize,
    rest: Option<mpsc::Receiver<Frame<Bytes>>>,
}

impl Relayed {
    fn push(&mut self, frame: Frame<Bytes>) {
        self.frames[self.len] = Some(frame);
        self.len += 1;
    }
}

impl http_body::Body for Relayed {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if this.next < this.len {
            this.next += 1;
            return Poll::Ready(this.frames[this.next - 1].take().map(Ok));
        }
        match &mut this.rest {
            Some(rx) => rx.poll_recv(cx).map(|frame| frame.map(Ok)),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.next == self.len && self.rest.is_none()
    }
}

/// Relays the rest of the attempt's response to the client, and the rest of the client's
/// request body to the upstream, then ends the attempt.
async fn drive(
    mut attempt: Attempt,
    mut stream: Exchange,
    writer: BodyWriter,
    (stretch, mut held): (Stretch, Held),
    tx: Frames,
) {
    let outcome = relay(
        &mut attempt,
        (&mut stream, &writer),
        &tx,
        (&stretch, &mut held),
    )
    .await;
    attempt.end(outcome);
}

async fn relay(
    attempt: &mut Attempt,
    (stream, writer): (&mut Exchange, &BodyWriter),
    tx: &Frames,
    (stretch, held): (&Stretch, &mut Held),
) -> Outcome {
    let Attempt {
        proxy,
        body,
        limit,
        incoming,
        ..
    } = attempt;
    let (clock, limit) = (&proxy.clock, *limit);
    loop {
        let (event, at) = match held.pop_front() {
            Some((event, at)) => (Ok(event), at),
            None => match next_event(tx, (stream, writer), body, clock, limit).await {
                Ok(Ok(event)) => (Ok(event), stretch.came(clock)),
                Ok(Err(outcome)) => return outcome,
                Err(elapsed) => (Err(elapsed), stretch.t0),
            },
        };
        if let Ok(e) = &event {
            let hold = stretch.hold(at, stream, held, !e.ends(), clock, limit);
            let waited = tokio::select! {
                biased;
                () = tx.closed() => return Outcome::Gone,
                waited = hold => waited,
            };
            if waited.is_err() {
                let (code, message) = expiry(incoming.deadline.is_some());
                let fields = wire::status_fields(code, message, None);
                trailers(clock, tx, Frame::trailers(fields)).await;
                return Outcome::Local(code);
            }
        }
        match release(incoming.deadline.is_some(), event) {
            Step::Skip => {}
            Step::End(outcome) => return outcome,
            Step::Frame(frame, Some(outcome @ Outcome::Local(_))) => {
                trailers(clock, tx, frame).await;
                return outcome;
            }
            Step::Frame(frame, end) => {
                // A client that does not read holds only its own stream, up to the limit.
                match clock.timeout_at(limit, tx.send(frame)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return Outcome::Gone,
                    Err(_) => return Outcome::Local(Code::DeadlineExceeded),
                }
                if let Some(outcome) = end {
                    return outcome;
                }
            }
        }
    }
}

/// The upstream stream's next event (`Err` at the call's limit), the rest of the client's
/// request relayed meanwhile; `Ok(Err(outcome))` when the call ends first (the client gone, a
/// byte budget: its trailers sent).
async fn next_event(
    tx: &Frames,
    (stream, writer): (&mut Exchange, &BodyWriter),
    body: &mut RequestBody,
    clock: &Clock,
    limit: Instant,
) -> Result<Result<Event, Outcome>, Elapsed> {
    tokio::select! {
        biased;
        () = tx.closed() => Ok(Err(Outcome::Gone)),
        e = clock.timeout_at(limit, stream.next()) => e.map(Ok),
        stopped = body.relay(writer), if !body.finished() => match stopped {
            Stopped::Over(_) => {
                let fields = wire::status_fields(
                    Code::ResourceExhausted,
                    "the request went over the proxy's byte budget",
                    None,
                );
                trailers(clock, tx, Frame::trailers(fields)).await;
                Ok(Err(Outcome::Local(Code::ResourceExhausted)))
            }
            Stopped::Broken => Ok(Err(Outcome::Gone)),
        },
    }
}

/// What an upstream event (or the call's limit, reached) is for the client.
enum Step {
    /// A frame, and the attempt's outcome if it is the last.
    Frame(Frame<Bytes>, Option<Outcome>),
    /// Nothing (a second head).
    Skip,
    /// The response's end, with no frame (the upstream ended it without trailers).
    End(Outcome),
}

fn release(deadline: bool, event: Result<Event, Elapsed>) -> Step {
    let end = |code: Code, message: &str| {
        let fields = wire::status_fields(code, message, None);
        Frame::trailers(fields)
    };
    match event {
        Ok(Event::Data(bytes)) => Step::Frame(wire::data(bytes.freeze()), None),
        Ok(Event::Trailers(block)) => {
            let (_, fields) = wire::response_fields(&block);
            let code = fields
                .get(header::STATUS)
                .map_or(Code::Unknown, |c| Code::from_bytes(c.as_bytes()));
            Step::Frame(
                Frame::trailers(fields),
                Some(Outcome::Forwarded(Some(code))),
            )
        }
        Ok(Event::End) => Step::End(Outcome::Forwarded(None)),
        Ok(Event::Head(_)) => Step::Skip,
        Ok(other) => {
            let code = lost(&other);
            Step::Frame(
                end(code, "upstream stream lost"),
                Some(Outcome::Forwarded(Some(code))),
            )
        }
        Err(Elapsed) => {
            let (code, message) = expiry(deadline);
            Step::Frame(end(code, message), Some(Outcome::Local(code)))
        }
    }
}

/// Ends a relayed response with the proxy's own trailers (given up after 100 ms if the client
/// does not read).
async fn trailers(clock: &Clock, tx: &Frames, frame: Frame<Bytes>) {
    let _ = clock
        .timeout(Duration::from_millis(100), tx.send(frame))
        .await;
}

/// A brownout's stretch of the upstream's time: an event that came at `t0 + d` is released
/// at `t0 + factor·d`.
pub(super) struct Stretch {
    pub(super) t0: Instant,
    pub(super) factor: f64,
}

/// Events read from the upstream before their release, each with when it came (a brownout
/// holds them: [`Stretch::hold`]).
pub(super) type Held = VecDeque<(Event, Instant)>;

impl Stretch {
    /// When an event read now came, for its release (`t0` when nothing is stretched: no clock
    /// read).
    pub(super) fn came(&self, clock: &Clock) -> Instant {
        if self.factor <= 1.0 {
            self.t0
        } else {
            clock.now()
        }
    }

    /// Waits until the release of an event that came at `at`, never past `limit` (`Err`:
    /// the call's limit came first), reading meanwhile what else comes on `stream` (while it
    /// is `open`) into `held`, at most [`RELAYED`] events, each with when it came: so that
    /// each event is stretched once, from its own time, not from when the one before it was
    /// let go (which would stretch a unary answer's message k² and its trailers k³).
    pub(super) async fn hold(
        &self,
        at: Instant,
        stream: &mut Exchange,
        held: &mut Held,
        open: bool,
        clock: &Clock,
        limit: Instant,
    ) -> Result<(), Elapsed> {
        if self.factor <= 1.0 {
            return Ok(());
        }
        let d = at.saturating_duration_since(self.t0);
        let until = self.t0 + d.mul_f64(self.factor.min(1e6));
        let mut sleep = clock.sleep_until(until.min(limit));
        loop {
            let more = open && held.len() < RELAYED && !held.back().is_some_and(|(e, _)| e.ends());
            tokio::select! {
                biased;
                () = &mut sleep => return if until > limit { Err(Elapsed) } else { Ok(()) },
                e = stream.next(), if more => held.push_back((e, clock.now())),
            }
        }
    }
}

/// The status a gRPC client derives from a stream that ended without one
/// (PROTOCOL-HTTP2.md, "Errors"): a reset by its reason, a lost connection UNAVAILABLE.
pub(super) fn lost(event: &Event) -> Code {
    match event {
        Event::Reset(reason) => from_reset(*reason),
        Event::Broken(_) => Code::Unavailable,
        _ => Code::Internal,
    }
}
