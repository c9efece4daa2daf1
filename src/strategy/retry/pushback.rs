//! `grpc-retry-pushback-ms` as a client flavor reads it: gRFC A6, "Pushback", or a library's
//! own reading ([`Flavor::several_pushbacks`], [`Flavor::pushback_number`]).
//!
//! A6: exactly one value, a signed 32-bit integer; a non-negative one is the wait, anything
//! else says "do not retry". With several values grpc-js reads the first, grpc-java and C-core
//! the last (grpc-go does as A6). grpc-java reads 32 bits (`Integer.valueOf`, −1 when it
//! throws); grpc-go and C-core read 64 (`strconv.Atoi`, `absl::SimpleAtoi`) and wait what they
//! read, past any deadline; grpc-js reads anything with JavaScript's `parseInt`, so `"50ms"`
//! waits 50 ms and `"soon"` (NaN) no time, and Node's timer then waits 1 ms for a delay under
//! 1 ms or above 2^31 − 1 ms ([`crate::profile::flavor::Timers`], applied by the policies).
//! C-core's newer metadata parser fails the attempt instead of reading a value that is no
//! integer ([`super::super::library`]); what reaches a policy then has no pushback left.

use std::time::Duration;

use crate::profile::flavor::{Flavor, PushbackNumber, SeveralPushbacks};
use crate::protocol::{Pushback, PushbackValue};

/// What a pushback tells a flavor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// None was sent.
    Absent,
    /// Try again after exactly this long (before the flavor's timers round it).
    After(Duration),
    /// Do not try again.
    Stop,
}

/// `pushback` as `flavor` reads it.
pub fn read(flavor: &Flavor, pushback: Option<Pushback>) -> Push {
    let Some(p) = pushback else {
        return Push::Absent;
    };
    let value = match flavor.several_pushbacks {
        _ if p.count == 1 => p.first,
        SeveralPushbacks::DontRetry => return Push::Stop,
        SeveralPushbacks::First => p.first,
        SeveralPushbacks::Last => p.last,
    };
    let ms = |n: i64| Push::After(Duration::from_millis(n.unsigned_abs()));
    match (flavor.pushback_number, value) {
        (PushbackNumber::Int32, v) => v.a6_wait_ms().map_or(Push::Stop, |n| ms(i64::from(n))),
        (PushbackNumber::Int64, PushbackValue::Integer(n)) if n >= 0 => ms(n),
        (PushbackNumber::GoInt64, PushbackValue::Integer(n)) if n >= 0 => {
            // `time.Millisecond * time.Duration(n)`: int64 nanoseconds, wrapping.
            let ns = n.wrapping_mul(1_000_000);
            Push::After(Duration::from_nanos(ns.max(0).unsigned_abs()))
        }
        (PushbackNumber::Int64 | PushbackNumber::GoInt64, _) => Push::Stop,
        (PushbackNumber::ParseInt, v) => match v.parse_int() {
            // `setTimeout(f, NaN)`: no time (Node's floor then applies).
            None => Push::After(Duration::ZERO),
            Some(n) if n < 0 => Push::Stop,
            Some(n) => ms(n),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::client::{Library, Version};
    use crate::protocol::pushback::parse_pushback;

    #[test]
    fn flavors_read_malformed_values_their_way() {
        let js = Flavor::of(Library::GrpcJs, Version(1, 14, 3));
        let java = Flavor::of(Library::GrpcJava, Version(1, 83, 1));
        let p = |v: &str| Some(parse_pushback(v.as_bytes()));
        assert_eq!(read(&Flavor::A6, p("soon")), Push::Stop);
        assert_eq!(read(&java, p("soon")), Push::Stop);
        assert_eq!(read(&js, p("soon")), Push::After(Duration::ZERO));
        assert_eq!(read(&js, p("50ms")), Push::After(Duration::from_millis(50)));
        assert_eq!(read(&js, p("-5x")), Push::Stop);
        assert_eq!(read(&js, p("-5")), Push::Stop);
        assert_eq!(
            read(&js, p("99999999999")),
            Push::After(Duration::from_millis(99_999_999_999)),
            "beyond 32 bits: parseInt's number (Node's timer then waits 1 ms)"
        );
        assert_eq!(read(&java, p("99999999999")), Push::Stop);
        assert_eq!(read(&js, p("7")), Push::After(Duration::from_millis(7)));
        assert_eq!(read(&js, None), Push::Absent);
    }

    /// Several values: grpc-js reads the first (`mdValue[0]`), grpc-java the last
    /// (`Metadata.get`), C-core the last (its metadata map keeps the last one set); A6 and
    /// grpc-go do not retry.
    #[test]
    fn several_values_are_read_as_each_library_reads_them() {
        use crate::profile::client::Client;
        use crate::protocol::header::{PUSHBACK, ResponseFields};
        let flavor = |c: &str| Client::parse(c).unwrap().flavor();
        let fields = |values: &[&str]| {
            ResponseFields::of(values.iter().map(|v| (PUSHBACK.as_bytes(), v.as_bytes()))).pushback
        };
        let after = |v| Push::After(Duration::from_millis(v));
        let two = fields(&["10", "20"]);
        for (client, want) in [
            ("a6", Push::Stop),
            ("grpc-go", Push::Stop),
            ("grpc-js", after(10)),
            ("grpc-java", after(20)),
            ("c-core", after(20)),
        ] {
            assert_eq!(read(&flavor(client), two), want, "{client}");
        }
        let soon_then_20 = fields(&["soon", "20"]);
        assert_eq!(
            read(&flavor("grpc-js"), soon_then_20),
            Push::After(Duration::ZERO)
        );
        assert_eq!(read(&flavor("grpc-java"), soon_then_20), after(20));
        assert_eq!(read(&flavor("c-core@1.51"), soon_then_20), after(20));
        assert_eq!(read(&flavor("grpc-go"), soon_then_20), Push::Stop);
    }
}
