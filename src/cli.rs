//! The command line as clap reads it: every subcommand and its arguments, checked as far as a
//! flag can be checked on its own (durations, shares, times).
//!
//! What each command does is in `crate::commands`, which reads these types; this module knows
//! nothing of it (the edge of the module graph, docs/architecture.md "Layers").

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::profile;
use crate::runner::ClockMode;

/// Open-loop gRPC load generator that measures client resilience strategies.
#[derive(Debug, Parser)]
#[command(name = "resilbench", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a profile: each strategy in turn against the same backend conditions.
    Run(Box<RunArgs>),
    /// Check a profile and print the resolved plan.
    Validate(ValidateArgs),
    /// Serve a profile's backend alone (for `run --target`, or any gRPC client) until Ctrl-C.
    Serve(ServeArgs),
    /// Put a profile's backend faults in front of a real gRPC service, as a proxy.
    Proxy(ProxyArgs),
    /// Write the HTML report of a results file.
    Report(ReportArgs),
    /// Compare two runs of a profile: every figure, A, B, difference, ratio, flagged if real.
    Compare(CompareArgs),
    /// Gate a run in CI: exit 0 when every limit and budget holds, 1 when one does not.
    Check(CheckArgs),
    /// Merge the shards of a sharded run (`run --shard K/N`) into one ordinary run folder,
    /// or the shards of a sweep (`sweep --shard K/N`) into one sweep folder.
    Merge(MergeArgs),
    /// List the profiles built into the binary, or print one (`--print NAME`).
    Profiles(ProfilesArgs),
    /// Run a profile at many settings (its [sweep], or --vary): the trade-off frontier, load
    /// curves, and the cheapest settings that meet a goal.
    Sweep(SweepArgs),
}

/// `resilbench sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// The profile (TOML); its [sweep] table says what to vary, unless --vary does.
    pub profile: PathBuf,
    /// A key of the resolved plan (as `validate` prints it) and its values, e.g.
    /// load.rate=500..5000x2 or strategies.grpc.layers.grpc_retry.max_attempts=2..5
    /// (docs/sweeps.md). Repeatable; replaces a [sweep.vary] key of the same name.
    #[arg(long = "vary", value_name = "KEY=VALUES")]
    pub vary: Vec<String>,
    /// Conditions the recommended point must meet, e.g. "latency_ms.e2e.p99 <= 50"
    /// "success_rate >= 99.9%" [default: the [sweep] goal, else the [gate]'s limits].
    #[arg(long, value_name = "CONDITION", num_args = 1..)]
    pub goal: Vec<String>,
    /// Run only this strategy at each point (repeatable) [default: the [sweep] strategies,
    /// else all].
    #[arg(long = "strategy", value_name = "NAME")]
    pub strategy: Vec<String>,
    /// Sweep folder for sweep.json, sweep.html and points/ [default:
    /// reports/<profile>-sweep-<UTC time>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write into an --out folder that holds an earlier sweep (its files are removed first).
    #[arg(long)]
    pub force: bool,
    /// A virtual clock (exact; points run in parallel) or wall-clock time (points in turn).
    #[arg(long, value_enum, default_value_t = ClockMode::Virtual)]
    pub clock: ClockMode,
    /// Points run at once on a virtual clock [default: one per core].
    #[arg(long, short = 'j', value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub jobs: Option<u16>,
    /// Run every N-th point from the K-th (from 0); `resilbench merge` joins the shards.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<crate::results::Shard>,
    /// Replace the profile's load.duration at every point (e.g. 30s).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Replace the profile's load.rate at every point (unless the sweep varies it).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Replace the profile's seed at every point.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Send to a backend started with `resilbench serve` (real clock only).
    #[arg(long)]
    pub target: Option<String>,
    /// Check every point and print the grid; run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// No progress display.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `resilbench profiles`.
#[derive(Debug, Args)]
pub struct ProfilesArgs {
    /// Write this built-in profile to standard output, to start from.
    #[arg(long, value_name = "NAME")]
    pub print: Option<String>,
}

/// What `run --export` writes beside results.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Export {
    /// summary.csv (one row per strategy) and timeline.csv (one row per strategy and second).
    Csv,
}

