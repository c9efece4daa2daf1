//! One attempt through the proxy: read the request, meet the fault model, forward or answer,
//! relay the upstream's response.
//!
//! The attempt runs in a task of its own (it holds its worker, an `Arc` of the backend, until
//! the upstream has answered); the hyper service waits for the response head only. A client
//! that gives up (RST_STREAM, or drops the response body) is seen while the attempt waits in
//! the backend (stall, queue), while it waits for the upstream's head, and while the body is
//! relayed: the upstream stream is then dropped, which resets it with CANCEL, and the work is
//! counted wasted as the backend counts an abandoned execution.
//!
//! A stream the upstream did not process (above its GOAWAY's last stream id, refused, or never
//! written before its connection went away) is sent again once, on the next connection ready,
//! inside the same attempt: the upstream never saw it, so the client does not either, and the
//! fault model counts one attempt (docs/proxy.md, "When the upstream goes away").
//!
//! Latency: by default the upstream's own, stretched by a brownout's latency factor `k`: an
//! upstream event at `t0 + d` is released at `t0 + k·d` (`t0` when the attempt was forwarded).
//! With `--latency profile` the drawn service time (the profile's distribution, brownouts
//! included) is waited before forwarding, on top of the upstream's time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tonic::Code;

use super::body::{RequestBody, Stopped};
use super::bounds::{self, CallSlot};
use super::faults::{self, OutageMode};
use super::{Proxy, wire};
use crate::backend::serving::InProgress;
use crate::backend::{Admitted, Backend, Incoming};
use crate::protocol::status::{code_name, from_reset};
use crate::protocol::{header, timeout};
use crate::transport::connection::Unavailable;
use crate::transport::http2::{self, Event};

/// Frames of a response held between the upstream and the client (each at most one DATA
/// frame's worth or a message): beyond them the upstream waits, by HTTP/2 flow control.
const RELAYED: usize = 4;

type Response = http::Response<tonic::body::Body>;
type Frames = mpsc::Sender<Result<http_body::Frame<Bytes>, std::convert::Infallible>>;

/// Serves one attempt: the response head (or whole answer) it gives. `bound` is the call's
/// place among the calls in progress, its request bytes' account and its place among its
/// connection's calls (what the idle watchdog reads), held until it ends.
pub(super) async fn serve(
    proxy: Proxy,
    connection: (u64, u64),
    request: http::Request<hyper::body::Incoming>,
    bound: (CallSlot, bounds::Bytes, InProgress),
) -> Reply {
    let (slot, held, call) = bound;
    let (parts, body) = request.into_parts();
    let now = proxy.clock.now();
    let deadline = wire::sent_timeout(&parts.headers).map(|t| now + t);
    let limit = deadline.unwrap_or(now + proxy.options.max_call);
    let mut body = RequestBody::new(body, held);
    if wire::keyed_by_message(&parts.headers, parts.uri.path()) {
        match proxy.clock.timeout_at(limit, body.first_message()).await {
            Ok(Ok(())) => {}
            Ok(Err(refused)) => return Reply::Answer(refused),
            Err(_) => return Reply::Answer(expired(deadline.is_some())),
        }
    }
    let incoming = wire::incoming(
        &parts.headers,
        parts.uri.path(),
        body.read_so_far(),
        connection,
        deadline,
    );
    let backends = proxy.shared.current();
    let replica = parts
        .headers
        .get(header::REPLICA)
        .and_then(|v| v.to_str().ok())
        .map_or(Some(0), |v| v.parse::<usize>().ok());
    let Some(backend) = replica.and_then(|r| backends.get(r)).cloned() else {
        return Reply::Answer(wire::status_response(
            Code::InvalidArgument,
            "no such replica",
            None,
        ));
    };
    let (head, answered) = oneshot::channel();
    let forward = Forward {
        proxy,
        backend,
        incoming,
        parts,
        body,
        limit,
        resent: false,
        _bound: (slot, call),
    };
    tokio::spawn(forward.run(Head(Some(head))));
    answered.await.unwrap_or_else(|_| {
        Reply::Answer(wire::status_response(
            Code::Internal,
            "the proxy's attempt ended unanswered",
            None,
        ))
    })
}

/// The answer to a wait that reached the call's deadline, or the proxy's own limit.
fn expired(deadline: bool) -> Response {
    if deadline {
        wire::status_response(
            Code::DeadlineExceeded,
            "deadline exceeded in the proxy",
            None,
        )
    } else {
        wire::status_response(
            Code::Unavailable,
            "the upstream took longer than --max-call",
            None,
        )
    }
}

