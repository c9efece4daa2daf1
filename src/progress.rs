//! Progress on stderr while a run goes on.
//!
//! On a terminal: a bar per strategy (elapsed of the schedule, calls sent, success, calls in
//! flight, send rate, time left). Elsewhere (CI logs, pipes): a plain line every few seconds of
//! the run. With `--quiet`: nothing. Progress follows the run's clock, so a virtual-time run
//! shows virtual seconds.
//!
//! The ticker reads the recorder's atomic [`Live`](crate::record::Live) counters and never
//! takes its lock. It never writes either: what it shows goes to the painter, a thread of its
//! own that does the writing. A terminal or pipe that stops reading (a paused terminal, a
//! full pipe nobody drains) then stalls only the painter, never the thread that keeps the
//! schedule; updates it cannot take meanwhile are dropped.

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::profile::Plan;
use crate::record::Recorder;
use crate::results::StrategyResult;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Nothing.
    Quiet,
    /// A line every few seconds.
    Plain,
    /// An animated bar.
    Bar,
}

/// How often the plain mode prints a line, in run time.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// How often the bar is refreshed, in run time.
const TICK: Duration = Duration::from_millis(200);

impl Progress {
    /// Bar on a terminal, plain lines elsewhere, nothing when quiet.
    pub fn detect(quiet: bool) -> Self {
        if quiet {
            Progress::Quiet
        } else if std::io::stderr().is_terminal() {
            Progress::Bar
        } else {
            Progress::Plain
        }
    }

    /// Starts showing strategy `index` of `plan`.
    pub fn begin(
        &self,
        plan: &Plan,
        index: usize,
        recorder: Arc<Recorder>,
        clock: &Clock,
    ) -> Ticker {
        let label = format!(
            "[{}/{}] {}",
            index + 1,
            plan.strategies.len(),
            plan.strategies[index].name
        );
        let duration = plan.load.duration;
        match self {
            Progress::Quiet => Ticker {
                task: None,
                bar: None,
                label,
                mode: *self,
            },
            Progress::Plain => {
                painter().paint(Paint::Line(format!(
                    "{label}: running for {}",
                    crate::profile::duration::format(duration)
                )));
                let task = tokio::spawn(plain_lines(
                    label.clone(),
                    duration,
                    recorder,
                    clock.clone(),
                ));
                Ticker {
                    task: Some(task),
                    bar: None,
                    label,
                    mode: *self,
                }
            }
            Progress::Bar => {
                // Hidden until the painter shows it: drawing happens on its thread only.
                let bar = ProgressBar::with_draw_target(
                    Some(duration.as_millis() as u64),
                    ProgressDrawTarget::hidden(),
                );
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix:.bold} [{bar:30.cyan/blue}] {msg} (left {eta})",
                    )
                    .expect("the template is valid")
                    .progress_chars("=> "),
                );
                bar.set_prefix(label.clone());
                painter().paint(Paint::Show(bar.clone()));
                let task = tokio::spawn(bar_ticks(bar.clone(), duration, recorder, clock.clone()));
                Ticker {
                    task: Some(task),
                    bar: Some(bar),
                    label,
                    mode: *self,
                }
            }
        }
    }
}

/// A snapshot of the live counters, as text.
fn status_line(recorder: &Recorder, rate: f64) -> String {
    let live = recorder.live();
    // `failed` before `completed`: the recorder counts a completion before its failure, so
    // this order never sees more failures than completions.
    let failed = live.failed.load(Ordering::Relaxed);
    let sent = live.sent.load(Ordering::Relaxed);
    let completed = live.completed.load(Ordering::Relaxed);
    let dropped = live.dropped.load(Ordering::Relaxed);
    let in_flight = sent.saturating_sub(completed);
    let ok = if completed > 0 {
        100.0 * completed.saturating_sub(failed) as f64 / completed as f64
    } else {
        100.0
    };
    let mut line = format!("sent {sent}  ok {ok:.1}%  in flight {in_flight}  {rate:.0}/s");
    if failed > 0 {
        line.push_str(&format!("  failed {failed}"));
    }
    if dropped > 0 {
        line.push_str(&format!("  dropped {dropped}"));
    }
    line
}

