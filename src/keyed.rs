//! Keyed randomness: a random stream that depends only on *what* is drawn, never on *when*.
//!
//! The backend's draw for an attempt (its latency, its status) comes from a stream seeded by a
//! hash of (run seed, request id, attempt number, purpose). Two strategies therefore meet exactly
//! the same backend luck for the same call and attempt, whatever the interleaving of calls, in
//! real or virtual time, in one process or split across shards.
//!
//! The request id is hashed with FNV-1a (64-bit; Fowler, Noll, Vo) and the pieces are combined
//! and stretched with SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number
//! generators", OOPSLA 2014). Both are fixed, published functions, so a results file stays
//! reproducible across platforms and compiler versions (unlike `std`'s unspecified hasher).

/// SplitMix64's increment (the golden-ratio gamma).
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's output function: a bijective mix of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a, 64-bit, of a request id as it travels on the wire.
pub fn request_key(request_id: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in request_id {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The request key of a numeric call id, as [`request_key`] of its decimal text (what the gRPC
/// transport sends), computed without allocating.
pub fn call_key(id: u64) -> u64 {
    let mut buf = [0u8; 20];
    let mut pos = buf.len();
    let mut n = id;
    loop {
        pos -= 1;
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    request_key(&buf[pos..])
}

/// What a draw is for; each purpose gets an independent stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Purpose {
    /// The attempt's service time.
    Latency = 1,
    /// The attempt's status.
    Status = 2,
    /// Whether an error burst hits the attempt.
    Burst = 3,
    /// Whether a mutation's reply is lost.
    LostResponse = 4,
    /// Whether a stream fails before its first message.
    StreamBeforeFirst = 5,
    /// Whether a stream fails after message k.
    StreamAfter = 6,
    /// The intervals between a stream's messages.
    StreamInterval = 7,
    /// A retry's backoff jitter.
    Jitter = 8,
    /// Adaptive throttling's local rejection.
    Adaptive = 9,
    /// A request template's draw (`{{int}}`, `{{choice}}`, `{{string}}`, `{{newUUID}}`): the
    /// stream's "attempt" is the placeholder's slot, so each placeholder draws on its own.
    TemplateDraw = 10,
    /// A call's request id in templates (`{{request_id}}`).
    RequestId = 11,
    /// A call's UUID in templates (`{{uuid}}`).
    Uuid = 12,
    /// Which strategy an interleaved run gives the call to.
    Order = 13,
    /// Whether `x-envoy-fault-abort-request-percentage` hits the attempt (the proxy).
    EnvoyAbort = 14,
    /// Whether `x-envoy-fault-delay-request-percentage` hits the attempt (the proxy).
    EnvoyDelay = 15,
}

/// A SplitMix64 stream keyed by (seed, request key, attempt, purpose).
#[derive(Debug, Clone)]
pub struct KeyedStream {
    state: u64,
}

impl KeyedStream {
    /// The stream for one draw. `attempt` counts from 0 (the value of
    /// `grpc-previous-rpc-attempts`).
    pub fn new(seed: u64, request_key: u64, attempt: u32, purpose: Purpose) -> Self {
        let mut state = mix(seed.wrapping_add(GAMMA));
        state = mix(state ^ request_key);
        state = mix(state ^ ((u64::from(attempt) << 32) | purpose as u64));
        Self { state }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        mix(self.state)
    }

    /// A uniform draw in the open interval (0, 1): never exactly 0 or 1, so it is safe to take
    /// its logarithm or raise it to a negative power.
    pub fn open01(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_published_vectors() {
        // Test vectors from the FNV reference (draft-eastlake-fnv).
        assert_eq!(request_key(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(request_key(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(request_key(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn call_key_hashes_the_decimal_text() {
        for id in [0u64, 7, 10, 12345, u64::MAX] {
            assert_eq!(call_key(id), request_key(id.to_string().as_bytes()));
        }
    }

    #[test]
    fn splitmix_matches_reference_output() {
        // SplitMix64 seeded with 0 starts 0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4 (the values
        // of the reference implementation by Vigna, prng.di.unimi.it/splitmix64.c).
        let mut s = KeyedStream { state: 0 };
        assert_eq!(s.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(s.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn streams_differ_by_every_key_part_and_repeat_exactly() {
        let a = KeyedStream::new(1, 2, 0, Purpose::Latency).next_u64();
        assert_eq!(a, KeyedStream::new(1, 2, 0, Purpose::Latency).next_u64());
        assert_ne!(a, KeyedStream::new(9, 2, 0, Purpose::Latency).next_u64());
        assert_ne!(a, KeyedStream::new(1, 3, 0, Purpose::Latency).next_u64());
        assert_ne!(a, KeyedStream::new(1, 2, 1, Purpose::Latency).next_u64());
        assert_ne!(a, KeyedStream::new(1, 2, 0, Purpose::Status).next_u64());
    }

    #[test]
    fn open01_is_uniform_enough() {
        let mut s = KeyedStream::new(42, 0, 0, Purpose::Latency);
        let n = 100_000;
        let mut below_half = 0;
        let mut sum = 0.0;
        for _ in 0..n {
            let u = s.open01();
            assert!(u > 0.0 && u < 1.0);
            sum += u;
            if u < 0.5 {
                below_half += 1;
            }
        }
        assert!((sum / n as f64 - 0.5).abs() < 0.005);
        assert!((below_half as f64 / n as f64 - 0.5).abs() < 0.005);
    }
}