/// What the hyper service does with a stream: answer it, reset it, or close its connection.
pub(super) enum Reply {
    /// The response (its head; a body may follow).
    Answer(Response),
    /// RST_STREAM with this HTTP/2 error code.
    Reset(u32),
    /// Close the connection at once.
    Close,
}

/// Where the response head goes: to the hyper service, which waits for it once.
struct Head(Option<oneshot::Sender<Reply>>);

impl Head {
    /// Gives the response (the first one given counts).
    fn give(&mut self, response: Response) {
        self.reply(Reply::Answer(response));
    }

    /// Gives the reply (the first one given counts).
    fn reply(&mut self, reply: Reply) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(reply);
        }
    }

    /// Completes when the client has gone before the head was given (its service future was
    /// dropped); never after it was given.
    async fn closed(&mut self) {
        match &mut self.0 {
            Some(tx) => tx.closed().await,
            None => std::future::pending().await,
        }
    }
}

/// One attempt's work, in its own task.
struct Forward {
    proxy: Proxy,
    backend: Arc<Backend>,
    incoming: Incoming,
    parts: http::request::Parts,
    /// The request's body (and its bytes held against the budgets).
    body: RequestBody,
    /// The call's deadline, or the proxy's limit.
    limit: Instant,
    /// A stream of this attempt the upstream did not process has been sent again.
    resent: bool,
    /// The call's place, given back when the attempt ends.
    _bound: (CallSlot, InProgress),
}

/// How an attempt ended, for the log line.
enum Outcome {
    /// Answered by the proxy with this status (fault model, or no upstream).
    Local(Code),
    /// Forwarded; the upstream's status if one was seen.
    Forwarded(Option<Code>),
    /// Answered with this HTTP status, no gRPC status (Envoy's HTTP abort).
    Http(u16),
    /// The client went away.
    Gone,
}

impl Forward {
    async fn run(mut self, mut head: Head) {
        let backend = Arc::clone(&self.backend);
        let arrival = backend.arrive(&self.incoming);
        if self.proxy.options.envoy_headers
            && let Some(code) = self.envoy(&mut head).await
        {
            return self.log(arrival.count, code);
        }
        let decided = tokio::select! {
            d = self.proxy.clock.timeout_at(self.limit, backend.admit(&self.incoming, arrival)) => d,
            () = head.closed() => return self.log(arrival.count, Outcome::Gone),
        };
        let admitted = match decided {
            Err(_) => {
                head.give(expired(self.incoming.deadline.is_some()));
                return self.log(arrival.count, Outcome::Local(Code::DeadlineExceeded));
            }
            Ok(Err(answer)) if self.shown_otherwise(&answer, &mut head) => {
                return self.log(answer.attempt, Outcome::Local(answer.code));
            }
            Ok(Err(answer)) => {
                let message = format!("attempt {} (resilbench proxy)", answer.attempt);
                head.give(wire::status_response(
                    answer.code,
                    &message,
                    answer.pushback.as_ref(),
                ));
                return self.log(answer.attempt, Outcome::Local(answer.code));
            }
            Ok(Ok(admitted)) => admitted,
        };
        let gone = AtomicBool::new(false);
        let count = admitted.count;
        let outcome = self.admitted(&admitted, &mut head, &gone).await;
        self.backend.finish_work(&self.incoming, &gone);
        drop(admitted);
        self.log(count, outcome);
    }

    /// An outage answer shown as the `--outage` mode says (a reset stream, a closed
    /// connection) rather than as its status: whether it was.
    fn shown_otherwise(&self, answer: &crate::backend::Answer, head: &mut Head) -> bool {
        let reply = match self.proxy.options.outage {
            OutageMode::Status => return false,
            OutageMode::Reset(code) => Reply::Reset(code),
            OutageMode::Refuse => Reply::Close,
        };
        if self.backend.outage_now() != Some(answer.code) {
            return false;
        }
        head.reply(reply);
        true
    }

