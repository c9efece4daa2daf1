//! `grpc-retry-pushback-ms` as a client flavor reads it (gRFC A6, "Pushback", and the
//! departures of [`Flavor::malformed_pushback`]).
//!
//! A6: a valid value is the wait; a negative or unparseable one says "do not retry". grpc-js
//! reads the value with JavaScript's `parseInt`, so `"50ms"` waits 50 ms and `"soon"` (NaN)
//! waits no time at all (`setTimeout(f, NaN)`). C-core's newer metadata parser fails the
//! attempt with INTERNAL instead ([`super::super::library`]); what reaches a policy then has no
//! pushback left.

use std::time::Duration;

use crate::profile::flavor::{Flavor, MalformedPushback};
use crate::protocol::status::Pushback;

/// Node's `TIMEOUT_MAX` (lib/internal/timers.js): a longer `setTimeout` is replaced by 1 ms.
const NODE_TIMEOUT_MAX_MS: i64 = i32::MAX as i64;

/// What a pushback tells a flavor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// None was sent.
    Absent,
    /// Try again after exactly this long (before the flavor's timer floor).
    After(Duration),
    /// Do not try again.
    Stop,
}

/// `pushback` as `flavor` reads it.
pub fn read(flavor: &Flavor, pushback: Option<Pushback>) -> Push {
    match pushback {
        None => Push::Absent,
        Some(Pushback::RetryAfterMs(ms)) => Push::After(Duration::from_millis(u64::from(ms))),
        Some(Pushback::DontRetry) => Push::Stop,
        Some(Pushback::Malformed { parse_int }) => match flavor.malformed_pushback {
            MalformedPushback::DontRetry | MalformedPushback::Fails(_) => Push::Stop,
            MalformedPushback::ParseInt => match parse_int {
                Some(n) if n < 0 => Push::Stop,
                // Beyond TIMEOUT_MAX Node waits 1 ms, as for NaN: the timer floor.
                Some(n) if n <= NODE_TIMEOUT_MAX_MS => Push::After(Duration::from_millis(n as u64)),
                _ => Push::After(Duration::ZERO),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::client::{Library, Version};
    use crate::protocol::status::parse_pushback;

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
            Push::Stop,
            "beyond 32 bits: A6's reading"
        );
        assert_eq!(read(&js, p("7")), Push::After(Duration::from_millis(7)));
        assert_eq!(read(&js, None), Push::Absent);
    }
}