/// `resilbench merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Every shard's results.json (or run folder), one per shard.
    #[arg(required = true, num_args = 1..)]
    pub results: Vec<PathBuf>,
    /// Run folder for the merged results.json, .hlog files and report.html.
    #[arg(long, default_value = "merged")]
    pub out: PathBuf,
    /// Replace the run already in the --out folder (a previous merge).
    #[arg(long)]
    pub force: bool,
}

/// `resilbench run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The profile: a TOML file, or the name of a built-in profile (`resilbench profiles`).
    /// Leave it out for a quick run of your own service: `--target URL --call pkg.S/M`.
    pub profile: Option<PathBuf>,
    /// What a quick run of your own service calls, when there is no profile.
    #[command(flatten)]
    pub quick: QuickArgs,
    /// Run folder for results.json, report.html and the .hlog files [default: reports/<profile>-<UTC time>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write into an --out folder that already holds files (they may be replaced).
    #[arg(long)]
    pub force: bool,
    /// Replace the profile's load.duration (e.g. 30s).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Replace the profile's load.rate (calls per second: 500, 1k, 2.5k).
    #[arg(long, alias = "rps", value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Run only this strategy (give it more than once for several), in the profile's order.
    #[arg(long = "strategy", value_name = "NAME")]
    pub strategies: Vec<String>,
    /// Apply this gate file at the end (in place of the profile's [gate]); exit 1 if it fails.
    #[arg(long, value_name = "FILE")]
    pub gate: Option<PathBuf>,
    /// Also write the summary and the per-second timeline in this format.
    #[arg(long, value_enum)]
    pub export: Option<Export>,
    /// Replace the profile's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Wall-clock time, or a virtual clock (exact, reproducible, fast; embedded backend only).
    #[arg(long, value_enum, default_value_t = ClockMode::Real)]
    pub clock: ClockMode,
    /// Send to a backend started elsewhere with `resilbench serve` (host:port), or, with a
    /// profile's [target] or a quick run, the address of your own service (host:port,
    /// http://host:port, https://host[:port]).
    #[arg(long)]
    pub target: Option<String>,
    /// No progress display.
    #[arg(long, short)]
    pub quiet: bool,
    /// Run the K-th of N shards (from 0): call i of the schedule is shard i mod N's, at its
    /// intended time. `resilbench merge` puts the shards' results together.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<crate::results::Shard>,
    /// Start the schedule at this wall-clock time (RFC 3339 in UTC like 2026-11-24T10:00:00Z, or Unix
    /// milliseconds), so that shards on several hosts line up. Strategy k starts one slot
    /// later per strategy (its duration, longest deadline, drain and 2 s).
    #[arg(long, value_name = "TIME", value_parser = parse_start_at)]
    pub start_at: Option<std::time::SystemTime>,
    /// How long reaching a --target may take: each connection (TCP and the HTTP/2 handshake,
    /// until the server's SETTINGS), and each Control call (Reset, Stats).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "2s")]
    pub connect_timeout: Duration,
    /// Replace the profile's load.cooldown: the pause between strategies run in turn, so one
    /// strategy's retry storm does not spill into the next one's figures [default: 5s with
    /// --target, else 0s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub cooldown: Option<Duration>,
}