    /// Envoy's fault headers: the delay they ask for, then their abort, if any (its outcome).
    async fn envoy(&self, head: &mut Head) -> Option<Outcome> {
        let fault = faults::envoy(
            &self.parts.headers,
            self.proxy.seed,
            self.incoming.request_key,
            self.incoming.draw_attempt(),
        );
        if let Some(delay) = fault.delay {
            let clock = &self.proxy.clock;
            tokio::select! {
                waited = clock.timeout_at(self.limit, clock.sleep(delay)) => if waited.is_err() {
                    head.give(expired(self.incoming.deadline.is_some()));
                    return Some(Outcome::Local(Code::DeadlineExceeded));
                },
                () = head.closed() => return Some(Outcome::Gone),
            }
        }
        let counts = &self.proxy.counts;
        if let Some(code) = fault.grpc_abort {
            counts.envoy_aborts.fetch_add(1, Ordering::Relaxed);
            let code = Code::from_i32(i32::try_from(code).unwrap_or(i32::MAX));
            head.give(wire::status_response(
                code,
                "fault injected (x-envoy-fault-abort-grpc-request)",
                None,
            ));
            return Some(Outcome::Local(code));
        }
        if let Some(status) = fault.http_abort {
            counts.envoy_aborts.fetch_add(1, Ordering::Relaxed);
            head.give(wire::http_status_response(status));
            return Some(Outcome::Http(status));
        }
        None
    }

    /// The attempt has its worker: answer the drawn failure, or forward.
    async fn admitted(
        &mut self,
        admitted: &Admitted<'_>,
        head: &mut Head,
        gone: &AtomicBool,
    ) -> Outcome {
        let draw = &admitted.draw;
        if draw.code != Code::Ok || self.proxy.options.added_latency {
            let wait = self
                .proxy
                .clock
                .timeout_at(self.limit, self.proxy.clock.sleep(draw.latency));
            tokio::select! {
                waited = wait => if waited.is_err() {
                    head.give(expired(self.incoming.deadline.is_some()));
                    return Outcome::Local(Code::DeadlineExceeded);
                },
                () = head.closed() => {
                    gone.store(true, Ordering::Release);
                    return Outcome::Gone;
                }
            }
        }
        if draw.code != Code::Ok {
            let message = format!("attempt {} (resilbench proxy)", admitted.count);
            head.give(wire::status_response(
                draw.code,
                &message,
                draw.pushback.as_ref(),
            ));
            return Outcome::Local(draw.code);
        }
        self.forward(head, gone).await
    }

