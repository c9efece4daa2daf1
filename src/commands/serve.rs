//! `resilbench serve`: a profile's backend alone, until a signal.

use std::process::ExitCode;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::signals::serve_until_signal;
use super::{CliError, EXIT_INTERRUPTED, build_runtime};
use crate::backend::serve_threads::ServeThreads;
use crate::backend::server::Shared;
use crate::backend::serving::Limits;
use crate::cli::ServeArgs;
use crate::profile::Overrides;
use crate::runner::ClockMode;

pub(super) fn serve(args: ServeArgs) -> Result<ExitCode, CliError> {
    let loaded = super::profiles::load(&args.profile, &Overrides::default())?;
    for warning in &loaded.plan.caveats {
        eprintln!("warning: {warning}");
    }
    let source = loaded.source;
    let plan = Arc::new(loaded.plan);
    let threads = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        usize::from,
    );
    let mut limits = Limits::serve();
    limits.max_streams = args.max_streams;
    limits.max_calls = usize::try_from(args.max_calls).unwrap_or(usize::MAX);
    limits.handshake_timeout = Some(args.handshake_timeout);
    limits.idle_timeout = Some(args.idle_timeout);
    // Each connection is a file descriptor: the soft limit (often 1,024) up to the hard one.
    let open_files = crate::backend::serve_threads::raise_open_files();
    let limits_text = format!(
        "at most {} streams per connection, {} calls in progress; open files {}",
        limits.max_streams,
        limits.max_calls,
        match open_files {
            Ok((_, now)) => now.to_string(),
            Err(e) => format!("not raised ({e})"),
        }
    );
    // This thread accepts connections; the server threads answer them.
    let runtime = build_runtime(ClockMode::Real)?;
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| CliError::Other(format!("cannot listen on {}: {e}", args.listen)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| CliError::Other(e.to_string()))?;
        let shared = Shared::new(plan)
            .log_attempts(args.log_attempts)
            .count_refused(&limits);
        let stop = CancellationToken::new();
        let servers =
            ServeThreads::start(&shared, threads, &stop, &limits).map_err(CliError::Other)?;
        eprintln!("resilbench serve: backend of {source} listening on {addr} (Ctrl-C to stop)");
        eprintln!("resilbench serve: {limits_text}");
        let Some(served) = serve_until_signal(servers, listener, &stop, "serve").await else {
            return Ok(ExitCode::from(EXIT_INTERRUPTED));
        };
        let stats = shared.stats();
        eprintln!(
            "resilbench serve: stopped. received {}  executed {}  rejected {}  wasted {}  duplicate side effects {}  queue high water {}  refused at --max-calls {}",
            stats.received,
            stats.executed,
            stats.rejected,
            stats.wasted,
            stats.duplicate_side_effects,
            stats.queue_high_water,
            limits.refused()
        );
        served.map_err(CliError::Other)?;
        Ok(ExitCode::SUCCESS)
    });
    // Without waiting for a drain a second signal cut short.
    runtime.shutdown_background();
    served
}
