//! The backend on the wire: tonic's generated `Backend` and `Control` services ([`Services`]),
//! served over hyper's HTTP/2 server ([`serve_connections`]).
//!
//! [`serve`] takes an already-bound listener and a shutdown future (as mini-redis does), so the
//! embedded backend binds port 0 and tests stop it cleanly. Accepted connections get
//! `TCP_NODELAY`: without it, small gRPC frames wait for Nagle's algorithm and every reply is
//! late by up to the delayed-ACK timeout.
//!
//! Requests are untrusted: ids longer than [`MAX_REQUEST_ID`] bytes and scripts longer than
//! [`MAX_SCRIPT`] steps are refused with INVALID_ARGUMENT, so a client cannot make the backend
//! remember without bound.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_stream::{Stream, StreamExt as _};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Request, Response, Status};

use super::serving::{self, Activity, Limited, Limits, Served, Watched};
use super::unary::Unary;
use super::{Answer, Backend, BackendStats, Incoming, ReplicaStats, StreamEvent};
use crate::clock::Clock;
use crate::keyed::request_key;
use crate::pb;
use crate::profile::backend::{PushbackValues, StepPlan};
use crate::profile::{Method, Plan};
use crate::protocol::header;
use crate::protocol::status::code_name;
use crate::protocol::timeout;

/// Longest request id accepted, in bytes.
pub const MAX_REQUEST_ID: usize = 256;

/// Longest script accepted with a request.
pub const MAX_SCRIPT: usize = 64;

/// The backends behind a server. `Reset` swaps in fresh ones; attempts already in service
/// finish on the old ones.
#[derive(Debug, Clone)]
pub struct Shared {
    plan: Arc<Plan>,
    clock: Clock,
    current: Arc<RwLock<Arc<Vec<Arc<Backend>>>>>,
    /// The run start of the last keyed reset (0: none).
    reset_for: Arc<std::sync::atomic::AtomicU64>,
    log_attempts: bool,
    /// When the server state was made: log lines say how long after it an attempt ended.
    since: tokio::time::Instant,
    /// This server's instance number, sent with its figures (`BackendStats.instance`).
    instance: u64,
    /// Calls turned away at `serve --max-calls` (the limits' counter), and its value at the
    /// last reset (`BackendStats.refused_at_limit` is the difference); none without limits.
    refused: Option<(Arc<AtomicU64>, Arc<AtomicU64>)>,
    /// The figures of the backends resets replaced, added up, and the number of resets:
    /// with the current backends', the figures since the server state was made.
    retired: Arc<std::sync::Mutex<(BackendStats, u64)>>,
}

impl Shared {
    /// A server state with fresh backends for `plan`, on the precise real-time clock.
    pub fn new(plan: Arc<Plan>) -> Self {
        Self::with_clock(plan, Clock::Precise)
    }

    /// A server state with fresh backends for `plan`, waiting out service times on `clock`;
    /// their phases start now.
    pub fn with_clock(plan: Arc<Plan>, clock: Clock) -> Self {
        let shared = Self::unstarted(plan, clock);
        shared.begin(shared.clock.now());
        shared
    }

    /// Like [`Shared::with_clock`], with phases started later by [`Shared::begin`] (the
    /// embedded backend starts them at the strategy's exact time zero).
    pub fn unstarted(plan: Arc<Plan>, clock: Clock) -> Self {
        let backends = Arc::new(Backend::replicas(&plan, &clock));
        Self {
            plan,
            since: clock.now(),
            clock,
            current: Arc::new(RwLock::new(backends)),
            reset_for: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            log_attempts: false,
            instance: instance_number(),
            refused: None,
            retired: Arc::default(),
        }
    }

    /// Reports the calls `limits` turn away (`serve --max-calls`) with its figures, counted
    /// from each reset.
    pub fn count_refused(mut self, limits: &super::serving::Limits) -> Self {
        self.refused = Some((limits.refused_counter(), Arc::default()));
        self
    }

    /// Calls turned away at the limit since the last reset.
    fn refused_since_reset(&self) -> u64 {
        self.refused.as_ref().map_or(0, |(total, at_reset)| {
            total
                .load(Ordering::Relaxed)
                .saturating_sub(at_reset.load(Ordering::Relaxed))
        })
    }

