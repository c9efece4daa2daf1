//! The values a sweep key takes, written as text: lists, ranges with a step, geometric ranges.
//!
//! ```text
//! 3                      one value
//! 1, 2, 5                a list (items may be ranges: 1..3, 10)
//! 1..5                   1, 2, 3, 4, 5          (whole numbers: step 1)
//! 0.05..0.3 step 0.05    0.05, 0.1, …, 0.3      (decimals are exact: no 0.30000000000000004)
//! 5%..30% step 5%        0.05, 0.1, …, 0.3      (a % divides by 100)
//! 5ms..100ms step 5ms    5ms, 10ms, …, 100ms    (durations: exact to the nanosecond)
//! 500..5000 x2           500, 1000, 2000, 4000  (geometric: × 2 while ≤ 5000)
//! ```
//!
//! A range includes its end when a step lands on it. How a value reads depends on what the key
//! holds in the base plan ([`Kind`]): `3` is a whole number for `max_attempts`, `3.0` for a
//! float like `backoff_multiplier`; `"100ms"` a duration for `initial_backoff`. Whatever kind,
//! the point's plan is then checked by the profile's own rules (`crate::profile`), so a value
//! the kind accepts but the profile does not (a `max_attempts` of 1) is refused there.

use toml::Value;

use super::range::{Quantity, range};
use crate::profile::duration;

/// Most values one key may take (a 10,000-value key is already a 10,000-point grid).
pub const MAX_VALUES: usize = 10_000;

/// What a key holds in the base plan: it decides how a value's text reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A whole number (`max_attempts`, `workers`).
    Integer,
    /// A number with a fraction (`rate`, `backoff_multiplier`, a probability); `5%` is 0.05.
    Float,
    /// A duration written as text (`"100ms"`).
    Duration,
    /// `true` or `false`.
    Bool,
    /// Other text (an enum like `jitter = "full"`, a status name).
    Text,
    /// A table, an array, or a key the base plan does not have: each value is read as a TOML
    /// value (`{ dist = "fixed", value = "2ms" }`, `["UNAVAILABLE"]`), bare text as a string.
    Any,
}

impl Kind {
    /// The kind of the value a key holds in the base plan (`None`: the key is not there).
    pub fn of(base: Option<&Value>) -> Kind {
        match base {
            Some(Value::Integer(_)) => Kind::Integer,
            Some(Value::Float(_)) => Kind::Float,
            Some(Value::Boolean(_)) => Kind::Bool,
            Some(Value::String(s)) if duration::parse(s).is_ok() => Kind::Duration,
            Some(Value::String(_)) => Kind::Text,
            _ => Kind::Any,
        }
    }

    pub(super) fn noun(self) -> &'static str {
        match self {
            Kind::Integer => "a whole number",
            Kind::Float => "a number",
            Kind::Duration => "a duration like \"100ms\"",
            Kind::Bool => "true or false",
            Kind::Text => "text",
            Kind::Any => "a value",
        }
    }
}

/// The values of `text` (a list of values and ranges) for a key of `kind`.
pub fn expand(text: &str, kind: Kind) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    if text.trim().is_empty() {
        return Err("no values; expected a list (1, 2, 5) or a range (1..5)".into());
    }
    for item in split_top_level(text) {
        let item = item.trim();
        if item.is_empty() {
            return Err(format!("`{text}` has an empty item between two commas"));
        }
        if is_range(item, kind) {
            out.extend(range(item, kind)?);
        } else {
            out.push(one(item, kind)?);
        }
        if out.len() > MAX_VALUES {
            return Err(format!("more than {MAX_VALUES} values"));
        }
    }
    distinct(out)
}

/// The values of a TOML value from `[sweep.vary]`: a string in the syntax of [`expand`], an
/// array of values, or one value.
pub fn from_toml(value: &Value, kind: Kind) -> Result<Vec<Value>, String> {
    match value {
        Value::String(text) => expand(text, kind),
        Value::Array(items) if items.is_empty() => Err("no values: the array is empty".into()),
        Value::Array(items) if items.len() > MAX_VALUES => {
            Err(format!("more than {MAX_VALUES} values"))
        }
        Value::Array(items) => distinct(
            items
                .iter()
                .map(|v| coerce(v.clone(), kind))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        v => Ok(vec![coerce(v.clone(), kind)?]),
    }
}

/// A value as shown in labels and messages: text without quotes, numbers as TOML writes them.
pub fn show(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.1}"),
        v => v.to_string(),
    }
}