/// A quick run of the user's own service without a profile, with ghz's flags where they mean
/// the same (`--call`, `--proto`, `--protoset`, `-i`, `-d`, `-D`, `-m`, `--cacert`, `--cert`,
/// `--key`, `--cname`, `--authority`, `--rps`): the same profile is built in memory, a
/// no-retry baseline and one strategy per `--service-config`.
#[derive(Debug, Clone, Args, Default)]
#[command(next_help_heading = "Your own service, without a profile (a quick run)")]
pub struct QuickArgs {
    /// The method to call: package.Service/Method (unary or server streaming).
    #[arg(long, value_name = "METHOD")]
    pub call: Option<String>,
    /// A .proto file defining the service (repeatable); compiled in process, no protoc.
    #[arg(long = "proto", value_name = "FILE")]
    pub protos: Vec<PathBuf>,
    /// A directory the .proto files' imports are found in (repeatable, or comma-separated).
    #[arg(
        long = "import-path",
        short = 'i',
        alias = "import-paths",
        value_name = "DIR",
        value_delimiter = ','
    )]
    pub import_paths: Vec<PathBuf>,
    /// A compiled FileDescriptorSet (protoc --include_imports -o FILE), instead of --proto.
    #[arg(long, value_name = "FILE")]
    pub protoset: Option<PathBuf>,
    /// Ask the server for the schema (gRPC reflection); the default without --proto or
    /// --protoset, as in ghz.
    #[arg(long)]
    pub reflection: bool,
    /// The request as proto3 JSON, with {{call}}, {{uuid}}, {{int 1 9}}... drawn per call.
    #[arg(long, short = 'd', value_name = "JSON")]
    pub data: Option<String>,
    /// A file holding the request's JSON, instead of -d.
    #[arg(long = "data-file", short = 'D', value_name = "FILE")]
    pub data_file: Option<PathBuf>,
    /// A header (metadata) to send, as 'name: value' (repeatable; templated like -d).
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Metadata as a JSON object ('{"authorization": "Bearer x"}'), as ghz's -m.
    #[arg(long, short = 'm', value_name = "JSON")]
    pub metadata: Option<String>,
    /// A gRPC service config (JSON file) to measure: one strategy each (repeatable), beside
    /// a baseline without retries.
    #[arg(long = "service-config", value_name = "FILE")]
    pub service_configs: Vec<PathBuf>,
    /// The :authority to send, instead of the address's.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub authority: Option<String>,
    /// Do not verify the server's TLS certificate (ghz's --skipTLS; curl's -k).
    #[arg(long, alias = "skipTLS")]
    pub insecure: bool,
    /// PEM file of the CA certificates to trust (instead of the system's).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// PEM file of the client certificate, for mTLS (with --key).
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// PEM file of the client's private key, for mTLS (with --cert).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// The name to check the server's certificate against (and send as SNI).
    #[arg(long, value_name = "NAME")]
    pub cname: Option<String>,
    /// Each call's deadline [default: 1s].
    #[arg(long, alias = "timeout", value_name = "DURATION", value_parser = parse_duration)]
    pub deadline: Option<Duration>,
    /// HTTP/2 connections to the service [default: 1].
    #[arg(long, value_name = "N")]
    pub connections: Option<u32>,
}

impl QuickArgs {
    /// The flags given, as written (to refuse them beside a profile).
    pub fn given(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut flag = |on: bool, name: &'static str| {
            if on {
                out.push(name);
            }
        };
        flag(self.call.is_some(), "--call");
        flag(!self.protos.is_empty(), "--proto");
        flag(!self.import_paths.is_empty(), "--import-path");
        flag(self.protoset.is_some(), "--protoset");
        flag(self.reflection, "--reflection");
        flag(self.data.is_some(), "-d");
        flag(self.data_file.is_some(), "-D");
        flag(!self.headers.is_empty(), "-H");
        flag(self.metadata.is_some(), "-m");
        flag(!self.service_configs.is_empty(), "--service-config");
        flag(self.authority.is_some(), "--authority");
        flag(self.insecure, "--insecure");
        flag(self.cacert.is_some(), "--cacert");
        flag(self.cert.is_some(), "--cert");
        flag(self.key.is_some(), "--key");
        flag(self.cname.is_some(), "--cname");
        flag(self.deadline.is_some(), "--deadline");
        flag(self.connections.is_some(), "--connections");
        out
    }
}

/// `--start-at`: RFC 3339 in UTC (with or without the `Z`) or Unix milliseconds.
pub fn parse_start_at(text: &str) -> Result<std::time::SystemTime, String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let ms: u64 = text.parse().map_err(|_| format!("`{text}` is too large"))?;
        return std::time::UNIX_EPOCH
            .checked_add(Duration::from_millis(ms))
            .ok_or_else(|| format!("`{text}` is too large"));
    }
    humantime::parse_rfc3339_weak(text.trim_end_matches('Z'))
        .map_err(|e| format!("expected RFC 3339 (2026-11-24T10:00:00Z) or Unix ms: {e}"))
}