    fn reset_refused(&self) {
        if let Some((total, at_reset)) = &self.refused {
            at_reset.store(total.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    /// This server's instance number: drawn when it started, never 0.
    pub fn instance(&self) -> u64 {
        self.instance
    }

    /// Starts the phases of the backends in service at `start`.
    pub fn begin(&self, start: tokio::time::Instant) {
        for b in self.current().iter() {
            b.begin(start);
        }
    }

    /// Prints one line per attempt to stderr (`serve --log-attempts`).
    pub fn log_attempts(mut self, on: bool) -> Self {
        self.log_attempts = on;
        self
    }

    fn fresh(plan: &Plan, clock: &Clock) -> Arc<Vec<Arc<Backend>>> {
        let backends = Backend::replicas(plan, clock);
        let start = clock.now();
        for b in &backends {
            b.begin(start);
        }
        Arc::new(backends)
    }

    /// The plan served (its seed keys the proxy's own draws).
    pub fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    /// The backends now in service, one per replica.
    pub fn current(&self) -> Arc<Vec<Arc<Backend>>> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Replaces the backends with fresh ones; returns the old ones' figures.
    pub fn reset(&self) -> BackendStats {
        let fresh = Self::fresh(&self.plan, &self.clock);
        self.reset_refused();
        let mut slot = self.current.write().unwrap_or_else(|e| e.into_inner());
        self.retire(Backend::combined(&std::mem::replace(&mut *slot, fresh)))
    }

    /// Adds the figures of backends a reset replaced to the figures since the start; returns
    /// them.
    fn retire(&self, replaced: BackendStats) -> BackendStats {
        let mut retired = self.retired.lock().unwrap_or_else(|e| e.into_inner());
        let (total, resets) = &mut *retired;
        total.add_counts(&replaced);
        *resets += 1;
        replaced
    }

    /// The figures since this server state was made, over every reset (received, executed,
    /// rejected, wasted, duplicate side effects; the queue's high water the highest), and the
    /// number of resets. The figures of the backends a reset replaced are taken at the reset:
    /// an attempt still in service then that ends wasted later is not counted wasted here.
    pub fn since_start(&self) -> (BackendStats, u64) {
        let (mut total, resets) = self
            .retired
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        total.add_counts(&Backend::combined(&self.current()));
        (total, resets)
    }

    /// A reset for the run starting at `start_unix_ms` (Unix ms): the first one for that start
    /// replaces the backends, with phases starting at that instant; a repeat (another shard of
    /// the same run) changes nothing. Returns the figures of the backends replaced or kept.
    pub fn reset_for_start(&self, start_unix_ms: u64) -> BackendStats {
        if self.reset_for.swap(start_unix_ms, Ordering::AcqRel) == start_unix_ms {
            return self.stats();
        }
        // A client's value is untrusted: one past what SystemTime holds starts the phases now.
        let at = std::time::UNIX_EPOCH
            .checked_add(std::time::Duration::from_millis(start_unix_ms))
            .unwrap_or_else(std::time::SystemTime::now);
        let start = self.clock.instant_at(at);
        let fresh = Arc::new(Backend::replicas(&self.plan, &self.clock));
        for b in fresh.iter() {
            b.begin(start);
        }
        self.reset_refused();
        let mut slot = self.current.write().unwrap_or_else(|e| e.into_inner());
        self.retire(Backend::combined(&std::mem::replace(&mut *slot, fresh)))
    }

    /// The figures of the backends now in service.
    pub fn stats(&self) -> BackendStats {
        BackendStats {
            refused_at_limit: self.refused_since_reset(),
            ..Backend::combined(&self.current())
        }
    }

    /// The backend a request asks for, and what the request says about itself.
    fn incoming(
        &self,
        meta: &MetadataMap,
        method: Method,
        request_id: &str,
        script: &[pb::ScriptStep],
        idempotency_key: &str,
    ) -> Result<(Arc<Backend>, Incoming), Status> {
        if request_id.len() > MAX_REQUEST_ID || idempotency_key.len() > MAX_REQUEST_ID {
            return Err(Status::invalid_argument(format!(
                "request ids and keys are at most {MAX_REQUEST_ID} bytes"
            )));
        }
        if script.len() > MAX_SCRIPT {
            return Err(Status::invalid_argument(format!(
                "a script has at most {MAX_SCRIPT} steps"
            )));
        }
        let header = |name: &str| meta.get(name).and_then(|v| v.to_str().ok());
        let backends = self.current();
        let replica = match header(header::REPLICA) {
            None => 0,
            Some(v) => v.parse::<usize>().map_err(|_| {
                Status::invalid_argument(format!(
                    "{}: `{v}` is not a replica number",
                    header::REPLICA
                ))
            })?,
        };
        let backend = backends.get(replica).cloned().ok_or_else(|| {
            Status::invalid_argument(format!(
                "no replica {replica} (the profile has {})",
                backends.len()
            ))
        })?;
        let number = request_id
            .parse::<u64>()
            .ok()
            .filter(|n| n.to_string() == request_id);
        let steps: Vec<StepPlan> = script
            .iter()
            .map(|s| StepPlan {
                status: Code::from_i32(s.status_code as i32).into(),
                latency: (s.latency_ms > 0).then(|| crate::profile::latency::Latency::Fixed {
                    value: Duration::from_millis(u64::from(s.latency_ms)),
                }),
                pushback: (!s.pushback.is_empty()).then(|| PushbackValues::one(s.pushback.clone())),
            })
            .collect();
        let incoming = Incoming {
            method,
            request_key: request_key(request_id.as_bytes()),
            id_number: number,
            id_text: number.is_none().then(|| Arc::from(request_id)),
            // A value that does not parse counts as 0, as it always has; absent stays absent.
            previous_attempts: meta
                .get(header::PREVIOUS_ATTEMPTS)
                .map(|v| v.to_str().ok().and_then(|v| v.parse().ok()).unwrap_or(0)),
            ordinal: header(header::ATTEMPT).and_then(|v| v.parse().ok()),
            warmup: meta.contains_key(header::WARMUP),
            deadline: header(header::TIMEOUT)
                .and_then(timeout::parse)
                .map(|t| self.clock.now() + t),
            script: (!steps.is_empty()).then(|| Arc::from(steps)),
            idempotency_key: (!idempotency_key.is_empty()).then(|| Arc::from(idempotency_key)),
        };
        Ok((backend, incoming))
    }

    /// Serves a unary attempt, answering DEADLINE_EXCEEDED at the deadline it was sent with
    /// (`grpc-timeout`), as gRPC servers end a call at its deadline (tonic's server did it
    /// with a tokio timer per request): with `on_cancel = "continue"` the work goes on and
    /// counts as wasted. No timer is started for work done at its first poll.
    async fn handle(&self, backend: &Arc<Backend>, incoming: Incoming) -> Answer {
        let attempt = incoming.previous().saturating_add(1);
        // Work under "stop" is ended at the deadline by the backend itself.
        let continues = backend.plan.on_cancel == crate::profile::backend::OnCancel::Continue;
        match incoming.deadline.filter(|_| continues) {
            Some(deadline) => self
                .clock
                .timeout_at(deadline, backend.handle(incoming))
                .await
                .unwrap_or_else(|_| Answer::new(Code::DeadlineExceeded, attempt)),
            None => backend.handle(incoming).await,
        }
    }

    fn log(&self, method: &str, request_id: &str, incoming: &Incoming, answer: &Answer) {
        if self.log_attempts {
            let at = self
                .clock
                .now()
                .saturating_duration_since(self.since)
                .as_secs_f64();
            eprintln!(
                "+{at:.3}s {method} request_id={request_id} attempt={} grpc-previous-rpc-attempts={} status={}{}",
                answer.attempt,
                incoming
                    .previous_attempts
                    .map_or_else(|| "absent".to_string(), |n| n.to_string()),
                code_name(answer.code),
                answer
                    .pushback
                    .as_ref()
                    .map(|p| format!(" pushback={p}"))
                    .unwrap_or_default()
            );
        }
    }
}

/// A number for a server state, different from any other process's with near certainty:
/// the time and the process id, mixed (SplitMix64's finalizer); never 0, which means "not
/// sent" on the wire.
fn instance_number() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut z = nanos ^ (u64::from(std::process::id()) << 32);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)).max(1)
}

