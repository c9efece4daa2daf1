//! Human durations: `"250ms"`, `"1.5s"`, `"2m"`, `"100us"`.
//!
//! Profiles write every duration as a number with a unit, so that `deadline = 250` (seconds? ms?)
//! can never be misread. Results files write them back the same way.

use std::time::Duration;

/// Units in the order they are tried, with their length in nanoseconds.
const UNITS: [(&str, u128); 9] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("min", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("d", 86_400_000_000_000),
];

/// The longest duration a profile may name (a sanity bound, not a target: ~31 years).
pub const MAX: Duration = Duration::from_secs(1_000_000_000);

/// Parses a non-negative duration with a unit: ns, us (or µs), ms, s, m (or min), h, d.
/// The number may have a fraction (`"1.5s"`); the result is rounded to whole nanoseconds.
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .ok_or_else(|| {
            format!("`{text}` has no unit; write it like \"250ms\", \"1.5s\" or \"2m\"")
        })?;
    let (number, unit) = t.split_at(split);
    let unit = unit.trim();
    let nanos_per = UNITS
        .iter()
        .find(|(u, _)| *u == unit)
        .map(|(_, n)| *n)
        .ok_or_else(|| {
            format!("`{text}` has an unknown unit `{unit}`; use one of ns, us, ms, s, m, h, d")
        })?;
    if number.starts_with('-') {
        return Err(format!("`{text}` is negative; durations must be 0 or more"));
    }
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` does not start with a number"))?;
    if !value.is_finite() {
        return Err(format!("`{text}` is not a finite duration"));
    }
    let nanos = value * nanos_per as f64;
    if nanos > MAX.as_nanos() as f64 {
        return Err(format!(
            "`{text}` is longer than the longest duration allowed ({})",
            format(MAX)
        ));
    }
    Ok(Duration::from_nanos(nanos.round() as u64))
}

/// Formats a duration in the largest unit that keeps it exact, e.g. `"250ms"`, `"1500us"`.
pub fn format(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    for (unit, per) in [
        ("h", 3_600_000_000_000u128),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
    ] {
        if nanos.is_multiple_of(per) {
            return format!("{}{unit}", nanos / per);
        }
    }
    format!("{nanos}ns")
}

/// A duration field in a profile: deserialized from a string like `"250ms"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl serde::Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        human::serialize(&self.0, s)
    }
}

impl<'de> serde::Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        human::deserialize(d).map(HumanDuration)
    }
}

/// `#[serde(with = "human")]` for `Duration` fields: written and read as `"250ms"`.
pub mod human {
    use std::fmt;
    use std::time::Duration;

    /// Writes a duration as a human string.
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*d))
    }

    /// Reads a duration from a human string; a bare number is refused with a hint.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(Visitor)
    }

    struct Visitor;

    impl serde::de::Visitor<'_> for Visitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a duration with a unit, like \"250ms\", \"1.5s\" or \"2m\"")
        }

        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Duration, E> {
            super::parse(v).map_err(E::custom)
        }

        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Duration, E> {
            Err(E::custom(format!(
                "{v} has no unit; write the duration as a string like \"{v}ms\" or \"{v}s\""
            )))
        }

        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Duration, E> {
            self.visit_i64(v as i64)
        }

        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Duration, E> {
            Err(E::custom(format!(
                "{v} has no unit; write the duration as a string like \"{v}s\""
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit_and_fractions() {
        let ms = Duration::from_millis;
        assert_eq!(parse("250ms"), Ok(ms(250)));
        assert_eq!(parse("1.5s"), Ok(ms(1500)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("2min"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse("100us"), Ok(Duration::from_micros(100)));
        assert_eq!(parse("100µs"), Ok(Duration::from_micros(100)));
        assert_eq!(parse("1ns"), Ok(Duration::from_nanos(1)));
        assert_eq!(parse(" 0s "), Ok(Duration::ZERO));
        assert_eq!(parse("0.1s"), Ok(ms(100)));
    }

    #[test]
    fn refuses_what_is_not_a_duration() {
        for bad in [
            "250",
            "ms",
            "-5ms",
            "1.2.3s",
            "5 parsecs",
            "",
            "infs",
            "1e400s",
            "40y",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(parse("100000000000000s").unwrap_err().contains("longest"));
    }

    #[test]
    fn formats_in_the_largest_exact_unit_and_round_trips() {
        for (d, text) in [
            (Duration::ZERO, "0s"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_secs(120), "2m"),
            (Duration::from_nanos(1), "1ns"),
            (Duration::from_micros(7), "7us"),
        ] {
            assert_eq!(format(d), text);
            assert_eq!(parse(text), Ok(d));
        }
    }
}
