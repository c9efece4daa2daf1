//! Reaching a target started elsewhere (`--target`): its Control service's channel, and the
//! Control calls (`Reset`, `Stats`), each with a timeout.
//!
//! Every wait on the target is bounded by the run's connect timeout (`--connect-timeout`, 2 s
//! by default): reaching it (the TCP connection, then its answer to `Reset`) within one such
//! [`Budget`], and its answer to `Stats` within another. A target that accepts a connection
//! and never answers (a stopped process, a wrong port behind a proxy) fails the call then, as
//! one that refuses fails at once.
//!
//! How a Control call fails says what the target is: UNIMPLEMENTED means a gRPC server
//! without resilbench's Control service (it runs, it cannot report); anything else (refused,
//! reset, no answer in time) means the target is not there or not answering.

use std::time::Duration;

use tokio::time::Instant;
use tonic::transport::Channel;

use super::RunError;
use crate::clock::Clock;
use crate::pb;
use crate::transport::grpc::endpoint;

/// Time allowed for a step with a peer: a deadline, and the timeout it came from (for words).
#[derive(Debug, Clone, Copy)]
pub(super) struct Budget {
    /// When the step fails.
    pub deadline: Instant,
    /// The timeout the deadline was set from.
    pub timeout: Duration,
}

impl Budget {
    /// `timeout` from now.
    pub fn from_now(clock: &Clock, timeout: Duration) -> Self {
        Self {
            deadline: clock.now() + timeout,
            timeout,
        }
    }

    fn words(self) -> String {
        crate::profile::duration::format(self.timeout)
    }
}

/// Connects to `addr`, failing by the budget's deadline with the reason; or, when the target
/// `may_be_down`, saying so and returning a channel that connects when it can (and `false`:
/// not reached).
pub(super) async fn connect(
    addr: &str,
    clock: &Clock,
    may_be_down: bool,
    budget: Budget,
) -> Result<(Channel, bool), RunError> {
    let target_error = |reason: String| RunError::Target {
        target: addr.to_string(),
        reason,
    };
    let endpoint = endpoint(addr)
        .map_err(|e| target_error(error_chain(&e)))?
        .connect_timeout(budget.timeout);
    let reason = match clock.timeout_at(budget.deadline, endpoint.connect()).await {
        Ok(Ok(channel)) => return Ok((channel, true)),
        Ok(Err(e)) => error_chain(&e),
        Err(_) => format!("no connection within {}", budget.words()),
    };
    if !may_be_down {
        return Err(target_error(reason));
    }
    // Through the painter, in order with the progress of the strategies before.
    crate::progress::line(format!(
        "warning: cannot reach the target {addr}: {reason}; running anyway \
         (load.target_may_be_down): its calls fail with UNAVAILABLE until it answers"
    ));
    Ok((endpoint.connect_lazy(), false))
}

/// How a Control call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ControlFailure {
    /// The target answered UNIMPLEMENTED: it has no Control service.
    Unimplemented,
    /// The target did not answer, or answered with another error: why, in words.
    NoAnswer(String),
}

/// Calls `Reset` (keyed by `start_unix_ms`, 0 for none), waiting until the budget's deadline.
pub(super) async fn reset(
    control: &mut pb::control_client::ControlClient<Channel>,
    clock: &Clock,
    start_unix_ms: u64,
    budget: Budget,
) -> Result<pb::BackendStats, ControlFailure> {
    let call = control.reset(pb::ResetRequest { start_unix_ms });
    answer(
        "Reset",
        clock.timeout_at(budget.deadline, call).await,
        budget,
    )
}

/// Calls `Stats`, waiting until the budget's deadline.
pub(super) async fn stats(
    control: &mut pb::control_client::ControlClient<Channel>,
    clock: &Clock,
    budget: Budget,
) -> Result<pb::BackendStats, ControlFailure> {
    let call = control.stats(pb::StatsRequest {});
    answer(
        "Stats",
        clock.timeout_at(budget.deadline, call).await,
        budget,
    )
}

type Reply =
    Result<Result<tonic::Response<pb::BackendStats>, tonic::Status>, crate::clock::Elapsed>;

fn answer(call: &str, reply: Reply, budget: Budget) -> Result<pb::BackendStats, ControlFailure> {
    match reply {
        Ok(Ok(r)) => Ok(r.into_inner()),
        Ok(Err(s)) if s.code() == tonic::Code::Unimplemented => Err(ControlFailure::Unimplemented),
        Ok(Err(s)) => Err(ControlFailure::NoAnswer(status_words(call, &s))),
        Err(_) => Err(ControlFailure::NoAnswer(format!(
            "{call} had no answer within {}",
            budget.words()
        ))),
    }
}

/// A failed call in words: its status's name and message (the name alone when the message is
/// empty), and the transport's reason when there is one.
fn status_words(call: &str, s: &tonic::Status) -> String {
    let mut text = format!(
        "{call} failed with {}",
        crate::protocol::status::code_name(s.code())
    );
    if !s.message().is_empty() {
        text.push_str(": ");
        text.push_str(s.message());
    }
    if let Some(source) = std::error::Error::source(s) {
        text.push_str(" (");
        text.push_str(&error_chain(source));
        text.push(')');
    }
    text
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failure with an empty message is still said: by its status (it used to print
    /// "cannot reach the target ...: " with nothing after the colon).
    #[test]
    fn a_failure_with_an_empty_message_names_its_status() {
        let words = status_words("Reset", &tonic::Status::internal(""));
        assert_eq!(words, "Reset failed with INTERNAL");
        let words = status_words("Stats", &tonic::Status::unavailable("gone"));
        assert_eq!(words, "Stats failed with UNAVAILABLE: gone");
        let budget = Budget::from_now(&Clock::Tokio, Duration::from_secs(2));
        assert_eq!(
            answer("Reset", Ok(Err(tonic::Status::unimplemented(""))), budget),
            Err(ControlFailure::Unimplemented)
        );
        assert_eq!(
            answer("Stats", Err(crate::clock::Elapsed), budget),
            Err(ControlFailure::NoAnswer(
                "Stats had no answer within 2s".into()
            ))
        );
    }
}