/// A status with the answer's pushback trailer.
fn status_of(answer: &Answer) -> Status {
    let mut status = Status::new(answer.code, format!("attempt {}", answer.attempt));
    for value in answer.pushback.iter().flat_map(PushbackValues::iter) {
        if let Ok(value) = MetadataValue::try_from(value) {
            status.metadata_mut().append(header::PUSHBACK, value);
        }
    }
    status
}

fn reply(request_id: String, answer: &Answer) -> Result<Response<pb::CallReply>, Status> {
    if answer.code == Code::Ok {
        Ok(Response::new(pb::CallReply {
            request_id,
            attempt: answer.attempt,
        }))
    } else {
        Err(status_of(answer))
    }
}

type StreamOf<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl pb::backend_server::Backend for Shared {
    async fn call(
        &self,
        request: Request<pb::CallRequest>,
    ) -> Result<Response<pb::CallReply>, Status> {
        let (meta, _, body) = request.into_parts();
        let (backend, incoming) =
            self.incoming(&meta, Method::Unary, &body.request_id, &body.script, "")?;
        let answer = self.handle(&backend, incoming.clone()).await;
        self.log("Call", &body.request_id, &incoming, &answer);
        reply(body.request_id, &answer)
    }

    async fn mutate(
        &self,
        request: Request<pb::MutateRequest>,
    ) -> Result<Response<pb::CallReply>, Status> {
        let (meta, _, body) = request.into_parts();
        let (backend, incoming) = self.incoming(
            &meta,
            Method::Mutate,
            &body.request_id,
            &body.script,
            &body.idempotency_key,
        )?;
        let answer = self.handle(&backend, incoming.clone()).await;
        self.log("Mutate", &body.request_id, &incoming, &answer);
        reply(body.request_id, &answer)
    }

    type StreamStream = StreamOf<pb::StreamReply>;

    async fn stream(
        &self,
        request: Request<pb::CallRequest>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        let (meta, _, body) = request.into_parts();
        let (backend, incoming) =
            self.incoming(&meta, Method::Stream, &body.request_id, &body.script, "")?;
        let mut events = backend.stream(incoming.clone());
        // Response headers go out with the first message. A failure before it is answered
        // Trailers-Only, as gRPC servers answer it, so a client may still retry the call
        // (gRFC A6: only a call whose response headers arrived is committed).
        let first = events.recv().await;
        if let Some(StreamEvent::End(answer)) = &first
            && answer.code != Code::Ok
        {
            self.log("Stream", &body.request_id, &incoming, answer);
            return Err(status_of(answer));
        }
        let this = self.clone();
        let id = body.request_id;
        let out = async_stream(move |tx| async move {
            let mut next = first;
            while let Some(event) = next.take() {
                match event {
                    StreamEvent::Message(n) => {
                        let msg = pb::StreamReply {
                            request_id: id.clone(),
                            message: n,
                        };
                        if tx.send(Ok(msg)).await.is_err() {
                            return;
                        }
                    }
                    StreamEvent::End(answer) => {
                        this.log("Stream", &id, &incoming, &answer);
                        if answer.code != Code::Ok {
                            let _ = tx.send(Err(status_of(&answer))).await;
                        }
                        return;
                    }
                }
                next = events.recv().await;
            }
        });
        Ok(Response::new(out))
    }
}

