//! gRFC A6's transparent retries through the real gRPC client, against an h2 server (written
//! by others) over in-memory pipes, in virtual time: a stream the server refuses with
//! RST_STREAM(REFUSED_STREAM) is sent again at once inside its attempt, counted apart
//! (`transparent`, `not_processed`), and bounded as each client library bounds it; the retry
//! policy's attempts and throttle never see it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Response;
use prost::Message;
use resilbench::call::{AttemptKind, Call, CallMeter};
use resilbench::clock::Clock;
use resilbench::pb;
use resilbench::profile::{Method, Overrides, StrategyPlan};
use resilbench::record::{Recorder, RecorderConfig};
use resilbench::strategy;
use resilbench::transport::connection::{Connections, Connector, Io};
use resilbench::transport::grpc::GrpcTransport;
use tonic::Code;
use tower::ServiceExt;

use crate::common::goaway::{self, GoAway};

/// What the server does with one stream.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Answer {
    /// RST_STREAM(REFUSED_STREAM) before any response.
    Refuse,
    /// Trailers-Only with this status.
    Status(Code),
}

/// A script: the answer to the `nth` stream of attempt `ordinal` of a request.
type Script = fn(ordinal: u32, nth: u32) -> Answer;

/// A connector to an h2 server answering by `script`, keyed by request id and attempt.
fn server(script: Script) -> Connector {
    let seen: Arc<Mutex<HashMap<(String, u32), u32>>> = Arc::default();
    Arc::new(move || {
        let seen = Arc::clone(&seen);
        Box::pin(async move {
            let (client, server) = tokio::io::duplex(64 * 1024);
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(server).await else {
                    return;
                };
                while let Some(Ok((request, mut respond))) = conn.accept().await {
                    let seen = Arc::clone(&seen);
                    tokio::spawn(async move {
                        let ordinal: u32 = request
                            .headers()
                            .get("resilbench-attempt")
                            .and_then(|v| v.to_str().ok()?.parse().ok())
                            .unwrap_or(0);
                        let mut body = request.into_body();
                        let mut bytes = Vec::new();
                        while let Some(Ok(chunk)) = body.data().await {
                            let _ = body.flow_control().release_capacity(chunk.len());
                            bytes.extend_from_slice(&chunk);
                        }
                        let id = pb::CallRequest::decode(&bytes[5.min(bytes.len())..])
                            .map_or(String::new(), |r| r.request_id);
                        let nth = {
                            let mut seen = seen.lock().unwrap();
                            let n = seen.entry((id, ordinal)).or_default();
                            *n += 1;
                            *n - 1
                        };
                        match script(ordinal, nth) {
                            Answer::Refuse => respond.send_reset(h2::Reason::REFUSED_STREAM),
                            Answer::Status(code) => {
                                let head = Response::builder()
                                    .status(200)
                                    .header("content-type", "application/grpc")
                                    .header("grpc-status", (code as i32).to_string())
                                    .body(())
                                    .unwrap();
                                let _ = respond.send_response(head, true);
                            }
                        }
                    });
                }
            });
            Ok(Box::new(client) as Box<dyn Io>)
        })
    })
}

/// One strategy per client library, each with the same retry policy (3 attempts,
/// UNAVAILABLE retryable, 10 ms backoff).
fn strategies() -> Vec<StrategyPlan> {
    let mut text = String::from("[load]\nrate = 1\nmethod = \"stream\"\n");
    for client in ["a6", "grpc-js", "grpc-java", "grpc-go", "c-core"] {
        text.push_str(&format!(
            "[[strategies]]\nname = \"{client}\"\nclient = \"{client}\"\n\
             layers = [{{ kind = \"grpc_retry\", max_attempts = 3, initial_backoff = \"10ms\", \
             max_backoff = \"10ms\", backoff_multiplier = 1, \
             retryable_status_codes = [\"UNAVAILABLE\"] }}]\n"
        ));
    }
    resilbench::profile::parse(&text, "t.toml", "t", &Overrides::default())
        .unwrap()
        .strategies
}

/// What one call did: its status, its attempts, its transparent retries, its refusals.
#[derive(Debug, PartialEq)]
struct Seen {
    code: Code,
    attempts: u64,
    transparent: u64,
    refused: u64,
}

async fn one_call(strategy: &StrategyPlan, script: Script) -> Seen {
    let clock = Clock::Tokio;
    let connections = Connections::open(server(script), 1, &clock);
    let transport = GrpcTransport::new(connections, "test:1", 0, clock.clone(), None).unwrap();
    let start = clock.now();
    let recorder = Arc::new(Recorder::new(RecorderConfig {
        start,
        warmup: Duration::ZERO,
        duration: Duration::from_secs(10),
        deadline: Duration::from_secs(5),
    }));
    let stack = strategy::build(strategy, transport, Arc::clone(&recorder) as _, &clock, 1);
    let call = Call {
        id: 7,
        intended: start,
        deadline: start + Duration::from_secs(5),
        previous_attempts: 0,
        ordinal: 0,
        kind: AttemptKind::Original,
        warmup: false,
        payload_bytes: 0,
        method: Method::Stream,
        idempotency_key: false,
        sent_deadline: None,
        meter: Arc::new(CallMeter::default()),
        commit: None,
        transparent: strategy.client.flavor().transparent,
    };
    let code = match stack.oneshot(call).await {
        Ok(_) => Code::Ok,
        Err(f) => f.code,
    };
    let state = recorder.finish().unwrap();
    Seen {
        code,
        attempts: state.attempts,
        transparent: state.transparent,
        refused: state.not_processed[0],
    }
}

