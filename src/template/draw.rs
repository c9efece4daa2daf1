//! A placeholder's value for a call: drawn from its keyed stream (integers, choices, letters,
//! fresh UUIDs) or the call's own (its index, request id and UUID).
//!
//! Why apart from the syntax: this is the per-call path, run for every placeholder of every
//! call, and what makes a call carry the same values in every strategy, attempt and run.

use super::{Hole, Keys, Sink, Value};
use crate::keyed::{KeyedStream, Purpose};

const ALPHANUMERIC: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A draw of `n` equally likely outcomes from 64 random bits (Lemire's multiply-shift).
#[inline]
fn below(x: u64, n: u128) -> u128 {
    (u128::from(x) * n) >> 64
}

impl Hole {
    /// Writes the value for the call keyed by `keys`.
    #[inline]
    pub fn write<S: Sink>(&self, keys: &Keys, out: &mut S) {
        match &self.value {
            Value::Call => out.push(itoa::Buffer::new().format(keys.call)),
            Value::RequestId => {
                let id = keys.stream(0, Purpose::RequestId).next_u64();
                let mut hex = [0u8; 16];
                for (i, b) in hex.iter_mut().enumerate() {
                    *b = HEX[((id >> (60 - 4 * i)) & 0xf) as usize];
                }
                out.push(std::str::from_utf8(&hex).unwrap_or_default());
            }
            Value::Uuid => uuid(keys.stream(0, Purpose::Uuid), out),
            Value::FreshUuid => uuid(keys.stream(self.slot, Purpose::TemplateDraw), out),
            Value::Int { lo, hi } => {
                let x = keys.stream(self.slot, Purpose::TemplateDraw).next_u64();
                let span = (i128::from(*hi) - i128::from(*lo) + 1) as u128;
                let v = i128::from(*lo) + below(x, span) as i128;
                out.push(itoa::Buffer::new().format(v as i64));
            }
            Value::Choice(values) => {
                let x = keys.stream(self.slot, Purpose::TemplateDraw).next_u64();
                out.push(&values[below(x, values.len() as u128) as usize]);
            }
            Value::Text(n) => {
                let mut s = keys.stream(self.slot, Purpose::TemplateDraw);
                let mut chunk = [0u8; 64];
                let mut left = usize::from(*n);
                while left > 0 {
                    let k = left.min(chunk.len());
                    for c in &mut chunk[..k] {
                        *c = ALPHANUMERIC[below(s.next_u64(), 62) as usize];
                    }
                    out.push(std::str::from_utf8(&chunk[..k]).unwrap_or_default());
                    left -= k;
                }
            }
        }
    }

    /// Which choice the call keyed by `keys` gets (a `{{choice}}`'s index), for encoders that
    /// prepared every choice once.
    #[inline]
    pub fn choice(&self, keys: &Keys) -> Option<usize> {
        match &self.value {
            Value::Choice(values) => {
                let x = keys.stream(self.slot, Purpose::TemplateDraw).next_u64();
                Some(below(x, values.len() as u128) as usize)
            }
            _ => None,
        }
    }

    /// The integer the call keyed by `keys` gets (`{{call}}`, `{{int}}`).
    #[inline]
    pub fn integer(&self, keys: &Keys) -> Option<i128> {
        match &self.value {
            Value::Call => Some(i128::from(keys.call)),
            Value::Int { lo, hi } => {
                let x = keys.stream(self.slot, Purpose::TemplateDraw).next_u64();
                let span = (i128::from(*hi) - i128::from(*lo) + 1) as u128;
                Some(i128::from(*lo) + below(x, span) as i128)
            }
            _ => None,
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A version-4 UUID (RFC 9562 section 5.4) from a keyed stream, in lower-case hex.
fn uuid<S: Sink>(mut stream: KeyedStream, out: &mut S) {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&stream.next_u64().to_be_bytes());
    bytes[8..].copy_from_slice(&stream.next_u64().to_be_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // variant 10
    let mut text = [0u8; 36];
    let mut t = 0;
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            text[t] = b'-';
            t += 1;
        }
        text[t] = HEX[usize::from(b >> 4)];
        text[t + 1] = HEX[usize::from(b & 0xf)];
        t += 2;
    }
    out.push(std::str::from_utf8(&text).unwrap_or_default());
}
