//! The painter: the one thread that writes progress.
//!
//! A real run's schedule is kept by one thread, which must never wait for the terminal: a
//! paused terminal, or a pipe nobody drains, would stop the run. So that thread only hands
//! over what it shows, and the painter writes it:
//! - what happened (a strategy started or finished, the run was interrupted, a warning) and
//!   the showing and clearing of a bar are always kept, in order (a few per strategy);
//! - a bar's tick replaces the tick not yet drawn: only the latest position matters;
//! - the plain mode's periodic status lines are dropped while [`QUEUE`] things wait.
//!
//! The run waits for the painter, at most a second, before it prints its summary.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget};

/// What the painter is asked to do.
pub(crate) enum Paint {
    /// Start drawing this bar (made hidden, so nothing else draws it).
    Show(ProgressBar),
    /// Move the bar and set its message.
    Tick {
        bar: ProgressBar,
        position: u64,
        message: String,
    },
    /// Clear a finished bar.
    Clear(ProgressBar),
    /// A line that says what happened: always written.
    Line(String),
    /// A periodic status line: dropped when the painter is far behind.
    Status(String),
    /// Say when everything handed over before is done.
    Flush(Sender<()>),
}

/// Things waiting (ticks apart) before periodic status lines are dropped.
const QUEUE: usize = 64;

/// The handle of a painter thread; `None` when no thread could be started, and lines are
/// then written by the caller (ticks and status lines are not shown).
#[derive(Clone)]
pub(crate) struct Painter(Option<Arc<Shared>>);

#[derive(Default)]
struct Shared {
    /// What waits to be painted.
    waiting: Mutex<Waiting>,
    /// Signalled when something is handed over.
    handed: Condvar,
}

#[derive(Default)]
struct Waiting {
    /// Everything but ticks, in order.
    queue: VecDeque<Paint>,
    /// The latest tick not yet drawn.
    tick: Option<Paint>,
}

impl Painter {
    /// A painter writing lines to `out` on a thread of its own (bars draw to stderr).
    pub(crate) fn start(out: impl Write + Send + 'static) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let drained = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("resilbench-progress".into())
            .spawn(move || paint_all(&drained, out))?;
        Ok(Self(Some(shared)))
    }

    /// Hands `paint` over without waiting for it to be written.
    pub(crate) fn paint(&self, paint: Paint) {
        let Some(shared) = &self.0 else {
            if let Paint::Line(text) = paint {
                let _ = writeln!(std::io::stderr(), "{text}");
            }
            return;
        };
        let mut waiting = shared.waiting.lock().unwrap_or_else(|e| e.into_inner());
        match paint {
            Paint::Tick { .. } => waiting.tick = Some(paint),
            Paint::Status(_) if waiting.queue.len() >= QUEUE => return,
            Paint::Clear(_) => {
                // One bar at a time: a tick still waiting is for the bar being cleared.
                waiting.tick = None;
                waiting.queue.push_back(paint);
            }
            _ => waiting.queue.push_back(paint),
        }
        shared.handed.notify_one();
    }

    /// Waits, at most `timeout`, until everything handed over before has been done; false if
    /// it was not done in time.
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        if self.0.is_none() {
            return true; // the caller wrote its lines itself
        }
        let (tx, rx) = std::sync::mpsc::channel();
        self.paint(Paint::Flush(tx));
        rx.recv_timeout(timeout).is_ok()
    }
}

fn paint_all(shared: &Shared, mut out: impl Write) {
    let mut shown: Option<ProgressBar> = None;
    loop {
        let paint = {
            let mut waiting = shared.waiting.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(paint) = waiting.queue.pop_front() {
                    break paint;
                }
                if let Some(tick) = waiting.tick.take() {
                    break tick;
                }
                waiting = shared
                    .handed
                    .wait(waiting)
                    .unwrap_or_else(|e| e.into_inner());
            }
        };
        match paint {
            Paint::Show(bar) => {
                bar.set_draw_target(ProgressDrawTarget::stderr());
                shown = Some(bar);
            }
            Paint::Tick {
                bar,
                position,
                message,
            } => {
                bar.set_position(position);
                bar.set_message(message);
            }
            Paint::Clear(bar) => {
                bar.finish_and_clear();
                shown = None;
            }
            Paint::Line(text) | Paint::Status(text) => match &shown {
                // Above the bar, which is drawn again below it.
                Some(bar) => bar.suspend(|| {
                    let _ = writeln!(out, "{text}");
                }),
                None => {
                    let _ = writeln!(out, "{text}");
                }
            },
            Paint::Flush(done) => {
                let _ = out.flush();
                let _ = done.send(());
            }
        }
    }
}

