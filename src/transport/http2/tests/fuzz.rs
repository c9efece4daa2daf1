//! The state machine against whatever a server may send: arbitrary bytes, arbitrary frames,
//! and valid responses mutated (which get past the frame checks and reach the streams), fed in
//! reads of any size between the attempts' own steps (opening, giving a request body in
//! pieces, taking events, dropping).
//!
//! What must hold, whatever came: no panic; every stream's events read head (1xx skipped
//! unless it ended the stream), data, then one end, and every stream ends (at the latest when
//! the connection does); the connection's count of open streams agrees with its table; and
//! everything the client writes is HTTP/2 a server can read (`ClientWire`), each request's
//! header block decoding to what was sent.
//!
//! `cargo test` runs a few hundred cases of each; for a longer search set `PROPTEST_CASES`
//! (docs/reliability.md gives the command and what it found).

use std::task::{Poll, Waker};

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;

use super::super::{Event, HeaderBlock};
use super::machine::Machine;
use super::script::{extra, render, response, schedule};
use super::{frame, request};

/// One step of a case.
#[derive(Debug, Clone)]
enum Op {
    /// An attempt opens a stream with a body of this size.
    Open(u32),
    /// An attempt opens a stream whose body it gives later, in pieces.
    OpenStreaming,
    /// The writer of the n-th stream (modulo) gives a piece of this size (its last when the
    /// flag says), if its stream takes more now.
    Push(u8, u32, bool),
    /// The server's next bytes.
    Server(Vec<u8>),
    /// The attempt of the n-th stream (modulo) takes what its stream has.
    Take(u8),
    /// The attempt of the n-th stream is dropped.
    Cancel(u8),
    /// The socket task takes what the client queued.
    Flush,
}

/// What an attempt has seen of its stream.
#[derive(Default)]
struct Seen {
    head: bool,
    /// The head was 1xx: it ended the stream (a malformed response, handed up as it came).
    informational: bool,
    ended: bool,
    cancelled: bool,
}

struct Case {
    m: Machine,
    ids: Vec<u32>,
    seen: Vec<Seen>,
    failed: bool,
}

impl Case {
    fn new() -> Self {
        Self {
            m: Machine::new(),
            ids: Vec::new(),
            seen: Vec::new(),
            failed: false,
        }
    }

    fn run(&mut self, ops: &[Op]) {
        for op in ops {
            self.step(op);
            self.check_table();
        }
        // The connection ends (the server closed it) unless it failed: every stream ends.
        if !self.failed {
            self.m.conn.close("the server closed the connection");
        }
        for i in 0..self.ids.len() {
            if !self.seen[i].cancelled {
                self.take(i);
                assert!(self.seen[i].ended, "stream {} never ended", self.ids[i]);
            }
        }
        self.check_table();
        self.flush();
        assert!(self.m.conn.streams.is_empty());
    }

    fn step(&mut self, op: &Op) {
        match op {
            Op::Open(len) => {
                let body = Bytes::from(vec![0x5a; *len as usize]);
                if let Ok(id) = self.m.conn.open(request(b"/x", body)) {
                    self.ids.push(id);
                    self.seen.push(Seen::default());
                }
            }
            Op::OpenStreaming => {
                let mut r = request(b"/x", Bytes::new());
                r.end = false;
                if let Ok(id) = self.m.conn.open(r) {
                    self.ids.push(id);
                    self.seen.push(Seen::default());
                }
            }
            Op::Push(n, len, end) if !self.ids.is_empty() => {
                let id = self.ids[*n as usize % self.ids.len()];
                if self.m.conn.body_ready(id, Waker::noop()) == Poll::Ready(true) {
                    let piece = Bytes::from(vec![0xa5; *len as usize]);
                    assert!(
                        self.m.conn.push_body(id, piece, *end),
                        "a stream ready for more refused it"
                    );
                }
            }
            Op::Push(..) => {}
            Op::Server(bytes) if !self.failed => {
                if let Err(fault) = self.m.receive(bytes) {
                    // As the socket task does: the connection ends, GOAWAY last.
                    self.m.conn.fail(&fault);
                    self.failed = true;
                }
            }
            Op::Server(_) => {}
            Op::Take(n) if !self.ids.is_empty() => self.take(*n as usize % self.ids.len()),
            Op::Cancel(n) if !self.ids.is_empty() => {
                let i = *n as usize % self.ids.len();
                if !self.seen[i].cancelled {
                    let in_table = self.m.conn.cancel(self.ids[i]);
                    assert_eq!(in_table, !self.seen[i].ended);
                    self.seen[i].cancelled = true;
                }
            }
            Op::Take(_) | Op::Cancel(_) => {}
            Op::Flush => self.flush(),
        }
    }

    /// The events of the i-th stream so far, checked: a head first (1xx skipped), data only
    /// after it, then one end, after which the stream has left the table.
    fn take(&mut self, i: usize) {
        let (id, seen) = (self.ids[i], &mut self.seen[i]);
        if seen.ended || seen.cancelled {
            return;
        }
        while let Poll::Ready(event) = self.m.conn.poll_event(id, Waker::noop()) {
            match &event {
                Event::Head(head) => {
                    assert!(!seen.head, "a second head on {id}");
                    seen.head = true;
                    seen.informational = informational(head);
                }
                _ if seen.informational => {
                    assert!(matches!(event, Event::End), "a 1xx head not ending {id}");
                }
                Event::Data(data) => assert!(seen.head && !data.is_empty(), "data on {id}"),
                Event::Trailers(_) | Event::End => assert!(seen.head, "an end before a head"),
                Event::Reset(_) | Event::Broken(_) => {}
            }
            if event.ends() {
                seen.ended = true;
                assert!(!self.m.conn.streams.contains_key(&id));
                break;
            }
        }
    }