/// `--rate`: calls per second, with an optional `k` (thousands) or `/s`. The value is checked
/// with the profile, as `load.rate`.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let t = text.trim().trim_end_matches("/s");
    let (digits, scale) = match t.strip_suffix(['k', 'K']) {
        Some(d) => (d, 1000.0),
        None => (t, 1.0),
    };
    let v: f64 = digits.trim().parse().map_err(|_| {
        format!("`{text}` is not a rate; expected calls per second such as 500, 1k or 2.5k")
    })?;
    // The range is the profile's to check, with `load.rate` named in the error.
    Ok(v * scale)
}

/// `resilbench validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The profile: a TOML file, or the name of a built-in profile.
    pub profile: PathBuf,
}

/// `resilbench serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The profile whose [backend] to serve: a TOML file, or a built-in profile's name.
    pub profile: PathBuf,
    /// Address to listen on (loopback unless you name another).
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub listen: String,
    /// Print one line per attempt: request id, attempt, grpc-previous-rpc-attempts, status.
    #[arg(long)]
    pub log_attempts: bool,
    /// Threads that answer calls (default: one per core; not the backend model's
    /// `workers`). Each connection is answered by one thread, given out in turn, so a client
    /// with fewer connections leaves threads idle; one more thread accepts connections. Fewer
    /// leave cores to a generator on the same machine (docs/PERFORMANCE.md).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
    /// HTTP/2 streams one connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_streams: u32,
    /// Calls in progress at once over every connection; one more is answered
    /// RESOURCE_EXHAUSTED at once.
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub max_calls: u64,
    /// A connection whose client has not sent HTTP/2's preface by then is closed.
    #[arg(long, value_name = "DURATION", value_parser = parse_positive, default_value = "10s")]
    pub handshake_timeout: Duration,
    /// A connection with no call for this long is told to go away (GOAWAY).
    #[arg(long, value_name = "DURATION", value_parser = parse_positive, default_value = "5m")]
    pub idle_timeout: Duration,
}