fn seen(code: Code, attempts: u64, transparent: u64, refused: u64) -> Seen {
    Seen {
        code,
        attempts,
        transparent,
        refused,
    }
}

/// Every stream refused: each library sends one of them again (C-core none: it does not
/// mark REFUSED_STREAM), and the policy's three attempts fail UNAVAILABLE.
#[tokio::test(start_paused = true)]
async fn a_server_that_refuses_everything_gets_one_transparent_retry_per_call() {
    let want = [
        seen(Code::Unavailable, 3, 1, 4),
        seen(Code::Unavailable, 3, 1, 4),
        seen(Code::Unavailable, 3, 1, 4),
        seen(Code::Unavailable, 3, 1, 4),
        seen(Code::Unavailable, 3, 0, 3),
    ];
    for (s, want) in strategies().iter().zip(want) {
        let got = one_call(s, |_, _| Answer::Refuse).await;
        assert_eq!(got, want, "{}", s.name);
    }
}

/// The first stream refused, the next answered: one attempt and one transparent retry,
/// except C-core, whose policy retries it after its backoff (two attempts).
#[tokio::test(start_paused = true)]
async fn a_refused_stream_is_sent_again_within_its_attempt() {
    let script: Script = |ordinal, nth| match (ordinal, nth) {
        (0, 0) => Answer::Refuse,
        _ => Answer::Status(Code::Ok),
    };
    for s in strategies() {
        let got = one_call(&s, script).await;
        let want = if s.name == "c-core" {
            seen(Code::Ok, 2, 0, 1)
        } else {
            seen(Code::Ok, 1, 1, 1)
        };
        assert_eq!(got, want, "{}", s.name);
    }
}

/// The first attempt fails UNAVAILABLE (processed), the retry's first stream is refused:
/// the A6 text and grpc-js still have their one transparent retry; grpc-java spent it with the
/// failure, grpc-go has it on the first attempt only, C-core never for a refusal: those make
/// a third attempt.
#[tokio::test(start_paused = true)]
async fn after_a_failed_attempt_the_libraries_part_ways() {
    let script: Script = |ordinal, nth| match (ordinal, nth) {
        (0, _) => Answer::Status(Code::Unavailable),
        (1, 0) => Answer::Refuse,
        _ => Answer::Status(Code::Ok),
    };
    for s in strategies() {
        let got = one_call(&s, script).await;
        let want = match s.name.as_str() {
            "a6" | "grpc-js" => seen(Code::Ok, 2, 1, 1),
            _ => seen(Code::Ok, 3, 0, 1),
        };
        assert_eq!(got, want, "{}", s.name);
    }
}

/// Three calls in flight when the server goes away with the first one's id as its last:
/// the other two were not processed, and are sent again at once on the new connection the
/// keeper opens (GOAWAY is transparent in every library, C-core's included); every call
/// succeeds with one attempt.
#[tokio::test(start_paused = true)]
async fn streams_above_a_goaways_last_id_are_sent_again_on_a_new_connection() {
    let plans = strategies();
    for s in plans
        .iter()
        .filter(|s| ["a6", "c-core"].contains(&s.name.as_str()))
    {
        let connected = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let ok = server(|_, _| Answer::Status(Code::Ok));
        let count = Arc::clone(&connected);
        let connector: Connector = Arc::new(move || {
            let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if n > 0 {
                return ok();
            }
            Box::pin(async move {
                let (client, server) = tokio::io::duplex(64 * 1024);
                let plan = GoAway::after(3);
                let once = Arc::new(std::sync::atomic::AtomicUsize::new(1));
                tokio::spawn(goaway::serve(server, plan, once, Arc::default()));
                Ok(Box::new(client) as Box<dyn Io>)
            })
        });
        let clock = Clock::Tokio;
        let connections = Connections::open(connector, 1, &clock);
        connections.established().await.unwrap();
        let transport = GrpcTransport::new(connections, "test:1", 0, clock.clone(), None).unwrap();
        let start = clock.now();
        let recorder = Arc::new(Recorder::new(RecorderConfig {
            start,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(10),
            deadline: Duration::from_secs(5),
        }));
        let stack = strategy::build(s, transport, Arc::clone(&recorder) as _, &clock, 1);
        let calls = (0..3u64).map(|id| {
            let call = Call {
                id,
                intended: start,
                deadline: start + Duration::from_secs(5),
                previous_attempts: 0,
                ordinal: 0,
                kind: AttemptKind::Original,
                warmup: false,
                payload_bytes: 0,
                method: Method::Stream,
                idempotency_key: false,
                sent_deadline: None,
                meter: Arc::new(CallMeter::default()),
                commit: None,
                transparent: s.client.flavor().transparent,
            };
            tokio::spawn(stack.clone().oneshot(call))
        });
        for call in calls.collect::<Vec<_>>() {
            assert!(call.await.unwrap().is_ok(), "{}", s.name);
        }
        let state = recorder.finish().unwrap();
        assert_eq!(
            (state.attempts, state.transparent, state.not_processed),
            (3, 2, [0, 2, 0]),
            "{}",
            s.name
        );
        assert_eq!(connected.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