    /// The client's output so far, read as a server would; each request's block is what was
    /// sent.
    fn flush(&mut self) {
        let before = self.m.wire.blocks.len();
        self.m.flush();
        for (id, fields) in &self.m.wire.blocks[before..] {
            let names: Vec<&[u8]> = fields.iter().map(|(n, _)| &n[..]).collect();
            let expected: [&[u8]; 6] = [
                b":method",
                b":scheme",
                b":path",
                b":authority",
                b"content-type",
                b"te",
            ];
            assert_eq!(names, expected, "the block of stream {id}");
            assert_eq!(
                (&fields[2].1[..], &fields[3].1[..]),
                (&b"/x"[..], &b"test:1"[..])
            );
        }
    }

    /// The count of open streams is the table's.
    fn check_table(&self) {
        let open = self.m.conn.streams.values().filter(|s| s.tail.is_none());
        assert_eq!(self.m.conn.active, open.count());
        if self.m.conn.is_closed() {
            assert_eq!(self.m.conn.active, 0);
        }
    }
}

/// A 1xx head, which the client must skip (RFC 9113 8.1).
fn informational(head: &HeaderBlock) -> bool {
    let status = head.iter().filter(|(n, _)| *n == b":status").last();
    let code = status.and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse::<u16>().ok());
    code.is_some_and(|c| (100..200).contains(&c))
}

/// Steps of the attempts' side, interleaved with the server's.
fn attempt_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u32..70_000).prop_map(Op::Open),
        1 => Just(Op::Open(0)),
        1 => Just(Op::OpenStreaming),
        3 => (any::<u8>(), 0u32..70_000, any::<bool>()).prop_map(|(n, l, e)| Op::Push(n, l, e)),
        3 => any::<u8>().prop_map(Op::Take),
        1 => any::<u8>().prop_map(Op::Cancel),
        2 => Just(Op::Flush),
    ]
}

/// A frame of any type, flags and (small) stream id, with arbitrary payload.
fn arbitrary_frame() -> impl Strategy<Value = Vec<u8>> {
    let id = prop_oneof![1 => Just(0u32), 3 => (0u32..5).prop_map(|n| 2 * n + 1), 1 => 0u32..12];
    (0u8..12, any::<u8>(), id, vec(any::<u8>(), 0..40))
        .prop_map(|(kind, flags, id, payload)| frame(kind, flags, id, &payload))
}

/// A change to a byte string: a byte flipped, bytes inserted, or a range removed.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
}

fn mutate(bytes: &mut Vec<u8>, mutations: &[Mutation]) {
    for m in mutations {
        let len = bytes.len().max(1);
        match m {
            Mutation::Flip(at, mask) => {
                if let Some(b) = bytes.get_mut(at % len) {
                    *b ^= mask;
                }
            }
            Mutation::Insert(at, more) => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, more.iter().copied());
            }
            Mutation::Remove(at, n) => {
                let at = at % len;
                let end = (at + n).min(bytes.len());
                bytes.drain(at.min(end)..end);
            }
        }
    }
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 1u8..=255).prop_map(|(at, m)| Mutation::Flip(at, m)),
        1 => (any::<usize>(), vec(any::<u8>(), 1..12)).prop_map(|(at, b)| Mutation::Insert(at, b)),
        1 => (any::<usize>(), 1usize..20).prop_map(|(at, n)| Mutation::Remove(at, n)),
    ]
}

/// `bytes` cut into reads of the given sizes (the last takes the rest), with the attempts'
/// steps between them.
fn interleave(bytes: &[u8], cuts: &[usize], between: &[Op], streams: u32) -> Vec<Op> {
    let mut ops: Vec<Op> = (0..streams).map(|i| Op::Open(i * 9_000)).collect();
    let mut rest = bytes;
    for (i, cut) in cuts.iter().enumerate() {
        let (now, later) = rest.split_at((*cut).min(rest.len()));
        ops.push(Op::Server(now.to_vec()));
        ops.extend(between.get(i).cloned());
        rest = later;
    }
    ops.push(Op::Server(rest.to_vec()));
    ops.push(Op::Flush);
    ops
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// Any bytes at all, and any frames, between the attempts' steps.
    #[test]
    fn arbitrary_server_bytes_and_frames(
        ops in vec(prop_oneof![
            2 => attempt_op(),
            1 => vec(any::<u8>(), 0..48).prop_map(Op::Server),
            4 => vec(arbitrary_frame(), 1..4).prop_map(|f| Op::Server(f.concat())),
        ], 1..60),
    ) {
        let opens = [Op::Open(0), Op::Open(100), Op::Open(70_000)];
        Case::new().run(&[&opens[..], &ops].concat());
    }

    /// Valid responses to a few streams (padding, CONTINUATION, 1xx, Trailers-Only, resets,
    /// settings, window updates, GOAWAY, frames to ignore), interleaved, often mutated, in
    /// reads of any size.
    #[test]
    fn mutated_responses(
        responses in vec(response(), 1..6),
        turns in vec(any::<u8>(), 1..16),
        extras in vec((any::<usize>(), extra()), 0..5),
        mutations in prop_oneof![1 => Just(vec![]), 2 => vec(mutation(), 1..4)],
        cuts in vec(1usize..3_000, 0..12),
        between in vec(attempt_op(), 0..12),
    ) {
        let streams = responses.len() as u32;
        let mut bytes = render(&schedule(&responses, &turns, &extras));
        mutate(&mut bytes, &mutations);
        Case::new().run(&interleave(&bytes, &cuts, &between, streams));
    }
}