/// `resilbench proxy`.
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// The profile whose [backend] faults and [[phases]] meet each call: a TOML file, or a
    /// built-in profile's name.
    pub profile: PathBuf,
    /// Address to listen on (loopback unless you name another).
    #[arg(long, default_value = "127.0.0.1:50061")]
    pub listen: String,
    /// The real service: host:port (plaintext HTTP/2), http://host:port or https://host[:port]
    /// (TLS), as `[target] address`.
    #[arg(long, value_name = "ADDRESS")]
    pub upstream: String,
    /// The `:authority` sent upstream, in place of the address's.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub authority: Option<String>,
    /// PEM file of the CAs to trust for an https:// upstream, in place of the system's.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<String>,
    /// PEM client certificate for mTLS to the upstream (with --key).
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<String>,
    /// PEM client key for mTLS to the upstream (with --cert).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<String>,
    /// The name the upstream's certificate is checked against (and SNI).
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,
    /// Do not verify the upstream's certificate (a warning says so).
    #[arg(long)]
    pub insecure: bool,
    /// Latency of a forwarded call: the upstream's own, stretched by brownouts (`upstream`),
    /// or the profile's drawn service time added before forwarding (`profile`).
    #[arg(long, value_enum, default_value_t = ProxyLatency::Upstream)]
    pub latency: ProxyLatency,
    /// Print one line per attempt: path, draw key, attempt, what the proxy did.
    #[arg(long)]
    pub log_attempts: bool,
    /// HTTP/2 connections to the upstream, per thread (each thread keeps its own, taken in
    /// turn): two, so that an upstream serving each connection on one thread can use two of
    /// its cores for one client connection (docs/proxy.md, "Threads").
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub connections: u16,
    /// Threads that proxy calls (default: one per core). Each client connection is served by
    /// one thread, given out in turn, over that thread's own upstream connections; one more
    /// thread accepts connections.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
    /// How long one attempt to connect to the upstream (TCP, TLS, HTTP/2 SETTINGS) may take.
    #[arg(long, value_name = "DURATION", value_parser = parse_positive, default_value = "2s")]
    pub connect_timeout: Duration,
    /// The longest a call without a deadline may take through the proxy.
    #[arg(long, value_name = "DURATION", value_parser = parse_positive, default_value = "5m")]
    pub max_call: Duration,
    /// HTTP/2 streams one client connection may have open at once
    /// (SETTINGS_MAX_CONCURRENT_STREAMS).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_streams: u32,
    /// Calls in progress at once over every connection; one more is answered
    /// RESOURCE_EXHAUSTED at once.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub max_calls: u64,
    /// MiB of request bodies the calls of one client connection may hold in the proxy at
    /// once; a call whose request would go over is answered RESOURCE_EXHAUSTED.
    #[arg(long, value_name = "MIB", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub connection_request_mib: u32,
    /// How an outage shows itself: `status` (its status, Trailers-Only), `reset` (RST_STREAM
    /// REFUSED_STREAM), `reset:REASON` (RST_STREAM with that HTTP/2 error code, e.g.
    /// reset:CANCEL) or `refuse` (the connection closed; new ones reset while it lasts).
    #[arg(long, value_name = "MODE", default_value = "status", value_parser = crate::proxy::faults::OutageMode::parse)]
    pub outage: crate::proxy::faults::OutageMode,
    /// Read Envoy's fault headers (x-envoy-fault-abort-request, -abort-grpc-request,
    /// -delay-request and their -percentage), as Envoy's fault filter with header_abort and
    /// header_delay at 100%; they are then not forwarded.
    #[arg(long)]
    pub envoy_fault_headers: bool,
    /// MiB of request bodies every call together may hold in the proxy at once.
    #[arg(long, value_name = "MIB", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    pub request_mib: u32,
    /// A client connection that has not sent HTTP/2's preface by then is closed.
    #[arg(long, value_name = "DURATION", value_parser = parse_positive, default_value = "10s")]
    pub handshake_timeout: Duration,
    /// A client connection with no call for this long is told to go away (GOAWAY).
    #[arg(long, value_name = "DURATION", value_parser = parse_positive, default_value = "5m")]
    pub idle_timeout: Duration,
}

/// Where a forwarded call's latency comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProxyLatency {
    /// The upstream's own time, stretched by a brownout's latency factor.
    Upstream,
    /// The profile's drawn service time (brownouts included), waited before forwarding.
    Profile,
}

fn parse_positive(text: &str) -> Result<Duration, String> {
    let d = profile::duration::parse(text)?;
    if d.is_zero() {
        return Err("must be above 0".into());
    }
    Ok(d)
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    profile::duration::parse(text)
}

/// `resilbench report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The results file (results.json of a run), or a run folder holding one.
    pub results: PathBuf,
    /// Where to write the page [default: report.html beside the results file].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `resilbench compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Run A (before): a results.json, or a run folder holding one.
    pub a: PathBuf,
    /// Run B (after): a results.json, or a run folder holding one.
    pub b: PathBuf,
    /// Also write the comparison as an HTML page here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Relative change below which a difference is never flagged (5% or 0.05).
    #[arg(long, value_parser = parse_share, default_value = "5%")]
    pub threshold: f64,
    /// Exit 1 when a figure is WORSE beyond noise and the threshold (for CI).
    #[arg(long)]
    pub fail_on_worse: bool,
    /// Compare runs of different profiles (refused otherwise).
    #[arg(long)]
    pub force: bool,
}

/// `resilbench check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The results file to gate, or a run folder holding one.
    pub results: PathBuf,
    /// A gate file (TOML: what a profile's [gate] holds); replaces the profile's [gate].
    #[arg(long)]
    pub gate: Option<PathBuf>,
    /// A baseline results file for the gate's regression budgets.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Also write the checks as JUnit XML (one test case per check).
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Also write a markdown summary (for a CI job summary page).
    #[arg(long)]
    pub markdown: Option<PathBuf>,
}

fn parse_share(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("`{text}` is not a share; expected e.g. 5% or 0.05"))?;
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("`{text}` must be 0 or more"))
    }
}