/// A response stream fed by a task through a channel.
fn async_stream<T, F, Fut>(produce: F) -> StreamOf<T>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<Result<T, Status>>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(produce(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

#[tonic::async_trait]
impl pb::control_server::Control for Shared {
    async fn reset(
        &self,
        request: Request<pb::ResetRequest>,
    ) -> Result<Response<pb::BackendStats>, Status> {
        let stats = match request.get_ref().start_unix_ms {
            0 => Shared::reset(self),
            start => self.reset_for_start(start),
        };
        Ok(Response::new(pb::BackendStats {
            instance: self.instance,
            ..self.with_plan(to_pb(stats))
        }))
    }

    async fn stats(
        &self,
        _: Request<pb::StatsRequest>,
    ) -> Result<Response<pb::BackendStats>, Status> {
        Ok(Response::new(pb::BackendStats {
            instance: self.instance,
            ..self.with_plan(to_pb(Shared::stats(self)))
        }))
    }
}

impl Shared {
    /// A Control reply that says which backend this server serves (`super::served`).
    fn with_plan(&self, mut reply: pb::BackendStats) -> pb::BackendStats {
        reply.served_json = super::served::describe(&self.plan).to_string();
        reply
    }
}

fn to_pb(s: BackendStats) -> pb::BackendStats {
    pb::BackendStats {
        received: s.received,
        executed: s.executed,
        rejected: s.rejected,
        queue_high_water: s.queue_high_water,
        wasted: s.wasted,
        duplicate_side_effects: s.duplicate_side_effects,
        replicas: s
            .replicas
            .into_iter()
            .map(|r| pb::ReplicaStats {
                name: r.name,
                received: r.received,
                executed: r.executed,
                rejected: r.rejected,
                wasted: r.wasted,
            })
            .collect(),
        timeline: s
            .timeline
            .into_iter()
            .map(|r| pb::BackendSecond {
                t: r.t,
                received: r.received,
                executed: r.executed,
                rejected: r.rejected,
                queue_max: r.queue_max,
                in_service_max: r.in_service_max,
            })
            .collect(),
        served_json: String::new(),
        instance: 0,
        refused_at_limit: s.refused_at_limit,
    }
}

/// Converts figures received from a `Control` call.
pub fn from_pb(s: pb::BackendStats) -> BackendStats {
    BackendStats {
        received: s.received,
        executed: s.executed,
        rejected: s.rejected,
        wasted: s.wasted,
        duplicate_side_effects: s.duplicate_side_effects,
        queue_high_water: s.queue_high_water,
        replicas: s
            .replicas
            .into_iter()
            .map(|r| ReplicaStats {
                name: r.name,
                received: r.received,
                executed: r.executed,
                rejected: r.rejected,
                wasted: r.wasted,
            })
            .collect(),
        timeline: s
            .timeline
            .into_iter()
            .map(|r| super::timeline::BackendSecond {
                t: r.t,
                received: r.received,
                executed: r.executed,
                rejected: r.rejected,
                queue_max: r.queue_max,
                in_service_max: r.in_service_max,
            })
            .collect(),
        // A server that says nothing (an older build) says nothing here either.
        served: serde_json::from_str(&s.served_json).ok(),
        refused_at_limit: s.refused_at_limit,
    }
}

/// The backend's two gRPC services as one HTTP service, told apart by the path's service name.
///
/// Connections are served with hyper's HTTP/2 server directly rather than through tonic's
/// `Server`, whose layers cost every call: its `grpc-timeout` layer starts a tokio timer for
/// each request that carries one, and registering it woke the serving thread's reactor
/// through its eventfd, a `write` system call per call (`perf record -e
/// syscalls:sys_enter_write --call-graph dwarf` on `resilbench serve`); the deadline is now
/// kept on the backend's clock, with no timer for work done at once (`Shared::handle`). Then
/// load shedding, a concurrency limit and error recovery that are all switched off here, and
/// axum's path router. docs/PERFORMANCE.md, "`serve` without tonic's `Server`", has the
/// figures.
///
/// The unary methods `Call` and `Mutate` skip tonic's codec for the usual request
/// ([`super::unary`]).
#[derive(Clone)]
pub struct Services {
    shared: Shared,
    backend: pb::backend_server::BackendServer<Shared>,
    control: pb::control_server::ControlServer<Shared>,
}

impl Services {
    /// The services answering from `shared`.
    pub fn new(shared: Shared) -> Self {
        Self {
            // The limit the fast path (`unary.rs`) checks prefixes against, tonic's default
            // spelt out so the two cannot drift apart.
            backend: pb::backend_server::BackendServer::new(shared.clone())
                .max_decoding_message_size(crate::protocol::message::MAX_MESSAGE),
            control: pb::control_server::ControlServer::new(shared.clone()),
            shared,
        }
    }
}

type ServiceFuture = tonic::codegen::BoxFuture<http::Response<tonic::body::Body>, Infallible>;

impl hyper::service::Service<http::Request<hyper::body::Incoming>> for Services {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = ServiceFuture;

    fn call(&self, request: http::Request<hyper::body::Incoming>) -> ServiceFuture {
        use tonic::server::NamedService;
        use tower::Service;
        if let Some(unary) = Unary::of(&request) {
            let (shared, backend) = (self.shared.clone(), self.backend.clone());
            return Box::pin(async move { Ok(unary.answer(&shared, backend, request).await) });
        }
        let control = request
            .uri()
            .path()
            .strip_prefix('/')
            .and_then(|p| p.strip_prefix(pb::control_server::ControlServer::<Shared>::NAME))
            .is_some_and(|rest| rest.starts_with('/'));
        // Everything else goes to the backend's service, which answers UNIMPLEMENTED for a
        // path it does not know, as tonic's router does.
        if control {
            self.control.clone().call(request)
        } else {
            self.backend.clone().call(request)
        }
    }
}

/// Serves [`Services`] from `shared` on every connection `incoming` yields (each in a task of
/// its own) until `stop` completes, even after `incoming` has ended; then closes each
/// connection gracefully (GOAWAY, the calls in flight finish) and returns when all have closed.
/// A connection that `incoming` fails to give is skipped after a pause (out of file
/// descriptors, say), as servers do. No limit is kept (the embedded backend's way):
/// [`serve_connections_with`] keeps some.
pub async fn serve_connections<IO>(
    shared: Shared,
    incoming: impl Stream<Item = std::io::Result<IO>>,
    stop: impl Future<Output = ()>,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    serve_connections_with(shared, incoming, stop, Limits::unlimited()).await;
}

/// [`serve_connections`] within `limits` (streams per connection, calls in progress, silent
/// and idle connections, keep-alive, how long the stop waits: [`super::serving`]).
pub async fn serve_connections_with<IO>(
    shared: Shared,
    incoming: impl Stream<Item = std::io::Result<IO>>,
    stop: impl Future<Output = ()>,
    limits: Limits,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let services = Services::new(shared);
    let http2 = limits.http2();
    let closing = CancellationToken::new();
    let connections = TaskTracker::new();
    // Boxed, so that it can be dropped (the listener closed) before the drain below.
    let mut incoming = Box::pin(incoming);
    tokio::pin!(stop);
    let mut stopped = false;
    loop {
        let io = tokio::select! {
            () = &mut stop => {
                stopped = true;
                break;
            }
            next = incoming.next() => match next {
                None => break,
                Some(Ok(io)) => io,
                Some(Err(_)) => {
                    tokio::select! {
                        () = &mut stop => {
                            stopped = true;
                            break;
                        }
                        () = Clock::Tokio.sleep(Duration::from_millis(50)) => continue,
                    }
                }
            },
        };
        let activity = Arc::new(Activity::default());
        let service = Limited::new(services.clone(), limits.clone(), Arc::clone(&activity));
        let io = TokioIo::new(Watched::new(io, Arc::clone(&activity)));
        let connection = http2.serve_connection(io, service);
        let (closing, limits) = (closing.clone(), limits.clone());
        connections.spawn(async move {
            tokio::pin!(connection);
            let served = serving::serve_watched(
                connection.as_mut(),
                |c| c.graceful_shutdown(),
                (&limits, &activity),
                &closing,
                None,
            );
            if served.await == Served::Over {
                return;
            }
            match limits.drain_timeout {
                Some(limit) => {
                    // Done when its calls are: a client that does not answer the GOAWAY
                    // (silent, stopped) holds the stop no longer than the grace.
                    let counted = limits.counts_calls();
                    tokio::select! {
                        _ = Clock::Tokio.timeout(limit, connection) => {}
                        () = serving::nothing_to_finish(&activity), if counted => {}
                    }
                }
                None => {
                    let _ = connection.await;
                }
            }
        });
    }
    // New connections are refused at once while the open ones drain (a client then fails
    // fast or goes elsewhere, rather than waiting on a socket nobody reads).
    drop(incoming);
    if !stopped {
        // No more connections: the open ones are served until the stop.
        stop.await;
    }
    closing.cancel();
    connections.close();
    connections.wait().await;
}

/// Serves the backend (and its control service) on `listener` until `shutdown` completes.
pub async fn serve(listener: TcpListener, shared: Shared, shutdown: impl Future<Output = ()>) {
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(|accepted| {
        accepted.inspect(|stream| {
            // Served without it if it cannot be set, as tonic's server did.
            let _ = stream.set_nodelay(true);
        })
    });
    serve_connections(shared, incoming, shutdown).await;
}

/// A server state for a one-strategy profile with the default backend (tests).
#[cfg(test)]
pub(super) fn test_shared() -> Shared {
    let text = "[load]\nrate = 1\n[[strategies]]\nname = \"s\"\n";
    let plan = crate::profile::parse(text, "t.toml", "t", &Default::default()).unwrap();
    Shared::new(Arc::new(plan))
}

/// A server of [`test_shared`] on one in-memory connection (tests): the client's end of
/// it, the server's stop, the server.
#[cfg(test)]
pub(super) fn serve_in_memory() -> (
    tokio::io::DuplexStream,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (client_io, server_io) = tokio::io::duplex(1 << 16);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_connections(
        test_shared(),
        tokio_stream::once(Ok(server_io)),
        async {
            let _ = stopped.await;
        },
    ));
    (client_io, stop, server)
}

/// Stops a test server and waits (10 s at most) for it to return.
#[cfg(test)]
pub(super) async fn stop_server(
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
) {
    stop.send(()).unwrap();
    Clock::Tokio
        .timeout(Duration::from_secs(10), server)
        .await
        .expect("the server returned after its stop")
        .unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each pushback value of a step goes as its own trailer field, in order.
    #[test]
    fn every_pushback_value_is_its_own_trailer_field() {
        let answer = Answer {
            code: Code::Unavailable,
            attempt: 1,
            pushback: Some(PushbackValues::several(vec!["10".into(), "soon".into()])),
        };
        let status = status_of(&answer);
        let values: Vec<&str> = status
            .metadata()
            .get_all(header::PUSHBACK)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(values, ["10", "soon"]);
    }

    /// Each service answers on its own paths, any other path is UNIMPLEMENTED (as tonic's
    /// router answered), and a stopped server closes its open connections and returns.
    #[tokio::test]
    async fn each_service_answers_on_its_paths_and_a_stopped_server_returns() {
        let shared = test_shared();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, shared, async {
            let _ = stopped.await;
        }));
        let channel = crate::transport::grpc::endpoint(&addr)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let reply = pb::backend_client::BackendClient::new(channel.clone())
            .call(pb::CallRequest {
                request_id: "7".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(reply.into_inner().request_id, "7");
        let stats = pb::control_client::ControlClient::new(channel.clone())
            .stats(pb::StatsRequest::default())
            .await
            .unwrap();
        assert_eq!(stats.into_inner().received, 1);
        for path in [
            "/resilbench.v1.Nothing/Call",
            "/resilbench.v1.Control2/Stats",
            "/resilbench.v1.Backend/Nothing",
            "/resilbench.v1.Control/Nothing",
            "/",
        ] {
            let mut grpc = tonic::client::Grpc::new(channel.clone());
            grpc.ready().await.unwrap();
            let answer = grpc
                .unary(
                    Request::new(pb::CallRequest::default()),
                    path.parse().unwrap(),
                    tonic_prost::ProstCodec::<pb::CallRequest, pb::CallReply>::default(),
                )
                .await;
            assert_eq!(answer.unwrap_err().code(), Code::Unimplemented, "{path}");
        }
        // The client's connection is still open.
        stop_server(stop, server).await;
    }

    /// A connection already open is served after the stream of connections has ended, until
    /// the stop (an in-memory connection, as `benches/virtual_time.rs` serves).
    #[tokio::test]
    async fn open_connections_are_served_after_the_incoming_stream_ends() {
        let (client_io, stop, server) = serve_in_memory();
        let pipe = Arc::new(std::sync::Mutex::new(Some(client_io)));
        let channel = tonic::transport::Endpoint::from_static("http://in-memory")
            .connect_with_connector(tower::service_fn(move |_: http::Uri| {
                let io = pipe.lock().unwrap().take();
                async move {
                    io.map(hyper_util::rt::TokioIo::new)
                        .ok_or_else(|| std::io::Error::other("one connection only"))
                }
            }))
            .await
            .unwrap();
        let mut client = pb::backend_client::BackendClient::new(channel);
        for id in ["1", "2"] {
            // Yields between calls: the server's accept loop has seen the stream's end.
            tokio::task::yield_now().await;
            let reply = client
                .call(pb::CallRequest {
                    request_id: id.into(),
                    ..Default::default()
                })
                .await
                .unwrap();
            assert_eq!(reply.into_inner().request_id, id);
        }
        assert!(!server.is_finished());
        stop_server(stop, server).await;
    }
}
