//! The backend's fault model as a profile states it: `[backend]` and its sub-tables.
//!
//! These types are both the profile schema (every table refuses unknown keys; missing keys take
//! the defaults below) and the resolved plan: nothing about the backend needs resolving (status
//! codes are [`StatusCode`]s from the moment they are read), only checking, which
//! `check_backend.rs` does. `docs/profiles.md` documents every key and `docs/backend.md` the
//! behaviour.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::codes;
use super::duration::{HumanDuration, human};
use crate::profile::latency::Latency;
use crate::profile::recorded_run::ErrorsFrom;
use crate::protocol::StatusCode;

pub use super::script::{PushbackValues, ScriptPlan, StepPlan};

/// The backend's fault model (`[backend]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackendPlan {
    /// Service time of an attempt once a worker takes it.
    pub latency: Latency,
    /// Service time of attempts answered with these statuses, instead of `latency` (errors can
    /// be fast or slow).
    #[serde(deserialize_with = "codes::table")]
    pub latency_by_status: BTreeMap<StatusCode, Latency>,
    /// Probability of answering with each status code, per attempt.
    #[serde(deserialize_with = "codes::table")]
    pub errors: BTreeMap<StatusCode, f64>,
    /// Takes `errors` from a recorded run's statuses (each failed status's share of a
    /// strategy's attempts); the resolved plan keeps both.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors_from: Option<ErrorsFrom>,
    /// Requests served at once; `None` is unlimited.
    pub workers: Option<u32>,
    /// Requests that may wait for a worker; `None` is unlimited. Beyond it: RESOURCE_EXHAUSTED.
    pub queue: Option<u32>,
    /// The `grpc-retry-pushback-ms` sent with RESOURCE_EXHAUSTED when the queue is full.
    pub pushback: Option<PushbackPlan>,
    /// A token-bucket quota on requests; beyond it: RESOURCE_EXHAUSTED.
    pub quota: Option<QuotaPlan>,
    /// What the backend does with a request whose caller gave up.
    pub on_cancel: OnCancel,
    /// Scripted status sequences for chosen requests.
    pub scripts: Vec<ScriptPlan>,
    /// The mutating method's faults and deduplication.
    pub mutation: MutationPlan,
    /// The server-streaming method's shape and faults.
    pub stream: StreamPlan,
    /// Several backends behind client-side round-robin; none is one backend.
    pub replicas: Vec<ReplicaPlan>,
}

impl Default for BackendPlan {
    fn default() -> Self {
        Self {
            latency: Latency::default(),
            latency_by_status: BTreeMap::new(),
            errors: BTreeMap::new(),
            errors_from: None,
            workers: None,
            queue: None,
            pushback: None,
            quota: None,
            on_cancel: OnCancel::Continue,
            scripts: Vec::new(),
            mutation: MutationPlan::default(),
            stream: StreamPlan::default(),
            replicas: Vec::new(),
        }
    }
}

/// What happens to a request whose caller cancelled it or whose deadline (`grpc-timeout`) passed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnCancel {
    /// The work goes on to its end, holding its worker: wasted work (most servers).
    #[default]
    Continue,
    /// The work stops at once and frees its worker (a server that watches its context).
    Stop,
}

/// How the backend computes `grpc-retry-pushback-ms` when its queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushbackPlan {
    /// Always this delay.
    pub fixed: Option<HumanDuration>,
    /// This much per request waiting in the queue (an estimate of the time to drain it).
    pub per_queued: Option<HumanDuration>,
}

/// A token bucket in front of the backend (GCRA, as the `governor` crate implements it).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaPlan {
    /// Requests per second allowed on average.
    pub rate: f64,
    /// Requests allowed at once after a quiet spell.
    #[serde(default = "one")]
    pub burst: u32,
    /// Send `grpc-retry-pushback-ms` with the time until the quota allows the next request.
    #[serde(default)]
    pub pushback: bool,
}

fn one() -> u32 {
    1
}

/// The mutating method (`Mutate`): a side effect per execution, counted by the backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MutationPlan {
    /// The side effect happens, then the reply is lost: a retry executes it again.
    pub lost_response: Option<LostResponsePlan>,
    /// Store each result by idempotency key and answer repeats with it (AIP-155).
    pub dedup: bool,
    /// How long a stored result is kept.
    #[serde(with = "human")]
    pub dedup_ttl: Duration,
    /// Most results stored at once (the oldest go first).
    pub dedup_capacity: u64,
}

