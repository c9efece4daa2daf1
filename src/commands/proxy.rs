//! `resilbench proxy`: a profile's backend faults in front of a real gRPC service, until a
//! signal (`crate::proxy` does the work).

use std::process::ExitCode;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::signals::serve_until_signal;
use super::{CliError, EXIT_INTERRUPTED, build_runtime};
use crate::backend::server::Shared;
use crate::cli::{ProxyArgs, ProxyLatency};
use crate::clock::Clock;
use crate::profile::target::{Address, TlsPlan};
use crate::profile::{Overrides, duration};
use crate::proxy::{self, Options, Proxy};
use crate::runner::ClockMode;
use crate::transport::tls;

pub(super) fn proxy(args: ProxyArgs) -> Result<ExitCode, CliError> {
    let loaded = super::profiles::load(&args.profile, &Overrides::default())?;
    for warning in &loaded.plan.caveats {
        eprintln!("warning: {warning}");
    }
    let source = loaded.source;
    let plan = Arc::new(loaded.plan);
    let upstream =
        Address::parse(&args.upstream).map_err(|e| CliError::Other(format!("--upstream: {e}")))?;
    let tls_plan = TlsPlan {
        ca: args.ca.clone(),
        cert: args.cert.clone(),
        key: args.key.clone(),
        server_name: args.server_name.clone(),
        insecure: args.insecure,
    };
    if !upstream.tls && (tls_plan != TlsPlan::default()) {
        return Err(CliError::Other(format!(
            "--upstream {} is plaintext; TLS options are for an https:// upstream",
            args.upstream
        )));
    }
    let (connector, warnings) = tls::connector_for(&upstream, Some(&tls_plan))
        .map_err(|e| CliError::Other(format!("--upstream {}: {e}", args.upstream)))?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    let authority = args.authority.clone().unwrap_or(upstream.authority.clone());
    let options = Options {
        authority: authority.into_bytes().into(),
        https: upstream.tls,
        max_call: args.max_call,
        added_latency: args.latency == ProxyLatency::Profile,
        log_attempts: args.log_attempts,
        max_streams: args.max_streams,
        max_calls: usize::try_from(args.max_calls).unwrap_or(usize::MAX),
        connection_bytes: mib(args.connection_request_mib),
        total_bytes: mib(args.request_mib),
        outage: args.outage,
        envoy_headers: args.envoy_fault_headers,
        handshake_timeout: Some(args.handshake_timeout),
        idle_timeout: Some(args.idle_timeout),
    };
    let threads = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        usize::from,
    );
    let upstream_plan = proxy::threads::Upstream {
        connector,
        connections: usize::from(args.connections),
        connect_timeout: args.connect_timeout,
    };
    // Each client connection is a file descriptor, and its calls' upstream streams share the
    // threads' connections: the soft limit (often 1,024) up to the hard one.
    let _ = crate::backend::serve_threads::raise_open_files();
    // This thread accepts connections; the proxy threads answer them.
    let runtime = build_runtime(ClockMode::Real)?;
    let done = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| CliError::Other(format!("cannot listen on {}: {e}", args.listen)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| CliError::Other(e.to_string()))?;
        let shared = Shared::new(plan);
        let proxy = Proxy::unconnected(shared, options, Clock::Precise);
        let stop = CancellationToken::new();
        let (servers, upstreams) = proxy::threads::start(&proxy, &upstream_plan, threads, &stop)
            .await
            .map_err(CliError::Other)?;
        for upstream in &upstreams {
            if let Err(e) = upstream.established().await {
                eprintln!(
                    "warning: the upstream {} is not reachable yet ({}); its calls fail \
                     UNAVAILABLE until it is",
                    args.upstream, e.0
                );
                break;
            }
        }
        eprintln!(
            "resilbench proxy: faults of {source} in front of {} listening on {addr} (Ctrl-C to \
             stop; {threads} threads, each with {} connection(s) upstream; at most {} calls' \
             wait on the upstream without a deadline)",
            args.upstream,
            args.connections,
            duration::format(args.max_call)
        );
        let Some(joined) = serve_until_signal(servers, listener, &stop, "proxy").await else {
            return Ok(ExitCode::from(EXIT_INTERRUPTED));
        };
        drop(upstreams);
        eprintln!("{}", proxy.stopped_line());
        joined.map_err(CliError::Other)?;
        Ok(ExitCode::SUCCESS)
    });
    runtime.shutdown_background();
    done
}

/// `n` MiB in bytes.
fn mib(n: u32) -> usize {
    usize::try_from(u64::from(n) << 20).unwrap_or(usize::MAX)
}