    /// Sends the attempt upstream and relays the answer.
    async fn forward(&mut self, head: &mut Head, gone: &AtomicBool) -> Outcome {
        let proxy = self.proxy.clone();
        let (clock, counts) = (&proxy.clock, &proxy.counts);
        if !self.resent {
            counts.forwarded.fetch_add(1, Ordering::Relaxed);
        }
        let answer = |head: &mut Head, r: Response| head.give(r);
        let ready = async {
            match &proxy.upstream {
                Some(upstream) => upstream.ready().await,
                None => Err(Unavailable("the proxy has no upstream connections".into())),
            }
        };
        let handle = match clock.timeout_at(self.limit, ready).await {
            Ok(Ok(handle)) => handle,
            Ok(Err(unavailable)) => {
                counts.unreachable.fetch_add(1, Ordering::Relaxed);
                let message = format!("upstream unreachable: {}", unavailable.0);
                answer(
                    head,
                    wire::status_response(Code::Unavailable, &message, None),
                );
                return Outcome::Local(Code::Unavailable);
            }
            Err(_) => {
                answer(head, expired(self.incoming.deadline.is_some()));
                return Outcome::Local(Code::DeadlineExceeded);
            }
        };
        let left = self
            .incoming
            .deadline
            .map(|d| timeout::write(d.saturating_duration_since(clock.now())));
        let fields = wire::forwarded_fields(
            &self.parts.headers,
            left.as_ref(),
            proxy.options.envoy_headers,
        );
        if let Err(refused) = self.body.read_ready() {
            // Over a budget (RESOURCE_EXHAUSTED), or the client's body broke (CANCELLED).
            let code = wire::code_of(&refused);
            if code == Code::Cancelled {
                counts.cancelled.fetch_add(1, Ordering::Relaxed);
            }
            answer(head, *refused);
            return Outcome::Local(code);
        }
        let (start, whole) = self.body.take_start();
        let request = http2::Request {
            path: self.parts.uri.path().as_bytes(),
            authority: &proxy.options.authority,
            https: proxy.options.https,
            fields: &fields,
            body: start,
            end: whole,
        };
        let mut stream = match clock.timeout_at(self.limit, handle.open(request)).await {
            Ok(Ok(stream)) => stream,
            // Never sent: the connection went away (GOAWAY) or closed while the stream waited.
            Ok(Err(_)) if self.send_again(counts) => {
                return Box::pin(self.forward(head, gone)).await;
            }
            Ok(Err(why)) => {
                counts.unreachable.fetch_add(1, Ordering::Relaxed);
                let message = format!("upstream unreachable: {why}");
                answer(
                    head,
                    wire::status_response(Code::Unavailable, &message, None),
                );
                return Outcome::Local(Code::Unavailable);
            }
            Err(_) => {
                answer(head, expired(self.incoming.deadline.is_some()));
                return Outcome::Local(Code::DeadlineExceeded);
            }
        };
        let factor = if proxy.options.added_latency {
            1.0
        } else {
            self.backend.latency_factor()
        };
        let stretch = Stretch {
            t0: clock.now(),
            factor,
        };
        let writer = stream.writer();
        let body = &mut self.body;
        let first = tokio::select! {
            e = clock.timeout_at(self.limit, stream.next()) => e,
            () = head.closed() => {
                gone.store(true, Ordering::Release);
                counts.cancelled.fetch_add(1, Ordering::Relaxed);
                return Outcome::Gone;
            }
            stopped = body.relay(&writer), if !body.finished() => {
                gone.store(true, Ordering::Release);
                return match stopped {
                    Stopped::Over(refused) => {
                        answer(head, *refused);
                        Outcome::Local(Code::ResourceExhausted)
                    }
                    Stopped::Broken => {
                        counts.cancelled.fetch_add(1, Ordering::Relaxed);
                        Outcome::Gone
                    }
                };
            }
        };
        stretch.wait(clock).await;
        let block = match first {
            Ok(Event::Head(block)) => {
                self.body.forget();
                block
            }
            Ok(Event::Broken(lost))
                if lost.processed.not_processed() && self.send_again(counts) =>
            {
                drop((writer, stream));
                return Box::pin(self.forward(head, gone)).await;
            }
            Ok(other) => {
                let code = lost(&other);
                let message = match &other {
                    Event::Broken(lost) => format!("upstream stream lost: {lost}"),
                    _ => "upstream stream lost".to_string(),
                };
                answer(head, wire::status_response(code, &message, None));
                return Outcome::Forwarded(Some(code));
            }
            Err(_) => {
                gone.store(true, Ordering::Release);
                answer(head, expired(self.incoming.deadline.is_some()));
                return Outcome::Local(Code::DeadlineExceeded);
            }
        };
        let (status, fields) = wire::response_fields(&block);
        if let Some(code) = fields.get(header::STATUS) {
            // Trailers-Only: the whole answer is in the head.
            let code = Code::from_bytes(code.as_bytes());
            answer(head, wire::response_with(status, fields, wire::no_body()));
            return Outcome::Forwarded(Some(code));
        }
        let (tx, rx) = mpsc::channel(RELAYED);
        let body = http_body_util::StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx));
        answer(
            head,
            wire::response_with(status, fields, tonic::body::Body::new(body)),
        );
        let outcome = self.relay(&mut stream, &writer, &tx, &stretch).await;
        match outcome {
            Outcome::Gone => {
                gone.store(true, Ordering::Release);
                counts.cancelled.fetch_add(1, Ordering::Relaxed);
            }
            // The proxy ended the call itself (its deadline, a byte budget): the upstream
            // stream is reset, its work abandoned, as when it happens before the head.
            Outcome::Local(_) => gone.store(true, Ordering::Release),
            Outcome::Forwarded(_) | Outcome::Http(_) => {}
        }
        outcome
    }

    /// Whether a stream of this attempt that the upstream did not process (RFC 9113 6.8 and
    /// 8.7: above a GOAWAY's last stream id, refused, or never written) is sent again: once
    /// per attempt, on the next connection ready (after a GOAWAY, the one its keeper opens),
    /// as Envoy's `retry_on: refused-stream` does, and only while the proxy still has the
    /// whole request sent so far (what went with its HEADERS and at most
    /// [`super::body::KEPT`] bytes relayed after them: [`RequestBody::restart`]). The
    /// upstream never saw it, so the client sees nothing of it; otherwise the attempt fails
    /// UNAVAILABLE.
    fn send_again(&mut self, counts: &super::Counts) -> bool {
        if self.resent || !self.body.restart() {
            return false;
        }
        self.resent = true;
        counts.resent.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Relays the upstream's messages and trailers to the client, and the rest of the
    /// client's request body to the upstream.
    async fn relay(
        &mut self,
        stream: &mut http2::Exchange,
        writer: &http2::BodyWriter,
        tx: &Frames,
        stretch: &Stretch,
    ) -> Outcome {
        let clock = &self.proxy.clock;
        let body = &mut self.body;
        loop {
            let event = tokio::select! {
                e = clock.timeout_at(self.limit, stream.next()) => e,
                () = tx.closed() => return Outcome::Gone,
                stopped = body.relay(writer), if !body.finished() => match stopped {
                    Stopped::Over(_) => {
                        let fields = wire::status_fields(
                            Code::ResourceExhausted,
                            "the request went over the proxy's byte budget",
                            None,
                        );
                        trailers(clock, tx, fields).await;
                        return Outcome::Local(Code::ResourceExhausted);
                    }
                    Stopped::Broken => return Outcome::Gone,
                },
            };
            stretch.wait(clock).await;
            let (frame, end) = match event {
                Ok(Event::Data(bytes)) => (wire::data(bytes.freeze()), None),
                Ok(Event::Trailers(block)) => {
                    let (_, fields) = wire::response_fields(&block);
                    let code = fields
                        .get(header::STATUS)
                        .map_or(Code::Unknown, |c| Code::from_bytes(c.as_bytes()));
                    (
                        http_body::Frame::trailers(fields),
                        Some(Outcome::Forwarded(Some(code))),
                    )
                }
                Ok(Event::End) => return Outcome::Forwarded(None),
                Ok(Event::Head(_)) => continue,
                Ok(other) => {
                    let code = lost(&other);
                    let fields = wire::status_fields(code, "upstream stream lost", None);
                    (
                        http_body::Frame::trailers(fields),
                        Some(Outcome::Forwarded(Some(code))),
                    )
                }
                Err(_) => {
                    let (code, message) = if self.incoming.deadline.is_some() {
                        (Code::DeadlineExceeded, "deadline exceeded in the proxy")
                    } else {
                        (
                            Code::Unavailable,
                            "the upstream took longer than --max-call",
                        )
                    };
                    trailers(clock, tx, wire::status_fields(code, message, None)).await;
                    return Outcome::Local(code);
                }
            };
            // A client that does not read holds only its own stream, up to the limit.
            match clock.timeout_at(self.limit, tx.send(Ok(frame))).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Outcome::Gone,
                Err(_) => return Outcome::Local(Code::DeadlineExceeded),
            }
            if let Some(outcome) = end {
                return outcome;
            }
        }
    }

    fn log(&self, attempt: u32, outcome: Outcome) {
        if !self.proxy.options.log_attempts {
            return;
        }
        let at = self
            .proxy
            .clock
            .now()
            .saturating_duration_since(self.proxy.since)
            .as_secs_f64();
        let what = match outcome {
            Outcome::Local(code) => format!("answered {}", code_name(code)),
            Outcome::Forwarded(Some(code)) => format!("forwarded, upstream {}", code_name(code)),
            Outcome::Forwarded(None) => "forwarded, upstream ended without a status".into(),
            Outcome::Http(status) => format!("answered HTTP {status}"),
            Outcome::Gone => "client gone".into(),
        };
        let again = if self.resent {
            " (sent upstream again: the upstream had not processed its first stream)"
        } else {
            ""
        };
        eprintln!(
            "+{at:.3}s {} key={:016x} attempt={attempt} grpc-previous-rpc-attempts={} {what}{again}",
            self.parts.uri.path(),
            self.incoming.request_key,
            self.incoming
                .previous_attempts
                .map_or_else(|| "absent".to_string(), |n| n.to_string()),
        );
    }
}

/// Ends a relayed response with the proxy's own trailers (given up after 100 ms if the client
/// does not read).
async fn trailers(clock: &crate::clock::Clock, tx: &Frames, fields: http::HeaderMap) {
    let frame = http_body::Frame::trailers(fields);
    let _ = clock
        .timeout(Duration::from_millis(100), tx.send(Ok(frame)))
        .await;
}

/// A brownout's stretch of the upstream's time: an event at `t0 + d` is released at
/// `t0 + factor·d`.
struct Stretch {
    t0: Instant,
    factor: f64,
}

impl Stretch {
    async fn wait(&self, clock: &crate::clock::Clock) {
        if self.factor <= 1.0 {
            return;
        }
        let d = clock.now().saturating_duration_since(self.t0);
        let stretched = d.mul_f64(self.factor.min(1e6));
        clock.sleep_until(self.t0 + stretched).await;
    }
}

/// The status a gRPC client derives from a stream that ended without one
/// (PROTOCOL-HTTP2.md, "Errors"): a reset by its reason, a lost connection UNAVAILABLE.
fn lost(event: &Event) -> Code {
    match event {
        Event::Reset(reason) => from_reset(*reason),
        Event::Broken(_) => Code::Unavailable,
        _ => Code::Internal,
    }
}
