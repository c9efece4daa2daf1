//! Signals: the first Ctrl-C or SIGTERM stops a run and writes what was measured; a second
//! exits at once; once the results are written, the first exits at once.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::EXIT_INTERRUPTED;

/// Cancels `stop` on the first Ctrl-C or SIGTERM; a second one exits at once.
pub(super) async fn stop_on_signal(stop: CancellationToken) {
    if wait_for_signal().await.is_err() {
        return;
    }
    // Through the painter, as progress is: this thread keeps the schedule.
    crate::progress::line(
        "\ninterrupted: stopping and writing what was measured (again to abort at once)",
    );
    stop.cancel();
    if wait_for_signal().await.is_ok() {
        // A run folder half written is removed; the previous one, if any, is whole.
        crate::runner::abandon_writing();
        crate::progress::flush(Duration::from_millis(200));
        std::process::exit(i32::from(EXIT_INTERRUPTED));
    }
}

/// Once the results are written: the first Ctrl-C or SIGTERM exits at once (130), with what
/// was measured on disk; only what is left to print (the export's paths, the gate) is skipped.
pub(super) async fn exit_on_signal() {
    if wait_for_signal().await.is_ok() {
        crate::progress::line(
            "\ninterrupted: the results are written; exiting without the gate's verdict",
        );
        crate::progress::flush(Duration::from_millis(200));
        std::process::exit(i32::from(EXIT_INTERRUPTED));
    }
}

#[cfg(unix)]
pub(super) async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}

#[cfg(not(unix))]
pub(super) async fn wait_for_signal() -> std::io::Result<()> {
    tokio::signal::ctrl_c().await
}

/// `serve`'s and `proxy`'s end: serves `listener` on `servers` until Ctrl-C or SIGTERM, then
/// refuses new connections at once (a client fails fast or goes elsewhere, rather than waiting
/// on a socket nobody reads), cancels `stop` so the open ones drain, and waits for the
/// threads. `None`: a second signal came first (a client holding a call open keeps the drain
/// going), said on stderr as `resilbench {name}`'s.
pub(super) async fn serve_until_signal(
    mut servers: crate::backend::serve_threads::ServeThreads,
    listener: tokio::net::TcpListener,
    stop: &CancellationToken,
    name: &str,
) -> Option<Result<(), String>> {
    servers.accept(&listener, wait_for_signal()).await;
    drop(listener);
    stop.cancel();
    let joined = tokio::task::spawn_blocking(move || servers.join());
    tokio::select! {
        joined = joined => Some(joined.unwrap_or_else(|e| Err(e.to_string()))),
        _ = wait_for_signal() => {
            eprintln!("resilbench {name}: stopped at a second signal, calls still open");
            None
        }
    }
}
