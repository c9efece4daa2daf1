//! Progress on stderr while a run goes on.
//!
//! On a terminal: a bar per strategy (elapsed of the schedule, calls sent, success, calls in
//! flight, send rate, time left). Elsewhere (CI logs, pipes): a plain line every few seconds of
//! the run. With `--quiet`: nothing. Progress follows the run's clock, so a virtual-time run
//! shows virtual seconds.
//!
//! The ticker reads the recorder's atomic [`Live`](crate::record::Live) counters and never
//! takes its lock. It never writes either: what it shows goes to the painter (`painter.rs`), a
//! thread of its own that does the writing, so that a terminal or pipe that stops reading
//! stalls only the painter, never the thread that keeps the schedule.

mod painter;

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::profile::{Order, Plan};
use crate::record::Recorder;
use crate::results::StrategyResult;
use painter::{Paint, painter};
pub use painter::{flush, line};

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
        let n = plan.strategies.len();
        let name = &plan.strategies[index].name;
        // Interleaved, the strategies run together: no "[1/3]", one duration said once.
        let interleaved = plan.load.order == Order::Interleaved;
        let label = if interleaved {
            name.clone()
        } else {
            format!("[{}/{n}] {name}", index + 1)
        };
        let duration = plan.load.duration;
        let fmt = crate::profile::duration::format;
        match self {
            Progress::Quiet => Ticker {
                task: None,
                bar: None,
                label,
                mode: *self,
            },
            Progress::Plain => {
                if !interleaved {
                    line(format!("{label}: running for {}", fmt(duration)));
                } else if index == 0 {
                    line(format!(
                        "{n} strategies interleaved call by call: running for {}",
                        fmt(duration)
                    ));
                }
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

impl Progress {
    /// Says the pause before strategy `index` of `plan` (run in turn): nothing is sent for
    /// `pause`, so a silent terminal is not taken for a hung run.
    pub fn cooldown(&self, plan: &Plan, index: usize, pause: Duration) {
        if *self == Progress::Quiet {
            return;
        }
        line(format!(
            "cooldown: {} before [{}/{}] {} (load.cooldown, --cooldown)",
            crate::profile::duration::format(pause),
            index + 1,
            plan.strategies.len(),
            plan.strategies[index].name
        ));
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
        painter().paint(Paint::Tick {
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
        painter().paint(Paint::Status(format!(
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
    pub fn finish(mut self, result: &StrategyResult) {
        self.stop();
        if self.mode == Progress::Quiet {
            return;
        }
        let c = &result.counts;
        let ok = if c.sent > 0 {
            100.0 * c.succeeded as f64 / c.sent as f64
        } else {
            0.0
        };
        // The table's p99: of successful calls, from their intended start.
        let p99 = result
            .latency_ms
            .e2e_ok
            .map_or("-".to_string(), |l| format!("{:.2} ms", l.p99));
        line(format!(
            "{}: done  {} calls  ok {ok:.2}%  p99 of successful calls {p99}{}",
            self.label,
            c.sent,
            if result.partial {
                "  (interrupted)"
            } else {
                ""
            }
        ));
    }

    /// Stops the ticks and clears the bar (once).
    fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if let Some(bar) = self.bar.take() {
            painter().paint(Paint::Clear(bar));
        }
    }
}

impl Drop for Ticker {
    /// A ticker dropped without [`Ticker::finish`] (a run that panicked) still stops ticking,
    /// and its bar is still cleared by the painter, not drawn by whoever drops it last.
    fn drop(&mut self) {
        self.stop();
    }
}
