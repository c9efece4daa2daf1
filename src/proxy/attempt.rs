//! One attempt through the proxy: read the request, meet the fault model, forward or answer;
//! the response's relay is [`super::relay`]'s.
//!
//! The attempt runs in the hyper service's future (the stream's own task) up to the response
//! head, and what follows the head in the response body ([`super::relay`]): no task of its
//! own, no channel between it and the client's stream for the common call, whose whole
//! response has come with its head. It holds its worker (the backend's) until the upstream
//! has answered. A client that gives up (RST_STREAM, or drops the response body) drops the
//! attempt wherever it is (waiting in the backend, a stall, the queue, the upstream): the
//! upstream stream, if there is one, is then reset with CANCEL, and [`Attempt`]'s drop
//! counts the work wasted as the backend counts an abandoned execution.
//!
//! A stream the upstream did not process (above its GOAWAY's last stream id, refused, or never
//! written before its connection went away) is sent again once, on a connection ready,
//! inside the same attempt: the upstream never saw it, so the client does not either, and the
//! fault model counts one attempt (docs/proxy.md, "When the upstream goes away").
//!
//! Latency: by default the upstream's own, stretched by a brownout's latency factor `k`: an
//! upstream event at `t0 + d` is released at `t0 + k·d` (`t0` when the attempt was forwarded).
//! With `--latency profile` the drawn service time (the profile's distribution, brownouts
//! included) is waited before forwarding, on top of the upstream's time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::time::Instant;
use tonic::Code;

use super::body::{RequestBody, Stopped};
use super::bounds::{self, CallSlot};
use super::faults::{self, OutageMode};
use super::relay::{self, Held, Stretch};
use super::{Proxy, wire};
use crate::backend::serving::InProgress;
use crate::backend::{Backend, HeldWorker, Incoming};
use crate::profile::backend::PushbackValues;
use crate::protocol::status::code_name;
use crate::protocol::{header, timeout};
use crate::transport::connection::Unavailable;
use crate::transport::http2::{self, Event};

type Response = http::Response<tonic::body::Body>;

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
    let attempt = Attempt {
        proxy,
        backend,
        incoming,
        parts,
        body,
        limit,
        resent: false,
        forwarded: false,
        worker: None,
        count: 0,
        stage: Stage::Deciding,
        _bound: (slot, call),
    };
    attempt.run().await
}

/// The answer to a wait that reached the call's deadline, or the proxy's own limit.
fn expired(deadline: bool) -> Response {
    let (code, message) = expiry(deadline);
    wire::status_response(code, message, None)
}

/// The answer the fault model drew for attempt `attempt` (its status, and pushback where the
/// profile says).
fn drawn(code: Code, attempt: u32, pushback: Option<&PushbackValues>) -> Response {
    let message = format!("attempt {attempt} (resilbench proxy)");
    wire::status_response(code, &message, pushback)
}

