//! The two kinds of condition a gate states, written as short strings in TOML.
//!
//! - A [`Limit`] bounds a figure: `"<= 250"`, `">= 99.5%"` (a `%` divides by 100, so
//!   `success_rate = ">= 99.5%"` is `>= 0.995`), `"== 0"`.
//! - A [`Budget`] bounds how far a figure may move from the baseline run: `"+10%"` (may grow by
//!   at most 10% of the baseline's value), `"-0.5%"` (may fall by at most 0.5%), `"+5"` (may
//!   grow by at most 5 in the figure's unit), `"+0"` (must not grow). The sign is the direction
//!   that counts as a regression, so each budget says which way is worse. `"+10% beyond
//!   noise"` fails only when the move is also beyond sampling noise (a seed change alone moves
//!   a p99 of a few thousand calls by a third).
//!
//! Both are parsed when the gate is read, so a malformed condition is an error at its line.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<=`
    Le,
    /// `<`
    Lt,
    /// `>=`
    Ge,
    /// `>`
    Gt,
    /// `==` (also written `=`)
    Eq,
}

impl Op {
    /// Whether `value op bound` holds.
    pub fn holds(self, value: f64, bound: f64) -> bool {
        match self {
            Op::Le => value <= bound,
            Op::Lt => value < bound,
            Op::Ge => value >= bound,
            Op::Gt => value > bound,
            Op::Eq => value == bound,
        }
    }

    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Le => "<=",
            Op::Lt => "<",
            Op::Ge => ">=",
            Op::Gt => ">",
            Op::Eq => "==",
        }
    }
}

/// A bound on a figure: `<= 250`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    /// How the figure compares with the bound.
    pub op: Op,
    /// The bound, in the figure's unit (a `%` already divided by 100).
    pub bound: f64,
    /// Whether it was written as a percentage (values are then shown as percentages too).
    pub percent: bool,
    /// The number as written (before a `%` divides it).
    pub written: f64,
}

/// Which way a figure may move before it is a regression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `+`: growth is the regression (latency, amplification).
    Grow,
    /// `-`: a fall is the regression (success, goodput).
    Fall,
}

/// A bound on a figure's change from the baseline: `+10%`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// The direction that counts as a regression.
    pub direction: Direction,
    /// How far the figure may move that way (0 or more).
    pub amount: f64,
    /// Whether `amount` is a percentage of the baseline's value.
    pub relative: bool,
    /// Written `"... beyond noise"`: a move past the bound fails only if it is also beyond
    /// sampling noise (as `compare` judges it).
    pub beyond_noise: bool,
}

impl Budget {
    /// The bound a value must respect, given the baseline's value.
    pub fn bound(&self, baseline: f64) -> f64 {
        let step = if self.relative {
            baseline.abs() * self.amount / 100.0
        } else {
            self.amount
        };
        match self.direction {
            Direction::Grow => baseline + step,
            Direction::Fall => baseline - step,
        }
    }

    /// Whether `value` is within the budget of `baseline`.
    pub fn holds(&self, value: f64, baseline: f64) -> bool {
        match self.direction {
            Direction::Grow => value <= self.bound(baseline),
            Direction::Fall => value >= self.bound(baseline),
        }
    }
}

const LIMIT_EXPECTED: &str =
    "a limit such as \"<= 250\", \">= 99.5%\" or \"== 0\" (operators <=, <, >=, >, ==)";
const BUDGET_EXPECTED: &str = "a budget such as \"+10%\" (may grow by at most 10% of the \
     baseline), \"-0.5%\" (may fall by at most 0.5%), \"+5\" (may grow by at most 5) or \"+0\", \
     optionally followed by \"beyond noise\" (\"+10% beyond noise\")";

/// The suffix that makes a budget noise-aware.
const NOISE: &str = "beyond noise";

fn number(text: &str) -> Option<(f64, bool)> {
    let text = text.trim();
    let (digits, percent) = match text.strip_suffix('%') {
        Some(d) => (d.trim_end(), true),
        None => (text, false),
    };
    let n: f64 = digits.parse().ok()?;
    n.is_finite().then_some((n, percent))
}

/// The decimal `digits` (as written, before its `%`) divided by 100 exactly, then rounded once
/// to the nearest `f64`: the decimal point is moved in the text, not divided in binary. So
/// `99.9%` is the same `f64` as `0.999` (and as a measured 999 of 1,000), where `99.9 / 100.0`
/// is 0.9990000000000001, which a measured 0.999 fails.
fn hundredth(digits: &str) -> Option<f64> {
    let digits = digits.trim();
    let shifted = match digits.find(['e', 'E']) {
        Some(at) => {
            let exponent: i32 = digits[at + 1..].parse().ok()?;
            format!("{}e{}", &digits[..at], exponent.checked_sub(2)?)
        }
        None => format!("{digits}e-2"),
    };
    shifted.parse().ok().filter(|n: &f64| n.is_finite())
}

impl std::str::FromStr for Limit {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let ops = [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("<", Op::Lt),
            (">", Op::Gt),
            ("=", Op::Eq),
        ];
        let bad = || format!("`{text}` is not a limit; expected {LIMIT_EXPECTED}");
        let (op, rest) = ops
            .iter()
            .find_map(|(s, op)| t.strip_prefix(s).map(|rest| (*op, rest)))
            .ok_or_else(bad)?;
        let (n, percent) = number(rest).ok_or_else(bad)?;
        let bound = if percent {
            hundredth(rest.trim().trim_end_matches('%')).ok_or_else(bad)?
        } else {
            n
        };
        Ok(Limit {
            op,
            bound,
            percent,
            written: n,
        })
    }
}

