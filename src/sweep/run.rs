//! Running a grid's points: in parallel on a virtual clock, one after another on a real one;
//! each point written to its own run folder as it finishes.
//!
//! Each point is an ordinary run: its plan goes to [`runner::execute`] on a runtime of its
//! own, exactly as `resilbench run` runs a plan (on a virtual clock: a current-thread, paused
//! runtime, single-threaded and exact). On a virtual clock `jobs` threads (one per core by
//! default) take points in turn, so the grid runs on every core while each point stays
//! single-threaded and reproducible. A real clock's points run in turn: two runs at once would
//! share the machine and measure each other.
//!
//! Nothing is kept per point but what `summarize` makes of it: the point's results are
//! written (`points/NNNN/results.json` and its `.hlog` files, each atomically) and dropped by
//! the thread that ran it, so memory stays flat with the number of points. Cancelling `stop`
//! (Ctrl-C) stops the points in flight, which are written as partial runs, and starts no more.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::grid::Grid;
use crate::profile::{Plan, ProfileError};
use crate::progress::Progress;
use crate::results::{Results, Shard};
use crate::runner::{self, ClockMode, RunError, RunOptions};

/// How to run a sweep.
#[derive(Debug, Clone)]
pub struct Options {
    /// Virtual (parallel) or real (in turn).
    pub clock: ClockMode,
    /// Threads that run points at once on a virtual clock (1 on a real clock).
    pub jobs: usize,
    /// Run only every N-th point, from the K-th.
    pub shard: Option<Shard>,
    /// A `resilbench serve` to send to (real clock).
    pub target: Option<String>,
    /// No progress display.
    pub quiet: bool,
}

/// A point that finished: its number, its folder (relative to the sweep's), whether it was
/// cut short, and what `summarize` made of its results.
#[derive(Debug)]
pub struct Done<S> {
    /// The point's number in the grid.
    pub index: usize,
    /// Its run folder, relative to the sweep's folder (`points/0007`).
    pub dir: String,
    /// True when the point was interrupted (its results are partial).
    pub partial: bool,
    /// What the caller keeps of it.
    pub summary: S,
}

/// Why a sweep stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// A point's plan was refused (the grid's check should have caught it first).
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// A point could not be run or written.
    #[error("sweep point {index}: {error}")]
    Run {
        /// The point.
        index: usize,
        /// Why.
        error: RunError,
    },
    /// What the caller makes of a point's results failed (a goal naming no figure).
    #[error("sweep point {index}: {message}")]
    Summary {
        /// The point.
        index: usize,
        /// Why.
        message: String,
    },
}

/// How the sweep ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    /// Points that finished (interrupted ones included).
    pub done: usize,
    /// Points of this shard.
    pub planned: usize,
    /// Stopped by `stop` before every point ran.
    pub interrupted: bool,
}

/// The points this shard runs, in order: every point, or every N-th from the K-th.
pub fn shard_points(total: usize, shard: Option<Shard>) -> Vec<usize> {
    match shard {
        None => (0..total).collect(),
        Some(s) => (s.index as usize..total)
            .step_by(s.count as usize)
            .collect(),
    }
}

/// The folder of point `index` of a grid of `total`, relative to the sweep's folder.
pub fn point_dir(index: usize, total: usize) -> String {
    let width = total.saturating_sub(1).to_string().len().max(4);
    format!("points/{index:0width$}")
}

/// What a thread sends back for each point.
type Message<S> = (usize, Result<Done<S>, SweepError>);

/// A point's results and plan, for the caller to summarize.
pub type Summarize<'a, S> = dyn Fn(&Plan, &Results) -> Result<S, String> + Sync + 'a;

