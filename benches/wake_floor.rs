//! What one wake-up of a sleeping thread costs on this machine, to a program that does nothing
//! else: the floor under any open-loop generator's CPU per call once its lag budget fixes how
//! often it must wake (docs/PERFORMANCE.md, "Wake-ups per call (issue 26)").
//!
//! `cargo bench --bench wake_floor` (release build, about 12 s). Three measures, each thread's
//! own CPU time read from `/proc/thread-self/schedstat` (time on CPU, exact) and its context
//! switches from `/proc/thread-self/status`:
//! - **timer**: a thread sleeps 500 µs, N times (`std::thread::sleep`, an hrtimer): CPU and
//!   switches per wake-up, and how late each wake-up came;
//! - **ping-pong**: a byte over loopback TCP to a second process and back (this one pinned to
//!   the first CPU, the other to the last, with `taskset` when there are two), each side
//!   blocked in its read until the other's byte arrives: both sides' CPU and switches per
//!   round trip (one wake-up each);
//! - **paced ping-pong**: the same with a 500 µs sleep before each round trip, the shape of
//!   one open-loop quantum (a timer wake-up to send, a read wake-up for the answer).
//!
//! Nothing is asserted; the figures are this machine's, and they travel as counts: the same
//! switches per call cost what this prints per switch. Linux only (it says so and stops
//! elsewhere: the figures come from `/proc`).

// This bench measures the machine, not the tool: the wall clock and blocking sleeps are what
// it times, not the run's clock.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// This thread's time on CPU (ns) and its voluntary and involuntary context switches.
fn own() -> (u64, u64, u64) {
    let sched = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = sched
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (
        ns,
        field("voluntary_ctxt_switches:"),
        field("nonvoluntary_ctxt_switches:"),
    )
}

/// CPU µs and switches per unit between two [`own`] readings.
fn per(before: (u64, u64, u64), after: (u64, u64, u64), n: u64) -> String {
    let n = n as f64;
    format!(
        "CPU {:.2} us, {:.3} voluntary + {:.3} involuntary switches",
        (after.0 - before.0) as f64 / 1e3 / n,
        (after.1 - before.1) as f64 / n,
        (after.2 - before.2) as f64 / n
    )
}

fn timer(period: Duration, n: u64) {
    let mut late = Vec::with_capacity(n as usize);
    let before = own();
    for _ in 0..n {
        let t = Instant::now();
        std::thread::sleep(period);
        late.push(t.elapsed().saturating_sub(period));
    }
    let after = own();
    late.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let over_1ms = late
        .iter()
        .filter(|d| **d > Duration::from_millis(1))
        .count();
    println!(
        "timer, {} us sleeps x {n}: {} per wake-up; late p50 {:.3} / p99 {:.3} / max {:.3} ms, {over_1ms} over 1 ms",
        period.as_micros(),
        per(before, after, n),
        ms(late[late.len() / 2]),
        ms(late[late.len() * 99 / 100]),
        ms(late[late.len() - 1]),
    );
}

/// The second process: echoes each byte, then prints its own figures.
fn pong(addr: &str, n: u64) {
    let mut s = TcpStream::connect(addr).expect("connects to the bench");
    s.set_nodelay(true).expect("TCP_NODELAY");
    let mut b = [0u8; 1];
    let before = own();
    for _ in 0..n {
        s.read_exact(&mut b).expect("a byte");
        s.write_all(&b).expect("echo");
    }
    let after = own();
    println!("{}", per(before, after, n));
}

fn ping_pong(n: u64, gap: Option<Duration>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binds loopback");
    let addr = listener.local_addr().expect("its address").to_string();
    let child = on_cpu(Cpu::Last)
        .args(["--pong", &addr, &n.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("starts the second process");
    let (mut s, _) = listener.accept().expect("the second process connects");
    s.set_nodelay(true).expect("TCP_NODELAY");
    let mut b = [0u8; 1];
    let before = own();
    for _ in 0..n {
        if let Some(gap) = gap {
            std::thread::sleep(gap);
        }
        s.write_all(b"x").expect("a byte");
        s.read_exact(&mut b).expect("its echo");
    }
    let after = own();
    let out = child.wait_with_output().expect("the second process ends");
    let name = gap.map_or("ping-pong".to_string(), |g| {
        format!("paced ping-pong ({} us sleep first)", g.as_micros())
    });
    println!(
        "{name} x {n}: this side {} per round trip; the other side {} per round trip",
        per(before, after, n),
        String::from_utf8_lossy(&out.stdout).trim()
    );
}

enum Cpu {
    First,
    Last,
}

/// The first and the last CPU this process may run on (`Cpus_allowed_list` in
/// `/proc/self/status`: "0-1", "2,3", "0-3,8-11"), when there are two or more.
fn allowed_cpus() -> Option<(u32, u32)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
    let mut cpus = Vec::new();
    for part in list.trim().split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        cpus.push(a.trim().parse::<u32>().ok()?);
        cpus.push(b.trim().parse::<u32>().ok()?);
    }
    let (first, last) = (*cpus.iter().min()?, *cpus.iter().max()?);
    (first != last).then_some((first, last))
}

/// This bench as a new process, pinned with `taskset` to the first or the last CPU it was
/// allowed at its start (handed down in WAKE_FLOOR_CPUS, since the pinned process is allowed
/// one), so that each wake-up crosses CPUs, as between a pinned generator and its server;
/// unpinned when there is one CPU or no `taskset`.
fn on_cpu(cpu: Cpu) -> Command {
    let exe = std::env::current_exe().expect("this bench's path");
    let cpus = std::env::var("WAKE_FLOOR_CPUS")
        .ok()
        .and_then(|v| {
            let (a, b) = v.split_once(',')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .or_else(allowed_cpus);
    match cpus {
        Some((first, last)) if Command::new("taskset").arg("-V").output().is_ok() => {
            let mut c = Command::new("taskset");
            let at = match cpu {
                Cpu::First => first,
                Cpu::Last => last,
            };
            c.args(["-c", &at.to_string()]).arg(exe);
            c.env("WAKE_FLOOR_CPUS", format!("{first},{last}"));
            c
        }
        _ => Command::new(exe),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--pong") {
        pong(&args[i + 1], args[i + 2].parse().expect("a count"));
        return;
    }
    if std::fs::read_to_string("/proc/thread-self/schedstat").is_err() {
        println!("wake_floor: no /proc/thread-self/schedstat here (Linux only): nothing measured");
        return;
    }
    if !args.iter().any(|a| a == "--pinned") {
        let taskset = Command::new("taskset").arg("-V").output().is_ok();
        match allowed_cpus() {
            Some((first, last)) if taskset => {
                println!("wake_floor: this side on CPU {first}, the other on CPU {last} (taskset)")
            }
            _ => println!("wake_floor: not pinned apart (one CPU allowed, or no taskset)"),
        }
        let status = on_cpu(Cpu::First)
            .arg("--pinned")
            .status()
            .expect("runs itself pinned");
        std::process::exit(status.code().unwrap_or(1));
    }
    timer(Duration::from_micros(500), 8_000);
    ping_pong(50_000, None);
    ping_pong(8_000, Some(Duration::from_micros(500)));
}
