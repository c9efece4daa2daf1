//! Reaching a target started elsewhere (`--target`): its Control service's channel.

use std::time::Duration;

use tonic::transport::Channel;

use super::RunError;
use crate::clock::Clock;
use crate::transport::grpc::endpoint;

/// Connects to `addr`, failing within about two seconds with the reason; or, when the
/// target `may_be_down`, saying so and returning a channel that connects when it can (and
/// `false`: not reached).
pub(super) async fn connect(
    addr: &str,
    clock: &Clock,
    may_be_down: bool,
) -> Result<(Channel, bool), RunError> {
    let target_error = |reason: String| RunError::Target {
        target: addr.to_string(),
        reason,
    };
    let endpoint = endpoint(addr).map_err(|e| target_error(error_chain(&e)))?;
    let reason = match clock
        .timeout(Duration::from_secs(2), endpoint.connect())
        .await
    {
        Ok(Ok(channel)) => return Ok((channel, true)),
        Ok(Err(e)) => error_chain(&e),
        Err(_) => "no connection within 2 s".into(),
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
