//! How a client library's timers wait: exactly, or as Node's `setTimeout` does for grpc-js
//! (a [`super::flavor::Flavor`]'s `timers`).
//!
//! Node (`lib/internal/timers.js`, nodejs/node 034b0b395f): the `Timeout` constructor replaces
//! a delay that is not in [1, `TIMEOUT_MAX` = 2^31 − 1] ms by 1 (`if (!(after >= 1 && after <=
//! TIMEOUT_MAX)) after = 1;`), and `insert` truncates it (`msecs = MathTrunc(msecs)`, "so that
//! accuracy of sub-millisecond timers is not assumed"). A timer then fires when the event
//! loop's clock, in whole milliseconds, has moved that far from the loop time it was set at,
//! which a real run sees as up to a millisecond of scheduling noise; the delay itself is exact.

use std::time::Duration;

/// How a library's timers wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timers {
    /// Exactly the delay asked for.
    Exact,
    /// Node's `setTimeout` (`lib/internal/timers.js`): a delay outside [1, `TIMEOUT_MAX` =
    /// 2^31 − 1] ms (0, NaN, or longer than about 24.8 days) waits 1 ms; the others are
    /// truncated to whole milliseconds (`MathTrunc(msecs)` in `insert`).
    Node,
}

impl Timers {
    /// Node's `TIMEOUT_MAX`, in milliseconds.
    const NODE_TIMEOUT_MAX_MS: u128 = i32::MAX as u128;

    /// How long a timer set to `delay` waits.
    pub fn wait(self, delay: Duration) -> Duration {
        match self {
            Timers::Exact => delay,
            Timers::Node => {
                let after_ns = delay.as_nanos();
                let ms = after_ns / 1_000_000;
                // `after > TIMEOUT_MAX` holds for a fraction above it too.
                let beyond = ms > Self::NODE_TIMEOUT_MAX_MS
                    || (ms == Self::NODE_TIMEOUT_MAX_MS && !after_ns.is_multiple_of(1_000_000));
                if ms == 0 || beyond {
                    Duration::from_millis(1)
                } else {
                    Duration::from_millis(ms as u64)
                }
            }
        }
    }

    /// How long a timer set to a service config's duration `config` (a proto3 JSON duration,
    /// `"0.02s"`) waits. grpc-js computes the delay in floating point from the text:
    /// `Number(seconds) * 1000`, so `"1.001s"` asks for 1000.9999999999999 ms and waits 1000.
    pub fn wait_seconds(self, config: Duration) -> Duration {
        match self {
            Timers::Exact => config,
            Timers::Node => {
                // The same decimal as the config's text, read as JavaScript's `Number` reads
                // it (both round to the nearest double).
                let text = format!("{}.{:09}", config.as_secs(), config.subsec_nanos());
                let ms = text.parse::<f64>().unwrap_or(f64::NAN) * 1000.0;
                if !(1.0..=Self::NODE_TIMEOUT_MAX_MS as f64).contains(&ms) {
                    Duration::from_millis(1)
                } else {
                    Duration::from_millis(ms.trunc() as u64)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_truncates_floors_and_clamps() {
        let ms = Duration::from_millis;
        let node = |d| Timers::Node.wait(d);
        assert_eq!(node(Duration::ZERO), ms(1));
        assert_eq!(node(Duration::from_micros(999)), ms(1));
        assert_eq!(node(Duration::from_micros(1_999)), ms(1));
        assert_eq!(node(Duration::from_micros(87_654)), ms(87));
        assert_eq!(node(ms(2_147_483_647)), ms(2_147_483_647));
        assert_eq!(node(ms(2_147_483_647) + Duration::from_nanos(1)), ms(1));
        assert_eq!(node(ms(2_147_483_648)), ms(1));
        assert_eq!(
            Timers::Exact.wait(Duration::from_micros(87_654)),
            Duration::from_micros(87_654)
        );
    }

    /// grpc-js's `Number(seconds) * 1000`, in floating point like JavaScript's.
    #[test]
    fn node_reads_a_config_duration_as_grpc_js_computes_it() {
        let s = |micros: u64| Timers::Node.wait_seconds(Duration::from_micros(micros));
        let ms = Duration::from_millis;
        assert_eq!(s(20_000), ms(20));
        assert_eq!(s(10_500), ms(10));
        assert_eq!(
            s(1_001_000),
            ms(1000),
            "Number(\"1.001\") * 1000 = 1000.9999999999999"
        );
        assert_eq!(s(1_002_000), ms(1002));
        assert_eq!(s(0), ms(1));
        assert_eq!(Timers::Exact.wait_seconds(ms(1001)), ms(1001));
    }
}
