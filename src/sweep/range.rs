//! Ranges of values: `START..END`, `START..END step STEP`, `START..END xFACTOR`, over whole
//! numbers, decimals, percentages and durations (docs/sweeps.md, "Values").
//!
//! Decimals are held exactly (a mantissa and a power of ten), so `0.05..0.3 step 0.05` gives
//! the numbers a user would write, not 0.30000000000000004; durations are whole nanoseconds.
//! A geometric range multiplies from the start each time (`start × factor^i`), so no error
//! accumulates.

use std::time::Duration;

use toml::Value;

use super::values::{Kind, MAX_VALUES, distinct};
use crate::profile::duration;

/// `START..END`, `START..END step STEP` or `START..END xFACTOR`.
pub(super) fn range(item: &str, kind: Kind) -> Result<Vec<Value>, String> {
    let expected = "expected a range like 1..5, 5ms..100ms step 5ms or 500..5000 x2";
    let bad = |why: &str| format!("`{item}` is not a range: {why}; {expected}");
    if matches!(kind, Kind::Bool) {
        return Err(format!("`{item}` is a range; this key takes true or false"));
    }
    let (start, rest) = item.split_once("..").ok_or_else(|| bad("no `..`"))?;
    let mut words = rest.split_whitespace();
    let end = words.next().ok_or_else(|| bad("no end"))?;
    // `500..5000x2`: the factor written against the end (no unit contains an x).
    let (end, attached) = match end.split_once('x') {
        Some((end, f)) => (end, Some(f)),
        None => (end, None),
    };
    let by = match (attached, words.next(), words.next(), words.next()) {
        (Some(f), None, _, _) => By::Factor(factor(f, item)?),
        (Some(_), Some(_), _, _) => return Err(bad("unexpected words after the factor")),
        (None, w1, w2, w3) => by_words(item, w1, w2, w3)?,
    };
    let (start, end) = (quantity(start.trim(), item)?, quantity(end, item)?);
    let kind = match kind {
        Kind::Any if start.is_duration() => Kind::Duration,
        Kind::Any if start.percent || !(start.is_whole() && end.is_whole()) => Kind::Float,
        Kind::Any => Kind::Integer,
        k => k,
    };
    match kind {
        Kind::Duration => durations(item, start, end, by),
        Kind::Integer | Kind::Float => numbers(item, start, end, by, kind),
        _ => Err(format!(
            "`{item}` is a range; this key takes {}",
            kind.noun()
        )),
    }
}

/// What follows the end of a range: nothing, `step STEP`, `x FACTOR` or `xFACTOR`.
fn by_words(
    item: &str,
    w1: Option<&str>,
    w2: Option<&str>,
    w3: Option<&str>,
) -> Result<By, String> {
    Ok(match (w1, w2, w3) {
        (None, _, _) => By::Default,
        (Some("step"), Some(s), None) => By::Step(quantity(s, item)?),
        (Some("x"), Some(f), None) => By::Factor(factor(f, item)?),
        (Some(w), None, None) if w.starts_with('x') => By::Factor(factor(&w[1..], item)?),
        _ => {
            return Err(format!(
                "`{item}` is not a range: unexpected words after the end; expected a range \
                 like 1..5, 5ms..100ms step 5ms or 500..5000 x2"
            ));
        }
    })
}

enum By {
    Default,
    Step(Quantity),
    Factor(f64),
}

fn factor(text: &str, item: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(f) if f.is_finite() && f > 1.0 => Ok(f),
        _ => Err(format!(
            "`{item}`: the factor after x must be a number above 1, got `{text}`"
        )),
    }
}

fn quantity(text: &str, item: &str) -> Result<Quantity, String> {
    Quantity::parse(text).ok_or_else(|| {
        format!("`{item}`: `{text}` is not a number, a percentage or a duration with a unit")
    })
}

fn too_many(item: &str) -> String {
    format!("`{item}` has more than {MAX_VALUES} values")
}

fn check_order(item: &str, backwards: bool) -> Result<(), String> {
    if backwards {
        Err(format!(
            "`{item}` ends before it starts; write the smaller end first"
        ))
    } else {
        Ok(())
    }
}