async fn bar_ticks(bar: ProgressBar, duration: Duration, recorder: Arc<Recorder>, clock: Clock) {
    let start = recorder.config().start;
    let mut last = (start, 0u64);
    loop {
        clock.sleep(TICK).await;
        let now = clock.now();
        let sent = recorder.live().sent.load(Ordering::Relaxed);
        let dt = now.saturating_duration_since(last.0).as_secs_f64();
        let rate = if dt > 0.0 {
            (sent - last.1) as f64 / dt
        } else {
            0.0
        };
        last = (now, sent);
        painter().paint(Paint::Bar {
            bar: bar.clone(),
            position: now
                .saturating_duration_since(start)
                .min(duration)
                .as_millis() as u64,
            message: status_line(&recorder, rate),
        });
    }
}

async fn plain_lines(label: String, duration: Duration, recorder: Arc<Recorder>, clock: Clock) {
    let start = recorder.config().start;
    let mut next = start;
    let mut last_sent = 0;
    loop {
        next += PLAIN_EVERY;
        clock.sleep_until(next).await;
        let elapsed = clock.now().saturating_duration_since(start).min(duration);
        let sent = recorder.live().sent.load(Ordering::Relaxed);
        let rate = (sent - last_sent) as f64 / PLAIN_EVERY.as_secs_f64();
        last_sent = sent;
        painter().paint(Paint::Line(format!(
            "{label}: {:.0}s/{:.0}s  {}",
            elapsed.as_secs_f64(),
            duration.as_secs_f64(),
            status_line(&recorder, rate)
        )));
    }
}

/// The display of one strategy's run; stops when finished.
pub struct Ticker {
    task: Option<JoinHandle<()>>,
    bar: Option<ProgressBar>,
    label: String,
    mode: Progress,
}

impl Ticker {
    /// Stops the display and prints the strategy's one-line outcome.
    pub fn finish(self, result: &StrategyResult) {
        if let Some(task) = &self.task {
            task.abort();
        }
        if let Some(bar) = self.bar {
            painter().paint(Paint::Clear(bar));
        }
        if self.mode == Progress::Quiet {
            return;
        }
        let c = &result.counts;
        let ok = if c.sent > 0 {
            100.0 * c.succeeded as f64 / c.sent as f64
        } else {
            0.0
        };
        let p99 = result
            .latency_ms
            .e2e
            .map_or("-".to_string(), |l| format!("{:.2} ms", l.p99));
        painter().paint(Paint::Line(format!(
            "{}: done  {} calls  ok {ok:.2}%  p99 {p99}{}",
            self.label,
            c.sent,
            if result.partial {
                "  (interrupted)"
            } else {
                ""
            }
        )));
    }
}

/// What the painter is asked to do.
pub enum Paint {
    /// Start drawing this bar (made hidden).
    Show(ProgressBar),
    /// Move a bar and set its message.
    Bar {
        /// The bar.
        bar: ProgressBar,
        /// Its new position.
        position: u64,
        /// Its new message.
        message: String,
    },
    /// Clear a finished bar.
    Clear(ProgressBar),
    /// Write a line.
    Line(String),
    /// Say when everything asked before has been done.
    Flush(std::sync::mpsc::Sender<()>),
}

/// The handle of a painter thread: a queue it drains.
#[derive(Clone)]
pub struct Painter(Arc<Queue>);

#[derive(Default)]
struct Queue {
    paints: Mutex<VecDeque<Paint>>,
    filled: Condvar,
}

/// Updates a painter holds before it drops new ones (a bar ticks 5 times a second).
const PAINTER_QUEUE: usize = 64;

impl Painter {
    /// A painter writing lines to `out` on a thread of its own (bars draw to stderr).
    pub fn start(out: impl Write + Send + 'static) -> std::io::Result<Self> {
        let queue = Arc::new(Queue::default());
        let drained = Arc::clone(&queue);
        std::thread::Builder::new()
            .name("resilbench-progress".into())
            .spawn(move || paint_all(&drained, out))?;
        Ok(Self(queue))
    }