impl std::str::FromStr for Budget {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let bad = || format!("`{text}` is not a budget; expected {BUDGET_EXPECTED}");
        let (t, beyond_noise) = match t
            .len()
            .checked_sub(NOISE.len())
            .filter(|at| t.is_char_boundary(*at) && t[*at..].eq_ignore_ascii_case(NOISE))
        {
            Some(at) => (t[..at].trim_end(), true),
            None => (t, false),
        };
        let (direction, rest) = if let Some(rest) = t.strip_prefix('+') {
            (Direction::Grow, rest)
        } else if let Some(rest) = t.strip_prefix('-') {
            (Direction::Fall, rest)
        } else {
            return Err(bad());
        };
        let (amount, relative) = number(rest).ok_or_else(bad)?;
        if amount < 0.0 || rest.trim_start().starts_with(['+', '-']) {
            return Err(bad());
        }
        Ok(Budget {
            direction,
            amount,
            relative,
            beyond_noise,
        })
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = if self.percent { "%" } else { "" };
        write!(f, "{} {}{unit}", self.op.symbol(), self.written)
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = match self.direction {
            Direction::Grow => '+',
            Direction::Fall => '-',
        };
        let unit = if self.relative { "%" } else { "" };
        let noise = if self.beyond_noise {
            format!(" {NOISE}")
        } else {
            String::new()
        };
        write!(f, "{sign}{}{unit}{noise}", self.amount)
    }
}

macro_rules! string_serde {
    ($t:ty, $expected:expr) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $t;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expected)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$t, E> {
                        v.parse().map_err(E::custom)
                    }
                }
                d.deserialize_str(V)
            }
        }
    };
}

string_serde!(Limit, LIMIT_EXPECTED);
string_serde!(Budget, BUDGET_EXPECTED);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_with_operators_and_percentages() {
        let l: Limit = ">= 99.5%".parse().unwrap();
        assert_eq!((l.op, l.percent), (Op::Ge, true));
        assert!((l.bound - 0.995).abs() < 1e-12);
        assert!(l.op.holds(0.996, l.bound) && !l.op.holds(0.99, l.bound));
        let l: Limit = "<=250".parse().unwrap();
        assert_eq!((l.op, l.bound), (Op::Le, 250.0));
        assert_eq!("= 0".parse::<Limit>().unwrap().op, Op::Eq);
        assert_eq!("< 1".parse::<Limit>().unwrap().op, Op::Lt);
        for bad in ["250", "<= ", "<= abc", "=> 3", "<= inf", ""] {
            assert!(bad.parse::<Limit>().is_err(), "{bad}");
        }
        assert_eq!(l.to_string(), "<= 250");
        assert_eq!(">=99.5%".parse::<Limit>().unwrap().to_string(), ">= 99.5%");
    }

    /// A percentage is the decimal it writes, divided by 100 exactly: `>= 99.9%` holds for a
    /// measured 999 of 1,000 (it was 0.9990000000000001, which 0.999 failed), and so for every
    /// tenth and hundredth of a percent.
    #[test]
    fn percentages_are_the_decimals_they_write() {
        let l: Limit = ">= 99.9%".parse().unwrap();
        assert_eq!(l.bound, 0.999);
        assert!(l.op.holds(999.0 / 1000.0, l.bound));
        for n in 0..=10_000u32 {
            let text = format!("{}.{:02}", n / 100, n % 100);
            let value = f64::from(n) / 10_000.0;
            for limit in [
                format!(">= {text}%"),
                format!("<= {text}%"),
                format!("== {text}%"),
            ] {
                let l: Limit = limit.parse().unwrap();
                assert!(l.op.holds(value, l.bound), "{limit} against {value}");
            }
        }
        assert_eq!("<= 9.99e1%".parse::<Limit>().unwrap().bound, 0.999);
        assert_eq!("<= 5E-1%".parse::<Limit>().unwrap().bound, 0.005);
        assert_eq!(">= 99.9%".parse::<Limit>().unwrap().to_string(), ">= 99.9%");
        for bad in ["<= inf%", "<= 1e400%", "<= 1e%", "<= %"] {
            assert!(bad.parse::<Limit>().is_err(), "{bad}");
        }
    }

    #[test]
    fn budgets_bound_by_direction() {
        let b: Budget = "+10%".parse().unwrap();
        assert!((b.bound(100.0) - 110.0).abs() < 1e-9);
        assert!(b.holds(110.0, 100.0) && !b.holds(110.1, 100.0));
        let b: Budget = "-0.5".parse().unwrap();
        assert!(b.holds(99.5, 100.0) && !b.holds(99.4, 100.0));
        assert!(
            b.holds(1000.0, 100.0),
            "growth is fine when a fall is the regression"
        );
        let b: Budget = "+0".parse().unwrap();
        assert!(b.holds(3.0, 3.0) && !b.holds(3.01, 3.0));
        for bad in ["10%", "+", "+-3", "--3", "+x", "<= 3"] {
            assert!(bad.parse::<Budget>().is_err(), "{bad}");
        }
        assert_eq!("+10%".parse::<Budget>().unwrap().to_string(), "+10%");
        let b: Budget = "+10% Beyond Noise".parse().unwrap();
        assert!(b.beyond_noise && b.relative && b.amount == 10.0);
        assert_eq!(b.to_string(), "+10% beyond noise");
        assert!("+10% beyond".parse::<Budget>().is_err());
        assert!("beyond noise".parse::<Budget>().is_err());
    }
}