pub(super) fn distinct(values: Vec<Value>) -> Result<Vec<Value>, String> {
    for (i, v) in values.iter().enumerate() {
        if values[..i].contains(v) {
            return Err(format!("`{}` appears twice", show(v)));
        }
    }
    Ok(values)
}

/// Splits at commas outside quotes, brackets and braces.
fn split_top_level(text: &str) -> Vec<&str> {
    let (mut depth, mut quote, mut start) = (0i32, None, 0);
    let mut out = Vec::new();
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '{') => depth += 1,
            (None, ']' | '}') => depth -= 1,
            (None, ',') if depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

fn is_range(item: &str, kind: Kind) -> bool {
    !matches!(kind, Kind::Text) && !item.starts_with(['"', '\'', '[', '{']) && item.contains("..")
}

/// One value (not a range) for a key of `kind`.
fn one(item: &str, kind: Kind) -> Result<Value, String> {
    let item = item.trim();
    let bad = || format!("`{item}` is not {}", kind.noun());
    match kind {
        Kind::Integer => item.parse::<i64>().map(Value::Integer).map_err(|_| bad()),
        Kind::Float => Quantity::parse(item)
            .and_then(|q| q.number())
            .map(|d| Value::Float(d.to_f64()))
            .ok_or_else(bad),
        Kind::Duration => duration::parse(unquote(item))
            .map(|d| Value::String(duration::format(d)))
            .map_err(|e| format!("{e}; expected {}", kind.noun())),
        Kind::Bool => match item {
            "true" => Ok(Value::Boolean(true)),
            "false" => Ok(Value::Boolean(false)),
            _ => Err(bad()),
        },
        Kind::Text => Ok(Value::String(unquote(item).to_string())),
        Kind::Any => Ok(literal(item)),
    }
}

fn unquote(item: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = item.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return inner;
        }
    }
    item
}

