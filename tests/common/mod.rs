//! Helpers shared by the integration tests.

pub mod clients;
pub mod foreign;
pub mod goaway;
pub mod scripted;
pub mod silent_mtls;

use std::path::Path;
use std::process::{Command, Output};

use resilbench::profile::{self, Overrides, Plan};
use resilbench::progress::Progress;
use resilbench::results::Results;
use resilbench::runner::{self, ClockMode, RunOptions};
use tokio_util::sync::CancellationToken;

/// A plan from profile text; panics with the error if it is invalid.
pub fn plan(toml: &str) -> Plan {
    profile::parse(toml, "test.toml", "test", &Overrides::default())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A real-time runtime with two worker threads (a test's clients and servers beside it).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A paused-clock, current-thread runtime: the runtime of `--clock virtual`.
pub fn virtual_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

/// Runs a plan on a virtual clock, quietly.
pub fn run_virtual(plan: &Plan) -> Results {
    run_virtual_shard(plan, None)
}

/// Runs one shard of a plan (all of it with `None`) on a virtual clock, quietly.
pub fn run_virtual_shard(plan: &Plan, shard: Option<resilbench::results::Shard>) -> Results {
    let opts = RunOptions {
        clock: ClockMode::Virtual,
        target: None,
        progress: Progress::Quiet,
        shard,
        start_at: None,
        connect_timeout: runner::CONNECT_TIMEOUT,
    };
    virtual_runtime()
        .block_on(async {
            let clock = opts.clock.start();
            runner::execute(plan, &opts, &clock, CancellationToken::new()).await
        })
        .unwrap()
}

/// The resilbench binary built for these tests.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_resilbench"))
}

/// Runs the binary with `args` in `dir`, returning its output.
pub fn resilbench(args: &[&str], dir: &Path) -> Output {
    bin().args(args).current_dir(dir).output().unwrap()
}

/// Standard error as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The path of a file in tests/fixtures.
pub fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A fixture results file as JSON, to be changed by a test.
pub fn fixture_json(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

/// Writes `json` to `dir/name` and returns the path.
pub fn write_json(dir: &Path, name: &str, json: &serde_json::Value) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(json).unwrap()).unwrap();
    path
}

/// Standard output as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The head of a gRPC call to `uri` as an HTTP/2 client sends it (for tests that speak raw
/// h2 to a server: streams opened and held, frames sent by hand).
pub fn grpc_post(uri: &str) -> http::request::Builder {
    http::Request::post(uri)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
}