/// The process's painter, writing to stderr.
pub(crate) fn painter() -> &'static Painter {
    static PAINTER: OnceLock<Painter> = OnceLock::new();
    PAINTER.get_or_init(|| Painter::start(std::io::stderr()).unwrap_or(Painter(None)))
}

/// Writes a line that says what happened (to stderr, by the painter): never waits for it.
pub fn line(text: impl Into<String>) {
    painter().paint(Paint::Line(text.into()));
}

/// Waits, at most `timeout`, for what was handed to the painter so far to be written (before
/// the summary goes to stdout, and before the process exits).
pub fn flush(timeout: Duration) {
    painter().flush(timeout);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that blocks until `open` is set, as a terminal that stopped reading does.
    #[derive(Clone, Default)]
    struct Stuck {
        open: Arc<(Mutex<bool>, Condvar)>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl Stuck {
        fn open(&self) {
            let (open, turn) = &*self.open;
            *open.lock().unwrap() = true;
            turn.notify_all();
        }
        fn lines(&self) -> Vec<String> {
            let text = String::from_utf8(self.written.lock().unwrap().clone()).unwrap();
            text.lines().map(str::to_string).collect()
        }
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
    fn a_writer_that_stops_never_stalls_the_caller_and_loses_no_outcome() {
        let stuck = Stuck::default();
        let painter = Painter::start(stuck.clone()).unwrap();
        // Far more status lines than the queue holds, while the writer blocks, with an outcome
        // line in the middle and at the end: every call returns at once.
        for i in 0..5 * QUEUE {
            painter.paint(Paint::Status(format!("status {i}")));
            if i == 3 * QUEUE {
                painter.paint(Paint::Line("outcome 1".into()));
            }
        }
        painter.paint(Paint::Line("outcome 2".into()));
        assert!(
            !painter.flush(Duration::from_millis(50)),
            "the writer is stuck"
        );

        stuck.open();
        assert!(painter.flush(Duration::from_secs(10)));
        let lines = stuck.lines();
        // The first status lines up to the queue's size, then the outcomes, in order; the
        // status lines that came while the queue was full were dropped.
        assert_eq!(lines.first().map(String::as_str), Some("status 0"));
        assert_eq!(
            &lines[lines.len() - 2..],
            &["outcome 1".to_string(), "outcome 2".to_string()]
        );
        assert!(lines.len() <= QUEUE + 3, "{} lines", lines.len());
        let numbers: Vec<usize> = lines[..lines.len() - 2]
            .iter()
            .map(|l| l.trim_start_matches("status ").parse().unwrap())
            .collect();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    }

    #[test]
    fn only_the_latest_tick_waits_and_a_clear_drops_it() {
        let shared = Arc::new(Shared::default());
        let painter = Painter(Some(Arc::clone(&shared))); // no thread: look at what waits
        let bar = ProgressBar::hidden();
        for position in 0..100 {
            painter.paint(Paint::Tick {
                bar: bar.clone(),
                position,
                message: String::new(),
            });
        }
        {
            let waiting = shared.waiting.lock().unwrap();
            assert!(waiting.queue.is_empty());
            assert!(matches!(
                waiting.tick,
                Some(Paint::Tick { position: 99, .. })
            ));
        }
        painter.paint(Paint::Clear(bar));
        let waiting = shared.waiting.lock().unwrap();
        assert!(waiting.tick.is_none());
        assert_eq!(waiting.queue.len(), 1);
    }
}