fn durations(item: &str, start: Quantity, end: Quantity, by: By) -> Result<Vec<Value>, String> {
    let nanos = |q: &Quantity| {
        q.duration
            .map(|d| d.as_nanos())
            .ok_or_else(|| format!("`{item}`: this key takes durations; give each end a unit"))
    };
    let (a, b) = (nanos(&start)?, nanos(&end)?);
    check_order(item, a > b)?;
    let show = |n: u128| Value::String(duration::format(Duration::from_nanos(n as u64)));
    match by {
        By::Default => Err(format!(
            "`{item}`: give a step (`{}..{} step 5ms`) or a factor (`x2`)",
            start.text, end.text
        )),
        By::Step(step) => {
            let s = nanos(&step)?;
            if s == 0 {
                return Err(format!("`{item}`: the step must be above 0"));
            }
            let count = (b - a) / s + 1;
            if count > MAX_VALUES as u128 {
                return Err(too_many(item));
            }
            Ok((0..count).map(|i| show(a + i * s)).collect())
        }
        By::Factor(f) => geometric(item, a as f64, b as f64, f)
            .map(|vs| vs.into_iter().map(|v| show(v.round() as u128)).collect()),
    }
    .and_then(distinct)
}

fn geometric(item: &str, a: f64, b: f64, f: f64) -> Result<Vec<f64>, String> {
    if a <= 0.0 {
        return Err(format!(
            "`{item}`: a geometric range starts above 0 (0 × {f} stays 0)"
        ));
    }
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        // From the start each time, so no error accumulates.
        let v = a * f.powi(i);
        if v > b * (1.0 + 1e-12) {
            return Ok(out);
        }
        out.push(v);
        i += 1;
        if out.len() > MAX_VALUES {
            return Err(too_many(item));
        }
    }
}

fn numbers(
    item: &str,
    start: Quantity,
    end: Quantity,
    by: By,
    kind: Kind,
) -> Result<Vec<Value>, String> {
    let (Some(a), Some(b)) = (start.number(), end.number()) else {
        return Err(format!(
            "`{item}`: this key takes {}, not durations",
            kind.noun()
        ));
    };
    if kind == Kind::Integer && (start.percent || end.percent) {
        return Err(format!("`{item}`: this key takes whole numbers, not a %"));
    }
    check_order(item, a.cmp_to(&b).is_gt())?;
    let values: Vec<Decimal> = match by {
        By::Default if a.is_whole() && b.is_whole() => step_decimals(item, a, b, Decimal::ONE)?,
        By::Default => {
            return Err(format!(
                "`{item}`: give a step, like `{}..{} step 0.1`",
                start.text, end.text
            ));
        }
        By::Step(step) => {
            let s = step
                .number()
                .filter(|_| step.percent == start.percent)
                .ok_or_else(|| {
                    format!("`{item}`: the step must be written like the ends (a %, or not)")
                })?;
            step_decimals(item, a, b, s)?
        }
        By::Factor(f) => {
            let vs = geometric(item, a.to_f64(), b.to_f64(), f)?;
            return match kind {
                Kind::Integer => {
                    let mut out: Vec<Value> = Vec::new();
                    for v in vs {
                        let v = Value::Integer(v.round() as i64);
                        if !out.contains(&v) {
                            out.push(v);
                        }
                    }
                    Ok(out)
                }
                _ => Ok(vs
                    .into_iter()
                    .map(|v| Value::Float(significant(v)))
                    .collect()),
            };
        }
    };
    values
        .into_iter()
        .map(|d| match kind {
            Kind::Integer => d
                .to_i64()
                .map(Value::Integer)
                .ok_or_else(|| format!("`{item}`: this key takes whole numbers")),
            _ => Ok(Value::Float(d.to_f64())),
        })
        .collect()
}

/// `v` rounded to 12 significant digits: `0.1 × 3` is 0.3, not 0.30000000000000004.
fn significant(v: f64) -> f64 {
    format!("{v:.11e}").parse().unwrap_or(v)
}