/// The status of a wait that reached the call's deadline, or the proxy's own limit.
pub(super) fn expiry(deadline: bool) -> (Code, &'static str) {
    if deadline {
        (Code::DeadlineExceeded, "deadline exceeded in the proxy")
    } else {
        (
            Code::Unavailable,
            "the upstream took longer than --max-call",
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

/// How far an attempt has gone: what its end (or its drop, the client gone) accounts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Before the backend's decision.
    Deciding,
    /// Holding a worker, not (or no longer) with a stream upstream.
    Admitted,
    /// With a stream upstream.
    Forwarded,
    /// Ended and accounted for.
    Ended,
}

/// One attempt's state, owned by the hyper service's future up to the response head, then by
/// the response's relay.
pub(super) struct Attempt {
    pub(super) proxy: Proxy,
    backend: Arc<Backend>,
    pub(super) incoming: Incoming,
    parts: http::request::Parts,
    /// The request's body (and its bytes held against the budgets).
    pub(super) body: RequestBody,
    /// The call's deadline, or the proxy's limit.
    pub(super) limit: Instant,
    /// A stream of this attempt the upstream did not process is to be sent again (once;
    /// it was, if the attempt then reached `Stage::Forwarded`).
    resent: bool,
    /// Counted `forwarded` (once: a stream sent again is counted `resent`).
    forwarded: bool,
    /// The backend's worker, from admission until the attempt ends.
    worker: Option<HeldWorker>,
    /// The attempt number the log line reports.
    count: u32,
    stage: Stage,
    /// The call's place, given back when the attempt ends.
    _bound: (CallSlot, InProgress),
}

/// How an attempt ended, for the log line and the backend's figures.
pub(super) enum Outcome {
    /// Answered by the proxy with this status (fault model, no upstream, the call's deadline).
    Local(Code),
    /// Forwarded; the upstream's status if one was seen.
    Forwarded(Option<Code>),
    /// Answered with this HTTP status, no gRPC status (Envoy's HTTP abort).
    Http(u16),
    /// The client went away.
    Gone,
}

/// What forwarding gave: the attempt's answer, or the upstream's response head with the stream
/// that brings the rest.
enum Forwarded {
    Answer(Response),
    Head {
        status: u16,
        fields: http::HeaderMap,
        stream: http2::Exchange,
        writer: http2::BodyWriter,
        /// A brownout's stretch, and the events read while the head was held.
        stretch: (Stretch, Held),
    },
}

impl Attempt {
    async fn run(mut self) -> Reply {
        let backend = Arc::clone(&self.backend);
        let arrival = backend.arrive(&self.incoming);
        self.count = arrival.count;
        if self.proxy.options.envoy_headers
            && let Some((response, outcome)) = self.envoy().await
        {
            self.end(outcome);
            return Reply::Answer(response);
        }
        let clock = &self.proxy.clock;
        let admitted = match clock
            .timeout_at(self.limit, backend.admit(&self.incoming, arrival))
            .await
        {
            Err(_) => return Reply::Answer(self.expire()),
            Ok(Err(answer)) => {
                self.count = answer.attempt;
                // An outage shown as the `--outage` mode says, rather than as its status.
                let reply = match self.proxy.options.outage {
                    OutageMode::Status => None,
                    OutageMode::Reset(code) => Some(Reply::Reset(code)),
                    OutageMode::Refuse => Some(Reply::Close),
                }
                .filter(|_| backend.outage_now() == Some(answer.code));
                self.end(Outcome::Local(answer.code));
                return reply.unwrap_or_else(|| {
                    Reply::Answer(drawn(answer.code, answer.attempt, answer.pushback.as_ref()))
                });
            }
            Ok(Ok(admitted)) => admitted,
        };
        self.count = admitted.count;
        let draw = admitted.draw;
        self.worker = Some(backend.hold(admitted.worker));
        self.stage = Stage::Admitted;
        if draw.code != Code::Ok || self.proxy.options.added_latency {
            let clock = &self.proxy.clock;
            if clock
                .timeout_at(self.limit, clock.sleep(draw.latency))
                .await
                .is_err()
            {
                return Reply::Answer(self.expire());
            }
        }
        if draw.code != Code::Ok {
            self.end(Outcome::Local(draw.code));
            return Reply::Answer(drawn(draw.code, self.count, draw.pushback.as_ref()));
        }
        match self.forward().await {
            Forwarded::Answer(response) => Reply::Answer(response),
            Forwarded::Head {
                status,
                fields,
                stream,
                writer,
                stretch,
            } => {
                let body = relay::start(self, stream, writer, stretch);
                Reply::Answer(wire::response_with(status, fields, body))
            }
        }
    }

    /// Envoy's fault headers: the delay they ask for, then their abort, if any (its answer
    /// and outcome).
    async fn envoy(&self) -> Option<(Response, Outcome)> {
        let fault = faults::envoy(
            &self.parts.headers,
            self.proxy.seed,
            self.incoming.request_key,
            self.incoming.draw_attempt(),
        );
        if let Some(delay) = fault.delay {
            let clock = &self.proxy.clock;
            if clock
                .timeout_at(self.limit, clock.sleep(delay))
                .await
                .is_err()
            {
                let (code, message) = expiry(self.incoming.deadline.is_some());
                return Some((
                    wire::status_response(code, message, None),
                    Outcome::Local(code),
                ));
            }
        }
        let counts = &self.proxy.counts;
        if let Some(code) = fault.grpc_abort {
            counts.envoy_aborts.fetch_add(1, Ordering::Relaxed);
            let code = Code::from_i32(i32::try_from(code).unwrap_or(i32::MAX));
            let message = "fault injected (x-envoy-fault-abort-grpc-request)";
            return Some((
                wire::status_response(code, message, None),
                Outcome::Local(code),
            ));
        }
        if let Some(status) = fault.http_abort {
            counts.envoy_aborts.fetch_add(1, Ordering::Relaxed);
            return Some((wire::http_status_response(status), Outcome::Http(status)));
        }
        None
    }

    /// Sends the attempt upstream: the answer if it ends before the upstream's response head
    /// (the attempt then ended), else the head and the stream.
    async fn forward(&mut self) -> Forwarded {
        let (clock, counts) = (self.proxy.clock.clone(), Arc::clone(&self.proxy.counts));
        let ready = async {
            match &self.proxy.upstream {
                Some(upstream) => upstream.ready().await,
                None => Err(Unavailable("the proxy has no upstream connections".into())),
            }
        };
        let ready = clock.timeout_at(self.limit, ready).await;
        let handle = match ready {
            Ok(Ok(handle)) => handle,
            Ok(Err(unavailable)) => return self.unreachable(&unavailable.0),
            Err(_) => return Forwarded::Answer(self.expire()),
        };
        let left = self
            .incoming
            .deadline
            .map(|d| timeout::write(d.saturating_duration_since(clock.now())));
        let options = &self.proxy.options;
        let fields =
            wire::forwarded_fields(&self.parts.headers, left.as_ref(), options.envoy_headers);
        if let Err(refused) = self.body.read_ready() {
            // Over a budget (RESOURCE_EXHAUSTED), or the client's body broke (CANCELLED).
            let code = wire::code_of(&refused);
            if code == Code::Cancelled {
                counts.cancelled.fetch_add(1, Ordering::Relaxed);
            }
            self.end(Outcome::Local(code));
            return Forwarded::Answer(*refused);
        }
        let (start, whole) = self.body.take_start();
        let request = http2::Request {
            path: self.parts.uri.path().as_bytes(),
            authority: &options.authority,
            https: options.https,
            fields: &fields,
            body: start,
            end: whole,
        };
        let opened = clock.timeout_at(self.limit, handle.open(request)).await;
        let mut stream = match opened {
            Ok(Ok(stream)) => stream,
            // Never sent: the connection went away (GOAWAY) or closed while the stream waited.
            Ok(Err(_)) if self.send_again() => return Box::pin(self.forward()).await,
            Ok(Err(why)) => return self.unreachable(&why),
            Err(_) => return Forwarded::Answer(self.expire()),
        };
        self.stage = Stage::Forwarded;
        if !std::mem::replace(&mut self.forwarded, true) {
            // Counted once its stream has gone (not while it waits for a connection or a
            // slot, which a client may leave): the upstream receives what is counted.
            counts.forwarded.fetch_add(1, Ordering::Relaxed);
        }
        if self.resent {
            // Counted once the stream has gone again, not when it was decided to.
            counts.resent.fetch_add(1, Ordering::Relaxed);
        }
        let factor = if self.proxy.options.added_latency {
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
            biased;
            e = clock.timeout_at(self.limit, stream.next()) => e,
            stopped = body.relay(&writer), if !body.finished() => {
                return match stopped {
                    Stopped::Over(refused) => {
                        self.end(Outcome::Local(Code::ResourceExhausted));
                        Forwarded::Answer(*refused)
                    }
                    Stopped::Broken => {
                        self.end(Outcome::Gone);
                        Forwarded::Answer(wire::status_response(
                            Code::Cancelled,
                            "request body broken",
                            None,
                        ))
                    }
                };
            }
        };
        // What else comes while the head is held is read meanwhile, each with its own time.
        let mut held = Held::new();
        let open = !matches!(&first, Ok(e) if e.ends());
        let at = stretch.came(&clock);
        if stretch
            .hold(at, &mut stream, &mut held, open, &clock, self.limit)
            .await
            .is_err()
        {
            return Forwarded::Answer(self.expire());
        }
        let block = match first {
            Ok(Event::Head(block)) => {
                self.body.forget();
                block
            }
            Ok(Event::Broken(lost)) if lost.processed.not_processed() && self.send_again() => {
                drop((writer, stream));
                return Box::pin(self.forward()).await;
            }
            Ok(other) => {
                let code = relay::lost(&other);
                let message = match &other {
                    Event::Broken(lost) => format!("upstream stream lost: {lost}"),
                    _ => "upstream stream lost".to_string(),
                };
                self.end(Outcome::Forwarded(Some(code)));
                return Forwarded::Answer(wire::status_response(code, &message, None));
            }
            Err(_) => return Forwarded::Answer(self.expire()),
        };
        let (status, fields) = wire::response_fields(&block);
        if let Some(code) = fields.get(header::STATUS) {
            // Trailers-Only: the whole answer is in the head.
            let code = Code::from_bytes(code.as_bytes());
            self.end(Outcome::Forwarded(Some(code)));
            return Forwarded::Answer(wire::response_with(status, fields, wire::no_body()));
        }
        Forwarded::Head {
            status,
            fields,
            stream,
            writer,
            stretch: (stretch, held),
        }
    }

    /// Ends the attempt UNAVAILABLE: no upstream connection, or none that took the stream.
    fn unreachable(&mut self, why: &str) -> Forwarded {
        self.proxy
            .counts
            .unreachable
            .fetch_add(1, Ordering::Relaxed);
        let message = format!("upstream unreachable: {why}");
        Forwarded::Answer(self.answer(Code::Unavailable, &message))
    }

    /// Ends the attempt with the proxy's own status and message: the answer.
    fn answer(&mut self, code: Code, message: &str) -> Response {
        self.end(Outcome::Local(code));
        wire::status_response(code, message, None)
    }

    /// Ends the attempt at its limit (the call's deadline, or `--max-call`): the answer.
    fn expire(&mut self) -> Response {
        let (code, message) = expiry(self.incoming.deadline.is_some());
        self.answer(code, message)
    }

    /// Whether a stream of this attempt that the upstream did not process (RFC 9113 6.8 and
    /// 8.7: above a GOAWAY's last stream id, refused, or never written) is sent again: once
    /// per attempt, on a connection ready (the thread's other one, or after a GOAWAY the one
    /// its keeper opens),
    /// as Envoy's `retry_on: refused-stream` does, and only while the proxy still has the
    /// whole request sent so far (what went with its HEADERS and at most
    /// [`super::body::KEPT`] bytes relayed after them: [`RequestBody::restart`]). The
    /// upstream never saw it, so the client sees nothing of it; otherwise the attempt fails
    /// UNAVAILABLE.
    fn send_again(&mut self) -> bool {
        if self.resent || !self.body.restart() {
            return false;
        }
        // Sent again once only: what goes with the second stream need not be kept.
        self.body.forget();
        self.resent = true;
        self.stage = Stage::Admitted;
        true
    }

    /// Ends the attempt: the backend's figures (work abandoned when the client went, or when
    /// the proxy ended a forwarded call itself: its deadline, a byte budget), the worker given
    /// back, the log line. Once; later calls do nothing.
    pub(super) fn end(&mut self, outcome: Outcome) {
        if self.stage == Stage::Ended {
            return;
        }
        let forwarded = self.stage == Stage::Forwarded;
        let gone = match outcome {
            Outcome::Gone => true,
            Outcome::Local(_) => forwarded,
            Outcome::Forwarded(_) | Outcome::Http(_) => false,
        };
        if forwarded && matches!(outcome, Outcome::Gone) {
            self.proxy.counts.cancelled.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(worker) = self.worker.take() {
            self.backend
                .finish_work(&self.incoming, &AtomicBool::new(gone));
            drop(worker);
        }
        self.stage = Stage::Ended;
        // Sent again, if it was decided so and its second stream went.
        self.log(outcome, self.resent && forwarded);
    }

    fn log(&self, outcome: Outcome, sent_again: bool) {
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
        let again = if sent_again {
            " (sent upstream again: the upstream had not processed its first stream)"
        } else {
            ""
        };
        eprintln!(
            "+{at:.3}s {} key={:016x} attempt={} grpc-previous-rpc-attempts={} {what}{again}",
            self.parts.uri.path(),
            self.incoming.request_key,
            self.count,
            self.incoming
                .previous_attempts
                .map_or_else(|| "absent".to_string(), |n| n.to_string()),
        );
    }
}

/// An attempt dropped before it ended: its client went away (hyper dropped the service's
/// future, or the response body).
impl Drop for Attempt {
    fn drop(&mut self) {
        self.end(Outcome::Gone);
    }
}