/// A TOML literal (`3`, `0.5`, `true`, `"x"`, `["A"]`, `{ k = 1 }`), or bare text as a string.
fn literal(item: &str) -> Value {
    toml::from_str::<toml::Table>(&format!("v = {item}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(item.to_string()))
}

/// A TOML value given for a key of `kind`: whole numbers are numbers too; text is read as
/// text (`"5%"`, `"100ms"`); any value goes to a key of kind [`Kind::Any`] as it is.
fn coerce(value: Value, kind: Kind) -> Result<Value, String> {
    match (kind, value) {
        (Kind::Any, v) => Ok(v),
        (Kind::Float, Value::Integer(i)) => Ok(Value::Float(i as f64)),
        (_, Value::String(s)) => one(&s, kind),
        (Kind::Integer, v @ Value::Integer(_))
        | (Kind::Float, v @ Value::Float(_))
        | (Kind::Bool, v @ Value::Boolean(_)) => Ok(v),
        (kind, v) => Err(format!("`{}` is not {}", show(&v), kind.noun())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(text: &str) -> Vec<i64> {
        expand(text, Kind::Integer)
            .unwrap()
            .iter()
            .map(|v| v.as_integer().unwrap())
            .collect()
    }

    fn floats(text: &str) -> Vec<f64> {
        expand(text, Kind::Float)
            .unwrap()
            .iter()
            .map(|v| v.as_float().unwrap())
            .collect()
    }

    fn texts(text: &str, kind: Kind) -> Vec<String> {
        expand(text, kind).unwrap().iter().map(show).collect()
    }

    #[test]
    fn lists_and_whole_number_ranges() {
        assert_eq!(ints("1..5"), [1, 2, 3, 4, 5]);
        assert_eq!(
            ints("1..10 step 4"),
            [1, 5, 9],
            "the end only when a step lands on it"
        );
        assert_eq!(ints("1..3, 10, 20..40 step 10"), [1, 2, 3, 10, 20, 30, 40]);
        assert_eq!(ints("7"), [7]);
        assert_eq!(ints("500..5000 x2"), [500, 1000, 2000, 4000]);
        assert_eq!(ints("500..5000x2"), [500, 1000, 2000, 4000]);
        assert_eq!(ints("500..5000 x 2"), [500, 1000, 2000, 4000]);
        assert_eq!(
            ints("1..10 x1.5"),
            [1, 2, 3, 5, 8],
            "rounded, repeats dropped"
        );
    }

    #[test]
    fn decimals_and_percentages_are_exact() {
        assert_eq!(
            floats("0.05..0.3 step 0.05"),
            [0.05, 0.1, 0.15, 0.2, 0.25, 0.3]
        );
        assert_eq!(floats("5%..30% step 5%"), [0.05, 0.1, 0.15, 0.2, 0.25, 0.3]);
        assert_eq!(floats("0.1..0.3 step 0.1"), [0.1, 0.2, 0.3]);
        assert_eq!(floats("1..3"), [1.0, 2.0, 3.0]);
        assert_eq!(floats("0.01..1 x10"), [0.01, 0.1, 1.0]);
        assert_eq!(floats("2.5, 99.9%"), [2.5, 0.999]);
    }

    #[test]
    fn durations_are_exact_and_written_as_profiles_write_them() {
        let d = texts("5ms..20ms step 5ms", Kind::Duration);
        assert_eq!(d, ["5ms", "10ms", "15ms", "20ms"]);
        assert_eq!(
            texts("1ms..1s x10", Kind::Duration),
            ["1ms", "10ms", "100ms", "1s"]
        );
        assert_eq!(texts("0.1s, 250ms", Kind::Duration), ["100ms", "250ms"]);
        assert_eq!(
            texts("1.5s..2.5s step 500ms", Kind::Duration),
            ["1500ms", "2s", "2500ms"]
        );
    }

    #[test]
    fn other_kinds() {
        assert_eq!(
            texts("full, equal, none", Kind::Text),
            ["full", "equal", "none"]
        );
        let any = expand(
            r#"["UNAVAILABLE"], ["UNAVAILABLE", "UNKNOWN"], 3, x"#,
            Kind::Any,
        )
        .unwrap();
        assert_eq!(any.len(), 4);
        assert!(any[1].as_array().is_some_and(|a| a.len() == 2));
        assert_eq!(any[2], Value::Integer(3));
        assert_eq!(any[3], Value::String("x".into()));
        assert_eq!(expand("true,false", Kind::Bool).unwrap().len(), 2);
        assert_eq!(
            expand("10ms..30ms step 10ms", Kind::Any).unwrap()[2],
            Value::String("30ms".into())
        );
    }

    #[test]
    fn bad_ranges_say_why() {
        let err = |text: &str, kind| expand(text, kind).unwrap_err();
        assert!(err("5..1", Kind::Integer).contains("ends before it starts"));
        assert!(err("1..5 step 0", Kind::Integer).contains("above 0"));
        assert!(err("1..5 x1", Kind::Integer).contains("above 1"));
        assert!(err("0..5 x2", Kind::Integer).contains("starts above 0"));
        assert!(err("1..5 stride 2", Kind::Integer).contains("not a range"));
        assert!(err("1..5x2 step 1", Kind::Integer).contains("after the factor"));
        assert!(err("5ms..100ms", Kind::Duration).contains("give a step"));
        assert!(err("0.1..0.5", Kind::Float).contains("give a step"));
        assert!(err("1ms..5ms step 1ms", Kind::Integer).contains("not durations"));
        assert!(err("1..5", Kind::Duration).contains("durations"));
        assert!(err("1..2 step 0.5", Kind::Integer).contains("whole numbers"));
        assert!(err("1..100000", Kind::Integer).contains("more than"));
        assert!(err("true..false", Kind::Bool).contains("true or false"));
        assert!(err("", Kind::Integer).contains("no values"));
        assert!(err("1,,2", Kind::Integer).contains("empty item"));
        assert!(err("1, 2, 1", Kind::Integer).contains("appears twice"));
        assert!(err("1.5", Kind::Integer).contains("not a whole number"));
        assert!(err("abc", Kind::Float).contains("not a number"));
        assert!(err("100", Kind::Duration).contains("no unit"));
    }

    #[test]
    fn toml_values_from_the_sweep_table() {
        let v = |s: &str| toml::from_str::<toml::Table>(&format!("v = {s}")).unwrap()["v"].clone();
        assert_eq!(
            from_toml(&v("[1, 2, 4]"), Kind::Float).unwrap()[2],
            Value::Float(4.0)
        );
        assert_eq!(from_toml(&v("\"1..3\""), Kind::Integer).unwrap().len(), 3);
        assert_eq!(
            from_toml(&v("[\"10ms\", \"0.5s\"]"), Kind::Duration).unwrap()[1],
            Value::String("500ms".into())
        );
        assert_eq!(
            from_toml(&v("5"), Kind::Integer).unwrap(),
            [Value::Integer(5)]
        );
        let arrays = from_toml(&v("[[\"A\"], [\"A\", \"B\"]]"), Kind::Any).unwrap();
        assert_eq!(arrays.len(), 2);
        assert!(
            from_toml(&v("[]"), Kind::Integer)
                .unwrap_err()
                .contains("empty")
        );
        assert!(from_toml(&v("[true]"), Kind::Integer).is_err());
    }
}