impl Default for MutationPlan {
    fn default() -> Self {
        Self {
            lost_response: None,
            dedup: false,
            dedup_ttl: Duration::from_secs(60),
            dedup_capacity: 100_000,
        }
    }
}

/// The `lost_response` fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LostResponsePlan {
    /// Probability per executed attempt.
    pub rate: f64,
    /// How the reply fails: a status name (default UNAVAILABLE), or `"timeout"` (no reply
    /// until the caller's deadline).
    #[serde(default = "lost_unavailable")]
    pub fail: LostFail,
}

/// How a lost reply fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostFail {
    /// No reply until the caller's deadline (`"timeout"`).
    Timeout,
    /// This status.
    Status(StatusCode),
}

impl Serialize for LostFail {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Timeout => s.serialize_str("timeout"),
            Self::Status(code) => code.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for LostFail {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        if text == "timeout" {
            return Ok(Self::Timeout);
        }
        StatusCode::parse(&text)
            .map(Self::Status)
            .map_err(serde::de::Error::custom)
    }
}

fn lost_unavailable() -> LostFail {
    LostFail::Status(StatusCode::UNAVAILABLE)
}

fn unavailable() -> StatusCode {
    StatusCode::UNAVAILABLE
}

/// The server-streaming method (`Stream`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamPlan {
    /// Messages in a complete stream.
    pub messages: u32,
    /// Time between messages (the first comes after the service time).
    pub interval: Latency,
    /// A failure before the first message (the call may still be retried: gRFC A6).
    pub fail_before_first: Option<FaultPlan>,
    /// A failure right after message `message` (the call is committed: no retry).
    pub fail_after: Option<FaultAfterPlan>,
}

impl Default for StreamPlan {
    fn default() -> Self {
        Self {
            messages: 10,
            interval: Latency::Fixed {
                value: Duration::from_millis(1),
            },
            fail_before_first: None,
            fail_after: None,
        }
    }
}

/// A fault with a probability and a status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPlan {
    /// Probability per attempt.
    pub rate: f64,
    /// The status.
    #[serde(default = "unavailable")]
    pub status: StatusCode,
}

/// A fault after a given message of a stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultAfterPlan {
    /// The stream fails right after this message (from 1).
    pub message: u32,
    /// Probability per attempt.
    pub rate: f64,
    /// The status.
    #[serde(default = "unavailable")]
    pub status: StatusCode,
}

/// One replica: the base backend with some of its settings replaced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaPlan {
    /// Unique name (phases may target it).
    pub name: String,
    /// Replaces `backend.latency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
    /// Replaces `backend.errors`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "codes::optional_table"
    )]
    pub errors: Option<BTreeMap<StatusCode, f64>>,
    /// Replaces `backend.workers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<u32>,
    /// Replaces `backend.queue`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<u32>,
}

impl BackendPlan {
    /// The model of replica `index` (the base model when there are no replicas).
    ///
    /// Linear in the number of replicas for all of them: the other replicas are not copied
    /// (cloning the whole plan for each replica cost N² copies: 10,000 replicas took 34 s).
    pub fn replica(&self, index: usize) -> BackendPlan {
        // Every field named, so that a new one is copied too (the compiler says so).
        let BackendPlan {
            latency,
            latency_by_status,
            errors,
            errors_from,
            workers,
            queue,
            pushback,
            quota,
            on_cancel,
            scripts,
            mutation,
            stream,
            replicas: _,
        } = self;
        let mut model = BackendPlan {
            latency: latency.clone(),
            latency_by_status: latency_by_status.clone(),
            errors: errors.clone(),
            errors_from: errors_from.clone(),
            workers: *workers,
            queue: *queue,
            pushback: *pushback,
            quota: *quota,
            on_cancel: *on_cancel,
            scripts: scripts.clone(),
            mutation: mutation.clone(),
            stream: stream.clone(),
            replicas: Vec::new(),
        };
        if let Some(r) = self.replicas.get(index) {
            if let Some(latency) = &r.latency {
                model.latency = latency.clone();
            }
            if let Some(errors) = &r.errors {
                model.errors = errors.clone();
            }
            if r.workers.is_some() {
                model.workers = r.workers;
            }
            if r.queue.is_some() {
                model.queue = r.queue;
            }
        }
        model
    }

    /// Number of replicas (1 without `replicas`).
    pub fn replica_count(&self) -> usize {
        self.replicas.len().max(1)
    }

    /// The name of replica `index`.
    pub fn replica_name(&self, index: usize) -> String {
        self.replicas
            .get(index)
            .map_or_else(|| "backend".to_string(), |r| r.name.clone())
    }
}
