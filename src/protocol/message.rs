//! gRPC's message framing: each message is a 1-byte compressed flag, a 4-byte big-endian
//! length and the message's bytes (grpc/grpc `doc/PROTOCOL-HTTP2.md`, "Length-Prefixed-Message").

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;
use tonic::Code;

/// The length of a message's prefix.
pub const PREFIX: usize = 5;

/// The largest message either side takes: 4 MiB, the default receive limit of gRPC's clients
/// and servers (grpc-go's `defaultClientMaxReceiveMessageSize` and
/// `defaultServerMaxReceiveMessageSize`, grpc-java's `DEFAULT_MAX_MESSAGE_SIZE`, tonic's
/// `max_decoding_message_size`). A larger one fails the call RESOURCE_EXHAUSTED, as those
/// libraries fail it.
pub const MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// `message` with its prefix (uncompressed).
pub fn encode(message: &impl Message) -> Bytes {
    let len = message.encoded_len();
    let mut buffer = BytesMut::with_capacity(PREFIX + len);
    buffer.put_u8(0);
    buffer.put_u32(len as u32);
    message
        .encode(&mut buffer)
        .expect("the buffer was sized for the message");
    buffer.freeze()
}

/// What a message's prefix says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    /// Fewer than [`PREFIX`] bytes so far.
    Short,
    /// An uncompressed message of this length, within [`MAX_MESSAGE`].
    Message(usize),
    /// A compressed message (none was asked for): INTERNAL, as the specification says.
    Compressed,
    /// A message over [`MAX_MESSAGE`]: RESOURCE_EXHAUSTED.
    TooLarge,
}

impl Prefix {
    /// The prefix at the start of `data`.
    pub fn of(data: &[u8]) -> Self {
        let Some(head) = data.get(..PREFIX) else {
            return Self::Short;
        };
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        match (head[0], len) {
            (0, len) if len <= MAX_MESSAGE => Self::Message(len),
            (0, _) => Self::TooLarge,
            _ => Self::Compressed,
        }
    }
}

/// The next whole message in `buffer`, taken out of it; `None` until one has fully arrived.
/// A compressed message is INTERNAL; one over [`MAX_MESSAGE`] is RESOURCE_EXHAUSTED.
pub fn next(buffer: &mut BytesMut) -> Result<Option<Bytes>, Code> {
    match Prefix::of(buffer) {
        Prefix::Short => Ok(None),
        Prefix::Compressed => Err(Code::Internal),
        Prefix::TooLarge => Err(Code::ResourceExhausted),
        Prefix::Message(len) if buffer.len() < PREFIX + len => Ok(None),
        Prefix::Message(len) => {
            let mut message = buffer.split_to(PREFIX + len);
            Ok(Some(message.split_off(PREFIX).freeze()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb;

    /// Length-prefixed messages come out whole, however the bytes are split; a compressed or
    /// oversized one fails the call.
    #[test]
    fn messages_are_cut_from_the_byte_stream_at_their_prefixes() {
        let one = encode(&pb::StreamReply {
            request_id: "7".into(),
            message: 1,
        });
        let two = encode(&pb::StreamReply {
            request_id: "7".into(),
            message: 2,
        });
        let wire: Vec<u8> = [one.as_ref(), two.as_ref()].concat();
        for split in 0..=wire.len() {
            let mut buffer = BytesMut::new();
            let mut got = Vec::new();
            for part in [&wire[..split], &wire[split..]] {
                buffer.extend_from_slice(part);
                while let Some(m) = next(&mut buffer).unwrap() {
                    got.push(pb::StreamReply::decode(m).unwrap().message);
                }
            }
            assert_eq!(got, [1, 2], "split at {split}");
            assert!(buffer.is_empty());
        }
        let mut compressed = BytesMut::from(&one[..]);
        compressed[0] = 1;
        assert_eq!(next(&mut compressed), Err(Code::Internal));
        let mut huge = BytesMut::from(&[0u8, 0xff, 0xff, 0xff, 0xff][..]);
        assert_eq!(next(&mut huge), Err(Code::ResourceExhausted));
    }

    #[test]
    fn the_limit_is_inclusive() {
        let at = (MAX_MESSAGE as u32).to_be_bytes();
        let over = (MAX_MESSAGE as u32 + 1).to_be_bytes();
        assert_eq!(
            Prefix::of(&[0, at[0], at[1], at[2], at[3]]),
            Prefix::Message(MAX_MESSAGE)
        );
        assert_eq!(
            Prefix::of(&[0, over[0], over[1], over[2], over[3]]),
            Prefix::TooLarge
        );
        assert_eq!(Prefix::of(&[0, 0, 0]), Prefix::Short);
    }
}
