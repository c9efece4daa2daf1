//! A request body given in pieces ([`super::super::BodyWriter`]'s state machine side): each
//! piece goes out within the windows, the writer is woken when it can give the next, the end
//! goes once (an empty DATA frame when no bytes come with it), and a stream the server ends
//! first takes nothing more and is reset.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Poll, Wake, Waker};

use bytes::Bytes;

use super::super::frame::{
    DATA, END_HEADERS, END_STREAM, HEADERS, Head, RST_STREAM, WINDOW_UPDATE,
};
use super::machine::Machine;
use super::{GRPC_OK, STATUS_200, frame, request};

/// Counts its wake-ups.
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Opens a stream whose body is given later.
fn open_streaming(m: &mut Machine) -> u32 {
    let mut r = request(b"/x", Bytes::new());
    r.end = false;
    m.conn.open(r).unwrap()
}

/// (kind, flags, length) of each frame.
fn shapes(frames: &[(Head, Vec<u8>)]) -> Vec<(u8, u8, usize)> {
    frames
        .iter()
        .map(|(h, _)| (h.kind, h.flags, h.len))
        .collect()
}

/// RFC 9113 5.1, 6.1, 6.9: HEADERS without END_STREAM; each piece as DATA within the windows;
/// the writer waits while a piece is held back and is woken when it has gone; the end as an
/// empty DATA frame with END_STREAM; after it the body takes nothing more.
#[test]
fn a_body_given_in_pieces_goes_out_within_the_windows_and_ends_once() {
    let mut m = Machine::new();
    let id = open_streaming(&mut m);
    let headers = m.flush();
    assert_eq!(
        (headers.len(), headers[0].0.kind, headers[0].0.flags),
        (1, HEADERS, END_HEADERS),
        "no END_STREAM with the headers"
    );
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = Waker::from(Arc::clone(&count));
    assert_eq!(m.conn.body_ready(id, &waker), Poll::Ready(true));
    assert!(m.conn.push_body(id, Bytes::from_static(&[1; 100]), false));
    assert_eq!(shapes(&m.flush()), [(DATA, 0, 100)]);
    assert!(m.conn.push_body(id, Bytes::from(vec![2u8; 70_000]), false));
    let sent: usize = m.flush().iter().map(|(h, _)| h.len).sum();
    assert_eq!(
        sent,
        65_535 - 100,
        "the default windows, less the first piece"
    );
    assert_eq!(m.conn.body_ready(id, &waker), Poll::Pending);
    m.receive(&frame(WINDOW_UPDATE, 0, 0, &10_000u32.to_be_bytes()))
        .unwrap();
    m.receive(&frame(WINDOW_UPDATE, 0, id, &10_000u32.to_be_bytes()))
        .unwrap();
    let sent: usize = m.flush().iter().map(|(h, _)| h.len).sum();
    assert_eq!(sent, 70_000 - 65_435);
    assert_eq!(
        count.0.load(Ordering::SeqCst),
        1,
        "woken once the piece has gone"
    );
    assert_eq!(m.conn.body_ready(id, &waker), Poll::Ready(true));
    assert!(m.conn.push_body(id, Bytes::new(), true));
    assert_eq!(shapes(&m.flush()), [(DATA, END_STREAM, 0)]);
    assert_eq!(m.conn.body_ready(id, &waker), Poll::Ready(false));
    assert!(!m.conn.push_body(id, Bytes::from_static(b"late"), false));
    assert!(m.flush().is_empty(), "nothing after the end");
}

/// The last piece carries END_STREAM itself when it has bytes.
#[test]
fn a_last_piece_with_bytes_carries_the_end() {
    let mut m = Machine::new();
    let id = open_streaming(&mut m);
    m.flush();
    assert!(m.conn.push_body(id, Bytes::from_static(b"last"), true));
    assert_eq!(shapes(&m.flush()), [(DATA, END_STREAM, 4)]);
}

/// RFC 9113 6.9.1: a body's end given with no bytes (as gRPC clients half-close a stream)
/// takes no window, so it goes at once even while other streams wait for the connection's
/// window, rather than behind them until a WINDOW_UPDATE; and an empty piece queues nothing.
#[test]
fn an_end_with_no_bytes_does_not_wait_behind_streams_waiting_for_window() {
    let mut m = Machine::new();
    let big = m
        .conn
        .open(request(b"/x", Bytes::from(vec![1u8; 70_000])))
        .unwrap();
    let id = open_streaming(&mut m);
    let sent: usize = m
        .flush()
        .iter()
        .filter(|(h, _)| h.id == big && h.kind == DATA)
        .map(|(h, _)| h.len)
        .sum();
    assert_eq!(sent, 65_535, "the connection's window is used up");
    assert!(m.conn.push_body(id, Bytes::new(), false));
    assert!(m.flush().is_empty(), "an empty piece writes nothing");
    assert!(m.conn.push_body(id, Bytes::new(), true));
    let frames: Vec<_> = m.flush().into_iter().filter(|(h, _)| h.id == id).collect();
    assert_eq!(
        shapes(&frames),
        [(DATA, END_STREAM, 0)],
        "the end, without a WINDOW_UPDATE"
    );
    m.receive(&frame(WINDOW_UPDATE, 0, 0, &10_000u32.to_be_bytes()))
        .unwrap();
    m.receive(&frame(WINDOW_UPDATE, 0, big, &10_000u32.to_be_bytes()))
        .unwrap();
    let after = m.flush();
    assert!(
        after.iter().all(|(h, _)| h.id == big),
        "nothing more on the ended body"
    );
    assert_eq!(
        after.iter().map(|(h, _)| h.len).sum::<usize>(),
        70_000 - 65_535
    );
}

/// RFC 9113 8.1: a server may answer before the request has ended; the client then stops
/// sending: the stream is reset (CANCEL), and its writer is woken and told it takes nothing
/// more.
#[test]
fn a_stream_the_server_ends_first_takes_no_more_and_is_reset() {
    let mut m = Machine::new();
    let id = open_streaming(&mut m);
    assert!(m.conn.push_body(id, Bytes::from(vec![3u8; 70_000]), false));
    m.flush();
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = Waker::from(Arc::clone(&count));
    assert_eq!(m.conn.body_ready(id, &waker), Poll::Pending);
    let mut server = frame(HEADERS, END_HEADERS, id, STATUS_200);
    server.extend(frame(HEADERS, END_HEADERS | END_STREAM, id, GRPC_OK));
    m.receive(&server).unwrap();
    assert_eq!(count.0.load(Ordering::SeqCst), 1, "the writer is told");
    assert_eq!(m.conn.body_ready(id, &waker), Poll::Ready(false));
    assert!(!m.conn.push_body(id, Bytes::from_static(b"more"), true));
    assert_eq!(shapes(&m.flush()), [(RST_STREAM, 0, 4)]);
}