/// Runs the points of `grid` (this shard's), writing each under `out`, calling `on_done` on
/// this thread as each finishes (in the order they finish). On an error the points in flight
/// are stopped and written, and the first error (by point number) is returned.
pub fn run<S: Send>(
    grid: &Grid,
    opts: &Options,
    out: &Path,
    stop: &CancellationToken,
    summarize: &Summarize<'_, S>,
    on_done: &mut dyn FnMut(Done<S>),
) -> Result<Ended, SweepError> {
    let points = shard_points(grid.len(), opts.shard);
    let jobs = match opts.clock {
        ClockMode::Virtual => opts.jobs.clamp(1, points.len().max(1)),
        ClockMode::Real => 1,
    };
    // Stops the other threads on an error without calling it an interruption.
    let halt = stop.child_token();
    let next = AtomicUsize::new(0);
    let mut bar = super::progress::SweepProgress::new(opts, grid, points.len());
    let mut error: Option<(usize, SweepError)> = None;
    let mut done = 0;
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<Message<S>>();
        for _ in 0..jobs {
            let tx = tx.clone();
            let (next, points, halt) = (&next, &points, &halt);
            scope.spawn(move || {
                while !halt.is_cancelled() {
                    let Some(&index) = points.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        return;
                    };
                    let result = run_point(grid, index, opts, out, halt, summarize);
                    if tx.send((index, result)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        loop {
            match rx.recv_timeout(super::progress::TICK) {
                Ok((_, Ok(point))) => {
                    done += 1;
                    bar.finished(grid, &point);
                    on_done(point);
                }
                Ok((index, Err(e))) => {
                    halt.cancel();
                    if error.as_ref().is_none_or(|(i, _)| index < *i) {
                        error = Some((index, e));
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => bar.tick(),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
    });
    bar.finish(done);
    if let Some((_, e)) = error {
        return Err(e);
    }
    Ok(Ended {
        done,
        planned: points.len(),
        interrupted: stop.is_cancelled(),
    })
}

fn run_point<S>(
    grid: &Grid,
    index: usize,
    opts: &Options,
    out: &Path,
    stop: &CancellationToken,
    summarize: &Summarize<'_, S>,
) -> Result<Done<S>, SweepError> {
    let plan = grid.plan(index)?;
    let failed = |error| SweepError::Run { index, error };
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_all();
    if opts.clock == ClockMode::Virtual {
        builder.start_paused(true);
    }
    let runtime = builder
        .build()
        .map_err(|e| failed(RunError::Embedded(format!("cannot start a runtime: {e}"))))?;
    let run_opts = RunOptions {
        clock: opts.clock,
        target: opts.target.clone(),
        progress: match opts.clock {
            ClockMode::Real => Progress::detect(opts.quiet),
            ClockMode::Virtual => Progress::Quiet,
        },
        shard: None,
        start_at: None,
        connect_timeout: runner::CONNECT_TIMEOUT,
    };
    let results = runtime.block_on(async {
        let clock = opts.clock.start();
        runner::execute(&plan, &run_opts, &clock, stop.clone()).await
    });
    if opts.clock == ClockMode::Real {
        crate::progress::flush(Duration::from_secs(1));
        runtime.shutdown_timeout(Duration::from_millis(100));
    }
    let results = results.map_err(failed)?;
    let dir = point_dir(index, grid.len());
    // Written whole: a hidden folder beside it, then put in its place.
    runner::write_outputs(&out.join(&dir), &results).map_err(failed)?;
    let summary =
        summarize(&plan, &results).map_err(|message| SweepError::Summary { index, message })?;
    Ok(Done {
        index,
        dir,
        partial: results.partial,
        summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_take_every_nth_point() {
        assert_eq!(shard_points(7, None), [0, 1, 2, 3, 4, 5, 6]);
        let s = |k, n| Some(Shard { index: k, count: n });
        assert_eq!(shard_points(7, s(1, 3)), [1, 4]);
        assert_eq!(shard_points(2, s(2, 3)), Vec::<usize>::new());
        assert_eq!(point_dir(7, 100), "points/0007");
        assert_eq!(point_dir(7, 123_456), "points/000007");
    }
}