    /// Hands `paint` over without waiting; dropped if the painter is that far behind.
    pub fn paint(&self, paint: Paint) {
        self.push(paint, false);
    }

    fn push(&self, paint: Paint, always: bool) {
        let mut paints = self.0.paints.lock().unwrap_or_else(|e| e.into_inner());
        if always || paints.len() < PAINTER_QUEUE {
            paints.push_back(paint);
            self.0.filled.notify_one();
        }
    }

    /// Waits, at most `timeout`, until everything handed over before has been done; false if
    /// it was not done in time.
    pub fn flush(&self, timeout: Duration) -> bool {
        let (tx, rx) = std::sync::mpsc::channel();
        self.push(Paint::Flush(tx), true);
        rx.recv_timeout(timeout).is_ok()
    }
}

fn paint_all(queue: &Queue, mut out: impl Write) {
    loop {
        let paint = {
            let mut paints = queue.paints.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                match paints.pop_front() {
                    Some(paint) => break paint,
                    None => paints = queue.filled.wait(paints).unwrap_or_else(|e| e.into_inner()),
                }
            }
        };
        match paint {
            Paint::Show(bar) => bar.set_draw_target(ProgressDrawTarget::stderr()),
            Paint::Bar {
                bar,
                position,
                message,
            } => {
                bar.set_position(position);
                bar.set_message(message);
            }
            Paint::Clear(bar) => bar.finish_and_clear(),
            Paint::Line(line) => {
                let _ = writeln!(out, "{line}");
            }
            Paint::Flush(done) => {
                let _ = out.flush();
                let _ = done.send(());
            }
        }
    }
}

/// The process's painter, writing to stderr.
pub fn painter() -> &'static Painter {
    static PAINTER: OnceLock<Painter> = OnceLock::new();
    PAINTER.get_or_init(|| {
        // Without a thread, a queue nobody drains: progress is not shown, runs go on.
        Painter::start(std::io::stderr()).unwrap_or_else(|_| Painter(Arc::default()))
    })
}

/// Waits, at most `timeout`, for the progress handed over so far to be written (before the
/// summary goes to stdout, and before the process exits).
pub fn flush(timeout: Duration) {
    painter().flush(timeout);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that blocks until `open` is set, as a terminal that stopped reading does.
    #[derive(Clone)]
    struct Stuck {
        open: Arc<(Mutex<bool>, Condvar)>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Stuck {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let (open, turn) = &*self.open;
            let mut open = open.lock().unwrap();
            while !*open {
                open = turn.wait(open).unwrap();
            }
            self.written.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_writer_that_stops_never_stalls_the_caller_and_catches_up_when_it_reads_again() {
        let stuck = Stuck {
            open: Arc::default(),
            written: Arc::default(),
        };
        let painter = Painter::start(stuck.clone()).unwrap();
        // Far more than the queue holds, while the writer blocks: every call returns.
        for i in 0..10 * PAINTER_QUEUE {
            painter.paint(Paint::Line(format!("line {i}")));
        }
        assert!(
            !painter.flush(Duration::from_millis(50)),
            "the writer is stuck"
        );

        let (open, turn) = &*stuck.open;
        *open.lock().unwrap() = true;
        turn.notify_all();
        // The queue's worth arrives in order; the rest was dropped, not waited for.
        assert!(painter.flush(Duration::from_secs(10)));
        painter.paint(Paint::Line("after".into()));
        assert!(painter.flush(Duration::from_secs(10)));
        let text = String::from_utf8(stuck.written.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.first(), Some(&"line 0"));
        assert_eq!(lines.last(), Some(&"after"));
        assert!(lines.len() <= PAINTER_QUEUE + 2, "{} lines", lines.len());
        let numbers: Vec<usize> = lines[..lines.len() - 1]
            .iter()
            .map(|l| l.trim_start_matches("line ").parse().unwrap())
            .collect();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    }
}
