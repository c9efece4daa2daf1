//! Server scripts: responses to a few streams written frame by frame (padding, CONTINUATION,
//! 1xx, Trailers-Only, resets, SETTINGS, PING, WINDOW_UPDATE, GOAWAY, frames to ignore), as
//! the fuzz test generates them and the differential test spells them.

use proptest::collection::vec;
use proptest::prelude::*;

use super::super::frame::{
    CONTINUATION, DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS, PADDED, PING, RST_STREAM,
    SETTINGS, WINDOW_UPDATE,
};
use super::frame;

/// One stream's valid response: an optional 1xx head, the head (padded, or split over
/// CONTINUATION), DATA frames (some padded), and an end.
#[derive(Debug, Clone)]
pub(super) struct Response {
    informational: bool,
    status: u16,
    pad: u8,
    split: bool,
    data: Vec<(u16, u8)>,
    end: End,
}

/// How a response ends.
#[derive(Debug, Clone)]
pub(super) enum End {
    /// Trailers with this grpc-status.
    Trailers(u8),
    /// END_STREAM on the last DATA frame (or an empty one).
    Data,
    /// RST_STREAM with this code.
    Reset(u32),
    /// Trailers-Only: the head ends the stream, with this grpc-status.
    TrailersOnly(u8),
    /// Not ended (the connection's end ends it).
    Open,
}

/// A frame of the connection's, between the streams' frames.
#[derive(Debug, Clone)]
pub(super) enum Extra {
    Settings(Vec<(u16, u32)>),
    Ping,
    /// A WINDOW_UPDATE on the n-th stream, or the connection (n = 0).
    Window(u8, u32),
    GoAway(u8),
    /// PRIORITY, or a frame type HTTP/2 does not define.
    Ignored(u8),
}

/// A server frame, before encoding: the n-th stream's (modulo those opened) or the
/// connection's.
#[derive(Debug, Clone)]
pub(super) enum Piece {
    Head(Head),
    Data(Data),
    /// Trailers: grpc-status, and grpc-retry-pushback-ms values.
    Trailers {
        stream: u32,
        code: u8,
        pushback: Vec<&'static str>,
    },
    Reset {
        stream: u32,
        code: u32,
    },
    Extra(Extra),
}

/// A response head (or a Trailers-Only response, with `grpc`).
#[derive(Debug, Clone)]
pub(super) struct Head {
    pub stream: u32,
    pub status: u16,
    /// END_STREAM.
    pub end: bool,
    /// Bytes of padding (none if 0).
    pub pad: u8,
    /// Over HEADERS, an empty CONTINUATION and a CONTINUATION.
    pub split: bool,
    /// A grpc-status in the head.
    pub grpc: Option<u8>,
}

/// A DATA frame of `len` bytes.
#[derive(Debug, Clone)]
pub(super) struct Data {
    pub stream: u32,
    pub len: u16,
    pub pad: u8,
    pub end: bool,
}

pub(super) fn response() -> impl Strategy<Value = Response> {
    let status = prop_oneof![8 => Just(200u16), 1 => Just(503), 1 => 100u16..600];
    let end = prop_oneof![
        4 => (0u8..17).prop_map(End::Trailers),
        1 => Just(End::Data),
        1 => (0u32..14).prop_map(End::Reset),
        1 => (0u8..17).prop_map(End::TrailersOnly),
        1 => Just(End::Open),
    ];
    let data = vec(
        (0u16..16_000, prop_oneof![3 => Just(0u8), 1 => 1u8..255]),
        0..6,
    );
    (any::<bool>(), status, 0u8..3, any::<bool>(), data, end).prop_map(
        |(informational, status, pad, split, data, end)| Response {
            informational: informational && status == 200,
            status,
            pad,
            split,
            data,
            end,
        },
    )
}

pub(super) fn extra() -> impl Strategy<Value = Extra> {
    let setting = prop_oneof![
        (Just(1u16), 0u32..8192),
        (Just(2u16), Just(0u32)),
        (Just(3u16), 0u32..8),
        (Just(4u16), 0u32..200_000),
        (Just(5u16), 16_384u32..40_000),
    ];
    prop_oneof![
        2 => vec(setting, 0..3).prop_map(Extra::Settings),
        1 => Just(Extra::Ping),
        3 => (0u8..6, 1u32..100_000).prop_map(|(s, n)| Extra::Window(s, n)),
        1 => (0u8..6).prop_map(Extra::GoAway),
        1 => prop_oneof![Just(2u8), 10u8..=255].prop_map(Extra::Ignored),
    ]
}

