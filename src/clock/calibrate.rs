//! How precisely this machine wakes a sleeping thread, measured before a real run.
//!
//! A generator's lag has two causes that call for different answers: the generator fell
//! behind (too much work per call, a slow stack: send less, shard), or the machine cannot wake
//! a thread more precisely than some floor (a KVM guest, a busy host, a container's CPU quota:
//! no generator on that machine would do better). Before a real run the client's thread
//! sleeps on the run's own clock a few hundred times, for the short waits the driver makes
//! (100 µs to 1 ms), with nothing else to do, and the lateness of each wake-up is this
//! machine's floor. `results.json` keeps it (`environment.timer`), the report shows it beside
//! the generator's lag, and the trust warning tells one cause from the other
//! (`results::trust`).

use std::time::Duration;

use super::Clock;

/// How long the calibration sleeps before a real run.
pub const CALIBRATION_SPAN: Duration = Duration::from_millis(300);

/// The waits calibrated, in turn: the lengths the driver's own wake-ups have between its
/// quantum (100 µs by default) and the gaps of a 1,000 calls/s schedule.
const WAITS: [Duration; 4] = [
    Duration::from_micros(100),
    Duration::from_micros(250),
    Duration::from_micros(500),
    Duration::from_millis(1),
];

/// How late the machine woke a sleeping thread after its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overshoot {
    /// Median lateness.
    pub p50: Duration,
    /// 99th percentile (nearest rank).
    pub p99: Duration,
    /// Largest.
    pub max: Duration,
    /// Wake-ups measured.
    pub samples: usize,
    /// How long the calibration slept in all.
    pub span: Duration,
}

/// Sleeps on `clock` for `span`, in short waits, and measures how late each wake-up was.
/// `None` on clocks that do not sleep for real (simulated time and tokio's timer, which rounds
/// every deadline up to the next millisecond by design and is not a run's clock).
pub async fn wake_overshoot(clock: &Clock, span: Duration) -> Option<Overshoot> {
    match clock {
        Clock::Precise => {}
        #[cfg(target_os = "linux")]
        Clock::Reactor(_) => {}
        Clock::Tokio | Clock::Sim(_) => return None,
    }
    let start = clock.now();
    let mut late = Vec::with_capacity(2 * (span.as_micros() / 100) as usize + 1);
    for wait in WAITS.iter().cycle() {
        let deadline = clock.now() + *wait;
        clock.sleep_until(deadline).await;
        late.push(clock.now().saturating_duration_since(deadline));
        if clock.now().saturating_duration_since(start) >= span {
            break;
        }
    }
    Some(summarise(
        late,
        clock.now().saturating_duration_since(start),
    ))
}

/// The quantiles of the measured lateness (nearest rank, as HdrHistogram reports them).
fn summarise(mut late: Vec<Duration>, span: Duration) -> Overshoot {
    late.sort_unstable();
    let rank = |q: f64| {
        let i = ((q * late.len() as f64).ceil() as usize).clamp(1, late.len());
        late[i - 1]
    };
    Overshoot {
        p50: rank(0.50),
        p99: rank(0.99),
        max: *late.last().expect("at least one wait is measured"),
        samples: late.len(),
        span,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let late = (1..=200).map(Duration::from_micros).collect();
        let o = summarise(late, Duration::from_millis(300));
        assert_eq!(o.p50, Duration::from_micros(100));
        assert_eq!(o.p99, Duration::from_micros(198));
        assert_eq!(o.max, Duration::from_micros(200));
        assert_eq!(o.samples, 200);
    }

    #[test]
    fn simulated_time_has_no_floor_to_measure() {
        let rt = crate::clock::test_runtime(true);
        rt.block_on(async {
            let sim = Clock::Sim(crate::clock::sim::SimClock::start());
            assert_eq!(wake_overshoot(&sim, CALIBRATION_SPAN).await, None);
        });
    }

    /// On the real clock: it ends after its span, and every wake-up is counted (how late is
    /// this machine's figure, not asserted).
    #[test]
    fn a_real_clock_is_measured_for_its_span() {
        let rt = crate::clock::test_runtime(false);
        rt.block_on(async {
            let clock = Clock::real();
            let o = wake_overshoot(&clock, Duration::from_millis(20))
                .await
                .expect("a real clock is calibrated");
            assert!(o.span >= Duration::from_millis(20));
            assert!(o.samples >= 1 && o.p50 <= o.p99 && o.p99 <= o.max);
        });
    }
}
