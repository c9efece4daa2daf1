//! A sweep's progress on stderr: points done, points per second, time left.
//!
//! On a terminal a bar (indicatif's, its time left estimated from the points done so far); in
//! a log or a pipe a line every few seconds; nothing with `--quiet`. On a real clock each
//! point's own run shows its progress as `run` does, and this adds a line as each point
//! starts and ends. The bar is drawn by the thread that collects the points, never by a
//! thread that runs one.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::time::Instant;

use super::grid::Grid;
use super::run::{Done, Options};
use crate::clock::Clock;
use crate::runner::ClockMode;

/// How often the display is refreshed while no point finishes.
pub const TICK: Duration = Duration::from_millis(200);

/// How often the plain display prints a line.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

enum Mode {
    Quiet,
    Plain {
        last: Instant,
    },
    Bar(ProgressBar),
    /// Real clock: each point's run shows its own progress.
    Lines,
}

/// The display of one sweep.
pub struct SweepProgress {
    mode: Mode,
    total: usize,
    done: usize,
    started: Instant,
}

/// Wall time, for the display only (points run on their own clocks).
fn now() -> Instant {
    Clock::Tokio.now()
}

impl SweepProgress {
    /// Starts showing a sweep of `total` points.
    pub fn new(opts: &Options, grid: &Grid, total: usize) -> Self {
        let mode = if opts.quiet {
            Mode::Quiet
        } else if opts.clock == ClockMode::Real {
            Mode::Lines
        } else if std::io::stderr().is_terminal() {
            let bar =
                ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "sweep [{bar:30.cyan/blue}] {pos}/{len} points  {per_sec}  left {eta}  {msg}",
                )
                .expect("the template is valid")
                .progress_chars("=> "),
            );
            Mode::Bar(bar)
        } else {
            eprintln!(
                "sweep: {total} points of {}, {} at a time",
                grid.base.name, opts.jobs
            );
            Mode::Plain { last: now() }
        };
        Self {
            mode,
            total,
            done: 0,
            started: now(),
        }
    }

    /// A point finished.
    pub fn finished<S>(&mut self, grid: &Grid, point: &Done<S>) {
        self.done += 1;
        let words = grid.describe(point.index);
        match &mut self.mode {
            Mode::Bar(bar) => {
                bar.set_message(format!("#{} {words}", point.index));
                bar.inc(1);
            }
            Mode::Lines => crate::progress::line(format!(
                "point {} ({}/{}): {words}: done{}",
                point.index,
                self.done,
                self.total,
                if point.partial { " (interrupted)" } else { "" }
            )),
            Mode::Plain { .. } => self.tick(),
            Mode::Quiet => {}
        }
    }

    /// Time passes.
    pub fn tick(&mut self) {
        let (done, total, started) = (self.done, self.total, self.started);
        match &mut self.mode {
            Mode::Bar(bar) => bar.tick(),
            Mode::Plain { last } if now().duration_since(*last) >= PLAIN_EVERY => {
                *last = now();
                let elapsed = now().duration_since(started).as_secs_f64();
                let left = if done > 0 {
                    format!(
                        ", about {:.0} s left",
                        elapsed / done as f64 * (total - done) as f64
                    )
                } else {
                    String::new()
                };
                eprintln!("sweep: {done}/{total} points in {elapsed:.0} s{left}");
            }
            _ => {}
        }
    }

    /// The sweep ended with `done` points finished.
    pub fn finish(&mut self, done: usize) {
        let elapsed = now().duration_since(self.started).as_secs_f64();
        match &self.mode {
            Mode::Bar(bar) => {
                bar.finish_and_clear();
                eprintln!("sweep: {done}/{} points in {elapsed:.1} s", self.total);
            }
            Mode::Plain { .. } | Mode::Lines => {
                eprintln!("sweep: {done}/{} points in {elapsed:.1} s", self.total);
            }
            Mode::Quiet => {}
        }
    }
}