/// The responses' frames, each stream's in order, the streams' taken in the order `turns`
/// says, the connection's frames inserted where `extras` say.
pub(super) fn schedule(
    responses: &[Response],
    turns: &[u8],
    extras: &[(usize, Extra)],
) -> Vec<Piece> {
    let mut queues: Vec<Vec<Piece>> = responses
        .iter()
        .enumerate()
        .map(|(n, r)| {
            let stream = n as u32;
            let mut q = Vec::new();
            if r.informational {
                let head = Piece::Head(Head {
                    stream,
                    status: 100,
                    end: false,
                    pad: 0,
                    split: false,
                    grpc: None,
                });
                q.push(head);
            }
            let only = match r.end {
                End::TrailersOnly(code) => Some(code),
                _ => None,
            };
            let (pad, split) = (r.pad, r.split);
            let end = only.is_some();
            q.push(Piece::Head(Head {
                stream,
                status: r.status,
                end,
                pad,
                split,
                grpc: only,
            }));
            if only.is_none() {
                let last = r.data.len().saturating_sub(1);
                for (i, &(len, pad)) in r.data.iter().enumerate() {
                    let end = matches!(r.end, End::Data) && i == last;
                    q.push(Piece::Data(Data {
                        stream,
                        len,
                        pad,
                        end,
                    }));
                }
                match r.end {
                    End::Trailers(code) => q.push(Piece::Trailers {
                        stream,
                        code,
                        pushback: vec![],
                    }),
                    End::Data if r.data.is_empty() => {
                        q.push(Piece::Data(Data {
                            stream,
                            len: 0,
                            pad: 0,
                            end: true,
                        }));
                    }
                    End::Reset(code) => q.push(Piece::Reset { stream, code }),
                    _ => {}
                }
            }
            q.reverse();
            q
        })
        .collect();
    let mut pieces = Vec::new();
    let mut turns = turns.iter().cycle();
    while queues.iter().any(|q| !q.is_empty()) {
        let pick = usize::from(*turns.next().unwrap_or(&0));
        let live: Vec<usize> = (0..queues.len())
            .filter(|&i| !queues[i].is_empty())
            .collect();
        let q = live[pick % live.len()];
        pieces.extend(queues[q].pop());
    }
    for (at, extra) in extras {
        let at = at % (pieces.len() + 1);
        pieces.insert(at, Piece::Extra(extra.clone()));
    }
    pieces
}

/// The bytes of `pieces`, the n-th stream being 2n + 1, header blocks encoded with one HPACK
/// encoder (its dynamic table included), as a server would.
pub(super) fn render(pieces: &[Piece]) -> Vec<u8> {
    let mut hpack = loona_hpack::Encoder::new();
    let mut out = Vec::new();
    for p in pieces {
        match p {
            Piece::Head(Head {
                stream,
                status,
                end,
                pad,
                split,
                grpc,
            }) => {
                let (status, grpc) = (status.to_string(), grpc.map(|g| g.to_string()));
                let mut fields = vec![
                    (&b":status"[..], status.as_bytes()),
                    (b"content-type", b"application/grpc"),
                ];
                fields.extend(grpc.as_ref().map(|g| (&b"grpc-status"[..], g.as_bytes())));
                let block = hpack.encode(fields);
                let id = 2 * stream + 1;
                let at = if *split { block.len() / 2 } else { block.len() };
                let end_headers = if *split { 0 } else { END_HEADERS };
                let (flags, payload) = padded(end_headers | end_flag(*end), &block[..at], *pad);
                out.extend(frame(HEADERS, flags, id, &payload));
                if *split {
                    out.extend(frame(CONTINUATION, 0, id, &[]));
                    out.extend(frame(CONTINUATION, END_HEADERS, id, &block[at..]));
                }
            }
            Piece::Data(Data {
                stream,
                len,
                pad,
                end,
            }) => {
                let (flags, payload) = padded(end_flag(*end), &vec![1; usize::from(*len)], *pad);
                out.extend(frame(DATA, flags, 2 * stream + 1, &payload));
            }
            Piece::Trailers {
                stream,
                code,
                pushback,
            } => {
                let code = code.to_string();
                let pushback = pushback
                    .iter()
                    .map(|v| (&b"grpc-retry-pushback-ms"[..], v.as_bytes()));
                let block = hpack.encode(
                    [(&b"grpc-status"[..], code.as_bytes())]
                        .into_iter()
                        .chain(pushback),
                );
                out.extend(frame(
                    HEADERS,
                    END_HEADERS | END_STREAM,
                    2 * stream + 1,
                    &block,
                ));
            }
            Piece::Reset { stream, code } => {
                out.extend(frame(RST_STREAM, 0, 2 * stream + 1, &code.to_be_bytes()));
            }
            Piece::Extra(Extra::Settings(params)) => {
                let payload: Vec<u8> = params
                    .iter()
                    .flat_map(|(k, v)| k.to_be_bytes().into_iter().chain(v.to_be_bytes()))
                    .collect();
                out.extend(frame(SETTINGS, 0, 0, &payload));
            }
            Piece::Extra(Extra::Ping) => out.extend(frame(PING, 0, 0, b"pingpong")),
            Piece::Extra(Extra::Window(n, increment)) => {
                let on = if *n == 0 { 0 } else { 2 * u32::from(*n) - 1 };
                out.extend(frame(WINDOW_UPDATE, 0, on, &increment.to_be_bytes()));
            }
            Piece::Extra(Extra::GoAway(n)) => {
                let mut payload = (2 * u32::from(*n) + 1).to_be_bytes().to_vec();
                payload.extend(0u32.to_be_bytes());
                out.extend(frame(GOAWAY, 0, 0, &payload));
            }
            Piece::Extra(Extra::Ignored(kind)) => out.extend(frame(*kind, 0, 1, b"12345")),
        }
    }
    out
}

fn end_flag(end: bool) -> u8 {
    if end { END_STREAM } else { 0 }
}

/// `payload` with `pad` bytes of padding, if any.
fn padded(flags: u8, payload: &[u8], pad: u8) -> (u8, Vec<u8>) {
    if pad == 0 {
        return (flags, payload.to_vec());
    }
    let mut out = vec![pad];
    out.extend_from_slice(payload);
    out.extend(std::iter::repeat_n(0, usize::from(pad)));
    (flags | PADDED, out)
}
