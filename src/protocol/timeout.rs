//! `grpc-timeout`: the time left before a call's deadline, as a count of at most 8 digits and
//! a unit (`H M S m u n`; grpc/grpc `doc/PROTOCOL-HTTP2.md`, "Timeout").

use std::time::Duration;

/// The largest count the header allows (8 digits).
const MAX_COUNT: u128 = 99_999_999;

/// A `grpc-timeout` value for `left`, as grpc-go writes it (internal/transport
/// `encodeTimeout`): the finest unit whose count fits in 8 digits, rounded up so the server
/// never sees less time than there is; `0n` when nothing is left.
pub fn encode(left: Duration) -> String {
    write(left).to_string()
}

/// [`encode`], written in place: a count of at most 8 digits and its unit, no allocation (an
/// attempt writes one on its hot path).
pub fn write(left: Duration) -> Encoded {
    let nanos = left.as_nanos();
    let units: [(u128, u8); 6] = [
        (1, b'n'),
        (1_000, b'u'),
        (1_000_000, b'm'),
        (1_000_000_000, b'S'),
        (60_000_000_000, b'M'),
        (3_600_000_000_000, b'H'),
    ];
    let (count, unit) = units
        .iter()
        .map(|&(size, unit)| (nanos.div_ceil(size), unit))
        .find(|&(count, _)| count <= MAX_COUNT)
        .unwrap_or((nanos.div_ceil(3_600_000_000_000), b'H'));
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(count).as_bytes();
    let mut out = Encoded {
        bytes: [0; Encoded::CAPACITY],
        len: 0,
    };
    // Past 8 digits only for a time left over 11,415 years (hours, unbounded): kept whole up
    // to what u128 holds in 39 digits.
    let n = digits.len().min(Encoded::CAPACITY - 1);
    out.bytes[..n].copy_from_slice(&digits[..n]);
    out.bytes[n] = unit;
    out.len = n as u8 + 1;
    out
}

/// A written `grpc-timeout` value, held in place.
#[derive(Clone, Copy)]
pub struct Encoded {
    bytes: [u8; Encoded::CAPACITY],
    len: u8,
}

impl Encoded {
    /// Digits of the largest count u128 holds, and the unit.
    const CAPACITY: usize = 40;

    /// The value.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and a unit letter are ever written.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl std::ops::Deref for Encoded {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Display for Encoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for Encoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Parses a `grpc-timeout` value; `None` for anything the specification does not allow.
pub fn parse(value: &str) -> Option<Duration> {
    let (&unit, digits) = value.as_bytes().split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// grpc-go's encoding: the finest unit within 8 digits, rounded up.
    #[test]
    fn timeouts_are_written_as_grpc_go_writes_them() {
        assert_eq!(encode(Duration::ZERO), "0n");
        assert_eq!(encode(Duration::from_nanos(1)), "1n");
        assert_eq!(encode(Duration::from_nanos(99_999_999)), "99999999n");
        assert_eq!(encode(Duration::from_millis(100)), "100000u");
        assert_eq!(encode(Duration::from_nanos(100_000_001)), "100001u");
        assert_eq!(encode(Duration::from_secs(1)), "1000000u");
        assert_eq!(encode(Duration::from_secs(100_000)), "100000S");
        assert_eq!(encode(Duration::from_secs(200_000_000)), "3333334M");
        // Written in place, the same text; past 8 digits of hours, the count whole.
        for nanos in [0u64, 1, 999, 1_000_001, 123_456_789_012, u64::MAX] {
            let left = Duration::from_nanos(nanos);
            assert_eq!(write(left).as_str(), encode(left));
        }
        assert_eq!(
            write(Duration::from_secs(3600 * 100_000_000)).as_str(),
            "100000000H"
        );
        assert_eq!(
            write(Duration::MAX).as_str(),
            format!("{}H", Duration::MAX.as_nanos().div_ceil(3_600_000_000_000))
        );
    }

    /// What is written reads back as at least the time that was left, and less than one unit
    /// more.
    #[test]
    fn timeouts_round_trip_never_short() {
        for nanos in [1u64, 999, 1_000_001, 123_456_789_012, 5_000_000_000_001] {
            let left = Duration::from_nanos(nanos);
            let value = encode(left);
            assert!(value.len() <= 9, "{value}");
            let read = parse(&value).unwrap();
            assert!(read >= left, "{value} reads as less than {left:?}");
            let unit = match value.as_bytes()[value.len() - 1] {
                b'n' => Duration::from_nanos(1),
                b'u' => Duration::from_micros(1),
                b'm' => Duration::from_millis(1),
                b'S' => Duration::from_secs(1),
                b'M' => Duration::from_secs(60),
                _ => Duration::from_secs(3600),
            };
            assert!(
                read < left + unit,
                "{value} reads as a unit or more over {left:?}"
            );
        }
    }

    #[test]
    fn timeouts_parse_as_the_spec_writes_them() {
        assert_eq!(parse("100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse("99999999n"), Some(Duration::from_nanos(99_999_999)));
        for bad in [
            "",
            "m",
            "123456789m",
            "10x",
            "-1m",
            "1.5S",
            " 1S",
            "1é",
            "é",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
