//! `grpc-retry-pushback-ms` as it came off the wire (gRFC A6, "Pushback"), kept as the client
//! libraries need it.
//!
//! A6 says: one ASCII signed 32-bit integer, non-negative a wait in milliseconds, anything else
//! "do not retry". The libraries read more than that, each its own way (docs/strategies.md,
//! "Client flavors"): grpc-go and C-core parse 64 bits, grpc-js runs JavaScript's `parseInt`
//! over anything; with several values grpc-js reads the first, grpc-java and C-core the last,
//! and C-core's metadata parser fails the stream on any value that is no integer. So a
//! [`Pushback`] keeps what any of them reads: the first and the last value, how many came, and
//! whether any was malformed. That is a fixed size however many values a server sends; the
//! readings themselves are `strategy::retry::pushback`'s.

/// One `grpc-retry-pushback-ms` value, as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushbackValue {
    /// A decimal integer with an optional sign that fits 64 bits (Rust's `i64::from_str`,
    /// which accepts what grpc-go's `strconv.Atoi` and grpc-java's `Integer.valueOf` accept,
    /// and C-core's `absl::SimpleAtoi` without the white space it skips around the number).
    Integer(i64),
    /// Anything else: no integer at all (`"soon"`, `"50ms"`, `"1.5"`), or one beyond 64 bits.
    Malformed {
        /// What JavaScript's `parseInt` reads from it (grpc-js's reading): the integer its
        /// leading characters spell, or `None` for NaN. Clamped to the `i64` range.
        parse_int: Option<i64>,
    },
}

impl PushbackValue {
    /// Reads one value.
    pub fn parse(value: &[u8]) -> Self {
        let text = std::str::from_utf8(value).ok();
        match text.map(str::parse::<i64>) {
            Some(Ok(n)) => PushbackValue::Integer(n),
            _ => PushbackValue::Malformed {
                parse_int: text.and_then(parse_int),
            },
        }
    }

    /// What JavaScript's `parseInt` reads from it (`None`: NaN).
    pub fn parse_int(self) -> Option<i64> {
        match self {
            PushbackValue::Integer(n) => Some(n),
            PushbackValue::Malformed { parse_int } => parse_int,
        }
    }

    /// A6's reading: a wait in milliseconds for a non-negative signed 32-bit integer, `None`
    /// ("do not retry") for anything else.
    pub fn a6_wait_ms(self) -> Option<u32> {
        match self {
            PushbackValue::Integer(n) => u32::try_from(n).ok().filter(|&ms| ms <= i32::MAX as u32),
            PushbackValue::Malformed { .. } => None,
        }
    }
}

/// What a server said about retrying, through one or more `grpc-retry-pushback-ms` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pushback {
    /// The first value.
    pub first: PushbackValue,
    /// The last value (the first when only one came).
    pub last: PushbackValue,
    /// How many values came (counted up to `u16::MAX`).
    pub count: u16,
    /// Whether any of them is [`PushbackValue::Malformed`].
    pub any_malformed: bool,
}

impl Pushback {
    /// One value.
    pub fn one(value: PushbackValue) -> Self {
        Self {
            first: value,
            last: value,
            count: 1,
            any_malformed: matches!(value, PushbackValue::Malformed { .. }),
        }
    }

    /// One valid value: retry after `ms` milliseconds.
    pub fn after_ms(ms: u32) -> Self {
        Self::one(PushbackValue::Integer(i64::from(ms)))
    }

    /// One value of −1: do not retry.
    pub fn dont_retry() -> Self {
        Self::one(PushbackValue::Integer(-1))
    }

    /// These values and then `value`.
    pub fn and(self, value: PushbackValue) -> Self {
        Self {
            first: self.first,
            last: value,
            count: self.count.saturating_add(1),
            any_malformed: self.any_malformed || matches!(value, PushbackValue::Malformed { .. }),
        }
    }

    /// A6's reading (and grpc-go's, to 32 bits): exactly one value, a non-negative signed
    /// 32-bit integer, is the wait in milliseconds; anything else (`None`) says "do not retry".
    pub fn a6_wait_ms(self) -> Option<u32> {
        (self.count == 1).then(|| self.first.a6_wait_ms()).flatten()
    }

