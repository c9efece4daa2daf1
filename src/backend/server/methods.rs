//! What a request off the wire becomes, and its answer: the `Backend` service's methods
//! (`Call`, `Mutate`, `Stream`) as the backend serves attempts, and the `Control` service's
//! (`Reset`, `Stats`).
//!
//! Requests are untrusted: ids longer than [`MAX_REQUEST_ID`] bytes and scripts longer than
//! [`MAX_SCRIPT`] steps are refused with INVALID_ARGUMENT, so a client cannot make the backend
//! remember without bound.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_stream::Stream;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Request, Response, Status};

use super::Shared;
use super::figures::to_pb;
use crate::backend::{Answer, Backend, Incoming, StreamEvent};
use crate::keyed::request_key;
use crate::pb;
use crate::profile::Method;
use crate::profile::backend::{PushbackValues, StepPlan};
use crate::protocol::header;
use crate::protocol::status::code_name;
use crate::protocol::timeout;

/// Longest request id accepted, in bytes.
pub const MAX_REQUEST_ID: usize = 256;

/// Longest script accepted with a request.
pub const MAX_SCRIPT: usize = 64;

impl Shared {
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
    /// A Control reply that says which backend this server serves (`backend::served`).
    fn with_plan(&self, mut reply: pb::BackendStats) -> pb::BackendStats {
        reply.served_json = crate::backend::served::describe(&self.plan).to_string();
        reply
    }
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
}