fn step_decimals(
    item: &str,
    a: Decimal,
    b: Decimal,
    step: Decimal,
) -> Result<Vec<Decimal>, String> {
    let scale = a.scale.max(b.scale).max(step.scale);
    let (a, b, s) = (a.at(scale), b.at(scale), step.at(scale));
    if s <= 0 {
        return Err(format!("`{item}`: the step must be above 0"));
    }
    let count = (b - a) / s + 1;
    if count > MAX_VALUES as i128 {
        return Err(too_many(item));
    }
    Ok((0..count)
        .map(|i| Decimal {
            mantissa: a + i * s,
            scale,
        })
        .collect())
}

// === Quantities ===

/// A decimal number held exactly: `mantissa × 10^-scale`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Decimal {
    mantissa: i128,
    scale: u32,
}

/// Most digits after the point a range's numbers may have.
const MAX_SCALE: u32 = 15;

impl Decimal {
    const ONE: Decimal = Decimal {
        mantissa: 1,
        scale: 0,
    };

    fn parse(text: &str) -> Option<Decimal> {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() && fraction.is_empty()
            || !all_digits(whole)
            || !all_digits(fraction)
            || fraction.len() as u32 > MAX_SCALE
            || whole.len() > 18
        {
            return None;
        }
        let mantissa: i128 = format!("{whole}{fraction}").parse().ok()?;
        Some(Decimal {
            mantissa: if negative { -mantissa } else { mantissa },
            scale: fraction.len() as u32,
        })
    }

    fn at(self, scale: u32) -> i128 {
        self.mantissa * 10i128.pow(scale - self.scale)
    }

    fn is_whole(&self) -> bool {
        self.mantissa % 10i128.pow(self.scale) == 0
    }

    fn cmp_to(&self, other: &Decimal) -> std::cmp::Ordering {
        let scale = self.scale.max(other.scale);
        self.at(scale).cmp(&other.at(scale))
    }

    fn to_i64(self) -> Option<i64> {
        self.is_whole()
            .then(|| self.mantissa / 10i128.pow(self.scale))
            .and_then(|v| i64::try_from(v).ok())
    }

    /// The nearest f64 to the decimal, as parsing its text would give.
    pub(super) fn to_f64(self) -> f64 {
        let sign = if self.mantissa < 0 { "-" } else { "" };
        let digits = self.mantissa.unsigned_abs().to_string();
        let scale = self.scale as usize;
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (whole, fraction) = padded.split_at(padded.len() - scale);
        format!("{sign}{whole}.{fraction}0")
            .parse()
            .unwrap_or(f64::NAN)
    }

    /// Divided by 100 (a percentage).
    fn percent(self) -> Decimal {
        Decimal {
            mantissa: self.mantissa,
            scale: self.scale + 2,
        }
    }
}

/// An end or a step of a range, as written: a number, a percentage or a duration.
#[derive(Debug, Clone)]
pub(super) struct Quantity {
    text: String,
    decimal: Option<Decimal>,
    percent: bool,
    duration: Option<Duration>,
}

impl Quantity {
    pub(super) fn parse(text: &str) -> Option<Quantity> {
        let t = text.trim();
        let q = |decimal, percent, duration| Quantity {
            text: t.to_string(),
            decimal,
            percent,
            duration,
        };
        if let Some(number) = t.strip_suffix('%') {
            return Decimal::parse(number.trim()).map(|d| q(Some(d), true, None));
        }
        if let Some(d) = Decimal::parse(t) {
            return Some(q(Some(d), false, None));
        }
        duration::parse(t).ok().map(|d| q(None, false, Some(d)))
    }

    fn is_duration(&self) -> bool {
        self.duration.is_some()
    }

    fn is_whole(&self) -> bool {
        self.decimal.is_some_and(|d| d.is_whole())
    }

    /// The number (a % already divided by 100), unless it is a duration.
    pub(super) fn number(&self) -> Option<Decimal> {
        self.decimal
            .map(|d| if self.percent { d.percent() } else { d })
    }
}