    /// Whether A6 reads it as "do not retry" (negative, unparseable, or several values).
    pub fn says_stop(self) -> bool {
        self.a6_wait_ms().is_none()
    }
}

/// Reads one `grpc-retry-pushback-ms` value.
pub fn parse_pushback(value: &[u8]) -> Pushback {
    Pushback::one(PushbackValue::parse(value))
}

/// ECMAScript's `parseInt(string)` without a radix (ECMA-262, "parseInt"), for what fits an
/// `i64` (further digits saturate): leading white space skipped, an optional sign, a `0x`
/// prefix for hexadecimal, then as many digits as follow; no digit is NaN (`None`).
pub fn parse_int(text: &str) -> Option<i64> {
    let t = text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    let (negative, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, t) = match t.get(..2) {
        Some("0x" | "0X") => (16, &t[2..]),
        _ => (10, t),
    };
    let digits: Vec<u32> = t.chars().map_while(|c| c.to_digit(radix)).collect();
    if digits.is_empty() {
        return None;
    }
    let magnitude = digits.iter().fold(0i64, |n, &d| {
        n.saturating_mul(i64::from(radix))
            .saturating_add(i64::from(d))
    });
    Some(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_value_follows_a6() {
        let wait = |v: &[u8]| parse_pushback(v).a6_wait_ms();
        assert_eq!(wait(b"0"), Some(0));
        assert_eq!(wait(b"250"), Some(250));
        assert_eq!(wait(b"2147483647"), Some(i32::MAX as u32));
        assert_eq!(wait(b"-1"), None);
        assert_eq!(wait(b"2147483648"), None);
        assert!(parse_pushback(b"1.5").says_stop());
        assert!(parse_pushback(b"").says_stop());
        assert!(parse_pushback(b"\xff").says_stop());
        assert_eq!(parse_pushback(b"250"), Pushback::after_ms(250));
    }

    /// Integers beyond A6's 32 bits keep their value (grpc-go and C-core wait it); beyond 64
    /// bits they are malformed, as `strconv.Atoi` and `absl::SimpleAtoi` refuse them.
    #[test]
    fn integers_keep_their_64_bit_value() {
        let value = |v: &[u8]| parse_pushback(v).first;
        assert_eq!(value(b"2147483648"), PushbackValue::Integer(2_147_483_648));
        assert_eq!(value(b"+5"), PushbackValue::Integer(5));
        assert_eq!(value(b"-5"), PushbackValue::Integer(-5));
        assert_eq!(
            value(b"99999999999999999999"),
            PushbackValue::Malformed {
                parse_int: Some(i64::MAX)
            }
        );
    }

    /// Values that are no integer are told apart, with what grpc-js's `parseInt` reads.
    #[test]
    fn malformed_values_keep_what_parse_int_reads() {
        let read = |v: &[u8]| match parse_pushback(v).first {
            PushbackValue::Malformed { parse_int } => parse_int,
            other => panic!("{other:?} is not malformed"),
        };
        assert_eq!(read(b"soon"), None);
        assert_eq!(read(b""), None);
        assert_eq!(read(b"\xff"), None);
        assert_eq!(read(b"50ms"), Some(50));
        assert_eq!(read(b"1.5"), Some(1));
        assert_eq!(read(b"1e3"), Some(1));
        assert_eq!(read(b" 7"), Some(7));
        assert_eq!(read(b"-5x"), Some(-5));
        assert_eq!(read(b"0x10"), Some(16));
        assert_eq!(read(b"-"), None);
        assert_eq!(parse_int("99999999999999999999999"), Some(i64::MAX));
    }

    /// Several values: the first and the last are kept, and whether any was malformed; A6
    /// reads any number of them but one as "do not retry".
    #[test]
    fn several_values_keep_the_first_the_last_and_whether_any_was_malformed() {
        let p = parse_pushback(b"10")
            .and(PushbackValue::parse(b"soon"))
            .and(PushbackValue::parse(b"20"));
        assert_eq!(p.first, PushbackValue::Integer(10));
        assert_eq!(p.last, PushbackValue::Integer(20));
        assert_eq!((p.count, p.any_malformed), (3, true));
        assert!(p.says_stop());
        assert!(!parse_pushback(b"10").any_malformed);
    }
}
